package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

func newValidateCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check abe.yaml without touching a database",
		Long: `Check the configuration file against abe's JSON Schema and its semantic
rules (field types, relations, names, defaults, indexes), then type-check
every CEL rule against its collection and make sure every list rule can run
as SQL. Every problem is reported at once, those of the rules with the
others, ordered by file:line:column, with what is wrong and how to fix it.
Exits non-zero when there is a problem.`,
		Example: `  abe validate
  abe validate --config examples/todo/abe.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(g, cmd.OutOrStdout())
		},
	}
}

func runValidate(g *globalOpts, w io.Writer) error {
	cfg, diags, err := schema.LoadPartial(g.config)
	if err != nil {
		return err
	}
	if cfg != nil {
		// The rules are checked even when the rest of the file has
		// problems, so that one run reports them all.
		if _, err := rules.Compile(cfg, nil); err != nil {
			var more schema.Diagnostics
			switch {
			case errors.As(err, &more):
				diags = diags.Merge(more)
			case len(diags) == 0:
				return err
			}
			// Otherwise the rules could not be compiled because of a
			// problem already reported.
		}
	}
	if len(diags) > 0 {
		return diags
	}
	fields := 0
	for _, c := range cfg.Collections {
		fields += len(c.Fields)
	}
	_, err = fmt.Fprintf(w, "%s is valid: %s, %s, %s\n", g.config, count(len(cfg.Collections), "collection"), count(fields, "field"), count(len(cfg.Roles), "role"))
	return err
}

// count says "1 field" or "4 fields".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
