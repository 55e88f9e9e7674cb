package applicationbackup_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/archive/archivetest"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// itemsOf reads a backup back through the verifying reader and returns its
// manifest and items as "resource/namespace/name".
func (e *env) itemsOf(id string) (*archive.Manifest, []string) {
	dir, err := archive.Path("", cluster, id)
	e.g.Expect(err).NotTo(HaveOccurred())
	r, err := archive.Open(e.ctx, e.store, dir)
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(r.Verify(e.ctx)).To(Succeed())
	var items []string
	e.g.Expect(r.Items(e.ctx, func(it archive.Item) error {
		items = append(items, it.Resource+"/"+it.Namespace+"/"+it.Name)
		return nil
	})).To(Succeed())
	return r.Manifest(), items
}

func condition(ab *backupv1alpha1.ApplicationBackup, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(ab.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func TestHubBackupSucceeds(t *testing.T) {
	e := newEnv(t)
	e.start()
	hub := &backupv1alpha1.HubObjectReference{Namespace: "tenant-a", Name: "nightly", UID: "6f1c7a9e-5b1d-4f7e-9a0c-2d8e4b6f1a3c"}
	ab := e.backup(targets.SystemNamespace, "nightly-"+rand.String(4), func(ab *backupv1alpha1.ApplicationBackup) {
		ab.Spec.BackupID = "nightly-20250101"
		ab.Spec.Hub = hub
		ab.Spec.TTL = &metav1.Duration{Duration: 72 * time.Hour}
	})
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))

	got := e.get(ab)()
	st := got.Status
	e.g.Expect(st.BackupID).To(BeEquivalentTo("nightly-20250101"))
	e.g.Expect(st.Stage).To(Equal(backupv1alpha1.StageFinal))
	e.g.Expect(st.ObservedGeneration).To(Equal(got.Generation))
	e.g.Expect(st.StartTime).NotTo(BeNil())
	e.g.Expect(st.CompletionTime).NotTo(BeNil())
	e.g.Expect(st.CompletionTime.Time).NotTo(BeTemporally("<", st.StartTime.Time))
	e.g.Expect(st.Expiration).NotTo(BeNil())
	e.g.Expect(st.Expiration.Time).To(BeTemporally("==", st.StartTime.Add(72*time.Hour)))
	e.g.Expect(st.Errors).To(BeZero())
	for _, typ := range []string{backupv1alpha1.ConditionReady, backupv1alpha1.ConditionCompleted} {
		c := condition(got, typ)
		e.g.Expect(c.Status).To(Equal(metav1.ConditionTrue), typ)
		e.g.Expect(c.Reason).To(Equal(backupv1alpha1.ReasonSucceeded), typ)
		e.g.Expect(c.Message).To(ContainSubstring("as backup nightly-20250101"), typ)
	}

	// The data: what the status says, owned by the hub Backup, with the
	// application's objects.
	m, items := e.itemsOf("nightly-20250101")
	e.g.Expect(m.Owner.Hub).To(Equal(&archive.HubRef{Namespace: "tenant-a", Name: "nightly", UID: string(hub.UID)}))
	e.g.Expect(m.SourceCluster).To(Equal(cluster))
	e.g.Expect(items).To(ContainElements("configmaps/"+e.app+"/settings", "configmaps/"+e.app+"/flags",
		"configmaps/"+e.app+"/theme", "secrets/"+e.app+"/creds", "namespaces//"+e.app))
	e.g.Expect(st.Progress).NotTo(BeNil())
	e.g.Expect(st.Progress.ItemsDone).To(Equal(int64(len(items))))
	e.g.Expect(st.Progress.ItemsTotal).To(Equal(st.Progress.ItemsDone))
	// bytesDone is what went to the store: the four files.
	var stored int64
	for _, name := range e.files("nightly-20250101")() {
		fi, err := os.Stat(filepath.Join(e.storeDir, name))
		e.g.Expect(err).NotTo(HaveOccurred())
		stored += fi.Size()
	}
	e.g.Expect(st.Progress.BytesDone).To(Equal(stored))
	// The sha256 of backup.json as written, for the hub to record.
	e.g.Expect(st.ManifestSHA256).To(Equal(e.manifestSHA256("nightly-20250101")))

	// Events say what happened.
	e.g.Eventually(func() []string { return eventReasons(e, got) }).Should(ContainElements(backupv1alpha1.ReasonInProgress, backupv1alpha1.ReasonSucceeded))
}

func eventReasons(e *env, ab *backupv1alpha1.ApplicationBackup) []string {
	list := &eventsv1.EventList{}
	if err := cp.Client.List(e.ctx, list, client.InNamespace(ab.Namespace)); err != nil {
		return nil
	}
	var reasons []string
	for _, ev := range list.Items {
		if ev.Regarding.UID == ab.UID {
			reasons = append(reasons, ev.Reason)
		}
	}
	return reasons
}

func TestRefusedBackupsFailAtOnce(t *testing.T) {
	e := newEnv(t)
	e.makeTarget("invalid-"+e.target, backupv1alpha1.TargetInvalid)
	closed := "closed-" + rand.String(6)
	e.g.Expect(cp.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: closed}})).To(Succeed())
	e.start()

	for _, tc := range []struct {
		name, namespace, target string
		mutate                  func(*backupv1alpha1.ApplicationBackup)
		reason, message         string
	}{{
		name: "missing target", namespace: targets.SystemNamespace, target: "nowhere",
		reason: backupv1alpha1.ReasonTargetNotFound, message: `BackupTarget "nowhere" does not exist`,
	}, {
		name: "invalid target", namespace: targets.SystemNamespace, target: "invalid-" + e.target,
		reason: backupv1alpha1.ReasonTargetNotValid, message: "Storage Blob Data Contributor",
	}, {
		name: "namespace not allowed", namespace: closed, target: e.target,
		reason: backupv1alpha1.ReasonNamespaceNotAllowed, message: "does not allow self-service from namespace",
	}, {
		name: "invalid label selector", namespace: targets.SystemNamespace, target: e.target,
		mutate: func(ab *backupv1alpha1.ApplicationBackup) {
			ab.Spec.Selection.LabelSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}
		},
		reason: backupv1alpha1.ReasonInvalidConfiguration, message: "spec.selection: invalid selection: labelSelector",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ab := e.backup(tc.namespace, "refused-"+rand.String(6), func(ab *backupv1alpha1.ApplicationBackup) {
				ab.Spec.Target = backupv1alpha1.ObjectName(tc.target)
				if tc.mutate != nil {
					tc.mutate(ab)
				}
			})
			g.Eventually(e.phase(ab), eventuallyLimit).Should(Equal(backupv1alpha1.ApplicationBackupFailed))
			got := e.get(ab)()
			for _, typ := range []string{backupv1alpha1.ConditionReady, backupv1alpha1.ConditionCompleted} {
				c := condition(got, typ)
				g.Expect(c.Reason).To(Equal(tc.reason), typ)
				g.Expect(c.Message).To(ContainSubstring(tc.message), typ)
			}
			g.Expect(condition(got, backupv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(got.Status.BackupID).To(BeEmpty())
			g.Expect(got.Status.CompletionTime).NotTo(BeNil())
			g.Expect(e.files(string(got.UID))()).To(BeEmpty())
		})
	}
}

func TestSelfServiceBackupTakesOnlyItsNamespace(t *testing.T) {
	e := newEnv(t)
	e.start()
	// A team's backup that asks for another namespace too.
	ab := e.backup(e.app, "mine", func(ab *backupv1alpha1.ApplicationBackup) {
		ab.Spec.Selection.IncludedNamespaces = []backupv1alpha1.NamespaceName{"kube-system", backupv1alpha1.NamespaceName(e.app)}
		ab.Spec.Hub = &backupv1alpha1.HubObjectReference{Namespace: "tenant-a", Name: "forged"}
	})
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
	got := e.get(ab)()
	e.g.Expect(got.Status.BackupID).To(BeEquivalentTo(got.UID))
	e.g.Expect(got.Status.Warnings).To(BeEquivalentTo(1))
	e.g.Expect(condition(got, backupv1alpha1.ConditionReady).Message).To(ContainSubstring("1 warnings"))

	m, items := e.itemsOf(string(got.UID))
	e.g.Expect(m.Owner).To(Equal(archive.Owner{Namespace: e.app}), "a team's backup belongs to its namespace, whatever its spec says")
	e.g.Expect(items).To(ContainElements("configmaps/"+e.app+"/settings", "secrets/"+e.app+"/creds", "namespaces//"+e.app))
	for _, it := range items {
		e.g.Expect(it).To(Or(ContainSubstring("/"+e.app+"/"), Equal("namespaces//"+e.app)))
	}
}

func TestTwoBackupsOfOneNamespaceAtOnceBothSucceed(t *testing.T) {
	e := newEnv(t)
	release := e.hold()
	e.start()
	a := e.backup(targets.SystemNamespace, "first-"+rand.String(4))
	b := e.backup(targets.SystemNamespace, "second-"+rand.String(4))

	// Both run at once: each has written its data and waits to commit.
	e.g.Eventually(e.gate.waiting.Load).Should(BeEquivalentTo(2))
	for _, ab := range []*backupv1alpha1.ApplicationBackup{a, b} {
		got := e.get(ab)()
		e.g.Expect(got.Status.Phase).To(Equal(backupv1alpha1.ApplicationBackupInProgress))
		e.g.Expect(got.Status.BackupID).To(BeEquivalentTo(got.UID), "the backup ID is in the status before data is written")
		e.g.Expect(got.Status.StartTime).NotTo(BeNil())
		e.g.Expect(e.files(string(got.UID))()).To(HaveLen(3))
		e.g.Expect(e.r.Runs.Running(runs.Key(cluster, string(got.UID)))).To(BeTrue())
		e.g.Eventually(func() backupv1alpha1.BackupStage { return e.get(ab)().Status.Stage }).Should(Equal(backupv1alpha1.StageFinal))
		e.g.Expect(e.get(ab)().Status.Progress.ItemsDone).To(BeNumerically(">", 4), "progress is written while the backup runs")
	}
	release()

	var ids []string
	for _, ab := range []*backupv1alpha1.ApplicationBackup{a, b} {
		e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
		id := string(e.get(ab)().Status.BackupID)
		_, items := e.itemsOf(id)
		e.g.Expect(items).To(ContainElement("configmaps/" + e.app + "/settings"))
		ids = append(ids, id)
	}
	e.g.Expect(ids[0]).NotTo(Equal(ids[1]))
}

func TestInterruptedBackupFailsAndItsDataIsDeleted(t *testing.T) {
	e := newEnv(t)
	// What a spoke that crashed mid-backup leaves: an InProgress status and
	// some files, without backup.json.
	ab := e.backup(targets.SystemNamespace, "crashed-"+rand.String(4), func(ab *backupv1alpha1.ApplicationBackup) { ab.Spec.BackupID = "crashed-1" })
	dir, err := archive.Path("", cluster, "crashed-1")
	e.g.Expect(err).NotTo(HaveOccurred())
	for _, f := range []string{archive.ResourcesFile, archive.LogFile} {
		_, err := e.store.Put(e.ctx, dir+"/"+f, bytes.NewReader([]byte("partial")))
		e.g.Expect(err).NotTo(HaveOccurred())
	}
	markInProgress(e, ab, "crashed-1")

	e.start()
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupFailed))
	got := e.get(ab)()
	c := condition(got, backupv1alpha1.ConditionCompleted)
	e.g.Expect(c.Reason).To(Equal(backupv1alpha1.ReasonInterrupted))
	e.g.Expect(c.Message).To(ContainSubstring("the 2 files it had written were deleted"))
	e.g.Expect(condition(got, backupv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
	e.g.Expect(e.files("crashed-1")()).To(BeEmpty())
}

func TestBackupInterruptedAfterItsCommitIsComplete(t *testing.T) {
	e := newEnv(t)
	ab := e.backup(targets.SystemNamespace, "committed-"+rand.String(4), func(ab *backupv1alpha1.ApplicationBackup) { ab.Spec.BackupID = "committed-1" })
	// The spoke wrote backup.json, then stopped before its status said so.
	dir, err := archive.Path("", cluster, "committed-1")
	e.g.Expect(err).NotTo(HaveOccurred())
	w, err := archive.NewWriter(e.ctx, e.store, dir, archive.Meta{Owner: archive.Owner{Namespace: targets.SystemNamespace}})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(w.Add(archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: e.app, Name: "settings",
		Object: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"` + e.app + `"}}`)})).To(Succeed())
	_, err = w.Close(e.ctx)
	e.g.Expect(err).NotTo(HaveOccurred())
	markInProgress(e, ab, "committed-1")

	e.start()
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
	got := e.get(ab)()
	e.g.Expect(condition(got, backupv1alpha1.ConditionCompleted).Message).To(ContainSubstring("read back and verified: 1 items"))
	e.g.Expect(got.Status.Progress.ItemsDone).To(BeEquivalentTo(1))
	e.g.Expect(e.files("committed-1")()).To(HaveLen(4))
	e.g.Expect(got.Status.ManifestSHA256).To(Equal(e.manifestSHA256("committed-1")))
}

func markInProgress(e *env, ab *backupv1alpha1.ApplicationBackup, id string) {
	start := metav1.NewTime(time.Now().Add(-time.Minute))
	ab.Status = backupv1alpha1.ApplicationBackupStatus{Phase: backupv1alpha1.ApplicationBackupInProgress, BackupResult: backupv1alpha1.BackupResult{
		BackupID: backupv1alpha1.BackupID(id), Stage: backupv1alpha1.StageResources, StartTime: &start,
	}}
	e.g.Expect(cp.Client.Status().Update(e.ctx, ab)).To(Succeed())
}

// runningBackup starts a backup and waits until it has written its data and
// waits to commit it.
func runningBackup(e *env) (*backupv1alpha1.ApplicationBackup, string) {
	e.hold()
	e.start()
	ab := e.backup(targets.SystemNamespace, "running-"+rand.String(4))
	e.g.Eventually(e.gate.waiting.Load).Should(BeEquivalentTo(1))
	id := string(e.get(ab)().Status.BackupID)
	e.g.Expect(e.files(id)()).To(HaveLen(3))
	e.g.Expect(e.phase(ab)()).To(Equal(backupv1alpha1.ApplicationBackupInProgress))
	return ab, id
}

// A backup whose storage does not answer says so in its status, and takes it
// back when storage answers.
func TestBackupWaitingOnStorageSaysSo(t *testing.T) {
	e := newEnv(t)
	e.r.StorageWait = 300 * time.Millisecond
	release := e.hold()
	e.start()
	ab := e.backup(targets.SystemNamespace, "stalled-"+rand.String(4))
	ready := func() metav1.Condition {
		if c := meta.FindStatusCondition(e.get(ab)().Status.Conditions, backupv1alpha1.ConditionReady); c != nil {
			return *c
		}
		return metav1.Condition{}
	}
	defer release()
	e.g.Eventually(ready).Should(And(
		HaveField("Reason", backupv1alpha1.ReasonWaitingForStorage),
		HaveField("Message", And(ContainSubstring("waiting for the storage service of BackupTarget "+e.target), ContainSubstring("stage Final"))),
	))
	e.g.Expect(e.phase(ab)()).To(Equal(backupv1alpha1.ApplicationBackupInProgress))
	release()
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
	e.g.Expect(ready().Reason).To(Equal(backupv1alpha1.ReasonSucceeded))
}

func TestDeletingARunningBackupStopsItAndDeletesItsData(t *testing.T) {
	e := newEnv(t)
	ab, id := runningBackup(e)
	e.g.Expect(cp.Client.Delete(e.ctx, ab)).To(Succeed())
	e.g.Eventually(func() bool { return e.r.Runs.Running(runs.Key(cluster, id)) }).Should(BeFalse())
	e.g.Eventually(e.files(id)).Should(BeEmpty())
}

func TestForcedDeletionAbortsARunningBackup(t *testing.T) {
	e := newEnv(t)
	ab, id := runningBackup(e)
	// What BackupDeletion does with force: true.
	ctx, cancel := context.WithTimeout(e.ctx, eventuallyLimit)
	defer cancel()
	e.g.Expect(e.r.Runs.Abort(ctx, runs.Key(cluster, id))).To(Succeed())

	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupAborted))
	c := condition(e.get(ab)(), backupv1alpha1.ConditionCompleted)
	e.g.Expect(c.Reason).To(Equal(backupv1alpha1.ReasonAborted))
	e.g.Expect(c.Message).To(ContainSubstring("BackupDeletion with force"))
	e.g.Expect(e.files(id)()).To(BeEmpty())
}

func TestStoppingTheSpokeInterruptsRunningBackups(t *testing.T) {
	e := newEnv(t)
	ab, id := runningBackup(e)
	e.stop()

	got := e.get(ab)()
	e.g.Expect(got.Status.Phase).To(Equal(backupv1alpha1.ApplicationBackupFailed))
	e.g.Expect(condition(got, backupv1alpha1.ConditionCompleted).Reason).To(Equal(backupv1alpha1.ReasonInterrupted))
	e.g.Expect(e.files(id)()).To(BeEmpty())
}

func TestBackupsBeyondTheLimitWaitAsPending(t *testing.T) {
	e := newEnv(t)
	e.r.MaxRunning = 1
	release := e.hold()
	e.start()
	first := e.backup(targets.SystemNamespace, "first-"+rand.String(4))
	e.g.Eventually(e.gate.waiting.Load).Should(BeEquivalentTo(1))
	second := e.backup(targets.SystemNamespace, "second-"+rand.String(4))
	e.g.Eventually(e.phase(second)).Should(Equal(backupv1alpha1.ApplicationBackupPending))
	e.g.Consistently(e.phase(second), time.Second).Should(Equal(backupv1alpha1.ApplicationBackupPending))
	e.g.Expect(e.get(second)().Status.BackupID).To(BeEmpty(), "a waiting backup has written nothing")

	release()
	e.g.Eventually(e.phase(first)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
	e.g.Eventually(e.phase(second)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
}

// Security review M2: teams' own backups have slots of their own. With
// both of a team's backups running or waiting, the hub's backups still
// start at once; and a team's backup beyond its slots waits, saying why.
func TestHubBackupsNeverWaitForTeams(t *testing.T) {
	e := newEnv(t)
	e.r.MaxRunning, e.r.MaxSelfServiceRunning = 1, 1
	release := e.hold()
	e.start()
	team := e.backup(e.app, "team-"+rand.String(4))
	e.g.Eventually(e.gate.waiting.Load).Should(BeEquivalentTo(1))
	queued := e.backup(e.app, "queued-"+rand.String(4))
	e.g.Eventually(e.phase(queued)).Should(Equal(backupv1alpha1.ApplicationBackupPending))
	c := condition(e.get(queued)(), backupv1alpha1.ConditionReady)
	e.g.Expect(c.Reason).To(Equal(backupv1alpha1.ReasonWaiting))
	e.g.Expect(c.Message).To(Equal("Waiting for a backup slot: 1 of teams' backups are running, the most at once on this cluster (--max-self-service-backups)"))

	hub := e.backup(targets.SystemNamespace, "hub-"+rand.String(4))
	e.g.Eventually(e.gate.waiting.Load).Should(BeEquivalentTo(2), "the hub's backup runs beside the team's")
	e.g.Expect(e.phase(hub)()).To(Equal(backupv1alpha1.ApplicationBackupInProgress))
	e.g.Consistently(e.phase(queued), time.Second).Should(Equal(backupv1alpha1.ApplicationBackupPending))

	release()
	for _, ab := range []*backupv1alpha1.ApplicationBackup{team, hub, queued} {
		e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
	}
}

// A panic in the backup's own goroutine, or in an upload goroutine, fails
// the backup with InternalError; the spoke survives and backs up again.
func TestPanicInStorageFailsTheBackup(t *testing.T) {
	for name, panics := range map[string]func(op, name string) bool{
		"in the run":       func(op, _ string) bool { return op == "Get" },
		"in an upload":     func(op, name string) bool { return op == "Put" && strings.HasSuffix(name, "/"+archive.ResourcesFile) },
		"in the last file": func(op, name string) bool { return op == "Put" && strings.HasSuffix(name, "/"+archive.ManifestFile) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			var broken atomic.Bool
			broken.Store(true)
			e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) {
				if broken.Load() {
					return &archivetest.PanickingStore{Store: e.store, Panics: panics}, nil
				}
				return e.store, nil
			}
			e.start()
			ab := e.backup(targets.SystemNamespace, "broken-"+rand.String(4))
			e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupFailed))
			got := e.get(ab)()
			for _, typ := range []string{backupv1alpha1.ConditionReady, backupv1alpha1.ConditionCompleted} {
				c := condition(got, typ)
				e.g.Expect(c.Reason).To(Equal(backupv1alpha1.ReasonInternalError), typ)
				e.g.Expect(c.Message).To(ContainSubstring("internal error: panic: "+archivetest.PanicMessage), typ)
			}
			e.g.Expect(e.files(string(got.Status.BackupID))()).To(BeEmpty(), "what the backup wrote is deleted")

			broken.Store(false)
			next := e.backup(targets.SystemNamespace, "next-"+rand.String(4))
			e.g.Eventually(e.phase(next)).Should(Equal(backupv1alpha1.ApplicationBackupSuccess), "the spoke still backs up")
		})
	}
}
