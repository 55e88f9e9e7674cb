package addon

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"open-cluster-management.io/addon-framework/pkg/agent"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hubClient and hubConfig are an admin of the package's hub: a real
// kube-apiserver with the hub and add-on CRDs.
var (
	hubClient client.Client
	hubConfig *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "addon", &hubClient, func(mgr ctrl.Manager) error {
		hubConfig = rest.CopyConfig(mgr.GetConfig())
		return nil
	}))
}

// The permission the framework sets up for a cluster's spoke lets the
// certificate it registers (user and groups as its CSR asks for them) keep
// BackupCatalogs in that cluster's namespace and nothing else: not in another
// cluster's namespace, although every cluster's spoke shares the group
// system:open-cluster-management:addon:lifeboat.
func TestSpokePermissionIsItsClusterOnly(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a, err := New(hubConfig, Options{SpokeImage: "img:1"})
	g.Expect(err).NotTo(HaveOccurred())
	reg := a.GetAgentAddonOptions().Registration
	spokes := map[string]client.Client{}
	for _, name := range []string{"perm-a", "perm-b"} {
		g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		mca := &addonv1alpha1.ManagedClusterAddOn{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: Name}}
		g.Expect(hubClient.Create(ctx, mca)).To(Succeed())
		cluster := &clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
		configs, err := reg.CSRConfigurations(cluster, mca)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(configs).To(HaveLen(1))
		// As the framework's registration controller records them.
		mca.Status.Registrations = configs
		g.Expect(hubClient.Status().Update(ctx, mca)).To(Succeed())
		g.Expect(reg.PermissionConfig(cluster, mca)).To(Succeed())
		subject := configs[0].Subject
		g.Expect(subject.User).To(Equal(agent.DefaultUser(name, Name, agentName)))
		cfg := rest.CopyConfig(hubConfig)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: subject.User, Groups: subject.Groups}
		spokes[name], err = client.New(cfg, client.Options{Scheme: fleet.Scheme})
		g.Expect(err).NotTo(HaveOccurred())
	}
	c := spokes["perm-a"]
	g.Expect(c.Create(ctx, page("perm-a", "p1"))).To(Succeed(), "its own cluster namespace")
	g.Expect(c.Delete(ctx, page("perm-a", "p1"))).To(Succeed())
	err = c.Create(ctx, page("perm-b", "p1"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "another cluster's namespace: %v", err)
	err = c.List(ctx, &fleetv1alpha1.BackupCatalogList{}, client.InNamespace("perm-b"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "not even to read it: %v", err)
	err = c.List(ctx, &corev1.SecretList{}, client.InNamespace("perm-a"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "no Secrets: %v", err)
	err = c.List(ctx, &addonv1alpha1.ManagedClusterAddOnList{}, client.InNamespace("perm-a"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "no add-ons: %v", err)
	g.Expect(spokes["perm-b"].Create(ctx, page("perm-b", "p1"))).To(Succeed(), "the other spoke in its own namespace")
}

func page(namespace, name string) *fleetv1alpha1.BackupCatalog {
	ref := backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "x"}
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(namespace), Sync: &ref, Location: &ref, Page: 1, Final: true},
	}
}
