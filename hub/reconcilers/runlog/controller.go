// Package runlog fetches the log of a Backup or Restore for a hub RunLog:
// the log lives in the bucket, which the hub cannot read, so a cluster with
// a Valid connection to the backup's location, and that the RunLog's
// namespace may use, reads it (a spoke RunLog sent by ManifestWork) and
// writes its end as a catalog page into its namespace on the hub; the hub
// copies it into the RunLog's status and removes page and work.
package runlog

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
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
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// Kind is the hub kind this package reconciles; its works are labelled with it.
const Kind = "RunLog"

// Finalizer lets a RunLog remove its work and page.
const Finalizer = "fleet.lifeboat.dev/runlog"

// Defaults of Reconciler.
const (
	DefaultPoll    = 2 * time.Second
	DefaultTimeout = 2 * time.Minute
)

// Reconciler runs hub RunLogs.
type Reconciler struct {
	client.Client
	// APIReader reads log pages, which the manager's cache leaves out.
	APIReader client.Reader
	// Tenancy says which clusters the RunLog's namespace may use.
	Tenancy *tenancy.Policy
	// Poll is how often the page is looked for (default DefaultPoll).
	Poll time.Duration
	// Timeout is how long the cluster has to answer (default DefaultTimeout).
	Timeout time.Duration
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=runlogs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=runlogs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=runlogs/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backups;restores;backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;patch;delete

// Reconcile picks the cluster, sends the spoke RunLog, and copies the page
// it answers with into the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	rl := &fleetv1alpha1.RunLog{}
	if err := r.Get(ctx, req.NamespacedName, rl); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rl.DeletionTimestamp.IsZero() {
		if err := r.cleanUp(ctx, rl); err != nil {
			return ctrl.Result{}, err
		}
		patch := client.MergeFrom(rl.DeepCopy())
		controllerutil.RemoveFinalizer(rl, Finalizer)
		return ctrl.Result{}, client.IgnoreNotFound(r.Patch(ctx, rl, patch))
	}
	if finished(rl) {
		return ctrl.Result{}, r.cleanUp(ctx, rl)
	}
	if !controllerutil.ContainsFinalizer(rl, Finalizer) {
		patch := client.MergeFrom(rl.DeepCopy())
		controllerutil.AddFinalizer(rl, Finalizer)
		if err := r.Patch(ctx, rl, patch); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	base := rl.DeepCopy()
	defer func() {
		rl.Status.ObservedGeneration = rl.Generation
		if err := r.Status().Patch(ctx, rl, client.MergeFrom(base)); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, client.IgnoreNotFound(err)})
		} else if finished(rl) {
			retErr = kerrors.NewAggregate([]error{retErr, r.cleanUp(ctx, rl)})
		}
	}()

	spoke, run, err := r.spokeRunLog(ctx, rl)
	if err != nil || spoke == nil {
		return ctrl.Result{}, err
	}
	if rl.Status.Cluster == "" {
		cluster, err := r.pickCluster(ctx, rl, run)
		if err != nil || cluster == "" {
			return ctrl.Result{}, err
		}
		rl.Status.Cluster = backupv1alpha1.ClusterName(cluster)
	}
	cluster := string(rl.Status.Cluster)
	mw, err := dispatch.Work(cluster, owner(rl), spoke, nil, dispatch.WithResource("runlogs"))
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	if _, err := dispatch.ApplyChanged(ctx, r.Client, mw); err != nil {
		setCondition(rl, metav1.ConditionFalse, fleetv1alpha1.ReasonDispatchFailed, fmt.Sprintf("the request could not be sent to cluster %s: %v", cluster, err))
		return ctrl.Result{}, err
	}
	rl.Status.Phase = backupv1alpha1.TaskInProgress
	page := &fleetv1alpha1.BackupCatalog{}
	err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: cluster, Name: fleetv1alpha1.LogPageName(spoke.Name)}, page)
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	if err != nil || page.Spec.Log == nil || page.Spec.Log.RunLog.UID != rl.UID || string(page.Spec.Cluster) != cluster {
		if time.Since(rl.CreationTimestamp.Time) > r.timeout() {
			fail(rl, fleetv1alpha1.ReasonTimeout, fmt.Sprintf("cluster %s did not send the log within %s", cluster, r.timeout()))
			return ctrl.Result{}, nil
		}
		setCondition(rl, metav1.ConditionFalse, backupv1alpha1.ReasonInProgress, fmt.Sprintf("cluster %s is reading the log from the bucket", cluster))
		return ctrl.Result{RequeueAfter: r.poll()}, nil
	}
	copyPage(rl, page.Spec.Log)
	return ctrl.Result{}, nil
}

// copyPage puts what the spoke sent into the status: at most the bytes
// asked for (a spoke sends no more, but its page is not trusted to), or why
// there is no log.
func copyPage(rl *fleetv1alpha1.RunLog, p *fleetv1alpha1.LogPage) {
	if p.Error != "" {
		fail(rl, backupv1alpha1.ReasonStorageError, fmt.Sprintf("cluster %s could not read the log: %s", rl.Status.Cluster, p.Error))
		return
	}
	text, truncated := p.Text, p.Truncated
	if limit := maxBytes(rl); len(text) > limit {
		text, truncated = text[len(text)-limit:], true
	}
	rl.Status.Text, rl.Status.Truncated, rl.Status.SizeBytes = text, truncated, max(p.SizeBytes, int64(len(text)))
	rl.Status.Phase = backupv1alpha1.TaskCompleted
	now := metav1.Now()
	rl.Status.CompletionTime = &now
	msg := fmt.Sprintf("cluster %s sent the log (%d bytes)", rl.Status.Cluster, len(text))
	if truncated {
		msg = fmt.Sprintf("cluster %s sent the last %d of the log's %d bytes", rl.Status.Cluster, len(text), rl.Status.SizeBytes)
	}
	setCondition(rl, metav1.ConditionTrue, backupv1alpha1.ReasonSucceeded, msg)
}

func maxBytes(rl *fleetv1alpha1.RunLog) int {
	if n := int(rl.Spec.MaxBytes); n > 0 && n <= backupv1alpha1.MaxRunLogBytes {
		return n
	}
	return backupv1alpha1.DefaultRunLogBytes
}

// run is where rl's run and its backup are.
type run struct {
	// backup is the Backup's name, location its BackupLocation's.
	backup, location string
	// cluster made the run: the backup's source cluster, or the cluster restored to.
	cluster string
}

// spokeRunLog is the spoke RunLog that reads rl's log, and where the run
// is. It fails rl (and returns nil) when the run or its backup does not
// exist or has no log.
func (r *Reconciler) spokeRunLog(ctx context.Context, rl *fleetv1alpha1.RunLog) (*backupv1alpha1.RunLog, run, error) {
	backupName, restoreLog, cluster := string(rl.Spec.Name), "", ""
	if rl.Spec.Kind == backupv1alpha1.RunRestore {
		rs := &fleetv1alpha1.Restore{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: rl.Namespace, Name: string(rl.Spec.Name)}, rs); err != nil {
			if apierrors.IsNotFound(err) {
				fail(rl, fleetv1alpha1.ReasonBackupNotFound, fmt.Sprintf("Restore %q does not exist in namespace %s", rl.Spec.Name, rl.Namespace))
				return nil, run{}, nil
			}
			return nil, run{}, err
		}
		if rs.Status.Log == "" {
			fail(rl, backupv1alpha1.ReasonInProgress, fmt.Sprintf("Restore %q has no log in the bucket (yet): a restore keeps its log when it ends", rl.Spec.Name))
			return nil, run{}, nil
		}
		backupName, restoreLog, cluster = string(rs.Spec.Backup), rs.Status.Log, string(rs.Status.Cluster)
	}
	b := &fleetv1alpha1.Backup{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: rl.Namespace, Name: backupName}, b); err != nil {
		if apierrors.IsNotFound(err) {
			fail(rl, fleetv1alpha1.ReasonBackupNotFound, fmt.Sprintf("Backup %q does not exist in namespace %s", backupName, rl.Namespace))
			return nil, run{}, nil
		}
		return nil, run{}, err
	}
	if b.Status.BackupID == "" {
		fail(rl, fleetv1alpha1.ReasonBackupNotFound, fmt.Sprintf("Backup %q has no data in the bucket yet", backupName))
		return nil, run{}, nil
	}
	if cluster == "" {
		cluster = string(b.Spec.Cluster)
	}
	name := dispatch.SpokeName(rl.Namespace, rl.Name)
	return &backupv1alpha1.RunLog{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "RunLog"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: dispatch.Labels(owner(rl)),
		},
		Spec: backupv1alpha1.RunLogSpec{
			Target:     backupv1alpha1.ObjectName(backuplocation.TargetName(rl.Namespace, string(b.Spec.Location))),
			Source:     backupv1alpha1.BackupSource{Cluster: b.Spec.Cluster, BackupID: b.Status.BackupID},
			Kind:       rl.Spec.Kind,
			RestoreLog: restoreLog,
			MaxBytes:   int32(maxBytes(rl)),
			Hub:        backupv1alpha1.HubObjectReference{Namespace: backupv1alpha1.NamespaceName(rl.Namespace), Name: backupv1alpha1.ObjectName(rl.Name), UID: rl.UID},
		},
	}, run{backup: backupName, location: string(b.Spec.Location), cluster: cluster}, nil
}

// pickCluster chooses a cluster with a Valid connection to the backup's
// location that rl's namespace may use: the one that made the run (the
// backup's source, or the restore's cluster) first, else the first by
// name. It fails rl when there is none.
func (r *Reconciler) pickCluster(ctx context.Context, rl *fleetv1alpha1.RunLog, run run) (string, error) {
	loc := &fleetv1alpha1.BackupLocation{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: rl.Namespace, Name: run.location}, loc); err != nil {
		if apierrors.IsNotFound(err) {
			fail(rl, fleetv1alpha1.ReasonLocationNotFound, fmt.Sprintf("BackupLocation %q of Backup %q does not exist in namespace %s", run.location, run.backup, rl.Namespace))
			return "", nil
		}
		return "", err
	}
	tenant, err := r.Tenancy.Tenant(ctx, rl.Namespace)
	if err != nil {
		return "", err
	}
	conns, err := locations.Connections(ctx, r, loc)
	if err != nil {
		return "", err
	}
	var valid, refused []string
	for _, c := range conns {
		if c.Phase != backupv1alpha1.TargetValid {
			continue
		}
		if tenant.Cluster(c.Cluster) != nil {
			refused = append(refused, c.Cluster)
			continue
		}
		valid = append(valid, c.Cluster)
	}
	if slices.Contains(valid, run.cluster) {
		return run.cluster, nil
	}
	if len(valid) > 0 {
		slices.Sort(valid)
		return valid[0], nil
	}
	if len(refused) > 0 {
		fail(rl, fleetv1alpha1.ReasonClusterNotAllowed, fmt.Sprintf("no cluster that namespace %s may use has a Valid connection to BackupLocation %q (it may not use %v), so none can read the log", rl.Namespace, loc.Name, refused))
		return "", nil
	}
	fail(rl, fleetv1alpha1.ReasonNoValidCluster, fmt.Sprintf("no cluster has a Valid connection to BackupLocation %q, so none can read the log", loc.Name))
	return "", nil
}

// cleanUp deletes the work and the page of rl's cluster.
func (r *Reconciler) cleanUp(ctx context.Context, rl *fleetv1alpha1.RunLog) error {
	cluster := string(rl.Status.Cluster)
	if cluster == "" {
		return nil
	}
	mw := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: dispatch.Name(Kind, rl.Namespace, rl.Name)}}
	page := &fleetv1alpha1.BackupCatalog{ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: fleetv1alpha1.LogPageName(dispatch.SpokeName(rl.Namespace, rl.Name))}}
	return kerrors.NewAggregate([]error{
		client.IgnoreNotFound(r.Delete(ctx, mw)),
		client.IgnoreNotFound(r.Delete(ctx, page)),
	})
}

func owner(rl *fleetv1alpha1.RunLog) dispatch.HubObject {
	return dispatch.HubObject{Kind: Kind, Namespace: rl.Namespace, Name: rl.Name, UID: rl.UID, Generation: rl.Generation}
}

func finished(rl *fleetv1alpha1.RunLog) bool {
	return rl.Status.Phase == backupv1alpha1.TaskCompleted || rl.Status.Phase == backupv1alpha1.TaskFailed
}

func fail(rl *fleetv1alpha1.RunLog, reason, message string) {
	rl.Status.Phase = backupv1alpha1.TaskFailed
	now := metav1.Now()
	rl.Status.CompletionTime = &now
	setCondition(rl, metav1.ConditionFalse, reason, message)
}

func setCondition(rl *fleetv1alpha1.RunLog, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&rl.Status.Conditions, metav1.Condition{
		Type: fleetv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message, ObservedGeneration: rl.Generation,
	})
}

func (r *Reconciler) poll() time.Duration {
	if r.Poll > 0 {
		return r.Poll
	}
	return DefaultPoll
}

func (r *Reconciler) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// SetupWithManager watches RunLogs.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.RunLog{}).
		Named("runlog").
		Complete(r)
}
