package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotFound is what a Store's Get wraps when the name does not exist.
var ErrNotFound = errors.New("not found")

// Store is where backups live: a flat namespace of blobs with
// slash-separated names. spoke/blob implements it over Azure Blob Storage;
// DirStore implements it over a local directory for tests.
//
// The backup format relies on Put being atomic: a name shows new content only
// after Put has read r to io.EOF and returned nil, never a part of it (Azure
// block blobs give this: blocks are staged, then committed in one call). That
// is what makes backup.json, written last, a commit marker.
type Store interface {
	// Put reads r to the end and stores what it read under name, replacing
	// what was there. It returns the number of bytes read from r.
	Put(ctx context.Context, name string, r io.Reader) (n int64, err error)
	// Get opens name for reading. A missing name gives an error that wraps
	// ErrNotFound.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names that start with prefix, sorted. It holds them
	// all: use it for one backup's folder, Walk for anything larger.
	List(ctx context.Context, prefix string) ([]string, error)
	// Walk calls fn with the names that start with prefix, sorted, a page
	// at a time, and stops at fn's first error, which it returns. Only one
	// page is held at a time, so a bucket of millions of names can be read.
	Walk(ctx context.Context, prefix string, fn func(names []string) error) error
	// Delete removes name; deleting a name that does not exist is not an error.
	Delete(ctx context.Context, name string) error
}

// DirStore is a Store over a local directory: name "a/b/c" is the file
// <root>/a/b/c. Put writes a temporary file and renames it, so it is atomic
// like a block blob. It is safe for concurrent use.
type DirStore struct {
	root string
}

// dirStoreTemp is where DirStore stages files; List never shows it.
const dirStoreTemp = ".lifeboat-tmp"

// NewDirStore returns a DirStore rooted at root, which need not exist yet.
func NewDirStore(root string) *DirStore {
	return &DirStore{root: root}
}

// file maps a blob name to its file, refusing names that would leave root.
func (s *DirStore) file(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") ||
		name == dirStoreTemp || strings.HasPrefix(name, dirStoreTemp+"/") {
		return "", fmt.Errorf("dir store: invalid name %q", name)
	}
	return filepath.Join(s.root, filepath.FromSlash(name)), nil
}

// Put implements Store.
func (s *DirStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	file, err := s.file(name)
	if err != nil {
		return 0, err
	}
	tmpDir := filepath.Join(s.root, dirStoreTemp)
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(tmpDir, "put-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("dir store: put %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return n, err
	}
	return n, nil
}

// Get implements Store.
func (s *DirStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	file, err := s.file(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dir store: get %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("dir store: get %s: %w", name, ErrNotFound)
	}
	return f, nil
}

// List implements Store.
func (s *DirStore) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	err := s.Walk(ctx, prefix, func(page []string) error {
		names = append(names, page...)
		return nil
	})
	return names, err
}

// dirStorePage is how many names DirStore.Walk passes to fn at a time.
const dirStorePage = 1000

// Walk implements Store. It reads one directory at a time, so it holds the
// entries of the largest directory on its way and a page of names.
func (s *DirStore) Walk(ctx context.Context, prefix string, fn func(names []string) error) error {
	// Start in the deepest folder that the prefix names in full.
	start := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if _, err := s.file(prefix[:i]); err != nil {
			return err
		}
		start = prefix[:i]
	}
	page := make([]string, 0, dirStorePage)
	emit := func(name string) error {
		page = append(page, name)
		if len(page) < dirStorePage {
			return nil
		}
		err := fn(page)
		page = page[:0]
		return err
	}
	if err := s.walkDir(ctx, start, prefix, emit); err != nil {
		return err
	}
	if len(page) == 0 {
		return nil
	}
	return fn(page)
}

// walkDir passes the files under dir (a name relative to the root, "" for
// the root) that start with prefix to emit, in the lexical order of their
// names: a folder's entries are sorted as "name/" so that "b-c" comes
// before "b/x", as in Azure's listings.
func (s *DirStore) walkDir(ctx context.Context, dir, prefix string, emit func(string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	type entry struct {
		name string
		dir  bool
	}
	sorted := make([]entry, 0, len(entries))
	for _, d := range entries {
		name := d.Name()
		if dir != "" {
			name = dir + "/" + name
		}
		if name == dirStoreTemp {
			continue
		}
		sorted = append(sorted, entry{name, d.IsDir()})
	}
	entries = nil
	key := func(e entry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	sort.Slice(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	for _, e := range sorted {
		k := key(e)
		switch {
		case e.dir && (strings.HasPrefix(k, prefix) || strings.HasPrefix(prefix, k)):
			if err := s.walkDir(ctx, e.name, prefix, emit); err != nil {
				return err
			}
		case !e.dir && strings.HasPrefix(k, prefix):
			if err := emit(e.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements Store.
func (s *DirStore) Delete(ctx context.Context, name string) error {
	file, err := s.file(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
