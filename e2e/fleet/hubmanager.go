package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

const (
	// HubNamespace is where lifeboat-hub keeps its own objects on the hub, like
	// the garden's kubeconfig.
	HubNamespace = "lifeboat-system"
	// HubUser is the identity lifeboat-hub runs as, bound to the hub chart's
	// ClusterRole only.
	HubUser = "lifeboat-hub"
	// GardenSecret holds the garden's kubeconfig (key "kubeconfig") in HubNamespace.
	GardenSecret = "garden-kubeconfig"
	// DiscoveryName is the ClusterDiscovery that onboards the fleet's Shoots.
	DiscoveryName = "fleet"
	// hubRole is the chart's ClusterRole, generated from the hub's RBAC markers.
	hubRole = "charts/lifeboat-hub/templates/role.yaml"
)

// ClusterName is the fleet's name of the cluster behind Shoot shoot in the
// fleet's garden project, as discovery names it.
// FleetAdminNamespaces are the hub namespaces where the e2e suites and
// lifeboat-fleet demo act as fleet admins (every cluster, every spoke
// namespace); other namespaces are tenants with only what they are granted.
var FleetAdminNamespaces = []string{"lifeboat-system", "team-*", "shop-team"}

func ClusterName(shoot string) string { return GardenProject + "--" + shoot }

// startHubManager builds lifeboat-hub and runs it as a process against the
// hub, as it would run in a pod: with its own identity that the chart's
// ClusterRole alone authorizes.
func (f *Fleet) startHubManager(ctx context.Context) error {
	if err := applyClusterRole(ctx, f.Hub.Client, filepath.Join(RepoRoot(), hubRole), HubUser); err != nil {
		return err
	}
	kubeconfig, _, err := f.Hub.UserKubeconfig("lifeboat-hub", HubUser)
	if err != nil {
		return err
	}
	bin, err := buildManager(filepath.Join(f.Dir, "bin"), "./hub", "lifeboat-hub")
	if err != nil {
		return err
	}
	port, err := proc.FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := proc.FreePort()
	if err != nil {
		return err
	}
	f.HubMetricsURL = fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort)
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", port),
		"--fleet-admin-namespaces=" + strings.Join(FleetAdminNamespaces, ","),
	}
	if f.opts.Pods {
		values, err := f.spokeValues()
		if err != nil {
			return err
		}
		args = append(args, "--spoke-image="+f.Images.Spoke.Ref, "--spoke-values="+values)
	}
	f.HubManager, err = proc.Start("lifeboat-hub", f.Hub.logDir(), bin, args)
	if err != nil {
		return err
	}
	return f.HubManager.WaitFor(ctx, "lifeboat-hub readiness", func() error {
		return httpOK(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	})
}

// RestartHubManager stops lifeboat-hub (SIGTERM, as when its pod is
// deleted) and starts it again with the same binary and flags, then waits
// until it is ready.
func (f *Fleet) RestartHubManager(ctx context.Context) error {
	p, err := f.HubManager.Restart(10 * time.Second)
	if err != nil {
		return err
	}
	f.HubManager = p
	probe := ""
	for _, a := range p.Args() {
		if v, ok := strings.CutPrefix(a, "--health-probe-bind-address="); ok {
			probe = v
		}
	}
	return p.WaitFor(ctx, "lifeboat-hub readiness", func() error {
		return httpOK(http.DefaultClient, "http://"+probe+"/readyz")
	})
}

// applyClusterRole applies the ClusterRoles and namespaced Roles in file
// (controller-gen's output) and binds them to user, making a Role's
// namespace if need be.
func applyClusterRole(ctx context.Context, c client.Client, file, user string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		role := &rbacv1.ClusterRole{} // a Role has the same fields
		if err := dec.Decode(role); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		kind := role.Kind
		if kind != "ClusterRole" && kind != "Role" {
			continue
		}
		gv := rbacv1.SchemeGroupVersion.String()
		meta := metav1.ObjectMeta{Name: role.Name, Namespace: role.Namespace}
		subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role.Name}
		var objs []client.Object
		if kind == "ClusterRole" {
			role.APIVersion = gv
			objs = []client.Object{role, &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: gv, Kind: "ClusterRoleBinding"},
				ObjectMeta: meta, RoleRef: ref, Subjects: subjects}}
		} else {
			objs = []client.Object{
				&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: role.Namespace}},
				&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: gv, Kind: "Role"}, ObjectMeta: meta, Rules: role.Rules},
				&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: gv, Kind: "RoleBinding"}, ObjectMeta: meta, RoleRef: ref, Subjects: subjects},
			}
		}
		for _, o := range objs {
			if err := c.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
				return fmt.Errorf("applying %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
}

// CreateDiscovery gives lifeboat-hub the garden's kubeconfig and creates the
// ClusterDiscovery that onboards every Shoot of the fleet's project labelled
// ShootBackupLabel=enabled.
func (f *Fleet) CreateDiscovery(ctx context.Context) (*fleetv1alpha1.ClusterDiscovery, error) {
	kubeconfig, err := os.ReadFile(f.Garden.Kubeconfig)
	if err != nil {
		return nil, err
	}
	objs := []client.Object{
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: HubNamespace},
		},
		&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: HubNamespace, Name: GardenSecret},
			Data:       map[string][]byte{"kubeconfig": kubeconfig},
		},
	}
	for _, o := range objs {
		if err := f.Hub.Client.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
			return nil, err
		}
	}
	cd := &fleetv1alpha1.ClusterDiscovery{
		ObjectMeta: metav1.ObjectMeta{Name: DiscoveryName},
		Spec: fleetv1alpha1.ClusterDiscoverySpec{
			Gardener: fleetv1alpha1.GardenerSource{
				KubeconfigSecretRef: fleetv1alpha1.SecretKeyReference{Namespace: HubNamespace, Name: GardenSecret, Key: "kubeconfig"},
				Projects:            []string{GardenProject},
				ShootSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{ShootBackupLabel: "enabled"}},
			},
		},
	}
	return cd, f.Hub.Client.Create(ctx, cd)
}

// WaitRegistered waits until discovery has registered each spoke's cluster
// with OCM and the spoke's work agent applies ManifestWork from the hub.
func (f *Fleet) WaitRegistered(ctx context.Context, spokes ...*Spoke) error {
	for _, s := range spokes {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			bc := &fleetv1alpha1.BackupCluster{}
			mc := &clusterv1.ManagedCluster{}
			if f.Hub.Client.Get(ctx, client.ObjectKey{Name: s.Name}, bc) != nil || f.Hub.Client.Get(ctx, client.ObjectKey{Name: s.Name}, mc) != nil {
				return false, nil
			}
			return meta.IsStatusConditionTrue(bc.Status.Conditions, fleetv1alpha1.ConditionRegistered) && mc.Spec.HubAcceptsClient, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for discovery to register %s: %w", s.Name, err)
		}
		if _, err := ProbeWork(ctx, f.Hub, s); err != nil {
			return fmt.Errorf("%s registered, but its work agent (started again %d times) does not apply work: %w\n%s",
				s.Name, s.WorkAgent.Restarts(), err, s.WorkAgent.Current().Tail(3000))
		}
	}
	return nil
}

// Onboard creates spoke s's Shoot, labelled for backup, and waits until
// discovery has registered its cluster; with SpokeManagers it then starts the
// spoke's lifeboat-spoke.
func (f *Fleet) Onboard(ctx context.Context, s *Spoke) error {
	if _, err := f.Garden.CreateShoot(ctx, f.shootOf(s)); err != nil {
		return err
	}
	if f.opts.HubManager {
		if err := f.WaitRegistered(ctx, s); err != nil {
			return err
		}
	}
	if f.opts.SpokeManagers && s.Manager == nil {
		return f.startSpokeManager(ctx, s)
	}
	if f.opts.Pods {
		return f.WaitSpokePods(ctx, s)
	}
	return nil
}

// shootOf is the Shoot that stands for spoke s in the garden.
func (f *Fleet) shootOf(s *Spoke) ShootOptions {
	return ShootOptions{Project: GardenProject, Name: s.Shoot, Target: s.ControlPlane, Labels: map[string]string{ShootBackupLabel: "enabled"}}
}

// BackupCluster reads the hub's BackupCluster of spoke s.
func (f *Fleet) BackupCluster(ctx context.Context, s *Spoke) (*fleetv1alpha1.BackupCluster, error) {
	bc := &fleetv1alpha1.BackupCluster{}
	return bc, f.Hub.Client.Get(ctx, client.ObjectKey{Name: s.Name}, bc)
}

// ClusterNames lists the cluster names of spokes, for a BackupLocation's clusters.
func ClusterNames(spokes ...*Spoke) []backupv1alpha1.ClusterName {
	out := make([]backupv1alpha1.ClusterName, len(spokes))
	for i, s := range spokes {
		out[i] = backupv1alpha1.ClusterName(s.Name)
	}
	return out
}
