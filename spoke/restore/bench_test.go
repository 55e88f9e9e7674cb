package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// benchObjects makes n objects of namespace ns, a quarter each of
// ConfigMaps, Secrets, Services and Deployments, as the API server returns
// them (uid, resourceVersion, managedFields, status). The Services are
// headless: the fleet's service CIDR is a /24, too small for thousands of
// cluster IPs.
func benchObjects(ns string, n int) []archive.Item {
	items := make([]archive.Item, 0, n)
	meta := func(name string, i int) map[string]any {
		return map[string]any{
			"name": name, "namespace": ns, "uid": fmt.Sprintf("00000000-0000-0000-0000-%012d", i), "resourceVersion": fmt.Sprint(1000 + i),
			"creationTimestamp": "2025-01-01T00:00:00Z", "labels": map[string]any{"app": fmt.Sprintf("app-%d", i%50), "tier": "bench"},
			"annotations": map[string]any{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1"}`},
			"managedFields": []any{map[string]any{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2025-01-01T00:00:00Z",
				"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:metadata": map[string]any{"f:labels": map[string]any{}}}}},
		}
	}
	add := func(r res, name string, obj map[string]any) {
		b, err := json.Marshal(obj)
		if err != nil {
			panic(err)
		}
		items = append(items, archive.Item{Group: r.group, Version: r.version, Resource: r.resource, Kind: r.kind, Namespace: ns, Name: name, Object: b})
	}
	for i := range n {
		switch i % 4 {
		case 0:
			name := fmt.Sprintf("config-%d", i)
			add(rConfigMaps, name, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, i),
				"data": map[string]any{"app.properties": fmt.Sprintf("mode=production\nindex=%d\nfeature.x=true\n", i), "LOG_LEVEL": "info"}})
		case 1:
			name := fmt.Sprintf("secret-%d", i)
			add(rSecrets, name, map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, i), "type": "Opaque",
				"data": map[string]any{"username": "YWRtaW4=", "password": "czNjcjN0LXBhc3N3b3JkLWZvci1iZW5jaG1hcms="}})
		case 2:
			name := fmt.Sprintf("svc-%d", i)
			add(rServices, name, map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": meta(name, i),
				"spec": map[string]any{"clusterIP": "None", "clusterIPs": []any{"None"}, "selector": map[string]any{"app": fmt.Sprintf("app-%d", i%50)},
					"ports": []any{map[string]any{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}}, "type": "ClusterIP",
					"sessionAffinity": "None", "ipFamilies": []any{"IPv4"}, "ipFamilyPolicy": "SingleStack"},
				"status": map[string]any{"loadBalancer": map[string]any{}}})
		case 3:
			name := fmt.Sprintf("deploy-%d", i)
			labels := map[string]any{"app": name}
			add(rDeployments, name, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, i),
				"spec": map[string]any{"replicas": 1, "selector": map[string]any{"matchLabels": labels},
					"template": map[string]any{"metadata": map[string]any{"labels": labels}, "spec": map[string]any{
						"containers": []any{map[string]any{"name": "app", "image": "registry.example.com/app:1.2.3",
							"ports":     []any{map[string]any{"containerPort": 8080}},
							"env":       []any{map[string]any{"name": "MODE", "value": "production"}},
							"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}}}}}},
				"status": map[string]any{"observedGeneration": 1, "replicas": 1, "readyReplicas": 1}})
		}
	}
	return items
}

// createBody is the baseline's version of an item: what a person would
// create, namespace moved, with nothing the API server refuses on create.
func createBody(it archive.Item, namespace string) []byte {
	obj, err := decode(it.Object)
	if err != nil {
		panic(err)
	}
	meta := mapOf(obj, "metadata")
	meta["namespace"] = namespace
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields"} {
		delete(meta, f)
	}
	delete(obj, "status")
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkRestore10k restores 10,000 objects from a backup in a DirStore
// into a fresh namespace of the package's kube-apiserver and, in the same
// run, creates the same objects with a raw create loop (POST of ready-made
// JSON) with the same client QPS, Burst and parallelism. It reports
// restored items/s, the baseline's items/s and their ratio; the restore's
// time includes verifying and spooling the backup.
//
//	go test ./spoke/restore -run '^$' -bench Restore10k -benchtime 1x
//
// LIFEBOAT_BENCH_WORKERS sets the parallelism of both (default 16, as Run's).
func BenchmarkRestore10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	items := benchObjects("bench-src", n)
	store, dir := writeBackup(b, items)
	workers := 16
	if w, err := strconv.Atoi(os.Getenv("LIFEBOAT_BENCH_WORKERS")); err == nil {
		workers = w
	}
	opts := Options{Config: cp.Config, Workers: workers}

	// How long verifying and spooling take alone, and the spool's size.
	rd, err := newRun(Options{Config: cp.Config, Reader: openBackup(b, store, dir), TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := rd.read(ctx); err != nil {
		b.Fatal(err)
	}
	readTime := time.Since(start)
	spoolBytes := dirSize(rd.spool.dir)
	rd.close()

	// baseline creates the objects in a fresh namespace with a bare loop.
	baseline := func(name string) float64 {
		bodies := make([][]byte, len(items))
		for j, it := range items {
			bodies[j] = createBody(it, name)
		}
		return baselineCreate(b, ctx, name, items, bodies, workers, 1000, 2000)
	}

	for i := 0; b.Loop(); i++ {
		// The baseline runs before and after the restore, so that neither
		// gains from the order (etcd grows, other work on the machine comes
		// and goes); its rate is over both runs.
		stamp := time.Now().Unix()
		rawBefore, rawAfter := fmt.Sprintf("bench-raw-%d-%d-a", stamp, i), fmt.Sprintf("bench-raw-%d-%d-b", stamp, i)
		before := baseline(rawBefore)

		// Restore, mapped into a fresh namespace.
		restoreNS := fmt.Sprintf("bench-restore-%d-%d", stamp, i)
		r := openBackup(b, store, dir)
		var peakHeap atomic.Uint64
		opts.Reader = r
		opts.NamespaceMapping = backupv1alpha1.NamespaceMapping{"bench-src": backupv1alpha1.NamespaceName(restoreNS)}
		opts.Progress = func(Result) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
		}
		opts.ProgressInterval = 100 * time.Millisecond
		start := time.Now()
		res, err := Run(ctx, opts)
		elapsed := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if res.Restored != n || res.Failed != 0 {
			b.Fatalf("restored %d of %d, %d failed", res.Restored, n, res.Failed)
		}
		after := baseline(rawAfter)
		baselineRate := 2 / (1/before + 1/after)
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "items/s")
		b.ReportMetric(baselineRate, "baseline-items/s")
		b.ReportMetric(rate/baselineRate, "ratio")
		b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(readTime.Milliseconds()), "read-ms")
		b.Logf("%d workers: restored %d objects in %v (%.0f items/s); baseline %.0f items/s (%.0f before, %.0f after); ratio %.2f; peak heap in use %.1f MiB; "+
			"verifying and spooling alone took %v, spool %.1f MiB for %.1f MiB of objects",
			workers, n, elapsed.Round(time.Millisecond), rate, baselineRate, before, after, rate/baselineRate, float64(peakHeap.Load())/(1<<20),
			readTime.Round(time.Millisecond), float64(spoolBytes)/(1<<20), float64(res.Bytes)/(1<<20))

		b.StopTimer()
		for _, ns := range []string{rawBefore, restoreNS, rawAfter} {
			_ = cpDelete(ctx, ns)
		}
		b.StartTimer()
	}
}

// baselineCreate creates the objects with workers goroutines through the
// same kind of client as a restore and returns items/s, namespace included.
func baselineCreate(b *testing.B, ctx context.Context, namespace string, items []archive.Item, bodies [][]byte, workers int, qps float32, burst int) float64 {
	rc, _, err := restClient(cp.Config, qps, burst, acceptAny)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	body := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, namespace)
	if _, err := result(rc.Post().AbsPath("/api/v1/namespaces").Body(body).Do(ctx)); err != nil {
		b.Fatal(err)
	}
	next := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(next)
		for j := range items {
			select {
			case next <- j:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	var mu sync.Mutex
	for range workers {
		g.Go(func() error {
			for j := range next {
				ref := items[j].Ref()
				if _, err := result(rc.Post().AbsPath(collectionPath(ref, namespace)).Body(bodies[j]).Do(gctx)); err != nil {
					mu.Lock()
					defer mu.Unlock()
					return fmt.Errorf("creating %s: %w", ref, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return float64(len(items)) / time.Since(start).Seconds()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func cpDelete(ctx context.Context, namespace string) error {
	rc, _, err := restClient(cp.Config, 100, 200, acceptJSON)
	if err != nil {
		return err
	}
	_, err = result(rc.Delete().AbsPath("/api/v1/namespaces/" + namespace).Do(ctx))
	return err
}
