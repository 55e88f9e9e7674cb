package backupcluster

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// The first locationWriteBurst clusters write at once; then one a
// 1/perSecond. A cluster keeps its turn: asked again before it, it waits the
// rest and takes no other cluster's turn; at its turn it writes.
func TestPaceHandsOutTurns(t *testing.T) {
	g := NewWithT(t)
	p := newPace(20)
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for i := range locationWriteBurst {
		g.Expect(p.wait(fmt.Sprintf("c-%d", i), now)).To(BeZero(), "cluster %d of the burst", i)
	}
	g.Expect(p.wait("late-1", now)).To(Equal(50 * time.Millisecond))
	g.Expect(p.wait("late-2", now)).To(Equal(100 * time.Millisecond))
	g.Expect(p.wait("late-1", now.Add(20*time.Millisecond))).To(Equal(30*time.Millisecond), "late-1 keeps its turn")
	g.Expect(p.wait("late-3", now)).To(Equal(150*time.Millisecond), "late-1 asking again took no turn")
	g.Expect(p.wait("late-1", now.Add(50*time.Millisecond))).To(BeZero())
	g.Expect(p.turns).NotTo(HaveKey("late-1"), "a turn is taken once")
}

// Only a write that changes the list of locations and nothing else waits
// for a turn: a change of the cluster's health goes at once, with the list.
func TestOnlyLocationWritesWait(t *testing.T) {
	g := NewWithT(t)
	r := &Reconciler{pace: newPace(20)}
	now := time.Now()
	for i := range locationWriteBurst {
		r.pace.wait(fmt.Sprintf("other-%d", i), now)
	}
	available := &addonv1alpha1.ManagedClusterAddOn{ObjectMeta: metav1.ObjectMeta{Namespace: "c1", Name: "lifeboat"}}
	available.Status.Conditions = []metav1.Condition{{Type: addonv1alpha1.ManagedClusterAddOnConditionAvailable, Status: metav1.ConditionTrue, Reason: "Lease", Message: "renewed"}}
	bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: "c1"}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
	setHealth(bc, available)
	conns := []fleetv1alpha1.LocationConnection{{Namespace: "team", Name: "primary", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid}}}

	g.Expect(r.locationsWait(bc, available, nil)).To(BeZero(), "nothing to write")
	g.Expect(r.locationsWait(bc, nil, conns)).To(BeZero(), "the add-on is gone: health changes")
	g.Expect(r.locationsWait(bc, available, conns)).To(BeNumerically(">", 0), "only the locations change")
}
