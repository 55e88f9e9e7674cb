package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
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

	t.Log("a database pod on the spoke's node; what the hooks append to /markers/log is its log")
	ensureNamespace(g, ctx, spoke.Client, ns, nil)
	g.Expect(spoke.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: ns, Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "db", Image: testFleet.Images.Busybox.Ref, ImagePullPolicy: corev1.PullNever,
				Command:      []string{"/busybox", "sh", "-c", "touch /markers/log; exec tail -f /markers/log"},
				VolumeMounts: []corev1.VolumeMount{{Name: "markers", MountPath: "/markers"}},
			}},
			Volumes: []corev1.Volume{{Name: "markers", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	})).To(Succeed())
	g.Eventually(func() corev1.PodPhase {
		pod := &corev1.Pod{}
		g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-0"}, pod)).To(Succeed())
		return pod.Status.Phase
	}, 3*time.Minute, 500*time.Millisecond).Should(Equal(corev1.PodRunning))

	db := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	rules := []*fleetv1alpha1.ExecRule{
		// The freeze marks, then holds for a second before the resources are
		// read; the thaw waits a second after them, then marks.
		// Then a background action takes 5 s to take a lock, says so, and holds
		// it until its input closes, which the spoke does once the resources
		// are read: the spoke must wait for its word, not a fixed grace.
		execRule(team, "freeze", backupv1alpha1.ExecAction{Name: "freeze", PodSelector: *db, Command: marker("frozen", 0, 1)},
			backupv1alpha1.ExecAction{Name: "hold", PodSelector: *db, Background: true, Command: []string{"/busybox", "sh", "-c",
				`sleep 5; echo "marker held $(cut -d' ' -f1 /proc/uptime)" | tee -a /markers/log; read _; echo "marker released $(cut -d' ' -f1 /proc/uptime)" | tee -a /markers/log`}}),
		// flaky fails its first try and succeeds on its retry.
		execRule(team, "thaw", backupv1alpha1.ExecAction{Name: "thaw", PodSelector: *db, Command: marker("thawed", 1, 0)},
			backupv1alpha1.ExecAction{Name: "flaky", PodSelector: *db, MaxRetry: 2, Command: []string{"/busybox", "sh", "-c",
				`if [ -e /markers/tried ]; then echo second try; else touch /markers/tried; echo first try >&2; exit 1; fi`}}),
		execRule(team, "broken-freeze", backupv1alpha1.ExecAction{Name: "broken-freeze", PodSelector: *db, OnError: backupv1alpha1.ExecErrorFail,
			Command: []string{"/busybox", "sh", "-c", "echo 'fsfreeze: /data: Operation not permitted' >&2; exit 3"}}),
		execRule(team, "cleanup", backupv1alpha1.ExecAction{Name: "thaw-always", PodSelector: *db, ExecutionPolicy: backupv1alpha1.ExecAlways,
			Command: marker("thawed-after-failure", 0, 0)},
			backupv1alpha1.ExecAction{Name: "report-success", PodSelector: *db, ExecutionPolicy: backupv1alpha1.ExecOnSuccess,
				Command: marker("should-not-run", 0, 0)}),
	}
	createExecRules(g, ctx, hub, rules...)

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

	t.Log("freeze, back up, thaw: Success; a ConfigMap the test sets to the node's uptime every 100 ms dates the reading of the resources")
	stopClock := runUptimeClock(g, ctx, spoke.Client, ns)
	ok := hubBackup(team, "frozen", spoke, loc.Name, ns)
	ok.Spec.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"freeze"}, Post: []backupv1alpha1.ObjectName{"thaw"}}
	g.Expect(hub.Create(ctx, ok)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, ok, hubBackupPhase, 3*time.Minute)).To(Equal("Success"), "%+v", ok.Status.Conditions)
	stopClock()
	ab := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, ok.Name)}, ab)).To(Succeed())
	g.Expect(ab.Status.Hooks).To(ConsistOf(
		And(HaveField("Stage", backupv1alpha1.StagePreExecRule), HaveField("Name", "freeze"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
		And(HaveField("Stage", backupv1alpha1.StagePreExecRule), HaveField("Name", "hold"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
		And(HaveField("Stage", backupv1alpha1.StagePostExecRule), HaveField("Name", "thaw"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
		And(HaveField("Stage", backupv1alpha1.StagePostExecRule), HaveField("Name", "flaky"), HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Pods", int32(1))),
	))

	account := backupv1alpha1.TargetServiceAccount(backuplocation.TargetName(team, loc.Name))
	store := teamStore(g, id, spoke, account, container, team)
	dir, err := archive.Path("", spoke.Name, string(ok.Status.BackupID))
	g.Expect(err).NotTo(HaveOccurred())
	rd, err := archive.Open(ctx, store, dir)
	g.Expect(err).NotTo(HaveOccurred())
	read := -1.0
	g.Expect(rd.Items(ctx, func(it archive.Item) error {
		if it.Resource == "configmaps" && it.Namespace == ns && it.Name == "clock" {
			cm := &corev1.ConfigMap{}
			g.Expect(json.Unmarshal(it.Object, cm)).To(Succeed())
			read = uptime(g, cm.Data["uptime"])
		}
		return nil
	})).To(Succeed())
	g.Expect(read).To(BeNumerically(">", 0), "the backup holds the clock ConfigMap")
	logs, err := rd.Log(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	var hookLines []string
	for _, l := range logs {
		if strings.Contains(l.Message, " action ") {
			hookLines = append(hookLines, l.Message)
		}
	}
	t.Logf("hook lines in the backup's log:\n%s", strings.Join(hookLines, "\n"))
	g.Expect(hookLines).To(ContainElements(
		And(HavePrefix("pre action freeze in pod "+ns+"/db-0 container db: exit code 0"), ContainSubstring("marker frozen ")),
		And(HavePrefix("post action thaw in pod "+ns+"/db-0 container db: exit code 0"), ContainSubstring("marker thawed ")),
		And(HavePrefix("post action flaky in pod "+ns+"/db-0 container db: exit code 1"), ContainSubstring("first try")),
		And(HavePrefix("post action flaky in pod "+ns+"/db-0 container db (retry 1 of 2): exit code 0"), ContainSubstring("second try")),
	))
	g.Expect(hookLines).To(ContainElement(And(HavePrefix("pre action hold in pod "+ns+"/db-0 container db: exit code 0"),
		ContainSubstring("marker held "), ContainSubstring("marker released "))))
	frozen, held, released, thawed := markerIn(g, hookLines, "frozen"), markerIn(g, hookLines, "held"), markerIn(g, hookLines, "released"), markerIn(g, hookLines, "thawed")
	t.Logf("node uptime: freeze marked %.2f s, lock held %.2f s, resources read at %.2f s, lock released %.2f s, thaw marked %.2f s", frozen, held, read, released, thawed)
	g.Expect(frozen).To(BeNumerically("<", read), "the pre hook ran before the resources were read")
	g.Expect(held).To(BeNumerically("<", read), "the background hook held its lock before the resources were read")
	g.Expect(released).To(BeNumerically(">", read), "and released it after")
	g.Expect(thawed).To(BeNumerically(">", released), "the post hook ran after the background hook ended")

	t.Log("a freeze that fails (onError Fail) fails the backup before any resource is read; the thaw (Always) runs, the OnSuccess action does not")
	bad := hubBackup(team, "broken", spoke, loc.Name, ns)
	bad.Spec.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"broken-freeze"}, Post: []backupv1alpha1.ObjectName{"cleanup"}}
	g.Expect(hub.Create(ctx, bad)).To(Succeed())
	g.Expect(waitFinished(g, ctx, hub, bad, hubBackupPhase, 3*time.Minute)).To(Equal("Failed"))
	ready = meta.FindStatusCondition(bad.Status.Conditions, fleetv1alpha1.ConditionReady)
	t.Logf("failed: %s: %s", ready.Reason, ready.Message)
	g.Expect(ready.Reason).To(Equal(backupv1alpha1.ReasonExecRuleFailed))
	g.Expect(ready.Message).To(And(ContainSubstring("broken-freeze"), ContainSubstring("exit code 3"), ContainSubstring("thaw-always (Succeeded)")))
	failedAB := &backupv1alpha1.ApplicationBackup{}
	g.Expect(spoke.Client.Get(ctx, client.ObjectKey{Namespace: fleet.SpokeNamespace, Name: backup.Name(team, bad.Name)}, failedAB)).To(Succeed())
	g.Expect(failedAB.Status.Progress.ItemsDone).To(BeZero(), "no resource was read")
	g.Expect(failedAB.Status.Hooks).To(ContainElements(
		And(HaveField("Name", "broken-freeze"), HaveField("Outcome", backupv1alpha1.ExecFailed)),
		And(HaveField("Name", "thaw-always"), HaveField("Outcome", backupv1alpha1.ExecSucceeded)),
		And(HaveField("Name", "report-success"), HaveField("Outcome", backupv1alpha1.ExecSkipped)),
	))

	t.Log("the pod's own log has the markers in order: freeze, lock held and released, thaw, the failed run's thaw, and not the OnSuccess action's")
	cs, err := kubernetes.NewForConfig(spoke.ControlPlane.Config)
	g.Expect(err).NotTo(HaveOccurred())
	var podLog string
	g.Eventually(func() string {
		raw, err := cs.CoreV1().Pods(ns).GetLogs("db-0", &corev1.PodLogOptions{}).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		podLog = string(raw)
		return podLog
	}, 30*time.Second, time.Second).Should(ContainSubstring("marker thawed-after-failure "))
	t.Logf("pod log:\n%s", podLog)
	lines := strings.Split(strings.TrimSpace(podLog), "\n")
	g.Expect(lines).To(HaveExactElements(HavePrefix("marker frozen "), HavePrefix("marker held "), HavePrefix("marker released "),
		HavePrefix("marker thawed "), HavePrefix("marker thawed-after-failure ")))
}

// marker is a hook command that sleeps before seconds, prints "marker <name>
// <node uptime>" and appends it to /markers/log, then sleeps after seconds.
func marker(name string, before, after int) []string {
	return []string{"/busybox", "sh", "-c", fmt.Sprintf(
		`sleep %d; echo "marker %s $(cut -d' ' -f1 /proc/uptime)" | tee -a /markers/log; sleep %d`, before, name, after)}
}

// markerIn is the uptime in the marker line of name among the log lines.
func markerIn(g Gomega, lines []string, name string) float64 {
	re := regexp.MustCompile(`marker ` + regexp.QuoteMeta(name) + ` ([0-9.]+)`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			return uptime(g, m[1])
		}
	}
	g.Expect(lines).To(ContainElement(ContainSubstring("marker " + name + " ")))
	return 0
}

func uptime(g Gomega, s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	g.Expect(err).NotTo(HaveOccurred(), "uptime %q", s)
	return v
}

// runUptimeClock sets ConfigMap clock in ns to the node's uptime (the pods
// share the host's kernel, so it is the clock the hooks read) every 100 ms
// until the returned function is called.
func runUptimeClock(g Gomega, ctx context.Context, c client.Client, ns string) func() {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "clock", Namespace: ns}}
	g.Expect(c.Create(ctx, cm)).To(Succeed())
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cctx.Err() == nil {
			raw, err := os.ReadFile("/proc/uptime")
			if err == nil {
				base := cm.DeepCopy()
				cm.Data = map[string]string{"uptime": strings.Fields(string(raw))[0]}
				_ = c.Patch(cctx, cm, client.MergeFrom(base))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

func execRule(namespace, name string, actions ...backupv1alpha1.ExecAction) *fleetv1alpha1.ExecRule {
	for i := range actions {
		// Generous: at load ~8 a thaw that had printed its marker was not
		// seen to end within 20 s (7f0161c's clean-clone CI).
		actions[i].Timeout = &metav1.Duration{Duration: time.Minute}
		actions[i].Pods = backupv1alpha1.ExecInAllPods
		if actions[i].OnError == "" {
			actions[i].OnError = backupv1alpha1.ExecErrorFail
		}
	}
	return &fleetv1alpha1.ExecRule{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.ExecRuleSpec{Actions: actions}}
}

// createExecRules creates rules on the hub and waits until each is Ready.
func createExecRules(g Gomega, ctx context.Context, hub client.Client, rules ...*fleetv1alpha1.ExecRule) {
	for _, r := range rules {
		g.Expect(hub.Create(ctx, r)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, r := range rules {
			g.Expect(hub.Get(ctx, client.ObjectKeyFromObject(r), r)).To(Succeed())
			g.Expect(r.Status.Phase).To(Equal(fleetv1alpha1.ConfigReady), "ExecRule %s", r.Name)
		}
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
}

func hubBackupPhase(b *fleetv1alpha1.Backup) string { return string(b.Status.Phase) }

// A team's own ApplicationBackup with hooks runs commands in the team's pods
// as the spoke: the API server admits one only from a user who may exec into
// those pods himself.
func TestSelfServiceHooksNeedExecRights(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spoke := testFleet.Spokes[0]
	ns := "team-hooks-" + rand.String(4)
	ensureNamespace(g, ctx, spoke.Client, ns, nil)
	const user = "carol@team-hooks"
	g.Expect(spoke.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backuper"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{backupv1alpha1.GroupVersion.Group}, Resources: []string{"applicationbackups"}, Verbs: []string{"create", "get"}}}})).To(Succeed())
	bindUser(g, ctx, spoke.Client, ns, user, "Role", "backuper")
	carol := impersonating(g, spoke, user)

	withHooks := func(name string) *backupv1alpha1.ApplicationBackup {
		ab := appBackup(name, "team-backups", ns)
		ab.Namespace = ns
		ab.Spec.Hooks = &backupv1alpha1.ExecHooks{Pre: []backupv1alpha1.ExecAction{{Name: "freeze",
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Command: []string{"/bin/true"}}}}
		return ab
	}
	err := carol.Create(ctx, withHooks("refused"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.hooks run commands in the pods of namespace " + ns + ", and " + user + " may not exec into them"))
	plain := appBackup("plain", "team-backups", ns)
	plain.Namespace = ns
	g.Expect(carol.Create(ctx, plain)).To(Succeed(), "without hooks she may")

	g.Expect(spoke.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exec"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}}}})).To(Succeed())
	bindUser(g, ctx, spoke.Client, ns, user, "Role", "exec")
	g.Eventually(func() error { return carol.Create(ctx, withHooks("allowed")) }, 30*time.Second, 500*time.Millisecond).Should(Succeed(),
		"once she may exec into the pods")
}
