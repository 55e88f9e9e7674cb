package clusterdiscovery

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/discovery"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// A ClusterDiscovery with clusterSet puts what it onboards into that
// ManagedClusterSet, whatever label the shoot carries; a set name that is
// not a name is refused by the API server.
func TestDiscoveryPutsClustersIntoItsClusterSet(t *testing.T) {
	g := NewWithT(t)
	const project = "sets"
	createProject(g, project)
	// A shoot owner cannot pick a set: the shoot's own label loses.
	createShoot(g, fleet.ShootOptions{Project: project, Name: "a", Labels: map[string]string{backupLabel: "enabled", clusterv1beta2.ClusterSetLabel: "someone-elses"}})
	cd := newDiscovery(t, "sets", []string{project}, selected, func(cd *fleetv1alpha1.ClusterDiscovery) { cd.Spec.ClusterSet = "team-a-clusters" })
	g.Eventually(readyStatus(cd)).WithTimeout(timeout).Should(Succeed())
	name := discovery.ClusterName(project, "a")
	mc := &clusterv1.ManagedCluster{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Name: name}, mc)).To(Succeed())
	g.Expect(mc.Labels).To(HaveKeyWithValue(clusterv1beta2.ClusterSetLabel, "team-a-clusters"))
	g.Expect(backupCluster(g, name).Labels).To(HaveKeyWithValue(clusterv1beta2.ClusterSetLabel, "team-a-clusters"))

	bad := &fleetv1alpha1.ClusterDiscovery{}
	bad.Name = "bad-set"
	bad.Spec = *cd.Spec.DeepCopy()
	bad.Spec.ClusterSet = "Team_A"
	err := hubClient.Create(context.Background(), bad)
	g.Expect(err).To(HaveOccurred())
	g.Expect(strings.Contains(err.Error(), "clusterSet must be a ManagedClusterSet name")).To(BeTrue(), err.Error())
}
