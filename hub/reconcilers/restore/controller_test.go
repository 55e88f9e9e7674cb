package restore

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch/dispatchtest"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/events/eventstest"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

const timeout = 15 * time.Second

func TestMissingBackupFailsAtOnce(t *testing.T) {
	g := NewWithT(t)
	createNamespace(g, "rteam-missing")
	createNamespace(g, "rspoke-missing")
	rs := newRestore(t, g, "rteam-missing", "r1", "nope", "rspoke-missing", nil)
	g.Eventually(status(rs)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestoreFailed))
	st := status(rs)()
	ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonBackupNotFound)))
	g.Expect(ready.Message).To(ContainSubstring(`"nope"`))
	g.Expect(meta.IsStatusConditionTrue(st.Conditions, fleetv1alpha1.ConditionCompleted)).To(BeTrue())
	g.Expect(st.CompletionTime).NotTo(BeNil())
	g.Expect(workExists(rs, "rspoke-missing")()).To(BeFalse(), "nothing is dispatched")
	g.Eventually(eventstest.Notes(hubClient, rs, "RestoreFailed")).WithTimeout(timeout).Should(ConsistOf(And(
		HavePrefix("Restore ended Failed: 0 items"), ContainSubstring("(BackupNotFound: "))))
}

func TestUnfinishedBackupFailsAtOnce(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "rteam-unfinished", "primary", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok", "rspoke-unf")
	b := newBackup(t, g, loc, "rspoke-unf", "nightly", fleetv1alpha1.BackupInProgress, "id-1")
	rs := newRestore(t, g, b.Namespace, "r1", b.Name, "", nil)
	g.Eventually(status(rs)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestoreFailed))
	ready := meta.FindStatusCondition(status(rs)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(HaveField("Reason", fleetv1alpha1.ReasonBackupNotRestorable))
	g.Expect(ready.Message).To(And(ContainSubstring(`"nightly"`), ContainSubstring("InProgress")))
	g.Expect(workExists(rs, "rspoke-unf")()).To(BeFalse())

	t.Log("a successful backup without a backupID is not restorable either")
	b2 := newBackup(t, g, loc, "rspoke-unf", "noid", fleetv1alpha1.BackupSuccess, "")
	rs2 := newRestore(t, g, b2.Namespace, "r2", b2.Name, "", nil)
	g.Eventually(status(rs2)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestoreFailed))
	g.Expect(meta.FindStatusCondition(status(rs2)().Conditions, fleetv1alpha1.ConditionReady)).To(HaveField("Message", ContainSubstring("no backupID")))
	g.Expect(workExists(rs2, "rspoke-unf")()).To(BeFalse())
}

func TestLocationInvalidOnTargetFailsAtOnce(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "rteam-invalid", "primary", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok", "rspoke-src")
	addConnection(g, loc, "rspoke-dst", backupv1alpha1.TargetInvalid, "AuthenticationFailed", "no federated credential for this issuer")
	b := newBackup(t, g, loc, "rspoke-src", "nightly", fleetv1alpha1.BackupSuccess, "id-2")
	rs := newRestore(t, g, b.Namespace, "to-dst", b.Name, "rspoke-dst", nil)
	g.Eventually(status(rs)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestoreFailed))
	st := status(rs)()
	g.Expect(st.Cluster).To(BeEquivalentTo("rspoke-dst"))
	ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(HaveField("Reason", fleetv1alpha1.ReasonLocationNotValid))
	g.Expect(ready.Message).To(And(ContainSubstring("rspoke-dst"), ContainSubstring("AuthenticationFailed"), ContainSubstring("no federated credential for this issuer")))
	g.Expect(workExists(rs, "rspoke-dst")()).To(BeFalse())
	g.Expect(workExists(rs, "rspoke-src")()).To(BeFalse())

	t.Log("a cluster the location does not select")
	createNamespace(g, "rspoke-other")
	rs2 := newRestore(t, g, b.Namespace, "to-other", b.Name, "rspoke-other", nil)
	g.Eventually(status(rs2)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestoreFailed))
	g.Expect(meta.FindStatusCondition(status(rs2)().Conditions, fleetv1alpha1.ConditionReady)).To(HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed))
	g.Expect(workExists(rs2, "rspoke-other")()).To(BeFalse())
}

func TestMigrationDispatchesAndMirrorsFeedback(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "rteam-run", "primary", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok", "rspoke-1")
	addConnection(g, loc, "rspoke-2", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	b := newBackup(t, g, loc, "rspoke-1", "nightly", fleetv1alpha1.BackupPartialSuccess, "11111111-2222-3333-4444-555555555555")
	opts := backupv1alpha1.RestoreOptions{
		NamespaceMapping:       backupv1alpha1.NamespaceMapping{"shop": "shop-copy"},
		Selection:              &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop"}},
		ExistingResourcePolicy: backupv1alpha1.ExistingResourceUpdate,
	}
	rs := newRestore(t, g, b.Namespace, "migrate", b.Name, "rspoke-2", &opts)

	t.Log("a work with the ApplicationRestore in lifeboat-system on the target cluster")
	g.Eventually(workExists(rs, "rspoke-2")).WithTimeout(timeout).Should(BeTrue())
	g.Expect(workExists(rs, "rspoke-1")()).To(BeFalse())
	mw := work(g, rs, "rspoke-2")
	g.Expect(mw.Labels).To(HaveKeyWithValue(dispatch.LabelUID, string(rs.UID)))
	ar := applicationRestoreIn(g, mw)
	g.Expect(ar.Name).To(Equal(Name("rteam-run", "migrate")))
	g.Expect(ar.Namespace).To(Equal(SpokeNamespace))
	g.Expect(ar.Spec.Target).To(BeEquivalentTo(backuplocation.TargetName("rteam-run", "primary")))
	g.Expect(ar.Spec.Source).To(Equal(backupv1alpha1.BackupSource{Cluster: "rspoke-1", BackupID: "11111111-2222-3333-4444-555555555555", ManifestSHA256: sealed}),
		"the restore carries the sha256 of backup.json that the source cluster reported")
	stored := &fleetv1alpha1.Restore{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKeyFromObject(rs), stored)).To(Succeed())
	g.Expect(ar.Spec.RestoreOptions).To(Equal(stored.Spec.RestoreOptions), "the options as the hub stored them, defaults included")
	g.Expect(ar.Spec.NamespaceMapping).To(Equal(opts.NamespaceMapping))
	g.Expect(ar.Spec.ExistingResourcePolicy).To(Equal(backupv1alpha1.ExistingResourceUpdate))
	g.Expect(ar.Spec.Hub).To(Equal(&backupv1alpha1.HubObjectReference{Namespace: "rteam-run", Name: "migrate", UID: rs.UID}))
	g.Expect(ar.Annotations).To(HaveKeyWithValue(dispatch.AnnotationGeneration, strconv.FormatInt(rs.Generation, 10)))

	g.Eventually(status(rs)).WithTimeout(timeout).Should(And(
		HaveField("Phase", backupv1alpha1.RestorePending),
		HaveField("Cluster", BeEquivalentTo("rspoke-2")),
		HaveField("Conditions", ContainElement(And(HaveField("Type", fleetv1alpha1.ConditionDispatched), HaveField("Status", metav1.ConditionTrue)))),
	))

	t.Log("InProgress feedback with progress is mirrored")
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	simulateAgent(g, rs, "rspoke-2", rs.Generation, 1, feedbackOf(map[string]any{
		"phase": "InProgress", "itemsTotal": int64(40), "itemsDone": int64(12), "bytesDone": int64(4096),
		"startTime": start.UTC().Format(time.RFC3339), "observedGeneration": int64(1),
		"readyStatus": "True", "readyReason": "InProgress", "readyMessage": "restoring",
	}))
	g.Eventually(status(rs)).WithTimeout(timeout).Should(And(
		HaveField("Phase", backupv1alpha1.RestoreInProgress),
		HaveField("RestoreResult.Progress", Equal(&backupv1alpha1.Progress{ItemsTotal: 40, ItemsDone: 12, BytesDone: 4096})),
	))
	g.Expect(status(rs)().StartTime.Time.Equal(start)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(status(rs)().Conditions, fleetv1alpha1.ConditionCompleted)).To(HaveField("Status", metav1.ConditionFalse))

	t.Log("feedback of another generation is ignored")
	simulateAgent(g, rs, "rspoke-2", rs.Generation+5, 1, feedbackOf(map[string]any{"phase": "Failed", "observedGeneration": int64(1)}))
	g.Consistently(func() backupv1alpha1.RestorePhase { return status(rs)().Phase }).WithTimeout(2 * time.Second).Should(Equal(backupv1alpha1.RestoreInProgress))

	t.Log("feedback of a spoke that has not observed its spec is ignored")
	simulateAgent(g, rs, "rspoke-2", rs.Generation, 2, feedbackOf(map[string]any{"phase": "Failed", "observedGeneration": int64(1)}))
	g.Consistently(func() backupv1alpha1.RestorePhase { return status(rs)().Phase }).WithTimeout(2 * time.Second).Should(Equal(backupv1alpha1.RestoreInProgress))

	t.Log("PartialSuccess is mirrored with counts and times")
	end := start.Add(30 * time.Second)
	simulateAgent(g, rs, "rspoke-2", rs.Generation, 1, feedbackOf(map[string]any{
		"phase": "PartialSuccess", "itemsTotal": int64(40), "itemsDone": int64(38), "bytesDone": int64(65536),
		"warnings": int64(3), "errors": int64(2), "observedGeneration": int64(1),
		"startTime": start.UTC().Format(time.RFC3339), "completionTime": end.UTC().Format(time.RFC3339),
		"readyStatus": "False", "readyReason": "PartiallyRestored", "readyMessage": "2 items failed",
	}))
	g.Eventually(status(rs)).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.RestorePartialSuccess))
	st := status(rs)()
	g.Expect(st.Progress).To(Equal(&backupv1alpha1.Progress{ItemsTotal: 40, ItemsDone: 38, BytesDone: 65536}))
	g.Expect(st.Warnings).To(BeEquivalentTo(3))
	g.Expect(st.Errors).To(BeEquivalentTo(2))
	g.Expect(st.CompletionTime.Time.Equal(end)).To(BeTrue())
	g.Expect(st.ObservedGeneration).To(Equal(rs.Generation))
	g.Expect(meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "PartiallyRestored"), HaveField("Message", "2 items failed")))
	g.Expect(meta.IsStatusConditionTrue(st.Conditions, fleetv1alpha1.ConditionCompleted)).To(BeTrue())
	g.Eventually(eventstest.Notes(hubClient, rs, "RestorePartialSuccess")).WithTimeout(timeout).Should(ConsistOf(
		"Restore on cluster rspoke-2 ended PartialSuccess in 30s: 38 of 40 items, 64Ki, 3 warnings, 2 errors (PartiallyRestored: 2 items failed)"))

	t.Log("a finished restore is left alone")
	simulateAgent(g, rs, "rspoke-2", rs.Generation, 1, feedbackOf(map[string]any{"phase": "Failed", "observedGeneration": int64(1)}))
	g.Consistently(func() backupv1alpha1.RestorePhase { return status(rs)().Phase }).WithTimeout(2 * time.Second).Should(Equal(backupv1alpha1.RestorePartialSuccess))
}

func TestRestoreToSourceClusterByDefault(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "rteam-same", "primary", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok", "rspoke-same")
	b := newBackup(t, g, loc, "rspoke-same", "nightly", fleetv1alpha1.BackupSuccess, "id-3")
	rs := newRestore(t, g, b.Namespace, "back", b.Name, "", nil)
	g.Eventually(workExists(rs, "rspoke-same")).WithTimeout(timeout).Should(BeTrue())
	ar := applicationRestoreIn(g, work(g, rs, "rspoke-same"))
	g.Expect(ar.Spec.Source).To(Equal(backupv1alpha1.BackupSource{Cluster: "rspoke-same", BackupID: "id-3", ManifestSHA256: sealed}))
	g.Eventually(status(rs)).WithTimeout(timeout).Should(HaveField("Cluster", BeEquivalentTo("rspoke-same")))
}

func createNamespace(g *WithT, name string) {
	if err := hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
}

// newLocation creates a BackupLocation for cluster with that cluster's
// connection in its status, as the BackupLocation reconciler would write it.
func newLocation(t *testing.T, g *WithT, namespace, name string, phase backupv1alpha1.TargetPhase, reason, message, cluster string) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	createNamespace(g, namespace)
	createNamespace(g, cluster)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct1", Container: "backups", Prefix: namespace, Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
			Clusters: []backupv1alpha1.ClusterName{backupv1alpha1.ClusterName(cluster)},
		},
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	addConnection(g, loc, cluster, phase, reason, message)
	return loc
}

// addConnection sets cluster's connection in loc's status (adding the
// cluster to its spec if needed), keeping the others.
func addConnection(g *WithT, loc *fleetv1alpha1.BackupLocation, cluster string, phase backupv1alpha1.TargetPhase, reason, message string) {
	ctx := context.Background()
	createNamespace(g, cluster)
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	// A spec change makes every work stale: the others are reported again.
	others, err := locations.Connections(ctx, hubClient, loc)
	g.Expect(err).NotTo(HaveOccurred())
	found := false
	for _, c := range loc.Spec.Clusters {
		found = found || string(c) == cluster
	}
	if !found {
		loc.Spec.Clusters = append(loc.Spec.Clusters, backupv1alpha1.ClusterName(cluster))
		g.Expect(hubClient.Update(ctx, loc)).To(Succeed())
	}
	now := metav1.Now()
	conns := []fleetv1alpha1.ClusterConnection{}
	for _, c := range others {
		if c.Cluster != cluster {
			conns = append(conns, c)
		}
	}
	conns = append(conns, fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: backupv1alpha1.ValidationState{Phase: phase, Reason: reason, Message: message, LastValidationTime: &now}})
	loc.Status.ObservedGeneration = loc.Generation
	loc.Status.Phase = fleetv1alpha1.LocationValid
	loc.Status.SelectedClusters, loc.Status.ValidClusters = int32(len(conns)), 0
	for _, c := range conns {
		if c.Phase == backupv1alpha1.TargetValid {
			loc.Status.ValidClusters++
		}
	}
	g.Expect(locationstest.SetConnections(ctx, hubClient, loc, conns...)).To(Succeed())
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())
}

// newBackup creates a Backup of cluster (its spec changed by mutate) with the
// given outcome in its status, as the backup reconciler would have written it.
// sealed is the sha256 of backup.json that newBackup's Backups recorded.
var sealed = strings.Repeat("5e", 32)

func newBackup(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, cluster, name string, phase fleetv1alpha1.BackupPhase, id backupv1alpha1.BackupID,
	mutate ...func(*fleetv1alpha1.BackupSpec)) *fleetv1alpha1.Backup {
	ctx := context.Background()
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: name},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	for _, m := range mutate {
		m(&b.Spec)
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, b) })
	b.Status.Origin = fleetv1alpha1.OriginHub
	b.Status.Phase = phase
	b.Status.BackupID = id
	b.Status.ManifestSHA256 = sealed
	g.Expect(hubClient.Status().Update(ctx, b)).To(Succeed())
	return b
}

func newRestore(t *testing.T, g *WithT, namespace, name, backup, cluster string, opts *backupv1alpha1.RestoreOptions) *fleetv1alpha1.Restore {
	ctx := context.Background()
	rs := &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       fleetv1alpha1.RestoreSpec{Backup: backupv1alpha1.ObjectName(backup), Cluster: backupv1alpha1.ClusterName(cluster)},
	}
	if opts != nil {
		rs.Spec.RestoreOptions = *opts
	}
	g.Expect(hubClient.Create(ctx, rs)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, rs) })
	return rs
}

func status(rs *fleetv1alpha1.Restore) func() fleetv1alpha1.RestoreStatus {
	return func() fleetv1alpha1.RestoreStatus {
		cur := &fleetv1alpha1.Restore{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(rs), cur); err != nil {
			return fleetv1alpha1.RestoreStatus{}
		}
		rs.Generation = cur.Generation
		return cur.Status
	}
}

func workExists(rs *fleetv1alpha1.Restore, cluster string) func() bool {
	return func() bool {
		return hubClient.Get(context.Background(), workKey(rs, cluster), &workv1.ManifestWork{}) == nil
	}
}

func work(g *WithT, rs *fleetv1alpha1.Restore, cluster string) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{}
	g.Expect(hubClient.Get(context.Background(), workKey(rs, cluster), mw)).To(Succeed())
	return mw
}

func applicationRestoreIn(g *WithT, mw *workv1.ManifestWork) *backupv1alpha1.ApplicationRestore {
	g.Expect(mw.Spec.Workload.Manifests).To(HaveLen(1))
	ar := &backupv1alpha1.ApplicationRestore{}
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, ar)).To(Succeed())
	g.Expect(ar.Kind).To(Equal("ApplicationRestore"))
	g.Expect(ar.APIVersion).To(Equal(backupv1alpha1.GroupVersion.String()))
	return ar
}

func feedbackOf(values map[string]any) []workv1.FeedbackValue { return dispatchtest.Values(values) }

// simulateAgent writes what a work agent would feed back for the
// ApplicationRestore in rs's work on cluster: the hub generation read from the
// spoke object's annotation, the spoke object's generation, and values.
func simulateAgent(g *WithT, rs *fleetv1alpha1.Restore, cluster string, hubGeneration, objectGeneration int64, values []workv1.FeedbackValue) {
	dispatchtest.Report(g, hubClient, workKey(rs, cluster), hubGeneration, objectGeneration, values, timeout)
}
