package backupsync

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

// feedback is what each spoke BackupSync reports back.
var feedback = []dispatch.Field{
	{Name: "phase", Path: ".status.phase"},
	{Name: "found", Path: ".status.found"},
	{Name: "pages", Path: ".status.pages"},
	{Name: "startTime", Path: ".status.startTime"},
	{Name: "completionTime", Path: ".status.completionTime"},
	{Name: "observedGeneration", Path: ".status.observedGeneration"},
	{Name: "readyReason", Path: `.status.conditions[?(@.type=="Ready")].reason`},
	{Name: "readyMessage", Path: `.status.conditions[?(@.type=="Ready")].message`},
}

// pickCluster reads the location and chooses the cluster to list it from:
// the one already chosen, spec.cluster, or the first with a Valid
// connection. It fails s when none can be; while the location is still
// being validated it returns how long to wait.
func (r *Reconciler) pickCluster(ctx context.Context, s *fleetv1alpha1.BackupSync) (*fleetv1alpha1.BackupLocation, string, time.Duration, error) {
	loc := &fleetv1alpha1.BackupLocation{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: string(s.Spec.Location)}, loc); err != nil {
		if apierrors.IsNotFound(err) {
			fail(s, fleetv1alpha1.ReasonLocationNotFound, fmt.Sprintf("BackupLocation %q does not exist in namespace %s", s.Spec.Location, s.Namespace))
			return nil, "", 0, nil
		}
		return nil, "", 0, err
	}
	want := string(s.Status.Cluster)
	if want == "" {
		want = string(s.Spec.Cluster)
	}
	if want != "" {
		v, err := locations.Of(ctx, r, loc, want)
		if err != nil {
			return nil, "", 0, err
		}
		switch {
		case v.State == locations.Valid || dispatched(s):
			s.Status.Cluster = backupv1alpha1.ClusterName(want)
			return loc, want, 0, nil
		case v.State == locations.Validating:
			setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, v.Reason, v.Message)
			return loc, "", wait.Jitter(locationRecheck, 0.1), nil
		default:
			fail(s, v.Reason, v.Message)
			return loc, "", 0, nil
		}
	}
	valid, validating, err := locations.Usable(ctx, r, loc)
	if err != nil {
		return nil, "", 0, err
	}
	if len(valid) == 0 {
		if validating || loc.Status.ObservedGeneration != loc.Generation {
			setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonWaitingForLocation,
				fmt.Sprintf("BackupLocation %q is still being validated; no cluster has a Valid connection yet", loc.Name))
			return loc, "", wait.Jitter(locationRecheck, 0.1), nil
		}
		fail(s, fleetv1alpha1.ReasonNoValidCluster, fmt.Sprintf("no cluster has a Valid connection to BackupLocation %q, so none can list its container", loc.Name))
		return loc, "", 0, nil
	}
	s.Status.Cluster = backupv1alpha1.ClusterName(valid[0])
	return loc, valid[0], 0, nil
}

// dispatchSync applies the spoke BackupSync's ManifestWork and returns it as
// the hub has it.
func (r *Reconciler) dispatchSync(ctx context.Context, s *fleetv1alpha1.BackupSync, cluster string) (*workv1.ManifestWork, error) {
	owner := dispatch.HubObject{Kind: Kind, Namespace: s.Namespace, Name: s.Name, UID: s.UID, Generation: s.Generation}
	mw, err := dispatch.Work(cluster, owner, r.spokeSync(s), feedback, dispatch.WithResource("backupsyncs"))
	if err != nil {
		return nil, reconcile.TerminalError(err)
	}
	applied, err := dispatch.ApplyChanged(ctx, r.Client, mw)
	if err != nil {
		setCondition(s, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, fleetv1alpha1.ReasonDispatchFailed,
			fmt.Sprintf("the BackupSync could not be sent to cluster %s: %v", cluster, err))
		return nil, err
	}
	if applied {
		ctrl.LoggerFrom(ctx).Info("Dispatched BackupSync", "cluster", cluster, "work", mw.Name)
	}
	if !dispatched(s) {
		now := metav1.Now()
		s.Status.StartTime = &now
	}
	s.Status.Phase = backupv1alpha1.TaskInProgress
	setCondition(s, fleetv1alpha1.ConditionDispatched, metav1.ConditionTrue, fleetv1alpha1.ReasonDispatched,
		fmt.Sprintf("BackupSync %s was sent to cluster %s", SpokeName(s.Namespace, s.Name), cluster))
	setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonInProgress,
		fmt.Sprintf("cluster %s is listing the container", cluster))
	return mw, nil
}

// SpokeName is the name of the spoke BackupSync for hub sync namespace/name.
func SpokeName(namespace, name string) string { return dispatch.SpokeName(namespace, name) }

func (r *Reconciler) spokeSync(s *fleetv1alpha1.BackupSync) *backupv1alpha1.BackupSync {
	return &backupv1alpha1.BackupSync{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupSync"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        SpokeName(s.Namespace, s.Name),
			Annotations: map[string]string{backupv1alpha1.SyncLocationAnnotation: string(s.Spec.Location)},
			Labels: map[string]string{
				dispatch.LabelKind:      Kind,
				dispatch.LabelNamespace: dispatch.LabelValue(s.Namespace),
				dispatch.LabelName:      dispatch.LabelValue(s.Name),
				dispatch.LabelUID:       dispatch.LabelValue(string(s.UID)),
			},
		},
		Spec: backupv1alpha1.BackupSyncSpec{
			Target:   backupv1alpha1.ObjectName(backuplocation.TargetName(s.Namespace, string(s.Spec.Location))),
			Hub:      backupv1alpha1.HubObjectReference{Namespace: backupv1alpha1.NamespaceName(s.Namespace), Name: backupv1alpha1.ObjectName(s.Name), UID: s.UID},
			PageSize: r.PageSize,
		},
	}
}

// mirror reads the spoke's feedback. It returns true when the spoke has
// written its pages (Completed); a spoke that Failed fails s.
func (r *Reconciler) mirror(ctx context.Context, s *fleetv1alpha1.BackupSync, mw *workv1.ManifestWork) (bool, error) {
	st, ok := dispatch.Feedback(mw, s.Generation)
	if !ok {
		return false, nil
	}
	v := st.Values
	phase := backupv1alpha1.TaskPhase(v["phase"].String)
	if og, ok := v["observedGeneration"]; phase == "" || !ok || og.Int != st.ObjectGeneration {
		return false, nil
	}
	s.Status.Found = int32(v["found"].Int)
	switch phase {
	case backupv1alpha1.TaskCompleted:
		return true, nil
	case backupv1alpha1.TaskFailed:
		reason := v["readyReason"].String
		if reason == "" {
			reason = string(phase)
		}
		fail(s, reason, fmt.Sprintf("cluster %s could not list the container: %s", s.Status.Cluster, v["readyMessage"].String))
		ctrl.LoggerFrom(ctx).Info("Sync failed on the cluster", "cluster", s.Status.Cluster, "reason", reason)
	case backupv1alpha1.TaskInProgress:
		if v["readyReason"].String == backupv1alpha1.ReasonStorageError {
			setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonStorageError, fmt.Sprintf("cluster %s failed on storage listing the container and retries (it validates its connection to BackupLocation %q again): %s",
				s.Status.Cluster, s.Spec.Location, v["readyMessage"].String))
			return false, nil
		}
		fallthrough
	default:
		if msg := v["readyMessage"].String; msg != "" {
			setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionTrue, backupv1alpha1.ReasonInProgress,
				fmt.Sprintf("cluster %s is listing the container: %s", s.Status.Cluster, msg))
		}
	}
	return false, nil
}

// cleanUp releases the Lease, deletes the sync's work and catalog pages and
// removes the finalizer.
func (r *Reconciler) cleanUp(ctx context.Context, s *fleetv1alpha1.BackupSync) error {
	if !controllerutil.ContainsFinalizer(s, Finalizer) {
		return nil
	}
	if err := r.releaseLease(ctx, s); err != nil {
		return err
	}
	if err := r.deletePages(ctx, s); err != nil {
		return err
	}
	if c := string(s.Status.Cluster); c != "" {
		mw := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Namespace: c, Name: dispatch.Name(Kind, s.Namespace, s.Name)}}
		if err := r.Delete(ctx, mw); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	patch := client.MergeFrom(s.DeepCopy())
	controllerutil.RemoveFinalizer(s, Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, s, patch))
}

func finished(s *fleetv1alpha1.BackupSync) bool {
	return s.Status.Phase == backupv1alpha1.TaskCompleted || s.Status.Phase == backupv1alpha1.TaskFailed
}

func dispatched(s *fleetv1alpha1.BackupSync) bool {
	return meta.IsStatusConditionTrue(s.Status.Conditions, fleetv1alpha1.ConditionDispatched)
}

func initStatus(s *fleetv1alpha1.BackupSync) {
	if s.Status.Phase == "" {
		s.Status.Phase = backupv1alpha1.TaskPending
	}
	s.Status.ObservedGeneration = s.Generation
}

func fail(s *fleetv1alpha1.BackupSync, reason, msg string) {
	now := metav1.Now()
	s.Status.Phase = backupv1alpha1.TaskFailed
	s.Status.CompletionTime = &now
	setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(s, fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, reason, msg)
}

func setCondition(s *fleetv1alpha1.BackupSync, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation,
	})
}
