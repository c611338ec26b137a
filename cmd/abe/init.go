package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe/schema"
)

//go:embed scaffold/abe.yaml
var scaffoldConfig []byte

// schemaFile is the JSON Schema abe init writes beside abe.yaml, which the
// scaffold's first line names for editors.
const schemaFile = "abe.schema.json"

type initOpts struct {
	force bool
}

func newInitCmd(g *globalOpts) *cobra.Command {
	o := &initOpts{}
	cmd := &cobra.Command{
		Use:   "init [dir]",
		Short: "Start a project: write a commented abe.yaml",
		Long: `Write a commented abe.yaml with one example collection, its JSON Schema in
abe.schema.json (named on the file's first line, so editors with the YAML
language server complete and check its keys), and a .gitignore entry for
.abe/ (where abe dev keeps its local database and secret), in dir or the
current directory. An existing abe.yaml is kept unless --force; after
upgrading abe, 'abe schema -o abe.schema.json' refreshes the schema.`,
		Example: `  abe init
  abe init myapp && cd myapp && abe dev`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runInit(cmd.OutOrStdout(), g, o, dir)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "overwrite an existing abe.yaml")
	return cmd
}

func runInit(w io.Writer, g *globalOpts, o *initOpts, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	name := filepath.Base(g.config)
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil && !o.force {
		return fmt.Errorf("init: %s already exists; keep it, or pass --force to overwrite it", path)
	}
	if err := os.WriteFile(path, scaffoldConfig, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	schemaPath := filepath.Join(dir, schemaFile)
	if err := os.WriteFile(schemaPath, schema.ConfigJSONSchema, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := ensureIgnored(filepath.Join(dir, ".gitignore"), ".abe/"); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	_, err := fmt.Fprintf(w, `Wrote %s, and %s for editors to complete its keys.

Next:
  abe validate   check the file
  abe dev        serve it on http://127.0.0.1:8090 with a local database
`, path, schemaPath)
	return err
}

// ensureIgnored adds line to a .gitignore unless it is already there.
func ensureIgnored(path, line string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == line {
			return nil
		}
	}
	if len(b) > 0 && !strings.HasSuffix(string(b), "\n") {
		b = append(b, '\n')
	}
	b = append(b, line+"\n"...)
	return os.WriteFile(path, b, 0o644)
}
