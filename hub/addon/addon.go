// Package addon ships the Lifeboat spoke as an Open Cluster Management
// add-on named lifeboat: OCM's add-on manager installs it on the clusters a
// Placement selects (ClusterManagementAddOn installStrategy Placements), and
// the add-on framework, running inside lifeboat-hub, renders the spoke chart
// for each cluster into the add-on's ManifestWork (without its CRDs, which
// the spoke applies itself as it starts), registers the spoke with
// the hub (a client certificate by CSR, rotated by OCM's registration agent,
// allowed only BackupCatalogs in its cluster namespace) and reads its health
// from the add-on Lease the spoke renews.
package addon

import (
	"fmt"
	"maps"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"open-cluster-management.io/addon-framework/pkg/addonfactory"
	"open-cluster-management.io/addon-framework/pkg/agent"
	"open-cluster-management.io/addon-framework/pkg/utils"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	addonclient "open-cluster-management.io/api/client/addon/clientset/versioned"
	clusterv1 "open-cluster-management.io/api/cluster/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/charts"
)

// Names of the add-on.
const (
	// Name is the add-on's name: the ClusterManagementAddOn, every cluster's
	// ManagedClusterAddOn, and the Lease the spoke renews in InstallNamespace.
	Name = fleetv1alpha1.AddOnName
	// InstallNamespace is where the spoke runs on every cluster (the spoke
	// chart allows no other) and where OCM's registration agent writes its
	// hub kubeconfig.
	InstallNamespace = fleetv1alpha1.AddOnNamespace
	// HubKubeconfigSecret is the Secret in InstallNamespace that OCM's
	// registration agent writes the spoke's hub kubeconfig to (keys
	// kubeconfig, tls.crt and tls.key), as the framework names it.
	HubKubeconfigSecret = fleetv1alpha1.AddOnHubKubeconfigSecret
	// agentName is the spoke's name in its certificate's subject.
	agentName = "lifeboat-spoke"
	// roleName is the hub Role in every cluster namespace the spoke's
	// certificate is bound to.
	roleName = "lifeboat-addon:spoke"
	// orphanAnnotation tells the framework not to delete an object with the
	// add-on: the spoke's namespace stays when a cluster leaves the
	// placement.
	orphanAnnotation = "addon.open-cluster-management.io/deletion-orphan"
)

// CatalogRule is all the spoke may do on the hub: keep BackupCatalogs in its
// own cluster namespace.
var CatalogRule = rbacv1.PolicyRule{
	APIGroups: []string{fleetv1alpha1.GroupVersion.Group},
	Resources: []string{"backupcatalogs"},
	Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
}

// Options are what the hub tells every spoke.
type Options struct {
	// SpokeImage is the spoke manager's image (required).
	SpokeImage string
	// SpokeValues are values of the spoke chart for every cluster (resources,
	// nodeSelector, extraArgs, ...); an AddOnDeploymentConfig overrides some
	// of them per cluster, and the hub sets the cluster's name, the hub
	// credential, the namespace and the image itself.
	SpokeValues map[string]any
}

// New is the add-on the framework runs: the spoke chart, embedded in the
// binary, rendered for each cluster with opts and the cluster's
// AddOnDeploymentConfig, registered by CSR with the hub kube client signer,
// healthy while the spoke renews its add-on Lease.
func New(cfg *rest.Config, opts Options) (agent.AgentAddon, error) {
	if opts.SpokeImage == "" {
		return nil, fmt.Errorf("addon: the spoke image is required")
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	addons, err := addonclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	configs := utils.NewAddOnDeploymentConfigGetter(addons)
	installNamespace := func(*addonv1alpha1.ManagedClusterAddOn) (string, error) { return InstallNamespace, nil }
	a, err := addonfactory.NewAgentAddonFactory(Name, charts.FS(), charts.Spoke).
		WithConfigGVRs(utils.AddOnDeploymentConfigGVR).
		WithGetValuesFuncs(
			func(*clusterv1.ManagedCluster, *addonv1alpha1.ManagedClusterAddOn) (addonfactory.Values, error) {
				return maps.Clone(opts.SpokeValues), nil
			},
			addonfactory.GetAddOnDeploymentConfigValues(configs, DeploymentConfigValues),
			func(c *clusterv1.ManagedCluster, _ *addonv1alpha1.ManagedClusterAddOn) (addonfactory.Values, error) {
				return hubValues(c.Name), nil
			},
			addonfactory.GetAgentImageValues(configs, "image.ref", opts.SpokeImage),
		).
		WithAgentInstallNamespace(installNamespace).
		WithAgentRegistrationOption(&agent.RegistrationOption{
			CSRConfigurations:     agent.KubeClientSignerConfigurations(Name, agentName),
			CSRApproveCheck:       approve,
			PermissionConfig:      permission(kube),
			AgentInstallNamespace: installNamespace,
		}).
		WithAgentHealthProber(&agent.HealthProber{Type: agent.HealthProberTypeLease}).
		BuildHelmAgentAddon()
	if err != nil {
		return nil, err
	}
	return spokeAgent{AgentAddon: a, rendered: newRendered()}, nil
}

// approve is the framework's default approver (the CSR's subject is the
// cluster's add-on user and groups, asked for by a user whose name starts
// with system:open-cluster-management:<cluster>), but the requester must be
// that cluster's registration agent, system:open-cluster-management:<cluster>:<id>:
// the default's bare prefix also admits the agent of a cluster whose name
// merely starts with this one's (prod--eu-1 and prod--eu-10).
func approve(cluster *clusterv1.ManagedCluster, addon *addonv1alpha1.ManagedClusterAddOn, csr *certificatesv1.CertificateSigningRequest) bool {
	return strings.HasPrefix(csr.Spec.Username, "system:open-cluster-management:"+cluster.Name+":") &&
		utils.DefaultCSRApprover(agentName)(cluster, addon, csr)
}

// permission is the spoke's hub RBAC in its cluster namespace: Role
// roleName with CatalogRule only, bound to the cluster's own add-on user.
// Not to the subjects the framework's BindKubeClientRole takes from the
// registration: they include the group
// system:open-cluster-management:addon:lifeboat, which every cluster's spoke
// has, so each cluster's Role would let every other cluster's spoke in.
func permission(kube kubernetes.Interface) agent.PermissionConfigFunc {
	return func(cluster *clusterv1.ManagedCluster, addon *addonv1alpha1.ManagedClusterAddOn) error {
		role := &rbacv1.Role{Rules: []rbacv1.PolicyRule{CatalogRule}}
		role.Name = roleName
		return utils.NewRBACPermissionConfigBuilder(kube).
			BindRoleToUser(role, agent.DefaultUser(cluster.Name, Name, agentName)).
			Build()(cluster, addon)
	}
}

// hubValues are the chart values the hub decides for a cluster, over the
// operator's and the AddOnDeploymentConfig's.
func hubValues(cluster string) addonfactory.Values {
	return addonfactory.Values{
		"clusterName":         cluster,
		"hubCredentialSecret": HubKubeconfigSecret,
		"createNamespace":     true,
	}
}

// DeploymentConfigValues are the spoke chart's values from an
// AddOnDeploymentConfig: nodePlacement (nodeSelector, tolerations), the
// resources of the manager container (resourceRequirements whose
// containerID matches deployments:lifeboat-spoke:manager, "*" for any part),
// and customizedVariables named after a top-level chart value whose value
// is a string (e.g. priorityClassName). The image comes from its registries
// (GetAgentImageValues).
func DeploymentConfigValues(config addonv1alpha1.AddOnDeploymentConfig) (addonfactory.Values, error) {
	values := addonfactory.Values{}
	if p := config.Spec.NodePlacement; p != nil {
		if p.NodeSelector != nil {
			values["nodeSelector"] = toValues(p.NodeSelector)
		}
		if p.Tolerations != nil {
			values["tolerations"] = p.Tolerations
		}
	}
	for _, r := range config.Spec.ResourceRequirements {
		if !containerMatches(r.ContainerID, "deployments", agentName, "manager") {
			continue
		}
		values["resources"] = r.Resources
	}
	for _, v := range config.Spec.CustomizedVariables {
		switch v.Name {
		case "priorityClassName":
			values[v.Name] = v.Value
		default:
			return nil, fmt.Errorf("AddOnDeploymentConfig %s/%s: customized variable %q is not one the lifeboat add-on reads (priorityClassName)", config.Namespace, config.Name, v.Name)
		}
	}
	return addonfactory.JsonStructToValues(values)
}

// containerMatches reports whether id, resources:name:container with "*"
// standing for any part, names the container.
func containerMatches(id string, parts ...string) bool {
	got := strings.Split(id, ":")
	if len(got) != len(parts) {
		return false
	}
	for i := range parts {
		if got[i] != "*" && got[i] != parts[i] {
			return false
		}
	}
	return true
}

func toValues(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// spokeAgent is the rendered chart without its CRDs, with its namespace
// orphaned. The spoke applies its CRDs itself as it starts (spoke/crds), so
// the add-on's ManifestWork, which the framework keeps in memory for every
// cluster, holds no copy of them (94 of its 106 KiB). The framework orphans
// the namespace when it removes the add-on from a cluster: the spoke's
// Deployment, ServiceAccount and RBAC go, every backup record stays (the
// CRDs were never the add-on's to delete). A cluster's manifests are
// rendered again only when what they are rendered from changed (rendered).
type spokeAgent struct {
	agent.AgentAddon
	rendered *rendered
}

func (a spokeAgent) Manifests(cluster *clusterv1.ManagedCluster, addon *addonv1alpha1.ManagedClusterAddOn) ([]runtime.Object, error) {
	inputs, cacheable := renderInputs(cluster, addon)
	if cacheable {
		if objs, ok := a.rendered.get(cluster.Name, inputs); ok {
			return objs, nil
		}
	}
	objs, err := a.render(cluster, addon)
	if err != nil {
		return nil, err
	}
	if cacheable {
		a.rendered.put(cluster.Name, inputs, objs)
	}
	return objs, nil
}

// render renders the chart for the cluster, drops its CRDs and orphans its
// namespace.
func (a spokeAgent) render(cluster *clusterv1.ManagedCluster, addon *addonv1alpha1.ManagedClusterAddOn) ([]runtime.Object, error) {
	objs, err := a.AgentAddon.Manifests(cluster, addon)
	if err != nil {
		return nil, err
	}
	out := objs[:0]
	for _, obj := range objs {
		switch obj.GetObjectKind().GroupVersionKind().Kind {
		case "CustomResourceDefinition":
			continue
		case "Namespace":
			m, err := meta.Accessor(obj)
			if err != nil {
				return nil, err
			}
			a := m.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			a[orphanAnnotation] = ""
			m.SetAnnotations(a)
		}
		out = append(out, obj)
	}
	return out, nil
}
