// Package locationstest gives a BackupLocation, in tests, the connection of
// a cluster as its work agent would report it.
package locationstest

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
)

// SetConnection writes loc's BackupTarget ManifestWork in the namespace of
// cluster (created if missing) for loc's current generation, with the status
// feedback a work agent reports for a BackupTarget in state st; a Pending
// state with no reason writes no feedback. loc must have its UID and
// generation, as read from the API server.
func SetConnection(ctx context.Context, c client.Client, loc *fleetv1alpha1.BackupLocation, cluster string, st backupv1alpha1.ValidationState) error {
	if err := client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cluster}})); err != nil {
		return err
	}
	target := &backupv1alpha1.BackupTarget{
		TypeMeta:   metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupTarget"},
		ObjectMeta: metav1.ObjectMeta{Name: dispatch.SpokeName(loc.Namespace, loc.Name)},
		Spec:       backupv1alpha1.BackupTargetSpec{StorageTarget: loc.Spec.StorageTarget},
	}
	owner := dispatch.HubObject{Kind: locations.Kind, Namespace: loc.Namespace, Name: loc.Name, UID: loc.UID, Generation: loc.Generation}
	mw, err := dispatch.Work(cluster, owner, target, locations.Feedback, dispatch.WithResource("backuptargets"))
	if err != nil {
		return err
	}
	if err := dispatch.Apply(ctx, c, mw); err != nil {
		return err
	}
	status := workv1.ManifestWorkStatus{}
	if st.Phase != backupv1alpha1.TargetPending || st.Reason != "" {
		status = agentStatus(mw, target.Name, st)
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, mw, client.RawPatch(types.MergePatchType, patch))
}

// SetConnections gives loc exactly conns: SetConnection for each, and
// loc's works in the namespaces of other clusters deleted.
func SetConnections(ctx context.Context, c client.Client, loc *fleetv1alpha1.BackupLocation, conns ...fleetv1alpha1.ClusterConnection) error {
	keep := map[string]bool{}
	for _, conn := range conns {
		keep[conn.Cluster] = true
		if err := SetConnection(ctx, c, loc, conn.Cluster, conn.ValidationState); err != nil {
			return err
		}
	}
	list := &workv1.ManifestWorkList{}
	if err := c.List(ctx, list, locations.WorkLabels(loc)); err != nil {
		return err
	}
	for i := range list.Items {
		if !keep[list.Items[i].Namespace] {
			if err := client.IgnoreNotFound(c.Delete(ctx, &list.Items[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// agentStatus is the status a work agent writes on mw once its BackupTarget
// target (generation 1) reports st.
func agentStatus(mw *workv1.ManifestWork, target string, st backupv1alpha1.ValidationState) workv1.ManifestWorkStatus {
	now := metav1.Now()
	str := func(name, v string) workv1.FeedbackValue {
		return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.String, String: &v}}
	}
	num := func(name string, v int64) workv1.FeedbackValue {
		return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.Integer, Integer: &v}}
	}
	values := []workv1.FeedbackValue{
		str(dispatch.FeedbackGeneration, mw.Annotations[dispatch.AnnotationGeneration]),
		num(dispatch.FeedbackObjectGeneration, 1),
		num("observedGeneration", 1),
		str("phase", string(st.Phase)),
		str("reason", st.Reason),
		str("message", st.Message),
	}
	if st.LastValidationTime != nil {
		values = append(values, str("lastValidationTime", st.LastValidationTime.UTC().Format(time.RFC3339)))
	}
	applied := metav1.Condition{Type: workv1.WorkApplied, Status: metav1.ConditionTrue, Reason: "AppliedManifestWorkComplete", LastTransitionTime: now, ObservedGeneration: mw.Generation}
	return workv1.ManifestWorkStatus{
		Conditions: []metav1.Condition{applied},
		ResourceStatus: workv1.ManifestResourceStatus{Manifests: []workv1.ManifestCondition{{
			ResourceMeta:    workv1.ManifestResourceMeta{Ordinal: 0, Group: backupv1alpha1.GroupVersion.Group, Version: backupv1alpha1.GroupVersion.Version, Kind: "BackupTarget", Resource: "backuptargets", Name: target},
			StatusFeedbacks: workv1.StatusFeedbackResult{Values: values},
			Conditions:      []metav1.Condition{{Type: workv1.ManifestApplied, Status: metav1.ConditionTrue, Reason: "AppliedManifestComplete", LastTransitionTime: now}},
		}}},
	}
}
