package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/restore"
	"github.com/kopia/kopia/snapshot/snapshotfs"
	"github.com/kopia/kopia/snapshot/upload"
)

// Snapshot is what a backup records of one volume's snapshot.
type Snapshot struct {
	// ID is the kopia manifest ID of the snapshot.
	ID string `json:"id"`
	// Repository is the repository's folder in the target.
	Repository string `json:"repository"`
	// Bytes and Files are the volume's size and file count.
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
	// CachedFiles were unchanged since the previous snapshot and not read.
	CachedFiles int64 `json:"cachedFiles"`
}

// Source names a volume's snapshots in its repository: the cluster, and
// the PVC's namespace and name. A second backup of the same source reuses
// the files of the latest snapshot whose size and modification time did not
// change, without reading them.
func Source(cluster, namespace, pvc string) snapshot.SourceInfo {
	return snapshot.SourceInfo{Host: cluster, UserName: "lifeboat", Path: "/" + namespace + "/" + pvc}
}

// Backup writes a snapshot of root as source; progress, if set, is called
// with the bytes read or reused so far.
func (r *Repository) Backup(ctx context.Context, source snapshot.SourceInfo, root fs.Directory, progress func(bytes int64)) (Snapshot, error) {
	return r.upload(ctx, source, root, true, progress)
}

// upload writes a snapshot of root as source, reusing the files of the
// source's latest snapshot when incremental is set. Nothing is saved when
// any entry of root could not be read.
func (r *Repository) upload(ctx context.Context, source snapshot.SourceInfo, root fs.Directory, incremental bool, progress func(bytes int64)) (Snapshot, error) {
	var out Snapshot
	err := repo.WriteSession(ctx, r.Repository, repo.WriteSessionOptions{Purpose: "lifeboat volume backup"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		var previous []*snapshot.Manifest
		if incremental {
			var err error
			if previous, err = latest(ctx, w, source); err != nil {
				return err
			}
		}
		u := upload.NewUploader(w)
		if progress == nil {
			progress = func(int64) {}
		}
		u.Progress = &bytesProgress{report: progress}
		man, err := u.Upload(ctx, root, policy.BuildTree(nil, policy.DefaultPolicy), source, previous...)
		if err != nil {
			return err
		}
		if man.IncompleteReason != "" {
			return fmt.Errorf("the snapshot is incomplete: %s", man.IncompleteReason)
		}
		if n := man.Stats.ErrorCount; n > 0 {
			return fmt.Errorf("%d files or directories could not be read", n)
		}
		id, err := snapshot.SaveSnapshot(ctx, w, man)
		if err != nil {
			return err
		}
		out = Snapshot{ID: string(id), Repository: r.Prefix(), Bytes: man.Stats.TotalFileSize,
			Files: int64(man.Stats.TotalFileCount), CachedFiles: int64(man.Stats.CachedFiles)}
		return nil
	})
	return out, err
}

// latest is the source's latest complete snapshot, if any.
func latest(ctx context.Context, rep repo.Repository, source snapshot.SourceInfo) ([]*snapshot.Manifest, error) {
	all, err := snapshot.ListSnapshots(ctx, rep, source)
	if err != nil {
		return nil, err
	}
	var best *snapshot.Manifest
	for _, m := range all {
		if m.IncompleteReason == "" && (best == nil || m.StartTime.After(best.StartTime)) {
			best = m
		}
	}
	if best == nil {
		return nil, nil
	}
	return []*snapshot.Manifest{best}, nil
}

// Restore writes the snapshot id as a tar stream into w and closes w.
func (r *Repository) Restore(ctx context.Context, id string, w io.WriteCloser) (restore.Stats, error) {
	man, err := snapshot.LoadSnapshot(ctx, r.Repository, manifest.ID(id))
	if err != nil {
		w.Close()
		return restore.Stats{}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	root, err := snapshotfs.SnapshotRoot(r.Repository, man)
	if err != nil {
		w.Close()
		return restore.Stats{}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return restore.Entry(ctx, r.Repository, restore.NewTarOutput(w), root, restore.Options{RestoreDirEntryAtDepth: math.MaxInt32}) // the whole tree, no placeholders
}

// Fill restores the snapshot id into a write-mode mover's volume.
func (r *Repository) Fill(ctx context.Context, id string, mover *MoverClient) (Unpacked, error) {
	pr, pw := io.Pipe()
	restored := make(chan error, 1)
	go func() {
		_, err := r.Restore(ctx, id, pw)
		pw.CloseWithError(err)
		restored <- err
	}()
	n, err := mover.Unpack(ctx, pr)
	pr.CloseWithError(err) // unblocks the restore if the mover gave up
	if rerr := <-restored; rerr != nil {
		return n, fmt.Errorf("reading snapshot %s: %w", id, rerr)
	}
	return n, err
}

// Delete deletes the snapshot id; the data only it held is freed by the
// repository's maintenance. A snapshot that is already gone is not an error.
func (r *Repository) Delete(ctx context.Context, id string) error {
	return repo.WriteSession(ctx, r.Repository, repo.WriteSessionOptions{Purpose: "lifeboat snapshot deletion"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		err := w.DeleteManifest(ctx, manifest.ID(id))
		if errors.Is(err, manifest.ErrNotFound) {
			return nil
		}
		return err
	})
}

// bytesProgress reports the bytes hashed or reused so far.
type bytesProgress struct {
	upload.NullUploadProgress
	n      atomic.Int64
	report func(int64)
}

func (p *bytesProgress) Enabled() bool { return true }

func (p *bytesProgress) HashedBytes(n int64) { p.report(p.n.Add(n)) }

func (p *bytesProgress) CachedFile(_ string, n int64) { p.report(p.n.Add(n)) }
