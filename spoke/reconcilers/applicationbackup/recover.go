package applicationbackup

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// recoverInterrupted settles a backup that is InProgress but not running in
// this process: the spoke stopped while it ran. If its backup.json was
// written and verifies, the backup is complete and marked so; otherwise it is
// marked Failed (Interrupted) and what it wrote is deleted, best-effort.
func (r *Reconciler) recoverInterrupted(ctx context.Context, ab *backupv1alpha1.ApplicationBackup) error {
	m, cleanup := r.cleanUpInterrupted(ctx, ab)
	if m != nil {
		setRecovered(ab, m)
		return nil
	}
	setFinished(ab, backupv1alpha1.ApplicationBackupFailed, backupv1alpha1.ReasonInterrupted,
		"the spoke stopped while the backup ran; "+cleanup+"; create a new ApplicationBackup to try again", r.now())
	return nil
}

// cleanUpInterrupted deletes the partial data of an interrupted backup and
// says what it did, or returns the manifest of a backup that is complete.
func (r *Reconciler) cleanUpInterrupted(ctx context.Context, ab *backupv1alpha1.ApplicationBackup) (*archive.Manifest, string) {
	id := string(ab.Status.BackupID)
	if id == "" {
		return nil, "it had written nothing"
	}
	forceDelete := fmt.Sprintf("delete it with a BackupDeletion of backup %s of cluster %s with force: true", id, r.Cluster)
	target := &backupv1alpha1.BackupTarget{}
	if err := r.Get(ctx, client.ObjectKey{Name: string(ab.Spec.Target)}, target); err != nil {
		return nil, fmt.Sprintf("its partial data could not be deleted (%v): %s", err, forceDelete)
	}
	store, err := r.store(target)
	if err != nil {
		return nil, fmt.Sprintf("its partial data could not be deleted (%v): %s", err, forceDelete)
	}
	dir, err := archive.Path("", r.Cluster, id)
	if err != nil {
		return nil, fmt.Sprintf("its data cannot be located: %v", err)
	}
	names, err := store.List(ctx, dir+"/")
	if err != nil {
		return nil, fmt.Sprintf("its partial data could not be deleted (%v): %s", err, forceDelete)
	}
	if slices.Contains(names, dir+"/"+archive.ManifestFile) {
		m, err := r.readBack(ctx, store, dir, target)
		if err == nil {
			return m, ""
		}
		return nil, fmt.Sprintf("it left a backup.json that does not verify (%v): %s", err, forceDelete)
	}
	n, err := deleteFolder(ctx, store, dir)
	if err != nil {
		return nil, fmt.Sprintf("%d of the %d files it had written were deleted (%v): %s", n, len(names), err, forceDelete)
	}
	return nil, fmt.Sprintf("the %d files it had written were deleted", n)
}
