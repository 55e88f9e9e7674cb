package backupcluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/addon"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

const timeout = 15 * time.Second

// A managed cluster's BackupCatalogs are bounded by a ResourceQuota in its
// namespace that its BackupCluster owns: quota+1 pages are refused.
func TestCatalogQuota(t *testing.T) {
	g := NewWithT(t)
	bc := createCluster(t, g, "quota-a", true)
	quota := &corev1.ResourceQuota{}
	g.Eventually(func() error {
		return hubClient.Get(context.Background(), client.ObjectKey{Namespace: "quota-a", Name: QuotaName}, quota)
	}).WithTimeout(timeout).Should(Succeed())
	g.Expect(metav1.GetControllerOf(quota)).To(HaveField("UID", bc.UID))
	g.Expect(quota.Labels).To(HaveKeyWithValue(LabelCluster, "quota-a"))
	g.Expect(quota.Spec.Hard).To(HaveKeyWithValue(corev1.ResourceName("count/backupcatalogs.fleet.lifeboat.dev"), resource.MustParse("3")))
	for i := 1; i <= catalogPages; i++ {
		// Until kube-controller-manager has counted the quota's usage, the quota refuses every page.
		g.Eventually(func() error {
			return hubClient.Create(context.Background(), catalog("quota-a", fmt.Sprintf("page-%d", i)))
		}).WithTimeout(time.Minute).Should(Succeed())
	}
	err := hubClient.Create(context.Background(), catalog("quota-a", "page-too-many"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "page quota+1: %v", err)
	g.Expect(err).To(MatchError(ContainSubstring("exceeded quota")))

	t.Log("a quota changed by hand is put back")
	g.Eventually(func() error {
		if err := hubClient.Get(context.Background(), client.ObjectKeyFromObject(quota), quota); err != nil {
			return err
		}
		quota.Spec.Hard[catalogPagesQuota] = resource.MustParse("1000")
		return hubClient.Update(context.Background(), quota)
	}).WithTimeout(timeout).Should(Succeed())
	g.Eventually(func() string {
		q := &corev1.ResourceQuota{}
		_ = hubClient.Get(context.Background(), client.ObjectKey{Namespace: "quota-a", Name: QuotaName}, q)
		v := q.Spec.Hard[catalogPagesQuota]
		return v.String()
	}).WithTimeout(timeout).Should(Equal("3"))
}

// The cluster's phase and its Available and HubAccess conditions follow its
// lifeboat ManagedClusterAddOn: Pending until the add-on is installed and
// Available, Online while it is, Offline once it is not or is gone.
func TestPhaseFromTheAddOn(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "addon-a", true)

	t.Log("no add-on: Pending, saying the placement does not select the cluster")
	g.Eventually(available("addon-a")).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Reason", fleetv1alpha1.ReasonAddOnNotInstalled)))
	g.Expect(clusterStatus("addon-a")().Phase).To(Equal(fleetv1alpha1.ClusterPending))
	g.Expect(hubAccess("addon-a")()).To(HaveField("Status", metav1.ConditionFalse))

	t.Log("installed, not yet reporting: Pending, waiting for the agent")
	mca := setAddOn(t, g, "addon-a", "")
	g.Eventually(available("addon-a")).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonWaitingForAgent))
	g.Expect(clusterStatus("addon-a")().Phase).To(Equal(fleetv1alpha1.ClusterPending))
	g.Expect(hubAccess("addon-a")()).To(HaveField("Status", metav1.ConditionUnknown))

	t.Log("Available and registered: Online, with hub access")
	setAddOn(t, g, "addon-a", metav1.ConditionTrue)
	g.Eventually(clusterStatus("addon-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOnline))
	g.Expect(available("addon-a")()).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fleetv1alpha1.ReasonAddOnAvailable)))
	g.Expect(hubAccess("addon-a")()).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fleetv1alpha1.ReasonHubAccessGranted)))

	t.Log("the Lease stopped: Offline, quoting the add-on")
	setAddOn(t, g, "addon-a", metav1.ConditionFalse)
	g.Eventually(clusterStatus("addon-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOffline))
	g.Expect(available("addon-a")()).To(And(HaveField("Reason", fleetv1alpha1.ReasonAddOnUnavailable),
		HaveField("Message", ContainSubstring("ManagedClusterAddOnLeaseUpdateStopped"))))

	t.Log("Unknown after having been Online (the cluster is unreachable): still Offline")
	setAddOn(t, g, "addon-a", metav1.ConditionUnknown)
	g.Eventually(available("addon-a")).WithTimeout(timeout).Should(HaveField("Status", metav1.ConditionFalse))
	g.Expect(clusterStatus("addon-a")().Phase).To(Equal(fleetv1alpha1.ClusterOffline))

	t.Log("Available again: Online; the add-on removed from the cluster: Offline, saying so")
	setAddOn(t, g, "addon-a", metav1.ConditionTrue)
	g.Eventually(clusterStatus("addon-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOnline))
	g.Expect(hubClient.Delete(context.Background(), mca)).To(Succeed())
	g.Eventually(clusterStatus("addon-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOffline))
	g.Expect(available("addon-a")()).To(HaveField("Reason", fleetv1alpha1.ReasonAddOnNotInstalled))
}

// An unmanaged cluster keeps discovery's phase; its Available condition says
// it is unmanaged, whatever its add-on reports.
func TestUnmanagedCluster(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "unmanaged-a", true)
	setAddOn(t, g, "unmanaged-a", metav1.ConditionTrue)
	g.Eventually(clusterStatus("unmanaged-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOnline))
	setManaged(g, "unmanaged-a", false, fleetv1alpha1.ClusterUnmanaged)
	g.Eventually(available("unmanaged-a")).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonClusterUnmanaged))
	setAddOn(t, g, "unmanaged-a", metav1.ConditionFalse)
	g.Consistently(clusterStatus("unmanaged-a")).WithTimeout(2 * time.Second).Should(HaveField("Phase", fleetv1alpha1.ClusterUnmanaged))
	setManaged(g, "unmanaged-a", true, fleetv1alpha1.ClusterPending)
	g.Eventually(available("unmanaged-a")).WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonAddOnUnavailable))
}

func TestReverseLinksToLocations(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "links-a", true)
	createCluster(t, g, "links-b", true)
	valid := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", Message: "ok",
		LastValidationTime: &metav1.Time{Time: time.Now().Truncate(time.Second)}}
	invalid := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: "AuthenticationFailed", Message: "AADSTS700211: no federated credential"}
	conn := func(cluster string, st backupv1alpha1.ValidationState) fleetv1alpha1.ClusterConnection {
		return fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: st}
	}

	t.Log("each location that has sent the cluster its BackupTarget, sorted by namespace and name")
	primary := createLocation(t, g, "links-x", "primary", conn("links-a", valid), conn("links-b", invalid))
	secondary := createLocation(t, g, "links-x", "secondary", conn("links-a", invalid))
	alpha := createLocation(t, g, "links-y", "alpha", conn("links-a", valid))
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: valid},
		{Namespace: "links-x", Name: "secondary", ValidationState: invalid},
		{Namespace: "links-y", Name: "alpha", ValidationState: valid},
	}))
	g.Eventually(locationsOf("links-b")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: invalid},
	}))

	t.Log("a changed connection is updated")
	setConnections(g, primary, conn("links-a", invalid), conn("links-b", valid))
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(ContainElement(
		fleetv1alpha1.LocationConnection{Namespace: "links-x", Name: "primary", ValidationState: invalid}))
	g.Eventually(locationsOf("links-b")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: valid},
	}))

	t.Log("a location whose work left the cluster drops out; its other clusters keep theirs")
	setConnections(g, alpha, conn("links-b", valid))
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(HaveLen(2))
	g.Expect(locationsOf("links-a")()).NotTo(ContainElement(HaveField("Name", "alpha")))
	g.Eventually(locationsOf("links-b")).WithTimeout(timeout).Should(ConsistOf(HaveField("Name", "primary"), HaveField("Name", "alpha")))

	t.Log("a deleted location drops out")
	g.Expect(hubClient.Delete(context.Background(), secondary)).To(Succeed())
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: invalid},
	}))
}

// A cluster the hub has sent a new location's BackupTarget to, and which has
// not reported on it, is not written into the BackupCluster: that saves one
// status write per cluster in a location's fan-out. Once listed, a connection
// is kept up to date, back to Pending too, so no stale state stays.
func TestPendingConnectionsWaitForTheCluster(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "pend-a", true)
	valid := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", Message: "ok"}
	pending := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetPending}
	conn := func(st backupv1alpha1.ValidationState) fleetv1alpha1.ClusterConnection {
		return fleetv1alpha1.ClusterConnection{Cluster: "pend-a", ValidationState: st}
	}
	createLocation(t, g, "pend-x", "first", conn(valid))
	g.Eventually(locationsOf("pend-a")).WithTimeout(timeout).Should(HaveLen(1))

	t.Log("a location the cluster has not reported on is not listed")
	second := createLocation(t, g, "pend-x", "second", conn(pending))
	g.Consistently(locationsOf("pend-a")).WithTimeout(3 * time.Second).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "pend-x", Name: "first", ValidationState: valid},
	}))

	t.Log("it is listed once the cluster reports")
	setConnections(g, second, conn(valid))
	g.Eventually(locationsOf("pend-a")).WithTimeout(timeout).Should(ContainElement(
		fleetv1alpha1.LocationConnection{Namespace: "pend-x", Name: "second", ValidationState: valid}))

	t.Log("a listed connection waiting for the cluster again (the location changed) shows it, not its earlier state")
	before := second.DeepCopy()
	second.Spec.ValidationInterval = &metav1.Duration{Duration: 2 * time.Hour}
	g.Expect(hubClient.Patch(context.Background(), second, client.MergeFrom(before))).To(Succeed())
	g.Expect(second.Generation).To(BeEquivalentTo(2))
	setConnections(g, second, conn(pending))
	g.Eventually(locationsOf("pend-a")).WithTimeout(timeout).Should(ContainElement(And(
		HaveField("Name", "second"), HaveField("Phase", backupv1alpha1.TargetPending), HaveField("Reason", locations.ReasonWaitingForCluster))))
}

// L5 of the security review: any tenant can make locations that select a
// cluster, and each connection's message may be 32 KiB. The fleet-level
// BackupCluster lists the first 100 by namespace and name with messages cut
// to 1024 characters, and counts the rest, instead of failing its status
// writes (a 1.5 MB object) and with them the cluster's phase.
func TestLocationsAreCappedAndCounted(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "many-a", true)
	long := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: "AuthenticationFailed", Message: strings.Repeat("é", 20000)}
	const n = fleetv1alpha1.MaxStatusLocations + 30
	for i := range n {
		createLocation(t, g, fmt.Sprintf("many-x%d", i%3), fmt.Sprintf("loc-%03d", i), fleetv1alpha1.ClusterConnection{Cluster: "many-a", ValidationState: long})
	}
	g.Eventually(clusterStatus("many-a")).WithTimeout(timeout).Should(HaveField("LocationsOmitted", BeEquivalentTo(30)))
	st := clusterStatus("many-a")()
	g.Expect(st.Locations).To(HaveLen(fleetv1alpha1.MaxStatusLocations))
	g.Expect(st.Locations[0]).To(And(HaveField("Namespace", "many-x0"), HaveField("Name", "loc-000")))
	g.Expect(st.Locations[len(st.Locations)-1].Namespace).To(Equal("many-x2"))
	for _, l := range st.Locations {
		g.Expect(utf8.RuneCountInString(l.Message)).To(Equal(fleetv1alpha1.MaxConnectionMessage))
		g.Expect(l.Message).To(HaveSuffix("é…"))
	}

	t.Log("the add-on's state still updates the status")
	setAddOn(t, g, "many-a", metav1.ConditionTrue)
	g.Eventually(clusterStatus("many-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOnline))
}

// createCluster creates a BackupCluster and its namespace, as discovery would.
func createCluster(t *testing.T, g *WithT, name string, managed bool) *fleetv1alpha1.BackupCluster {
	ctx := context.Background()
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: managed}}
	g.Expect(hubClient.Create(ctx, bc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, bc) })
	return bc
}

// setManaged sets spec.managed and the phase, as discovery does.
func setManaged(g *WithT, name string, managed bool, phase fleetv1alpha1.BackupClusterPhase) {
	ctx := context.Background()
	bc := &fleetv1alpha1.BackupCluster{}
	g.Expect(hubClient.Get(ctx, types.NamespacedName{Name: name}, bc)).To(Succeed())
	before := bc.DeepCopy()
	bc.Spec.Managed = managed
	g.Expect(hubClient.Patch(ctx, bc, client.MergeFrom(before))).To(Succeed())
	g.Eventually(func() error {
		g.Expect(hubClient.Get(ctx, types.NamespacedName{Name: name}, bc)).To(Succeed())
		before := bc.DeepCopy()
		bc.Status.Phase = phase
		return hubClient.Status().Patch(ctx, bc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	}).WithTimeout(timeout).Should(Succeed())
}

func catalog(namespace, name string) *fleetv1alpha1.BackupCatalog {
	ref := backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "x"}
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(namespace), Sync: &ref, Location: &ref, Page: 1, Final: true},
	}
}

func clusterStatus(name string) func() fleetv1alpha1.BackupClusterStatus {
	return func() fleetv1alpha1.BackupClusterStatus {
		bc := &fleetv1alpha1.BackupCluster{}
		if err := hubClient.Get(context.Background(), types.NamespacedName{Name: name}, bc); err != nil {
			return fleetv1alpha1.BackupClusterStatus{}
		}
		return bc.Status
	}
}

func available(cluster string) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(clusterStatus(cluster)().Conditions, fleetv1alpha1.ConditionAvailable)
	}
}

func locationsOf(cluster string) func() []fleetv1alpha1.LocationConnection {
	return func() []fleetv1alpha1.LocationConnection { return clusterStatus(cluster)().Locations }
}

func hubAccess(cluster string) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(clusterStatus(cluster)().Conditions, fleetv1alpha1.ConditionHubAccess)
	}
}

// setAddOn writes the cluster's lifeboat ManagedClusterAddOn as OCM keeps it:
// Available with status (none when empty), and, when True, the registration
// applied and the certificate issued.
func setAddOn(t *testing.T, g *WithT, cluster string, status metav1.ConditionStatus) *addonv1alpha1.ManagedClusterAddOn {
	ctx := context.Background()
	mca := &addonv1alpha1.ManagedClusterAddOn{ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: addon.Name}}
	if err := hubClient.Create(ctx, mca); err == nil {
		t.Cleanup(func() { _ = hubClient.Delete(ctx, mca) })
	} else {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
	g.Eventually(func() error {
		if err := hubClient.Get(ctx, client.ObjectKeyFromObject(mca), mca); err != nil {
			return err
		}
		mca.Status.Conditions = nil
		reasons := map[metav1.ConditionStatus]string{
			metav1.ConditionTrue:    "ManagedClusterAddOnLeaseUpdated",
			metav1.ConditionFalse:   "ManagedClusterAddOnLeaseUpdateStopped",
			metav1.ConditionUnknown: "ClusterUnreachable",
		}
		if status != "" {
			meta.SetStatusCondition(&mca.Status.Conditions, metav1.Condition{Type: addonv1alpha1.ManagedClusterAddOnConditionAvailable, Status: status,
				Reason: reasons[status], Message: "as OCM says"})
		}
		if status == metav1.ConditionTrue {
			meta.SetStatusCondition(&mca.Status.Conditions, metav1.Condition{Type: addonv1alpha1.ManagedClusterAddOnRegistrationApplied, Status: status, Reason: "SetPermissionApplied", Message: "ok"})
			meta.SetStatusCondition(&mca.Status.Conditions, metav1.Condition{Type: clusterCertificateRotated, Status: status, Reason: "ClientCertificateUpdated", Message: "valid until tomorrow"})
		}
		return hubClient.Status().Update(ctx, mca)
	}).WithTimeout(timeout).Should(Succeed())
	return mca
}

// createLocation creates a BackupLocation (and its namespace) and the
// connections of its clusters, as the work agents would report them.
func createLocation(t *testing.T, g *WithT, namespace, name string, conns ...fleetv1alpha1.ClusterConnection) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	if err := hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{StorageTarget: backupv1alpha1.StorageTarget{
			Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups", Prefix: namespace, Cloud: backupv1alpha1.AzurePublic},
			Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
		}},
	}
	for _, c := range conns {
		loc.Spec.Clusters = append(loc.Spec.Clusters, backupv1alpha1.ClusterName(c.Cluster))
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	setConnections(g, loc, conns...)
	return loc
}

func setConnections(g *WithT, loc *fleetv1alpha1.BackupLocation, conns ...fleetv1alpha1.ClusterConnection) {
	g.Expect(locationstest.SetConnections(context.Background(), hubClient, loc, conns...)).To(Succeed())
}
