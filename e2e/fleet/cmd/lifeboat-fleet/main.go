// Command lifeboat-fleet starts Lifeboat's local test fleet of real parts.
//
//	lifeboat-fleet demo   start the fleet, prove it works, print what happened, stop
//	lifeboat-fleet up     start the fleet and keep it running until Ctrl-C
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

func main() {
	spokes := flag.Int("spokes", 2, "number of spoke clusters")
	dir := flag.String("dir", "", "directory for the fleet's files (default: a new temporary directory)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: lifeboat-fleet [flags] demo|up\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (flag.Arg(0) != "demo" && flag.Arg(0) != "up") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *spokes, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "lifeboat-fleet:", err)
		os.Exit(1)
	}
}

func run(mode string, spokes int, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	say("Starting the local fleet: hub with lifeboat-hub, garden, %d spokes joined by OCM registration agents with work agents, Azurite and the Entra ID stand-in ...", spokes)
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	f, err := fleet.Start(startCtx, fleet.Options{
		Spokes: spokes, Dir: dir, KeepDir: mode == "up", Pods: true, HubManager: true,
		Log: func(format string, args ...any) { say("  "+format, args...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		say("Stopping the fleet ...")
		f.Stop()
		say("Stopped: every process ended.")
	}()

	if err := demo(ctx, f); err != nil {
		return err
	}
	printFleet(f)
	if mode == "up" {
		say("\nThe fleet runs until Ctrl-C. Its files are in %s.", f.Dir)
		<-ctx.Done()
	}
	return nil
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }
