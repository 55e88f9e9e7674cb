package blob_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// BenchmarkVolumeBackup backs up a volume of random files through a mover
// (on loopback) into a new kopia repository through the proxy to Azurite,
// uploads the same files as plain blobs with the same client, and backs the
// unchanged volume up again. It reports both throughputs, their ratio
// (volume/raw: 1 is as fast, below 1 slower), the second backup's time and
// the live heap's peak during the first backup.
func BenchmarkVolumeBackup(b *testing.B) {
	const files, fileSize = 16, 16 << 20
	ctx := context.Background()
	container := newContainer(b, "volbench")
	id := newIdentity(b, true)
	id.grant(b, container, blobproxy.StorageBlobDataContributor)
	client, err := blob.New(id.config(container, "bench"), testOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	src := b.TempDir()
	for i := range files {
		f, err := os.Create(filepath.Join(src, fmt.Sprintf("file-%02d", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(f, generator(byte(i), fileSize)); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	mover := startMover(b, ctx, volumes.Mover{Root: src, Token: "bench"}, nil)

	var volumeTime, rawTime, secondTime time.Duration
	var peak uint64
	b.SetBytes(files * fileSize)
	n := 0
	for b.Loop() {
		ns := fmt.Sprintf("bench-%d", n)
		rep, err := volumes.Open(ctx, client, "spoke-1", ns, "bench")
		if err != nil {
			b.Fatal(err)
		}
		source := volumes.Source("spoke-1", ns, "data")
		backUp := func() volumes.Snapshot {
			root, err := mover.Root(ctx)
			if err != nil {
				b.Fatal(err)
			}
			snap, err := rep.Backup(ctx, source, root, nil)
			if err != nil {
				b.Fatal(err)
			}
			return snap
		}
		stop := heapPeak()
		start := time.Now()
		first := backUp()
		volumeTime += time.Since(start)
		peak = max(peak, stop())
		if first.Bytes != files*fileSize {
			b.Fatalf("backed up %d bytes, want %d", first.Bytes, files*fileSize)
		}

		start = time.Now()
		for i := range files {
			f, err := os.Open(filepath.Join(src, fmt.Sprintf("file-%02d", i)))
			if err != nil {
				b.Fatal(err)
			}
			_, err = client.Upload(ctx, fmt.Sprintf("raw/%s/file-%02d", ns, i), f)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		rawTime += time.Since(start)

		start = time.Now()
		second := backUp()
		secondTime += time.Since(start)
		if second.CachedFiles != files {
			b.Fatalf("the second backup reused %d files, want %d", second.CachedFiles, files)
		}
		rep.Close(ctx)
		n++
	}
	mb := float64(files*fileSize) / (1 << 20) * float64(n)
	b.ReportMetric(mb/volumeTime.Seconds(), "volume-MiB/s")
	b.ReportMetric(mb/rawTime.Seconds(), "raw-MiB/s")
	b.ReportMetric(rawTime.Seconds()/volumeTime.Seconds(), "volume/raw")
	b.ReportMetric(secondTime.Seconds()/float64(n), "unchanged-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
