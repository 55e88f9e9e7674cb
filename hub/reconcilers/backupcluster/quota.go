package backupcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// catalogPagesQuota is the ResourceQuota key that counts BackupCatalogs.
const catalogPagesQuota corev1.ResourceName = "count/backupcatalogs." + "fleet.lifeboat.dev"

// ensureQuota keeps the ResourceQuota that bounds the spoke's BackupCatalogs
// in the cluster namespace, owned by the BackupCluster so that it goes with
// it. It is applied only when the cache shows it missing or different.
func (r *Reconciler) ensureQuota(ctx context.Context, bc *fleetv1alpha1.BackupCluster) error {
	ns := bc.Name
	hard := resource.NewQuantity(int64(r.catalogPages()), resource.DecimalSI)
	quota := &corev1.ResourceQuota{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: QuotaName}, quota); client.IgnoreNotFound(err) != nil {
		return err
	} else if q, ok := quota.Spec.Hard[catalogPagesQuota]; err == nil && ownedBy(quota, bc) && quota.Labels[LabelCluster] == bc.Name && len(quota.Spec.Hard) == 1 && ok && q.Cmp(*hard) == 0 {
		return nil
	}
	owner := metav1ac.OwnerReference().WithAPIVersion(fleetv1alpha1.GroupVersion.String()).WithKind(Kind).
		WithName(bc.Name).WithUID(bc.UID).WithController(true)
	ac := corev1ac.ResourceQuota(QuotaName, ns).WithLabels(map[string]string{LabelCluster: bc.Name}).WithOwnerReferences(owner).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(corev1.ResourceList{catalogPagesQuota: *hard}))
	if err := r.Apply(ctx, ac, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ResourceQuota %s/%s: %w", ns, QuotaName, err)
	}
	return nil
}

// ownedBy reports whether obj's controller is bc.
func ownedBy(obj client.Object, bc *fleetv1alpha1.BackupCluster) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == bc.UID
}
