package archive

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// Encryption says how a backup's files are encrypted. A backup with it
// holds resources.tar.zst, resource-list.json.gz and log.jsonl.gz as age
// files (https://age-encryption.org/v1) of what they hold otherwise, to one
// X25519 recipient; backup.json itself stays readable and holds no object.
// The sizes and sha256 in backup.json are those of the encrypted files.
type Encryption struct {
	// Recipient is the age X25519 public key (age1...) the files are
	// encrypted to: the fingerprint of the key that decrypts them.
	Recipient string `json:"recipient"`
}

// formatVersionEncrypted is the formatVersion of an encrypted backup: a
// Lifeboat that does not know Encryption must refuse it, not read
// ciphertext as a corrupt archive.
const formatVersionEncrypted = 2

var (
	// ErrKeyMissing: the backup is encrypted and the reader has no key.
	ErrKeyMissing = errors.New("backup is encrypted and no key was given")
	// ErrKeyMismatch: the backup is encrypted to another key than the reader's.
	ErrKeyMismatch = errors.New("backup is encrypted to another key")
)

// ParseKey reads an age X25519 identity (AGE-SECRET-KEY-1...) from b, which
// may be the whole file age-keygen writes, with its comment lines. It refuses
// anything that is not exactly one X25519 identity.
func ParseKey(b []byte) (*age.X25519Identity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not an age identity as age-keygen writes it (AGE-SECRET-KEY-1...): %w", err)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("holds %d age identities, want exactly one", len(ids))
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, errors.New("is not an age X25519 identity (AGE-SECRET-KEY-1...)")
	}
	return id, nil
}

// RepositoryPassword derives the password of repository repo (a name unique
// within the target, e.g. its path in the container) from key with HKDF-SHA256,
// so that one key delivered to every cluster opens each repository with a
// password of its own, and a password learnt from one repository tells
// nothing of the key or of another repository's.
func RepositoryPassword(key *age.X25519Identity, repo string) string {
	// The identity's canonical text holds its 32 secret bytes; salt and info
	// keep these passwords apart from any other use of the key.
	secret := []byte(key.String())
	b, err := hkdf.Key(sha256.New, secret, []byte("lifeboat.dev/repository-password/v1"), repo, 32)
	if err != nil {
		// Only a length beyond 255*32 bytes fails; 32 never does.
		panic(fmt.Sprintf("archive: hkdf: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkKey returns why key cannot read a backup whose backup.json holds enc:
// ErrKeyMissing (encrypted, no key) or ErrKeyMismatch (encrypted to
// another key). A plain backup needs no key.
func checkKey(id string, enc *Encryption, key *age.X25519Identity) error {
	switch {
	case enc == nil:
		return nil
	case key == nil:
		return newError(ErrKeyMissing, nil, "backup %s is encrypted to key %s, and this cluster's target holds no encryption key: deliver that key to the cluster and name it in the target's spec.encryption",
			id, enc.Recipient)
	case key.Recipient().String() != enc.Recipient:
		return newError(ErrKeyMismatch, nil, "backup %s is encrypted to key %s, but this cluster's target holds key %s: deliver the backup's key to the cluster",
			id, enc.Recipient, key.Recipient())
	}
	return nil
}

// seal wraps a file's stream in an age stream to recipient to, or, with no
// recipient, leaves it as it is.
func seal(w io.Writer, to *age.X25519Recipient) (io.WriteCloser, error) {
	if to == nil {
		return nopWriteCloser{w}, nil
	}
	return age.Encrypt(w, to)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// ageHeader starts every age file.
const ageHeader = "age-encryption.org/"

// openSealed returns r's plain bytes: r itself when it is not an age file,
// its decryption with key when it is. Logs kept beside a backup (restore
// logs) are read this way, since no backup.json says how they were written.
func openSealed(r io.Reader, key *age.X25519Identity, name string) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(ageHeader))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if !strings.HasPrefix(string(head), ageHeader) {
		return br, nil
	}
	if key == nil {
		return nil, newError(ErrKeyMissing, nil, "%s is encrypted, and this cluster's target holds no encryption key", name)
	}
	pr, err := age.Decrypt(br, key)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, newError(ErrKeyMismatch, err, "%s is encrypted to another key than key %s, which this cluster's target holds", name, key.Recipient())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pr, nil
}
