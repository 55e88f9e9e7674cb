package e2e

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/cli"
)

// `lifeboat dashboard`, run with the fleet admin's kubeconfig, loads in a
// real browser (headless Chromium): it shows both spokes and the location's
// validity on each; the test writes a screenshot of it.
func TestDashboardInABrowser(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spokes := onboarded()
	const team = "team-dashboard"
	loc, _ := validTeamLocation(g, ctx, team, "dashboard", spokes...)

	out, errOut := &fleet.LockedBuffer{}, &fleet.LockedBuffer{}
	dashCtx, stop := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		done <- (&cli.App{Out: out, Err: errOut}).Run(dashCtx, []string{"--kubeconfig", testFleet.Hub.AdminKubeconfig,
			"dashboard", "-n", team, "--address", "127.0.0.1:0"})
	}()
	defer func() {
		stop()
		g.Expect(<-done).To(Equal(cli.ExitOK), "dashboard: %s", errOut)
	}()
	url := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`)
	g.Eventually(func() string { return url.FindString(out.String()) }, 30*time.Second, 100*time.Millisecond).ShouldNot(BeEmpty(), "stderr: %s", errOut)

	shot := filepath.Join(artifacts(t), "lifeboat-dashboard.png")
	column := team + "/" + loc.Name
	var dom string
	g.Eventually(func(g Gomega) {
		var err error
		dom, err = fleet.Browse(ctx, url.FindString(out.String()), shot, 1400, 900)
		g.Expect(err).NotTo(HaveOccurred())
		// Both spokes, the location as a column, Valid in both cells.
		g.Expect(dom).To(ContainSubstring(`<th class="loc">` + column + `</th>`))
		for _, s := range spokes {
			g.Expect(dom).To(MatchRegexp(`<td class="name">` + regexp.QuoteMeta(s.Name) + `</td>(?s:.)*?<td class="cell ok">Valid</td>`))
		}
		g.Expect(strings.Count(dom, `<td class="cell ok">Valid</td>`)).To(BeNumerically(">=", len(spokes)))
	}, time.Minute, 2*time.Second).Should(Succeed())

	f, err := os.Open(shot)
	g.Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	img, err := png.Decode(f)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(img.Bounds()).To(Equal(image.Rect(0, 0, 1400, 900)))
	g.Expect(colours(img)).To(BeNumerically(">", 8), "the screenshot shows a rendered page, not a blank one")
	t.Logf("screenshot of the dashboard: %s", shot)
}

// artifacts is where tests leave files for people to look at:
// $LIFEBOAT_ARTIFACTS, else lifeboat-artifacts in the temporary directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("LIFEBOAT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lifeboat-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// colours counts the distinct colours of img (up to 1,000).
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(seen) < 1000; y += 3 {
		for x := b.Min.X; x < b.Max.X && len(seen) < 1000; x += 3 {
			r, gr, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, gr, bl, a}] = true
		}
	}
	return len(seen)
}
