package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch/dispatchtest"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/events/eventstest"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

type conn struct {
	cluster         string
	phase           backupv1alpha1.TargetPhase
	reason, message string
}

func TestDeleteSendsBackupDeletionToSourceAndReleasesWhenDataIsGone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocationOn(t, g, "team-del", "primary", conn{"del-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"}, conn{"del-b", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := succeededBackup(t, g, loc, "del-b", "nightly")

	t.Log("the Backup carries the finalizer")
	g.Eventually(finalizers(b)).WithTimeout(timeout).Should(ContainElement(Finalizer))

	g.Expect(hubClient.Delete(ctx, b)).To(Succeed())
	t.Log("the ApplicationBackup work goes and a BackupDeletion goes to the source cluster, del-b")
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeFalse())
	g.Eventually(deletionWorkExists(b, "del-b")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(deletionWorkExists(b, "del-a")()).To(BeFalse())
	del := backupDeletionIn(g, deletionWorkOf(g, b, "del-b"))
	g.Expect(del.Namespace).To(Equal(SpokeNamespace))
	g.Expect(del.Name).To(Equal(Name("team-del", "nightly")))
	g.Expect(del.Spec.Target).To(BeEquivalentTo(backuplocation.TargetName("team-del", "primary")))
	g.Expect(del.Spec.Source).To(Equal(backupv1alpha1.BackupSource{Cluster: "del-b", BackupID: backupv1alpha1.BackupID(b.UID), ManifestSHA256: sealed}),
		"the deletion carries the sha256 of backup.json that the source cluster reported")
	g.Expect(del.Spec.Force).To(BeTrue())
	g.Expect(del.Spec.Hub).To(Equal(&backupv1alpha1.HubObjectReference{Namespace: "team-del", Name: "nightly", UID: b.UID}))

	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupDeleting))
	deleting := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionDeleting)
	g.Expect(deleting).To(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fleetv1alpha1.ReasonDeletingData)))
	g.Expect(deleting.Message).To(ContainSubstring("del-b"))

	t.Log("the Backup stays while the spoke is deleting")
	simulateDeletion(g, b, "del-b", map[string]any{"phase": "InProgress", "observedGeneration": int64(1)})
	g.Consistently(exists(b)).WithTimeout(2 * time.Second).Should(BeTrue())

	t.Log("a deletion that fails on storage and is retried says so, with a Warning Event")
	simulateDeletion(g, b, "del-b", map[string]any{"phase": "InProgress", "observedGeneration": int64(1),
		"readyReason": backupv1alpha1.ReasonStorageError, "readyMessage": "deleting blobs failed: the storage service answered HTTP 503"})
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionDeleting)
	}).WithTimeout(3 * timeout).Should(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonDeletionRetrying),
		HaveField("Message", And(ContainSubstring("cluster del-b failed on storage"), ContainSubstring("HTTP 503")))))
	g.Expect(status(b)().Phase).To(Equal(fleetv1alpha1.BackupDeleting))
	g.Eventually(eventReasons(b)).WithTimeout(timeout).Should(ContainElement(fleetv1alpha1.ReasonDeletionRetrying))

	t.Log("feedback of an older hub generation does not release it")
	simulateDeletionAt(g, b, "del-b", b.Generation-1, map[string]any{"phase": "Completed", "observedGeneration": int64(1)})
	g.Consistently(exists(b)).WithTimeout(2 * time.Second).Should(BeTrue())

	t.Log("Completed: the Backup and the deletion work go")
	simulateDeletion(g, b, "del-b", map[string]any{"phase": "Completed", "blobsDeleted": int64(17), "observedGeneration": int64(1)})
	// The work's feedback event releases it at once; should that event be
	// missed on a busy machine, the deletion's 30 s recheck does.
	g.Eventually(exists(b)).WithTimeout(3 * timeout).Should(BeFalse())
	g.Eventually(deletionWorkExists(b, "del-b")).WithTimeout(timeout).Should(BeFalse())
	g.Eventually(eventReasons(b)).WithTimeout(timeout).Should(ContainElement(fleetv1alpha1.ReasonDataDeleted))
}

func TestDeleteGoesToAnotherValidClusterWhenTheSourceIsNot(t *testing.T) {
	g := NewWithT(t)
	loc := newLocationOn(t, g, "team-other", "primary", conn{"other-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"}, conn{"other-b", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := succeededBackup(t, g, loc, "other-a", "nightly")
	setConnections(g, loc, conn{"other-a", backupv1alpha1.TargetInvalid, "AuthenticationFailed", "no federated credential"}, conn{"other-b", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})

	g.Expect(hubClient.Delete(context.Background(), b)).To(Succeed())
	g.Eventually(deletionWorkExists(b, "other-b")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(deletionWorkExists(b, "other-a")()).To(BeFalse())
	del := backupDeletionIn(g, deletionWorkOf(g, b, "other-b"))
	g.Expect(del.Spec.Source.Cluster).To(BeEquivalentTo("other-a"), "the data is under the source cluster's folder")

	t.Log("a refusal by the spoke leaves the Backup DeletePending with the spoke's reason")
	simulateDeletion(g, b, "other-b", map[string]any{"phase": "Failed", "observedGeneration": int64(1), "readyReason": "InvalidConfiguration", "readyMessage": "target not found"})
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupDeletePending))
	c := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionDeleting)
	g.Expect(c).To(And(HaveField("Reason", fleetv1alpha1.ReasonDeletionFailed), HaveField("Message", And(ContainSubstring("other-b"), ContainSubstring("InvalidConfiguration: target not found")))))
	g.Expect(exists(b)()).To(BeTrue())
}

func TestDeleteWaitsWithoutValidClusterThenProceeds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocationOn(t, g, "team-pending", "primary", conn{"pend-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"}, conn{"pend-b", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := succeededBackup(t, g, loc, "pend-a", "nightly")
	setConnections(g, loc, conn{"pend-a", backupv1alpha1.TargetInvalid, "AuthorizationFailed", "role assignment missing"}, conn{"pend-b", backupv1alpha1.TargetPending, "WaitingForCluster", ""})

	g.Expect(hubClient.Delete(ctx, b)).To(Succeed())
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupDeletePending))
	c := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionDeleting)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonNoValidCluster))
	g.Expect(c.Message).To(And(
		ContainSubstring("cluster pend-a is Invalid (AuthorizationFailed: role assignment missing)"),
		ContainSubstring("cluster pend-b is Pending"),
		ContainSubstring("kubectl annotate backup nightly -n team-pending fleet.lifeboat.dev/force-delete=true"),
	))
	g.Expect(deletionWorkExists(b, "pend-a")()).To(BeFalse())
	g.Expect(deletionWorkExists(b, "pend-b")()).To(BeFalse())
	g.Eventually(eventReasons(b)).WithTimeout(timeout).Should(ContainElement(fleetv1alpha1.ReasonNoValidCluster))

	t.Log("a cluster turning Valid lets the deletion proceed by itself")
	setConnections(g, loc, conn{"pend-a", backupv1alpha1.TargetInvalid, "AuthorizationFailed", "role assignment missing"}, conn{"pend-b", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	g.Eventually(deletionWorkExists(b, "pend-b")).WithTimeout(timeout).Should(BeTrue())
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupDeleting))
	simulateDeletion(g, b, "pend-b", map[string]any{"phase": "Completed", "observedGeneration": int64(1)})
	g.Eventually(exists(b)).WithTimeout(timeout).Should(BeFalse())
}

func TestForceDeleteLeavesATombstoneWithoutValidCluster(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc, b := unreachableBackup(t, g, "team-force", "force-a")
	before := metav1.Now().Rfc3339Copy()
	forceDelete(g, b)

	cur := &fleetv1alpha1.BackupLocation{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
	g.Expect(cur.Status.Tombstones).To(HaveLen(1))
	ts := cur.Status.Tombstones[0]
	g.Expect(ts.SourceCluster).To(Equal("force-a"))
	g.Expect(ts.BackupID).To(Equal(string(b.UID)))
	g.Expect(ts.Backup).To(Equal("nightly"))
	g.Expect(ts.BackupUID).To(Equal(b.UID))
	g.Expect(ts.DeletionTime).NotTo(BeNil())
	g.Expect(ts.DeletionTime.Before(&before)).To(BeFalse())
	g.Expect(cur.Status.NotValid).To(HaveLen(1), "the tombstone patch leaves the connections alone")
	g.Expect(deletionWorkExists(b, "force-a")()).To(BeFalse(), "the data is not touched")

	g.Eventually(eventMessages(b, fleetv1alpha1.ReasonForceDeleted)).WithTimeout(timeout).Should(ContainElement(
		ContainSubstring("backups/team-force/lifeboat/v1/backups/force-a/" + string(b.UID))))
}

// L5 of the security review: a location keeps at most MaxTombstones. A force
// deletion beyond that still removes the hub record, leaves the data and
// says that it left no tombstone, instead of failing the status write for
// ever; the API refuses a longer list.
func TestForceDeleteWithTombstonesFullLeavesNone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc, b := unreachableBackup(t, g, "team-full", "full-a")
	g.Eventually(func() error {
		cur := &fleetv1alpha1.BackupLocation{}
		if err := hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur); err != nil {
			return err
		}
		cur.Status.Tombstones = nil
		for i := range fleetv1alpha1.MaxTombstones {
			cur.Status.Tombstones = append(cur.Status.Tombstones, fleetv1alpha1.Tombstone{SourceCluster: "full-a", BackupID: fmt.Sprintf("old-%04d", i)})
		}
		return hubClient.Status().Update(ctx, cur)
	}).WithTimeout(timeout).Should(Succeed())

	more := &fleetv1alpha1.BackupLocation{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), more)).To(Succeed())
	more.Status.Tombstones = append(more.Status.Tombstones, fleetv1alpha1.Tombstone{SourceCluster: "full-a", BackupID: "one-more"})
	g.Expect(hubClient.Status().Update(ctx, more)).To(MatchError(ContainSubstring("must have at most 1000 items")))

	forceDelete(g, b)
	cur := &fleetv1alpha1.BackupLocation{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
	g.Expect(cur.Status.Tombstones).To(HaveLen(fleetv1alpha1.MaxTombstones))
	g.Expect(cur.Status.Tombstones).NotTo(ContainElement(HaveField("BackupID", string(b.UID))))
	g.Expect(deletionWorkExists(b, "full-a")()).To(BeFalse(), "the data is not touched")
	g.Eventually(eventMessages(b, fleetv1alpha1.ReasonForceDeleted)).WithTimeout(timeout).Should(ContainElement(And(
		ContainSubstring("without a tombstone"), ContainSubstring("already holds 1000"), ContainSubstring("A sync imports the backup again"))))
}

// unreachableBackup is a succeeded Backup "nightly" of cluster in a location
// of namespace whose only cluster has since lost its connection.
func unreachableBackup(t *testing.T, g *WithT, namespace, cluster string) (*fleetv1alpha1.BackupLocation, *fleetv1alpha1.Backup) {
	loc := newLocationOn(t, g, namespace, "primary", conn{cluster, backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := succeededBackup(t, g, loc, cluster, "nightly")
	setConnections(g, loc, conn{cluster, backupv1alpha1.TargetInvalid, "AuthenticationFailed", "no federated credential"})
	return loc, b
}

// forceDelete deletes b, waits for DeletePending, forces it and waits until
// b is gone.
func forceDelete(g *WithT, b *fleetv1alpha1.Backup) {
	g.Expect(hubClient.Delete(context.Background(), b)).To(Succeed())
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupDeletePending))
	annotate(g, b, fleetv1alpha1.ForceDeleteAnnotation, "true")
	g.Eventually(exists(b)).WithTimeout(timeout).Should(BeFalse())
}

func TestForceDeleteIsRefusedWhileAClusterIsValid(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocationOn(t, g, "team-refuse", "primary", conn{"refuse-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := succeededBackup(t, g, loc, "refuse-a", "nightly")
	annotate(g, b, fleetv1alpha1.ForceDeleteAnnotation, "true")
	g.Expect(hubClient.Delete(ctx, b)).To(Succeed())

	g.Eventually(deletionWorkExists(b, "refuse-a")).WithTimeout(timeout).Should(BeTrue())
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionDeleting)
	}).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonForceDeleteRefused),
		HaveField("Message", ContainSubstring("force delete refused: cluster refuse-a has a Valid connection"))))
	g.Consistently(exists(b)).WithTimeout(2 * time.Second).Should(BeTrue())
	cur := &fleetv1alpha1.BackupLocation{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
	g.Expect(cur.Status.Tombstones).To(BeEmpty())
}

func TestBackupThatNeverWroteDataIsReleasedAtOnce(t *testing.T) {
	g := NewWithT(t)
	loc := newLocationOn(t, g, "team-nodata", "primary", conn{"nodata-a", backupv1alpha1.TargetInvalid, "AuthenticationFailed", "nope"})
	b := newBackup(t, g, loc, "nodata-a", "nightly", nil)
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	g.Eventually(finalizers(b)).WithTimeout(timeout).Should(ContainElement(Finalizer))
	g.Expect(hubClient.Delete(context.Background(), b)).To(Succeed())
	g.Eventually(exists(b)).WithTimeout(timeout).Should(BeFalse())
	g.Expect(deletionWorkExists(b, "nodata-a")()).To(BeFalse())
}

func TestDeletingARunningBackupStopsItsRun(t *testing.T) {
	g := NewWithT(t)
	loc := newLocationOn(t, g, "team-running", "primary", conn{"running-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := newBackup(t, g, loc, "running-a", "nightly", nil)
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{"phase": "InProgress", "observedGeneration": int64(1), "backupID": string(b.UID)}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupInProgress))

	g.Expect(hubClient.Delete(context.Background(), b)).To(Succeed())
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeFalse(), "the ApplicationBackup's work goes, so the spoke stops the run")
	g.Eventually(deletionWorkExists(b, "running-a")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(backupDeletionIn(g, deletionWorkOf(g, b, "running-a")).Spec.Force).To(BeTrue(), "forced: aborts the run and deletes what it wrote")
}

func TestSyncedBackupIsNeverDispatchedButIsDeleted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocationOn(t, g, "team-synced", "primary", conn{"synced-a", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok"})
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: "imported", Labels: map[string]string{fleetv1alpha1.SyncOriginLabel: fleetv1alpha1.SyncOriginValue}},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        "synced-a",
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, b) })
	patch := client.MergeFrom(b.DeepCopy())
	b.Status.Phase = fleetv1alpha1.BackupSuccess
	b.Status.Origin = fleetv1alpha1.OriginSynced
	b.Status.BackupID = "from-another-hub"
	g.Expect(hubClient.Status().Patch(ctx, b, patch)).To(Succeed())

	g.Eventually(finalizers(b)).WithTimeout(timeout).Should(ContainElement(Finalizer))
	g.Consistently(workExists(b)).WithTimeout(2*time.Second).Should(BeFalse(), "an imported backup is never sent as a new one")
	g.Expect(status(b)()).To(And(HaveField("Origin", fleetv1alpha1.OriginSynced), HaveField("Phase", fleetv1alpha1.BackupSuccess)))

	g.Expect(hubClient.Delete(ctx, b)).To(Succeed())
	g.Eventually(deletionWorkExists(b, "synced-a")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(backupDeletionIn(g, deletionWorkOf(g, b, "synced-a")).Spec.Source).To(Equal(backupv1alpha1.BackupSource{Cluster: "synced-a", BackupID: "from-another-hub"}))
}

// newLocationOn creates a BackupLocation selecting the clusters of conns,
// with their connections in its status.
func newLocationOn(t *testing.T, g *WithT, namespace, name string, conns ...conn) *fleetv1alpha1.BackupLocation {
	loc := newLocation(t, g, namespace, name, conns[0].cluster, conns[0].phase, conns[0].reason, conns[0].message)
	for _, c := range conns {
		createNamespace(g, c.cluster)
	}
	setConnections(g, loc, conns...)
	return loc
}

func setConnections(g *WithT, loc *fleetv1alpha1.BackupLocation, conns ...conn) {
	ctx := context.Background()
	g.Eventually(func(g Gomega) {
		g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		now := metav1.Now()
		loc.Status.ObservedGeneration = loc.Generation
		loc.Status.Phase = fleetv1alpha1.LocationInvalid
		loc.Status.NotValid = nil
		for _, c := range conns {
			if c.phase == backupv1alpha1.TargetValid {
				loc.Status.Phase = fleetv1alpha1.LocationLimitedAvailability
			} else {
				loc.Status.NotValid = append(loc.Status.NotValid, fleetv1alpha1.ClusterConnection{Cluster: c.cluster,
					ValidationState: backupv1alpha1.ValidationState{Phase: c.phase, Reason: c.reason, Message: c.message, LastValidationTime: &now}})
			}
		}
		loc.Status.SelectedClusters = int32(len(conns))
		loc.Status.ValidClusters = int32(len(conns) - len(loc.Status.NotValid))
		for _, c := range conns {
			g.Expect(locationstest.SetConnection(ctx, hubClient, loc, c.cluster,
				backupv1alpha1.ValidationState{Phase: c.phase, Reason: c.reason, Message: c.message, LastValidationTime: &now})).To(Succeed())
		}
		g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
}

// succeededBackup creates a Backup on cluster and feeds back its success.
// sealed is the sha256 of backup.json that succeededBackup's cluster reports.
var sealed = strings.Repeat("5e", 32)

func succeededBackup(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, cluster, name string) *fleetv1alpha1.Backup {
	b := newBackup(t, g, loc, cluster, name, nil)
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{
		"phase": "Success", "observedGeneration": int64(1), "backupID": string(b.UID),
		"completionTime": time.Now().UTC().Format(time.RFC3339), "manifestSHA256": sealed,
	}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupSuccess))
	return b
}

func exists(b *fleetv1alpha1.Backup) func() bool {
	return func() bool {
		err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(b), &fleetv1alpha1.Backup{})
		return !apierrors.IsNotFound(err)
	}
}

func finalizers(b *fleetv1alpha1.Backup) func() []string {
	return func() []string {
		cur := &fleetv1alpha1.Backup{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(b), cur); err != nil {
			return nil
		}
		return cur.Finalizers
	}
}

func annotate(g *WithT, b *fleetv1alpha1.Backup, key, value string) {
	ctx := context.Background()
	cur := &fleetv1alpha1.Backup{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(b), cur)).To(Succeed())
	patch := client.MergeFrom(cur.DeepCopy())
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[key] = value
	g.Expect(hubClient.Patch(ctx, cur, patch)).To(Succeed())
}

func deletionWorkKey(b *fleetv1alpha1.Backup, cluster string) client.ObjectKey {
	return client.ObjectKey{Namespace: cluster, Name: dispatch.Name(DeletionKind, b.Namespace, b.Name)}
}

func deletionWorkExists(b *fleetv1alpha1.Backup, cluster string) func() bool {
	return func() bool {
		mw := &workv1.ManifestWork{}
		return hubClient.Get(context.Background(), deletionWorkKey(b, cluster), mw) == nil && mw.DeletionTimestamp.IsZero()
	}
}

func deletionWorkOf(g *WithT, b *fleetv1alpha1.Backup, cluster string) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{}
	g.Expect(hubClient.Get(context.Background(), deletionWorkKey(b, cluster), mw)).To(Succeed())
	return mw
}

func backupDeletionIn(g *WithT, mw *workv1.ManifestWork) *backupv1alpha1.BackupDeletion {
	g.Expect(mw.Spec.Workload.Manifests).To(HaveLen(1))
	del := &backupv1alpha1.BackupDeletion{}
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, del)).To(Succeed())
	g.Expect(del.Kind).To(Equal("BackupDeletion"))
	return del
}

// simulateDeletion feeds back values for the BackupDeletion in b's deletion
// work on cluster, as read from the spoke object of b's current generation.
func simulateDeletion(g *WithT, b *fleetv1alpha1.Backup, cluster string, values map[string]any) {
	cur := &fleetv1alpha1.Backup{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKeyFromObject(b), cur)).To(Succeed())
	b.Generation = cur.Generation
	simulateDeletionAt(g, b, cluster, cur.Generation, values)
}

func simulateDeletionAt(g *WithT, b *fleetv1alpha1.Backup, cluster string, hubGeneration int64, values map[string]any) {
	dispatchtest.Report(g, hubClient, deletionWorkKey(b, cluster), hubGeneration, 1, dispatchtest.Values(values), timeout)
}

// eventReasons are the reasons of the events recorded about b.
func eventReasons(b *fleetv1alpha1.Backup) func() []string {
	return func() []string {
		var out []string
		for _, e := range backupEvents(b) {
			out = append(out, e.Reason)
		}
		return out
	}
}

func eventMessages(b *fleetv1alpha1.Backup, reason string) func() []string {
	return eventstest.Notes(hubClient, b, reason)
}

func backupEvents(b *fleetv1alpha1.Backup) []eventsv1.Event {
	return eventstest.Of(context.Background(), hubClient, b)
}
