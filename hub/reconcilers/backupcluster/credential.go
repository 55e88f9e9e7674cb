package backupcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
)

// rotateAt is the share of a credential's lifetime after which it is
// replaced: a new token is minted when less than 20% is left.
const rotateAt = 0.8

// catalogRule is all a spoke may do on the hub: keep BackupCatalogs in its
// own cluster namespace.
var catalogRule = rbacv1.PolicyRule{
	APIGroups: []string{fleetv1alpha1.GroupVersion.Group},
	Resources: []string{"backupcatalogs"},
	Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
}

// catalogPagesQuota is the ResourceQuota key that counts BackupCatalogs.
const catalogPagesQuota corev1.ResourceName = "count/backupcatalogs." + "fleet.lifeboat.dev"

// ensureAccess keeps the spoke's identity on the hub in the cluster
// namespace: a ResourceQuota that bounds its BackupCatalogs,
// ServiceAccount SpokeName, a Role that allows catalogRule only, and the
// RoleBinding. Each is applied only when the cache shows it missing or
// different. All four are owned by the BackupCluster, so they go with it.
func (r *Reconciler) ensureAccess(ctx context.Context, bc *fleetv1alpha1.BackupCluster) (*corev1.ServiceAccount, error) {
	ns := bc.Name
	owner := metav1ac.OwnerReference().WithAPIVersion(fleetv1alpha1.GroupVersion.String()).WithKind(Kind).
		WithName(bc.Name).WithUID(bc.UID).WithController(true)
	labels := map[string]string{LabelCluster: bc.Name}

	// The quota comes first: no credential works before it bounds the pages.
	quota := &corev1.ResourceQuota{}
	hard := resource.NewQuantity(int64(r.catalogPages()), resource.DecimalSI)
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: SpokeName}, quota); client.IgnoreNotFound(err) != nil {
		return nil, err
	} else if q, ok := quota.Spec.Hard[catalogPagesQuota]; err != nil || !ownedBy(quota, bc) || quota.Labels[LabelCluster] != bc.Name || len(quota.Spec.Hard) != 1 || !ok || q.Cmp(*hard) != 0 {
		ac := corev1ac.ResourceQuota(SpokeName, ns).WithLabels(labels).WithOwnerReferences(owner).
			WithSpec(corev1ac.ResourceQuotaSpec().WithHard(corev1.ResourceList{catalogPagesQuota: *hard}))
		if err := r.Apply(ctx, ac, fieldOwner, client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("apply ResourceQuota %s/%s: %w", ns, SpokeName, err)
		}
	}

	sa := &corev1.ServiceAccount{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: SpokeName}, sa); client.IgnoreNotFound(err) != nil {
		return nil, err
	} else if err != nil || !ownedBy(sa, bc) || sa.Labels[LabelCluster] != bc.Name {
		ac := corev1ac.ServiceAccount(SpokeName, ns).WithLabels(labels).WithOwnerReferences(owner)
		if err := r.Apply(ctx, ac, fieldOwner, client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("apply ServiceAccount %s/%s: %w", ns, SpokeName, err)
		}
		if ac.UID != nil {
			sa = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: SpokeName, UID: *ac.UID}}
		} else if err := r.reader().Get(ctx, client.ObjectKey{Namespace: ns, Name: SpokeName}, sa); err != nil {
			return nil, err
		}
	}

	role := &rbacv1.Role{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: SpokeName}, role); client.IgnoreNotFound(err) != nil {
		return nil, err
	} else if err != nil || !ownedBy(role, bc) || role.Labels[LabelCluster] != bc.Name || !equality.Semantic.DeepEqual(role.Rules, []rbacv1.PolicyRule{catalogRule}) {
		ac := rbacv1ac.Role(SpokeName, ns).WithLabels(labels).WithOwnerReferences(owner).
			WithRules(rbacv1ac.PolicyRule().WithAPIGroups(catalogRule.APIGroups...).WithResources(catalogRule.Resources...).WithVerbs(catalogRule.Verbs...))
		if err := r.Apply(ctx, ac, fieldOwner, client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("apply Role %s/%s: %w", ns, SpokeName, err)
		}
	}

	rb := &rbacv1.RoleBinding{}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: SpokeName}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: SpokeName}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: SpokeName}, rb); client.IgnoreNotFound(err) != nil {
		return nil, err
	} else if err != nil || !ownedBy(rb, bc) || rb.Labels[LabelCluster] != bc.Name || rb.RoleRef != ref || !equality.Semantic.DeepEqual(rb.Subjects, []rbacv1.Subject{subject}) {
		if err == nil && rb.RoleRef != ref {
			// The role of a binding cannot change: make it anew.
			if err := r.Delete(ctx, rb); client.IgnoreNotFound(err) != nil {
				return nil, err
			}
		}
		ac := rbacv1ac.RoleBinding(SpokeName, ns).WithLabels(labels).WithOwnerReferences(owner).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(ref.APIGroup).WithKind(ref.Kind).WithName(ref.Name)).
			WithSubjects(rbacv1ac.Subject().WithKind(subject.Kind).WithNamespace(subject.Namespace).WithName(subject.Name))
		if err := r.Apply(ctx, ac, fieldOwner, client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("apply RoleBinding %s/%s: %w", ns, SpokeName, err)
		}
	}
	return sa, nil
}

// revokeAccess deletes the spoke's ServiceAccount, Role and RoleBinding on
// the hub. Deleting the ServiceAccount invalidates every token minted for it.
func (r *Reconciler) revokeAccess(ctx context.Context, bc *fleetv1alpha1.BackupCluster) error {
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.RoleBinding{}, &rbacv1.Role{}} {
		err := r.Get(ctx, client.ObjectKey{Namespace: bc.Name, Name: SpokeName}, obj)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := r.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

// credential is the hub credential the agent work should carry: the one it
// carries now while it belongs to sa and has more than 20% of its lifetime
// left, otherwise a new token minted for sa. The kubeconfig is built anew
// either way, so a new hub address or CA reaches the spoke with the old token.
func (r *Reconciler) credential(ctx context.Context, sa *corev1.ServiceAccount, cached *workv1.ManifestWork) (credential, error) {
	now := r.now()
	keep := func(c carriedCredential, ok bool) bool {
		return ok && c.ServiceAccountUID == string(sa.UID) && now.Before(c.rotation())
	}
	cur, ok := carried(cached)
	if !keep(cur, ok) {
		// The cache may lag behind a work written moments ago: ask the API
		// server before minting a token for nothing.
		fresh := &workv1.ManifestWork{}
		if err := r.reader().Get(ctx, Work(sa.Namespace), fresh); client.IgnoreNotFound(err) != nil {
			return credential{}, err
		} else if err == nil {
			cur, ok = carried(fresh)
		}
	}
	if keep(cur, ok) {
		kubeconfig, err := r.kubeconfig(sa.Namespace, cur.token)
		return credential{Kubeconfig: kubeconfig, Issued: cur.Issued, Expires: cur.Expires, ServiceAccountUID: cur.ServiceAccountUID}, err
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(int64(r.lifetime().Seconds())),
	}}
	if err := r.SubResource("token").Create(ctx, sa, tr); err != nil {
		return credential{}, fmt.Errorf("request a token for ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	// The API server may grant less than asked (--service-account-max-token-expiration).
	lifetime := r.lifetime()
	if tr.Spec.ExpirationSeconds != nil {
		lifetime = time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	}
	issued := now.Truncate(time.Second)
	ctrl.LoggerFrom(ctx).Info("Minted a hub token for the spoke", "serviceAccount", sa.Namespace+"/"+sa.Name, "expires", issued.Add(lifetime))
	kubeconfig, err := r.kubeconfig(sa.Namespace, tr.Status.Token)
	return credential{Kubeconfig: kubeconfig, Issued: issued, Expires: issued.Add(lifetime), ServiceAccountUID: string(sa.UID)}, err
}

// kubeconfig is the spoke's kubeconfig for the hub: the hub's address and CA,
// the token, and the cluster namespace as its default namespace.
func (r *Reconciler) kubeconfig(namespace, token string) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["hub"] = &clientcmdapi.Cluster{Server: r.HubServer, CertificateAuthorityData: r.HubCA}
	kc.AuthInfos[SpokeName] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["hub"] = &clientcmdapi.Context{Cluster: "hub", AuthInfo: SpokeName, Namespace: namespace}
	kc.CurrentContext = "hub"
	return clientcmd.Write(*kc)
}

// credential is the hub credential the agent work carries.
type credential struct {
	Kubeconfig        []byte
	Issued, Expires   time.Time
	ServiceAccountUID string
}

// carriedCredential is the credential an agent work carries, with its token.
type carriedCredential struct {
	credential
	token string
}

// rotation is when the credential is replaced.
func (c credential) rotation() time.Time {
	return c.Issued.Add(time.Duration(rotateAt * float64(c.Expires.Sub(c.Issued))))
}

// carried reads the credential from the agent work: its annotations and the
// token in its hub credential Secret. ok is false when anything is missing.
func carried(mw *workv1.ManifestWork) (carriedCredential, bool) {
	if mw == nil || !mw.DeletionTimestamp.IsZero() {
		return carriedCredential{}, false
	}
	issued, err1 := time.Parse(time.RFC3339, mw.Annotations[AnnotationCredentialIssued])
	expires, err2 := time.Parse(time.RFC3339, mw.Annotations[AnnotationCredentialExpires])
	uid := mw.Annotations[AnnotationCredentialServiceAccount]
	if err1 != nil || err2 != nil || uid == "" || !expires.After(issued) {
		return carriedCredential{}, false
	}
	for _, m := range mw.Spec.Workload.Manifests {
		var secret corev1.Secret
		if json.Unmarshal(m.Raw, &secret) != nil || secret.Kind != "Secret" || secret.Name != HubCredentialSecret || secret.Namespace != SpokeNamespace {
			continue
		}
		kc, err := clientcmd.Load(secret.Data[hubcredential.Key])
		if err != nil {
			return carriedCredential{}, false
		}
		if auth := kc.AuthInfos[SpokeName]; auth != nil && auth.Token != "" {
			return carriedCredential{credential: credential{Issued: issued, Expires: expires, ServiceAccountUID: uid}, token: auth.Token}, true
		}
	}
	return carriedCredential{}, false
}

// ownedBy reports whether obj's controller is bc.
func ownedBy(obj client.Object, bc *fleetv1alpha1.BackupCluster) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == bc.UID
}

// Work is the agent work's key for cluster.
func Work(cluster string) client.ObjectKey {
	return client.ObjectKey{Namespace: cluster, Name: AgentWorkName}
}

// currentWork is the agent work the hub holds, nil when there is none.
func (r *Reconciler) currentWork(ctx context.Context, cluster string) (*workv1.ManifestWork, error) {
	mw := &workv1.ManifestWork{}
	if err := r.Get(ctx, Work(cluster), mw); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return mw, nil
}

// applyWork applies mw when it differs from what the hub holds.
func (r *Reconciler) applyWork(ctx context.Context, mw *workv1.ManifestWork) error {
	_, err := dispatch.ApplyChanged(ctx, r.Client, mw)
	return err
}
