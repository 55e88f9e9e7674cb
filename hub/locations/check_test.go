package locations_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

// workGets counts the ManifestWork GETs made through it.
type workGets struct {
	client.Reader
	n atomic.Int32
}

func (r *workGets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*workv1.ManifestWork); ok {
		r.n.Add(1)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// noWorksYet is a cache that has not yet seen any ManifestWork.
type noWorksYet struct{ client.Reader }

func (r noWorksYet) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*workv1.ManifestWork); ok {
		return apierrors.NewNotFound(workv1.Resource("manifestworks"), key.Name)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// Check runs for every Backup and Restore: it reads the cluster's
// BackupTarget work from the cache and goes to the API server only to
// confirm a verdict that would fail the caller for good.
func TestCheckReadsTheWorkFromTheCache(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := fleet.StartControlPlane(ctx, "locations", filepath.Join(t.TempDir(), "hub"), false)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(cp.Stop)
	c := cp.Client
	g.Expect(fleet.InstallHubCRDs(ctx, c)).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})).To(Succeed())
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "primary"},
		Spec: fleetv1alpha1.BackupLocationSpec{
			Clusters: []backupv1alpha1.ClusterName{"c1"},
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups", Prefix: "team", Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
		},
	}
	g.Expect(c.Create(ctx, loc)).To(Succeed())
	loc.Status = fleetv1alpha1.BackupLocationStatus{ObservedGeneration: loc.Generation, Phase: fleetv1alpha1.LocationValid, SelectedClusters: 1, ValidClusters: 1}
	g.Expect(c.Status().Update(ctx, loc)).To(Succeed())
	g.Expect(locationstest.SetConnection(ctx, c, loc, "c1", backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded"})).To(Succeed())

	t.Log("the cache has the work: Valid, and no GET of the work around it")
	live := &workGets{Reader: c}
	v, err := locations.Check(ctx, live, c, "team", "primary", "c1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.State).To(Equal(locations.Valid))
	g.Expect(live.n.Load()).To(BeZero())

	t.Log("the cache has not seen the work yet: the refusal it would give is checked on the API server, which says Valid")
	v, err = locations.Check(ctx, live, noWorksYet{c}, "team", "primary", "c1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.State).To(Equal(locations.Valid))
	g.Expect(live.n.Load()).To(BeEquivalentTo(1))

	t.Log("a cluster the location does not select is refused, also on the API server")
	v, err = locations.Check(ctx, live, c, "team", "primary", "c2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.State).To(Equal(locations.Unusable))
	g.Expect(v.Reason).To(Equal(fleetv1alpha1.ReasonClusterNotAllowed))
	g.Expect(live.n.Load()).To(BeEquivalentTo(2))
}
