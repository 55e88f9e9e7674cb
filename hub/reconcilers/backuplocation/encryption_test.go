package backuplocation

import (
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// A location's encryption reaches each cluster's BackupTarget as the
// reference it is: the name of a Secret on the cluster, never a key.
func TestLocationSendsTheEncryptionKeyReference(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "sealed-a", nil, true)
	ref := backupv1alpha1.SecretKeyReference{Name: "lifeboat-backup-key", Key: "key.txt"}
	loc := newLocation(t, g, "team-sealed", "primary", storage("acct1", "sealed", "team-sealed"), func(s *fleetv1alpha1.BackupLocationSpec) {
		s.Clusters = []backupv1alpha1.ClusterName{"sealed-a"}
		s.Encryption = &backupv1alpha1.Encryption{KeySecretRef: ref}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(ConsistOf("sealed-a"))
	mw := work(g, loc, "sealed-a")
	g.Expect(targetIn(g, mw).Spec.Encryption).To(Equal(&backupv1alpha1.Encryption{KeySecretRef: ref}))
}
