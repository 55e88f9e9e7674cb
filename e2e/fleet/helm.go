package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/lifeboat-dev/lifeboat/charts"
)

// helmTimeout bounds a Helm install (CRDs, objects and the wait for them to be
// ready) when ctx has no deadline.
const helmTimeout = 5 * time.Minute

// HelmInstall installs chartName, one of the charts embedded in package charts,
// on cp as `helm install release --namespace namespace --create-namespace
// --wait` would: the CRDs of its crds/ first, then its objects, and it waits
// until they are ready (a Deployment's pods Ready, which needs cp's
// kube-controller-manager and a node). The release is stored in Secrets, as
// Helm's default driver does. Helm's log goes to helm-<release>.log in cp's
// log folder. The install's timeout is ctx's deadline (helmTimeout without
// one); when ctx ends first, the error is ctx's and Helm's own goroutines finish
// in the background, as RunWithContext documents.
func HelmInstall(ctx context.Context, cp *ControlPlane, chartName, namespace, release string, values map[string]any) error {
	ch, err := charts.Load(chartName)
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(cp.logDir(), "helm-"+release+".log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cfg, err := helmConfiguration(cp, namespace, func(format string, v ...any) {
		fmt.Fprintf(logFile, "%s "+format+"\n", append([]any{time.Now().Format(time.RFC3339Nano)}, v...)...)
	})
	if err != nil {
		return err
	}

	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = release, namespace
	install.CreateNamespace = true
	install.Wait = true
	install.Timeout = helmTimeout
	if deadline, ok := ctx.Deadline(); ok {
		install.Timeout = time.Until(deadline)
	}
	if _, err := install.RunWithContext(ctx, ch, values); err != nil {
		return fmt.Errorf("helm install %s (chart %s) on %s: %w", release, chartName, cp.Name, err)
	}
	return nil
}

// helmConfiguration is a Helm SDK configuration for namespace on cp, as its
// admin, with releases stored in Secrets. Helm's discovery cache stays in cp's
// folder, not in $HOME/.kube.
func helmConfiguration(cp *ControlPlane, namespace string, logf action.DebugLog) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	cacheDir := filepath.Join(cp.Dir, "helm-cache")
	flags.KubeConfig, flags.Namespace, flags.CacheDir = &cp.AdminKubeconfig, &namespace, &cacheDir
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm on %s: %w", cp.Name, err)
	}
	return cfg, nil
}
