package applicationbackup

import (
	"context"
	"fmt"

	"filippo.io/age"

	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// KopiaVolumes is the spoke's VolumeMover: the data of each claim goes,
// through a mover pod in the claim's namespace, into the kopia repository of
// that namespace in the target's container, and backup.json names each
// snapshot.
type KopiaVolumes struct {
	Movers  *volumes.Movers
	Targets *targets.Factory
	// Cluster is this cluster's name: the repositories are under it.
	Cluster string
}

// BackUpVolumes implements VolumeMover. A claim that could not be backed up
// is skipped with its reason; it never fails the backup.
func (k *KopiaVolumes) BackUpVolumes(ctx context.Context, b VolumeBackup) ([]SkippedClaim, error) {
	repos, err := k.repositories(ctx, b)
	if err != nil {
		return skipAll(b.Claims, err.Error()), nil
	}
	defer repos.close(context.WithoutCancel(ctx))
	var skipped []SkippedClaim
	var done int64 // bytes of the claims finished
	for _, c := range b.Claims {
		if ctx.Err() != nil {
			skipped = append(skipped, SkippedClaim{Claim: c, Reason: "the backup was stopped"})
			continue
		}
		rep, err := repos.get(ctx, c.Namespace)
		if err != nil {
			skipped = append(skipped, SkippedClaim{Claim: c, Reason: err.Error()})
			continue
		}
		snap, err := k.backUp(ctx, k.Movers.For(b.Target), rep, c, func(n int64) { b.Progress(done + n) })
		if err != nil {
			skipped = append(skipped, SkippedClaim{Claim: c, Reason: err.Error()})
			continue
		}
		done += snap.Bytes
		b.Progress(done)
		b.Writer.AddVolume(archive.VolumeSnapshot{Namespace: c.Namespace, Claim: c.Name, Snapshot: snap.ID,
			Repository: snap.Repository, Bytes: snap.Bytes, Files: snap.Files})
		ref := claimRef(c)
		b.Writer.Log(archive.LevelInfo, &ref, fmt.Sprintf("Volume data backed up as snapshot %s: %d files, %d bytes (%d files unchanged since the previous snapshot were not read again)",
			snap.ID, snap.Files, snap.Bytes, snap.CachedFiles))
	}
	return skipped, nil
}

// repositories opens the volume repositories of b's target, one per
// namespace, as they are needed; close them.
type repositories struct {
	k     *KopiaVolumes
	b     VolumeBackup
	blobs volumes.Blobs
	key   *age.X25519Identity
	open  map[string]*volumes.Repository
}

// repositories reaches b's target; the error says why it cannot.
func (k *KopiaVolumes) repositories(ctx context.Context, b VolumeBackup) (*repositories, error) {
	blobs, err := k.Targets.Client(b.Target)
	if err != nil {
		return nil, fmt.Errorf("the target's storage: %v", err)
	}
	key, err := k.Targets.Key(ctx, b.Target)
	if err != nil {
		return nil, fmt.Errorf("the target's encryption key: %v", err)
	}
	return &repositories{k: k, b: b, blobs: blobs, key: key, open: map[string]*volumes.Repository{}}, nil
}

func (r *repositories) get(ctx context.Context, namespace string) (*volumes.Repository, error) {
	if rep := r.open[namespace]; rep != nil {
		return rep, nil
	}
	rep, err := volumes.Open(ctx, r.blobs, r.k.Cluster, namespace, volumes.Password(r.b.Target, r.key, r.k.Cluster, namespace))
	if err != nil {
		return nil, err
	}
	r.open[namespace] = rep
	return rep, nil
}

func (r *repositories) close(ctx context.Context) {
	for _, rep := range r.open {
		rep.Close(ctx)
	}
}

// backUp snapshots one claim through a mover pod, which it removes whatever
// the outcome.
func (k *KopiaVolumes) backUp(ctx context.Context, movers *volumes.Movers, rep *volumes.Repository, c Claim, progress func(int64)) (volumes.Snapshot, error) {
	mover, stop, err := movers.Start(ctx, c.Namespace, c.Name, false)
	defer stop()
	if err != nil {
		return volumes.Snapshot{}, err
	}
	root, err := mover.Root(ctx)
	if err != nil {
		return volumes.Snapshot{}, err
	}
	return rep.Backup(ctx, volumes.Source(k.Cluster, c.Namespace, c.Name), root, progress)
}
