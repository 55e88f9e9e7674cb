// Command garden runs Gardener's own test environment (etcd, kube-apiserver and an
// in-process gardener-apiserver) for the local test fleet. It writes an admin
// kubeconfig to --write-kubeconfig, prints "ready" on stdout and runs until SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	gardenerenvtest "github.com/gardener/gardener/test/envtest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	// An own flag set: controller-runtime registers --kubeconfig on the global one.
	flags := flag.NewFlagSet("garden", flag.ExitOnError)
	kubeconfig := flags.String("write-kubeconfig", "", "where to write the admin kubeconfig")
	assets := flags.String("assets", "", "directory holding etcd and kube-apiserver")
	_ = flags.Parse(os.Args[1:])
	if err := run(*kubeconfig, *assets); err != nil {
		fmt.Fprintln(os.Stderr, "garden:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, assets string) error {
	if kubeconfig == "" || assets == "" {
		return fmt.Errorf("--write-kubeconfig and --assets are required")
	}
	env := &gardenerenvtest.GardenerTestEnvironment{
		Environment: &envtest.Environment{
			BinaryAssetsDirectory:    assets,
			ControlPlaneStartTimeout: 2 * time.Minute,
			ControlPlaneStopTimeout:  30 * time.Second,
		},
		GardenerAPIServer: &gardenerenvtest.GardenerAPIServer{
			StartTimeout: 2 * time.Minute,
			Err:          os.Stderr,
			// The admission plugins that need a whole landscape (cloud profiles,
			// secret bindings, quotas, DNS) are off, as in Gardener's own
			// integration tests; Shoot validation and defaulting stay on.
			Args: []string{"--disable-admission-plugins=DeletionConfirmation,ResourceReferenceManager,ExtensionValidator,ShootQuotaValidator,ShootValidator,ShootTolerationRestriction,ManagedSeedShoot,ManagedSeed,ShootManagedSeed,ShootDNS,ShootMutator"},
		},
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		return fmt.Errorf("starting the Gardener test environment: %w", err)
	}
	defer func() { _ = env.Stop() }()

	user, err := env.ControlPlane.AddUser(envtest.User{Name: "garden-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	// Written then renamed, so a reader never sees half a kubeconfig.
	if err := os.WriteFile(kubeconfig+".tmp", data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(kubeconfig+".tmp", kubeconfig); err != nil {
		return err
	}
	fmt.Println("ready")
	<-stop
	return nil
}
