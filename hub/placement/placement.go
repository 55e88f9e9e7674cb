// Package placement reads which clusters an OCM Placement decided for, for
// the hub objects that select their clusters by a placementRef.
package placement

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	sdkclusterv1beta1 "open-cluster-management.io/sdk-go/pkg/apis/cluster/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The hub reads the Placements that its objects name and their decisions.
// +kubebuilder:rbac:groups=cluster.open-cluster-management.io,resources=placements;placementdecisions,verbs=get;list;watch

// Decided returns the names of the clusters that the Placement
// namespace/name decides for, over all its PlacementDecisions (the placement
// controller writes at most 100 clusters to each). found is false when the
// Placement does not exist.
func Decided(ctx context.Context, c client.Reader, namespace, name string) (clusters sets.Set[string], found bool, err error) {
	p := &clusterv1beta1.Placement{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	tracker := sdkclusterv1beta1.NewPlacementDecisionClustersTracker(p, decisionLister{ctx: ctx, c: c}, nil)
	if err := tracker.Refresh(); err != nil {
		return nil, true, err
	}
	return tracker.ExistingClusterGroupsBesides().GetClusters(), true, nil
}

// NotFoundMessage says, for a person, that the Placement an object names
// does not exist.
func NotFoundMessage(namespace, name string) string {
	return fmt.Sprintf("placementRef: Placement %s/%s does not exist", namespace, name)
}

// decisionLister lists PlacementDecisions for the sdk's tracker.
type decisionLister struct {
	ctx context.Context
	c   client.Reader
}

func (l decisionLister) List(sel labels.Selector, namespace string) ([]*clusterv1beta1.PlacementDecision, error) {
	list := &clusterv1beta1.PlacementDecisionList{}
	if err := l.c.List(l.ctx, list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	out := make([]*clusterv1beta1.PlacementDecision, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// Watch adds to b watches on Placements (created or deleted) and their
// PlacementDecisions (what they decide), calling enqueue with the namespace
// of the one that changed: the objects there that name a Placement.
func Watch(b *builder.Builder, enqueue func(ctx context.Context, namespace string) []reconcile.Request) *builder.Builder {
	inNamespace := func(ctx context.Context, o client.Object) []reconcile.Request { return enqueue(ctx, o.GetNamespace()) }
	return b.
		Watches(&clusterv1beta1.Placement{}, handler.EnqueueRequestsFromMapFunc(inNamespace),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&clusterv1beta1.PlacementDecision{}, handler.EnqueueRequestsFromMapFunc(inNamespace))
}
