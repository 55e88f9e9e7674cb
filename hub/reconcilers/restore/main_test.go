package restore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// and ManifestWork CRDs, no work agent), where a manager runs the reconciler.
var hubClient client.Client

func TestMain(m *testing.M) {
	mctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	code := fleet.TestControlPlane{
		Name: "restore",
		CRDs: []string{"charts/lifeboat-hub/crds"},
		Setup: func(ctx context.Context, cp *fleet.ControlPlane) error {
			cfg := rest.CopyConfig(cp.Config)
			cfg.QPS, cfg.Burst = 2000, 4000
			var err error
			if hubClient, err = client.New(cfg, client.Options{Scheme: fleet.Scheme}); err != nil {
				return err
			}
			ocmDir, err := fleet.ModuleDir("open-cluster-management.io/api")
			if err != nil {
				return err
			}
			if err := fleet.InstallCRDs(ctx, hubClient, filepath.Join(ocmDir, "work/v1/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml")); err != nil {
				return err
			}
			log := io.Discard
			if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
				log = os.Stderr
			}
			ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(log)))
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                 fleet.Scheme,
				Metrics:                metricsserver.Options{BindAddress: "0"},
				HealthProbeBindAddress: "0",
			})
			if err != nil {
				return err
			}
			if err := (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
				return err
			}
			go func() { done <- mgr.Start(mctx) }()
			return nil
		},
	}.RunTests(m)
	stop()
	os.Exit(code)
}
