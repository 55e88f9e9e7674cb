package blob_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kopia/kopia/snapshot"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// A command's output goes into the repository as a stream: a snapshot with
// one file, read back byte for byte. A stream that fails part-way (the
// command exited non-zero) leaves no snapshot.
func TestStreamRoundTripOverAzurite(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := newIdentity(t, true)
	container := newContainer(t, "streams")
	azure.proxy.Grant(id.app.ObjectID, azurite.Account, container, blobproxy.StorageBlobDataContributor)
	t.Cleanup(func() {
		azure.proxy.Revoke(id.app.ObjectID, azurite.Account, container, blobproxy.StorageBlobDataContributor)
	})
	client, err := blob.New(id.config(container, "team-a"), testOptions()...)
	g.Expect(err).NotTo(HaveOccurred())
	rep, err := volumes.Open(ctx, client, "spoke-1", "shop", "password-1")
	g.Expect(err).NotTo(HaveOccurred())
	defer rep.Close(ctx)

	const size = 24<<20 + 12345
	in := newGenerated(1, size)
	var progressed int64
	source := volumes.Source("spoke-1", "shop", "commands/Deployment/db/db.sql")
	snap, err := rep.BackupStream(ctx, source, "db.sql", in, func(n int64) { progressed = n })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(snap.Bytes).To(Equal(int64(size)))
	g.Expect(snap.Files).To(Equal(int64(1)))
	g.Expect(progressed).To(Equal(int64(size)))
	g.Expect(snap.Repository).To(Equal("lifeboat/v1/repositories/spoke-1/shop/"))

	out, err := rep.OpenFile(ctx, snap.ID)
	g.Expect(err).NotTo(HaveOccurred())
	h := sha256.New()
	n, err := io.Copy(h, out)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.Close()).To(Succeed())
	g.Expect(n).To(Equal(int64(size)))
	g.Expect(h.Sum(nil)).To(Equal(in.sum.Sum(nil)), "the same bytes come back")

	// A failing stream saves nothing.
	broken := volumes.Source("spoke-1", "shop", "commands/Deployment/db/broken.sql")
	failed := errors.New("command exited with code 3")
	_, err = rep.BackupStream(ctx, broken, "broken.sql", io.MultiReader(newGenerated(2, 5<<20), &failingReader{err: failed}), nil)
	g.Expect(err).To(MatchError(failed))
	left, err := snapshot.ListSnapshots(ctx, rep.Repository, broken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left).To(BeEmpty())
	kept, err := snapshot.ListSnapshots(ctx, rep.Repository, source)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kept).To(HaveLen(1))

	// A volume's snapshot is not a command's output.
	_, err = rep.OpenFile(ctx, "0123456789abcdef0123456789abcdef")
	g.Expect(err).To(HaveOccurred())
}

// generated is a deterministic stream of n pseudo-random bytes that keeps
// their sha256.
type generated struct {
	rng  *rand.ChaCha8
	left int64
	sum  interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newGenerated(seed byte, n int64) *generated {
	return &generated{rng: rand.NewChaCha8([32]byte{seed}), left: n, sum: sha256.New()}
}

func (g *generated) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.left)]
	g.rng.Read(p)
	g.sum.Write(p)
	g.left -= int64(len(p))
	return len(p), nil
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }
