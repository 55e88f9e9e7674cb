package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// Two tenants, each bound through a ManagedClusterSet to one spoke and
// granted its own spoke namespaces: tenant B's location selecting A's
// cluster, a location aliasing A's storage, a Backup of kube-system, Restores
// into kube-system or with cluster-scoped objects, a Restore onto A's cluster
// and a schedule over every cluster are refused with their reasons, and nothing of B's reaches
// A's cluster. A's own backup and restore work, and A's data is untouched.
func TestTenancy(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	spokeA, spokeB := testFleet.Spokes[0], testFleet.Spokes[1]
	suffix := rand.String(4)
	tenantA, tenantB := "tenant-a-"+suffix, "tenant-b-"+suffix
	appA, appB := "tenancy-a-"+suffix, "tenancy-b-"+suffix

	t.Log("a fleet admin onboards the tenants: a set per spoke, bound to the tenant's namespace, and a grant")
	onboardTenant(g, ctx, tenantA, "tenancy-a-"+suffix, spokeA, appA)
	onboardTenant(g, ctx, tenantB, "tenancy-b-"+suffix, spokeB, appB)
	defer func() {
		for _, s := range []*fleet.Spoke{spokeA, spokeB} {
			setClusterSet(g, context.Background(), s, "")
		}
	}()

	// Each location's identity trusts every cluster it names, so only tenancy
	// can refuse one; B's names A's cluster too.
	locA, _ := teamLocation(g, ctx, tenantA, "tenancy-a", spokeA)
	locB, _ := teamLocation(g, ctx, tenantB, "tenancy-b", spokeB, spokeA)

	t.Log("A's location is Valid on A's cluster; B's reaches B's cluster only, and A's shows ClusterNotAllowed")
	g.Eventually(func(g Gomega) {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(locA), locA)).To(Succeed())
		g.Expect(locA.Status.Phase).To(Equal(fleetv1alpha1.LocationValid))
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(locB), locB)).To(Succeed())
		g.Expect(connections(g, ctx, locB)).To(ConsistOf(
			And(HaveField("Cluster", spokeB.Name), HaveField("Phase", backupv1alpha1.TargetValid)),
			And(HaveField("Cluster", spokeA.Name), HaveField("Phase", backupv1alpha1.TargetInvalid), HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed)),
		))
		g.Expect(meta.FindStatusCondition(locB.Status.Conditions, fleetv1alpha1.ConditionReady)).To(HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed))
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	t.Logf("B's location: %s", meta.FindStatusCondition(locB.Status.Conditions, fleetv1alpha1.ConditionReady).Message)

	t.Log("B's locations aliasing A's storage are refused: LocationConflict, or by the API")
	alias := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantB, Name: "alias"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{Azure: locA.Spec.Azure, Identity: locB.Spec.Identity},
			Clusters:      fleet.ClusterNames(spokeB),
		},
	}
	g.Expect(hub.Create(ctx, alias)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(alias), alias)).To(Succeed())
		g.Expect(meta.FindStatusCondition(alias.Status.Conditions, fleetv1alpha1.ConditionReady)).To(HaveField("Reason", fleetv1alpha1.ReasonLocationConflict))
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	aliasWorks := &workv1.ManifestWorkList{}
	g.Expect(hub.List(ctx, aliasWorks, client.MatchingLabels{dispatch.LabelNamespace: dispatch.LabelValue(tenantB), dispatch.LabelName: dispatch.LabelValue(alias.Name)})).To(Succeed())
	g.Expect(aliasWorks.Items).To(BeEmpty(), "a conflicting location reaches no cluster")
	renamed := alias.DeepCopy()
	renamed.ObjectMeta = metav1.ObjectMeta{Namespace: tenantB, Name: "alias-renamed"}
	renamed.Spec.Azure.StorageAccount = "aliasaccount" // A's endpoint under another account's name
	err := hub.Create(ctx, renamed)
	g.Expect(err).To(MatchError(ContainSubstring("endpoint must be")), "an endpoint that does not name the storage account is refused")
	t.Logf("aliasing under another account name: %v", err)

	t.Log("A backs up and restores its own namespace")
	deploySample(g, ctx, spokeA.Client, appA)
	original := snapshot(g, ctx, spokeA.Client, appA)
	backupA := hubBackup(tenantA, "shop", spokeA, locA.Name, appA)
	skipVolumes(backupA)
	g.Expect(hub.Create(ctx, backupA)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, backupA, func(b *fleetv1alpha1.Backup) string { return string(b.Status.Phase) }, 3*time.Minute)).
		To(BeEquivalentTo(fleetv1alpha1.BackupPartialSuccess), "conditions: %+v", backupA.Status.Conditions)
	g.Expect(readyMessage(backupA.Status.Conditions)).To(ContainSubstring(sampleDataSkipped(appA)))
	copyA := appA + "-copy"
	restoreA := &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "shop-copy"},
		Spec: fleetv1alpha1.RestoreSpec{Backup: backupv1alpha1.ObjectName(backupA.Name), RestoreOptions: backupv1alpha1.RestoreOptions{
			NamespaceMapping: backupv1alpha1.NamespaceMapping{appA: backupv1alpha1.NamespaceName(copyA)},
		}},
	}
	g.Expect(hub.Create(ctx, restoreA)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, restoreA, func(r *fleetv1alpha1.Restore) string { return string(r.Status.Phase) }, 3*time.Minute)).
		To(BeEquivalentTo(backupv1alpha1.RestoreSuccess), "conditions: %+v", restoreA.Status.Conditions)
	restored := snapshot(g, ctx, spokeA.Client, copyA)
	for key, want := range original {
		g.Expect(restored[key]).To(Equal(remapSubjects(want, appA, copyA)), "%s restored in %s", key, copyA)
	}
	ar := &backupv1alpha1.ApplicationRestore{}
	g.Expect(spokeA.Client.Get(ctx, client.ObjectKey{Namespace: "lifeboat-system", Name: dispatch.SpokeName(tenantA, restoreA.Name)}, ar)).To(Succeed())
	g.Expect(ar.Spec.Tenancy).To(HaveField("HubNamespace", BeEquivalentTo(tenantA)), "the spoke holds A's restore to A's grant")

	t.Log("B backs up its own namespace on its own cluster")
	ensureNamespace(g, ctx, spokeB.Client, appB, nil)
	createConfigMaps(g, ctx, spokeB.Client, appB, 5, 64)
	backupB := hubBackup(tenantB, "app", spokeB, locB.Name, appB)
	g.Expect(hub.Create(ctx, backupB)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, backupB, func(b *fleetv1alpha1.Backup) string { return string(b.Status.Phase) }, 3*time.Minute)).
		To(BeEquivalentTo(fleetv1alpha1.BackupSuccess), "conditions: %+v", backupB.Status.Conditions)

	t.Log("what B may not do is refused with its reason")
	for _, c := range []struct {
		obj    client.Object
		reason string
	}{
		{hubBackup(tenantB, "on-a", spokeA, locB.Name, appB), fleetv1alpha1.ReasonClusterNotAllowed},
		{hubBackup(tenantB, "kube-system", spokeB, locB.Name, "kube-system"), fleetv1alpha1.ReasonNamespaceNotAllowed},
		{tenantRestore(tenantB, "into-kube-system", backupB.Name, "", backupv1alpha1.RestoreOptions{
			NamespaceMapping: backupv1alpha1.NamespaceMapping{appB: "kube-system"}}), fleetv1alpha1.ReasonNamespaceNotAllowed},
		{tenantRestore(tenantB, "cluster-scoped", backupB.Name, "", backupv1alpha1.RestoreOptions{
			Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(appB)}, ClusterScopedResources: backupv1alpha1.ClusterScopedInclude}}),
			fleetv1alpha1.ReasonClusterScopedNotAllowed},
		{tenantRestore(tenantB, "onto-a", backupB.Name, spokeA.Name, backupv1alpha1.RestoreOptions{}), fleetv1alpha1.ReasonClusterNotAllowed},
	} {
		g.Expect(hub.Create(ctx, c.obj)).To(Succeed())
		ready := refusedWith(g, ctx, c.obj)
		g.Expect(ready.Reason).To(Equal(c.reason), "%s", c.obj.GetName())
		t.Logf("%T %s: %s: %s", c.obj, c.obj.GetName(), ready.Reason, ready.Message)
		expectNoWork(g, ctx, c.obj)
	}

	t.Log("B's schedule over every cluster backs up B's cluster only")
	policy := &fleetv1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantB, Name: "hourly"},
		Spec:       fleetv1alpha1.SchedulePolicySpec{Interval: &metav1.Duration{Duration: time.Hour}, Retention: &fleetv1alpha1.Retention{KeepLast: 1}},
	}
	g.Expect(hub.Create(ctx, policy)).To(Succeed())
	sched := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantB, Name: "everywhere"},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:          backupv1alpha1.ObjectName(policy.Name),
			ClusterSelector: &metav1.LabelSelector{},
			Template: fleetv1alpha1.BackupTemplate{
				Location:  backupv1alpha1.ObjectName(locB.Name),
				Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(appB)}},
			},
		},
	}
	g.Expect(hub.Create(ctx, sched)).To(Succeed())
	defer func() { _ = hub.Delete(context.Background(), sched) }()
	g.Eventually(func(g Gomega) {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(sched), sched)).To(Succeed())
		ready := meta.FindStatusCondition(sched.Status.Conditions, fleetv1alpha1.ConditionReady)
		g.Expect(ready).To(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed)))
		g.Expect(ready.Message).To(ContainSubstring(spokeA.Name))
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	t.Logf("B's schedule: %s", meta.FindStatusCondition(sched.Status.Conditions, fleetv1alpha1.ConditionReady).Message)
	scheduled := &fleetv1alpha1.BackupList{}
	g.Expect(hub.List(ctx, scheduled, client.InNamespace(tenantB), client.MatchingLabels{fleetv1alpha1.LabelSchedule: sched.Name})).To(Succeed())
	for _, b := range scheduled.Items {
		g.Expect(b.Spec.Cluster).To(BeEquivalentTo(spokeB.Name), "the schedule makes Backups of B's cluster only")
	}

	t.Log("nothing of B's was sent to A's cluster, and A's data is as it was")
	works := &workv1.ManifestWorkList{}
	g.Expect(hub.List(ctx, works, client.InNamespace(spokeA.Name), client.MatchingLabels{dispatch.LabelNamespace: dispatch.LabelValue(tenantB)})).To(Succeed())
	g.Expect(works.Items).To(BeEmpty())
	g.Expect(snapshot(g, ctx, spokeA.Client, appA)).To(Equal(original))
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(backupA), backupA)).To(Succeed())
	g.Expect(backupA.Status.Phase).To(Equal(fleetv1alpha1.BackupPartialSuccess))
}

// onboardTenant does what a fleet admin does for a tenant: puts the spoke's
// ManagedCluster into set (OCM's exclusive label), binds the set to the
// tenant's hub namespace, and grants it spoke namespaces starting with app.
func onboardTenant(g Gomega, ctx context.Context, tenant, set string, s *fleet.Spoke, app string) {
	hub := testFleet.Hub.Client
	ensureNamespace(g, ctx, hub, tenant, nil)
	g.Expect(hub.Create(ctx, &clusterv1beta2.ManagedClusterSet{ObjectMeta: metav1.ObjectMeta{Name: set}})).To(Succeed())
	setClusterSet(g, ctx, s, set)
	g.Expect(hub.Create(ctx, &clusterv1beta2.ManagedClusterSetBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: set},
		Spec:       clusterv1beta2.ManagedClusterSetBindingSpec{ClusterSet: set},
	})).To(Succeed())
	g.Expect(hub.Create(ctx, &fleetv1alpha1.BackupTenant{
		ObjectMeta: metav1.ObjectMeta{Name: tenant},
		Spec:       fleetv1alpha1.BackupTenantSpec{Grant: backupv1alpha1.Grant{Namespaces: []backupv1alpha1.NamespacePattern{backupv1alpha1.NamespacePattern(app + "*")}}},
	})).To(Succeed())
}

// setClusterSet puts spoke s's ManagedCluster into set ("" takes it out).
func setClusterSet(g Gomega, ctx context.Context, s *fleet.Spoke, set string) {
	hub := testFleet.Hub.Client
	mc := &clusterv1.ManagedCluster{}
	g.Expect(hub.Get(ctx, client.ObjectKey{Name: s.Name}, mc)).To(Succeed())
	before := mc.DeepCopy()
	if set == "" {
		delete(mc.Labels, clusterv1beta2.ClusterSetLabel)
	} else {
		mc.Labels[clusterv1beta2.ClusterSetLabel] = set
	}
	g.Expect(hub.Patch(ctx, mc, client.MergeFrom(before))).To(Succeed())
}

func tenantRestore(namespace, name, backup, cluster string, opts backupv1alpha1.RestoreOptions) *fleetv1alpha1.Restore {
	return &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       fleetv1alpha1.RestoreSpec{Backup: backupv1alpha1.ObjectName(backup), Cluster: backupv1alpha1.ClusterName(cluster), RestoreOptions: opts},
	}
}

// refusedWith waits until obj (a Backup or a Restore) has Failed and returns
// its Ready condition.
func refusedWith(g Gomega, ctx context.Context, obj client.Object) metav1.Condition {
	var ready *metav1.Condition
	g.Eventually(func(g Gomega) {
		g.Expect(testFleet.Hub.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		var phase string
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *fleetv1alpha1.Backup:
			phase, conds = string(o.Status.Phase), o.Status.Conditions
		case *fleetv1alpha1.Restore:
			phase, conds = string(o.Status.Phase), o.Status.Conditions
		}
		g.Expect(phase).To(Equal("Failed"))
		ready = meta.FindStatusCondition(conds, fleetv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	return *ready
}

// expectNoWork checks that no cluster namespace holds a ManifestWork for obj.
func expectNoWork(g Gomega, ctx context.Context, obj client.Object) {
	works := &workv1.ManifestWorkList{}
	g.Expect(testFleet.Hub.Client.List(ctx, works, client.MatchingLabels{
		dispatch.LabelNamespace: dispatch.LabelValue(obj.GetNamespace()), dispatch.LabelName: dispatch.LabelValue(obj.GetName()),
	})).To(Succeed())
	for _, mw := range works.Items {
		g.Expect(mw.Labels[dispatch.LabelKind]).To(Equal("BackupLocation"), "no work for %s in %s", obj.GetName(), mw.Namespace)
	}
}
