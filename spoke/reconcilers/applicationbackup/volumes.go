package applicationbackup

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// backUpVolumes is the Volumes stage: the data of every PersistentVolumeClaim
// the backup took goes, through a mover pod in the claim's namespace, into
// the volume repository of that namespace, and backup.json names each
// snapshot. It returns the claims ("namespace/name") whose data was not
// backed up; the log says why for each.
func (r *Reconciler) backUpVolumes(ctx context.Context, rn *run, w *archive.Writer, st *statusWriter) (skipped []string) {
	claims := w.Claims()
	if len(claims) == 0 {
		return nil
	}
	sort.Slice(claims, func(i, j int) bool { return claims[i].String() < claims[j].String() })
	skip := func(ref archive.ItemRef, format string, args ...any) {
		w.Log(archive.LevelWarning, &ref, "The claim's data was not backed up: "+fmt.Sprintf(format, args...))
		skipped = append(skipped, ref.Namespace+"/"+ref.Name)
	}
	blobs, ok := rn.store.(volumes.Blobs)
	if !ok || r.Movers == nil {
		for _, ref := range claims {
			skip(ref, "this spoke cannot back up volume data (no mover image, or a storage that is not Azure Blob)")
		}
		return skipped
	}
	var done int64 // bytes of the claims finished
	repos := map[string]*volumes.Repository{}
	defer func() {
		for _, rep := range repos {
			rep.Close(context.WithoutCancel(ctx))
		}
	}()
	for _, ref := range claims {
		if ctx.Err() != nil {
			skip(ref, "the backup was stopped")
			continue
		}
		var pvc corev1.PersistentVolumeClaim
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, &pvc); err != nil {
			skip(ref, "reading the claim: %v", err)
			continue
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			skip(ref, "the claim is not bound to a volume (phase %q)", pvc.Status.Phase)
			continue
		}
		rep := repos[ref.Namespace]
		if rep == nil {
			var err error
			if rep, err = volumes.Open(ctx, blobs, r.Cluster, ref.Namespace, volumes.PlaceholderPassword(rn.target)); err != nil {
				skip(ref, "%v", err)
				continue
			}
			repos[ref.Namespace] = rep
		}
		snap, err := r.backUpVolume(ctx, rep, ref, func(n int64) { st.volumeBytes.Store(done + n) })
		if err != nil {
			skip(ref, "%v", err)
			continue
		}
		done += snap.Bytes
		st.volumeBytes.Store(done)
		w.AddVolume(archive.VolumeSnapshot{Namespace: ref.Namespace, Claim: ref.Name, Snapshot: snap.ID,
			Repository: snap.Repository, Bytes: snap.Bytes, Files: snap.Files})
		w.Log(archive.LevelInfo, &ref, fmt.Sprintf("The claim's data was backed up as snapshot %s: %d files, %d bytes (%d files unchanged since the previous snapshot were not read again)",
			snap.ID, snap.Files, snap.Bytes, snap.CachedFiles))
	}
	return skipped
}

// backUpVolume snapshots one claim through a mover pod, which it removes
// whatever the outcome.
func (r *Reconciler) backUpVolume(ctx context.Context, rep *volumes.Repository, ref archive.ItemRef, progress func(int64)) (volumes.Snapshot, error) {
	mover, stop, err := r.Movers.Start(ctx, ref.Namespace, ref.Name, false)
	defer stop()
	if err != nil {
		return volumes.Snapshot{}, err
	}
	root, err := mover.Root(ctx)
	if err != nil {
		return volumes.Snapshot{}, err
	}
	return rep.Backup(ctx, volumes.Source(r.Cluster, ref.Namespace, ref.Name), root, progress)
}
