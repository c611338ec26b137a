// Command abe runs an abe backend: a REST API, realtime and auth over
// Postgres, declared in one YAML file. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/abe-stack/abe/schema"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

// printError writes err for people: every problem of a config file on its
// own lines, anything else as one message. Never a stack trace.
func printError(w io.Writer, err error) {
	var diags schema.Diagnostics
	if errors.As(err, &diags) {
		noun := "problems"
		if len(diags) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(w, "abe: the configuration has %d %s:\n%s\n", len(diags), noun, diags.Error())
		return
	}
	fmt.Fprintf(w, "abe: %v\n", err)
}
