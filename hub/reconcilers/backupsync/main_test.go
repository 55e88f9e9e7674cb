package backupsync

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
// and ManifestWork CRDs, no work agent, no spoke), where a manager runs the
// sync reconcilers. Tests play the spoke: they write catalog pages and the
// work agent's feedback.
var hubClient client.Client

// intervalNow is the Interval reconciler's clock in these tests.
var intervalNow = time.Date(2026, 11, 21, 10, 7, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTests(m, "backupsync", &hubClient, func(mgr ctrl.Manager) error {
		if err := (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), LeaseDuration: 30 * time.Second, Tenancy: tenancytest.Policy(mgr.GetClient())}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&Pages{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
			return err
		}
		return (&Interval{Client: mgr.GetClient(), Now: func() time.Time { return intervalNow }}).SetupWithManager(mgr)
	}))
}
