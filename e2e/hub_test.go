package e2e

import (
	"context"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/clientcmd"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

// The shoots of the fleet's garden project are discovered by lifeboat-hub
// and become Online clusters; a shoot added later is onboarded without a
// restart; removing its label makes it Unmanaged, and adding it back
// re-manages it.
func TestDiscoveryOnboardsShoots(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client

	for _, s := range onboarded() {
		bc := waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)
		g.Expect(bc.Spec.Shoot).To(Equal(&fleetv1alpha1.ShootInfo{Project: fleet.GardenProject, Name: s.Shoot, Seed: bc.Spec.Shoot.Seed, Provider: "azure", Region: bc.Spec.Shoot.Region}))
		g.Expect(bc.Spec.DiscoveredBy).To(ConsistOf(backupv1alpha1.ObjectName(fleet.DiscoveryName)))
		g.Expect(bc.Status.AgentVersion).NotTo(BeEmpty())
		g.Expect(bc.Status.LastHeartbeatTime).NotTo(BeNil())
		agent := &workv1.ManifestWork{}
		g.Expect(hub.Get(ctx, client.ObjectKey{Namespace: s.Name, Name: "lifeboat-agent"}, agent)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(agent.Status.Conditions, workv1.WorkApplied)).To(BeTrue(), "the agent work is applied on %s", s.Name)
		g.Eventually(func() *metav1.Condition {
			bc, _ := testFleet.BackupCluster(ctx, s)
			return meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionHubAccess)
		}, time.Minute, 250*time.Millisecond).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue)),
			"the spoke on %s reads its hub credential from the agent work and the hub accepts it", s.Name)
		t.Logf("%s: %s, agent %s, heartbeat %s", s.Name, bc.Status.Phase, bc.Status.AgentVersion, bc.Status.LastHeartbeatTime)
	}
	late := testFleet.Spokes[2]
	g.Expect(apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Name: late.Name}, &fleetv1alpha1.BackupCluster{}))).To(BeTrue(), "%s has no Shoot yet", late.Name)

	start := time.Now()
	g.Expect(testFleet.Onboard(ctx, late)).To(Succeed())
	waitClusterPhase(g, ctx, late, fleetv1alpha1.ClusterOnline)
	t.Logf("%s onboarded and Online %s after its Shoot was created", late.Name, time.Since(start).Round(time.Millisecond))

	setShootLabel(g, ctx, late, "disabled")
	bc := waitClusterPhase(g, ctx, late, fleetv1alpha1.ClusterUnmanaged)
	g.Expect(bc.Spec.Managed).To(BeFalse())
	g.Expect(hub.Get(ctx, client.ObjectKey{Name: late.Name}, &corev1.Namespace{})).To(Succeed(), "an unmanaged cluster keeps its namespace and backups")

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
	g.Expect(az.Federate(id, spoke1, subject)).To(Succeed()) // not yet with spoke-2
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
		g.Expect(loc.Status.Clusters).To(ConsistOf(
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
	g.Expect(az.Federate(id, spoke2, subject)).To(Succeed())
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
	g.Expect(b.Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess), "conditions: %+v", b.Status.Conditions)
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
}

// The spoke's credential for the hub, applied by the agent work, may create a
// BackupCatalog in its own cluster namespace and nothing else.
func TestSpokeHubCredentialIsScoped(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spoke1, spoke2 := testFleet.Spokes[0], testFleet.Spokes[1]
	secret := &corev1.Secret{}
	g.Eventually(func() error {
		return spoke1.Client.Get(ctx, client.ObjectKey{Namespace: "lifeboat-system", Name: "lifeboat-hub-credential"}, secret)
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	cfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data["kubeconfig"])
	g.Expect(err).NotTo(HaveOccurred())
	cfg.Host = fleet.HostURL(cfg.Host) // the test uses it from the host, not from the spoke's pod
	c, err := client.New(cfg, client.Options{Scheme: testFleet.Hub.Client.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	page := func(namespace, name string) *fleetv1alpha1.BackupCatalog {
		ref := backupv1alpha1.HubObjectReference{Namespace: "team-hub", Name: "primary"}
		return &fleetv1alpha1.BackupCatalog{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(spoke1.Name), Sync: &ref, Location: &ref, Page: 1, Final: true},
		}
	}
	own := page(spoke1.Name, "scope-"+rand.String(5))
	g.Expect(c.Create(ctx, own)).To(Succeed(), "a catalog page in its own cluster namespace")
	g.Expect(c.Delete(ctx, own)).To(Succeed())

	err = c.Create(ctx, page(spoke2.Name, own.Name))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "not in another cluster's namespace: %v", err)
	g.Expect(apierrors.IsForbidden(c.List(ctx, &corev1.SecretList{}, client.InNamespace(spoke1.Name)))).To(BeTrue(), "no secrets")
	g.Expect(apierrors.IsForbidden(c.List(ctx, &workv1.ManifestWorkList{}, client.InNamespace(spoke1.Name)))).To(BeTrue(), "no ManifestWork")
	g.Expect(apierrors.IsForbidden(c.List(ctx, &fleetv1alpha1.BackupList{}, client.InNamespace("team-hub")))).To(BeTrue(), "no hub Backups")
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

// waitClusterPhase waits until spoke s's BackupCluster is in phase.
func waitClusterPhase(g Gomega, ctx context.Context, s *fleet.Spoke, phase fleetv1alpha1.BackupClusterPhase) *fleetv1alpha1.BackupCluster {
	var bc *fleetv1alpha1.BackupCluster
	g.Eventually(func() fleetv1alpha1.BackupClusterPhase {
		var err error
		if bc, err = testFleet.BackupCluster(ctx, s); err != nil {
			return ""
		}
		return bc.Status.Phase
	}, 2*time.Minute, 200*time.Millisecond).Should(Equal(phase), "BackupCluster %s", s.Name)
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
