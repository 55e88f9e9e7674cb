package backupcluster

import (
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// and ManifestWork CRDs, no work agent), where a manager runs the reconciler;
// hubConfig is its admin config, whose address and CA the reconciler gives
// the spokes.
var (
	hubClient client.Client
	hubConfig *rest.Config
)

// clock is the reconciler's clock: real time moved forward by the tests.
var clock = &offsetClock{}

const spokeImage = "registry.example/lifeboat-spoke:test"

// catalogPages is the quota of BackupCatalogs per cluster namespace in these tests.
const catalogPages = 3

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTestsWithKCM(m, "backupcluster", &hubClient, func(mgr ctrl.Manager) error {
		hubConfig = rest.CopyConfig(mgr.GetConfig())
		return (&Reconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  mgr.GetEventRecorder("lifeboat-hub"),
			Now:       clock.Now,
			Options:   Options{HubServer: hubConfig.Host, HubCA: hubConfig.CAData, SpokeImage: spokeImage, CatalogPages: catalogPages},
		}).SetupWithManager(mgr)
	}))
}

// offsetClock is time.Now moved forward by what the tests added, so that the
// reconciler's requeues still happen in real time.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// AdvanceTo moves the clock forward so that it reads t now.
func (c *offsetClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := time.Until(t); d > c.offset {
		c.offset = d
	}
}
