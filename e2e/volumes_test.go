package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// boundClaim creates claim name in ns of storageClass on c and returns the
// PersistentVolume its provisioner bound it to.
func boundClaim(g Gomega, ctx context.Context, c client.Client, ns, name, storageClass string) string {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(storageClass),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
		},
	}
	g.Expect(c.Create(ctx, pvc)).To(Succeed())
	return waitBound(g, ctx, c, ns, name)
}

// waitBound waits until claim ns/name is Bound and returns its volume.
func waitBound(g Gomega, ctx context.Context, c client.Client, ns, name string) string {
	pvc := &corev1.PersistentVolumeClaim{}
	g.Eventually(func() corev1.PersistentVolumeClaimPhase {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pvc)).To(Succeed())
		return pvc.Status.Phase
	}, 2*time.Minute, 250*time.Millisecond).Should(Equal(corev1.ClaimBound), "claim %s/%s is provisioned", ns, name)
	return pvc.Spec.VolumeName
}

// A hub Backup with volumes: Skip of a namespace with a provisioned claim
// ends PartialSuccess naming the claim. Its Restore onto the other spoke
// never creates the source's PersistentVolume (it points at spoke-1's
// disk): the claim is provisioned anew there, in the StorageClass that
// storageClassMappings names.
func TestVolumesSkipAndRestoreOntoAnotherCluster(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	spoke1, spoke2 := onboarded()[0], onboarded()[1]
	const team, container = "team-volumes", "volumes-backups"
	loc, _ := validTeamLocation(g, ctx, team, container, spoke1, spoke2)

	ns := "vol-" + rand.String(4)
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	defer func() {
		_ = spoke1.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	sourcePV := boundClaim(g, ctx, spoke1.Client, ns, "data", fleet.StorageClass)
	g.Expect(spoke1.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"k": "v"}})).To(Succeed())

	t.Log("volumes: Skip ends PartialSuccess and names the claim")
	b := hubBackup(team, "skip", spoke1, loc.Name, ns)
	b.Spec.Volumes = backupv1alpha1.VolumesSkip
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, b, hubBackupPhase, 3*time.Minute)).To(BeEquivalentTo(fleetv1alpha1.BackupPartialSuccess), "conditions: %+v", b.Status.Conditions)
	g.Expect(readyMessage(b.Status.Conditions)).To(ContainSubstring(
		fmt.Sprintf("volume data of 1 PersistentVolumeClaim not backed up (volumes: Skip): %s/data", ns)))
	t.Logf("Backup %s: %s", b.Name, readyMessage(b.Status.Conditions))

	t.Log("the restore onto spoke-2 provisions the claim anew in the mapped StorageClass, and never creates spoke-1's volume")
	fast := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast-" + rand.String(4)}, Provisioner: "kubernetes.io/host-path",
		ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimDelete)}
	g.Expect(spoke2.Client.Create(ctx, fast)).To(Succeed())
	defer func() { _ = spoke2.Client.Delete(context.Background(), fast) }()
	defer func() {
		_ = spoke2.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	rs := tenantRestore(team, "to-spoke-2", b.Name, spoke2.Name, backupv1alpha1.RestoreOptions{
		StorageClassMappings: backupv1alpha1.StorageClassMapping{fleet.StorageClass: backupv1alpha1.ObjectName(fast.Name)},
	})
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, rs, func(r *fleetv1alpha1.Restore) string { return string(r.Status.Phase) }, 3*time.Minute)).
		To(BeEquivalentTo(backupv1alpha1.RestoreSuccess), "conditions: %+v", rs.Status.Conditions)
	g.Expect(rs.Status.Warnings).To(BeNumerically(">=", 2), "the volume left out, the claim without it")

	err := spoke2.Client.Get(ctx, client.ObjectKey{Name: sourcePV}, &corev1.PersistentVolume{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "spoke-1's PersistentVolume %s is not on spoke-2 (%v)", sourcePV, err)
	restoredPV := waitBound(g, ctx, spoke2.Client, ns, "data")
	g.Expect(restoredPV).NotTo(Equal(sourcePV))
	claim := &corev1.PersistentVolumeClaim{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, claim)).To(Succeed())
	g.Expect(claim.Spec.StorageClassName).To(Equal(ptr.To(fast.Name)))
	pv := &corev1.PersistentVolume{}
	g.Expect(spoke2.Client.Get(ctx, client.ObjectKey{Name: restoredPV}, pv)).To(Succeed())
	g.Expect(pv.Spec.StorageClassName).To(Equal(fast.Name), "spoke-2's provisioner made the volume")
	t.Logf("claim %s/data on spoke-2 bound to new volume %s (spoke-1's: %s)", ns, restoredPV, sourcePV)
}
