package applicationbackup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/backup"
	"github.com/lifeboat-dev/lifeboat/spoke/hooks"
	"github.com/lifeboat-dev/lifeboat/spoke/panics"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// plan is where and as what a backup is written.
type plan struct {
	target *backupv1alpha1.BackupTarget
	store  archive.Store
	id     string // backup ID
	dir    string // the backup's folder in the store
	key    string // in the Runs registry
	// encryptTo is the target's encryption key, nil when it has none.
	encryptTo *age.X25519Recipient
	// selfService is the namespace a team's own backup is restricted to.
	selfService string
}

// run is a backup running in this process.
type run struct {
	*plan
	uid    types.UID
	name   types.NamespacedName
	ctx    context.Context
	cancel context.CancelCauseFunc
	// finish ends the run's hold on the backup, its slot and reserved.
	finish   func()
	reserved *runs.Reservation
}

// plan checks what the backup needs before it starts; a *targets.Refusal
// says why it cannot run at all.
func (r *Reconciler) plan(ctx context.Context, ab *backupv1alpha1.ApplicationBackup) (*plan, error) {
	if err := backup.ValidateSelection(ab.Spec.Selection); err != nil {
		return nil, &targets.Refusal{Reason: backupv1alpha1.ReasonInvalidConfiguration, Message: "spec.selection: " + err.Error()}
	}
	if refused := checkTenancy(ab); refused != nil {
		return nil, refused
	}
	target, err := targets.Resolve(ctx, r.Client, ab.Namespace, string(ab.Spec.Target), ab.Spec.Hub)
	if err != nil {
		return nil, err
	}
	store, err := r.store(target)
	if err != nil {
		return nil, &targets.Refusal{Reason: backupv1alpha1.ReasonInvalidConfiguration, Message: fmt.Sprintf("BackupTarget %s cannot be used: %v", target.Name, err)}
	}
	to, err := r.Targets.Recipient(ctx, target)
	if err != nil {
		return nil, err
	}
	id := backupID(ab)
	dir, err := archive.Path("", r.Cluster, id)
	if err != nil {
		return nil, &targets.Refusal{Reason: backupv1alpha1.ReasonInvalidConfiguration, Message: err.Error()}
	}
	p := &plan{target: target, store: store, id: id, dir: dir, key: runs.Key(r.Cluster, id), encryptTo: to}
	if ab.Namespace != targets.SystemNamespace {
		p.selfService = ab.Namespace
	}
	return p, nil
}

// checkTenancy refuses a backup the hub sent for a tenant that reaches beyond
// the tenant's grant: every namespace must be named and granted, and
// cluster-scoped resources (Include) must be granted.
func checkTenancy(ab *backupv1alpha1.ApplicationBackup) *targets.Refusal {
	t := ab.Spec.Tenancy
	if t == nil {
		return nil
	}
	sel := ab.Spec.Selection
	if sel == nil || len(sel.IncludedNamespaces) == 0 {
		return &targets.Refusal{Reason: backupv1alpha1.ReasonNamespaceNotAllowed, Message: fmt.Sprintf(
			"Hub namespace %s may back up only the namespaces it is granted on this cluster, and spec.selection.includedNamespaces names none", t.HubNamespace)}
	}
	for _, ns := range sel.IncludedNamespaces {
		if !t.AllowsNamespace(string(ns)) {
			return &targets.Refusal{Reason: backupv1alpha1.ReasonNamespaceNotAllowed, Message: fmt.Sprintf(
				"Hub namespace %s may not back up namespace %s on this cluster", t.HubNamespace, ns)}
		}
	}
	if sel.ClusterScopedResources == backupv1alpha1.ClusterScopedInclude && !t.AllowsClusterScoped() {
		return &targets.Refusal{Reason: backupv1alpha1.ReasonClusterScopedNotAllowed, Message: fmt.Sprintf(
			"Hub namespace %s may not back up cluster-scoped resources on this cluster", t.HubNamespace)}
	}
	return nil
}

// selection is what the backup takes: spec.selection, but no cluster-scoped
// resources at all for a tenant that is not granted them (Auto would take
// those its namespaced objects need).
func selection(ab *backupv1alpha1.ApplicationBackup) *backupv1alpha1.ResourceSelection {
	t, sel := ab.Spec.Tenancy, ab.Spec.Selection
	if t == nil || t.AllowsClusterScoped() || sel == nil {
		return sel
	}
	out := sel.DeepCopy()
	out.ClusterScopedResources = backupv1alpha1.ClusterScopedExclude
	return out
}

// backupID is the backup's folder name: the one already in the status, the
// one the hub set, or else the object's UID (as the API documents), which is
// DNS-safe, unique, and the same after a restart.
func backupID(ab *backupv1alpha1.ApplicationBackup) string {
	switch {
	case ab.Status.BackupID != "":
		return string(ab.Status.BackupID)
	case ab.Spec.BackupID != "":
		return string(ab.Spec.BackupID)
	}
	return string(ab.UID)
}

// outcome is how a run ended.
type outcome struct {
	phase    backupv1alpha1.ApplicationBackupPhase
	reason   string
	message  string
	manifest *archive.Manifest // when committed
	progress backup.Progress
}

// execute runs the stages, then writes the outcome.
func (r *Reconciler) execute(rn *run, ab *backupv1alpha1.ApplicationBackup) {
	log := ctrl.Log.WithName("applicationbackup").WithValues("applicationbackup", rn.name, "backupID", rn.id)
	ctx := ctrl.LoggerInto(rn.ctx, log)
	started := time.Now()
	store := targets.NewWatchedStore(rn.store)
	st := r.newStatusWriter(rn, ab, store)
	out, err := panics.Call(ctx, func() (outcome, error) { return r.backUp(ctx, rn, ab, st, store), nil })
	if err != nil {
		out = r.failed(ctx, rn, st, err, backupv1alpha1.ReasonInternalError, "the backup")
	}
	st.finish(ctx, out)
	log.Info("Finished the backup", "phase", out.phase, "reason", out.reason, "items", out.progress.ItemsDone,
		"errors", out.progress.Errors, "duration", time.Since(started).Round(time.Millisecond))
}

// backUp runs the stages Initial → PreExecRule → Resources → Volumes →
// PostExecRule → Final. A pre action that fails with onError Fail stops the
// backup before any resource is read; the post actions run whatever happened
// before them (as their executionPolicy says), also when the run is being
// stopped, so that nothing is left frozen. The Volumes stage backs up the
// data of the bound PersistentVolumeClaims taken (see backUpVolumes); a claim
// whose data is not in the backup makes it PartialSuccess. The backup
// succeeds only once backup.json is written and the whole backup has been
// read back and verified.
func (r *Reconciler) backUp(ctx context.Context, rn *run, ab *backupv1alpha1.ApplicationBackup, st *statusWriter, store archive.Store) outcome {
	meta := r.meta(ab)
	meta.Recipient = rn.encryptTo
	w, err := archive.NewWriter(ctx, store, rn.dir, meta)
	if err != nil {
		return r.failed(ctx, rn, st, err, backupv1alpha1.ReasonStorageError, "starting the backup")
	}
	defer w.Abort(context.WithoutCancel(ctx)) // deletes what was written, unless committed

	spec := ab.Spec.Hooks
	if spec == nil {
		spec = &backupv1alpha1.ExecHooks{}
	}
	hk, err := hooks.NewRunner(r.RESTConfig, hookScope(ab, rn.selfService), func(level archive.Level, msg string) { w.Log(level, nil, msg) })
	if err != nil {
		return r.failed(ctx, rn, st, err, backupv1alpha1.ReasonInternalError, "preparing the exec actions")
	}
	var ran []hooks.Result
	record := func(results []hooks.Result) {
		ran = append(ran, results...)
		st.setHooks(results)
	}

	st.setStage(backupv1alpha1.StagePreExecRule)
	record(hk.Pre(ctx, spec.Pre))
	var failure *outcome
	var skipped gaps
	if f := fatal(ran); f != nil {
		failure = &outcome{phase: backupv1alpha1.ApplicationBackupFailed, reason: backupv1alpha1.ReasonExecRuleFailed,
			message: fmt.Sprintf("pre action %s failed: %s; no resource was read", f.Name, f.Message)}
	} else {
		skipped, failure = r.backUpData(ctx, rn, ab, st, store, w)
	}
	// The background actions (a freeze) guarded the stages above.
	record(hk.StopBackground())
	if f := fatal(ran); f != nil && failure == nil {
		failure = &outcome{phase: backupv1alpha1.ApplicationBackupFailed, reason: backupv1alpha1.ReasonExecRuleFailed,
			message: fmt.Sprintf("background pre action %s failed: %s", f.Name, f.Message)}
	}

	st.setStage(backupv1alpha1.StagePostExecRule)
	record(hk.Post(context.WithoutCancel(ctx), spec.Post, failure != nil)) // bounded by each action's timeout
	if f := fatalIn(ran, backupv1alpha1.StagePostExecRule); f != nil && failure == nil {
		failure = &outcome{phase: backupv1alpha1.ApplicationBackupFailed, reason: backupv1alpha1.ReasonExecRuleFailed,
			message: fmt.Sprintf("post action %s failed: %s", f.Name, f.Message)}
	}
	if failure != nil {
		if ctx.Err() != nil {
			// Stopped (aborted, deleted, the spoke stopping): say so, not what the stop broke.
			stopped := r.failed(ctx, rn, st, context.Cause(ctx), failure.reason, "the backup")
			failure = &stopped
		}
		failure.progress = st.progressNow()
		failure.message += describePost(ran)
		return *failure
	}

	st.setStage(backupv1alpha1.StageFinal)
	m, err := w.Close(ctx)
	if err != nil {
		return r.failed(ctx, rn, st, err, backupv1alpha1.ReasonStorageError, "finishing the backup")
	}
	if _, err := r.readBack(ctx, store, rn.dir, rn.target); err != nil {
		// Committed but unreadable: take it back, so that nothing imports it.
		deleteFolder(context.WithoutCancel(ctx), rn.store, rn.dir)
		return r.failed(ctx, rn, st, err, backupv1alpha1.ReasonStorageError, "reading the written backup back")
	}

	out := outcome{phase: backupv1alpha1.ApplicationBackupSuccess, reason: backupv1alpha1.ReasonSucceeded, manifest: m, progress: st.progressNow()}
	out.message = fmt.Sprintf("backed up %d items to BackupTarget %s as backup %s", m.Counts.Items, rn.target.Name, rn.id)
	if len(m.Volumes) > 0 {
		out.message += fmt.Sprintf(", with the data of %d PersistentVolumeClaims", len(m.Volumes))
	}
	if m.Counts.Errors > 0 {
		out.phase, out.reason = backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ReasonPartiallySucceeded
		out.message += fmt.Sprintf("; %d items or resources could not be backed up: the backup's log names them", m.Counts.Errors)
	}
	if failed := failedNames(ran); len(failed) > 0 {
		out.phase, out.reason = backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ReasonPartiallySucceeded
		out.message += fmt.Sprintf("; exec actions failed with onError Continue: %s (the backup's log has their output)", strings.Join(failed, ", "))
	}
	if len(m.Commands) > 0 {
		out.message += fmt.Sprintf(", with the output of %d backup commands", len(m.Commands))
	}
	if len(skipped.claims) > 0 {
		out.phase, out.reason = backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ReasonPartiallySucceeded
		out.message += "; " + describeSkipped(skipped.claims)
	}
	if len(skipped.commands) > 0 {
		out.phase, out.reason = backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ReasonPartiallySucceeded
		out.message += "; " + describeSkippedCommands(skipped.commands)
	}
	if m.Counts.Warnings > 0 {
		out.message += fmt.Sprintf("; %d warnings in the backup's log", m.Counts.Warnings)
	}
	return out
}

// gaps are the application data a backup did not take: claims whose data,
// and backup commands whose output, is not in it.
type gaps struct {
	claims   []SkippedClaim
	commands []SkippedCommand
}

// backUpData runs the Resources and Volumes stages; it returns what of the
// application data is not in the backup, or an outcome that says how the
// stages failed. The Volumes stage backs up the claims' data, then runs the
// backup commands.
func (r *Reconciler) backUpData(ctx context.Context, rn *run, ab *backupv1alpha1.ApplicationBackup, st *statusWriter, store archive.Store, w *archive.Writer) (gaps, *outcome) {
	claims, failure := r.backUpResources(ctx, rn, ab, st, w)
	if failure != nil {
		return gaps{}, failure
	}
	var out gaps
	var err error
	if out.claims, err = r.backUpVolumes(ctx, rn, ab, st, store, w, claims); err != nil {
		failed := r.failed(ctx, rn, st, err, backupv1alpha1.ReasonStorageError, "backing up the volume data")
		return gaps{}, &failed
	}
	sources, bad, err := r.commandSources(ctx, rn, ab)
	if err != nil {
		failed := r.failed(ctx, rn, st, err, backupv1alpha1.ReasonClusterReadFailed, "looking for backup commands")
		return gaps{}, &failed
	}
	for _, b := range bad {
		w.Log(archive.LevelWarning, nil, fmt.Sprintf("Backup command not run: %s has a bad annotation: %s", b.CommandSource, b.Reason))
	}
	out.commands = bad
	skipped, err := r.backUpCommands(ctx, rn, st, store, w, sources)
	if err != nil {
		failed := r.failed(ctx, rn, st, err, backupv1alpha1.ReasonStorageError, "backing up the output of backup commands")
		return gaps{}, &failed
	}
	out.commands = append(out.commands, skipped...)
	return out, nil
}

// backUpResources runs the Resources stage and returns the bound
// PersistentVolumeClaims it took; a non-nil outcome says how it failed.
func (r *Reconciler) backUpResources(ctx context.Context, rn *run, ab *backupv1alpha1.ApplicationBackup, st *statusWriter, w *archive.Writer) ([]Claim, *outcome) {
	st.setStage(backupv1alpha1.StageResources)
	claims := &claimCollector{Writer: w}
	progress, err := backup.Run(ctx, backup.Options{
		Config:    r.RESTConfig,
		Selection: selection(ab),
		Namespace: rn.selfService,
		Writer:    claims,
		Progress:  st.setProgress,
	})
	st.setProgress(progress)
	var out outcome
	switch {
	case errors.Is(err, backup.ErrWrite):
		out = r.failed(ctx, rn, st, err, backupv1alpha1.ReasonStorageError, "writing the resources")
	case err != nil:
		out = r.failed(ctx, rn, st, err, backupv1alpha1.ReasonClusterReadFailed, "reading the resources")
	default:
		return claims.taken(), nil
	}
	return nil, &out
}

// hookScope is where a backup's exec actions may run: the namespaces it backs
// up. A team's own backup runs them only in its namespace; a tenant's only in
// the namespaces it names, which checkTenancy has checked against its grant.
func hookScope(ab *backupv1alpha1.ApplicationBackup, selfService string) hooks.Scope {
	if selfService != "" {
		return hooks.Scope{Namespaces: []string{selfService}}
	}
	var scope hooks.Scope
	sel := ab.Spec.Selection
	if sel == nil {
		return scope
	}
	for _, ns := range sel.ExcludedNamespaces {
		scope.Excluded = append(scope.Excluded, string(ns))
	}
	for _, ns := range sel.IncludedNamespaces {
		if !slices.Contains(scope.Excluded, string(ns)) {
			scope.Namespaces = append(scope.Namespaces, string(ns))
		}
	}
	if len(sel.IncludedNamespaces) > 0 && len(scope.Namespaces) == 0 {
		scope.Namespaces = []string{""} // named, all excluded: no pod matches
	}
	return scope
}

// fatal is the first action that failed with onError Fail.
func fatal(results []hooks.Result) *hooks.Result {
	for i := range results {
		if results[i].Fatal {
			return &results[i]
		}
	}
	return nil
}

func fatalIn(results []hooks.Result, stage backupv1alpha1.BackupStage) *hooks.Result {
	return fatal(slices.DeleteFunc(slices.Clone(results), func(r hooks.Result) bool { return r.Stage != stage }))
}

// failedNames names the actions that failed, by stage.
func failedNames(results []hooks.Result) []string {
	var names []string
	for _, r := range results {
		if r.Failed() && !slices.Contains(names, stageName(r)) {
			names = append(names, stageName(r))
		}
	}
	return names
}

func stageName(r hooks.Result) string {
	if r.Stage == backupv1alpha1.StagePostExecRule {
		return "post " + r.Name
	}
	return "pre " + r.Name
}

// describePost says, for a failed run, which post actions ran.
func describePost(results []hooks.Result) string {
	var ran []string
	for _, r := range results {
		if r.Stage == backupv1alpha1.StagePostExecRule && r.Outcome != backupv1alpha1.ExecSkipped {
			ran = append(ran, fmt.Sprintf("%s (%s)", r.Name, r.Outcome))
		}
	}
	if len(ran) == 0 {
		return ""
	}
	return "; post actions run: " + strings.Join(ran, ", ")
}

// failed turns an error into an outcome; a run that was stopped says why it
// was stopped rather than what the stop broke.
func (r *Reconciler) failed(ctx context.Context, rn *run, st *statusWriter, err error, reason, doing string) outcome {
	out := outcome{phase: backupv1alpha1.ApplicationBackupFailed, reason: reason, progress: st.progressNow()}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, runs.ErrAborted):
		out.phase, out.reason = backupv1alpha1.ApplicationBackupAborted, backupv1alpha1.ReasonAborted
		out.message = "the backup was aborted: a BackupDeletion with force: true is deleting its data"
	case errors.Is(cause, errDeleted):
		out.phase, out.reason, out.message = backupv1alpha1.ApplicationBackupAborted, backupv1alpha1.ReasonAborted, cause.Error()
	case errors.Is(cause, runs.ErrStopping):
		out.reason = backupv1alpha1.ReasonInterrupted
		out.message = "the spoke stopped while the backup ran; what it had written was deleted; create a new ApplicationBackup to try again"
	case errors.Is(err, archive.ErrExists):
		out.reason = backupv1alpha1.ReasonInvalidConfiguration
		out.message = fmt.Sprintf("BackupTarget %s already holds a complete backup %s of cluster %s: use another backupID", rn.target.Name, rn.id, r.Cluster)
	case errors.Is(err, backup.ErrInvalidSelection):
		out.reason = backupv1alpha1.ReasonInvalidConfiguration
		out.message = "spec.selection: " + err.Error()
	case errors.As(err, new(*panics.Error)):
		out.reason = backupv1alpha1.ReasonInternalError
		out.message = fmt.Sprintf("%s failed: %v; the spoke kept running", doing, err)
	default:
		out.message = fmt.Sprintf("%s failed: %v", doing, err)
		if reason == backupv1alpha1.ReasonStorageError {
			r.Revalidation.Request(rn.target.Name)
		}
	}
	return out
}

// meta is what backup.json says about whose backup this is. A team's own
// backup belongs to its namespace, even if its spec names a hub Backup: only
// objects the hub sends may claim to be the hub's.
func (r *Reconciler) meta(ab *backupv1alpha1.ApplicationBackup) archive.Meta {
	m := archive.Meta{Owner: archive.Owner{Namespace: ab.Namespace}}
	if h := ab.Spec.Hub; h != nil && ab.Namespace == targets.SystemNamespace {
		m.Owner = archive.Owner{Hub: &archive.HubRef{Namespace: string(h.Namespace), Name: string(h.Name), UID: string(h.UID)}}
	}
	if spec, err := json.Marshal(ab.Spec); err == nil {
		m.Spec = spec
	}
	if ab.Status.StartTime != nil {
		m.StartTimestamp = ab.Status.StartTime.Time
	}
	return m
}

// readBack opens the backup as a restore would, with target's key, and
// checks every byte.
func (r *Reconciler) readBack(ctx context.Context, store archive.Store, dir string, target *backupv1alpha1.BackupTarget) (*archive.Manifest, error) {
	rd, err := archive.Open(ctx, store, dir)
	if err != nil {
		return nil, err
	}
	key, err := r.Targets.Key(ctx, target)
	if err != nil {
		return nil, err
	}
	if err := rd.UseKey(key); err != nil {
		return nil, err
	}
	if err := rd.Verify(ctx); err != nil {
		return nil, err
	}
	return rd.Manifest(), nil
}

// deleteFolder deletes every file of a backup, backup.json first, and
// returns how many it deleted.
func deleteFolder(ctx context.Context, store archive.Store, dir string) (int, error) {
	names, err := store.List(ctx, dir+"/")
	if err != nil {
		return 0, err
	}
	manifest := dir + "/" + archive.ManifestFile
	for i, n := range names {
		if n == manifest {
			names[0], names[i] = names[i], names[0]
		}
	}
	var deleted int
	for _, n := range names {
		if err := store.Delete(ctx, n); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}
