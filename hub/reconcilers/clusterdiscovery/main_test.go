package clusterdiscovery

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// One garden (real gardener-apiserver) and one hub (real kube-apiserver) for
// the package, and one manager running the reconciler against both.
var (
	garden *fleet.Garden
	hub    *fleet.ControlPlane
	// hubClient and the garden's Client are not rate-limited.
	hubClient  client.Client
	kubeconfig []byte
	rec        *Reconciler
)

const systemNamespace = "lifeboat-system"

func TestMain(m *testing.M) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "lifeboat-clusterdiscovery-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		defer func() {
			garden.Stop()
			if hub != nil {
				hub.Stop()
			}
		}()
		if err := start(ctx, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}

		log := io.Discard
		if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
			log = os.Stderr
		}
		ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(log)))
		mgr, err := ctrl.NewManager(fast(hub.Config), ctrl.Options{
			Scheme:                 fleet.Scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		rec = &Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("lifeboat-hub")}
		if err := rec.SetupWithManager(mgr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		mctx, stop := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- mgr.Start(mctx) }()
		defer func() { stop(); <-done }()
		return m.Run()
	}())
}

// start runs garden and hub side by side, installs the CRDs and writes the
// garden kubeconfig Secret.
func start(ctx context.Context, dir string) error {
	var eg errgroup.Group
	eg.Go(func() error {
		var err error
		if garden, err = fleet.StartGarden(ctx, filepath.Join(dir, "garden")); err != nil {
			return err
		}
		if kubeconfig, err = os.ReadFile(garden.Kubeconfig); err != nil {
			return err
		}
		garden.Client, err = client.New(fast(garden.Config), client.Options{Scheme: fleet.Scheme})
		return err
	})
	eg.Go(func() error {
		var err error
		if hub, err = fleet.StartControlPlane(ctx, "hub", filepath.Join(dir, "hub"), false); err != nil {
			return err
		}
		if hubClient, err = client.New(fast(hub.Config), client.Options{Scheme: fleet.Scheme}); err != nil {
			return err
		}
		if err := fleet.InstallHubCRDs(ctx, hubClient); err != nil {
			return err
		}
		return hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}})
	})
	return eg.Wait()
}

// fast is cfg without client-side rate limits: the tests create many objects,
// and a hub manager with the fleet's size needs a high QPS as well.
func fast(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 2000, 4000
	return c
}
