package backuplocation

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Reasons of this package's conditions.
const (
	// reasonValidationInProgress: some selected clusters have not reported yet.
	reasonValidationInProgress = "ValidationInProgress"
	// reasonValid: every selected cluster can use the location.
	reasonValid = "Valid"
)

// connections are the selected clusters' connections as their works report
// them (locations.StateOf), then the clusters the namespace may not use as
// Invalid connections with the tenancy's reason (nothing was sent to them),
// by cluster name.
func connections(loc *fleetv1alpha1.BackupLocation, clusters []string, works map[string]*workv1.ManifestWork, identities map[string]backupv1alpha1.AzureWorkloadIdentity,
	tenant *tenancy.Tenant, refused []string) []fleetv1alpha1.ClusterConnection {
	conns := make([]fleetv1alpha1.ClusterConnection, 0, len(clusters)+len(refused))
	for _, cluster := range clusters {
		conns = append(conns, fleetv1alpha1.ClusterConnection{Cluster: cluster, ClientID: identities[cluster].ClientID, ValidationState: locations.StateOf(works[cluster], loc.Generation)})
	}
	for _, cluster := range refused {
		r := tenant.Cluster(cluster)
		conns = append(conns, fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: backupv1alpha1.ValidationState{
			Phase: backupv1alpha1.TargetInvalid, Reason: r.Reason, Message: r.Message + "; nothing was sent to the cluster",
		}})
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].Cluster < conns[j].Cluster })
	return conns
}

// summarize sets the counts, the connections that are not Valid (at most
// MaxNotValidClusters, Invalid and Failed first), the phase and the
// conditions from conns.
func summarize(loc *fleetv1alpha1.BackupLocation, conns []fleetv1alpha1.ClusterConnection) {
	st := &loc.Status
	st.SelectedClusters, st.ValidClusters, st.PendingClusters, st.InvalidClusters = int32(len(conns)), 0, 0, 0
	var bad, pending []fleetv1alpha1.ClusterConnection
	for _, c := range conns {
		switch c.Phase {
		case backupv1alpha1.TargetValid:
			st.ValidClusters++
		case backupv1alpha1.TargetPending, backupv1alpha1.TargetInProgress, "":
			st.PendingClusters++
			pending = append(pending, c)
		default:
			st.InvalidClusters++
			bad = append(bad, c)
		}
	}
	notValid := append(bad, pending...)
	st.NotValidOmitted = 0
	if len(notValid) > fleetv1alpha1.MaxNotValidClusters {
		st.NotValidOmitted = int32(len(notValid) - fleetv1alpha1.MaxNotValidClusters)
		notValid = notValid[:fleetv1alpha1.MaxNotValidClusters]
	}
	st.NotValid = notValid
	st.ObservedGeneration = loc.Generation
	aggregate(loc)
}

// refuseClusters makes the location not Ready because of the selected
// clusters that the namespace may not use.
func refuseClusters(loc *fleetv1alpha1.BackupLocation, tenant *tenancy.Tenant, refused []string) {
	if len(refused) == 0 {
		return
	}
	msg := fmt.Sprintf("%d selected cluster(s) may not be used from namespace %s, nothing was sent to them: %s (%s)",
		len(refused), loc.Namespace, summarizeNames(refused), tenant.Cluster(refused[0]).Message)
	setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonClusterNotAllowed, msg)
}

// aggregate sets the phase and the Validated and Ready conditions from the
// counts, as BackupLocationPhase defines them.
func aggregate(loc *fleetv1alpha1.BackupLocation) {
	total, valid, pending := int(loc.Status.SelectedClusters), int(loc.Status.ValidClusters), int(loc.Status.PendingClusters)
	count := fmt.Sprintf("valid on %d of %d selected cluster(s)", valid, total)
	switch {
	case total == 0:
		loc.Status.Phase = fleetv1alpha1.LocationInvalid
		msg := "no managed BackupCluster is named in clusters or matches clusterSelector"
		if ref := loc.Spec.PlacementRef; ref != nil {
			msg = fmt.Sprintf("Placement %s decides for no managed BackupCluster and none is named in clusters", ref.Name)
		}
		setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionFalse, fleetv1alpha1.ReasonNoClustersSelected, msg)
		setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonNoClustersSelected, msg)
	case valid == total:
		loc.Status.Phase = fleetv1alpha1.LocationValid
		setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionTrue, backupv1alpha1.ReasonValidationSucceeded, count)
		setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionTrue, reasonValid, count)
	case valid > 0:
		loc.Status.Phase = fleetv1alpha1.LocationLimitedAvailability
		msg := count + notValidOn(loc)
		setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionTrue, backupv1alpha1.ReasonValidationSucceeded, count)
		setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonLimitedAvailability, msg)
	case pending > 0:
		loc.Status.Phase = fleetv1alpha1.LocationValidationInProgress
		msg := fmt.Sprintf("%d of %d selected cluster(s) have not reported yet", pending, total)
		setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionUnknown, reasonValidationInProgress, msg)
		setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, reasonValidationInProgress, msg)
	default:
		loc.Status.Phase = fleetv1alpha1.LocationInvalid
		msg := count + notValidOn(loc)
		setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionFalse, fleetv1alpha1.ReasonNoValidCluster, msg)
		setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonNoValidCluster, msg)
	}
}

// notValidOn names, for a person, up to five clusters that are not valid and why.
func notValidOn(loc *fleetv1alpha1.BackupLocation) string {
	var names []string
	for _, c := range loc.Status.NotValid {
		n := c.Cluster + " (" + string(c.Phase)
		if c.Reason != "" {
			n += ": " + c.Reason
		}
		names = append(names, n+")")
	}
	more := int(loc.Status.NotValidOmitted)
	if len(names) > 5 {
		more += len(names) - 5
		names = names[:5]
	}
	msg := "; not valid on " + strings.Join(names, ", ")
	if more > 0 {
		msg += fmt.Sprintf(" and %d more", more)
	}
	return msg
}

// refuseTooMany makes the location Invalid with reason TooManyClusters and
// lists no cluster: no cluster may use it.
func refuseTooMany(loc *fleetv1alpha1.BackupLocation, selected int, why string) {
	msg := fmt.Sprintf("selects %d cluster(s), more than a location can serve (%s); no cluster may use it. "+
		"Narrow clusters, clusterSelector or placementRef, or split the clusters over several locations", selected, why)
	loc.Status.Phase = fleetv1alpha1.LocationInvalid
	loc.Status.NotValid, loc.Status.NotValidOmitted = nil, 0
	loc.Status.SelectedClusters, loc.Status.ValidClusters, loc.Status.PendingClusters, loc.Status.InvalidClusters = int32(selected), 0, 0, 0
	loc.Status.ObservedGeneration = loc.Generation
	setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionFalse, fleetv1alpha1.ReasonTooManyClusters, msg)
	setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonTooManyClusters, msg)
}
