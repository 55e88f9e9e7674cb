package execrule

import (
	"os"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// CRDs), where a manager runs the reconciler.
var hubClient client.Client

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "execrule", &hubClient, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
	}))
}
