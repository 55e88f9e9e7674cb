package applicationbackup_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// A claim whose data is not backed up makes the backup PartialSuccess,
// naming the claim in the status and a warning in the log; never Success.
func TestClaimWithoutDataIsPartialSuccess(t *testing.T) {
	e := newEnv(t)
	e.g.Expect(cp.Client.Create(e.ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: "db-data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	})).To(Succeed())
	e.start()
	ab := e.backup(targets.SystemNamespace, "claims-"+rand.String(4))
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupPartialSuccess))
	got := e.get(ab)()
	e.g.Expect(condition(got, backupv1alpha1.ConditionReady).Message).To(ContainSubstring("PersistentVolumeClaims " + e.app + "/db-data was not backed up"))

	m, items := e.itemsOf(string(got.Status.BackupID))
	e.g.Expect(items).To(ContainElement("persistentvolumeclaims/"+e.app+"/db-data"), "the claim object is in the backup")
	e.g.Expect(m.Volumes).To(BeEmpty())
	dir, err := archive.Path("", cluster, string(got.Status.BackupID))
	e.g.Expect(err).NotTo(HaveOccurred())
	rd, err := archive.Open(e.ctx, e.store, dir)
	e.g.Expect(err).NotTo(HaveOccurred())
	logs, err := rd.Log(e.ctx)
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(logs).To(ContainElement(And(HaveField("Level", archive.LevelWarning), HaveField("Message", ContainSubstring("The claim's data was not backed up")))))
}
