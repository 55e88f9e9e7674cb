package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
)

// A cluster that the lifeboat add-on's Placement no longer selects loses the
// add-on: OCM deletes its ManagedClusterAddOn and ManifestWork, and the work
// agent removes the spoke's Deployment from the cluster while its CRDs (and
// every backup record) stay; the BackupCluster says the add-on is not
// installed and stays, with its namespace, on the hub. Selected again, the
// cluster gets its spoke back and is Online.
func TestClusterLeavesTheAddOnPlacement(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	s := testFleet.Spokes[1]
	waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)
	const excluded = "e2e.lifeboat.dev/no-spoke"

	t.Log("the fleet admin narrows the add-on's Placement, and labels the cluster out of it")
	setPlacementExclusion(g, ctx, excluded, true)
	setClusterLabel(g, ctx, s.Name, excluded, "true")
	defer func() {
		setClusterLabel(g, ctx, s.Name, excluded, "")
		setPlacementExclusion(g, ctx, excluded, false)
	}()

	g.Eventually(func() bool {
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: fleetv1alpha1.AddOnName}, &addonv1alpha1.ManagedClusterAddOn{}))
	}, 2*time.Minute, 250*time.Millisecond).Should(BeTrue(), "OCM removes the ManagedClusterAddOn")
	g.Eventually(func() bool {
		return apierrors.IsNotFound(s.Client.Get(ctx, client.ObjectKey{Namespace: fleetv1alpha1.AddOnNamespace, Name: "lifeboat-spoke"}, &appsv1.Deployment{}))
	}, 2*time.Minute, 250*time.Millisecond).Should(BeTrue(), "the spoke's Deployment is gone from the cluster")
	g.Eventually(func() error {
		_, err := fleet.SpokePod(ctx, s)
		return err
	}, 2*time.Minute, 250*time.Millisecond).Should(HaveOccurred(), "and its pod")
	g.Expect(s.Client.Get(ctx, client.ObjectKey{Name: "applicationbackups.backup.lifeboat.dev"}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed(), "the CRDs stay")
	g.Expect(s.Client.Get(ctx, client.ObjectKey{Name: fleetv1alpha1.AddOnNamespace}, &corev1.Namespace{})).To(Succeed(), "and the namespace")

	bc := waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOffline)
	available := meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionAvailable)
	g.Expect(available).To(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonAddOnNotInstalled)))
	g.Expect(hub.Get(ctx, client.ObjectKey{Name: s.Name}, &corev1.Namespace{})).To(Succeed(), "the cluster namespace, and the backups in it, stay")
	t.Logf("%s: %s: %s", s.Name, bc.Status.Phase, available.Message)

	t.Log("selected again: the spoke comes back and the cluster is Online")
	setClusterLabel(g, ctx, s.Name, excluded, "")
	waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)
	g.Expect(testFleet.WaitSpokePods(ctx, s)).To(Succeed())
}

// setPlacementExclusion adds to (or removes from) the add-on's default
// Placement a requirement that clusters lack label key.
func setPlacementExclusion(g Gomega, ctx context.Context, key string, exclude bool) {
	g.Eventually(func() error {
		p := &clusterv1beta1.Placement{}
		if err := testFleet.Hub.Client.Get(ctx, client.ObjectKey{Namespace: fleet.HubNamespace, Name: fleetv1alpha1.AddOnName}, p); err != nil {
			return err
		}
		sel := &p.Spec.Predicates[0].RequiredClusterSelector.LabelSelector
		var kept []metav1.LabelSelectorRequirement
		for _, r := range sel.MatchExpressions {
			if r.Key != key {
				kept = append(kept, r)
			}
		}
		if exclude {
			kept = append(kept, metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpDoesNotExist})
		}
		sel.MatchExpressions = kept
		return testFleet.Hub.Client.Update(ctx, p)
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
}

// setClusterLabel sets (or, when value is empty, removes) a label of a ManagedCluster.
func setClusterLabel(g Gomega, ctx context.Context, cluster, key, value string) {
	g.Eventually(func() error {
		mc := &clusterv1.ManagedCluster{}
		if err := testFleet.Hub.Client.Get(ctx, client.ObjectKey{Name: cluster}, mc); err != nil {
			return err
		}
		if value == "" {
			delete(mc.Labels, key)
		} else {
			mc.Labels[key] = value
		}
		return testFleet.Hub.Client.Update(ctx, mc)
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
}

// The spoke's hub certificate is OCM's to renew: when the Secret holding it
// is gone (as when it must be replaced), the registration agent asks for a
// new one by CSR, lifeboat-hub approves it, and the spoke's reader uses the
// new certificate from its next call, with the same narrow permissions.
func TestSpokeHubCredentialReissued(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := testFleet.Spokes[0]
	key := client.ObjectKey{Namespace: fleetv1alpha1.AddOnNamespace, Name: fleetv1alpha1.AddOnHubKubeconfigSecret}
	old := &corev1.Secret{}
	g.Eventually(func() error { return s.Client.Get(ctx, key, old) }, time.Minute, 250*time.Millisecond).Should(Succeed())
	src := &hubcredential.Source{Reader: s.Client, ClusterNamespace: s.Name, Scheme: testFleet.Hub.Client.Scheme()}
	g.Expect(src.CatalogAccess(ctx)).To(Succeed())
	before, err := src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	g.Expect(s.Client.Delete(ctx, old)).To(Succeed())
	renewed := &corev1.Secret{}
	g.Eventually(func(g Gomega) {
		g.Expect(s.Client.Get(ctx, key, renewed)).To(Succeed())
		g.Expect(renewed.UID).NotTo(Equal(old.UID))
		g.Expect(renewed.Data).To(HaveKey("tls.crt"))
	}, 3*time.Minute, 250*time.Millisecond).Should(Succeed(), "OCM's registration agent writes a new certificate")
	g.Expect(renewed.Data["tls.crt"]).NotTo(Equal(old.Data["tls.crt"]))
	after, err := src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(after.CertData).NotTo(Equal(before.CertData), "the reader uses the new certificate")
	g.Expect(src.CatalogAccess(ctx)).To(Succeed())
	c, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	err = c.Create(ctx, &fleetv1alpha1.BackupCatalog{ObjectMeta: metav1.ObjectMeta{Namespace: testFleet.Spokes[1].Name, Name: "reissued"}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "still not another cluster's namespace: %v", err)
	t.Logf("%s: a new hub certificate %s after the old one's Secret was deleted", s.Name, time.Since(start).Round(time.Millisecond))
}
