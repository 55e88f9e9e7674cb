package backup

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
	"k8s.io/apimachinery/pkg/util/validation"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

const timeout = 15 * time.Second

func TestInvalidLocationFailsAtOnceAndStaysFailed(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-invalid", "primary", "spoke-invalid", backupv1alpha1.TargetInvalid, "AuthenticationFailed", "no federated credential for this issuer")
	b := newBackup(t, g, loc, "spoke-invalid", "nightly", nil)

	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	st := status(b)()
	ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(fleetv1alpha1.ReasonLocationNotValid))
	g.Expect(ready.Message).To(And(ContainSubstring("spoke-invalid"), ContainSubstring("AuthenticationFailed"), ContainSubstring("no federated credential for this issuer")))
	g.Expect(meta.IsStatusConditionTrue(st.Conditions, fleetv1alpha1.ConditionCompleted)).To(BeTrue())
	g.Expect(st.Origin).To(Equal(fleetv1alpha1.OriginHub))
	g.Expect(st.CompletionTime).NotTo(BeNil())
	g.Expect(workExists(b)()).To(BeFalse(), "nothing is dispatched")
	g.Eventually(eventMessages(b, "BackupFailed")).WithTimeout(timeout).Should(ConsistOf(And(
		HavePrefix("Backup on cluster spoke-invalid ended Failed"), ContainSubstring("(LocationNotValid: "), ContainSubstring("no federated credential for this issuer"))))

	t.Log("the location becoming valid does not un-fail the backup")
	setConnection(g, loc, "spoke-invalid", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	g.Consistently(func() fleetv1alpha1.BackupPhase { return status(b)().Phase }).WithTimeout(2 * time.Second).Should(Equal(fleetv1alpha1.BackupFailed))
	g.Expect(workExists(b)()).To(BeFalse())
}

func TestMissingLocationFails(t *testing.T) {
	g := NewWithT(t)
	createNamespace(g, "team-missing")
	createNamespace(g, "spoke-missing")
	b := newBackup(t, g, &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: "team-missing", Name: "nowhere"}}, "spoke-missing", "nightly", nil)
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	ready := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(HaveField("Reason", fleetv1alpha1.ReasonLocationNotFound))
	g.Expect(ready.Message).To(ContainSubstring(`"nowhere"`))
	g.Expect(workExists(b)()).To(BeFalse())
}

func TestPendingLocationWaitsThenProceeds(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-wait", "primary", "spoke-wait", backupv1alpha1.TargetPending, "WaitingForCluster", "")
	b := newBackup(t, g, loc, "spoke-wait", "nightly", nil)
	g.Eventually(func() string {
		c := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionReady)
		if c == nil {
			return ""
		}
		return c.Reason
	}).WithTimeout(timeout).Should(Equal(fleetv1alpha1.ReasonWaitingForLocation))
	g.Expect(status(b)().Phase).To(Equal(fleetv1alpha1.BackupPending))
	g.Expect(workExists(b)()).To(BeFalse())

	setConnection(g, loc, "spoke-wait", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
}

func TestBackupDispatchesAndMirrorsFeedback(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-run", "primary", "spoke-run", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	sel := &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop"}}
	b := newBackup(t, g, loc, "spoke-run", "nightly", func(s *fleetv1alpha1.BackupSpec) {
		s.Selection = sel
		s.TTL = &metav1.Duration{Duration: 720 * time.Hour}
		s.Volumes = backupv1alpha1.VolumesSkip
	})

	t.Log("a work with the ApplicationBackup in lifeboat-system")
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	mw := work(g, b)
	g.Expect(mw.Labels).To(HaveKeyWithValue(dispatch.LabelUID, string(b.UID)))
	ab := applicationBackupIn(g, mw)
	g.Expect(ab.Name).To(Equal(Name("team-run", "nightly")))
	g.Expect(ab.Namespace).To(Equal(SpokeNamespace))
	g.Expect(ab.Spec.Target).To(BeEquivalentTo(backuplocation.TargetName("team-run", "primary")))
	g.Expect(ab.Spec.BackupID).To(BeEquivalentTo(b.UID))
	stored := &fleetv1alpha1.Backup{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKeyFromObject(b), stored)).To(Succeed())
	g.Expect(ab.Spec.Selection).To(Equal(stored.Spec.Selection), "the selection as the hub stored it, defaults included")
	g.Expect(ab.Spec.Selection.IncludedNamespaces).To(Equal(sel.IncludedNamespaces))
	g.Expect(ab.Spec.TTL).To(Equal(&metav1.Duration{Duration: 720 * time.Hour}))
	g.Expect(ab.Spec.Volumes).To(Equal(backupv1alpha1.VolumesSkip))
	g.Expect(ab.Spec.Hub).To(Equal(&backupv1alpha1.HubObjectReference{Namespace: "team-run", Name: "nightly", UID: b.UID}))
	g.Expect(ab.Annotations).To(HaveKeyWithValue(dispatch.AnnotationGeneration, strconv.FormatInt(b.Generation, 10)))

	g.Eventually(status(b)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.BackupPending),
		HaveField("BackupResult.BackupID", BeEquivalentTo(b.UID)),
		HaveField("Conditions", ContainElement(And(HaveField("Type", fleetv1alpha1.ConditionDispatched), HaveField("Status", metav1.ConditionTrue)))),
	))

	t.Log("InProgress feedback with progress is mirrored")
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{
		"phase": "InProgress", "stage": "Resources", "itemsTotal": int64(40), "itemsDone": int64(12), "bytesDone": int64(4096),
		"backupID": string(b.UID), "startTime": start.UTC().Format(time.RFC3339), "observedGeneration": int64(1),
		"readyStatus": "True", "readyReason": "InProgress", "readyMessage": "backing up",
	}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.BackupInProgress),
		HaveField("BackupResult.Stage", backupv1alpha1.StageResources),
		HaveField("BackupResult.Progress", Equal(&backupv1alpha1.Progress{ItemsTotal: 40, ItemsDone: 12, BytesDone: 4096})),
	))
	g.Expect(status(b)().StartTime.Time.Equal(start)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionCompleted)).To(HaveField("Status", metav1.ConditionFalse))

	t.Log("feedback of another generation is ignored")
	simulateAgent(g, b, b.Generation+5, 1, feedbackOf(map[string]any{"phase": "Failed", "observedGeneration": int64(1)}))
	g.Consistently(func() fleetv1alpha1.BackupPhase { return status(b)().Phase }).WithTimeout(2 * time.Second).Should(Equal(fleetv1alpha1.BackupInProgress))

	t.Log("feedback of a spoke that has not observed its spec is ignored")
	simulateAgent(g, b, b.Generation, 2, feedbackOf(map[string]any{"phase": "Failed", "observedGeneration": int64(1)}))
	g.Consistently(func() fleetv1alpha1.BackupPhase { return status(b)().Phase }).WithTimeout(2 * time.Second).Should(Equal(fleetv1alpha1.BackupInProgress))

	t.Log("Success is mirrored with counts, times and the sha256 of backup.json")
	sealed := strings.Repeat("ab", 32)
	end := start.Add(30 * time.Second)
	exp := start.Add(720 * time.Hour)
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{
		"phase": "Success", "stage": "Final", "itemsTotal": int64(40), "itemsDone": int64(40), "bytesDone": int64(65536),
		"warnings": int64(2), "errors": int64(0), "backupID": string(b.UID), "observedGeneration": int64(1),
		"startTime": start.UTC().Format(time.RFC3339), "completionTime": end.UTC().Format(time.RFC3339), "expiration": exp.UTC().Format(time.RFC3339),
		"readyStatus": "True", "readyReason": "Succeeded", "readyMessage": "40 items backed up",
		"manifestSHA256": sealed,
	}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupSuccess))
	st := status(b)()
	g.Expect(st.Stage).To(Equal(backupv1alpha1.StageFinal))
	g.Expect(st.Progress).To(Equal(&backupv1alpha1.Progress{ItemsTotal: 40, ItemsDone: 40, BytesDone: 65536}))
	g.Expect(st.Warnings).To(BeEquivalentTo(2))
	g.Expect(st.CompletionTime.Time.Equal(end)).To(BeTrue())
	g.Expect(st.Expiration.Time.Equal(exp)).To(BeTrue())
	g.Expect(st.ObservedGeneration).To(Equal(b.Generation))
	g.Expect(st.Origin).To(Equal(fleetv1alpha1.OriginHub))
	g.Expect(st.ManifestSHA256).To(Equal(sealed))
	g.Expect(meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", "Succeeded"), HaveField("Message", "40 items backed up")))
	g.Expect(meta.IsStatusConditionTrue(st.Conditions, fleetv1alpha1.ConditionCompleted)).To(BeTrue())
	g.Eventually(eventMessages(b, "BackupSuccess")).WithTimeout(timeout).Should(ConsistOf(
		"Backup on cluster spoke-run ended Success in 30s: 40 of 40 items, 64Ki, 2 warnings, 0 errors"))

	t.Log("a finished backup is left alone")
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{"phase": "Failed", "observedGeneration": int64(1), "manifestSHA256": strings.Repeat("cd", 32)}))
	g.Consistently(func() fleetv1alpha1.BackupStatus { return status(b)() }).WithTimeout(2 * time.Second).Should(And(
		HaveField("Phase", fleetv1alpha1.BackupSuccess), HaveField("BackupResult.ManifestSHA256", sealed)))
}

func TestName(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Name("team-a", "x")).NotTo(Equal(Name("team", "a-x")))
	g.Expect(Name("team-a", "x")).To(HavePrefix("team-a-x-"))
	long := Name("a-very-long-namespace-name-for-a-tenant", "a.very.long.backup.name.that.goes.on.and.on")
	g.Expect(validation.IsDNS1123Label(long)).To(BeEmpty())
	g.Expect(Name("ns", "n")).To(Equal(Name("ns", "n")))
}

func createNamespace(g *WithT, name string) {
	if err := hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
}

// newLocation creates a BackupLocation for cluster with that cluster's
// connection in its status, as the BackupLocation reconciler would write it.
func newLocation(t *testing.T, g *WithT, namespace, name, cluster string, phase backupv1alpha1.TargetPhase, reason, message string) *fleetv1alpha1.BackupLocation {
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
	setConnection(g, loc, cluster, phase, reason, message)
	return loc
}

func setConnection(g *WithT, loc *fleetv1alpha1.BackupLocation, cluster string, phase backupv1alpha1.TargetPhase, reason, message string) {
	ctx := context.Background()
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	now := metav1.Now()
	loc.Status.ObservedGeneration = loc.Generation
	loc.Status.Phase = fleetv1alpha1.LocationInvalid
	if phase == backupv1alpha1.TargetValid {
		loc.Status.Phase = fleetv1alpha1.LocationValid
	}
	// The works first, then the status: as the location reconciler sums
	// them up, and the status change is what wakes the Backups.
	g.Expect(locationstest.SetConnection(ctx, hubClient, loc, cluster, backupv1alpha1.ValidationState{Phase: phase, Reason: reason, Message: message, LastValidationTime: &now})).To(Succeed())
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())
}

func newBackup(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, cluster, name string, mutate func(*fleetv1alpha1.BackupSpec)) *fleetv1alpha1.Backup {
	ctx := context.Background()
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: name},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	if mutate != nil {
		mutate(&b.Spec)
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, b) })
	return b
}

func status(b *fleetv1alpha1.Backup) func() fleetv1alpha1.BackupStatus {
	return func() fleetv1alpha1.BackupStatus {
		cur := &fleetv1alpha1.Backup{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(b), cur); err != nil {
			return fleetv1alpha1.BackupStatus{}
		}
		b.Generation = cur.Generation
		return cur.Status
	}
}

func workKey(b *fleetv1alpha1.Backup) client.ObjectKey {
	return client.ObjectKey{Namespace: string(b.Spec.Cluster), Name: dispatch.Name(Kind, b.Namespace, b.Name)}
}

func workExists(b *fleetv1alpha1.Backup) func() bool {
	return func() bool {
		return hubClient.Get(context.Background(), workKey(b), &workv1.ManifestWork{}) == nil
	}
}

func work(g *WithT, b *fleetv1alpha1.Backup) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{}
	g.Expect(hubClient.Get(context.Background(), workKey(b), mw)).To(Succeed())
	return mw
}

func applicationBackupIn(g *WithT, mw *workv1.ManifestWork) *backupv1alpha1.ApplicationBackup {
	g.Expect(mw.Spec.Workload.Manifests).To(HaveLen(1))
	ab := &backupv1alpha1.ApplicationBackup{}
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, ab)).To(Succeed())
	g.Expect(ab.Kind).To(Equal("ApplicationBackup"))
	g.Expect(ab.APIVersion).To(Equal(backupv1alpha1.GroupVersion.String()))
	return ab
}

func feedbackOf(values map[string]any) []workv1.FeedbackValue { return dispatchtest.Values(values) }

// simulateAgent writes what a work agent would feed back for the
// ApplicationBackup in b's work: the hub generation read from the spoke
// object's annotation, the spoke object's generation, and values.
func simulateAgent(g *WithT, b *fleetv1alpha1.Backup, hubGeneration, objectGeneration int64, values []workv1.FeedbackValue) {
	dispatchtest.Report(g, hubClient, workKey(b), hubGeneration, objectGeneration, values, timeout)
}

func TestFeedbackWithAnotherBackupIDFailsTheBackup(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-forged", "primary", "spoke-forged", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	b := newBackup(t, g, loc, "spoke-forged", "nightly", nil)
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("BackupResult.BackupID", BeEquivalentTo(b.UID)))

	t.Log("the cluster reports Success for another backup's folder")
	simulateAgent(g, b, b.Generation, 1, feedbackOf(map[string]any{
		"phase": "Success", "itemsTotal": int64(3), "itemsDone": int64(3), "backupID": "someone-elses-backup", "observedGeneration": int64(1),
		"readyStatus": "True", "readyReason": "Succeeded", "readyMessage": "done", "manifestSHA256": strings.Repeat("ef", 32),
	}))
	g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed))
	st := status(b)()
	g.Expect(st.BackupID).To(BeEquivalentTo(b.UID), "the dispatched ID stays")
	g.Expect(st.ManifestSHA256).To(BeEmpty(), "nothing of the feedback is recorded")
	g.Expect(st.Progress).To(BeNil())
	ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonBackupIDMismatch)))
	g.Expect(ready.Message).To(And(ContainSubstring("someone-elses-backup"), ContainSubstring(string(b.UID)), ContainSubstring("spoke-forged")))
	g.Expect(meta.IsStatusConditionTrue(st.Conditions, fleetv1alpha1.ConditionCompleted)).To(BeTrue())
}
