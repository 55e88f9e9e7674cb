package crds_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/spoke/crds"
)

// cp is a control plane without Lifeboat's CRDs.
var cp *fleet.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(fleet.TestControlPlane{Name: "crds", Setup: func(_ context.Context, c *fleet.ControlPlane) error {
		cp = c
		return nil
	}}.RunTests(m))
}

// spokeUser is the spoke's ServiceAccount as the chart names it.
const spokeUser = "system:serviceaccount:lifeboat-system:lifeboat-spoke"

// asSpoke is a rest config for the spoke's ServiceAccount, bound to the
// chart's ClusterRole lifeboat-spoke and nothing else.
func asSpoke(g Gomega, ctx context.Context) *rest.Config {
	rbacYAML, err := charts.SpokeRBAC()
	g.Expect(err).NotTo(HaveOccurred())
	var role *rbacv1.ClusterRole
	for _, doc := range bytes.Split(rbacYAML, []byte("\n---\n")) {
		r := &rbacv1.ClusterRole{}
		if yaml.Unmarshal(doc, r) == nil && r.Kind == "ClusterRole" {
			role = r
		}
	}
	g.Expect(role).NotTo(BeNil(), "the chart's ClusterRole")
	g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, role))).To(Succeed())
	g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: spokeUser}},
	}))).To(Succeed())
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: spokeUser, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	return cfg
}

// The spoke, with only the chart's RBAC, installs every CRD of the chart and
// waits until they are served; started again, it puts back a CRD that was
// deleted and undoes a change someone else made to one. It cannot create or
// change any other CRD.
func TestSpokeInstallsItsOwnCRDsOnly(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	spoke := asSpoke(g, ctx)
	docs, err := charts.SpokeCRDs()
	g.Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	names, err := crds.Install(ctx, spoke, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("installed and established %d CRDs in %s", len(names), time.Since(start).Round(time.Millisecond))
	g.Expect(names).To(HaveLen(len(docs)))
	for _, name := range names {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed())
		g.Expect(crds.Established(crd)).To(BeTrue(), name)
		g.Expect(crd.Spec.Group).To(Equal("backup.lifeboat.dev"))
	}

	t.Log("someone deletes one CRD and changes another (as Helm or kubectl would); the next start repairs both")
	gone := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "runlogs.backup.lifeboat.dev"}}
	g.Expect(cp.Client.Delete(ctx, gone)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(cp.Client.Get(ctx, client.ObjectKeyFromObject(gone), gone))
	}, time.Minute, 200*time.Millisecond).Should(BeTrue())
	changed := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(cp.Client.Get(ctx, client.ObjectKey{Name: "backuptargets.backup.lifeboat.dev"}, changed)).To(Succeed())
	want := changed.Spec.Names.ShortNames
	g.Expect(cp.Client.Patch(ctx, changed, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"names":{"shortNames":["bt-edited"]}}}`)),
		client.FieldOwner("kubectl-edit"))).To(Succeed())
	_, err = crds.Install(ctx, spoke, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(gone), gone)).To(Succeed(), "the deleted CRD is back")
	g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(changed), changed)).To(Succeed())
	g.Expect(changed.Spec.Names.ShortNames).To(Equal(want), "the spoke's CRD again")

	t.Log("the spoke's identity can neither create nor apply nor change a CRD that is not its own")
	foreign := []byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"},` +
		`"spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},` +
		`"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object"}}}]}}`)
	spokeClient, err := client.New(spoke, client.Options{Scheme: fleet.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(yaml.Unmarshal(foreign, crd)).To(Succeed())
	err = spokeClient.Create(ctx, crd.DeepCopy())
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "create: %v", err)
	err = spokeClient.Patch(ctx, crd.DeepCopy(), client.RawPatch(types.ApplyPatchType, foreign), client.FieldOwner(crds.FieldManager), client.ForceOwnership)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "apply: %v", err)
	g.Expect(cp.Client.Create(ctx, crd.DeepCopy())).To(Succeed(), "an administrator's CRD")
	err = spokeClient.Patch(ctx, crd.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"names":{"shortNames":["w"]}}}`)))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "patch: %v", err)
	err = spokeClient.Delete(ctx, crd.DeepCopy())
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "delete: %v", err)
	err = spokeClient.Delete(ctx, changed)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "not even its own: %v", err)
}

// failingCRDReads fails the first n reads of a CRD with the API server's
// answer when etcd does not answer in time (500; client-go does not retry
// it).
type failingCRDReads struct {
	next   http.RoundTripper
	mu     sync.Mutex
	n      int
	failed int
}

func (f *failingCRDReads) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/customresourcedefinitions/") {
		f.mu.Lock()
		fail := f.failed < f.n
		if fail {
			f.failed++
		}
		f.mu.Unlock()
		if fail {
			body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out (injected)","reason":"InternalError","code":500}`
			return &http.Response{
				StatusCode: http.StatusInternalServerError, Request: req,
				Header: http.Header{"Content-Type": []string{"application/json"}},
				Body:   io.NopCloser(strings.NewReader(body)),
			}, nil
		}
	}
	return f.next.RoundTrip(req)
}

// A read that fails while Install waits for its CRDs is asked again: it
// does not end the spoke's start (the pod would restart).
func TestInstallReadsAgainAfterAFailedRead(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	spoke := asSpoke(g, ctx)
	reads := &failingCRDReads{n: 3}
	spoke.Wrap(func(rt http.RoundTripper) http.RoundTripper { reads.next = rt; return reads })

	names, err := crds.Install(ctx, spoke, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).NotTo(BeEmpty())
	g.Expect(reads.failed).To(Equal(3), "the injected failures were met")
}
