package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// TestControlPlane describes the control plane a package's tests share.
type TestControlPlane struct {
	// Name names the control plane (and its temporary directory).
	Name string
	// WithKCM also runs kube-controller-manager: namespaces finish deleting,
	// Deployments make ReplicaSets, claims bind to volumes.
	WithKCM bool
	// CRDs are chart CRD folders to install, relative to the repository root,
	// e.g. "charts/lifeboat-spoke/crds".
	CRDs []string
	// Setup runs once the control plane is up, e.g. to keep it in a package variable.
	Setup func(ctx context.Context, cp *ControlPlane) error
}

// RunTests starts the control plane, runs the package's tests, stops it and
// returns the exit code for os.Exit. LIFEBOAT_KEEP_TEST_DIR=1 keeps its files
// and logs.
func (t TestControlPlane) RunTests(m *testing.M) int {
	code, err := t.run(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s test control plane: %v\n", t.Name, err)
		return 1
	}
	return code
}

func (t TestControlPlane) run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "lifeboat-"+t.Name+"-")
	if err != nil {
		return 1, err
	}
	if os.Getenv("LIFEBOAT_KEEP_TEST_DIR") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "control plane files and logs in", dir)
	}
	cp, err := StartControlPlane(ctx, t.Name, dir, t.WithKCM)
	if err != nil {
		return 1, err
	}
	defer cp.Stop()
	for _, chart := range t.CRDs {
		files, err := CRDFiles(filepath.Join(RepoRoot(), chart))
		if err != nil {
			return 1, err
		}
		if err := InstallCRDs(ctx, cp.Client, files...); err != nil {
			return 1, err
		}
	}
	if t.Setup != nil {
		if err := t.Setup(ctx, cp); err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}

// RunHubReconcilerTests runs a package's tests against a hub control plane:
// Lifeboat's hub CRDs and the ManifestWork CRD, no work agent (tests write the
// agent's status feedback themselves). A manager runs whatever register adds
// to it; hub is set to a client with high QPS for the tests.
// LIFEBOAT_TEST_LOG=1 shows the manager's log.
func RunHubReconcilerTests(m *testing.M, name string, hub *client.Client, register func(ctrl.Manager) error) int {
	return runHubReconcilerTests(m, name, false, hub, register)
}

// RunHubReconcilerTestsWithKCM is RunHubReconcilerTests with
// kube-controller-manager, e.g. for ResourceQuotas, which admit nothing
// until its quota controller has counted their usage.
func RunHubReconcilerTestsWithKCM(m *testing.M, name string, hub *client.Client, register func(ctrl.Manager) error) int {
	return runHubReconcilerTests(m, name, true, hub, register)
}

func runHubReconcilerTests(m *testing.M, name string, withKCM bool, hub *client.Client, register func(ctrl.Manager) error) int {
	mctx, stop := context.WithCancel(context.Background())
	defer stop()
	return TestControlPlane{
		Name:    name,
		WithKCM: withKCM,
		CRDs:    []string{"charts/lifeboat-hub/crds"},
		Setup: func(ctx context.Context, cp *ControlPlane) error {
			cfg := rest.CopyConfig(cp.Config)
			cfg.QPS, cfg.Burst = 2000, 4000
			c, err := client.New(cfg, client.Options{Scheme: Scheme})
			if err != nil {
				return err
			}
			*hub = c
			ocmDir, err := ModuleDir(ocmAPIModule)
			if err != nil {
				return err
			}
			// ManifestWork, what decides tenancy (ManagedClusters, sets,
			// bindings), Placements with their decisions, and add-ons.
			if err := InstallCRDs(ctx, c,
				filepath.Join(ocmDir, "addon/v1alpha1/0000_01_addon.open-cluster-management.io_managedclusteraddons.crd.yaml"),
				filepath.Join(ocmDir, "work/v1/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml"),
				filepath.Join(ocmDir, "cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml"),
				filepath.Join(ocmDir, "cluster/v1beta2/0000_00_clusters.open-cluster-management.io_managedclustersets.crd.yaml"),
				filepath.Join(ocmDir, "cluster/v1beta2/0000_01_clusters.open-cluster-management.io_managedclustersetbindings.crd.yaml"),
				filepath.Join(ocmDir, "cluster/v1beta1/0000_02_clusters.open-cluster-management.io_placements.crd.yaml"),
				filepath.Join(ocmDir, "cluster/v1beta1/0000_03_clusters.open-cluster-management.io_placementdecisions.crd.yaml")); err != nil {
				return err
			}
			log := io.Discard
			if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
				log = os.Stderr
			}
			ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(log)))
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                 Scheme,
				Metrics:                metricsserver.Options{BindAddress: "0"},
				HealthProbeBindAddress: "0",
			})
			if err != nil {
				return err
			}
			if err := register(mgr); err != nil {
				return err
			}
			go func() { _ = mgr.Start(mctx) }()
			return nil
		},
	}.RunTests(m)
}

// StartTestManager runs a controller-runtime manager on cfg, with what setup
// adds to it, until the test ends: no metrics or probes, and controller names
// are not checked, so that tests may start the same reconciler again (or one
// per cluster).
func StartTestManager(t testing.TB, cfg *rest.Config, setup func(ctrl.Manager) error) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}
