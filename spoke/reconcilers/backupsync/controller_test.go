package backupsync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/archive/archivetest"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// cp is one kube-apiserver with the spoke's and the hub's CRDs: it plays the
// cluster and, through the same client, the hub that receives the pages.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "backupsync", CRDs: []string{"charts/lifeboat-spoke/crds", "charts/lifeboat-hub/crds"}, Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}

type env struct {
	g       *WithT
	ctx     context.Context
	store   *archive.DirStore
	target  string
	cluster string
	r       *Reconciler
}

func newEnv(t *testing.T) *env {
	g := NewWithT(t)
	ctx := context.Background()
	e := &env{g: g, ctx: ctx, store: archive.NewDirStore(t.TempDir()), target: "t-" + rand.String(6), cluster: "spoke-" + rand.String(5)}
	e.r = &Reconciler{Client: cp.Client, Cluster: e.cluster, Hub: func(context.Context) (client.Client, error) { return cp.Client, nil }}
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.store, nil }
	g.Expect(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.cluster}})).To(Succeed())
	target := &backupv1alpha1.BackupTarget{
		ObjectMeta: metav1.ObjectMeta{Name: e.target},
		Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: backupv1alpha1.StorageTarget{
			Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboattest", Container: "backups"},
			Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "0b7c2a8e-3f44-4c55-9a1d-6e2f8b1c0d01", TenantID: fleet.TenantID},
		}},
	}
	g.Expect(cp.Client.Create(ctx, target)).To(Succeed())
	target.Status.Phase = backupv1alpha1.TargetValid
	g.Expect(cp.Client.Status().Update(ctx, target)).To(Succeed())
	return e
}

// backup writes a complete backup of cluster with one item, or, if
// !complete, what a crashed run leaves: data without backup.json.
func (e *env) backup(cluster, id string, owner archive.Owner, complete bool) {
	dir, err := archive.Path("", cluster, id)
	e.g.Expect(err).NotTo(HaveOccurred())
	if !complete {
		_, err = e.store.Put(e.ctx, dir+"/"+archive.ResourcesFile, bytes.NewReader([]byte("partial")))
		e.g.Expect(err).NotTo(HaveOccurred())
		return
	}
	spec, _ := json.Marshal(map[string]any{"target": e.target, "ttl": "720h"})
	w, err := archive.NewWriter(e.ctx, e.store, dir, archive.Meta{Owner: owner, Spec: spec})
	e.g.Expect(err).NotTo(HaveOccurred())
	obj := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"team-a"},"data":{"k":"v"}}`)
	e.g.Expect(w.Add(archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "team-a", Name: "a", Object: obj})).To(Succeed())
	_, err = w.Close(e.ctx)
	e.g.Expect(err).NotTo(HaveOccurred())
}

func (e *env) run(pageSize int32) *backupv1alpha1.BackupSync {
	bs := &backupv1alpha1.BackupSync{
		ObjectMeta: metav1.ObjectMeta{Name: "sync-" + rand.String(6), Annotations: map[string]string{backupv1alpha1.SyncLocationAnnotation: "primary"}},
		Spec: backupv1alpha1.BackupSyncSpec{
			Target:   backupv1alpha1.ObjectName(e.target),
			Hub:      backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "manual", UID: types.UID("uid-" + rand.String(8))},
			PageSize: pageSize,
		},
	}
	e.g.Expect(cp.Client.Create(e.ctx, bs)).To(Succeed())
	_, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(bs)})
	e.g.Expect(err).NotTo(HaveOccurred())
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(bs), bs)).To(Succeed())
	return bs
}

func (e *env) pages(bs *backupv1alpha1.BackupSync) []fleetv1alpha1.BackupCatalog {
	list := &fleetv1alpha1.BackupCatalogList{}
	e.g.Expect(cp.Client.List(e.ctx, list, client.InNamespace(e.cluster), client.MatchingLabels{fleetv1alpha1.LabelSyncUID: string(bs.Spec.Hub.UID)})).To(Succeed())
	return list.Items
}

var hubOwner = archive.Owner{Hub: &archive.HubRef{Namespace: "team-a", Name: "nightly", UID: "6f1c2d3e-0000-4000-8000-000000000001"}}

func TestListsCompleteBackupsIntoPages(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.backup("spoke-1", fmt.Sprintf("b%d", i), hubOwner, true)
	}
	e.backup("spoke-2", "self-1", archive.Owner{Namespace: "shop"}, true)
	e.backup("spoke-1", "crashed", hubOwner, false)
	// A backup.json that names another backup is not listed.
	e.backup("spoke-1", "real", hubOwner, true)
	rc, err := e.store.Get(e.ctx, "lifeboat/v1/backups/spoke-1/real/backup.json")
	e.g.Expect(err).NotTo(HaveOccurred())
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(rc)
	rc.Close()
	_, err = e.store.Put(e.ctx, "lifeboat/v1/backups/spoke-1/copied/backup.json", &raw)
	e.g.Expect(err).NotTo(HaveOccurred())
	// A committed backup.json over data that is gone is not listed (L1).
	e.backup("spoke-1", "hollow", hubOwner, true)
	e.g.Expect(e.store.Delete(e.ctx, "lifeboat/v1/backups/spoke-1/hollow/"+archive.ResourcesFile)).To(Succeed())
	// A backup of a newer format is not listed.
	e.backup("spoke-1", "future", hubOwner, true)
	manifest := "lifeboat/v1/backups/spoke-1/future/" + archive.ManifestFile
	rc, err = e.store.Get(e.ctx, manifest)
	e.g.Expect(err).NotTo(HaveOccurred())
	var m map[string]any
	e.g.Expect(json.NewDecoder(rc).Decode(&m)).To(Succeed())
	rc.Close()
	m["formatVersion"] = 99
	b, _ := json.Marshal(m)
	_, err = e.store.Put(e.ctx, manifest, bytes.NewReader(b))
	e.g.Expect(err).NotTo(HaveOccurred())
	// Restores' logs beside a backup, however many, leave it as it is.
	for i := range maxFolderNames + 1 {
		_, err = e.store.Put(e.ctx, archive.RestoreLogPath("lifeboat/v1/backups/spoke-1/b0", "spoke-3", "lifeboat-system", fmt.Sprintf("r%d", i), "u"),
			bytes.NewReader(nil))
		e.g.Expect(err).NotTo(HaveOccurred())
	}

	bs := e.run(4)
	e.g.Expect(bs.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(bs.Status.Found).To(BeEquivalentTo(7), "b0-b4, self-1, real")
	e.g.Expect(bs.Status.Pages).To(BeEquivalentTo(2))
	e.g.Expect(bs.Status.StartTime).NotTo(BeNil())
	e.g.Expect(bs.Status.CompletionTime).NotTo(BeNil())
	e.g.Expect(bs.Status.Conditions).To(ContainElement(And(
		HaveField("Type", backupv1alpha1.ConditionCompleted),
		HaveField("Message", And(ContainSubstring("skipped 1 incomplete"), ContainSubstring("3 backups whose backup.json is unreadable"),
			ContainSubstring("spoke-1/hollow: "+archive.ResourcesFile+" recorded in backup.json but not in the store"))),
	)))

	pages := e.pages(bs)
	e.g.Expect(pages).To(HaveLen(2))
	byName := map[string]fleetv1alpha1.BackupCatalog{}
	var all []fleetv1alpha1.BackupSummary
	for _, p := range pages {
		byName[p.Name] = p
		all = append(all, p.Spec.Entries...)
		e.g.Expect(p.Spec.Cluster).To(BeEquivalentTo(e.cluster))
		e.g.Expect(p.Spec.Sync).To(Equal(&bs.Spec.Hub))
		e.g.Expect(p.Spec.Location).To(Equal(&backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "primary"}))
	}
	e.g.Expect(byName).To(HaveKey(PageName(bs.Name, 0)))
	e.g.Expect(byName).To(HaveKey(PageName(bs.Name, 1)))
	e.g.Expect(byName[PageName(bs.Name, 0)].Spec.Entries).To(HaveLen(4))
	e.g.Expect(byName[PageName(bs.Name, 0)].Spec.Final).To(BeFalse())
	e.g.Expect(byName[PageName(bs.Name, 1)].Spec.Final).To(BeTrue())
	// The final page tells the hub what was not listed, and why.
	final := byName[PageName(bs.Name, 1)].Spec
	e.g.Expect(final.SkippedCount).To(BeEquivalentTo(3))
	e.g.Expect(final.Incomplete).To(BeEquivalentTo(1))
	e.g.Expect(final.Skipped).To(ConsistOf(
		And(HaveField("Folder", "lifeboat/v1/backups/spoke-1/copied"), HaveField("Reason", ContainSubstring("copied"))),
		And(HaveField("Folder", "lifeboat/v1/backups/spoke-1/future"), HaveField("Reason", ContainSubstring("newer"))),
		And(HaveField("Folder", "lifeboat/v1/backups/spoke-1/hollow"), HaveField("Reason", ContainSubstring("recorded in backup.json but not in the store"))),
	))
	e.g.Expect(byName[PageName(bs.Name, 0)].Spec.Skipped).To(BeEmpty())
	e.g.Expect(all).To(HaveLen(7))
	e.g.Expect(all).NotTo(ContainElement(HaveField("ID", backupv1alpha1.BackupID("crashed"))))
	e.g.Expect(all).NotTo(ContainElement(HaveField("ID", backupv1alpha1.BackupID("copied"))))
	e.g.Expect(all).NotTo(ContainElement(HaveField("ID", backupv1alpha1.BackupID("hollow"))))

	var self, b0 fleetv1alpha1.BackupSummary
	for _, s := range all {
		switch s.ID {
		case "self-1":
			self = s
		case "b0":
			b0 = s
		}
	}
	e.g.Expect(self.SelfServiceNamespace).To(BeEquivalentTo("shop"))
	e.g.Expect(self.SourceCluster).To(BeEquivalentTo("spoke-2"))
	e.g.Expect(b0.Hub).To(Equal(&backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "nightly", UID: "6f1c2d3e-0000-4000-8000-000000000001"}))
	e.g.Expect(b0.Phase).To(Equal(backupv1alpha1.ApplicationBackupSuccess))
	e.g.Expect(b0.Items).To(BeEquivalentTo(1))
	e.g.Expect(b0.SizeBytes).To(BeNumerically(">", 0))
	e.g.Expect(b0.CompletionTime).NotTo(BeNil())
	e.g.Expect(b0.Expiration).NotTo(BeNil())
	e.g.Expect(b0.Expiration.Sub(b0.CompletionTime.Time)).To(Equal(720 * time.Hour))
}

func TestEmptyBucketWritesOneFinalPage(t *testing.T) {
	e := newEnv(t)
	bs := e.run(0)
	e.g.Expect(bs.Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	pages := e.pages(bs)
	e.g.Expect(pages).To(HaveLen(1))
	e.g.Expect(pages[0].Spec.Final).To(BeTrue())
	e.g.Expect(pages[0].Spec.Entries).To(BeEmpty())
}

func TestRetryOverwritesPagesAndDropsExtraOnes(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.backup("spoke-1", fmt.Sprintf("r%d", i), hubOwner, true)
	}
	bs := e.run(1)
	e.g.Expect(e.pages(bs)).To(HaveLen(3))
	names, err := e.store.List(e.ctx, "lifeboat/v1/backups/spoke-1/r2/")
	e.g.Expect(err).NotTo(HaveOccurred())
	for _, n := range names {
		e.g.Expect(e.store.Delete(e.ctx, n)).To(Succeed())
	}
	// A retried listing (the spoke restarted before its status was written).
	patch := client.MergeFrom(bs.DeepCopy())
	bs.Status.Phase = backupv1alpha1.TaskInProgress
	e.g.Expect(cp.Client.Status().Patch(e.ctx, bs, patch)).To(Succeed())
	_, err = e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(bs)})
	e.g.Expect(err).NotTo(HaveOccurred())
	pages := e.pages(bs)
	e.g.Expect(pages).To(HaveLen(2))
	for _, p := range pages {
		e.g.Expect(p.Spec.Entries[0].ID).NotTo(BeEquivalentTo("r2"))
	}
}

func TestMissingTargetFails(t *testing.T) {
	e := newEnv(t)
	e.target = "does-not-exist"
	bs := e.run(0)
	e.g.Expect(bs.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(bs.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonTargetNotFound)))
	e.g.Expect(e.pages(bs)).To(BeEmpty())
}

// A sync whose listing fails on storage is retried, says why, and has its
// target validated again at once; one that lists has not.
func TestStorageFailureRevalidatesTheTarget(t *testing.T) {
	e := newEnv(t)
	e.backup(e.cluster, "s1", hubOwner, true)
	e.r.Revalidation = targets.NewRevalidation()
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) {
		return &archivetest.FailingStore{Store: e.store, Fails: func(op, _ string) bool { return op == "List" }}, nil
	}
	bs := &backupv1alpha1.BackupSync{
		ObjectMeta: metav1.ObjectMeta{Name: "sync-" + rand.String(6), Annotations: map[string]string{backupv1alpha1.SyncLocationAnnotation: "primary"}},
		Spec: backupv1alpha1.BackupSyncSpec{Target: backupv1alpha1.ObjectName(e.target),
			Hub: backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "manual", UID: types.UID("uid-" + rand.String(8))}},
	}
	e.g.Expect(cp.Client.Create(e.ctx, bs)).To(Succeed())
	_, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(bs)})
	e.g.Expect(err).To(MatchError(archivetest.StorageFailure))
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(bs), bs)).To(Succeed())
	e.g.Expect(bs.Status.Phase).To(Equal(backupv1alpha1.TaskInProgress))
	e.g.Expect(bs.Status.Conditions).To(ContainElement(HaveField("Reason", backupv1alpha1.ReasonStorageError)))
	e.g.Expect(e.r.Revalidation.Take(e.target)).To(BeTrue(), "the target is validated again at once")

	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.store, nil }
	e.g.Expect(e.run(0).Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
	e.g.Expect(e.r.Revalidation.Take(e.target)).To(BeFalse(), "a sync that listed asks for nothing")
}

// A panic while listing fails the sync with InternalError instead of
// retrying it for ever, and writes no page.
func TestPanicInStorageFailsTheSync(t *testing.T) {
	e := newEnv(t)
	e.backup(e.cluster, "p1", hubOwner, true)
	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) {
		return &archivetest.PanickingStore{Store: e.store, Panics: func(op, _ string) bool { return op == "Get" }}, nil
	}
	bs := e.run(0)
	e.g.Expect(bs.Status.Phase).To(Equal(backupv1alpha1.TaskFailed))
	e.g.Expect(bs.Status.Conditions).To(HaveEach(And(
		HaveField("Reason", backupv1alpha1.ReasonInternalError),
		HaveField("Message", ContainSubstring("internal error: panic: "+archivetest.PanicMessage)),
	)))
	e.g.Expect(e.pages(bs)).To(BeEmpty())

	e.r.Stores = func(*backupv1alpha1.BackupTarget) (archive.Store, error) { return e.store, nil }
	e.g.Expect(e.run(0).Status.Phase).To(Equal(backupv1alpha1.TaskCompleted))
}

// A catalog entry carries what backup.json records of the selection,
// bounded: the first namespaces, a count of the rest, and flags.
func TestSummaryRecordsTheSelection(t *testing.T) {
	g := NewWithT(t)
	spec := `{"selection":{"includedNamespaces":["a","b","c","d","e","f","g"],"excludedNamespaces":["x"],` +
		`"labelSelector":{"matchLabels":{"app":"shop"}},"includedResources":["configmaps"],"clusterScopedResources":"Exclude"}}`
	s := Summary(&archive.Manifest{BackupID: "b1", SourceCluster: "spoke-1", Spec: []byte(spec)})
	g.Expect(s.Selection).To(Equal(&fleetv1alpha1.SelectionSummary{
		IncludedNamespaces: []backupv1alpha1.NamespaceName{"a", "b", "c", "d", "e"},
		ExcludedNamespaces: []backupv1alpha1.NamespaceName{"x"},
		NamespacesOmitted:  2, LabelSelector: true, Resources: true, ClusterScopedResources: backupv1alpha1.ClusterScopedExclude,
	}))
	g.Expect(Summary(&archive.Manifest{BackupID: "b2", SourceCluster: "spoke-1", Spec: []byte(`{}`)}).Selection).To(BeNil())
}
