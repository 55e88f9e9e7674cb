package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// demo shows the fleet at work: instructions sent from the hub reach each spoke
// through its work agent, and the spoke's answer comes back as status feedback.
func demo(ctx context.Context, f *fleet.Fleet) error {
	say("\nSending one instruction per spoke from the hub (an OCM ManifestWork holding a ConfigMap) ...")
	for _, s := range f.Spokes {
		start := time.Now()
		value, err := fleet.ProbeWork(ctx, f.Hub, s)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		say("  %s applied it and reported back %q in %s", s.Name, value, time.Since(start).Round(time.Millisecond))
	}
	return backupAndMigrate(ctx, f)
}

func printFleet(f *fleet.Fleet) {
	say("\nThe fleet:")
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  PART\tAPI SERVER\tKUBECONFIG")
	fmt.Fprintf(w, "  hub\t%s\t%s\n", f.Hub.URL, f.Hub.AdminKubeconfig)
	if f.Garden != nil {
		fmt.Fprintf(w, "  garden\t%s\t%s\n", f.Garden.Config.Host, f.Garden.Kubeconfig)
	}
	for _, s := range f.Spokes {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", s.Name, s.URL, s.AdminKubeconfig)
	}
	_ = w.Flush()
	if f.Garden != nil {
		shoots := &gardencorev1beta1.ShootList{}
		if err := f.Garden.Client.List(context.Background(), shoots, client.InNamespace(fleet.ProjectNamespace(fleet.GardenProject))); err == nil {
			say("\nShoots in the garden (project %q):", fleet.GardenProject)
			w = tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "  SHOOT\tPROVIDER\tREGION\tSEED\tLAST OPERATION\tAPI SERVER")
			for _, s := range shoots.Items {
				addr := ""
				if len(s.Status.AdvertisedAddresses) > 0 {
					addr = s.Status.AdvertisedAddresses[0].URL
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s %s\t%s\n", s.Name, s.Spec.Provider.Type, s.Spec.Region, ptr.Deref(s.Status.SeedName, ""),
					s.Status.LastOperation.Type, s.Status.LastOperation.State, addr)
			}
			_ = w.Flush()
		}
	}
	say("\nReach a cluster with: kubectl --kubeconfig <KUBECONFIG> get namespaces")
	say("(`make demo` stops the fleet now; `go run ./e2e/fleet/cmd/lifeboat-fleet up` keeps it running.)")
}
