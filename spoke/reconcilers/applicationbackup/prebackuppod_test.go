package applicationbackup_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/charts"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

func preBackupPod(namespace, name string, mutate ...func(*backupv1alpha1.PreBackupPod)) *backupv1alpha1.PreBackupPod {
	p := &backupv1alpha1.PreBackupPod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: backupv1alpha1.PreBackupPodSpec{
			BackupCommand: []string{"pg_dump", "shop"},
			FileName:      "shop.sql",
			Pod: backupv1alpha1.PreBackupPodTemplate{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "dump", Image: "postgres:17"}},
			}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// kubeClient is a client of the control plane as user (the admin when ""),
// with a RESTMapper that knows the PreBackupPod kind: the package's client
// may have read the group's discovery before its CRD was served.
func kubeClient(g *WithT, user string) client.Client {
	c := rest.CopyConfig(cp.Config)
	if user != "" {
		c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	}
	var cl client.Client
	g.Eventually(func() error {
		var err error
		if cl, err = client.New(c, client.Options{Scheme: cp.Client.Scheme()}); err != nil {
			return err
		}
		_, err = cl.RESTMapper().RESTMapping(backupv1alpha1.GroupVersion.WithKind("PreBackupPod").GroupKind())
		return err
	}, eventuallyLimit).Should(Succeed())
	return cl
}

// The schema refuses a PreBackupPod that could not run or whose output
// could escape its name, each with a message that says what to fix.
func TestPreBackupPodSchemaRefusesBadSpecs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := "pbp-" + rand.String(6)
	g.Expect(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	admin := kubeClient(g, "")
	for name, c := range map[string]struct {
		mutate func(*backupv1alpha1.PreBackupPod)
		want   string
	}{
		"slash":      {func(p *backupv1alpha1.PreBackupPod) { p.Spec.FileName = "../etc/passwd" }, "fileName must be a plain file name, without '/'"},
		"dotdot":     {func(p *backupv1alpha1.PreBackupPod) { p.Spec.FileName = ".." }, "fileName must not be '.' or '..'"},
		"space":      {func(p *backupv1alpha1.PreBackupPod) { p.Spec.FileName = "my dump.sql" }, "fileName may hold only letters, digits, '.', '_' and '-'"},
		"long":       {func(p *backupv1alpha1.PreBackupPod) { p.Spec.FileName = strings.Repeat("a", 129) }, "spec.fileName: Too long"},
		"no-command": {func(p *backupv1alpha1.PreBackupPod) { p.Spec.BackupCommand = []string{""} }, "backupCommand must name the program to run"},
		"empty-restore": {func(p *backupv1alpha1.PreBackupPod) { p.Spec.RestoreCommand = []string{""} },
			"restoreCommand must name the program to run"},
		"container":     {func(p *backupv1alpha1.PreBackupPod) { p.Spec.Container = "db" }, "container must name one of pod.spec.containers"},
		"no-containers": {func(p *backupv1alpha1.PreBackupPod) { p.Spec.Pod.Spec.Containers = []corev1.Container{} }, "pod.spec.containers must hold at least one container"},
		"timeout": {func(p *backupv1alpha1.PreBackupPod) { p.Spec.ReadyTimeout = &metav1.Duration{Duration: 2 * time.Hour} },
			"readyTimeout must be between 1s and 1h"},
		"long-name": {func(p *backupv1alpha1.PreBackupPod) { p.Name = strings.Repeat("p", 64) },
			"a PreBackupPod's name must be at most 63 characters: it labels the pods made from it"},
	} {
		err := admin.Create(ctx, preBackupPod(ns, name, c.mutate))
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", name, err)
		g.Expect(err.Error()).To(ContainSubstring(c.want), name)
	}

	good := preBackupPod(ns, "good", func(p *backupv1alpha1.PreBackupPod) {
		p.Spec.Container = "dump"
		p.Spec.RestoreCommand = []string{"psql", "-f", "-"}
		p.Spec.Pod.Metadata.Labels = map[string]string{"app": "dump"}
		p.Spec.Pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PGHOST", Value: "db"}}
	})
	g.Expect(admin.Create(ctx, good)).To(Succeed())
	got := &backupv1alpha1.PreBackupPod{}
	g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(good), got)).To(Succeed())
	g.Expect(got.Spec.Pod.Metadata.Labels).To(Equal(map[string]string{"app": "dump"}), "the template's labels are kept")
	g.Expect(got.Spec.Pod.Spec.Containers[0].Env).To(HaveLen(1), "the pod spec is kept whole")
}

// The chart's admission policy admits a team's PreBackupPod only from a
// user who may create pods and exec into them in its namespace, on create
// and on update; the spoke's own namespace needs neither.
func TestChartAdmitsPreBackupPodsOnlyFromWhoMayRunThem(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(eventuallyLimit)
	ctx := context.Background()
	objs, err := charts.Render(charts.Spoke, map[string]any{"clusterName": cluster}, targets.SystemNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	var found int
	for _, o := range objs {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") && strings.HasSuffix(o.GetName(), "-prebackuppod") {
			found++
			g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, o))).To(Succeed())
			t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), o) })
		}
	}
	g.Expect(found).To(Equal(2), "the policy and its binding")

	ns := "pbp-" + rand.String(6)
	for _, ns := range []string{ns, targets.SystemNamespace} {
		g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		// Both users may manage PreBackupPods and create pods; only "runner" may exec.
		g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pbp-editor"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{backupv1alpha1.GroupVersion.Group}, Resources: []string{"prebackuppods"}, Verbs: []string{"get", "create", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}},
		}}))).To(Succeed())
		g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pbp-exec"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}},
		}}))).To(Succeed())
		for _, b := range []struct{ name, role, user string }{
			{"pbp-editor-runner", "pbp-editor", "runner@" + ns}, {"pbp-editor-viewer", "pbp-editor", "viewer@" + ns}, {"pbp-exec-runner", "pbp-exec", "runner@" + ns},
		} {
			g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: b.name},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: b.role},
				Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: b.user}}}))).To(Succeed())
		}
	}
	viewer, runner := kubeClient(g, "viewer@"+ns), kubeClient(g, "runner@"+ns)

	denied := "a PreBackupPod makes the spoke create a pod in namespace " + ns + " and exec into it, and viewer@" + ns + " may not do both there"
	g.Eventually(func() error { return viewer.Create(ctx, preBackupPod(ns, "by-viewer")) }).Should(MatchError(ContainSubstring(denied)))
	err = viewer.Create(ctx, preBackupPod(ns, "by-viewer"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)

	own := preBackupPod(ns, "by-runner")
	g.Expect(runner.Create(ctx, own)).To(Succeed())
	// A user who may not exec may not change what the pod runs either.
	changed := own.DeepCopy()
	changed.Spec.BackupCommand = []string{"/bin/sh", "-c", "cat /var/run/secrets/*"}
	err = viewer.Update(ctx, changed)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring(denied))
	g.Expect(runner.Update(ctx, changed)).To(Succeed())

	// The spoke's namespace belongs to the cluster's admin: the hub's objects need no exec right.
	g.Expect(kubeClient(g, "viewer@"+targets.SystemNamespace).Create(ctx, preBackupPod(targets.SystemNamespace, "admins-"+rand.String(4)))).To(Succeed())
}

// A pod left by a backup that no longer runs (the spoke stopped while it
// ran) is deleted when the spoke starts; other pods are not touched.
func TestSpokeStartDeletesPreBackupPodsOfEndedBackups(t *testing.T) {
	e := newEnv(t)
	e.g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: "default"}}))).To(Succeed())
	pod := func(name string, labels map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.app, Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "postgres:17"}}}}
		e.g.Expect(cp.Client.Create(e.ctx, p)).To(Succeed())
		return p
	}
	left := pod("dump-left", map[string]string{backupv1alpha1.PreBackupPodLabel: "dump", backupv1alpha1.BackupRunLabel: "uid-of-a-gone-backup"})
	app := pod("app", map[string]string{"app": "db"})
	e.start()
	e.g.Eventually(func() bool {
		return apierrors.IsNotFound(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(left), &corev1.Pod{}))
	}).Should(BeTrue())
	e.g.Expect(cp.Client.Get(e.ctx, client.ObjectKeyFromObject(app), &corev1.Pod{})).To(Succeed())
}

// Each PreBackupPod of the namespaces a backup takes gets a pod made from
// its template, whose backupCommand runs as a backup command with the
// PreBackupPod named; the pod is deleted afterwards. One whose pod is not
// ready in time makes the backup PartialSuccess, naming it, and is
// deleted too; each PreBackupPod's status says how its last backup went.
// A PreBackupPod in a namespace the backup does not take gets no pod.
func TestPreBackupPodsRunInPodsThatAreDeletedAfterwards(t *testing.T) {
	e := newEnv(t)
	mover := &moverStandIn{}
	e.r.VolumeData = mover
	admin := kubeClient(e.g, "")
	other := "other-" + rand.String(5)
	e.g.Expect(cp.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
	for _, ns := range []string{e.app, other} {
		e.g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}))).To(Succeed())
	}
	dump := preBackupPod(e.app, "dump", func(p *backupv1alpha1.PreBackupPod) {
		p.Spec.Pod.Spec.Containers = append(p.Spec.Pod.Spec.Containers, corev1.Container{Name: "pg", Image: "postgres:17"})
		p.Spec.Container = "pg"
	})
	stuck := preBackupPod(e.app, "stuck", func(p *backupv1alpha1.PreBackupPod) {
		p.Spec.FileName = "stuck.sql"
		p.Spec.ReadyTimeout = &metav1.Duration{Duration: time.Second}
	})
	for _, p := range []*backupv1alpha1.PreBackupPod{dump, stuck, preBackupPod(other, "elsewhere")} {
		e.g.Expect(admin.Create(e.ctx, p)).To(Succeed())
	}
	// The kubelet's part: the pods of "dump" become ready.
	stopKubelet := make(chan struct{})
	defer close(stopKubelet)
	var mu sync.Mutex
	var made []string
	go func() {
		for {
			select {
			case <-stopKubelet:
				return
			case <-time.After(100 * time.Millisecond):
			}
			list := &corev1.PodList{}
			if cp.Client.List(e.ctx, list, client.InNamespace(e.app), client.MatchingLabels{backupv1alpha1.PreBackupPodLabel: "dump"}) != nil {
				continue
			}
			for _, p := range list.Items {
				mu.Lock()
				if !slices.Contains(made, p.Name) {
					made = append(made, p.Name)
				}
				mu.Unlock()
				p.Status.Phase, p.Status.PodIP = corev1.PodRunning, "10.0.0.9"
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				_ = cp.Client.Status().Update(e.ctx, &p)
			}
		}
	}()
	e.start()

	ab := e.backup(targets.SystemNamespace, "pbp-"+rand.String(4))
	e.g.Eventually(e.phase(ab)).Should(BeElementOf(backupv1alpha1.ApplicationBackupSuccess, backupv1alpha1.ApplicationBackupPartialSuccess, backupv1alpha1.ApplicationBackupFailed))
	got := e.get(ab)()
	c := condition(got, backupv1alpha1.ConditionCompleted)
	e.g.Expect(got.Status.Phase).To(Equal(backupv1alpha1.ApplicationBackupPartialSuccess), c.Message)
	e.g.Expect(c.Message).To(MatchRegexp(`the output of 1 backup command not backed up: PreBackupPod %s/stuck file stuck.sql \(pod stuck-\w+ of PreBackupPod %[1]s/stuck: not ready after 1s`, e.app))

	e.g.Expect(mover.commands).To(HaveLen(1))
	s := mover.commands[0]
	e.g.Expect(s.PreBackupPod).To(Equal("dump"))
	e.g.Expect(s.Pod.Namespace).To(Equal(e.app))
	e.g.Expect(s.Pod.Name).To(HavePrefix("dump-"))
	e.g.Expect(s.Pod.Labels).To(HaveKeyWithValue(backupv1alpha1.BackupRunLabel, string(got.UID)))
	e.g.Expect(s.Container).To(Equal("pg"))
	e.g.Expect(s.Command).To(Equal([]string{"pg_dump", "shop"}))
	e.g.Expect(s.File).To(Equal("shop.sql"))
	mu.Lock()
	e.g.Expect(made).To(ConsistOf(s.Pod.Name), "one pod for the PreBackupPod")
	mu.Unlock()

	for _, ns := range []string{e.app, other} {
		pods := &corev1.PodList{}
		e.g.Expect(cp.Client.List(e.ctx, pods, client.InNamespace(ns), client.HasLabels{backupv1alpha1.PreBackupPodLabel})).To(Succeed())
		e.g.Expect(pods.Items).To(BeEmpty(), "no pod left in %s", ns)
	}
	for name, want := range map[string]gomegatypes.GomegaMatcher{
		"dump":  And(HaveField("Outcome", backupv1alpha1.ExecSucceeded), HaveField("Message", "")),
		"stuck": And(HaveField("Outcome", backupv1alpha1.ExecFailed), HaveField("Message", ContainSubstring("not ready after 1s"))),
	} {
		p := &backupv1alpha1.PreBackupPod{}
		e.g.Expect(admin.Get(e.ctx, client.ObjectKey{Namespace: e.app, Name: name}, p)).To(Succeed())
		e.g.Expect(p.Status.LastBackup).To(And(Not(BeNil()), HaveField("Outcome", Not(BeEmpty())), want, HaveField("BackupID", got.Status.BackupID)), name)
	}
}

// A team's own backup makes pods only for its namespace's PreBackupPods,
// even when it names another namespace; deleting the backup while its pod
// waits to be ready stops the run and deletes the pod.
func TestStoppedSelfServiceBackupDeletesItsPreBackupPod(t *testing.T) {
	e := newEnv(t)
	e.r.VolumeData = &moverStandIn{}
	admin := kubeClient(e.g, "")
	other := "other-" + rand.String(5)
	e.g.Expect(cp.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
	for _, ns := range []string{e.app, other} {
		e.g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}))).To(Succeed())
		e.g.Expect(admin.Create(e.ctx, preBackupPod(ns, "dump", func(p *backupv1alpha1.PreBackupPod) {
			p.Spec.ReadyTimeout = &metav1.Duration{Duration: time.Hour} // this control plane has no kubelet: never ready
		}))).To(Succeed())
	}
	e.start()
	podsIn := func(ns string) func() []corev1.Pod {
		return func() []corev1.Pod {
			list := &corev1.PodList{}
			e.g.Expect(cp.Client.List(e.ctx, list, client.InNamespace(ns), client.HasLabels{backupv1alpha1.PreBackupPodLabel})).To(Succeed())
			return list.Items
		}
	}

	ab := e.backup(e.app, "mine", func(ab *backupv1alpha1.ApplicationBackup) {
		ab.Spec.Selection.IncludedNamespaces = append(ab.Spec.Selection.IncludedNamespaces, backupv1alpha1.NamespaceName(other))
	})
	e.g.Eventually(podsIn(e.app)).Should(HaveLen(1), "the pod of the team's PreBackupPod waits to be ready")
	e.g.Expect(podsIn(other)()).To(BeEmpty(), "no pod for another namespace's PreBackupPod")
	e.g.Expect(cp.Client.Delete(e.ctx, ab)).To(Succeed())
	e.g.Eventually(podsIn(e.app)).Should(BeEmpty(), "the stopped run deleted its pod")
	e.g.Expect(podsIn(other)()).To(BeEmpty())
}
