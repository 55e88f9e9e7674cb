package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// A team backs up and restores its own namespace without the cluster admin,
// and can reach nothing else, whatever its spec says.
func TestSelfService(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[0]
	id := validTarget(g, ctx, "team-backups", "team-backups")
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Name: "team-backups"}, target)).To(Succeed())
	target.Spec.AllowedNamespaces = &metav1.LabelSelector{MatchLabels: map[string]string{"lifeboat.dev/self-service": "enabled"}}
	g.Expect(spoke.Client.Update(ctx, target)).To(Succeed())
	g.Expect(waitValidated(g, ctx, spoke.Client, "team-backups").Phase).To(Equal(backupv1alpha1.TargetValid))

	ensureNamespace(g, ctx, spoke.Client, "team-a", map[string]string{"lifeboat.dev/self-service": "enabled"})
	ensureNamespace(g, ctx, spoke.Client, "team-b", nil)
	for _, ns := range []string{"team-a", "team-b"} {
		g.Expect(spoke.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"owner": ns}})).To(Succeed())
	}

	// A team whose namespace the target does not select is refused.
	refused := appBackup("mine", "team-backups", "team-b")
	refused.Namespace = "team-b"
	g.Expect(spoke.Client.Create(ctx, refused)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, refused, backupPhase, time.Minute)).To(Equal("Failed"))
	g.Expect(refused.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonNamespaceNotAllowed)))

	// team-a asks for team-b too; the backup holds team-a only.
	b := appBackup("mine", "team-backups", "team-a")
	b.Namespace = "team-a"
	b.Spec.Selection.IncludedNamespaces = append(b.Spec.Selection.IncludedNamespaces, "team-b")
	g.Expect(spoke.Client.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, b, backupPhase, 2*time.Minute)).To(Equal("Success"), "%+v", b.Status.Conditions)
	store := blobStore(g, id, spoke, "team-backups")
	dir, err := archive.Path("", spoke.Name, string(b.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	reader, err := archive.Open(ctx, store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reader.Manifest().Owner.Namespace).To(Equal("team-a"))
	list, err := reader.ResourceList(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list).NotTo(BeEmpty())
	for _, item := range list {
		g.Expect(item.Namespace).To(BeElementOf("team-a", ""), "item %s", item)
		if item.Namespace == "" {
			g.Expect(item.Resource).To(BeElementOf("namespaces", "customresourcedefinitions"), "only its own Namespace object is cluster-scoped: %s", item)
		}
	}

	// team-a restores into team-b by mapping: nothing is written outside team-a.
	g.Expect(spoke.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "team-b"}})).To(Succeed())
	escape := appRestore("escape", "team-backups", spoke.Name, string(b.Status.BackupID), map[string]string{"team-a": "team-b"})
	escape.Namespace = "team-a"
	g.Expect(spoke.Client.Create(ctx, escape)).To(Succeed())
	waitFinished(g, ctx, spoke.Client, escape, restorePhase, 2*time.Minute)
	err = spoke.Client.Get(ctx, client.ObjectKey{Namespace: "team-b", Name: "settings"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a team's restore never writes into another namespace")

	// And restores its own namespace.
	g.Expect(spoke.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "team-a"}})).To(Succeed())
	own := appRestore("own", "team-backups", spoke.Name, string(b.Status.BackupID), nil)
	own.Namespace = "team-a"
	g.Expect(spoke.Client.Create(ctx, own)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, own, restorePhase, 2*time.Minute)).To(Equal("Success"), "%+v", own.Status.Conditions)
	cm := &corev1.ConfigMap{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "settings"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("owner", "team-a"))
}
