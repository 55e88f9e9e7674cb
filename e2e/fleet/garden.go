package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// Garden is Gardener's own test environment: etcd, kube-apiserver and the real
// gardener-apiserver, run by the cached `garden` binary (hack/fleetbin/garden).
type Garden struct {
	Dir        string
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client
	process    *proc.Process
}

// StartGarden starts a garden under dir and waits until the gardener-apiserver
// serves; Stop ends it.
func StartGarden(ctx context.Context, dir string) (g *Garden, err error) {
	bin, err := assets.Path("garden")
	if err != nil {
		return nil, err
	}
	envtestDir, err := assets.EnvtestDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g = &Garden{Dir: dir, Kubeconfig: filepath.Join(dir, "garden.kubeconfig")}
	g.process, err = proc.Start("garden", dir, bin, []string{"--write-kubeconfig=" + g.Kubeconfig, "--assets=" + envtestDir})
	if err != nil {
		return nil, err
	}
	// A failed return ("return nil, err") sets g to nil before this runs.
	started := g
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	if err := g.process.WaitFor(ctx, "the garden kubeconfig", func() error {
		_, err := os.Stat(g.Kubeconfig)
		return err
	}); err != nil {
		return nil, err
	}
	if g.Config, err = clientcmd.BuildConfigFromFlags("", g.Kubeconfig); err != nil {
		return nil, err
	}
	g.Client, err = client.New(g.Config, client.Options{Scheme: Scheme})
	return g, err
}

// Stop stops the garden; its own process stops its etcd and kube-apiserver.
// The grace outlasts the garden's start-up (up to 2 minutes): a garden told
// to stop while still starting finishes starting, then stops its children.
// Killed earlier, it would orphan them (envtest starts them in their own
// process groups), as a fleet that failed to start once showed.
func (g *Garden) Stop() {
	if g != nil && g.process != nil {
		_ = g.process.Stop(150 * time.Second)
	}
}

// Process is the garden's process.
func (g *Garden) Process() *proc.Process { return g.process }

// ProjectNamespace is the namespace Gardener gives project name.
func ProjectNamespace(project string) string { return "garden-" + project }

// CreateProject creates a Gardener Project and its namespace.
func (g *Garden) CreateProject(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   ProjectNamespace(name),
		Labels: map[string]string{"gardener.cloud/role": "project", "project.gardener.cloud/name": name},
	}}
	if err := client.IgnoreAlreadyExists(g.Client.Create(ctx, ns)); err != nil {
		return err
	}
	p := &gardencorev1beta1.Project{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       gardencorev1beta1.ProjectSpec{Namespace: new(ProjectNamespace(name)), Purpose: new("Lifeboat test fleet")},
	}
	return client.IgnoreAlreadyExists(g.Client.Create(ctx, p))
}

// ShootOptions describe a Shoot that points at a fleet control plane.
type ShootOptions struct {
	Project, Name string
	Labels        map[string]string
	Region        string
	Seed          string
	// Target is the control plane the shoot's API server address points at.
	Target *ControlPlane
	// LastOperation is the state of the shoot's last operation (default Succeeded).
	LastOperation gardencorev1beta1.LastOperationState
	Hibernated    bool
}

// CreateShoot creates a Shoot on Azure in the project's namespace whose status
// points at the target control plane, as a reconciled shoot's would: the
// advertised API server address and the cluster CA config map.
func (g *Garden) CreateShoot(ctx context.Context, o ShootOptions) (*gardencorev1beta1.Shoot, error) {
	if o.Region == "" {
		o.Region = "westeurope"
	}
	if o.Seed == "" {
		o.Seed = "azure-" + o.Region
	}
	if o.LastOperation == "" {
		o.LastOperation = gardencorev1beta1.LastOperationStateSucceeded
	}
	ns := ProjectNamespace(o.Project)
	shoot := &gardencorev1beta1.Shoot{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: ns, Labels: o.Labels},
		Spec: gardencorev1beta1.ShootSpec{
			CloudProfile:           &gardencorev1beta1.CloudProfileReference{Kind: "CloudProfile", Name: "az"},
			CredentialsBindingName: new("azure-credentials"),
			Region:                 o.Region,
			Provider: gardencorev1beta1.Provider{
				Type: "azure",
				Workers: []gardencorev1beta1.Worker{{
					Name: "worker", Minimum: 1, Maximum: 3,
					Machine: gardencorev1beta1.Machine{Type: "Standard_D4s_v5", Image: &gardencorev1beta1.ShootMachineImage{Name: "gardenlinux", Version: new("1877.0.0")}},
				}},
			},
			Kubernetes:  gardencorev1beta1.Kubernetes{Version: "1.35.5"},
			Networking:  &gardencorev1beta1.Networking{Type: new("calico")},
			Hibernation: &gardencorev1beta1.Hibernation{Enabled: new(o.Hibernated)},
		},
	}
	if err := g.Client.Create(ctx, shoot); err != nil {
		return nil, fmt.Errorf("creating shoot %s/%s: %w", ns, o.Name, err)
	}
	patch := client.MergeFrom(shoot.DeepCopy())
	shoot.Status = gardencorev1beta1.ShootStatus{
		SeedName:        new(o.Seed),
		TechnicalID:     "shoot--" + o.Project + "--" + o.Name,
		ClusterIdentity: new(string(shoot.UID)),
		IsHibernated:    o.Hibernated,
		LastOperation: &gardencorev1beta1.LastOperation{
			Type: gardencorev1beta1.LastOperationTypeReconcile, State: o.LastOperation,
			Progress: 100, LastUpdateTime: metav1.Now(), Description: "Shoot cluster has been successfully reconciled.",
		},
	}
	if o.Target != nil {
		shoot.Status.AdvertisedAddresses = []gardencorev1beta1.ShootAdvertisedAddress{{Name: "external", URL: o.Target.URL}}
	}
	if err := g.Client.Status().Patch(ctx, shoot, patch); err != nil {
		return nil, fmt.Errorf("setting the status of shoot %s/%s: %w", ns, o.Name, err)
	}
	if o.Target != nil {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: o.Name + ".ca-cluster", Namespace: ns},
			Data:       map[string]string{"ca.crt": string(o.Target.CA.CertPEM())},
		}
		if err := g.Client.Create(ctx, cm); err != nil {
			return nil, err
		}
	}
	return shoot, nil
}
