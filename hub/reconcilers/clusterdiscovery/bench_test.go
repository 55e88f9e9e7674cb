package clusterdiscovery

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// BenchmarkDiscovery1000 creates 1,000 shoots across 50 projects in the real
// Gardener test apiserver, then measures the time from creating a
// ClusterDiscovery until all 1,000 are BackupClusters with ManagedClusters
// (target < 30 s), and until the discovery's status reports them.
// It runs once: a second iteration would find every cluster onboarded.
func BenchmarkDiscovery1000(b *testing.B) {
	const (
		projects   = 50
		perProject = 20
		total      = projects * perProject
		name       = "bench"
	)
	if b.N > 1 {
		b.Skip("BenchmarkDiscovery1000 runs once; use -benchtime=1x")
	}
	ctx := context.Background()
	var names []string
	for p := range projects {
		names = append(names, fmt.Sprintf("bench%02d", p))
		if err := garden.CreateProject(ctx, names[p]); err != nil {
			b.Fatal(err)
		}
	}
	labels := map[string]string{"lifeboat.dev/bench": "discovery"}
	started := time.Now()
	var eg errgroup.Group
	eg.SetLimit(64)
	for _, p := range names {
		for s := range perProject {
			eg.Go(func() error {
				_, err := garden.CreateShoot(ctx, fleet.ShootOptions{Project: p, Name: fmt.Sprintf("shoot-%02d", s), Labels: labels})
				return err
			})
		}
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	created := time.Since(started)
	b.Logf("created %d shoots in %d projects in %v (%.0f shoots/s)", total, projects, created.Round(time.Millisecond), total/created.Seconds())

	secret := "garden-bench"
	kubeconfigSecret(NewWithT(b), secret, kubeconfig)
	cd := &fleetv1alpha1.ClusterDiscovery{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fleetv1alpha1.ClusterDiscoverySpec{
			Gardener: fleetv1alpha1.GardenerSource{
				KubeconfigSecretRef: fleetv1alpha1.SecretKeyReference{Namespace: systemNamespace, Name: backupv1alpha1.ObjectName(secret)},
				Projects:            names,
				ShootSelector:       &metav1.LabelSelector{MatchLabels: labels},
			},
			Interval: &metav1.Duration{Duration: time.Hour},
		},
	}

	b.ResetTimer()
	start := time.Now()
	if err := hubClient.Create(ctx, cd); err != nil {
		b.Fatal(err)
	}
	onboarded := make(chan time.Duration, 1)
	go func() {
		for {
			if n := count(ctx, "BackupClusterList", fleetv1alpha1.GroupVersion.Group, "v1alpha1", name); n >= total {
				if m := count(ctx, "ManagedClusterList", "cluster.open-cluster-management.io", "v1", name); m >= total {
					onboarded <- time.Since(start)
					return
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var all time.Duration
	select {
	case all = <-onboarded:
	case <-time.After(5 * time.Minute):
		b.Fatalf("not all %d shoots were onboarded within 5 minutes", total)
	}
	var reported time.Duration
	for deadline := time.Now().Add(2 * time.Minute); ; {
		got := &fleetv1alpha1.ClusterDiscovery{}
		if err := hubClient.Get(ctx, client.ObjectKeyFromObject(cd), got); err != nil {
			b.Fatal(err)
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, fleetv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue &&
			got.Status.Counts != nil && got.Status.Counts.Current == total {
			reported = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("status did not report %d current clusters: %+v", total, got.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(all.Seconds(), "s-to-1000-clusters")
	b.ReportMetric(reported.Seconds(), "s-to-status")
	b.ReportMetric(total/all.Seconds(), "clusters/s")
	b.ReportMetric(created.Seconds(), "s-create-shoots")
	b.Logf("all %d clusters onboarded %v after the ClusterDiscovery was created; status reported them after %v",
		total, all.Round(time.Millisecond), reported.Round(time.Millisecond))
	if all > 30*time.Second {
		b.Errorf("onboarding took %v, the target is < 30s", all)
	}
}

// count counts the objects of a kind carrying the onboarding label of the
// named discovery, reading only their metadata.
func count(ctx context.Context, kind, group, version, discovery string) int {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind})
	if err := hubClient.List(ctx, list, client.MatchingLabels{defaultOnboardingLabel: discovery}); err != nil {
		return 0
	}
	return len(list.Items)
}
