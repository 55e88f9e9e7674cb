package backuplocation

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/placement/placementtest"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// readyOf is the location's Ready condition.
func readyOf(loc *fleetv1alpha1.BackupLocation) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(status(loc)().Conditions, fleetv1alpha1.ConditionReady)
	}
}

func TestLocationFollowsPlacementDecisions(t *testing.T) {
	g := NewWithT(t)
	const ns = "team-placement"
	var clusters []string
	for i := range 231 {
		name := fmt.Sprintf("placed-%03d", i)
		createCluster(t, g, name, nil, true)
		clusters = append(clusters, name)
	}
	createCluster(t, g, "placed-unmanaged", nil, false)

	loc := newLocation(t, g, ns, "placed", storage("acctplaced", "backups", ns), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.PlacementRef = &fleetv1alpha1.PlacementRef{Name: "fleet"}
	})

	t.Log("the Placement does not exist: not Ready, nothing sent")
	g.Eventually(readyOf(loc)).WithTimeout(timeout).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", fleetv1alpha1.ReasonPlacementNotFound),
		HaveField("Message", ContainSubstring("Placement team-placement/fleet does not exist")),
	))
	g.Expect(workClusters(loc)(g)).To(BeEmpty())

	t.Log("the Placement decides nothing yet: no clusters selected, and the condition says so")
	placementtest.Create(g, hubClient, ns, "fleet")
	g.Eventually(readyOf(loc)).WithTimeout(timeout).Should(And(
		HaveField("Reason", fleetv1alpha1.ReasonNoClustersSelected),
		HaveField("Message", ContainSubstring("Placement fleet decides for no managed BackupCluster")),
	))

	t.Log("decisions over three pages (100, 100, 30) select exactly those clusters; an unmanaged one is left out")
	decided := append(append([]string{}, clusters[:230]...), "placed-unmanaged")
	placementtest.Decide(g, hubClient, ns, "fleet", decided)
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf(clusters[:230]))
	g.Eventually(status(loc)).WithTimeout(timeout).Should(HaveField("SelectedClusters", BeEquivalentTo(230)))

	t.Log("a cluster the Placement decides for later is covered; one it drops loses its target")
	placementtest.Decide(g, hubClient, ns, "fleet", clusters[1:])
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf(clusters[1:]))
	g.Eventually(connection(loc, clusters[230])).WithTimeout(timeout).Should(HaveField("Phase", backupv1alpha1.TargetPending))

	t.Log("names in clusters are selected beside the Placement's")
	patchLocation(g, loc, func(l *fleetv1alpha1.BackupLocation) {
		l.Spec.Clusters = []backupv1alpha1.ClusterName{backupv1alpha1.ClusterName(clusters[0])}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf(clusters))
}

func TestTenantPlacementIsIntersectedWithBoundSets(t *testing.T) {
	g := NewWithT(t)
	ns := tenancytest.TenantPrefix + "placement"
	createCluster(t, g, "pl-bound", nil, true)
	createCluster(t, g, "pl-foreign", nil, true)
	tenancytest.Bind(g, hubClient, ns, "pl-set", "pl-bound")
	tenancytest.Bind(g, hubClient, "other-placement-team", "pl-other-set", "pl-foreign")
	placementtest.Create(g, hubClient, ns, "mine")
	placementtest.Decide(g, hubClient, ns, "mine", []string{"pl-bound", "pl-foreign"})

	loc := newLocation(t, g, ns, "placed", storage("acctplacedtenant", "backups", ns), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.PlacementRef = &fleetv1alpha1.PlacementRef{Name: "mine"}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("pl-bound"))
	g.Eventually(connection(loc, "pl-foreign")).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonClusterNotAllowed))
	g.Consistently(workClusters(loc)).WithTimeout(timeout / 5).Should(ConsistOf("pl-bound"))
}

func TestPlacementRefValidation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tenancytest.Namespace(g, hubClient, "team-placement-cel")
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-placement-cel", Name: "both"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget:   storage("acctcel", "backups", "x"),
			ClusterSelector: &metav1.LabelSelector{},
			PlacementRef:    &fleetv1alpha1.PlacementRef{Name: "fleet"},
		},
	}
	err := hubClient.Create(ctx, loc)
	g.Expect(err).To(MatchError(ContainSubstring("set clusterSelector or placementRef, not both")))

	loc.Spec.ClusterSelector, loc.Spec.PlacementRef = nil, &fleetv1alpha1.PlacementRef{Name: "Not_A_Name"}
	g.Expect(hubClient.Create(ctx, loc)).To(MatchError(ContainSubstring("must be an object name")))

	loc.Spec.PlacementRef = nil
	g.Expect(hubClient.Create(ctx, loc)).To(MatchError(ContainSubstring("set clusters, clusterSelector or placementRef")))
}
