package backupsync

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

// importedLookalike creates, as a tenant could, a Backup with the name,
// labels and spec that importing backup id of cluster into loc would give,
// with annotations.
func importedLookalike(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, cluster, id string, annotations map[string]string) *fleetv1alpha1.Backup {
	ctx := context.Background()
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: loc.Namespace, Name: ImportName(cluster, id), Annotations: annotations,
			Labels: map[string]string{fleetv1alpha1.SyncOriginLabel: fleetv1alpha1.SyncOriginValue, LabelSourceCluster: cluster},
		},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, b) })
	return b
}

func TestSyncAdoptsOnlyBackupsItCreated(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, importNamespace, "adopt", "acctadopt", "backups", "spoke-ad1")
	s := newSync(t, g, loc, "adopt")
	g.Eventually(workExists(s, "spoke-ad1")).WithTimeout(timeout).Should(BeTrue())
	g.Eventually(getSync(s)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskInProgress))

	t.Log("a Backup with an import's name and labels that no sync created, and one this sync created before it was interrupted")
	stranger := importedLookalike(t, g, loc, "other-hub-ad", "planted", nil)
	interrupted := importedLookalike(t, g, loc, "other-hub-ad", "resumed", map[string]string{fleetv1alpha1.ImportedByAnnotation: string(s.UID)})

	writePage(g, s, "spoke-ad1", "adopt", 0, true, entry("other-hub-ad", "planted"), entry("other-hub-ad", "resumed"))
	spokeReports(g, s, "spoke-ad1", backupv1alpha1.TaskCompleted, 2, 1)
	g.Eventually(getSync(s)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	st := getSync(s)().Status
	g.Expect(st.Imported).To(BeEquivalentTo(1), "resumed")
	g.Expect(st.Rejected).To(BeEquivalentTo(1), "planted")
	c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionCompleted)
	g.Expect(c).To(HaveField("Reason", fleetv1alpha1.ReasonSyncConflict))
	g.Expect(c.Message).To(ContainSubstring("Backup " + stranger.Name + " already exists and was not created by this sync"))

	g.Expect(getBackup(importNamespace, stranger.Name)().Status).To(And(
		HaveField("Phase", fleetv1alpha1.BackupPhase("")), HaveField("BackupResult.BackupID", BeEmpty())), "not adopted")
	g.Expect(getBackup(importNamespace, interrupted.Name)().Status).To(And(
		HaveField("Phase", fleetv1alpha1.BackupSuccess), HaveField("BackupResult.BackupID", BeEquivalentTo("resumed"))), "the sync's own Backup gets its status")
}

func TestOneClustersListingMarksOnlyItsOwnBackupsMissing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocation(t, g, importNamespace, "two", "accttwo", "backups", "spoke-m1")
	createNamespace(g, "spoke-m2")
	g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc)).To(Succeed())
	loc.Spec.Clusters = append(loc.Spec.Clusters, "spoke-m2")
	g.Expect(hubClient.Update(ctx, loc)).To(Succeed())
	now := metav1.Now()
	loc.Status.ObservedGeneration = loc.Generation
	loc.Status.SelectedClusters, loc.Status.ValidClusters = 2, 2
	for _, c := range []string{"spoke-m1", "spoke-m2"} {
		g.Expect(locationstest.SetConnection(ctx, hubClient, loc, c, backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", LastValidationTime: &now})).To(Succeed())
	}
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())

	own := hubBackup(t, g, loc, "own", "spoke-m1", "own-id", time.Hour)
	others := hubBackup(t, g, loc, "others", "spoke-m2", "others-id", time.Hour)

	t.Log("spoke-m1, first by name, lists nothing")
	s := newSync(t, g, loc, "empty")
	g.Eventually(workExists(s, "spoke-m1")).WithTimeout(timeout).Should(BeTrue())
	getSync(s)()
	writePage(g, s, "spoke-m1", "two", 0, true)
	spokeReports(g, s, "spoke-m1", backupv1alpha1.TaskCompleted, 0, 1)
	g.Eventually(getSync(s)).WithTimeout(timeout).Should(HaveField("Status.Phase", backupv1alpha1.TaskCompleted))
	st := getSync(s)().Status
	g.Expect(st.Missing).To(BeEquivalentTo(1), "own-id")
	g.Expect(meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionCompleted).Message).To(
		ContainSubstring("1 Backups of other clusters were not listed and were left as they are"))

	g.Expect(getBackup(importNamespace, others.Name)().Status.Phase).To(Equal(fleetv1alpha1.BackupSuccess), "spoke-m1's listing is no evidence about spoke-m2's backups")
	b := getBackup(importNamespace, own.Name)()
	g.Expect(b.Status.Phase).To(Equal(fleetv1alpha1.BackupCloudBackupMissing))
	g.Expect(meta.FindStatusCondition(b.Status.Conditions, fleetv1alpha1.ConditionReady).Message).To(
		ContainSubstring("listed by cluster spoke-m1, the backup's source cluster, whose connection to the location is Valid"))
}
