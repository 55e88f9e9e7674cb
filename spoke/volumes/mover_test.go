package volumes

import (
	"archive/tar"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

// serve runs a mover on root until the test ends.
func serve(t *testing.T, root string, write bool) *MoverClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Mover{Root: root, Token: "t", Write: write}).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return &MoverClient{Base: "http://" + ln.Addr().String(), Token: "t"}
}

func tarOf(t *testing.T, entries ...*tar.Header) *bytes.Buffer {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	return &b
}

// A mover never reads or writes outside its volume, whatever names and
// symlinks the volume or the stream hold.
func TestMoverStaysInsideTheVolume(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	outside := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600)).To(Succeed())

	vol := t.TempDir()
	g.Expect(os.Symlink(outside, filepath.Join(vol, "escape"))).To(Succeed())
	reader := serve(t, vol, false)
	for _, p := range []string{"../" + filepath.Base(outside) + "/secret", "escape/secret", "/etc/passwd"} {
		f := &httpFile{httpEntry{c: reader, path: p}}
		r, _ := f.Open(ctx)
		_, err := r.Read(make([]byte, 64))
		g.Expect(err).To(HaveOccurred(), "reading %s", p)
		r.Close()
	}
	root, err := reader.Root(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = root.(*httpDir).Child(ctx, "escape")
	g.Expect(err).NotTo(HaveOccurred(), "the symlink itself is listed, as a symlink")

	target := t.TempDir()
	writer := serve(t, target, true)
	for name, stream := range map[string]*bytes.Buffer{
		"dot-dot":         tarOf(t, &tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"absolute":        tarOf(t, &tar.Header{Name: "/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"through-symlink": tarOf(t, &tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside}, &tar.Header{Name: "link/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"device":          tarOf(t, &tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}),
	} {
		_, err := writer.Unpack(ctx, stream)
		g.Expect(err).To(HaveOccurred(), name)
	}
	entries, err := os.ReadDir(outside)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(HaveLen(1), "nothing was written outside the volume")

	_, err = (&MoverClient{Base: writer.Base, Token: "wrong"}).Unpack(ctx, tarOf(t))
	g.Expect(err).To(MatchError(ContainSubstring("401")))
}
