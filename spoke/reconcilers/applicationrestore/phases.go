package applicationrestore

import (
	"context"
	"errors"
	"fmt"

	"filippo.io/age"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/panics"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// job is a restore ready to run.
type job struct {
	target *backupv1alpha1.BackupTarget
	// key is the target's encryption key, nil when it has none.
	key    *age.X25519Identity
	reader *archive.Reader
	// store and dir are where the backup is; the restore's log goes there too.
	store archive.Store
	// storage watches the restore's reads of store.
	storage *targets.WatchedStore
	dir     string
	// spool is what the restore reserved of the spool.
	spool int64
	// release frees the run slot and the spool when the restore ends.
	release []func()
}

func (j *job) free() {
	for _, f := range j.release {
		f()
	}
}

// refusal is why a restore cannot start; retrying does not help.
type refusal struct{ reason, message string }

func (f *refusal) Error() string { return f.message }

// prepare checks, in order, everything a restore needs before it changes
// the cluster, and takes its run slot and its spool. It marks the restore
// InProgress and returns the job, or marks it Failed with the reason, or
// Pending with why it waits, and returns nil; errors are for retry.
func (r *Reconciler) prepare(ctx context.Context, ar *backupv1alpha1.ApplicationRestore) (*job, error) {
	j := &job{}
	for _, step := range []func(context.Context, *backupv1alpha1.ApplicationRestore, *job) error{
		r.failIfInterrupted,
		r.resolveTarget,
		r.checkSelfService,
		r.checkTenancy,
		r.claimSlot,
		r.openBackup,
		r.checkBackupOwner,
		r.checkItems,
		r.reserveSpool,
	} {
		err := panics.Catch(ctx, func() error { return step(ctx, ar, j) })
		if errors.As(err, new(*panics.Error)) {
			err = &refusal{backupv1alpha1.ReasonInternalError, "The restore could not start: " + err.Error() + ". Nothing was changed in the cluster."}
		}
		var (
			f *refusal
			w *waiting
		)
		switch {
		case err == nil:
			continue
		case errors.As(err, &f):
			r.setFailed(ar, f.reason, f.message)
		case errors.As(err, &w):
			r.setWaiting(ar, w.why)
		}
		j.free()
		if f != nil || w != nil {
			err = nil
		}
		return nil, err
	}
	r.setInProgress(ar, j.reader.Manifest())
	return j, nil
}

// failIfInterrupted fails a restore that shows InProgress but does not run
// here: the spoke stopped while it ran.
func (r *Reconciler) failIfInterrupted(_ context.Context, ar *backupv1alpha1.ApplicationRestore, _ *job) error {
	if ar.Status.Phase != backupv1alpha1.RestoreInProgress {
		return nil
	}
	return &refusal{backupv1alpha1.ReasonInterrupted, "The restore was interrupted: the spoke stopped while it ran. What it restored stays; " +
		"create a new ApplicationRestore to restore the rest (existing objects are skipped, or updated with existingResourcePolicy Update)."}
}

// resolveTarget finds the BackupTarget and checks this restore may use it.
func (r *Reconciler) resolveTarget(ctx context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) error {
	t, err := targets.Resolve(ctx, r.Client, ar.Namespace, string(ar.Spec.Target), ar.Spec.Hub)
	j.target = t
	return fromTargets(err)
}

// fromTargets makes a target's *targets.Refusal the restore's refusal.
func fromTargets(err error) error {
	var refused *targets.Refusal
	if errors.As(err, &refused) {
		return &refusal{refused.Reason, refused.Message}
	}
	return err
}

// selfService returns the namespace a team's own restore may write into,
// or "" for one the hub sent.
func selfService(ar *backupv1alpha1.ApplicationRestore) string {
	if ar.Namespace == targets.SystemNamespace {
		return ""
	}
	return ar.Namespace
}

// checkSelfService refuses a team's restore that may not start: one that
// does not say who asked (it writes as them), names a backup of a cluster
// the target does not allow, asks for Update the target does not allow, or
// maps another namespace's objects into its own (it may restore only its
// own namespace's objects, not read another team's).
func (r *Reconciler) checkSelfService(_ context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) error {
	own := selfService(ar)
	if own == "" {
		return nil
	}
	if ar.Spec.RequestedBy == nil {
		return &refusal{backupv1alpha1.ReasonRequesterRequired, fmt.Sprintf(
			"A restore in namespace %s must say who asks for it in spec.requestedBy (the restore writes as that user): "+
				"set username to yours (kubectl auth whoami shows it) and create it again", own)}
	}
	if src := string(ar.Spec.Source.Cluster); !j.target.Spec.AllowsSourceCluster(src, r.Cluster) {
		return &refusal{backupv1alpha1.ReasonSourceClusterNotAllowed, fmt.Sprintf(
			"A restore in namespace %s may restore only backups of this cluster (%s), but spec.source names cluster %s, "+
				"which BackupTarget %s does not list in allowedSourceClusters: ask the cluster admin, or a fleet admin to restore from the hub",
			own, r.Cluster, src, j.target.Name)}
	}
	if ar.Spec.ExistingResourcePolicy == backupv1alpha1.ExistingResourceUpdate && j.target.Spec.UpdateExistingResources != backupv1alpha1.Allow {
		return &refusal{backupv1alpha1.ReasonUpdateNotAllowed, fmt.Sprintf(
			"BackupTarget %s does not allow teams' restores to use existingResourcePolicy Update (updateExistingResources); nothing was restored", j.target.Name)}
	}
	for from, to := range ar.Spec.NamespaceMapping {
		if string(to) == own && from != own {
			return &refusal{backupv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
				"A restore in namespace %s may restore only the objects of namespace %s, but namespaceMapping maps namespace %s into it: "+
					"remove that entry, or ask a fleet admin to restore across namespaces from the hub", own, own, from)}
		}
	}
	return nil
}

// checkTenancy refuses, before anything is read or written, a restore the
// hub sent for a tenant that asks for more than the tenant's grant:
// existingResourcePolicy Update or cluster-scoped objects (Include) not
// granted, or a namespace it names (a mapping target, a mapped included
// namespace) outside the granted ones. What the spec leaves open (no
// included namespaces, Auto) is held to the grant object by object.
func (r *Reconciler) checkTenancy(_ context.Context, ar *backupv1alpha1.ApplicationRestore, _ *job) error {
	t := ar.Spec.Tenancy
	if t == nil {
		return nil
	}
	if ar.Spec.ExistingResourcePolicy == backupv1alpha1.ExistingResourceUpdate && !t.AllowsUpdate() {
		return &refusal{backupv1alpha1.ReasonUpdateNotAllowed, fmt.Sprintf(
			"Hub namespace %s may not restore with existingResourcePolicy Update on this cluster; nothing was restored", t.HubNamespace)}
	}
	sel := ar.Spec.Selection
	if sel != nil && sel.ClusterScopedResources == backupv1alpha1.ClusterScopedInclude && !t.AllowsClusterScoped() {
		return &refusal{backupv1alpha1.ReasonClusterScopedNotAllowed, fmt.Sprintf(
			"Hub namespace %s may not restore cluster-scoped objects on this cluster; nothing was restored", t.HubNamespace)}
	}
	var targets []backupv1alpha1.NamespaceName
	if sel != nil {
		for _, ns := range sel.IncludedNamespaces {
			if to, ok := ar.Spec.NamespaceMapping[string(ns)]; ok {
				ns = to
			}
			targets = append(targets, ns)
		}
	}
	for _, to := range ar.Spec.NamespaceMapping {
		targets = append(targets, to)
	}
	for _, ns := range targets {
		if !t.AllowsNamespace(string(ns)) {
			return &refusal{backupv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
				"Hub namespace %s may not restore into namespace %s on this cluster; nothing was restored", t.HubNamespace, ns)}
		}
	}
	return nil
}

// tenancyGrant is the grant a restore is held to object by object, nil when
// none.
func tenancyGrant(ar *backupv1alpha1.ApplicationRestore) *backupv1alpha1.Grant {
	if ar.Spec.Tenancy == nil {
		return nil
	}
	return &ar.Spec.Tenancy.Grant
}

// openBackup opens the backup in the target and reads its backup.json.
func (r *Reconciler) openBackup(ctx context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) error {
	store, err := r.store(j.target)
	if err != nil {
		return err
	}
	src := ar.Spec.Source
	dir, err := archive.Path("", string(src.Cluster), string(src.BackupID))
	if err != nil {
		return &refusal{backupv1alpha1.ReasonBackupNotFound, err.Error()}
	}
	j.store, j.dir, j.storage = store, dir, targets.NewWatchedStore(store)
	j.reader, err = archive.Open(ctx, j.storage, dir)
	switch {
	case errors.Is(err, archive.ErrIncomplete):
		names, lerr := store.List(ctx, dir+"/")
		if lerr == nil && len(names) == 0 {
			return &refusal{backupv1alpha1.ReasonBackupNotFound, fmt.Sprintf(
				"BackupTarget %s holds no backup %s of cluster %s: check spec.source (the backup's cluster and ID)", ar.Spec.Target, src.BackupID, src.Cluster)}
		}
		return &refusal{backupv1alpha1.ReasonBackupIncomplete, err.Error() + ": it never finished, or it is still being written"}
	case err == nil:
		err = j.reader.CheckSHA256(src.ManifestSHA256)
	}
	if errors.Is(err, archive.ErrNewerFormat) || errors.Is(err, archive.ErrCorrupt) {
		return &refusal{unreadableReason(err), "The backup cannot be restored: " + err.Error()}
	}
	if err != nil {
		return err
	}
	if j.key, err = r.Targets.Key(ctx, j.target); err != nil {
		return fromTargets(err)
	}
	return keyRefusal(j.reader.UseKey(j.key))
}

// keyRefusal turns the archive's verdict on a key into a refusal: a backup
// encrypted to a key this cluster does not hold is never read.
func keyRefusal(err error) error {
	switch {
	case errors.Is(err, archive.ErrKeyMissing):
		return &refusal{backupv1alpha1.ReasonEncryptionKeyMissing, "The backup cannot be restored on this cluster, and nothing was restored: " + err.Error()}
	case errors.Is(err, archive.ErrKeyMismatch):
		return &refusal{backupv1alpha1.ReasonEncryptionKeyMismatch, "The backup cannot be restored on this cluster, and nothing was restored: " + err.Error()}
	}
	return err
}

// checkBackupOwner refuses a team's restore of a backup that another
// namespace's team made, or that the hub made of another cluster.
func (r *Reconciler) checkBackupOwner(_ context.Context, ar *backupv1alpha1.ApplicationRestore, j *job) error {
	own, m := selfService(ar), j.reader.Manifest()
	switch {
	case own == "" || m.Owner.Namespace == own:
		return nil
	case m.Owner.Namespace != "":
		return &refusal{backupv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"Backup %s belongs to namespace %s: a restore in namespace %s may restore only its own namespace's backups and the hub's backups of this cluster",
			ar.Spec.Source.BackupID, m.Owner.Namespace, own)}
	case m.SourceCluster != r.Cluster:
		return &refusal{backupv1alpha1.ReasonSourceClusterNotAllowed, fmt.Sprintf(
			"Backup %s is the hub's backup of cluster %s: a restore in namespace %s may restore the hub's backups of this cluster (%s) only",
			ar.Spec.Source.BackupID, m.SourceCluster, own, r.Cluster)}
	}
	return nil
}

func (r *Reconciler) store(t *backupv1alpha1.BackupTarget) (archive.Store, error) {
	if r.Stores != nil {
		return r.Stores(t)
	}
	return r.Targets.Client(t)
}

// unreadableReason is the condition reason for a backup the archive refuses.
func unreadableReason(err error) string {
	switch {
	case errors.Is(err, archive.ErrNewerFormat):
		return backupv1alpha1.ReasonBackupFormatUnsupported
	case errors.Is(err, archive.ErrCorrupt):
		return backupv1alpha1.ReasonBackupCorrupt
	}
	return backupv1alpha1.ReasonBackupIncomplete
}
