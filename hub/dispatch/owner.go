package dispatch

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// OwnerOfWork maps a ManifestWork sent for a hub object of kind back to that
// object's request, by the dispatch labels. When the name label is the
// owner's name (the work's name is Name of it), that is the owner, found
// without a list: a list per work event made a schedule run over 5,000
// clusters spend half the hub's CPU copying Backups (docs/benchmarks.md).
// A long name label is hashed (LabelValue), so then the owner is looked up
// among the namespace's objects, listed into list (an empty list of kind's
// type). When listing fails, the label's name is requested as it is.
func OwnerOfWork(ctx context.Context, c client.Reader, work client.Object, kind string, list client.ObjectList) []reconcile.Request {
	l := work.GetLabels()
	if l[LabelKind] != kind || l[LabelNamespace] == "" || l[LabelName] == "" {
		return nil
	}
	ns, name := l[LabelNamespace], l[LabelName]
	if Name(kind, ns, name) == work.GetName() {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	for _, item := range items {
		if o, ok := item.(client.Object); ok && LabelValue(o.GetName()) == name {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: o.GetName()}}}
		}
	}
	return nil
}
