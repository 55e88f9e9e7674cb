package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/hub/cli"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
)

const (
	demoContainer = "demo-backups"
	demoTeam      = "shop-team"
	demoLocation  = "primary"
	demoNamespace = "shop"
	demoClaim     = "shop-orders"
	demoDataFile  = "orders.csv"
	demoData      = "order,customer,total\n1001,alice,42.50\n1002,bob,17.00\n"
)

// backupAndMigrate shows a fleet admin's day on the hub: one Azure identity
// federated with every cluster, a BackupLocation that every cluster validates
// with its own token, a hub Backup of an application on spoke-1 and a hub
// Restore of it on spoke-2 into another namespace.
func backupAndMigrate(ctx context.Context, f *fleet.Fleet) error {
	az, hub := f.Azure, f.Hub.Client
	subject := backuplocation.FederatedSubject(demoTeam, demoLocation)
	say("\nAzure: one managed identity, federated for the location's subject %s on every cluster's service-account issuer, may write container %q ...", subject, demoContainer)
	id, err := az.NewIdentity("5a1f0c3e-8d2b-4e6f-9c1a-2b3d4e5f6a7b")
	if err != nil {
		return err
	}
	az.Grant(id, demoContainer, blobproxy.StorageBlobDataContributor)
	for _, s := range f.Spokes {
		if err := az.Federate(id, s.ControlPlane, subject); err != nil {
			return err
		}
	}
	if err := az.CreateContainer(ctx, demoContainer); err != nil {
		return err
	}

	say("\nBackupLocation %s/%s on the hub, for every discovered cluster (clusterSelector %s=enabled) ...", demoTeam, demoLocation, fleet.ShootBackupLabel)
	if err := client.IgnoreAlreadyExists(hub.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoTeam}})); err != nil {
		return err
	}
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoTeam, Name: demoLocation},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: fleet.StorageAccount, Container: demoContainer, Prefix: demoTeam, Endpoint: az.SpokeBlobEndpoint()},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: id.ClientID, TenantID: fleet.TenantID},
			},
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{fleet.ShootBackupLabel: "enabled"}},
		},
	}
	start := time.Now()
	if err := hub.Create(ctx, loc); err != nil {
		return err
	}
	if err := waitFor(ctx, hub, loc, func() string {
		st := loc.Status
		if st.ObservedGeneration != loc.Generation || int(st.SelectedClusters) != len(f.Spokes) || st.PendingClusters > 0 {
			return "InProgress"
		}
		return string(st.Phase)
	}); err != nil {
		return err
	}
	say("  %s on %d of %d clusters after %s; each cluster checked it with its own token:", loc.Status.Phase, loc.Status.ValidClusters, loc.Status.SelectedClusters, time.Since(start).Round(time.Millisecond))
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  CLUSTER\tLOCATION\tPHASE\tREASON\tCHECKED")
	conns, err := locations.Connections(ctx, hub, loc)
	if err != nil {
		return err
	}
	for _, c := range conns {
		checked := ""
		if c.LastValidationTime != nil {
			checked = c.LastValidationTime.Format(time.TimeOnly)
		}
		fmt.Fprintf(w, "  %s\t%s/%s\t%s\t%s\t%s\n", c.Cluster, loc.Namespace, loc.Name, c.Phase, c.Reason, checked)
	}
	_ = w.Flush()

	source, dest := f.Spokes[0], f.Spokes[len(f.Spokes)-1]
	say("\nDeploying the sample application %q on %s ...", demoNamespace, source.Name)
	for _, o := range sampleApp() {
		if err := source.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	// The fleet's volumes are host directories (its host-path provisioner), so
	// the demo writes the shop's data straight into the claim's volume.
	dataDir, err := claimDir(ctx, source, demoNamespace, demoClaim)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dataDir, demoDataFile), []byte(demoData), 0o644); err != nil {
		return err
	}
	say("  PersistentVolumeClaim %s/%s holds %s (%d bytes)", demoNamespace, demoClaim, demoDataFile, len(demoData))

	say("Backing it up from the hub (Backup %s/shop, cluster %s) ...", demoTeam, source.Name)
	b := &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoTeam, Name: "shop"},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster: backupv1alpha1.ClusterName(source.Name),
			BackupTemplate: fleetv1alpha1.BackupTemplate{
				Location:  demoLocation,
				Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{demoNamespace}},
			},
		},
	}
	start = time.Now()
	if err := hub.Create(ctx, b); err != nil {
		return err
	}
	if err := waitFor(ctx, hub, b, func() string { return string(b.Status.Phase) }); err != nil {
		return err
	}
	backupTook := time.Since(start)
	if b.Status.Phase != fleetv1alpha1.BackupSuccess {
		return fmt.Errorf("backup ended %s: %+v", b.Status.Phase, b.Status.Conditions)
	}
	say("  %s: %d items, %d bytes stored, in %s (on the spoke: %s); data under %s/%s/lifeboat/v1/backups/%s/%s/",
		b.Status.Phase, b.Status.Progress.ItemsDone, b.Status.Progress.BytesDone, backupTook.Round(time.Millisecond),
		runTime(b.Status.StartTime, b.Status.CompletionTime), demoContainer, demoTeam, source.Name, b.Status.BackupID)

	restored := demoNamespace + "-restored"
	say("Restoring it from the hub on %s into namespace %q (Restore with a namespace mapping) ...", dest.Name, restored)
	r := &fleetv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoTeam, Name: "shop-to-" + dest.Shoot},
		Spec: fleetv1alpha1.RestoreSpec{
			Backup:  "shop",
			Cluster: backupv1alpha1.ClusterName(dest.Name),
			RestoreOptions: backupv1alpha1.RestoreOptions{
				NamespaceMapping: backupv1alpha1.NamespaceMapping{demoNamespace: backupv1alpha1.NamespaceName(restored)},
			},
		},
	}
	start = time.Now()
	if err := hub.Create(ctx, r); err != nil {
		return err
	}
	if err := waitFor(ctx, hub, r, func() string { return string(r.Status.Phase) }); err != nil {
		return err
	}
	restoreTook := time.Since(start)
	if r.Status.Phase != backupv1alpha1.RestoreSuccess {
		return fmt.Errorf("restore ended %s: %+v", r.Status.Phase, r.Status.Conditions)
	}
	say("  %s: %d items in %s (on the spoke: %s)", r.Status.Phase, r.Status.Progress.ItemsDone, restoreTook.Round(time.Millisecond), runTime(r.Status.StartTime, r.Status.CompletionTime))
	if err := listRestored(ctx, dest, restored); err != nil {
		return err
	}
	restoredDir, err := claimDir(ctx, dest, restored, demoClaim)
	if err != nil {
		return err
	}
	if restoredDir == dataDir {
		return fmt.Errorf("the restored claim uses %s's volume %s", source.Name, dataDir)
	}
	got, err := os.ReadFile(filepath.Join(restoredDir, demoDataFile))
	if err != nil {
		return fmt.Errorf("the restored claim's data: %w", err)
	}
	if string(got) != demoData {
		return fmt.Errorf("the restored claim holds %q, not what was backed up", got)
	}
	say("  PersistentVolumeClaim %s/%s on %s holds %s again, byte for byte (a new volume filled from the kopia snapshot; %s's volume was not recreated)",
		restored, demoClaim, dest.Name, demoDataFile, source.Name)

	say("\nSummary, as the hub shows it:")
	w = tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  KIND\tNAME\tCLUSTER\tPHASE\tITEMS\tBYTES\tTOOK")
	fmt.Fprintf(w, "  Backup\t%s/%s\t%s\t%s\t%d\t%d\t%s\n", b.Namespace, b.Name, b.Spec.Cluster, b.Status.Phase, b.Status.Progress.ItemsDone, b.Status.Progress.BytesDone, backupTook.Round(time.Millisecond))
	fmt.Fprintf(w, "  Restore\t%s/%s\t%s\t%s\t%d\t%d\t%s\n", r.Namespace, r.Name, r.Status.Cluster, r.Status.Phase, r.Status.Progress.ItemsDone, r.Status.Progress.BytesDone, restoreTook.Round(time.Millisecond))
	if err := w.Flush(); err != nil {
		return err
	}

	say("\nThe same through the fleet admin's CLI (docs/cli.md):\n\n$ lifeboat clusters")
	if err := cli.PrintClusters(ctx, os.Stdout, hub); err != nil {
		return err
	}
	say("\n$ lifeboat backups -A")
	if err := cli.PrintBackups(ctx, os.Stdout, hub, ""); err != nil {
		return err
	}
	return showDashboard(ctx, f)
}

// showDashboard runs `lifeboat dashboard -A` for a moment: it loads the page
// as a browser would and, where Chromium is installed, takes a screenshot.
func showDashboard(ctx context.Context, f *fleet.Fleet) error {
	say("\n$ lifeboat dashboard -A --address 127.0.0.1:0")
	out := &fleet.LockedBuffer{}
	dashCtx, stop := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		done <- (&cli.App{Out: out, Err: os.Stderr}).Run(dashCtx,
			[]string{"--kubeconfig", f.Hub.AdminKubeconfig, "dashboard", "-A", "--address", "127.0.0.1:0"})
	}()
	defer func() { stop(); <-done }()
	url := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`)
	var at string
	for deadline := time.Now().Add(30 * time.Second); at == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		at = url.FindString(out.String())
	}
	if at == "" {
		return fmt.Errorf("lifeboat dashboard did not start: %s", out.String())
	}
	say("  %s", strings.TrimSpace(out.String()))
	resp, err := http.Get(at)
	if err != nil {
		return err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	say("  GET / -> %s, %d bytes: %d clusters, %d Valid cluster x location cells, %d runs in progress, %d failures listed",
		resp.Status, len(page), strings.Count(string(page), `<td class="phase-`), strings.Count(string(page), `<td class="cell ok">`),
		strings.Count(string(page), `<tr class="run">`), strings.Count(string(page), `<tr class="failure">`))
	if _, err := exec.LookPath(fleet.Chromium); err != nil {
		say("  (install Debian's chromium to get a screenshot of it here)")
		return nil
	}
	shot := filepath.Join(os.TempDir(), "lifeboat-demo-dashboard.png")
	if _, err := fleet.Browse(ctx, at, shot, 1400, 900); err != nil {
		return err
	}
	say("  the page as headless Chromium shows it: %s", shot)
	return nil
}

// runTime is how long a run took on its cluster, from its start and completion times.
func runTime(start, end *metav1.Time) string {
	if start == nil || end == nil {
		return "unknown"
	}
	// Kubernetes times have whole seconds.
	if d := end.Sub(start.Time); d >= time.Second {
		return d.String()
	}
	return "under 1s"
}

// waitFor re-reads obj until phase() is final (neither empty, Pending nor InProgress).
func waitFor(ctx context.Context, c client.Client, obj client.Object, phase func() string) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		p := phase()
		return p != "" && p != "Pending" && p != "InProgress", nil
	})
}

func listRestored(ctx context.Context, s *fleet.Spoke, ns string) error {
	say("\nWhat %s now has in namespace %q:", s.Name, ns)
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  KIND\tNAME")
	lists := []struct {
		kind string
		list client.ObjectList
	}{
		{"Deployment", &appsv1.DeploymentList{}}, {"PersistentVolumeClaim", &corev1.PersistentVolumeClaimList{}}, {"Service", &corev1.ServiceList{}}, {"ConfigMap", &corev1.ConfigMapList{}},
		{"Secret", &corev1.SecretList{}}, {"ServiceAccount", &corev1.ServiceAccountList{}}, {"Role", &rbacv1.RoleList{}}, {"RoleBinding", &rbacv1.RoleBindingList{}},
	}
	for _, l := range lists {
		if err := s.Client.List(ctx, l.list, client.InNamespace(ns)); err != nil {
			return err
		}
		items, err := apimeta.ExtractList(l.list)
		if err != nil {
			return err
		}
		for _, o := range items {
			fmt.Fprintf(w, "  %s\t%s\n", l.kind, o.(client.Object).GetName())
		}
	}
	return w.Flush()
}

// claimDir waits until claim ns/name on s is bound and returns its volume's
// directory on this host (the fleet's volumes are host-path ones).
func claimDir(ctx context.Context, s *fleet.Spoke, ns, name string) (string, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pvc); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return pvc.Status.Phase == corev1.ClaimBound, nil
	})
	if err != nil {
		return "", fmt.Errorf("claim %s/%s on %s is not bound: %w", ns, name, s.Name, err)
	}
	pv := &corev1.PersistentVolume{}
	if err := s.Client.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil {
		return "", err
	}
	if pv.Spec.HostPath == nil {
		return "", fmt.Errorf("volume %s of claim %s/%s is not a host directory", pv.Name, ns, name)
	}
	return pv.Spec.HostPath.Path, nil
}

// sampleApp is a small web shop: its namespace, configuration, credentials,
// identity and permissions, and the workload.
func sampleApp() []client.Object {
	ns, labels := demoNamespace, map[string]string{"app": "shop"}
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "shop-reader", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "shop-reader", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "shop-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "shop", Namespace: ns}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-config", Namespace: ns}, Data: map[string]string{"CURRENCY": "EUR"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: demoClaim, Namespace: ns}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-db", Namespace: ns}, StringData: map[string]string{"password": "s3cr3t"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop-web", Namespace: ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{ServiceAccountName: "shop", Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/shop:1.4.2"}}}}}},
	}
}
