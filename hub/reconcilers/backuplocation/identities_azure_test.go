package backuplocation

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backuptarget"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// One location over 26 clusters, each a real kube-apiserver with its own
// service-account issuer as every shoot has, and two Entra identities: A
// federated with the location's subject on 13 clusters' issuers, B on the
// other 13. The Entra stand-in refuses a 21st federated credential on one
// identity, so one identity cannot cover the location. The hub reconciler
// maps the clusters to A and B (spec.identity and a spec.identities entry);
// on each cluster the spoke's BackupTarget reconciler validates the target
// the hub sent it, signing in as the target's own ServiceAccount with that
// cluster's token at the Entra stand-in and probing the container through
// the authorizing blob proxy. Every target is Valid, as its identity, and so
// is the location on all 26 once the agents' feedback reaches the hub.
func TestLocationOver25ClustersWithTwoIdentitiesIsValidEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 26 kube-apiservers")
	}
	const n, namespace, name, container = 26, "team-over25", "fleet-wide", "fleet-wide"
	g := NewWithT(t)
	// About 90 s on 2 cores; a busy machine may need several times that to start 26 API servers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()

	az, err := fleet.StartAzure(ctx, dir)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(az.Stop)
	clusters, etcd := startClusters(t, ctx, dir, n, az)

	t.Log("the fleet admin's Azure: identities A and B with a role on the container, each federated with 13 clusters' issuers")
	g.Expect(az.CreateContainer(ctx, container)).To(Succeed())
	idA, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	idB, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	subject := FederatedSubject(namespace, name)
	want := map[string]fleet.Identity{} // by cluster
	for i, cp := range clusters {
		group, id := "a", idA
		if i >= n/2 {
			group, id = "b", idB
		}
		want[cp.Name] = id
		createCluster(t, g, cp.Name, map[string]string{"fleet": "over25", "group": group}, true)
		g.Expect(az.Federate(id, cp, subject)).To(Succeed())
	}
	for _, id := range []fleet.Identity{idA, idB} {
		az.Grant(id, container, blobproxy.StorageBlobDataContributor)
		g.Expect(az.Entra.FederatedCredentials(fleet.TenantID, id.ClientID)).To(HaveLen(n / 2))
	}

	t.Log("one identity for all 26: Entra refuses the 21st federated credential")
	single, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	for i, cp := range clusters[:21] {
		err := az.Federate(single, cp, subject)
		if i < 20 {
			g.Expect(err).NotTo(HaveOccurred(), "credential %d", i+1)
			continue
		}
		g.Expect(err).To(MatchError(ContainSubstring("already has 20 federated credentials")))
	}

	t.Log("the hub maps the 26 clusters to A (spec.identity) and B (group b)")
	loc := newLocation(t, g, namespace, name, backupv1alpha1.StorageTarget{
		Azure:              backupv1alpha1.AzureBlobLocation{StorageAccount: fleet.StorageAccount, Container: container, Endpoint: az.BlobEndpoint()},
		Identity:           backupv1alpha1.AzureWorkloadIdentity{ClientID: idA.ClientID, TenantID: fleet.TenantID},
		ValidationInterval: &metav1.Duration{Duration: time.Hour},
	}, func(s *fleetv1alpha1.BackupLocationSpec) {
		s.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"fleet": "over25"}}
		s.Identities = []fleetv1alpha1.ClusterIdentity{{
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"group": "b"}},
			Identity:        backupv1alpha1.AzureWorkloadIdentity{ClientID: idB.ClientID, TenantID: fleet.TenantID},
		}}
	})
	g.Eventually(workClusters(loc)).WithTimeout(timeout).Should(HaveLen(n))

	t.Log("each cluster gets the BackupTarget the hub sent it (as the work agent applies it) and runs the spoke's reconciler")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(az.Entra.CACertPEM())
	roots.AppendCertsFromPEM(az.Proxy.CACertPEM())
	for _, cp := range clusters {
		target := targetIn(g, work(g, loc, cp.Name))
		g.Expect(cp.Client.Create(ctx, target)).To(Succeed())
		tokens, err := kubernetes.NewForConfig(cp.Config)
		g.Expect(err).NotTo(HaveOccurred())
		// Each spoke process has its own credentials: in this one process the
		// package's cache would let a cluster reuse another's for the same
		// identity and subject (its key has no issuer).
		factory := &targets.Factory{
			Tokens: tokens, AuthorityHost: az.Entra.AuthorityHost(), RootCAs: roots, AllowedEndpoints: targets.Endpoints{az.BlobEndpoint()},
			Options: []blob.Option{blob.WithCredentialCache(blob.NewCredentialCache())},
		}
		fleet.StartTestManager(t, cp.Config, func(mgr ctrl.Manager) error {
			return (&backuptarget.Reconciler{Client: mgr.GetClient(), Targets: factory}).SetupWithManager(mgr)
		})
	}

	t.Log("every target is Valid, signed in as its cluster's identity")
	validating := time.Now()
	key := client.ObjectKey{Name: TargetName(namespace, name)}
	g.Eventually(func(g Gomega) {
		for _, cp := range clusters {
			target := &backupv1alpha1.BackupTarget{}
			g.Expect(cp.Client.Get(ctx, key, target)).To(Succeed())
			g.Expect(target.Status).To(And(
				HaveField("Phase", backupv1alpha1.TargetValid),
				HaveField("Reason", backupv1alpha1.ReasonValidationSucceeded),
				HaveField("FederatedSubject", subject),
			), "the BackupTarget on %s: %s", cp.Name, target.Status.Message)
			g.Expect(target.Spec.Identity.ClientID).To(Equal(want[cp.Name].ClientID), "the identity the hub chose for %s", cp.Name)
			g.Expect(target.Status.Message).To(ContainSubstring(want[cp.Name].ClientID), "%s validated as that identity", cp.Name)
		}
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
	t.Logf("all %d targets Valid %v after they were applied", n, time.Since(validating).Round(time.Millisecond))
	exchanges := az.Entra.Exchanges()
	for _, cp := range clusters {
		g.Expect(exchanges).To(ContainElement(And(
			HaveField("ClientID", want[cp.Name].ClientID), HaveField("Issuer", cp.Issuer()), HaveField("Subject", subject),
		)), "Entra exchanged a token of %s's own issuer", cp.Name)
	}

	t.Log("the agents feed the targets' status back: the location is Valid on all 26")
	for _, cp := range clusters {
		target := &backupv1alpha1.BackupTarget{}
		g.Expect(cp.Client.Get(ctx, key, target)).To(Succeed())
		hubGeneration, err := strconv.ParseInt(target.Annotations[dispatch.AnnotationGeneration], 10, 64)
		g.Expect(err).NotTo(HaveOccurred())
		st := target.Status
		simulateAgent(g, loc, cp.Name, hubGeneration, target.Generation, st.ObservedGeneration, string(st.Phase), st.Reason, st.Message, st.LastValidationTime.Time)
	}
	g.Eventually(status(loc)).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.LocationValid),
		HaveField("ValidClusters", BeEquivalentTo(n)),
		HaveField("SelectedClusters", BeEquivalentTo(n)),
	))
	// Each cluster's connection, as the CLI reads it from its work's feedback.
	conns, err := locations.Connections(ctx, hubClient, loc)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(conns).To(HaveLen(n))
	for _, c := range conns {
		g.Expect(c.Phase).To(Equal(backupv1alpha1.TargetValid), "connection of %s: %s", c.Cluster, c.Message)
	}
	logMemory(t, clusters, etcd)
}

// startClusters starts n control planes (no controller-manager) on one
// shared etcd, a few at a time, each set up as a shoot with the spoke's CRDs
// would be: lifeboat-system, its issuer's discovery documents readable by
// Entra, whose stand-in trusts the issuer's CA. They stop when the test ends.
func startClusters(t *testing.T, ctx context.Context, dir string, n int, az *fleet.Azure) ([]*fleet.ControlPlane, *fleet.Etcd) {
	t.Helper()
	start := time.Now()
	etcd, err := fleet.StartEtcd(ctx, "clusters", filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Stop)
	crds, err := fleet.CRDFiles(filepath.Join(fleet.RepoRoot(), "charts/lifeboat-spoke/crds"))
	if err != nil {
		t.Fatal(err)
	}
	const parallel = 4
	clusters := make([]*fleet.ControlPlane, n)
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, cp := range clusters {
			if cp != nil {
				wg.Go(cp.Stop)
			}
		}
		wg.Wait()
	})
	var eg errgroup.Group
	eg.SetLimit(parallel)
	for i := range clusters {
		eg.Go(func() error {
			name := fmt.Sprintf("over25-%02d", i)
			cp, err := fleet.StartControlPlane(ctx, name, filepath.Join(dir, name), false, fleet.OnEtcd(etcd))
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			clusters[i] = cp
			if err := fleet.InstallCRDs(ctx, cp.Client, crds...); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: backupv1alpha1.TargetServiceAccountNamespace}}); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := fleet.AllowIssuerDiscovery(ctx, cp); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return az.Entra.TrustIssuerCA(cp.Issuer(), cp.CA.CertPEM())
		})
	}
	if err := eg.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d control planes on one etcd, %d at a time, started and set up in %v", n, parallel, time.Since(start).Round(time.Millisecond))
	return clusters, etcd
}

// logMemory logs the peak memory (VmHWM) of the clusters' etcd and API
// servers and of this test process (the hub's and the spokes' reconcilers).
func logMemory(t *testing.T, clusters []*fleet.ControlPlane, etcd *fleet.Etcd) {
	t.Helper()
	mib := func(p int) float64 {
		kib, err := proc.MemKiB(p, "VmHWM")
		if err != nil {
			t.Logf("memory of %d: %v", p, err)
		}
		return float64(kib) / 1024
	}
	var apiservers, most float64
	for _, cp := range clusters {
		for _, p := range cp.Processes() {
			m := mib(p.Pid())
			apiservers += m
			most = max(most, m)
		}
	}
	t.Logf("peak memory: %d kube-apiservers %.0f MiB (%.0f MiB each on average, at most %.0f), their etcd %.0f MiB, test process %.0f MiB",
		len(clusters), apiservers, apiservers/float64(len(clusters)), most, mib(etcd.Process().Pid()), mib(os.Getpid()))
}
