package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	hublocations "github.com/lifeboat-dev/lifeboat/hub/locations"
)

func clustersCommand() *command {
	return &command{
		use:     "clusters",
		short:   "List the clusters of the fleet and which locations each may use (cluster x location matrix)",
		example: "lifeboat clusters -o wide",
		run: func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			if s.structured() {
				list := &fleetv1alpha1.BackupClusterList{}
				if err := c.List(ctx, list); err != nil {
					return apiError(err, "backup clusters")
				}
				return s.printObject(list)
			}
			// Clusters are cluster-scoped; the matrix shows the locations of every
			// namespace unless -n names one.
			ns := ""
			if s.nsExplicit && !s.flags.allNamespaces {
				ns = s.namespace()
			}
			return printClusters(ctx, s.out(), s.app.Err, c, ns, s.wide())
		},
	}
}

// PrintClusters writes the table of the fleet's clusters and the cluster x
// location validity matrix, as `lifeboat clusters` shows them, for the
// locations of every namespace.
func PrintClusters(ctx context.Context, w io.Writer, c client.Client) error {
	return printClusters(ctx, w, w, c, "", false)
}

// cellKey is one cell of the matrix.
type cellKey struct{ cluster, location string }

// matrix is the cluster × location matrix: what each cluster reports,
// completed by what each location reports (a location lists every cluster
// it selects, validated or not).
type matrix struct {
	clusters []fleetv1alpha1.BackupCluster
	// locations are the columns, "namespace/name", sorted.
	locations []string
	cells     map[cellKey]backupv1alpha1.ValidationState
}

// cell is the matrix cell of cluster and location, as validityCell shows it.
func (m *matrix) cell(cluster, location string) string {
	st, ok := m.cells[cellKey{cluster, location}]
	return validityCell(st, ok)
}

// loadMatrix reads the clusters and the locations of namespace ("" for all).
func loadMatrix(ctx context.Context, c client.Client, namespace string) (*matrix, error) {
	clusters := &fleetv1alpha1.BackupClusterList{}
	if err := c.List(ctx, clusters); err != nil {
		return nil, apiError(err, "backup clusters")
	}
	sort.Slice(clusters.Items, func(i, j int) bool { return clusters.Items[i].Name < clusters.Items[j].Name })
	m := &matrix{clusters: clusters.Items, cells: map[cellKey]backupv1alpha1.ValidationState{}}
	columns := map[string]bool{}
	for _, cl := range clusters.Items {
		for _, l := range cl.Status.Locations {
			if namespace != "" && l.Namespace != namespace {
				continue
			}
			key := l.Namespace + "/" + l.Name
			columns[key] = true
			m.cells[cellKey{cl.Name, key}] = l.ValidationState
		}
	}
	locations := &fleetv1alpha1.BackupLocationList{}
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := c.List(ctx, locations, opts...); err != nil {
		// Someone allowed to list clusters but not every location still sees
		// what the clusters report.
		if !apierrors.IsForbidden(err) {
			return nil, apiError(err, "backup locations")
		}
	}
	for i := range locations.Items {
		l := &locations.Items[i]
		key := l.Namespace + "/" + l.Name
		columns[key] = true
		// Each cluster's connection is its BackupTarget ManifestWork; someone
		// who may not read those still sees what the location's status lists.
		conns, err := hublocations.Connections(ctx, c, l)
		if apierrors.IsForbidden(err) || meta.IsNoMatchError(err) {
			conns, err = l.Status.NotValid, nil
		}
		if err != nil {
			return nil, apiError(err, "backup location works")
		}
		for _, cc := range conns {
			if _, ok := m.cells[cellKey{cc.Cluster, key}]; !ok {
				m.cells[cellKey{cc.Cluster, key}] = cc.ValidationState
			}
		}
	}
	for k := range columns {
		m.locations = append(m.locations, k)
	}
	sort.Strings(m.locations)
	return m, nil
}

func printClusters(ctx context.Context, w, notes io.Writer, c client.Client, namespace string, wide bool) error {
	m, err := loadMatrix(ctx, c, namespace)
	if err != nil {
		return err
	}
	if len(m.clusters) == 0 {
		fmt.Fprintln(notes, "No clusters found: create a ClusterDiscovery or a BackupCluster on the hub.")
		return nil
	}
	headers := []string{"NAME", "PHASE", "SHOOT", "REGION", "ADD-ON", "SINCE"}
	if wide {
		headers = append(headers, "PROVIDER", "SEED", "MANAGED", "AGE")
	}
	t := newTable(w, headers...)
	for _, cl := range m.clusters {
		shoot, region := "", ""
		var sh fleetv1alpha1.ShootInfo
		if cl.Spec.Shoot != nil {
			sh = *cl.Spec.Shoot
			shoot, region = sh.Project+"/"+sh.Name, sh.Region
		}
		addon, since := addOnState(&cl)
		cells := []string{cl.Name, string(cl.Status.Phase), shoot, region, addon, since}
		if wide {
			cells = append(cells, sh.Provider, sh.Seed, fmt.Sprint(cl.Spec.Managed), age(&cl.CreationTimestamp))
		}
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(m.locations) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t = newTable(w, append([]string{"CLUSTER"}, m.locations...)...)
	for _, cl := range m.clusters {
		row := []string{cl.Name}
		for _, n := range m.locations {
			row = append(row, m.cell(cl.Name, n))
		}
		t.row(row...)
	}
	return t.flush()
}

// addOnState is the cluster's lifeboat add-on as its Available condition
// says (AddOnAvailable, AddOnUnavailable, AddOnNotInstalled, ...) and how
// long it has said so.
func addOnState(cl *fleetv1alpha1.BackupCluster) (state, since string) {
	c := condition(cl.Status.Conditions, fleetv1alpha1.ConditionAvailable)
	if c == nil {
		return "", ""
	}
	return c.Reason, age(&c.LastTransitionTime)
}

// validityCell is one cell of the matrix: Valid, Invalid(reason), Failed(reason)
// (the validation could not run), Pending (not validated yet) or - (the
// location does not select the cluster).
func validityCell(st backupv1alpha1.ValidationState, selected bool) string {
	if !selected {
		return "-"
	}
	switch st.Phase {
	case backupv1alpha1.TargetValid:
		return "Valid"
	case backupv1alpha1.TargetInvalid, backupv1alpha1.TargetFailed:
		if st.Reason == "" {
			return string(st.Phase)
		}
		return fmt.Sprintf("%s(%s)", st.Phase, st.Reason)
	}
	return "Pending"
}

func locationsCommand() *command {
	return &command{
		use:     "locations",
		short:   "List backup locations: phase, valid/selected clusters, storage, last sync",
		example: "lifeboat locations -A",
		run: func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			ns := s.listNamespace()
			list := &fleetv1alpha1.BackupLocationList{}
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return apiError(err, "backup locations")
			}
			if s.structured() {
				return s.printObject(list)
			}
			if len(list.Items) == 0 {
				s.note("No backup locations found %s.", inNamespace(ns))
				return nil
			}
			return printLocations(s.out(), list.Items, ns == "", s.wide())
		},
	}
}

func printLocations(w io.Writer, items []fleetv1alpha1.BackupLocation, withNamespace, wide bool) error {
	var headers []string
	if withNamespace {
		headers = append(headers, "NAMESPACE")
	}
	headers = append(headers, "NAME", "PHASE", "VALID/SELECTED", "ACCOUNT", "CONTAINER", "PREFIX", "LAST SYNC", "AGE")
	if wide {
		headers = append(headers, "SYNC INTERVAL", "TOMBSTONES", "FEDERATED SUBJECT", "NOT VALID ON")
	}
	t := newTable(w, headers...)
	for _, l := range items {
		var cells []string
		if withNamespace {
			cells = append(cells, l.Namespace)
		}
		cells = append(cells, l.Name, string(l.Status.Phase), fmt.Sprintf("%d/%d", l.Status.ValidClusters, l.Status.SelectedClusters),
			l.Spec.Azure.StorageAccount, l.Spec.Azure.Container, l.Spec.Azure.Prefix, age(l.Status.LastSyncTime), age(&l.CreationTimestamp))
		if wide {
			interval := ""
			if l.Spec.SyncInterval != nil {
				interval = shortDuration(l.Spec.SyncInterval.Duration)
			}
			var bad []string
			for _, cc := range l.Status.NotValid {
				bad = append(bad, cc.Cluster+"="+validityCell(cc.ValidationState, true))
			}
			if l.Status.NotValidOmitted > 0 {
				bad = append(bad, fmt.Sprintf("%d more", l.Status.NotValidOmitted))
			}
			cells = append(cells, interval, fmt.Sprint(len(l.Status.Tombstones)), l.Status.FederatedSubject, strings.Join(bad, ","))
		}
		t.row(cells...)
	}
	return t.flush()
}
