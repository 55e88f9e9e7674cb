package cli

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// startDashboard runs `lifeboat dashboard` with args until the test ends and
// returns its URL.
func startDashboard(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- (&App{Out: out, Err: errOut}).Run(ctx, append([]string{"--kubeconfig", kubeconfig, "dashboard", "--address", "127.0.0.1:0"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("dashboard exited %d: %s", code, errOut)
		}
	})
	if !out.waitOutput("/ (read-only") {
		t.Fatalf("the dashboard did not say where it listens: %q %q", out, errOut)
	}
	return regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`).FindString(out.String())
}

func fetch(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestDashboard serves the page from the hub with the user's credentials:
// the cluster x location matrix, running runs with their progress, recent
// failures with their reasons (escaped: a spoke's message is hostile input);
// it answers only at its own address, only to GET.
func TestDashboard(t *testing.T) {
	ns := namespace(t, "dash-a")
	seedBackups(t, ns)
	create(t, &fleetv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-forged"},
		Spec: fleetv1alpha1.RestoreSpec{Backup: "shop-done", Cluster: "spoke-2"}},
		func(r *fleetv1alpha1.Restore) {
			r.Status.Phase = backupv1alpha1.RestoreFailed
			r.Status.CompletionTime = ago(time.Minute)
			r.Status.Conditions = []metav1.Condition{{Type: fleetv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
				Reason: "BackupCorrupt", Message: `backup.json does not match: <script>alert("x")</script>`, LastTransitionTime: *ago(time.Minute)}}
		})
	create(t, &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: "dash-spoke"}}, func(c *fleetv1alpha1.BackupCluster) {
		c.Status.Phase = fleetv1alpha1.ClusterOnline
		c.Status.Protection = &fleetv1alpha1.ProtectionReport{InventoryTime: ago(time.Minute), Namespaces: 5, Protected: 3, AtRisk: 1, Unprotected: 1,
			NotProtected: []fleetv1alpha1.NamespaceProtection{
				{Namespace: "billing", Verdict: fleetv1alpha1.AtRisk, LastSuccessfulBackup: ns + "/billing-1", LastSuccessfulTime: ago(3 * time.Hour),
					RPO: &metav1.Duration{Duration: 66 * time.Minute}, Schedule: ns + "/hourly"},
				{Namespace: "scratch", Verdict: fleetv1alpha1.Unprotected},
			}}
		c.Status.Locations = []fleetv1alpha1.LocationConnection{{Namespace: ns, Name: "weu",
			ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid}}}
	})

	url := startDashboard(t, hub.AdminKubeconfig, "-n", ns)
	resp, page := fetch(t, mustRequest(t, http.MethodGet, url))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d %s", resp.StatusCode, page)
	}
	expectContains(t, page, "namespace "+ns, `<th class="loc">`+ns+`/weu</th>`, `<td class="name">dash-spoke</td>`,
		`<td class="cell ok">Valid</td>`, // dash-spoke's own report
		`<td class="name">shop-running</td>`, `<progress value="10" max="40"></progress> 10/40`,
		`<td class="name">db-failed</td>`, `<td class="name">shop-forged</td>`, "BackupCorrupt",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
		// The protection map: counts, then the namespaces not Protected.
		`<td>5</td><td class="ok">3</td><td class="pending">1</td><td class="bad">1</td>`,
		`<td class="name">billing</td><td class="pending">AtRisk</td>`, "3h ago", ns+"/billing-1", "66m", ns+"/hourly",
		`<td class="name">scratch</td><td class="bad">Unprotected</td>`)
	if strings.Contains(page, "<script>") {
		t.Error("a condition message was not escaped")
	}
	if strings.Contains(page, "shop-done") && strings.Contains(page, `<td class="name">shop-done</td>`) {
		t.Error("a successful backup is listed as running or failed")
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if resp, _ := fetch(t, mustRequest(t, http.MethodGet, url+"style.css")); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// DNS rebinding: a page of another origin resolving to 127.0.0.1.
	rebound := mustRequest(t, http.MethodGet, url)
	rebound.Host = "attacker.example:80"
	if resp, _ := fetch(t, rebound); resp.StatusCode != http.StatusForbidden {
		t.Errorf("request for another Host: %d, want 403", resp.StatusCode)
	}
	if resp, _ := fetch(t, mustRequest(t, http.MethodPost, url)); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}

	// What RBAC forbids is said, not hidden.
	nobodyURL := startDashboard(t, kubeconfigWith(t, ns, "nobody"), "-n", ns)
	_, page = fetch(t, mustRequest(t, http.MethodGet, nobodyURL))
	expectContains(t, page, "not allowed", `cannot list resource &#34;backups&#34;`)

	expectCode(t, run(t, "dashboard", "--address", "0.0.0.0:0"), ExitUsage, "only on a loopback address")
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
