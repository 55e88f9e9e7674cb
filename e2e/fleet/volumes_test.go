package fleet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A claim without a StorageClass gets the default one and a new host
// directory from kube-controller-manager's provisioner; deleting the claim
// removes the directory, and stopping the control plane removes the
// directories of the claims still there.
func TestClaimsAreProvisioned(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := StartControlPlane(ctx, "volumetest", filepath.Join(t.TempDir(), "cluster"), true)
	g.Expect(err).NotTo(HaveOccurred())
	stopped := false
	defer func() {
		if !stopped {
			cp.Stop()
		}
	}()

	claim := func(name string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}}
	}
	dirOf := func(name string) string {
		var dir string
		g.Eventually(func(g Gomega) {
			pvc := &corev1.PersistentVolumeClaim{}
			g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, pvc)).To(Succeed())
			g.Expect(pvc.Spec.StorageClassName).To(HaveValue(Equal(StorageClass)), "the default StorageClass")
			g.Expect(pvc.Status.Phase).To(Equal(corev1.ClaimBound))
			pv := &corev1.PersistentVolume{}
			g.Expect(cp.Client.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv)).To(Succeed())
			g.Expect(pv.Spec.HostPath).NotTo(BeNil())
			dir = pv.Spec.HostPath.Path
		}, time.Minute, 250*time.Millisecond).Should(Succeed())
		g.Expect(strings.HasPrefix(dir, HostPathVolumesDir+"/")).To(BeTrue(), dir)
		g.Expect(dir).To(BeADirectory())
		return dir
	}

	for _, name := range []string{"deleted", "kept"} {
		g.Expect(cp.Client.Create(ctx, claim(name))).To(Succeed())
	}
	deleted, kept := dirOf("deleted"), dirOf("kept")
	g.Expect(os.WriteFile(filepath.Join(kept, "file"), []byte("data"), 0o600)).To(Succeed())

	g.Expect(cp.Client.Delete(ctx, claim("deleted"))).To(Succeed())
	g.Eventually(func() bool { _, err := os.Stat(deleted); return os.IsNotExist(err) }, time.Minute, 250*time.Millisecond).
		Should(BeTrue(), "the provisioner removes a deleted claim's directory")

	cp.Stop()
	stopped = true
	_, err = os.Stat(kept)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "Stop removes the directory of a claim still there")
}
