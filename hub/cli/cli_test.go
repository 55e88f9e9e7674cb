package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/locations/locationstest"
)

// TestClusters checks the clusters table and the cluster x location matrix:
// Valid, Invalid(reason), Pending (selected, not validated yet) and - (not selected).
func TestClusters(t *testing.T) {
	ctx := context.Background()
	nsA, nsB := namespace(t, "mx-a"), namespace(t, "mx-b")
	// Each cluster's connection is its location's work, as its agent reports it.
	weu := create(t, location(nsA, "weu", "", "mx-one", "mx-two"), func(l *fleetv1alpha1.BackupLocation) {
		l.Status.Phase = fleetv1alpha1.LocationLimitedAvailability
	})
	if err := locationstest.SetConnections(ctx, hub.Client, weu,
		fleetv1alpha1.ClusterConnection{Cluster: "mx-one", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: backupv1alpha1.ReasonValidationSucceeded}},
		fleetv1alpha1.ClusterConnection{Cluster: "mx-two", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: backupv1alpha1.ReasonAuthorizationFailed}},
	); err != nil {
		t.Fatal(err)
	}
	// Selects mx-three, which has not validated it yet.
	neu := create(t, location(nsB, "neu", "", "mx-three"), nil)
	if err := locationstest.SetConnections(ctx, hub.Client, neu, fleetv1alpha1.ClusterConnection{Cluster: "mx-three",
		ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetPending}}); err != nil {
		t.Fatal(err)
	}
	one := backupCluster("mx-one")
	one.Spec.Shoot = &fleetv1alpha1.ShootInfo{Project: "prod", Name: "shop", Region: "westeurope", Provider: "azure", Seed: "aks-weu"}
	create(t, one, func(c *fleetv1alpha1.BackupCluster) {
		c.Status.Phase = fleetv1alpha1.ClusterOnline
		c.Status.Conditions = []metav1.Condition{{Type: fleetv1alpha1.ConditionAvailable, Status: metav1.ConditionTrue,
			Reason: fleetv1alpha1.ReasonAddOnAvailable, Message: "available", LastTransitionTime: *ago(5*time.Minute + 10*time.Second)}}
		c.Status.Locations = []fleetv1alpha1.LocationConnection{{Namespace: nsA, Name: "weu", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid}}}
	})
	create(t, backupCluster("mx-two"), func(c *fleetv1alpha1.BackupCluster) {
		c.Status.Phase = fleetv1alpha1.ClusterOffline
		c.Status.Conditions = []metav1.Condition{{Type: fleetv1alpha1.ConditionAvailable, Status: metav1.ConditionFalse,
			Reason: fleetv1alpha1.ReasonAddOnUnavailable, Message: "lease expired", LastTransitionTime: *ago(2*time.Hour + time.Minute)}}
		c.Status.Locations = []fleetv1alpha1.LocationConnection{{Namespace: nsA, Name: "weu",
			ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: backupv1alpha1.ReasonAuthorizationFailed}}}
	})
	create(t, backupCluster("mx-three"), func(c *fleetv1alpha1.BackupCluster) {
		c.Status.Phase = fleetv1alpha1.ClusterPending
	})

	tables := parseTables(t, mustRun(t, "clusters"))
	if len(tables) != 2 {
		t.Fatalf("want the clusters table and the matrix, got %d tables", len(tables))
	}
	if got := strings.Join(tables[0].headers, "|"); got != "NAME|PHASE|SHOOT|REGION|ADD-ON|SINCE" {
		t.Errorf("cluster headers %q", got)
	}
	expectCells(t, tables[0].row(t, "mx-one"), map[string]string{"PHASE": "Online", "SHOOT": "prod/shop", "REGION": "westeurope", "ADD-ON": "AddOnAvailable", "SINCE": "5m"})
	expectCells(t, tables[0].row(t, "mx-two"), map[string]string{"PHASE": "Offline", "SHOOT": none, "ADD-ON": "AddOnUnavailable", "SINCE": "2h"})
	expectCells(t, tables[0].row(t, "mx-three"), map[string]string{"PHASE": "Pending", "ADD-ON": none, "SINCE": none})

	matrix := tables[1]
	if matrix.headers[0] != "CLUSTER" {
		t.Errorf("matrix headers %v", matrix.headers)
	}
	for _, h := range []string{"mx-a/weu", "mx-b/neu"} {
		if !strings.Contains(strings.Join(matrix.headers, " "), h) {
			t.Errorf("matrix has no column %s: %v", h, matrix.headers)
		}
	}
	expectCells(t, matrix.row(t, "mx-one"), map[string]string{"mx-a/weu": "Valid", "mx-b/neu": "-"})
	expectCells(t, matrix.row(t, "mx-two"), map[string]string{"mx-a/weu": "Invalid(AuthorizationFailed)", "mx-b/neu": "-"})
	expectCells(t, matrix.row(t, "mx-three"), map[string]string{"mx-a/weu": "-", "mx-b/neu": "Pending"})

	// Wide adds the shoot's provider and seed.
	wide := parseTables(t, mustRun(t, "clusters", "-o", "wide"))
	expectCells(t, wide[0].row(t, "mx-one"), map[string]string{"PROVIDER": "azure", "SEED": "aks-weu", "MANAGED": "true"})

	// -n shows only that namespace's locations in the matrix.
	onlyB := parseTables(t, mustRun(t, "clusters", "-n", nsB))
	if got := strings.Join(onlyB[1].headers, "|"); got != "CLUSTER|mx-b/neu" {
		t.Errorf("matrix with -n %s: headers %q", nsB, got)
	}

	// The function the demo calls prints the same.
	var buf bytes.Buffer
	if err := PrintClusters(ctx, &buf, hub.Client); err != nil {
		t.Fatal(err)
	}
	demo := parseTables(t, buf.String())
	expectCells(t, demo[0].row(t, "mx-one"), map[string]string{"PHASE": "Online", "SHOOT": "prod/shop"})
	expectCells(t, demo[1].row(t, "mx-two"), map[string]string{"mx-a/weu": "Invalid(AuthorizationFailed)"})

	// -o json: a List of BackupClusters with apiVersion and kind.
	var list struct {
		APIVersion, Kind string
		Items            []fleetv1alpha1.BackupCluster
	}
	if err := json.Unmarshal([]byte(mustRun(t, "clusters", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "List" || len(list.Items) < 3 {
		t.Fatalf("clusters -o json: kind %q, %d items", list.Kind, len(list.Items))
	}
	for _, c := range list.Items {
		if c.Kind != "BackupCluster" || c.APIVersion != "fleet.lifeboat.dev/v1alpha1" {
			t.Errorf("item %s has apiVersion %q kind %q", c.Name, c.APIVersion, c.Kind)
		}
		if c.Name == "mx-one" && condition(c.Status.Conditions, fleetv1alpha1.ConditionAvailable) == nil {
			t.Errorf("mx-one from json: %+v", c.Status)
		}
	}
}

func TestLocations(t *testing.T) {
	ns := namespace(t, "loc-a")
	l := location(ns, "weu", "team-a", "c1", "c2", "c3")
	l.Spec.SyncInterval = &metav1.Duration{Duration: 6 * time.Hour}
	create(t, l, func(l *fleetv1alpha1.BackupLocation) {
		l.Status.Phase = fleetv1alpha1.LocationLimitedAvailability
		l.Status.SelectedClusters, l.Status.ValidClusters = 3, 2
		l.Status.LastSyncTime = ago(3*24*time.Hour + time.Hour)
		l.Status.FederatedSubject = "system:serviceaccount:lifeboat-system:lifeboat-target-0123456789abcdef"
		l.Status.NotValid = []fleetv1alpha1.ClusterConnection{
			{Cluster: "c3", ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: "ContainerNotFound"}},
		}
	})
	create(t, location(ns, "neu", "", "c1"), nil)

	tab := parseTables(t, mustRun(t, "locations", "-n", ns, "-o", "wide"))[0]
	if got := strings.Join(tab.headers[:8], "|"); got != "NAME|PHASE|VALID/SELECTED|ACCOUNT|CONTAINER|PREFIX|LAST SYNC|AGE" {
		t.Errorf("location headers %q", got)
	}
	expectCells(t, tab.row(t, "weu"), map[string]string{"PHASE": "LimitedAvailability", "VALID/SELECTED": "2/3", "ACCOUNT": "lifeboatweu",
		"CONTAINER": "backups", "PREFIX": "team-a", "LAST SYNC": "3d", "SYNC INTERVAL": "6h", "NOT VALID ON": "c3=Invalid(ContainerNotFound)",
		"FEDERATED SUBJECT": "system:serviceaccount:lifeboat-system:lifeboat-target-0123456789abcdef"})
	expectCells(t, tab.row(t, "neu"), map[string]string{"PHASE": none, "VALID/SELECTED": "0/0", "PREFIX": none, "LAST SYNC": none})

	// -A adds the namespace column.
	all := parseTables(t, mustRun(t, "locations", "-A"))[0]
	if all.headers[0] != "NAMESPACE" {
		t.Errorf("-A headers %v", all.headers)
	}

	// An empty namespace says so, on stderr, and succeeds.
	r := run(t, "locations", "-n", namespace(t, "loc-empty"))
	expectCode(t, r, ExitOK, "No backup locations found in namespace loc-empty")
}

// backups creates, in ns, Backups in several phases.
func seedBackups(t *testing.T, ns string) {
	create(t, location(ns, "weu", "team", "spoke-1", "spoke-2"), nil)
	create(t, location(ns, "neu", "", "spoke-2"), nil)
	create(t, backup(ns, "shop-done", "spoke-1", "weu"), func(b *fleetv1alpha1.Backup) {
		b.Status.Phase, b.Status.Origin, b.Status.Stage = fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginHub, backupv1alpha1.StageFinal
		b.Status.BackupID = "20261121-shop"
		b.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: 42, ItemsDone: 42, BytesDone: 1536 * 1024}
		b.Status.StartTime, b.Status.CompletionTime = ago(2*time.Hour+5*time.Minute), ago(2*time.Hour+4*time.Minute)
	})
	create(t, backup(ns, "shop-running", "spoke-1", "weu"), func(b *fleetv1alpha1.Backup) {
		b.Status.Phase, b.Status.Origin, b.Status.Stage = fleetv1alpha1.BackupInProgress, fleetv1alpha1.OriginSchedule, backupv1alpha1.StageResources
		b.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: 40, ItemsDone: 10, BytesDone: 512}
		b.Status.StartTime = ago(30 * time.Second)
	})
	create(t, backup(ns, "db-failed", "spoke-2", "neu"), func(b *fleetv1alpha1.Backup) {
		b.Status.Phase, b.Status.Origin = fleetv1alpha1.BackupFailed, fleetv1alpha1.OriginSynced
	})
}

func TestBackups(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "bk-a")
	seedBackups(t, ns)

	tab := parseTables(t, mustRun(t, "backups", "-n", ns))[0]
	if got := strings.Join(tab.headers, "|"); got != "NAME|CLUSTER|LOCATION|PHASE|ITEMS|SIZE|STARTED|AGE|ORIGIN" {
		t.Errorf("backup headers %q", got)
	}
	if got := strings.Join(tab.keys(), ","); got != "db-failed,shop-done,shop-running" {
		t.Errorf("backups %s", got)
	}
	expectCells(t, tab.row(t, "shop-done"), map[string]string{"CLUSTER": "spoke-1", "LOCATION": "weu", "PHASE": "Success", "ITEMS": "42",
		"SIZE": "1.5MiB", "STARTED": "2h", "ORIGIN": "Hub"})
	expectCells(t, tab.row(t, "shop-running"), map[string]string{"PHASE": "InProgress", "ITEMS": "10/40", "SIZE": "512B", "ORIGIN": "Schedule"})
	// Ages in seconds move on while the test runs: created just now, started 30 s ago.
	if age := tab.row(t, "shop-done")["AGE"]; !regexp.MustCompile(`^[0-9]s$`).MatchString(age) {
		t.Errorf("AGE of a Backup created moments ago: %q", age)
	}
	if started := tab.row(t, "shop-running")["STARTED"]; !regexp.MustCompile(`^3[0-9]s$`).MatchString(started) {
		t.Errorf("STARTED of a run started 30 s ago: %q", started)
	}
	expectCells(t, tab.row(t, "db-failed"), map[string]string{"PHASE": "Failed", "ITEMS": none, "STARTED": none, "ORIGIN": "Synced"})

	filtered := func(args ...string) string {
		out := mustRun(t, append([]string{"backups", "-n", ns}, args...)...)
		return strings.Join(parseTables(t, out)[0].keys(), ",")
	}
	if got := filtered("--cluster", "spoke-1"); got != "shop-done,shop-running" {
		t.Errorf("--cluster spoke-1: %s", got)
	}
	if got := filtered("--location", "neu"); got != "db-failed" {
		t.Errorf("--location neu: %s", got)
	}
	if got := filtered("--phase", "success"); got != "shop-done" {
		t.Errorf("--phase success: %s", got)
	}
	if got := filtered("--cluster", "spoke-1", "--phase", "InProgress"); got != "shop-running" {
		t.Errorf("--cluster spoke-1 --phase InProgress: %s", got)
	}
	r := run(t, "backups", "-n", ns, "--cluster", "nope")
	expectCode(t, r, ExitOK, "No backups found in namespace "+ns)
	if r.out != "" {
		t.Errorf("no backups, but output %q", r.out)
	}

	wide := parseTables(t, mustRun(t, "backups", "-n", ns, "-o", "wide"))[0]
	expectCells(t, wide.row(t, "shop-done"), map[string]string{"STAGE": "Final", "DURATION": "60s", "BACKUP ID": "20261121-shop", "ERRORS": "0"})

	all := parseTables(t, mustRun(t, "backups", "-A", "--phase", "Failed"))[0]
	if all.headers[0] != "NAMESPACE" {
		t.Fatalf("-A headers %v", all.headers)
	}
	found := false
	for _, row := range all.rows {
		if row["NAMESPACE"] == ns && row["NAME"] == "db-failed" {
			found = true
		}
		if row["PHASE"] != "Failed" {
			t.Errorf("--phase Failed listed %v", row)
		}
	}
	if !found {
		t.Errorf("-A does not list %s/db-failed", ns)
	}

	// The namespace comes from the kubeconfig's context when -n is not given.
	ctxTab := parseTables(t, runWith(t, kubeconfigWith(t, ns, ""), "backups").out)[0]
	if got := strings.Join(ctxTab.keys(), ","); got != "db-failed,shop-done,shop-running" {
		t.Errorf("backups in the context's namespace: %s", got)
	}

	// -o json round trip: what the hub has, with apiVersion and kind.
	var list struct {
		APIVersion, Kind string
		Items            []fleetv1alpha1.Backup
	}
	if err := json.Unmarshal([]byte(mustRun(t, "backups", "-n", ns, "-o", "json", "--phase", "Success")), &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != 1 {
		t.Fatalf("backups -o json: %s %s with %d items", list.APIVersion, list.Kind, len(list.Items))
	}
	got := list.Items[0]
	want := &fleetv1alpha1.Backup{}
	if err := hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-done"}, want); err != nil {
		t.Fatal(err)
	}
	if got.APIVersion != "fleet.lifeboat.dev/v1alpha1" || got.Kind != "Backup" {
		t.Errorf("item apiVersion %q kind %q", got.APIVersion, got.Kind)
	}
	if !apiequality.Semantic.DeepEqual(got.Spec, want.Spec) || !apiequality.Semantic.DeepEqual(got.Status, want.Status) || got.UID != want.UID {
		t.Errorf("json round trip differs:\n got %+v\nwant %+v", got, want)
	}
	if len(got.ManagedFields) != 0 {
		t.Errorf("managed fields printed")
	}

	// The function the demo calls.
	var buf bytes.Buffer
	if err := PrintBackups(ctx, &buf, hub.Client, ns); err != nil {
		t.Fatal(err)
	}
	expectCells(t, parseTables(t, buf.String())[0].row(t, "shop-done"), map[string]string{"PHASE": "Success", "SIZE": "1.5MiB"})
}

func TestDescribeBackup(t *testing.T) {
	ns := namespace(t, "desc-a")
	seedBackups(t, ns)
	b := &fleetv1alpha1.Backup{}
	if err := hub.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "shop-done"}, b); err != nil {
		t.Fatal(err)
	}
	b.Status.Warnings, b.Status.Errors = 2, 1
	b.Status.Phase = fleetv1alpha1.BackupPartialSuccess
	b.Status.Conditions = []metav1.Condition{
		cond(fleetv1alpha1.ConditionReady, metav1.ConditionFalse, backupv1alpha1.ReasonPartiallySucceeded, "1 item could not be backed up:\n  secrets/shop/tls"),
		cond(fleetv1alpha1.ConditionCompleted, metav1.ConditionTrue, backupv1alpha1.ReasonPartiallySucceeded, ""),
	}
	if err := hub.Client.Status().Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	restore := func(name, backup, cluster string) {
		create(t, &fleetv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: fleetv1alpha1.RestoreSpec{Backup: backupv1alpha1.ObjectName(backup), Cluster: backupv1alpha1.ClusterName(cluster)}},
			func(r *fleetv1alpha1.Restore) { r.Status.Phase = backupv1alpha1.RestoreSuccess })
	}
	restore("shop-back", "shop-done", "")
	restore("shop-to-2", "shop-done", "spoke-2")
	restore("other", "db-failed", "")

	out := mustRun(t, "describe", "backup", "shop-done", "-n", ns)
	expectContains(t, out,
		"Name:           shop-done\n",
		"Cluster:        spoke-1\n",
		"Volumes:        Data\n",
		"Phase:          PartialSuccess\n",
		"Stage:          Final  (Initial > PreExecRule > Resources > Volumes > PostExecRule > [Final])\n",
		"Progress:       42 of 42 items, 1.5MiB written\n",
		"Warnings:       2\n",
		"Errors:         1\n",
		"Backup ID:      20261121-shop\n",
		"Data:           lifeboatweu/backups/team/lifeboat/v1/backups/spoke-1/20261121-shop/\n",
		"URL:            https://lifeboatweu.blob.core.windows.net/backups/team/lifeboat/v1/backups/spoke-1/20261121-shop/\n",
		"took 60s",
	)
	sections := strings.SplitN(out, "Conditions:\n", 2)
	if len(sections) != 2 {
		t.Fatalf("no conditions section:\n%s", out)
	}
	condAndRestores := strings.SplitN(sections[1], "Restores:\n", 2)
	if len(condAndRestores) != 2 {
		t.Fatalf("no restores section:\n%s", out)
	}
	conds := parseTables(t, condAndRestores[0])[0]
	expectCells(t, conds.row(t, "Ready"), map[string]string{"STATUS": "False", "REASON": "PartiallySucceeded", "AGE": "3m",
		"MESSAGE": "1 item could not be backed up: secrets/shop/tls"})
	restores := parseTables(t, condAndRestores[1])[0]
	if got := strings.Join(restores.keys(), ","); got != "shop-back,shop-to-2" {
		t.Errorf("restores of shop-done: %s", got)
	}
	expectCells(t, restores.row(t, "shop-back"), map[string]string{"CLUSTER": "spoke-1", "PHASE": "Success"})
	expectCells(t, restores.row(t, "shop-to-2"), map[string]string{"CLUSTER": "spoke-2"})

	// A backup not started yet has no data folder.
	out = mustRun(t, "describe", "backup", "db-failed", "-n", ns)
	expectContains(t, out, "Data:           not written yet", "Restores:\n")

	// -o yaml round trip.
	var y fleetv1alpha1.Backup
	if err := yaml.Unmarshal([]byte(mustRun(t, "describe", "backup", "shop-done", "-n", ns, "-o", "yaml")), &y); err != nil {
		t.Fatal(err)
	}
	if y.Kind != "Backup" || y.APIVersion != "fleet.lifeboat.dev/v1alpha1" || y.Status.Warnings != 2 || y.Status.BackupID != "20261121-shop" {
		t.Errorf("describe -o yaml: %+v", y)
	}

	r := run(t, "describe", "backup", "nope", "-n", ns)
	expectCode(t, r, ExitError, `backup "nope" in namespace "desc-a" not found`)
	expectCode(t, run(t, "describe", "backup", "-n", ns), ExitUsage, "needs a NAME")
	expectCode(t, run(t, "describe", "location", "x"), ExitUsage, `cannot describe "location"`)
}

func TestBackupCreate(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "mk-a")
	create(t, location(ns, "weu", "", "mk-spoke"), nil)
	create(t, backupCluster("mk-spoke"), nil)

	out := mustRun(t, "backup", "create", "shop-1", "-n", ns, "--cluster", "mk-spoke", "--location", "weu", "--include-namespaces", "shop, db", "--ttl", "720h", "--volumes", "Skip")
	expectContains(t, out, "backup.fleet.lifeboat.dev/shop-1 created")
	b := &fleetv1alpha1.Backup{}
	if err := hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-1"}, b); err != nil {
		t.Fatal(err)
	}
	want := fleetv1alpha1.BackupSpec{Cluster: "mk-spoke", BackupTemplate: fleetv1alpha1.BackupTemplate{
		Location:  "weu",
		Selection: &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop", "db"}, ClusterScopedResources: backupv1alpha1.ClusterScopedAuto},
		TTL:       &metav1.Duration{Duration: 720 * time.Hour},
		Volumes:   backupv1alpha1.VolumesSkip,
	}}
	if !apiequality.Semantic.DeepEqual(b.Spec, want) {
		t.Errorf("spec\n got %+v\nwant %+v", b.Spec, want)
	}

	// Flags before the command, -o yaml prints the created Backup.
	var y fleetv1alpha1.Backup
	if err := yaml.Unmarshal([]byte(mustRun(t, "-n", ns, "-o", "yaml", "backup", "create", "all", "--cluster=mk-spoke", "--location=weu")), &y); err != nil {
		t.Fatal(err)
	}
	if y.Kind != "Backup" || y.Namespace != ns || y.Spec.Selection != nil || y.Spec.Volumes != backupv1alpha1.VolumesData || y.UID == "" {
		t.Errorf("created with -o yaml: %+v", y)
	}

	// --wait follows the phase until it ends.
	out2 := &syncBuffer{}
	go setBackupPhases(t, out2, ns, "waited", fleetv1alpha1.BackupInProgress, fleetv1alpha1.BackupSuccess)
	r := runTo(t, out2, hub.AdminKubeconfig, "backup", "create", "waited", "-n", ns, "--cluster", "mk-spoke", "--location", "weu", "--wait")
	expectCode(t, r, ExitOK)
	expectContains(t, r.out, "backup waited: Pending", "backup waited: InProgress, stage Resources, 1/2 items, 100B", "backup waited: Success")

	out3 := &syncBuffer{}
	go setBackupPhases(t, out3, ns, "fails", fleetv1alpha1.BackupFailed)
	r = runTo(t, out3, hub.AdminKubeconfig, "backup", "create", "fails", "-n", ns, "--cluster", "mk-spoke", "--location", "weu", "--wait")
	expectCode(t, r, ExitUnsuccessful, "backup fails ended Failed")

	r = run(t, "backup", "create", "slow", "-n", ns, "--cluster", "mk-spoke", "--location", "weu", "--wait", "--timeout", "300ms")
	expectCode(t, r, ExitTimeout, "gave up waiting")

	// Errors.
	expectCode(t, run(t, "backup", "create", "x", "-n", ns, "--location", "weu"), ExitUsage, "needs --cluster and --location")
	expectCode(t, run(t, "backup", "create", "-n", ns, "--cluster", "mk-spoke", "--location", "weu"), ExitUsage, "needs a NAME")
	expectCode(t, run(t, "backup", "create", "x", "-n", ns, "--cluster", "mk-spoke", "--location", "weu", "--volumes", "All"), ExitUsage, `--volumes must be Data or Skip, not "All"`)
	expectCode(t, run(t, "backup", "create", "x", "-n", ns, "--cluster", "mk-spoke", "--location", "nope"), ExitError, `backup location "nope" in namespace "mk-a" not found`)
	expectCode(t, run(t, "backup", "create", "x", "-n", ns, "--cluster", "nope", "--location", "weu"), ExitError, `backup cluster "nope" not found`)
	expectCode(t, run(t, "backup", "create", "x", "-n", ns, "--cluster", "mk-spoke", "--location", "weu", "--include-namespaces", "Bad_NS"), ExitUsage, `"Bad_NS" is not a namespace name`)
	expectCode(t, run(t, "backup", "create", "shop-1", "-n", ns, "--cluster", "mk-spoke", "--location", "weu"), ExitError, `backup "shop-1" in namespace "mk-a" already exists`)
	expectCode(t, run(t, "backup", "create", "Bad_Name", "-n", ns, "--cluster", "mk-spoke", "--location", "weu"), ExitError, "the hub rejected")
	expectCode(t, run(t, "backup", "create", "x", "-n", ns, "--bogus"), ExitUsage, "unknown flag: --bogus")
	for _, name := range []string{"x", "Bad_Name"} {
		err := hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &fleetv1alpha1.Backup{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("a failed create left Backup %s: %v", name, err)
		}
	}
}

// setBackupPhases plays the hub manager: it walks the Backup through phases,
// each once the command has shown the one before.
func setBackupPhases(t *testing.T, out *syncBuffer, ns, name string, phases ...fleetv1alpha1.BackupPhase) {
	ctx := context.Background()
	shown := "backup " + name + ": Pending"
	for _, p := range phases {
		if !out.waitOutput(shown) {
			t.Errorf("the command never showed %q", shown)
			return
		}
		b := &fleetv1alpha1.Backup{}
		if err := hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
			t.Errorf("reading %s: %v", name, err)
			return
		}
		b.Status.Phase = p
		if p == fleetv1alpha1.BackupInProgress {
			b.Status.Stage = backupv1alpha1.StageResources
			b.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: 2, ItemsDone: 1, BytesDone: 100}
		}
		if err := hub.Client.Status().Update(ctx, b); err != nil {
			t.Errorf("status of %s: %v", name, err)
			return
		}
		shown = "backup " + name + ": " + string(p)
	}
}

func TestRestoreCreate(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "rs-a")
	seedBackups(t, ns)
	create(t, backupCluster("rs-target"), nil)

	out := mustRun(t, "restore", "create", "shop-copy", "-n", ns, "--from-backup", "shop-done", "--cluster", "rs-target",
		"--namespace-mapping", "shop:shop-copy,db:db-copy", "--existing-resource-policy", "update", "--include-namespaces", "shop,db")
	expectContains(t, out, "restore.fleet.lifeboat.dev/shop-copy created")
	r := &fleetv1alpha1.Restore{}
	if err := hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-copy"}, r); err != nil {
		t.Fatal(err)
	}
	want := fleetv1alpha1.RestoreSpec{Backup: "shop-done", Cluster: "rs-target", RestoreOptions: backupv1alpha1.RestoreOptions{
		NamespaceMapping:       backupv1alpha1.NamespaceMapping{"shop": "shop-copy", "db": "db-copy"},
		ExistingResourcePolicy: backupv1alpha1.ExistingResourceUpdate,
		Selection:              &backupv1alpha1.ResourceSelection{IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop", "db"}, ClusterScopedResources: backupv1alpha1.ClusterScopedAuto},
	}}
	if !apiequality.Semantic.DeepEqual(r.Spec, want) {
		t.Errorf("spec\n got %+v\nwant %+v", r.Spec, want)
	}

	// Defaults: the backup's cluster, Skip.
	mustRun(t, "restore", "create", "in-place", "-n", ns, "--from-backup", "shop-done")
	if err := hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "in-place"}, r); err != nil {
		t.Fatal(err)
	}
	if r.Spec.Cluster != "" || r.Spec.NamespaceMapping != nil || r.Spec.ExistingResourcePolicy != backupv1alpha1.ExistingResourceSkip {
		t.Errorf("default restore spec %+v", r.Spec)
	}

	// --wait.
	go func() {
		rr := &fleetv1alpha1.Restore{}
		for hub.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waited"}, rr) != nil {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		rr.Status.Phase, rr.Status.Cluster = backupv1alpha1.RestoreSuccess, "spoke-1"
		rr.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: 42, ItemsDone: 42}
		if err := hub.Client.Status().Update(ctx, rr); err != nil {
			t.Error(err)
		}
	}()
	out = mustRun(t, "restore", "create", "waited", "-n", ns, "--from-backup", "shop-done", "--wait")
	expectContains(t, out, "restore waited: Success on spoke-1, 42 items")

	// The restores list.
	tab := parseTables(t, mustRun(t, "restores", "-n", ns, "--backup", "shop-done", "-o", "wide"))[0]
	if got := strings.Join(tab.keys(), ","); got != "in-place,shop-copy,waited" {
		t.Errorf("restores: %s", got)
	}
	expectCells(t, tab.row(t, "shop-copy"), map[string]string{"BACKUP": "shop-done", "CLUSTER": "rs-target", "EXISTING": "Update", "NAMESPACE MAPPING": "db:db-copy,shop:shop-copy"})

	// Errors.
	expectCode(t, run(t, "restore", "create", "x", "-n", ns), ExitUsage, "needs --from-backup")
	expectCode(t, run(t, "restore", "create", "x", "-n", ns, "--from-backup", "nope"), ExitError, `backup "nope" in namespace "rs-a" not found`)
	expectCode(t, run(t, "restore", "create", "x", "-n", ns, "--from-backup", "db-failed"), ExitError, `backup "db-failed" is Failed: only a backup that ended Success or PartialSuccess can be restored`)
	expectCode(t, run(t, "restore", "create", "x", "-n", ns, "--from-backup", "shop-done", "--namespace-mapping", "shop"), ExitUsage, `"shop" is not old:new`)
	expectCode(t, run(t, "restore", "create", "x", "-n", ns, "--from-backup", "shop-done", "--existing-resource-policy", "Replace"), ExitUsage, "must be Skip or Update")
	expectCode(t, run(t, "restore", "create", "x", "-n", ns, "--from-backup", "shop-done", "--cluster", "nope"), ExitError, `backup cluster "nope" not found`)
	expectCode(t, run(t, "restore", "x"), ExitUsage, `unknown subcommand "x" of restore`)
}

func TestBackupDelete(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "del-a")
	create(t, location(ns, "weu", "", "del-spoke"), nil)

	// A Backup without a finalizer goes at once.
	create(t, backup(ns, "plain", "del-spoke", "weu"), nil)
	out := mustRun(t, "backup", "delete", "plain", "-n", ns)
	expectContains(t, out, "backup.fleet.lifeboat.dev/plain deleted", "backup.fleet.lifeboat.dev/plain is gone")

	// A Backup the hub holds in DeletePending: no cluster can reach the location.
	stuck := backup(ns, "stuck", "del-spoke", "weu")
	stuck.Finalizers = []string{"fleet.lifeboat.dev/test"}
	create(t, stuck, func(b *fleetv1alpha1.Backup) {
		b.Status.Phase = fleetv1alpha1.BackupDeletePending
		b.Status.Conditions = []metav1.Condition{cond(fleetv1alpha1.ConditionDeleting, metav1.ConditionFalse, fleetv1alpha1.ReasonNoValidCluster,
			"no cluster has a Valid connection to location weu")}
	})
	t.Cleanup(func() {
		b := &fleetv1alpha1.Backup{}
		if hub.Client.Get(ctx, client.ObjectKeyFromObject(stuck), b) == nil {
			b.Finalizers = nil
			_ = hub.Client.Update(ctx, b)
		}
	})
	out = mustRun(t, "backup", "delete", "stuck", "-n", ns)
	expectContains(t, out, "backup stuck: phase DeletePending, Deleting=False NoValidCluster: no cluster has a Valid connection to location weu",
		"backup delete stuck -n del-a --force")
	b := &fleetv1alpha1.Backup{}
	if err := hub.Client.Get(ctx, client.ObjectKeyFromObject(stuck), b); err != nil {
		t.Fatal(err)
	}
	if b.DeletionTimestamp == nil {
		t.Errorf("backup delete did not delete")
	}
	if _, ok := b.Annotations[fleetv1alpha1.ForceDeleteAnnotation]; ok {
		t.Errorf("backup delete without --force set %s", fleetv1alpha1.ForceDeleteAnnotation)
	}

	// The hub acts after the delete: the command waits a moment and shows it.
	later := backup(ns, "later", "del-spoke", "weu")
	later.Finalizers = []string{"fleet.lifeboat.dev/test"}
	create(t, later, func(b *fleetv1alpha1.Backup) { b.Status.Phase = fleetv1alpha1.BackupSuccess })
	t.Cleanup(func() {
		b := &fleetv1alpha1.Backup{}
		if hub.Client.Get(ctx, client.ObjectKeyFromObject(later), b) == nil {
			b.Finalizers = nil
			_ = hub.Client.Update(ctx, b)
		}
	})
	go func() {
		b := &fleetv1alpha1.Backup{}
		for hub.Client.Get(ctx, client.ObjectKeyFromObject(later), b) != nil || b.DeletionTimestamp == nil {
			time.Sleep(20 * time.Millisecond)
		}
		b.Status.Phase = fleetv1alpha1.BackupDeletePending
		b.Status.Conditions = []metav1.Condition{cond(fleetv1alpha1.ConditionDeleting, metav1.ConditionFalse, fleetv1alpha1.ReasonLocationNotFound, "BackupLocation \"weu\" does not exist")}
		if err := hub.Client.Status().Update(ctx, b); err != nil {
			t.Error(err)
		}
	}()
	out = mustRun(t, "backup", "delete", "later", "-n", ns)
	expectContains(t, out, "backup later: phase DeletePending, Deleting=False LocationNotFound", "backup delete later -n del-a --force")

	r := run(t, "backup", "delete", "stuck", "-n", ns, "--force")
	expectCode(t, r, ExitOK)
	expectContains(t, r.out, "annotated fleet.lifeboat.dev/force-delete=true", "the location keeps a tombstone", "was already being deleted", "phase DeletePending")
	if strings.Contains(r.out, "--force\n") {
		t.Errorf("suggests --force after --force:\n%s", r.out)
	}
	if err := hub.Client.Get(ctx, client.ObjectKeyFromObject(stuck), b); err != nil {
		t.Fatal(err)
	}
	if b.Annotations[fleetv1alpha1.ForceDeleteAnnotation] != "true" {
		t.Errorf("annotations after --force: %v", b.Annotations)
	}

	// --force on a Backup not yet deleting sets the annotation before deleting, and says it is not DeletePending.
	done := backup(ns, "done", "del-spoke", "weu")
	done.Finalizers = []string{"fleet.lifeboat.dev/test"}
	create(t, done, func(b *fleetv1alpha1.Backup) { b.Status.Phase = fleetv1alpha1.BackupSuccess })
	t.Cleanup(func() {
		b := &fleetv1alpha1.Backup{}
		if hub.Client.Get(ctx, client.ObjectKeyFromObject(done), b) == nil {
			b.Finalizers = nil
			_ = hub.Client.Update(ctx, b)
		}
	})
	r = run(t, "backup", "delete", "done", "-n", ns, "--force")
	expectCode(t, r, ExitOK, "is Success, not DeletePending")
	if err := hub.Client.Get(ctx, client.ObjectKeyFromObject(done), b); err != nil {
		t.Fatal(err)
	}
	if b.Annotations[fleetv1alpha1.ForceDeleteAnnotation] != "true" || b.DeletionTimestamp == nil {
		t.Errorf("--force: annotations %v, deletion %v", b.Annotations, b.DeletionTimestamp)
	}

	// --wait returns once the Backup is gone.
	go func() {
		time.Sleep(300 * time.Millisecond)
		b := &fleetv1alpha1.Backup{}
		if err := hub.Client.Get(ctx, client.ObjectKeyFromObject(done), b); err != nil {
			t.Error(err)
			return
		}
		b.Finalizers = nil
		if err := hub.Client.Update(ctx, b); err != nil {
			t.Error(err)
		}
	}()
	out = mustRun(t, "backup", "delete", "done", "-n", ns, "--wait")
	expectContains(t, out, "backup.fleet.lifeboat.dev/done is gone")

	expectCode(t, run(t, "backup", "delete", "nope", "-n", ns), ExitError, `backup "nope" in namespace "del-a" not found`)
	expectCode(t, run(t, "backup", "delete", "-n", ns), ExitUsage, "needs a NAME")
	expectCode(t, run(t, "backup", "delete", "a", "b", "-n", ns), ExitUsage, `takes one NAME, got "a b"`)
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "sync-a")
	create(t, location(ns, "weu", "", "sync-spoke"), nil)
	create(t, backupCluster("sync-spoke"), nil)

	out := mustRun(t, "sync", "-n", ns, "--location", "weu", "--cluster", "sync-spoke")
	expectContains(t, out, "backupsync.fleet.lifeboat.dev/weu-")
	list := &fleetv1alpha1.BackupSyncList{}
	if err := hub.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Spec != (fleetv1alpha1.BackupSyncSpec{Location: "weu", Cluster: "sync-spoke"}) {
		t.Fatalf("syncs %+v", list.Items)
	}
	if !strings.Contains(out, list.Items[0].Name+" created") {
		t.Errorf("output does not name the sync %s: %s", list.Items[0].Name, out)
	}

	// --wait reports the counts.
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			l := &fleetv1alpha1.BackupSyncList{}
			if err := hub.Client.List(ctx, l, client.InNamespace(ns)); err == nil {
				for _, s := range l.Items {
					if s.Spec.Cluster == "" {
						time.Sleep(200 * time.Millisecond)
						s.Status.Phase, s.Status.Cluster = backupv1alpha1.TaskCompleted, "sync-spoke"
						s.Status.Found, s.Status.Imported, s.Status.Missing, s.Status.Rejected = 3, 2, 1, 0
						if err := hub.Client.Status().Update(ctx, &s); err != nil {
							t.Error(err)
						}
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	out = mustRun(t, "sync", "-n", ns, "--location", "weu", "--wait")
	expectContains(t, out, "Completed by sync-spoke, found 3, imported 2, missing 1, rejected 0")

	expectCode(t, run(t, "sync", "-n", ns), ExitUsage, "sync needs --location")
	expectCode(t, run(t, "sync", "-n", ns, "--location", "nope"), ExitError, `backup location "nope" in namespace "sync-a" not found`)
	expectCode(t, run(t, "sync", "extra", "-n", ns, "--location", "weu"), ExitUsage, "takes no arguments")
}

// TestErrors checks the errors that any command can meet.
func TestErrors(t *testing.T) {
	ns := namespace(t, "err-a")
	// A user without any RBAC on the hub.
	nobody := kubeconfigWith(t, ns, "nobody")
	r := runWith(t, nobody, "backups")
	expectCode(t, r, ExitError, "Error: not allowed:", `cannot list resource "backups"`)
	r = runWith(t, nobody, "clusters")
	expectCode(t, r, ExitError, "not allowed", `"backupclusters"`)

	expectCode(t, run(t, "frobnicate"), ExitUsage, `unknown command "frobnicate"`)
	expectCode(t, run(t, "backup"), ExitUsage, "backup needs a subcommand")
	expectCode(t, run(t, "clusters", "-o", "xml"), ExitUsage, `unknown output format "xml"`)
	expectCode(t, run(t, "clusters", "--context", "nope"), ExitError, `context "nope" does not exist`)
	expectCode(t, runWith(t, "/nonexistent/kubeconfig", "clusters"), ExitError, "reading the kubeconfig")

	// help goes to stdout and succeeds.
	r = run(t, "help")
	expectCode(t, r, ExitOK)
	expectContains(t, r.out, "backup", "describe", "sync", "completion", "-A, --all-namespaces", "--as string", "--token string")
	r = run(t, "backup", "--help")
	expectCode(t, r, ExitOK)
	expectContains(t, r.out, "create", "delete")
	r = run(t, "backup", "create", "--help")
	expectCode(t, r, ExitOK)
	expectContains(t, r.out, "--include-namespaces", "--wait")
}

// TestUnits checks the formatting helpers.
func TestUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 1536 * 1024: "1.5MiB", 3 << 30: "3.0GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 5*time.Minute + 3*time.Second: "5m", 2*time.Hour + 59*time.Minute: "2h", 3*24*time.Hour + time.Hour: "3d"} {
		if got := age(ago(d)); got != want {
			t.Errorf("age(%s) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{6 * time.Hour: "6h", 90 * time.Minute: "1h30m", 720 * time.Hour: "720h", 5 * time.Minute: "5m", 90 * time.Second: "1m30s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := age(nil); got != "" {
		t.Errorf("age(nil) = %q", got)
	}
	// Run as the kubectl plugin, messages name `kubectl lifeboat`.
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"/home/me/bin/kubectl-lifeboat"}
	if got := programName(); got != "kubectl lifeboat" {
		t.Errorf("programName as kubectl-lifeboat: %q", got)
	}
	var out, errOut bytes.Buffer
	if code := (&App{Out: &out, Err: &errOut}).Run(context.Background(), []string{"frobnicate"}); code != ExitUsage || !strings.Contains(errOut.String(), "Run 'kubectl lifeboat help'") {
		t.Errorf("as a plugin: exit %d, stderr %q", code, errOut.String())
	}
	os.Args = []string{"lifeboat"}
	if got := programName(); got != "lifeboat" {
		t.Errorf("programName as lifeboat: %q", got)
	}
}

// TestKubectlFlagsAndPrinters checks what the command line takes from
// kubectl (cli-runtime and kubectl's printers): -o jsonpath, custom-columns
// and name, impersonation with --as, and generated shell completion.
func TestKubectlFlagsAndPrinters(t *testing.T) {
	ns := namespace(t, "kube-a")
	seedBackups(t, ns)

	out := mustRun(t, "backups", "-n", ns, "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}")
	if out != "db-failed=Failed\nshop-done=Success\nshop-running=InProgress\n" {
		t.Errorf("-o jsonpath on a list: %q", out)
	}
	if out := mustRun(t, "describe", "backup", "shop-done", "-n", ns, "-o", "jsonpath={.spec.cluster}"); out != "spoke-1" {
		t.Errorf("-o jsonpath on one object: %q", out)
	}
	tab := parseTables(t, mustRun(t, "backups", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,ITEMS:.status.progress.itemsDone"))[0]
	expectCells(t, tab.row(t, "shop-done"), map[string]string{"ITEMS": "42"})
	if out := mustRun(t, "backups", "-n", ns, "--phase", "Success", "-o", "name"); out != "backup.fleet.lifeboat.dev/shop-done\n" {
		t.Errorf("-o name: %q", out)
	}
	expectCode(t, run(t, "backups", "-n", ns, "-o", "jsonpath={.items[}"), ExitUsage, "-o jsonpath={.items[}")

	// --as impersonates as kubectl does: the admin's kubeconfig acting as a
	// user without RBAC is refused.
	expectCode(t, run(t, "backups", "-n", ns, "--as", "nobody"), ExitError, `User "nobody" cannot list resource "backups"`)

	for _, shell := range []string{"bash", "zsh", "fish"} {
		if out := mustRun(t, "completion", shell); !strings.Contains(out, "__start_lifeboat") && !strings.Contains(out, "__lifeboat_") && !strings.Contains(out, "_lifeboat") {
			t.Errorf("completion %s does not complete lifeboat: %.200q", shell, out)
		}
	}
	// Completion knows the commands and the Lifeboat --cluster flag.
	out = mustRun(t, "__complete", "backup", "")
	expectContains(t, out, "create", "delete")
	out = mustRun(t, "__complete", "backups", "--")
	expectContains(t, out, "--cluster", "--as", "--phase")
}

// TestSchedules lists schedules with their policy's timing and how the last
// runs of their clusters went.
func TestSchedules(t *testing.T) {
	ns := namespace(t, "sched-a")
	create(t, &fleetv1alpha1.SchedulePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"},
		Spec: fleetv1alpha1.SchedulePolicySpec{Cron: "0 * * * *", Retention: &fleetv1alpha1.Retention{KeepLast: 3}}}, nil)
	create(t, &fleetv1alpha1.SchedulePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "often"},
		Spec: fleetv1alpha1.SchedulePolicySpec{Interval: &metav1.Duration{Duration: 90 * time.Minute}, Retention: &fleetv1alpha1.Retention{KeepLast: 3}}}, nil)
	schedule := func(name, policy string) *fleetv1alpha1.BackupSchedule {
		return &fleetv1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: fleetv1alpha1.BackupScheduleSpec{Policy: backupv1alpha1.ObjectName(policy),
				ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
				Template:        fleetv1alpha1.BackupTemplate{Location: "weu"}}}
	}
	create(t, schedule("shop", "hourly"), func(s *fleetv1alpha1.BackupSchedule) {
		s.Status.Phase = fleetv1alpha1.ScheduleActive
		s.Status.Clusters = []fleetv1alpha1.ScheduledCluster{
			{Cluster: "spoke-1", LastPhase: fleetv1alpha1.BackupSuccess, LastRunTime: ago(20 * time.Minute),
				LastSuccessfulTime: ago(20 * time.Minute), NextRunTime: ago(-40 * time.Minute)},
			{Cluster: "spoke-2", LastPhase: fleetv1alpha1.BackupFailed, LastRunTime: ago(20 * time.Minute),
				LastSuccessfulTime: ago(3 * time.Hour), NextRunTime: ago(-40 * time.Minute)},
		}
	})
	create(t, schedule("db", "often"), func(s *fleetv1alpha1.BackupSchedule) {
		s.Status.Phase = fleetv1alpha1.ScheduleSuspended
		s.Status.Clusters = []fleetv1alpha1.ScheduledCluster{{Cluster: "spoke-3"}}
	})

	tab := parseTables(t, mustRun(t, "schedules", "-n", ns))[0]
	if got := strings.Join(tab.headers, "|"); got != "NAME|POLICY|SCHEDULE|PHASE|CLUSTERS|LAST OK|LAST RUN|NEXT RUN|AGE" {
		t.Errorf("schedule headers %q", got)
	}
	expectCells(t, tab.row(t, "shop"), map[string]string{"POLICY": "hourly", "SCHEDULE": "0 * * * *", "PHASE": "Active",
		"CLUSTERS": "2", "LAST OK": "1/2", "LAST RUN": "20m"})
	if next := tab.row(t, "shop")["NEXT RUN"]; next != "in 39m" && next != "in 40m" {
		t.Errorf("NEXT RUN of shop: %q", next)
	}
	expectCells(t, tab.row(t, "db"), map[string]string{"SCHEDULE": "every 1h30m", "PHASE": "Suspended", "LAST OK": "0/1",
		"LAST RUN": none, "NEXT RUN": none})

	wide := parseTables(t, mustRun(t, "schedules", "-n", ns, "-o", "wide"))[0]
	expectCells(t, wide.row(t, "shop"), map[string]string{"CLUSTERS FROM": "env=prod", "OLDEST SUCCESS": "3h"})
	expectCells(t, wide.row(t, "db"), map[string]string{"OLDEST SUCCESS": none})

	if got := strings.Join(parseTables(t, mustRun(t, "schedules", "-n", ns, "--cluster", "spoke-3"))[0].keys(), ","); got != "db" {
		t.Errorf("--cluster spoke-3: %s", got)
	}
	if out := mustRun(t, "schedules", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"); out != "db shop" {
		t.Errorf("-o jsonpath: %q", out)
	}
	r := run(t, "schedules", "-n", ns, "--cluster", "nope")
	expectCode(t, r, ExitOK, "No backup schedules found in namespace "+ns)
}

// TestDescribeRestore shows a restore with its backup, options and result.
// A synced backup shows the selection its backup.json records, or says
// that it records none, instead of "everything".
func TestDescribeSyncedBackupShowsTheRecordedSelection(t *testing.T) {
	ns := namespace(t, "desc-sync")
	create(t, location(ns, "weu", "team", "spoke-1"), nil)
	create(t, backup(ns, "imported", "spoke-1", "weu"), func(b *fleetv1alpha1.Backup) {
		b.Status.Phase, b.Status.Origin = fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSynced
		b.Status.RecordedSelection = &fleetv1alpha1.SelectionSummary{
			IncludedNamespaces: []backupv1alpha1.NamespaceName{"shop", "db"}, NamespacesOmitted: 3, LabelSelector: true}
	})
	create(t, backup(ns, "unrecorded", "spoke-1", "weu"), func(b *fleetv1alpha1.Backup) {
		b.Status.Phase, b.Status.Origin = fleetv1alpha1.BackupSuccess, fleetv1alpha1.OriginSynced
	})
	expectContains(t, mustRun(t, "describe", "backup", "imported", "-n", ns),
		"Selection:      namespaces shop,db; and 3 more namespaces; a label selector  (as backup.json records it)\n")
	expectContains(t, mustRun(t, "describe", "backup", "unrecorded", "-n", ns),
		"Selection:      not recorded (imported by a sync; backup.json records no selection)\n")
}

func TestDescribeRestore(t *testing.T) {
	ns := namespace(t, "drs-a")
	seedBackups(t, ns)
	create(t, &fleetv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-copy"},
		Spec: fleetv1alpha1.RestoreSpec{Backup: "shop-done", Cluster: "spoke-2",
			RestoreOptions: backupv1alpha1.RestoreOptions{NamespaceMapping: backupv1alpha1.NamespaceMapping{"shop": "shop-copy"},
				StorageClassMappings:   backupv1alpha1.StorageClassMapping{"premium-lrs": "managed-csi"},
				ExistingResourcePolicy: backupv1alpha1.ExistingResourceUpdate}}},
		func(r *fleetv1alpha1.Restore) {
			r.Status.Phase, r.Status.Cluster = backupv1alpha1.RestorePartialSuccess, "spoke-2"
			r.Status.Progress = &backupv1alpha1.Progress{ItemsTotal: 34, ItemsDone: 26}
			r.Status.Warnings, r.Status.Errors = 1, 7
			r.Status.StartTime, r.Status.CompletionTime = ago(10*time.Minute), ago(9*time.Minute)
		})
	out := mustRun(t, "describe", "restore", "shop-copy", "-n", ns)
	expectContains(t, out, "Backup:         shop-done (cluster spoke-1, backup ID 20261121-shop)", "Cluster:        spoke-2",
		"Phase:          PartialSuccess", "Namespace map:  shop:shop-copy", "Class map:      premium-lrs:managed-csi", "Existing:       Update",
		"Progress:       26 of 34 items", "Warnings:       1", "Errors:         7", "took 60s")
	if out := mustRun(t, "describe", "rst", "shop-copy", "-n", ns, "-o", "jsonpath={.spec.backup}"); out != "shop-done" {
		t.Errorf("describe rst -o jsonpath: %q", out)
	}
	expectCode(t, run(t, "describe", "restore", "nope", "-n", ns), ExitError, `restore "nope" in namespace "drs-a" not found`)
	expectCode(t, run(t, "describe", "schedule", "x"), ExitUsage, `cannot describe "schedule": use backup or restore`)
}

// protection shows each cluster's verdict counts and the namespaces that
// are not Protected, as the clusters' reports say.
func TestProtection(t *testing.T) {
	create(t, backupCluster("pr-one"), func(c *fleetv1alpha1.BackupCluster) {
		c.Status.Protection = &fleetv1alpha1.ProtectionReport{
			InventoryTime: ago(2 * time.Minute), Namespaces: 4, Protected: 2, AtRisk: 1, Unprotected: 1,
			NotProtected: []fleetv1alpha1.NamespaceProtection{
				{Namespace: "db", Verdict: fleetv1alpha1.AtRisk, LastSuccessfulBackup: "team-a/db-1", LastSuccessfulTime: ago(3 * time.Hour),
					RPO: &metav1.Duration{Duration: 66 * time.Minute}, Schedule: "team-a/hourly"},
				{Namespace: "scratch", Verdict: fleetv1alpha1.Unprotected},
			},
		}
	})
	create(t, backupCluster("pr-two"), func(c *fleetv1alpha1.BackupCluster) {
		c.Status.Protection = &fleetv1alpha1.ProtectionReport{Reason: fleetv1alpha1.ReasonInventoryRejected,
			Message: "The namespace inventory was not believed: the inventory lists namespace a twice"}
	})

	tables := parseTables(t, mustRun(t, "protection"))
	if len(tables) != 2 {
		t.Fatalf("want the counts and the namespaces not Protected, got %d tables", len(tables))
	}
	expectCells(t, tables[0].row(t, "pr-one"), map[string]string{"NAMESPACES": "4", "PROTECTED": "2", "AT RISK": "1", "UNPROTECTED": "1", "INVENTORY": "2m", "NOTE": none})
	expectCells(t, tables[0].row(t, "pr-two"), map[string]string{"PROTECTED": none,
		"NOTE": "InventoryRejected: The namespace inventory was not believed: the inventory lists namespace a twice"})
	rows := map[string]map[string]string{}
	for _, r := range tables[1].rows {
		if r["CLUSTER"] == "pr-one" {
			rows[r["NAMESPACE"]] = r
		}
	}
	expectCells(t, rows["db"], map[string]string{"VERDICT": "AtRisk", "LAST SUCCESS": "3h ago", "BACKUP": "team-a/db-1", "RPO": "66m", "SCHEDULE": "team-a/hourly"})
	expectCells(t, rows["scratch"], map[string]string{"VERDICT": "Unprotected", "LAST SUCCESS": none, "RPO": none})

	// --cluster shows one cluster; an unknown one is an error.
	one := parseTables(t, mustRun(t, "protection", "--cluster", "pr-two"))
	if keys := one[0].keys(); len(one) != 1 || len(keys) != 1 || keys[0] != "pr-two" {
		t.Errorf("protection --cluster pr-two: %v", one)
	}
	if r := run(t, "protection", "--cluster", "pr-none"); r.code != ExitError || !strings.Contains(r.errOut, `backup cluster "pr-none" not found`) {
		t.Errorf("unknown cluster: %+v", r)
	}
	if out := mustRun(t, "protection", "--cluster", "pr-one", "-o", "jsonpath={.items[0].status.protection.atRisk}"); out != "1" {
		t.Errorf("protection -o jsonpath: %q", out)
	}
}
