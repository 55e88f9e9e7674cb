package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	. "github.com/onsi/gomega"
)

func TestRoundTrip(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := NewDirStore(t.TempDir())
	items := sampleItems(300)
	failed := named(secrets, "team-1", "broken")
	logs := []logLine{
		{LevelInfo, nil, "Backup started"},
		{LevelWarning, &ItemRef{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespace: "team-0", Name: "web-0"}, "Skipped status"},
		{LevelError, &failed, "Could not read the object: forbidden"},
		{LevelInfo, nil, "Backup finished"},
	}
	before := time.Now().UTC()
	m := writeBackup(t, store, testDir, items, logs)

	// The folder holds exactly the four files.
	names, err := store.List(ctx, testDir+"/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(Equal([]string{
		testDir + "/backup.json", testDir + "/log.jsonl.gz", testDir + "/resource-list.json.gz", testDir + "/resources.tar.zst",
	}))

	// backup.json records each file's real size and sha256.
	for _, name := range []string{ResourcesFile, ResourceListFile, LogFile} {
		b := readAll(t, store, testDir+"/"+name)
		sum := sha256.Sum256(b)
		g.Expect(m.Files[name]).To(Equal(FileInfo{Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}), name)
	}

	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	got := r.Manifest()
	g.Expect(got.FormatVersion).To(Equal(1))
	g.Expect(got.BackupID).To(Equal("b1"))
	g.Expect(got.SourceCluster).To(Equal("spoke-1"))
	g.Expect(got.Owner).To(Equal(testMeta.Owner))
	g.Expect(got.Spec).To(MatchJSON(testMeta.Spec))
	g.Expect(got.LifeboatVersion).To(Equal("v0.1.0-test"))
	g.Expect(got.StartTimestamp).To(BeTemporally(">=", before.Add(-time.Second)))
	g.Expect(got.CompletionTimestamp).To(BeTemporally(">=", got.StartTimestamp))
	g.Expect(got.Files).To(Equal(m.Files))
	g.Expect(got.Counts.Items).To(Equal(int64(300)))
	g.Expect(got.Counts.Warnings).To(Equal(int64(1)))
	g.Expect(got.Counts.Errors).To(Equal(int64(1)))
	g.Expect(got.Counts.Resources).To(Equal(map[string]int64{
		"core/v1/configmaps": 51, "core/v1/secrets": 50, "apps/v1/deployments": 50,
		"example.com/v1alpha1/widgets": 50, "rbac.authorization.k8s.io/v1/clusterroles": 50, "core/v1/namespaces": 49,
	}))
	var objectBytes int64
	for _, it := range items {
		objectBytes += int64(len(it.Object))
	}
	g.Expect(got.Counts.ObjectBytes).To(Equal(objectBytes))

	g.Expect(r.Verify(ctx)).To(Succeed())
	var back []Item
	g.Expect(r.Items(ctx, func(it Item) error { back = append(back, it); return nil })).To(Succeed())
	g.Expect(back).To(Equal(items))

	list, err := r.ResourceList(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list).To(HaveLen(len(items)))
	for i, it := range items {
		g.Expect(list[i]).To(Equal(it.Ref()))
	}

	entries, err := r.Log(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(HaveLen(len(logs)))
	for i, l := range logs {
		g.Expect(entries[i].Level).To(Equal(l.level))
		g.Expect(entries[i].Item).To(Equal(l.item))
		g.Expect(entries[i].Message).To(Equal(l.msg))
		g.Expect(entries[i].Time).To(BeTemporally("~", time.Now(), time.Minute))
	}
}

// TestFormatOnDisk reads a backup with nothing but the standard library and
// zstd, as docs/backup-format.md says anyone can.
func TestFormatOnDisk(t *testing.T) {
	g := NewWithT(t)
	store := newMemStore()
	items := []Item{
		itemOf(named(namespaces, "", "shop"), nil),
		itemOf(named(deployments, "shop", "web"), nil),
		itemOf(named(roles, "", "system:shop-reader"), nil),
	}
	writeBackup(t, store, testDir, items, []logLine{{LevelWarning, nil, "hello"}})

	zr, err := zstd.NewReader(bytes.NewReader(store.get(testDir + "/resources.tar.zst")))
	g.Expect(err).NotTo(HaveOccurred())
	defer zr.Close()
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hdr.Typeflag).To(Equal(byte(tar.TypeReg)))
		names = append(names, hdr.Name)
	}
	g.Expect(names).To(Equal([]string{
		"resources/core/v1/namespaces/_cluster/shop.json",
		"resources/apps/v1/deployments/shop/web.json",
		"resources/rbac.authorization.k8s.io/v1/clusterroles/_cluster/system:shop-reader.json",
	}))

	var list []map[string]string
	g.Expect(json.Unmarshal(gunzip(t, store.get(testDir+"/resource-list.json.gz")), &list)).To(Succeed())
	g.Expect(list[1]).To(Equal(map[string]string{"group": "apps", "version": "v1", "resource": "deployments", "kind": "Deployment", "namespace": "shop", "name": "web"}))
	g.Expect(list[0]["group"]).To(Equal(""))

	line := map[string]any{}
	g.Expect(json.Unmarshal(gunzip(t, store.get(testDir+"/log.jsonl.gz")), &line)).To(Succeed())
	g.Expect(line).To(HaveKeyWithValue("level", "warning"))
	g.Expect(line).To(HaveKeyWithValue("message", "hello"))
	g.Expect(line).To(HaveKey("time"))

	var manifest map[string]any
	g.Expect(json.Unmarshal(store.get(testDir+"/backup.json"), &manifest)).To(Succeed())
	g.Expect(manifest).To(HaveKeyWithValue("formatVersion", 1.0))
	for _, key := range []string{"backupID", "sourceCluster", "owner", "spec", "startTimestamp", "completionTimestamp", "lifeboatVersion", "counts", "files"} {
		g.Expect(manifest).To(HaveKey(key))
	}
	g.Expect(manifest["counts"]).To(HaveKeyWithValue("resources", HaveKeyWithValue("core/v1/namespaces", 1.0)))
	g.Expect(manifest["files"]).To(HaveKeyWithValue("resources.tar.zst", HaveKey("sha256")))
}

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		prefix, cluster, id string
		want                string
		err                 string
	}{
		{"", "spoke-1", "b1", "lifeboat/v1/backups/spoke-1/b1", ""},
		{"team/a.b_c~d", "spoke-1", "2024-06-01.nightly", "team/a.b_c~d/lifeboat/v1/backups/spoke-1/2024-06-01.nightly", ""},
		{"/abs", "spoke-1", "b1", "", "remove the leading '/'"},
		{"a/../b", "spoke-1", "b1", "", "must not contain '.' or '..'"},
		{"a/", "spoke-1", "b1", "", "no trailing '/'"},
		{"a//b", "spoke-1", "b1", "", "single '/'"},
		{"a/lifeboat/v1/backups/c1", "spoke-1", "b1", "", "must not contain a 'lifeboat' path segment"},
		{"lifeboat", "spoke-1", "b1", "", "must not contain a 'lifeboat' path segment"},
		{"team/lifeboats", "spoke-1", "b1", "team/lifeboats/lifeboat/v1/backups/spoke-1/b1", ""},
		{"", "Spoke", "b1", "", `cluster "Spoke": must be a cluster name`},
		{"", "spoke/1", "b1", "", "must be a cluster name"},
		{"", "..", "b1", "", "must be a cluster name"},
		{"", "spoke-1", "..", "", `backup ID "..": must be a backup ID`},
		{"", "spoke-1", "a/b", "", "must be a backup ID"},
		{"", "spoke-1", "", "", "must be a backup ID"},
		{"", "spoke-1", strings.Repeat("a", 129), "", "must be a backup ID"},
	} {
		t.Run(fmt.Sprintf("%q/%q/%q", tc.prefix, tc.cluster, tc.id), func(t *testing.T) {
			g := NewWithT(t)
			got, err := Path(tc.prefix, tc.cluster, tc.id)
			if tc.err != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
			prefix, cluster, id, err := ParsePath(got)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect([]string{prefix, cluster, id}).To(Equal([]string{tc.prefix, tc.cluster, tc.id}))
		})
	}
	_, _, _, err := ParsePath("team/lifeboat/v2/backups/spoke-1/b1")
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("is not a backup folder")))
}

func TestAddRefusesInvalidItems(t *testing.T) {
	cm := named(configMaps, "shop", "settings")
	withObject := func(ref ItemRef, obj string) Item { it := itemOf(ref, nil); it.Object = []byte(obj); return it }
	for _, tc := range []struct {
		name string
		item Item
		err  string
	}{
		{"core group spelled core", itemOf(ItemRef{Group: "core", Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "shop", Name: "a"}, nil), `group "core": the core group is ""`},
		{"name with a slash", itemOf(named(configMaps, "shop", "a/b"), nil), `name "a/b"`},
		{"name ..", itemOf(named(configMaps, "shop", ".."), nil), `name ".."`},
		{"namespace _cluster", itemOf(named(configMaps, "_cluster", "a"), nil), `namespace "_cluster"`},
		{"no kind", itemOf(ItemRef{Version: "v1", Resource: "configmaps", Namespace: "shop", Name: "a"}, nil), `kind ""`},
		{"not JSON", withObject(cm, `{"apiVersion":`), "object is not a JSON object"},
		{"JSON array", withObject(cm, `[]`), "object is not a JSON object"},
		{"other name", withObject(cm, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other","namespace":"shop"}}`), `object's metadata.name is "other", want "settings"`},
		{"other namespace", withObject(cm, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"web"}}`), `object's metadata.namespace is "web", want "shop"`},
		{"other kind", withObject(cm, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"settings","namespace":"shop"}}`), `object's kind is "Secret", want "ConfigMap"`},
		{"keys in other case", withObject(cm, `{"APIVERSION":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"shop"}}`), `object's apiVersion is "", want "v1"`},
		{"too large", withObject(cm, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"shop"},"data":{"x":"`+strings.Repeat("x", 4<<20)+`"}}`), "more than the 4 MiB limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			store := newMemStore()
			w, err := NewWriter(ctx, store, testDir, testMeta)
			g.Expect(err).NotTo(HaveOccurred())
			err = w.Add(tc.item)
			g.Expect(err).To(MatchError(ErrInvalidItem))
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
			// The Writer goes on, and the refused item is not in the backup.
			g.Expect(w.Add(itemOf(cm, nil))).To(Succeed())
			m, err := w.Close(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(m.Counts.Items).To(Equal(int64(1)))
			r, err := Open(ctx, store, testDir)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r.Verify(ctx)).To(Succeed())
		})
	}
}

func TestNewWriterRefusesFinishedBackup(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	writeBackup(t, store, testDir, sampleItems(3), nil)
	before := store.clone()

	_, err := NewWriter(ctx, store, testDir, testMeta)
	g.Expect(err).To(MatchError(ErrExists))
	g.Expect(err).To(MatchError("backup b1 already exists in " + testDir + ": it has a backup.json"))
	g.Expect(store.blobs).To(Equal(before.blobs))
}

func TestNewWriterReplacesUnfinishedBackup(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	store.set(testDir+"/resources.tar.zst", []byte("left over by a spoke that restarted"))
	writeBackup(t, store, testDir, sampleItems(5), nil)
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Verify(ctx)).To(Succeed())
}

func TestNewWriterRefusesBadMeta(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		dir  string
		meta Meta
		err  string
	}{
		"no owner":    {testDir, Meta{}, "set either hub"},
		"two owners":  {testDir, Meta{Owner: Owner{Namespace: "shop", Hub: testMeta.Owner.Hub}}, "not both"},
		"bad spec":    {testDir, Meta{Owner: Owner{Namespace: "shop"}, Spec: json.RawMessage("{")}, "spec is not valid JSON"},
		"bad folder":  {"team-a/backups/b1", Meta{Owner: Owner{Namespace: "shop"}}, "is not a backup folder"},
		"bad cluster": {"lifeboat/v1/backups/Spoke/b1", Meta{Owner: Owner{Namespace: "shop"}}, "must be a cluster name"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			store := newMemStore()
			_, err := NewWriter(ctx, store, tc.dir, tc.meta)
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
			g.Expect(store.blobs).To(BeEmpty())
		})
	}
}

func TestSelfServiceOwner(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	w, err := NewWriter(ctx, store, testDir, Meta{Owner: Owner{Namespace: "shop"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.Add(itemOf(named(configMaps, "shop", "a"), nil))).To(Succeed())
	_, err = w.Close(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Manifest().Owner).To(Equal(Owner{Namespace: "shop"}))
	g.Expect(r.Manifest().Spec).To(BeNil())
}

func TestAbort(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := NewDirStore(t.TempDir())
	w, err := NewWriter(ctx, store, testDir, testMeta)
	g.Expect(err).NotTo(HaveOccurred())
	for _, it := range sampleItems(50) {
		g.Expect(w.Add(it)).To(Succeed())
	}
	g.Expect(w.Abort(ctx)).To(Succeed())
	g.Expect(w.Abort(ctx)).To(Succeed(), "a second Abort")

	names, err := store.List(ctx, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(BeEmpty())
	g.Expect(w.Add(sampleItems(1)[0])).To(MatchError("backup b1 was aborted"))
	_, err = w.Close(ctx)
	g.Expect(err).To(MatchError("backup b1 was aborted"))
	_, err = Open(ctx, store, testDir)
	g.Expect(err).To(MatchError(ErrIncomplete))
}

func TestAbortAfterCloseKeepsTheBackup(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	w, err := NewWriter(ctx, store, testDir, testMeta)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.Add(sampleItems(1)[0])).To(Succeed())
	_, err = w.Close(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(w.Abort(ctx)).To(Succeed())
	_, err = w.Close(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("Close called twice")))
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Verify(ctx)).To(Succeed())
}

// failingStore fails Put of one file after some bytes, as a network would.
type failingStore struct {
	Store
	name  string
	after int64
}

func (s *failingStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	if strings.HasSuffix(name, "/"+s.name) {
		n, _ := io.CopyN(io.Discard, r, s.after)
		return n, errors.New("connection reset by peer")
	}
	return s.Store.Put(ctx, name, r)
}

func TestStoreFailure(t *testing.T) {
	for _, file := range []string{ResourcesFile, ResourceListFile, LogFile, ManifestFile} {
		t.Run(file, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			mem := newMemStore()
			store := &failingStore{Store: mem, name: file, after: 100}
			w, err := NewWriter(ctx, store, testDir, testMeta)
			g.Expect(err).NotTo(HaveOccurred())
			var addErr error
			for _, it := range sampleItems(2000) {
				if addErr = w.Add(it); addErr != nil {
					break
				}
				w.Log(LevelInfo, nil, "Backed up "+it.Name)
			}
			_, closeErr := w.Close(ctx)
			err = errors.Join(addErr, closeErr)
			g.Expect(err).To(MatchError(ContainSubstring("connection reset by peer")))
			g.Expect(err).To(MatchError(ContainSubstring("backup b1: writing " + file)))
			g.Expect(errors.Is(err, ErrInvalidItem)).To(BeFalse())
			g.Expect(mem.get(testDir+"/backup.json")).To(BeNil(), "no commit marker")
			g.Expect(w.Abort(ctx)).To(Succeed())
			g.Expect(mem.blobs).To(BeEmpty())
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := NewDirStore(t.TempDir())
	items := sampleItems(240)
	var wg sync.WaitGroup
	for b := range 2 {
		dir := fmt.Sprintf("lifeboat/v1/backups/spoke-1/b%d", b)
		w, err := NewWriter(ctx, store, dir, testMeta)
		g.Expect(err).NotTo(HaveOccurred())
		var adders sync.WaitGroup
		for part := range 4 {
			adders.Go(func() {
				for _, it := range items[part*60 : (part+1)*60] {
					if err := w.Add(it); err != nil {
						t.Error(err)
					}
					w.Log(LevelInfo, nil, "Added "+it.Name)
				}
			})
		}
		wg.Go(func() {
			adders.Wait()
			if _, err := w.Close(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for b := range 2 {
		r, err := Open(ctx, store, fmt.Sprintf("lifeboat/v1/backups/spoke-1/b%d", b))
		g.Expect(err).NotTo(HaveOccurred())
		var got []Item
		g.Expect(r.Items(ctx, func(it Item) error { got = append(got, it); return nil })).To(Succeed())
		g.Expect(got).To(ConsistOf(items))
	}
}

func TestItemsStopsAtCallerError(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	writeBackup(t, store, testDir, sampleItems(20), nil)
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	stop := errors.New("stop")
	n := 0
	err = r.Items(ctx, func(Item) error { n++; return stop })
	g.Expect(err).To(BeIdenticalTo(stop))
	g.Expect(n).To(Equal(1))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	g.Expect(r.Items(cctx, func(Item) error { return nil })).To(MatchError(context.Canceled))
}

func TestDirStore(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := NewDirStore(t.TempDir())

	n, err := s.Put(ctx, "a/b/c.json", strings.NewReader("hello"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(int64(5)))
	_, err = s.Put(ctx, "a/bc", strings.NewReader("x"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(readAll(t, s, "a/b/c.json")).To(Equal([]byte("hello")))

	names, err := s.List(ctx, "a/b")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(Equal([]string{"a/b/c.json", "a/bc"}))
	names, err = s.List(ctx, "a/b/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(Equal([]string{"a/b/c.json"}))
	names, err = s.List(ctx, "nothing/here/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(BeEmpty())

	// A failed Put leaves no trace, and no partial file.
	_, err = s.Put(ctx, "a/b/c.json", io.MultiReader(strings.NewReader("partial"), errReader{}))
	g.Expect(err).To(MatchError(ContainSubstring("broken pipe")))
	g.Expect(readAll(t, s, "a/b/c.json")).To(Equal([]byte("hello")))
	_, err = s.Put(ctx, "a/new", errReader{})
	g.Expect(err).To(HaveOccurred())
	_, err = s.Get(ctx, "a/new")
	g.Expect(err).To(MatchError(ErrNotFound))
	names, err = s.List(ctx, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).To(Equal([]string{"a/b/c.json", "a/bc"}))

	g.Expect(s.Delete(ctx, "a/b/c.json")).To(Succeed())
	g.Expect(s.Delete(ctx, "a/b/c.json")).To(Succeed(), "deleting a missing name")
	_, err = s.Get(ctx, "a/b/c.json")
	g.Expect(err).To(MatchError(ErrNotFound))
	_, err = s.Get(ctx, "a/b")
	g.Expect(err).To(MatchError(ErrNotFound), "a folder is not a blob")

	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", ".lifeboat-tmp/x"} {
		_, err := s.Put(ctx, bad, strings.NewReader("x"))
		g.Expect(err).To(MatchError(ContainSubstring("invalid name")), bad)
	}
}

// Walk gives the names in lexical order, as Azure lists them ("b-c" before
// "b/x" although the folder b sorts first in its directory), in pages of
// dirStorePage, and stops at the first error of fn.
func TestDirStoreWalk(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := NewDirStore(t.TempDir())
	var want []string
	for _, name := range []string{"w/b/x", "w/b-c", "w/b.d/y", "w/a", "other"} {
		_, err := s.Put(ctx, name, strings.NewReader("x"))
		g.Expect(err).NotTo(HaveOccurred())
	}
	want = append(want, "w/a", "w/b-c", "w/b.d/y", "w/b/x")
	for i := range dirStorePage + 10 {
		name := fmt.Sprintf("w/many/%05d", i)
		_, err := s.Put(ctx, name, strings.NewReader("x"))
		g.Expect(err).NotTo(HaveOccurred())
		want = append(want, name)
	}
	var got []string
	var pages []int
	g.Expect(s.Walk(ctx, "w/", func(names []string) error {
		got = append(got, names...)
		pages = append(pages, len(names))
		return nil
	})).To(Succeed())
	g.Expect(got).To(Equal(want))
	g.Expect(pages).To(Equal([]int{dirStorePage, 14}))

	stop := errors.New("stop")
	calls := 0
	g.Expect(s.Walk(ctx, "w/", func([]string) error { calls++; return stop })).To(MatchError(stop))
	g.Expect(calls).To(Equal(1))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }

func readAll(t testing.TB, s Store, name string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEmptyBackup(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	m := writeBackup(t, store, testDir, nil, nil)
	g.Expect(m.Counts).To(Equal(Counts{Resources: map[string]int64{}}))
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Items(ctx, func(Item) error { return errors.New("no items expected") })).To(Succeed())
	list, err := r.ResourceList(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list).To(BeEmpty())
	logs, err := r.Log(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(BeEmpty())
}

// An object larger than the Reader's MaxObjectSize is one object that
// cannot be restored, not a corrupt backup: the Reader checks it and hands
// it over without its bytes, and the objects around it as they are.
func TestItemsHandOverOversizeObjectsWithoutThem(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	big := itemOf(named(configMaps, "shop", "big"), map[string]any{"x": strings.Repeat("x", 2000)})
	small := itemOf(named(configMaps, "shop", "small"), nil)
	writeBackup(t, store, testDir, []Item{small, big, small}, nil)

	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	r.Limits.MaxObjectSize = 1024
	g.Expect(r.Verify(ctx)).To(Succeed())
	var got []Item
	g.Expect(r.Items(ctx, func(it Item) error { got = append(got, it); return nil })).To(Succeed())
	g.Expect(got).To(HaveLen(3))
	g.Expect(got[0]).To(Equal(small))
	g.Expect(got[1].Ref()).To(Equal(big.Ref()))
	g.Expect(got[1].Object).To(BeNil())
	g.Expect(got[1].Oversize).To(BeEquivalentTo(len(big.Object)))
	g.Expect(got[2]).To(Equal(small))
	g.Expect(DefaultLimits.MaxObjectSize).To(BeEquivalentTo(4<<20), "the API server takes about 3 MiB")
}
