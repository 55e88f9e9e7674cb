package addon

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"open-cluster-management.io/addon-framework/pkg/addonmanager"
	"open-cluster-management.io/addon-framework/pkg/utils"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1alpha1 "open-cluster-management.io/api/cluster/v1alpha1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DiscoveryLabel is the label discovery puts on every ManagedCluster it
// onboards, unless a ClusterDiscovery names another (spec.onboardingLabel):
// the default Placement selects the clusters that have it.
const DiscoveryLabel = "fleet.lifeboat.dev/discovery"

// globalSet is OCM's cluster set of every cluster, which the registration
// controller keeps.
const globalSet = "global"

// lifecycleAnnotation hands installing the add-on by its installStrategy to
// OCM's add-on manager; lifeboat-hub only renders, registers and probes.
const lifecycleAnnotation = "addon.open-cluster-management.io/lifecycle"

// Defaults is what Ensure creates when missing, in namespace: the
// ClusterManagementAddOn lifeboat, installed by Placement lifeboat of the
// clusters Lifeboat discovered (DiscoveryLabel), which is bound to OCM's
// global cluster set. The placement tolerates unreachable and unavailable
// clusters for a while, so that a cluster whose agent is briefly away keeps
// its spoke, and a new cluster gets it as it joins.
func Defaults(namespace string) []client.Object {
	toleration := func(key string) clusterv1beta1.Toleration {
		return clusterv1beta1.Toleration{Key: key, Operator: clusterv1beta1.TolerationOpExists}
	}
	return []client.Object{
		&clusterv1beta2.ManagedClusterSetBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: globalSet},
			Spec:       clusterv1beta2.ManagedClusterSetBindingSpec{ClusterSet: globalSet},
		},
		&clusterv1beta1.Placement{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: Name},
			Spec: clusterv1beta1.PlacementSpec{
				ClusterSets: []string{globalSet},
				Predicates: []clusterv1beta1.ClusterPredicate{{RequiredClusterSelector: clusterv1beta1.ClusterSelector{
					LabelSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: DiscoveryLabel, Operator: metav1.LabelSelectorOpExists,
					}}},
				}}},
				Tolerations: []clusterv1beta1.Toleration{
					toleration(clusterv1.ManagedClusterTaintUnreachable),
					toleration(clusterv1.ManagedClusterTaintUnavailable),
				},
			},
		},
		&addonv1alpha1.ClusterManagementAddOn{
			ObjectMeta: metav1.ObjectMeta{Name: Name, Annotations: map[string]string{lifecycleAnnotation: "addon-manager"}},
			Spec: addonv1alpha1.ClusterManagementAddOnSpec{
				AddOnMeta: addonv1alpha1.AddOnMeta{
					DisplayName: "Lifeboat",
					Description: "Lifeboat's spoke: backs up and restores the cluster's applications to Azure Blob Storage for the Lifeboat hub",
				},
				SupportedConfigs: []addonv1alpha1.ConfigMeta{{ConfigGroupResource: addonv1alpha1.ConfigGroupResource{
					Group: utils.AddOnDeploymentConfigGVR.Group, Resource: utils.AddOnDeploymentConfigGVR.Resource,
				}}},
				InstallStrategy: addonv1alpha1.InstallStrategy{
					Type: addonv1alpha1.AddonInstallStrategyPlacements,
					Placements: []addonv1alpha1.PlacementStrategy{{
						PlacementRef:    addonv1alpha1.PlacementRef{Namespace: namespace, Name: Name},
						RolloutStrategy: clusterv1alpha1.RolloutStrategy{Type: clusterv1alpha1.All},
					}},
				},
			},
		},
	}
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;create
// +kubebuilder:rbac:groups=cluster.open-cluster-management.io,resources=managedclustersetbindings;placements,verbs=get;create
// +kubebuilder:rbac:groups=cluster.open-cluster-management.io,resources=managedclustersets/bind,verbs=create
// +kubebuilder:rbac:groups=addon.open-cluster-management.io,resources=clustermanagementaddons,verbs=get;create

// Ensure creates what Defaults lists unless it exists: a fleet admin may
// change the placement or the install strategy, and Ensure leaves them be.
func Ensure(ctx context.Context, c client.Client, namespace string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("add-on: namespace %s: %w", namespace, err)
	}
	for _, o := range Defaults(namespace) {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("add-on: %T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
	}
	return nil
}

// What the framework's add-on manager does on the hub: the add-on's
// ManifestWork per cluster, the registration (CSR approval, the Role and
// RoleBinding of its certificate in the cluster namespace), the
// ManagedClusterAddOn's status.
// +kubebuilder:rbac:groups=addon.open-cluster-management.io,resources=managedclusteraddons;clustermanagementaddons;addondeploymentconfigs;addontemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=addon.open-cluster-management.io,resources=managedclusteraddons;managedclusteraddons/status;clustermanagementaddons/status,verbs=update;patch
// +kubebuilder:rbac:groups=addon.open-cluster-management.io,resources=managedclusteraddons/finalizers;clustermanagementaddons/finalizers,verbs=update
// +kubebuilder:rbac:groups=cluster.open-cluster-management.io,resources=managedclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=work.open-cluster-management.io,resources=manifestworks,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/approval,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,resourceNames=kubernetes.io/kube-apiserver-client,verbs=approve
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupcatalogs,verbs=get;list;watch;create;update;patch;delete

// Run runs the framework's add-on manager with the lifeboat add-on until ctx
// ends (a controller-runtime Runnable body).
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := addonmanager.New(cfg)
	if err != nil {
		return err
	}
	a, err := New(cfg, opts)
	if err != nil {
		return err
	}
	if err := mgr.AddAgent(a); err != nil {
		return err
	}
	if err := mgr.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
