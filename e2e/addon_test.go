package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	spokecrds "github.com/lifeboat-dev/lifeboat/spoke/crds"
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

	t.Log("the add-on's ManifestWork holds no CRD: the spoke applied its CRDs itself")
	works := &workv1.ManifestWorkList{}
	g.Expect(hub.List(ctx, works, client.InNamespace(s.Name), client.MatchingLabels{"open-cluster-management.io/addon-name": fleetv1alpha1.AddOnName})).To(Succeed())
	g.Expect(works.Items).NotTo(BeEmpty())
	size := 0
	for _, w := range works.Items {
		for _, m := range w.Spec.Workload.Manifests {
			size += len(m.Raw)
			g.Expect(string(m.Raw)).NotTo(ContainSubstring(`"kind":"CustomResourceDefinition"`), "work %s", w.Name)
		}
	}
	t.Logf("%s: %d add-on ManifestWork(s), %d bytes of manifests", s.Name, len(works.Items), size)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(s.Client.Get(ctx, client.ObjectKey{Name: "applicationbackups.backup.lifeboat.dev"}, crd)).To(Succeed())
	g.Expect(crd.ManagedFields).To(ContainElement(HaveField("Manager", spokecrds.FieldManager)), "the spoke applied it")

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
	old := &corev1.Secret{}
	g.Eventually(func() error { return s.Client.Get(ctx, addOnSecret, old) }, time.Minute, 250*time.Millisecond).Should(Succeed())
	src := &hubcredential.Source{Reader: s.Client, ClusterNamespace: s.Name, Scheme: testFleet.Hub.Client.Scheme()}
	g.Expect(src.CatalogAccess(ctx)).To(Succeed())
	before, err := src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	g.Expect(s.Client.Delete(ctx, old)).To(Succeed())
	renewed := &corev1.Secret{}
	g.Eventually(func(g Gomega) {
		g.Expect(s.Client.Get(ctx, addOnSecret, renewed)).To(Succeed())
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
	expectCatalogWriterOnly(g, ctx, c, s, testFleet.Spokes[1])
	t.Logf("%s: a new hub certificate %s after the old one's Secret was deleted", s.Name, time.Since(start).Round(time.Millisecond))
}

// The spoke's hub certificate is renewed by OCM as it nears its expiry, and
// the spoke works across the renewal without a restart. While the hub's
// kube-controller-manager signs certificates for 3 minutes, spoke-1's add-on
// certificate is issued anew (its Secret deleted); then the hub signs for its
// default year again. OCM's registration agent asks for a new certificate
// once less than 20-25% of the short one's life remains, lifeboat-hub
// approves the CSR, and the agent writes the new certificate into the Secret
// before the old one expires. Once the old one has expired (the hub refuses
// it), the same spoke pod, not restarted, still writes BackupCatalogs with
// the new one: a catalog sync completes and the namespace inventory lists a
// new namespace. Backups succeed before and after, and the new certificate
// may write BackupCatalogs only in its own cluster namespace.
func TestSpokeHubCredentialRotatesBeforeExpiry(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	hub := testFleet.Hub
	s, other := testFleet.Spokes[0], testFleet.Spokes[1]
	const team, container, signing = "team-rotate", "rotate-backups", 3 * time.Minute
	waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)
	pod, err := fleet.SpokePod(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	loc, _ := validTeamLocation(g, ctx, team, container, s)
	ns := "rotate-" + rand.String(4)
	ensureNamespace(g, ctx, s.Client, ns, nil)
	createConfigMaps(g, ctx, s.Client, ns, 5, 0)

	t.Logf("the hub signs certificates for %s; %s's add-on certificate is issued anew", signing, s.Name)
	first := addOnCertificate(g, ctx, s)
	g.Expect(hub.SetClusterSigningDuration(ctx, signing)).To(Succeed())
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		g.Expect(hub.SetClusterSigningDuration(rctx, 0)).To(Succeed(), "the hub signs for a year again")
	}
	defer restore()
	g.Expect(s.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: addOnSecret.Namespace, Name: addOnSecret.Name}})).To(Succeed())
	var short *x509.Certificate
	g.Eventually(func(g Gomega) {
		short = addOnCertificate(g, ctx, s)
		g.Expect(short.SerialNumber.Cmp(first.SerialNumber)).NotTo(BeZero())
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed(), "OCM's registration agent writes a new certificate")
	issued := time.Now()
	g.Expect(short.NotAfter.Sub(short.NotBefore)).To(Equal(signing+5*time.Minute), "%s, and NotBefore backdated by 5 minutes", signing)
	g.Expect(short.NotAfter).To(BeTemporally("~", issued.Add(signing), 30*time.Second))
	// The hub's client for the short certificate, to try it once it expired.
	src := &hubcredential.Source{Reader: s.Client, ClusterNamespace: s.Name, Scheme: hub.Client.Scheme()}
	cfg, err := src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.CertData).To(Equal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: short.Raw})))
	shortClient, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: hub.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	restore()
	t.Logf("certificate %x: valid %s to %s (%s, %s of it left)", short.SerialNumber, short.NotBefore.Format(time.TimeOnly), short.NotAfter.Format(time.TimeOnly),
		short.NotAfter.Sub(short.NotBefore), time.Until(short.NotAfter).Round(time.Second))

	t.Log("with it: a backup succeeds and a catalog sync completes")
	succeededHubBackup(g, ctx, team, "before", s, loc.Name, ns)
	sync := completedSync(g, ctx, &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "before"},
		Spec: fleetv1alpha1.BackupSyncSpec{Location: backupv1alpha1.ObjectName(loc.Name), Cluster: backupv1alpha1.ClusterName(s.Name)}})
	g.Expect(sync.Status.Found).To(BeEquivalentTo(1))
	t.Logf("backup and sync done %s after the certificate was issued", time.Since(issued).Round(time.Second))

	var renewed *x509.Certificate
	g.Eventually(func(g Gomega) {
		renewed = addOnCertificate(g, ctx, s)
		g.Expect(renewed.SerialNumber.Cmp(short.SerialNumber)).NotTo(BeZero())
	}, time.Until(short.NotAfter)+time.Minute, 250*time.Millisecond).Should(Succeed(), "OCM's registration agent renews the certificate")
	rotated := time.Now()
	life := short.NotAfter.Sub(short.NotBefore)
	used := float64(rotated.Sub(short.NotBefore)) / float64(life)
	t.Logf("renewed %s after issue, %.0f%% into its life, %s before it expired: certificate %x valid to %s",
		rotated.Sub(issued).Round(time.Second), 100*used, short.NotAfter.Sub(rotated).Round(time.Second), renewed.SerialNumber, renewed.NotAfter.Format(time.DateTime))
	g.Expect(rotated).To(BeTemporally("<", short.NotAfter), "renewed before the old certificate expired")
	g.Expect(used).To(BeNumerically(">=", 0.75), "renewed once less than a quarter of its life remained, not at once")
	// The kube-controller-manager's default is a year, cut to the fleet CA's week.
	g.Expect(renewed.NotAfter).To(BeTemporally(">", short.NotAfter.Add(24*time.Hour)), "signed for the hub's default duration again")
	g.Expect(renewed.PublicKey).NotTo(Equal(short.PublicKey), "with a new key")

	t.Log("once the old certificate has expired the hub refuses it")
	time.Sleep(time.Until(short.NotAfter.Add(2 * time.Second)))
	err = shortClient.Create(ctx, &authenticationv1.SelfSubjectReview{})
	g.Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "the expired certificate: %v", err)

	t.Log("the same spoke pod writes BackupCatalogs: a sync completes, the inventory lists a new namespace; a backup succeeds")
	later := "rotate-later-" + rand.String(4)
	ensureNamespace(g, ctx, s.Client, later, nil)
	succeededHubBackup(g, ctx, team, "after", s, loc.Name, ns)
	sync = completedSync(g, ctx, &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "after"},
		Spec: fleetv1alpha1.BackupSyncSpec{Location: backupv1alpha1.ObjectName(loc.Name), Cluster: backupv1alpha1.ClusterName(s.Name)}})
	g.Expect(sync.Status.Found).To(BeEquivalentTo(2), "both backups")
	g.Eventually(func(g Gomega) {
		page := &fleetv1alpha1.BackupCatalog{}
		g.Expect(hub.Client.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: fleetv1alpha1.InventoryPageName}, page)).To(Succeed())
		g.Expect(page.Spec.Inventory).NotTo(BeNil())
		g.Expect(page.Spec.Inventory.Namespaces).To(ContainElement(BeEquivalentTo(later)))
	}, time.Minute, time.Second).Should(Succeed(), "the spoke reports its new namespace")
	now, err := fleet.SpokePod(ctx, s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(now.UID).To(Equal(pod.UID), "the same pod")
	g.Expect(restarts(now)).To(Equal(restarts(pod)), "not restarted")
	waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)

	t.Log("the new certificate may write BackupCatalogs only in its own cluster namespace")
	c, err := src.Client(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err = src.Config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.CertData).To(Equal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: renewed.Raw})))
	expectCatalogWriterOnly(g, ctx, c, s, other)
	t.Logf("%s: rotation by expiry shown in %s", s.Name, time.Since(began).Round(time.Second))
}

// addOnSecret is where OCM's registration agent keeps a spoke's add-on
// credential for the hub.
var addOnSecret = client.ObjectKey{Namespace: fleetv1alpha1.AddOnNamespace, Name: fleetv1alpha1.AddOnHubKubeconfigSecret}

// addOnCertificate is the client certificate in spoke s's add-on Secret.
func addOnCertificate(g Gomega, ctx context.Context, s *fleet.Spoke) *x509.Certificate {
	secret := &corev1.Secret{}
	g.Expect(s.Client.Get(ctx, addOnSecret, secret)).To(Succeed())
	certs, err := certutil.ParseCertsPEM(secret.Data["tls.crt"])
	g.Expect(err).NotTo(HaveOccurred())
	return certs[0]
}

// restarts is how often the containers of pod were restarted.
func restarts(pod *corev1.Pod) int32 {
	var n int32
	for _, c := range pod.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}
