package apis_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
)

// k8sClient talks to a real kube-apiserver that serves the generated CRDs.
var k8sClient client.Client

func TestMain(m *testing.M) {
	os.Exit(runWithAPIServer(m))
}

// runWithAPIServer starts etcd and kube-apiserver once, installs both groups'
// CRDs as the charts ship them, and runs the tests. Missing binaries fail the run.
func runWithAPIServer(m *testing.M) int {
	dir, err := assets.EnvtestDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: kube-apiserver and etcd are needed:", err)
		return 1
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths: []string{
			filepath.Join("..", "charts", "lifeboat-hub", "crds"),
			filepath.Join("..", "charts", "lifeboat-spoke", "crds"),
		},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting kube-apiserver with the CRDs:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping kube-apiserver:", err)
		}
	}()

	scheme := runtime.NewScheme()
	if err := fleetv1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	if err := backupv1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: creating a client:", err)
		return 1
	}
	return m.Run()
}

const namespace = "default"

// guid is a well-formed client and tenant ID.
const guid = "6f1c2a4e-8b3d-4c5e-9f7a-0b1c2d3e4f50"

// Minimal valid objects of every kind; the tables below break one thing in a copy.

func storage() backupv1alpha1.StorageTarget {
	return backupv1alpha1.StorageTarget{
		Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboatbackups", Container: "fleet-backups"},
		Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: guid, TenantID: guid},
	}
}

func clusterDiscovery() *fleetv1alpha1.ClusterDiscovery {
	return &fleetv1alpha1.ClusterDiscovery{Spec: fleetv1alpha1.ClusterDiscoverySpec{
		Gardener: fleetv1alpha1.GardenerSource{KubeconfigSecretRef: fleetv1alpha1.SecretKeyReference{
			Namespace: "lifeboat-system", Name: "garden-kubeconfig",
		}},
	}}
}

func backupCluster() *fleetv1alpha1.BackupCluster {
	return &fleetv1alpha1.BackupCluster{Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
}

func location() *fleetv1alpha1.BackupLocation {
	return &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: storage(),
			Clusters:      []backupv1alpha1.ClusterName{"shoot-a"},
		},
	}
}

func backup() *fleetv1alpha1.Backup {
	return &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        "shoot-a",
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: "blob"},
		},
	}
}

func restore() *fleetv1alpha1.Restore {
	return &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec:       fleetv1alpha1.RestoreSpec{Backup: "nightly-shoot-a"},
	}
}

func schedulePolicy() *fleetv1alpha1.SchedulePolicy {
	return &fleetv1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec:       fleetv1alpha1.SchedulePolicySpec{Cron: "0 2 * * *"},
	}
}

func backupSchedule() *fleetv1alpha1.BackupSchedule {
	return &fleetv1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: fleetv1alpha1.BackupScheduleSpec{
			Policy:          "nightly",
			ClusterSelector: &metav1.LabelSelector{},
			Template:        fleetv1alpha1.BackupTemplate{Location: "blob"},
		},
	}
}

func execAction() backupv1alpha1.ExecAction {
	return backupv1alpha1.ExecAction{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "postgres"}},
		Command:     []string{"/bin/sh", "-c", "psql -c CHECKPOINT"},
	}
}

func execRule() *fleetv1alpha1.ExecRule {
	return &fleetv1alpha1.ExecRule{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec:       fleetv1alpha1.ExecRuleSpec{Actions: []backupv1alpha1.ExecAction{execAction()}},
	}
}

func hubSync() *fleetv1alpha1.BackupSync {
	return &fleetv1alpha1.BackupSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec:       fleetv1alpha1.BackupSyncSpec{Location: "blob"},
	}
}

func catalog() *fleetv1alpha1.BackupCatalog {
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: fleetv1alpha1.BackupCatalogSpec{
			Cluster:  "shoot-a",
			Sync:     &backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "sync-1"},
			Location: &backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "blob"},
			Entries: []fleetv1alpha1.BackupSummary{{
				ID: "team-a-nightly-0001", SourceCluster: "shoot-a",
				Hub:   &backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "nightly"},
				Phase: backupv1alpha1.ApplicationBackupSuccess, Items: 120, SizeBytes: 1 << 20,
			}},
		},
	}
}

func inventory() *fleetv1alpha1.BackupCatalog {
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fleetv1alpha1.InventoryPageName},
		Spec: fleetv1alpha1.BackupCatalogSpec{
			Cluster: "shoot-a",
			Inventory: &fleetv1alpha1.NamespaceInventory{
				Namespaces:   []fleetv1alpha1.InventoryNamespaceName{"default", "team-a"},
				ObservedTime: metav1.Now(),
			},
		},
	}
}

func target() *backupv1alpha1.BackupTarget {
	return &backupv1alpha1.BackupTarget{Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: storage()}}
}

func appBackup() *backupv1alpha1.ApplicationBackup {
	return &backupv1alpha1.ApplicationBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec:       backupv1alpha1.ApplicationBackupSpec{Target: "team-a-blob"},
	}
}

func appRestore() *backupv1alpha1.ApplicationRestore {
	return &backupv1alpha1.ApplicationRestore{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: backupv1alpha1.ApplicationRestoreSpec{
			Target: "team-a-blob",
			Source: backupv1alpha1.BackupSource{Cluster: "shoot-a", BackupID: "team-a-nightly-0001"},
		},
	}
}

func spokeSync() *backupv1alpha1.BackupSync {
	return &backupv1alpha1.BackupSync{Spec: backupv1alpha1.BackupSyncSpec{
		Target: "team-a-blob",
		Hub:    backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "sync-1"},
	}}
}

func deletion() *backupv1alpha1.BackupDeletion {
	return &backupv1alpha1.BackupDeletion{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: backupv1alpha1.BackupDeletionSpec{
			Target: "team-a-blob",
			Source: backupv1alpha1.BackupSource{Cluster: "shoot-a", BackupID: "team-a-nightly-0001"},
		},
	}
}

// moverSettings sets every mover setting.
func moverSettings() *backupv1alpha1.MoverSettings {
	return &backupv1alpha1.MoverSettings{
		Resources: &backupv1alpha1.MoverResources{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
		},
		NodeSelector: map[string]backupv1alpha1.LabelValue{"topology.kubernetes.io/zone": "eu-west-1a", "backup": "yes"},
		Tolerations: []backupv1alpha1.MoverToleration{
			{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "backup", Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)},
		},
		PriorityClassName: "backup-low",
	}
}

// movers returns a location with mover settings that change has broken.
func movers(change func(*backupv1alpha1.MoverSettings)) *fleetv1alpha1.BackupLocation {
	return with(location(), func(l *fleetv1alpha1.BackupLocation) {
		l.Spec.MoverSettings = moverSettings()
		change(l.Spec.MoverSettings)
	})
}

// with returns obj after change has broken (or changed) it.
func with[T client.Object](obj T, change func(T)) T {
	change(obj)
	return obj
}

func duration(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err) // text Go cannot parse goes through TestUnparsableDurationsAreRejected
	}
	return &metav1.Duration{Duration: d}
}

func TestValidObjectsAreAccepted(t *testing.T) {
	objects := []client.Object{
		clusterDiscovery(), backupCluster(), location(), backup(), restore(), schedulePolicy(),
		backupSchedule(), execRule(), hubSync(), catalog(), inventory(),
		target(), appBackup(), appRestore(), spokeSync(), deletion(),
		with(target(), func(t *backupv1alpha1.BackupTarget) {
			t.Name = "encrypted"
			t.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: "lifeboat.backup-key", Key: "key.txt"}}
		}),
		with(location(), func(l *fleetv1alpha1.BackupLocation) {
			l.Name = "movers"
			l.Spec.MoverSettings = moverSettings()
		}),
		with(target(), func(t *backupv1alpha1.BackupTarget) {
			t.Name = "movers"
			t.Spec.MoverSettings = moverSettings()
			t.Spec.MoverSettings.Tolerations = append(t.Spec.MoverSettings.Tolerations, backupv1alpha1.MoverToleration{Operator: corev1.TolerationOpExists})
		}),
	}
	for _, obj := range objects {
		t.Run(fmt.Sprintf("%T %s", obj, obj.GetName()), func(t *testing.T) {
			g := NewWithT(t)
			if obj.GetName() == "" {
				obj.SetName("good")
			}
			g.Expect(k8sClient.Create(context.Background(), obj)).To(Succeed())
		})
	}
}

// An endpoint is the account's own URL in an Azure cloud, or a private
// endpoint that names the account; nothing that points at another account.
func TestEndpointNamesTheStorageAccount(t *testing.T) {
	const wantMessage = "endpoint must be https://<storageAccount>.blob.core.windows.net"
	for i, tc := range []struct {
		endpoint string
		want     string // empty: accepted
	}{
		{"https://lifeboatbackups.blob.core.windows.net", ""},
		{"https://lifeboatbackups.blob.core.windows.net/", ""},
		{"https://lifeboatbackups.blob.core.chinacloudapi.cn", ""},
		{"https://lifeboatbackups.blob.core.usgovcloudapi.net/", ""},
		{"https://lifeboatbackups.blob.private.example", ""},
		{"https://10.0.0.5:10000/lifeboatbackups", ""},
		{"https://10.0.0.5:10000/lifeboatbackups/", ""},

		{"https://otheraccount.blob.core.windows.net", wantMessage},
		{"https://otheraccount.blob.core.windows.net/lifeboatbackups", wantMessage},
		{"https://LIFEBOATBACKUPS.BLOB.CORE.WINDOWS.NET/lifeboatbackups", wantMessage},
		{"https://lifeboatbackups.blob.core.windows.net/container", wantMessage},
		{"https://lifeboatbackups.blob.core.windows.net:8443", wantMessage},
		{"https://lifeboatbackups.dfs.core.windows.net", wantMessage},
		{"https://evil.example", wantMessage},
		{"https://evil.example/otheraccount", wantMessage},
		{"https://10.0.0.5:10000/lifeboatbackups/more", wantMessage},
		{"https://lifeboatbackups@evil.example", "without credentials, query or fragment"},
		{"https://10.0.0.5/lifeboatbackups?sig=x", "without credentials, query or fragment"},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			g := NewWithT(t)
			loc := with(location(), func(l *fleetv1alpha1.BackupLocation) {
				l.Name = fmt.Sprintf("endpoint-%02d", i)
				l.Spec.Azure.Endpoint = tc.endpoint
			})
			tgt := with(target(), func(bt *backupv1alpha1.BackupTarget) {
				bt.Name = fmt.Sprintf("endpoint-%02d", i)
				bt.Spec.Azure.Endpoint = tc.endpoint
			})
			for _, obj := range []client.Object{loc, tgt} {
				err := k8sClient.Create(context.Background(), obj)
				if tc.want == "" {
					g.Expect(err).NotTo(HaveOccurred())
					continue
				}
				g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got: %v", err)
				g.Expect(err.Error()).To(ContainSubstring(tc.want))
				g.Expect(err.Error()).NotTo(ContainSubstring("evaluating rule"))
			}
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	loc := with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Name = "defaults" })
	g.Expect(k8sClient.Create(ctx, loc)).To(Succeed())
	g.Expect(loc.Spec.Azure.Cloud).To(Equal(backupv1alpha1.AzurePublic))
	g.Expect(loc.Spec.ValidationInterval).To(Equal(duration("1h")))

	rule := with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Name = "defaults" })
	g.Expect(k8sClient.Create(ctx, rule)).To(Succeed())
	action := rule.Spec.Actions[0]
	g.Expect(action.OnError).To(Equal(backupv1alpha1.ExecErrorFail))
	g.Expect(action.Pods).To(Equal(backupv1alpha1.ExecInAllPods))
	g.Expect(action.Timeout).To(Equal(duration("30s")))

	rst := with(restore(), func(r *fleetv1alpha1.Restore) { r.Name = "defaults" })
	g.Expect(k8sClient.Create(ctx, rst)).To(Succeed())
	g.Expect(rst.Spec.ExistingResourcePolicy).To(Equal(backupv1alpha1.ExistingResourceSkip))

	// A backup takes its volumes' data unless it says Skip.
	b := with(backup(), func(b *fleetv1alpha1.Backup) { b.Name = "defaults" })
	g.Expect(k8sClient.Create(ctx, b)).To(Succeed())
	g.Expect(b.Spec.Volumes).To(Equal(backupv1alpha1.VolumesData))
	s := with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Name = "defaults" })
	g.Expect(k8sClient.Create(ctx, s)).To(Succeed())
	g.Expect(s.Spec.Template.Volumes).To(Equal(backupv1alpha1.VolumesData))
	ab := with(appBackup(), func(b *backupv1alpha1.ApplicationBackup) { b.Name = "defaults" })
	g.Expect(k8sClient.Create(ctx, ab)).To(Succeed())
	g.Expect(ab.Spec.Volumes).To(Equal(backupv1alpha1.VolumesData))
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	cases := []struct {
		name string
		obj  client.Object
		want string
	}{
		// BackupLocation: Azure names, identity, clusters, intervals.
		{"location storage account with capitals and underscore",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.StorageAccount = "My_Account" }),
			"storageAccount must be 3-24 lowercase letters and digits"},
		{"location storage account too short",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.StorageAccount = "ab" }),
			"storageAccount must be 3-24 lowercase letters and digits"},
		{"location empty container",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Container = "" }),
			"container must not be empty"},
		{"location container with double hyphen",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Container = "fleet--backups" }),
			"container must be 3-63 lowercase letters, digits and single hyphens"},
		{"location container starting with a hyphen",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Container = "-backups" }),
			"container must be 3-63 lowercase letters, digits and single hyphens"},
		{"location prefix with leading slash",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Prefix = "/clusters/prod" }),
			"prefix must be a relative path: remove the leading '/'"},
		{"location prefix climbing out with ..",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Prefix = "clusters/../other" }),
			"prefix must not contain '.' or '..' path segments"},
		{"location prefix inside another location's data",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Prefix = "team/lifeboat/v1/backups/shoot-a" }),
			"prefix must not contain a 'lifeboat' path segment: Lifeboat keeps its data under <prefix>/lifeboat/"},
		{"location endpoint over plain http",
			with(location(), func(l *fleetv1alpha1.BackupLocation) {
				l.Spec.Azure.Endpoint = "http://lifeboatbackups.blob.core.windows.net"
			}),
			"endpoint must be an https URL"},
		{"location cloud unknown",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Azure.Cloud = "AzureGermany" }),
			`supported values: "AzurePublic", "AzureChina", "AzureUSGovernment"`},
		{"location encryption key Secret named with capitals",
			with(location(), func(l *fleetv1alpha1.BackupLocation) {
				l.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: "Backup_Key", Key: "key.txt"}}
			}),
			"name must be a Secret name"},
		{"location encryption key without a key",
			with(location(), func(l *fleetv1alpha1.BackupLocation) {
				l.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: "backup-key"}}
			}),
			"key must be a Secret data key"},
		{"target encryption key with a slash",
			with(target(), func(t *backupv1alpha1.BackupTarget) {
				t.Spec.Encryption = &backupv1alpha1.Encryption{KeySecretRef: backupv1alpha1.SecretKeyReference{Name: "backup-key", Key: "../key"}}
			}),
			"key must be a Secret data key"},
		{"mover request above its limit",
			movers(func(m *backupv1alpha1.MoverSettings) {
				m.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("2Gi")
			}),
			"each request must be at most its limit"},
		{"mover resource other than cpu, memory and ephemeral-storage",
			movers(func(m *backupv1alpha1.MoverSettings) { m.Resources.Limits["nvidia.com/gpu"] = resource.MustParse("1") }),
			"resources may name only cpu, memory and ephemeral-storage"},
		{"mover node selector key with a space",
			movers(func(m *backupv1alpha1.MoverSettings) { m.NodeSelector["node pool"] = "backup" }),
			"nodeSelector keys must be label keys"},
		{"mover node selector value starting with a hyphen",
			movers(func(m *backupv1alpha1.MoverSettings) { m.NodeSelector["pool"] = "-backup" }),
			"nodeSelector values must be label values"},
		{"mover node selector with too many entries",
			movers(func(m *backupv1alpha1.MoverSettings) {
				for i := range 17 {
					m.NodeSelector[fmt.Sprintf("label-%d", i)] = "x"
				}
			}),
			"must have at most 16 items"},
		{"mover toleration Exists with a value",
			movers(func(m *backupv1alpha1.MoverSettings) {
				m.Tolerations[0].Operator = corev1.TolerationOpExists
			}),
			"a toleration with operator Exists has no value"},
		{"mover toleration without a key that is not Exists",
			movers(func(m *backupv1alpha1.MoverSettings) { m.Tolerations[0].Key = "" }),
			"a toleration without a key must have operator Exists"},
		{"mover toleration with an unknown effect",
			movers(func(m *backupv1alpha1.MoverSettings) { m.Tolerations[0].Effect = "NoWay" }),
			`supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`},
		{"mover tolerationSeconds without NoExecute",
			movers(func(m *backupv1alpha1.MoverSettings) { m.Tolerations[0].TolerationSeconds = ptr.To[int64](5) }),
			"tolerationSeconds is only for effect NoExecute"},
		{"mover priority class of the system",
			movers(func(m *backupv1alpha1.MoverSettings) { m.PriorityClassName = "system-node-critical" }),
			"priorityClassName must not be a system- class"},
		{"mover priority class with capitals",
			movers(func(m *backupv1alpha1.MoverSettings) { m.PriorityClassName = "Backup_Low" }),
			"priorityClassName must be a PriorityClass name"},
		{"location clientID not a GUID",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Identity.ClientID = "lifeboat-spoke" }),
			"clientID must be a GUID"},
		{"location tenantID not a GUID",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Identity.TenantID = "contoso.onmicrosoft.com" }),
			"tenantID must be a GUID"},
		{"location without clusters or selector",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Clusters = nil }),
			"set clusters, clusterSelector or placementRef: a location must say which clusters may use it"},
		{"location cluster name with capitals",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.Clusters = []backupv1alpha1.ClusterName{"Prod_A"} }),
			"must be a cluster name"},
		{"location validation interval too short",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.ValidationInterval = duration("10s") }),
			"validationInterval must be between 1m and 168h"},
		{"location sync interval too long",
			with(location(), func(l *fleetv1alpha1.BackupLocation) { l.Spec.SyncInterval = duration("200h") }),
			"syncInterval must be between 5m and 168h"},

		// Backup: names, ttl, selection.
		{"backup cluster name with a dot",
			with(backup(), func(b *fleetv1alpha1.Backup) { b.Spec.Cluster = "shoot.a" }),
			"must be a cluster name"},
		{"backup without location",
			with(backup(), func(b *fleetv1alpha1.Backup) { b.Spec.Location = "" }),
			"must be an object name"},
		{"backup ttl below an hour",
			with(backup(), func(b *fleetv1alpha1.Backup) { b.Spec.TTL = duration("5m") }),
			"ttl must be between 1h and 87600h"},
		{"backup timeout below a minute",
			with(backup(), func(b *fleetv1alpha1.Backup) { b.Spec.Timeout = duration("10s") }),
			"timeout must be between 1m and 168h"},
		{"schedule template timeout above a week",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.Template.Timeout = duration("200h") }),
			"timeout must be between 1m and 168h"},
		{"schedule concurrency policy unknown",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.ConcurrencyPolicy = "Queue" }),
			`supported values: "Allow", "Forbid", "Replace"`},
		{"schedule starting deadline under a minute",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.StartingDeadline = duration("30s") }),
			"startingDeadline must be between 1m and 8760h"},
		{"schedule successful history limit zero",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { zero := int32(0); s.Spec.SuccessfulHistoryLimit = &zero }),
			"should be greater than or equal to 1"},
		{"schedule retry without attempts",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.Retry = &fleetv1alpha1.RetryPolicy{MaxRetry: 0} }),
			"should be greater than or equal to 1"},
		{"schedule retry delay under a minute",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) {
				s.Spec.Retry = &fleetv1alpha1.RetryPolicy{MaxRetry: 3, Delay: duration("30s")}
			}),
			"delay must be between 1m and 24h"},
		{"schedule retry with failed history limit zero",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) {
				zero := int32(0)
				s.Spec.Retry, s.Spec.FailedHistoryLimit = &fleetv1alpha1.RetryPolicy{MaxRetry: 3}, &zero
			}),
			"failedHistoryLimit must be at least 1 with retry"},
		{"schedule failed history limit negative",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { neg := int32(-1); s.Spec.FailedHistoryLimit = &neg }),
			"should be greater than or equal to 0"},
		{"backup namespace both included and excluded",
			with(backup(), func(b *fleetv1alpha1.Backup) {
				b.Spec.Selection = &backupv1alpha1.ResourceSelection{
					IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop", "payments"},
					ExcludedNamespaces: []backupv1alpha1.NamespaceName{"shop"},
				}
			}),
			"a namespace cannot be both included and excluded"},
		{"backup resource both included and excluded",
			with(backup(), func(b *fleetv1alpha1.Backup) {
				b.Spec.Selection = &backupv1alpha1.ResourceSelection{
					IncludedResources: []backupv1alpha1.GroupResource{"secrets", "deployments.apps"},
					ExcludedResources: []backupv1alpha1.GroupResource{"secrets"},
				}
			}),
			"a resource cannot be both included and excluded"},
		{"backup resource that is not a resource name",
			with(backup(), func(b *fleetv1alpha1.Backup) {
				b.Spec.Selection = &backupv1alpha1.ResourceSelection{IncludedResources: []backupv1alpha1.GroupResource{"Deployment"}}
			}),
			"must be a resource such as configmaps or deployments.apps"},
		{"backup unknown cluster-scoped policy",
			with(backup(), func(b *fleetv1alpha1.Backup) {
				b.Spec.Selection = &backupv1alpha1.ResourceSelection{ClusterScopedResources: "Some"}
			}),
			`supported values: "Auto", "Include", "Exclude"`},

		// Restore: namespace mapping and policy.
		{"restore mapping key not a namespace name",
			with(restore(), func(r *fleetv1alpha1.Restore) {
				r.Spec.NamespaceMapping = backupv1alpha1.NamespaceMapping{"Shop": "shop-copy"}
			}),
			"namespaceMapping keys must be namespace names"},
		{"restore mapping value not a namespace name",
			with(restore(), func(r *fleetv1alpha1.Restore) {
				r.Spec.NamespaceMapping = backupv1alpha1.NamespaceMapping{"shop": "shop_copy"}
			}),
			"must be a namespace name"},
		{"restore storage class mapping key not a StorageClass name",
			with(restore(), func(r *fleetv1alpha1.Restore) {
				r.Spec.StorageClassMappings = backupv1alpha1.StorageClassMapping{"Premium_LRS": "managed-csi"}
			}),
			"storageClassMappings keys must be StorageClass names"},
		{"restore storage class mapping value not a StorageClass name",
			with(restore(), func(r *fleetv1alpha1.Restore) {
				r.Spec.StorageClassMappings = backupv1alpha1.StorageClassMapping{"premium-lrs": "Managed CSI"}
			}),
			"must be an object name"},
		{"application restore storage class mapping key not a StorageClass name",
			with(appRestore(), func(r *backupv1alpha1.ApplicationRestore) {
				r.Spec.StorageClassMappings = backupv1alpha1.StorageClassMapping{"-premium": "managed-csi"}
			}),
			"storageClassMappings keys must be StorageClass names"},
		{"backup unknown volumes policy",
			with(backup(), func(b *fleetv1alpha1.Backup) { b.Spec.Volumes = "Snapshot" }),
			`supported values: "Data", "Skip"`},
		{"schedule template unknown volumes policy",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.Template.Volumes = "None" }),
			`supported values: "Data", "Skip"`},
		{"application backup unknown volumes policy",
			with(appBackup(), func(b *backupv1alpha1.ApplicationBackup) { b.Spec.Volumes = "skip" }),
			`supported values: "Data", "Skip"`},
		{"restore unknown existing-resource policy",
			with(restore(), func(r *fleetv1alpha1.Restore) { r.Spec.ExistingResourcePolicy = "Overwrite" }),
			`supported values: "Skip", "Update"`},

		// SchedulePolicy: cron shape, exactly one of cron or interval, jitter, retention.
		{"policy cron with four fields",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) { p.Spec.Cron = "0 2 * *" }),
			"cron must have 5 fields"},
		{"policy cron in words",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) { p.Spec.Cron = "every night" }),
			"cron must have 5 fields"},
		{"policy with cron and interval",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) { p.Spec.Interval = duration("6h") }),
			"set exactly one of cron or interval"},
		{"policy with neither cron nor interval",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) { p.Spec.Cron = "" }),
			"set exactly one of cron or interval"},
		{"policy interval below a minute",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) {
				p.Spec.Cron, p.Spec.Interval = "", duration("30s")
			}),
			"interval must be between 1m and 8760h"},
		{"policy jitter longer than interval",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) {
				p.Spec.Cron, p.Spec.Interval, p.Spec.Jitter = "", duration("1h"), duration("2h")
			}),
			"jitter must be shorter than interval"},
		{"policy jitter beyond its bound",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) { p.Spec.Jitter = duration("13h") }),
			"jitter must be at most 12h"},
		{"policy time zone with interval",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) {
				p.Spec.Cron, p.Spec.Interval, p.Spec.TimeZone = "", duration("6h"), "Europe/Berlin"
			}),
			"timeZone applies only to cron schedules"},
		{"policy retention that keeps nothing",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) { p.Spec.Retention = &fleetv1alpha1.Retention{} }),
			"retention must keep at least one backup"},
		{"policy negative retention",
			with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) {
				p.Spec.Retention = &fleetv1alpha1.Retention{KeepDaily: 7, KeepLast: -1}
			}),
			"should be greater than or equal to 0"},

		// BackupSchedule, ExecRule, ClusterDiscovery, BackupCluster, BackupSync, BackupCatalog.
		{"schedule without cluster selector",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.ClusterSelector = nil }),
			"set clusterSelector or placementRef: a schedule must say which clusters to back up"},
		{"schedule template ttl too long",
			with(backupSchedule(), func(s *fleetv1alpha1.BackupSchedule) { s.Spec.Template.TTL = duration("100000h") }),
			"ttl must be between 1h and 87600h"},
		{"exec rule without actions",
			with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Spec.Actions = []backupv1alpha1.ExecAction{} }),
			"actions must list at least one action"},
		{"exec rule with empty command",
			with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Spec.Actions[0].Command = []string{} }),
			"command must name the program to run"},
		{"exec rule unknown onError",
			with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Spec.Actions[0].OnError = "Ignore" }),
			`supported values: "Fail", "Continue"`},
		{"exec rule timeout over an hour",
			with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Spec.Actions[0].Timeout = duration("2h") }),
			"timeout must be between 1s and 1h"},
		{"exec rule unknown executionPolicy",
			with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Spec.Actions[0].ExecutionPolicy = "Sometimes" }),
			`supported values: "Always", "OnSuccess", "OnFailure"`},
		{"exec rule maxRetry above 5",
			with(execRule(), func(r *fleetv1alpha1.ExecRule) { r.Spec.Actions[0].MaxRetry = 6 }),
			"should be less than or equal to 5"},
		{"discovery interval below a minute",
			with(clusterDiscovery(), func(d *fleetv1alpha1.ClusterDiscovery) { d.Spec.Interval = duration("30s") }),
			"interval must be between 1m and 24h"},
		{"discovery project with underscore",
			with(clusterDiscovery(), func(d *fleetv1alpha1.ClusterDiscovery) { d.Spec.Gardener.Projects = []string{"team_a"} }),
			"project names are lowercase letters, digits and '-'"},
		{"discovery onboarding label with spaces",
			with(clusterDiscovery(), func(d *fleetv1alpha1.ClusterDiscovery) { d.Spec.OnboardingLabel = "backup me" }),
			"onboardingLabel must be a label key"},
		{"cluster name that is no namespace name",
			with(backupCluster(), func(c *fleetv1alpha1.BackupCluster) { c.Name = "shoot.a" }),
			"a BackupCluster's name is also a namespace name"},
		{"hub sync location with capitals",
			with(hubSync(), func(s *fleetv1alpha1.BackupSync) { s.Spec.Location = "Blob" }),
			"must be an object name"},
		{"catalog entry for both hub and self-service",
			with(catalog(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Entries[0].SelfServiceNamespace = "team-b" }),
			"an entry belongs either to a hub Backup or to a self-service namespace, not both"},
		{"catalog entry ID climbing out of its folder",
			with(catalog(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Entries[0].ID = "../shoot-b" }),
			"must be a backup ID"},
		{"catalog negative page",
			with(catalog(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Page = -1 }),
			"should be greater than or equal to 0"},
		{"catalog page that is both a sync's page and an inventory",
			with(catalog(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Inventory = inventory().Spec.Inventory }),
			"a page is either a sync's page (sync and location), a namespace inventory (inventory alone) or a run's log (log alone)"},
		{"catalog page without sync",
			with(catalog(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Sync = nil }),
			"a page is either a sync's page (sync and location), a namespace inventory (inventory alone) or a run's log (log alone)"},
		{"catalog page that is both an inventory and a run's log",
			with(inventory(), func(c *fleetv1alpha1.BackupCatalog) {
				c.Spec.Log = &fleetv1alpha1.LogPage{RunLog: backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "look"}}
			}),
			"a page is either a sync's page (sync and location), a namespace inventory (inventory alone) or a run's log (log alone)"},
		{"run log page that also lists backups",
			with(catalog(), func(c *fleetv1alpha1.BackupCatalog) {
				c.Spec.Sync, c.Spec.Location = nil, nil
				c.Spec.Log = &fleetv1alpha1.LogPage{RunLog: backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "look"}}
			}),
			"a page is either a sync's page (sync and location), a namespace inventory (inventory alone) or a run's log (log alone)"},
		{"hub RunLog asking for more than 1Mi",
			&fleetv1alpha1.RunLog{ObjectMeta: metav1.ObjectMeta{Namespace: namespace}, Spec: fleetv1alpha1.RunLogSpec{Kind: backupv1alpha1.RunBackup, Name: "nightly", MaxBytes: 2 << 20}},
			"should be less than or equal to 1048576"},
		{"hub RunLog of another kind of run",
			&fleetv1alpha1.RunLog{ObjectMeta: metav1.ObjectMeta{Namespace: namespace}, Spec: fleetv1alpha1.RunLogSpec{Kind: "Sync", Name: "nightly"}},
			"supported values: \"Backup\", \"Restore\""},
		{"spoke RunLog of a restore without the restore's log",
			&backupv1alpha1.RunLog{Spec: backupv1alpha1.RunLogSpec{Target: "t", Kind: backupv1alpha1.RunRestore, Source: backupv1alpha1.BackupSource{Cluster: "c", BackupID: "b"}, Hub: backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "look"}}},
			"restoreLog is set for a Restore's log and only for it"},
		{"inventory with a namespace name that is no DNS label",
			with(inventory(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Inventory.Namespaces[1] = "Team_B" }),
			"should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"},
		{"inventory with a namespace name over 63 characters",
			with(inventory(), func(c *fleetv1alpha1.BackupCatalog) {
				c.Spec.Inventory.Namespaces[1] = fleetv1alpha1.InventoryNamespaceName(strings.Repeat("a", 64))
			}),
			"may not be more than 63"},
		{"inventory with more than 5000 namespaces",
			with(inventory(), func(c *fleetv1alpha1.BackupCatalog) {
				c.Spec.Inventory.Namespaces = nil
				for i := range fleetv1alpha1.MaxInventoryNamespaces + 1 {
					c.Spec.Inventory.Namespaces = append(c.Spec.Inventory.Namespaces, fleetv1alpha1.InventoryNamespaceName(fmt.Sprintf("ns-%d", i)))
				}
			}),
			"must have at most 5000 items"},
		{"inventory listing a namespace twice",
			with(inventory(), func(c *fleetv1alpha1.BackupCatalog) { c.Spec.Inventory.Namespaces[1] = "default" }),
			"Duplicate value"},

		// Spoke kinds.
		{"target storage account too long",
			with(target(), func(t *backupv1alpha1.BackupTarget) { t.Spec.Azure.StorageAccount = "lifeboatbackupsforthefleet" }),
			"may not be more than 24"},
		{"target prefix with trailing slash",
			with(target(), func(t *backupv1alpha1.BackupTarget) { t.Spec.Azure.Prefix = "clusters/" }),
			"prefix may contain only letters, digits"},
		{"target prefix that is Lifeboat's data folder",
			with(target(), func(t *backupv1alpha1.BackupTarget) { t.Spec.Azure.Prefix = "lifeboat" }),
			"prefix must not contain a 'lifeboat' path segment"},
		{"target endpoint that is not a URL",
			with(target(), func(t *backupv1alpha1.BackupTarget) { t.Spec.Azure.Endpoint = "azurite:10000" }),
			"endpoint must be an https URL"},
		{"application backup with exec hook without command",
			with(appBackup(), func(b *backupv1alpha1.ApplicationBackup) {
				a := execAction()
				a.Command = []string{""}
				b.Spec.Hooks = &backupv1alpha1.ExecHooks{Pre: []backupv1alpha1.ExecAction{a}}
			}),
			"command must name the program to run"},
		{"application backup pre hook with an executionPolicy",
			with(appBackup(), func(b *backupv1alpha1.ApplicationBackup) {
				a := execAction()
				a.ExecutionPolicy = backupv1alpha1.ExecOnFailure
				b.Spec.Hooks = &backupv1alpha1.ExecHooks{Pre: []backupv1alpha1.ExecAction{a}}
			}),
			"executionPolicy is for post actions: pre actions always run"},
		{"application backup background post hook",
			with(appBackup(), func(b *backupv1alpha1.ApplicationBackup) {
				a := execAction()
				a.Background = true
				b.Spec.Hooks = &backupv1alpha1.ExecHooks{Post: []backupv1alpha1.ExecAction{a}}
			}),
			"background is for pre actions"},
		{"application backup namespace with underscore",
			with(appBackup(), func(b *backupv1alpha1.ApplicationBackup) {
				b.Spec.Selection = &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"kube_system"}}
			}),
			"must be a namespace name"},
		{"application restore backup ID starting with a hyphen",
			with(appRestore(), func(r *backupv1alpha1.ApplicationRestore) { r.Spec.Source.BackupID = "-nightly" }),
			"must be a backup ID"},
		{"application restore mapping into an invalid namespace",
			with(appRestore(), func(r *backupv1alpha1.ApplicationRestore) {
				r.Spec.NamespaceMapping = backupv1alpha1.NamespaceMapping{"shop": "Shop"}
			}),
			"must be a namespace name"},
		{"spoke sync page size too large",
			with(spokeSync(), func(s *backupv1alpha1.BackupSync) { s.Spec.PageSize = 1000 }),
			"should be less than or equal to 500"},
		{"deletion source cluster with capitals",
			with(deletion(), func(d *backupv1alpha1.BackupDeletion) { d.Spec.Source.Cluster = "Shoot-A" }),
			"must be a cluster name"},
	}

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			if tc.obj.GetName() == "" {
				tc.obj.SetName(fmt.Sprintf("bad-%02d", i))
			}
			err := k8sClient.Create(context.Background(), tc.obj)
			g.Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid %T", tc.obj)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got: %v", err)
			t.Log(err) // what the user sees
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
			// A rule that errors instead of answering would show its internals to the user.
			g.Expect(err.Error()).NotTo(ContainSubstring("evaluating rule"))
		})
	}
}

// TestUnparsableDurationsAreRejected sends durations that Go's parser refuses,
// as raw JSON, since the typed metav1.Duration cannot hold them.
func TestUnparsableDurationsAreRejected(t *testing.T) {
	cases := []struct {
		name  string
		obj   client.Object
		patch string
		want  string
	}{
		{"backup ttl in days", backup(), `{"spec":{"ttl":"30d"}}`, "ttl must be a duration such as 720h or 90m"},
		{"backup timeout in words", backup(), `{"spec":{"timeout":"soon"}}`, "timeout must be a duration such as 2h or 30m"},
		{"location sync interval in words", location(), `{"spec":{"syncInterval":"hourly"}}`, "syncInterval must be a duration such as 30m or 6h"},
		{"policy interval negative", with(schedulePolicy(), func(p *fleetv1alpha1.SchedulePolicy) {
			p.Spec.Cron, p.Spec.Interval = "", duration("1h")
		}), `{"spec":{"interval":"-1h"}}`, "interval must be a duration such as 30m or 6h"},
		{"target validation interval without unit", target(), `{"spec":{"validationInterval":"60"}}`, "validationInterval must be a duration such as 30m or 1h"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.obj.SetName(fmt.Sprintf("raw-%02d", i))
			// Create a valid object, then send the bad duration as a merge patch:
			// the same schema and rules judge an update.
			g.Expect(k8sClient.Create(context.Background(), tc.obj)).To(Succeed())
			err := k8sClient.Patch(context.Background(), tc.obj, client.RawPatch("application/merge-patch+json", []byte(tc.patch)))
			g.Expect(err).To(HaveOccurred())
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got: %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
			g.Expect(err.Error()).NotTo(ContainSubstring("evaluating rule"))
		})
	}
}

func TestImmutableFields(t *testing.T) {
	cases := []struct {
		name   string
		obj    client.Object
		change func(client.Object)
		want   string // empty: the change is allowed
	}{
		{"backup cluster", backup(),
			func(o client.Object) { o.(*fleetv1alpha1.Backup).Spec.Cluster = "shoot-b" },
			"cluster is immutable; create a new Backup"},
		{"backup location", backup(),
			func(o client.Object) { o.(*fleetv1alpha1.Backup).Spec.Location = "other-blob" },
			"location is immutable; create a new Backup"},
		{"backup selection", backup(),
			func(o client.Object) {
				o.(*fleetv1alpha1.Backup).Spec.Selection = &backupv1alpha1.ResourceSelection{
					IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop"},
				}
			},
			"selection is immutable; create a new Backup"},
		{"backup volumes", backup(),
			func(o client.Object) { o.(*fleetv1alpha1.Backup).Spec.Volumes = backupv1alpha1.VolumesSkip },
			"volumes is immutable; create a new Backup"},
		{"application backup volumes", appBackup(),
			func(o client.Object) { o.(*backupv1alpha1.ApplicationBackup).Spec.Volumes = backupv1alpha1.VolumesSkip },
			"volumes is immutable; create a new ApplicationBackup"},
		{"backup ttl may change", backup(),
			func(o client.Object) { o.(*fleetv1alpha1.Backup).Spec.TTL = duration("720h") },
			""},
		{"restore spec", restore(),
			func(o client.Object) { o.(*fleetv1alpha1.Restore).Spec.Cluster = "shoot-b" },
			"spec is immutable; create a new Restore"},
		{"location container", location(),
			func(o client.Object) { o.(*fleetv1alpha1.BackupLocation).Spec.Azure.Container = "other-container" },
			"container is immutable: existing backups live there"},
		{"location endpoint", with(location(), func(l *fleetv1alpha1.BackupLocation) {
			l.Spec.Azure.Endpoint = "https://lifeboatbackups.blob.core.windows.net"
		}),
			func(o client.Object) {
				o.(*fleetv1alpha1.BackupLocation).Spec.Azure.Endpoint = "https://10.0.0.5:10000/lifeboatbackups"
			},
			"endpoint is immutable: existing backups live there"},
		{"target endpoint set later", target(),
			func(o client.Object) {
				o.(*backupv1alpha1.BackupTarget).Spec.Azure.Endpoint = "https://10.0.0.5:10000/lifeboatbackups"
			},
			"endpoint is immutable: existing backups live there"},
		{"location clusters may change", location(),
			func(o client.Object) {
				o.(*fleetv1alpha1.BackupLocation).Spec.Clusters = []backupv1alpha1.ClusterName{"shoot-a", "shoot-b"}
			},
			""},
		{"target prefix", target(),
			func(o client.Object) { o.(*backupv1alpha1.BackupTarget).Spec.Azure.Prefix = "moved" },
			"prefix is immutable: existing backups live there"},
		{"application restore spec", appRestore(),
			func(o client.Object) { o.(*backupv1alpha1.ApplicationRestore).Spec.Source.BackupID = "other" },
			"spec is immutable; create a new ApplicationRestore"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			tc.obj.SetName(fmt.Sprintf("immutable-%02d", i))
			g.Expect(k8sClient.Create(ctx, tc.obj)).To(Succeed())

			tc.change(tc.obj)
			err := k8sClient.Update(ctx, tc.obj)
			if tc.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(HaveOccurred(), "the apiserver accepted a change to an immutable field")
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got: %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
}

// A BackupLocation's status lists at most MaxNotValidClusters connections
// that are not Valid: the API server takes that many and refuses one more.
func TestLocationStatusListsAtMostMaxNotValidClusters(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := location()
	loc.Name = "many-clusters"
	g.Expect(k8sClient.Create(ctx, loc)).To(Succeed())
	conns := make([]fleetv1alpha1.ClusterConnection, fleetv1alpha1.MaxNotValidClusters+1)
	for i := range conns {
		conns[i] = fleetv1alpha1.ClusterConnection{Cluster: fmt.Sprintf("c%d", i), ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid}}
	}

	loc.Status.NotValid = conns
	err := k8sClient.Status().Update(ctx, loc)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("must have at most %d items", fleetv1alpha1.MaxNotValidClusters)))

	loc.Status.NotValid = conns[:fleetv1alpha1.MaxNotValidClusters]
	loc.Status.NotValidOmitted = 1
	g.Expect(k8sClient.Status().Update(ctx, loc)).To(Succeed())
}
