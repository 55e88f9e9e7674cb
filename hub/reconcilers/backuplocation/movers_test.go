package backuplocation

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// A location's mover settings reach each cluster's BackupTarget, where the
// spoke's mover pods take them.
func TestLocationSendsTheMoverSettings(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "movers-a", nil, true)
	settings := &backupv1alpha1.MoverSettings{
		Resources: &backupv1alpha1.MoverResources{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		NodeSelector:      map[string]backupv1alpha1.LabelValue{"lifeboat.dev/pool": "backup"},
		Tolerations:       []backupv1alpha1.MoverToleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "backup", Effect: corev1.TaintEffectNoSchedule}},
		PriorityClassName: "backup-low",
	}
	loc := newLocation(t, g, "team-movers", "primary", storage("acct1", "movers", "team-movers"), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{"movers-a"}
		s.MoverSettings = settings.DeepCopy()
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("movers-a"))
	got := targetIn(g, work(g, loc, "movers-a")).Spec.MoverSettings
	g.Expect(got).NotTo(BeNil())
	g.Expect(got.Resources.Requests[corev1.ResourceCPU].Equal(resource.MustParse("250m"))).To(BeTrue())
	g.Expect(got.Resources.Limits[corev1.ResourceMemory].Equal(resource.MustParse("1Gi"))).To(BeTrue())
	got.Resources = nil
	settings.Resources = nil
	g.Expect(got).To(Equal(settings))
}
