package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	. "github.com/onsi/gomega"
)

// validStore returns a store with one small valid backup at testDir.
func validStore(t testing.TB) *memStore {
	store := newMemStore()
	writeBackup(t, store, testDir, sampleItems(12), []logLine{
		{LevelInfo, nil, "Backup started"},
		{LevelWarning, nil, "Skipped something"},
	})
	return store
}

func editManifest(t testing.TB, store *memStore, edit func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(store.get(testDir+"/backup.json"), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	store.set(testDir+"/backup.json", b)
}

// command is a valid entry of backup.json's commands, with the fields of
// change changed.
func command(change map[string]any) map[string]any {
	c := map[string]any{"namespace": "shop", "pod": "db-0", "owner": "StatefulSet/db", "container": "db", "file": "db.sql",
		"snapshot": "k0123", "repository": "lifeboat/v1/repositories/spoke-1/shop/", "bytes": 10}
	for k, v := range change {
		c[k] = v
	}
	return c
}

// TestDamagedBackups: what a bucket can do to a finished backup (lose or cut
// files, flip bits, hold one from a newer Lifeboat) makes the Reader fail
// with an error that says what is wrong, before it hands out any item.
func TestDamagedBackups(t *testing.T) {
	flip := func(name string, at func(n int) int) func(*memStore) {
		return func(s *memStore) {
			b := bytes.Clone(s.get(testDir + "/" + name))
			b[at(len(b))] ^= 0x01
			s.set(testDir+"/"+name, b)
		}
	}
	cut := func(name string) func(*memStore) {
		return func(s *memStore) {
			b := s.get(testDir + "/" + name)
			s.set(testDir+"/"+name, b[:len(b)/2])
		}
	}
	middle := func(n int) int { return n / 2 }
	last := func(n int) int { return n - 1 }
	for _, tc := range []struct {
		name    string
		damage  func(*memStore)
		openErr string // the error of Open, if it is Open that fails
		err     string // else a regexp for the error of Verify and Items
		kind    error
	}{
		{
			name:    "backup.json missing",
			damage:  func(s *memStore) { s.Delete(context.Background(), testDir+"/backup.json") },
			openErr: "backup b1 is incomplete: backup.json, the commit marker, is missing",
			kind:    ErrIncomplete,
		},
		{
			name: "format version from a newer Lifeboat",
			damage: func(s *memStore) {
				editManifest(t, s, func(m map[string]any) { m["formatVersion"] = 3; m["files"] = "a new shape" })
			},
			openErr: "backup b1 was written by a newer Lifeboat (format 3); this Lifeboat reads format 2",
			kind:    ErrNewerFormat,
		},
		{
			name:    "backup.json cut short",
			damage:  cut(ManifestFile),
			openErr: "backup b1: backup.json is not valid JSON: unexpected end of JSON input",
			kind:    ErrCorrupt,
		},
		{
			name:    "backup.json without formatVersion",
			damage:  func(s *memStore) { editManifest(t, s, func(m map[string]any) { delete(m, "formatVersion") }) },
			openErr: "backup b1: backup.json has no formatVersion",
			kind:    ErrCorrupt,
		},
		{
			name:    "formatVersion zero",
			damage:  func(s *memStore) { editManifest(t, s, func(m map[string]any) { m["formatVersion"] = 0 }) },
			openErr: "backup b1: backup.json: formatVersion 0 is not a format version",
			kind:    ErrCorrupt,
		},
		{
			name:    "backup.json of a backup copied from elsewhere",
			damage:  func(s *memStore) { editManifest(t, s, func(m map[string]any) { m["backupID"] = "b2" }) },
			openErr: "backup b1: backup.json describes backup b2 of cluster spoke-1, but is stored in " + testDir,
			kind:    ErrCorrupt,
		},
		{
			name: "backup.json without a file's checksum",
			damage: func(s *memStore) {
				editManifest(t, s, func(m map[string]any) { delete(m["files"].(map[string]any), "log.jsonl.gz") })
			},
			openErr: "backup b1: backup.json: files has no entry for log.jsonl.gz",
			kind:    ErrCorrupt,
		},
		{
			name: "a command's file that is a path",
			damage: func(s *memStore) {
				editManifest(t, s, func(m map[string]any) { m["commands"] = []any{command(map[string]any{"file": "../../etc/passwd"})} })
			},
			openErr: `backup b1: backup.json: commands[0]: file "../../etc/passwd": must be a plain file name, without / or \`,
			kind:    ErrCorrupt,
		},
		{
			name: "a command's namespace that is not a namespace",
			damage: func(s *memStore) {
				editManifest(t, s, func(m map[string]any) { m["commands"] = []any{command(map[string]any{"namespace": "../other"})} })
			},
			openErr: `backup b1: backup.json: commands[0]: namespace "../other": must be a namespace name`,
			kind:    ErrCorrupt,
		},
		{
			name: "a command's owner that is not Kind/name",
			damage: func(s *memStore) {
				editManifest(t, s, func(m map[string]any) { m["commands"] = []any{command(map[string]any{"owner": "db"})} })
			},
			openErr: `backup b1: backup.json: commands[0]: owner "db": must be <Kind>/<name>`,
			kind:    ErrCorrupt,
		},
		{
			name:   "resources.tar.zst missing",
			damage: func(s *memStore) { s.Delete(context.Background(), testDir+"/resources.tar.zst") },
			err:    `^backup b1: resources\.tar\.zst is missing, though backup\.json lists it$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "resources.tar.zst cut short",
			damage: cut(ResourcesFile),
			err:    `^backup b1: resources\.tar\.zst is \d+ bytes, backup\.json records \d+: it is truncated or was replaced$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "resources.tar.zst empty",
			damage: func(s *memStore) { s.set(testDir+"/resources.tar.zst", nil) },
			err:    `^backup b1: resources\.tar\.zst is 0 bytes, backup\.json records \d+: it is truncated or was replaced$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "resources.tar.zst with a byte flipped in the middle",
			damage: flip(ResourcesFile, middle),
			err:    `^backup b1: resources\.tar\.zst has sha256 [0-9a-f]{64}, backup\.json records [0-9a-f]{64}: it was changed or damaged$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "resources.tar.zst with its last byte flipped",
			damage: flip(ResourcesFile, last),
			err:    `^backup b1: resources\.tar\.zst has sha256 [0-9a-f]{64}, backup\.json records [0-9a-f]{64}: it was changed or damaged$`,
			kind:   ErrCorrupt,
		},
		{
			name: "resources.tar.zst with a byte appended",
			damage: func(s *memStore) {
				s.set(testDir+"/resources.tar.zst", append(bytes.Clone(s.get(testDir+"/resources.tar.zst")), 0))
			},
			err:  `^backup b1: resources\.tar\.zst is larger than the \d+ bytes backup\.json records: it was changed or replaced$`,
			kind: ErrCorrupt,
		},
		{
			name:   "resource-list.json.gz cut short",
			damage: cut(ResourceListFile),
			err:    `^backup b1: resource-list\.json\.gz is \d+ bytes, backup\.json records \d+: it is truncated or was replaced$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "resource-list.json.gz with a byte flipped",
			damage: flip(ResourceListFile, middle),
			err:    `^backup b1: resource-list\.json\.gz has sha256 [0-9a-f]{64}, backup\.json records [0-9a-f]{64}: it was changed or damaged$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "log.jsonl.gz with a byte flipped",
			damage: flip(LogFile, middle),
			err:    `^backup b1: log\.jsonl\.gz has sha256 [0-9a-f]{64}, backup\.json records [0-9a-f]{64}: it was changed or damaged$`,
			kind:   ErrCorrupt,
		},
		{
			name:   "log.jsonl.gz missing",
			damage: func(s *memStore) { s.Delete(context.Background(), testDir+"/log.jsonl.gz") },
			err:    `^backup b1: log\.jsonl\.gz is missing, though backup\.json lists it$`,
			kind:   ErrCorrupt,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			store := validStore(t)
			tc.damage(store)
			r, err := Open(ctx, store, testDir)
			if tc.openErr != "" {
				g.Expect(err).To(MatchError(tc.openErr))
				g.Expect(err).To(MatchError(tc.kind))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			err = r.Verify(ctx)
			g.Expect(err).To(MatchError(MatchRegexp(tc.err)))
			g.Expect(err).To(MatchError(tc.kind))
			n := 0
			err = r.Items(ctx, func(Item) error { n++; return nil })
			g.Expect(err).To(MatchError(MatchRegexp(tc.err)))
			g.Expect(n).To(BeZero(), "items handed out from a damaged backup")
		})
	}
}

// tarEntry is one entry of a crafted resources.tar.zst.
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func regular(name string, body []byte) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}, body: body}
}

func makeTar(t testing.TB, entries []tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// reseal rewrites backup.json's sizes and checksums to match the files, as
// someone who can write to the bucket could.
func reseal(t testing.TB, store *memStore) {
	editManifest(t, store, func(m map[string]any) {
		files := map[string]any{}
		for _, name := range []string{ResourcesFile, ResourceListFile, LogFile} {
			b := store.get(testDir + "/" + name)
			sum := sha256.Sum256(b)
			files[name] = map[string]any{"size": len(b), "sha256": hex.EncodeToString(sum[:])}
		}
		m["files"] = files
	})
}

// craftedStore holds a backup whose resources.tar.zst and resource-list are
// as given, with backup.json resealed and counting what the list names.
func craftedStore(t testing.TB, entries []tarEntry, list []ItemRef) *memStore {
	store := validStore(t)
	store.set(testDir+"/"+ResourcesFile, zstdEncoder.EncodeAll(makeTar(t, entries), nil))
	listJSON, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	store.set(testDir+"/"+ResourceListFile, gzipped(listJSON))
	editManifest(t, store, func(m map[string]any) {
		resources := map[string]int64{}
		for _, ref := range list {
			resources[ref.resourceKey()]++
		}
		var objectBytes int
		for _, e := range entries {
			objectBytes += len(e.body)
		}
		counts := m["counts"].(map[string]any)
		counts["items"], counts["resources"], counts["objectBytes"] = len(list), resources, objectBytes
	})
	reseal(t, store)
	return store
}

// TestCraftedBackups: a backup whose backup.json matches its files, but
// whose files are not what a Writer writes, is refused entry by entry with
// an error that names the entry; no item reaches the caller.
func TestCraftedBackups(t *testing.T) {
	cm := named(configMaps, "shop", "a")
	cm2 := named(configMaps, "shop", "b")
	node := ItemRef{Version: "v1", Resource: "nodes", Kind: "Node", Name: "n1"}
	good := object(cm, nil)
	entry := cm.entryName()
	link := func(flag byte, name string) tarEntry {
		return tarEntry{hdr: tar.Header{Typeflag: flag, Name: name, Linkname: "/etc/passwd", Mode: 0o777}}
	}
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		list    []ItemRef
		limits  func(*Limits)
		damage  func(*memStore)
		err     string
	}{
		{
			name:    "path traversal",
			entries: []tarEntry{regular("../etc/passwd", good)},
			list:    []ItemRef{cm},
			err:     `backup b1: resources.tar.zst: entry "../etc/passwd": path escapes the archive`,
		},
		{
			name:    "path traversal inside resources/",
			entries: []tarEntry{regular("resources/core/v1/configmaps/../../../../../etc/passwd", good)},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/../../../../../etc/passwd": path escapes the archive`,
		},
		{
			name:    "absolute path",
			entries: []tarEntry{regular("/etc/passwd", good)},
			list:    []ItemRef{cm},
			err:     `entry "/etc/passwd": path is absolute`,
		},
		{
			name:    "unclean path",
			entries: []tarEntry{regular("resources/core/v1/configmaps/shop/./a.json", good)},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/shop/./a.json": path is not clean`,
		},
		{
			name:    "path of another shape",
			entries: []tarEntry{regular("resources/core/v1/configmaps/a.json", good)},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/a.json": path is not resources/<group>/<version>/<resource>/<namespace|_cluster>/<name>.json`,
		},
		{
			name:    "empty group in the path",
			entries: []tarEntry{regular("resources//v1/configmaps/shop/a.json", good)},
			list:    []ItemRef{cm},
			err:     `path is not clean`,
		},
		{
			name:    "invalid namespace in the path",
			entries: []tarEntry{regular("resources/core/v1/configmaps/Shop/a.json", good)},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/Shop/a.json": namespace "Shop": must be "" (cluster-scoped) or a namespace name`,
		},
		{
			name:    "symlink",
			entries: []tarEntry{link(tar.TypeSymlink, entry)},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/shop/a.json": is a symlink, not a regular file`,
		},
		{
			name:    "hard link",
			entries: []tarEntry{link(tar.TypeLink, entry)},
			list:    []ItemRef{cm},
			err:     "is a hard link, not a regular file",
		},
		{
			name:    "device",
			entries: []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeChar, Name: entry, Devmajor: 1, Devminor: 3}}},
			list:    []ItemRef{cm},
			err:     "is a character device, not a regular file",
		},
		{
			name:    "directory",
			entries: []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: entry, Mode: 0o755}}},
			list:    []ItemRef{cm},
			err:     "is a directory, not a regular file",
		},
		{
			name: "zip bomb",
			entries: []tarEntry{
				regular(entry, object(cm, map[string]any{"x": strings.Repeat("0", 3<<20)})),
			},
			list:   []ItemRef{cm},
			limits: func(l *Limits) { l.MaxResourcesSize = 1 << 20 },
			err:    "backup b1: resources.tar.zst decompresses to more than 1048576 bytes, the most Lifeboat reads of it",
		},
		{
			name:    "object is not JSON",
			entries: []tarEntry{regular(entry, []byte(`{"apiVersion":"v1",`))},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/shop/a.json": object is not a JSON object: unexpected end of JSON input`,
		},
		{
			name:    "object names another object",
			entries: []tarEntry{regular(entry, object(cm2, nil))},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/shop/a.json": object's metadata.name is "b", want "a"`,
		},
		{
			name:    "object in another namespace",
			entries: []tarEntry{regular(entry, object(named(configMaps, "kube-system", "a"), nil))},
			list:    []ItemRef{cm},
			err:     `object's metadata.namespace is "kube-system", want "shop"`,
		},
		{
			name:    "object of another kind",
			entries: []tarEntry{regular(entry, object(named(secrets, "shop", "a"), nil))},
			list:    []ItemRef{cm},
			err:     `object's kind is "Secret", want "ConfigMap"`,
		},
		{
			name:    "object of another API version",
			entries: []tarEntry{regular(node.entryName(), []byte(`{"apiVersion":"apps/v1","kind":"Node","metadata":{"name":"n1"}}`))},
			list:    []ItemRef{node},
			err:     `object's apiVersion is "apps/v1", want "v1"`,
		},
		{
			name:    "entry the list does not have",
			entries: []tarEntry{regular(entry, good), regular(cm2.entryName(), object(cm2, nil))},
			list:    []ItemRef{cm},
			err:     `entry "resources/core/v1/configmaps/shop/b.json": is not in resource-list.json.gz, which ends before it`,
		},
		{
			name:    "list item the tar does not have",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm, cm2},
			err:     `backup b1: resource-list.json.gz lists "resources/core/v1/configmaps/shop/b.json", which resources.tar.zst does not hold`,
		},
		{
			name:    "list in another order",
			entries: []tarEntry{regular(entry, good), regular(cm2.entryName(), object(cm2, nil))},
			list:    []ItemRef{cm2, cm},
			err:     `entry "resources/core/v1/configmaps/shop/a.json": is not in resource-list.json.gz, which lists "resources/core/v1/configmaps/shop/b.json" next`,
		},
		{
			name:    "counts that do not match",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm},
			damage: func(s *memStore) {
				editManifest(t, s, func(m map[string]any) {
					counts := m["counts"].(map[string]any)
					counts["items"], counts["resources"] = 2, map[string]any{"core/v1/configmaps": 2}
				})
			},
			err: "backup b1: resources.tar.zst holds 1 items, backup.json counts 2",
		},
		{
			name:    "trailing data after the tar archive",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm},
			damage: func(s *memStore) {
				s.set(testDir+"/"+ResourcesFile, zstdEncoder.EncodeAll(append(makeTar(t, []tarEntry{regular(entry, good)}), "extra"...), nil))
				reseal(t, s)
			},
			err: "backup b1: resources.tar.zst: 5 bytes of trailing data after the end of the tar archive",
		},
		{
			name:    "resources.tar.zst not zstd",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm},
			damage: func(s *memStore) {
				s.set(testDir+"/"+ResourcesFile, makeTar(t, []tarEntry{regular(entry, good)}))
				reseal(t, s)
			},
			err: "backup b1: resources.tar.zst: reading the tar stream: invalid input: magic number mismatch",
		},
		{
			name:    "resource list not an array",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm},
			damage: func(s *memStore) {
				s.set(testDir+"/"+ResourceListFile, gzipped([]byte(`{"items":[]}`)))
				reseal(t, s)
			},
			err: "backup b1: resource-list.json.gz is not a JSON array",
		},
		{
			name:    "resource list item without a kind",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{{Version: "v1", Resource: "configmaps", Namespace: "shop", Name: "a"}},
			err:     `backup b1: resource-list.json.gz: item 1: kind "": must be a kind such as ConfigMap`,
		},
		{
			name:    "log with an unknown level",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm},
			damage: func(s *memStore) {
				s.set(testDir+"/"+LogFile, gzipped([]byte(`{"time":"2024-01-01T00:00:00Z","level":"fatal","message":"x"}`+"\n")))
				reseal(t, s)
			},
			err: `backup b1: log.jsonl.gz: line 1: level "fatal" is not info, warning or error`,
		},
		{
			name:    "log that does not match the counts",
			entries: []tarEntry{regular(entry, good)},
			list:    []ItemRef{cm},
			damage: func(s *memStore) {
				s.set(testDir+"/"+LogFile, gzipped(nil))
				reseal(t, s)
			},
			err: "backup b1: log.jsonl.gz has 0 warnings and 0 errors, backup.json counts 1 and 0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			store := craftedStore(t, tc.entries, tc.list)
			if tc.damage != nil {
				tc.damage(store)
			}
			r, err := Open(ctx, store, testDir)
			g.Expect(err).NotTo(HaveOccurred())
			if tc.limits != nil {
				tc.limits(&r.Limits)
			}
			err = r.Verify(ctx)
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
			g.Expect(err).To(MatchError(ErrCorrupt))
			n := 0
			err = r.Items(ctx, func(Item) error { n++; return nil })
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
			g.Expect(n).To(BeZero(), "items handed out from a crafted backup")
		})
	}
}

// TestCraftedBackupThatIsValid makes sure the crafting helpers make what the
// reader accepts, so that the cases above fail for their stated reason.
func TestCraftedBackupThatIsValid(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cm := named(configMaps, "shop", "a")
	store := craftedStore(t, []tarEntry{regular(cm.entryName(), object(cm, nil))}, []ItemRef{cm})
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	var got []Item
	g.Expect(r.Items(ctx, func(it Item) error { got = append(got, it); return nil })).To(Succeed())
	g.Expect(got).To(Equal([]Item{itemOf(cm, nil)}))
}

// TestItemsNoticesChangeAfterVerify: the files change between Verify and
// Items; Items fails, at the latest when the stream ends.
func TestItemsNoticesChangeAfterVerify(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := validStore(t)
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Verify(ctx)).To(Succeed())

	// Replace resources.tar.zst by a well-formed one whose last item differs.
	var entries []tarEntry
	var list []ItemRef
	for _, it := range sampleItems(12) {
		entries = append(entries, regular(it.Ref().entryName(), it.Object))
		list = append(list, it.Ref())
	}
	last := list[len(list)-1]
	entries[len(entries)-1].body = object(last, map[string]any{"changed": true})
	entries[len(entries)-1].hdr.Size = int64(len(entries[len(entries)-1].body))
	store.set(testDir+"/"+ResourcesFile, zstdEncoder.EncodeAll(makeTar(t, entries), nil))

	err = r.Items(ctx, func(Item) error { return nil })
	g.Expect(err).To(MatchError(ErrCorrupt))
	g.Expect(err).To(MatchError(ContainSubstring("backup b1: resources.tar.zst ")))
}

// TestResealedBackupFailsItsDigest: a backup rewritten and resealed (its
// backup.json recomputed to match) passes Verify, but not the sha256 of
// backup.json that its writer reported: that is what the hub records.
func TestResealedBackupFailsItsDigest(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	written := writeBackup(t, store, testDir, sampleItems(3), nil)
	sum := sha256.Sum256(store.get(testDir + "/" + ManifestFile))
	g.Expect(written.SHA256).To(Equal(hex.EncodeToString(sum[:])), "Close reports the sha256 of the bytes it wrote")

	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Manifest().SHA256).To(Equal(written.SHA256))
	g.Expect(r.CheckSHA256(written.SHA256)).To(Succeed())
	g.Expect(r.CheckSHA256("")).To(Succeed(), "no recorded digest, nothing to compare")

	cm := named(configMaps, "shop", "forged")
	forged := craftedStore(t, []tarEntry{regular(cm.entryName(), object(cm, nil))}, []ItemRef{cm})
	r, err = Open(ctx, forged, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Verify(ctx)).To(Succeed(), "the reseal is consistent in itself")
	err = r.CheckSHA256(written.SHA256)
	g.Expect(err).To(MatchError(ErrCorrupt))
	g.Expect(err.Error()).To(ContainSubstring(written.SHA256))
}

// A backup.json with valid commands opens, and names them; one without
// (every backup before backup commands) names none.
func TestCommandsInBackupJSON(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := validStore(t)
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Manifest().Commands).To(BeNil())

	editManifest(t, store, func(m map[string]any) {
		m["commands"] = []any{command(nil), command(map[string]any{"owner": nil, "pod": "cache", "preBackupPod": "dump", "file": "dump.rdb"})}
	})
	r, err = Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Manifest().Commands).To(Equal([]CommandOutput{
		{Namespace: "shop", Pod: "db-0", Owner: "StatefulSet/db", Container: "db", File: "db.sql", Snapshot: "k0123", Repository: "lifeboat/v1/repositories/spoke-1/shop/", Bytes: 10},
		{Namespace: "shop", Pod: "cache", Container: "db", File: "dump.rdb", PreBackupPod: "dump", Snapshot: "k0123", Repository: "lifeboat/v1/repositories/spoke-1/shop/", Bytes: 10},
	}))
	g.Expect(r.Manifest().Snapshots()).To(Equal(map[string][]string{"shop": {"k0123", "k0123"}}))
}
