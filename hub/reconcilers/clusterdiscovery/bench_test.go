package clusterdiscovery

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// BenchmarkDiscovery1000 is discovery of 1,000 shoots in 50 projects
// (target < 30 s).
func BenchmarkDiscovery1000(b *testing.B) { benchDiscovery(b, "bench", 50, 20, 30*time.Second) }

// BenchmarkDiscovery5000 is discovery of 5,000 shoots in 100 projects, the
// most clusters a location serves (target < 60 s).
func BenchmarkDiscovery5000(b *testing.B) { benchDiscovery(b, "big", 100, 50, 60*time.Second) }

// benchDiscovery creates projects×perProject shoots in the real Gardener test
// apiserver, then measures the time from creating a ClusterDiscovery until
// all of them are BackupClusters with ManagedClusters (target), and until
// the discovery's status reports them. The reconciler runs in this process
// (TestMain's manager), so the peak RSS reported is this process's.
//
// Baseline, in the same run against the same garden and hub: a plain loop
// (16 at once) that lists the same shoots and creates, for each, a
// namespace, a ManagedCluster and a BackupCluster and writes the
// BackupCluster's status once, the floor for what discovery writes per
// shoot; ratio is ours over it.
//
// It runs once: a second iteration would find every cluster onboarded.
func benchDiscovery(b *testing.B, name string, projects, perProject int, target time.Duration) {
	total := projects * perProject
	if b.N > 1 {
		b.Skip("the discovery benchmarks run once; use -benchtime=1x")
	}
	ctx := context.Background()
	var names []string
	for p := range projects {
		names = append(names, fmt.Sprintf("%s%02d", name, p))
		if err := garden.CreateProject(ctx, names[p]); err != nil {
			b.Fatal(err)
		}
	}
	labels := map[string]string{"lifeboat.dev/bench": name}
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
	b.Logf("created %d shoots in %d projects in %v (%.0f shoots/s)", total, projects, created.Round(time.Millisecond), float64(total)/created.Seconds())

	secret := "garden-" + name
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
	case <-time.After(10 * time.Minute):
		b.Fatalf("not all %d shoots were onboarded within 10 minutes", total)
	}
	var reported time.Duration
	for deadline := time.Now().Add(2 * time.Minute); ; {
		got := &fleetv1alpha1.ClusterDiscovery{}
		if err := hubClient.Get(ctx, client.ObjectKeyFromObject(cd), got); err != nil {
			b.Fatal(err)
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, fleetv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue &&
			got.Status.Counts != nil && got.Status.Counts.Current == int32(total) {
			reported = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("status did not report %d current clusters: %+v", total, got.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	hwm, _ := proc.MemKiB(os.Getpid(), "VmHWM")
	loadAtEnd := proc.LoadAverage()
	base, err := baselineOnboarding(ctx, name, labels)
	if err != nil {
		b.Fatal(err)
	}
	ratio := all.Seconds() / base.Seconds()
	b.ReportMetric(all.Seconds(), "s-to-all-clusters")
	b.ReportMetric(reported.Seconds(), "s-to-status")
	b.ReportMetric(float64(total)/all.Seconds(), "clusters/s")
	b.ReportMetric(created.Seconds(), "s-create-shoots")
	b.ReportMetric(base.Seconds(), "s-baseline")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
	b.Logf("all %d clusters onboarded %v after the ClusterDiscovery was created; status reported them after %v; "+
		"baseline (list the shoots, create a namespace, ManagedCluster and BackupCluster each and write its status, 16 at once) %v, ratio %.2f; "+
		"peak RSS of this process (the discovery manager, the benchmark and its clients) %.1f MiB; load average %s when onboarded, %s after the baseline",
		total, all.Round(time.Millisecond), reported.Round(time.Millisecond), base.Round(time.Millisecond), ratio, float64(hwm)/1024, loadAtEnd, proc.LoadAverage())
	if all > target {
		b.Errorf("onboarding took %v, the target is < %v", all, target)
	}
}

// baselineOnboarding lists the shoots with labels in the garden and creates,
// 16 at once, a namespace, a ManagedCluster and a BackupCluster (named
// "<prefix>-base-<i>", unlabelled, so no discovery claims them) for each and
// writes the BackupCluster's status once; it returns how long that took.
func baselineOnboarding(ctx context.Context, prefix string, labels map[string]string) (time.Duration, error) {
	start := time.Now()
	shoots := &gardencorev1beta1.ShootList{}
	if err := garden.Client.List(ctx, shoots, client.MatchingLabels(labels)); err != nil {
		return 0, err
	}
	var eg errgroup.Group
	eg.SetLimit(16)
	for i := range shoots.Items {
		cluster := fmt.Sprintf("%s-base-%d", prefix, i)
		eg.Go(func() error {
			if err := hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cluster}}); err != nil {
				return err
			}
			if err := hubClient.Create(ctx, &clusterv1.ManagedCluster{
				ObjectMeta: metav1.ObjectMeta{Name: cluster},
				Spec:       clusterv1.ManagedClusterSpec{HubAcceptsClient: true},
			}); err != nil {
				return err
			}
			bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
			if err := hubClient.Create(ctx, bc); err != nil {
				return err
			}
			bc.Status.Phase = fleetv1alpha1.ClusterPending
			return hubClient.Status().Update(ctx, bc)
		})
	}
	if err := eg.Wait(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
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
