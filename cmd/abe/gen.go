package main

import (
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe/engine/openapi"
	"github.com/abe-stack/abe/engine/tstypes"
	"github.com/abe-stack/abe/schema"
)

func newOpenAPICmd(g *globalOpts) *cobra.Command {
	var out, serverURL string
	cmd := &cobra.Command{
		Use:   "openapi",
		Short: "Print the OpenAPI 3.1 description of the API",
		Long: `Print the OpenAPI 3.1 document of the API abe.yaml declares: every
collection's records endpoints with its field schemas, batch, the change log,
auth and admin. A running server answers the same at GET /api/openapi.json.`,
		Example: `  abe openapi > openapi.json
  abe openapi -o openapi.json --server-url https://api.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkServerURL(serverURL); err != nil {
				return err
			}
			cfg, err := schema.Load(g.config)
			if err != nil {
				return err
			}
			doc, err := openapi.Generate(cfg, openapi.Options{Version: abeVersion(), ServerURL: serverURL})
			if err != nil {
				return fmt.Errorf("describe the API: %w", err)
			}
			return writeOutput(cmd.OutOrStdout(), out, doc)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().StringVar(&serverURL, "server-url", "", "the server URL to name (default server.public_url)")
	return cmd
}

// checkServerURL accepts an empty --server-url (server.public_url is
// named instead) or an absolute http(s) URL.
func checkServerURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--server-url %q is not an http(s) URL such as https://api.example.com", s)
	}
	return nil
}

func newGenCmd(g *globalOpts) *cobra.Command {
	gen := &cobra.Command{
		Use:   "gen",
		Short: "Generate code from abe.yaml",
		Long: `Generate code from the collections abe.yaml declares: record types for the
SDK so far ('abe gen types'). Run it again after changing the file.`,
		Example: `  abe gen types --lang ts -o src/abe-types.ts`,
	}
	var lang, out string
	types := &cobra.Command{
		Use:   "types",
		Short: "Generate record types for a client language",
		Long: `Generate the types of every collection's records, create and update
bodies, for use with the SDK. TypeScript is the one language so far.`,
		Example: `  abe gen types --lang ts -o src/abe-types.ts`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lang != "ts" && lang != "typescript" {
				return fmt.Errorf("--lang %q is not supported; use --lang ts", lang)
			}
			cfg, err := schema.Load(g.config)
			if err != nil {
				return err
			}
			src, err := tstypes.Generate(cfg)
			if err != nil {
				return fmt.Errorf("generate types: %w", err)
			}
			return writeOutput(cmd.OutOrStdout(), out, src)
		},
	}
	types.Flags().StringVar(&lang, "lang", "ts", "the language: ts")
	types.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	gen.AddCommand(types)
	return gen
}

// writeOutput writes b to the file named, or to w when none is.
func writeOutput(w io.Writer, file string, b []byte) error {
	if file == "" {
		_, err := w.Write(b)
		return err
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
