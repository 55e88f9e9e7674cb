package dispatch_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// listCounter counts the lists made through a real client.
type listCounter struct {
	client.Reader
	lists int
}

func (c *listCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.lists++
	return c.Reader.List(ctx, list, opts...)
}

// workFor is the ManifestWork dispatch makes for owner, by name and labels.
func workFor(owner dispatch.HubObject) *workv1.ManifestWork {
	return &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Namespace: "cluster-a", Name: dispatch.Name(owner.Kind, owner.Namespace, owner.Name), Labels: dispatch.Labels(owner)}}
}

// A work's owner is found from its labels without a list when its name label
// is the owner's name, by a list when the label is hashed, and a work whose
// labels name another object than its name does maps to none.
func TestOwnerOfWork(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	r := &listCounter{Reader: f.Hub.Client}

	short := dispatch.HubObject{Kind: "ConfigMap", Namespace: "default", Name: "nightly"}
	g.Expect(dispatch.OwnerOfWork(ctx, r, workFor(short), "ConfigMap", &corev1.ConfigMapList{})).To(Equal(
		[]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "default", Name: "nightly"}}}))
	g.Expect(r.lists).To(BeZero(), "no list for a name that is its own label")

	long := strings.Repeat("n", 70) + ".db"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: long}}
	g.Expect(f.Hub.Client.Create(ctx, cm)).To(Succeed())
	t.Cleanup(func() { _ = f.Hub.Client.Delete(context.Background(), cm) })
	hashed := dispatch.HubObject{Kind: "ConfigMap", Namespace: "default", Name: long}
	g.Expect(dispatch.Labels(hashed)[dispatch.LabelName]).NotTo(Equal(long))
	g.Eventually(func() []reconcile.Request {
		return dispatch.OwnerOfWork(ctx, r, workFor(hashed), "ConfigMap", &corev1.ConfigMapList{})
	}).Should(Equal([]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "default", Name: long}}}))
	g.Expect(r.lists).To(BeNumerically(">=", 1), "a hashed label is looked up")

	forged := workFor(short)
	forged.Labels[dispatch.LabelName] = "other"
	g.Expect(dispatch.OwnerOfWork(ctx, r, forged, "ConfigMap", &corev1.ConfigMapList{})).To(BeEmpty(),
		"labels naming another object than the work's name do not map to it")
}
