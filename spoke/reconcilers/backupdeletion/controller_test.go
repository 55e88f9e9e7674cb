package backupdeletion

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/archive/archivetest"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "backupdeletion", CRDs: []string{"charts/lifeboat-spoke/crds"}, Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}

// env is one test's target, store and reconciler.
type env struct {
	g      *WithT
	ctx    context.Context
	store  *archive.DirStore
	target string
	r      *Reconciler
}

func newEnv(t *testing.T) *env {
	g := NewWithT(t)
	ctx := context.Background()
	e := &env{g: g, ctx: ctx, store: archive.NewDirStore(t.TempDir()), target: "t-" + rand.String(6), r: &Reconciler{Client: cp.Client, Runs: &runs.Registry{}, Cluster: "spoke-1"}}
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.store, nil }
	target := &backupv1alpha1.BackupTarget{
		ObjectMeta: metav1.ObjectMeta{Name: e.target},
		Spec: backupv1alpha1.BackupTargetSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboattest", Container: "backups"},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01", TenantID: fleet.TenantID},
			},
			AllowedNamespaces: &metav1.LabelSelector{MatchLabels: map[string]string{"lifeboat.dev/self-service": "true"}},
		},
	}
	g.Expect(cp.Client.Create(ctx, target)).To(Succeed())
	target.Status.Phase = backupv1alpha1.TargetValid
	g.Expect(cp.Client.Status().Update(ctx, target)).To(Succeed())
	return e
}

func (e *env) namespace(name string, selfService bool) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if selfService {
		ns.Labels = map[string]string{"lifeboat.dev/self-service": "true"}
	}
	e.g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(e.ctx, ns))).To(Succeed())
}

// backup writes a complete backup (or, if !complete, one without backup.json)
// and returns its folder.
func (e *env) backup(id string, owner archive.Owner, complete bool) string {
	return e.backupOf("spoke-1", id, owner, complete)
}

// backupOf writes a backup of another cluster.
func (e *env) backupOf(cluster, id string, owner archive.Owner, complete bool) string {
	dir, err := archive.Path("", cluster, id)
	e.g.Expect(err).NotTo(HaveOccurred())
	w, err := archive.NewWriter(e.ctx, e.store, dir, archive.Meta{Owner: owner})
	e.g.Expect(err).NotTo(HaveOccurred())
	obj := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"team-a"},"data":{"k":"v"}}`)
	e.g.Expect(w.Add(archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "team-a", Name: "a", Object: obj})).To(Succeed())
	if complete {
		_, err = w.Close(e.ctx)
		e.g.Expect(err).NotTo(HaveOccurred())
	} else {
		// What a crashed spoke leaves: data files, no commit marker.
		_, err = e.store.Put(e.ctx, dir+"/"+archive.ResourcesFile, bytes.NewReader([]byte("partial")))
		e.g.Expect(err).NotTo(HaveOccurred())
	}
	return dir
}

func (e *env) files(dir string) []string {
	names, err := e.store.List(e.ctx, dir+"/")
	e.g.Expect(err).NotTo(HaveOccurred())
	return names
}

// run creates a BackupDeletion, reconciles it and returns it.
func (e *env) run(namespace, id string, force bool) *backupv1alpha1.BackupDeletion {
	return e.runOf(namespace, "spoke-1", id, force)
}

// runOf deletes a backup of another cluster.
func (e *env) runOf(namespace, cluster, id string, force bool) *backupv1alpha1.BackupDeletion {
	return e.runSource(namespace, backupv1alpha1.BackupSource{Cluster: backupv1alpha1.ClusterName(cluster), BackupID: backupv1alpha1.BackupID(id)}, force)
}

func (e *env) runSource(namespace string, src backupv1alpha1.BackupSource, force bool) *backupv1alpha1.BackupDeletion {
	del := &backupv1alpha1.BackupDeletion{
		ObjectMeta: metav1.ObjectMeta{Name: "del-" + rand.String(6), Namespace: namespace},
		Spec: backupv1alpha1.BackupDeletionSpec{
			Target: backupv1alpha1.ObjectName(e.target), Force: force, Source: src,
		},
	}
	e.g.Expect(cp.Client.Create(e.ctx, del)).To(Succeed())
	_, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(del)})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(del), del)).To(Succeed())
	return del
}

var hubOwner = archive.Owner{Hub: &archive.HubRef{Namespace: "tenant-a", Name: "nightly"}}

func TestDeletesACompleteBackup(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("b1", hubOwner, true)
	e.g.Expect(e.files(dir)).To(HaveLen(4))
	del := e.run(targets.SystemNamespace, "b1", false)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(del.Status.BlobsDeleted).To(BeEquivalentTo(4))
	e.g.Expect(e.files(dir)).To(BeEmpty())

	// Deleting again finds nothing and still completes: the data is gone.
	again := e.run(targets.SystemNamespace, "b1", false)
	e.g.Expect(again.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(again.Status.BlobsDeleted).To(BeZero())
}

// A forced deletion of a folder holding more names than a listing page
// deletes them all, page by page, backup.json first, and counts each once
// (L2 of the security review: it no longer holds the folder's names).
func TestForceDeletesALargeFolderPageByPage(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("big", hubOwner, true)
	const junk = 2500
	for i := range junk {
		_, err := e.store.Put(e.ctx, fmt.Sprintf("%s/junk/%05d", dir, i), strings.NewReader(""))
		e.g.Expect(err).NotTo(HaveOccurred())
	}
	pages := 0
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) {
		return &walkCounter{Store: e.store, pages: &pages}, nil
	}
	del := e.run(targets.SystemNamespace, "big", true)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(del.Status.BlobsDeleted).To(BeEquivalentTo(4 + junk))
	e.g.Expect(e.files(dir)).To(BeEmpty())
	e.g.Expect(pages).To(BeNumerically(">=", 3), "the folder was listed in pages")
}

// walkCounter counts the pages that Walk passes on.
type walkCounter struct {
	archive.Store
	pages *int
}

func (s *walkCounter) Walk(ctx context.Context, prefix string, fn func([]string) error) error {
	return s.Store.Walk(ctx, prefix, func(names []string) error {
		*s.pages++
		return fn(names)
	})
}

func TestIncompleteBackupNeedsForce(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("b2", hubOwner, false)
	del := e.run(targets.SystemNamespace, "b2", false)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(del.Status.Conditions).To(ContainElement(And(
		HaveField("Reason", backupv1alpha1.ReasonBackupIncomplete),
		HaveField("Message", ContainSubstring("force: true")),
	)))
	e.g.Expect(e.files(dir)).NotTo(BeEmpty(), "nothing is deleted without force")

	forced := e.run(targets.SystemNamespace, "b2", true)
	e.g.Expect(forced.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(dir)).To(BeEmpty())
}

func TestForceAbortsARunningBackup(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("b3", hubOwner, false)
	ctx, finish, ok := e.r.Runs.Start(context.Background(), runs.Key("spoke-1", "b3"))
	e.g.Expect(ok).To(BeTrue())
	aborted := make(chan error, 1)
	go func() {
		<-ctx.Done()
		// A run that notices late still writes one more block before it stops.
		_, _ = e.store.Put(context.Background(), dir+"/late.part", bytes.NewReader([]byte("late")))
		aborted <- context.Cause(ctx)
		finish()
	}()

	normal := e.run(targets.SystemNamespace, "b3", false)
	e.g.Expect(normal.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(normal.Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring("still running"))))

	forced := e.run(targets.SystemNamespace, "b3", true)
	e.g.Expect(forced.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(<-aborted).To(MatchError(runs.ErrAborted))
	e.g.Expect(e.files(dir)).To(BeEmpty(), "what the run wrote while stopping is deleted too")
}

func TestTeamsDeleteOnlyTheirOwnBackups(t *testing.T) {
	e := newEnv(t)
	e.namespace("team-a", true)
	e.namespace("team-b", true)
	e.namespace("team-c", false)
	dir := e.backup("b4", archive.Owner{Namespace: "team-a"}, true)

	other := e.run("team-b", "b4", false)
	e.g.Expect(other.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(other.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonNamespaceNotAllowed)))
	otherForced := e.run("team-b", "b4", true)
	e.g.Expect(otherForced.Status.Phase).To(Equal(backupv1alpha1.TaskFailed), "force does not lift the ownership rule")

	notAllowed := e.run("team-c", "b4", false)
	e.g.Expect(notAllowed.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonNamespaceNotAllowed)))
	e.g.Expect(e.files(dir)).To(HaveLen(4), "refused deletions delete nothing")

	own := e.run("team-a", "b4", false)
	e.g.Expect(own.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(dir)).To(BeEmpty())
}

// A namespace of the same name on another cluster is another team: its
// backups, and the hub's backups of other clusters, are not a team's to
// delete unless the cluster admin lists the cluster on the target.
func TestTeamsDeleteOnlyThisClustersBackups(t *testing.T) {
	e := newEnv(t)
	e.namespace("team-a", true)
	theirs := e.backupOf("other", "b6", archive.Owner{Namespace: "team-a"}, true)
	hubs := e.backupOf("other", "b7", hubOwner, true)

	for _, id := range []string{"b6", "b7"} {
		for _, force := range []bool{false, true} {
			del := e.runOf("team-a", "other", id, force)
			e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
			e.g.Expect(del.Status.Conditions).To(ContainElement(And(
				HaveField("Reason", backupv1alpha1.ReasonSourceClusterNotAllowed),
				HaveField("Message", ContainSubstring("spec.source names cluster other")))))
		}
	}
	e.g.Expect(e.files(theirs)).To(HaveLen(4), "refused deletions delete nothing")
	e.g.Expect(e.files(hubs)).To(HaveLen(4))

	// The cluster admin says team-a on cluster other is the same team.
	target := &backupv1alpha1.BackupTarget{}
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKey{Name: e.target}, target)).To(Succeed())
	target.Spec.AllowedSourceClusters = []backupv1alpha1.ClusterName{"other"}
	e.g.Expect(cp.Client.Update(e.ctx, target)).To(Succeed())
	hub := e.runOf("team-a", "other", "b7", false)
	e.g.Expect(hub.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonNamespaceNotAllowed)), "the hub's backups stay the hub's")
	e.g.Expect(e.files(hubs)).To(HaveLen(4))
	own := e.runOf("team-a", "other", "b6", false)
	e.g.Expect(own.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(theirs)).To(BeEmpty())
}

func TestMissingOrInvalidTarget(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	e.target = "does-not-exist"
	del := e.run(targets.SystemNamespace, "b5", true)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(del.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonTargetNotFound)))
}

// A deletion that fails on storage is retried, says why, and has its target
// validated again at once; the next attempt deletes.
func TestStorageFailureRevalidatesTheTarget(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("b7", hubOwner, true)
	e.r.Revalidation = targets.NewRevalidation()
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) {
		return &archivetest.FailingStore{Store: e.store, Fails: func(op, _ string) bool { return op == "Delete" }}, nil
	}
	del := &backupv1alpha1.BackupDeletion{
		ObjectMeta: metav1.ObjectMeta{Name: "del-" + rand.String(6), Namespace: targets.SystemNamespace},
		Spec: backupv1alpha1.BackupDeletionSpec{Target: backupv1alpha1.ObjectName(e.target),
			Source: backupv1alpha1.BackupSource{Cluster: "spoke-1", BackupID: "b7"}},
	}
	e.g.Expect(cp.Client.Create(e.ctx, del)).To(Succeed())
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(del)}
	_, err := e.r.Reconcile(e.ctx, req)
	e.g.Expect(err).To(MatchError(archivetest.StorageFailure))
	e.g.Expect(cp.Client.Get(e.ctx, req.NamespacedName, del)).To(Succeed())
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskInProgress))
	e.g.Expect(del.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonStorageError)))
	e.g.Expect(e.r.Revalidation.Take(e.target)).To(BeTrue(), "the target is validated again at once")

	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.store, nil }
	_, err = e.r.Reconcile(e.ctx, req)
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(cp.Client.Get(e.ctx, req.NamespacedName, del)).To(Succeed())
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(dir)).To(BeEmpty())
	e.g.Expect(e.r.Revalidation.Take(e.target)).To(BeFalse())
}

// A panic while deleting fails the deletion with InternalError instead of
// retrying it for ever; the spoke deletes again afterwards.
func TestPanicInStorageFailsTheDeletion(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("b6", hubOwner, true)
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) {
		return &archivetest.PanickingStore{Store: e.store, Panics: func(op, _ string) bool { return op == "Delete" }}, nil
	}
	del := e.run(targets.SystemNamespace, "b6", false)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(del.Status.Conditions).To(HaveEach(And(
		HaveField("Reason", backupv1alpha1.ReasonInternalError),
		HaveField("Message", ContainSubstring("internal error: panic: "+archivetest.PanicMessage)),
	)))

	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.store, nil }
	again := e.run(targets.SystemNamespace, "b6", false)
	e.g.Expect(again.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(dir)).To(BeEmpty())
}

// TestResealedBackupIsNotDeleted: a deletion carrying the sha256 of
// backup.json that the hub recorded refuses a backup.json that differs
// (another cluster resealed the folder) with BackupCorrupt, even with force,
// and deletes nothing; with the matching sha256 it deletes.
func TestResealedBackupIsNotDeleted(t *testing.T) {
	e := newEnv(t)
	e.namespace(targets.SystemNamespace, false)
	dir := e.backup("b-sealed", hubOwner, true)
	recorded := e.manifestSHA256(dir)
	for _, n := range e.files(dir) {
		e.g.Expect(e.store.Delete(e.ctx, n)).To(Succeed())
	}
	e.backup("b-sealed", hubOwner, true)
	resealed := e.manifestSHA256(dir)
	e.g.Expect(resealed).NotTo(Equal(recorded))

	src := backupv1alpha1.BackupSource{Cluster: "spoke-1", BackupID: "b-sealed", ManifestSHA256: recorded}
	del := e.runSource(targets.SystemNamespace, src, true)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(del.Status.Conditions).To(ContainElement(And(
		HaveField("Reason", backupv1alpha1.ReasonBackupCorrupt),
		HaveField("Message", And(ContainSubstring(recorded), ContainSubstring("nothing was deleted"))),
	)))
	e.g.Expect(e.files(dir)).To(HaveLen(4))

	src.ManifestSHA256 = resealed
	del = e.runSource(targets.SystemNamespace, src, true)
	e.g.Expect(del.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.files(dir)).To(BeEmpty())
}

func (e *env) manifestSHA256(dir string) string {
	sum, err := archivetest.ManifestSHA256(e.ctx, e.store, dir)
	e.g.Expect(err).NotTo(HaveOccurred())
	return sum
}
