// Package execrule checks ExecRules and turns a Backup's references to them
// into the hooks its ApplicationBackup carries to the cluster.
package execrule

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// MaxActions is how many actions a stage of an ApplicationBackup may hold
// (its schema's bound): the actions of all the rules a Backup names there.
const MaxActions = 16

// maxUsedBy bounds status.usedBy (the schema's bound).
const maxUsedBy = 32

// Reconciler shows whether each ExecRule can be used (phase Ready, or Invalid
// with a Ready condition that says why) and which BackupSchedules use it.
type Reconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=execrules,verbs=get;list;watch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=execrules/status,verbs=get;patch
// +kubebuilder:rbac:groups=fleet.lifeboat.dev,resources=backupschedules,verbs=get;list;watch

// Reconcile checks the rule's spec as the spoke would run it and lists the
// schedules that refer to it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rule := &fleetv1alpha1.ExecRule{}
	if err := r.Get(ctx, req.NamespacedName, rule); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := rule.DeepCopy()
	rule.Status.ObservedGeneration = rule.Generation
	cond := metav1.Condition{Type: fleetv1alpha1.ConditionReady, ObservedGeneration: rule.Generation}
	if err := Validate(rule.Spec); err != nil {
		rule.Status.Phase = fleetv1alpha1.ConfigInvalid
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, fleetv1alpha1.ReasonExecRuleInvalid, err.Error()
	} else {
		rule.Status.Phase = fleetv1alpha1.ConfigReady
		cond.Status, cond.Reason = metav1.ConditionTrue, fleetv1alpha1.ReasonExecRuleValid
		cond.Message = fmt.Sprintf("%d actions, ready to be named in a Backup's execRules", len(rule.Spec.Actions))
	}
	meta.SetStatusCondition(&rule.Status.Conditions, cond)
	usedBy, err := r.usedBy(ctx, rule)
	if err != nil {
		return ctrl.Result{}, err
	}
	rule.Status.UsedBy = usedBy
	return ctrl.Result{}, client.IgnoreNotFound(r.Status().Patch(ctx, rule, client.MergeFrom(base)))
}

// usedBy names the schedules of the rule's namespace whose template names it.
func (r *Reconciler) usedBy(ctx context.Context, rule *fleetv1alpha1.ExecRule) ([]backupv1alpha1.ObjectName, error) {
	var list fleetv1alpha1.BackupScheduleList
	if err := r.List(ctx, &list, client.InNamespace(rule.Namespace)); err != nil {
		return nil, err
	}
	var names []backupv1alpha1.ObjectName
	for _, s := range list.Items {
		if slices.Contains(referenced(s.Spec.Template.ExecRules), rule.Name) && len(names) < maxUsedBy {
			names = append(names, backupv1alpha1.ObjectName(s.Name))
		}
	}
	slices.Sort(names)
	return names, nil
}

func referenced(refs *fleetv1alpha1.ExecRuleReferences) []string {
	if refs == nil {
		return nil
	}
	var names []string
	for _, n := range append(slices.Clone(refs.Pre), refs.Post...) {
		names = append(names, string(n))
	}
	return names
}

// SetupWithManager watches ExecRules' specs and the schedules that refer to them.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.ExecRule{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&fleetv1alpha1.BackupSchedule{}, handler.EnqueueRequestsFromMapFunc(r.rulesOfSchedule)).
		Named("execrule").
		Complete(r)
}

// rulesOfSchedule enqueues every rule of the schedule's namespace: a schedule
// that stopped naming a rule must leave its usedBy too.
func (r *Reconciler) rulesOfSchedule(ctx context.Context, obj client.Object) []reconcile.Request {
	var list fleetv1alpha1.ExecRuleList
	if err := r.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, rule := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rule)})
	}
	return reqs
}

// Validate checks what the schema cannot: that every pod selector is one.
func Validate(spec fleetv1alpha1.ExecRuleSpec) error {
	var errs []error
	for i, a := range spec.Actions {
		if _, err := metav1.LabelSelectorAsSelector(&a.PodSelector); err != nil {
			errs = append(errs, fmt.Errorf("actions[%d] (%s): podSelector: %v", i, a.NameAt(i), err))
		}
	}
	return errors.Join(errs...)
}

// Refusal says why a Backup's exec rules cannot be sent.
type Refusal struct {
	Reason, Message string
}

// Resolve reads the rules refs names in namespace and returns their actions
// as hooks, in order; nil refs or no rules give nil hooks. A rule that is
// missing, invalid, or not usable where it is named is a Refusal.
func Resolve(ctx context.Context, c client.Reader, namespace string, refs *fleetv1alpha1.ExecRuleReferences) (*backupv1alpha1.ExecHooks, *Refusal, error) {
	if refs == nil || len(refs.Pre)+len(refs.Post) == 0 {
		return nil, nil, nil
	}
	hooks := &backupv1alpha1.ExecHooks{}
	for _, stage := range []struct {
		word  string
		names []backupv1alpha1.ObjectName
		into  *[]backupv1alpha1.ExecAction
	}{{"pre", refs.Pre, &hooks.Pre}, {"post", refs.Post, &hooks.Post}} {
		for _, n := range stage.names {
			rule := &fleetv1alpha1.ExecRule{}
			err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: string(n)}, rule)
			switch {
			case apierrors.IsNotFound(err):
				return nil, &Refusal{fleetv1alpha1.ReasonExecRuleNotFound, fmt.Sprintf(
					"%s exec rule %s: there is no ExecRule %s in namespace %s; the backup was not started", stage.word, n, n, namespace)}, nil
			case err != nil:
				return nil, nil, err
			}
			if err := Validate(rule.Spec); err != nil {
				return nil, invalid(stage.word, n, err.Error()), nil
			}
			for i, a := range rule.Spec.Actions {
				if stage.word == "pre" && a.ExecutionPolicy != "" {
					return nil, invalid(stage.word, n, fmt.Sprintf("action %s sets executionPolicy, which only post actions may: pre actions always run", a.NameAt(i))), nil
				}
				if stage.word == "post" && a.Background {
					return nil, invalid(stage.word, n, fmt.Sprintf("action %s is a background action, which only pre actions may be", a.NameAt(i))), nil
				}
			}
			*stage.into = append(*stage.into, rule.Spec.Actions...)
		}
		if len(*stage.into) > MaxActions {
			return nil, &Refusal{fleetv1alpha1.ReasonExecRuleInvalid, fmt.Sprintf(
				"the %s exec rules hold %d actions together, more than the %d a backup may run in a stage; the backup was not started", stage.word, len(*stage.into), MaxActions)}, nil
		}
	}
	return hooks, nil, nil
}

func invalid(stage string, n backupv1alpha1.ObjectName, why string) *Refusal {
	return &Refusal{fleetv1alpha1.ReasonExecRuleInvalid, fmt.Sprintf("%s exec rule %s cannot be used: %s; the backup was not started", stage, n, why)}
}
