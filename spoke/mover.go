package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// moverMain is `lifeboat-spoke mover`: the data mover that a backup or a
// restore runs in a pod next to a PersistentVolumeClaim. It serves the
// mounted volume to the spoke over HTTP on the pod's IP, to whoever holds
// the token in $LIFEBOAT_MOVER_TOKEN, until the spoke says it is done.
func moverMain(args []string) error {
	fs := flag.NewFlagSet("mover", flag.ContinueOnError)
	mode := fs.String("mode", "read", "read: serve the volume's files; write: unpack a tar stream into it")
	path := fs.String("path", "/data", "where the volume is mounted")
	listen := fs.String("listen", ":8080", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "read" && *mode != "write" {
		return fmt.Errorf("--mode %q: want read or write", *mode)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	m := volumes.Mover{Root: *path, Token: os.Getenv(volumes.TokenEnv), Write: *mode == "write"}
	return m.Serve(ctx, ln)
}
