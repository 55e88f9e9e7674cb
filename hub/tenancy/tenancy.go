// Package tenancy decides what a hub namespace may do on the fleet's
// clusters: which clusters (the OCM ManagedClusterSets bound to it) and, on
// them, which spoke namespaces and rights (its BackupTenant). Every hub
// reconciler that sends work to a cluster asks it first.
package tenancy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	sdkclusterv1beta2 "open-cluster-management.io/sdk-go/pkg/apis/cluster/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// The hub reads what decides tenancy; every reconciler that asks needs it.
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backuptenants,verbs=get;list;watch
// +kubebuilder:rbac:groups=cluster.open-cluster-management.io,resources=managedclustersets;managedclustersetbindings;managedclusters,verbs=get;list;watch

// Policy answers for hub namespaces.
type Policy struct {
	// Reader reads BackupTenants, ManagedClusterSetBindings,
	// ManagedClusterSets and ManagedClusters (the manager's cache: the
	// reconcilers watch them and check again when they change).
	Reader client.Reader
	// FleetAdmin tells the fleet admins' namespaces, which may do anything
	// on every cluster. Nil: no namespace is a fleet admin's.
	FleetAdmin func(namespace string) bool
}

// FleetAdminNamespaces is a Policy.FleetAdmin for namespaces that match one
// of patterns (names, or prefixes ending in '*').
func FleetAdminNamespaces(patterns []backupv1alpha1.NamespacePattern) func(string) bool {
	return func(ns string) bool {
		return slices.ContainsFunc(patterns, func(p backupv1alpha1.NamespacePattern) bool { return p.Matches(ns) })
	}
}

// Refusal is why a hub object may not do what it asks: a fleet condition
// reason and a message for the tenant.
type Refusal struct {
	Reason, Message string
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Message }

// Tenant is what one hub namespace may do.
type Tenant struct {
	// Namespace is the hub namespace.
	Namespace string
	admin     bool
	// clusters are the ManagedClusters in the sets bound to the namespace.
	clusters map[string]bool
	// sets are the names of the sets bound to the namespace.
	sets []string
	// grant is the namespace's BackupTenant's, nil without one.
	grant *backupv1alpha1.Grant
}

// Tenant reads what namespace may do. With clusters given, only those
// ManagedClusters are read, and Cluster refuses any other; without, all are.
// Only read errors are returned.
func (p *Policy) Tenant(ctx context.Context, namespace string, clusters ...string) (*Tenant, error) {
	t := &Tenant{Namespace: namespace, clusters: map[string]bool{}}
	if p.FleetAdmin != nil && p.FleetAdmin(namespace) {
		t.admin = true
		return t, nil
	}
	bt := &fleetv1alpha1.BackupTenant{}
	err := p.Reader.Get(ctx, client.ObjectKey{Name: namespace}, bt)
	switch {
	case err == nil:
		t.grant = bt.Spec.Grant.DeepCopy()
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	sets, err := p.boundSets(ctx, namespace)
	if err != nil || len(sets) == 0 {
		return t, err
	}
	mcs, err := p.managedClusters(ctx, clusters)
	if err != nil {
		return nil, err
	}
	for _, set := range sets {
		t.sets = append(t.sets, set.Name)
		sel, err := sdkclusterv1beta2.BuildClusterSelector(set)
		if err != nil || sel == nil {
			// A set OCM cannot read selects nothing.
			continue
		}
		for _, mc := range mcs {
			if sel.Matches(labels.Set(mc.Labels)) {
				t.clusters[mc.Name] = true
			}
		}
	}
	sort.Strings(t.sets)
	return t, nil
}

// Reading is the policy reading through r: Backups and Restores fail at
// once when refused, so they decide on what the API server has, not on a
// cache that may not have seen a new binding yet.
func (p *Policy) Reading(r client.Reader) *Policy {
	out := *p
	out.Reader = r
	return &out
}

// managedClusters reads the named ManagedClusters (missing ones left out),
// or all of them when names is empty.
func (p *Policy) managedClusters(ctx context.Context, names []string) ([]clusterv1.ManagedCluster, error) {
	if len(names) == 0 {
		list := &clusterv1.ManagedClusterList{}
		if err := p.Reader.List(ctx, list); err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	var out []clusterv1.ManagedCluster
	for _, name := range names {
		mc := &clusterv1.ManagedCluster{}
		err := p.Reader.Get(ctx, client.ObjectKey{Name: name}, mc)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *mc)
	}
	return out, nil
}

// boundSets are the ManagedClusterSets that the namespace's
// ManagedClusterSetBindings bind, by OCM's rules: a binding binds the set
// its spec.clusterSet names, is named like it, and the set must exist. The
// Bound condition is not required: OCM's registration hub, which sets it,
// need not run on a Lifeboat hub, and it means no more than that.
func (p *Policy) boundSets(ctx context.Context, namespace string) ([]*clusterv1beta2.ManagedClusterSet, error) {
	bindings := &clusterv1beta2.ManagedClusterSetBindingList{}
	if err := p.Reader.List(ctx, bindings, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var out []*clusterv1beta2.ManagedClusterSet
	for _, b := range bindings.Items {
		if b.Name != b.Spec.ClusterSet || !b.DeletionTimestamp.IsZero() {
			continue
		}
		set := &clusterv1beta2.ManagedClusterSet{}
		err := p.Reader.Get(ctx, client.ObjectKey{Name: b.Spec.ClusterSet}, set)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if set.DeletionTimestamp.IsZero() {
			out = append(out, set)
		}
	}
	return out, nil
}

// FleetAdmin is true for a fleet admin's namespace: nothing is refused.
func (t *Tenant) FleetAdmin() bool { return t.admin }

// Spoke is the tenancy the hub puts on what it sends to a cluster for this
// namespace: nil for a fleet admin (the spoke then restricts nothing).
func (t *Tenant) Spoke() *backupv1alpha1.Tenancy {
	if t.admin {
		return nil
	}
	out := &backupv1alpha1.Tenancy{HubNamespace: backupv1alpha1.NamespaceName(t.Namespace)}
	if t.grant != nil {
		out.Grant = *t.grant.DeepCopy()
	}
	if out.ClusterScopedResources == "" {
		out.ClusterScopedResources = backupv1alpha1.Deny
	}
	if out.UpdateExistingResources == "" {
		out.UpdateExistingResources = backupv1alpha1.Deny
	}
	return out
}

// Cluster refuses a cluster that is in no set bound to the namespace.
func (t *Tenant) Cluster(cluster string) *Refusal {
	if t.admin || t.clusters[cluster] {
		return nil
	}
	bound := "no ManagedClusterSet is bound to it"
	if len(t.sets) > 0 {
		bound = "the ManagedClusterSets bound to it are " + strings.Join(t.sets, ", ")
	}
	return &Refusal{fleetv1alpha1.ReasonClusterNotAllowed, fmt.Sprintf(
		"namespace %s may not use cluster %s: %s, and the cluster is in none of them. A fleet admin adds the cluster to a set bound to the namespace (ManagedClusterSet, ManagedClusterSetBinding)",
		t.Namespace, cluster, bound)}
}

// Allowed splits clusters into those the namespace may use and the others.
func (t *Tenant) Allowed(clusters []string) (allowed, refused []string) {
	for _, c := range clusters {
		if t.Cluster(c) == nil {
			allowed = append(allowed, c)
		} else {
			refused = append(refused, c)
		}
	}
	return allowed, refused
}

// Backup refuses a backup of cluster with selection sel that the namespace
// may not make: the cluster is not bound, a namespace is not granted (the
// selection must list its namespaces), or cluster-scoped resources are
// included without the grant.
func (t *Tenant) Backup(cluster string, sel *backupv1alpha1.ResourceSelection) *Refusal {
	if r := t.Cluster(cluster); r != nil {
		return r
	}
	return t.BackupSelection(sel)
}

// BackupSelection is Backup without the cluster: for a BackupSchedule's
// template, whatever clusters it selects.
func (t *Tenant) BackupSelection(sel *backupv1alpha1.ResourceSelection) *Refusal {
	if t.admin {
		return nil
	}
	var included []backupv1alpha1.NamespaceName
	if sel != nil {
		included = sel.IncludedNamespaces
	}
	if len(included) == 0 {
		return &Refusal{fleetv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"namespace %s may back up only the spoke namespaces its BackupTenant grants (%s): list them in selection.includedNamespaces", t.Namespace, t.granted())}
	}
	if r := t.namespaces("back up", included, nil); r != nil {
		return r
	}
	if sel.ClusterScopedResources == backupv1alpha1.ClusterScopedInclude && !t.grantsClusterScoped() {
		return t.clusterScopedRefusal("back up")
	}
	return nil
}

// Restore refuses a restore into cluster that the namespace may not make:
// the cluster is not bound; a namespace it would write into (the mapped
// included namespaces of the restore's selection, else of the backup's,
// and every mapping target) is not granted; cluster-scoped resources are
// included, or existing objects updated, without the grant.
func (t *Tenant) Restore(cluster string, opts *backupv1alpha1.RestoreOptions, backupSel *backupv1alpha1.ResourceSelection) *Refusal {
	if r := t.Cluster(cluster); r != nil || t.admin {
		return r
	}
	var included []backupv1alpha1.NamespaceName
	switch {
	case opts.Selection != nil && len(opts.Selection.IncludedNamespaces) > 0:
		included = opts.Selection.IncludedNamespaces
	case backupSel != nil:
		included = backupSel.IncludedNamespaces
	}
	if len(included) == 0 {
		return &Refusal{fleetv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"namespace %s may restore only into the spoke namespaces its BackupTenant grants (%s): list the namespaces to restore in selection.includedNamespaces", t.Namespace, t.granted())}
	}
	targets := make([]backupv1alpha1.NamespaceName, 0, len(included)+len(opts.NamespaceMapping))
	for _, ns := range included {
		if to, ok := opts.NamespaceMapping[string(ns)]; ok {
			ns = to
		}
		targets = append(targets, ns)
	}
	for _, to := range opts.NamespaceMapping {
		targets = append(targets, to)
	}
	if r := t.namespaces("restore into", targets, opts.NamespaceMapping); r != nil {
		return r
	}
	if opts.Selection != nil && opts.Selection.ClusterScopedResources == backupv1alpha1.ClusterScopedInclude && !t.grantsClusterScoped() {
		return t.clusterScopedRefusal("restore")
	}
	if opts.ExistingResourcePolicy == backupv1alpha1.ExistingResourceUpdate && (t.grant == nil || !t.grant.AllowsUpdate()) {
		return &Refusal{fleetv1alpha1.ReasonUpdateNotAllowed, fmt.Sprintf(
			"namespace %s may not restore with existingResourcePolicy Update: its BackupTenant does not set updateExistingResources: Allow. Use Skip, or ask a fleet admin", t.Namespace)}
	}
	return nil
}

// namespaces refuses the first of nss that the grant does not allow.
func (t *Tenant) namespaces(verb string, nss []backupv1alpha1.NamespaceName, mapping backupv1alpha1.NamespaceMapping) *Refusal {
	for _, ns := range nss {
		if t.grant != nil && t.grant.AllowsNamespace(string(ns)) {
			continue
		}
		how := ""
		if len(mapping) > 0 {
			how = " (after namespaceMapping)"
		}
		return &Refusal{fleetv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"namespace %s may not %s spoke namespace %s%s: its BackupTenant grants %s", t.Namespace, verb, ns, how, t.granted())}
	}
	return nil
}

func (t *Tenant) grantsClusterScoped() bool { return t.grant != nil && t.grant.AllowsClusterScoped() }

func (t *Tenant) clusterScopedRefusal(verb string) *Refusal {
	return &Refusal{fleetv1alpha1.ReasonClusterScopedNotAllowed, fmt.Sprintf(
		"namespace %s may not %s cluster-scoped resources (clusterScopedResources Include): its BackupTenant does not set clusterScopedResources: Allow. Use Auto or Exclude, or ask a fleet admin", t.Namespace, verb)}
}

// granted says for a person which spoke namespaces are granted.
func (t *Tenant) granted() string {
	switch {
	case t.grant == nil:
		return fmt.Sprintf("none: there is no BackupTenant %s", t.Namespace)
	case len(t.grant.Namespaces) == 0:
		return "none"
	}
	names := make([]string, len(t.grant.Namespaces))
	for i, p := range t.grant.Namespaces {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// Watch makes b reconcile again, when what decides tenancy changes, the
// objects that enqueue returns for the hub namespace concerned ("" for
// every namespace): a BackupTenant (its namespace), a
// ManagedClusterSetBinding (its namespace), a ManagedClusterSet or a
// ManagedCluster's labels (any namespace).
func Watch(b *builder.Builder, enqueue func(ctx context.Context, namespace string) []reconcile.Request) *builder.Builder {
	named := func(ctx context.Context, o client.Object) []reconcile.Request { return enqueue(ctx, o.GetName()) }
	inNamespace := func(ctx context.Context, o client.Object) []reconcile.Request { return enqueue(ctx, o.GetNamespace()) }
	all := func(ctx context.Context, _ client.Object) []reconcile.Request { return enqueue(ctx, "") }
	return b.
		Watches(&fleetv1alpha1.BackupTenant{}, handler.EnqueueRequestsFromMapFunc(named)).
		Watches(&clusterv1beta2.ManagedClusterSetBinding{}, handler.EnqueueRequestsFromMapFunc(inNamespace)).
		Watches(&clusterv1beta2.ManagedClusterSet{}, handler.EnqueueRequestsFromMapFunc(all),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&clusterv1.ManagedCluster{}, handler.EnqueueRequestsFromMapFunc(all),
			builder.WithPredicates(predicate.LabelChangedPredicate{}))
}

// Requests are reconcile requests for every object of list's kind in
// namespace ("" for all namespaces), for Watch's enqueue.
func Requests(ctx context.Context, c client.Reader, list client.ObjectList, namespace string) []reconcile.Request {
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list objects for a tenancy change", "namespace", namespace)
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(items))
	for _, item := range items {
		if o, ok := item.(client.Object); ok {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	return out
}
