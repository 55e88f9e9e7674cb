package runlog

import (
	"os"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// and ManifestWork CRDs, no work agent, no spoke); tests play the spoke by
// writing its log page.
var hubClient client.Client

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "runlog", &hubClient, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Tenancy: tenancytest.Policy(mgr.GetClient()), Poll: 200 * time.Millisecond, Timeout: time.Minute}).SetupWithManager(mgr)
	}))
}
