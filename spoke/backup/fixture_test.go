package backup_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/crds"
)

// The application the tests back up: namespace shop, and a namespace other
// with objects of the same kinds that must never leak into a backup of shop.
const (
	shop         = "shop"
	other        = "other"
	storageClass = "lifeboat-test-local"
	shopPV       = "shop-data"
	otherPV      = "other-data"
	shopViewer   = "lifeboat-test-shop-viewer"
	otherViewer  = "lifeboat-test-other-viewer"
	widgetsCRD   = "widgets.test.lifeboat.dev"
	gadgetsCRD   = "gadgets.test.lifeboat.dev"
)

var (
	fixtureOnce sync.Once
	fixtureErr  error
)

// fixture creates the application once and waits until the controllers have
// made what they make (ReplicaSets, pods, controller revisions, endpoints,
// the default service account, bound volumes), so that it holds still.
func fixture(t testing.TB) {
	t.Helper()
	fixtureOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		fixtureErr = makeFixture(ctx)
	})
	if fixtureErr != nil {
		t.Fatalf("fixture: %v", fixtureErr)
	}
}

func makeFixture(ctx context.Context) error {
	c := cp.Client
	for _, crd := range []*apiextensionsv1.CustomResourceDefinition{testCRD("Widget", "widgets"), testCRD("Gadget", "gadgets")} {
		if err := c.Create(ctx, crd); err != nil {
			return err
		}
	}
	if err := waitCRDs(ctx, widgetsCRD, gadgetsCRD); err != nil {
		return err
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shop}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: storageClass}, Provisioner: "kubernetes.io/no-provisioner"},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-test-unused"}, Provisioner: "kubernetes.io/no-provisioner"},
		clusterRole(shopViewer), clusterRole(otherViewer),
	}
	for _, ns := range []string{shop, other} {
		pv := shopPV
		viewer := shopViewer
		if ns == other {
			pv, viewer = otherPV, otherViewer
		}
		objs = append(objs,
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings", Labels: map[string]string{"tier": "frontend"}}, Data: map[string]string{"color": "blue"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}, StringData: map[string]string{"password": "s3cret"}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}},
			deployment(ns, "web", map[string]string{"tier": "frontend"}),
			deployment(ns, "api", nil),
			statefulSet(ns, "db"),
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: map[string]string{"tier": "frontend"}},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
				Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432}}}},
			&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pv}, Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              storageClass,
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: "data"},
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + pv}},
			}},
			&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: ptr.To(storageClass),
				VolumeName:       pv,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			}},
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}}},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: viewer},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}}},
			// A Service without a selector, whose endpoints a person manages:
			// they are backed up; the slice mirrored from them is not.
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "external"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}},
			&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "external"}, //nolint:staticcheck // what users of selector-less Services still write
				Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Port: 443}}}}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "external-manual",
				Labels: map[string]string{discoveryv1.LabelServiceName: "external", discoveryv1.LabelManagedBy: "staff.example.com"}},
				AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.11"}}}},
			&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: networkingv1.IngressSpec{
				DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}},
			// Lifeboat's own records are never backed up.
			&backupv1alpha1.ApplicationBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: backupv1alpha1.ApplicationBackupSpec{Target: "t"}},
		)
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	// Custom resources: widgets in both namespaces, gadgets only in other.
	for _, cr := range []struct{ kind, ns, name string }{
		{"Widget", shop, "w1"}, {"Widget", shop, "w2"}, {"Widget", other, "w3"}, {"Gadget", other, "g1"},
	} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("test.lifeboat.dev/v1")
		u.SetKind(cr.kind)
		u.SetNamespace(cr.ns)
		u.SetName(cr.name)
		_ = unstructured.SetNestedField(u.Object, "large", "spec", "size")
		if err := c.Create(ctx, u); err != nil {
			return err
		}
	}
	var notYet string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		notYet = settled(ctx)
		return notYet == "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the controllers: %s: %w", notYet, err)
	}
	return nil
}

// settled returns what kube-controller-manager has yet to make from the
// fixture in both namespaces, or "".
func settled(ctx context.Context) string {
	c := cp.Client
	for _, ns := range []string{shop, other} {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "data"}, pvc); err != nil || pvc.Status.Phase != corev1.ClaimBound {
			return fmt.Sprintf("claim %s/data is %q (%v)", ns, pvc.Status.Phase, err)
		}
		for _, check := range []struct {
			list client.ObjectList
			want int
		}{
			{&appsv1.ReplicaSetList{}, 2},
			{&corev1.PodList{}, 3}, // web, api, db-0
			{&appsv1.ControllerRevisionList{}, 1},
			{&corev1.ServiceAccountList{}, 2}, // app, default
			{&corev1.ConfigMapList{}, 2},      // settings, kube-root-ca.crt
			{&corev1.EndpointsList{}, 3},      // web, db, external
		} {
			if err := c.List(ctx, check.list, client.InNamespace(ns)); err != nil {
				return err.Error()
			}
			if n := len(itemsOf(check.list)); n != check.want {
				return fmt.Sprintf("%T in %s has %d items, want %d", check.list, ns, n, check.want)
			}
		}
		slices := &unstructured.UnstructuredList{}
		slices.SetGroupVersionKind(schema.GroupVersionKind{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSliceList"})
		// web, db, external mirrored, external-manual
		if err := c.List(ctx, slices, client.InNamespace(ns)); err != nil || len(slices.Items) != 4 {
			return fmt.Sprintf("%d endpoint slices in %s (%v), want 4", len(slices.Items), ns, err)
		}
	}
	return ""
}

func itemsOf(l client.ObjectList) []any {
	switch l := l.(type) {
	case *appsv1.ReplicaSetList:
		return anys(l.Items)
	case *corev1.PodList:
		return anys(l.Items)
	case *appsv1.ControllerRevisionList:
		return anys(l.Items)
	case *corev1.ServiceAccountList:
		return anys(l.Items)
	case *corev1.ConfigMapList:
		return anys(l.Items)
	case *corev1.EndpointsList:
		return anys(l.Items)
	}
	panic(fmt.Sprintf("itemsOf %T", l))
}

func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i := range s {
		out[i] = s[i]
	}
	return out
}

func testCRD(kind, plural string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + ".test.lifeboat.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "test.lifeboat.dev",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

func waitCRDs(ctx context.Context, names ...string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := cp.Client.Get(ctx, types.NamespacedName{Name: n}, crd); err != nil {
				return false, nil
			}
			if !crds.Established(crd) {
				return false, nil
			}
		}
		// The discovery documents follow the CRDs' status shortly after.
		_, err := cp.Client.RESTMapper().RESTMapping(schema.GroupKind{Group: "test.lifeboat.dev", Kind: "Gadget"})
		return err == nil, nil
	})
}

func clusterRole(name string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}
}

func deployment(ns, name string, labels map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			},
		},
	}
}

func statefulSet(ns, name string) *appsv1.StatefulSet {
	sel := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "postgres"}}},
			},
		},
	}
}

// liveNames lists what the API server holds in namespace ns of each resource
// (named as in a selection, to its list kind), as keys like those of
// contents: "deployments.apps/shop/web".
func liveNames(t *testing.T, ns string, lists map[string]schema.GroupVersionKind) []string {
	t.Helper()
	g := NewWithT(t)
	var out []string
	for res, gvk := range lists {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk)
		g.Expect(cp.Client.List(context.Background(), l, client.InNamespace(ns))).To(Succeed())
		for _, it := range l.Items {
			out = append(out, res+"/"+it.GetNamespace()+"/"+it.GetName())
		}
	}
	sort.Strings(out)
	return out
}
