package fleet

import (
	"context"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

const ocmAPIModule = "open-cluster-management.io/api"

// Hub CRDs of OCM: clusters, cluster sets, placements and ManifestWork.
var ocmHubCRDs = []string{
	"cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml",
	"cluster/v1beta2/0000_00_clusters.open-cluster-management.io_managedclustersets.crd.yaml",
	"cluster/v1beta2/0000_01_clusters.open-cluster-management.io_managedclustersetbindings.crd.yaml",
	"cluster/v1beta1/0000_02_clusters.open-cluster-management.io_placements.crd.yaml",
	"cluster/v1beta1/0000_03_clusters.open-cluster-management.io_placementdecisions.crd.yaml",
	"work/v1/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml",
}

// Spoke CRDs of OCM: what the work agent records about applied work.
var ocmSpokeCRDs = []string{
	"work/v1/0000_01_work.open-cluster-management.io_appliedmanifestworks.crd.yaml",
	"cluster/v1alpha1/0000_02_clusters.open-cluster-management.io_clusterclaims.crd.yaml",
}

func ocmCRDFiles(rel []string) ([]string, error) {
	dir, err := ModuleDir(ocmAPIModule)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(rel))
	for i, r := range rel {
		files[i] = filepath.Join(dir, r)
	}
	return files, nil
}

// workAgentClusterRole is what OCM's registration hub grants every work agent in
// its cluster namespace (pkg/registration/hub/manifests/rbac in OCM).
const workAgentClusterRole = "open-cluster-management:managedcluster:work"

// InstallHubCRDs installs on c what a fleet hub has: OCM's hub CRDs and
// Lifeboat's hub CRDs (charts/lifeboat-hub/crds).
func InstallHubCRDs(ctx context.Context, c client.Client) error {
	files, err := ocmCRDFiles(ocmHubCRDs)
	if err != nil {
		return err
	}
	lifeboat, err := CRDFiles(filepath.Join(RepoRoot(), hubCRDs))
	if err != nil {
		return err
	}
	return InstallCRDs(ctx, c, append(files, lifeboat...)...)
}

// installOCMHub installs the hub CRDs and the ClusterRole OCM's registration
// grants work agents.
func installOCMHub(ctx context.Context, hub *ControlPlane) error {
	if err := InstallHubCRDs(ctx, hub.Client); err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: workAgentClusterRole},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
			{APIGroups: []string{"work.open-cluster-management.io"}, Resources: []string{"manifestworks"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
			{APIGroups: []string{"work.open-cluster-management.io"}, Resources: []string{"manifestworks/status"}, Verbs: []string{"patch", "update"}},
		},
	}
	return hub.Client.Patch(ctx, role, client.Apply, fieldOwner, client.ForceOwnership)
}

// AgentGroup is the hub group of a cluster's agents, as OCM's registration names it.
func AgentGroup(cluster string) string { return "system:open-cluster-management:" + cluster }

// RegisterCluster does on the hub what OCM registration does for an accepted
// cluster: the ManagedCluster (hubAcceptsClient), its namespace, and the work
// agent's RBAC there. It returns a hub kubeconfig for the cluster's agent.
func RegisterCluster(ctx context.Context, hub *ControlPlane, cluster string, labels map[string]string) (string, error) {
	c := hub.Client
	objs := []client.Object{
		&clusterv1.ManagedCluster{
			TypeMeta:   metav1.TypeMeta{APIVersion: "cluster.open-cluster-management.io/v1", Kind: "ManagedCluster"},
			ObjectMeta: metav1.ObjectMeta{Name: cluster, Labels: labels},
			Spec:       clusterv1.ManagedClusterSpec{HubAcceptsClient: true},
		},
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: cluster, Labels: map[string]string{"open-cluster-management.io/cluster-name": cluster}},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "open-cluster-management:managedcluster:" + cluster + ":work", Namespace: cluster},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: workAgentClusterRole},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: AgentGroup(cluster)}},
		},
	}
	for _, o := range objs {
		if err := c.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
			return "", fmt.Errorf("registering cluster %s: %s %s: %w", cluster, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return AgentKubeconfig(hub, cluster)
}

// AgentKubeconfig issues the hub credential of cluster's agents, in the
// groups OCM's registration puts them in; what they may do comes from the
// RBAC of their cluster's registration.
func AgentKubeconfig(hub *ControlPlane, cluster string) (string, error) {
	kubeconfig, _, err := hub.UserKubeconfig("agent-"+cluster, AgentGroup(cluster)+":agent", AgentGroup(cluster), "system:open-cluster-management:managed-clusters")
	return kubeconfig, err
}

// startWorkAgent runs OCM's work agent for cluster on spoke, pulling work from the
// hub with hubKubeconfig.
func startWorkAgent(ctx context.Context, spoke *ControlPlane, cluster, hubKubeconfig string) (*proc.Process, error) {
	bin, err := assets.Path("work")
	if err != nil {
		return nil, err
	}
	files, err := ocmCRDFiles(ocmSpokeCRDs)
	if err != nil {
		return nil, err
	}
	if err := InstallCRDs(ctx, spoke.Client, files...); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "open-cluster-management-agent"}}
	if err := spoke.Client.Patch(ctx, ns, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	return proc.Start(spoke.Name+"-work-agent", spoke.logDir(), bin, []string{
		"agent",
		"--spoke-cluster-name=" + cluster,
		"--workload-source-driver=kube",
		"--workload-source-config=" + hubKubeconfig,
		"--kubeconfig=" + spoke.AdminKubeconfig,
		"--namespace=open-cluster-management-agent",
		"--disable-leader-election",
		"--status-sync-interval=2s",
		fmt.Sprintf("--listen=127.0.0.1:%d", port),
	})
}
