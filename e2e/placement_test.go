package e2e

import (
	"context"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// A BackupLocation and a BackupSchedule that name an OCM Placement cover
// exactly the clusters OCM's placement controller decides for: first
// spoke-1, then also spoke-2 once its ManagedCluster matches the Placement,
// whose next scheduled Backup then succeeds too; a cluster that leaves the
// Placement is dropped.
func TestPlacementSelectsLocationAndSchedule(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	spokes := onboarded()
	const team, container, label = "team-placement", "placement-backups", "lifeboat.dev/placement-e2e"

	t.Log("a Placement over the global cluster set, for ManagedClusters labelled by the fleet admin")
	ensureNamespace(g, ctx, hub, team, nil)
	g.Expect(client.IgnoreAlreadyExists(hub.Create(ctx, &clusterv1beta2.ManagedClusterSetBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "global"},
		Spec:       clusterv1beta2.ManagedClusterSetBindingSpec{ClusterSet: "global"},
	}))).To(Succeed())
	pl := &clusterv1beta1.Placement{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "backed-up"},
		Spec: clusterv1beta1.PlacementSpec{
			ClusterSets: []string{"global"},
			Predicates: []clusterv1beta1.ClusterPredicate{{RequiredClusterSelector: clusterv1beta1.ClusterSelector{
				LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{label: "on"}},
			}}},
		},
	}
	g.Expect(hub.Create(ctx, pl)).To(Succeed())
	defer func() { _ = hub.Delete(context.Background(), pl) }()
	labelManagedCluster(g, ctx, spokes[0], "on")
	defer func() {
		for _, s := range spokes {
			labelManagedCluster(g, context.Background(), s, "")
		}
	}()

	// The identity is federated on both spokes, so both can validate.
	loc, _ := teamLocation(g, ctx, team, container, spokes...)
	before := client.MergeFrom(loc.DeepCopy())
	loc.Spec.Clusters = nil
	loc.Spec.PlacementRef = &fleetv1alpha1.PlacementRef{Name: backupv1alpha1.ObjectName(pl.Name)}
	g.Expect(hub.Patch(ctx, loc, before)).To(Succeed())
	defer func() { _ = hub.Delete(context.Background(), loc) }()

	t.Log("the location is Valid on spoke-1 alone")
	waitLocationClusters(g, ctx, loc, spokes[:1])

	ns := "shop-" + rand.String(4)
	for _, s := range spokes {
		ensureNamespace(g, ctx, s.Client, ns, nil)
		createConfigMaps(g, ctx, s.Client, ns, 5, 1<<10)
	}
	policy := &fleetv1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "every-minute"},
		Spec:       fleetv1alpha1.SchedulePolicySpec{Interval: &metav1.Duration{Duration: time.Minute}, Jitter: &metav1.Duration{Duration: 10 * time.Second}},
	}
	g.Expect(hub.Create(ctx, policy)).To(Succeed())
	defer func() { _ = hub.Delete(context.Background(), policy) }()
	sched := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "placed"},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:       backupv1alpha1.ObjectName(policy.Name),
			PlacementRef: &fleetv1alpha1.PlacementRef{Name: backupv1alpha1.ObjectName(pl.Name)},
			Template: fleetv1alpha1.BackupTemplate{
				Location:  backupv1alpha1.ObjectName(loc.Name),
				Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(ns)}},
			},
		},
	}
	g.Expect(hub.Create(ctx, sched)).To(Succeed())
	defer func() { _ = hub.Delete(context.Background(), sched) }()

	t.Log("the schedule backs up spoke-1 alone, and the backup succeeds")
	g.Eventually(func() []string { return succeededClusters(g, ctx, sched) }, 3*time.Minute, time.Second).Should(Equal(spokeNames(spokes[:1])))

	t.Log("spoke-2 enters the Placement: the location covers it, and the schedule's next run backs it up")
	labelManagedCluster(g, ctx, spokes[1], "on")
	waitLocationClusters(g, ctx, loc, spokes)
	g.Eventually(func() []string { return succeededClusters(g, ctx, sched) }, 3*time.Minute, time.Second).Should(Equal(spokeNames(spokes)))
	st := &fleetv1alpha1.BackupSchedule{}
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(sched), st)).To(Succeed())
	g.Expect(st.Status.Clusters).To(HaveLen(len(spokes)))

	t.Log("spoke-1 leaves the Placement: the location and the schedule drop it; its backups stay")
	labelManagedCluster(g, ctx, spokes[0], "")
	waitLocationClusters(g, ctx, loc, spokes[1:])
	g.Eventually(func() []string {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(sched), st)).To(Succeed())
		var out []string
		for _, c := range st.Status.Clusters {
			out = append(out, c.Cluster)
		}
		return out
	}, time.Minute, 250*time.Millisecond).Should(Equal(spokeNames(spokes[1:])))
	g.Expect(succeededClusters(g, ctx, sched)).To(Equal(spokeNames(spokes)))
}

// labelManagedCluster sets (or, with "", removes) the e2e placement label on
// the spoke's ManagedCluster, as a fleet admin would.
func labelManagedCluster(g Gomega, ctx context.Context, s *fleet.Spoke, value string) {
	mc := &clusterv1.ManagedCluster{}
	g.Expect(testFleet.Hub.Client.Get(ctx, client.ObjectKey{Name: s.Name}, mc)).To(Succeed())
	before := client.MergeFrom(mc.DeepCopy())
	if value == "" {
		delete(mc.Labels, "lifeboat.dev/placement-e2e")
	} else {
		if mc.Labels == nil {
			mc.Labels = map[string]string{}
		}
		mc.Labels["lifeboat.dev/placement-e2e"] = value
	}
	g.Expect(testFleet.Hub.Client.Patch(ctx, mc, before)).To(Succeed())
}

// waitLocationClusters waits until loc selects exactly spokes, Valid on each.
func waitLocationClusters(g Gomega, ctx context.Context, loc *fleetv1alpha1.BackupLocation, spokes []*fleet.Spoke) {
	g.Eventually(func() map[string]backupv1alpha1.TargetPhase {
		g.Expect(testFleet.Hub.Client.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		out := map[string]backupv1alpha1.TargetPhase{}
		for _, c := range connections(g, ctx, loc) {
			out[c.Cluster] = c.Phase
		}
		return out
	}, 2*time.Minute, 250*time.Millisecond).Should(And(HaveLen(len(spokes)), HaveEach(backupv1alpha1.TargetValid), HaveKey(spokes[len(spokes)-1].Name)),
		"BackupLocation %s", loc.Name)
}

// succeededClusters are the clusters with a successful Backup of sched, sorted.
func succeededClusters(g Gomega, ctx context.Context, sched *fleetv1alpha1.BackupSchedule) []string {
	list := &fleetv1alpha1.BackupList{}
	g.Expect(testFleet.Hub.Client.List(ctx, list, client.InNamespace(sched.Namespace), client.MatchingLabels{fleetv1alpha1.LabelSchedule: sched.Name})).To(Succeed())
	seen := map[string]bool{}
	for _, b := range list.Items {
		if b.Status.Phase == fleetv1alpha1.BackupSuccess {
			seen[string(b.Spec.Cluster)] = true
		}
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
