package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// hub is the test control plane with the hub's CRDs and no hub manager: the
// tests write statuses themselves.
var hub *fleet.ControlPlane

func TestMain(m *testing.M) {
	// The hub's CRDs with OCM's: a location's connections are its ManifestWorks.
	os.Exit(fleet.TestControlPlane{Name: "cli", Setup: func(ctx context.Context, cp *fleet.ControlPlane) error {
		hub = cp
		return fleet.InstallHubCRDs(ctx, cp.Client)
	}}.RunTests(m))
}

// result is what one command line did.
type result struct {
	code        int
	out, errOut string
}

// run runs the command line against the test hub with the admin kubeconfig.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, hub.AdminKubeconfig, args...)
}

func runWith(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	return runTo(t, &syncBuffer{}, kubeconfig, args...)
}

// syncBuffer is an output that a test goroutine may read while the command writes it.
type syncBuffer struct{ fleet.LockedBuffer }

// waitOutput waits until out says want.
func (s *syncBuffer) waitOutput(want string) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(s.String(), want) {
			return true
		}
	}
	return false
}

// runTo runs the command line with stdout to out.
func runTo(t *testing.T, out *syncBuffer, kubeconfig string, args ...string) result {
	t.Helper()
	var errOut bytes.Buffer
	app := &App{Out: out, Err: &errOut, PollInterval: 50 * time.Millisecond, DeleteSettle: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := app.Run(ctx, append([]string{"--kubeconfig", kubeconfig}, args...))
	r := result{code: code, out: out.String(), errOut: errOut.String()}
	t.Logf("lifeboat %s -> %d\n%s%s", strings.Join(args, " "), code, r.out, r.errOut)
	return r
}

// mustRun runs a command line that must succeed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, args...)
	if r.code != ExitOK {
		t.Fatalf("lifeboat %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.errOut)
	}
	return r.out
}

// kubeconfigWith writes a copy of the admin kubeconfig whose current context
// uses namespace and, if set, impersonates user.
func kubeconfigWith(t *testing.T, namespace, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(hub.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext].DeepCopy()
	ctx.Namespace = namespace
	if user != "" {
		auth := cfg.AuthInfos[ctx.AuthInfo].DeepCopy()
		auth.Impersonate = user
		cfg.AuthInfos["impersonated"] = auth
		ctx.AuthInfo = "impersonated"
	}
	cfg.Contexts["test"] = ctx
	cfg.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// namespace creates a namespace for one test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	if err := client.IgnoreAlreadyExists(hub.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})); err != nil {
		t.Fatal(err)
	}
	return name
}

// create creates obj and then writes the status that setStatus sets, as the
// hub manager would.
func create[T client.Object](t *testing.T, obj T, setStatus func(T)) T {
	t.Helper()
	ctx := context.Background()
	if err := hub.Client.Create(ctx, obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	if setStatus != nil {
		setStatus(obj)
		if err := hub.Client.Status().Update(ctx, obj); err != nil {
			t.Fatalf("writing the status of %T %s: %v", obj, obj.GetName(), err)
		}
	}
	return obj
}

func ago(d time.Duration) *metav1.Time {
	t := metav1.NewTime(time.Now().Add(-d))
	return &t
}

func cond(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: *ago(3 * time.Minute)}
}

func location(ns, name, prefix string, clusters ...string) *fleetv1alpha1.BackupLocation {
	l := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{
			StorageTarget: backupv1alpha1.StorageTarget{
				Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "lifeboatweu", Container: "backups", Prefix: prefix},
				Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "5a1f0c3e-8d2b-4e6f-9c1a-2b3d4e5f6a7b", TenantID: "0a1b2c3d-8d2b-4e6f-9c1a-2b3d4e5f6a7b"},
			},
		},
	}
	for _, c := range clusters {
		l.Spec.Clusters = append(l.Spec.Clusters, backupv1alpha1.ClusterName(c))
	}
	return l
}

func backupCluster(name string) *fleetv1alpha1.BackupCluster {
	return &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: true}}
}

func backup(ns, name, cluster, loc string) *fleetv1alpha1.Backup {
	return &fleetv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: fleetv1alpha1.BackupSpec{
			Cluster:        backupv1alpha1.ClusterName(cluster),
			BackupTemplate: fleetv1alpha1.BackupTemplate{Location: backupv1alpha1.ObjectName(loc)},
		},
	}
}

// parsedTable is one table of the output: its headers and rows, cells by header.
type parsedTable struct {
	headers []string
	rows    []map[string]string
}

// row finds the row whose first column is key.
func (p parsedTable) row(t *testing.T, key string) map[string]string {
	t.Helper()
	for _, r := range p.rows {
		if r[p.headers[0]] == key {
			return r
		}
	}
	t.Fatalf("no row %q in table %v", key, p.rows)
	return nil
}

func (p parsedTable) keys() []string {
	var out []string
	for _, r := range p.rows {
		out = append(out, r[p.headers[0]])
	}
	return out
}

// parseTables reads the tables of the output (blank lines between them): a
// header is cut where two or more spaces are; each row's cells start where
// their header does, as tabwriter aligns them.
func parseTables(t *testing.T, out string) []parsedTable {
	t.Helper()
	var tables []parsedTable
	for _, block := range strings.Split(strings.TrimRight(out, "\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		header := lines[0]
		var starts []int
		var headers []string
		for i := 0; i < len(header); {
			for i < len(header) && header[i] == ' ' {
				i++
			}
			if i >= len(header) {
				break
			}
			start := i
			for i < len(header) && !(header[i] == ' ' && (i+1 >= len(header) || header[i+1] == ' ')) {
				i++
			}
			starts = append(starts, start)
			headers = append(headers, header[start:i])
		}
		p := parsedTable{headers: headers}
		for _, line := range lines[1:] {
			r := map[string]string{}
			for j, s := range starts {
				end := len(line)
				if j+1 < len(starts) && starts[j+1] < end {
					end = starts[j+1]
				}
				if s >= len(line) {
					r[headers[j]] = ""
					continue
				}
				r[headers[j]] = strings.TrimSpace(line[s:end])
			}
			p.rows = append(p.rows, r)
		}
		tables = append(tables, p)
	}
	return tables
}

// expectCells checks cells of a row.
func expectCells(t *testing.T, row map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if row[k] != v {
			t.Errorf("column %s: got %q, want %q (row %v)", k, row[k], v, row)
		}
	}
}

func expectCode(t *testing.T, r result, code int, stderrHas ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.errOut)
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.errOut, s) {
			t.Errorf("stderr %q does not say %q", r.errOut, s)
		}
	}
}

func expectContains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(out, s) {
			t.Errorf("output does not contain %q:\n%s", s, out)
		}
	}
}
