package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Deleting the spoke's pod in the middle of a backup never leaves a backup
// that looks complete: the Deployment brings a new pod, which reports the run
// Failed (Interrupted) and deletes its partial data; the next backup succeeds.
func TestSpokeKilledDuringBackup(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[1]
	id := validTarget(g, ctx, "crash-backups", "crash-backups")
	ns := "crash"
	ensureNamespace(g, ctx, spoke.Client, ns, nil)
	createConfigMaps(g, ctx, spoke.Client, ns, 3000, 8<<10)
	// Slow storage keeps the backup uploading long enough to kill the spoke in the middle.
	testFleet.Azure.Proxy.SetWriteDelay(3 * time.Second)
	defer testFleet.Azure.Proxy.SetWriteDelay(0)

	b := appBackup("crash", "crash-backups", ns)
	g.Expect(spoke.Client.Create(ctx, b)).To(Succeed())
	g.Eventually(func() int64 {
		g.Expect(spoke.Client.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		if b.Status.Progress == nil {
			return 0
		}
		return b.Status.Progress.ItemsDone
	}, time.Minute, 20*time.Millisecond).Should(BeNumerically(">", 0), "the backup is under way")
	g.Expect(b.Status.Phase).To(Equal(backupv1alpha1.ApplicationBackupInProgress))
	g.Expect(testFleet.KillSpokeManager(ctx, spoke)).To(Succeed())
	testFleet.Azure.Proxy.SetWriteDelay(0)
	t.Logf("deleted the lifeboat-spoke pod at %d items", b.Status.Progress.ItemsDone)

	// What the killed spoke left in the bucket is not a backup.
	store := blobStore(g, id, spoke, "crash-backups", "crash-backups")
	dir, err := archive.Path("", spoke.Name, string(b.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = archive.Open(ctx, store, dir)
	g.Expect(err).To(MatchError(archive.ErrIncomplete), "an interrupted backup has no backup.json")

	g.Expect(testFleet.RestartSpokeManager(ctx, spoke)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, b, backupPhase, 2*time.Minute)).To(Equal("Failed"))
	g.Expect(b.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonInterrupted)))
	t.Logf("after the restart: %+v", b.Status.Conditions)
	_, err = archive.Open(ctx, store, dir)
	g.Expect(err).To(HaveOccurred(), "the interrupted backup is never reported complete")
	left, err := store.List(ctx, dir+"/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left).To(BeEmpty(), "the interrupted backup's partial data is deleted")

	next := appBackup("crash-next", "crash-backups", ns)
	g.Expect(spoke.Client.Create(ctx, next)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, next, backupPhase, 3*time.Minute)).To(Equal("Success"))
	t.Logf("the next backup: %d items", next.Status.Progress.ItemsDone)
}
