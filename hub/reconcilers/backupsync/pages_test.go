package backupsync

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// Pages that no running sync waits for are deleted: the hub keeps (and
// caches) only pages of running syncs. A page of the running sync stays.
func TestPagesOfSyncsThatDoNotRunAreDeleted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocation(t, g, "team-pages", "primary", "acctpages", "backups", "spoke-p1")
	running := newSync(t, g, loc, "running")
	g.Eventually(getSync(running)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskInProgress))
	finished := &fleetv1alpha1.BackupSync{ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: "finished"},
		Spec: fleetv1alpha1.BackupSyncSpec{Location: "primary", Cluster: "spoke-other"}}
	g.Expect(hubClient.Create(ctx, finished)).To(Succeed())
	g.Eventually(getSync(finished)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskFailed))
	ghost := running.DeepCopy()
	ghost.Name, ghost.UID = "ghost", types.UID("00000000-0000-0000-0000-00000000dead")
	impostor := running.DeepCopy()
	impostor.UID = ghost.UID

	writePage(g, running, "spoke-p1", "primary", 0, false, entry("spoke-p1", "a"))
	for _, s := range []*fleetv1alpha1.BackupSync{finished, ghost} {
		writePage(g, s, "spoke-p1", "primary", 0, false, entry("spoke-p1", "b"))
	}
	// The running sync's name, another UID: page 1 so that the names differ.
	writePage(g, impostor, "spoke-p1", "primary", 1, false, entry("spoke-p1", "c"))

	for _, p := range []struct {
		s *fleetv1alpha1.BackupSync
		n string
	}{{finished, "-p0"}, {ghost, "-p0"}, {impostor, "-p1"}} {
		key := client.ObjectKey{Namespace: "spoke-p1", Name: SpokeName(p.s.Namespace, p.s.Name) + p.n}
		g.Eventually(func() bool {
			return apierrors.IsNotFound(hubClient.Get(ctx, key, &fleetv1alpha1.BackupCatalog{}))
		}).WithTimeout(timeout).Should(BeTrue(), "page %s is deleted", key.Name)
	}
	kept := client.ObjectKey{Namespace: "spoke-p1", Name: SpokeName(running.Namespace, running.Name) + "-p0"}
	g.Consistently(func() error { return hubClient.Get(ctx, kept, &fleetv1alpha1.BackupCatalog{}) }).WithTimeout(2 * time.Second).Should(Succeed())
}
