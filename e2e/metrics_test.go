package e2e

import (
	"context"
	"crypto/tls"

	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

// After a fleet backup, the hub's metrics endpoint, scraped with a token
// allowed to get /metrics, shows the location's validity on the cluster, the
// cluster's newest restorable backup and the run; without a token, or with
// one not allowed, it answers nothing.
func TestMetricsShowTheFleet(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hub, spoke1 := testFleet.Hub.Client, onboarded()[0]
	const team, ns = "team-metrics", "metrics-app"

	loc, _ := validTeamLocation(g, ctx, team, "metrics", spoke1)
	ensureNamespace(g, ctx, spoke1.Client, ns, nil)
	g.Expect(spoke1.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"k": "v"}})).To(Succeed())
	b := hubBackup(team, "nightly", spoke1, loc.Name, ns)
	g.Expect(hub.Create(ctx, b)).To(Succeed())
	phase := waitFinished(g, ctx, hub, b, func(b *fleetv1alpha1.Backup) string { return string(b.Status.Phase) }, 3*time.Minute)
	g.Expect(phase).To(Equal(string(fleetv1alpha1.BackupSuccess)))

	scraper := metricsScraper(g, ctx, "lifeboat-metrics-scraper", true)
	other := metricsScraper(g, ctx, "lifeboat-metrics-nobody", false)
	g.Expect(scrape(g, "")).To(HaveField("StatusCode", http.StatusUnauthorized), "without a token")
	g.Expect(scrape(g, other)).To(HaveField("StatusCode", http.StatusForbidden), "with a token not allowed to get /metrics")

	var families map[string]*dto.MetricFamily
	g.Eventually(func(g Gomega) {
		resp := scrape(g, scraper)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		defer resp.Body.Close()
		var err error
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err = parser.TextToMetricFamilies(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(series(families, "lifeboat_location_cluster_valid", map[string]string{
			"namespace": team, "location": loc.Name, "cluster": spoke1.Name, "phase": "Valid"})).To(ConsistOf(1.0))
		g.Expect(series(families, "lifeboat_cluster_last_successful_backup_timestamp_seconds", map[string]string{
			"namespace": team, "cluster": spoke1.Name})).To(ConsistOf(BeNumerically("~", float64(b.Status.StartTime.Unix()), 1)))
		g.Expect(series(families, "lifeboat_backups", map[string]string{"namespace": team, "phase": "Success", "origin": "Hub"})).To(ConsistOf(1.0))
		g.Expect(series(families, "lifeboat_cluster_available", map[string]string{"cluster": spoke1.Name})).To(ConsistOf(1.0))
	}, time.Minute, time.Second).Should(Succeed())
	runs := families["lifeboat_run_duration_seconds"]
	g.Expect(runs).NotTo(BeNil())
	var count uint64
	for _, m := range runs.Metric {
		if labels(m)["kind"] == "Backup" && labels(m)["phase"] == "Success" {
			count = m.GetHistogram().GetSampleCount()
		}
	}
	g.Expect(count).To(BeNumerically(">=", 1), "the finished backup is in the run histogram")
	t.Logf("scraped %d Lifeboat series families; %d successful backups in the run histogram", len(families), count)
}

// metricsScraper makes a ServiceAccount on the hub, allowed to get /metrics
// if allowed, and returns a token of it.
func metricsScraper(g Gomega, ctx context.Context, name string, allowed bool) string {
	hub := testFleet.Hub.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: fleet.HubNamespace, Name: name}}
	g.Expect(client.IgnoreAlreadyExists(hub.Create(ctx, sa))).To(Succeed())
	if allowed {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		g.Expect(client.IgnoreAlreadyExists(hub.Create(ctx, role))).To(Succeed())
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: fleet.HubNamespace, Name: name}}}
		g.Expect(client.IgnoreAlreadyExists(hub.Create(ctx, binding))).To(Succeed())
	}
	cs, err := kubernetes.NewForConfig(testFleet.Hub.Config)
	g.Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts(fleet.HubNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// scrape GETs the hub's metrics with token (none when empty). The server's
// certificate is self-signed: the test checks who may read, not the TLS chain.
func scrape(g Gomega, token string) *http.Response {
	req, err := http.NewRequest(http.MethodGet, testFleet.HubMetricsURL, nil)
	g.Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed
	resp, err := c.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	return resp
}

// series returns the values of family name's series whose labels include want.
func series(families map[string]*dto.MetricFamily, name string, want map[string]string) []float64 {
	var out []float64
	for _, m := range families[name].GetMetric() {
		have := labels(m)
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			out = append(out, m.GetGauge().GetValue())
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
