package main

import (
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/schema"
)

func newMigrateCmd(g *globalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Plan, apply and inspect database migrations",
		Long: `abe compares the collections in abe.yaml with the live Postgres catalog and
plans the steps that make them match: create and drop tables, add, rename
and drop columns, change types, defaults and NOT NULL, and keep constraints,
indexes and triggers in step. There are no migration files to write.

The database is database.url (or DATABASE_URL / ABE_DATABASE_URL); when it is
empty, the project's local cluster in .abe/pg is used, as under 'abe dev'.`,
		Example: `  abe migrate plan
  abe migrate apply
  abe migrate status`,
	}
	cmd.AddCommand(newMigratePlanCmd(g), newMigrateApplyCmd(g), newMigrateStatusCmd(g))
	return cmd
}

func newMigratePlanCmd(g *globalOpts) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print the steps that would bring the database to abe.yaml",
		Long: `Print each step, marked [destructive] when it can lose data, with the SQL it
runs. Nothing is changed.`,
		Example: `  abe migrate plan
  DATABASE_URL=postgres://localhost/app abe migrate plan --verbose`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigratePlan(cmd, g, verbose)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print the SQL of system migrations")
	return cmd
}

// withMigrator loads the configuration, opens its database (the local
// cluster when database.url is empty) and runs fn.
func withMigrator(cmd *cobra.Command, g *globalOpts, fn func(m *schema.Migrator, pool *pgxpool.Pool) error) error {
	cfg, err := schema.Load(g.config)
	if err != nil {
		return err
	}
	pool, closeDB, err := openPool(cmd.Context(), cfg, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer closeDB()
	return fn(abe.NewMigrator(cfg, abeVersion()), pool)
}

func runMigratePlan(cmd *cobra.Command, g *globalOpts, verbose bool) error {
	return withMigrator(cmd, g, func(m *schema.Migrator, pool *pgxpool.Pool) error {
		plan, err := m.Plan(cmd.Context(), pool)
		if err != nil {
			return err
		}
		abe.WritePlan(cmd.OutOrStdout(), plan, verbose)
		return nil
	})
}

type applyOpts struct {
	allowDestructive bool
}

func newMigrateApplyCmd(g *globalOpts) *cobra.Command {
	o := &applyOpts{}
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Apply the planned steps in one transaction",
		Long: `Plan again and run every step in one transaction under an advisory lock, so
two applies at once run one after the other and nothing runs twice. The
applied plan and its checksum are recorded in abe.migrations. Steps that
can lose data (drop table, drop column, narrowing a type) are refused
unless --allow-destructive is given. When the database already matches,
nothing happens.`,
		Example: `  abe migrate apply
  abe migrate apply --allow-destructive`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigrateApply(cmd, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.allowDestructive, "allow-destructive", false, "run steps that can lose data")
	return cmd
}

func runMigrateApply(cmd *cobra.Command, g *globalOpts, o *applyOpts) error {
	return withMigrator(cmd, g, func(m *schema.Migrator, pool *pgxpool.Pool) error {
		out := cmd.OutOrStdout()
		plan, err := m.Apply(cmd.Context(), pool, &schema.ApplyOpts{AllowDestructive: o.allowDestructive, Progress: out})
		if err != nil {
			return err
		}
		if plan.Empty() {
			_, err = fmt.Fprintln(out, "Nothing to do: the database matches the configuration.")
			return err
		}
		_, err = fmt.Fprintf(out, "Applied %d steps (checksum %s).\n", len(plan.Steps), plan.Checksum()[:12])
		return err
	})
}

func newMigrateStatusCmd(g *globalOpts) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show applied migrations and whether any are pending",
		Example: `  abe migrate status
  abe migrate status --limit 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > maxStatusLimit {
				return fmt.Errorf("--limit must be from 1 to %d", maxStatusLimit)
			}
			return withMigrator(cmd, g, func(m *schema.Migrator, pool *pgxpool.Pool) error {
				st, err := m.Status(cmd.Context(), pool, limit)
				if err != nil {
					return err
				}
				return printStatus(cmd.OutOrStdout(), st)
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 10, "how many applied migrations to list")
	return cmd
}

// maxStatusLimit bounds migrate status --limit.
const maxStatusLimit = 1000

func printStatus(w io.Writer, st *schema.Status) error {
	if len(st.Applied) == 0 {
		fmt.Fprintln(w, "No migrations applied yet.")
	} else {
		fmt.Fprintln(w, "Applied (newest first):")
		for _, a := range st.Applied {
			fmt.Fprintf(w, "  #%d  %s  %d steps  checksum %s  abe %s\n", a.ID, a.AppliedAt.Local().Format("2006-01-02 15:04:05"), a.Steps, a.Checksum[:12], a.Version)
		}
	}
	for _, k := range st.Changed {
		fmt.Fprintf(w, "warning: system migration %s changed after it was applied\n", k)
	}
	if st.Pending.Empty() {
		_, err := fmt.Fprintln(w, "Up to date: the database matches the configuration.")
		return err
	}
	fmt.Fprintf(w, "Pending: %d steps (see `abe migrate plan`):\n", len(st.Pending.Steps))
	for i, s := range st.Pending.Steps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s.Summary)
	}
	return nil
}
