// Package backuptarget validates BackupTargets: this cluster's view of a backup
// location, checked with the target's own Workload Identity. It keeps each
// target's ServiceAccount, whose tokens the target signs in with.
package backuptarget

import (
	"context"
	"errors"
	"fmt"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// Reconciler validates BackupTargets on change and on their validationInterval.
type Reconciler struct {
	client.Client
	Targets  *targets.Factory
	Recorder events.EventRecorder
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Revalidation, when set, holds the targets that runs asked to be
	// validated again at once after a storage failure.
	Revalidation *targets.Revalidation
}

// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backuptargets,verbs=get;list;watch
// +kubebuilder:rbac:groups=backup.lifeboat.dev,resources=backuptargets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// Each target's ServiceAccount, and its tokens, in lifeboat-system only.
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;create;patch,namespace=lifeboat-system
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create,namespace=lifeboat-system

// Reconcile ensures the target's ServiceAccount, validates the target when
// its spec or federated subject changed or its last validation is older than
// validationInterval, and schedules the next validation.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	target := &backupv1alpha1.BackupTarget{}
	if err := r.Get(ctx, req.NamespacedName, target); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// Without its account the target cannot sign in: its status says why, and
	// the account is applied again with backoff.
	saErr := r.ensureServiceAccount(ctx, target)
	now := r.now()
	if wait := r.untilDue(target, now); wait > 0 {
		if saErr != nil {
			return ctrl.Result{}, saErr
		}
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	patch := client.MergeFrom(target.DeepCopy())
	previous := target.Status.ValidationState
	key, keyRefused, err := r.key(ctx, target)
	if err != nil {
		return ctrl.Result{}, err
	}
	var result blob.Result
	switch {
	case keyRefused != nil:
		result = *keyRefused
	case saErr != nil:
		result = blob.Result{Reason: backupv1alpha1.ReasonInvalidConfiguration, Checked: r.now(), Message: fmt.Sprintf(
			"the target signs in with tokens of its own ServiceAccount, which the spoke could not apply (%v): check the spoke's Role in %s",
			saErr, backupv1alpha1.TargetServiceAccountNamespace)}
	default:
		result = r.Targets.Validate(ctx, target)
	}
	if ctx.Err() != nil {
		return ctrl.Result{}, ctx.Err()
	}
	if result.Valid && key != nil {
		result.Message += fmt.Sprintf("; backups are encrypted to key %s", key.Recipient())
	}
	setStatus(target, result)
	target.Status.FederatedSubject = backupv1alpha1.TargetSubject(target.Name)
	if err := r.Status().Patch(ctx, target, patch); err != nil {
		return ctrl.Result{}, err
	}
	if previous.Phase != target.Status.Phase || previous.Reason != target.Status.Reason {
		log.Info("Validated the backup target", "phase", target.Status.Phase, "reason", target.Status.Reason)
		if r.Recorder != nil {
			kind := "Normal"
			if !result.Valid {
				kind = "Warning"
			}
			r.Recorder.Eventf(target, nil, kind, result.Reason, "Validate", "%s", result.Message)
		}
	}
	if saErr != nil {
		return ctrl.Result{}, saErr
	}
	return ctrl.Result{RequeueAfter: requeueAfter(target)}, nil
}

// key reads the target's encryption key. A Secret that is missing or
// invalid makes the target Invalid (the refusal), checked before the
// storage: nothing backs up through it unencrypted or restores through it
// without the key. Errors reading the Secret are retried.
func (r *Reconciler) key(ctx context.Context, t *backupv1alpha1.BackupTarget) (*age.X25519Identity, *blob.Result, error) {
	key, err := r.Targets.Key(ctx, t)
	var refusal *targets.Refusal
	if errors.As(err, &refusal) {
		return nil, &blob.Result{Reason: refusal.Reason, Message: refusal.Message, Checked: r.now()}, nil
	}
	return key, nil, err
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ensureServiceAccount applies target's ServiceAccount in lifeboat-system,
// owned by the target so that it is deleted with it. Applied on every
// reconcile, it also comes back when deleted, and follows a target deleted
// and made again under the same name.
func (r *Reconciler) ensureServiceAccount(ctx context.Context, t *backupv1alpha1.BackupTarget) error {
	sa := &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: backupv1alpha1.TargetServiceAccountNamespace,
			Name:      backupv1alpha1.TargetServiceAccount(t.Name),
			Labels:    map[string]string{backupv1alpha1.LabelTarget: t.Name, "app.kubernetes.io/managed-by": "lifeboat-spoke"},
		},
		// Its tokens are minted for Entra ID only; no pod mounts them.
		AutomountServiceAccountToken: new(false),
	}
	if err := controllerutil.SetOwnerReference(t, sa, r.Scheme()); err != nil {
		return err
	}
	if err := r.Patch(ctx, sa, client.Apply, client.FieldOwner("lifeboat-spoke"), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying ServiceAccount %s/%s of the target: %w", sa.Namespace, sa.Name, err)
	}
	return nil
}

// untilDue is how long until target needs validating; zero or less means now.
// A target last validated with another subject (before its ServiceAccount
// existed), or one that a run asked to validate again after a storage
// failure, is validated now.
func (r *Reconciler) untilDue(t *backupv1alpha1.BackupTarget, now time.Time) time.Duration {
	st := t.Status
	if st.ObservedGeneration != t.Generation || st.LastValidationTime == nil || st.Phase == "" ||
		st.FederatedSubject != backupv1alpha1.TargetSubject(t.Name) || r.Revalidation.Take(t.Name) {
		return 0
	}
	return st.LastValidationTime.Add(interval(t)).Sub(now)
}

// InvalidRetry is how soon an Invalid target is validated again when its
// interval is longer: whoever fixes a role assignment or a federated
// credential sees the target turn Valid within half a minute, without
// touching it.
const InvalidRetry = 30 * time.Second

func interval(t *backupv1alpha1.BackupTarget) time.Duration {
	every := time.Hour
	if t.Spec.ValidationInterval != nil && t.Spec.ValidationInterval.Duration > 0 {
		every = t.Spec.ValidationInterval.Duration
	}
	if t.Status.Phase == backupv1alpha1.TargetInvalid {
		return min(every, InvalidRetry)
	}
	return every
}

func setStatus(t *backupv1alpha1.BackupTarget, res blob.Result) {
	checked := metav1.NewTime(res.Checked)
	phase, status := backupv1alpha1.TargetInvalid, metav1.ConditionFalse
	if res.Valid {
		phase, status = backupv1alpha1.TargetValid, metav1.ConditionTrue
	}
	t.Status.ValidationState = backupv1alpha1.ValidationState{Phase: phase, Reason: res.Reason, Message: res.Message, LastValidationTime: &checked}
	t.Status.ObservedGeneration = t.Generation
	for _, typ := range []string{backupv1alpha1.ConditionValidated, backupv1alpha1.ConditionReady} {
		meta.SetStatusCondition(&t.Status.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: res.Reason, Message: res.Message, ObservedGeneration: t.Generation,
		})
	}
}

// SetupWithManager watches BackupTargets; status-only updates do not trigger a
// validation, spec changes do.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&backupv1alpha1.BackupTarget{}, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	if r.Revalidation != nil {
		b = b.WatchesRawSource(r.Revalidation.Source())
	}
	return b.Named("backuptarget").Complete(r)
}

// requeueAfter is when target is validated next: its interval, spread by up to
// 10% so that many targets do not revalidate together.
func requeueAfter(t *backupv1alpha1.BackupTarget) time.Duration {
	return wait.Jitter(interval(t), 0.1)
}
