package blob_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

var _ archive.Store = (*blob.Client)(nil)

// newClient is a Contributor's client of a new container, under prefix.
func newClient(t testing.TB, prefix string, opts ...blob.Option) (*blob.Client, string) {
	t.Helper()
	container := newContainer(t, "ops")
	id := newIdentity(t, true)
	id.grant(t, container, blobproxy.StorageBlobDataContributor)
	c, err := blob.New(id.config(container, prefix), testOptions(opts...)...)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return c, container
}

func get(ctx context.Context, s archive.Store, name string) ([]byte, error) {
	rc, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestOperations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := NewWithT(t)
	c, container := newClient(t, "lb/dev")

	files := map[string]string{
		"backups/c1/b1/backup.json":      `{"id":"b1"}`,
		"backups/c1/b1/resources.tar":    "resources of b1",
		"backups/c1/b10/backup.json":     `{"id":"b10"}`,
		"backups/c2/b2/backup.json":      `{"id":"b2"}`,
		"tombstones/c1/b9":               "",
		"backups/c1/b1/with space+plus?": "odd name",
	}
	for name, body := range files {
		n, err := c.Put(ctx, name, strings.NewReader(body))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(int64(len(body))))
	}
	// Everything lives under the target's prefix.
	for _, b := range blobsIn(t, container) {
		g.Expect(b).To(HavePrefix("lb/dev/"))
	}

	got, err := get(ctx, c, "backups/c1/b1/resources.tar")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal("resources of b1"))
	got, err = get(ctx, c, "backups/c1/b1/with space+plus?")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal("odd name"))

	names, err := c.List(ctx, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(HaveLen(len(files)))
	names, err = c.List(ctx, "backups/c1/b1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(Equal([]string{"backups/c1/b1/backup.json", "backups/c1/b1/resources.tar", "backups/c1/b1/with space+plus?", "backups/c1/b10/backup.json"}))
	names, err = c.List(ctx, "backups/c1/b1/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(HaveLen(3))

	ok, err := c.Exists(ctx, "tombstones/c1/b9")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	ok, err = c.Exists(ctx, "tombstones/c1/b8")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse())

	_, err = c.Get(ctx, "backups/c1/b8/backup.json")
	g.Expect(errors.Is(err, archive.ErrNotFound)).To(BeTrue(), "error: %v", err)
	// One line that says what failed and what the service answered, not
	// the SDK's dump of the request and the response.
	g.Expect(err).To(MatchError("downloading backups/c1/b8/backup.json: the storage service answered HTTP 404 Not Found (BlobNotFound)"))
	var re *azcore.ResponseError
	g.Expect(errors.As(err, &re)).To(BeTrue(), "the detail stays behind the message")

	g.Expect(c.Delete(ctx, "tombstones/c1/b9")).To(Succeed())
	g.Expect(c.Delete(ctx, "tombstones/c1/b9")).To(Succeed(), "deleting what is gone succeeds")

	// A folder, not a name prefix: b1 goes, b10 stays.
	n, err := c.DeletePrefix(ctx, "backups/c1/b1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(3))
	names, err = c.List(ctx, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(Equal([]string{"backups/c1/b10/backup.json", "backups/c2/b2/backup.json"}))
	_, err = c.DeletePrefix(ctx, "")
	g.Expect(errors.Is(err, blob.ErrInvalidName)).To(BeTrue(), "error: %v", err)

	for _, bad := range []string{"", "/abs", "a/../b", "..", "a//b", "a/./b", "dir/"} {
		_, err := c.Put(ctx, bad, strings.NewReader("x"))
		g.Expect(errors.Is(err, blob.ErrInvalidName)).To(BeTrue(), "name %q: %v", bad, err)
	}
	_, err = c.List(ctx, "../other")
	g.Expect(errors.Is(err, blob.ErrInvalidName)).To(BeTrue(), "error: %v", err)
}

// List and DeletePrefix page through more blobs than one listing page holds.
func TestPaging(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := NewWithT(t)
	c, container := newClient(t, "")
	blob.SetPageSize(c, 10)
	const count = 25
	for i := range count {
		_, err := c.Put(ctx, fmt.Sprintf("many/%03d", i), strings.NewReader("x"))
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err := c.Put(ctx, "other", strings.NewReader("x"))
	g.Expect(err).NotTo(HaveOccurred())
	names, err := c.List(ctx, "many/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(HaveLen(count))
	g.Expect(names[count-1]).To(Equal(fmt.Sprintf("many/%03d", count-1)))
	n, err := c.DeletePrefix(ctx, "many")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(count))
	g.Expect(blobsIn(t, container)).To(Equal([]string{"other"}))
}

// generator is a deterministic stream of pseudo-random bytes that never exists in memory as a whole.
func generator(seed byte, size int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), size)
}

// heapPeak samples the live heap until stop is called, and returns its peak.
func heapPeak() (stop func() uint64) { return heapPeakProfiled("") }

// heapPeakProfiled is heapPeak that also writes heap profiles if profile is
// not empty: to profile+".start" at once, and to profile each time the heap
// has grown 16 MiB beyond the last profile's peak (the last one written is
// the closest to the peak; pprof -base the start one shows what was
// allocated in between).
func heapPeakProfiled(profile string) (stop func() uint64) {
	var peak atomic.Uint64
	var profiled uint64
	writeProfile := func(name string) {
		if f, err := os.Create(name); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if profile != "" {
		writeProfile(profile + ".start")
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			if profile != "" && ms.HeapAlloc > profiled+16<<20 {
				profiled = ms.HeapAlloc
				writeProfile(profile)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

func TestUploadStreamsLargeBlob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := NewWithT(t)
	const size = 40 << 20
	c, _ := newClient(t, "big", blob.WithBlockSize(4<<20), blob.WithConcurrency(3))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapPeak()
	sum := sha256.New()
	n, err := c.Upload(ctx, "backups/c1/b1/resources.tar.zst", io.TeeReader(generator(7, size), sum))
	peak := stop()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(int64(size)))
	growth := int64(peak) - int64(before.HeapAlloc)
	t.Logf("uploaded %d MiB; heap before %.1f MiB, peak %.1f MiB (growth %.1f MiB)",
		size>>20, float64(before.HeapAlloc)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
	g.Expect(growth).To(BeNumerically("<", size/4), "the upload must stream, not hold the blob in memory")

	rc, err := c.Download(ctx, "backups/c1/b1/resources.tar.zst")
	g.Expect(err).NotTo(HaveOccurred())
	defer rc.Close()
	down := sha256.New()
	m, err := io.Copy(down, rc)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m).To(Equal(int64(size)))
	g.Expect(down.Sum(nil)).To(Equal(sum.Sum(nil)), "downloaded bytes differ from uploaded ones")
}
