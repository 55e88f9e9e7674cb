package restore

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// entry is one object ready to write: cleaned, mapped, and classified.
type entry struct {
	// Ref is the item as the backup names it, for the log.
	Ref archive.ItemRef `json:"ref"`
	// Namespace and Name are where the object goes.
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"name"`
	// UID is the object's UID in the backup, for the owner references of others.
	UID string `json:"uid,omitempty"`
	// Need, when set, is what a selected object must need for Auto to take
	// this cluster-scoped one.
	Need string `json:"need,omitempty"`
	// Owned: the object has owner references to rewrite.
	Owned bool `json:"owned,omitempty"`
	// Merge: apply into an existing object whatever the policy (the default
	// ServiceAccount).
	Merge bool `json:"merge,omitempty"`
	// Object is the cleaned JSON.
	Object []byte `json:"-"`
}

// target names the object where it goes, for messages.
func (e *entry) target() string {
	if e.Namespace == "" {
		return e.Name
	}
	return e.Namespace + "/" + e.Name
}

// spool holds the entries on disk between reading and writing: one file per
// priority class and owner-ness, each a sequence of
// uvarint(len(header)) header uvarint(len(object)) object.
type spool struct {
	dir   string
	files map[string]*spoolWriter
	// limit, when positive, bounds written.
	limit, written int64
}

// ErrSpoolFull: the restore would spool more than Options.SpoolLimit.
var ErrSpoolFull = errors.New("the restore spool is full")

// spoolEntryOverhead bounds what the spool adds to an object of an honest
// backup: the entry's header (its names) and the lengths.
const spoolEntryOverhead = 1 << 10

// SpoolNeed is the most a restore of the backup m describes spools: its
// objects' bytes, and spoolEntryOverhead for each. Cleaning only makes
// objects smaller, so an honest backup fits.
func SpoolNeed(m *archive.Manifest) int64 {
	return m.Counts.ObjectBytes + m.Counts.Items*spoolEntryOverhead
}

// FreeSpace is how many bytes a user without privileges may still write in
// the file system that holds dir.
func FreeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("restore: free space in %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

type spoolWriter struct {
	f *os.File
	w *bufio.Writer
}

func newSpool(parent string, limit int64) (*spool, error) {
	dir, err := os.MkdirTemp(parent, "lifeboat-restore-")
	if err != nil {
		return nil, fmt.Errorf("restore: making the spool directory: %w", err)
	}
	return &spool{dir: dir, files: map[string]*spoolWriter{}, limit: limit}, nil
}

func spoolName(class int, owned bool) string {
	if owned {
		return fmt.Sprintf("%02d-owned", class)
	}
	return fmt.Sprintf("%02d", class)
}

func (s *spool) add(class int, e *entry) error {
	name := spoolName(class, e.Owned)
	sw := s.files[name]
	if sw == nil {
		f, err := os.Create(filepath.Join(s.dir, name))
		if err != nil {
			return fmt.Errorf("restore: spool: %w", err)
		}
		sw = &spoolWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}
		s.files[name] = sw
	}
	hdr, err := json.Marshal(e)
	if err != nil {
		return err
	}
	s.written += int64(len(hdr) + len(e.Object) + 2*binary.MaxVarintLen64)
	if s.limit > 0 && s.written > s.limit {
		return fmt.Errorf("%w: at %s it holds more than the %d bytes reserved for it", ErrSpoolFull, e.Ref, s.limit)
	}
	var n [binary.MaxVarintLen64]byte
	for _, b := range [][]byte{hdr, e.Object} {
		if _, err := sw.w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
			return fmt.Errorf("restore: spool: %w", err)
		}
		if _, err := sw.w.Write(b); err != nil {
			return fmt.Errorf("restore: spool: %w", err)
		}
	}
	return nil
}

// finish flushes and closes every file written.
func (s *spool) finish() error {
	var errs []error
	for _, sw := range s.files {
		errs = append(errs, sw.w.Flush(), sw.f.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restore: spool: %w", err)
	}
	return nil
}

// open reads back one file; it returns nil if nothing was spooled to it.
func (s *spool) open(class int, owned bool) (*spoolReader, error) {
	name := spoolName(class, owned)
	if s.files[name] == nil {
		return nil, nil
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("restore: spool: %w", err)
	}
	return &spoolReader{f: f, r: bufio.NewReaderSize(f, 256<<10)}, nil
}

func (s *spool) remove() {
	for _, sw := range s.files {
		sw.f.Close()
	}
	os.RemoveAll(s.dir)
}

type spoolReader struct {
	f *os.File
	r *bufio.Reader
}

// next returns the next entry, or io.EOF after the last.
func (sr *spoolReader) next() (*entry, error) {
	hdr, err := sr.chunk()
	if err != nil {
		return nil, err
	}
	obj, err := sr.chunk()
	if err != nil {
		return nil, unexpected(err)
	}
	e := &entry{Object: obj}
	if err := json.Unmarshal(hdr, e); err != nil {
		return nil, fmt.Errorf("restore: spool: %w", err)
	}
	return e, nil
}

func (sr *spoolReader) chunk() ([]byte, error) {
	n, err := binary.ReadUvarint(sr.r)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(sr.r, b); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return fmt.Errorf("restore: spool: %w", io.ErrUnexpectedEOF)
	}
	return err
}

func (sr *spoolReader) close() { sr.f.Close() }
