package backupsync

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// The spoke writes its namespaces as the inventory page in its cluster's
// namespace on the hub (here one API server is both): again when they
// change or the page is due for a refresh, not otherwise.
func TestInventoryReportsTheNamespaces(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cluster := "spoke-" + rand.String(5)
	g.Expect(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cluster}})).To(Succeed())
	now := time.Now()
	inv := &Inventory{Client: cp.Client, Cluster: cluster, Refresh: time.Hour, Now: func() time.Time { return now },
		Hub: func(context.Context) (client.Client, error) { return cp.Client, nil }}

	page := func() *fleetv1alpha1.BackupCatalog {
		p := &fleetv1alpha1.BackupCatalog{}
		g.Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: cluster, Name: fleetv1alpha1.InventoryPageName}, p)).To(Succeed())
		return p
	}
	g.Expect(inv.Report(ctx)).To(Succeed())
	first := page()
	g.Expect(first.Spec.Cluster).To(BeEquivalentTo(cluster))
	g.Expect(first.Labels).To(HaveKeyWithValue(fleetv1alpha1.LabelInventory, "true"))
	g.Expect(first.Spec.Sync).To(BeNil())
	g.Expect(first.Spec.Inventory.Namespaces).To(ContainElements(fleetv1alpha1.InventoryNamespaceName("default"), fleetv1alpha1.InventoryNamespaceName(cluster)))
	g.Expect(slices.IsSorted(first.Spec.Inventory.Namespaces)).To(BeTrue())

	t.Log("unchanged and not due: not written again")
	now = now.Add(time.Minute)
	g.Expect(inv.Report(ctx)).To(Succeed())
	g.Expect(page().ResourceVersion).To(Equal(first.ResourceVersion))

	t.Log("a new namespace is written at the next listing")
	added := "app-" + rand.String(5)
	g.Expect(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: added}})).To(Succeed())
	g.Expect(inv.Report(ctx)).To(Succeed())
	second := page()
	g.Expect(second.Spec.Inventory.Namespaces).To(ContainElement(fleetv1alpha1.InventoryNamespaceName(added)))
	g.Expect(second.Spec.Inventory.ObservedTime.Time).To(BeTemporally("~", now, time.Second))

	t.Log("unchanged but due for a refresh: written again with a new observedTime")
	now = now.Add(time.Hour)
	g.Expect(inv.Report(ctx)).To(Succeed())
	third := page()
	g.Expect(third.ResourceVersion).NotTo(Equal(second.ResourceVersion))
	g.Expect(third.Spec.Inventory.ObservedTime.Time).To(BeTemporally("~", now, time.Second))
}
