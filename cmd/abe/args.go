package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// exactArgs accepts n arguments, and otherwise says which ones the command
// takes, what they are, and how a call looks (its Example).
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		names := strings.Join(strings.Fields(cmd.Use)[1:], " ")
		noun := "arguments"
		if n == 1 {
			noun = "argument"
		}
		msg := fmt.Sprintf("%s takes %d %s, %s (%s), not %d", cmd.CommandPath(), n, noun, names, what, len(args))
		if ex := strings.TrimRight(cmd.Example, "\n"); ex != "" {
			msg += "\nfor example:\n" + ex
		}
		return fmt.Errorf("%s", msg)
	}
}
