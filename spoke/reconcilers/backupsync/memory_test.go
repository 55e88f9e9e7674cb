package backupsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/memtest"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// sampledStore samples the heap at every page of a listing.
type sampledStore struct {
	archive.Store
	heap  *memtest.HeapPeak
	pages int
}

func (s *sampledStore) Walk(ctx context.Context, prefix string, fn func([]string) error) error {
	return s.Store.Walk(ctx, prefix, func(names []string) error {
		s.heap.Sample()
		s.pages++
		return fn(names)
	})
}

// junkNames is how many names TestSyncMemoryStaysBounded adds
// (LIFEBOAT_SYNC_JUNK_NAMES overrides it, for docs/benchmarks.md).
const junkNames = 200_000

// TestSyncMemoryStaysBounded fills the bucket with 200,000 empty blobs, as
// anyone with write access to the container could (L2 of the security
// review): 10 names a folder, 100 folders a cluster folder, and one folder
// of 2,000 names beside a copied backup.json. The sync lists them all
// and still finds the real backups, and its heap grows by a few MB, not by
// the tens of MB that holding the names takes (logged as the baseline;
// docs/benchmarks.md has a run over a million).
func TestSyncMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200,000 files")
	}
	n := junkNames
	if v := os.Getenv("LIFEBOAT_SYNC_JUNK_NAMES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	root := t.TempDir()
	e.store = archive.NewDirStore(root)
	for i := range 3 {
		e.backup("spoke-1", fmt.Sprintf("b%d", i), hubOwner, true)
	}
	start := time.Now()
	const perFolder, foldersPerCluster = 10, 100
	for i := 0; i < n; i += perFolder {
		folder := i / perFolder
		dir := filepath.Join(root, backupsRoot, fmt.Sprintf("junk-%04d", folder/foldersPerCluster), fmt.Sprintf("f%04d", folder%foldersPerCluster))
		e.g.Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		for j := range perFolder {
			e.g.Expect(os.WriteFile(filepath.Join(dir, fmt.Sprintf("x%d", j)), nil, 0o644)).To(Succeed())
		}
	}
	big := filepath.Join(root, backupsRoot, "spoke-1", "big")
	e.g.Expect(os.MkdirAll(big, 0o755)).To(Succeed())
	manifest, err := os.ReadFile(filepath.Join(root, backupsRoot, "spoke-1", "b0", archive.ManifestFile))
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(os.WriteFile(filepath.Join(big, archive.ManifestFile), manifest, 0o644)).To(Succeed())
	for j := range 2 * maxFolderNames {
		e.g.Expect(os.WriteFile(filepath.Join(big, fmt.Sprintf("x%05d", j)), nil, 0o644)).To(Succeed())
	}
	t.Logf("wrote %d junk names in %s", n+2*maxFolderNames, time.Since(start).Round(time.Second))

	// Collect often, so that HeapInuse follows what is live.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	store := &sampledStore{Store: e.store, heap: memtest.NewHeapPeak()}
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return store, nil }
	start = time.Now()
	bs := e.run(2)
	store.heap.Sample()
	t.Logf("synced in %s, %d listing pages; heap in use grew by at most %.1f MB",
		time.Since(start).Round(time.Second), store.pages, float64(store.heap.Growth())/1e6)

	e.g.Expect(bs.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(bs.Status.Found).To(BeEquivalentTo(3))
	e.g.Expect(e.pages(bs)).To(HaveLen(2))
	e.g.Expect(bs.Status.Conditions).To(ContainElement(HaveField("Message", And(
		ContainSubstring(fmt.Sprintf("skipped %d incomplete backups", n/perFolder)),
		ContainSubstring(fmt.Sprintf("spoke-1/big: more than %d blobs", maxFolderNames)),
	))))
	e.g.Expect(store.pages).To(BeNumerically(">", n/1000), "the listing went page by page")
	e.g.Expect(store.heap.Growth()).To(BeNumerically("<", 8<<20), "the sync must not hold the listing in memory")

	// Baseline: what holding the listing takes (List, as the sync did before).
	baseline := memtest.NewHeapPeak()
	names, err := e.store.List(e.ctx, backupsRoot)
	e.g.Expect(err).NotTo(HaveOccurred())
	baseline.Sample()
	t.Logf("baseline: holding the %d names took %.1f MB; ratio sync/baseline %.3f",
		len(names), float64(baseline.Growth())/1e6, float64(store.heap.Growth())/float64(baseline.Growth()))
}
