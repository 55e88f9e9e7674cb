package locations

import (
	"fmt"
	"sort"
	"strings"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// ValidCluster is a cluster whose connection to loc is Valid: preferred when
// it has one, else the first such cluster by name; "" when there is none.
// Work that only needs to reach the location's data (deleting it) may be sent
// to any of them.
func ValidCluster(loc *fleetv1alpha1.BackupLocation, preferred string) string {
	if c := Connection(loc, preferred); c != nil && c.Phase == backupv1alpha1.TargetValid {
		return preferred
	}
	var valid []string
	for _, c := range loc.Status.Clusters {
		if c.Phase == backupv1alpha1.TargetValid {
			valid = append(valid, c.Cluster)
		}
	}
	if len(valid) == 0 {
		return ""
	}
	sort.Strings(valid)
	return valid[0]
}

// DescribeConnections says, for a person, how each selected cluster's
// connection to loc stands, e.g. "cluster a is Invalid (AuthenticationFailed:
// ...); cluster b is Pending".
func DescribeConnections(loc *fleetv1alpha1.BackupLocation) string {
	if len(loc.Status.Clusters) == 0 {
		return fmt.Sprintf("BackupLocation %q selects no cluster", loc.Name)
	}
	parts := make([]string, 0, len(loc.Status.Clusters))
	for _, c := range loc.Status.Clusters {
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
	return strings.Join(parts, "; ")
}
