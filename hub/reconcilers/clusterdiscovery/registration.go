package clusterdiscovery

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// What Open Cluster Management's registration sets up on the hub for an
// accepted cluster, which discovery does in its place.
const (
	// WorkAgentClusterRole is what every work agent may do in its cluster
	// namespace (OCM pkg/registration/hub/manifests/rbac). The hub chart ships
	// it; discovery creates it when it is missing.
	WorkAgentClusterRole = "open-cluster-management:managedcluster:work"
	// ClusterNameLabel marks a cluster namespace with its cluster's name.
	ClusterNameLabel = "open-cluster-management.io/cluster-name"
)

// fieldOwner is the server-side apply field manager of discovery.
const fieldOwner = client.FieldOwner("lifeboat-discovery")

// AgentGroup is the hub group of a cluster's agents, as OCM registration names it.
func AgentGroup(cluster string) string { return "system:open-cluster-management:" + cluster }

// WorkAgentRoleBinding is the name of the RoleBinding, in the cluster
// namespace, that grants the cluster's agents WorkAgentClusterRole.
func WorkAgentRoleBinding(cluster string) string {
	return "open-cluster-management:managedcluster:" + cluster + ":work"
}

// workAgentRules must match OCM's work ClusterRole.
var workAgentRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
	{APIGroups: []string{"work.open-cluster-management.io"}, Resources: []string{"manifestworks"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	{APIGroups: []string{"work.open-cluster-management.io"}, Resources: []string{"manifestworks/status"}, Verbs: []string{"patch", "update"}},
}

// ensureWorkAgentRole creates the work agent ClusterRole if it is missing and
// leaves an existing one (the chart's) alone.
func (r *Reconciler) ensureWorkAgentRole(ctx context.Context) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: WorkAgentClusterRole, Labels: map[string]string{"app.kubernetes.io/managed-by": "lifeboat-discovery"}},
		Rules:      workAgentRules,
	}
	return client.IgnoreAlreadyExists(r.Create(ctx, role))
}

// register makes the cluster known to OCM: accepted ManagedCluster with the
// onboarding label (and, when clusterSet is set, in that ManagedClusterSet
// by OCM's exclusive label), and, when full, the cluster namespace and the work agent's
// RoleBinding there (applied, so it costs nothing when they are in place).
// It refuses a namespace that is not a cluster namespace (ensureNamespace).
func (r *Reconciler) register(ctx context.Context, cluster, key, value, clusterSet string, full bool) error {
	if full {
		if err := r.ensureNamespace(ctx, cluster); err != nil {
			return err
		}
		rb := rbacv1ac.RoleBinding(WorkAgentRoleBinding(cluster), cluster).
			WithLabels(map[string]string{ClusterNameLabel: cluster}).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(WorkAgentClusterRole)).
			WithSubjects(rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.GroupKind).WithName(AgentGroup(cluster)))
		if err := r.Apply(ctx, rb, fieldOwner, client.ForceOwnership); err != nil {
			return err
		}
	}
	return r.writeManagedCluster(ctx, cluster, true, func(mc *clusterv1.ManagedCluster) {
		mc.Spec.HubAcceptsClient = true
		setLabel(mc.Labels, key, value)
		if clusterSet != "" {
			mc.Labels[clusterv1beta2.ClusterSetLabel] = clusterSet
		}
	})
}

// ensureNamespace creates the cluster namespace, labelled with ClusterNameLabel,
// or applies the label to one that has it already (made by discovery or by
// OCM's registration). A namespace of the cluster's name without it was made
// by someone else, maybe a tenant who may create namespaces: adopting it
// would run whatever ManifestWorks it holds on the new cluster and hand the
// cluster's agents and hub credential to it, so it is refused.
func (r *Reconciler) ensureNamespace(ctx context.Context, cluster string) error {
	existing := &corev1.Namespace{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: cluster}, existing)
	switch {
	case apierrors.IsNotFound(err):
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cluster, Labels: map[string]string{ClusterNameLabel: cluster}}}
		// Created, not applied: one made meanwhile by someone else is not adopted.
		if err := r.Create(ctx, ns, fieldOwner); err != nil {
			return fmt.Errorf("creating the cluster namespace %s: %w", cluster, err)
		}
		return nil
	case err != nil:
		return err
	case existing.Labels[ClusterNameLabel] != cluster:
		return fmt.Errorf("namespace %s already exists and is not this cluster's namespace (it lacks the label %s=%s), so discovery does not adopt it: "+
			"what it holds would reach the new cluster. Delete the namespace, or label it if it is the cluster's", cluster, ClusterNameLabel, cluster)
	}
	ns := corev1ac.Namespace(cluster).WithLabels(map[string]string{ClusterNameLabel: cluster})
	return r.Apply(ctx, ns, fieldOwner, client.ForceOwnership)
}

// revoke stops accepting the cluster's agents: hubAcceptsClient false (what
// OCM offers to detach a cluster without deleting it), the onboarding label
// set to value (removed when empty) and, if removeBinding, the work agent's
// RoleBinding deleted. Namespace, ManifestWorks and catalogs stay.
func (r *Reconciler) revoke(ctx context.Context, cluster, key, value string, removeBinding bool) error {
	if err := r.writeManagedCluster(ctx, cluster, false, func(mc *clusterv1.ManagedCluster) {
		mc.Spec.HubAcceptsClient = false
		setLabel(mc.Labels, key, value)
	}); err != nil {
		return err
	}
	if !removeBinding {
		return nil
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: WorkAgentRoleBinding(cluster), Namespace: cluster}}
	return client.IgnoreNotFound(r.Delete(ctx, rb))
}

// writeManagedCluster applies mutate to the ManagedCluster and patches it when
// that changed something; a missing one is created if create, else left out.
func (r *Reconciler) writeManagedCluster(ctx context.Context, name string, create bool, mutate func(*clusterv1.ManagedCluster)) error {
	mc := &clusterv1.ManagedCluster{}
	err := r.Get(ctx, types.NamespacedName{Name: name}, mc)
	if apierrors.IsNotFound(err) {
		if !create {
			return nil
		}
		mc = &clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		mutate(mc)
		if err = r.Create(ctx, mc); !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The cache is behind: patch what the API server has.
		mc = &clusterv1.ManagedCluster{}
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: name}, mc)
	}
	if err != nil {
		return err
	}
	before := mc.DeepCopy()
	if mc.Labels == nil {
		mc.Labels = map[string]string{}
	}
	mutate(mc)
	if equality.Semantic.DeepEqual(before.Spec, mc.Spec) && maps.Equal(before.Labels, mc.Labels) {
		return nil
	}
	return r.Patch(ctx, mc, client.MergeFrom(before))
}
