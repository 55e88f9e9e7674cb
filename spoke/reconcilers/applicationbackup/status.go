package applicationbackup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/backup"
	"github.com/lifeboat-dev/lifeboat/spoke/hooks"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// statusWriter writes a running backup's stage and progress, at most once per
// StatusInterval, and its outcome at the end. It is the only writer of the
// status while the backup runs.
type statusWriter struct {
	r  *Reconciler
	rn *run

	mu       sync.Mutex
	stage    backupv1alpha1.BackupStage
	progress backup.Progress
	storage  *targets.WatchedStore
	hooks    []backupv1alpha1.ExecResult
	// volumeBytes counts the volume data read so far (kopia's uploads do not
	// go through storage).
	volumeBytes atomic.Int64

	last    *backupv1alpha1.ApplicationBackup // as last written
	done    chan struct{}
	stopped chan struct{}
}

func (r *Reconciler) newStatusWriter(rn *run, ab *backupv1alpha1.ApplicationBackup, storage *targets.WatchedStore) *statusWriter {
	s := &statusWriter{r: r, rn: rn, last: ab, stage: ab.Status.Stage, storage: storage,
		done: make(chan struct{}), stopped: make(chan struct{})}
	go s.loop()
	return s
}

func (s *statusWriter) setStage(stage backupv1alpha1.BackupStage) {
	s.mu.Lock()
	s.stage = stage
	s.mu.Unlock()
}

func (s *statusWriter) setProgress(p backup.Progress) {
	s.mu.Lock()
	s.progress = p
	s.mu.Unlock()
}

// setHooks records how exec actions went; a later result for the same action
// (a background action that was ended) replaces the earlier one.
func (s *statusWriter) setHooks(results []hooks.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, res := range results {
		i := slices.IndexFunc(s.hooks, func(h backupv1alpha1.ExecResult) bool { return h.Stage == res.Stage && h.Name == res.Name })
		switch {
		case i >= 0:
			s.hooks[i] = res.ExecResult
		case len(s.hooks) < maxHookResults:
			s.hooks = append(s.hooks, res.ExecResult)
		}
	}
}

// maxHookResults is the schema's bound on status.hooks: 16 pre and 16 post actions.
const maxHookResults = 32

func (s *statusWriter) progressNow() backup.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress
}

func (s *statusWriter) loop() {
	defer close(s.stopped)
	t := time.NewTicker(s.r.statusInterval())
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush()
		case <-s.done:
			return
		}
	}
}

// flush writes the stage and progress if they changed. An object that is
// gone stops the run.
func (s *statusWriter) flush() {
	obj := s.last.DeepCopy()
	s.mu.Lock()
	obj.Status.Stage = s.stage
	obj.Status.Progress = toProgress(s.progress, s.storage.Uploaded()+s.volumeBytes.Load())
	obj.Status.Warnings, obj.Status.Errors = int32(s.progress.Warnings), int32(s.progress.Errors)
	obj.Status.Hooks = slices.Clone(s.hooks)
	s.mu.Unlock()
	s.setStorageWait(obj)
	if equality.Semantic.DeepEqual(obj.Status, s.last.Status) {
		return
	}
	err := s.r.Status().Patch(s.rn.ctx, obj, client.MergeFrom(s.last))
	switch {
	case apierrors.IsNotFound(err):
		s.rn.cancel(errDeleted)
	case err == nil:
		s.last = obj
	}
}

// setStorageWait says in Ready that the run waits for the storage service
// when a request has not moved for StorageWait, and takes it back once it
// moves again.
func (s *statusWriter) setStorageWait(obj *backupv1alpha1.ApplicationBackup) {
	msg, stalled := s.storage.Stalled(time.Now(), s.r.StorageWait, s.rn.target.Name, "backup", fmt.Sprintf("stage %s", obj.Status.Stage))
	c := readyCondition(obj)
	switch {
	case stalled:
		setCondition(obj, backupv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonWaitingForStorage, msg)
	case c != nil && c.Reason == backupv1alpha1.ReasonWaitingForStorage:
		setCondition(obj, backupv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonInProgress,
			fmt.Sprintf("backing up to BackupTarget %s as backup %s", s.rn.target.Name, s.rn.id))
	}
}

// finish stops the progress updates and writes the outcome, retrying for a
// while: it must land even when the run was stopped (a spoke that stops
// marks its backups Interrupted on its way out).
func (s *statusWriter) finish(ctx context.Context, out outcome) {
	close(s.done)
	<-s.stopped
	if errors.Is(context.Cause(s.rn.ctx), errDeleted) {
		return // nothing to write to
	}
	obj := s.last.DeepCopy()
	now := s.r.now()
	s.mu.Lock()
	obj.Status.Stage = s.stage
	obj.Status.Progress = toProgress(out.progress, s.storage.Uploaded()+s.volumeBytes.Load())
	obj.Status.Hooks = slices.Clone(s.hooks)
	s.mu.Unlock()
	obj.Status.Warnings, obj.Status.Errors = int32(out.progress.Warnings), int32(out.progress.Errors)
	if m := out.manifest; m != nil {
		obj.Status.Warnings, obj.Status.Errors = int32(m.Counts.Warnings), int32(m.Counts.Errors)
		obj.Status.ManifestSHA256 = m.SHA256
		setExpiration(obj)
	}
	setFinished(obj, out.phase, out.reason, out.message, now)

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := wait.ExponentialBackoffWithContext(wctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8}, func(ctx context.Context) (bool, error) {
		err := s.r.Status().Patch(ctx, obj, client.MergeFrom(s.last))
		if apierrors.IsNotFound(err) {
			return false, err
		}
		return err == nil, nil
	})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Could not write the outcome of the backup; it will be taken for interrupted", "phase", out.phase)
		return
	}
	s.last = obj
	s.r.event(obj, out.reason, out.message)
}

func toProgress(p backup.Progress, bytes int64) *backupv1alpha1.Progress {
	return &backupv1alpha1.Progress{ItemsTotal: p.ItemsTotal, ItemsDone: p.ItemsDone, BytesDone: bytes}
}

// setStarted marks the backup claimed: from here on a crash is recognised.
func setStarted(ab *backupv1alpha1.ApplicationBackup, p *plan, now time.Time) {
	start := metav1.NewTime(now)
	ab.Status.Phase = backupv1alpha1.ApplicationBackupInProgress
	ab.Status.ObservedGeneration = ab.Generation
	ab.Status.BackupResult = backupv1alpha1.BackupResult{
		BackupID:  backupv1alpha1.BackupID(p.id),
		Stage:     backupv1alpha1.StageInitial,
		Progress:  &backupv1alpha1.Progress{},
		StartTime: &start,
	}
	msg := fmt.Sprintf("backing up to BackupTarget %s as backup %s", p.target.Name, p.id)
	setCondition(ab, backupv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonInProgress, msg)
	setCondition(ab, backupv1alpha1.ConditionCompleted, metav1.ConditionFalse, backupv1alpha1.ReasonInProgress, msg)
}

// setWaiting records why a backup that may run waits, Pending: its slots
// are taken.
func setWaiting(ab *backupv1alpha1.ApplicationBackup, why string) {
	ab.Status.Phase = backupv1alpha1.ApplicationBackupPending
	ab.Status.ObservedGeneration = ab.Generation
	setCondition(ab, backupv1alpha1.ConditionReady, metav1.ConditionFalse, backupv1alpha1.ReasonWaiting, why)
	setCondition(ab, backupv1alpha1.ConditionCompleted, metav1.ConditionFalse, backupv1alpha1.ReasonWaiting, why)
}

// setFinished records how the backup ended. Ready is True only for a Success.
func setFinished(ab *backupv1alpha1.ApplicationBackup, phase backupv1alpha1.ApplicationBackupPhase, reason, message string, now time.Time) {
	end := metav1.NewTime(now)
	ab.Status.Phase = phase
	ab.Status.ObservedGeneration = ab.Generation
	ab.Status.CompletionTime = &end
	ready := metav1.ConditionFalse
	if phase == backupv1alpha1.ApplicationBackupSuccess {
		ready = metav1.ConditionTrue
	}
	setCondition(ab, backupv1alpha1.ConditionReady, ready, reason, message)
	setCondition(ab, backupv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, message)
}

// setExpiration sets when the backup is due for deletion: startTime + ttl, as
// the API documents.
func setExpiration(ab *backupv1alpha1.ApplicationBackup) {
	if ab.Spec.TTL == nil || ab.Status.StartTime == nil {
		return
	}
	exp := metav1.NewTime(ab.Status.StartTime.Add(ab.Spec.TTL.Duration))
	ab.Status.Expiration = &exp
}

// setRecovered records a backup whose run was interrupted after backup.json
// was written and that verified: it is complete.
func setRecovered(ab *backupv1alpha1.ApplicationBackup, m *archive.Manifest) {
	ab.Status.Stage = backupv1alpha1.StageFinal
	ab.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: m.Counts.Items, ItemsDone: m.Counts.Items, BytesDone: sizeOf(m)}
	ab.Status.Warnings, ab.Status.Errors = int32(m.Counts.Warnings), int32(m.Counts.Errors)
	ab.Status.ManifestSHA256 = m.SHA256
	setExpiration(ab)
	phase, reason := backupv1alpha1.ApplicationBackupSuccess, backupv1alpha1.ReasonSucceeded
	if m.Counts.Errors > 0 {
		phase, reason = backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ReasonPartiallySucceeded
	}
	setFinished(ab, phase, reason, fmt.Sprintf("the spoke restarted after the backup was written; its backup.json was read back and verified: %d items", m.Counts.Items), m.CompletionTimestamp)
}

func sizeOf(m *archive.Manifest) int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

func setCondition(ab *backupv1alpha1.ApplicationBackup, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&ab.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: ab.Generation,
	})
}

func readyCondition(ab *backupv1alpha1.ApplicationBackup) *metav1.Condition {
	return meta.FindStatusCondition(ab.Status.Conditions, backupv1alpha1.ConditionReady)
}
