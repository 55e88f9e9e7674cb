// Package placementtest writes Placements and the PlacementDecisions OCM's
// placement controller would write, for hub reconciler tests on an API
// server where that controller does not run.
package placementtest

import (
	"context"
	"fmt"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PageSize is how many clusters the placement controller writes to one
// PlacementDecision.
const PageSize = 100

// Create creates Placement namespace/name; it decides nothing until Decide.
func Create(g Gomega, c client.Client, namespace, name string) *clusterv1beta1.Placement {
	p := &clusterv1beta1.Placement{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	g.Expect(c.Create(context.Background(), p)).To(Succeed())
	return p
}

// Decide makes Placement namespace/name decide for clusters, as the placement
// controller does: PageSize clusters per PlacementDecision, labelled with the
// placement and decision group 0, and pages no longer needed deleted.
func Decide(g Gomega, c client.Client, namespace, name string, clusters []string) {
	ctx := context.Background()
	pages := (len(clusters) + PageSize - 1) / PageSize
	wanted := map[string]bool{}
	for i := 0; i < pages; i++ {
		wanted[pageName(name, i)] = true
		end := min((i+1)*PageSize, len(clusters))
		decisions := make([]clusterv1beta1.ClusterDecision, 0, end-i*PageSize)
		for _, cl := range clusters[i*PageSize : end] {
			decisions = append(decisions, clusterv1beta1.ClusterDecision{ClusterName: cl})
		}
		d := &clusterv1beta1.PlacementDecision{ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: pageName(name, i),
			Labels: map[string]string{
				clusterv1beta1.PlacementLabel:          name,
				clusterv1beta1.DecisionGroupIndexLabel: "0",
				clusterv1beta1.DecisionGroupNameLabel:  "",
			},
		}}
		if err := c.Create(ctx, d); !apierrors.IsAlreadyExists(err) {
			g.Expect(err).NotTo(HaveOccurred())
		}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		d.Status.Decisions = decisions
		g.Expect(c.Status().Update(ctx, d)).To(Succeed())
	}
	list := &clusterv1beta1.PlacementDecisionList{}
	g.Expect(c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{clusterv1beta1.PlacementLabel: name})).To(Succeed())
	for i := range list.Items {
		if !wanted[list.Items[i].Name] {
			g.Expect(client.IgnoreNotFound(c.Delete(ctx, &list.Items[i]))).To(Succeed())
		}
	}
}

// pageName is the name of a Placement's i-th decision, as OCM names it.
func pageName(placement string, i int) string {
	return fmt.Sprintf("%s-decision-%d", placement, i+1)
}
