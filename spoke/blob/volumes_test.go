package blob_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// The volume data repository lives in the target's container through the
// spoke's own Blob client: a volume served by a mover is backed up, backed
// up again without reading unchanged files, restored byte for byte through
// a write-mode mover, and its snapshot deleted.
func TestVolumeRepositoryOverAzurite(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := newIdentity(t, true)
	container := newContainer(t, "volumes")
	// As with Azure ABAC on the cluster's role assignment (docs/security.md):
	// writes only under the cluster's repositories folder.
	azure.proxy.GrantWithCondition(id.app.ObjectID, azurite.Account, container, blobproxy.StorageBlobDataContributor,
		blobproxy.Condition{WritePathPrefixes: []string{"team-a/lifeboat/v1/repositories/spoke-1/"}})
	t.Cleanup(func() {
		azure.proxy.Revoke(id.app.ObjectID, azurite.Account, container, blobproxy.StorageBlobDataContributor)
	})
	client, err := blob.New(id.config(container, "team-a"), testOptions()...)
	g.Expect(err).NotTo(HaveOccurred())

	src := t.TempDir()
	writeTree(t, src)
	reads := &countingTransport{}
	mover := startMover(t, ctx, volumes.Mover{Root: src, Token: "read-token"}, reads)

	rep, err := volumes.Open(ctx, client, "spoke-1", "shop", "password-1")
	g.Expect(err).NotTo(HaveOccurred())
	root, err := mover.Root(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	var progressed atomic.Int64
	source := volumes.Source("spoke-1", "shop", "data")
	first, err := rep.Backup(ctx, source, root, func(n int64) { progressed.Store(n) })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first.Files).To(Equal(int64(4)))
	const fileBytes = 3<<20 + 5 + 0 + 11
	g.Expect(first.Bytes).To(Equal(int64(fileBytes)))
	g.Expect(progressed.Load()).To(BeNumerically(">=", fileBytes))
	g.Expect(first.Repository).To(Equal("lifeboat/v1/repositories/spoke-1/shop/"))
	g.Expect(reads.files.Load()).To(Equal(int64(4)))

	// Unchanged files are taken from the previous snapshot, not read again.
	reads.files.Store(0)
	root, err = mover.Root(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	second, err := rep.Backup(ctx, source, root, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second.ID).NotTo(Equal(first.ID))
	g.Expect(second.CachedFiles).To(BeNumerically(">=", first.Files))
	g.Expect(reads.files.Load()).To(BeZero())
	g.Expect(rep.Close(ctx)).To(Succeed())

	// Everything is in the repository's folder, under the target's prefix.
	names := blobsIn(t, container)
	g.Expect(names).NotTo(BeEmpty())
	for _, n := range names {
		g.Expect(n).To(HavePrefix("team-a/lifeboat/v1/repositories/spoke-1/shop/"))
	}

	// Another password is a clear error.
	_, err = volumes.Open(ctx, client, "spoke-1", "shop", "password-2")
	g.Expect(err).To(MatchError(volumes.ErrWrongPassword))

	// Restore into an empty volume through a write-mode mover.
	dst := t.TempDir()
	writer := startMover(t, ctx, volumes.Mover{Root: dst, Token: "write-token", Write: true}, nil)
	rep, err = volumes.Open(ctx, client, "spoke-1", "shop", "password-1")
	g.Expect(err).NotTo(HaveOccurred())
	defer rep.Close(ctx)
	unpacked, err := rep.Fill(ctx, first.ID, writer)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(unpacked).To(Equal(volumes.Unpacked{Files: 4, Bytes: fileBytes}))
	g.Expect(treeSums(t, dst)).To(Equal(treeSums(t, src)))
	fi, err := os.Stat(filepath.Join(dst, "bin", "run.sh"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o750)))

	// The read-mode mover refuses writes and anyone without its token.
	_, err = mover.Unpack(ctx, strings.NewReader(""))
	g.Expect(err).To(HaveOccurred())
	stranger := *mover
	stranger.Token = "guess"
	_, err = stranger.Root(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("401")))

	// Deleting a snapshot deletes it; the other stays.
	g.Expect(rep.Delete(ctx, first.ID)).To(Succeed())
	_, err = rep.Restore(ctx, first.ID, nopWriteCloser{io.Discard})
	g.Expect(err).To(HaveOccurred())
	_, err = rep.Restore(ctx, second.ID, nopWriteCloser{io.Discard})
	g.Expect(err).NotTo(HaveOccurred())
}

// writeTree writes a small volume: nested folders, an empty file, a 3 MiB
// random file, an executable and a symlink.
func writeTree(t *testing.T, dir string) {
	g := NewWithT(t)
	big := make([]byte, 3<<20)
	rand.Read(big)
	g.Expect(os.MkdirAll(filepath.Join(dir, "db", "wal"), 0o755)).To(Succeed())
	g.Expect(os.MkdirAll(filepath.Join(dir, "bin"), 0o755)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "db", "data.bin"), big, 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "db", "wal", "0001"), []byte("hello"), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "db", "empty"), nil, 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "bin", "run.sh"), []byte("#!/bin/sh\n:\n"[:11]), 0o750)).To(Succeed())
	g.Expect(os.Symlink("../db/data.bin", filepath.Join(dir, "bin", "data"))).To(Succeed())
}

// treeSums maps every path under dir to the sha256 of a file's content or
// a symlink's target, and marks folders.
func treeSums(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "-> " + target
			return err
		default:
			b, err := os.ReadFile(p)
			sum := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(sum[:])
			return err
		}
		return nil
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return out
}

// startMover serves m on a loopback port until the test ends.
func startMover(t testing.TB, ctx context.Context, m volumes.Mover, counter *countingTransport) *volumes.MoverClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	c := &volumes.MoverClient{Base: "http://" + ln.Addr().String(), Token: m.Token}
	if counter != nil {
		c.HTTP = &http.Client{Transport: counter}
	}
	return c
}

// countingTransport counts the file reads a mover serves.
type countingTransport struct{ files atomic.Int64 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/file" {
		c.files.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
