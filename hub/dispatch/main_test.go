package dispatch_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// f is a hub with one spoke and its real OCM work agent, shared by the tests.
var f *fleet.Fleet

func TestMain(m *testing.M) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var err error
		f, err = fleet.Start(ctx, fleet.Options{Spokes: 1, NoGarden: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			return 1
		}
		defer f.Stop()
		return m.Run()
	}())
}
