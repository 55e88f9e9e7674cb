package locations

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// Kind is the hub kind dispatch labels a BackupLocation's ManifestWorks with.
const Kind = "BackupLocation"

// Feedback is what each BackupTarget reports back to the hub through its
// ManifestWork: a cluster's connection to the location.
var Feedback = []dispatch.Field{
	{Name: "phase", Path: ".status.phase"},
	{Name: "reason", Path: ".status.reason"},
	{Name: "message", Path: ".status.message"},
	{Name: "lastValidationTime", Path: ".status.lastValidationTime"},
	{Name: "observedGeneration", Path: ".status.observedGeneration"},
}

// Reasons of connections that the hub, not the cluster, decides.
const (
	// ReasonWaitingForCluster: the cluster has not reported on the current
	// BackupTarget yet.
	ReasonWaitingForCluster = "WaitingForCluster"
	// ReasonNotApplied: the cluster's work agent could not apply the BackupTarget.
	ReasonNotApplied = "NotApplied"
)

// WorkName is the name of the BackupTarget ManifestWork of loc in every
// cluster's namespace.
func WorkName(loc *fleetv1alpha1.BackupLocation) string {
	return dispatch.Name(Kind, loc.Namespace, loc.Name)
}

// WorkLabels select all of loc's BackupTarget ManifestWorks.
func WorkLabels(loc *fleetv1alpha1.BackupLocation) client.MatchingLabels {
	return client.MatchingLabels{
		dispatch.LabelKind:      dispatch.LabelValue(Kind),
		dispatch.LabelNamespace: dispatch.LabelValue(loc.Namespace),
		dispatch.LabelName:      dispatch.LabelValue(loc.Name),
	}
}

// StateOf is the connection that the BackupTarget ManifestWork mw reports
// for the location's spec of generation: what the cluster fed back about
// that spec, Failed when its work agent could not apply it, else Pending.
func StateOf(mw *workv1.ManifestWork, generation int64) backupv1alpha1.ValidationState {
	if fed, ok := fedBack(mw, generation); ok {
		return fed
	}
	if failed, ok := notApplied(mw, generation); ok {
		return failed
	}
	name := ""
	if mw != nil {
		name = mw.Name
	}
	return backupv1alpha1.ValidationState{
		Phase:   backupv1alpha1.TargetPending,
		Reason:  ReasonWaitingForCluster,
		Message: fmt.Sprintf("waiting for the cluster to validate the BackupTarget of ManifestWork %s", name),
	}
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

// notApplied is a Failed connection when the cluster's work agent could not
// apply the work of this generation (e.g. the spoke's CRDs are missing): the
// cluster never got the BackupTarget, so it cannot validate it.
func notApplied(mw *workv1.ManifestWork, generation int64) (backupv1alpha1.ValidationState, bool) {
	if mw == nil || mw.DeletionTimestamp != nil || mw.Annotations[dispatch.AnnotationGeneration] != strconv.FormatInt(generation, 10) {
		return backupv1alpha1.ValidationState{}, false
	}
	applied := meta.FindStatusCondition(mw.Status.Conditions, workv1.WorkApplied)
	if applied == nil || applied.Status != metav1.ConditionFalse || applied.ObservedGeneration != mw.Generation {
		return backupv1alpha1.ValidationState{}, false
	}
	return backupv1alpha1.ValidationState{
		Phase:              backupv1alpha1.TargetFailed,
		Reason:             ReasonNotApplied,
		Message:            fmt.Sprintf("the cluster's work agent could not apply the BackupTarget (ManifestWork %s): %s", mw.Name, applied.Message),
		LastValidationTime: &applied.LastTransitionTime,
	}, true
}

// Connection is loc's connection from cluster: the state its BackupTarget
// ManifestWork in the cluster's namespace reports, or, for a cluster the
// namespace may not use (it has no work), the refusal in loc's
// status.notValid; nil when the cluster has neither.
func Connection(ctx context.Context, r client.Reader, loc *fleetv1alpha1.BackupLocation, cluster string) (*fleetv1alpha1.ClusterConnection, error) {
	mw := &workv1.ManifestWork{}
	err := r.Get(ctx, client.ObjectKey{Namespace: cluster, Name: WorkName(loc)}, mw)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && !mw.DeletionTimestamp.IsZero()):
		for _, c := range loc.Status.NotValid {
			if c.Cluster == cluster && c.Reason == fleetv1alpha1.ReasonClusterNotAllowed {
				return c.DeepCopy(), nil
			}
		}
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: StateOf(mw, loc.Generation)}, nil
}

// Connections are loc's connections from every cluster that has its
// BackupTarget ManifestWork, and the refusals in its status.notValid, by
// cluster name.
func Connections(ctx context.Context, r client.Reader, loc *fleetv1alpha1.BackupLocation) ([]fleetv1alpha1.ClusterConnection, error) {
	list := &workv1.ManifestWorkList{}
	if err := r.List(ctx, list, WorkLabels(loc)); err != nil {
		return nil, err
	}
	out := make([]fleetv1alpha1.ClusterConnection, 0, len(list.Items))
	has := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		mw := &list.Items[i]
		if !mw.DeletionTimestamp.IsZero() {
			continue
		}
		has[mw.Namespace] = true
		out = append(out, fleetv1alpha1.ClusterConnection{Cluster: mw.Namespace, ValidationState: StateOf(mw, loc.Generation)})
	}
	for _, c := range loc.Status.NotValid {
		if c.Reason == fleetv1alpha1.ReasonClusterNotAllowed && !has[c.Cluster] {
			out = append(out, *c.DeepCopy())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out, nil
}
