package fleet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// buildManager builds one of Lifeboat's managers (./spoke or ./hub) from this
// repository into dir and returns the binary's path.
func buildManager(dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// startSpokeManager runs lifeboat-spoke for s as a process, as it would run in
// a pod: its kubeconfig, and the CAs of the fleet's Entra stand-in and blob
// endpoint. Each BackupTarget signs in with tokens it mints for the target's
// own ServiceAccount.
func (f *Fleet) startSpokeManager(ctx context.Context, s *Spoke) error {
	bundle := filepath.Join(s.Dir, "pki", "azure-ca-bundle.pem")
	pem := append(append([]byte{}, f.Azure.Entra.CACertPEM()...), f.Azure.Proxy.CACertPEM()...)
	if err := os.WriteFile(bundle, pem, 0o600); err != nil {
		return err
	}
	port, err := proc.FreePort()
	if err != nil {
		return err
	}
	s.Manager, err = proc.Start(s.Name+"-lifeboat-spoke", s.logDir(), f.spokeBin, []string{
		"--kubeconfig=" + s.AdminKubeconfig,
		"--cluster-name=" + s.Name,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", port),
		"--azure-authority-host=" + f.Azure.Entra.AuthorityHost(),
		"--ca-bundle=" + bundle,
		"--allowed-blob-endpoint=" + f.Azure.BlobEndpoint(),
	})
	if err != nil {
		return err
	}
	return s.Manager.WaitFor(ctx, "lifeboat-spoke readiness", func() error {
		return httpOK(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	})
}

// StartSpokeManagers starts lifeboat-spoke on each of spokes (Options.SpokeManagers).
func (f *Fleet) StartSpokeManagers(ctx context.Context, spokes ...*Spoke) error {
	if f.spokeBin == "" {
		return fmt.Errorf("the fleet was started without SpokeManagers")
	}
	for _, s := range spokes {
		if err := f.startSpokeManager(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}

// KillSpokeManager kills s's lifeboat-spoke at once (SIGKILL), as a node
// failure or an OOM kill would.
// With Options.Pods, its pod is deleted at once and gone from the node.
func (f *Fleet) KillSpokeManager(ctx context.Context, s *Spoke) error {
	if s.Node != nil {
		return deleteSpokePod(ctx, s, false)
	}
	s.Manager.Kill()
	return nil
}

// RestartSpokeManager starts s's lifeboat-spoke again after it stopped or was killed.
// With Options.Pods, it deletes the running pod, if any, gracefully (as a
// rollout would) and waits until the Deployment's new pod leads.
func (f *Fleet) RestartSpokeManager(ctx context.Context, s *Spoke) error {
	if s.Node != nil {
		if _, err := SpokePod(ctx, s); err == nil {
			if err := deleteSpokePod(ctx, s, true); err != nil {
				return err
			}
		}
		return waitSpokeLeads(ctx, s)
	}
	_ = s.Manager.Stop(5 * time.Second)
	return f.startSpokeManager(ctx, s)
}
