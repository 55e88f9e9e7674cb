package backuplocation

import (
	"os"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// and ManifestWork CRDs, no work agent), where a manager runs the reconciler.
var hubClient client.Client

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "backuplocation", &hubClient, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: tenancytest.Policy(mgr.GetClient())}).SetupWithManager(mgr)
	}))
}
