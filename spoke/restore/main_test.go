package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// cp is the package's control plane: etcd, kube-apiserver and
// kube-controller-manager, so that namespaces finish deleting, Deployments
// make ReplicaSets and claims bind to volumes.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "restore", WithKCM: true, Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}

// testCtx bounds one test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// raw is a REST client that speaks JSON to the control plane, for capturing
// objects as the API server returns them and checking what a restore wrote.
func raw(t *testing.T) *rest.RESTClient {
	rc, _, err := restClient(cp.Config, 500, 1000, acceptJSON)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// res names a resource for capture and lookups.
type res struct {
	group, version, resource, kind string
	namespaced                     bool
}

func (r res) ref(namespace, name string) archive.ItemRef {
	return archive.ItemRef{Group: r.group, Version: r.version, Resource: r.resource, Kind: r.kind, Namespace: namespace, Name: name}
}

var (
	rConfigMaps   = res{"", "v1", "configmaps", "ConfigMap", true}
	rSecrets      = res{"", "v1", "secrets", "Secret", true}
	rSAs          = res{"", "v1", "serviceaccounts", "ServiceAccount", true}
	rServices     = res{"", "v1", "services", "Service", true}
	rEndpoints    = res{"", "v1", "endpoints", "Endpoints", true}
	rClaims       = res{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true}
	rPods         = res{"", "v1", "pods", "Pod", true}
	rEvents       = res{"", "v1", "events", "Event", true}
	rDeployments  = res{"apps", "v1", "deployments", "Deployment", true}
	rReplicaSets  = res{"apps", "v1", "replicasets", "ReplicaSet", true}
	rStatefulSets = res{"apps", "v1", "statefulsets", "StatefulSet", true}
	rRevisions    = res{"apps", "v1", "controllerrevisions", "ControllerRevision", true}
	rJobs         = res{"batch", "v1", "jobs", "Job", true}
	rIngresses    = res{"networking.k8s.io", "v1", "ingresses", "Ingress", true}
	rSlices       = res{"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true}
	rRoles        = res{"rbac.authorization.k8s.io", "v1", "roles", "Role", true}
	rRoleBindings = res{"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true}
	rWidgets      = res{"example.com", "v1", "widgets", "Widget", true}

	rNamespaces     = res{"", "v1", "namespaces", "Namespace", false}
	rVolumes        = res{"", "v1", "persistentvolumes", "PersistentVolume", false}
	rStorageClasses = res{"storage.k8s.io", "v1", "storageclasses", "StorageClass", false}
	rCRDs           = res{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false}
	rClusterRoles   = res{"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false}
)

// capture lists r (in namespace, or the named cluster-scoped objects) as
// the API server returns them and makes backup items of them, as a backup
// does.
func capture(t *testing.T, ctx context.Context, r res, namespace string, names ...string) []archive.Item {
	t.Helper()
	body, err := raw(t).Get().AbsPath(collectionPath(r.ref("", ""), namespace)).Do(ctx).Raw()
	if err != nil {
		t.Fatalf("listing %s: %v", r.resource, err)
	}
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var items []archive.Item
	for _, obj := range list.Items {
		name := str(obj, "metadata", "name")
		if len(names) > 0 && !contains(names, name) {
			continue
		}
		obj["apiVersion"] = groupVersion(r.ref("", ""))
		obj["kind"] = r.kind
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		it := archive.Item{Group: r.group, Version: r.version, Resource: r.resource, Kind: r.kind, Name: name, Object: b}
		if r.namespaced {
			it.Namespace = namespace
		}
		items = append(items, it)
	}
	return items
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// item makes a backup item of an object given as JSON.
func item(r res, namespace, name, objJSON string) archive.Item {
	return archive.Item{Group: r.group, Version: r.version, Resource: r.resource, Kind: r.kind,
		Namespace: namespace, Name: name, Object: []byte(objJSON)}
}

// cm is a ConfigMap item with data.
func cm(namespace, name string, data map[string]string) archive.Item {
	obj := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": namespace, "uid": "uid-" + namespace + "-" + name, "resourceVersion": "42"},
		"data":     data}
	b, _ := json.Marshal(obj)
	return archive.Item{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: namespace, Name: name, Object: b}
}

func ns(name string) archive.Item {
	return item(rNamespaces, "", name, fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"uid":"uid-%s","labels":{"kubernetes.io/metadata.name":%q,"team":%q}}}`, name, name, name, name))
}

var backupIDs struct {
	sync.Mutex
	n int
}

// writeBackup writes items as a backup into a fresh DirStore and returns the
// store and the backup's folder.
func writeBackup(t testing.TB, items []archive.Item, volumes ...archive.VolumeSnapshot) (*archive.DirStore, string) {
	t.Helper()
	return writeBackupWith(t, items, func(w *archive.Writer) {
		for _, v := range volumes {
			w.AddVolume(v)
		}
	})
}

// writeBackupWith is writeBackup, with more added by add before the backup
// is closed.
func writeBackupWith(t testing.TB, items []archive.Item, add func(*archive.Writer)) (*archive.DirStore, string) {
	t.Helper()
	backupIDs.Lock()
	backupIDs.n++
	id := fmt.Sprintf("b%d", backupIDs.n)
	backupIDs.Unlock()
	root := t.TempDir()
	store := archive.NewDirStore(root)
	storeRoots.Store(store, root)
	dir, err := archive.Path("", "spoke-1", id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := archive.NewWriter(ctx, store, dir, archive.Meta{Owner: archive.Owner{Hub: &archive.HubRef{Namespace: "tenant", Name: id}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if err := w.Add(it); err != nil {
			t.Fatalf("adding %s: %v", it.Ref(), err)
		}
	}
	add(w)
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return store, dir
}

func openBackup(t testing.TB, store archive.Store, dir string) *archive.Reader {
	t.Helper()
	r, err := archive.Open(context.Background(), store, dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logLines collects a restore's log.
type logLines struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	level   archive.Level
	item    *archive.ItemRef
	outcome Outcome
	msg     string
}

func (l *logLines) add(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{e.Level, e.Item, e.Outcome, e.Message})
}

// outcomes returns the outcome of every item that has one, by "<resource>/<namespace>/<name>".
func (l *logLines) outcomes() map[string]Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]Outcome{}
	for _, ln := range l.lines {
		if ln.outcome != "" {
			out[ln.item.Resource+"/"+ln.item.Namespace+"/"+ln.item.Name] = ln.outcome
		}
	}
	return out
}

// about returns the lines of level about the item named by ref's resource,
// namespace and name.
func (l *logLines) about(level archive.Level, ref archive.ItemRef) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.lines {
		if ln.level == level && ln.item != nil && ln.item.Resource == ref.Resource && ln.item.Namespace == ref.Namespace && ln.item.Name == ref.Name {
			out = append(out, ln.msg)
		}
	}
	return out
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ln := range l.lines {
		item := ""
		if ln.item != nil {
			item = " [" + ln.item.String() + "]"
		}
		fmt.Fprintf(&b, "%s%s %s\n", ln.level, item, ln.msg)
	}
	return b.String()
}

// options returns Options for a restore of r into the control plane, logging
// into l; the control plane is the backups' own cluster, spoke-1.
func options(r *archive.Reader, l *logLines) Options {
	return Options{Config: cp.Config, Reader: r, Log: l.add, TempDir: os.TempDir(), Cluster: "spoke-1"}
}

// getJSON reads an object from the control plane; nil if it does not exist.
func getJSON(t *testing.T, ctx context.Context, r res, namespace, name string) map[string]any {
	t.Helper()
	body, err := raw(t).Get().AbsPath(objectPath(r.ref("", ""), namespace, name)).Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("getting %s %s/%s: %v", r.kind, namespace, name, err)
	}
	obj, err := decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// postJSON creates an object in the control plane.
func postJSON(t *testing.T, ctx context.Context, r res, namespace, objJSON string) {
	t.Helper()
	if err := raw(t).Post().AbsPath(collectionPath(r.ref("", ""), namespace)).Body([]byte(objJSON)).Do(ctx).Error(); err != nil {
		t.Fatalf("creating %s in %q: %v\n%s", r.kind, namespace, err, objJSON)
	}
}

// deleteAndWait deletes an object and waits until it is gone.
func deleteAndWait(t *testing.T, ctx context.Context, r res, namespace, name string) {
	t.Helper()
	g := NewWithT(t)
	err := raw(t).Delete().AbsPath(objectPath(r.ref("", ""), namespace, name)).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting %s %s: %v", r.kind, name, err)
	}
	g.Eventually(func() map[string]any { return getJSON(t, ctx, r, namespace, name) }).
		WithTimeout(2*time.Minute).WithPolling(250*time.Millisecond).Should(BeNil(), "%s %s/%s is still there", r.kind, namespace, name)
}

// storeRoots remembers the directory of each DirStore writeBackup made.
var storeRoots sync.Map

// storeRoot returns the directory holding the files of backup dir in store.
func storeRoot(store *archive.DirStore, dir string) string {
	root, _ := storeRoots.Load(store)
	return filepath.Join(root.(string), filepath.FromSlash(dir))
}

// truncate cuts file of the backup in root to a fraction of its size.
func truncate(g *WithT, root, file string, fraction float64) {
	p := filepath.Join(root, file)
	fi, err := os.Stat(p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.Truncate(p, int64(float64(fi.Size())*fraction))).To(Succeed())
}

// flipByte changes one byte of file, at a fraction of its size.
func flipByte(g *WithT, root, file string, fraction float64) {
	p := filepath.Join(root, file)
	b, err := os.ReadFile(p)
	g.Expect(err).NotTo(HaveOccurred())
	b[int(float64(len(b))*fraction)] ^= 0x55
	g.Expect(os.WriteFile(p, b, 0o644)).To(Succeed())
}

// bumpVersion makes backup.json claim a newer format.
func bumpVersion(g *WithT, root string) {
	p := filepath.Join(root, archive.ManifestFile)
	b, err := os.ReadFile(p)
	g.Expect(err).NotTo(HaveOccurred())
	var m map[string]any
	g.Expect(json.Unmarshal(b, &m)).To(Succeed())
	m["formatVersion"] = archive.FormatVersion + 1
	b, err = json.Marshal(m)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(p, b, 0o644)).To(Succeed())
}
