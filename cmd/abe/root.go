package main

import (
	"io"

	"github.com/spf13/cobra"
)

// globalOpts are the flags every command takes.
type globalOpts struct {
	config string
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOpts{}
	root := &cobra.Command{
		Use:   "abe",
		Short: "A self-hosted backend: collections, rules, REST, realtime and auth on Postgres",
		Long: `abe turns one YAML file (abe.yaml) into Postgres tables, a REST API with
version-checked writes, realtime subscriptions and built-in auth.

Start a project with 'abe init', run it locally with 'abe dev', and in
production with 'abe migrate apply' then 'abe serve'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.config, "config", "c", "abe.yaml", "configuration file")
	root.AddCommand(
		newInitCmd(g),
		newValidateCmd(g),
		newMigrateCmd(g),
		newServeCmd(g),
		newDevCmd(g),
		newUsersCmd(g),
		newRolesCmd(g),
		newJobsCmd(g),
		newOpenAPICmd(g),
		newGenCmd(g),
		newSchemaCmd(),
		newVersionCmd(),
	)
	return root
}
