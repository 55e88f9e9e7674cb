package applicationbackup_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// runningPod creates a pod labeled app=db in namespace ns and marks it
// Running (this control plane has no kubelet, so an exec into it would fail).
func (e *env) runningPod(ns string) {
	e.g.Expect(client.IgnoreAlreadyExists(cp.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}))).To(Succeed())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-0", Labels: map[string]string{"app": "db"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
	}
	e.g.Expect(cp.Client.Create(e.ctx, pod)).To(Succeed())
	pod.Status.Phase = corev1.PodRunning
	e.g.Expect(cp.Client.Status().Update(e.ctx, pod)).To(Succeed())
}

func dbAction(name string, mutate ...func(*backupv1alpha1.ExecAction)) backupv1alpha1.ExecAction {
	a := backupv1alpha1.ExecAction{Name: name, PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		Command: []string{"/bin/true"}, OnError: backupv1alpha1.ExecErrorFail}
	for _, m := range mutate {
		m(&a)
	}
	return a
}

// A team's backup runs its hooks only in its own namespace: a pod the hook
// selects in another namespace is not touched, the action fails (no pod),
// and with onError Continue the run is PartialSuccess naming it, never Success.
func TestHooksRunOnlyInTheTeamsNamespace(t *testing.T) {
	e := newEnv(t)
	other := "other-" + rand.String(6)
	e.g.Expect(cp.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
	e.runningPod(other)
	e.start()

	ab := e.backup(e.app, "with-hooks", func(ab *backupv1alpha1.ApplicationBackup) {
		ab.Spec.Selection.IncludedNamespaces = append(ab.Spec.Selection.IncludedNamespaces, backupv1alpha1.NamespaceName(other))
		ab.Spec.Hooks = &backupv1alpha1.ExecHooks{Pre: []backupv1alpha1.ExecAction{
			dbAction("flush", func(a *backupv1alpha1.ExecAction) { a.OnError = backupv1alpha1.ExecErrorContinue }),
		}}
	})
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupPartialSuccess))
	got := e.get(ab)()
	e.g.Expect(got.Status.Hooks).To(ConsistOf(And(
		HaveField("Stage", backupv1alpha1.StagePreExecRule), HaveField("Name", "flush"),
		HaveField("Outcome", backupv1alpha1.ExecFailed), HaveField("Pods", int32(0)),
		HaveField("Message", ContainSubstring("no running pod in namespaces "+e.app+" matches podSelector")))))
	ready := meta.FindStatusCondition(got.Status.Conditions, backupv1alpha1.ConditionReady)
	e.g.Expect(ready.Message).To(ContainSubstring("exec actions failed with onError Continue: pre flush"))
	e.g.Expect(got.Status.Progress.ItemsDone).To(BeNumerically(">", 0), "the resources were backed up")
}

// A pre action that fails with onError Fail fails the run before any
// resource is read and leaves nothing in the store; the post actions still
// run per their executionPolicy (OnSuccess is skipped, Always runs).
func TestFailingPreHookFailsTheRunAndPostHooksStillRun(t *testing.T) {
	e := newEnv(t)
	e.start()
	ab := e.backup(targets.SystemNamespace, "failing-pre-"+rand.String(4), func(ab *backupv1alpha1.ApplicationBackup) {
		ab.Spec.Hooks = &backupv1alpha1.ExecHooks{
			Pre: []backupv1alpha1.ExecAction{dbAction("freeze"), dbAction("never-reached")},
			Post: []backupv1alpha1.ExecAction{
				dbAction("report", func(a *backupv1alpha1.ExecAction) { a.ExecutionPolicy = backupv1alpha1.ExecOnSuccess }),
				dbAction("thaw", func(a *backupv1alpha1.ExecAction) {
					a.ExecutionPolicy = backupv1alpha1.ExecAlways
					a.OnError = backupv1alpha1.ExecErrorContinue
				}),
			},
		}
	})
	e.g.Eventually(e.phase(ab)).Should(Equal(backupv1alpha1.ApplicationBackupFailed))
	got := e.get(ab)()
	ready := meta.FindStatusCondition(got.Status.Conditions, backupv1alpha1.ConditionReady)
	e.g.Expect(ready.Reason).To(Equal(backupv1alpha1.ReasonExecRuleFailed))
	e.g.Expect(ready.Message).To(And(HavePrefix("pre action freeze failed: no running pod in namespaces "+e.app), ContainSubstring("no resource was read"),
		ContainSubstring("post actions run: thaw (Failed)")))
	e.g.Expect(got.Status.Progress.ItemsDone).To(BeZero())
	e.g.Expect(got.Status.Hooks).To(Equal([]backupv1alpha1.ExecResult{
		{Stage: backupv1alpha1.StagePreExecRule, Name: "freeze", Outcome: backupv1alpha1.ExecFailed, Message: got.Status.Hooks[0].Message},
		{Stage: backupv1alpha1.StagePreExecRule, Name: "never-reached", Outcome: backupv1alpha1.ExecSkipped, Message: "not run: pre action freeze failed before it"},
		{Stage: backupv1alpha1.StagePostExecRule, Name: "report", Outcome: backupv1alpha1.ExecSkipped, Message: "not run: executionPolicy OnSuccess and the backup failed before it"},
		{Stage: backupv1alpha1.StagePostExecRule, Name: "thaw", Outcome: backupv1alpha1.ExecFailed, Message: got.Status.Hooks[3].Message},
	}))
	e.g.Expect(e.files(string(got.Status.BackupID))()).To(BeEmpty(), "a failed backup leaves nothing")
}
