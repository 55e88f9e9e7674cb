package backupdeletion

import (
	"testing"

	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// A deletion the hub sent for a tenant deletes only backups made for that
// tenant's hub namespace, even forced.
func TestTenantDeletesOnlyItsOwnBackups(t *testing.T) {
	e := newEnv(t)
	dir := e.backup("tb1", archive.Owner{Hub: &archive.HubRef{Namespace: "tenant-a", Name: "nightly"}}, true)
	deleteFor := func(hubNamespace string) *backupv1alpha1.BackupDeletion {
		del := &backupv1alpha1.BackupDeletion{}
		del.Name, del.Namespace = "del-"+hubNamespace, targets.SystemNamespace
		del.Spec = backupv1alpha1.BackupDeletionSpec{
			Target: backupv1alpha1.ObjectName(e.target), Force: true,
			Source:  backupv1alpha1.BackupSource{Cluster: "spoke-1", BackupID: "tb1"},
			Tenancy: &backupv1alpha1.Tenancy{HubNamespace: backupv1alpha1.NamespaceName(hubNamespace)},
		}
		e.g.Expect(cp.Client.Create(e.ctx, del)).To(Succeed())
		_, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(del)})
		e.g.Expect(err).NotTo(HaveOccurred())
		e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(del), del)).To(Succeed())
		return del
	}

	other := deleteFor("tenant-b")
	e.g.Expect(other.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(other.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonNamespaceNotAllowed)))
	e.g.Expect(e.files(dir)).To(HaveLen(4), "a refused deletion deletes nothing")

	own := deleteFor("tenant-a")
	e.g.Expect(own.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(dir)).To(BeEmpty())
}
