package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// A database pod on a real node is frozen before its resources are read and
// thawed after, through ExecRules on the hub; a freeze that fails fails the
// backup, and the thaw (executionPolicy Always) still runs.
func TestExecRulesFreezeAndThawRealPods(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hub, spoke := testFleet.Hub.Client, testFleet.Spokes[0]
	const team, container = "team-hooks", "hooks-backups"
	loc, id := validTeamLocation(g, ctx, team, container, spoke)
	ns := "db-" + rand.String(4)

	t.Log("a database pod whose service account may create ConfigMaps: the hooks leave markers the backup's resources show")
	ensureNamespace(g, ctx, spoke.Client, ns, nil)
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "markers", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "markers", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "markers"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "db", Namespace: ns}}},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: ns, Labels: map[string]string{"app": "db"}},
			Spec: corev1.PodSpec{
				ServiceAccountName: "db",
				Containers: []corev1.Container{{
					Name: "db", Image: testFleet.Images.Busybox.Ref, ImagePullPolicy: corev1.PullNever,
					Command: []string{"/busybox", "sh", "-c", "echo started; exec sleep 100000"},
				}},
			},
		},
	} {
		g.Expect(spoke.Client.Create(ctx, o)).To(Succeed(), "creating %T %s", o, o.GetName())
	}
	g.Eventually(func() corev1.PodPhase {
		pod := &corev1.Pod{}
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-0"}, pod)).To(Succeed())
		return pod.Status.Phase
	}, 3*time.Minute, 500*time.Millisecond).Should(Equal(corev1.PodRunning))

	db := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	rules := []*fleetv1alpha1.ExecRule{
		execRule(team, "freeze", backupv1alpha1.ExecAction{Name: "freeze", PodSelector: *db, Command: marker(ns, "frozen")}),
		execRule(team, "thaw", backupv1alpha1.ExecAction{Name: "thaw", PodSelector: *db, Command: marker(ns, "thawed"), MaxRetry: 1}),
		execRule(team, "broken-freeze", backupv1alpha1.ExecAction{Name: "broken-freeze", PodSelector: *db, OnError: backupv1alpha1.ExecErrorFail,
			Command: []string{"/busybox", "sh", "-c", "echo 'fsfreeze: /data: Operation not permitted' >&2; exit 3"}}),
		execRule(team, "cleanup", backupv1alpha1.ExecAction{Name: "thaw-always", PodSelector: *db, ExecutionPolicy: backupv1alpha1.ExecAlways,
			Command: marker(ns, "thawed-after-failure")},
			backupv1alpha1.ExecAction{Name: "report-success", PodSelector: *db, ExecutionPolicy: backupv1alpha1.ExecOnSuccess,
				Command: marker(ns, "should-not-exist")}),
	}
	for _, r := range rules {
		g.Expect(hub.Create(ctx, r)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, r := range rules {
			g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(r), r)).To(Succeed())
			g.Expect(r.Status.Phase).To(Equal(fleetv1alpha1.ConfigReady), "ExecRule %s", r.Name)
		}
	}, time.Minute, 250*time.Millisecond).Should(Succeed())

	t.Log("a Backup naming a missing ExecRule fails on the hub, and nothing is sent")
	missing := hubBackup(team, "missing-rule", spoke, loc.Name, ns)
	missing.Spec.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"freeze", "no-such-rule"}}
	g.Expect(hub.Create(ctx, missing)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, missing, hubBackupPhase, time.Minute)).To(Equal("Failed"))
	ready := meta.FindStatusCondition(missing.Status.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready.Reason).To(Equal(fleetv1alpha1.ReasonExecRuleNotFound))
	g.Expect(ready.Message).To(ContainSubstring("no-such-rule"))
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, missing.Name)}, &backupv1alpha1.ApplicationBackup{})).
		NotTo(Succeed(), "no ApplicationBackup reached the cluster")

	t.Log("freeze, back up, thaw: Success, with the freeze's marker in the backup and the thaw's not")
	ok := hubBackup(team, "frozen", spoke, loc.Name, ns)
	ok.Spec.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"freeze"}, Post: []backupv1alpha1.ObjectName{"thaw"}}
	g.Expect(hub.Create(ctx, ok)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, ok, hubBackupPhase, 3*time.Minute)).To(Equal("Success"), "%+v", ok.Status.Conditions)
	for _, name := range []string{"frozen", "thawed"} {
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})).To(Succeed(), "the hook created ConfigMap %s", name)
	}
	ab := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, ok.Name)}, ab)).To(Succeed())
	g.Expect(ab.Status.Hooks).To(ConsistOf(
		And(HaveField("Stage", backupv1alpha1.StagePreExecRule), HaveField("Name", "freeze"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
		And(HaveField("Stage", backupv1alpha1.StagePostExecRule), HaveField("Name", "thaw"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
	))

	account := backupv1alpha1.TargetServiceAccount(backuplocation.TargetName(team, loc.Name))
	store := teamStore(g, id, spoke, account, container, team)
	dir, err := archive.Path("", spoke.Name, string(ok.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	rd, err := archive.Open(ctx, store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	list, err := rd.ResourceList(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	var configMaps []string
	for _, item := range list {
		if item.Resource == "configmaps" && item.Namespace == ns {
			configMaps = append(configMaps, item.Name)
		}
	}
	g.Expect(configMaps).To(ContainElement("frozen"), "the pre hook ran before the resources were read")
	g.Expect(configMaps).NotTo(ContainElement("thawed"), "the post hook ran after the resources were read")
	logs, err := rd.Log(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	var hookLines []string
	for _, l := range logs {
		if strings.Contains(l.Message, "action") {
			hookLines = append(hookLines, l.Message)
		}
	}
	t.Logf("hook lines in the backup's log:\n%s", strings.Join(hookLines, "\n"))
	g.Expect(hookLines).To(ContainElements(
		And(HavePrefix("pre action freeze in pod "+ns+"/db-0 container db: exit code 0"), ContainSubstring("marker frozen")),
		And(HavePrefix("post action thaw in pod "+ns+"/db-0 container db: exit code 0"), ContainSubstring("marker thawed")),
	))

	t.Log("a freeze that fails (onError Fail) fails the backup before any resource is read; the thaw (Always) runs, the OnSuccess action does not")
	bad := hubBackup(team, "broken", spoke, loc.Name, ns)
	bad.Spec.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"broken-freeze"}, Post: []backupv1alpha1.ObjectName{"cleanup"}}
	g.Expect(hub.Create(ctx, bad)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, bad, hubBackupPhase, 3*time.Minute)).To(Equal("Failed"))
	ready = meta.FindStatusCondition(bad.Status.Conditions, fleetv1alpha1.ConditionReady)
	t.Logf("failed: %s: %s", ready.Reason, ready.Message)
	g.Expect(ready.Reason).To(Equal(backupv1alpha1.ReasonExecRuleFailed))
	g.Expect(ready.Message).To(And(ContainSubstring("broken-freeze"), ContainSubstring("exit code 3"), ContainSubstring("thaw-always (Succeeded)")))
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "thawed-after-failure"}, &corev1.ConfigMap{})).To(Succeed(), "the Always post action ran")
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "should-not-exist"}, &corev1.ConfigMap{})).NotTo(Succeed(), "the OnSuccess post action did not run")
	failedAB := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, bad.Name)}, failedAB)).To(Succeed())
	g.Expect(failedAB.Status.Progress.ItemsDone).To(BeZero(), "no resource was read")
	g.Expect(failedAB.Status.Hooks).To(ContainElements(
		And(HaveField("Name", "broken-freeze"), HaveField("Outcome", backupv1alpha1.ExecFailed)),
		And(HaveField("Name", "thaw-always"), HaveField("Outcome", backupv1alpha1.ExecSucceeded)),
		And(HaveField("Name", "report-success"), HaveField("Outcome", backupv1alpha1.ExecSkipped)),
	))

	t.Log("the markers' uptimes (the node's clock) are in order: freeze, thaw, then the failed run's thaw")
	last := 0.0
	for _, name := range []string{"frozen", "thawed", "thawed-after-failure"} {
		cm := &corev1.ConfigMap{}
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm)).To(Succeed())
		var up float64
		_, err := fmt.Sscan(cm.Data["uptime"], &up)
		g.Expect(err).NotTo(HaveOccurred(), "uptime %q", cm.Data["uptime"])
		t.Logf("marker %s at uptime %.2f s", name, up)
		g.Expect(up).To(BeNumerically(">", last), "%s after the markers before it", name)
		last = up
	}
}

// marker is a hook command that prints "marker <name> <uptime>" and creates
// ConfigMap name in ns, holding the node's uptime, through the pod's own
// service account: whether the backup holds it tells when the hook ran.
func marker(ns, name string) []string {
	body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"data":{"uptime":"'"$up"'"}}`, name)
	script := fmt.Sprintf(`up=$(cut -d" " -f1 /proc/uptime); echo "marker %s $up"; `+
		`wget -O /dev/null --no-check-certificate --header "Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)" `+
		`--header "Content-Type: application/json" --post-data '%s' "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/%s/configmaps"`,
		name, body, ns)
	return []string{"/busybox", "sh", "-c", script}
}

func execRule(namespace, name string, actions ...backupv1alpha1.ExecAction) *fleetv1alpha1.ExecRule {
	for i := range actions {
		actions[i].Timeout = &metav1.Duration{Duration: 20 * time.Second}
		actions[i].Pods = backupv1alpha1.ExecInAllPods
		if actions[i].OnError == "" {
			actions[i].OnError = backupv1alpha1.ExecErrorFail
		}
	}
	return &fleetv1alpha1.ExecRule{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.ExecRuleSpec{Actions: actions}}
}

func hubBackupPhase(b *fleetv1alpha1.Backup) string { return string(b.Status.Phase) }
