// Package applicationrestore runs ApplicationRestores: it restores a backup
// from a BackupTarget into this cluster.
package applicationrestore

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
	spokeruns "github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/slots"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// Reconciler runs ApplicationRestores. A restore runs in a goroutine of its
// own, so that a long restore does not hold a worker; the status shows its
// progress at most once a second.
type Reconciler struct {
	client.Client
	// RESTConfig reaches the cluster to restore into. A team's restore
	// writes with it impersonating spec.requestedBy.
	RESTConfig *rest.Config
	// Identity, when set, is the restore identity whose token replaces
	// RESTConfig's credentials for every restore (the spoke's own identity
	// only reads).
	Identity *restore.Identity
	// Movers start the pods that fill restored claims with their data; nil:
	// claims with data in the backup are restored empty, with an error each.
	Movers *volumes.Movers
	// Cluster is this cluster's name in the fleet: teams restore only its
	// backups, unless a target allows other source clusters.
	Cluster  string
	Targets  *targets.Factory
	Recorder events.EventRecorder
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Stores gives the store of a target (default: Targets.Client).
	Stores func(*backupv1alpha1.BackupTarget) (archive.Store, error)
	// StorageWait is how long a read from storage may not move before the
	// status says the restore waits for storage (default targets.StorageWait).
	StorageWait time.Duration
	// Revalidation, when set, is asked to validate a target again at once
	// when a restore failed on its storage.
	Revalidation *targets.Revalidation

	// MaxRunning bounds the hub's restores (in lifeboat-system) that run at
	// once (default 2), MaxSelfServiceRunning teams' restores (default 1):
	// each has its own slots, so teams never make the hub's restores wait.
	// The others wait as Pending.
	MaxRunning, MaxSelfServiceRunning int
	// MaxItems bounds the objects of a backup that one restore takes
	// (default restore.DefaultMaxItems).
	MaxItems int64
	// SpoolDir is where restores spool what they will write (default
	// os.TempDir()); SpoolSize, when set, is how much of it restores may
	// fill together (the size limit of the volume it is on).
	SpoolDir  string
	SpoolSize int64

	runs      runs
	slots     *slots.Slots
	slotsOnce sync.Once
	spool     spoolRoom
	// reader reads restores afresh to record their outcome (the manager's
	// API reader; the cache can be stale, or stopped at shutdown).
	reader client.Reader
}

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=applicationrestores,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=applicationrestores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backuptargets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// Restores write as ServiceAccount lifeboat-spoke-restore (see restore.Identity),
// whose token the spoke asks for when a restore starts:
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create,resourceNames=lifeboat-spoke-restore,namespace=lifeboat-system

// Reconcile starts a restore once: it checks the target and the backup,
// marks the restore InProgress and runs it in the background. A restore
// that ended is left alone; one found InProgress that does not run here was
// interrupted by a restart and fails.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ar := &backupv1alpha1.ApplicationRestore{}
	if err := r.Get(ctx, req.NamespacedName, ar); err != nil {
		if apierrors.IsNotFound(err) {
			r.runs.cancel(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if finished(ar) || r.runs.running(req.NamespacedName, ar.UID) {
		return ctrl.Result{}, nil
	}

	// One status patch, with optimistic locking: a stale read never starts
	// a restore twice, nor fails one that a newer status shows ended.
	patch := client.MergeFromWithOptions(ar.DeepCopy(), client.MergeFromWithOptimisticLock{})
	waited := ar.Status.Phase == backupv1alpha1.RestorePending
	j, err := r.prepare(ctx, ar)
	if err != nil {
		return ctrl.Result{}, err
	}
	var run *active
	if j != nil {
		var ok bool
		if run, ok = r.runs.reserve(req.NamespacedName, ar.UID); !ok {
			j.free()
			return ctrl.Result{}, nil // the manager stops; the restart picks it up
		}
	}
	patchCtx, cancel := spokeruns.PatchContext(ctx)
	defer cancel()
	if err := r.Status().Patch(patchCtx, ar, patch); err != nil {
		if j != nil {
			r.runs.abandon(req.NamespacedName, run)
			j.free()
		}
		if apierrors.IsConflict(err) {
			// Read from a cache behind the API server (the work agent
			// writes the object right after it made it): expected, not an
			// error; the next reconcile reads the newer object.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if ar.Status.Phase == backupv1alpha1.RestorePending {
		if !waited {
			r.recordPhase(ar)
		}
		return ctrl.Result{RequeueAfter: wait.Jitter(5*time.Second, 0.2)}, nil
	}
	r.recordPhase(ar)
	if j != nil {
		ctrl.LoggerFrom(ctx).Info("Started the restore", "cluster", ar.Spec.Source.Cluster, "backupID", ar.Spec.Source.BackupID,
			"items", j.reader.Manifest().Counts.Items)
		r.runs.launch(req.NamespacedName, run, func(runCtx context.Context) {
			defer j.free()
			r.execute(ctrl.LoggerInto(runCtx, ctrl.LoggerFrom(ctx)), ar.DeepCopy(), j)
		})
	}
	return ctrl.Result{}, nil
}

func finished(ar *backupv1alpha1.ApplicationRestore) bool {
	switch ar.Status.Phase {
	case backupv1alpha1.RestoreSuccess, backupv1alpha1.RestorePartialSuccess, backupv1alpha1.RestoreFailed:
		return true
	}
	return false
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager watches ApplicationRestores; the spec is immutable, so
// only creation matters (and the restart, which lists them all). Restores
// still running when the manager stops are cancelled and marked
// Interrupted.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.RESTConfig == nil {
		r.RESTConfig = mgr.GetConfig()
	}
	r.reader = mgr.GetAPIReader()
	if err := mgr.Add(&r.runs.group); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(r.sweepPreBackupPods)); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&backupv1alpha1.ApplicationRestore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("applicationrestore").
		Complete(r)
}
