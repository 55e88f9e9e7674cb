package backupschedule

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// A tenant's schedule over every cluster backs up only the clusters bound to
// its namespace and says which it left out; one whose template asks for a
// spoke namespace the grant does not give makes no Backup at all.
func TestTenantScheduleBacksUpOnlyItsClusters(t *testing.T) {
	g := NewWithT(t)
	const ns, own, other = tenancytest.TenantPrefix + "schedule", "tsched-own", "tsched-other"
	newCluster(t, g, own, map[string]string{"tier": "tenancy"})
	newCluster(t, g, other, map[string]string{"tier": "tenancy"})
	tenancytest.Bind(g, hubClient, ns, "tenancy-schedule-set", own)
	tenancytest.Bind(g, hubClient, "tenancy-schedule-neighbour", "tenancy-schedule-neighbour-set", other)
	tenancytest.Grant(g, hubClient, ns, backupv1alpha1.Grant{Namespaces: []backupv1alpha1.NamespacePattern{"shop"}})
	newLocation(t, g, ns, "primary", own, other)
	newPolicy(t, g, ns, "hourly", fleetv1alpha1.SchedulePolicySpec{Interval: dur(time.Hour), Jitter: dur(time.Minute)})

	s := newSchedule(t, g, ns, "all", "hourly", "tier", "tenancy")
	setClock(testClock.Now().Add(2 * time.Hour))
	poke(g, s)
	clusters := func() []string {
		var out []string
		for _, b := range backupsOf(g, s) {
			out = append(out, string(b.Spec.Cluster))
		}
		return out
	}
	// Every Backup is of the bound cluster (a busy machine may let the schedule
	// see two ticks around the clock change, so there may be two).
	g.Eventually(clusters).WithTimeout(timeout).Should(And(ContainElement(own), HaveEach(own)))
	g.Eventually(func() string {
		c := meta.FindStatusCondition(scheduleStatus(s)().Conditions, fleetv1alpha1.ConditionReady)
		if c == nil {
			return ""
		}
		return c.Reason + ": " + c.Message
	}).WithTimeout(timeout).Should(And(HavePrefix(fleetv1alpha1.ReasonClusterNotAllowed), ContainSubstring(other), ContainSubstring("may not use")))

	t.Log("a template reaching into kube-system makes nothing")
	k := newSchedule(t, g, ns, "kube-system", "hourly", "tier", "tenancy", func(s *fleetv1alpha1.BackupScheduleSpec) {
		s.Template.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop", "kube-system"}}
	})
	setClock(testClock.Now().Add(2 * time.Hour))
	poke(g, k)
	g.Eventually(func() string {
		c := meta.FindStatusCondition(scheduleStatus(k)().Conditions, fleetv1alpha1.ConditionReady)
		if c == nil {
			return ""
		}
		return c.Reason + ": " + c.Message
	}).WithTimeout(timeout).Should(And(HavePrefix(fleetv1alpha1.ReasonNamespaceNotAllowed), ContainSubstring("kube-system")))
	g.Consistently(func() int { return len(backupsOf(g, k)) }).WithTimeout(2 * time.Second).Should(BeZero())
}
