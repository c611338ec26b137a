package main

import (
	"github.com/spf13/cobra"

	"github.com/abe-stack/abe/schema"
)

func newSchemaCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of abe.yaml",
		Long: `Print the JSON Schema that abe.yaml is checked against, the one this abe
binary embeds. 'abe init' writes it to abe.schema.json and names it on the
first line of abe.yaml:

  # yaml-language-server: $schema=./abe.schema.json

so editors with the YAML language server complete and check keys. Write it
again after upgrading abe. A running server answers the same at
GET /api/schema/config.json.`,
		Example: `  abe schema -o abe.schema.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeOutput(cmd.OutOrStdout(), out, schema.ConfigJSONSchema)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
