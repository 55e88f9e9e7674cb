package backupsync

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// A tenant's sync imports only the backups of clusters bound to its
// namespace; those of other clusters in the same container are rejected.
func TestTenantSyncImportsOnlyBoundClusters(t *testing.T) {
	g := NewWithT(t)
	const ns, own, other = tenancytest.TenantPrefix + "sync", "tsync-own", "tsync-other"
	loc := newLocation(t, g, ns, "primary", "accttenancysync", "backups", own)
	tenancytest.Bind(g, hubClient, ns, "tenancy-sync-set", own)
	tenancytest.Bind(g, hubClient, "tenancy-sync-neighbour", "tenancy-sync-neighbour-set", other)

	s := newSync(t, g, loc, "manual")
	g.Eventually(workExists(s, own)).WithTimeout(timeout).Should(BeTrue())
	mine, theirs := entry(own, "mine-1"), entry(other, "theirs-1")
	mine.Hub.Namespace, theirs.Hub.Namespace = ns, ns // made for this tenant: only the cluster is wrong
	writePage(g, s, own, "primary", 0, true, mine, theirs)
	spokeReports(g, s, own, backupv1alpha1.TaskCompleted, 2, 1)

	g.Eventually(getSync(s)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	st := getSync(s)().Status
	g.Expect(st.Imported).To(BeEquivalentTo(1))
	g.Expect(st.Rejected).To(BeEquivalentTo(1))
	c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionCompleted)
	g.Expect(c).To(HaveField("Reason", fleetv1alpha1.ReasonCatalogRejected))
	g.Expect(c.Message).To(And(ContainSubstring(fleetv1alpha1.ReasonClusterNotAllowed), ContainSubstring(other)))
	g.Expect(getBackup(ns, ImportName(own, "mine-1"))()).NotTo(BeNil())
	g.Expect(getBackup(ns, ImportName(other, "theirs-1"))()).To(BeNil(), "another cluster's backup is not imported")
}
