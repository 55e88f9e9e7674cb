package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
	"github.com/lifeboat-dev/lifeboat/hub/addon"
)

// ocmEnv, set to 1, runs the benchmarks with OCM in place: OCM's placement
// controller and add-on manager (v1.2.0, hack/fleet-bin.sh ocm) beside the
// hub, a ManagedCluster (labelled as discovery labels it) for every
// benchmark cluster, so that the add-on manager makes its
// ManagedClusterAddOn lifeboat from the hub's default Placement and
// lifeboat-hub's add-on framework renders the cluster's add-on ManifestWork;
// and locations and schedules select their clusters by a placementRef, whose
// PlacementDecisions the placement controller writes (100 clusters each).
// OCM's registration controller does not run: nothing joins, and the
// cluster set it would keep (global) is created here.
const ocmEnv = "LIFEBOAT_BENCH_OCM"

// withOCM says whether the benchmarks run with OCM (ocmEnv).
func withOCM() bool { return os.Getenv(ocmEnv) == "1" }

// globalSet is OCM's cluster set of every cluster.
const globalSet = "global"

// benchPlacement is the Placement in the tenant namespace that locations and
// schedules name with OCM.
const benchPlacement = "bench"

// startOCM starts OCM's placement controller and add-on manager on the
// control plane, and creates the global cluster set; b.Cleanup stops them.
func (e *hubEnv) startOCM(ctx context.Context, b *testing.B) {
	set := &clusterv1beta2.ManagedClusterSet{
		ObjectMeta: metav1.ObjectMeta{Name: globalSet},
		Spec: clusterv1beta2.ManagedClusterSetSpec{ClusterSelector: clusterv1beta2.ManagedClusterSelector{
			SelectorType: clusterv1beta2.LabelSelector, LabelSelector: &metav1.LabelSelector{},
		}},
	}
	if err := e.c.Create(ctx, set); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ bin, user, arg string }{
		{"placement", "placement-controller", "controller"},
		{"addon", "addon-manager", "manager"},
	} {
		p, err := fleet.StartOCMController(e.cp, c.user, c.bin, c.arg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Stop(10 * time.Second) })
		e.ocm = append(e.ocm, p)
	}
}

// createManagedClusters creates an accepted ManagedCluster with labels and
// discovery's label for every name, and binds the global set to the tenant
// namespace.
func (e *hubEnv) createManagedClusters(ctx context.Context, names []string, labels map[string]string) error {
	if err := e.c.Create(ctx, &clusterv1beta2.ManagedClusterSetBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: globalSet},
		Spec:       clusterv1beta2.ManagedClusterSetBindingSpec{ClusterSet: globalSet},
	}); err != nil {
		return err
	}
	mcLabels := map[string]string{addon.DiscoveryLabel: "bench"}
	for k, v := range labels {
		mcLabels[k] = v
	}
	var eg errgroup.Group
	eg.SetLimit(32)
	for _, name := range names {
		eg.Go(func() error {
			return e.c.Create(ctx, &clusterv1.ManagedCluster{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: mcLabels},
				Spec:       clusterv1.ManagedClusterSpec{HubAcceptsClient: true},
			})
		})
	}
	return eg.Wait()
}

// waitAddOns waits until the add-on manager has made total
// ManagedClusterAddOns lifeboat and lifeboat-hub a ManifestWork for each,
// and returns how long that took. It lists metadata only, every 2 s: the
// works hold the spoke's manifests.
func (e *hubEnv) waitAddOns(ctx context.Context, total int) (time.Duration, error) {
	start := time.Now()
	count := func(gvk schema.GroupVersionKind, opts ...client.ListOption) int {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		if err := e.c.List(ctx, list, opts...); err != nil {
			return -1
		}
		return len(list.Items)
	}
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 50*time.Minute, true, func(context.Context) (bool, error) {
		return count(schema.GroupVersionKind{Group: addonv1alpha1.GroupName, Version: "v1alpha1", Kind: "ManagedClusterAddOnList"}) >= total &&
			count(schema.GroupVersionKind{Group: workv1.GroupName, Version: "v1", Kind: "ManifestWorkList"}, client.MatchingLabels{addonv1alpha1.AddonLabelKey: addon.Name}) >= total, nil
	})
	if err != nil {
		return 0, fmt.Errorf("waiting for %d ManagedClusterAddOns and their add-on works: %w", total, err)
	}
	return time.Since(start), nil
}

// setUpAddOns, with OCM, waits for the add-on on every cluster (waitAddOns)
// and says how long that took; without, it says OCM is off.
func (e *hubEnv) setUpAddOns(ctx context.Context, b *testing.B, total int) string {
	if !withOCM() {
		return "without OCM (" + ocmEnv + " unset)"
	}
	took, err := e.waitAddOns(ctx, total)
	if err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("with OCM's placement controller and add-on manager: %d ManagedClusterAddOns and add-on works after %v", total, took.Round(time.Millisecond))
}

// selection is how a location or schedule selects the clusters with labels:
// with OCM, a placementRef to the Placement benchPlacement that selects them
// (created here, if missing, and waited for until its decisions hold total
// clusters); else the label selector.
func (e *hubEnv) selection(ctx context.Context, b *testing.B, labels map[string]string, total int) (*metav1.LabelSelector, *fleetv1alpha1.PlacementRef) {
	if !withOCM() {
		return &metav1.LabelSelector{MatchLabels: labels}, nil
	}
	p := &clusterv1beta1.Placement{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: benchPlacement},
		Spec: clusterv1beta1.PlacementSpec{
			ClusterSets: []string{globalSet},
			Predicates: []clusterv1beta1.ClusterPredicate{{RequiredClusterSelector: clusterv1beta1.ClusterSelector{
				LabelSelector: metav1.LabelSelector{MatchLabels: labels},
			}}},
		},
	}
	if err := client.IgnoreAlreadyExists(e.c.Create(ctx, p)); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	pages := 0
	err := wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(context.Context) (bool, error) {
		list := &clusterv1beta1.PlacementDecisionList{}
		if err := e.c.List(ctx, list, client.InNamespace(tenant), client.MatchingLabels{clusterv1beta1.PlacementLabel: benchPlacement}); err != nil {
			return false, nil
		}
		n := 0
		for _, d := range list.Items {
			n += len(d.Status.Decisions)
		}
		pages = len(list.Items)
		return n == total, nil
	})
	if err != nil {
		b.Fatalf("waiting for Placement %s to decide for %d clusters: %v", benchPlacement, total, err)
	}
	logf(b, "Placement %s decided for %d clusters in %d PlacementDecisions after %v", benchPlacement, total, pages, time.Since(start).Round(time.Millisecond))
	return nil, &fleetv1alpha1.PlacementRef{Name: backupv1alpha1.ObjectName(benchPlacement)}
}

// ocmRSS describes the resident memory of OCM's controllers, when they run.
func (e *hubEnv) ocmRSS() string {
	s := ""
	for _, p := range e.ocm {
		hwm, _ := proc.MemKiB(p.Pid(), "VmHWM")
		rss, _ := proc.MemKiB(p.Pid(), "VmRSS")
		s += fmt.Sprintf("; %s peak RSS %.1f MiB (now %.1f MiB)", p.Name, float64(hwm)/1024, float64(rss)/1024)
	}
	return s
}
