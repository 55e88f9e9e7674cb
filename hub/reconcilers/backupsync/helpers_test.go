package backupsync

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch/dispatchtest"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

const timeout = 20 * time.Second

func createNamespace(g *WithT, name string) {
	err := hubClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// newLocation is a location on account/container, Valid on cluster.
func newLocation(t *testing.T, g *WithT, namespace, name, account, container, cluster string) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	createNamespace(g, namespace)
	createNamespace(g, cluster)
	createNamespace(g, DefaultSystemNamespace)
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: account, Container: container, Prefix: namespace, Cloud: backupv1alpha1.AzurePublic},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
			},
			Clusters: []backupv1alpha1.ClusterName{backupv1alpha1.ClusterName(cluster)},
		},
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	now := metav1.Now()
	loc.Status.ObservedGeneration = loc.Generation
	loc.Status.Phase = fleetv1alpha1.LocationValid
	loc.Status.SelectedClusters, loc.Status.ValidClusters = 1, 1
	g.Expect(locationstest.SetConnection(ctx, hubClient, loc, cluster, backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", LastValidationTime: &now})).To(Succeed())
	g.Expect(hubClient.Status().Update(ctx, loc)).To(Succeed())
	return loc
}

func newSync(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, name string) *fleetv1alpha1.BackupSync {
	ctx := context.Background()
	s := &fleetv1alpha1.BackupSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: name},
		Spec:       fleetv1alpha1.BackupSyncSpec{Location: backupv1alpha1.ObjectName(loc.Name)},
	}
	g.Expect(hubClient.Create(ctx, s)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, s) })
	return s
}

// hubBackup is a finished hub Backup of loc with data at cluster/id.
func hubBackup(t *testing.T, g *WithT, loc *fleetv1alpha1.BackupLocation, name, cluster, id string, finishedAgo time.Duration) *fleetv1alpha1.Backup {
	ctx := context.Background()
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: loc.Namespace, Name: name},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc.Name)},
		},
	}
	g.Expect(hubClient.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, b) })
	done := metav1.NewTime(time.Now().Add(-finishedAgo))
	b.Status.Phase = fleetv1alpha1.BackupSuccess
	b.Status.Origin = fleetv1alpha1.OriginHub
	b.Status.BackupID = backupv1alpha1.BackupID(id)
	b.Status.CompletionTime = &done
	g.Expect(hubClient.Status().Update(ctx, b)).To(Succeed())
	return b
}

func getSync(s *fleetv1alpha1.BackupSync) func() *fleetv1alpha1.BackupSync {
	return func() *fleetv1alpha1.BackupSync {
		cur := &fleetv1alpha1.BackupSync{}
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return &fleetv1alpha1.BackupSync{}
		}
		s.UID = cur.UID
		return cur
	}
}

func getBackup(namespace, name string) func() *fleetv1alpha1.Backup {
	return func() *fleetv1alpha1.Backup {
		cur := &fleetv1alpha1.Backup{}
		if err := hubClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, cur); err != nil {
			return nil
		}
		return cur
	}
}

func workKey(s *fleetv1alpha1.BackupSync, cluster string) client.ObjectKey {
	return client.ObjectKey{Namespace: cluster, Name: dispatch.Name(Kind, s.Namespace, s.Name)}
}

func workExists(s *fleetv1alpha1.BackupSync, cluster string) func() bool {
	return func() bool {
		return hubClient.Get(context.Background(), workKey(s, cluster), &workv1.ManifestWork{}) == nil
	}
}

// importNamespace is the namespace of the Backups entry's backups were made for.
const importNamespace = "team-import"

// entry is a complete backup of cluster made for a hub Backup in importNamespace.
func entry(cluster, id string) fleetv1alpha1.BackupSummary {
	start, done := metav1.NewTime(time.Now().Add(-2*time.Hour).Truncate(time.Second)), metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	return fleetv1alpha1.BackupSummary{
		ID: backupv1alpha1.BackupID(id), SourceCluster: backupv1alpha1.ClusterName(cluster),
		Hub:   &backupv1alpha1.HubObjectReference{Namespace: importNamespace, Name: backupv1alpha1.ObjectName("nightly-" + id)},
		Phase: backupv1alpha1.ApplicationBackupSuccess, Items: 7, SizeBytes: 4096, StartTime: &start, CompletionTime: &done,
	}
}

// writePage writes catalog page n of sync s as cluster's spoke would.
func writePage(g *WithT, s *fleetv1alpha1.BackupSync, cluster, location string, n int32, final bool, entries ...fleetv1alpha1.BackupSummary) {
	writePageWith(g, s, cluster, location, n, final, nil, entries...)
}

// writePageWith writes a page that edit changes first.
func writePageWith(g *WithT, s *fleetv1alpha1.BackupSync, cluster, location string, n int32, final bool,
	edit func(*fleetv1alpha1.BackupCatalogSpec), entries ...fleetv1alpha1.BackupSummary) {
	page := &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cluster,
			Name:      SpokeName(s.Namespace, s.Name) + "-p" + strconv.Itoa(int(n)),
			Labels:    map[string]string{fleetv1alpha1.LabelSyncUID: string(s.UID)},
		},
		Spec: fleetv1alpha1.BackupCatalogSpec{
			Cluster:  backupv1alpha1.ClusterName(cluster),
			Sync:     &backupv1alpha1.HubObjectReference{Namespace: backupv1alpha1.NamespaceName(s.Namespace), Name: backupv1alpha1.ObjectName(s.Name), UID: s.UID},
			Location: &backupv1alpha1.HubObjectReference{Namespace: backupv1alpha1.NamespaceName(s.Namespace), Name: backupv1alpha1.ObjectName(location)},
			Page:     n, Final: final, Entries: entries,
		},
	}
	if edit != nil {
		edit(&page.Spec)
	}
	g.Expect(hubClient.Create(context.Background(), page)).To(Succeed())
}

// spokeReports writes what the work agent would feed back for s's spoke
// BackupSync on cluster.
func spokeReports(g *WithT, s *fleetv1alpha1.BackupSync, cluster string, phase backupv1alpha1.TaskPhase, found, pages int64) {
	dispatchtest.Report(g, hubClient, workKey(s, cluster), 1, 1, dispatchtest.Values(map[string]any{
		"observedGeneration": int64(1), "phase": string(phase), "found": found, "pages": pages,
		"readyReason": "Succeeded", "readyMessage": "listed",
	}), timeout)
}

func leaseHolder(account, container string) string {
	l := &coordinationv1.Lease{}
	if err := hubClient.Get(context.Background(), client.ObjectKey{Namespace: DefaultSystemNamespace, Name: LeaseName(account, container)}, l); err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}
