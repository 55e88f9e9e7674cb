package applicationrestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/archive/archivetest"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// condition returns the condition of type typ as "Status/Reason".
func condition(ar *backupv1alpha1.ApplicationRestore, typ string) string {
	c := meta.FindStatusCondition(ar.Status.Conditions, typ)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

func message(ar *backupv1alpha1.ApplicationRestore) string {
	if c := meta.FindStatusCondition(ar.Status.Conditions, backupv1alpha1.ConditionCompleted); c != nil {
		return c.Message
	}
	return ""
}

func TestRestoreSucceeds(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "ok", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("ok-app"), cm("ok-app", "a", map[string]string{"k": "v"}), cm("ok-app", "b", nil))

	ar := reconcile(t, ctx, newReconciler(), newRestore(targets.SystemNamespace, "ok", "ok", "b1"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
	g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("True/" + backupv1alpha1.ReasonSucceeded))
	g.Expect(condition(ar, backupv1alpha1.ConditionCompleted)).To(Equal("True/" + backupv1alpha1.ReasonSucceeded))
	g.Expect(message(ar)).To(ContainSubstring("Restored 3 of 3 objects"))
	g.Expect(ar.Status.Progress).To(Equal(&backupv1alpha1.Progress{ItemsTotal: 3, ItemsDone: 3, BytesDone: ar.Status.Progress.BytesDone}))
	g.Expect(ar.Status.Progress.BytesDone).To(BeNumerically(">", 0))
	g.Expect(ar.Status.StartTime).NotTo(BeNil())
	g.Expect(ar.Status.CompletionTime).NotTo(BeNil())
	g.Expect(ar.Status.Errors).To(BeZero())
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "ok-app", "a")).To(BeTrue())
	g.Expect(ar.Status.ObservedGeneration).To(Equal(ar.Generation))

	// A restore that ended is left alone.
	before := ar.ResourceVersion
	_, err := newReconciler().Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(get(t, ctx, ar).ResourceVersion).To(Equal(before))
}

// Every restore keeps its log, one result per item with the reason, in the
// bucket beside the backup, and counts in its status that add up; an
// object that exists is skipped with a warning that names it.
func TestRestoreKeepsAResultPerItem(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "logged", true, false)
	dir := writeBackup(t, store, "b1", hubOwner, ns("logged-app"), cm("logged-app", "a", nil), cm("logged-app", "b", nil),
		cm("logged-app", "kube-root-ca.crt", nil))
	makeNamespace(t, ctx, "logged-app", nil)
	g.Expect(cp.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "logged-app", Name: "a"}})).To(Succeed())

	r := newReconciler()
	ar := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, "logged", "logged", "b1"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
	g.Expect(message(ar)).To(HavePrefix("Restored 1 of 4 objects; 2 existed and were left as they are, 1 were left out, 0 failed (2 warnings)"))
	g.Expect(ar.Status.Items).To(Equal(&backupv1alpha1.RestoreItemCounts{Created: 1, Existed: 2, LeftOut: 1}))
	g.Expect(ar.Status.Warnings).To(BeEquivalentTo(2))
	g.Expect(ar.Status.Log).To(Equal(archive.RestoreLogPath(dir, "spoke-1", targets.SystemNamespace, "logged", string(ar.UID))))

	lines, err := archive.ReadRestoreLog(ctx, store, ar.Status.Log, 1<<20, nil)
	g.Expect(err).NotTo(HaveOccurred())
	results := map[string]string{}
	for _, l := range lines {
		if l.Result != "" {
			results[l.Item.Name] = fmt.Sprintf("%s %s: %s", l.Level, l.Result, l.Message)
		}
	}
	g.Expect(results).To(Equal(map[string]string{
		"logged-app":       "warning existed: Skipped: Namespace logged-app exists and is left as it is (existingResourcePolicy Skip)",
		"a":                "warning existed: Skipped: ConfigMap logged-app/a exists and is left as it is (existingResourcePolicy Skip)",
		"b":                "info created: Created",
		"kube-root-ca.crt": "info leftOut: Left out: the kube-root-ca.crt ConfigMaps, which every cluster publishes in every namespace",
	}))
	g.Expect(lines[len(lines)-1].Message).To(HavePrefix("Restored 1 of 4 objects"))
}

// A restore that fails on storage says so in one sentence and has its
// target validated again at once.
func TestStorageFailureRevalidatesTheTarget(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "failing", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("failing-app"), cm("failing-app", "a", nil))
	store.mu.Lock()
	store.fail = errors.New("the storage service answered HTTP 502 Bad Gateway")
	store.mu.Unlock()

	r := newReconciler()
	r.Revalidation = targets.NewRevalidation()
	ar := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, "failing", "failing", "b1"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed), message(ar))
	g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonStorageError))
	g.Expect(message(ar)).To(And(HavePrefix("Reading the backup failed; nothing was changed in the cluster: "),
		ContainSubstring("HTTP 502 Bad Gateway"), Not(ContainSubstring("\n"))))
	g.Expect(r.Revalidation.Take("failing")).To(BeTrue(), "the target is validated again at once")
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "failing-app")).To(BeFalse())
}

// A restore that restored nothing of a backup that holds objects is not a
// success, whatever the reason each was left out.
func TestNothingRestoredFails(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "nothing", true, true)
	makeNamespace(t, ctx, "team-n", map[string]string{"selfservice": "nothing"})
	writeBackup(t, store, "b1", hubOwner, ns("team-m"), cm("team-m", "a", nil), cm("team-m", "b", nil))

	ar := reconcile(t, ctx, newReconciler(), newRestore("team-n", "other-namespace", "nothing", "b1"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed), message(ar))
	g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonNothingRestored))
	g.Expect(message(ar)).To(HavePrefix("Nothing was restored: Restored 0 of 3 objects; 0 existed and were left as they are, 3 were left out"))
	g.Expect(ar.Status.Items).To(Equal(&backupv1alpha1.RestoreItemCounts{LeftOut: 3}))
	g.Expect(ar.Status.Log).NotTo(BeEmpty())
}

func TestItemErrorsMakeAPartialSuccess(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "partial", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("partial-app"), cm("partial-app", "good", nil), cm("partial-app", "bad", map[string]string{"bad key!": "x"}))

	ar := reconcile(t, ctx, newReconciler(), newRestore(targets.SystemNamespace, "partial", "partial", "b1"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestorePartialSuccess))
	g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonPartiallySucceeded))
	g.Expect(condition(ar, backupv1alpha1.ConditionCompleted)).To(Equal("True/" + backupv1alpha1.ReasonPartiallySucceeded))
	g.Expect(ar.Status.Errors).To(BeEquivalentTo(1))
	g.Expect(message(ar)).To(And(ContainSubstring("1 objects could not be restored"), ContainSubstring("partial-app/bad.json"), ContainSubstring("Invalid value")))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "partial-app", "good")).To(BeTrue())
}

// A backup that is missing, unfinished, damaged or too new fails the
// restore with a reason and a message that says so, and nothing changes.
func TestUnusableBackupsFail(t *testing.T) {
	ctx := testCtx(t)
	store := makeTarget(t, ctx, "unusable", true, false)
	items := []archive.Item{ns("unusable-app"), cm("unusable-app", "a", nil)}
	for _, tc := range []struct {
		name, id string
		damage   func(g *WithT, dir string)
		reason   string
		message  string
	}{
		{"missing", "none", nil, backupv1alpha1.ReasonBackupNotFound, "holds no backup none of cluster spoke-1"},
		{"unfinished", "unfinished", func(g *WithT, dir string) { g.Expect(store.Delete(ctx, dir+"/"+archive.ManifestFile)).To(Succeed()) },
			backupv1alpha1.ReasonBackupIncomplete, "is incomplete"},
		{"tampered", "tampered", func(g *WithT, dir string) { flipByte(g, store, dir+"/"+archive.ResourcesFile) },
			backupv1alpha1.ReasonBackupCorrupt, "sha256"},
		{"truncated", "truncated", func(g *WithT, dir string) { truncate(g, store, dir+"/"+archive.ResourcesFile) },
			backupv1alpha1.ReasonBackupCorrupt, "is truncated"},
		{"version bumped", "bumped", func(g *WithT, dir string) { bumpVersion(g, store, dir+"/"+archive.ManifestFile) },
			backupv1alpha1.ReasonBackupFormatUnsupported, "newer Lifeboat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			if tc.damage != nil {
				tc.damage(g, writeBackup(t, store, tc.id, hubOwner, items...))
			}
			ar := reconcile(t, ctx, newReconciler(), newRestore(targets.SystemNamespace, "unusable-"+tc.id, "unusable", tc.id))
			g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
			g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + tc.reason))
			g.Expect(condition(ar, backupv1alpha1.ConditionCompleted)).To(Equal("True/" + tc.reason))
			g.Expect(message(ar)).To(ContainSubstring(tc.message))
			g.Expect(exists(ctx, &corev1.Namespace{}, "", "unusable-app")).To(BeFalse(), "the cluster changed")
		})
	}
}

func TestTargetRefusals(t *testing.T) {
	ctx := testCtx(t)
	makeTarget(t, ctx, "invalid", false, false)
	makeTarget(t, ctx, "hub-only", true, false)
	makeNamespace(t, ctx, "team-refused", nil)
	for _, tc := range []struct {
		namespace, target, reason, message string
	}{
		{targets.SystemNamespace, "absent", backupv1alpha1.ReasonTargetNotFound, `BackupTarget "absent" does not exist`},
		{targets.SystemNamespace, "invalid", backupv1alpha1.ReasonTargetNotValid, "the container backups does not exist"},
		{"team-refused", "hub-only", backupv1alpha1.ReasonNamespaceNotAllowed, "does not allow self-service"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			g := NewWithT(t)
			ar := reconcile(t, ctx, newReconciler(), newRestore(tc.namespace, "refused-"+tc.target, tc.target, "b1"))
			g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
			g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + tc.reason))
			g.Expect(message(ar)).To(ContainSubstring(tc.message))
		})
	}
}

// A team's restore writes only into its own namespace, whatever the backup
// holds, and may not bring in another namespace's objects.
func TestSelfService(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "teams", true, true)
	makeNamespace(t, ctx, "team-x", map[string]string{"selfservice": "teams"})
	writeBackup(t, store, "mixed", hubOwner, ns("team-x"), ns("team-y"), cm("team-x", "mine", nil), cm("team-y", "theirs", nil), clusterRole("team-x-power"))

	ar := reconcile(t, ctx, newReconciler(), newRestore("team-x", "mixed", "teams", "mixed"))
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
	g.Expect(ar.Status.Warnings).To(BeEquivalentTo(3)) // team-y's Namespace and ConfigMap, the ClusterRole
	g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-x", "mine")).To(BeTrue())
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "team-y")).To(BeFalse())
	g.Expect(exists(ctx, &rbacv1.ClusterRole{}, "", "team-x-power")).To(BeFalse())

	t.Run("mapping another namespace in", func(t *testing.T) {
		g := NewWithT(t)
		mapped := newRestore("team-x", "mapped", "teams", "mixed")
		mapped.Spec.NamespaceMapping = backupv1alpha1.NamespaceMapping{"team-y": "team-x"}
		ar := reconcile(t, ctx, newReconciler(), mapped)
		g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
		g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonNamespaceNotAllowed))
		g.Expect(message(ar)).To(ContainSubstring("maps namespace team-y into it"))
		g.Expect(exists(ctx, &corev1.ConfigMap{}, "team-x", "theirs")).To(BeFalse())
	})
	t.Run("another team's backup", func(t *testing.T) {
		g := NewWithT(t)
		writeBackup(t, store, "theirs", archive.Owner{Namespace: "team-y"}, cm("team-y", "secret-sauce", nil))
		ar := reconcile(t, ctx, newReconciler(), newRestore("team-x", "theirs", "teams", "theirs"))
		g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
		g.Expect(message(ar)).To(ContainSubstring("belongs to namespace team-y"))
	})
}

// staleClient reads an ApplicationRestore as it was, as a cache behind the
// API server does.
type staleClient struct {
	client.Client
	old *backupv1alpha1.ApplicationRestore
}

func (c staleClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if ar, ok := obj.(*backupv1alpha1.ApplicationRestore); ok && key == client.ObjectKeyFromObject(c.old) {
		c.old.DeepCopyInto(ar)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// A restore read from a stale cache is not started (the optimistic lock
// refuses the patch), and that is no error: it is retried shortly.
func TestStaleReadIsRetriedWithoutAnError(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "stale", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("stale-app"), cm("stale-app", "a", nil))
	ar := newRestore(targets.SystemNamespace, "stale", "stale", "b1")
	g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	old := ar.DeepCopy()
	ar.Labels = map[string]string{"changed": "yes"}
	g.Expect(cp.Client.Update(ctx, ar)).To(Succeed())

	r := newReconciler()
	r.Client = staleClient{Client: cp.Client, old: old}
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", 0))
	r.runs.group.Wait()
	g.Expect(get(t, ctx, ar).Status.Phase).To(BeEmpty())

	r.Client = cp.Client
	_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
	g.Expect(err).NotTo(HaveOccurred())
	r.runs.group.Wait()
	g.Expect(get(t, ctx, ar).Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess))
}

// A restore found InProgress that does not run here was interrupted by a
// restart.
func TestInterruptedRestoreFails(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	ar := newRestore(targets.SystemNamespace, "interrupted", "ok", "b1")
	g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	started := metav1.Now()
	ar.Status.Phase, ar.Status.StartTime = backupv1alpha1.RestoreInProgress, &started
	g.Expect(cp.Client.Status().Update(ctx, ar)).To(Succeed())

	_, err := newReconciler().Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
	g.Expect(err).NotTo(HaveOccurred())
	ar = get(t, ctx, ar)
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonInterrupted))
	g.Expect(ar.Status.StartTime.Time).To(BeTemporally("~", started.Time, time.Second))
}

// A restore runs once, in the background: reconciling it again while it runs
// starts nothing.
func TestRestoreRunsOnceInTheBackground(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "slow", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("slow-app"), cm("slow-app", "a", nil))
	store.manifestReads.Store(0) // the writer looked for an existing backup
	release := store.hold()
	defer release()

	r := newReconciler()
	ar := newRestore(targets.SystemNamespace, "slow", "slow", "b1")
	g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)}
	_, err := r.Reconcile(ctx, req) // returns at once: the restore waits for the store
	g.Expect(err).NotTo(HaveOccurred())
	running := get(t, ctx, ar)
	g.Expect(running.Status.Phase).To(Equal(backupv1alpha1.RestoreInProgress))
	g.Expect(condition(running, backupv1alpha1.ConditionReady)).To(Equal("True/" + backupv1alpha1.ReasonInProgress))
	g.Expect(condition(running, backupv1alpha1.ConditionCompleted)).To(Equal("False/" + backupv1alpha1.ReasonInProgress))
	g.Expect(running.Status.Progress.ItemsTotal).To(BeEquivalentTo(2))
	_, err = r.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(store.manifestReads.Load()).To(BeEquivalentTo(1))

	release()
	r.runs.group.Wait()
	g.Expect(get(t, ctx, ar).Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess))
	g.Expect(store.manifestReads.Load()).To(BeEquivalentTo(1))
}

// A restore whose storage does not answer says so in Ready, and takes it
// back when storage answers.
func TestRestoreWaitingOnStorageSaysSo(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "stalled", true, false)
	writeBackup(t, store, "b1", hubOwner, ns("stalled-app"), cm("stalled-app", "a", nil))
	release := store.hold()
	defer release()

	r := newReconciler()
	r.StorageWait = 300 * time.Millisecond
	ar := newRestore(targets.SystemNamespace, "stalled", "stalled", "b1")
	g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
	g.Expect(err).NotTo(HaveOccurred())
	ready := func() string {
		if c := meta.FindStatusCondition(get(t, ctx, ar).Status.Conditions, backupv1alpha1.ConditionReady); c != nil {
			return c.Message
		}
		return ""
	}
	g.Eventually(ready).WithTimeout(10 * time.Second).Should(And(
		ContainSubstring("waiting for the storage service of BackupTarget stalled: it has not answered for"),
		ContainSubstring("0 of 2 objects done")))
	running := get(t, ctx, ar)
	g.Expect(condition(running, backupv1alpha1.ConditionReady)).To(Equal("True/" + backupv1alpha1.ReasonWaitingForStorage))
	g.Expect(running.Status.Phase).To(Equal(backupv1alpha1.RestoreInProgress))

	release()
	r.runs.group.Wait()
	done := get(t, ctx, ar)
	g.Expect(done.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(done))
	g.Expect(condition(done, backupv1alpha1.ConditionReady)).To(Equal("True/" + backupv1alpha1.ReasonSucceeded))
}

// Under a manager: restores start from watch events, report events, and
// those still running when the manager stops end as Interrupted.
// managerRuns numbers the runs of TestUnderAManager.
var managerRuns atomic.Int32

func TestUnderAManager(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	// Names of their own in each run, so that -count=N repeats the test.
	name := fmt.Sprintf("managed-%d", managerRuns.Add(1))
	app, slowApp := name+"-app", name+"-slow"
	store := makeTarget(t, ctx, name, true, false)
	writeBackup(t, store, "b1", hubOwner, ns(app), cm(app, "a", nil))
	writeBackup(t, store, "b2", hubOwner, ns(slowApp), cm(slowApp, "a", nil))

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: fleet.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	g.Expect(err).NotTo(HaveOccurred())
	r := &Reconciler{Client: mgr.GetClient(), Stores: buckets.get, Recorder: mgr.GetEventRecorder("lifeboat-spoke")}
	g.Expect(r.SetupWithManager(mgr)).To(Succeed())
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() {
		stop()
		<-done
	}()

	ar := newRestore(targets.SystemNamespace, name, name, "b1")
	g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	g.Eventually(func() backupv1alpha1.RestorePhase { return get(t, ctx, ar).Status.Phase }).WithTimeout(time.Minute).Should(Equal(backupv1alpha1.RestoreSuccess))
	g.Expect(exists(ctx, &corev1.ConfigMap{}, app, "a")).To(BeTrue())
	g.Eventually(func() []string {
		var list eventsv1.EventList
		g.Expect(cp.Client.List(ctx, &list, client.InNamespace(targets.SystemNamespace))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == name {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}).WithTimeout(30 * time.Second).Should(ContainElements(backupv1alpha1.ReasonInProgress, backupv1alpha1.ReasonSucceeded))

	// Stop the manager while a restore waits for the store.
	release := store.hold()
	defer release()
	slow := newRestore(targets.SystemNamespace, slowApp, name, "b2")
	g.Expect(cp.Client.Create(ctx, slow)).To(Succeed())
	g.Eventually(func() backupv1alpha1.RestorePhase { return get(t, ctx, slow).Status.Phase }).WithTimeout(time.Minute).Should(Equal(backupv1alpha1.RestoreInProgress))
	stop()
	g.Expect(<-done).To(Succeed())
	done = make(chan error, 1)
	done <- nil
	slow = get(t, ctx, slow)
	g.Expect(slow.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(condition(slow, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonInterrupted))
	g.Expect(exists(ctx, &corev1.Namespace{}, "", slowApp)).To(BeFalse())
}

func flipByte(g *WithT, store *gatedStore, name string) {
	p := filePath(store, name)
	b, err := os.ReadFile(p)
	g.Expect(err).NotTo(HaveOccurred())
	b[len(b)*9/10] ^= 0x55
	g.Expect(os.WriteFile(p, b, 0o644)).To(Succeed())
}

func truncate(g *WithT, store *gatedStore, name string) {
	p := filePath(store, name)
	fi, err := os.Stat(p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.Truncate(p, fi.Size()*9/10)).To(Succeed())
}

func bumpVersion(g *WithT, store *gatedStore, name string) {
	p := filePath(store, name)
	b, err := os.ReadFile(p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(b)).To(ContainSubstring(`"formatVersion": 1,`))
	b = []byte(strings.Replace(string(b), `"formatVersion": 1,`, fmt.Sprintf(`"formatVersion": %d,`, archive.FormatVersion+1), 1))
	g.Expect(os.WriteFile(p, b, 0o644)).To(Succeed())
}

// filePath is where a store keeps name.
func filePath(store *gatedStore, name string) string {
	return filepath.Join(store.root, filepath.FromSlash(name))
}

// A panic while the restore opens the backup (in Reconcile) or while it
// reads the resources (in its own goroutine) fails the restore with
// InternalError, and the spoke restores again afterwards.
func TestPanicInStorageFailsTheRestore(t *testing.T) {
	for _, file := range []string{archive.ManifestFile, archive.ResourcesFile} {
		t.Run(file, func(t *testing.T) {
			ctx := testCtx(t)
			g := NewWithT(t)
			target := "panic-" + strings.ToLower(strings.NewReplacer(".", "-").Replace(file))
			store := makeTarget(t, ctx, target, true, false)
			writeBackup(t, store, "b1", hubOwner, ns(target+"-app"), cm(target+"-app", "a", nil))
			buckets.set(target, &archivetest.PanickingStore{Store: store, Panics: func(op, name string) bool {
				return op == "Get" && strings.HasSuffix(name, "/"+file)
			}})

			r := newReconciler()
			ar := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, target, target, "b1"))
			g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed), message(ar))
			g.Expect(condition(ar, backupv1alpha1.ConditionReady)).To(Equal("False/" + backupv1alpha1.ReasonInternalError))
			g.Expect(condition(ar, backupv1alpha1.ConditionCompleted)).To(Equal("True/" + backupv1alpha1.ReasonInternalError))
			g.Expect(message(ar)).To(ContainSubstring("internal error: panic: " + archivetest.PanicMessage))

			buckets.set(target, store)
			again := reconcile(t, ctx, r, newRestore(targets.SystemNamespace, target+"-again", target, "b1"))
			g.Expect(again.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(again))
		})
	}
}

// TestResealedBackupFailsTheHubDigest: a backup rewritten and resealed by
// someone else with write access to the container is consistent in itself,
// but its backup.json is not the one whose sha256 the hub recorded: the
// restore fails BackupCorrupt and writes nothing. The true backup restores.
func TestResealedBackupFailsTheHubDigest(t *testing.T) {
	ctx := testCtx(t)
	g := NewWithT(t)
	store := makeTarget(t, ctx, "sealed", true, false)
	dir := writeBackup(t, store, "b1", hubOwner, ns("sealed-app"), cm("sealed-app", "a", nil))
	recorded := manifestSHA256(g, store, dir)

	names, err := store.List(ctx, dir+"/")
	g.Expect(err).NotTo(HaveOccurred())
	for _, n := range names {
		g.Expect(store.Delete(ctx, n)).To(Succeed())
	}
	writeBackup(t, store, "b1", hubOwner, ns("sealed-app"), cm("sealed-app", "a", nil), cm("sealed-app", "forged", nil))
	forged := manifestSHA256(g, store, dir)
	g.Expect(forged).NotTo(Equal(recorded))

	ar := newRestore(targets.SystemNamespace, "sealed-recorded", "sealed", "b1")
	ar.Spec.Source.ManifestSHA256 = recorded
	ar = reconcile(t, ctx, newReconciler(), ar)
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreFailed))
	g.Expect(condition(ar, backupv1alpha1.ConditionCompleted)).To(Equal("True/" + backupv1alpha1.ReasonBackupCorrupt))
	g.Expect(message(ar)).To(And(ContainSubstring(recorded), ContainSubstring(forged)))
	g.Expect(exists(ctx, &corev1.Namespace{}, "", "sealed-app")).To(BeFalse(), "the cluster changed")

	ar = newRestore(targets.SystemNamespace, "sealed-matching", "sealed", "b1")
	ar.Spec.Source.ManifestSHA256 = forged
	ar = reconcile(t, ctx, newReconciler(), ar)
	g.Expect(ar.Status.Phase).To(Equal(backupv1alpha1.RestoreSuccess), message(ar))
}

func manifestSHA256(g *WithT, store archive.Store, dir string) string {
	sum, err := archivetest.ManifestSHA256(context.Background(), store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	return sum
}
