package fleet

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1alpha1 "open-cluster-management.io/api/cluster/v1alpha1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A spoke joins the hub the way OCM's klusterlet does: its registration
// agent, holding only a bootstrap token, asks for a client certificate by
// CSR; the registration controller approves it, kube-controller-manager signs
// it with the hub CA; the agent keeps the ManagedCluster Joined and Available
// by its lease; and the work agent applies ManifestWork with that certificate.
// The bootstrap token itself cannot put a cluster on the hub. OCM's placement
// controller selects the joined cluster and the add-on manager installs an
// add-on there by that placement.
func TestSpokeJoinsByCSR(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := Start(ctx, Options{Spokes: 1, NoGarden: true, Log: t.Logf})
	g.Expect(err).NotTo(HaveOccurred())
	defer f.Stop()
	s, hub := f.Spokes[0], f.Hub

	csrs := &certificatesv1.CertificateSigningRequestList{}
	g.Expect(hub.Client.List(ctx, csrs, client.MatchingLabels{clusterv1.ClusterNameLabelKey: s.Name})).To(Succeed())
	g.Expect(csrs.Items).NotTo(BeEmpty(), "the registration agent asked for its certificate by CSR")
	csr := csrs.Items[0]
	g.Expect(csr.Spec.Username).To(Equal(BootstrapUser()))
	g.Expect(csr.Spec.SignerName).To(Equal(certificatesv1.KubeAPIServerClientSignerName))
	g.Expect(csr.Status.Conditions).To(ContainElement(And(
		HaveField("Type", certificatesv1.CertificateApproved),
		HaveField("Reason", "AutoApprovedByHubCSRApprovingController"))))
	g.Expect(csr.Status.Certificate).NotTo(BeEmpty(), "kube-controller-manager signed the CSR")

	// The agents' credential is the signed certificate, for the cluster's agent group.
	certPEM, err := os.ReadFile(filepath.Join(filepath.Dir(s.HubKubeconfig), "tls.crt"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(certPEM).To(Equal(csr.Status.Certificate))
	block, _ := pem.Decode(certPEM)
	g.Expect(block).NotTo(BeNil())
	cert, err := x509.ParseCertificate(block.Bytes)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cert.Verify(x509.VerifyOptions{Roots: hub.CA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	g.Expect(err).NotTo(HaveOccurred(), "the hub CA signed the agent's certificate")
	g.Expect(cert.Subject.Organization).To(ContainElement(AgentGroup(s.Name)))
	g.Expect(strings.HasPrefix(cert.Subject.CommonName, AgentGroup(s.Name)+":")).To(BeTrue(), "CN %q", cert.Subject.CommonName)

	g.Eventually(func(g Gomega) {
		mc := &clusterv1.ManagedCluster{}
		g.Expect(hub.Client.Get(ctx, client.ObjectKey{Name: s.Name}, mc)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(mc.Status.Conditions, clusterv1.ManagedClusterConditionHubAccepted)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(mc.Status.Conditions, clusterv1.ManagedClusterConditionJoined)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(mc.Status.Conditions, clusterv1.ManagedClusterConditionAvailable)).To(BeTrue())
	}, 2*time.Minute, time.Second).Should(Succeed(), "the ManagedCluster becomes Joined and Available")

	got, err := ProbeWork(ctx, hub, s)
	g.Expect(err).NotTo(HaveOccurred(), "the work agent applies work with the registration-issued credential")
	g.Expect(got).To(HavePrefix("hello from the hub"))

	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.Dir, "klusterlet", "bootstrap-hub.kubeconfig"))
	g.Expect(err).NotTo(HaveOccurred())
	bootstrap, err := client.New(cfg, client.Options{Scheme: Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	intruder := &clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}, Spec: clusterv1.ManagedClusterSpec{HubAcceptsClient: true}}
	err = bootstrap.Create(ctx, intruder)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the bootstrap token may not create a ManagedCluster, got %v", err)

	// Placement: the registration controller keeps the "global" cluster set of
	// every cluster; a Placement bound to it decides for the joined cluster.
	ns := "ocm-placement"
	g.Expect(hub.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(hub.Client.Create(ctx, &clusterv1beta2.ManagedClusterSetBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "global", Namespace: ns},
		Spec:       clusterv1beta2.ManagedClusterSetBindingSpec{ClusterSet: "global"},
	})).To(Succeed())
	g.Expect(hub.Client.Create(ctx, &clusterv1beta1.Placement{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}})).To(Succeed())
	g.Eventually(func() []string {
		decisions := &clusterv1beta1.PlacementDecisionList{}
		_ = hub.Client.List(ctx, decisions, client.InNamespace(ns), client.MatchingLabels{clusterv1beta1.PlacementLabel: "all"})
		var clusters []string
		for _, d := range decisions.Items {
			for _, c := range d.Status.Decisions {
				clusters = append(clusters, c.ClusterName)
			}
		}
		slices.Sort(clusters)
		return clusters
	}, time.Minute, 500*time.Millisecond).Should(Equal([]string{s.Name}), "the placement controller decides for the joined cluster")

	// The add-on manager installs an add-on on the placement's clusters.
	g.Expect(hub.Client.Create(ctx, &addonv1alpha1.ClusterManagementAddOn{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet-probe"},
		Spec: addonv1alpha1.ClusterManagementAddOnSpec{InstallStrategy: addonv1alpha1.InstallStrategy{
			Type: addonv1alpha1.AddonInstallStrategyPlacements,
			Placements: []addonv1alpha1.PlacementStrategy{{
				PlacementRef:    addonv1alpha1.PlacementRef{Namespace: ns, Name: "all"},
				RolloutStrategy: clusterv1alpha1.RolloutStrategy{Type: clusterv1alpha1.All},
			}},
		}},
	})).To(Succeed())
	g.Eventually(func() error {
		return hub.Client.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: "fleet-probe"}, &addonv1alpha1.ManagedClusterAddOn{})
	}, time.Minute, 500*time.Millisecond).Should(Succeed(), "the add-on manager creates the ManagedClusterAddOn")
	for _, p := range f.OCMHub {
		g.Expect(p.Exited()).NotTo(BeClosed(), "%s exited:\n%s", p.Name, p.Tail(2000))
	}
}
