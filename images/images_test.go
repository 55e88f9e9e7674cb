package images_test

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	. "github.com/onsi/gomega"

	"github.com/lifeboat-dev/lifeboat/images"
)

const root = ".."

func build(t *testing.T, opts images.Options) images.Built {
	t.Helper()
	g := NewWithT(t)
	opts.Root = root
	if opts.Out == "" {
		opts.Out = t.TempDir()
	}
	built, err := images.Build(context.Background(), opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(built).To(HaveLen(1))

	digests, err := os.ReadFile(filepath.Join(opts.Out, "digests.txt"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(digests)).To(Equal(built[0].Ref + " " + built[0].Digest + "\n"))
	return built[0]
}

func TestBuildIsReproducible(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	first := build(t, images.Options{Names: []string{"lifeboat-pause"}})
	second := build(t, images.Options{Names: []string{"lifeboat-pause"}})

	g.Expect(first.Ref).To(Equal("lifeboat.dev/lifeboat-pause:" + images.Version))
	g.Expect(first.Digest).To(HavePrefix("sha256:"))
	g.Expect(second.Digest).To(Equal(first.Digest))
	g.Expect(second.ID).To(Equal(first.ID))
	g.Expect(os.ReadFile(second.Path)).To(Equal(must(os.ReadFile(first.Path))), "the tarballs differ byte for byte")
}

func TestEpochChangesTheDigest(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	unix := build(t, images.Options{Names: []string{"lifeboat-pause"}})
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	fromEnv := build(t, images.Options{Names: []string{"lifeboat-pause"}})
	fromOption := build(t, images.Options{Names: []string{"lifeboat-pause"}, Epoch: time.Unix(1700000000, 0)})

	g.Expect(fromEnv.Digest).NotTo(Equal(unix.Digest))
	g.Expect(fromOption.Digest).To(Equal(fromEnv.Digest))
	cf := must(read(t, fromEnv).ConfigFile())
	g.Expect(cf.Created.Time.Unix()).To(BeNumerically("==", 1700000000))
	for _, f := range files(t, read(t, fromEnv)) {
		g.Expect(f.ModTime.Unix()).To(BeNumerically("==", 1700000000), f.Name)
	}
}

func TestBadSourceDateEpochFails(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	_, err := images.Build(context.Background(), images.Options{Root: root, Out: t.TempDir(), Names: []string{"lifeboat-pause"}})
	g.Expect(err).To(MatchError(ContainSubstring("SOURCE_DATE_EPOCH")))
}

func TestUnknownImageFails(t *testing.T) {
	g := NewWithT(t)
	_, err := images.Build(context.Background(), images.Options{Root: root, Out: t.TempDir(), Names: []string{"lifeboat-nope"}})
	g.Expect(err).To(MatchError(ContainSubstring("lifeboat-pause")))
}

func TestPauseImageContents(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	built := build(t, images.Options{Names: []string{"lifeboat-pause"}})
	img := read(t, built)

	cf := must(img.ConfigFile())
	g.Expect(cf.OS).To(Equal("linux"))
	g.Expect(cf.Created.Time.Unix()).To(BeZero())
	g.Expect(cf.Config.User).To(Equal("65532:65532"))
	g.Expect(cf.Config.Entrypoint).To(Equal([]string{"/lifeboat-pause"}))
	g.Expect(cf.Config.WorkingDir).To(Equal("/"))
	g.Expect(cf.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.version", images.Version))
	g.Expect(cf.Config.Labels).To(HaveKey("org.opencontainers.image.source"))
	g.Expect(must(img.ConfigName()).String()).To(Equal(built.ID))

	fs := files(t, img)
	bin := fs["lifeboat-pause"]
	g.Expect(bin.Typeflag).To(Equal(byte(tar.TypeReg)))
	g.Expect(bin.Mode).To(Equal(int64(0o755)))
	g.Expect(bin.Uid).To(BeZero())
	g.Expect(fs).To(HaveKey("etc/ssl/certs/ca-certificates.crt"))
	g.Expect(fs["etc/ssl/certs/ca-certificates.crt"].data).To(Equal(must(os.ReadFile(images.CABundle))))
	g.Expect(string(fs["etc/passwd"].data)).To(ContainSubstring("\nnonroot:x:65532:65532:"))
	g.Expect(string(fs["etc/group"].data)).To(ContainSubstring("\nnonroot:x:65532:"))
	g.Expect(fs["tmp/"].Typeflag).To(Equal(byte(tar.TypeDir)))
	g.Expect(fs["tmp/"].Mode).To(Equal(int64(0o1777)))
	g.Expect(fs["home/nonroot/"].Uid).To(Equal(65532))
	for _, f := range fs {
		g.Expect(f.ModTime.Unix()).To(BeZero(), f.Name)
	}

	exe := filepath.Join(t.TempDir(), "lifeboat-pause")
	g.Expect(os.WriteFile(exe, bin.data, 0o755)).To(Succeed())
	f := must(elf.Open(exe))
	defer f.Close()
	for _, p := range f.Progs {
		g.Expect(p.Type).NotTo(Equal(elf.PT_INTERP), "the binary is not static")
	}
}

func TestPauseExitsZeroOnSIGTERM(t *testing.T) {
	g := NewWithT(t)
	img := read(t, build(t, images.Options{Names: []string{"lifeboat-pause"}}))
	exe := filepath.Join(t.TempDir(), "lifeboat-pause")
	g.Expect(os.WriteFile(exe, files(t, img)["lifeboat-pause"].data, 0o755)).To(Succeed())

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(exe)
		g.Expect(cmd.Start()).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Signal once pause handles it: earlier, the default action would kill it.
		g.Eventually(func() bool { return catches(cmd.Process.Pid, sig) }).Should(BeTrue())
		g.Consistently(done, 200*time.Millisecond).ShouldNot(Receive(), "pause exited before it was told to")
		g.Expect(cmd.Process.Signal(sig)).To(Succeed())
		g.Eventually(done, 5*time.Second).Should(Receive(BeNil()), "pause exits 0 on %s", sig)
	}
}

func TestBuildSpoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the spoke manager, which takes minutes with a cold build cache")
	}
	g := NewWithT(t)
	built := build(t, images.Options{Names: []string{"lifeboat-spoke"}})
	g.Expect(built.Ref).To(Equal(images.Ref("lifeboat-spoke")))
	img := read(t, built)
	g.Expect(must(img.ConfigFile()).Config.Entrypoint).To(Equal([]string{"/lifeboat-spoke"}))
	g.Expect(files(t, img)["lifeboat-spoke"].Mode).To(Equal(int64(0o755)))
}

func read(t *testing.T, built images.Built) v1.Image {
	t.Helper()
	tag := must(name.NewTag(built.Ref))
	img, err := tarball.ImageFromPath(built.Path, &tag)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(must(img.Digest()).String()).To(Equal(built.Digest))
	return img
}

type entry struct {
	*tar.Header
	data []byte
}

// files reads every entry of every layer, checking each layer lists its
// entries sorted.
func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	g := NewWithT(t)
	fs := map[string]entry{}
	for _, l := range must(img.Layers()) {
		rc := must(l.Uncompressed())
		tr := tar.NewReader(rc)
		previous := ""
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(hdr.Name > previous).To(BeTrue(), "%s after %s", hdr.Name, previous)
			previous = hdr.Name
			fs[hdr.Name] = entry{Header: hdr, data: must(io.ReadAll(tr))}
		}
		rc.Close()
	}
	return fs
}

// catches reports whether the process has a handler for sig.
func catches(pid int, sig syscall.Signal) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(status)) {
		if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && bits&(1<<(sig-1)) != 0
		}
	}
	return false
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
