package backupschedule

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/placement/placementtest"
)

// A schedule with a placementRef backs up exactly the clusters its
// Placement decides for, over all decision pages, and follows the decisions.
func TestScheduleFollowsPlacementDecisions(t *testing.T) {
	g := NewWithT(t)
	const ns = "team-placed"
	var clusters []string
	for i := range 206 {
		name := fmt.Sprintf("sched-placed-%03d", i)
		newCluster(t, g, name, nil)
		clusters = append(clusters, name)
	}
	newCluster(t, g, "sched-placed-not-decided", nil)
	newLocation(t, g, ns, "primary", append(clusters, "sched-placed-not-decided")...)
	newPolicy(t, g, ns, "hourly", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour), Jitter: dur(time.Minute)})
	s := newSchedule(t, g, ns, "placed", "hourly", "", "", func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.ClusterSelector = nil
		s.PlacementRef = &fleetv1alpha1.PlacementRef{Name: "fleet"}
	})

	// Every cluster is due a minute (the jitter) after each hourly run.
	due := func(h int) time.Time { return s.CreationTimestamp.Add(time.Duration(h)*time.Hour + 2*time.Minute) }

	t.Log("the Placement does not exist: not Ready, no Backups")
	setClock(due(1))
	poke(g, s)
	g.Eventually(readyOf(s)).WithTimeout(timeout).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", fleetv1alpha1.ReasonPlacementNotFound),
		HaveField("Message", ContainSubstring("Placement team-placed/fleet does not exist; no backups are made")),
	))
	g.Expect(backupsOf(g, s)).To(BeEmpty())

	t.Log("the Placement decides nothing: no clusters selected, and the condition names the Placement")
	placementtest.Create(g, hubClient, ns, "fleet")
	g.Eventually(readyOf(s)).WithTimeout(timeout).Should(And(
		HaveField("Reason", fleetv1alpha1.ReasonNoClustersSelected),
		HaveField("Message", ContainSubstring("Placement fleet decides for no managed BackupCluster")),
	))

	t.Log("decisions over three pages (100, 100, 5): a run backs up exactly those clusters")
	placementtest.Decide(g, hubClient, ns, "fleet", clusters[:205])
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", HaveLen(205)))
	setClock(due(2))
	poke(g, s)
	backedUp := func() []string { return sets.List(sets.New(clustersOf(backupsOf(g, s))...)) }
	g.Eventually(backedUp).WithTimeout(timeout).Should(Equal(clusters[:205]))

	t.Log("a cluster the Placement decides for later is backed up from the next run on")
	placementtest.Decide(g, hubClient, ns, "fleet", clusters)
	g.Eventually(scheduleStatus(s)).WithTimeout(timeout).Should(HaveField("Clusters", HaveLen(206)))
	setClock(due(3))
	poke(g, s)
	g.Eventually(backedUp).WithTimeout(timeout).Should(Equal(clusters))
}

func TestSchedulePlacementRefValidation(t *testing.T) {
	g := NewWithT(t)
	createNamespace(g, "team-placed-cel")
	s := &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-placed-cel", Name: "both"},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:          "hourly",
			ClusterSelector: &metav1.LabelSelector{},
			PlacementRef:    &fleetv1alpha1.PlacementRef{Name: "fleet"},
			Template:        fleetv1alpha1.BackupTemplate{Location: "primary"},
		},
	}
	g.Expect(hubClient.Create(context.Background(), s)).To(MatchError(ContainSubstring("set clusterSelector or placementRef, not both")))
	s.Spec.ClusterSelector, s.Spec.PlacementRef = nil, nil
	g.Expect(hubClient.Create(context.Background(), s)).To(MatchError(ContainSubstring("set clusterSelector or placementRef: a schedule must say which clusters to back up")))
}
