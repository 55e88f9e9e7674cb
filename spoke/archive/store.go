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
	// List returns the names that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
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
	// Walk only the deepest folder that the prefix names in full.
	start := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir, err := s.file(prefix[:i])
		if err != nil {
			return nil, err
		}
		start = dir
	}
	var names []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == dirStoreTemp {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(rel, prefix) {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
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
