package tombstone

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch/dispatchtest"

	coordinationv1 "k8s.io/api/coordination/v1"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupsync"
)

const timeout = 15 * time.Second

func TestTombstonedDataIsPurgedOnceAClusterIsValid(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocation(t, g, "team-purge", "primary", "purge-a", "purge-b")
	setConnections(g, loc, map[string]backupv1alpha1.TargetPhase{"purge-a": backupv1alpha1.TargetInvalid, "purge-b": backupv1alpha1.TargetInvalid})
	first := fleetv1alpha1.Tombstone{SourceCluster: "purge-a", BackupID: "11111111-aaaa", Backup: "nightly", BackupUID: "11111111-aaaa"}
	second := fleetv1alpha1.Tombstone{SourceCluster: "purge-a", BackupID: "22222222-bbbb", Backup: "weekly", BackupUID: "22222222-bbbb"}
	addTombstones(g, loc, first, second)

	t.Log("no cluster is Valid: nothing is sent")
	g.Consistently(purgeWorks(loc)).WithTimeout(2 * time.Second).Should(BeEmpty())

	t.Log("purge-b turns Valid (the source purge-a is not): forced BackupDeletions go to purge-b")
	setConnections(g, loc, map[string]backupv1alpha1.TargetPhase{"purge-a": backupv1alpha1.TargetInvalid, "purge-b": backupv1alpha1.TargetValid})
	g.Eventually(purgeWorks(loc)).WithTimeout(timeout).Should(ConsistOf("purge-b/"+workName(loc, first), "purge-b/"+workName(loc, second)))
	del := deletionIn(g, work(g, "purge-b", workName(loc, first)))
	g.Expect(del.Namespace).To(Equal(SpokeNamespace))
	g.Expect(del.Spec.Force).To(BeTrue())
	g.Expect(del.Spec.Target).To(BeEquivalentTo(backuplocation.TargetName("team-purge", "primary")))
	g.Expect(del.Spec.Source).To(Equal(backupv1alpha1.BackupSource{Cluster: "purge-a", BackupID: "11111111-aaaa"}))
	g.Expect(del.Spec.Hub).To(Equal(&backupv1alpha1.HubObjectReference{Namespace: "team-purge", Name: "nightly", UID: "11111111-aaaa"}))
	g.Expect(deletionIn(g, work(g, "purge-b", workName(loc, second))).Name).NotTo(Equal(del.Name), "one BackupDeletion per tombstone")

	t.Log("an unfinished purge keeps its tombstone")
	simulateDeletion(g, "purge-b", workName(loc, first), map[string]any{"phase": "InProgress", "observedGeneration": int64(1)})
	g.Consistently(tombstones(loc)).WithTimeout(2 * time.Second).Should(HaveLen(2))

	t.Log("the data of the first is deleted: its tombstone and work go, the second stays")
	simulateDeletion(g, "purge-b", workName(loc, first), map[string]any{"phase": "Completed", "blobsDeleted": int64(9), "observedGeneration": int64(1)})
	g.Eventually(tombstones(loc)).WithTimeout(timeout).Should(ConsistOf(HaveField("BackupID", "22222222-bbbb")))
	g.Eventually(purgeWorks(loc)).WithTimeout(timeout).Should(ConsistOf("purge-b/" + workName(loc, second)))
	cur := &fleetv1alpha1.BackupLocation{}
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
	g.Expect(cur.Status.SelectedClusters).To(BeEquivalentTo(2), "clearing a tombstone leaves the connections alone")

	t.Log("a failed purge keeps its tombstone")
	simulateDeletion(g, "purge-b", workName(loc, second), map[string]any{"phase": "Failed", "observedGeneration": int64(1), "readyReason": "StorageError", "readyMessage": "boom"})
	g.Consistently(tombstones(loc)).WithTimeout(2 * time.Second).Should(HaveLen(1))
}

func TestPurgePrefersTheSourceCluster(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-source", "primary", "source-a", "source-b")
	setConnections(g, loc, map[string]backupv1alpha1.TargetPhase{"source-a": backupv1alpha1.TargetValid, "source-b": backupv1alpha1.TargetValid})
	ts := fleetv1alpha1.Tombstone{SourceCluster: "source-b", BackupID: "33333333-cccc"}
	addTombstones(g, loc, ts)
	g.Eventually(purgeWorks(loc)).WithTimeout(timeout).Should(ConsistOf("source-b/" + workName(loc, ts)))
	g.Expect(deletionIn(g, work(g, "source-b", workName(loc, ts))).Spec.Hub).To(BeNil())

	t.Log("when the location goes, so do its purge works")
	g.Expect(hubClient.Delete(context.Background(), loc)).To(Succeed())
	g.Eventually(purgeWorks(loc)).WithTimeout(timeout).Should(BeEmpty())
}

func createNamespace(g *WithT, name string) {
	if err := hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
}

func TestTombstoneStaysWhileASyncOfTheContainerRuns(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	createNamespace(g, "team-held")
	createNamespace(g, "held-a")
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-held", Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acctheld", Container: "held", Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
			Clusters: []backupv1alpha1.ClusterName{"held-a"},
		},
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	setConnections(g, loc, map[string]backupv1alpha1.TargetPhase{"held-a": backupv1alpha1.TargetValid})

	t.Log("a sync of the container holds its Lease")
	createNamespace(g, backupsync.DefaultSystemNamespace)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: backupsync.DefaultSystemNamespace, Name: backupsync.LeaseName("acctheld", "held")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("team-held/sync-1"), LeaseDurationSeconds: ptr.To[int32](120),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	g.Expect(hubClient.Create(ctx, lease)).To(Succeed())

	ts := fleetv1alpha1.Tombstone{SourceCluster: "held-a", BackupID: "44444444-dddd"}
	addTombstones(g, loc, ts)
	g.Eventually(purgeWorks(loc)).WithTimeout(timeout).Should(ConsistOf("held-a/" + workName(loc, ts)))
	simulateDeletion(g, "held-a", workName(loc, ts), map[string]any{"phase": "Completed", "blobsDeleted": int64(3), "observedGeneration": int64(1)})
	t.Log("the data is gone, but the running sync may have listed it: the tombstone stays")
	g.Consistently(tombstones(loc)).WithTimeout(3 * time.Second).Should(HaveLen(1))

	t.Log("the sync releases the Lease: the tombstone is cleared")
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(lease), lease)).To(Succeed())
	lease.Spec.HolderIdentity = nil
	g.Expect(hubClient.Update(ctx, lease)).To(Succeed())
	g.Eventually(tombstones(loc)).WithTimeout(timeout).Should(BeEmpty())
}

func newLocation(t *testing.T, g *WithT, namespace, name string, clusters ...string) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	createNamespace(g, namespace)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct1", Container: "backups", Prefix: namespace, Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
		},
	}
	for _, c := range clusters {
		createNamespace(g, c)
		loc.Spec.Clusters = append(loc.Spec.Clusters, backupv1alpha1.ClusterName(c))
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	return loc
}

func setConnections(g *WithT, loc *fleetv1alpha1.BackupLocation, phases map[string]backupv1alpha1.TargetPhase) {
	ctx := context.Background()
	g.Eventually(func(g Gomega) {
		cur := &fleetv1alpha1.BackupLocation{}
		g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		cur.Status.ObservedGeneration = cur.Generation
		cur.Status.Phase = fleetv1alpha1.LocationInvalid
		var conns []fleetv1alpha1.ClusterConnection
		for _, c := range loc.Spec.Clusters {
			conns = append(conns, fleetv1alpha1.ClusterConnection{Cluster: string(c), ValidationState: backupv1alpha1.ValidationState{Phase: phases[string(c)], Reason: "Test"}})
		}
		cur.Status.SelectedClusters, cur.Status.ValidClusters = int32(len(conns)), 0
		for _, c := range conns {
			if c.Phase == backupv1alpha1.TargetValid {
				cur.Status.ValidClusters++
			}
		}
		g.Expect(locationstest.SetConnections(ctx, hubClient, cur, conns...)).To(Succeed())
		g.Expect(hubClient.Status().Patch(ctx, cur, patch)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
}

func addTombstones(g *WithT, loc *fleetv1alpha1.BackupLocation, ts ...fleetv1alpha1.Tombstone) {
	ctx := context.Background()
	g.Eventually(func(g Gomega) {
		cur := &fleetv1alpha1.BackupLocation{}
		g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), cur)).To(Succeed())
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		now := metav1.Now()
		for _, t := range ts {
			t.DeletionTime = &now
			cur.Status.Tombstones = append(cur.Status.Tombstones, t)
		}
		g.Expect(hubClient.Status().Patch(ctx, cur, patch)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
}

func tombstones(loc *fleetv1alpha1.BackupLocation) func() []fleetv1alpha1.Tombstone {
	return func() []fleetv1alpha1.Tombstone {
		cur := &fleetv1alpha1.BackupLocation{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(loc), cur); err != nil {
			return nil
		}
		return cur.Status.Tombstones
	}
}

func workName(loc *fleetv1alpha1.BackupLocation, ts fleetv1alpha1.Tombstone) string {
	return dispatch.Name(Kind, loc.Namespace, ownerName(loc, ts))
}

// purgeWorks are "<cluster>/<name>" of the location's purge works not being deleted.
func purgeWorks(loc *fleetv1alpha1.BackupLocation) func() []string {
	return func() []string {
		list := &workv1.ManifestWorkList{}
		if err := hubClient.List(context.Background(), list, client.MatchingLabels{dispatch.LabelKind: Kind, LabelLocation: loc.Name}); err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, mw := range list.Items {
			if mw.DeletionTimestamp.IsZero() {
				out = append(out, mw.Namespace+"/"+mw.Name)
			}
		}
		return out
	}
}

func work(g *WithT, cluster, name string) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Namespace: cluster, Name: name}, mw)).To(Succeed())
	return mw
}

func deletionIn(g *WithT, mw *workv1.ManifestWork) *backupv1alpha1.BackupDeletion {
	g.Expect(mw.Spec.Workload.Manifests).To(HaveLen(1))
	del := &backupv1alpha1.BackupDeletion{}
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, del)).To(Succeed())
	g.Expect(del.Kind).To(Equal("BackupDeletion"))
	return del
}

// simulateDeletion feeds back values as the work agent would for the
// BackupDeletion in work cluster/name (hub generation 1).
func simulateDeletion(g *WithT, cluster, name string, values map[string]any) {
	dispatchtest.Report(g, hubClient, client.ObjectKey{Namespace: cluster, Name: name}, 1, 1, dispatchtest.Values(values), timeout)
}
