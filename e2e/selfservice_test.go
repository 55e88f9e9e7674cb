package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
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
	// Alice is team-a's admin: she may restore, and may not grant cluster-admin.
	alice := teamMember(g, ctx, spoke, "team-a", "alice@team-a")
	// What an attacker with write access to the container would plant.
	takeover := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "takeover"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "team-a", Name: "default"}}}
	g.Expect(spoke.Client.Create(ctx, takeover)).To(Succeed())

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
	store := blobStore(g, id, spoke, "team-backups", "team-backups")
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

	g.Expect(spoke.Client.Delete(ctx, takeover)).To(Succeed())

	// A restore must name its creator.
	forged := teamRestore("forged", "team-a", "root", spoke.Name, string(b.Status.BackupID), nil)
	err = alice.Create(ctx, forged)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the admission policy refuses a restore that names another user: %v", err)

	// team-a restores into team-b by mapping: nothing is written outside team-a.
	g.Expect(spoke.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "team-b"}})).To(Succeed())
	escape := teamRestore("escape", "team-a", "alice@team-a", spoke.Name, string(b.Status.BackupID), map[string]string{"team-a": "team-b"})
	g.Expect(alice.Create(ctx, escape)).To(Succeed())
	waitFinished(g, ctx, spoke.Client, escape, restorePhase, 2*time.Minute)
	err = spoke.Client.Get(ctx, client.ObjectKey{Namespace: "team-b", Name: "settings"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a team's restore never writes into another namespace")

	// And restores its own namespace.
	g.Expect(spoke.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "team-a"}})).To(Succeed())
	own := teamRestore("own", "team-a", "alice@team-a", spoke.Name, string(b.Status.BackupID), nil)
	g.Expect(alice.Create(ctx, own)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, own, restorePhase, 2*time.Minute)).To(Equal("Success"), "%+v", own.Status.Conditions)
	cm := &corev1.ConfigMap{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "settings"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("owner", "team-a"))
	g.Expect(spoke.Client.Get(ctx, client.ObjectKeyFromObject(takeover), &rbacv1.RoleBinding{})).To(Satisfy(apierrors.IsNotFound),
		"RoleBindings are left out unless the target allows policyResources")

	// The cluster admin allows policy resources: the restore writes as Alice,
	// who may not grant cluster-admin, so the planted RoleBinding fails.
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Name: "team-backups"}, target)).To(Succeed())
	target.Spec.PolicyResources = backupv1alpha1.Allow
	g.Expect(spoke.Client.Update(ctx, target)).To(Succeed())
	// Once validated at this generation the spoke's cache holds the new spec,
	// which the restore reads.
	g.Expect(waitValidated(g, ctx, spoke.Client, "team-backups").Phase).To(Equal(backupv1alpha1.TargetValid))
	rbac := teamRestore("rbac", "team-a", "alice@team-a", spoke.Name, string(b.Status.BackupID), nil)
	g.Expect(alice.Create(ctx, rbac)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, rbac, restorePhase, 2*time.Minute)).To(Equal("PartialSuccess"), "%+v", rbac.Status.Conditions)
	g.Expect(rbac.Status.Errors).To(BeEquivalentTo(1))
	g.Expect(spoke.Client.Get(ctx, client.ObjectKeyFromObject(takeover), &rbacv1.RoleBinding{})).To(Satisfy(apierrors.IsNotFound))
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "system:serviceaccount:team-a:default", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: "*", Group: "*", Resource: "*"}}}
	g.Expect(spoke.Client.Create(ctx, review)).To(Succeed())
	g.Expect(review.Status.Allowed).To(BeFalse(), "kubectl auth can-i '*' '*' --as team-a's ServiceAccount says no")
}

// teamMember gives user the admin role in namespace and the right to create
// ApplicationRestores there, and returns a client acting as user.
func teamMember(g Gomega, ctx context.Context, spoke *fleet.Spoke, namespace, user string) client.Client {
	g.Expect(client.IgnoreAlreadyExists(spoke.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "restorer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{backupv1alpha1.GroupVersion.Group}, Resources: []string{"applicationrestores"}, Verbs: []string{"create", "get"}}}}))).To(Succeed())
	for role, kind := range map[string]string{"admin": "ClusterRole", "restorer": "Role"} {
		bindUser(g, ctx, spoke.Client, namespace, user, kind, role)
	}
	return impersonating(g, spoke, user)
}

// bindUser binds role (of kind Role or ClusterRole) in namespace to user.
func bindUser(g Gomega, ctx context.Context, c client.Client, namespace, user, kind, role string) {
	g.Expect(client.IgnoreAlreadyExists(c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: user + "-" + role},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}))).To(Succeed())
}

// impersonating is a client of spoke acting as user.
func impersonating(g Gomega, spoke *fleet.Spoke, user string) client.Client {
	cfg := rest.CopyConfig(spoke.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: spoke.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// teamRestore is a team's ApplicationRestore in namespace, requested by user.
func teamRestore(name, namespace, user, cluster, backupID string, mapping map[string]string) *backupv1alpha1.ApplicationRestore {
	r := appRestore(name, "team-backups", cluster, backupID, mapping)
	r.Namespace = namespace
	r.Spec.RequestedBy = &backupv1alpha1.Requester{Username: user}
	return r
}
