package applicationrestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"filippo.io/age"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/commands"
	"github.com/lifeboat-dev/lifeboat/spoke/panics"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
	spokeruns "github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// runs are the restores running in this process, one at most per
// ApplicationRestore. Its group, a manager Runnable, cancels them when the
// manager stops and waits until each has recorded that.
type runs struct {
	mu     sync.Mutex
	active map[types.NamespacedName]*active
	group  spokeruns.Group
}

type active struct {
	uid    types.UID
	ctx    context.Context
	cancel context.CancelFunc
	rv     *spokeruns.Reservation
}

func (rs *runs) running(key types.NamespacedName, uid types.UID) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	a, ok := rs.active[key]
	return ok && a.uid == uid
}

// reserve registers the restore of key before its status says InProgress,
// so that a manager stopping in between waits for it; ok is false when the
// manager stopped. Exactly one of launch and abandon ends the reservation.
func (rs *runs) reserve(key types.NamespacedName, uid types.UID) (a *active, ok bool) {
	rv, ok := rs.group.Reserve()
	if !ok {
		return nil, false
	}
	ctx, cancel := context.WithCancel(rs.group.Context())
	a = &active{uid: uid, ctx: ctx, cancel: cancel, rv: rv}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.active == nil {
		rs.active = map[types.NamespacedName]*active{}
	}
	rs.active[key] = a
	return a, true
}

// launch runs fn in a goroutine under a context that cancel and the
// manager's end cancel.
func (rs *runs) launch(key types.NamespacedName, a *active, fn func(context.Context)) {
	a.rv.Go(func() {
		defer rs.abandon(key, a)
		fn(a.ctx)
	})
}

// abandon forgets the restore of key.
func (rs *runs) abandon(key types.NamespacedName, a *active) {
	a.cancel()
	rs.mu.Lock()
	if rs.active[key] == a {
		delete(rs.active, key)
	}
	rs.mu.Unlock()
	a.rv.Cancel()
}

// cancel stops the restore of key, if one runs.
func (rs *runs) cancel(key types.NamespacedName) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if a, ok := rs.active[key]; ok {
		a.cancel()
	}
}

// maxFirstErrors is how many item errors the status message quotes.
const maxFirstErrors = 3

// execute runs one restore and records its outcome, and keeps its log in
// the bucket beside the backup's.
func (r *Reconciler) execute(ctx context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) {
	log := ctrl.LoggerFrom(ctx)
	var mu sync.Mutex
	var firstErrors []string
	rlog, logErr := archive.NewRestoreLog(r.spoolDir())
	if logErr == nil {
		defer rlog.Remove()
	}
	stall := r.storageWait(ar, j)
	opts := restore.Options{
		Config:                 r.writeConfig(ar),
		Reader:                 j.reader,
		NamespaceMapping:       ar.Spec.NamespaceMapping,
		Selection:              ar.Spec.Selection,
		ExistingResourcePolicy: ar.Spec.ExistingResourcePolicy,
		Cluster:                r.Cluster,
		StorageClassMapping:    ar.Spec.StorageClassMappings,
		OnlyNamespace:          selfService(ar),
		PolicyResources:        j.target.Spec.PolicyResources == backupv1alpha1.Allow,
		Tenancy:                tenancyGrant(ar),
		FieldManager:           restore.DefaultFieldManager,
		TempDir:                r.spoolDir(),
		SpoolLimit:             j.spool,
		MaxItems:               r.maxItems(),
		ProgressInterval:       time.Second,
		FillVolume:             r.fillVolume(j),
		RestoreCommand:         r.restoreCommand(ar, j),
		Progress: func(res restore.Result) {
			r.patchProgress(ctx, ar, res, stall.conditions(res))
		},
		Log: func(e restore.Entry) {
			if rlog != nil {
				rlog.Add(archive.RestoreLogEntry{LogEntry: archive.LogEntry{Level: e.Level, Item: e.Item, Message: e.Message},
					Result: string(e.Outcome), Target: e.Target})
			}
			kv := []any{"level", e.Level}
			if e.Item != nil {
				kv = append(kv, "item", e.Item.String())
			}
			if e.Outcome != "" {
				kv = append(kv, "result", e.Outcome)
			}
			switch e.Level {
			case archive.LevelError:
				log.Info(e.Message, kv...)
				mu.Lock()
				if len(firstErrors) < maxFirstErrors {
					msg := e.Message
					if e.Item != nil {
						msg = e.Item.String() + ": " + msg
					}
					firstErrors = append(firstErrors, msg)
				}
				mu.Unlock()
			case archive.LevelWarning:
				log.Info(e.Message, kv...)
			default:
				log.V(1).Info(e.Message, kv...)
			}
		},
	}
	res, err := panics.Call(ctx, func() (restore.Result, error) { return restore.Run(ctx, opts) })

	// The outcome is recorded even when ctx ended (the manager stops).
	finalCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var reason, message string
	var re *restore.ReadError
	switch {
	case err == nil:
	case errors.As(err, new(*panics.Error)):
		reason, message = backupv1alpha1.ReasonInternalError, "The restore stopped: "+err.Error()+". The spoke kept running; what the restore restored stays."
	case errors.As(err, &re) && (errors.Is(err, archive.ErrCorrupt) || errors.Is(err, archive.ErrNewerFormat) || errors.Is(err, archive.ErrIncomplete)):
		reason, message = unreadableReason(err), "The backup cannot be restored; nothing was changed in the cluster: "+re.Err.Error()
	case errors.As(err, &re) && ctx.Err() == nil:
		reason, message = backupv1alpha1.ReasonStorageError, "Reading the backup failed; nothing was changed in the cluster: "+re.Err.Error()
		r.Revalidation.Request(j.target.Name)
	case errors.Is(err, restore.ErrTooManyItems):
		reason, message = backupv1alpha1.ReasonTooManyItems, "The restore stopped before it changed the cluster: "+err.Error()
	case errors.Is(err, restore.ErrSpoolFull):
		reason, message = backupv1alpha1.ReasonInsufficientSpoolSpace, "The restore stopped before it changed the cluster: "+err.Error()
	case ctx.Err() != nil:
		reason, message = backupv1alpha1.ReasonInterrupted, "The restore was interrupted before it ended (the spoke stopped, or the ApplicationRestore was deleted). What it restored stays."
	default:
		reason, message = backupv1alpha1.ReasonRestoreFailed, "The restore stopped: "+err.Error()
	}
	log.Info("Finished the restore", "restored", res.Restored, "skipped", res.Skipped, "excluded", res.Excluded,
		"failed", res.Failed, "warnings", res.Warnings, "errors", res.Errors, "reason", reason)
	if reason != "" && rlog != nil {
		rlog.Add(archive.RestoreLogEntry{LogEntry: archive.LogEntry{Level: archive.LevelError, Message: message}})
	}
	logPath := archive.RestoreLogPath(j.dir, r.Cluster, ar.Namespace, ar.Name, string(ar.UID))
	if logErr == nil {
		var to *age.X25519Recipient
		if j.key != nil {
			to = j.key.Recipient()
		}
		logErr = rlog.Commit(finalCtx, j.store, logPath, to)
	}
	if logErr != nil {
		log.Info("Could not keep the restore's log in the bucket", "error", logErr.Error())
		logPath = ""
	}
	if err := r.patchOutcome(finalCtx, ar, func(ar *backupv1alpha1.ApplicationRestore) {
		setCounts(&ar.Status, res)
		ar.Status.Log = logPath
		defer noteLogError(ar, logErr)
		if reason != "" {
			r.setFailed(ar, reason, message)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		r.setResult(ar, res, firstErrors)
	}); err != nil {
		log.Error(err, "Could not record the outcome of the restore; it will show as Interrupted after a restart")
	}
}

// writeConfig is how the restore reaches the cluster: as the restore
// identity, and a team's restore impersonating the user who asked for it,
// so it can write nothing they could not (RBAC, escalation checks and
// admission apply to them).
func (r *Reconciler) writeConfig(ar *backupv1alpha1.ApplicationRestore) *rest.Config {
	c := r.RESTConfig
	if r.Identity != nil {
		c = r.Identity.Config(c)
	}
	if selfService(ar) == "" {
		return c
	}
	c = rest.CopyConfig(c)
	c.Impersonate = rest.ImpersonationConfig{UserName: ar.Spec.RequestedBy.Username, Groups: ar.Spec.RequestedBy.Groups}
	return c
}

// patchProgress records progress, and the conditions when they changed
// (not nil); the engine calls it at most once a second.
func (r *Reconciler) patchProgress(ctx context.Context, ar *backupv1alpha1.ApplicationRestore, res restore.Result, conditions []metav1.Condition) {
	if ctx.Err() != nil {
		return
	}
	status := map[string]any{
		"progress": backupv1alpha1.Progress{ItemsTotal: res.Total, ItemsDone: res.Done(), BytesDone: res.Bytes},
	}
	if conditions != nil {
		status["conditions"] = conditions
	}
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return
	}
	obj := &backupv1alpha1.ApplicationRestore{}
	obj.Namespace, obj.Name = ar.Namespace, ar.Name
	if err := r.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body)); err != nil && ctx.Err() == nil {
		ctrl.LoggerFrom(ctx).V(1).Info("Could not record progress", "error", err.Error())
	}
}

// patchOutcome reads the restore afresh, lets set change its status, and
// patches it, retrying on conflicts and transient errors.
func (r *Reconciler) patchOutcome(ctx context.Context, ar *backupv1alpha1.ApplicationRestore, set func(*backupv1alpha1.ApplicationRestore)) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8, Cap: 5 * time.Second},
		func(ctx context.Context) (bool, error) {
			cur := &backupv1alpha1.ApplicationRestore{}
			if last = r.apiReader().Get(ctx, client.ObjectKeyFromObject(ar), cur); last != nil {
				return apierrors.IsNotFound(last), nil
			}
			if cur.UID != ar.UID {
				return true, nil // deleted and made again: not ours
			}
			patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
			set(cur)
			if last = r.Status().Patch(ctx, cur, patch); last != nil {
				return apierrors.IsNotFound(last), nil
			}
			r.recordPhase(cur)
			return true, nil
		})
	if err != nil && last != nil {
		return last
	}
	return err
}

func (r *Reconciler) apiReader() client.Reader {
	if r.reader != nil {
		return r.reader
	}
	return r.Client
}

// storageWait says in Ready that a running restore waits for the storage
// service while a request has not moved for StorageWait, and takes it back
// once it moves again.
type storageWait struct {
	r       *Reconciler
	ar      *backupv1alpha1.ApplicationRestore // as it went InProgress
	j       *job
	stalled bool
}

func (r *Reconciler) storageWait(ar *backupv1alpha1.ApplicationRestore, j *job) *storageWait {
	return &storageWait{r: r, ar: ar.DeepCopy(), j: j}
}

// conditions are the restore's conditions when Ready changes, nil otherwise.
func (w *storageWait) conditions(res restore.Result) []metav1.Condition {
	msg, stalled := w.j.storage.Stalled(time.Now(), w.r.StorageWait, w.j.target.Name, "restore",
		fmt.Sprintf("%d of %d objects done", res.Done(), res.Total))
	if !stalled && !w.stalled {
		return nil
	}
	w.stalled = stalled
	out := w.ar.DeepCopy()
	if stalled {
		meta.SetStatusCondition(&out.Status.Conditions, metav1.Condition{Type: backupv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: backupv1alpha1.ReasonWaitingForStorage, Message: cut.Bytes(msg, maxMessage), ObservedGeneration: out.Generation})
	}
	return out.Status.Conditions
}

// fillVolume fills a restored claim from the backup's snapshot of its data,
// through a mover pod in the claim's namespace; nil when this spoke cannot.
func (r *Reconciler) fillVolume(j *job) func(context.Context, archive.VolumeSnapshot, string, string) error {
	blobs, ok := j.store.(volumes.Blobs)
	if r.Movers == nil || !ok {
		return nil
	}
	source, movers := j.reader.Manifest().SourceCluster, r.Movers.For(j.target)
	return func(ctx context.Context, v archive.VolumeSnapshot, namespace, name string) error {
		return movers.Fill(ctx, blobs, source, volumes.Password(j.target, j.key, source, v.Namespace), v, namespace, name)
	}
}

// restoreCommand gives a backup command's output back through the restore
// command of a pod of the same workload, read and run as the restore
// writes (a team's restore as its requester); nil when this spoke cannot
// read the repositories.
func (r *Reconciler) restoreCommand(ar *backupv1alpha1.ApplicationRestore, j *job) func(context.Context, archive.CommandOutput, string) (string, error) {
	blobs, ok := j.store.(volumes.Blobs)
	if !ok {
		return nil
	}
	config, source := r.writeConfig(ar), j.reader.Manifest().SourceCluster
	return func(ctx context.Context, c archive.CommandOutput, namespace string) (string, error) {
		pods, err := client.New(config, client.Options{Scheme: r.Scheme()})
		if err != nil {
			return "", err
		}
		pod, err := commands.RestorePod(ctx, pods, namespace, c.Owner, c.Pod)
		if err != nil {
			return "", err
		}
		cmd, err := commands.RestoreAnnotations(pod)
		if err != nil {
			return "", fmt.Errorf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
		rep, err := volumes.OpenNamed(ctx, blobs, source, c.Namespace, c.Repository, volumes.Password(j.target, j.key, source, c.Namespace))
		if err != nil {
			return "", err
		}
		defer rep.Close(context.WithoutCancel(ctx))
		said, err := commands.RestoreOutput(ctx, config, rep, pod, cmd.Container, cmd.Command, c)
		if err != nil {
			return "", fmt.Errorf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
		return fmt.Sprintf("pod %s/%s, %s", pod.Namespace, pod.Name, said), nil
	}
}
