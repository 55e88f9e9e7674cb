// Package backupdeletion deletes one backup's data from a target: normally only
// a complete backup, with force whatever lies under the backup's path.
package backupdeletion

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/panics"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// Reconciler runs BackupDeletions.
type Reconciler struct {
	client.Client
	Targets *targets.Factory
	// Stores opens a target's storage (default: Targets.Client); tests swap it.
	Stores func(*backupv1alpha1.BackupTarget) (archive.Store, error)
	// Revalidation, when set, is asked to validate a target again at once
	// when a request to its storage fails (the deletion is retried).
	Revalidation *targets.Revalidation
	// Runs are the backups running in this process; a forced deletion aborts one.
	Runs     *runs.Registry
	Recorder events.EventRecorder
	// Cluster is this cluster's name in the fleet: teams delete only its
	// backups, unless a target allows other source clusters.
	Cluster string
}

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backupdeletions,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backupdeletions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backuptargets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Reconcile deletes the backup's blobs once and records the outcome; a
// finished BackupDeletion is left as it is.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	del := &backupv1alpha1.BackupDeletion{}
	if err := r.Get(ctx, req.NamespacedName, del); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if finished(del) {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(del.DeepCopy())
	n, err := panics.Call(ctx, func() (int64, error) { return r.delete(ctx, del) })
	var refusal *targets.Refusal
	switch {
	case errors.As(err, &refusal):
		setFinished(del, backupv1alpha1.TaskFailed, refusal.Reason, refusal.Message, n)
	case errors.As(err, new(*panics.Error)):
		setFinished(del, backupv1alpha1.TaskFailed, backupv1alpha1.ReasonInternalError,
			"the deletion stopped: "+err.Error()+"; the spoke kept running, and blobs of the backup may be left", n)
	case err != nil:
		// Storage errors are retried; the status says what went wrong meanwhile.
		setCondition(del, metav1.ConditionFalse, backupv1alpha1.ReasonStorageError, err.Error())
		del.Status.Phase = backupv1alpha1.TaskInProgress
		if perr := r.Status().Patch(ctx, del, patch); perr != nil {
			return ctrl.Result{}, perr
		}
		return ctrl.Result{}, err
	default:
		msg := fmt.Sprintf("deleted %d blobs of backup %s of cluster %s", n, del.Spec.Source.BackupID, del.Spec.Source.Cluster)
		if n == 0 {
			msg = fmt.Sprintf("backup %s of cluster %s has no data on the target: nothing to delete", del.Spec.Source.BackupID, del.Spec.Source.Cluster)
		}
		setFinished(del, backupv1alpha1.TaskCompleted, backupv1alpha1.ReasonSucceeded, msg, n)
	}
	if err := r.Status().Patch(ctx, del, patch); err != nil {
		return ctrl.Result{}, err
	}
	ctrl.LoggerFrom(ctx).Info("Finished the backup deletion", "phase", del.Status.Phase, "blobsDeleted", n)
	if r.Recorder != nil {
		c := meta.FindStatusCondition(del.Status.Conditions, backupv1alpha1.ConditionCompleted)
		kind := "Normal"
		if del.Status.Phase == backupv1alpha1.TaskFailed {
			kind = "Warning"
		}
		r.Recorder.Eventf(del, nil, kind, c.Reason, "Delete", "%s", c.Message)
	}
	return ctrl.Result{}, nil
}

// delete removes the backup's blobs and returns how many it removed.
func (r *Reconciler) delete(ctx context.Context, del *backupv1alpha1.BackupDeletion) (int64, error) {
	target, err := targets.Resolve(ctx, r.Client, del.Namespace, string(del.Spec.Target), del.Spec.Hub)
	if err != nil {
		return 0, err
	}
	store, err := r.store(target)
	if err != nil {
		return 0, &targets.Refusal{Reason: backupv1alpha1.ReasonInvalidConfiguration, Message: err.Error()}
	}
	src := del.Spec.Source
	if del.Namespace != targets.SystemNamespace && !target.Spec.AllowsSourceCluster(string(src.Cluster), r.Cluster) {
		return 0, &targets.Refusal{Reason: backupv1alpha1.ReasonSourceClusterNotAllowed, Message: fmt.Sprintf(
			"a team may delete only backups of this cluster (%s), but spec.source names cluster %s, which BackupTarget %s does not list in allowedSourceClusters",
			r.Cluster, src.Cluster, target.Name)}
	}
	dir, err := archive.Path("", string(src.Cluster), string(src.BackupID))
	if err != nil {
		return 0, &targets.Refusal{Reason: backupv1alpha1.ReasonInvalidConfiguration, Message: err.Error()}
	}
	if empty, err := emptyFolder(ctx, store, dir); err != nil || empty {
		return 0, err
	}
	if err := r.check(ctx, del, store, dir); err != nil {
		return 0, err
	}
	if del.Spec.Force {
		if err := r.Runs.Abort(ctx, runs.Key(string(src.Cluster), string(src.BackupID))); err != nil {
			return 0, err
		}
	}
	// The snapshots go before backup.json, which names them.
	if err := r.deleteSnapshots(ctx, target, store, dir, string(src.Cluster)); err != nil {
		return 0, err
	}
	// backup.json goes first: a backup half deleted is never taken for a
	// complete one. The rest is deleted page by page as it is listed
	// (including what an aborted run wrote before it stopped), so a folder
	// of any size is deleted without holding its names.
	manifest := dir + "/" + archive.ManifestFile
	var n int64
	switch rc, err := store.Get(ctx, manifest); {
	case err == nil:
		rc.Close()
		n++
	case !errors.Is(err, archive.ErrNotFound):
		return 0, err
	}
	if err := store.Delete(ctx, manifest); err != nil {
		return 0, err
	}
	err = store.Walk(ctx, dir+"/", func(names []string) error {
		for _, name := range names {
			if name == manifest {
				continue
			}
			if err := store.Delete(ctx, name); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// deleteSnapshots deletes the snapshots that the backup's backup.json names
// (volume data and backup commands' output) from the repositories of their
// namespaces. The data only they held is freed by kopia's maintenance
// (volumes.Maintainer). A backup without a readable backup.json names none.
func (r *Reconciler) deleteSnapshots(ctx context.Context, target *backupv1alpha1.BackupTarget, store archive.Store, dir, cluster string) error {
	rd, err := archive.Open(ctx, store, dir)
	if err != nil {
		return nil
	}
	byNamespace := rd.Manifest().Snapshots()
	if len(byNamespace) == 0 {
		return nil
	}
	if r.Targets == nil {
		return fmt.Errorf("backup %s holds snapshots (volume data, backup commands' output), which this spoke cannot delete (no Azure Blob access)", dir)
	}
	blobs, err := r.Targets.Client(target)
	if err != nil {
		return err
	}
	key, err := r.Targets.Key(ctx, target)
	if err != nil {
		return fmt.Errorf("backup %s holds snapshots, whose repository password comes from the target's encryption key: %w", dir, err)
	}
	for ns, ids := range byNamespace {
		rep, err := volumes.Open(ctx, blobs, cluster, ns, volumes.Password(target, key, cluster, ns))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err = rep.Delete(ctx, id); err != nil {
				err = fmt.Errorf("deleting snapshot %s of namespace %s: %w", id, ns, err)
				break
			}
		}
		rep.Close(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
	}
	return nil
}

// errStop ends a Walk early.
var errStop = errors.New("stop")

// emptyFolder reports whether no blob lies under dir, reading one page.
func emptyFolder(ctx context.Context, store archive.Store, dir string) (bool, error) {
	empty := true
	err := store.Walk(ctx, dir+"/", func(names []string) error {
		empty = len(names) == 0
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return empty, err
}

// check refuses what a deletion may not do: a normal deletion needs a complete
// backup that is not running here; a team may delete only its own backups,
// and a hub tenant (spec.tenancy) only those its hub namespace made.
func (r *Reconciler) check(ctx context.Context, del *backupv1alpha1.BackupDeletion, store archive.Store, dir string) error {
	src := del.Spec.Source
	reader, openErr := archive.Open(ctx, store, dir)
	if openErr == nil {
		// A backup.json that is gone says nothing (a deletion removes it first);
		// one that differs from what the source cluster wrote is a forgery.
		if err := reader.CheckSHA256(src.ManifestSHA256); err != nil {
			return &targets.Refusal{Reason: backupv1alpha1.ReasonBackupCorrupt, Message: err.Error() + "; nothing was deleted: have an admin inspect the backup's folder"}
		}
	}
	if del.Namespace != targets.SystemNamespace {
		if openErr != nil {
			return &targets.Refusal{Reason: backupv1alpha1.ReasonNamespaceNotAllowed, Message: fmt.Sprintf(
				"backup %s has no readable backup.json, so it cannot be shown to belong to namespace %q (%v); its deletion needs the cluster admin",
				src.BackupID, del.Namespace, openErr)}
		}
		if owner := reader.Manifest().Owner; owner.Namespace != del.Namespace {
			return &targets.Refusal{Reason: backupv1alpha1.ReasonNamespaceNotAllowed, Message: fmt.Sprintf(
				"backup %s does not belong to namespace %q: a team may delete only the backups it made", src.BackupID, del.Namespace)}
		}
	}
	if t := del.Spec.Tenancy; t != nil && openErr == nil {
		if owner := reader.Manifest().Owner; owner.Hub == nil || owner.Hub.Namespace != string(t.HubNamespace) {
			return &targets.Refusal{Reason: backupv1alpha1.ReasonNamespaceNotAllowed, Message: fmt.Sprintf(
				"backup %s was not made for hub namespace %s: a hub tenant may delete only its own backups", src.BackupID, t.HubNamespace)}
		}
	}
	if del.Spec.Force {
		return nil
	}
	if r.Runs.Running(runs.Key(string(src.Cluster), string(src.BackupID))) {
		return &targets.Refusal{Reason: backupv1alpha1.ReasonBackupIncomplete, Message: fmt.Sprintf(
			"backup %s is still running; set force: true to abort it and delete what it wrote", src.BackupID)}
	}
	if openErr != nil {
		return &targets.Refusal{Reason: backupv1alpha1.ReasonBackupIncomplete, Message: fmt.Sprintf(
			"%v; set force: true to delete whatever is under %s", openErr, dir)}
	}
	return nil
}

func (r *Reconciler) store(t *backupv1alpha1.BackupTarget) (archive.Store, error) {
	return r.Revalidation.Open(r.Targets, r.Stores, t)
}

func finished(del *backupv1alpha1.BackupDeletion) bool {
	return del.Status.Phase == backupv1alpha1.TaskCompleted || del.Status.Phase == backupv1alpha1.TaskFailed
}

func setFinished(del *backupv1alpha1.BackupDeletion, phase backupv1alpha1.TaskPhase, reason, message string, n int64) {
	del.Status.Phase = phase
	del.Status.BlobsDeleted = n
	now := metav1.NewTime(time.Now())
	del.Status.CompletionTime = &now
	status := metav1.ConditionTrue
	if phase == backupv1alpha1.TaskFailed {
		status = metav1.ConditionFalse
	}
	setCondition(del, status, reason, message)
	meta.SetStatusCondition(&del.Status.Conditions, metav1.Condition{
		Type: backupv1alpha1.ConditionCompleted, Status: metav1.ConditionTrue, Reason: reason, Message: message, ObservedGeneration: del.Generation,
	})
}

func setCondition(del *backupv1alpha1.BackupDeletion, status metav1.ConditionStatus, reason, message string) {
	del.Status.ObservedGeneration = del.Generation
	meta.SetStatusCondition(&del.Status.Conditions, metav1.Condition{
		Type: backupv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message, ObservedGeneration: del.Generation,
	})
}

// SetupWithManager watches BackupDeletions.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Runs == nil {
		r.Runs = &runs.Registry{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&backupv1alpha1.BackupDeletion{}).
		Named("backupdeletion").
		Complete(r)
}
