package locations

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func connection(cluster string, phase backupv1alpha1.TargetPhase, reason, message string) fleetv1alpha1.ClusterConnection {
	return fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: backupv1alpha1.ValidationState{Phase: phase, Reason: reason, Message: message}}
}

func TestDescribeConnections(t *testing.T) {
	g := NewWithT(t)
	loc := &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "primary"}, Status: fleetv1alpha1.BackupLocationStatus{
		SelectedClusters: 140, ValidClusters: 37,
		NotValid: []fleetv1alpha1.ClusterConnection{
			connection("a", backupv1alpha1.TargetInvalid, "AuthenticationFailed", "AADSTS700211"),
			connection("c", backupv1alpha1.TargetFailed, "NotApplied", ""),
			connection("b", "", "", ""),
		},
		NotValidOmitted: 100,
	}}
	g.Expect(DescribeConnections(loc)).To(Equal("valid on 37 of 140 selected cluster(s); cluster a is Invalid (AuthenticationFailed: AADSTS700211); " +
		"cluster c is Failed (NotApplied); cluster b is Pending; 100 more not valid"))
	g.Expect(DescribeConnections(&fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "primary"}})).To(Equal(`BackupLocation "primary" selects no cluster`))
}
