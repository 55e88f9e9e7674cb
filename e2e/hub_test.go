package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/cli"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
)

// The shoots of the fleet's garden project are discovered by lifeboat-hub
// and become Online clusters through the lifeboat OCM add-on. A shoot added
// later goes the whole way without a restart: its Shoot is created, discovery
// makes its ManagedCluster, its klusterlet joins by CSR, the add-on's
// placement selects it, the add-on installs the spoke pod, the
// ManagedClusterAddOn is Available, and a hub Backup there succeeds; the
// time from the Shoot to that backup is logged. Removing the shoot's label
// makes it Unmanaged, and adding it back re-manages it.
func TestDiscoveryOnboardsShoots(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	hub, az := testFleet.Hub.Client, testFleet.Azure

	for _, s := range onboarded() {
		bc := waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)
		g.Expect(bc.Spec.Shoot).To(Equal(&fleetv1alpha1.ShootInfo{Project: fleet.GardenProject, Name: s.Shoot, Seed: bc.Spec.Shoot.Seed, Provider: "azure", Region: bc.Spec.Shoot.Region}))
		g.Expect(bc.Spec.DiscoveredBy).To(ConsistOf(backupv1alpha1.ObjectName(fleet.DiscoveryName)))
		g.Expect(meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionAvailable)).To(HaveField("Reason", fleetv1alpha1.ReasonAddOnAvailable))
		mca := &addonv1alpha1.ManagedClusterAddOn{}
		g.Expect(hub.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: fleetv1alpha1.AddOnName}, mca)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(mca.Status.Conditions, addonv1alpha1.ManagedClusterAddOnConditionAvailable)).To(BeTrue(), "the add-on is Available on %s", s.Name)
		g.Expect(mca.Status.Namespace).To(Equal(fleetv1alpha1.AddOnNamespace))
		works := &workv1.ManifestWorkList{}
		g.Expect(hub.List(ctx, works, client.InNamespace(s.Name), client.MatchingLabels{"open-cluster-management.io/addon-name": fleetv1alpha1.AddOnName})).To(Succeed())
		g.Expect(works.Items).NotTo(BeEmpty(), "the add-on framework's ManifestWork installs the spoke on %s", s.Name)
		for _, w := range works.Items {
			g.Expect(meta.IsStatusConditionTrue(w.Status.Conditions, workv1.WorkApplied)).To(BeTrue(), "%s is applied on %s", w.Name, s.Name)
		}
		g.Expect(hub.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: "lifeboat-agent"}, &workv1.ManifestWork{})).NotTo(Succeed(), "no hand-made agent work")
		g.Eventually(func() *metav1.Condition {
			bc, _ := testFleet.BackupCluster(ctx, s)
			return meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionHubAccess)
		}, time.Minute, 250*time.Millisecond).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue)),
			"OCM registered the spoke on %s with the hub", s.Name)
		t.Logf("%s: %s, add-on %s", s.Name, bc.Status.Phase, meta.FindStatusCondition(mca.Status.Conditions, addonv1alpha1.ManagedClusterAddOnConditionAvailable).Message)
	}
	late := testFleet.Spokes[2]
	g.Expect(apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Name: late.Name}, &fleetv1alpha1.BackupCluster{}))).To(BeTrue(), "%s has no Shoot yet", late.Name)

	t.Log("a location for the late cluster, its identity federated there, before its Shoot exists")
	const team, container = "team-late", "late-backups"
	id, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(az.Federate(id, late.ControlPlane, backuplocation.FederatedSubject(team, "primary"))).To(Succeed())
	az.Grant(id, container, blobproxy.StorageBlobDataContributor)
	g.Expect(az.CreateContainer(ctx, container)).To(Succeed())
	ensureNamespace(g, ctx, hub, team, nil)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: fleet.StorageAccount, Container: container, Prefix: team, Endpoint: az.SpokeBlobEndpoint()},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID},
			},
			Clusters: fleet.ClusterNames(late),
		},
	}
	g.Expect(hub.Create(ctx, loc)).To(Succeed())
	ns := "late-" + rand.String(4)
	ensureNamespace(g, ctx, late.Client, ns, nil)
	createConfigMaps(g, ctx, late.Client, ns, 10, 1<<10)

	start := time.Now()
	g.Expect(testFleet.Onboard(ctx, late)).To(Succeed())
	installed := time.Since(start)
	// OCM's agents exit when their informers have not synced in 10 minutes,
	// as they cannot before the cluster is accepted; the fleet starts them
	// again like their Deployments would.
	t.Logf("%s's klusterlet agents, waiting for acceptance since the fleet started, were started again: registration %d, work %d times",
		late.Name, late.RegistrationAgent.Restarts(), late.WorkAgent.Restarts())
	// The backup needs the spoke running, not its add-on Available: it is
	// created once the location is Valid there.
	g.Eventually(locationOn(ctx, late, loc), 2*time.Minute, 100*time.Millisecond).Should(HaveField("Phase", backupv1alpha1.TargetValid))
	b := hubBackup(team, "first", late, loc.Name, ns)
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Eventually(func() fleetv1alpha1.BackupPhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		return b.Status.Phase
	}, 3*time.Minute, 100*time.Millisecond).Should(BeElementOf(fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupPartialSuccess))
	g.Expect(b.Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess), "conditions: %+v", b.Status.Conditions)
	first := time.Since(start)
	waitClusterPhase(g, ctx, late, fleetv1alpha1.ClusterOnline)
	online := time.Since(start)
	mca := &addonv1alpha1.ManagedClusterAddOn{}
	g.Expect(hub.Get(ctx, client.ObjectKey{Namespace: late.Name, Name: fleetv1alpha1.AddOnName}, mca)).To(Succeed())
	g.Expect(meta.IsStatusConditionTrue(mca.Status.Conditions, addonv1alpha1.ManagedClusterAddOnConditionAvailable)).To(BeTrue())
	t.Logf("%s: Shoot created -> spoke pod installed by the add-on and leading %s -> first successful backup %s (goal < 60s) -> ManagedClusterAddOn Available, BackupCluster Online %s",
		late.Name, installed.Round(time.Millisecond), first.Round(time.Millisecond), online.Round(time.Millisecond))

	setShootLabel(g, ctx, late, "disabled")
	bc := waitClusterPhase(g, ctx, late, fleetv1alpha1.ClusterUnmanaged)
	g.Expect(bc.Spec.Managed).To(BeFalse())
	g.Expect(hub.Get(ctx, client.ObjectKey{Name: late.Name}, &corev1.Namespace{})).To(Succeed(), "an unmanaged cluster keeps its namespace and backups")
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed(), "and its Backups")

	setShootLabel(g, ctx, late, "enabled")
	waitClusterPhase(g, ctx, late, fleetv1alpha1.ClusterOnline)
}

// One BackupLocation is Valid on spoke-1 and Invalid on spoke-2, shown on the
// location and on each cluster; a Backup on spoke-2 fails at once; after
// spoke-2 is federated the location turns Valid there by itself. A hub
// Backup on spoke-1 then shows its progress and succeeds, and a hub Restore
// brings it to spoke-2 in another namespace.
func TestHubLocationBackupAndRestore(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	hub, az := testFleet.Hub.Client, testFleet.Azure
	spoke1, spoke2 := testFleet.Spokes[0], testFleet.Spokes[1]
	const team, container = "team-hub", "hub-backups"

	id, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	subject := backuplocation.FederatedSubject(team, "primary")
	g.Expect(az.Federate(id, spoke1.ControlPlane, subject)).To(Succeed()) // not yet with spoke-2
	az.Grant(id, container, blobproxy.StorageBlobDataContributor)
	g.Expect(az.CreateContainer(ctx, container)).To(Succeed())

	ensureNamespace(g, ctx, hub, team, nil)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure: backupv1alpha1.AzureBlobLocation{
					StorageAccount: fleet.StorageAccount, Container: container, Prefix: team,
					Endpoint: az.SpokeBlobEndpoint(),
				},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID},
			},
			Clusters: fleet.ClusterNames(spoke1, spoke2),
		},
	}
	g.Expect(hub.Create(ctx, loc)).To(Succeed())

	t.Log("Valid on spoke-1, Invalid (AuthenticationFailed) on spoke-2, on the location and on each cluster")
	g.Eventually(func(g Gomega) {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		g.Expect(loc.Status.Phase).To(Equal(fleetv1alpha1.LocationLimitedAvailability))
		g.Expect(connections(g, ctx, loc)).To(ConsistOf(
			And(HaveField("Cluster", spoke1.Name), HaveField("Phase", backupv1alpha1.TargetValid)),
			And(HaveField("Cluster", spoke2.Name), HaveField("Phase", backupv1alpha1.TargetInvalid),
				HaveField("Reason", backupv1alpha1.ReasonAuthenticationFailed), HaveField("Message", ContainSubstring("AADSTS700211"))),
		))
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Eventually(locationOn(ctx, spoke1, loc), time.Minute, 250*time.Millisecond).Should(HaveField("Phase", backupv1alpha1.TargetValid))
	g.Eventually(locationOn(ctx, spoke2, loc), time.Minute, 250*time.Millisecond).Should(And(
		HaveField("Phase", backupv1alpha1.TargetInvalid), HaveField("Reason", backupv1alpha1.ReasonAuthenticationFailed)))

	t.Log("a Backup on spoke-2 fails at once with the location's reason there, and nothing is sent")
	ns := "shop-" + rand.String(4)
	refused := hubBackup(team, "on-spoke-2", spoke2, loc.Name, ns)
	g.Expect(hub.Create(ctx, refused)).To(Succeed())
	g.Eventually(func() fleetv1alpha1.BackupPhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(refused), refused)).To(Succeed())
		return refused.Status.Phase
	}, 10*time.Second, 100*time.Millisecond).Should(Equal(fleetv1alpha1.BackupFailed))
	ready := meta.FindStatusCondition(refused.Status.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(fleetv1alpha1.ReasonLocationNotValid))
	g.Expect(ready.Message).To(And(ContainSubstring(spoke2.Name), ContainSubstring("AuthenticationFailed")))
	t.Logf("refused: %s: %s", ready.Reason, ready.Message)
	works := &workv1.ManifestWorkList{}
	g.Expect(hub.List(ctx, works, client.InNamespace(spoke2.Name), client.MatchingLabels{dispatch.LabelKind: "Backup", dispatch.LabelName: refused.Name})).To(Succeed())
	g.Expect(works.Items).To(BeEmpty())

	t.Log("after spoke-2 is federated, the location turns Valid there without other action")
	federated := time.Now()
	g.Expect(az.Federate(id, spoke2.ControlPlane, subject)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		g.Expect(loc.Status.Phase).To(Equal(fleetv1alpha1.LocationValid))
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Eventually(locationOn(ctx, spoke2, loc), time.Minute, 250*time.Millisecond).Should(HaveField("Phase", backupv1alpha1.TargetValid))
	t.Logf("Valid on both clusters %s after federation", time.Since(federated).Round(time.Millisecond))

	t.Log("a hub Backup of a namespace on spoke-1 shows its progress and succeeds")
	deploySample(g, ctx, spoke1.Client, ns)
	createConfigMaps(g, ctx, spoke1.Client, ns, 1000, 8<<10)
	original := snapshot(g, ctx, spoke1.Client, ns)
	// Slow storage keeps the backup running long enough to watch it.
	az.Proxy.SetWriteDelay(time.Second)
	defer az.Proxy.SetWriteDelay(0)
	b := hubBackup(team, "shop", spoke1, loc.Name, ns)
	skipVolumes(b)
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	g.Eventually(func() *backupv1alpha1.Progress {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		if b.Status.Phase != fleetv1alpha1.BackupInProgress {
			return nil
		}
		return b.Status.Progress
	}, 2*time.Minute, 100*time.Millisecond).Should(And(Not(BeNil()), HaveField("ItemsTotal", BeNumerically(">", 0))))
	t.Logf("on the hub while running: stage %s, %d/%d items, %d bytes", b.Status.Stage, b.Status.Progress.ItemsDone, b.Status.Progress.ItemsTotal, b.Status.Progress.BytesDone)
	az.Proxy.SetWriteDelay(0)
	g.Eventually(func() fleetv1alpha1.BackupPhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		return b.Status.Phase
	}, 3*time.Minute, 250*time.Millisecond).Should(BeElementOf(fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupPartialSuccess))
	g.Expect(b.Status.Phase).To(Equal(fleetv1alpha1.BackupPartialSuccess), "conditions: %+v", b.Status.Conditions)
	g.Expect(readyMessage(b.Status.Conditions)).To(ContainSubstring(sampleDataSkipped(ns)))
	g.Expect(b.Status.BackupID).NotTo(BeEmpty())
	g.Expect(b.Status.Progress.ItemsDone).To(BeNumerically(">=", len(original)))
	g.Expect(b.Status.CompletionTime).NotTo(BeNil())
	t.Logf("hub Backup %s: %d items, %d bytes", b.Status.BackupID, b.Status.Progress.ItemsDone, b.Status.Progress.BytesDone)

	t.Log("a hub Restore of that Backup to spoke-2, into another namespace")
	mapped := ns + "-copy"
	rs := &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "shop-to-spoke-2"},
		Spec: fleetv1alpha1.RestoreSpec{
			Backup:  backupv1alpha1.ObjectName(b.Name),
			Cluster: backupv1alpha1.ClusterName(spoke2.Name),
			RestoreOptions: backupv1alpha1.RestoreOptions{
				NamespaceMapping: backupv1alpha1.NamespaceMapping{ns: backupv1alpha1.NamespaceName(mapped)},
			},
		},
	}
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Eventually(func() backupv1alpha1.RestorePhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(rs), rs)).To(Succeed())
		return rs.Status.Phase
	}, 3*time.Minute, 250*time.Millisecond).Should(BeElementOf(backupv1alpha1.RestoreSuccess, backupv1alpha1.RestoreFailed, backupv1alpha1.RestorePartialSuccess))
	g.Expect(rs.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), "conditions: %+v", rs.Status.Conditions)
	g.Expect(rs.Status.Cluster).To(BeEquivalentTo(spoke2.Name))
	g.Expect(rs.Status.Progress.ItemsDone).To(BeNumerically(">=", len(original)))
	migrated := snapshot(g, ctx, spoke2.Client, mapped)
	for key, want := range original {
		g.Expect(migrated[key]).To(Equal(remapSubjects(want, ns, mapped)), "%s restored on spoke-2 in %s", key, mapped)
	}
	t.Logf("hub Restore to %s: %d items", rs.Status.Cluster, rs.Status.Progress.ItemsDone)

	t.Log("lifeboat logs restore prints the restore's per-item results, fetched from the bucket through a cluster")
	g.Expect(rs.Status.Log).To(HavePrefix(fmt.Sprintf("lifeboat/v1/backups/%s/%s/restores/%s/", spoke1.Name, b.Status.BackupID, spoke2.Name)))
	var out, errOut bytes.Buffer
	code := (&cli.App{Out: &out, Err: &errOut}).Run(ctx, []string{"--kubeconfig", testFleet.Hub.AdminKubeconfig, "logs", "restore", rs.Name, "-n", team})
	g.Expect(code).To(Equal(cli.ExitOK), "stderr: %s", errOut.String())
	g.Expect(out.String()).To(ContainSubstring(`"result":"created"`))
	g.Expect(strings.Count(out.String(), `"result":`)).To(BeNumerically(">=", len(original)), "a result per item")
	t.Log("and lifeboat logs backup the backup's own log, cut to --limit-bytes")
	out.Reset()
	errOut.Reset()
	code = (&cli.App{Out: &out, Err: &errOut}).Run(ctx, []string{"--kubeconfig", testFleet.Hub.AdminKubeconfig, "logs", "backup", b.Name, "-n", team, "--limit-bytes", "100"})
	g.Expect(code).To(Equal(cli.ExitOK), "stderr: %s", errOut.String())
	g.Expect(out.Len()).To(BeNumerically("<=", 100))
	runLogs := &fleetv1alpha1.RunLogList{}
	g.Eventually(func() []fleetv1alpha1.RunLog {
		g.Expect(hub.List(ctx, runLogs, client.InNamespace(team))).To(Succeed())
		return runLogs.Items
	}, time.Minute, time.Second).Should(BeEmpty(), "the RunLogs are gone once printed")
}

// The spoke's credential for the hub, the client certificate OCM's
// registration agent obtained for the lifeboat add-on by CSR, may create a
// BackupCatalog in its own cluster namespace and nothing else.
func TestSpokeHubCredentialIsScoped(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spoke1, spoke2 := testFleet.Spokes[0], testFleet.Spokes[1]
	// The Secret as the spoke reads it; the test uses the kubeconfig's own
	// address, the hub's loopback one, from the host.
	src := &hubcredential.Source{Reader: spoke1.Client, ClusterNamespace: spoke1.Name, Scheme: testFleet.Hub.Client.Scheme()}
	var c client.Client
	g.Eventually(func() (err error) {
		c, err = src.Client(ctx)
		return err
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Expect(src.CatalogAccess(ctx)).To(Succeed())
	expectCatalogWriterOnly(g, ctx, c, spoke1, spoke2)
}

// expectCatalogWriterOnly checks that c, the hub credential of spoke s, is a
// certificate OCM issued for s's lifeboat add-on that may create (and
// delete) a BackupCatalog in s's cluster namespace on the hub, and may not
// create one in the namespace of other nor read Secrets, ManifestWork, hub
// Backups or other's add-on.
func expectCatalogWriterOnly(g Gomega, ctx context.Context, c client.Client, s, other *fleet.Spoke) {
	review := &authenticationv1.SelfSubjectReview{}
	g.Expect(c.Create(ctx, review)).To(Succeed())
	g.Expect(review.Status.UserInfo.Username).To(HavePrefix("system:open-cluster-management:cluster:"+s.Name+":addon:lifeboat:agent:"), "a certificate OCM issued for the add-on")

	page := func(namespace, name string) *fleetv1alpha1.BackupCatalog {
		ref := backupv1alpha1.HubObjectReference{Namespace: "team-hub", Name: "primary"}
		return &fleetv1alpha1.BackupCatalog{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(s.Name), Sync: &ref, Location: &ref, Page: 1, Final: true},
		}
	}
	own := page(s.Name, "scope-"+rand.String(5))
	g.Expect(c.Create(ctx, own)).To(Succeed(), "a catalog page in its own cluster namespace")
	g.Expect(c.Delete(ctx, own)).To(Succeed())

	err := c.Create(ctx, page(other.Name, own.Name))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "not in another cluster's namespace: %v", err)
	g.Expect(apierrors.IsForbidden(c.List(ctx, &corev1.SecretList{}, client.InNamespace(s.Name)))).To(BeTrue(), "no secrets")
	g.Expect(apierrors.IsForbidden(c.List(ctx, &workv1.ManifestWorkList{}, client.InNamespace(s.Name)))).To(BeTrue(), "no ManifestWork")
	g.Expect(apierrors.IsForbidden(c.List(ctx, &fleetv1alpha1.BackupList{}, client.InNamespace("team-hub")))).To(BeTrue(), "no hub Backups")
	g.Expect(apierrors.IsForbidden(c.List(ctx, &addonv1alpha1.ManagedClusterAddOnList{}, client.InNamespace(other.Name)))).To(BeTrue(), "not another cluster's add-on")
}

func hubBackup(namespace, name string, s *fleet.Spoke, location, ns string) *fleetv1alpha1.Backup {
	return &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster: backupv1alpha1.ClusterName(s.Name),
			BackupTemplate: fleetv1alpha1.BackupTemplate{
				Location:  backupv1alpha1.ObjectName(location),
				Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{backupv1alpha1.NamespaceName(ns)}},
			},
		},
	}
}

// waitClusterPhase waits until spoke s's BackupCluster is in phase: up to 4
// minutes, as OCM renews the add-on Lease every 60 s and a loaded CI machine
// has taken over 2 minutes to see a new cluster's add-on Available.
func waitClusterPhase(g Gomega, ctx context.Context, s *fleet.Spoke, phase fleetv1alpha1.BackupClusterPhase) *fleetv1alpha1.BackupCluster {
	var bc *fleetv1alpha1.BackupCluster
	g.Eventually(func() fleetv1alpha1.BackupClusterPhase {
		var err error
		if bc, err = testFleet.BackupCluster(ctx, s); err != nil {
			return ""
		}
		return bc.Status.Phase
	}, 4*time.Minute, 200*time.Millisecond).Should(Equal(phase), "BackupCluster %s", s.Name)
	return bc
}

// locationOn is loc's connection as the BackupCluster of s shows it.
func locationOn(ctx context.Context, s *fleet.Spoke, loc *fleetv1alpha1.BackupLocation) func() backupv1alpha1.ValidationState {
	return func() backupv1alpha1.ValidationState {
		bc, err := testFleet.BackupCluster(ctx, s)
		if err != nil {
			return backupv1alpha1.ValidationState{}
		}
		for _, l := range bc.Status.Locations {
			if l.Namespace == loc.Namespace && l.Name == loc.Name {
				return l.ValidationState
			}
		}
		return backupv1alpha1.ValidationState{}
	}
}

// setShootLabel sets the backup label on s's Shoot.
func setShootLabel(g Gomega, ctx context.Context, s *fleet.Spoke, value string) {
	shoot := &gardencorev1beta1.Shoot{}
	g.Expect(testFleet.Garden.Client.Get(ctx, client.ObjectKey{Namespace: fleet.ProjectNamespace(fleet.GardenProject), Name: s.Shoot}, shoot)).To(Succeed())
	patch := client.MergeFrom(shoot.DeepCopy())
	shoot.Labels[fleet.ShootBackupLabel] = value
	g.Expect(testFleet.Garden.Client.Patch(ctx, shoot, patch)).To(Succeed())
}
