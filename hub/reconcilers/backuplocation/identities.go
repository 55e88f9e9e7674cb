package backuplocation

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// identityMap picks each cluster's identity for a location: the first
// spec.identities entry that names or selects the cluster, else spec.identity.
type identityMap struct {
	loc       *fleetv1alpha1.BackupLocation
	selectors []labels.Selector // per entry; nil when the entry has none
}

func newIdentityMap(loc *fleetv1alpha1.BackupLocation) (*identityMap, error) {
	m := &identityMap{loc: loc, selectors: make([]labels.Selector, len(loc.Spec.Identities))}
	for i, e := range loc.Spec.Identities {
		if e.ClusterSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(e.ClusterSelector)
		if err != nil {
			return nil, fmt.Errorf("identities[%d].clusterSelector: %w", i, err)
		}
		m.selectors[i] = sel
	}
	return m, nil
}

// of is the identity that cluster c uses.
func (m *identityMap) of(c *fleetv1alpha1.BackupCluster) backupv1alpha1.AzureWorkloadIdentity {
	for i, e := range m.loc.Spec.Identities {
		if slices.Contains(e.Clusters, backupv1alpha1.ClusterName(c.Name)) || (m.selectors[i] != nil && m.selectors[i].Matches(labels.Set(c.Labels))) {
			return e.Identity
		}
	}
	return m.loc.Spec.Identity
}
