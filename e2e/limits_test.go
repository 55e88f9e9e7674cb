package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// Security review M2 on a spoke as the chart installs it (limits.restores:
// 2): ten restores created at once run at most two at a time; the others
// wait Pending, saying why, and all of them finish.
func TestRestoresRunTwoAtATime(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[0]
	ns := "slots-" + rand.String(4)
	validTarget(g, ctx, "slot-backups", "slot-backups")
	ensureNamespace(g, ctx, spoke.Client, ns, nil)
	createConfigMaps(g, ctx, spoke.Client, ns, 300, 0)
	b := appBackup(ns, "slot-backups", ns)
	g.Expect(spoke.Client.Create(ctx, b)).To(Succeed())
	g.Expect(waitFinished(g, ctx, spoke.Client, b, backupPhase, 2*time.Minute)).To(Equal("Success"), "%+v", b.Status.Conditions)

	var (
		mu      sync.Mutex
		most    int
		waiting string
	)
	// list returns the test's restores; an error reads as none (the
	// watcher below runs in a goroutine of its own, where it may not fail).
	list := func() []backupv1alpha1.ApplicationRestore {
		var all backupv1alpha1.ApplicationRestoreList
		if err := spoke.Client.List(ctx, &all, client.InNamespace(targets.SystemNamespace)); err != nil {
			return nil
		}
		var mine []backupv1alpha1.ApplicationRestore
		for _, r := range all.Items {
			if strings.HasPrefix(r.Name, ns+"-") {
				mine = append(mine, r)
			}
		}
		return mine
	}
	watchCtx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			running := 0
			for _, r := range list() {
				switch r.Status.Phase {
				case backupv1alpha1.RestoreInProgress:
					running++
				case backupv1alpha1.RestorePending:
					if c := meta.FindStatusCondition(r.Status.Conditions, backupv1alpha1.ConditionReady); c != nil && c.Reason == backupv1alpha1.ReasonWaiting {
						mu.Lock()
						waiting = c.Message
						mu.Unlock()
					}
				}
			}
			mu.Lock()
			most = max(most, running)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for i := range 10 {
		r := appRestore(fmt.Sprintf("%s-%d", ns, i), "slot-backups", spoke.Name, string(b.Status.BackupID), map[string]string{ns: fmt.Sprintf("%s-r%d", ns, i)})
		g.Expect(spoke.Client.Create(ctx, r)).To(Succeed())
	}
	g.Eventually(func() []string {
		var phases []string
		for _, r := range list() {
			phases = append(phases, string(r.Status.Phase))
		}
		return phases
	}, 6*time.Minute, time.Second).Should(And(HaveLen(10), HaveEach("Success")))
	stop()
	<-watched

	mu.Lock()
	defer mu.Unlock()
	t.Logf("at most %d restores ran at once; a waiting one said %q", most, waiting)
	g.Expect(most).To(BeNumerically("<=", 2))
	g.Expect(waiting).To(Equal("Waiting for a restore slot: 2 of the hub's restores are running, the most at once on this cluster (--max-restores)"))
}
