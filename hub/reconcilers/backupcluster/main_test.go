package backupcluster

import (
	"os"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hubClient talks to the package's hub (a real kube-apiserver with the hub,
// ManifestWork and add-on CRDs, and kube-controller-manager for quotas),
// where a manager runs the reconciler.
var hubClient client.Client

// catalogPages is the quota of BackupCatalogs per cluster namespace in these tests.
const catalogPages = 3

func TestMain(m *testing.M) {
	os.Exit(fleet.RunHubReconcilerTestsWithKCM(m, "backupcluster", &hubClient, func(mgr ctrl.Manager) error {
		return (&Reconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  mgr.GetEventRecorder("lifeboat-hub"),
			Options:   Options{CatalogPages: catalogPages},
		}).SetupWithManager(mgr)
	}))
}
