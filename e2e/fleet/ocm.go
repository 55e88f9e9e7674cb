package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

const ocmAPIModule = "open-cluster-management.io/api"

// Hub CRDs of OCM: clusters, cluster sets, placements (and the add-on scores
// the placement controller reads), ManifestWork and the add-on APIs the
// add-on manager and the registration controller's add-on controllers watch.
// The add-on CRDs are the v1alpha1-only ones: the v1beta1 variants need OCM's
// conversion webhook.
var ocmHubCRDs = []string{
	"cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml",
	"cluster/v1beta2/0000_00_clusters.open-cluster-management.io_managedclustersets.crd.yaml",
	"cluster/v1beta2/0000_01_clusters.open-cluster-management.io_managedclustersetbindings.crd.yaml",
	"cluster/v1beta1/0000_02_clusters.open-cluster-management.io_placements.crd.yaml",
	"cluster/v1beta1/0000_03_clusters.open-cluster-management.io_placementdecisions.crd.yaml",
	"cluster/v1alpha1/0000_05_clusters.open-cluster-management.io_addonplacementscores.crd.yaml",
	"work/v1/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml",
	"addon/v1alpha1/0000_00_addon.open-cluster-management.io_clustermanagementaddons.crd.yaml",
	"addon/v1alpha1/0000_01_addon.open-cluster-management.io_managedclusteraddons.crd.yaml",
	"addon/v1alpha1/0000_02_addon.open-cluster-management.io_addondeploymentconfigs.crd.yaml",
	"addon/v1alpha1/0000_03_addon.open-cluster-management.io_addontemplates.crd.yaml",
}

// Spoke CRDs of OCM: what the work agent records about applied work and the
// cluster claims the registration agent reports.
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

// The identity agents join the hub with, as OCM's cluster-manager chart
// (createBootstrapSA) and `clusteradm init` set it up.
const (
	BootstrapNamespace      = "open-cluster-management"
	BootstrapServiceAccount = "agent-registration-bootstrap"
	bootstrapClusterRole    = "open-cluster-management:bootstrap"
	// agentNamespace is where the klusterlet's agents run on a spoke; the
	// registration agent keeps its hub credential there (Secret hub-kubeconfig-secret).
	agentNamespace = "open-cluster-management-agent"
)

// AgentGroup is the hub group of a cluster's agents, as OCM's registration names it.
func AgentGroup(cluster string) string { return "system:open-cluster-management:" + cluster }

// BootstrapUser is the bootstrap service account's user name, whose CSRs the
// registration controller approves.
func BootstrapUser() string {
	return "system:serviceaccount:" + BootstrapNamespace + ":" + BootstrapServiceAccount
}

// bootstrapRules are those of OCM's open-cluster-management:bootstrap
// ClusterRole (deploy/cluster-manager chart) except creating ManagedClusters:
// in Lifeboat's hub only discovery creates them, so a bootstrap credential
// cannot put an unknown cluster on the hub; its agent waits until discovery
// has created and accepted its ManagedCluster.
var bootstrapRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
	{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "list", "watch"}},
	{APIGroups: []string{"cluster.open-cluster-management.io"}, Resources: []string{"managedclusters"}, Verbs: []string{"get", "list", "watch"}},
}

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

// startOCMHub installs OCM's hub CRDs and the bootstrap identity, and starts
// OCM's hub controllers on the hub: the registration controller (which
// approves CSRs of the bootstrap identity, accepts clusters on first join and
// grants an accepted cluster's agents their RBAC), the placement controller
// and the add-on manager.
func (f *Fleet) startOCMHub(ctx context.Context) error {
	hub := f.Hub
	if err := InstallHubCRDs(ctx, hub.Client); err != nil {
		return err
	}
	if err := EnsureServiceAccount(ctx, hub, BootstrapNamespace, BootstrapServiceAccount); err != nil {
		return err
	}
	objs := []client.Object{
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapClusterRole},
			Rules:      bootstrapRules,
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapClusterRole + ":agent-registration"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: bootstrapClusterRole},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: BootstrapServiceAccount, Namespace: BootstrapNamespace}},
		},
	}
	for _, o := range objs {
		if err := hub.Client.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("OCM bootstrap RBAC: %w", err)
		}
	}
	// Like the cluster-manager's deployments, each controller has the
	// permissions of its ClusterRole; here system:masters.
	for _, c := range []struct {
		bin, user string
		args      []string
	}{
		{"registration", "registration-controller", []string{"controller",
			"--feature-gates=ManagedClusterAutoApproval=true",
			"--auto-approved-csr-users=" + BootstrapUser()}},
		{"placement", "placement-controller", []string{"controller"}},
		{"addon", "addon-manager", []string{"manager"}},
	} {
		p, err := StartOCMController(hub, c.user, c.bin, c.args...)
		if err != nil {
			return err
		}
		f.OCMHub = append(f.OCMHub, p)
	}
	return nil
}

// StartOCMController runs OCM's hub binary (registration, placement, addon)
// on cp as user, with its logs beside cp's own; the caller stops it. The hub
// benchmarks (hub/bench) run the placement controller and the add-on manager
// this way.
func StartOCMController(cp *ControlPlane, user, binary string, args ...string) (*proc.Process, error) {
	return startOCMProcess(cp, cp.Name+"-ocm-"+user, binary, cp.logDir(), args...)
}

// startOCMProcess runs one of OCM's binaries (controller-command style:
// --kubeconfig, --listen, leader election off) as a system:masters user of cp.
func startOCMProcess(cp *ControlPlane, name, binary, logDir string, args ...string) (*proc.Process, error) {
	bin, err := assets.Path(binary)
	if err != nil {
		return nil, err
	}
	kubeconfig, _, err := cp.UserKubeconfig(name, "system:open-cluster-management:"+name, "system:masters")
	if err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	return proc.Start(name, logDir, bin, append(args,
		"--kubeconfig="+kubeconfig,
		"--disable-leader-election",
		fmt.Sprintf("--listen=127.0.0.1:%d", port),
	))
}

// AcceptCluster does on the hub what discovery does for a discovered shoot:
// an accepted ManagedCluster (hubAcceptsClient). OCM's registration makes its
// namespace and agents' RBAC.
func AcceptCluster(ctx context.Context, hub *ControlPlane, cluster string) error {
	mc := &clusterv1.ManagedCluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: "cluster.open-cluster-management.io/v1", Kind: "ManagedCluster"},
		ObjectMeta: metav1.ObjectMeta{Name: cluster},
		Spec:       clusterv1.ManagedClusterSpec{HubAcceptsClient: true},
	}
	if err := hub.Client.Patch(ctx, mc, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("accepting cluster %s: %w", cluster, err)
	}
	return nil
}

// writeBootstrapKubeconfig writes a kubeconfig for the hub with a token of the
// bootstrap service account, as `clusteradm join --hub-token` gives the agent.
func writeBootstrapKubeconfig(ctx context.Context, hub *ControlPlane, path string) error {
	tr, err := ServiceAccountToken(ctx, hub, BootstrapNamespace, BootstrapServiceAccount, hub.Issuer(), 24*time.Hour)
	if err != nil {
		return err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["hub"] = &clientcmdapi.Cluster{Server: hub.URL, CertificateAuthorityData: hub.CA.CertPEM()}
	kc.AuthInfos["bootstrap"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["hub"] = &clientcmdapi.Context{Cluster: "hub", AuthInfo: "bootstrap"}
	kc.CurrentContext = "hub"
	return clientcmd.WriteToFile(*kc, path)
}

// prepareKlusterlet installs on spoke what OCM's klusterlet puts there for its
// agents: their CRDs and namespace.
func prepareKlusterlet(ctx context.Context, spoke *ControlPlane) error {
	files, err := ocmCRDFiles(ocmSpokeCRDs)
	if err != nil {
		return err
	}
	if err := InstallCRDs(ctx, spoke.Client, files...); err != nil {
		return err
	}
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: agentNamespace}}
	return spoke.Client.Patch(ctx, ns, client.Apply, fieldOwner, client.ForceOwnership)
}

// startRegistrationAgent runs OCM's registration agent for s with a bootstrap
// kubeconfig for hub. The agent asks the hub for a client certificate by CSR
// and writes the hub kubeconfig built on it to s.HubKubeconfig, keeps the
// ManagedCluster's lease and status, and renews the certificate.
func startRegistrationAgent(ctx context.Context, hub *ControlPlane, s *Spoke) error {
	if err := prepareKlusterlet(ctx, s.ControlPlane); err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, "klusterlet")
	if err := os.MkdirAll(filepath.Join(dir, "hub-kubeconfig"), 0o700); err != nil {
		return err
	}
	bootstrap := filepath.Join(dir, "bootstrap-hub.kubeconfig")
	if err := writeBootstrapKubeconfig(ctx, hub, bootstrap); err != nil {
		return err
	}
	s.HubKubeconfig = filepath.Join(dir, "hub-kubeconfig", "kubeconfig")
	p, err := startOCMProcess(s.ControlPlane, s.Name+"-registration-agent", "registration", s.logDir(),
		"agent",
		"--spoke-cluster-name="+s.Name,
		"--bootstrap-kubeconfig="+bootstrap,
		"--hub-kubeconfig-dir="+filepath.Dir(s.HubKubeconfig),
		"--namespace="+agentNamespace,
		// Report the spoke's health often, so tests see Available soon.
		"--cluster-healthcheck-period=10s",
		// Look at the agent's and its add-ons' client certificates every 10 s,
		// not OCM's 5 minutes, so that a certificate of a few minutes
		// (ControlPlane.SetClusterSigningDuration) is renewed in the last
		// 20-25% of its life, as OCM renews one of a year (see
		// hack/fleetbin/kube/registration).
		"--certificate-resync-interval=10s",
	)
	if err != nil {
		return err
	}
	s.RegistrationAgent = proc.Supervise(p, agentRestartPause)
	return nil
}

// agentRestartPause is how long an exited klusterlet agent stays down before
// it is started again (the kubelet's first crash-loop back-off is 10 s).
const agentRestartPause = 5 * time.Second

// waitHubKubeconfig waits until s's registration agent has written its hub
// kubeconfig, that is until the hub approved and signed its CSR.
func waitHubKubeconfig(ctx context.Context, s *Spoke) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return s.RegistrationAgent.Current().WaitFor(ctx, "the registration agent's hub kubeconfig", func() error {
		for _, f := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(filepath.Dir(s.HubKubeconfig), f)); err != nil {
				return err
			}
		}
		_, err := clientcmd.BuildConfigFromFlags("", s.HubKubeconfig)
		return err
	})
}

// startWorkAgent runs OCM's work agent for cluster on spoke, pulling work from the
// hub with hubKubeconfig.
func startWorkAgent(spoke *ControlPlane, cluster, hubKubeconfig string) (*proc.Supervised, error) {
	bin, err := assets.Path("work")
	if err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := proc.Start(spoke.Name+"-work-agent", spoke.logDir(), bin, []string{
		"agent",
		"--spoke-cluster-name=" + cluster,
		"--workload-source-driver=kube",
		"--workload-source-config=" + hubKubeconfig,
		"--kubeconfig=" + spoke.AdminKubeconfig,
		"--namespace=" + agentNamespace,
		"--disable-leader-election",
		"--status-sync-interval=2s",
		fmt.Sprintf("--listen=127.0.0.1:%d", port),
	})
	if err != nil {
		return nil, err
	}
	return proc.Supervise(p, agentRestartPause), nil
}
