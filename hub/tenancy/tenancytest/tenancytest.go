// Package tenancytest sets up tenancy for hub reconciler tests: a Policy
// under which only namespaces with a known prefix are tenants, and what a
// fleet admin writes to onboard one (set, binding, grant).
package tenancytest

import (
	"context"
	"strings"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
)

// TenantPrefix starts the names of the tests' tenant namespaces; every other
// namespace is a fleet admin's, so tests written before tenancy keep their
// full power.
const TenantPrefix = "tenancy-"

// Policy is the tests' Policy over reader.
func Policy(reader client.Reader) *tenancy.Policy {
	return &tenancy.Policy{Reader: reader, FleetAdmin: func(ns string) bool { return !strings.HasPrefix(ns, TenantPrefix) }}
}

// Namespace creates namespace name if it is missing.
func Namespace(g Gomega, c client.Client, name string) {
	err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// Bind puts clusters into ManagedClusterSet set (by OCM's exclusive label on
// their ManagedClusters, created if missing) and binds the set to namespace.
func Bind(g Gomega, c client.Client, namespace, set string, clusters ...string) {
	ctx := context.Background()
	Namespace(g, c, namespace)
	s := &clusterv1beta2.ManagedClusterSet{ObjectMeta: metav1.ObjectMeta{Name: set}}
	if err := c.Create(ctx, s); !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	for _, name := range clusters {
		mc := &clusterv1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{clusterv1beta2.ClusterSetLabel: set}}}
		if err := c.Create(ctx, mc); apierrors.IsAlreadyExists(err) {
			g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, mc)).To(Succeed())
			before := mc.DeepCopy()
			if mc.Labels == nil {
				mc.Labels = map[string]string{}
			}
			mc.Labels[clusterv1beta2.ClusterSetLabel] = set
			g.Expect(c.Patch(ctx, mc, client.MergeFrom(before))).To(Succeed())
		} else {
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	b := &clusterv1beta2.ManagedClusterSetBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: set},
		Spec:       clusterv1beta2.ManagedClusterSetBindingSpec{ClusterSet: set},
	}
	if err := c.Create(ctx, b); !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// Grant writes namespace's BackupTenant.
func Grant(g Gomega, c client.Client, namespace string, grant backupv1alpha1.Grant) {
	bt := &fleetv1alpha1.BackupTenant{ObjectMeta: metav1.ObjectMeta{Name: namespace}, Spec: fleetv1alpha1.BackupTenantSpec{Grant: grant}}
	g.Expect(c.Create(context.Background(), bt)).To(Succeed())
}
