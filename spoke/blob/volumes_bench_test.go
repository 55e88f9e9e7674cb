package blob_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// BenchmarkVolumeBackup backs up a volume of random files (16 MiB each,
// $LIFEBOAT_BENCH_VOLUME_MIB in all, 256 by default) through a mover
// process (this test binary, on loopback) into a new kopia repository through
// the proxy to Azurite, uploads the same files as plain blobs with the same
// client, and backs the unchanged volume up again. It then restores the
// snapshot through a write-mode mover process into an empty directory, and
// downloads the plain blobs into another. It reports the throughputs, their
// ratios (volume/raw: 1 is as fast, below 1 slower), the second backup's
// time, the peaks of this process's live heap and resident set (the spoke
// side, with the in-process proxy) during the first backup and the restore,
// and the movers' peak resident sets.
func BenchmarkVolumeBackup(b *testing.B) {
	const fileSize = 16 << 20
	files := 16
	if v := os.Getenv("LIFEBOAT_BENCH_VOLUME_MIB"); v != "" {
		mib, err := strconv.Atoi(v)
		if err != nil || mib < 16 {
			b.Fatalf("LIFEBOAT_BENCH_VOLUME_MIB=%q: want a number of MiB, at least 16", v)
		}
		files = mib / 16
	}
	total := int64(files) * fileSize
	fileName := func(i int) string { return fmt.Sprintf("file-%03d", i) }
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
		f, err := os.Create(filepath.Join(src, fileName(i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(f, generator(byte(i), fileSize)); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	mover, moverRSS := startMoverProcess(b, volumes.Mover{Root: src, Token: "bench"})

	var volumeTime, rawTime, secondTime, restoreTime, downloadTime time.Duration
	var backupHeap, backupRSS, restoreHeap, restoreRSS, writerRSS uint64
	b.SetBytes(total)
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
		resetPeakRSS(b)
		stop := heapPeakProfiled(heapProfile("backup"))
		start := time.Now()
		first := backUp()
		volumeTime += time.Since(start)
		backupHeap = max(backupHeap, stop())
		backupRSS = max(backupRSS, spokePeakRSS(b))
		if first.Bytes != total {
			b.Fatalf("backed up %d bytes, want %d", first.Bytes, total)
		}

		start = time.Now()
		for i := range files {
			f, err := os.Open(filepath.Join(src, fileName(i)))
			if err != nil {
				b.Fatal(err)
			}
			_, err = client.Upload(ctx, fmt.Sprintf("raw/%s/%s", ns, fileName(i)), f)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		rawTime += time.Since(start)

		start = time.Now()
		second := backUp()
		secondTime += time.Since(start)
		if second.CachedFiles != int64(files) {
			b.Fatalf("the second backup reused %d files, want %d", second.CachedFiles, files)
		}

		dst := b.TempDir()
		writer, writerPeak := startMoverProcess(b, volumes.Mover{Root: dst, Token: "bench-write", Write: true})
		resetPeakRSS(b)
		stop = heapPeakProfiled(heapProfile("restore"))
		start = time.Now()
		unpacked, err := rep.Fill(ctx, first.ID, writer)
		restoreTime += time.Since(start)
		restoreHeap = max(restoreHeap, stop())
		restoreRSS = max(restoreRSS, spokePeakRSS(b))
		if err != nil {
			b.Fatal(err)
		}
		if unpacked.Bytes != total {
			b.Fatalf("restored %d bytes, want %d", unpacked.Bytes, total)
		}
		if err := writer.Done(ctx); err != nil {
			b.Fatal(err)
		}
		writerRSS = max(writerRSS, writerPeak())
		os.RemoveAll(dst)

		dst = b.TempDir()
		start = time.Now()
		for i := range files {
			r, err := client.Download(ctx, fmt.Sprintf("raw/%s/%s", ns, fileName(i)))
			if err != nil {
				b.Fatal(err)
			}
			f, err := os.Create(filepath.Join(dst, fileName(i)))
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(f, r)
			r.Close()
			if err == nil {
				err = f.Sync() // as the write-mode mover syncs
			}
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		downloadTime += time.Since(start)
		os.RemoveAll(dst)
		rep.Close(ctx)
		n++
	}
	if err := mover.Done(ctx); err != nil {
		b.Fatal(err)
	}
	readerRSS := moverRSS()
	mb := float64(total) / (1 << 20) * float64(n)
	mib := func(bytes uint64) float64 { return float64(bytes) / (1 << 20) }
	b.ReportMetric(mb/volumeTime.Seconds(), "volume-MiB/s")
	b.ReportMetric(mb/rawTime.Seconds(), "raw-MiB/s")
	b.ReportMetric(rawTime.Seconds()/volumeTime.Seconds(), "volume/raw")
	b.ReportMetric(secondTime.Seconds()/float64(n), "unchanged-s")
	b.ReportMetric(mb/restoreTime.Seconds(), "restore-MiB/s")
	b.ReportMetric(mb/downloadTime.Seconds(), "download-MiB/s")
	b.ReportMetric(downloadTime.Seconds()/restoreTime.Seconds(), "restore/download")
	b.ReportMetric(mib(backupHeap), "backup-heap-MiB")
	b.ReportMetric(mib(backupRSS), "backup-RSS-MiB")
	b.ReportMetric(mib(restoreHeap), "restore-heap-MiB")
	b.ReportMetric(mib(restoreRSS), "restore-RSS-MiB")
	b.ReportMetric(mib(readerRSS), "read-mover-RSS-MiB")
	b.ReportMetric(mib(writerRSS), "write-mover-RSS-MiB")
}

// heapProfile is the file of phase's heap profile near its peak in the
// folder $LIFEBOAT_BENCH_HEAP_PROFILES, or "" (no profile) without it.
func heapProfile(phase string) string {
	dir := os.Getenv("LIFEBOAT_BENCH_HEAP_PROFILES")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, phase+".heap.pprof")
}

// moverEnv makes this test binary a mover (see TestMain): the volume's path,
// and "write" for a write-mode mover.
const moverEnv = "LIFEBOAT_BENCH_MOVER"

// serveMover is the mover process: it serves $LIFEBOAT_BENCH_MOVER on a
// loopback port, which it prints, until the spoke says it is done; then it
// prints its peak resident set in bytes.
func serveMover() error {
	root, mode, _ := strings.Cut(os.Getenv(moverEnv), ",")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	m := volumes.Mover{Root: root, Token: os.Getenv(volumes.TokenEnv), Write: mode == "write"}
	if err := m.Serve(context.Background(), ln); err != nil {
		return err
	}
	peak, err := peakRSS()
	fmt.Println(peak)
	return err
}

// startMoverProcess runs m in a child process, as a pod would, so that its
// memory is its own. peak waits for the mover to end (after Done) and
// returns the peak resident set it reported (the kernel's maximum in the
// child's rusage would count this process's, which the child shared until
// it ran exec).
func startMoverProcess(b *testing.B, m volumes.Mover) (c *volumes.MoverClient, peak func() uint64) {
	mode := "read"
	if m.Write {
		mode = "write"
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), moverEnv+"="+m.Root+","+mode, volumes.TokenEnv+"="+m.Token)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewReader(out)
	addr, err := lines.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("mover process: %v", err)
	}
	waited := false
	wait := func() uint64 {
		waited = true
		line, rerr := lines.ReadString('\n')
		if err := cmd.Wait(); err != nil {
			b.Fatalf("mover process: %v", err)
		}
		peak, err := strconv.ParseUint(strings.TrimSpace(line), 10, 64)
		if err != nil {
			b.Fatalf("mover process: peak resident set %q: %v %v", line, err, rerr)
		}
		return peak
	}
	b.Cleanup(func() {
		if !waited {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	return &volumes.MoverClient{Base: "http://" + strings.TrimSpace(addr), Token: m.Token}, wait
}

// resetPeakRSS returns the free heap to the kernel and restarts this
// process's peak resident set count (VmHWM), so that a phase's peak is not
// what an earlier phase left.
func resetPeakRSS(b *testing.B) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatal(err)
	}
}

// peakRSS is this process's peak resident set (VmHWM) since it started
// or since resetPeakRSS.
func peakRSS() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kib << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// spokePeakRSS is peakRSS, for the benchmark's own process.
func spokePeakRSS(b *testing.B) uint64 {
	n, err := peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	return n
}
