package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// benchItems returns n Deployment-like objects of 2-3 KB with varied names,
// labels, images and a last-applied annotation, as a real backup holds.
func benchItems(n int) []Item {
	rng := rand.New(rand.NewPCG(3, 4))
	word := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyz"
		b := make([]byte, 4+rng.IntN(8))
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	items := make([]Item, n)
	for i := range items {
		ref := named(deployments, "team-"+word(), fmt.Sprintf("%s-%s-%d", word(), word(), i))
		env := make([]map[string]any, 8)
		for j := range env {
			env[j] = map[string]any{"name": strings.ToUpper(word()), "value": fmt.Sprintf("%s-%x", word(), rng.Uint64())}
		}
		spec := map[string]any{
			"replicas": rng.IntN(5),
			"selector": map[string]any{"matchLabels": map[string]any{"app": ref.Name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": ref.Name, "tier": word()}},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": word(), "image": fmt.Sprintf("registry.example.com/%s/%s:%d.%d.%d", word(), word(), rng.IntN(9), rng.IntN(20), rng.IntN(99)),
					"env": env, "resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}},
				}}},
			},
		}
		obj := map[string]any{"spec": spec, "annotations": map[string]any{"kubectl.kubernetes.io/last-applied-configuration": fmt.Sprintf("%v", spec)}}
		items[i] = itemOf(ref, obj)
	}
	return items
}

// BenchmarkWrite writes the same objects as a Lifeboat backup and, as a
// baseline, as a plain tar.zst with the same zstd settings, both to a
// DirStore. MB/s counts object bytes; ratio is Lifeboat's speed over the
// baseline's.
func BenchmarkWrite(b *testing.B) {
	for _, n := range []int{2000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			items := benchItems(n)
			var size int64
			for _, it := range items {
				size += int64(len(it.Object))
			}
			ctx := context.Background()
			store := NewDirStore(b.TempDir())
			var lifeboat, raw time.Duration
			var stored, rawStored int64
			i := 0
			for b.Loop() {
				dir := fmt.Sprintf("lifeboat/v1/backups/spoke-1/b%d", i)
				start := time.Now()
				w, err := NewWriter(ctx, store, dir, testMeta)
				if err != nil {
					b.Fatal(err)
				}
				for _, it := range items {
					if err := w.Add(it); err != nil {
						b.Fatal(err)
					}
				}
				m, err := w.Close(ctx)
				if err != nil {
					b.Fatal(err)
				}
				lifeboat += time.Since(start)
				stored = m.Files[ResourcesFile].Size + m.Files[ResourceListFile].Size + m.Files[LogFile].Size

				start = time.Now()
				rawStored = writeRaw(b, store, fmt.Sprintf("raw/%d.tar.zst", i), items)
				raw += time.Since(start)

				b.StopTimer()
				for _, name := range []string{ManifestFile, ResourcesFile, ResourceListFile, LogFile} {
					store.Delete(ctx, dir+"/"+name)
				}
				store.Delete(ctx, fmt.Sprintf("raw/%d.tar.zst", i))
				b.StartTimer()
				i++
			}
			lifeboatMBs := float64(size) * float64(i) / lifeboat.Seconds() / 1e6
			rawMBs := float64(size) * float64(i) / raw.Seconds() / 1e6
			b.ReportMetric(lifeboatMBs, "MB/s")
			b.ReportMetric(rawMBs, "raw-MB/s")
			b.ReportMetric(lifeboatMBs/rawMBs, "ratio")
			b.ReportMetric(float64(size)/float64(stored), "compression")
			b.ReportMetric(float64(size)/float64(rawStored), "raw-compression")
		})
	}
}

// writeRaw streams items as a plain tar.zst through a pipe into the store.
func writeRaw(b *testing.B, store Store, name string, items []Item) int64 {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var n int64
	go func() {
		var err error
		n, err = store.Put(context.Background(), name, pr)
		pr.CloseWithError(err)
		done <- err
	}()
	zw, err := zstd.NewWriter(pw, encoderOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, it := range items {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: it.Ref().entryName(), Size: int64(len(it.Object)), Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(it.Object); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return n
}
