package discovery

import (
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

type clientcmdExecConfig = clientcmdapi.ExecConfig

func write(t *testing.T, c *clientcmdapi.Config) []byte {
	t.Helper()
	data, err := clientcmd.Write(*c)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fastGarden is the test garden with a client that is not rate-limited, for
// creating many shoots.
func fastGarden(t *testing.T) *fleet.Garden {
	t.Helper()
	cfg := rest.CopyConfig(garden.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: fleet.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	fast := *garden
	fast.Client = c
	return &fast
}
