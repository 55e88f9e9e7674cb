package main

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"os"
	"text/tabwriter"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// demo shows the fleet at work from the hub: discovery onboards the garden's
// shoots, their spokes come Online, and a backup and a restore run across
// clusters.
func demo(ctx context.Context, f *fleet.Fleet) error {
	say("\nCreating ClusterDiscovery %q on the hub: Shoots of project %q labelled %s=enabled ...", fleet.DiscoveryName, fleet.GardenProject, fleet.ShootBackupLabel)
	start := time.Now()
	if _, err := f.CreateDiscovery(ctx); err != nil {
		return err
	}
	if err := f.WaitRegistered(ctx, f.Spokes...); err != nil {
		return err
	}
	say("  %d clusters registered with OCM in %s; the agent ManifestWork installs lifeboat-spoke on each, as a pod ...", len(f.Spokes), time.Since(start).Round(time.Millisecond))
	if err := f.WaitSpokePods(ctx, f.Spokes...); err != nil {
		return err
	}
	if err := printSpokePods(ctx, f); err != nil {
		return err
	}
	clusters := &fleetv1alpha1.BackupClusterList{}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := f.Hub.Client.List(ctx, clusters); err != nil {
			return false, err
		}
		online := 0
		for _, c := range clusters.Items {
			if c.Status.Phase == fleetv1alpha1.ClusterOnline {
				online++
			}
		}
		return online == len(f.Spokes), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for every cluster to be Online: %w", err)
	}
	say("  every cluster Online %s after the ClusterDiscovery was created:", time.Since(start).Round(time.Millisecond))
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  CLUSTER\tPHASE\tPROJECT\tSHOOT\tPROVIDER\tREGION\tADD-ON")
	for _, c := range clusters.Items {
		shoot := ptr.Deref(c.Spec.Shoot, fleetv1alpha1.ShootInfo{})
		addon := ""
		if a := meta.FindStatusCondition(c.Status.Conditions, fleetv1alpha1.ConditionAvailable); a != nil {
			addon = a.Reason
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Status.Phase, shoot.Project, shoot.Name, shoot.Provider, shoot.Region, addon)
	}
	_ = w.Flush()
	return backupAndMigrate(ctx, f)
}

// printSpokePods shows where lifeboat-spoke runs on each cluster: its pod, node,
// ServiceAccount, image, and the identity the Workload Identity webhook injected.
func printSpokePods(ctx context.Context, f *fleet.Fleet) error {
	say("  lifeboat-spoke pods, with the identity the Azure Workload Identity webhook injected:")
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  CLUSTER\tPOD\tNODE\tSERVICE ACCOUNT\tIMAGE\tAZURE_FEDERATED_TOKEN_FILE\tAZURE_AUTHORITY_HOST")
	for _, s := range f.Spokes {
		pod, err := fleet.SpokePod(ctx, s)
		if err != nil {
			return err
		}
		env := map[string]string{}
		for _, e := range pod.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, pod.Name, pod.Spec.NodeName, pod.Spec.ServiceAccountName,
			pod.Spec.Containers[0].Image, env["AZURE_FEDERATED_TOKEN_FILE"], env["AZURE_AUTHORITY_HOST"])
	}
	return w.Flush()
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
