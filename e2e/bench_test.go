package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkSpokeBackupMemory backs up namespaces of 10,000 and 100,000
// ConfigMaps with the lifeboat-spoke process and reports its peak RSS
// (VmHWM, the process restarted before each size) and items/s, next to a raw
// baseline: a paginated LIST of the same objects from this process, each
// serialized to io.Discard.
//
//	go test -run '^$' -bench BenchmarkSpokeBackupMemory -benchtime=1x -timeout 60m ./e2e/
func BenchmarkSpokeBackupMemory(b *testing.B) {
	g := NewWithT(b)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[0]
	validTarget(g, ctx, "bench-backups", "bench-backups")
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			g := NewWithT(b)
			ns := fmt.Sprintf("bench-%d", n)
			ensureNamespace(g, ctx, spoke.Client, ns, nil)
			createConfigMaps(g, ctx, spoke.Client, ns, n, 0)

			start := time.Now()
			listed, enc := 0, json.NewEncoder(io.Discard)
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMapList"})
			for cont := ""; ; {
				g.Expect(spoke.Client.List(ctx, list, client.InNamespace(ns), client.Limit(500), client.Continue(cont))).To(Succeed())
				for i := range list.Items {
					g.Expect(enc.Encode(list.Items[i].Object)).To(Succeed())
				}
				listed += len(list.Items)
				if cont = list.GetContinue(); cont == "" {
					break
				}
			}
			rawRate := float64(listed) / time.Since(start).Seconds()

			g.Expect(testFleet.RestartSpokeManager(ctx, spoke)).To(Succeed())
			// A first backup of an empty namespace warms the new manager up (its
			// caches, its storage token) without raising its peak memory.
			ensureNamespace(g, ctx, spoke.Client, "bench-warmup", nil)
			warm := appBackup(fmt.Sprintf("bench-warmup-%d", n), "bench-backups", "bench-warmup")
			g.Expect(spoke.Client.Create(ctx, warm)).To(Succeed())
			g.Expect(waitFinished(g, ctx, spoke.Client, warm, backupPhase, 5*time.Minute)).To(Equal("Success"))
			b.ResetTimer()
			var items int64
			start = time.Now()
			for i := 0; i < b.N; i++ {
				bk := appBackup(fmt.Sprintf("bench-%d-%d", n, i), "bench-backups", ns)
				g.Expect(spoke.Client.Create(ctx, bk)).To(Succeed())
				g.Expect(waitFinished(g, ctx, spoke.Client, bk, backupPhase, 30*time.Minute)).To(Equal("Success"))
				items += bk.Status.Progress.ItemsDone
			}
			elapsed := time.Since(start)
			b.StopTimer()
			rate := float64(items) / elapsed.Seconds()
			pid, err := testFleet.SpokeManagerPid(ctx, spoke)
			g.Expect(err).NotTo(HaveOccurred())
			hwm := peakRSS(g, pid)
			b.ReportMetric(rate, "items/s")
			b.ReportMetric(rawRate, "raw-list-items/s")
			b.ReportMetric(rate/rawRate, "ratio")
			b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
		})
	}
}

// peakRSS is a process's VmHWM in KiB.
func peakRSS(g Gomega, pid int) int64 {
	kib, err := statusKiB(pid, "VmHWM:")
	g.Expect(err).NotTo(HaveOccurred())
	return kib
}
