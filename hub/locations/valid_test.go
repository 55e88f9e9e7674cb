package locations

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func location(conns ...fleetv1alpha1.ClusterConnection) *fleetv1alpha1.BackupLocation {
	return &fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "primary"}, Status: fleetv1alpha1.BackupLocationStatus{Clusters: conns}}
}

func connection(cluster string, phase backupv1alpha1.TargetPhase, reason, message string) fleetv1alpha1.ClusterConnection {
	return fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: backupv1alpha1.ValidationState{Phase: phase, Reason: reason, Message: message}}
}

func TestValidCluster(t *testing.T) {
	valid, invalid := backupv1alpha1.TargetValid, backupv1alpha1.TargetInvalid
	for _, tc := range []struct {
		name      string
		loc       *fleetv1alpha1.BackupLocation
		preferred string
		want      string
	}{
		{"the preferred cluster when it is Valid", location(connection("a", valid, "", ""), connection("b", valid, "", "")), "b", "b"},
		{"else the first Valid by name", location(connection("c", valid, "", ""), connection("b", invalid, "", ""), connection("a", valid, "", "")), "b", "a"},
		{"a preferred cluster not selected", location(connection("a", valid, "", "")), "z", "a"},
		{"none Valid", location(connection("a", invalid, "", ""), connection("b", backupv1alpha1.TargetPending, "", "")), "a", ""},
		{"no clusters", location(), "a", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(ValidCluster(tc.loc, tc.preferred)).To(Equal(tc.want))
		})
	}
}

func TestDescribeConnections(t *testing.T) {
	g := NewWithT(t)
	g.Expect(DescribeConnections(location(
		connection("a", backupv1alpha1.TargetInvalid, "AuthenticationFailed", "AADSTS700211"),
		connection("b", "", "", ""),
		connection("c", backupv1alpha1.TargetFailed, "NotApplied", ""),
	))).To(Equal("cluster a is Invalid (AuthenticationFailed: AADSTS700211); cluster b is Pending; cluster c is Failed (NotApplied)"))
	g.Expect(DescribeConnections(location())).To(Equal(`BackupLocation "primary" selects no cluster`))
}
