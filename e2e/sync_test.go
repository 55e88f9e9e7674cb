package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupsync"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// A sync lists a location's container on a cluster and imports what the hub
// does not know: a team's self-service backup on spoke-1 and a backup that
// another hub wrote into the bucket become hub Backups; a hub Backup whose
// blobs were removed by hand becomes CloudBackupMissing; a folder without
// backup.json is ignored. Two syncs of one container never run at once: one
// waits Pending while the other runs.
func TestSyncImportsAndMarksMissing(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	hub := testFleet.Hub.Client
	spoke1 := testFleet.Spokes[0]
	const team, container = "team-sync", "sync-backups"

	for _, s := range onboarded() {
		waitClusterPhase(g, ctx, s, fleetv1alpha1.ClusterOnline)
	}
	t.Log("a container reachable from spoke-1 and spoke-2, a self-service target on spoke-1, and two hub locations on it")
	id := validTarget(g, ctx, "sync-team", container)
	target := &backupv1alpha1.BackupTarget{}
	g.Expect(spoke1.Client.Get(ctx, client.ObjectKey{Name: "sync-team"}, target)).To(Succeed())
	target.Spec.AllowedNamespaces = &metav1.LabelSelector{MatchLabels: map[string]string{"lifeboat.dev/self-service": "sync"}}
	g.Expect(spoke1.Client.Update(ctx, target)).To(Succeed())
	ensureNamespace(g, ctx, hub, team, nil)
	// Another location of the team on the same container, under another
	// prefix: its syncs share the container's Lease.
	loc := syncLocation(team, "primary", "e2e", container, id, onboarded()...)
	mirror := syncLocation(team, "mirror", "mirror", container, id, spoke1)
	// The identity signs in for each of its targets only where it is federated
	// for the target's own subject.
	for _, l := range []*fleetv1alpha1.BackupLocation{loc, mirror} {
		for _, c := range l.Spec.Clusters {
			s := testFleet.Spoke(string(c))
			g.Expect(testFleet.Azure.Federate(id, s.ControlPlane, backuplocation.FederatedSubject(team, l.Name))).To(Succeed())
		}
	}
	g.Expect(hub.Create(ctx, loc)).To(Succeed())
	g.Expect(hub.Create(ctx, mirror)).To(Succeed())
	for _, l := range []*fleetv1alpha1.BackupLocation{loc, mirror} {
		g.Eventually(func(g Gomega) {
			g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(l), l)).To(Succeed())
			g.Expect(l.Status.Phase).To(Equal(fleetv1alpha1.LocationValid), "%+v", l.Status)
		}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	}

	t.Log("a hub Backup on spoke-1 (its blobs are removed by hand later)")
	ns := "sync-app-" + rand.String(4)
	ensureNamespace(g, ctx, spoke1.Client, ns, map[string]string{"lifeboat.dev/self-service": "sync"})
	g.Expect(spoke1.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"k": "v"}})).To(Succeed())
	doomed := hubBackup(team, "doomed", spoke1, loc.Name, ns)
	g.Expect(hub.Create(ctx, doomed)).To(Succeed())
	g.Eventually(func() fleetv1alpha1.BackupPhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(doomed), doomed)).To(Succeed())
		return doomed.Status.Phase
	}, 3*time.Minute, 250*time.Millisecond).Should(Equal(fleetv1alpha1.BackupSuccess))

	t.Log("a self-service ApplicationBackup of the team's namespace on spoke-1")
	self := appBackup("mine", "sync-team", ns)
	self.Namespace = ns
	g.Expect(spoke1.Client.Create(ctx, self)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke1.Client, self, backupPhase, 2*time.Minute)).To(Equal("Success"), "%+v", self.Status.Conditions)

	store := blobStore(g, id, spoke1, "sync-team", container)
	t.Log("another hub writes a backup of its cluster other-hub-east into the bucket for the team's namespace there, and one for another tenant's")
	writeForeign := func(id, namespace string) {
		dir, err := archive.Path("", "other-hub-east", id)
		g.Expect(err).NotTo(HaveOccurred())
		w, err := archive.NewWriter(ctx, store, dir, archive.Meta{Owner: archive.Owner{Hub: &archive.HubRef{Namespace: namespace, Name: "nightly", UID: "7d0e6f7a-1b2c-4d3e-8f90-a1b2c3d4e5f6"}}})
		g.Expect(err).NotTo(HaveOccurred())
		obj := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"east"},"data":{"k":"v"}}`)
		g.Expect(w.Add(archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "east", Name: "a", Object: obj})).To(Succeed())
		_, err = w.Close(ctx)
		g.Expect(err).NotTo(HaveOccurred())
	}
	foreignID, othersID := "foreign-"+rand.String(6), "others-"+rand.String(6)
	writeForeign(foreignID, team)
	writeForeign(othersID, "tenant-east")

	t.Log("folders the spoke cannot list: an unreadable backup.json, a newer format, a backup.json copied into another source cluster's folder")
	put := func(name string, data []byte) {
		_, err := store.Put(ctx, name, bytes.NewReader(data))
		g.Expect(err).NotTo(HaveOccurred())
	}
	readManifest := func(id string) []byte {
		rc, err := store.Get(ctx, "lifeboat/v1/backups/other-hub-east/"+id+"/"+archive.ManifestFile)
		g.Expect(err).NotTo(HaveOccurred())
		defer rc.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		g.Expect(err).NotTo(HaveOccurred())
		return buf.Bytes()
	}
	unreadableID, futureID := "unreadable-"+rand.String(6), "future-"+rand.String(6)
	writeForeign(unreadableID, team)
	put("lifeboat/v1/backups/other-hub-east/"+unreadableID+"/"+archive.ManifestFile, []byte("{not json"))
	writeForeign(futureID, team)
	future := map[string]any{}
	g.Expect(json.Unmarshal(readManifest(futureID), &future)).To(Succeed())
	future["formatVersion"] = 99
	raw, err := json.Marshal(future)
	g.Expect(err).NotTo(HaveOccurred())
	put("lifeboat/v1/backups/other-hub-east/"+futureID+"/"+archive.ManifestFile, raw)
	put("lifeboat/v1/backups/other-hub-west/"+foreignID+"/"+archive.ManifestFile, readManifest(foreignID))

	t.Log("a folder without backup.json, and the hub Backup's blobs removed by hand")
	_, err = store.Put(ctx, "lifeboat/v1/backups/other-hub-east/half-done/"+archive.ResourcesFile, bytes.NewReader([]byte("partial")))
	g.Expect(err).NotTo(HaveOccurred())
	doomedDir, err := archive.Path("", spoke1.Name, string(doomed.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	names, err := store.List(ctx, doomedDir+"/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).NotTo(BeEmpty())
	for _, n := range names {
		g.Expect(store.Delete(ctx, n)).To(Succeed())
	}

	t.Log("two syncs of the container at once: one waits Pending while the other runs")
	a := &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "first"}, Spec: fleetv1alpha1.BackupSyncSpec{Location: "primary", Cluster: backupv1alpha1.ClusterName(spoke1.Name)}}
	b := &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "second"}, Spec: fleetv1alpha1.BackupSyncSpec{Location: "mirror"}}
	var (
		mu          sync.Mutex
		overlap     []string
		waitedWhile []string
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			// One list is one consistent snapshot of both syncs.
			phases := map[string]*fleetv1alpha1.BackupSync{}
			all := &fleetv1alpha1.BackupSyncList{}
			if hub.List(watchCtx, all, client.InNamespace(team)) != nil {
				continue
			}
			for i := range all.Items {
				if s := &all.Items[i]; s.Name == a.Name || s.Name == b.Name {
					phases[s.Namespace+"/"+s.Name] = s
				}
			}
			mu.Lock()
			var running, waiting []string
			for k, s := range phases {
				switch s.Status.Phase {
				case backupv1alpha1.TaskInProgress:
					running = append(running, k)
				case backupv1alpha1.TaskPending:
					if c := meta.FindStatusCondition(s.Status.Conditions, fleetv1alpha1.ConditionReady); c != nil && c.Reason == fleetv1alpha1.ReasonWaitingForSync {
						waiting = append(waiting, fmt.Sprintf("%s: %s", k, c.Message))
					}
				}
			}
			if len(running) > 1 {
				overlap = append(overlap, fmt.Sprint(running))
			}
			if len(running) == 1 && len(waiting) == 1 {
				waitedWhile = append(waitedWhile, running[0]+" ran while "+waiting[0])
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	started := time.Now()
	g.Expect(hub.Create(ctx, a)).To(Succeed())
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	for _, s := range []*fleetv1alpha1.BackupSync{a, b} {
		g.Eventually(func() backupv1alpha1.TaskPhase {
			g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(s), s)).To(Succeed())
			return s.Status.Phase
		}, 3*time.Minute, 250*time.Millisecond).Should(BeElementOf(backupv1alpha1.TaskCompleted, backupv1alpha1.TaskFailed))
		g.Expect(s.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted), "%+v", s.Status.Conditions)
	}
	stopWatch()
	<-watched
	t.Logf("both syncs completed %s after creation", time.Since(started).Round(time.Millisecond))
	mu.Lock()
	g.Expect(overlap).To(BeEmpty(), "two syncs of one container ran at once")
	g.Expect(waitedWhile).NotTo(BeEmpty(), "one sync was seen waiting while the other ran")
	t.Logf("observed: %s", waitedWhile[0])
	mu.Unlock()
	lease := backupsync.LeaseName(fleet.StorageAccount, container)
	g.Expect(waitedWhile[0]).To(ContainSubstring(lease))

	t.Log("the first sync imported the self-service and the foreign backup, refused another tenant's, and marked the removed one missing")
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
	completed := meta.FindStatusCondition(a.Status.Conditions, fleetv1alpha1.ConditionCompleted)
	t.Logf("first: found %d, imported %d, missing %d, rejected %d: %s", a.Status.Found, a.Status.Imported, a.Status.Missing, a.Status.Rejected, completed.Message)
	g.Expect(a.Status.Cluster).To(BeEquivalentTo(spoke1.Name))
	g.Expect(a.Status.Found).To(BeEquivalentTo(2), "the self-service and the foreign backup; the half-done folder, the removed backup and another tenant's are not listed")
	g.Expect(a.Status.Imported).To(BeEquivalentTo(2))
	g.Expect(a.Status.Missing).To(BeEquivalentTo(1))
	g.Expect(a.Status.Rejected).To(BeEquivalentTo(1), "the backup made for tenant-east")
	g.Expect(completed.Reason).To(Equal(fleetv1alpha1.ReasonForeignNamespace))
	g.Expect(completed.Message).To(ContainSubstring("entry other-hub-east/" + othersID + " (made for Backup tenant-east/nightly)"))
	g.Expect(apierrors.IsNotFound(hub.Get(ctx, client.ObjectKey{Namespace: team, Name: backupsync.ImportName("other-hub-east", othersID)}, &fleetv1alpha1.Backup{}))).To(BeTrue())
	// What spoke-1 could not read, the hub lists with the reasons.
	g.Expect(a.Status.Skipped).To(BeEquivalentTo(3), "%q", a.Status.Rejections)
	g.Expect(a.Status.Rejections).To(ContainElements(
		And(HavePrefix("folder lifeboat/v1/backups/other-hub-east/"+unreadableID+" (cluster "+spoke1.Name+" reports): "), ContainSubstring("backup.json")),
		And(HavePrefix("folder lifeboat/v1/backups/other-hub-east/"+futureID+" (cluster "+spoke1.Name+" reports): "), ContainSubstring("newer")),
		HavePrefix("folder lifeboat/v1/backups/other-hub-west/"+foreignID+" (cluster "+spoke1.Name+" reports): "),
	))
	g.Expect(completed.Message).To(ContainSubstring("The cluster skipped 3 folders it could not read as backups"))

	foreign := &fleetv1alpha1.Backup{}
	g.Expect(hub.Get(ctx, client.ObjectKey{Namespace: team, Name: backupsync.ImportName("other-hub-east", foreignID)}, foreign)).To(Succeed())
	g.Expect(foreign.Labels).To(HaveKeyWithValue(fleetv1alpha1.SyncOriginLabel, fleetv1alpha1.SyncOriginValue))
	g.Expect(foreign.Status.Origin).To(Equal(fleetv1alpha1.OriginSynced))
	g.Expect(foreign.Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess))
	g.Expect(foreign.Spec.Cluster).To(BeEquivalentTo("other-hub-east"))
	g.Expect(foreign.Status.Progress.ItemsDone).To(BeEquivalentTo(1))

	mine := &fleetv1alpha1.Backup{}
	g.Expect(hub.Get(ctx, client.ObjectKey{Namespace: team, Name: backupsync.ImportName(spoke1.Name, string(self.Status.BackupID))}, mine)).To(Succeed())
	g.Expect(mine.Labels).To(HaveKeyWithValue(fleetv1alpha1.SyncOriginLabel, fleetv1alpha1.SyncOriginValue))
	g.Expect(mine.Status.Origin).To(Equal(fleetv1alpha1.OriginSelfService))
	g.Expect(mine.Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess))

	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(doomed), doomed)).To(Succeed())
	g.Expect(doomed.Status.Phase).To(Equal(fleetv1alpha1.BackupCloudBackupMissing))
	t.Logf("doomed: %s", meta.FindStatusCondition(doomed.Status.Conditions, fleetv1alpha1.ConditionReady).Message)

	list := &fleetv1alpha1.BackupList{}
	g.Expect(hub.List(ctx, list, client.InNamespace(team))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(3), "doomed and the two imported: nothing for the half-done folder")
	g.Expect(hub.List(ctx, &fleetv1alpha1.BackupCatalogList{}, client.InNamespace(spoke1.Name))).To(Succeed())
	// The hub deletes a page once it has imported it, which may be just after
	// the sync reads Completed.
	g.Eventually(func(g Gomega) {
		catalogs := &fleetv1alpha1.BackupCatalogList{}
		g.Expect(hub.List(ctx, catalogs, client.InNamespace(spoke1.Name), client.HasLabels{fleetv1alpha1.LabelSyncUID})).To(Succeed())
		g.Expect(catalogs.Items).To(BeEmpty(), "imported pages are deleted")
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())

	t.Log("the second sync, of the other prefix, found nothing there")
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
	g.Expect(b.Status.Found).To(BeZero())
	g.Expect(b.Status.Imported).To(BeZero())
}

func syncLocation(namespace, name, prefix, container string, id fleet.Identity, spokes ...*fleet.Spoke) *fleetv1alpha1.BackupLocation {
	return &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure: backupv1alpha1.AzureBlobLocation{
					StorageAccount: fleet.StorageAccount, Container: container, Prefix: prefix,
					Endpoint: testFleet.Azure.SpokeBlobEndpoint(),
				},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID},
			},
			Clusters: fleet.ClusterNames(spokes...),
		},
	}
}
