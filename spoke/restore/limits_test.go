package restore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// An object larger than the reader takes (4 MiB by default; the API server
// refuses about 3 MiB) fails on its own, named, and the rest is restored.
func TestOversizeObjectFailsAlone(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	big := cm("oversize", "big", map[string]string{"x": strings.Repeat("x", 4000)})
	store, dir := writeBackup(t, []archive.Item{ns("oversize"), cm("oversize", "small", nil), big})
	r := openBackup(t, store, dir)
	r.Limits.MaxObjectSize = 2000

	var log logLines
	res, err := Run(ctx, options(r, &log))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Restored).To(BeEquivalentTo(2))
	g.Expect(res.Failed).To(BeEquivalentTo(1))
	g.Expect(log.about(archive.LevelError, big.Ref())).To(ConsistOf(
		fmt.Sprintf("Not restored: the object is %d bytes, more than the 2000 a restore reads (the API server takes about 3 MiB)", len(big.Object))))
	g.Expect(getJSON(t, ctx, rConfigMaps, "oversize", "small")).NotTo(BeNil())
	g.Expect(getJSON(t, ctx, rConfigMaps, "oversize", "big")).To(BeNil())
}

// The restore keeps maps that grow with the objects: a backup with more than
// MaxItems fails before anything is written.
func TestTooManyItemsChangeNothing(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store, dir := writeBackup(t, []archive.Item{ns("toomany"), cm("toomany", "a", nil), cm("toomany", "b", nil)})
	opts := options(openBackup(t, store, dir), &logLines{})
	opts.MaxItems = 2
	res, err := Run(ctx, opts)
	g.Expect(err).To(MatchError(ErrTooManyItems))
	g.Expect(err.Error()).To(ContainSubstring("holds 3 objects, more than the 2 one restore takes"))
	g.Expect(res.Done()).To(BeZero())
	g.Expect(getJSON(t, ctx, rNamespaces, "", "toomany")).To(BeNil(), "the restore changed the cluster")
}

// The spool holds at most what was reserved for the restore (SpoolNeed of an
// honest backup): one that needs more fails before anything is written, and
// leaves no spool behind.
func TestSpoolLimitChangesNothing(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	items := []archive.Item{ns("spoolfull")}
	for i := range 20 {
		items = append(items, cm("spoolfull", fmt.Sprintf("cm-%d", i), map[string]string{"x": strings.Repeat("x", 1000)}))
	}
	store, dir := writeBackup(t, items)
	r := openBackup(t, store, dir)
	g.Expect(SpoolNeed(r.Manifest())).To(Equal(r.Manifest().Counts.ObjectBytes + 21*spoolEntryOverhead))

	tmp := t.TempDir()
	opts := options(r, &logLines{})
	opts.TempDir, opts.SpoolLimit = tmp, 10_000
	_, err := Run(ctx, opts)
	g.Expect(err).To(MatchError(ErrSpoolFull))
	g.Expect(getJSON(t, ctx, rNamespaces, "", "spoolfull")).To(BeNil(), "the restore changed the cluster")
	left, _ := os.ReadDir(tmp)
	g.Expect(left).To(BeEmpty())

	// With what SpoolNeed reserves, it restores.
	opts.Reader, opts.SpoolLimit = openBackup(t, store, dir), SpoolNeed(r.Manifest())
	res, err := Run(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Restored).To(BeEquivalentTo(21))
}

func TestFreeSpace(t *testing.T) {
	g := NewWithT(t)
	free, err := FreeSpace(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(free).To(BeNumerically(">", 0))
	_, err = FreeSpace("/no/such/dir")
	g.Expect(errors.Is(err, os.ErrNotExist)).To(BeTrue(), "%v", err)
}
