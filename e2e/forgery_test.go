package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/uuid"
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
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// H1 of the security review. A location's identity trusted by spoke-1 and
// spoke-2 lets spoke-2 rewrite spoke-1's backup and reseal its backup.json
// so that it verifies; the hub recorded the sha256 of the backup.json that
// spoke-1 wrote, so a hub Restore of the Backup fails BackupCorrupt and
// writes nothing. With an Azure ABAC condition that holds spoke-2's
// identity to its own folder, modelled by the fleet's blob proxy, the same
// write gets 403, while spoke-2 still validates and writes its own backups.
func TestForgedBackupIsRefused(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	hub, az := testFleet.Hub.Client, testFleet.Azure
	spoke1, spoke2 := onboarded()[0], onboarded()[1]
	const team, container = "team-forge", "forge-backups"

	loc, id := validTeamLocation(g, ctx, team, container, spoke1, spoke2)

	ns := "forge-" + rand.String(4)
	deploySample(g, ctx, spoke1.Client, ns)
	b := finishedHubBackup(g, ctx, team, "shop", spoke1, loc.Name, ns, fleetv1alpha1.BackupPartialSuccess) // no volume data mover
	g.Expect(b.Status.ManifestSHA256).To(MatchRegexp("^[0-9a-f]{64}$"), "the hub recorded the sha256 of backup.json")
	dir, err := archive.Path("", spoke1.Name, string(b.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	// As the cluster admins can: with tokens of the location's target account.
	account := backupv1alpha1.TargetServiceAccount(backuplocation.TargetName(team, loc.Name))
	asSpoke1 := teamStore(g, id, spoke1, account, container, team)
	written, err := archive.Open(ctx, asSpoke1, dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(written.Manifest().SHA256).To(Equal(b.Status.ManifestSHA256), "what the hub recorded is what spoke-1 wrote")

	t.Log("with spoke-2's token, spoke-1's backup is rewritten with an extra ConfigMap and resealed")
	asSpoke2 := teamStore(g, id, spoke2, account, container, team)
	reseal(g, ctx, asSpoke2, dir, archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: ns, Name: "forged",
		Object: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"forged","namespace":"` + ns + `"},"data":{"by":"spoke-2"}}`)})
	forged, err := archive.Open(ctx, asSpoke1, dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(forged.Verify(ctx)).To(Succeed(), "the resealed backup is consistent in itself")
	g.Expect(forged.Manifest().SHA256).NotTo(Equal(b.Status.ManifestSHA256))

	t.Log("a hub Restore of the Backup fails BackupCorrupt and writes nothing")
	mapped := ns + "-forged"
	rs := &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "forged"},
		Spec: fleetv1alpha1.RestoreSpec{
			Backup:         backupv1alpha1.ObjectName(b.Name),
			RestoreOptions: backupv1alpha1.RestoreOptions{NamespaceMapping: backupv1alpha1.NamespaceMapping{ns: backupv1alpha1.NamespaceName(mapped)}},
		},
	}
	g.Expect(hub.Create(ctx, rs)).To(Succeed())
	g.Eventually(func() backupv1alpha1.RestorePhase {
		g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(rs), rs)).To(Succeed())
		return rs.Status.Phase
	}, 3*time.Minute, 250*time.Millisecond).Should(BeElementOf(backupv1alpha1.RestoreSuccess, backupv1alpha1.RestoreFailed, backupv1alpha1.RestorePartialSuccess))
	g.Expect(rs.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed), "conditions: %+v", rs.Status.Conditions)
	ready := meta.FindStatusCondition(rs.Status.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(backupv1alpha1.ReasonBackupCorrupt))
	g.Expect(ready.Message).To(ContainSubstring(b.Status.ManifestSHA256))
	t.Logf("refused: %s: %s", ready.Reason, ready.Message)
	err = spoke1.Client.Get(ctx, client.ObjectKey{Name: mapped}, &corev1.Namespace{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s was created: %v", mapped, err)
	err = spoke1.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forged"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the forged ConfigMap was restored: %v", err)

	t.Log("with ABAC, spoke-2's identity writes only under its own folder: its PUT under spoke-1's gets 403")
	perCluster, err := az.NewIdentity(uuid.NewString())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(az.Federate(perCluster, spoke2.ControlPlane, spoke2.TokenFile.Subject)).To(Succeed())
	az.GrantWithCondition(perCluster, container, blobproxy.StorageBlobDataContributor, blobproxy.Condition{WritePathPrefixes: []string{
		team + "/lifeboat/v1/backups/" + spoke2.Name + "/", team + "/lifeboat/v1/probes/",
	}})
	held := teamStore(g, perCluster, spoke2, fleet.SpokeServiceAccount, container, team)
	_, err = held.Put(ctx, dir+"/"+archive.ResourcesFile, bytes.NewReader([]byte("forged")))
	var re *azcore.ResponseError
	g.Expect(errors.As(err, &re)).To(BeTrue(), "the write under %s was not refused: %v", dir, err)
	g.Expect(re.StatusCode).To(Equal(http.StatusForbidden))
	g.Expect(re.ErrorCode).To(Equal("AuthorizationPermissionMismatch"))
	g.Expect(held.Delete(ctx, dir+"/"+archive.ManifestFile)).NotTo(Succeed(), "nor may it delete there")
	_, err = archive.Open(ctx, held, dir)
	g.Expect(err).NotTo(HaveOccurred(), "reads are not restricted: spoke-2 may restore spoke-1's backups")
	own, err := archive.Path("", spoke2.Name, "abac-"+rand.String(6))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = held.Put(ctx, own+"/probe", bytes.NewReader([]byte("own folder")))
	g.Expect(err).NotTo(HaveOccurred(), "spoke-2 writes under its own folder")
	g.Expect(held.Delete(ctx, own+"/probe")).To(Succeed())
	res := held.Validate(ctx)
	g.Expect(res.Valid).To(BeTrue(), "the documented condition lets a target validate: %s: %s", res.Reason, res.Message)
}

// reseal rewrites the backup in dir with extra added to its items, as
// someone with write access to the container could: backup.json is written
// anew, with the checksums and counts of the new files.
func reseal(g Gomega, ctx context.Context, store archive.Store, dir string, extra archive.Item) {
	rd, err := archive.Open(ctx, store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	m := rd.Manifest()
	var items []archive.Item
	g.Expect(rd.Items(ctx, func(it archive.Item) error { items = append(items, it); return nil })).To(Succeed())
	names, err := store.List(ctx, dir+"/")
	g.Expect(err).NotTo(HaveOccurred())
	for _, n := range names {
		g.Expect(store.Delete(ctx, n)).To(Succeed())
	}
	w, err := archive.NewWriter(ctx, store, dir, archive.Meta{Owner: m.Owner, Spec: m.Spec, StartTimestamp: m.StartTimestamp})
	g.Expect(err).NotTo(HaveOccurred())
	for _, it := range append(items, extra) {
		g.Expect(w.Add(it)).To(Succeed())
	}
	_, err = w.Close(ctx)
	g.Expect(err).NotTo(HaveOccurred())
}
