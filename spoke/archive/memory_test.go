package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"testing"

	"filippo.io/age"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/internal/memtest"
)

// streamedItem makes the i-th of many ~4 KiB items on the fly, so that the
// test itself holds one at a time. The payload is random hex: about half of
// it compresses away, like real objects.
func streamedItem(rng *rand.Rand, i int) Item {
	payload := make([]byte, 1800)
	for j := range payload {
		payload[j] = byte(rng.Uint32())
	}
	ref := named(configMaps, fmt.Sprintf("team-%d", i%40), fmt.Sprintf("settings-%06d", i))
	return itemOf(ref, map[string]any{"payload": fmt.Sprintf("%x", payload)})
}

// TestMemoryStaysBounded writes and reads 20,000 items (about 80 MB of JSON)
// and checks that the heap grows by a small fraction of that: nothing holds
// the backup, the resource list or the log in memory, encrypted or not.
func TestMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 80 MB")
	}
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	encrypted := testMeta
	encrypted.Recipient = key.Recipient()
	t.Run("plain", func(t *testing.T) { memoryStaysBounded(t, testMeta, nil) })
	t.Run("encrypted", func(t *testing.T) { memoryStaysBounded(t, encrypted, key) })
}

func memoryStaysBounded(t *testing.T, meta Meta, key *age.X25519Identity) {
	g := NewWithT(t)
	ctx := context.Background()
	store := NewDirStore(t.TempDir())
	const n = 20000
	// Collect often, so that HeapInuse follows what is live rather than
	// garbage waiting for the next cycle.
	defer debug.SetGCPercent(debug.SetGCPercent(10))

	heap := memtest.NewHeapPeak()
	w, err := NewWriter(ctx, store, testDir, meta)
	g.Expect(err).NotTo(HaveOccurred())
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := range n {
		it := streamedItem(rng, i)
		total += int64(len(it.Object))
		g.Expect(w.Add(it)).To(Succeed())
		w.Log(LevelInfo, new(it.Ref()), "Backed up the object")
		if i%250 == 0 {
			heap.Sample()
		}
	}
	m, err := w.Close(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	heap.Sample()
	writeGrowth := heap.Growth()
	t.Logf("write: %d items, %.1f MB of objects, %.1f MB stored (resources %.1f MB); heap in use grew by at most %.1f MB",
		n, mb(total), mb(m.Files[ResourcesFile].Size+m.Files[ResourceListFile].Size+m.Files[LogFile].Size), mb(m.Files[ResourcesFile].Size), mb(writeGrowth))
	g.Expect(m.Counts.ObjectBytes).To(Equal(total))
	g.Expect(writeGrowth).To(BeNumerically("<", total/8), "writing must not hold the backup in memory")

	heap = memtest.NewHeapPeak()
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.UseKey(key)).To(Succeed())
	g.Expect(r.Verify(ctx)).To(Succeed())
	heap.Sample()
	var read, count int64
	g.Expect(r.Items(ctx, func(it Item) error {
		read += int64(len(it.Object))
		if count++; count%250 == 0 {
			heap.Sample()
		}
		return nil
	})).To(Succeed())
	heap.Sample()
	t.Logf("read: Verify and Items; heap in use grew by at most %.1f MB", mb(heap.Growth()))
	g.Expect(read).To(Equal(total))
	g.Expect(count).To(Equal(int64(n)))
	g.Expect(heap.Growth()).To(BeNumerically("<", total/8), "reading must not hold the backup in memory")
}

func mb(n int64) float64 { return float64(n) / 1e6 }
