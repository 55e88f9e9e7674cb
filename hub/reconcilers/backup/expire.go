package backup

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// keptRecheck is how often a Backup kept past its ttl as the newest
// restorable one is looked at again, to see whether a newer one exists.
const keptRecheck = 15 * time.Minute

// expire enforces the ttl of a finished or synced Backup: its expiration is
// the start time plus the ttl (so changing the ttl moves it); once past, the
// Backup is deleted through the normal delete path, unless it is the newest
// restorable backup of its cluster and selection in the namespace, which is
// kept with the Expired condition saying so.
func (r *Reconciler) expire(ctx context.Context, b *fleetv1alpha1.Backup) (ctrl.Result, error) {
	base := b.DeepCopy()
	exp := expiration(b)
	b.Status.Expiration = exp
	now := time.Now()
	var result ctrl.Result
	switch {
	case exp == nil:
		meta.RemoveStatusCondition(&b.Status.Conditions, fleetv1alpha1.ConditionExpired)
	case now.Before(exp.Time):
		meta.RemoveStatusCondition(&b.Status.Conditions, fleetv1alpha1.ConditionExpired)
		result.RequeueAfter = exp.Sub(now) + time.Second
	default:
		newer, err := r.newerRestorable(ctx, b)
		if err != nil {
			return ctrl.Result{}, err
		}
		if b.Status.Phase.Restorable() && !newer {
			msg := fmt.Sprintf("%s, but this is the newest restorable backup of cluster %s (%s) in this namespace: "+
				"it is kept until a newer one is restorable; delete it to remove it now",
				expiredText(b, exp), b.Spec.Cluster, describeSelection(b))
			if !meta.IsStatusConditionTrue(b.Status.Conditions, fleetv1alpha1.ConditionExpired) {
				r.event(b, "Warning", fleetv1alpha1.ReasonKeptAsNewest, "Expire", msg)
			}
			meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ConditionExpired,
				Status: metav1.ConditionTrue, Reason: fleetv1alpha1.ReasonKeptAsNewest, Message: msg, ObservedGeneration: b.Generation})
			result.RequeueAfter = keptRecheck
			break
		}
		msg := expiredText(b, exp) + ": deleting the backup and its data"
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ConditionExpired,
			Status: metav1.ConditionTrue, Reason: fleetv1alpha1.ReasonTTLExpired, Message: msg, ObservedGeneration: b.Generation})
		if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		r.event(b, "Normal", fleetv1alpha1.ReasonTTLExpired, "Expire", msg)
		ctrl.LoggerFrom(ctx).Info("Backup expired", "expiration", exp.Time)
		return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, b))
	}
	if !equality.Semantic.DeepEqual(base.Status, b.Status) {
		if err := r.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return result, nil
}

// expiration is when the Backup is due for deletion: start time plus ttl.
// A synced Backup without a ttl of its own keeps the expiration it was
// imported with (the ttl its maker set). nil: never.
func expiration(b *fleetv1alpha1.Backup) *metav1.Time {
	if b.Spec.TTL == nil || b.Status.StartTime == nil {
		if synced(b) && b.Spec.TTL == nil {
			return b.Status.Expiration
		}
		return nil
	}
	t := metav1.NewTime(b.Status.StartTime.Add(b.Spec.TTL.Duration))
	return &t
}

// expiredText says what expired, for messages: "ttl 720h0m0s passed at ..."
// or, for an imported expiration, "expiration ... passed".
func expiredText(b *fleetv1alpha1.Backup, exp *metav1.Time) string {
	at := exp.UTC().Format(time.RFC3339)
	if b.Spec.TTL == nil {
		return "its expiration " + at + " (imported with the backup) passed"
	}
	return fmt.Sprintf("ttl %s passed at %s", b.Spec.TTL.Duration, at)
}

// newerRestorable reports whether another restorable Backup of the same
// cluster and selection, not being deleted, started after b in b's namespace.
func (r *Reconciler) newerRestorable(ctx context.Context, b *fleetv1alpha1.Backup) (bool, error) {
	// Only the cluster's own Backups, read from the cache without copies:
	// a namespace may hold a Backup per cluster and day for thousands of
	// clusters, and every expired one asks.
	list := &fleetv1alpha1.BackupList{}
	if err := r.List(ctx, list, client.InNamespace(b.Namespace),
		client.MatchingFields{indexCluster: string(b.Spec.Cluster)}, client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == b.UID || !o.DeletionTimestamp.IsZero() || !o.Status.Phase.Restorable() || o.Spec.Cluster != b.Spec.Cluster ||
			o.Status.StartTime == nil || !o.Status.StartTime.After(b.Status.StartTime.Time) ||
			!equality.Semantic.DeepEqual(o.Spec.Selection, b.Spec.Selection) {
			continue
		}
		return true, nil
	}
	return false, nil
}

// indexCluster indexes Backups by spec.cluster.
const indexCluster = "spec.cluster"

func backupCluster(o client.Object) []string {
	return []string{string(o.(*fleetv1alpha1.Backup).Spec.Cluster)}
}

// describeSelection names the namespaces a Backup selected, for messages.
func describeSelection(b *fleetv1alpha1.Backup) string {
	if b.Spec.Selection == nil || len(b.Spec.Selection.IncludedNamespaces) == 0 {
		return "all namespaces"
	}
	names := make([]string, 0, len(b.Spec.Selection.IncludedNamespaces))
	for _, n := range b.Spec.Selection.IncludedNamespaces {
		names = append(names, string(n))
	}
	slices.Sort(names)
	return "namespaces " + strings.Join(names, ", ")
}
