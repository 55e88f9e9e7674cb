package backupsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// LabelLease marks the sync Leases; its value is the Lease's hash part.
const LabelLease = "fleet.lifeboat.dev/sync-lease"

// AnnotationHolderUID on a sync Lease is the UID of the BackupSync holding it.
const AnnotationHolderUID = "fleet.lifeboat.dev/holder-uid"

// LeaseName is the name of the Lease that serializes the syncs of one
// storage account's container: "lifeboat-sync-<16 hex digits of
// sha256(<account>/<container>)>". The prefix under the container does not
// count: two locations on one container share the Lease.
func LeaseName(storageAccount, container string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(storageAccount) + "/" + container))
	return "lifeboat-sync-" + hex.EncodeToString(sum[:])[:16]
}

func holderOf(s *fleetv1alpha1.BackupSync) string { return s.Namespace + "/" + s.Name }

func (r *Reconciler) systemNamespace() string {
	if r.SystemNamespace != "" {
		return r.SystemNamespace
	}
	return DefaultSystemNamespace
}

func (r *Reconciler) leaseDuration() time.Duration {
	if r.LeaseDuration > 0 {
		return r.LeaseDuration
	}
	return DefaultLeaseDuration
}

// acquireLease takes or renews the container's Lease for s. When another
// live sync holds it, s waits as Pending with the holder's name and the
// returned duration is when to look again.
func (r *Reconciler) acquireLease(ctx context.Context, s *fleetv1alpha1.BackupSync, loc *fleetv1alpha1.BackupLocation) (time.Duration, error) {
	name := LeaseName(loc.Spec.Azure.StorageAccount, loc.Spec.Azure.Container)
	now := metav1.NewMicroTime(time.Now())
	mine := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(holderOf(s)),
		LeaseDurationSeconds: ptr.To(int32(r.leaseDuration() / time.Second)),
		RenewTime:            &now,
	}
	lease := &coordinationv1.Lease{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.systemNamespace(), Name: name}, lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   r.systemNamespace(),
				Name:        name,
				Labels:      map[string]string{LabelLease: strings.TrimPrefix(name, "lifeboat-sync-")},
				Annotations: map[string]string{AnnotationHolderUID: string(s.UID)},
			},
			Spec: mine,
		}
		mine.AcquireTime = &now
		lease.Spec.AcquireTime = &now
		if err := r.Create(ctx, lease); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return wait.Jitter(time.Second, 0.5), nil
			}
			return 0, err
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !r.heldBy(lease, s) {
		free, err := r.free(ctx, lease)
		if err != nil {
			return 0, err
		}
		if !free {
			s.Status.Phase = backupv1alpha1.TaskPending
			setCondition(s, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonWaitingForSync, fmt.Sprintf(
				"waiting for BackupSync %s, which holds Lease %s/%s for storage account %s container %s",
				ptr.Deref(lease.Spec.HolderIdentity, ""), lease.Namespace, lease.Name, loc.Spec.Azure.StorageAccount, loc.Spec.Azure.Container))
			return wait.Jitter(waitRecheck, 0.3), nil
		}
		mine.AcquireTime = &now
		mine.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
	} else {
		mine.AcquireTime = lease.Spec.AcquireTime
		mine.LeaseTransitions = lease.Spec.LeaseTransitions
	}
	lease.Spec = mine
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[AnnotationHolderUID] = string(s.UID)
	// Update carries the resourceVersion read: of two syncs taking a free
	// Lease at once, one gets a conflict and waits.
	if err := r.Update(ctx, lease); err != nil {
		if apierrors.IsConflict(err) {
			return wait.Jitter(time.Second, 0.5), nil
		}
		return 0, err
	}
	return 0, nil
}

func (r *Reconciler) heldBy(lease *coordinationv1.Lease, s *fleetv1alpha1.BackupSync) bool {
	return ptr.Deref(lease.Spec.HolderIdentity, "") == holderOf(s) && lease.Annotations[AnnotationHolderUID] == string(s.UID)
}

// free is true when nobody holds the Lease, its holder let it expire (a hub
// that crashed), or its holder is gone or finished.
func (r *Reconciler) free(ctx context.Context, lease *coordinationv1.Lease) (bool, error) {
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder == "" || lease.Spec.RenewTime == nil || lease.Spec.LeaseDurationSeconds == nil {
		return true, nil
	}
	if time.Since(lease.Spec.RenewTime.Time) > time.Duration(*lease.Spec.LeaseDurationSeconds)*time.Second {
		return true, nil
	}
	ns, name, ok := strings.Cut(holder, "/")
	if !ok {
		return true, nil
	}
	other := &fleetv1alpha1.BackupSync{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, other)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return string(other.UID) != lease.Annotations[AnnotationHolderUID] || finished(other), nil
}

// releaseLease frees the Lease of s's location if s holds it. The Lease is
// found by label and holder, so a location changed or deleted meanwhile
// does not keep it.
func (r *Reconciler) releaseLease(ctx context.Context, s *fleetv1alpha1.BackupSync) error {
	list := &coordinationv1.LeaseList{}
	if err := r.APIReader.List(ctx, list, client.InNamespace(r.systemNamespace()), client.HasLabels{LabelLease}); err != nil {
		return err
	}
	for i := range list.Items {
		lease := &list.Items[i]
		if !r.heldBy(lease, s) {
			continue
		}
		lease.Spec.HolderIdentity = nil
		lease.Spec.RenewTime = nil
		delete(lease.Annotations, AnnotationHolderUID)
		if err := r.Update(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
