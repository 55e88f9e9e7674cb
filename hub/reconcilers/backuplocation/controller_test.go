package backuplocation

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
)

const timeout = 15 * time.Second

func TestLocationDispatchesTargetsAndAggregatesFeedback(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "dispatch-a", map[string]string{"env": "prod"}, true)
	createCluster(t, g, "dispatch-b", map[string]string{"env": "prod"}, true)
	createCluster(t, g, "dispatch-c", map[string]string{"env": "dev"}, true)
	createCluster(t, g, "dispatch-off", map[string]string{"env": "prod"}, false)

	loc := newLocation(t, g, "team-dispatch", "primary", storage("acct1", "backups", "team-dispatch"), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{"dispatch-c"}
		s.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	})

	t.Log("a work per selected managed cluster, with the location's storage in a BackupTarget")
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("dispatch-a", "dispatch-b", "dispatch-c"))
	mw := work(g, loc, "dispatch-a")
	target := targetIn(g, mw)
	g.Expect(target.Name).To(Equal(TargetName("team-dispatch", "primary")))
	g.Expect(target.Name).To(HavePrefix("team-dispatch-primary-"))
	g.Expect(target.Spec.StorageTarget).To(Equal(loc.Spec.StorageTarget))
	g.Expect(mw.Labels).To(HaveKeyWithValue(dispatch.LabelUID, string(loc.UID)))

	t.Log("before any feedback every cluster is Pending and the location validating; the status names the subject to federate")
	g.Eventually(status(loc)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.LocationValidationInProgress),
		HaveField("FederatedSubject", "system:serviceaccount:lifeboat-system:"+backupv1alpha1.TargetServiceAccount(target.Name)),
		HaveField("SelectedClusters", BeEquivalentTo(3)),
		HaveField("PendingClusters", BeEquivalentTo(3)),
		HaveField("NotValid", HaveEach(HaveField("Phase", backupv1alpha1.TargetPending))),
	))

	t.Log("feedback read before the spoke acted on its spec (observedGeneration behind) is ignored")
	simulateAgent(g, loc, "dispatch-a", loc.Generation, 2, 1, "Valid", "ValidationSucceeded", "ok", time.Now())
	g.Consistently(connection(loc, "dispatch-a")).WithTimeout(2 * time.Second).Should(HaveField("Phase", backupv1alpha1.TargetPending))

	t.Log("valid on a, AuthenticationFailed on b and c: LimitedAvailability")
	validated := time.Now().Truncate(time.Second)
	simulateAgent(g, loc, "dispatch-a", loc.Generation, 1, 1, "Valid", "ValidationSucceeded", "probe blob written, read and deleted", validated)
	simulateAgent(g, loc, "dispatch-b", loc.Generation, 1, 1, "Invalid", "AuthenticationFailed", "no federated credential for this issuer", validated)
	simulateAgent(g, loc, "dispatch-c", loc.Generation, 1, 1, "Invalid", "AuthenticationFailed", strings.Repeat("no federated credential for this issuer; ", 700), validated)
	g.Eventually(status(loc)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.LocationLimitedAvailability),
		HaveField("ValidClusters", BeEquivalentTo(1)),
		HaveField("ObservedGeneration", loc.Generation),
	))
	a := connection(loc, "dispatch-a")()
	g.Expect(a.Phase).To(Equal(backupv1alpha1.TargetValid))
	g.Expect(a.LastValidationTime.Time.Equal(validated)).To(BeTrue())
	b := connection(loc, "dispatch-b")()
	g.Expect(b.ValidationState).To(HaveField("Phase", backupv1alpha1.TargetInvalid))
	g.Expect(b.Reason).To(Equal("AuthenticationFailed"))
	g.Expect(b.Message).To(Equal("no federated credential for this issuer"))
	g.Eventually(func() string { return connection(loc, "dispatch-c")().Message }).WithTimeout(timeout).Should(
		HavePrefix("no federated credential for this issuer; "), "a cluster's 28 KB message is cut (L5)")
	c := connection(loc, "dispatch-c")()
	g.Expect(utf8.RuneCountInString(c.Message)).To(Equal(fleetv1alpha1.MaxConnectionMessage))
	g.Expect(c.Message).To(HaveSuffix("…"))
	t.Log("the status follows the works within DefaultStatusInterval")
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(status(loc)().Conditions, fleetv1alpha1.ConditionReady)
	}).WithTimeout(timeout).Should(And(
		HaveField("Reason", fleetv1alpha1.ReasonLimitedAvailability),
		HaveField("Message", ContainSubstring("dispatch-b (Invalid: AuthenticationFailed)"))))

	g.Eventually(eventstest.Notes(hubClient, loc, EventConnectionLost)).WithTimeout(timeout).Should(Or(
		ConsistOf(
			"Cluster dispatch-b cannot use the location: Invalid AuthenticationFailed: no federated credential for this issuer",
			HavePrefix("Cluster dispatch-c cannot use the location: Invalid AuthenticationFailed: no federated credential")),
		ConsistOf("2 clusters cannot use the location: dispatch-b (Invalid: AuthenticationFailed), dispatch-c (Invalid: AuthenticationFailed)")),
		"a failed first validation is an Event, one per status write; a successful one is not")
	g.Eventually(eventstest.Notes(hubClient, loc, EventPhaseChanged)).WithTimeout(timeout).Should(ContainElement(
		"The location is LimitedAvailability (was ValidationInProgress): 1 of 3 clusters Valid"))

	t.Log("the status lists the clusters that are not Valid, Invalid ones first, and counts them")
	g.Eventually(status(loc)).WithTimeout(timeout).Should(And(
		HaveField("InvalidClusters", BeEquivalentTo(2)),
		HaveField("PendingClusters", BeEquivalentTo(0)),
		HaveField("NotValid", HaveExactElements(HaveField("Cluster", "dispatch-b"), HaveField("Cluster", "dispatch-c"))),
		HaveField("NotValidOmitted", BeEquivalentTo(0)),
	))

	t.Log("feedback of another generation is not taken for the current spec: the cluster is Pending again")
	simulateAgent(g, loc, "dispatch-a", loc.Generation+5, 1, 1, "Valid", "ValidationSucceeded", "stale", time.Now())
	g.Eventually(connection(loc, "dispatch-a")).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.TargetPending))

	t.Log("c is no longer selected: its work goes, the others stay; b turns valid")
	patchLocation(g, loc, func(l *fleetv1alpha1.BackupLocation) { l.Spec.Clusters = nil })
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("dispatch-a", "dispatch-b"))
	simulateAgent(g, loc, "dispatch-a", loc.Generation, 1, 1, "Valid", "ValidationSucceeded", "ok", validated)
	simulateAgent(g, loc, "dispatch-b", loc.Generation, 1, 1, "Valid", "ValidationSucceeded", "ok", validated)
	g.Eventually(status(loc)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.LocationValid),
		HaveField("SelectedClusters", BeEquivalentTo(2)),
		HaveField("NotValid", BeEmpty()),
		HaveField("ObservedGeneration", loc.Generation),
	))
	g.Eventually(eventstest.Notes(hubClient, loc, EventConnectionRestored)).WithTimeout(timeout).Should(ConsistOf(
		"Cluster dispatch-b can use the location again (was Invalid)"))

	t.Log("a cluster that starts matching later gets a work")
	createCluster(t, g, "dispatch-d", map[string]string{"env": "prod"}, true)
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("dispatch-a", "dispatch-b", "dispatch-d"))
	g.Eventually(connection(loc, "dispatch-d")).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.TargetPending))

	t.Log("deleting the location deletes its works, then the location")
	g.Expect(hubClient.Delete(context.Background(), loc)).To(Succeed())
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(BeEmpty())
	g.Eventually(func() error {
		return hubClient.Get(context.Background(), client.ObjectKeyFromObject(loc), &fleetv1alpha1.BackupLocation{})
	}).WithTimeout(timeout).Should(Satisfy(apierrors.IsNotFound))
}

func TestLocationOnAnotherNamespacesStorageIsRefused(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "conflict-a", nil, true)
	only := func(s *fleetv1alpha1.BackupLocationSpec) { s.Clusters = []backupv1alpha1.ClusterName{"conflict-a"} }
	first := newLocation(t, g, "tenant-one", "shared", storage("acct2", "backups", "x"), only)
	g.Eventually(workClusters(first)).WithTimeout(timeout).Should(ConsistOf("conflict-a"))

	t.Log("same account, container and prefix in the same namespace is allowed")
	same := newLocation(t, g, "tenant-one", "again", storage("acct2", "backups", "x"), only)
	g.Eventually(workClusters(same)).WithTimeout(timeout).Should(ConsistOf("conflict-a"))

	t.Log("another namespace on the same storage, or on a prefix around it, is refused and gets nothing")
	for _, prefix := range []string{"x", "", "x/y"} {
		other := newLocation(t, g, "tenant-two", "steal-"+strconv.Itoa(len(prefix)), storage("acct2", "backups", prefix), only)
		expectConflict(g, other, "tenant-one/")
	}

	t.Log("the first tenant is unaffected; another prefix is fine")
	g.Consistently(workClusters(first)).WithTimeout(time.Second).Should(ConsistOf("conflict-a"))
	ok := newLocation(t, g, "tenant-two", "own", storage("acct2", "backups", "xy"), only)
	g.Eventually(workClusters(ok)).WithTimeout(timeout).Should(ConsistOf("conflict-a"))

	t.Log("once the older locations are gone, the refused one is dispatched")
	waiting := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-two", Name: "steal-1"}}
	g.Expect(hubClient.Delete(context.Background(), first)).To(Succeed())
	g.Expect(hubClient.Delete(context.Background(), same)).To(Succeed())
	g.Eventually(workClusters(waiting)).WithTimeout(timeout).Should(ConsistOf("conflict-a"))
}

// A location cannot reach another namespace's storage through its endpoint:
// the API refuses an endpoint that names another account, and an endpoint
// that reaches the same service URL as an older location of another
// namespace, whatever storageAccount says, gets LocationConflict.
func TestLocationEndpointOnAnotherNamespacesStorageIsRefused(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	createCluster(t, g, "alias-a", nil, true)
	only := func(s *fleetv1alpha1.BackupLocationSpec) { s.Clusters = []backupv1alpha1.ClusterName{"alias-a"} }
	at := func(account, endpoint string) backupv1alpha1.StorageTarget {
		st := storage(account, "backups", "")
		st.Azure.Endpoint = endpoint
		return st
	}
	first := newLocation(t, g, "tenant-alias-one", "shared", at("acct5", "https://acct5.blob.private.example/acct6"), only)
	g.Eventually(workClusters(first)).WithTimeout(timeout).Should(ConsistOf("alias-a"))
	plain := newLocation(t, g, "tenant-alias-one", "plain", storage("acct7", "backups", ""), only)
	g.Eventually(workClusters(plain)).WithTimeout(timeout).Should(ConsistOf("alias-a"))

	t.Log("an endpoint naming another storage account than its own is not accepted")
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-alias-two"}})).To(Succeed())
	named := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-alias-two", Name: "named"},
		Spec: fleetv1alpha1.BackupLocationSpec{StorageTarget: at("zzz", "https://acct7.blob.core.windows.net"), Clusters: []backupv1alpha1.ClusterName{"alias-a"}}}
	err := hubClient.Create(ctx, named)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("endpoint must be https://<storageAccount>.blob.core.windows.net"))

	t.Log("the same service URL under another account name is refused and gets nothing")
	for name, st := range map[string]backupv1alpha1.StorageTarget{
		"alias":    at("acct6", "https://acct5.blob.private.example/acct6"),
		"explicit": at("acct7", "https://acct7.blob.core.windows.net/"),
	} {
		other := newLocation(t, g, "tenant-alias-two", name, st, only)
		expectConflict(g, other, "tenant-alias-one/", strings.TrimSuffix(st.Azure.Endpoint, "/"))
	}
}

// expectConflict waits until loc is refused with LocationConflict, its
// message naming each of want, and checks that it gets no work.
func expectConflict(g *WithT, loc *fleetv1alpha1.BackupLocation, want ...string) {
	g.Eventually(func(g Gomega) {
		st := status(loc)()
		ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(fleetv1alpha1.ReasonLocationConflict))
		for _, w := range want {
			g.Expect(ready.Message).To(ContainSubstring(w))
		}
		g.Expect(st.Phase).To(Equal(fleetv1alpha1.LocationInvalid))
	}).WithTimeout(timeout).Should(Succeed(), loc.Name)
	g.Consistently(workClusters(loc)).WithTimeout(time.Second).Should(BeEmpty(), loc.Name)
}

func TestTargetNotAppliedIsAFailedConnection(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	createCluster(t, g, "notapplied-a", nil, true)
	loc := newLocation(t, g, "team-notapplied", "primary", storage("acct1", "backups", "team-notapplied"), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{"notapplied-a"}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("notapplied-a"))

	t.Log("the work agent reports it could not apply the BackupTarget: the connection is Failed, quoting it")
	g.Eventually(func(g Gomega) {
		mw := &workv1.ManifestWork{}
		g.Expect(hubClient.Get(ctx, client.ObjectKey{Namespace: "notapplied-a", Name: dispatch.Name(Kind, loc.Namespace, loc.Name)}, mw)).To(Succeed())
		mw.Status.Conditions = []metav1.Condition{{Type: workv1.WorkApplied, Status: metav1.ConditionFalse, Reason: "AppliedManifestWorkFailed",
			Message: `no matches for kind "BackupTarget" in version "backup.lifeboat.dev/v1alpha1"`, LastTransitionTime: metav1.Now(), ObservedGeneration: mw.Generation}}
		g.Expect(hubClient.Status().Update(ctx, mw)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
	g.Eventually(connection(loc, "notapplied-a")).WithTimeout(timeout).Should(And(
		HaveField("Phase", backupv1alpha1.TargetFailed),
		HaveField("Reason", "NotApplied"),
		HaveField("Message", ContainSubstring(`no matches for kind "BackupTarget"`)),
	))
	g.Eventually(func() fleetv1alpha1.BackupLocationPhase { return status(loc)().Phase }).WithTimeout(timeout).Should(Equal(fleetv1alpha1.LocationInvalid))

	t.Log("once the spoke reports on the target, its report replaces the failure")
	simulateAgent(g, loc, "notapplied-a", loc.Generation, 1, 1, "Valid", "ValidationSucceeded", "ok", time.Now())
	g.Eventually(connection(loc, "notapplied-a")).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.TargetValid))
}

func TestTargetName(t *testing.T) {
	g := NewWithT(t)
	g.Expect(TargetName("team-a", "x")).NotTo(Equal(TargetName("team", "a-x")))
	g.Expect(TargetName("team-a", "x")).To(Equal(TargetName("team-a", "x")))
	long := TargetName("a-namespace-with-a-long-name-of-sixty-three-characters-exactly1", "a.location.name.that.is.also.very.long")
	g.Expect(len(long)).To(BeNumerically("<=", 63))
	g.Expect(long).To(MatchRegexp(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`))
	// M5 of the security review: 64 bits of hash, so crafting a location
	// whose target takes another tenant's costs about 2^64 hashes.
	g.Expect(long).To(MatchRegexp(`-[0-9a-f]{16}$`))
	g.Expect(TargetName("team-a", "x")).To(MatchRegexp(`^team-a-x-[0-9a-f]{16}$`))
}

func TestAggregate(t *testing.T) {
	conn := func(phase backupv1alpha1.TargetPhase) fleetv1alpha1.ClusterConnection {
		return fleetv1alpha1.ClusterConnection{Cluster: string(phase), ValidationState: backupv1alpha1.ValidationState{Phase: phase}}
	}
	for _, tc := range []struct {
		name  string
		conns []fleetv1alpha1.ClusterConnection
		want  fleetv1alpha1.BackupLocationPhase
		ready metav1.ConditionStatus
	}{
		{"none selected", nil, fleetv1alpha1.LocationInvalid, metav1.ConditionFalse},
		{"all valid", []fleetv1alpha1.ClusterConnection{conn("Valid")}, fleetv1alpha1.LocationValid, metav1.ConditionTrue},
		{"some valid", []fleetv1alpha1.ClusterConnection{conn("Valid"), conn("Invalid")}, fleetv1alpha1.LocationLimitedAvailability, metav1.ConditionFalse},
		{"valid and pending", []fleetv1alpha1.ClusterConnection{conn("Valid"), conn("Pending")}, fleetv1alpha1.LocationLimitedAvailability, metav1.ConditionFalse},
		{"pending, none valid", []fleetv1alpha1.ClusterConnection{conn("Invalid"), conn("InProgress")}, fleetv1alpha1.LocationValidationInProgress, metav1.ConditionFalse},
		{"none valid", []fleetv1alpha1.ClusterConnection{conn("Invalid"), conn("Failed")}, fleetv1alpha1.LocationInvalid, metav1.ConditionFalse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			loc := &fleetv1alpha1.BackupLocation{}
			summarize(loc, tc.conns)
			g.Expect(loc.Status.Phase).To(Equal(tc.want))
			g.Expect(meta.FindStatusCondition(loc.Status.Conditions, fleetv1alpha1.ConditionReady).Status).To(Equal(tc.ready))
		})
	}
}

// createCluster creates a BackupCluster and its namespace.
func createCluster(t *testing.T, g *WithT, name string, labels map[string]string, managed bool) {
	ctx := context.Background()
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: managed}}
	g.Expect(hubClient.Create(ctx, bc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, bc) })
}

func storage(account, container, prefix string) backupv1alpha1.StorageTarget {
	return backupv1alpha1.StorageTarget{
		Azure:              backupv1alpha1.AzureBlobLocation{StorageAccount: account, Container: container, Prefix: prefix, Cloud: backupv1alpha1.AzurePublic},
		Identity:           backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
		ValidationInterval: &metav1.Duration{Duration: time.Hour},
	}
}

// newLocation creates a BackupLocation (and its namespace when missing).
func newLocation(t *testing.T, g *WithT, namespace, name string, st backupv1alpha1.StorageTarget, mutate func(*fleetv1alpha1.BackupLocationSpec)) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	if err := hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
	loc := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: fleetv1alpha1.BackupLocationSpec{StorageTarget: st}}
	mutate(&loc.Spec)
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	return loc
}

func patchLocation(g *WithT, loc *fleetv1alpha1.BackupLocation, mutate func(*fleetv1alpha1.BackupLocation)) {
	ctx := context.Background()
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	before := loc.DeepCopy()
	mutate(loc)
	g.Expect(hubClient.Patch(ctx, loc, client.MergeFrom(before))).To(Succeed())
}

// workClusters are the clusters with a live ManifestWork for loc.
func workClusters(loc *fleetv1alpha1.BackupLocation) func(g Gomega) []string {
	return func(g Gomega) []string {
		list := &workv1.ManifestWorkList{}
		g.Expect(hubClient.List(context.Background(), list, client.MatchingLabels{
			dispatch.LabelKind: Kind, dispatch.LabelNamespace: loc.Namespace, dispatch.LabelName: loc.Name,
		})).To(Succeed())
		var out []string
		for _, mw := range list.Items {
			if mw.DeletionTimestamp.IsZero() {
				out = append(out, mw.Namespace)
			}
		}
		return out
	}
}

func work(g *WithT, loc *fleetv1alpha1.BackupLocation, cluster string) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Namespace: cluster, Name: dispatch.Name(Kind, loc.Namespace, loc.Name)}, mw)).To(Succeed())
	return mw
}

func targetIn(g *WithT, mw *workv1.ManifestWork) *backupv1alpha1.BackupTarget {
	g.Expect(mw.Spec.Workload.Manifests).To(HaveLen(1))
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, target)).To(Succeed())
	g.Expect(target.Kind).To(Equal("BackupTarget"))
	g.Expect(target.APIVersion).To(Equal(backupv1alpha1.GroupVersion.String()))
	return target
}

func status(loc *fleetv1alpha1.BackupLocation) func() fleetv1alpha1.BackupLocationStatus {
	return func() fleetv1alpha1.BackupLocationStatus {
		cur := &fleetv1alpha1.BackupLocation{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(loc), cur); err != nil {
			return fleetv1alpha1.BackupLocationStatus{}
		}
		loc.Generation = cur.Generation
		return cur.Status
	}
}

// connection is loc's connection from cluster as hub/locations reads it.
func connection(loc *fleetv1alpha1.BackupLocation, cluster string) func() fleetv1alpha1.ClusterConnection {
	return func() fleetv1alpha1.ClusterConnection {
		cur := &fleetv1alpha1.BackupLocation{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(loc), cur); err != nil {
			return fleetv1alpha1.ClusterConnection{}
		}
		c, err := locations.Connection(context.Background(), hubClient, cur, cluster)
		if err != nil || c == nil {
			return fleetv1alpha1.ClusterConnection{}
		}
		return *c
	}
}

// simulateAgent writes what a work agent would feed back for the BackupTarget
// in cluster's work: the hub generation read from the spoke object's
// annotation, the spoke object's generation, and the target's status.
func simulateAgent(g *WithT, loc *fleetv1alpha1.BackupLocation, cluster string, hubGeneration, objectGeneration, observedGeneration int64,
	phase, reason, message string, validated time.Time) {
	key := client.ObjectKey{Namespace: cluster, Name: dispatch.Name(Kind, loc.Namespace, loc.Name)}
	dispatchtest.Report(g, hubClient, key, hubGeneration, objectGeneration, dispatchtest.Values(map[string]any{
		"phase": phase, "reason": reason, "message": message,
		"lastValidationTime": validated.UTC().Format(time.RFC3339), "observedGeneration": observedGeneration,
	}), timeout)
}
