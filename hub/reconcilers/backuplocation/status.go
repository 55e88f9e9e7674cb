package backuplocation

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Reasons of this package's conditions and connections.
const (
	// reasonWaitingForCluster: the cluster has not reported on the current
	// BackupTarget yet.
	reasonWaitingForCluster = "WaitingForCluster"
	// reasonValidationInProgress: some selected clusters have not reported yet.
	reasonValidationInProgress = "ValidationInProgress"
	// reasonValid: every selected cluster can use the location.
	reasonValid = "Valid"
	// reasonNotApplied: the cluster's work agent could not apply the BackupTarget.
	reasonNotApplied = "NotApplied"
)

// summarize sets the per-cluster connections from the works' feedback, and the
// counts, phase and conditions from the connections.
func summarize(loc *fleetv1alpha1.BackupLocation, clusters []string, works map[string]*workv1.ManifestWork, identities map[string]backupv1alpha1.AzureWorkloadIdentity) {
	previous := make(map[string]backupv1alpha1.ValidationState, len(loc.Status.Clusters))
	for _, c := range loc.Status.Clusters {
		// A cluster refused before has never validated this location.
		if c.Reason != fleetv1alpha1.ReasonClusterNotAllowed {
			previous[c.Cluster] = c.ValidationState
		}
	}
	conns := make([]fleetv1alpha1.ClusterConnection, 0, len(clusters))
	for _, cluster := range clusters {
		state, ok := previous[cluster]
		if !ok {
			state = backupv1alpha1.ValidationState{
				Phase:   backupv1alpha1.TargetPending,
				Reason:  reasonWaitingForCluster,
				Message: "waiting for the cluster to validate the BackupTarget " + TargetName(loc.Namespace, loc.Name),
			}
		}
		if fed, ok := fedBack(works[cluster], loc.Generation); ok {
			state = fed
		} else if failed, ok := notApplied(works[cluster], loc.Generation); ok {
			state = failed
		}
		conns = append(conns, fleetv1alpha1.ClusterConnection{Cluster: cluster, ClientID: identities[cluster].ClientID, ValidationState: state})
	}
	loc.Status.Clusters = conns
	loc.Status.ObservedGeneration = loc.Generation
	aggregate(loc)
}

// refuseClusters lists the selected clusters that the namespace may not use
// as Invalid connections with reason ClusterNotAllowed (nothing was sent to
// them), and makes the location not Ready for that reason.
func refuseClusters(loc *fleetv1alpha1.BackupLocation, tenant *tenancy.Tenant, refused []string) {
	if len(refused) == 0 {
		return
	}
	var first string
	for _, cluster := range refused {
		r := tenant.Cluster(cluster)
		if first == "" {
			first = r.Message
		}
		loc.Status.Clusters = append(loc.Status.Clusters, fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: backupv1alpha1.ValidationState{
			Phase: backupv1alpha1.TargetInvalid, Reason: r.Reason, Message: r.Message + "; nothing was sent to the cluster",
		}})
	}
	sort.Slice(loc.Status.Clusters, func(i, j int) bool { return loc.Status.Clusters[i].Cluster < loc.Status.Clusters[j].Cluster })
	aggregate(loc)
	msg := fmt.Sprintf("%d selected cluster(s) may not be used from namespace %s, nothing was sent to them: %s (%s)",
		len(refused), loc.Namespace, summarizeNames(refused), first)
	setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonClusterNotAllowed, msg)
}

// notApplied is a Failed connection when the cluster's work agent could not
// apply the work of this generation (e.g. the spoke's CRDs are missing): the
// cluster never got the BackupTarget, so it cannot validate it.
func notApplied(mw *workv1.ManifestWork, generation int64) (backupv1alpha1.ValidationState, bool) {
	if mw == nil || mw.Annotations[dispatch.AnnotationGeneration] != strconv.FormatInt(generation, 10) {
		return backupv1alpha1.ValidationState{}, false
	}
	applied := meta.FindStatusCondition(mw.Status.Conditions, workv1.WorkApplied)
	if applied == nil || applied.Status != metav1.ConditionFalse || applied.ObservedGeneration != mw.Generation {
		return backupv1alpha1.ValidationState{}, false
	}
	return backupv1alpha1.ValidationState{
		Phase:              backupv1alpha1.TargetFailed,
		Reason:             reasonNotApplied,
		Message:            fmt.Sprintf("the cluster's work agent could not apply the BackupTarget (ManifestWork %s): %s", mw.Name, applied.Message),
		LastValidationTime: &applied.LastTransitionTime,
	}, true
}

// fedBack is the validation state the cluster reported on mw, when that
// report describes the BackupTarget of this generation: dispatch vouches that
// the values were read from it, and its observedGeneration says its status
// is about its current spec.
func fedBack(mw *workv1.ManifestWork, generation int64) (backupv1alpha1.ValidationState, bool) {
	st, ok := dispatch.Feedback(mw, generation)
	if !ok {
		return backupv1alpha1.ValidationState{}, false
	}
	observed, hasObserved := st.Values["observedGeneration"]
	phase := st.Values["phase"].String
	if !hasObserved || observed.Int != st.ObjectGeneration || st.ObjectGeneration == 0 || phase == "" {
		return backupv1alpha1.ValidationState{}, false
	}
	state := backupv1alpha1.ValidationState{
		Phase:   backupv1alpha1.TargetPhase(phase),
		Reason:  st.Values["reason"].String,
		Message: dispatch.Shorten(st.Values["message"].String, fleetv1alpha1.MaxConnectionMessage),
	}
	if v, ok := st.Values["lastValidationTime"]; ok && v.String != "" {
		if t, err := time.Parse(time.RFC3339, v.String); err == nil {
			state.LastValidationTime = &metav1.Time{Time: t}
		}
	}
	return state, true
}

// aggregate sets counts, phase and the Validated and Ready conditions from
// the connections, as BackupLocationPhase defines them.
func aggregate(loc *fleetv1alpha1.BackupLocation) {
	var valid, pending int
	for _, c := range loc.Status.Clusters {
		switch c.Phase {
		case backupv1alpha1.TargetValid:
			valid++
		case backupv1alpha1.TargetPending, backupv1alpha1.TargetInProgress, "":
			pending++
		}
	}
	total := len(loc.Status.Clusters)
	loc.Status.SelectedClusters, loc.Status.ValidClusters = int32(total), int32(valid)
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
	for _, c := range loc.Status.Clusters {
		if c.Phase != backupv1alpha1.TargetValid {
			n := c.Cluster + " (" + string(c.Phase)
			if c.Reason != "" {
				n += ": " + c.Reason
			}
			names = append(names, n+")")
		}
	}
	return "; not valid on " + summarizeNames(names)
}

func hasPending(loc *fleetv1alpha1.BackupLocation) bool {
	for _, c := range loc.Status.Clusters {
		if c.Phase == backupv1alpha1.TargetPending || c.Phase == backupv1alpha1.TargetInProgress {
			return true
		}
	}
	return false
}

// Lengths the connections' texts are cut to when status.clusters would not
// fit in fleetv1alpha1.MaxClustersBytes.
const (
	compactMessage = 128
	compactReason  = 64
)

// fitClusters keeps status.clusters within fleetv1alpha1.MaxClustersBytes:
// step by step, as far as needed, it drops the messages of Valid connections,
// cuts the others' messages to compactMessage characters, drops them, drops
// the clientIDs that are spec.identity's, and cuts reasons to compactReason
// characters. Every cluster keeps its phase.
// A list that still does not fit is refused (refuseTooMany).
func fitClusters(loc *fleetv1alpha1.BackupLocation) {
	conns := loc.Status.Clusters
	steps := []func(c *fleetv1alpha1.ClusterConnection){
		func(c *fleetv1alpha1.ClusterConnection) {
			if c.Phase == backupv1alpha1.TargetValid {
				c.Message = ""
			}
		},
		func(c *fleetv1alpha1.ClusterConnection) { c.Message = dispatch.Shorten(c.Message, compactMessage) },
		func(c *fleetv1alpha1.ClusterConnection) { c.Message = "" },
		func(c *fleetv1alpha1.ClusterConnection) {
			if c.ClientID == loc.Spec.Identity.ClientID {
				c.ClientID = ""
			}
		},
		func(c *fleetv1alpha1.ClusterConnection) { c.Reason = dispatch.Shorten(c.Reason, compactReason) },
	}
	for _, step := range steps {
		if clustersBytes(conns) <= fleetv1alpha1.MaxClustersBytes {
			return
		}
		for i := range conns {
			step(&conns[i])
		}
	}
	if n := clustersBytes(conns); n > fleetv1alpha1.MaxClustersBytes {
		refuseTooMany(loc, len(conns), fmt.Sprintf("their connections take %d bytes in its status even without messages, more than the %d it may hold", n, fleetv1alpha1.MaxClustersBytes))
	}
}

// clustersBytes is the size of conns as JSON.
func clustersBytes(conns []fleetv1alpha1.ClusterConnection) int {
	data, err := json.Marshal(conns)
	if err != nil {
		return math.MaxInt
	}
	return len(data)
}

// refuseTooMany makes the location Invalid with reason TooManyClusters and
// lists no cluster: its status cannot hold the selected clusters'
// connections, so no cluster may use it.
func refuseTooMany(loc *fleetv1alpha1.BackupLocation, selected int, why string) {
	msg := fmt.Sprintf("selects %d cluster(s), more than a location can serve (%s); no cluster may use it. "+
		"Narrow clusters, clusterSelector or placementRef, or split the clusters over several locations", selected, why)
	loc.Status.Phase = fleetv1alpha1.LocationInvalid
	loc.Status.Clusters = nil
	loc.Status.SelectedClusters, loc.Status.ValidClusters = int32(selected), 0
	loc.Status.ObservedGeneration = loc.Generation
	setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionFalse, fleetv1alpha1.ReasonTooManyClusters, msg)
	setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonTooManyClusters, msg)
}
