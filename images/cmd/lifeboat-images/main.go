// Command lifeboat-images builds the image tarballs of `make images`:
//
//	lifeboat-images [-out bin/images] [-version 0.1.0-dev] [name ...]
//
// It runs from the repository root and prints "<ref> <digest>" per image.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lifeboat-dev/lifeboat/images"
)

func main() {
	out := flag.String("out", "bin/images", "directory for the image tarballs and digests.txt")
	version := flag.String("version", images.Version, "tag of the images")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: lifeboat-images [flags] [name ...]\n\nNames (default all):")
		for _, image := range images.All {
			fmt.Fprintf(flag.CommandLine.Output(), " %s", image.Name)
		}
		fmt.Fprintf(flag.CommandLine.Output(), "\nSOURCE_DATE_EPOCH, when set, dates every file and image.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	built, err := images.Build(ctx, images.Options{Out: *out, Names: flag.Args(), Version: *version})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifeboat-images:", err)
		os.Exit(1)
	}
	for _, image := range built {
		fmt.Println(image.Ref, image.Digest)
	}
	fmt.Fprintf(os.Stderr, "Wrote %d images and digests.txt to %s in %s.\n", len(built), *out, time.Since(start).Round(100*time.Millisecond))
}
