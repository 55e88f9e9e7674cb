package protection

import (
	"os"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// CRDs), where a manager runs the protection reconciler. No other
// reconciler runs: the tests write Backup and schedule statuses themselves.
// It reads the inventory again only every hour when nothing changed, so a
// test that sees a new inventory's verdict sees the watch of the pages.
var hubClient client.Client

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "protection", &hubClient, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), InventoryPeriod: time.Hour}).SetupWithManager(mgr)
	}))
}
