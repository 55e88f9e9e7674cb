// Package e2e holds Lifeboat's end-to-end suites; they run against the local
// fleet of real parts started once for the package.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// testFleet is shared by every test in this package.
var testFleet *fleet.Fleet

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Starting takes about a minute; the rest is for building the nodes'
	// images, which on a cold Go build cache, beside `go test` compiling
	// every other package, took more than 5 minutes (make test builds the
	// heaviest, `make images`, first).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var err error
	testFleet, err = fleet.Start(ctx, fleet.Options{
		// Discovery onboards spoke-1 and spoke-2 at start; spoke-3's Shoot is
		// created by TestDiscoveryOnboardsShoots.
		Spokes:     3,
		LateSpokes: 1,
		HubManager: true,
		Discovery:  true,
		Pods:       true,
		KeepDir:    os.Getenv("LIFEBOAT_KEEP_FLEET") != "",
		Log: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "fleet: "+format+"\n", args...)
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the fleet: %v\n", err)
		return 1
	}
	defer testFleet.Stop()
	return m.Run()
}

// onboarded are the spokes discovery onboards at start (spoke-1 and spoke-2).
func onboarded() []*fleet.Spoke { return testFleet.Spokes[:2] }
