// Package backupsync lists the backups in a target's bucket and writes them,
// page by page, as BackupCatalogs into this cluster's namespace on the hub.
package backupsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/panics"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// DefaultPageSize is the page size when the spec leaves it unset (the CRD
// defaults it too).
const DefaultPageSize = 200

// backupsRoot is where the format keeps backups under a target's prefix.
const backupsRoot = "lifeboat/v1/backups/"

// Reconciler runs spoke BackupSyncs.
type Reconciler struct {
	client.Client
	Targets *targets.Factory
	// Stores opens a target's storage (default: Targets.Client); tests swap it.
	Stores func(*backupv1alpha1.BackupTarget) (archive.Store, error)
	// Revalidation, when set, is asked to validate a target again at once
	// when a request to its storage fails (the sync is retried).
	Revalidation *targets.Revalidation
	// Hub is a client for the hub, asked for before every sync so that a
	// rotated credential is used (hubcredential.Source.Client).
	Hub func(context.Context) (client.Client, error)
	// Cluster is this cluster's name: its namespace on the hub holds the pages.
	Cluster  string
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backupsyncs,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backupsyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backuptargets,verbs=get;list;watch

// Reconcile lists the bucket once and writes the catalog pages; a finished
// BackupSync is left as it is. Storage and hub errors are retried.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &backupv1alpha1.BackupSync{}
	if err := r.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if finished(bs) || !bs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(bs.DeepCopy())
	if bs.Status.StartTime == nil {
		now := metav1.Now()
		bs.Status.StartTime = &now
	}
	res, err := panics.Call(ctx, func() (result, error) { return r.sync(ctx, bs) })
	var refusal *targets.Refusal
	switch {
	case errors.As(err, &refusal):
		setFinished(bs, backupv1alpha1.TaskFailed, refusal.Reason, refusal.Message)
	case errors.As(err, new(*panics.Error)):
		setFinished(bs, backupv1alpha1.TaskFailed, backupv1alpha1.ReasonInternalError,
			"the sync stopped: "+err.Error()+"; the spoke kept running")
	case err != nil:
		bs.Status.Phase = backupv1alpha1.TaskInProgress
		setCondition(bs, backupv1alpha1.ConditionReady, metav1.ConditionFalse, backupv1alpha1.ReasonStorageError, err.Error())
		if perr := r.Status().Patch(ctx, bs, patch); perr != nil {
			return ctrl.Result{}, perr
		}
		return ctrl.Result{}, err
	default:
		bs.Status.Found, bs.Status.Pages = res.found, res.pages
		setFinished(bs, backupv1alpha1.TaskCompleted, backupv1alpha1.ReasonSucceeded, res.message())
	}
	if err := r.Status().Patch(ctx, bs, patch); err != nil {
		return ctrl.Result{}, err
	}
	ctrl.LoggerFrom(ctx).Info("Finished the sync", "phase", bs.Status.Phase, "found", res.found, "pages", res.pages,
		"incomplete", res.incomplete, "unreadable", res.unreadable)
	if r.Recorder != nil {
		c := meta.FindStatusCondition(bs.Status.Conditions, backupv1alpha1.ConditionCompleted)
		kind := "Normal"
		if bs.Status.Phase == backupv1alpha1.TaskFailed {
			kind = "Warning"
		}
		r.Recorder.Eventf(bs, nil, kind, c.Reason, "Sync", "%s", c.Message)
	}
	return ctrl.Result{}, nil
}

// result is what one listing found and wrote.
type result struct {
	found, pages int32
	// incomplete counts folders without backup.json: they are skipped.
	incomplete int
	// unreadable counts folders whose backup.json failed the format's
	// checks; skipped holds the first few, with why, for the hub.
	unreadable int
	skipped    []fleetv1alpha1.SkippedFolder
}

// Bounds of what a result keeps of unreadable folders: those it sends to
// the hub on the final page, those the status message quotes, and each
// reason's length.
const (
	skippedKept     = 20
	unreadableShown = 3
	maxReason       = 1024
	maxFolder       = 512
)

func (r *result) addUnreadable(dir, reason string) {
	r.unreadable++
	if len(r.skipped) < skippedKept {
		r.skipped = append(r.skipped, fleetv1alpha1.SkippedFolder{Folder: cut.Bytes(dir, maxFolder), Reason: cut.Bytes(reason, maxReason)})
	}
}

func (r result) message() string {
	msg := fmt.Sprintf("found %d backups and wrote %d catalog pages to the hub", r.found, r.pages)
	if r.incomplete > 0 {
		msg += fmt.Sprintf("; skipped %d incomplete backups (no backup.json)", r.incomplete)
	}
	if r.unreadable > 0 {
		var shown []string
		for _, s := range r.skipped[:min(len(r.skipped), unreadableShown)] {
			shown = append(shown, s.Reason)
		}
		msg += fmt.Sprintf("; skipped %d backups whose backup.json is unreadable: %s", r.unreadable, strings.Join(shown, "; "))
		if more := r.unreadable - len(shown); more > 0 {
			msg += fmt.Sprintf("; and %d more", more)
		}
	}
	return msg
}

// sync lists the target and writes the pages as it goes.
func (r *Reconciler) sync(ctx context.Context, bs *backupv1alpha1.BackupSync) (result, error) {
	target, err := targets.Resolve(ctx, r.Client, targets.SystemNamespace, string(bs.Spec.Target), nil)
	if err != nil {
		return result{}, err
	}
	store, err := r.store(target)
	if err != nil {
		return result{}, &targets.Refusal{Reason: backupv1alpha1.ReasonInvalidConfiguration, Message: err.Error()}
	}
	hub, err := r.Hub(ctx)
	if err != nil {
		return result{}, err
	}
	w := r.newPageWriter(hub, bs)
	res, err := scan(ctx, store, func(entry fleetv1alpha1.BackupSummary) error { return w.add(ctx, entry) })
	if err != nil {
		return res, err
	}
	w.skipped, w.skippedCount, w.incomplete = res.skipped, int32(res.unreadable), int32(res.incomplete)
	res.pages, err = w.finish(ctx)
	return res, err
}

// maxFolderNames bounds the names scan keeps of one backup folder. A
// Lifeboat backup has four files, so a folder with more is not one; it is
// counted as unreadable, whatever else it holds.
const maxFolderNames = 1000

// folder is what scan has seen of one backup folder so far.
type folder struct {
	dir      string
	present  map[string]bool
	manifest bool
	tooMany  bool
}

// scan reads backup.json of every backup under the store's
// lifeboat/v1/backups/ and passes their summaries to fn, sorted by source
// cluster and ID. Folders without backup.json and folders whose backup.json
// fails archive.Open's checks are not passed; the result counts them. So are
// folders that lack a file backup.json records (a run whose read-back failed,
// or data deleted by hand). Only backup.json is read: the other files are
// verified when a backup is restored.
//
// The listing is walked page by page; a folder's names are contiguous in it,
// so scan holds one page and the names of one folder (at most
// maxFolderNames), whatever the bucket holds: blobs that someone with write
// access to the container adds cost listing time, not memory.
func scan(ctx context.Context, store archive.Store, fn func(fleetv1alpha1.BackupSummary) error) (result, error) {
	var res result
	var cur *folder
	err := store.Walk(ctx, backupsRoot, func(names []string) error {
		for _, name := range names {
			parts := strings.SplitN(strings.TrimPrefix(name, backupsRoot), "/", 3)
			if len(parts) < 3 || strings.HasPrefix(parts[2], archive.RestoresDir+"/") {
				continue // restores' logs are not part of the backup
			}
			dir := backupsRoot + parts[0] + "/" + parts[1]
			if cur == nil || cur.dir != dir {
				if cur != nil {
					if err := scanFolder(ctx, store, cur, &res, fn); err != nil {
						return err
					}
				}
				cur = &folder{dir: dir, present: map[string]bool{}}
			}
			if parts[2] == archive.ManifestFile {
				cur.manifest = true
			}
			if len(cur.present) < maxFolderNames {
				cur.present[parts[2]] = true
			} else {
				cur.tooMany = true
			}
		}
		return nil
	})
	if err == nil && cur != nil {
		err = scanFolder(ctx, store, cur, &res, fn)
	}
	return res, err
}

// scanFolder opens the backup in f and passes its summary to fn, or counts
// it in res as incomplete or unreadable.
func scanFolder(ctx context.Context, store archive.Store, f *folder, res *result, fn func(fleetv1alpha1.BackupSummary) error) error {
	if !f.manifest {
		res.incomplete++
		return nil
	}
	if f.tooMany {
		res.addUnreadable(f.dir, fmt.Sprintf("%s: more than %d blobs, which no Lifeboat backup has", f.dir, maxFolderNames))
		return nil
	}
	reader, err := archive.Open(ctx, store, f.dir)
	switch {
	case errors.Is(err, archive.ErrIncomplete):
		res.incomplete++
		return nil
	case errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrNewerFormat):
		res.addUnreadable(f.dir, err.Error())
		return nil
	case err != nil:
		if _, _, _, perr := archive.ParsePath(f.dir); perr != nil {
			res.addUnreadable(f.dir, perr.Error())
			return nil
		}
		return err
	}
	if missing := missingFiles(reader.Manifest(), f.present); len(missing) > 0 {
		res.addUnreadable(f.dir, fmt.Sprintf("%s: %s recorded in %s but not in the store", f.dir, strings.Join(missing, ", "), archive.ManifestFile))
		return nil
	}
	res.found++
	return fn(Summary(reader.Manifest()))
}

// missingFiles are the files of backup.json m that the listing of its
// folder does not hold, sorted.
func missingFiles(m *archive.Manifest, present map[string]bool) []string {
	var missing []string
	for name := range m.Files {
		if !present[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing
}

// Summary is a catalog entry for backup.json m.
func Summary(m *archive.Manifest) fleetv1alpha1.BackupSummary {
	s := fleetv1alpha1.BackupSummary{
		ID:            backupv1alpha1.BackupID(m.BackupID),
		SourceCluster: backupv1alpha1.ClusterName(m.SourceCluster),
		Phase:         backupv1alpha1.ApplicationBackupSuccess,
		Items:         m.Counts.Items,
		Warnings:      int32(m.Counts.Warnings),
		Errors:        int32(m.Counts.Errors),
	}
	if m.Counts.Errors > 0 {
		s.Phase = backupv1alpha1.ApplicationBackupPartialSuccess
	}
	if m.Owner.Hub != nil {
		s.Hub = &backupv1alpha1.HubObjectReference{
			Namespace: backupv1alpha1.NamespaceName(m.Owner.Hub.Namespace),
			Name:      backupv1alpha1.ObjectName(m.Owner.Hub.Name),
		}
		s.Hub.UID = typesUID(m.Owner.Hub.UID)
	} else {
		s.SelfServiceNamespace = backupv1alpha1.NamespaceName(m.Owner.Namespace)
	}
	for _, f := range m.Files {
		s.SizeBytes += f.Size
	}
	if !m.StartTimestamp.IsZero() {
		s.StartTime = &metav1.Time{Time: m.StartTimestamp}
	}
	if !m.CompletionTimestamp.IsZero() {
		s.CompletionTime = &metav1.Time{Time: m.CompletionTimestamp}
	}
	var spec struct {
		TTL       *metav1.Duration                  `json:"ttl,omitempty"`
		Selection *backupv1alpha1.ResourceSelection `json:"selection,omitempty"`
	}
	if len(m.Spec) == 0 || json.Unmarshal(m.Spec, &spec) != nil {
		return s
	}
	if spec.TTL != nil && spec.TTL.Duration > 0 && s.CompletionTime != nil {
		s.Expiration = &metav1.Time{Time: m.CompletionTimestamp.Add(spec.TTL.Duration)}
	}
	s.Selection = fleetv1alpha1.Summarize(spec.Selection)
	return s
}

func (r *Reconciler) store(t *backupv1alpha1.BackupTarget) (archive.Store, error) {
	return r.Revalidation.Open(r.Targets, r.Stores, t)
}

func finished(bs *backupv1alpha1.BackupSync) bool {
	return bs.Status.Phase == backupv1alpha1.TaskCompleted || bs.Status.Phase == backupv1alpha1.TaskFailed
}

func setFinished(bs *backupv1alpha1.BackupSync, phase backupv1alpha1.TaskPhase, reason, message string) {
	bs.Status.Phase = phase
	now := metav1.NewTime(time.Now())
	bs.Status.CompletionTime = &now
	status := metav1.ConditionTrue
	if phase == backupv1alpha1.TaskFailed {
		status = metav1.ConditionFalse
	}
	setCondition(bs, backupv1alpha1.ConditionReady, status, reason, message)
	setCondition(bs, backupv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, message)
}

func setCondition(bs *backupv1alpha1.BackupSync, typ string, status metav1.ConditionStatus, reason, message string) {
	bs.Status.ObservedGeneration = bs.Generation
	meta.SetStatusCondition(&bs.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: bs.Generation,
	})
}

// SetupWithManager watches BackupSyncs.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Hub == nil {
		return fmt.Errorf("backupsync: no hub client")
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&backupv1alpha1.BackupSync{}).
		Named("backupsync").
		Complete(r)
}

// ignoreNotFound is client.IgnoreNotFound for deletes of pages.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
