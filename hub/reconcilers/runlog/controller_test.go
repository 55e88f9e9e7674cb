package runlog

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy/tenancytest"
)

const timeout = 20 * time.Second

func createNamespace(g *WithT, name string) {
	err := hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// backupOn is a finished Backup made on cluster into a location that is
// Valid on the clusters valid.
func backupOn(g *WithT, ns, name, cluster string, valid ...string) *fleetv1alpha1.Backup {
	ctx := context.Background()
	createNamespace(g, ns)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "loc-" + name},
		Spec: fleetv1alpha1.BackupLocationSpec{StorageTarget: backupv1alpha1.StorageTarget{
			Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups", Cloud: backupv1alpha1.AzurePublic},
			Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
		}},
	}
	for _, c := range valid {
		createNamespace(g, c)
		loc.Spec.Clusters = append(loc.Spec.Clusters, backupv1alpha1.ClusterName(c))
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	now := metav1.Now()
	loc.Status.ObservedGeneration = loc.Generation
	loc.Status.Phase = fleetv1alpha1.LocationValid
	loc.Status.SelectedClusters, loc.Status.ValidClusters = int32(len(valid)), int32(len(valid))
	for _, c := range valid {
		g.Expect(locationstest.SetConnection(ctx, hubClient, loc, c, backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", LastValidationTime: &now})).To(Succeed())
	}
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	b.Status.Phase = fleetv1alpha1.BackupSuccess
	b.Status.BackupID = "b-" + backupv1alpha1.BackupID(name)
	g.Expect(hubClient.Status().Update(ctx, b)).To(Succeed())
	return b
}

func newRunLog(g *WithT, ns, name string, kind backupv1alpha1.RunKind, of string, maxBytes int32) *fleetv1alpha1.RunLog {
	rl := &fleetv1alpha1.RunLog{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       fleetv1alpha1.RunLogSpec{Kind: kind, Name: backupv1alpha1.ObjectName(of), MaxBytes: maxBytes},
	}
	g.Expect(hubClient.Create(context.Background(), rl)).To(Succeed())
	return rl
}

func get(rl *fleetv1alpha1.RunLog) func() *fleetv1alpha1.RunLog {
	return func() *fleetv1alpha1.RunLog {
		cur := &fleetv1alpha1.RunLog{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(rl), cur); err != nil {
			return nil
		}
		return cur
	}
}

// spokeRunLog is the spoke RunLog in rl's work on cluster, once it is there.
func spokeRunLog(g *WithT, rl *fleetv1alpha1.RunLog, cluster string) *backupv1alpha1.RunLog {
	mw := &workv1.ManifestWork{}
	g.Eventually(func() error {
		return hubClient.Get(context.Background(), client.ObjectKey{Namespace: cluster, Name: dispatch.Name(Kind, rl.Namespace, rl.Name)}, mw)
	}).WithTimeout(timeout).Should(Succeed())
	spoke := &backupv1alpha1.RunLog{}
	g.Expect(json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, spoke)).To(Succeed())
	return spoke
}

// answer writes the log page the spoke would write for spoke on cluster.
func answer(g *WithT, rl *fleetv1alpha1.RunLog, spoke *backupv1alpha1.RunLog, cluster string, page fleetv1alpha1.LogPage) {
	page.RunLog = spoke.Spec.Hub
	g.Expect(hubClient.Create(context.Background(), &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: fleetv1alpha1.LogPageName(spoke.Name)},
		Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(cluster), Log: &page},
	})).To(Succeed())
}

func ready(rl *fleetv1alpha1.RunLog) *metav1.Condition {
	return meta.FindStatusCondition(rl.Status.Conditions, fleetv1alpha1.ConditionReady)
}

// A backup's log is asked of its source cluster; what the page says is
// copied into the status, cut to maxBytes even if the page holds more, and
// page and work are removed.
func TestBackupLogIsFetchedFromTheSourceCluster(t *testing.T) {
	g := NewWithT(t)
	b := backupOn(g, "team-logs", "nightly-1", "rl-src", "rl-a", "rl-src")
	rl := newRunLog(g, b.Namespace, "look", backupv1alpha1.RunBackup, b.Name, 10)
	spoke := spokeRunLog(g, rl, "rl-src")
	g.Expect(spoke.Spec.Kind).To(Equal(backupv1alpha1.RunBackup))
	g.Expect(spoke.Spec.Source).To(Equal(backupv1alpha1.BackupSource{Cluster: "rl-src", BackupID: b.Status.BackupID}))
	g.Expect(spoke.Spec.MaxBytes).To(BeEquivalentTo(10))
	g.Expect(spoke.Spec.Hub.UID).To(Equal(get(rl)().UID))

	answer(g, rl, spoke, "rl-src", fleetv1alpha1.LogPage{Text: strings.Repeat("x", 5) + "0123456789", SizeBytes: 15})
	g.Eventually(get(rl)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	st := get(rl)().Status
	g.Expect(st.Text).To(Equal("0123456789"))
	g.Expect(st.Truncated).To(BeTrue())
	g.Expect(st.Cluster).To(BeEquivalentTo("rl-src"))
	g.Eventually(func() bool {
		err := hubClient.Get(context.Background(), client.ObjectKey{Namespace: "rl-src", Name: fleetv1alpha1.LogPageName(spoke.Name)}, &fleetv1alpha1.BackupCatalog{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(timeout).Should(BeTrue(), "the page is removed")
	g.Eventually(func() bool {
		err := hubClient.Get(context.Background(), client.ObjectKey{Namespace: "rl-src", Name: dispatch.Name(Kind, rl.Namespace, rl.Name)}, &workv1.ManifestWork{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(timeout).Should(BeTrue(), "the work is removed")
}

// A restore's log is asked with the path the restore reported, of the
// cluster that restored; a spoke's refusal is the status's reason.
func TestRestoreLogNamesTheRestoresPath(t *testing.T) {
	g := NewWithT(t)
	b := backupOn(g, "team-logs", "nightly-2", "rl-src", "rl-src", "rl-dst")
	rs := &fleetv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: "back"}, Spec: fleetv1alpha1.RestoreSpec{Backup: backupv1alpha1.ObjectName(b.Name)}}
	g.Expect(hubClient.Create(context.Background(), rs)).To(Succeed())

	early := newRunLog(g, b.Namespace, "too-early", backupv1alpha1.RunRestore, rs.Name, 0)
	g.Eventually(get(early)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskFailed))
	g.Expect(ready(get(early)()).Message).To(ContainSubstring("has no log in the bucket"))

	rs.Status.Cluster = "rl-dst"
	rs.Status.Log = "lifeboat/v1/backups/rl-src/" + string(b.Status.BackupID) + "/restores/rl-dst/ns/r-u.jsonl.gz"
	g.Expect(hubClient.Status().Update(context.Background(), rs)).To(Succeed())
	rl := newRunLog(g, b.Namespace, "look-restore", backupv1alpha1.RunRestore, rs.Name, 0)
	spoke := spokeRunLog(g, rl, "rl-dst")
	g.Expect(spoke.Spec.RestoreLog).To(Equal(rs.Status.Log))
	g.Expect(spoke.Spec.MaxBytes).To(BeEquivalentTo(backupv1alpha1.DefaultRunLogBytes))
	answer(g, rl, spoke, "rl-dst", fleetv1alpha1.LogPage{Error: "there is no log at x in the bucket"})
	g.Eventually(get(rl)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskFailed))
	g.Expect(ready(get(rl)()).Message).To(ContainSubstring("there is no log at x"))
}

// A RunLog of a Backup that does not exist fails and sends nothing.
func TestMissingBackupFails(t *testing.T) {
	g := NewWithT(t)
	createNamespace(g, "team-logs")
	rl := newRunLog(g, "team-logs", "ghost", backupv1alpha1.RunBackup, "no-such-backup", 0)
	g.Eventually(get(rl)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskFailed))
	g.Expect(ready(get(rl)())).To(HaveField("Reason", fleetv1alpha1.ReasonBackupNotFound))
	g.Expect(get(rl)().Status.Cluster).To(BeEmpty())
}

// A tenant's RunLog is read only through a cluster bound to its namespace:
// with the location Valid only on another tenant's cluster it fails and
// sends nothing there.
func TestTenantMayNotUseAnotherTenantsCluster(t *testing.T) {
	g := NewWithT(t)
	ns := tenancytest.TenantPrefix + "logs"
	tenancytest.Bind(g, hubClient, ns, "rl-own-set", "rl-own")
	tenancytest.Bind(g, hubClient, "rl-neighbour", "rl-neighbour-set", "rl-theirs")
	b := backupOn(g, ns, "nightly-3", "rl-theirs", "rl-theirs")
	rl := newRunLog(g, ns, "look", backupv1alpha1.RunBackup, b.Name, 0)
	g.Eventually(get(rl)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskFailed))
	c := ready(get(rl)())
	g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonClusterNotAllowed))
	g.Expect(c.Message).To(ContainSubstring("rl-theirs"))
	works := &workv1.ManifestWorkList{}
	g.Expect(hubClient.List(context.Background(), works, client.InNamespace("rl-theirs"), client.MatchingLabels{dispatch.LabelKind: Kind})).To(Succeed())
	g.Expect(works.Items).To(BeEmpty(), "only the location's BackupTarget work is there")
}
