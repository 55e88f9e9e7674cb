package backup

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

func newExecRule(t *testing.T, g *WithT, namespace, name string, actions ...backupv1alpha1.ExecAction) *fleetv1alpha1.ExecRule {
	ctx := context.Background()
	r := &fleetv1alpha1.ExecRule{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: fleetv1alpha1.ExecRuleSpec{Actions: actions}}
	g.Expect(hubClient.Create(ctx, r)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, r) })
	return r
}

func action(name string, command ...string) backupv1alpha1.ExecAction {
	return backupv1alpha1.ExecAction{Name: name, PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Command: command}
}

// A Backup's exec rules go to the cluster as its ApplicationBackup's hooks,
// pre and post in the order named; editing a rule afterwards does not change
// the backup that was sent.
func TestExecRulesAreSentAsHooks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	loc := newLocation(t, g, "team-hooks", "primary", "spoke-hooks", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	freeze := newExecRule(t, g, loc.Namespace, "freeze", action("flush", "sync"), action("lock", "lock-tables"))
	check := newExecRule(t, g, loc.Namespace, "check", action("check", "fsck"))
	thaw := newExecRule(t, g, loc.Namespace, "thaw", action("unlock", "unlock-tables"))
	b := newBackup(t, g, loc, "spoke-hooks", "with-rules", func(s *fleetv1alpha1.BackupSpec) {
		s.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"freeze", "check"}, Post: []backupv1alpha1.ObjectName{"thaw"}}
	})
	g.Eventually(workExists(b)).WithTimeout(timeout).Should(BeTrue())
	for _, r := range []*fleetv1alpha1.ExecRule{freeze, check, thaw} {
		g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(r), r)).To(Succeed()) // with the schema's defaults
	}
	hooks := applicationBackupIn(g, work(g, b)).Spec.Hooks
	g.Expect(hooks).NotTo(BeNil())
	g.Expect(hooks.Pre).To(Equal(append(append([]backupv1alpha1.ExecAction{}, freeze.Spec.Actions...), check.Spec.Actions...)))
	g.Expect(hooks.Post).To(Equal(thaw.Spec.Actions))

	t.Log("an edited rule leaves the sent backup alone")
	thaw.Spec.Actions[0].Command = []string{"something-else"}
	g.Expect(hubClient.Update(ctx, thaw)).To(Succeed())
	// The hub writes the Backup too (finalizer, status): retry on conflict.
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &fleetv1alpha1.Backup{}
		if err := hubClient.Get(ctx, client.ObjectKeyFromObject(b), cur); err != nil {
			return err
		}
		cur.Annotations = map[string]string{"poke": "1"}
		return hubClient.Update(ctx, cur)
	})).To(Succeed())
	g.Consistently(func() []string { return applicationBackupIn(g, work(g, b)).Spec.Hooks.Post[0].Command }).
		WithTimeout(2 * time.Second).Should(Equal([]string{"unlock-tables"}))
}

// A Backup naming a missing rule, or a rule that cannot be used where it is
// named, fails on the hub with a reason that says so; nothing is sent.
func TestMissingOrUnusableExecRulesFail(t *testing.T) {
	g := NewWithT(t)
	loc := newLocation(t, g, "team-badhooks", "primary", "spoke-badhooks", backupv1alpha1.TargetValid, "ValidationSucceeded", "ok")
	policy := action("report", "true")
	policy.ExecutionPolicy = backupv1alpha1.ExecOnSuccess
	newExecRule(t, g, loc.Namespace, "post-only", policy)
	bad := action("bad-selector", "true")
	bad.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In"}}}
	newExecRule(t, g, loc.Namespace, "bad-selector", bad)

	for _, c := range []struct {
		name, rule, reason, message string
	}{
		{"missing", "nowhere", fleetv1alpha1.ReasonExecRuleNotFound, "pre exec rule nowhere: there is no ExecRule nowhere in namespace team-badhooks"},
		{"policy-in-pre", "post-only", fleetv1alpha1.ReasonExecRuleInvalid, "pre exec rule post-only cannot be used: action report sets executionPolicy"},
		{"invalid-selector", "bad-selector", fleetv1alpha1.ReasonExecRuleInvalid, "pre exec rule bad-selector cannot be used: actions[0] (bad-selector): podSelector"},
	} {
		b := newBackup(t, g, loc, "spoke-badhooks", c.name, func(s *fleetv1alpha1.BackupSpec) {
			s.ExecRules = &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{backupv1alpha1.ObjectName(c.rule)}}
		})
		g.Eventually(status(b)).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.BackupFailed), c.name)
		ready := meta.FindStatusCondition(status(b)().Conditions, fleetv1alpha1.ConditionReady)
		g.Expect(ready.Reason).To(Equal(c.reason), c.name)
		g.Expect(ready.Message).To(ContainSubstring(c.message), c.name)
		g.Expect(workExists(b)()).To(BeFalse(), c.name)
	}
}
