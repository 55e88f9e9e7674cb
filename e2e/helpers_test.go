package e2e

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// validTarget makes a new identity federated for BackupTarget name's subject
// on every spoke onboarded at start, a container it may use, and the
// BackupTarget (changed by edits) on each of them, and waits until each has
// validated it.
func validTarget(g Gomega, ctx context.Context, name, container string, edits ...func(*backupv1alpha1.BackupTarget)) fleet.Identity {
	az := testFleet.Azure
	id, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	for _, s := range onboarded() {
		g.Expect(az.Federate(id, s.ControlPlane, backupv1alpha1.TargetSubject(name))).To(Succeed())
	}
	az.Grant(id, container, blobproxy.StorageBlobDataContributor)
	g.Expect(az.CreateContainer(ctx, container)).To(Succeed())
	for _, s := range onboarded() {
		t := backupTarget(name, container, id)
		for _, edit := range edits {
			edit(t)
		}
		g.Expect(s.Client.Create(ctx, t)).To(Succeed())
		g.Expect(waitValidated(g, ctx, s.Client, name).Phase).To(Equal(backupv1alpha1.TargetValid), "target %s on %s", name, s.Name)
	}
	return id
}

// validTeamLocation is teamLocation, once the location is Valid.
func validTeamLocation(g Gomega, ctx context.Context, team, container string, spokes ...*fleet.Spoke) (*fleetv1alpha1.BackupLocation, fleet.Identity) {
	loc, id := teamLocation(g, ctx, team, container, spokes...)
	waitLocationPhase(g, ctx, loc, fleetv1alpha1.LocationValid)
	return loc, id
}

// teamLocation makes a new identity federated for the location's subject on
// spokes, a container it may use, and BackupLocation "primary" in hub
// namespace team over that container under prefix team, for spokes.
func teamLocation(g Gomega, ctx context.Context, team, container string, spokes ...*fleet.Spoke) (*fleetv1alpha1.BackupLocation, fleet.Identity) {
	az := testFleet.Azure
	id, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	for _, s := range spokes {
		g.Expect(az.Federate(id, s.ControlPlane, backuplocation.FederatedSubject(team, "primary"))).To(Succeed())
	}
	az.Grant(id, container, blobproxy.StorageBlobDataContributor)
	g.Expect(az.CreateContainer(ctx, container)).To(Succeed())
	return createTeamLocation(g, ctx, team, container, id, spokes...), id
}

// createTeamLocation creates BackupLocation "primary" in hub namespace team
// over container under prefix team, for spokes, signing in as id.
func createTeamLocation(g Gomega, ctx context.Context, team, container string, id fleet.Identity, spokes ...*fleet.Spoke) *fleetv1alpha1.BackupLocation {
	hub, az := testFleet.Hub.Client, testFleet.Azure
	ensureNamespace(g, ctx, hub, team, nil)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: fleet.StorageAccount, Container: container, Prefix: team, Endpoint: az.SpokeBlobEndpoint()},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID},
			},
			Clusters: fleet.ClusterNames(spokes...),
		},
	}
	g.Expect(hub.Create(ctx, loc)).To(Succeed())
	return loc
}

// ensureNamespace creates namespace name on c with labels, if missing.
func ensureNamespace(g Gomega, ctx context.Context, c client.Client, name string, labels map[string]string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	g.Expect(client.IgnoreAlreadyExists(c.Create(ctx, ns))).To(Succeed())
}

// createConfigMaps creates n ConfigMaps in namespace with 16 writers; each
// holds randomBytes of incompressible data besides a small payload.
func createConfigMaps(g Gomega, ctx context.Context, c client.Client, namespace string, n, randomBytes int) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%06d", i), Namespace: namespace, Labels: map[string]string{"app": "bench"}},
					Data:       map[string]string{"index": fmt.Sprint(i), "payload": "lifeboat benchmark payload of a typical small config map"},
				}
				if randomBytes > 0 {
					cm.Data["random"] = rand.String(randomBytes)
				}
				if err := client.IgnoreAlreadyExists(c.Create(ctx, cm)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// waitFinished waits until obj (re-read with get) reports a final phase.
func waitFinished[T client.Object](g Gomega, ctx context.Context, c client.Client, obj T, phase func(T) string, timeout time.Duration) string {
	var p string
	g.Eventually(func() bool {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		p = phase(obj)
		return p != "" && p != "Pending" && p != "InProgress"
	}, timeout, 250*time.Millisecond).Should(BeTrue(), "%s %s finishes", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
	return p
}

// blobStore is the storage of container as the spoke manager sees it through
// BackupTarget target made by backupTarget (prefix "e2e").
func blobStore(g Gomega, id fleet.Identity, spoke *fleet.Spoke, target, container string) *blob.Client {
	return teamStore(g, id, spoke, backupv1alpha1.TargetServiceAccount(target), container, "e2e")
}

// completedSync creates sync on the hub and waits until it has Completed.
func completedSync(g Gomega, ctx context.Context, sync *fleetv1alpha1.BackupSync) *fleetv1alpha1.BackupSync {
	hub := testFleet.Hub.Client
	g.Expect(hub.Create(ctx, sync)).To(Succeed())
	g.Eventually(func() backupv1alpha1.TaskPhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(sync), sync)).To(Succeed())
		return sync.Status.Phase
	}, 3*time.Minute, 250*time.Millisecond).Should(BeElementOf(backupv1alpha1.TaskCompleted, backupv1alpha1.TaskFailed))
	g.Expect(sync.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted), "%+v", sync.Status.Conditions)
	return sync
}
