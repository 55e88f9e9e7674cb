package backupschedule

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// PolicyReconciler shows whether each SchedulePolicy can be used: phase Ready,
// or Invalid with a Ready condition that says what does not parse.
type PolicyReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=schedulepolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=schedulepolicies/status,verbs=get;patch

// Reconcile checks the policy's spec as a schedule would use it.
func (r *PolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &fleetv1alpha1.SchedulePolicy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := p.DeepCopy()
	p.Status.ObservedGeneration = p.Generation
	cond := metav1.Condition{Type: fleetv1alpha1.ConditionReady, ObservedGeneration: p.Generation}
	if plan, err := NewPlan(p.Spec, p.CreationTimestamp.Time); err != nil {
		p.Status.Phase = fleetv1alpha1.ConfigInvalid
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, fleetv1alpha1.ReasonInvalidSchedule, err.Error()
	} else {
		p.Status.Phase = fleetv1alpha1.ConfigReady
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, fleetv1alpha1.ReasonPolicyValid, describe(p, plan)
	}
	meta.SetStatusCondition(&p.Status.Conditions, cond)
	return ctrl.Result{}, client.IgnoreNotFound(r.Status().Patch(ctx, p, client.MergeFrom(base)))
}

// describe says in a sentence when the policy runs.
func describe(p *fleetv1alpha1.SchedulePolicy, plan *Plan) string {
	when := ""
	if p.Spec.Cron != "" {
		when = fmt.Sprintf("runs at %q in %s", p.Spec.Cron, plan.Location())
	} else {
		when = fmt.Sprintf("runs every %s from the schedule's creation", p.Spec.Interval.Duration)
	}
	if plan.jitter > 0 {
		when += fmt.Sprintf(", spread over %s", plan.jitter)
	}
	return when
}

// SetupWithManager watches SchedulePolicies' specs.
func (r *PolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.SchedulePolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("schedulepolicy").
		Complete(r)
}
