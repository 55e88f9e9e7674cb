package blob_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// A run's log is read from Azure Blob Storage through the target's prefix:
// its end within the bound, cut at a line; a missing log is ErrNotFound.
func TestLogTailFromBlobStorage(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _ := newClient(t, "team-a")
	dir, err := archive.Path("", "spoke-1", "b1")
	g.Expect(err).NotTo(HaveOccurred())
	var lines []string
	for i := range 5000 {
		lines = append(lines, fmt.Sprintf(`{"level":"info","message":"item %05d","result":"created"}`, i))
	}
	whole := strings.Join(lines, "\n") + "\n"
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(whole))
	g.Expect(w.Close()).To(Succeed())
	name := archive.RestoreLogPath(dir, "spoke-2", "lifeboat-system", "r1", "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01")
	_, err = c.Put(ctx, name, &gz)
	g.Expect(err).NotTo(HaveOccurred())

	text, truncated, size, err := archive.LogTail(ctx, c, name, 4096, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(truncated).To(BeTrue())
	g.Expect(size).To(BeEquivalentTo(len(whole)))
	g.Expect(len(text)).To(BeNumerically("<=", 4096))
	g.Expect(whole).To(HaveSuffix(text))
	g.Expect(text).To(HavePrefix(`{"level"`))

	_, _, _, err = archive.LogTail(ctx, c, dir+"/"+archive.LogFile, 4096, nil)
	g.Expect(err).To(MatchError(archive.ErrNotFound))
}
