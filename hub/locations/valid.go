package locations

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// ValidCluster is a cluster whose connection to loc is Valid: preferred when
// it has one, else the first such cluster by name; "" when there is none.
// Work that only needs to reach the location's data (deleting it) may be sent
// to any of them.
func ValidCluster(ctx context.Context, c client.Reader, loc *fleetv1alpha1.BackupLocation, preferred string) (string, error) {
	if preferred != "" {
		conn, err := Connection(ctx, c, loc, preferred)
		if err != nil {
			return "", err
		}
		if conn != nil && conn.Phase == backupv1alpha1.TargetValid {
			return preferred, nil
		}
	}
	conns, err := Connections(ctx, c, loc)
	if err != nil {
		return "", err
	}
	for _, conn := range conns {
		if conn.Phase == backupv1alpha1.TargetValid {
			return conn.Cluster, nil
		}
	}
	return "", nil
}

// DescribeConnections says, for a person, how the selected clusters'
// connections to loc stand, from its status: the counts and the connections
// that are not Valid, e.g. "valid on 1 of 3 selected cluster(s); cluster a is
// Invalid (AuthenticationFailed: ...); cluster b is Pending".
func DescribeConnections(loc *fleetv1alpha1.BackupLocation) string {
	st := loc.Status
	if st.SelectedClusters == 0 {
		return fmt.Sprintf("BackupLocation %q selects no cluster", loc.Name)
	}
	parts := []string{fmt.Sprintf("valid on %d of %d selected cluster(s)", st.ValidClusters, st.SelectedClusters)}
	for _, c := range st.NotValid {
		phase := string(c.Phase)
		if phase == "" {
			phase = string(backupv1alpha1.TargetPending)
		}
		s := fmt.Sprintf("cluster %s is %s", c.Cluster, phase)
		switch {
		case c.Reason != "" && c.Message != "":
			s += fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
		case c.Reason != "":
			s += " (" + c.Reason + ")"
		}
		parts = append(parts, s)
	}
	if st.NotValidOmitted > 0 {
		parts = append(parts, fmt.Sprintf("%d more not valid", st.NotValidOmitted))
	}
	return strings.Join(parts, "; ")
}
