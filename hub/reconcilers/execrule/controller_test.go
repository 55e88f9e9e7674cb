package execrule

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// A valid rule is Ready, one with a pod selector the schema lets through but
// that is no selector is Invalid saying why, and each lists the schedules
// whose template names it, also after a schedule stops naming it.
func TestExecRuleStatus(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(15 * time.Second)
	ctx := context.Background()
	const ns = "team-rules"
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	selector := metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	good := &fleetv1alpha1.ExecRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "freeze"}, Spec: fleetv1alpha1.ExecRuleSpec{
		Actions: []backupv1alpha1.ExecAction{{Name: "freeze", PodSelector: selector, Command: []string{"fsfreeze", "-f", "/data"}}}}}
	bad := &fleetv1alpha1.ExecRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}, Spec: fleetv1alpha1.ExecRuleSpec{
		Actions: []backupv1alpha1.ExecAction{{Name: "flush", Command: []string{"sync"},
			PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}}}}}
	g.Expect(hubClient.Create(ctx, good)).To(Succeed())
	g.Expect(hubClient.Create(ctx, bad)).To(Succeed())
	get := func(r *fleetv1alpha1.ExecRule) func() fleetv1alpha1.ExecRuleStatus {
		return func() fleetv1alpha1.ExecRuleStatus {
			out := &fleetv1alpha1.ExecRule{}
			g.Expect(hubClient.Get(ctx, client.ObjectKeyFromObject(r), out)).To(Succeed())
			return out.Status
		}
	}
	g.Eventually(get(good)).Should(HaveField("Phase", fleetv1alpha1.ConfigReady))
	g.Expect(meta.FindStatusCondition(get(good)().Conditions, fleetv1alpha1.ConditionReady)).To(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fleetv1alpha1.ReasonExecRuleValid)))
	g.Eventually(get(bad)).Should(HaveField("Phase", fleetv1alpha1.ConfigInvalid))
	g.Expect(meta.FindStatusCondition(get(bad)().Conditions, fleetv1alpha1.ConditionReady)).To(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonExecRuleInvalid),
		HaveField("Message", And(ContainSubstring("actions[0] (flush): podSelector"), ContainSubstring("Near")))))

	schedule := &fleetv1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: fleetv1alpha1.BackupScheduleSpec{
		Policy:          "daily",
		ClusterSelector: &metav1.LabelSelector{},
		Template: fleetv1alpha1.BackupTemplate{Location: "primary",
			ExecRules: &fleetv1alpha1.ExecRuleReferences{Pre: []backupv1alpha1.ObjectName{"freeze"}}},
	}}
	g.Expect(hubClient.Create(ctx, schedule)).To(Succeed())
	g.Eventually(get(good)).Should(HaveField("UsedBy", ConsistOf(backupv1alpha1.ObjectName("nightly"))))
	g.Expect(get(bad)().UsedBy).To(BeEmpty())

	g.Expect(hubClient.Delete(ctx, schedule)).To(Succeed())
	g.Eventually(get(good)).Should(HaveField("UsedBy", BeEmpty()))
}
