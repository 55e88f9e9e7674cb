// Command lifeboat shows and drives the Lifeboat fleet from the hub. Built as
// kubectl-lifeboat and put on PATH, it is the kubectl plugin `kubectl lifeboat`.
// See docs/cli.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeboat-dev/lifeboat/hub/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
