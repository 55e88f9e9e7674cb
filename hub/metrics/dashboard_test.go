package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
)

// The dashboard the hub chart ships queries only series the hub serves
// (histograms through their _bucket, _sum and _count), and each of its
// panels queries at least one.
func TestDashboardUsesOnlyServedMetrics(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "charts", "lifeboat-hub", "dashboards", "lifeboat.json"))
	g.Expect(err).NotTo(HaveOccurred())
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	g.Expect(json.Unmarshal(raw, &d)).To(Succeed())
	g.Expect(d.Panels).NotTo(BeEmpty())

	// What the hub serves, from the descriptors of what Register registers.
	served := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	descs := make(chan *prometheus.Desc, 64)
	for _, c := range []prometheus.Collector{&Collector{}, runDuration, runItems, runBytes, dispatchLatency} {
		c.Describe(descs)
	}
	close(descs)
	for d := range descs {
		n := fqName.FindStringSubmatch(d.String())[1]
		served[n] = true
		if n == RunDuration || n == DispatchLatency {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[n+suffix] = true
			}
		}
	}
	g.Expect(served).To(HaveKey(LocationClusterValid))

	name := regexp.MustCompile(`\blifeboat_[a-z_]+`)
	used := map[string]bool{}
	for _, p := range d.Panels {
		var inPanel []string
		for _, tg := range p.Targets {
			inPanel = append(inPanel, name.FindAllString(tg.Expr, -1)...)
		}
		g.Expect(inPanel).NotTo(BeEmpty(), "panel %q queries no Lifeboat series", p.Title)
		for _, n := range inPanel {
			g.Expect(served).To(HaveKey(n), "panel %q queries %s, which the hub does not serve", p.Title, n)
			used[strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum")] = true
		}
	}
	t.Logf("the dashboard's %d panels use %d of the hub's series", len(d.Panels), len(used))
}
