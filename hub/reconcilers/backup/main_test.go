package backup

import (
	"os"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub
// and ManifestWork CRDs, no work agent), where a manager runs the reconciler.
var hubClient client.Client

// testClock is the time the reconciler measures timeouts with; a test moves
// it and then pokes the Backup. Everything else runs on the real clock.
var testClock = clocktesting.NewFakeClock(time.Now())

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "backup", &hubClient, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: tenancytest.Policy(mgr.GetClient()), Clock: testClock}).SetupWithManager(mgr)
	}))
}
