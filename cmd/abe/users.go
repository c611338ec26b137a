package main

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

func newUsersCmd(g *globalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage accounts: create, unlock, reset MFA, roles",
		Long: `Manage accounts from the command line, for instance to create the first
administrator. The database is database.url, or the local cluster when it
is empty, as for 'abe migrate'; it must be migrated.`,
		Example: `  abe users create --email admin@example.com --password - --role admin
  abe users unlock someone@example.com
  abe users mfa-reset someone@example.com`,
	}
	cmd.AddCommand(newUsersCreateCmd(g), newUsersUnlockCmd(g), newUsersMFAResetCmd(g), newUsersRolesCmd(g))
	return cmd
}

func newUsersRolesCmd(g *globalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "Give or take a role",
		Long: `Give a user a role or take it away. The change applies at once, to tokens
already issued, on every node.`,
		Example: `  abe users roles add admin@example.com admin
  abe users roles remove someone@example.com moderator`,
	}
	change := func(add bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			return withAuth(cmd, g, func(s *auth.Service) error {
				u, err := s.UserByEmail(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				verb := "Gave"
				if add {
					err = s.AssignRoleCLI(cmd.Context(), u.ID, args[1])
				} else {
					verb = "Took"
					err = s.RemoveRoleCLI(cmd.Context(), u.ID, args[1])
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s role %s %s %s.\n", verb, args[1], map[bool]string{true: "to", false: "from"}[add], u.Email)
				return err
			})
		}
	}
	const what = "the account's email and a role's name; `abe roles list` shows the roles"
	cmd.AddCommand(
		&cobra.Command{
			Use: "add EMAIL ROLE", Short: "Give a user a role",
			Long:    "Give the account with this email the role. The role must exist: declared in abe.yaml or made through the API (`abe roles list` shows them).",
			Example: "  abe users roles add admin@example.com admin",
			Args:    exactArgs(2, what), RunE: change(true),
		},
		&cobra.Command{
			Use: "remove EMAIL ROLE", Short: "Take a role from a user",
			Long:    "Take the role from the account with this email; its tokens lose the role at once.",
			Example: "  abe users roles remove someone@example.com moderator",
			Args:    exactArgs(2, what), RunE: change(false),
		},
	)
	return cmd
}

func newRolesCmd(g *globalOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "List roles and their permissions",
		Long: `Roles are declared in abe.yaml (roles:) or made through /api/admin/roles;
'abe users roles' gives them to accounts.`,
		Example: `  abe roles list
  abe users roles add admin@example.com admin`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List roles and their permissions",
		Long:    "List every role: those declared in abe.yaml (built-in) and those made through the API.",
		Example: "  abe roles list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd, g, func(s *auth.Service) error {
				w := cmd.OutOrStdout()
				for _, r := range s.Roles() {
					flags := ""
					if r.Builtin {
						flags += " built-in"
					}
					if r.Default {
						flags += " default"
					}
					fmt.Fprintf(w, "%-16s %s%s\n", r.Name, strings.Join(r.Permissions, ", "), flags)
				}
				return nil
			})
		},
	})
	return cmd
}

// withAuth opens the app's auth service for a command.
func withAuth(cmd *cobra.Command, g *globalOpts, fn func(s *auth.Service) error) error {
	return withApp(cmd, g, func(app *abe.App) error { return fn(app.Auth()) })
}

// withApp runs fn with the app of the configuration, its job workers off:
// a command must not pick up the deployment's jobs.
func withApp(cmd *cobra.Command, g *globalOpts, fn func(app *abe.App) error) error {
	cfg, err := schema.Load(g.config)
	if err != nil {
		return err
	}
	if cfg.Auth.Secret == "" {
		if cfg.Auth.Secret, err = devSecret(filepath.Join(cfg.Dir(), ".abe", "secret"), cmd.ErrOrStderr()); err != nil {
			return err
		}
	}
	stop, err := localDatabase(cmd.Context(), cfg, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer stop()
	app, err := abe.New(cmd.Context(), cfg, &abe.Options{Version: abeVersion(), Console: cmd.ErrOrStderr(), NoWorkers: true})
	if err != nil {
		return err
	}
	defer app.Close()
	return fn(app)
}

type usersCreateOpts struct {
	email, password, name string
	roles                 []string
	unverified            bool
}

func newUsersCreateCmd(g *globalOpts) *cobra.Command {
	o := &usersCreateOpts{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an account",
		Long: `Create an account with a verified email. Without --role it gets the roles
marked default in abe.yaml. The password must pass the password policy;
--password - reads it from standard input, keeping it out of the process
list and shell history.`,
		Example: `  abe users create --email admin@example.com --password - --role admin
  echo "$PASSWORD" | abe users create --email ann@example.com --password - --name Ann`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.email == "" || o.password == "" {
				return fmt.Errorf("users create needs --email and --password (use --password - to read it from standard input)")
			}
			if o.password == "-" {
				pw, err := readLine(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read the password from standard input: %w", err)
				}
				o.password = pw
			}
			return withAuth(cmd, g, func(s *auth.Service) error {
				var roles []string
				if len(o.roles) > 0 {
					roles = o.roles
				}
				u, err := s.CreateUser(cmd.Context(), auth.CreateUserOpts{Email: o.email, Password: o.password, Name: o.name, Roles: roles, Verified: !o.unverified})
				if err != nil {
					return fmt.Errorf("create user: %w", err)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Created %s (id %s, roles %s).\n", u.Email, u.ID, strings.Join(u.Roles, ", "))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&o.email, "email", "", "email address")
	cmd.Flags().StringVar(&o.password, "password", "", "password, or - to read it from standard input")
	cmd.Flags().StringVar(&o.name, "name", "", "display name")
	cmd.Flags().StringArrayVar(&o.roles, "role", nil, "role to give (repeat for several); default: the default roles")
	cmd.Flags().BoolVar(&o.unverified, "unverified", false, "leave the email unverified")
	return cmd
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newUsersUnlockCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "unlock EMAIL",
		Short:   "Unlock an account locked by failed logins",
		Example: `  abe users unlock someone@example.com`,
		Args:    exactArgs(1, "the account's email"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAuth(cmd, g, func(s *auth.Service) error {
				u, err := s.UserByEmail(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("unlock %s: %w", args[0], err)
				}
				if err := s.UnlockUser(cmd.Context(), u.ID, "cli"); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Unlocked %s.\n", u.Email)
				return err
			})
		},
	}
}

func newUsersMFAResetCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "mfa-reset EMAIL",
		Short: "Turn off two-factor authentication for a user who lost the device",
		Long: `Removes the user's TOTP secret and recovery codes and ends their sessions,
so they log in with the password alone and can enrol a new device. It is
recorded as an mfa_disabled security event. Check who is asking first: this
is what an attacker holding the password would want.`,
		Example: `  abe users mfa-reset someone@example.com`,
		Args:    exactArgs(1, "the account's email"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAuth(cmd, g, func(s *auth.Service) error {
				u, err := s.UserByEmail(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("reset MFA of %s: %w", args[0], err)
				}
				if err := s.ResetMFA(cmd.Context(), u.ID, "cli"); err != nil {
					return fmt.Errorf("reset MFA of %s: %w", u.Email, err)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Two-factor authentication is off for %s; their sessions have ended.\n", u.Email)
				return err
			})
		},
	}
}
