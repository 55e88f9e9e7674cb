package fleet

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StorageClass is the default StorageClass of every control plane that runs
// kube-controller-manager. Its claims are provisioned by the controller-manager's
// host-path provisioner: each volume is a new directory under
// HostPathVolumesDir, on this host, which every node of the fleet shares.
const StorageClass = "standard"

// HostPathVolumesDir is where the host-path provisioner makes volumes (a
// fixed path in kube-controller-manager).
const HostPathVolumesDir = "/tmp/hostpath_pv"

func (cp *ControlPlane) createStorageClass(ctx context.Context) error {
	reclaim := corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:   "kubernetes.io/host-path",
		ReclaimPolicy: &reclaim,
	}
	if err := cp.Client.Create(ctx, sc); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// provisionedVolumeDirs lists the host directories of the volumes this control
// plane's provisioner made and still holds, so that Stop can remove them
// (deleting a claim removes its directory; stopping the fleet does not).
func (cp *ControlPlane) provisionedVolumeDirs() []string {
	if cp.kcm == nil || cp.Client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pvs corev1.PersistentVolumeList
	if err := cp.Client.List(ctx, &pvs); err != nil {
		return nil
	}
	var dirs []string
	for _, pv := range pvs.Items {
		hp := pv.Spec.HostPath
		if hp == nil || pv.Spec.StorageClassName != StorageClass {
			continue
		}
		if p := filepath.Clean(hp.Path); strings.HasPrefix(p, HostPathVolumesDir+"/") {
			dirs = append(dirs, p)
		}
	}
	return dirs
}
