package backupsync

import (
	"context"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// LabelScheduledFor is on the BackupSyncs that a location's syncInterval
// created; its value is the location's name (LabelValue).
const LabelScheduledFor = "fleet.lifeboat.dev/scheduled-for"

// KeepScheduled is how many finished scheduled syncs of a location are kept.
const KeepScheduled = 3

// Interval creates a BackupSync for each BackupLocation with a syncInterval,
// once per interval, and deletes all but the last KeepScheduled finished ones.
type Interval struct {
	client.Client
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuplocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupsyncs,verbs=get;list;watch;create;delete

// Reconcile creates the sync of the current interval, named
// "<location>-<interval start, UTC, yyyymmdd-hhmmss>" so that a restarted
// hub does not create it twice, and prunes old ones.
func (r *Interval) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	loc := &fleetv1alpha1.BackupLocation{}
	if err := r.Get(ctx, req.NamespacedName, loc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if loc.Spec.SyncInterval == nil || loc.Spec.SyncInterval.Duration <= 0 || !loc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	every := loc.Spec.SyncInterval.Duration
	tick := now.Truncate(every)
	s := &fleetv1alpha1.BackupSync{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: loc.Namespace,
			Name:      ScheduledName(loc.Name, tick),
			Labels:    map[string]string{LabelScheduledFor: dispatch.LabelValue(loc.Name)},
		},
		Spec: fleetv1alpha1.BackupSyncSpec{Location: backupv1alpha1.ObjectName(loc.Name)},
	}
	if err := r.Create(ctx, s); err == nil {
		ctrl.LoggerFrom(ctx).Info("Created scheduled BackupSync", "sync", s.Name)
	} else if !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, err
	}
	if err := r.prune(ctx, loc); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: tick.Add(every).Sub(now) + time.Second}, nil
}

// ScheduledName is the name of location's scheduled sync for the interval
// that starts at tick.
func ScheduledName(location string, tick time.Time) string {
	if len(location) > 230 {
		location = strings.TrimRight(location[:230], "-.")
	}
	return location + "-" + tick.UTC().Format("20060102-150405")
}

func (r *Interval) prune(ctx context.Context, loc *fleetv1alpha1.BackupLocation) error {
	list := &fleetv1alpha1.BackupSyncList{}
	if err := r.List(ctx, list, client.InNamespace(loc.Namespace), client.MatchingLabels{LabelScheduledFor: dispatch.LabelValue(loc.Name)}); err != nil {
		return err
	}
	var done []*fleetv1alpha1.BackupSync
	for i := range list.Items {
		if finished(&list.Items[i]) && list.Items[i].DeletionTimestamp.IsZero() {
			done = append(done, &list.Items[i])
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].Name > done[j].Name })
	for i := KeepScheduled; i < len(done); i++ {
		if err := r.Delete(ctx, done[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// SetupWithManager watches BackupLocations.
func (r *Interval) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.BackupLocation{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("backupsync-interval").
		Complete(r)
}
