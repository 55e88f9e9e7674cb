package backuptarget

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

func TestUntilDue(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	validated := func(gen, observed int64, ago time.Duration, every time.Duration) *backupv1alpha1.BackupTarget {
		tgt := &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Generation: gen}}
		if every > 0 {
			tgt.Spec.ValidationInterval = &metav1.Duration{Duration: every}
		}
		last := metav1.NewTime(now.Add(-ago))
		tgt.Status.ObservedGeneration = observed
		tgt.Status.Phase = backupv1alpha1.TargetValid
		tgt.Status.LastValidationTime = &last
		tgt.Status.FederatedSubject = backupv1alpha1.TargetSubject("nightly")
		return tgt
	}
	cases := []struct {
		name   string
		target *backupv1alpha1.BackupTarget
		want   time.Duration
	}{
		{"never validated", &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Generation: 1}}, 0},
		{"spec changed since", validated(2, 1, time.Minute, 0), 0},
		{"validated a minute ago, default interval", validated(1, 1, time.Minute, 0), 59 * time.Minute},
		{"validated 10m ago every 15m", validated(1, 1, 10*time.Minute, 15*time.Minute), 5 * time.Minute},
		{"overdue", validated(1, 1, 2*time.Hour, time.Hour), -time.Hour},
		{"invalid 10s ago: retried after InvalidRetry", invalid(validated(1, 1, 10*time.Second, time.Hour)), InvalidRetry - 10*time.Second},
		{"invalid, interval shorter than InvalidRetry", invalid(validated(1, 1, 10*time.Second, 20*time.Second)), 10 * time.Second},
		{"validated as the spoke's own subject, before the upgrade", withSubject(validated(1, 1, time.Minute, 0), ""), 0},
		{"validated as another target's subject", withSubject(validated(1, 1, time.Minute, 0), backupv1alpha1.TargetSubject("other")), 0},
	}
	r := &Reconciler{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := r.untilDue(tc.target, now)
			if tc.want <= 0 {
				g.Expect(got).To(BeNumerically("<=", 0))
				return
			}
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

// A run that failed on storage has its target validated at once, once.
func TestRevalidationMakesATargetDue(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	last := metav1.NewTime(now.Add(-time.Minute))
	tgt := &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Generation: 1}}
	tgt.Status = backupv1alpha1.BackupTargetStatus{ObservedGeneration: 1, FederatedSubject: backupv1alpha1.TargetSubject("nightly"),
		ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, LastValidationTime: &last}}
	r := &Reconciler{Revalidation: targets.NewRevalidation()}
	g.Expect(r.untilDue(tgt, now)).To(Equal(59 * time.Minute))
	r.Revalidation.Request("other")
	g.Expect(r.untilDue(tgt, now)).To(Equal(59*time.Minute), "another target's request")
	r.Revalidation.Request("nightly")
	g.Expect(r.untilDue(tgt, now)).To(BeZero())
	g.Expect(r.untilDue(tgt, now)).To(Equal(59*time.Minute), "a request is taken once")
	var none *targets.Revalidation
	none.Request("nightly") // a spoke without revalidation ignores requests
	g.Expect(none.Take("nightly")).To(BeFalse())
}

func withSubject(t *backupv1alpha1.BackupTarget, subject string) *backupv1alpha1.BackupTarget {
	t.Status.FederatedSubject = subject
	return t
}

func invalid(t *backupv1alpha1.BackupTarget) *backupv1alpha1.BackupTarget {
	t.Status.Phase = backupv1alpha1.TargetInvalid
	return t
}

func TestRequeueSpreadsByAtMostATenth(t *testing.T) {
	g := NewWithT(t)
	tgt := &backupv1alpha1.BackupTarget{Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: backupv1alpha1.StorageTarget{ValidationInterval: &metav1.Duration{Duration: time.Hour}}}}
	for i := 0; i < 1000; i++ {
		d := requeueAfter(tgt)
		g.Expect(d).To(BeNumerically(">=", time.Hour))
		g.Expect(d).To(BeNumerically("<=", time.Hour+6*time.Minute))
	}
}

func TestSetStatus(t *testing.T) {
	g := NewWithT(t)
	tgt := &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	checked := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	setStatus(tgt, blob.Result{Valid: false, Reason: backupv1alpha1.ReasonContainerNotFound, Message: "create it", Checked: checked})
	g.Expect(tgt.Status.Phase).To(Equal(backupv1alpha1.TargetInvalid))
	g.Expect(tgt.Status.ObservedGeneration).To(BeEquivalentTo(3))
	g.Expect(tgt.Status.LastValidationTime.Time).To(Equal(checked))
	g.Expect(tgt.Status.Conditions).To(ConsistOf(
		And(HaveField("Type", backupv1alpha1.ConditionValidated), HaveField("Status", metav1.ConditionFalse), HaveField("Reason", backupv1alpha1.ReasonContainerNotFound)),
		And(HaveField("Type", backupv1alpha1.ConditionReady), HaveField("Status", metav1.ConditionFalse), HaveField("Message", "create it")),
	))
	setStatus(tgt, blob.Result{Valid: true, Reason: backupv1alpha1.ReasonValidationSucceeded, Message: "ok", Checked: checked})
	g.Expect(tgt.Status.Phase).To(Equal(backupv1alpha1.TargetValid))
	g.Expect(tgt.Status.Conditions).To(HaveEach(HaveField("Status", metav1.ConditionTrue)))
}
