package blob_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/maintenance"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/azurite"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

// A deleted snapshot's data leaves the container with kopia's full
// maintenance (run here without kopia's safety delays, which only a test
// may do), while the snapshot that remains restores byte for byte, and the
// cluster's spoke owns the repository's maintenance.
func TestMaintenanceFreesDeletedSnapshotData(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := newIdentity(t, true)
	container := newContainer(t, "maint")
	id.grant(t, container, blobproxy.StorageBlobDataContributor)
	client, err := blob.New(id.config(container, "team-a"), testOptions()...)
	g.Expect(err).NotTo(HaveOccurred())

	rep, err := volumes.Open(ctx, client, "spoke-1", "shop", "password-1")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { rep.Close(context.WithoutCancel(ctx)) }()
	const oldBytes = 14 << 20
	old := backUp(t, ctx, rep, "old", func(dir string) { writeRandom(t, filepath.Join(dir, "old.bin"), oldBytes) })
	oldPacks := packs(t, container)
	g.Expect(sum(oldPacks)).To(BeNumerically(">=", oldBytes))
	keepDir := t.TempDir()
	writeTree(t, keepDir)
	keep := backUp(t, ctx, rep, "keep", func(dir string) { g.Expect(os.CopyFS(dir, os.DirFS(keepDir))).To(Succeed()) })

	g.Expect(rep.Delete(ctx, old.ID)).To(Succeed())
	// Blob times are whole seconds, and maintenance takes only what is older
	// than its own start.
	time.Sleep(1100 * time.Millisecond)

	t.Log("with kopia's production margins, data younger than 24 hours stays, as a running backup's would")
	ran, err := rep.Maintain(ctx, maintenance.ModeFull, maintenance.SafetyFull)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ran).To(Equal(maintenance.ModeFull))
	kept := packs(t, container)
	for name := range oldPacks {
		g.Expect(kept).To(HaveKey(name))
	}

	t.Log("without them (tests only), a full cycle deletes what no snapshot holds")
	ran, err = rep.Maintain(ctx, maintenance.ModeFull, maintenance.SafetyNone)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ran).To(Equal(maintenance.ModeFull))
	after := packs(t, container)
	for name := range oldPacks {
		g.Expect(after).NotTo(HaveKey(name), "the deleted snapshot's packs are deleted")
	}
	g.Expect(sum(after)).To(BeNumerically("<", oldBytes), "no pack holds the deleted snapshot's 14 MiB of random bytes")
	ran, err = rep.Maintain(ctx, maintenance.ModeQuick, maintenance.SafetyNone)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ran).To(Equal(maintenance.ModeQuick))
	params, err := maintenance.GetParams(ctx, rep.Repository)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(params.Owner).To(Equal(volumes.MaintenanceOwner("spoke-1")))

	dst := t.TempDir()
	writer := startMover(t, ctx, volumes.Mover{Root: dst, Token: "write-token", Write: true}, nil)
	_, err = rep.Fill(ctx, keep.ID, writer)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(treeSums(t, dst)).To(Equal(treeSums(t, keepDir)))

	t.Log("a repository whose maintenance another kopia user owns is left to it")
	params.Owner = "admin@laptop"
	g.Expect(repo.WriteSession(ctx, rep.Repository, repo.WriteSessionOptions{}, func(ctx context.Context, w repo.RepositoryWriter) error {
		return maintenance.SetParams(ctx, w, params)
	})).To(Succeed())
	before := blobETags(t, container)
	_, err = rep.Maintain(ctx, maintenance.ModeFull, maintenance.SafetyNone)
	g.Expect(err).To(MatchError(volumes.ErrNotOwner))
	g.Expect(err).To(MatchError(ContainSubstring("admin@laptop")))
	g.Expect(blobETags(t, container)).To(Equal(before))
}

// The scheduled maintenance takes each location of the Valid targets once,
// maintains the repositories of its own cluster there and never touches
// another cluster's, nor those of a target that is not Valid; kopia's
// schedule decides what is due, and each check is counted.
func TestMaintainerTakesOnlyTheClustersRepositories(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := newIdentity(t, true)
	container := newContainer(t, "maint")
	id.grant(t, container, blobproxy.StorageBlobDataContributor)
	// The identity may write anywhere in the container, so only the spoke's
	// own choice keeps it out of other clusters' repositories.
	client, err := blob.New(id.config(container, "team-a"), testOptions()...)
	g.Expect(err).NotTo(HaveOccurred())
	invalidClient, err := blob.New(id.config(container, "team-b"), testOptions()...)
	g.Expect(err).NotTo(HaveOccurred())
	for _, r := range []struct {
		blobs           *blob.Client
		prefix, cluster string
	}{{client, "team-a", "spoke-1"}, {client, "team-a", "spoke-2"}, {invalidClient, "team-b", "spoke-1"}} {
		rep, err := volumes.Open(ctx, r.blobs, r.cluster, "shop", volumes.Password(target("x", container, r.prefix, true), nil, r.cluster, "shop"))
		g.Expect(err).NotTo(HaveOccurred())
		s := backUp(t, ctx, rep, "data", func(dir string) { writeRandom(t, filepath.Join(dir, "data.bin"), 1<<20) })
		g.Expect(rep.Delete(ctx, s.ID)).To(Succeed())
		g.Expect(rep.Close(ctx)).To(Succeed())
	}
	mine := "team-a/lifeboat/v1/repositories/spoke-1/"
	untouched := map[string]string{}
	for name, etag := range blobETags(t, container) {
		if !strings.HasPrefix(name, mine) {
			untouched[name] = etag
		}
	}

	scheme := runtime.NewScheme()
	g.Expect(backupv1alpha1.AddToScheme(scheme)).To(Succeed())
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		target("b-shared", container, "team-a", true), target("a-shared", container, "team-a", true),
		target("c-invalid", container, "team-b", false),
	).Build()
	ctx = logr.NewContext(ctx, testr.New(t)) // the spoke's log lines, in the test's output
	m := &volumes.Maintainer{Client: kube, Targets: idTargets{id}, Cluster: "spoke-1", Interval: time.Hour, Safety: maintenance.SafetyNone}
	fullBefore := maintenanceCount(t, volumes.ResultFull)
	time.Sleep(1100 * time.Millisecond) // see TestMaintenanceFreesDeletedSnapshotData
	g.Expect(m.Pass(ctx)).To(ConsistOf(volumes.Outcome{StorageAccount: azurite.Account, Container: container,
		Repository: "lifeboat/v1/repositories/spoke-1/shop/", Result: volumes.ResultFull}), "one check per location")
	g.Expect(maintenanceCount(t, volumes.ResultFull)).To(Equal(fullBefore + 1))

	now := blobETags(t, container)
	for name, etag := range untouched {
		g.Expect(now).To(HaveKeyWithValue(name, etag), "another cluster's or an invalid target's blob is untouched")
	}
	g.Expect(now).To(HaveKey(mine+"shop/kopia.maintenance"), "the cluster's own repository has kopia's maintenance schedule")
	for name := range packs(t, container) {
		g.Expect(name).NotTo(HavePrefix(mine), "the cluster's deleted snapshot's data is gone")
	}

	t.Log("the next check finds nothing due: kopia's full cycle comes every 24 hours, the quick one every hour")
	g.Expect(m.Pass(ctx)).To(ConsistOf(HaveField("Result", volumes.ResultNotDue)))
}

// idTargets gives every BackupTarget a client of the test's identity for
// its container and prefix, and no encryption key.
type idTargets struct{ id identity }

func (i idTargets) Client(t *backupv1alpha1.BackupTarget) (*blob.Client, error) {
	return blob.New(i.id.config(t.Spec.Azure.Container, t.Spec.Azure.Prefix), testOptions()...)
}

func (idTargets) Key(context.Context, *backupv1alpha1.BackupTarget) (*age.X25519Identity, error) {
	return nil, nil
}

// target is a BackupTarget of Azurite's container and prefix, Valid or Invalid.
func target(name, container, prefix string, valid bool) *backupv1alpha1.BackupTarget {
	t := &backupv1alpha1.BackupTarget{}
	t.Name = name
	t.Spec.Azure = backupv1alpha1.AzureBlobLocation{StorageAccount: azurite.Account, Container: container, Prefix: prefix}
	t.Status.Phase = backupv1alpha1.TargetInvalid
	if valid {
		t.Status.Phase = backupv1alpha1.TargetValid
	}
	return t
}

// backUp writes a snapshot of a folder that fill fills, as source name of
// namespace shop on spoke-1.
func backUp(t *testing.T, ctx context.Context, rep *volumes.Repository, name string, fill func(dir string)) volumes.Snapshot {
	g := NewWithT(t)
	dir := t.TempDir()
	fill(dir)
	root, err := localfs.Directory(dir)
	g.Expect(err).NotTo(HaveOccurred())
	s, err := rep.Backup(ctx, volumes.Source("spoke-1", "shop", name), root, nil)
	g.Expect(err).NotTo(HaveOccurred())
	return s
}

func writeRandom(t *testing.T, path string, n int) {
	b := make([]byte, n)
	rand.Read(b)
	NewWithT(t).Expect(os.WriteFile(path, b, 0o644)).To(Succeed())
}

// packs are the sizes of the kopia data packs (blobs named p...) in the container.
func packs(t *testing.T, container string) map[string]int64 {
	out := map[string]int64{}
	for _, it := range blobItems(t, container) {
		if strings.HasPrefix(filepath.Base(*it.Name), "p") {
			out[*it.Name] = *it.Properties.ContentLength
		}
	}
	return out
}

func sum(sizes map[string]int64) int64 {
	var n int64
	for _, s := range sizes {
		n += s
	}
	return n
}

// blobETags maps every blob of the container to its ETag.
func blobETags(t *testing.T, container string) map[string]string {
	out := map[string]string{}
	for _, it := range blobItems(t, container) {
		out[*it.Name] = string(*it.Properties.ETag)
	}
	return out
}

// maintenanceCount is the spoke's count of maintenance checks with result.
func maintenanceCount(t *testing.T, result string) float64 {
	families, err := crmetrics.Registry.Gather()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != volumes.MaintenanceRuns {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabel(m, "result", result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
