// Package images builds Lifeboat's container images from the tree, without a daemon or a registry.
package images

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Version tags the images built from this tree. Code that names an image,
// such as the hub's default spoke image, does so through Ref.
const Version = "0.1.0-dev"

// Registry is the name every image is tagged under. Nothing is pushed there:
// the tarballs are imported into each node's containerd.
const Registry = "lifeboat.dev"

// CABundle is the build machine's CA bundle, copied into every image.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

const (
	source  = "https://github.com/lifeboat-dev/lifeboat"
	nonroot = 65532
)

// Image is one image of the tree: a main package, built statically and run
// as the entrypoint /<Name>.
type Image struct {
	Name    string
	Package string // relative to the repository root
	// Binary is a static binary built elsewhere (for example a pinned
	// third-party component of the test fleet), used instead of Package.
	Binary string
}

// All lists the images Build makes when Options.Names is empty.
var All = []Image{Hub, Spoke, Pause}

// Lifeboat's images.
var (
	Hub   = Image{Name: "lifeboat-hub", Package: "./hub"}
	Spoke = Image{Name: "lifeboat-spoke", Package: "./spoke"}
	// Pause is the pod sandbox image of the test fleet's nodes.
	Pause = Image{Name: "lifeboat-pause", Package: "./images/pause"}
)

// Ref is the reference an image of this tree is tagged with, for example
// lifeboat.dev/lifeboat-spoke:0.1.0-dev.
func Ref(name string) string { return ref(name, Version) }

func ref(name, version string) string { return Registry + "/" + name + ":" + version }

// Options says which images to build and where to write them.
type Options struct {
	Root    string   // repository root; empty means the working directory
	Out     string   // directory for the tarballs and digests.txt; empty means <Root>/bin/images
	Names   []string // names from All; empty means all of them
	Images  []Image  // images to build beside Names, such as test images; with Images and no Names, only these
	Version string   // tag; empty means Version

	// Epoch is the modification time of every file and the creation time of
	// every image. Zero means SOURCE_DATE_EPOCH when set, else the Unix epoch.
	Epoch time.Time
}

// Built is one image written by Build.
type Built struct {
	Name   string
	Ref    string // the tag recorded in the tarball
	Digest string // manifest digest
	ID     string // config digest: the image id crictl and ctr show once imported
	Path   string // docker-archive tarball, for `ctr -n k8s.io images import`
}

// Build builds the images into Out as <name>.tar and lists their references
// and digests in Out/digests.txt. The same tree and options give the same
// bytes.
func Build(ctx context.Context, opts Options) ([]Built, error) {
	selected, err := selectImages(opts.Names)
	if err != nil {
		return nil, err
	}
	if len(opts.Images) > 0 {
		if len(opts.Names) == 0 {
			selected = nil
		}
		selected = append(selected, opts.Images...)
	}
	epoch, err := epochOf(opts.Epoch)
	if err != nil {
		return nil, err
	}
	version := cmp.Or(opts.Version, Version)
	out := cmp.Or(opts.Out, filepath.Join(opts.Root, "bin", "images"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	base, err := baseLayer(epoch)
	if err != nil {
		return nil, err
	}
	bin, err := os.MkdirTemp("", "lifeboat-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)

	var built []Built
	for _, image := range selected {
		b, err := buildImage(ctx, image, opts.Root, filepath.Join(bin, image.Name), out, version, epoch, base)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", image.Name, err)
		}
		built = append(built, b)
	}
	return built, writeDigests(filepath.Join(out, "digests.txt"), built)
}

func buildImage(ctx context.Context, image Image, root, binary, out, version string, epoch time.Time, base v1.Layer) (Built, error) {
	if image.Binary != "" {
		binary = image.Binary
	} else if err := goBuild(ctx, root, image.Package, binary); err != nil {
		return Built{}, err
	}
	exe, err := os.ReadFile(binary)
	if err != nil {
		return Built{}, err
	}
	app, err := layer(epoch, []file{{path: image.Name, mode: 0o755, data: exe}})
	if err != nil {
		return Built{}, err
	}
	img, err := assemble(image.Name, version, epoch, base, app)
	if err != nil {
		return Built{}, err
	}

	tag, err := name.NewTag(ref(image.Name, version))
	if err != nil {
		return Built{}, err
	}
	path := filepath.Join(out, image.Name+".tar")
	if err := tarball.WriteToFile(path+".tmp", tag, img); err != nil {
		os.Remove(path + ".tmp")
		return Built{}, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return Built{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Built{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return Built{}, err
	}
	return Built{Name: image.Name, Ref: tag.String(), Digest: digest.String(), ID: id.String(), Path: path}, nil
}

// goBuild builds a static linux binary whose bytes depend only on the
// sources and the toolchain: no paths, build id or VCS state of the machine.
func goBuild(ctx context.Context, root, pkg, binary string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", binary, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

func assemble(name, version string, epoch time.Time, base, app v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: epoch}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "lifeboat images: base"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "lifeboat images: /" + name}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = created
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint: []string{"/" + name},
		WorkingDir: "/",
		Env:        []string{"PATH=/"},
		Labels: map[string]string{
			"org.opencontainers.image.source":  source,
			"org.opencontainers.image.version": version,
		},
	}
	return mutate.ConfigFile(img, cf)
}

// baseLayer is what the binaries need around them: a non-root user, the CA
// bundle for TLS, a home and a /tmp.
func baseLayer(epoch time.Time) (v1.Layer, error) {
	ca, err := os.ReadFile(CABundle)
	if err != nil || len(ca) == 0 {
		return nil, fmt.Errorf("the images carry this machine's CA bundle %s; install ca-certificates: %v", CABundle, err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", nonroot)
	return layer(epoch, []file{
		{path: "etc/", mode: 0o755},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/ssl/", mode: 0o755},
		{path: "etc/ssl/certs/", mode: 0o755},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{path: "home/", mode: 0o755},
		{path: "home/nonroot/", mode: 0o700, uid: nonroot, gid: nonroot},
		{path: "tmp/", mode: 0o1777},
	})
}

// file is one entry of a layer; a path ending in / is a directory.
type file struct {
	path     string
	mode     int64
	uid, gid int
	data     []byte
}

// layer makes a layer whose bytes depend only on the files and the epoch:
// entries sorted, times fixed, owners and modes as given.
func layer(epoch time.Time, files []file) (v1.Layer, error) {
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.path, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: epoch, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if strings.HasSuffix(f.path, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressedCaching)
}

func selectImages(names []string) ([]Image, error) {
	if len(names) == 0 {
		return All, nil
	}
	var selected []Image
	for _, n := range names {
		i := slices.IndexFunc(All, func(image Image) bool { return image.Name == n })
		if i < 0 {
			known := make([]string, 0, len(All))
			for _, image := range All {
				known = append(known, image.Name)
			}
			return nil, fmt.Errorf("no image %q; there are %s", n, strings.Join(known, ", "))
		}
		selected = append(selected, All[i])
	}
	return selected, nil
}

func epochOf(t time.Time) (time.Time, error) {
	if !t.IsZero() {
		return time.Unix(t.Unix(), 0).UTC(), nil
	}
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	seconds, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", s, err)
	}
	return time.Unix(seconds, 0).UTC(), nil
}

func writeDigests(path string, built []Built) error {
	var b strings.Builder
	for _, image := range built {
		fmt.Fprintf(&b, "%s %s\n", image.Ref, image.Digest)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
