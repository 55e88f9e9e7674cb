package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	. "github.com/onsi/gomega"
)

// marker is plaintext that must never reach the store of an encrypted backup.
const marker = "lifeboat-plaintext-marker-7d41c"

func newKey(t testing.TB) *age.X25519Identity {
	t.Helper()
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// encryptedBackup writes sampleItems and a Secret and a log line that hold
// marker, encrypted to key.
func encryptedBackup(t testing.TB, store Store, key *age.X25519Identity) ([]Item, *Manifest) {
	t.Helper()
	items := append(sampleItems(60), itemOf(named(secrets, "team-0", marker), map[string]any{"password": marker}))
	meta := testMeta
	meta.Recipient = key.Recipient()
	ref := items[len(items)-1].Ref()
	m := writeBackupWith(t, store, testDir, meta, items, []logLine{{LevelWarning, &ref, "Saw " + marker}})
	return items, m
}

func TestEncryptedRoundTrip(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	key := newKey(t)
	items, m := encryptedBackup(t, store, key)

	g.Expect(m.FormatVersion).To(Equal(2))
	g.Expect(m.Encryption).To(Equal(&Encryption{Recipient: key.Recipient().String()}))

	// Nothing the store holds shows the marker, in any file; the data files
	// are age files, and backup.json is readable JSON that records the key.
	for name, b := range store.blobs {
		g.Expect(bytes.Contains(b, []byte(marker))).To(BeFalse(), "%s holds the plaintext marker", name)
		if !strings.HasSuffix(name, "/"+ManifestFile) {
			g.Expect(string(b)).To(HavePrefix("age-encryption.org/v1\n"), name)
		}
	}
	var raw map[string]any
	g.Expect(json.Unmarshal(store.get(testDir+"/"+ManifestFile), &raw)).To(Succeed())
	g.Expect(raw).To(HaveKeyWithValue("encryption", map[string]any{"recipient": key.Recipient().String()}))
	g.Expect(raw).To(HaveKeyWithValue("formatVersion", float64(2)))

	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Manifest().SHA256).To(Equal(m.SHA256), "the hub's digest of backup.json still works")
	g.Expect(r.UseKey(key)).To(Succeed())
	g.Expect(r.Verify(ctx)).To(Succeed())
	var back []Item
	g.Expect(r.Items(ctx, func(it Item) error { back = append(back, it); return nil })).To(Succeed())
	g.Expect(back).To(Equal(items))
	refs, err := r.ResourceList(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).To(HaveLen(len(items)))
	logs, err := r.Log(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(HaveLen(1))
	g.Expect(logs[0].Message).To(Equal("Saw " + marker))

	text, _, _, err := LogTail(ctx, store, testDir+"/"+LogFile, 1<<20, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(text).To(ContainSubstring("Saw " + marker))
}

// TestWrongKeyReadsNothing: a reader without the key, or with another,
// is refused before it hands out any item, whichever method it calls.
func TestWrongKeyReadsNothing(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	key := newKey(t)
	encryptedBackup(t, store, key)

	for name, tc := range map[string]struct {
		key  *age.X25519Identity
		want error
	}{
		"no key":    {nil, ErrKeyMissing},
		"other key": {newKey(t), ErrKeyMismatch},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := Open(ctx, store, testDir)
			g.Expect(err).NotTo(HaveOccurred(), "backup.json stays readable without the key")
			err = r.UseKey(tc.key)
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(err.Error()).To(ContainSubstring(key.Recipient().String()), "the error names the key the backup needs")
			g.Expect(errors.Is(err, ErrCorrupt)).To(BeFalse())

			// A caller that goes on anyway gets the same error and no item.
			called := 0
			g.Expect(r.Items(ctx, func(Item) error { called++; return nil })).To(MatchError(tc.want))
			g.Expect(r.Verify(ctx)).To(MatchError(tc.want))
			_, err = r.ResourceList(ctx)
			g.Expect(err).To(MatchError(tc.want))
			_, err = r.Log(ctx)
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(called).To(BeZero())

			_, _, _, err = LogTail(ctx, store, testDir+"/"+LogFile, 1<<10, tc.key)
			g.Expect(err).To(MatchError(tc.want))
		})
	}
}

// TestEncryptedTampering: the sha256 in backup.json covers the ciphertext,
// so a changed byte is refused as corrupt, and the key cannot hide it.
func TestEncryptedTampering(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	key := newKey(t)
	encryptedBackup(t, store, key)
	name := testDir + "/" + ResourcesFile
	b := bytes.Clone(store.get(name))
	b[len(b)-20] ^= 1
	store.set(name, b)

	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.UseKey(key)).To(Succeed())
	called := 0
	g.Expect(r.Items(ctx, func(Item) error { called++; return nil })).To(MatchError(ErrCorrupt))
	g.Expect(called).To(BeZero())
}

// TestPlainBackupWithKey: turning encryption on keeps older, plain backups
// readable; backup.json says they are plain.
func TestPlainBackupWithKey(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	items := sampleItems(20)
	m := writeBackup(t, store, testDir, items, nil)
	g.Expect(m.FormatVersion).To(Equal(1))
	g.Expect(m.Encryption).To(BeNil())
	r, err := Open(ctx, store, testDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.UseKey(newKey(t))).To(Succeed())
	n := 0
	g.Expect(r.Items(ctx, func(Item) error { n++; return nil })).To(Succeed())
	g.Expect(n).To(Equal(len(items)))
}

// TestEncryptionManifestChecked: backup.json must say formatVersion 2 with
// encryption, and name a real recipient.
func TestEncryptionManifestChecked(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	for name, edit := range map[string]func(m map[string]any){
		"encryption in format 1":   func(m map[string]any) { m["formatVersion"] = 1 },
		"format 2 without it":      func(m map[string]any) { delete(m, "encryption") },
		"recipient not age X25519": func(m map[string]any) { m["encryption"] = map[string]any{"recipient": "ssh-ed25519 AAAA"} },
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			store := newMemStore()
			encryptedBackup(t, store, key)
			var m map[string]any
			g.Expect(json.Unmarshal(store.get(testDir+"/"+ManifestFile), &m)).To(Succeed())
			edit(m)
			b, err := json.Marshal(m)
			g.Expect(err).NotTo(HaveOccurred())
			store.set(testDir+"/"+ManifestFile, b)
			_, err = Open(ctx, store, testDir)
			g.Expect(err).To(MatchError(ErrCorrupt))
		})
	}
}

func TestEncryptedRestoreLog(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store := newMemStore()
	key := newKey(t)
	l, err := NewRestoreLog(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	defer l.Remove()
	l.Add(RestoreLogEntry{LogEntry: LogEntry{Level: LevelError, Message: "could not create " + marker}, Result: "failed"})
	name := RestoreLogPath(testDir, "spoke-2", "team-a", "r1", "0b1c")
	g.Expect(l.Commit(ctx, store, name, key.Recipient())).To(Succeed())
	g.Expect(bytes.Contains(store.get(name), []byte(marker))).To(BeFalse())

	lines, err := ReadRestoreLog(ctx, store, name, 1<<20, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lines).To(HaveLen(1))
	g.Expect(lines[0].Message).To(ContainSubstring(marker))
	_, err = ReadRestoreLog(ctx, store, name, 1<<20, nil)
	g.Expect(err).To(MatchError(ErrKeyMissing))
	_, err = ReadRestoreLog(ctx, store, name, 1<<20, newKey(t))
	g.Expect(err).To(MatchError(ErrKeyMismatch))
	text, _, _, err := LogTail(ctx, store, name, 1<<10, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(text).To(ContainSubstring(marker))
}

func TestParseKey(t *testing.T) {
	g := NewWithT(t)
	key := newKey(t)
	// What age-keygen writes: comments, then the identity.
	file := "# created: 2026-12-07T05:00:00Z\n# public key: " + key.Recipient().String() + "\n" + key.String() + "\n"
	got, err := ParseKey([]byte(file))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Recipient().String()).To(Equal(key.Recipient().String()))

	for _, bad := range []string{"", "hello", key.Recipient().String(), key.String() + "\n" + newKey(t).String()} {
		_, err := ParseKey([]byte(bad))
		g.Expect(err).To(HaveOccurred(), "%q", bad)
		if bad != "" {
			g.Expect(err.Error()).NotTo(ContainSubstring(bad), "errors never quote what the Secret holds")
		}
	}
}

func TestRepositoryPassword(t *testing.T) {
	g := NewWithT(t)
	key, other := newKey(t), newKey(t)
	same, err := ParseKey([]byte(key.String()))
	g.Expect(err).NotTo(HaveOccurred())

	p := RepositoryPassword(key, "lifeboat/v1/volumes/spoke-1")
	g.Expect(p).To(HaveLen(43), "32 bytes, base64url without padding")
	g.Expect(RepositoryPassword(same, "lifeboat/v1/volumes/spoke-1")).To(Equal(p), "every cluster holding the key derives the same password")
	g.Expect(RepositoryPassword(key, "lifeboat/v1/volumes/spoke-2")).NotTo(Equal(p), "each repository has its own password")
	g.Expect(RepositoryPassword(other, "lifeboat/v1/volumes/spoke-1")).NotTo(Equal(p), "another key gives another password")
	g.Expect(strings.Contains(key.String(), p)).To(BeFalse())
}
