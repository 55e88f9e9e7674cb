package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/virtualfs"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// BackupStream writes a snapshot of source whose root directory holds one
// file, file, with the bytes of rd: a command's output (K8up's backup
// commands). rd is read as kopia chunks it, never held in memory. If rd
// fails (a command that exits non-zero, its pipe closed with that error),
// no snapshot is saved and the error says why. Each stream is stored whole:
// kopia's content-defined chunks still deduplicate what repeats from the
// previous stream.
func (r *Repository) BackupStream(ctx context.Context, source snapshot.SourceInfo, file string, rd io.Reader, progress func(int64)) (Snapshot, error) {
	src := &failureReader{r: rd}
	root := virtualfs.NewStaticDirectory(source.Path, []fs.Entry{virtualfs.StreamingFileFromReader(file, io.NopCloser(src))})
	snap, err := r.upload(ctx, source, root, false, progress)
	if ferr := src.failure(); ferr != nil { // kopia counts a failed read as an error; say which
		return Snapshot{}, fmt.Errorf("reading %s: %w", file, ferr)
	}
	return snap, err
}

// failureReader remembers the first error other than io.EOF its reader returned.
type failureReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (f *failureReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
	}
	return n, err
}

func (f *failureReader) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// OpenFile streams back the one file of the snapshot id that BackupStream
// wrote.
func (r *Repository) OpenFile(ctx context.Context, id string) (io.ReadCloser, error) {
	man, err := snapshot.LoadSnapshot(ctx, r.Repository, manifest.ID(id))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	root, err := snapshotfs.SnapshotRoot(r.Repository, man)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	dir, ok := root.(fs.Directory)
	if !ok {
		return nil, fmt.Errorf("snapshot %s is not a directory", id)
	}
	entries, err := fs.GetAllEntries(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if len(entries) != 1 {
		return nil, fmt.Errorf("snapshot %s holds %d entries, not the one file of a command's output", id, len(entries))
	}
	f, ok := entries[0].(fs.File)
	if !ok {
		return nil, fmt.Errorf("snapshot %s holds %s, which is not a file", id, entries[0].Name())
	}
	rd, err := f.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return rd, nil
}
