// Package applicationbackup runs ApplicationBackups: it backs up the selected
// resources of this cluster into a BackupTarget, each run in its own goroutine
// so that a long backup never holds up the controller.
package applicationbackup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/slots"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// Reconciler runs ApplicationBackups.
//
// A new ApplicationBackup is checked (target, selection), then claimed with a
// first status patch (phase InProgress, backupID, startTime) before any data
// is written, and run in the background; the run writes its stage and
// progress at most every StatusInterval and its outcome at the end. A backup
// found InProgress that this process is not running was interrupted (the
// spoke stopped): it is marked Failed and its partial data deleted, unless its
// backup.json was written, in which case it is verified and marked Success.
//
// There is no finalizer: the data outlives the object (BackupDeletion
// deletes it). Deleting a running ApplicationBackup stops the run and
// deletes what it wrote.
type Reconciler struct {
	client.Client
	// APIReader reads around the cache (default: the manager's), so that a
	// backup is taken for interrupted only on the API server's word.
	APIReader client.Reader
	// RESTConfig reads the resources to back up (default: the manager's).
	RESTConfig *rest.Config
	Targets    *targets.Factory
	// Stores opens a target's storage (default: Targets.Client); tests swap it.
	Stores func(*backupv1alpha1.BackupTarget) (archive.Store, error)
	// Runs are the backups running in this process, shared with BackupDeletion
	// so that a forced deletion can abort one.
	Runs *runs.Registry
	// Revalidation, when set, is asked to validate a target again at once
	// when a backup failed on its storage.
	Revalidation *targets.Revalidation
	// Cluster is this cluster's name in the fleet; backups are stored under it.
	Cluster  string
	Recorder events.EventRecorder
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxRunning bounds the hub's backups (in lifeboat-system) that run at
	// once (default 4), MaxSelfServiceRunning teams' backups (default 2):
	// each has its own slots, so teams never make the hub's backups wait.
	// The others wait as Pending.
	MaxRunning, MaxSelfServiceRunning int
	// StatusInterval is how often a running backup writes its progress
	// (default 1s).
	StatusInterval time.Duration
	// StorageWait is how long a storage request may not move before the
	// status says the backup waits for storage (default targets.StorageWait).
	StorageWait time.Duration
	// VolumeData, when set, backs up the files in the bound
	// PersistentVolumeClaims a backup takes (volumes: Data). Unset, this
	// spoke has no volume data mover: every such claim is skipped, named in
	// the backup's log, and the backup ends PartialSuccess.
	VolumeData VolumeMover

	mu      sync.Mutex
	running map[types.NamespacedName]*run
	slots   *slots.Slots
	// group ends every run when the manager stops and waits for them.
	group runs.Group
}

// errDeleted is why a run stopped early when its ApplicationBackup was deleted.
var errDeleted = errors.New("the ApplicationBackup was deleted")

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=applicationbackups,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=applicationbackups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backuptargets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=*,resources=*,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/exec,verbs=create;get
// +kubebuilder:rbac:groups="",resources=pods,verbs=create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile starts a new backup, recognises an interrupted one, and leaves
// running and finished ones alone.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ab := &backupv1alpha1.ApplicationBackup{}
	if err := r.Get(ctx, req.NamespacedName, ab); err != nil {
		if apierrors.IsNotFound(err) {
			r.cancelRun(req.NamespacedName, "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.isRunning(ab) || finished(ab.Status.Phase) {
		return ctrl.Result{}, nil
	}

	// The claim below must not be made from a stale cache: a backup that
	// finished a moment ago would otherwise start again, or be taken for
	// interrupted. The optimistic lock makes such a patch fail.
	patch := client.MergeFromWithOptions(ab.DeepCopy(), client.MergeFromWithOptimisticLock{})
	waited := ab.Status.Phase == backupv1alpha1.ApplicationBackupPending // announced already
	var (
		result ctrl.Result
		next   *run
		err    error
	)
	if ab.Status.Phase == backupv1alpha1.ApplicationBackupInProgress {
		if stale, err := r.staleCache(ctx, ab); stale || err != nil {
			return ctrl.Result{}, err
		}
		err = r.recoverInterrupted(ctx, ab)
	} else {
		next, result, err = r.prepare(ctx, ab)
	}
	if errors.Is(err, runs.ErrStopping) {
		return ctrl.Result{}, nil // the restart picks it up
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	patchCtx, cancel := runs.PatchContext(ctx)
	defer cancel()
	if err := r.Status().Patch(patchCtx, ab, patch); err != nil {
		if next != nil {
			r.release(next)
		}
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if !waited || ab.Status.Phase != backupv1alpha1.ApplicationBackupPending {
		r.announce(ctx, ab)
	}
	if next != nil {
		r.launch(next, ab)
	}
	return result, nil
}

// isRunning reports whether this process runs ab. A run of an older object
// of the same name (deleted and created again) is stopped.
func (r *Reconciler) isRunning(ab *backupv1alpha1.ApplicationBackup) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rn, ok := r.running[client.ObjectKeyFromObject(ab)]
	if ok && rn.uid != ab.UID {
		rn.cancel(errDeleted)
		return false
	}
	return ok
}

// staleCache reports whether the API server no longer has ab InProgress: a
// run of this process that just ended, seen through a cache that lags behind.
func (r *Reconciler) staleCache(ctx context.Context, ab *backupv1alpha1.ApplicationBackup) (bool, error) {
	if r.APIReader == nil {
		return false, nil
	}
	live := &backupv1alpha1.ApplicationBackup{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ab), live); err != nil {
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}
	return live.UID != ab.UID || live.Status.Phase != backupv1alpha1.ApplicationBackupInProgress, nil
}

// cancelRun stops the run of name, if any (any UID when uid is "").
func (r *Reconciler) cancelRun(name types.NamespacedName, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rn, ok := r.running[name]; ok && (uid == "" || rn.uid == uid) {
		rn.cancel(errDeleted)
	}
}

// prepare checks a new backup and, when it can start, claims a run slot and
// sets the status of a started run. A backup that cannot run at all is
// marked Failed at once; one that must wait stays Pending.
func (r *Reconciler) prepare(ctx context.Context, ab *backupv1alpha1.ApplicationBackup) (*run, ctrl.Result, error) {
	plan, err := r.plan(ctx, ab)
	var refusal *targets.Refusal
	switch {
	case errors.As(err, &refusal):
		setFinished(ab, backupv1alpha1.ApplicationBackupFailed, refusal.Reason, refusal.Message, r.now())
		return nil, ctrl.Result{}, nil
	case err != nil:
		return nil, ctrl.Result{}, err
	}
	rn, why, err := r.claim(ab, plan)
	if err != nil {
		return nil, ctrl.Result{}, err
	}
	if rn == nil {
		setWaiting(ab, why)
		ctrl.LoggerFrom(ctx).V(1).Info("Queued the backup", "reason", why)
		return nil, ctrl.Result{RequeueAfter: wait.Jitter(5*time.Second, 0.2)}, nil
	}
	setStarted(ab, plan, r.now())
	return rn, ctrl.Result{}, nil
}

// claim registers the run of plan before the status patch that marks it
// started (so that a manager stopping in between waits for it), or says why
// it must wait; runs.ErrStopping when the manager stopped.
func (r *Reconciler) claim(ab *backupv1alpha1.ApplicationBackup, p *plan) (*run, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rv, ok := r.group.Reserve()
	if !ok {
		return nil, "", runs.ErrStopping
	}
	free, why := r.runSlots().Take(p.selfService != "")
	if free == nil {
		rv.Cancel()
		return nil, why, nil
	}
	ctx, finish, ok := r.Runs.Start(r.group.Context(), p.key)
	if !ok {
		free()
		rv.Cancel()
		return nil, fmt.Sprintf("Waiting for backup %s, which another ApplicationBackup is writing", p.id), nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := func() { finish(); free(); rv.Cancel() }
	rn := &run{plan: p, uid: ab.UID, name: client.ObjectKeyFromObject(ab), ctx: ctx, cancel: cancel, finish: done, reserved: rv}
	if r.running == nil {
		r.running = map[types.NamespacedName]*run{}
	}
	r.running[rn.name] = rn
	return rn, "", nil
}

// release forgets a run and ends its reservation; its backup may start again.
func (r *Reconciler) release(rn *run) {
	r.mu.Lock()
	if r.running[rn.name] == rn {
		delete(r.running, rn.name)
	}
	r.mu.Unlock()
	rn.cancel(nil)
	rn.finish()
}

// launch runs rn in the background.
func (r *Reconciler) launch(rn *run, ab *backupv1alpha1.ApplicationBackup) {
	rn.reserved.Go(func() {
		defer r.release(rn)
		r.execute(rn, ab.DeepCopy())
	})
}

// announce records the status change as an event.
func (r *Reconciler) announce(ctx context.Context, ab *backupv1alpha1.ApplicationBackup) {
	c := readyCondition(ab)
	if c == nil {
		return
	}
	ctrl.LoggerFrom(ctx).Info("Updated the backup", "phase", ab.Status.Phase, "reason", c.Reason, "backupID", ab.Status.BackupID)
	r.event(ab, c.Reason, c.Message)
}

func (r *Reconciler) event(ab *backupv1alpha1.ApplicationBackup, reason, message string) {
	if r.Recorder == nil {
		return
	}
	kind := "Normal"
	switch ab.Status.Phase {
	case backupv1alpha1.ApplicationBackupFailed, backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ApplicationBackupAborted:
		kind = "Warning"
	}
	r.Recorder.Eventf(ab, nil, kind, reason, "Backup", "%s", message)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Defaults of MaxRunning and MaxSelfServiceRunning.
const (
	DefaultMaxRunning            = 4
	DefaultMaxSelfServiceRunning = 2
)

// runSlots are the backups' slots. Called with r.mu held.
func (r *Reconciler) runSlots() *slots.Slots {
	if r.slots == nil {
		r.slots = &slots.Slots{Kind: "backup",
			Hub: positive(r.MaxRunning, DefaultMaxRunning), SelfService: positive(r.MaxSelfServiceRunning, DefaultMaxSelfServiceRunning),
			HubFlag: "max-backups", SelfServiceFlag: "max-self-service-backups"}
	}
	return r.slots
}

func positive(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func (r *Reconciler) statusInterval() time.Duration {
	if r.StatusInterval > 0 {
		return r.StatusInterval
	}
	return time.Second
}

func (r *Reconciler) store(t *backupv1alpha1.BackupTarget) (archive.Store, error) {
	if r.Stores != nil {
		return r.Stores(t)
	}
	return r.Targets.Client(t)
}

func finished(p backupv1alpha1.ApplicationBackupPhase) bool {
	switch p {
	case backupv1alpha1.ApplicationBackupSuccess, backupv1alpha1.ApplicationBackupPartialSuccess,
		backupv1alpha1.ApplicationBackupFailed, backupv1alpha1.ApplicationBackupAborted:
		return true
	}
	return false
}

// SetupWithManager watches ApplicationBackups. When the manager stops, the
// running backups stop, delete what they wrote and are marked Failed
// (Interrupted) before the manager exits.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Runs == nil {
		r.Runs = &runs.Registry{}
	}
	if r.RESTConfig == nil {
		r.RESTConfig = mgr.GetConfig()
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if err := mgr.Add(&r.group); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(r.sweepPreBackupPods)); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&backupv1alpha1.ApplicationBackup{}).
		Named("applicationbackup").
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(r)
}
