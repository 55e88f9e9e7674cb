package backupsync

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch/dispatchtest"
	"github.com/lifeboat-dev/lifeboat/hub/events/eventstest"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
)

func TestSyncImportsMarksMissingSkipsTombstonesAndRejects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocation(t, g, importNamespace, "primary", "acctimport", "backups", "spoke-i1")
	kept := hubBackup(t, g, loc, "kept", "spoke-i1", "kept-id", time.Hour)
	gone := hubBackup(t, g, loc, "gone", "spoke-i1", "gone-id", time.Hour)
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	loc.Status.Tombstones = []fleetv1alpha1.Tombstone{{SourceCluster: "other-hub-c1", BackupID: "tomb-1", Backup: "forced"}}
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())

	s := newSync(t, g, loc, "manual")
	g.Eventually(workExists(s, "spoke-i1")).WithTimeout(timeout).Should(BeTrue())
	g.Eventually(getSync(s)).WithTimeout(timeout).Should(And(
		HaveField("Status.Phase", backupv1alpha1.TaskInProgress),
		HaveField("Status.Cluster", backupv1alpha1.ClusterName("spoke-i1")),
	))
	g.Expect(leaseHolder("acctimport", "backups")).To(Equal("team-import/manual"))

	t.Log("a listing that fails on storage and is retried says so, with a Warning Event")
	dispatchtest.Report(g, hubClient, workKey(s, "spoke-i1"), 1, 1, dispatchtest.Values(map[string]any{
		"observedGeneration": int64(1), "phase": string(backupv1alpha1.TaskInProgress),
		"readyReason": backupv1alpha1.ReasonStorageError, "readyMessage": "listing the container failed: the storage service answered HTTP 503",
	}), timeout)
	retrying := "cluster spoke-i1 failed on storage listing the container and retries (it validates its connection to BackupLocation \"primary\" again): listing the container failed: the storage service answered HTTP 503"
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(getSync(s)().Status.Conditions, fleetv1alpha1.ConditionReady)
	}).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Reason", backupv1alpha1.ReasonStorageError), HaveField("Message", retrying)))
	g.Eventually(eventstest.Notes(hubClient, getSync(s)(), "SyncRetrying")).WithTimeout(timeout).Should(ConsistOf(retrying))

	t.Log("the spoke writes two pages and a page for another location, then reports Completed")
	selfService := entry("spoke-i1", "ss-1")
	selfService.Hub, selfService.SelfServiceNamespace = nil, "shop"
	failed := entry("other-hub-c1", "failed-1")
	failed.Phase = backupv1alpha1.ApplicationBackupFailed
	// Another tenant's backup, written where this location lists it.
	foreign := entry("spoke-i1", "theirs-1")
	foreign.Hub.Namespace = "team-other"
	recorded := entry("other-hub-c1", "abc123")
	recorded.Selection = &fleetv1alpha1.SelectionSummary{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop", "db"}, NamespacesOmitted: 4, LabelSelector: true}
	writePage(g, s, "spoke-i1", "primary", 0, false,
		entry("spoke-i1", "kept-id"), recorded, selfService, entry("other-hub-c1", "tomb-1"), failed, foreign)
	writePage(g, s, "spoke-i1", "primary", 1, true, entry("other-hub-c2", "def456"))
	writePage(g, s, "spoke-i1", "secondary", 2, false, entry("other-hub-c2", "sneaky"))
	spokeReports(g, s, "spoke-i1", backupv1alpha1.TaskCompleted, 7, 3)

	g.Eventually(getSync(s)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	st := getSync(s)().Status
	g.Expect(st.Imported).To(BeEquivalentTo(3), "abc123, ss-1, def456")
	g.Expect(st.Missing).To(BeEquivalentTo(1), "gone-id")
	g.Expect(st.Rejected).To(BeEquivalentTo(3), "the Failed entry, the other namespace's entry and the other location's page")
	g.Expect(st.Found).To(BeEquivalentTo(5), "kept-id, abc123, ss-1, tomb-1, def456")
	c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionCompleted)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonForeignNamespace))
	g.Expect(c.Message).To(And(ContainSubstring("1 tombstones skipped"), ContainSubstring("failed-1"), ContainSubstring("secondary"),
		ContainSubstring("another namespace than team-import: entry spoke-i1/theirs-1 (made for Backup team-other/nightly-theirs-1)")))
	g.Expect(meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)).To(HaveField("Reason", fleetv1alpha1.ReasonForeignNamespace))
	g.Expect(getBackup(importNamespace, ImportName("spoke-i1", "theirs-1"))()).To(BeNil(), "another namespace's backup is not imported")
	g.Eventually(eventstest.Notes(hubClient, getSync(s)(), "Sync"+fleetv1alpha1.ReasonForeignNamespace)).WithTimeout(timeout).Should(ConsistOf(c.Message),
		"the hub's Event says what the sync rejected and why")

	t.Log("imported Backups are labelled synced from creation, with the catalog's status")
	b := getBackup("team-import", ImportName("other-hub-c1", "abc123"))()
	g.Expect(b).NotTo(BeNil())
	g.Expect(b.Labels).To(HaveKeyWithValue(fleetv1alpha1.SyncOriginLabel, fleetv1alpha1.SyncOriginValue))
	g.Expect(b.Finalizers).To(ConsistOf(backup.Finalizer), "created with the backup reconciler's finalizer")
	g.Expect(b.Status.Origin).To(Equal(fleetv1alpha1.OriginSynced))
	g.Expect(b.Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess))
	g.Expect(b.Status.BackupID).To(BeEquivalentTo("abc123"))
	g.Expect(b.Spec.Cluster).To(BeEquivalentTo("other-hub-c1"))
	g.Expect(b.Status.Progress.ItemsDone).To(BeEquivalentTo(7))
	g.Expect(b.Status.CompletionTime).NotTo(BeNil())
	ss := getBackup("team-import", ImportName("spoke-i1", "ss-1"))()
	g.Expect(ss).NotTo(BeNil())
	g.Expect(ss.Status.Origin).To(Equal(fleetv1alpha1.OriginSelfService))
	g.Expect(ss.Spec.Selection).To(HaveField("IncludedNamespaces", []backupv1alpha1.NamespaceName{"shop"}), "a self-service backup took its own namespace only")
	g.Expect(b.Spec.Selection).To(BeNil(), "what backup.json records is not trusted for restores and the protection report")
	g.Expect(b.Status.RecordedSelection).To(Equal(recorded.Selection), "what backup.json records is shown")
	g.Expect(getBackup("team-import", ImportName("other-hub-c1", "tomb-1"))()).To(BeNil(), "tombstones are not imported")
	g.Expect(getBackup("team-import", ImportName("other-hub-c1", "failed-1"))()).To(BeNil())
	g.Expect(getBackup("team-import", ImportName("other-hub-c2", "sneaky"))()).To(BeNil())

	t.Log("a Backup whose data was not listed is CloudBackupMissing; a listed one is unchanged")
	g.Expect(getBackup("team-import", gone.Name)().Status.Phase).To(Equal(fleetv1alpha1.BackupCloudBackupMissing))
	g.Expect(getBackup("team-import", kept.Name)().Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess))

	t.Log("the pages are gone and the Lease is free; the location knows when it was synced")
	pages := &fleetv1alpha1.BackupCatalogList{}
	g.Eventually(func() int {
		_ = hubClient.List(ctx, pages, client.InNamespace("spoke-i1"))
		return len(pages.Items)
	}).WithTimeout(timeout).Should(BeZero())
	g.Eventually(func() string { return leaseHolder("acctimport", "backups") }).WithTimeout(timeout).Should(BeEmpty())
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	g.Expect(loc.Status.LastSyncTime).NotTo(BeNil())

	t.Log("a second sync is idempotent: nothing new to import, gone stays missing")
	s2 := newSync(t, g, loc, "again")
	g.Eventually(workExists(s2, "spoke-i1")).WithTimeout(timeout).Should(BeTrue())
	getSync(s2)()
	writePage(g, s2, "spoke-i1", "primary", 0, true, entry("spoke-i1", "kept-id"), entry("other-hub-c1", "abc123"), selfService, entry("other-hub-c2", "def456"))
	spokeReports(g, s2, "spoke-i1", backupv1alpha1.TaskCompleted, 4, 1)
	g.Eventually(getSync(s2)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	g.Expect(getSync(s2)().Status).To(And(HaveField("Imported", BeEquivalentTo(0)), HaveField("Missing", BeEquivalentTo(0)), HaveField("Found", BeEquivalentTo(4))))
	g.Eventually(eventstest.Notes(hubClient, getSync(s2)(), "SyncCompleted")).WithTimeout(timeout).Should(HaveLen(1))

	t.Log("what the cluster skipped, it reports on the final page; the sync lists it with why")
	s3 := newSync(t, g, loc, "skipping")
	g.Eventually(workExists(s3, "spoke-i1")).WithTimeout(timeout).Should(BeTrue())
	getSync(s3)()
	writePageWith(g, s3, "spoke-i1", "primary", 0, true, func(spec *fleetv1alpha1.BackupCatalogSpec) {
		spec.Skipped = []fleetv1alpha1.SkippedFolder{
			{Folder: "lifeboat/v1/backups/spoke-i1/future", Reason: "backup future: backup.json: format version 2 is newer than this Lifeboat reads (1)"},
			{Folder: "lifeboat/v1/backups/spoke-i9/copied", Reason: "backup copied: backup.json names backup spoke-i1/kept-id"},
		}
		spec.SkippedCount, spec.Incomplete = 2, 1
	}, entry("spoke-i1", "kept-id"), entry("other-hub-c1", "abc123"), selfService, entry("other-hub-c2", "def456"))
	spokeReports(g, s3, "spoke-i1", backupv1alpha1.TaskCompleted, 4, 1)
	g.Eventually(getSync(s3)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	st = getSync(s3)().Status
	g.Expect(st.Skipped).To(BeEquivalentTo(2))
	g.Expect(st.Rejections).To(Equal([]string{
		"folder lifeboat/v1/backups/spoke-i1/future (cluster spoke-i1 reports): backup future: backup.json: format version 2 is newer than this Lifeboat reads (1)",
		"folder lifeboat/v1/backups/spoke-i9/copied (cluster spoke-i1 reports): backup copied: backup.json names backup spoke-i1/kept-id",
	}))
	c = meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionCompleted)
	g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonBackupsUnreadable))
	g.Expect(c.Message).To(And(ContainSubstring("The cluster skipped 2 folders it could not read as backups"),
		ContainSubstring("1 folders hold no backup.json")))
}

func TestOneSyncPerContainerAtATime(t *testing.T) {
	g := NewWithT(t)
	// Two locations, in two tenants, on one storage account's container.
	locA := newLocation(t, g, "team-lease-a", "shared", "acctlease", "fleet", "spoke-l1")
	locB := newLocation(t, g, "team-lease-b", "shared", "acctlease", "fleet", "spoke-l1")

	t.Log("record every 20ms which syncs are InProgress and who holds the Lease")
	type sample struct {
		running []string
		holder  string
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	a := newSync(t, g, locA, "sync-a")
	b := newSync(t, g, locB, "sync-b")
	go func() {
		for ctx.Err() == nil {
			// One list is one consistent snapshot of both syncs.
			var running []string
			all := &fleetv1alpha1.BackupSyncList{}
			if err := hubClient.List(ctx, all); err != nil {
				continue
			}
			for _, s := range all.Items {
				if (s.Name == a.Name && s.Namespace == a.Namespace || s.Name == b.Name && s.Namespace == b.Namespace) &&
					s.Status.Phase == backupv1alpha1.TaskInProgress {
					running = append(running, s.Namespace+"/"+s.Name)
				}
			}
			mu.Lock()
			samples = append(samples, sample{running, leaseHolder("acctlease", "fleet")})
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	t.Log("one runs, the other waits Pending naming the holder")
	var first, second *fleetv1alpha1.BackupSync
	g.Eventually(func() bool {
		pa, pb := getSync(a)().Status.Phase, getSync(b)().Status.Phase
		switch {
		case pa == backupv1alpha1.TaskInProgress && pb == backupv1alpha1.TaskPending:
			first, second = a, b
		case pb == backupv1alpha1.TaskInProgress && pa == backupv1alpha1.TaskPending:
			first, second = b, a
		}
		return first != nil
	}).WithTimeout(timeout).Should(BeTrue())
	holder := first.Namespace + "/" + first.Name
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(getSync(second)().Status.Conditions, fleetv1alpha1.ConditionReady)
	}).WithTimeout(timeout).Should(And(
		HaveField("Reason", fleetv1alpha1.ReasonWaitingForSync),
		HaveField("Message", ContainSubstring(holder)),
		HaveField("Message", ContainSubstring(LeaseName("acctlease", "fleet"))),
	))
	g.Consistently(func() backupv1alpha1.TaskPhase { return getSync(second)().Status.Phase }).WithTimeout(2 * time.Second).Should(Equal(backupv1alpha1.TaskPending))
	g.Expect(workExists(second, "spoke-l1")()).To(BeFalse(), "nothing is sent for the waiting sync")

	t.Log("the first completes and releases the Lease; the second runs")
	writePage(g, first, "spoke-l1", "shared", 0, true)
	spokeReports(g, first, "spoke-l1", backupv1alpha1.TaskCompleted, 0, 1)
	g.Eventually(getSync(first)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	g.Eventually(getSync(second)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskInProgress))
	g.Expect(leaseHolder("acctlease", "fleet")).To(Equal(second.Namespace + "/" + second.Name))

	// Let the recorder see the second one running before it goes.
	g.Eventually(func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range samples {
			if len(s.running) == 1 && s.running[0] == second.Namespace+"/"+second.Name {
				return true
			}
		}
		return false
	}).WithTimeout(timeout).Should(BeTrue())

	t.Log("deleting the running sync releases the Lease")
	g.Expect(hubClient.Delete(context.Background(), second)).To(Succeed())
	g.Eventually(func() string { return leaseHolder("acctlease", "fleet") }).WithTimeout(timeout).Should(BeEmpty())
	stop()

	mu.Lock()
	defer mu.Unlock()
	sawBoth := map[string]bool{}
	var holders []string
	for _, s := range samples {
		g.Expect(len(s.running)).To(BeNumerically("<=", 1), "two syncs of one container ran at once: %v", s.running)
		if len(s.running) == 1 {
			sawBoth[s.running[0]] = true
		}
		if s.holder != "" && (len(holders) == 0 || holders[len(holders)-1] != s.holder) {
			holders = append(holders, s.holder)
		}
	}
	g.Expect(sawBoth).To(HaveLen(2), "both ran, one after the other (%d samples)", len(samples))
	g.Expect(holders).To(Equal([]string{holder, second.Namespace + "/" + second.Name}), "the Lease went from the first to the second, once")
	t.Logf("%d samples, never two InProgress at once; Lease holders in turn: %v", len(samples), holders)
}

func TestIntervalCreatesDeterministicSyncs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocation(t, g, "team-interval", "primary", "acctinterval", "backups", "spoke-v1")
	loc.Spec.SyncInterval = &metav1.Duration{Duration: 30 * time.Minute}
	g.Expect(hubClient.Update(ctx, loc)).To(Succeed())
	name := ScheduledName("primary", intervalNow.Truncate(30*time.Minute))
	g.Expect(name).To(Equal("primary-20261121-100000"))
	g.Eventually(func() error {
		return hubClient.Get(ctx, client.ObjectKey{Namespace: "team-interval", Name: name}, &fleetv1alpha1.BackupSync{})
	}).WithTimeout(timeout).Should(Succeed())
	list := &fleetv1alpha1.BackupSyncList{}
	g.Expect(hubClient.List(ctx, list, client.InNamespace("team-interval"))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
	g.Expect(list.Items[0].Labels).To(HaveKeyWithValue(LabelScheduledFor, "primary"))
}

func TestSyncWithoutValidClusterFails(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-novalid", "primary", "acctnovalid", "backups", "spoke-n1")
	s := &fleetv1alpha1.BackupSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: "pinned"},
		Spec:       fleetv1alpha1.BackupSyncSpec{Location: "primary", Cluster: "spoke-other"},
	}
	g.Expect(hubClient.Create(context.Background(), s)).To(Succeed())
	g.Eventually(getSync(s)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskFailed))
	c := meta.FindStatusCondition(getSync(s)().Status.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonClusterNotAllowed))
	g.Expect(leaseHolder("acctnovalid", "backups")).To(BeEmpty())
	g.Eventually(eventstest.Notes(hubClient, getSync(s)(), "Sync"+fleetv1alpha1.ReasonClusterNotAllowed)).WithTimeout(timeout).Should(ConsistOf(c.Message))
}
