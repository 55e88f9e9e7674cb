package backupcluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/spoke/heartbeat"
)

// maxWriteAttempts bounds the retries of a status write that met a newer object.
const maxWriteAttempts = 4

// fallbackLeaseDuration is the heartbeat Lease's duration when the work has
// none to report (e.g. the work was made anew): the spoke's default.
var fallbackLeaseDuration = time.Duration(heartbeat.LeaseDuration(heartbeat.DefaultInterval)) * time.Second

// report is what the agent work says about the spoke.
type report struct {
	// renewed is the heartbeat Lease's renewTime; nil when none was fed back.
	renewed       *metav1.Time
	leaseDuration time.Duration
	version       string
	// hubAccess is the spoke's check of its hub credential: "ok" or why not;
	// empty when the spoke did not report one.
	hubAccess string
	// applied is the work's Applied condition; nil until the agent sets it.
	applied *metav1.Condition
	work    string
}

// readReport reads the heartbeat Lease's feedback and the Applied condition
// from the agent work.
func readReport(mw *workv1.ManifestWork) report {
	rep := report{work: mw.Namespace + "/" + mw.Name}
	rep.applied = meta.FindStatusCondition(mw.Status.Conditions, workv1.WorkApplied)
	for _, m := range mw.Status.ResourceStatus.Manifests {
		rm := m.ResourceMeta
		if rm.Kind != "Lease" || rm.Namespace != SpokeNamespace || rm.Name != heartbeat.LeaseName {
			continue
		}
		for _, fv := range m.StatusFeedbacks.Values {
			v := fv.Value
			switch {
			case fv.Name == feedbackRenewTime && v.Type == workv1.String && v.String != nil:
				rep.renewed = dispatch.Time(dispatch.Value{Type: v.Type, String: *v.String})
			case fv.Name == feedbackLeaseDuration && v.Type == workv1.Integer && v.Integer != nil && *v.Integer > 0:
				rep.leaseDuration = time.Duration(*v.Integer) * time.Second
			case fv.Name == feedbackVersion && v.Type == workv1.String && v.String != nil:
				rep.version = *v.String
			case fv.Name == feedbackHubAccess && v.Type == workv1.String && v.String != nil:
				rep.hubAccess = *v.String
			}
		}
	}
	return rep
}

// setHealth sets, from the work's report, the last heartbeat, the spoke's
// version, the Available condition and (while the cluster is managed) the
// phase: Online while the heartbeat Lease plus grace has not run out,
// Offline after that, Pending while no heartbeat ever came. It returns when
// an Online cluster turns Offline unless a heartbeat comes first (zero
// otherwise).
func (r *Reconciler) setHealth(bc *fleetv1alpha1.BackupCluster, rep report, now time.Time) (offlineAt time.Time) {
	st := &bc.Status
	if rep.renewed != nil && (st.LastHeartbeatTime == nil || rep.renewed.After(st.LastHeartbeatTime.Time)) {
		st.LastHeartbeatTime = rep.renewed.DeepCopy()
	}
	if rep.version != "" {
		st.AgentVersion = rep.version
	}
	lease := rep.leaseDuration
	if lease == 0 {
		lease = fallbackLeaseDuration
	}
	notApplied := rep.applied != nil && rep.applied.Status == metav1.ConditionFalse
	cond := metav1.Condition{Type: fleetv1alpha1.ConditionAvailable, ObservedGeneration: bc.Generation}
	var phase fleetv1alpha1.BackupClusterPhase
	switch last := st.LastHeartbeatTime; {
	case last == nil && notApplied:
		phase = fleetv1alpha1.ClusterPending
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonAgentNotApplied
		cond.Message = fmt.Sprintf("The work agent could not apply ManifestWork %s, so the spoke is not installed: %s", rep.work, rep.applied.Message)
	case last == nil:
		phase = fleetv1alpha1.ClusterPending
		cond.Status, cond.Reason = metav1.ConditionUnknown, fleetv1alpha1.ReasonWaitingForAgent
		cond.Message = fmt.Sprintf("Waiting for the spoke's first heartbeat through ManifestWork %s", rep.work)
	case now.Before(last.Add(lease + r.offlineGrace())):
		phase = fleetv1alpha1.ClusterOnline
		offlineAt = last.Add(lease + r.offlineGrace())
		cond.Status, cond.Reason = metav1.ConditionTrue, fleetv1alpha1.ReasonAgentReporting
		cond.Message = fmt.Sprintf("The spoke (version %s) renewed its heartbeat at %s", orUnknown(st.AgentVersion), last.UTC().Format(time.RFC3339))
		if notApplied {
			cond.Message += fmt.Sprintf("; but the work agent could not apply the latest ManifestWork %s: %s", rep.work, rep.applied.Message)
		}
	case notApplied:
		phase = fleetv1alpha1.ClusterOffline
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonAgentNotApplied
		cond.Message = fmt.Sprintf("No heartbeat since %s, and the work agent could not apply ManifestWork %s: %s",
			last.UTC().Format(time.RFC3339), rep.work, rep.applied.Message)
	default:
		phase = fleetv1alpha1.ClusterOffline
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonHeartbeatStale
		cond.Message = fmt.Sprintf("No heartbeat since %s (its Lease of %s and %s of grace ran out at %s): the OCM work agent or the Lifeboat spoke manager is not running on the cluster",
			last.UTC().Format(time.RFC3339), lease, r.offlineGrace(), last.Add(lease+r.offlineGrace()).UTC().Format(time.RFC3339))
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	setHubAccess(bc, rep)
	if bc.Spec.Managed {
		st.Phase = phase
		st.ObservedGeneration = bc.Generation
	} else {
		offlineAt = time.Time{}
	}
	return offlineAt
}

// setHubAccess sets the HubAccess condition from the spoke's own check of
// its hub credential, as its last heartbeat reported it.
func setHubAccess(bc *fleetv1alpha1.BackupCluster, rep report) {
	cond := metav1.Condition{Type: fleetv1alpha1.ConditionHubAccess, ObservedGeneration: bc.Generation}
	switch rep.hubAccess {
	case "":
		if rep.renewed == nil {
			return
		}
		cond.Status, cond.Reason = metav1.ConditionUnknown, fleetv1alpha1.ReasonHubAccessNotReported
		cond.Message = "The spoke does not report whether its hub credential works (an older spoke version?)"
	case "ok":
		cond.Status, cond.Reason = metav1.ConditionTrue, fleetv1alpha1.ReasonHubAccessGranted
		cond.Message = "The spoke reaches the hub with its credential and may write BackupCatalogs in its cluster namespace"
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonHubAccessDenied
		cond.Message = "The spoke cannot use its hub credential, so its catalogs cannot reach the hub: " + rep.hubAccess
	}
	meta.SetStatusCondition(&bc.Status.Conditions, cond)
}

// setUnmanaged marks the Available condition of an unmanaged cluster; its
// phase is discovery's (Unmanaged) and stays.
func setUnmanaged(bc *fleetv1alpha1.BackupCluster) {
	meta.SetStatusCondition(&bc.Status.Conditions, metav1.Condition{
		Type: fleetv1alpha1.ConditionAvailable, Status: metav1.ConditionUnknown, Reason: fleetv1alpha1.ReasonClusterUnmanaged, ObservedGeneration: bc.Generation,
		Message: "The cluster is unmanaged: its hub credential is revoked and its heartbeat is no longer read; the agent ManifestWork stays as it was",
	})
}

// locations are the cluster's connections to the BackupLocations whose
// status lists it: the first MaxStatusLocations by namespace and name, their
// messages cut to MaxConnectionMessage, and how many more there are. Any
// tenant can make locations that select a cluster; this keeps the
// fleet-level BackupCluster within etcd's object size whatever they do.
func (r *Reconciler) locations(ctx context.Context, cluster string) ([]fleetv1alpha1.LocationConnection, int32, error) {
	list := &fleetv1alpha1.BackupLocationList{}
	if err := r.List(ctx, list, client.MatchingFields{indexLocationClusters: cluster}); err != nil {
		return nil, 0, err
	}
	var out []fleetv1alpha1.LocationConnection
	for _, loc := range list.Items {
		for _, c := range loc.Status.Clusters {
			if c.Cluster == cluster {
				conn := fleetv1alpha1.LocationConnection{Namespace: loc.Namespace, Name: loc.Name, ValidationState: *c.ValidationState.DeepCopy()}
				conn.Message = dispatch.Shorten(conn.Message, fleetv1alpha1.MaxConnectionMessage)
				out = append(out, conn)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b fleetv1alpha1.LocationConnection) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(out) <= fleetv1alpha1.MaxStatusLocations {
		return out, 0, nil
	}
	return out[:fleetv1alpha1.MaxStatusLocations], int32(len(out) - fleetv1alpha1.MaxStatusLocations), nil
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

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
