// Package assets finds the fleet's heavy binaries that hack/fleet-bin.sh builds
// from pinned modules into a cache outside the repository.
package assets

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Versions of the cached components; they must match hack/fleet-bin.sh.
const (
	KubeVersion     = "v1.35.5"
	EtcdVersion     = "v3.6.6"
	OCMVersion      = "v1.2.0"
	GardenerVersion = "v1.145.0"
	AzuriteVersion  = "3.37.0"
	// WorkloadIdentityVersion is github.com/Azure/azure-workload-identity's.
	WorkloadIdentityVersion = "v1.6.0"
)

// CacheDir is $LIFEBOAT_CACHE, or ~/.cache/lifeboat.
func CacheDir() string {
	if d := os.Getenv("LIFEBOAT_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "lifeboat")
}

// kubeDir holds the Kubernetes and OCM binaries, built together from one
// module (hack/fleetbin/kube) so that their shared packages compile once.
const kubeDir = "kube-" + KubeVersion + "-ocm-" + OCMVersion

// ocmDir holds OCM's placement controller and add-on manager, built from
// the same module as kubeDir.
const ocmDir = "ocm-" + OCMVersion + "-kube-" + KubeVersion

// registrationDir holds OCM's registration (hub controller and agent) as
// hack/fleetbin/kube/registration builds it: OCM's command with the flag
// --certificate-resync-interval.
const registrationDir = "ocm-registration-" + OCMVersion + "-kube-" + KubeVersion

var binaries = map[string]string{
	"kube-apiserver":          kubeDir,
	"kube-controller-manager": kubeDir,
	"kube-scheduler":          kubeDir,
	"kubelet":                 kubeDir,
	"work":                    kubeDir,
	"registration":            registrationDir,
	"placement":               ocmDir,
	"addon":                   ocmDir,
	"etcd":                    "etcd-" + EtcdVersion,
	"webhook":                 "azure-wi-webhook-" + WorkloadIdentityVersion,
	"garden":                  "garden-" + GardenerVersion,
	"azurite-blob":            filepath.Join("azurite-"+AzuriteVersion, "node_modules", ".bin"),
}

// Path returns the path of a cached binary, or an error that says how to build it.
func Path(name string) (string, error) {
	dir, ok := binaries[name]
	if !ok {
		return "", fmt.Errorf("unknown fleet binary %q", name)
	}
	p := filepath.Join(CacheDir(), dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("fleet binary %s not found at %s: run 'make fleet-bin' (hack/fleet-bin.sh) first", name, p)
	}
	return p, nil
}

var (
	envtestOnce sync.Once
	envtestDir  string
	envtestErr  error
)

// EnvtestDir returns a directory holding etcd and kube-apiserver, the layout that
// controller-runtime's envtest expects in BinaryAssetsDirectory.
func EnvtestDir() (string, error) {
	envtestOnce.Do(func() {
		dir := filepath.Join(CacheDir(), "envtest-"+KubeVersion+"-"+EtcdVersion)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			envtestErr = err
			return
		}
		for _, name := range []string{"etcd", "kube-apiserver"} {
			src, err := Path(name)
			if err != nil {
				envtestErr = err
				return
			}
			link := filepath.Join(dir, name)
			if target, err := os.Readlink(link); err == nil && target == src {
				continue
			}
			_ = os.Remove(link)
			if err := os.Symlink(src, link); err != nil && !os.IsExist(err) {
				envtestErr = err
				return
			}
		}
		envtestDir = dir
	})
	return envtestDir, envtestErr
}
