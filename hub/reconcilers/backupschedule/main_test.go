package backupschedule

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
// CRDs), where a manager runs the reconcilers with clock as their time.
var hubClient client.Client

// testClock is the reconcilers' time; tests move it and then poke the schedule.
var testClock = clocktesting.NewFakeClock(time.Now())

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "backupschedule", &hubClient, func(mgr ctrl.Manager) error {
		if err := (&Reconciler{Client: mgr.GetClient(), Clock: testClock, Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: tenancytest.Policy(mgr.GetClient())}).SetupWithManager(mgr); err != nil {
			return err
		}
		return (&PolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
	}))
}
