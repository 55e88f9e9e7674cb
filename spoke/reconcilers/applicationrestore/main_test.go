package applicationrestore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// cp is the package's control plane, with the spoke's CRDs.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "applicationrestore", WithKCM: true, CRDs: []string{"charts/lifeboat-spoke/crds"},
		Setup: func(ctx context.Context, c *fleet.ControlPlane) error {
			cp = c
			return cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: targets.SystemNamespace}})
		}}.RunTests(m))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stores are the test's "buckets", by target name.
type stores struct {
	mu sync.Mutex
	m  map[string]archive.Store
}

func (s *stores) get(t *backupv1alpha1.BackupTarget) (archive.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[t.Name]; ok {
		return st, nil
	}
	return nil, fmt.Errorf("no store for target %s", t.Name)
}

func (s *stores) set(target string, st archive.Store) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]archive.Store{}
	}
	s.m[target] = st
}

var buckets stores

func newReconciler() *Reconciler {
	return &Reconciler{Client: cp.Client, RESTConfig: cp.Config, Cluster: "spoke-1", Stores: buckets.get}
}

// makeTarget creates a BackupTarget with its store, valid or not, allowing
// self-service from namespaces labelled selfservice=<name> if selfService.
func makeTarget(t *testing.T, ctx context.Context, name string, valid, selfService bool) *gatedStore {
	t.Helper()
	g := NewWithT(t)
	bt := &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Name: name}}
	bt.Spec.Azure = backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboattest", Container: "backups"}
	bt.Spec.Identity = backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"}
	if selfService {
		bt.Spec.AllowedNamespaces = &metav1.LabelSelector{MatchLabels: map[string]string{"selfservice": name}}
	}
	g.Expect(cp.Client.Create(ctx, bt)).To(Succeed())
	now := metav1.Now()
	bt.Status.ValidationState = backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: backupv1alpha1.ReasonValidationSucceeded, LastValidationTime: &now}
	if !valid {
		bt.Status.ValidationState = backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: backupv1alpha1.ReasonContainerNotFound,
			Message: "the container backups does not exist", LastValidationTime: &now}
	}
	g.Expect(cp.Client.Status().Update(ctx, bt)).To(Succeed())
	root := t.TempDir()
	st := &gatedStore{DirStore: archive.NewDirStore(root), root: root}
	buckets.set(name, st)
	return st
}

// gatedStore is a DirStore that counts reads of backup.json and can hold
// reads of resources.tar.zst until released.
type gatedStore struct {
	*archive.DirStore
	root          string
	manifestReads atomic.Int32
	mu            sync.Mutex
	gate          chan struct{}
	// fail, when set, is the error of every read of resources.tar.zst.
	fail error
}

func (s *gatedStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasSuffix(name, "/"+archive.ManifestFile) {
		s.manifestReads.Add(1)
	}
	s.mu.Lock()
	gate, fail := s.gate, s.fail
	s.mu.Unlock()
	if fail != nil && strings.HasSuffix(name, "/"+archive.ResourcesFile) {
		return nil, fail
	}
	if gate != nil && strings.HasSuffix(name, "/"+archive.ResourcesFile) {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.DirStore.Get(ctx, name)
}

// hold makes reads of resources.tar.zst wait until the returned function is called.
func (s *gatedStore) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return sync.OnceFunc(func() { close(gate) })
}

// writeBackup writes a backup of items from cluster spoke-1 into store.
func writeBackup(t *testing.T, store archive.Store, id string, owner archive.Owner, items ...archive.Item) string {
	t.Helper()
	return writeBackupOf(t, store, "spoke-1", id, owner, items...)
}

// writeBackupOf writes a backup of items from another cluster into store.
func writeBackupOf(t *testing.T, store archive.Store, cluster, id string, owner archive.Owner, items ...archive.Item) string {
	t.Helper()
	dir, err := archive.Path("", cluster, id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := archive.NewWriter(ctx, store, dir, archive.Meta{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if err := w.Add(it); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir
}

var hubOwner = archive.Owner{Hub: &archive.HubRef{Namespace: "tenant", Name: "backup"}}

func cm(namespace, name string, data map[string]string) archive.Item {
	obj := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": namespace, "uid": "u-" + namespace + "-" + name, "resourceVersion": "9"}, "data": data}
	b, _ := json.Marshal(obj)
	return archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: namespace, Name: name, Object: b}
}

func ns(name string) archive.Item {
	return archive.Item{Version: "v1", Resource: "namespaces", Kind: "Namespace", Name: name,
		Object: fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":{"restored":"yes"}}}`, name)}
}

func clusterRole(name string) archive.Item {
	return archive.Item{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles", Kind: "ClusterRole", Name: name,
		Object: fmt.Appendf(nil, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":%q},"rules":[]}`, name)}
}

// newRestore makes an ApplicationRestore of backup id in target; a team's
// is requested by the team's developer (see makeNamespace).
func newRestore(namespace, name, target, id string) *backupv1alpha1.ApplicationRestore {
	ar := &backupv1alpha1.ApplicationRestore{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: backupv1alpha1.ApplicationRestoreSpec{
			Target: backupv1alpha1.ObjectName(target),
			Source: backupv1alpha1.BackupSource{Cluster: "spoke-1", BackupID: backupv1alpha1.BackupID(id)},
		},
	}
	if namespace != targets.SystemNamespace {
		ar.Spec.RequestedBy = &backupv1alpha1.Requester{Username: developer(namespace)}
	}
	return ar
}

// developer is the user who has the admin role in a team's namespace.
func developer(namespace string) string { return "dev@" + namespace }

// reconcile creates ar, reconciles it once, waits for the restore it
// started, if any, and returns it as it is then.
func reconcile(t *testing.T, ctx context.Context, r *Reconciler, ar *backupv1alpha1.ApplicationRestore) *backupv1alpha1.ApplicationRestore {
	t.Helper()
	g := NewWithT(t)
	g.Expect(cp.Client.Create(ctx, ar)).To(Succeed())
	_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ar)})
	g.Expect(err).NotTo(HaveOccurred())
	r.runs.group.Wait()
	return get(t, ctx, ar)
}

func get(t *testing.T, ctx context.Context, ar *backupv1alpha1.ApplicationRestore) *backupv1alpha1.ApplicationRestore {
	t.Helper()
	cur := &backupv1alpha1.ApplicationRestore{}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(ar), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// makeNamespace makes a namespace whose developer has the admin role in it.
func makeNamespace(t *testing.T, ctx context.Context, name string, labels map[string]string) {
	t.Helper()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	admin := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "developer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: developer(name)}}}
	if err := cp.Client.Create(ctx, admin); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func exists(ctx context.Context, obj client.Object, namespace, name string) bool {
	return cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj) == nil
}
