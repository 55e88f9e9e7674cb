package backupsync

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/internal/cut"
)

// Labels on an imported Backup besides fleetv1alpha1.SyncOriginLabel.
const (
	LabelSourceCluster = "fleet.lifeboat.dev/source-cluster"
	LabelBackupID      = "fleet.lifeboat.dev/backup-id"
)

// importWorkers is how many Backups are created at once.
const importWorkers = 8

// key is a backup's place in a bucket.
type key struct{ cluster, id string }

// importPages imports the sync's catalog pages once the spoke has written
// them all: unknown backups of clusters the namespace may use become Backups
// (those of other clusters are rejected), Backups of the location whose
// data is not listed become CloudBackupMissing, tombstones are skipped. It
// marks and deletes the pages and completes s.
// It returns false while pages are still missing.
func (r *Reconciler) importPages(ctx context.Context, s *fleetv1alpha1.BackupSync, loc *fleetv1alpha1.BackupLocation) (bool, error) {
	pages, err := r.pages(ctx, s)
	if err != nil {
		return false, err
	}
	final := -1
	for i := range pages {
		if pages[i].Spec.Final && r.pageProblem(s, &pages[i]) == "" {
			final = int(pages[i].Spec.Page)
		}
	}
	if final < 0 || !complete(s, pages, final) {
		// The pages are written before the spoke reports Completed, but the
		// cache may not have them all yet; the page watch brings s back.
		setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonInProgress,
			fmt.Sprintf("waiting for the catalog pages of cluster %s", s.Status.Cluster))
		return false, nil
	}

	known, err := r.knownBackups(ctx, s)
	if err != nil {
		return false, err
	}
	tenant, err := r.Tenancy.Reading(r.APIReader).Tenant(ctx, s.Namespace)
	if err != nil {
		return false, err
	}
	tombstones := map[key]bool{}
	for _, t := range loc.Status.Tombstones {
		tombstones[key{t.SourceCluster, t.BackupID}] = true
	}
	var (
		listed                          = map[key]bool{}
		toImport                        []fleetv1alpha1.BackupSummary
		rejected, skipped, alreadyOnHub int32
		rejections, foreign             []string
		pageImported, pageRejected      = map[string]int32{}, map[string]int32{}
		pageProblems                    = map[string]string{}
		// What the cluster reports, on the final page, of the folders it did not list.
		unreadable, incomplete int32
		skips                  []string
	)
	for i := range pages {
		p := &pages[i]
		if problem := r.pageProblem(s, p); problem != "" {
			pageProblems[p.Name] = problem
			rejected += int32(len(p.Spec.Entries))
			rejections = append(rejections, fmt.Sprintf("page %s: %s", p.Name, problem))
			continue
		}
		if p.Spec.Final {
			unreadable, incomplete = p.Spec.SkippedCount, p.Spec.Incomplete
			for _, f := range p.Spec.Skipped {
				skips = append(skips, fmt.Sprintf("folder %s (cluster %s reports): %s", f.Folder, p.Spec.Cluster, f.Reason))
			}
		}
		for _, e := range p.Spec.Entries {
			k := key{string(e.SourceCluster), string(e.ID)}
			if problem := ValidateEntry(e); problem != "" {
				rejected++
				pageRejected[p.Name]++
				rejections = append(rejections, fmt.Sprintf("entry %s/%s: %s", e.SourceCluster, e.ID, problem))
				continue
			}
			if e.Hub != nil && string(e.Hub.Namespace) != s.Namespace {
				// A tenant must not take over another's backup by writing it
				// where its own location can list it.
				rejected++
				pageRejected[p.Name]++
				foreign = append(foreign, fmt.Sprintf("entry %s/%s (made for Backup %s/%s)", e.SourceCluster, e.ID, e.Hub.Namespace, e.Hub.Name))
				continue
			}
			if tenant.Cluster(string(e.SourceCluster)) != nil {
				rejected++
				pageRejected[p.Name]++
				rejections = append(rejections, fmt.Sprintf("entry %s/%s: %s: namespace %s may not use cluster %s (no ManagedClusterSet bound to it holds the cluster)",
					e.SourceCluster, e.ID, fleetv1alpha1.ReasonClusterNotAllowed, s.Namespace, e.SourceCluster))
				continue
			}
			if listed[k] {
				rejected++
				pageRejected[p.Name]++
				rejections = append(rejections, fmt.Sprintf("entry %s/%s: listed twice", e.SourceCluster, e.ID))
				continue
			}
			listed[k] = true
			switch {
			case e.Tombstone || tombstones[k]:
				skipped++
			case known[k] != nil:
				alreadyOnHub++
			default:
				toImport = append(toImport, e)
			}
			pageImported[p.Name]++
		}
	}

	imported, conflicts, err := r.createBackups(ctx, s, toImport)
	if err != nil {
		return false, err
	}
	rejected += int32(len(conflicts))
	rejections = append(rejections, conflicts...)
	missing, found, unconfirmed, err := r.markMissing(ctx, s, loc, known, listed)
	if err != nil {
		return false, err
	}
	if err := r.finishPages(ctx, pages, pageImported, pageRejected, pageProblems); err != nil {
		return false, err
	}

	now := metav1.Now()
	s.Status.Found = int32(len(listed))
	s.Status.Imported, s.Status.Missing, s.Status.Rejected = imported, missing, rejected
	s.Status.Skipped = max(unreadable, int32(len(skips)))
	s.Status.Rejections = firstN(append(append(skips, foreign...), rejections...), maxRejections)
	s.Status.Phase = backupv1alpha1.TaskCompleted
	s.Status.CompletionTime = &now
	msg := fmt.Sprintf("cluster %s found %d backups: %d imported, %d already on the hub, %d tombstones skipped, %d rejected; %d Backups are now CloudBackupMissing",
		s.Status.Cluster, len(listed), imported, alreadyOnHub, skipped, rejected, missing)
	if found > 0 {
		msg += fmt.Sprintf(", %d found again", found)
	}
	if unconfirmed > 0 {
		msg += fmt.Sprintf("; %d Backups of other clusters were not listed and were left as they are: only a listing by a backup's own cluster marks it CloudBackupMissing", unconfirmed)
	}
	if len(foreign) > 0 {
		msg += fmt.Sprintf(". Not imported, because they belong to another namespace than %s: %s", s.Namespace, firstOf(foreign))
	}
	if len(rejections) > 0 {
		msg += ". Rejected: " + firstOf(rejections)
	}
	if s.Status.Skipped > 0 {
		msg += fmt.Sprintf(". The cluster skipped %d folders it could not read as backups (status.rejections says why)", s.Status.Skipped)
	}
	if incomplete > 0 {
		msg += fmt.Sprintf("; %d folders hold no backup.json (backups being written, or runs that never finished)", incomplete)
	}
	reason := backupv1alpha1.ReasonSucceeded
	switch {
	case len(foreign) > 0:
		reason = fleetv1alpha1.ReasonForeignNamespace
	case len(conflicts) > 0:
		reason = fleetv1alpha1.ReasonSyncConflict
	case rejected > 0:
		reason = fleetv1alpha1.ReasonCatalogRejected
	case s.Status.Skipped > 0:
		reason = fleetv1alpha1.ReasonBackupsUnreadable
	}
	setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionTrue, reason, msg)
	setCondition(s, fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, msg)
	ctrl.LoggerFrom(ctx).Info("Imported the catalog", "found", len(listed), "imported", imported, "missing", missing, "rejected", rejected, "skipped", skipped)

	locPatch := client.MergeFrom(loc.DeepCopy())
	loc.Status.LastSyncTime = &now
	return true, client.IgnoreNotFound(r.Status().Patch(ctx, loc, locPatch))
}

// maxRejections bounds status.rejections (the CRD's MaxItems).
const maxRejections = 20

// firstN is the first n of items, each cut to the CRD's bound.
func firstN(items []string, n int) []string {
	var out []string
	for _, it := range items[:min(len(items), n)] {
		out = append(out, cut.Bytes(it, maxRejection))
	}
	return out
}

// maxRejection bounds one of status.rejections (the CRD's items MaxLength).
const maxRejection = 2048

// firstOf is the first five of items in order, for a message.
func firstOf(items []string) string {
	sort.Strings(items)
	if len(items) > 5 {
		return strings.Join(items[:5], "; ") + fmt.Sprintf(" and %d more", len(items)-5)
	}
	return strings.Join(items, "; ")
}

// pages are the catalog pages of s in its cluster's namespace, read around
// the cache in chunks (the cluster's quota bounds how many there are).
func (r *Reconciler) pages(ctx context.Context, s *fleetv1alpha1.BackupSync) ([]fleetv1alpha1.BackupCatalog, error) {
	var pages []fleetv1alpha1.BackupCatalog
	opts := []client.ListOption{client.InNamespace(string(s.Status.Cluster)), client.MatchingLabels{fleetv1alpha1.LabelSyncUID: string(s.UID)}, client.Limit(pageListChunk)}
	for {
		list := &fleetv1alpha1.BackupCatalogList{}
		if err := r.APIReader.List(ctx, list, opts...); err != nil {
			return nil, err
		}
		pages = append(pages, list.Items...)
		if list.Continue == "" {
			break
		}
		opts = append(opts[:3], client.Continue(list.Continue))
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i].Spec.Page < pages[j].Spec.Page })
	return pages, nil
}

// complete is true when pages 0..final are all there.
func complete(s *fleetv1alpha1.BackupSync, pages []fleetv1alpha1.BackupCatalog, final int) bool {
	have := map[int32]bool{}
	for i := range pages {
		have[pages[i].Spec.Page] = true
	}
	for n := 0; n <= final; n++ {
		if !have[int32(n)] {
			return false
		}
	}
	return true
}

// pageProblem is why page p as a whole cannot belong to s, or "".
func (r *Reconciler) pageProblem(s *fleetv1alpha1.BackupSync, p *fleetv1alpha1.BackupCatalog) string {
	switch {
	case string(p.Spec.Cluster) != p.Namespace || p.Namespace != string(s.Status.Cluster):
		return fmt.Sprintf("written for cluster %q into namespace %s, but cluster %s was asked to list", p.Spec.Cluster, p.Namespace, s.Status.Cluster)
	case p.Spec.Sync == nil || p.Spec.Location == nil:
		return "is no sync's page (it names no sync or no location)"
	case string(p.Spec.Sync.Namespace) != s.Namespace || string(p.Spec.Sync.Name) != s.Name || p.Spec.Sync.UID != s.UID:
		return fmt.Sprintf("answers BackupSync %s/%s (uid %s), not this one", p.Spec.Sync.Namespace, p.Spec.Sync.Name, p.Spec.Sync.UID)
	case string(p.Spec.Location.Namespace) != s.Namespace || p.Spec.Location.Name != s.Spec.Location:
		return fmt.Sprintf("lists BackupLocation %s/%s, not %s/%s", p.Spec.Location.Namespace, p.Spec.Location.Name, s.Namespace, s.Spec.Location)
	}
	return ""
}

// knownBackups are the namespace's Backups by the place of their data:
// one that another location of the namespace (on the same data) already
// imported is not imported twice. Only the hub writes a Backup's status, so
// only Backups with a status.backupID count: the hub dispatched or imported
// them. Labels, which anyone who may create a Backup can set, do not.
func (r *Reconciler) knownBackups(ctx context.Context, s *fleetv1alpha1.BackupSync) (map[key]*fleetv1alpha1.Backup, error) {
	list := &fleetv1alpha1.BackupList{}
	if err := r.APIReader.List(ctx, list, client.InNamespace(s.Namespace)); err != nil {
		return nil, err
	}
	out := map[key]*fleetv1alpha1.Backup{}
	for i := range list.Items {
		b := &list.Items[i]
		if b.Status.BackupID == "" {
			continue
		}
		out[key{string(b.Spec.Cluster), string(b.Status.BackupID)}] = b
	}
	return out, nil
}

// createBackups creates a Backup for each entry, labelled as synced at
// creation, and then writes its status from the entry. conflicts say which
// entries had a Backup of their name that this sync did not create.
func (r *Reconciler) createBackups(ctx context.Context, s *fleetv1alpha1.BackupSync, entries []fleetv1alpha1.BackupSummary) (imported int32, conflicts []string, _ error) {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		next = make(chan fleetv1alpha1.BackupSummary)
	)
	for range importWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				created, conflict, err := r.createBackup(ctx, s, e)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case conflict != "":
					conflicts = append(conflicts, conflict)
				case created:
					imported++
				}
				mu.Unlock()
			}
		}()
	}
	for i, e := range entries {
		next <- e
		if i%500 == 499 {
			// A long import keeps the container's Lease.
			if err := r.renewLease(ctx, s); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
	}
	close(next)
	wg.Wait()
	return imported, conflicts, kerrors.NewAggregate(errs)
}

// ImportName is the name of the Backup that a sync imports for backup id of
// cluster: "<cluster>-<id>-<hash>", at most 63 characters.
func ImportName(cluster, id string) string { return dispatch.SpokeName(cluster, id) }

// createBackup creates and fills in the Backup of entry e. It returns
// whether it did, or why it left an existing Backup of that name alone.
func (r *Reconciler) createBackup(ctx context.Context, s *fleetv1alpha1.BackupSync, e fleetv1alpha1.BackupSummary) (bool, string, error) {
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Namespace,
			Name:      ImportName(string(e.SourceCluster), string(e.ID)),
			// The backup reconciler puts its finalizer on every Backup;
			// created with it, an import costs one write less per Backup.
			Finalizers: []string{backup.Finalizer},
			Labels: map[string]string{
				fleetv1alpha1.SyncOriginLabel: fleetv1alpha1.SyncOriginValue,
				LabelSourceCluster:            string(e.SourceCluster),
				LabelBackupID:                 dispatch.LabelValue(string(e.ID)),
			},
		},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        e.SourceCluster,
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: s.Spec.Location},
		},
	}
	b.Annotations = map[string]string{fleetv1alpha1.ImportedByAnnotation: string(s.UID)}
	if e.SelfServiceNamespace != "" {
		// A self-service backup takes its own namespace and nothing else.
		b.Spec.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{e.SelfServiceNamespace}}
	}
	if err := r.Create(ctx, b); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return false, "", err
		}
		cluster, location := b.Spec.Cluster, b.Spec.Location
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, "", err
		}
		// Only a Backup this sync created, in an attempt that stopped before
		// its status, gets one now.
		if !createdBy(b, s, cluster, location) {
			return false, fmt.Sprintf("entry %s/%s: %s: Backup %s already exists and was not created by this sync; it was left as it is",
				e.SourceCluster, e.ID, fleetv1alpha1.ReasonSyncConflict, b.Name), nil
		}
	}
	base := b.DeepCopy()
	origin := fleetv1alpha1.OriginSynced
	if e.SelfServiceNamespace != "" {
		origin = fleetv1alpha1.OriginSelfService
	}
	b.Status = fleetv1alpha1.BackupStatus{
		ObservedGeneration: b.Generation,
		Phase:              fleetv1alpha1.BackupPhase(e.Phase),
		Origin:             origin,
		RecordedSelection:  e.Selection,
	}
	b.Status.BackupID = e.ID
	b.Status.StartTime, b.Status.CompletionTime, b.Status.Expiration = e.StartTime, e.CompletionTime, e.Expiration
	b.Status.Warnings, b.Status.Errors = e.Warnings, e.Errors
	b.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: e.Items, ItemsDone: e.Items, BytesDone: e.SizeBytes}
	msg := fmt.Sprintf("imported by BackupSync %s from cluster %s's listing of BackupLocation %q", s.Name, s.Status.Cluster, s.Spec.Location)
	for _, typ := range []string{fleetv1alpha1.ConditionReady, fleetv1alpha1.ConditionCompleted} {
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{
			Type: typ, Status: metav1.ConditionTrue, Reason: ReasonSynced, Message: msg,
			ObservedGeneration: b.Generation, LastTransitionTime: metav1.Now(),
		})
	}
	if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
		return false, "", err
	}
	return true, "", nil
}

// createdBy is true for a Backup that sync s created for the data of
// cluster in location and that has no status yet.
func createdBy(b *fleetv1alpha1.Backup, s *fleetv1alpha1.BackupSync, cluster backupv1alpha1.ClusterName, location backupv1alpha1.ObjectName) bool {
	return b.Annotations[fleetv1alpha1.ImportedByAnnotation] == string(s.UID) &&
		b.Labels[fleetv1alpha1.SyncOriginLabel] == fleetv1alpha1.SyncOriginValue &&
		b.Status.Phase == "" && b.Status.BackupID == "" &&
		b.Spec.Cluster == cluster && b.Spec.Location == location
}

// ReasonSynced is the reason of an imported Backup's conditions.
const ReasonSynced = "Synced"

// markMissing makes CloudBackupMissing every finished Backup of the location
// that the listing did not find and that finished before the sync started
// (a backup that finished later may not have been listed), and puts a
// CloudBackupMissing Backup that was found again back to its phase.
// One cluster's listing is evidence only for its own backups, and only while
// its connection to the location is Valid: that cluster could delete them
// anyway. A Backup of another cluster that was not listed is left as it is
// and counted in unconfirmed.
func (r *Reconciler) markMissing(ctx context.Context, s *fleetv1alpha1.BackupSync, loc *fleetv1alpha1.BackupLocation, known map[key]*fleetv1alpha1.Backup, listed map[key]bool) (missing, found, unconfirmed int32, err error) {
	started := time.Now()
	if s.Status.StartTime != nil {
		started = s.Status.StartTime.Time
	}
	lister := string(s.Status.Cluster)
	v, err := locations.Of(ctx, r, loc, lister)
	if err != nil {
		return 0, 0, 0, err
	}
	listerValid := v.State == locations.Valid
	for k, b := range known {
		if !b.DeletionTimestamp.IsZero() || b.Spec.Location != s.Spec.Location {
			continue
		}
		base := b.DeepCopy()
		switch {
		case listed[k] && b.Status.Phase == fleetv1alpha1.BackupCloudBackupMissing:
			b.Status.Phase = fleetv1alpha1.BackupSuccess
			if b.Status.Errors > 0 {
				b.Status.Phase = fleetv1alpha1.BackupPartialSuccess
			}
			setBackupCondition(b, metav1.ConditionTrue, ReasonSynced, fmt.Sprintf("BackupSync %s found the backup's data again", s.Name))
			found++
		case !listed[k] && b.Status.Phase.Restorable() &&
			b.Status.CompletionTime != nil && b.Status.CompletionTime.Time.Before(started):
			if k.cluster != lister || !listerValid {
				unconfirmed++
				continue
			}
			b.Status.Phase = fleetv1alpha1.BackupCloudBackupMissing
			setBackupCondition(b, metav1.ConditionFalse, string(fleetv1alpha1.BackupCloudBackupMissing), fmt.Sprintf(
				"BackupSync %s found no backup.json for backup %s in BackupLocation %q, listed by cluster %s, the backup's source cluster, whose connection to the location is Valid",
				s.Name, k.id, s.Spec.Location, k.cluster))
			missing++
		default:
			continue
		}
		if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
			return missing, found, unconfirmed, err
		}
	}
	return missing, found, unconfirmed, nil
}

func setBackupCondition(b *fleetv1alpha1.Backup, status metav1.ConditionStatus, reason, msg string) {
	for i := range b.Status.Conditions {
		if b.Status.Conditions[i].Type == fleetv1alpha1.ConditionReady {
			c := &b.Status.Conditions[i]
			if c.Status != status {
				c.LastTransitionTime = metav1.Now()
			}
			c.Status, c.Reason, c.Message, c.ObservedGeneration = status, reason, msg, b.Generation
			return
		}
	}
	b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: b.Generation, LastTransitionTime: metav1.Now()})
}

// finishPages marks each page Imported or Rejected, then deletes it.
func (r *Reconciler) finishPages(ctx context.Context, pages []fleetv1alpha1.BackupCatalog, imported, rejected map[string]int32, problems map[string]string) error {
	for i := range pages {
		p := &pages[i]
		base := p.DeepCopy()
		p.Status.ObservedGeneration = p.Generation
		p.Status.Imported, p.Status.Rejected = imported[p.Name], rejected[p.Name]
		status, reason, msg := metav1.ConditionTrue, ReasonSynced, fmt.Sprintf("%d entries imported or known, %d rejected", imported[p.Name], rejected[p.Name])
		p.Status.Phase = fleetv1alpha1.CatalogImported
		if problem := problems[p.Name]; problem != "" {
			p.Status.Phase, p.Status.Rejected = fleetv1alpha1.CatalogRejected, int32(len(p.Spec.Entries))
			status, reason, msg = metav1.ConditionFalse, fleetv1alpha1.ReasonCatalogRejected, problem
		}
		p.Status.Conditions = []metav1.Condition{{Type: fleetv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation, LastTransitionTime: metav1.Now()}}
		if err := r.Status().Patch(ctx, p, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
			return err
		}
		if err := r.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// deletePages deletes what is left of s's pages.
func (r *Reconciler) deletePages(ctx context.Context, s *fleetv1alpha1.BackupSync) error {
	if s.Status.Cluster == "" {
		return nil
	}
	return client.IgnoreNotFound(r.DeleteAllOf(ctx, &fleetv1alpha1.BackupCatalog{},
		client.InNamespace(string(s.Status.Cluster)), client.MatchingLabels{fleetv1alpha1.LabelSyncUID: string(s.UID)}))
}

// renewLease renews s's Lease during a long import.
func (r *Reconciler) renewLease(ctx context.Context, s *fleetv1alpha1.BackupSync) error {
	loc := &fleetv1alpha1.BackupLocation{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: string(s.Spec.Location)}, loc); err != nil {
		return err
	}
	_, err := r.acquireLease(ctx, s, loc)
	return err
}
