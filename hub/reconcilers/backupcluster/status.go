package backupcluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/addon"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
)

// maxWriteAttempts bounds the retries of a status write that met a newer object.
const maxWriteAttempts = 4

// setHealth sets, from the cluster's lifeboat ManagedClusterAddOn (nil when
// there is none), the Available and HubAccess conditions and the phase:
// Online while the add-on is Available, Offline once it is not (or is gone)
// after having been Online, Pending before.
func setHealth(bc *fleetv1alpha1.BackupCluster, mca *addonv1alpha1.ManagedClusterAddOn) {
	st := &bc.Status
	seen := st.Phase == fleetv1alpha1.ClusterOnline || st.Phase == fleetv1alpha1.ClusterOffline
	lost := fleetv1alpha1.ClusterPending
	if seen {
		lost = fleetv1alpha1.ClusterOffline
	}
	cond := metav1.Condition{Type: fleetv1alpha1.ConditionAvailable, ObservedGeneration: bc.Generation}
	var phase fleetv1alpha1.BackupClusterPhase
	var available *metav1.Condition
	if mca != nil {
		available = meta.FindStatusCondition(mca.Status.Conditions, addonv1alpha1.ManagedClusterAddOnConditionAvailable)
	}
	switch {
	case mca == nil || !mca.DeletionTimestamp.IsZero():
		phase = lost
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonAddOnNotInstalled
		cond.Message = fmt.Sprintf("The cluster has no ManagedClusterAddOn %s: the placement of ClusterManagementAddOn %s does not select it, so the spoke is not installed", addon.Name, addon.Name)
	case available == nil || (available.Status == metav1.ConditionUnknown && !seen):
		phase = lost
		cond.Status, cond.Reason = metav1.ConditionUnknown, fleetv1alpha1.ReasonWaitingForAgent
		cond.Message = fmt.Sprintf("ManagedClusterAddOn %s/%s is installed and not yet Available", mca.Namespace, mca.Name)
		if available != nil {
			cond.Message += ": " + available.Message
		}
	case available.Status == metav1.ConditionTrue:
		phase = fleetv1alpha1.ClusterOnline
		cond.Status, cond.Reason = metav1.ConditionTrue, fleetv1alpha1.ReasonAddOnAvailable
		cond.Message = fmt.Sprintf("ManagedClusterAddOn %s/%s is Available: %s", mca.Namespace, mca.Name, available.Message)
	default:
		phase = lost
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonAddOnUnavailable
		cond.Message = fmt.Sprintf("ManagedClusterAddOn %s/%s is not Available (%s): %s", mca.Namespace, mca.Name, available.Reason, available.Message)
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	setHubAccess(bc, mca)
	st.Phase = phase
	st.ObservedGeneration = bc.Generation
}

// setHubAccess sets the HubAccess condition from the add-on's registration:
// OCM applied the spoke's hub permissions and issued its certificate.
func setHubAccess(bc *fleetv1alpha1.BackupCluster, mca *addonv1alpha1.ManagedClusterAddOn) {
	cond := metav1.Condition{Type: fleetv1alpha1.ConditionHubAccess, ObservedGeneration: bc.Generation}
	var registered, issued *metav1.Condition
	if mca != nil {
		registered = meta.FindStatusCondition(mca.Status.Conditions, addonv1alpha1.ManagedClusterAddOnRegistrationApplied)
		issued = meta.FindStatusCondition(mca.Status.Conditions, clusterCertificateRotated)
	}
	switch {
	case mca == nil:
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonHubAccessDenied
		cond.Message = "The spoke has no hub credential: the lifeboat add-on is not installed on the cluster"
	case registered != nil && registered.Status == metav1.ConditionTrue && issued != nil && issued.Status == metav1.ConditionTrue:
		cond.Status, cond.Reason = metav1.ConditionTrue, fleetv1alpha1.ReasonHubAccessGranted
		cond.Message = "OCM registered the spoke: its hub certificate is issued (" + issued.Message + ") and may write BackupCatalogs in the cluster namespace"
	case registered != nil && registered.Status == metav1.ConditionFalse:
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonHubAccessDenied
		cond.Message = "The spoke's registration with the hub failed: " + registered.Message
	case issued != nil && issued.Status == metav1.ConditionFalse:
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonHubAccessDenied
		cond.Message = "The spoke's hub certificate is not issued: " + issued.Message
	default:
		cond.Status, cond.Reason = metav1.ConditionUnknown, fleetv1alpha1.ReasonWaitingForAgent
		cond.Message = "Waiting for OCM to register the spoke and issue its hub certificate"
	}
	meta.SetStatusCondition(&bc.Status.Conditions, cond)
}

// clusterCertificateRotated is the condition OCM's registration agent sets on
// a ManagedClusterAddOn when it holds a signed certificate for it.
const clusterCertificateRotated = "ClusterCertificateRotated"

// setUnmanaged marks the Available condition of an unmanaged cluster; its
// phase is discovery's (Unmanaged) and stays.
func setUnmanaged(bc *fleetv1alpha1.BackupCluster) {
	meta.SetStatusCondition(&bc.Status.Conditions, metav1.Condition{
		Type: fleetv1alpha1.ConditionAvailable, Status: metav1.ConditionUnknown, Reason: fleetv1alpha1.ReasonClusterUnmanaged, ObservedGeneration: bc.Generation,
		Message: "The cluster is unmanaged; its spoke stays installed only while the lifeboat add-on's placement selects it (the default placement selects the clusters discovery onboards)",
	})
}

// locations are the cluster's connections to the BackupLocations that sent
// it their BackupTarget or refused it (locations.Connection), by namespace
// and name, their messages cut to MaxConnectionMessage.
func (r *Reconciler) locations(ctx context.Context, cluster string) ([]fleetv1alpha1.LocationConnection, error) {
	list := &fleetv1alpha1.BackupLocationList{}
	if err := r.List(ctx, list); err != nil {
		return nil, err
	}
	var out []fleetv1alpha1.LocationConnection
	for i := range list.Items {
		loc := &list.Items[i]
		c, err := locations.Connection(ctx, r, loc, cluster)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		conn := fleetv1alpha1.LocationConnection{Namespace: loc.Namespace, Name: loc.Name, ValidationState: c.ValidationState}
		conn.Message = dispatch.Shorten(conn.Message, fleetv1alpha1.MaxConnectionMessage)
		out = append(out, conn)
	}
	slices.SortFunc(out, func(a, b fleetv1alpha1.LocationConnection) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// setLocations shows conns, the cluster's connections (Reconciler.locations),
// in bc's status: the first MaxStatusLocations by namespace and name, and how
// many more there are. Any tenant can make locations that select a cluster;
// this keeps the fleet-level BackupCluster within etcd's object size whatever
// they do.
//
// A connection the cluster has not reported on yet (the hub's own
// WaitingForCluster) is left out unless the status lists that location
// already: a new location's fan-out then costs each cluster one status
// write, when it reports, instead of up to two, and the location's own status
// counts its pending clusters. A listed connection is always brought up to
// date, so a state the cluster reported about an earlier spec never stays.
func setLocations(bc *fleetv1alpha1.BackupCluster, conns []fleetv1alpha1.LocationConnection) {
	listed := func(c fleetv1alpha1.LocationConnection) bool {
		return slices.ContainsFunc(bc.Status.Locations, func(l fleetv1alpha1.LocationConnection) bool {
			return l.Namespace == c.Namespace && l.Name == c.Name
		})
	}
	var shown []fleetv1alpha1.LocationConnection
	for _, c := range conns {
		if c.Reason == locations.ReasonWaitingForCluster && !listed(c) {
			continue
		}
		shown = append(shown, c)
	}
	bc.Status.Locations, bc.Status.LocationsOmitted = shown, 0
	if len(shown) > fleetv1alpha1.MaxStatusLocations {
		bc.Status.Locations = shown[:fleetv1alpha1.MaxStatusLocations]
		bc.Status.LocationsOmitted = int32(len(shown) - fleetv1alpha1.MaxStatusLocations)
	}
}

// writeStatus patches the BackupCluster's status after mutate, which must be
// a function of the object it is given: on a conflict with a newer object
// (discovery writes this status too) it reads the object again and retries.
// It returns the phase before and after.
func (r *Reconciler) writeStatus(ctx context.Context, bc *fleetv1alpha1.BackupCluster, mutate func(*fleetv1alpha1.BackupCluster)) (before, after fleetv1alpha1.BackupClusterPhase, err error) {
	current := bc
	for attempt := 1; ; attempt++ {
		updated := current.DeepCopy()
		mutate(updated)
		if equality.Semantic.DeepEqual(current.Status, updated.Status) {
			return current.Status.Phase, updated.Status.Phase, nil
		}
		err := r.Status().Patch(ctx, updated, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			return current.Status.Phase, updated.Status.Phase, nil
		}
		if !apierrors.IsConflict(err) || attempt == maxWriteAttempts {
			return "", "", client.IgnoreNotFound(err)
		}
		current = &fleetv1alpha1.BackupCluster{}
		if err := r.reader().Get(ctx, client.ObjectKeyFromObject(bc), current); err != nil {
			return "", "", client.IgnoreNotFound(err)
		}
	}
}

// availableMessage is the message of bc's Available condition.
func availableMessage(bc *fleetv1alpha1.BackupCluster) string {
	if c := meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionAvailable); c != nil {
		return c.Message
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
