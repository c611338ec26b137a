package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/internal/jobs"
)

func newJobsCmd(g *globalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "See and manage background jobs: list, retry, cancel",
		Long: `Background jobs (mail, webhook deliveries, pruning, file cleanup) run on
River in the database.
A job that keeps failing is retried with backoff, then discarded after
jobs.max_attempts; discarded jobs are kept for jobs.discarded_retention so
they can be inspected and retried. The same is at /api/admin/jobs for
holders of the jobs:manage permission.`,
		Example: `  abe jobs list --state discarded
  abe jobs retry 42
  abe jobs cancel 43`,
	}
	cmd.AddCommand(newJobsListCmd(g), newJobsActionCmd(g, "retry"), newJobsActionCmd(g, "cancel"))
	return cmd
}

func newJobsListCmd(g *globalOpts) *cobra.Command {
	var state, kind string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Example: `  abe jobs list
  abe jobs list --state discarded,retryable --kind mail.send --limit 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := jobs.ListParams{Limit: limit}
			if limit < 1 || limit > 500 {
				return errors.New("--limit must be from 1 to 500")
			}
			for s := range strings.SplitSeq(state, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if !slices.Contains(jobs.States, s) {
					return fmt.Errorf("--state %q is not one of %s", s, strings.Join(jobs.States, ", "))
				}
				p.States = append(p.States, s)
			}
			if kind != "" {
				p.Kinds = strings.Split(kind, ",")
			}
			return withApp(cmd, g, func(app *abe.App) error {
				list, _, err := app.Jobs().List(cmd.Context(), p)
				if err != nil {
					return err
				}
				if len(list) == 0 {
					_, err := fmt.Fprintln(cmd.OutOrStdout(), "No jobs.")
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tKIND\tSTATE\tATTEMPT\tCREATED\tLAST ERROR")
				for _, j := range list {
					last := ""
					if n := len(j.Errors); n > 0 {
						last = j.Errors[n-1].Error
						if len(last) > 80 {
							last = last[:80] + "..."
						}
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.State, j.Attempt, j.MaxAttempts, j.CreatedAt.Format(time.RFC3339), last)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only jobs in these states, comma-separated: "+strings.Join(jobs.States, ", "))
	cmd.Flags().StringVar(&kind, "kind", "", "only jobs of these kinds, comma-separated (mail.send, task)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return cmd
}

func newJobsActionCmd(g *globalOpts, action string) *cobra.Command {
	short := map[string]string{"retry": "Run a job again now (a discarded or cancelled one too)", "cancel": "Cancel a job that has not finished"}[action]
	return &cobra.Command{
		Use:     action + " ID",
		Short:   short,
		Example: "  abe jobs " + action + " 42",
		Args:    exactArgs(1, "the job's id; `abe jobs list` shows them"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return fmt.Errorf("%q is not a job id; abe jobs list shows them", args[0])
			}
			return withApp(cmd, g, func(app *abe.App) error {
				do := app.Jobs().Retry
				if action == "cancel" {
					do = app.Jobs().Cancel
				}
				j, err := do(cmd.Context(), id)
				if errors.Is(err, jobs.ErrNotFound) {
					return fmt.Errorf("there is no job %d", id)
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Job %d (%s) is %s.\n", j.ID, j.Kind, j.State)
				return err
			})
		},
	}
}
