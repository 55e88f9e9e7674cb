package applicationrestore

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// startManager runs r in a manager of its own until the test ends.
func startManager(t *testing.T, r *Reconciler) {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: fleet.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	g.Expect(err).NotTo(HaveOccurred())
	r.Client = mgr.GetClient()
	r.Recorder = mgr.GetEventRecorder("lifeboat-spoke")
	g.Expect(r.SetupWithManager(mgr)).To(Succeed())
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		g.Expect(<-done).To(Succeed())
	})
}

// Security review M2: 10 restores of the hub and 3 of a team at once. At
// most MaxRunning of the hub's and MaxSelfServiceRunning of the team's run at
// any time, in slots of their own; the others wait Pending and say why, and
// all of them finish.
func TestRestoresBeyondTheirSlotsWaitAsPending(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "slots", true, true)
	makeNamespace(t, ctx, "team-slots", map[string]string{"selfservice": "slots"})
	writeBackup(t, store, "hub", hubOwner, ns("slots-app"), cm("slots-app", "a", nil))
	writeBackup(t, store, "team", archive.Owner{Namespace: "team-slots"}, cm("team-slots", "a", nil))
	release := store.hold()
	defer release()
	startManager(t, &Reconciler{Cluster: "spoke-1", Stores: buckets.get, MaxRunning: 2, MaxSelfServiceRunning: 1})

	var restores []*backupv1alpha1.ApplicationRestore
	for i := range 10 {
		restores = append(restores, newRestore(targets.SystemNamespace, fmt.Sprintf("slot-%d", i), "slots", "hub"))
	}
	for i := range 3 {
		restores = append(restores, newRestore("team-slots", fmt.Sprintf("slot-%d", i), "slots", "team"))
	}
	// phases counts the restores by pool and phase, as the API server has them.
	phases := func() map[string]int {
		n := map[string]int{}
		for _, ar := range restores {
			cur := &backupv1alpha1.ApplicationRestore{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(ar), cur); err == nil {
				pool := "hub"
				if ar.Namespace != targets.SystemNamespace {
					pool = "team"
				}
				n[pool+"/"+string(cur.Status.Phase)]++
			}
		}
		return n
	}
	var (
		mu  sync.Mutex
		max = map[string]int{}
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			n := phases()
			mu.Lock()
			for _, k := range []string{"hub/InProgress", "team/InProgress"} {
				max[k] = maxOf(max[k], n[k])
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for _, ar := range restores {
		g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	}

	want := map[string]int{"hub/InProgress": 2, "hub/Pending": 8, "team/InProgress": 1, "team/Pending": 2}
	g.Eventually(phases).WithTimeout(time.Minute).Should(Equal(want))
	g.Consistently(phases).WithTimeout(2 * time.Second).Should(Equal(want))
	for _, ar := range restores {
		cur := get(t, ctx, ar)
		if cur.Status.Phase != backupv1alpha1.RestorePending {
			continue
		}
		g.Expect(condition(cur, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonWaiting))
		g.Expect(cur.Status.StartTime).To(BeNil(), "a waiting restore has not started")
		if ar.Namespace == targets.SystemNamespace {
			g.Expect(message(cur)).To(Equal("Waiting for a restore slot: 2 of the hub's restores are running, the most at once on this cluster (--max-restores)"))
		} else {
			g.Expect(message(cur)).To(Equal("Waiting for a restore slot: 1 of teams' restores are running, the most at once on this cluster (--max-self-service-restores)"))
		}
	}

	release()
	g.Eventually(phases).WithTimeout(2 * time.Minute).Should(Equal(map[string]int{"hub/Success": 10, "team/Success": 3}))
	stopWatch()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	g.Expect(max).To(Equal(map[string]int{"hub/InProgress": 2, "team/InProgress": 1}))
}

func maxOf(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// A backup with more objects than one restore takes fails before anything
// is written, and says what to do.
func TestRestoreOfTooManyItemsFailsBeforeWriting(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "toomany", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("toomany-app"), cm("toomany-app", "a", nil), cm("toomany-app", "b", nil))

	r := newReconciler()
	r.MaxItems = 2
	ar := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, "toomany", "toomany", "b1"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonTooManyItems))
	g.Expect(message(ar)).To(ContainSubstring("backup b1 holds 3 objects, more than the 2 one restore takes (--restore-max-items); nothing was changed in the cluster"))
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "toomany-app")).To(BeFalse())
}

// A restore reserves its spool before it starts: one larger than the spool
// fails, one that would fit once another restore ends waits, one larger than
// the file system's free space (statfs) fails, all before writing anything.
func TestRestoreSpoolIsReservedBeforeWriting(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "spool", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("spool-app"), cm("spool-app", "a", nil))
	m, err := archive.Open(ctx, store, "lifeboat/v1/backups/spoke-1/b1")
	g.Expect(err).NotTo(HaveOccurred())
	need := restore.SpoolNeed(m.Manifest())

	t.Log("larger than the spool: it can never run")
	r := newReconciler()
	r.SpoolSize = need / 2
	small := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, "spool-small", "spool", "b1"))
	g.Expect(small.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(condition(small, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonInsufficientSpoolSpace))
	g.Expect(message(small)).To(MatchRegexp(`^The restore needs \d+\.\d KiB of spool, more than the spool's \d+\.\d KiB \(--restore-spool-size`))
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "spool-app")).To(BeFalse())

	t.Log("room for one restore: the second waits for the first, then runs")
	r = newReconciler()
	r.SpoolSize, r.MaxRunning = need*3/2, 5
	release := store.hold()
	first := newRestore(targets.SystemNamespace, "spool-first", "spool", "b1")
	second := newRestore(targets.SystemNamespace, "spool-second", "spool", "b1")
	for _, ar := range []*backupv1alpha1.ApplicationRestore{first, second} {
		g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(get(t, ctx, first).Status.Phase).To(Equal(backupv1alpha1.RestoreInProgress))
	waiting := get(t, ctx, second)
	g.Expect(waiting.Status.Phase).To(Equal(backupv1alpha1.RestorePending))
	g.Expect(condition(waiting, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonWaiting))
	g.Expect(message(waiting)).To(HavePrefix("Waiting for room in the restore spool"))
	release()
	r.runs.group.Wait()
	g.Expect(get(t, ctx, first).Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess))
	_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(second)})
	g.Expect(err).NotTo(HaveOccurred())
	r.runs.group.Wait()
	g.Expect(get(t, ctx, second).Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(get(t, ctx, second)))

	t.Log("more than the file system holds: a backup.json that claims an exabyte of objects")
	writeBackup(t, store, "huge", hubOwner, ns("spool-huge"), cm("spool-huge", "a", nil))
	p := filePath(store, "lifeboat/v1/backups/spoke-1/huge/"+archive.ManifestFile)
	b, err := os.ReadFile(p)
	g.Expect(err).NotTo(HaveOccurred())
	b = regexp.MustCompile(`"objectBytes": \d+`).ReplaceAll(b, []byte(`"objectBytes": 1000000000000000000`))
	g.Expect(os.WriteFile(p, b, 0o644)).To(Succeed())
	huge := reconcile(t, ctx, newReconciler(), newRestore(targets.SystemNamespace, "spool-huge", "spool", "huge"))
	g.Expect(huge.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(condition(huge, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonInsufficientSpoolSpace))
	g.Expect(message(huge)).To(MatchRegexp(`^The restore needs 888\.2 PiB of spool, but its file system has only \d+\.\d [KMGTP]iB free; nothing was changed in the cluster$`))
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "spool-huge")).To(BeFalse())
}
