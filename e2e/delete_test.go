package e2e

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// Deleting a hub Backup deletes its blobs through a cluster that can reach
// the location, then the record. With no such cluster the delete waits
// (DeletePending) and says why and how to force it; a force delete removes
// the record only and leaves a tombstone on the location; once a cluster can
// reach the location again the tombstoned data is purged and the tombstone
// cleared.
//
// That a sync does not import a tombstoned backup again is for the sync
// suite to show.
func TestDeleteAndForceDelete(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hub, az := testFleet.Hub.Client, testFleet.Azure
	spoke1, spoke2 := onboarded()[0], onboarded()[1]
	const team, container = "team-delete", "delete-backups"

	loc, id := validTeamLocation(g, ctx, team, container, spoke1, spoke2)
	// The test looks at the container with an identity of its own, which
	// keeps its access when the location's identity loses its role.
	checker, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(az.Federate(checker, spoke1.ControlPlane, spoke1.TokenFile.Subject)).To(Succeed())
	az.Grant(checker, container, blobproxy.StorageBlobDataReader)
	store := teamStore(g, checker, spoke1, fleet.SpokeServiceAccount, container, team)

	ns := "del-" + rand.String(4)
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	createConfigMaps(g, ctx, spoke1.Client, ns, 20, 1024)

	t.Log("a normal delete removes the backup's blobs, then the hub record")
	first := succeededHubBackup(g, ctx, team, "first", spoke1, loc.Name, ns)
	g.Expect(first.Finalizers).To(ContainElement(backup.Finalizer))
	firstDir := backupDir(spoke1, first)
	g.Expect(store.List(ctx, firstDir)).To(ContainElement(firstDir+"backup.json"), "the backup's data is in the bucket")
	start := time.Now()
	g.Expect(hub.Delete(ctx, first)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKeyFromObject(first), &fleetv1alpha1.Backup{}))
	}, 2*time.Minute, 250*time.Millisecond).Should(BeTrue(), "the hub Backup goes once its data is deleted")
	g.Expect(store.List(ctx, firstDir)).To(BeEmpty(), "no blob is left under %s", firstDir)
	t.Logf("deleted %s and its data in %s", first.Name, time.Since(start).Round(time.Millisecond))
	g.Eventually(func() bool {
		err := spoke1.Client.Get(ctx, client.ObjectKey{Namespace: backup.SpokeNamespace, Name: backup.Name(team, first.Name)}, &backupv1alpha1.BackupDeletion{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 250*time.Millisecond).Should(BeTrue(), "the spoke's BackupDeletion goes with its work")

	second := succeededHubBackup(g, ctx, team, "second", spoke1, loc.Name, ns)
	secondDir := backupDir(spoke1, second)
	g.Expect(store.List(ctx, secondDir)).NotTo(BeEmpty())

	t.Log("the identity loses its role: both clusters' connections turn Invalid")
	az.Proxy.Revoke(id.ObjectID, fleet.StorageAccount, container, blobproxy.StorageBlobDataContributor)
	// A Valid target is validated again only on its interval; a spec change
	// makes every cluster validate now.
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	patch := client.MergeFrom(loc.DeepCopy())
	loc.Spec.ValidationInterval = &metav1.Duration{Duration: 2 * time.Hour}
	g.Expect(hub.Patch(ctx, loc, patch)).To(Succeed())
	waitLocationPhase(g, ctx, loc, fleetv1alpha1.LocationInvalid)

	t.Log("a delete without a Valid cluster waits, DeletePending, and says why and how to force it")
	g.Expect(hub.Delete(ctx, second)).To(Succeed())
	var deleting *metav1.Condition
	g.Eventually(func() fleetv1alpha1.BackupPhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(second), second)).To(Succeed())
		deleting = meta.FindStatusCondition(second.Status.Conditions, fleetv1alpha1.ConditionDeleting)
		return second.Status.Phase
	}, time.Minute, 250*time.Millisecond).Should(Equal(fleetv1alpha1.BackupDeletePending))
	g.Expect(deleting).NotTo(BeNil())
	g.Expect(deleting.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(deleting.Reason).To(Equal(fleetv1alpha1.ReasonNoValidCluster))
	g.Expect(deleting.Message).To(And(
		ContainSubstring("cluster "+spoke1.Name+" is Invalid"), ContainSubstring("cluster "+spoke2.Name+" is Invalid"),
		ContainSubstring("kubectl annotate backup second -n team-delete fleet.lifeboat.dev/force-delete=true")))
	t.Logf("DeletePending: %s", deleting.Message)
	g.Consistently(func() error {
		return hub.Get(ctx, client.ObjectKeyFromObject(second), &fleetv1alpha1.Backup{})
	}, 3*time.Second, 500*time.Millisecond).Should(Succeed())
	g.Expect(store.List(ctx, secondDir)).NotTo(BeEmpty())

	t.Log("force delete: the record goes, the data stays, the location keeps a tombstone")
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(second), second)).To(Succeed())
	patch = client.MergeFrom(second.DeepCopy())
	second.Annotations = map[string]string{fleetv1alpha1.ForceDeleteAnnotation: "true"}
	g.Expect(hub.Patch(ctx, second, patch)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(hub.Get(ctx, client.ObjectKeyFromObject(second), &fleetv1alpha1.Backup{}))
	}, time.Minute, 250*time.Millisecond).Should(BeTrue())
	g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	g.Expect(loc.Status.Tombstones).To(ConsistOf(And(
		HaveField("SourceCluster", spoke1.Name), HaveField("BackupID", string(second.Status.BackupID)),
		HaveField("Backup", "second"), HaveField("BackupUID", second.UID), HaveField("DeletionTime", Not(BeNil())))))
	g.Expect(store.List(ctx, secondDir)).NotTo(BeEmpty(), "force delete leaves the data")
	path := container + "/" + team + "/" + strings.TrimSuffix(secondDir, "/")
	g.Eventually(func() []string {
		list := &eventsv1.EventList{}
		g.Expect(hub.List(ctx, list, client.InNamespace(team))).To(Succeed())
		var notes []string
		for _, e := range list.Items {
			if e.Regarding.UID == second.UID && e.Reason == fleetv1alpha1.ReasonForceDeleted {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}, 30*time.Second, 250*time.Millisecond).Should(ContainElement(ContainSubstring(path)), "an Event names the data's path")

	t.Log("the role is back: a sync of the location does not bring the force-deleted backup back")
	restored := time.Now()
	az.Grant(id, container, blobproxy.StorageBlobDataContributor)
	g.Eventually(func() int32 {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		return loc.Status.ValidClusters
	}, 2*time.Minute, 250*time.Millisecond).Should(BeNumerically(">", 0), "a sync needs a Valid cluster")
	sync := completedSync(g, ctx, &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "after-force-delete"}, Spec: fleetv1alpha1.BackupSyncSpec{Location: backupv1alpha1.ObjectName(loc.Name)}})
	backups := &fleetv1alpha1.BackupList{}
	g.Expect(hub.List(ctx, backups, client.InNamespace(team))).To(Succeed())
	for _, b := range backups.Items {
		g.Expect(b.Status.BackupID).NotTo(Equal(second.Status.BackupID), "sync re-imported the force-deleted backup as %s", b.Name)
	}
	t.Logf("sync after the force delete: found %d, imported %d, missing %d, rejected %d", sync.Status.Found, sync.Status.Imported, sync.Status.Missing, sync.Status.Rejected)

	t.Log("the data is purged and the tombstone cleared")
	g.Eventually(func() []fleetv1alpha1.Tombstone {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		return loc.Status.Tombstones
	}, 3*time.Minute, time.Second).Should(BeEmpty())
	g.Expect(loc.Status.ValidClusters).To(BeNumerically(">", 0))
	g.Expect(store.List(ctx, secondDir)).To(BeEmpty(), "no blob is left under %s", secondDir)
	t.Logf("purged the tombstoned data %s after the role came back", time.Since(restored).Round(time.Second))
}

// succeededHubBackup creates a hub Backup of namespace ns on s and waits for its success.
func succeededHubBackup(g Gomega, ctx context.Context, namespace, name string, s *fleet.Spoke, location, ns string) *fleetv1alpha1.Backup {
	return finishedHubBackup(g, ctx, namespace, name, s, location, ns, fleetv1alpha1.BackupSuccess)
}

// finishedHubBackup creates a hub Backup of namespace ns on s and waits for
// it to end in phase want.
// skipVolumes sets volumes: Skip on a hub Backup: the sample application's
// claim is backed up as an object only, so the Backup ends PartialSuccess.
func skipVolumes(b *fleetv1alpha1.Backup) { b.Spec.Volumes = backupv1alpha1.VolumesSkip }

func finishedHubBackup(g Gomega, ctx context.Context, namespace, name string, s *fleet.Spoke, location, ns string, want fleetv1alpha1.BackupPhase, mutate ...func(*fleetv1alpha1.Backup)) *fleetv1alpha1.Backup {
	b := hubBackup(namespace, name, s, location, ns)
	for _, m := range mutate {
		m(b)
	}
	g.Expect(testFleet.Hub.Client.Create(ctx, b)).To(Succeed())
	g.Eventually(func() bool {
		g.Expect(testFleet.Hub.Client.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		switch b.Status.Phase {
		case fleetv1alpha1.BackupSuccess, fleetv1alpha1.BackupFailed, fleetv1alpha1.BackupPartialSuccess, fleetv1alpha1.BackupAborted:
			return true
		}
		return false
	}, 3*time.Minute, 250*time.Millisecond).Should(BeTrue(), "Backup %s finishes", name)
	g.Expect(b.Status.Phase).To(Equal(want), "conditions: %+v", b.Status.Conditions)
	return b
}

// backupDir is b's folder, relative to its location's prefix, with a trailing slash.
func backupDir(s *fleet.Spoke, b *fleetv1alpha1.Backup) string {
	return "lifeboat/v1/backups/" + s.Name + "/" + string(b.Status.BackupID) + "/"
}

func waitLocationPhase(g Gomega, ctx context.Context, loc *fleetv1alpha1.BackupLocation, phase fleetv1alpha1.BackupLocationPhase) {
	g.Eventually(func() fleetv1alpha1.BackupLocationPhase {
		g.Expect(testFleet.Hub.Client.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
		if loc.Status.ObservedGeneration != loc.Generation {
			return ""
		}
		return loc.Status.Phase
	}, 2*time.Minute, 250*time.Millisecond).Should(Equal(phase), "BackupLocation %s: %+v", loc.Name, loc.Status.NotValid)
}

// connections are loc's connections from every cluster, as hub/locations
// reads them from its BackupTarget works (loc as last read).
func connections(g Gomega, ctx context.Context, loc *fleetv1alpha1.BackupLocation) []fleetv1alpha1.ClusterConnection {
	conns, err := locations.Connections(ctx, testFleet.Hub.Client, loc)
	g.Expect(err).NotTo(HaveOccurred())
	return conns
}

// teamStore is container under prefix as id sees it from spoke, signing in
// with tokens of ServiceAccount lifeboat-system/account there: a target's
// (backupv1alpha1.TargetServiceAccount), as a cluster admin can mint them, or
// fleet.SpokeServiceAccount for a test's own access.
func teamStore(g Gomega, id fleet.Identity, spoke *fleet.Spoke, account, container, prefix string) *blob.Client {
	az := testFleet.Azure
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(az.Entra.CACertPEM())
	roots.AppendCertsFromPEM(az.Proxy.CACertPEM())
	assertion := &blob.ClientAssertion{
		Subject: "system:serviceaccount:" + fleet.SpokeNamespace + ":" + account,
		Token: func(ctx context.Context) (string, error) {
			tr, err := fleet.ServiceAccountToken(ctx, spoke.ControlPlane, fleet.SpokeNamespace, account, fleet.WorkloadIdentityAudience, 10*time.Minute)
			if err != nil {
				return "", err
			}
			return tr.Status.Token, nil
		},
	}
	c, err := blob.New(blob.Config{
		StorageAccount: fleet.StorageAccount, Container: container, Prefix: prefix, Endpoint: az.BlobEndpoint(),
		ClientID: id.ClientID, TenantID: fleet.TenantID, Assertion: assertion, AuthorityHost: az.Entra.AuthorityHost(),
	}, blob.WithRootCAs(roots), blob.WithAllowedEndpoints(az.BlobEndpoint()))
	g.Expect(err).NotTo(HaveOccurred())
	return c
}
