package backupcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
)

const timeout = 15 * time.Second

// leaseSeconds is the heartbeat Lease duration the simulated spokes report.
const leaseSeconds = 90

func TestAgentWorkInstallsTheSpoke(t *testing.T) {
	g := NewWithT(t)
	bc := createCluster(t, g, "install-a", true)
	createCluster(t, g, "install-b", true)
	mw := agentWorkOf(g, "install-a", "")

	t.Log("one work, labelled for its cluster, that orphans what it installed when deleted")
	g.Expect(mw.Spec.DeleteOption).To(Equal(&workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}))
	g.Expect(mw.Labels).To(HaveKeyWithValue(LabelCluster, "install-a"))
	g.Expect(mw.Labels).To(HaveKeyWithValue(dispatch.LabelKind, Kind))
	g.Expect(mw.Labels).To(HaveKeyWithValue(dispatch.LabelUID, string(bc.UID)))
	size := 0
	for _, m := range mw.Spec.Workload.Manifests {
		size += len(m.Raw)
	}
	g.Expect(size).To(BeNumerically("<", 500*1024), "OCM's webhook refuses manifests over 500 KiB")

	objs := manifests(g, mw)
	t.Log("the spoke's five CRDs from its chart")
	var crds []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.GetName())
			versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
			g.Expect(versions).NotTo(BeEmpty(), o.GetName())
		}
	}
	g.Expect(crds).To(ConsistOf("applicationbackups.backup.lifeboat.dev", "applicationrestores.backup.lifeboat.dev",
		"backupdeletions.backup.lifeboat.dev", "backupsyncs.backup.lifeboat.dev", "backuptargets.backup.lifeboat.dev"))

	t.Log("its namespace, and a ServiceAccount for Workload Identity bound to the chart's roles")
	find(g, objs, "Namespace", "", SpokeNamespace)
	sa := &corev1.ServiceAccount{}
	decode(g, find(g, objs, "ServiceAccount", SpokeNamespace, SpokeName), sa)
	g.Expect(sa.Labels).To(HaveKeyWithValue("azure.workload.identity/use", "true"))
	subject := rbacv1.Subject{Kind: "ServiceAccount", Namespace: SpokeNamespace, Name: SpokeName}
	clusterRole := &rbacv1.ClusterRole{}
	decode(g, find(g, objs, "ClusterRole", "", SpokeName), clusterRole)
	g.Expect(clusterRole.Rules).To(ContainElement(HaveField("Resources", ContainElement("backuptargets"))))
	crb := &rbacv1.ClusterRoleBinding{}
	decode(g, find(g, objs, "ClusterRoleBinding", "", SpokeName), crb)
	g.Expect(crb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: SpokeName}))
	g.Expect(crb.Subjects).To(Equal([]rbacv1.Subject{subject}))
	role := &rbacv1.Role{}
	decode(g, find(g, objs, "Role", SpokeNamespace, SpokeName), role)
	g.Expect(role.Rules).To(ContainElement(And(HaveField("Resources", ContainElement("leases")), HaveField("Verbs", ContainElement("update")))))
	rb := &rbacv1.RoleBinding{}
	decode(g, find(g, objs, "RoleBinding", SpokeNamespace, SpokeName), rb)
	g.Expect(rb.RoleRef.Kind).To(Equal("Role"))
	g.Expect(rb.Subjects).To(Equal([]rbacv1.Subject{subject}))

	t.Log("the spoke's Deployment")
	dep := &appsv1.Deployment{}
	decode(g, find(g, objs, "Deployment", SpokeNamespace, SpokeName), dep)
	pod := dep.Spec.Template.Spec
	g.Expect(pod.ServiceAccountName).To(Equal(SpokeName))
	g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue("azure.workload.identity/use", "true"))
	g.Expect(dep.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app.kubernetes.io/name": "lifeboat-spoke"}))
	g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue("app.kubernetes.io/name", "lifeboat-spoke"))
	g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal(spokeImage))
	g.Expect(c.Args).To(ContainElements("--cluster-name=install-a", "--hub-credential-secret=lifeboat-hub-credential"))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.Ports).To(ContainElement(HaveField("ContainerPort", BeEquivalentTo(8081))))
	g.Expect(c.Resources.Requests).To(HaveKey(corev1.ResourceMemory))
	g.Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())

	t.Log("the heartbeat Lease only read back, everything else server-side applied")
	for _, cfg := range mw.Spec.ManifestConfigs {
		if cfg.ResourceIdentifier.Resource == "leases" {
			g.Expect(cfg.ResourceIdentifier).To(Equal(workv1.ResourceIdentifier{Group: "coordination.k8s.io", Resource: "leases", Namespace: SpokeNamespace, Name: "lifeboat-spoke-heartbeat"}))
			g.Expect(cfg.UpdateStrategy.Type).To(Equal(workv1.UpdateStrategyTypeReadOnly))
			g.Expect(cfg.FeedbackRules).To(HaveLen(1))
			g.Expect(cfg.FeedbackRules[0].JsonPaths).To(ConsistOf(
				workv1.JsonPath{Name: "renewTime", Path: ".spec.renewTime"},
				workv1.JsonPath{Name: "leaseDurationSeconds", Path: ".spec.leaseDurationSeconds"},
				workv1.JsonPath{Name: "version", Path: `.metadata.annotations.lifeboat\.dev/version`},
				workv1.JsonPath{Name: "hubAccess", Path: `.metadata.annotations.lifeboat\.dev/hub-access`},
			))
			continue
		}
		g.Expect(cfg.UpdateStrategy.Type).To(Equal(workv1.UpdateStrategyTypeServerSideApply), cfg.ResourceIdentifier.Name)
	}
	g.Expect(mw.Spec.ManifestConfigs).To(HaveLen(len(mw.Spec.Workload.Manifests)))

	t.Log("until its agent reports, the cluster is Pending")
	g.Eventually(clusterStatus("install-a")).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.ClusterPending),
		HaveField("Conditions", ContainElement(And(
			HaveField("Type", fleetv1alpha1.ConditionAvailable), HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", fleetv1alpha1.ReasonWaitingForAgent)))),
	))

	t.Log("the hub identity belongs to the BackupCluster")
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Namespace: "install-a", Name: SpokeName}, obj)).To(Succeed())
		g.Expect(metav1.GetControllerOf(obj)).To(HaveField("UID", bc.UID))
	}

	t.Log("the credential is a kubeconfig for the hub that authenticates as the cluster's spoke ServiceAccount")
	kubeconfig := kubeconfigOf(g, mw)
	cfg := restConfig(g, kubeconfig)
	g.Expect(cfg.Host).To(Equal(hubConfig.Host))
	g.Expect(cfg.BearerToken).NotTo(BeEmpty())
	g.Expect(whoAmI(cfg)).To(Equal("system:serviceaccount:install-a:lifeboat-spoke"))
	issued, expires := credentialTimes(g, mw)
	g.Expect(expires.Sub(issued)).To(Equal(DefaultCredentialLifetime))

	t.Log("with it the spoke may keep BackupCatalogs in its own namespace, and nothing else")
	spoke, err := client.New(cfg, client.Options{Scheme: fleet.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	// Until kube-controller-manager has counted the quota's usage, the quota refuses every page.
	g.Eventually(func() error { return spoke.Create(context.Background(), catalog("install-a", "page-1")) }).WithTimeout(time.Minute).Should(Succeed())
	err = spoke.Create(context.Background(), catalog("install-b", "page-1"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "another cluster's namespace: %v", err)
	err = spoke.List(context.Background(), &corev1.SecretList{}, client.InNamespace("install-a"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "secrets: %v", err)
	g.Expect(allowed(cfg, "install-a", "create", "backupcatalogs", "")).To(BeTrue())
	g.Expect(allowed(cfg, "install-a", "update", "backupcatalogs", "status")).To(BeFalse(), "the hub writes a catalog's status")
	g.Expect(allowed(cfg, "install-a", "get", "secrets", "")).To(BeFalse())
	g.Expect(allowed(cfg, "install-a", "list", "manifestworks", "")).To(BeFalse())

	t.Log("a ResourceQuota bounds the pages the spoke may keep: quota+1 is refused")
	quota := &corev1.ResourceQuota{}
	g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Namespace: "install-a", Name: SpokeName}, quota)).To(Succeed())
	g.Expect(metav1.GetControllerOf(quota)).To(HaveField("UID", bc.UID))
	g.Expect(quota.Spec.Hard).To(HaveKeyWithValue(corev1.ResourceName("count/backupcatalogs.fleet.lifeboat.dev"), resource.MustParse("3")))
	for i := 2; i <= catalogPages; i++ {
		g.Eventually(func() error {
			return spoke.Create(context.Background(), catalog("install-a", fmt.Sprintf("page-%d", i)))
		}).WithTimeout(timeout).Should(Succeed())
	}
	err = spoke.Create(context.Background(), catalog("install-a", "page-too-many"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "page quota+1: %v", err)
	g.Expect(err).To(MatchError(ContainSubstring("exceeded quota")))
}

func TestCredentialRotation(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "rotate-a", true)
	mw := agentWorkOf(g, "rotate-a", "")
	issued, _ := credentialTimes(g, mw)
	oldConfig := restConfig(g, kubeconfigOf(g, mw))

	t.Log("with more than 20% of its lifetime left the token is kept")
	clock.AdvanceTo(issued.Add(19 * time.Hour))
	poke(g, "rotate-a")
	g.Consistently(func() string { return annotation(g, "rotate-a", AnnotationCredentialIssued) }).WithTimeout(3 * time.Second).
		Should(Equal(issued.UTC().Format(time.RFC3339)))

	t.Log("the reconciler comes back when 20% is left and mints a new token, with no event to wake it")
	rotation := issued.Add(time.Duration(0.8 * float64(DefaultCredentialLifetime)))
	clock.AdvanceTo(rotation.Add(-4 * time.Second))
	poke(g, "rotate-a")
	g.Consistently(func() string { return annotation(g, "rotate-a", AnnotationCredentialIssued) }).WithTimeout(2 * time.Second).
		Should(Equal(issued.UTC().Format(time.RFC3339)))
	g.Eventually(func() string { return annotation(g, "rotate-a", AnnotationCredentialIssued) }).WithTimeout(timeout).
		ShouldNot(Equal(issued.UTC().Format(time.RFC3339)))

	rotated := agentWorkOf(g, "rotate-a", "")
	newIssued, newExpires := credentialTimes(g, rotated)
	g.Expect(newIssued).To(BeTemporally(">=", rotation.Truncate(time.Second)))
	g.Expect(newExpires.Sub(newIssued)).To(Equal(DefaultCredentialLifetime))
	newConfig := restConfig(g, kubeconfigOf(g, rotated))
	g.Expect(newConfig.BearerToken).NotTo(Equal(oldConfig.BearerToken))
	g.Expect(whoAmI(newConfig)).To(Equal("system:serviceaccount:rotate-a:lifeboat-spoke"))
	t.Log("the old token stays valid until it expires, so work in flight is not cut off")
	g.Expect(whoAmI(oldConfig)).To(Equal("system:serviceaccount:rotate-a:lifeboat-spoke"))
}

func TestOnlineOfflineFromHeartbeat(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "beat-a", true)
	agentWorkOf(g, "beat-a", "")

	t.Log("a fresh heartbeat: Online, with the spoke's version and the heartbeat's time")
	renewed := clock.Now()
	simulateAgent(g, "beat-a", metav1.ConditionTrue, "", &renewed, "v1.2.3")
	g.Eventually(clusterStatus("beat-a")).WithTimeout(timeout).Should(And(
		HaveField("Phase", fleetv1alpha1.ClusterOnline),
		HaveField("AgentVersion", "v1.2.3"),
		HaveField("LastHeartbeatTime", HaveField("Time", BeTemporally("==", renewed.Truncate(time.Second)))),
	))
	g.Expect(available("beat-a")).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fleetv1alpha1.ReasonAgentReporting)))

	t.Log("once the Lease and the grace have run out: Offline, saying since when and what is not running")
	clock.AdvanceTo(renewed.Add(leaseSeconds*time.Second + DefaultOfflineGrace + time.Second))
	poke(g, "beat-a")
	g.Eventually(clusterStatus("beat-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOffline))
	cond := available("beat-a")
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(fleetv1alpha1.ReasonHeartbeatStale))
	g.Expect(cond.Message).To(ContainSubstring(renewed.UTC().Format(time.RFC3339)))
	g.Expect(cond.Message).To(ContainSubstring("work agent or the Lifeboat spoke manager is not running"))

	t.Log("a new heartbeat: Online again")
	renewed = clock.Now()
	simulateAgent(g, "beat-a", metav1.ConditionTrue, "", &renewed, "v1.2.4")
	g.Eventually(clusterStatus("beat-a")).WithTimeout(timeout).Should(And(HaveField("Phase", fleetv1alpha1.ClusterOnline), HaveField("AgentVersion", "v1.2.4")))

	t.Log("Online turns Offline when the Lease runs out, with no event to wake the reconciler")
	clock.Advance(leaseSeconds*time.Second + DefaultOfflineGrace)
	renewed = clock.Now().Add(-(leaseSeconds*time.Second + DefaultOfflineGrace) + 8*time.Second)
	simulateAgent(g, "beat-a", metav1.ConditionTrue, "", &renewed, "v1.2.4")
	g.Eventually(clusterStatus("beat-a")).WithTimeout(6 * time.Second).Should(
		HaveField("LastHeartbeatTime", HaveField("Time", BeTemporally("==", renewed.Truncate(time.Second)))))
	g.Expect(clusterStatus("beat-a")().Phase).To(Equal(fleetv1alpha1.ClusterOnline))
	g.Eventually(clusterStatus("beat-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOffline))
}

func TestHubAccessFromHeartbeat(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "access-a", true)
	agentWorkOf(g, "access-a", "")
	hubAccess := func() *metav1.Condition {
		return meta.FindStatusCondition(clusterStatus("access-a")().Conditions, fleetv1alpha1.ConditionHubAccess)
	}

	t.Log("a heartbeat without the check: Unknown")
	renewed := clock.Now()
	simulateAgent(g, "access-a", metav1.ConditionTrue, "", &renewed, "v1.0.0")
	g.Eventually(hubAccess).WithTimeout(timeout).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", fleetv1alpha1.ReasonHubAccessNotReported)))

	t.Log("the spoke reports its credential works: True")
	simulateAgentReporting(g, "access-a", metav1.ConditionTrue, "", &renewed, "v1.0.0", "ok")
	g.Eventually(hubAccess).WithTimeout(timeout).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fleetv1alpha1.ReasonHubAccessGranted)))

	t.Log("the spoke reports the hub refused it: False, quoting the spoke")
	simulateAgentReporting(g, "access-a", metav1.ConditionTrue, "", &renewed, "v1.0.0", "the hub refused the credential: Unauthorized")
	g.Eventually(hubAccess).WithTimeout(timeout).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fleetv1alpha1.ReasonHubAccessDenied),
		HaveField("Message", ContainSubstring("the hub refused the credential: Unauthorized"))))
	g.Expect(clusterStatus("access-a")().Phase).To(Equal(fleetv1alpha1.ClusterOnline), "a spoke that cannot reach the hub is still online")
}

func TestAgentNotApplied(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "refused-a", true)
	agentWorkOf(g, "refused-a", "")
	msg := `Failed to apply manifest: customresourcedefinitions.apiextensions.k8s.io is forbidden: User "system:serviceaccount:open-cluster-management-agent:klusterlet-work-sa" cannot create resource`
	simulateAgent(g, "refused-a", metav1.ConditionFalse, msg, nil, "")
	g.Eventually(available).WithArguments("refused-a").WithTimeout(timeout).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", fleetv1alpha1.ReasonAgentNotApplied),
		HaveField("Message", ContainSubstring(msg)),
	))
	g.Expect(clusterStatus("refused-a")().Phase).To(Equal(fleetv1alpha1.ClusterPending))
}

func TestUnmanagedClusterLosesItsCredential(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	createCluster(t, g, "unmanaged-a", true)
	mw := agentWorkOf(g, "unmanaged-a", "")
	cfg := restConfig(g, kubeconfigOf(g, mw))
	g.Expect(whoAmI(cfg)).To(Equal("system:serviceaccount:unmanaged-a:lifeboat-spoke"))
	sa := &corev1.ServiceAccount{}
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Namespace: "unmanaged-a", Name: SpokeName}, sa)).To(Succeed())
	issued := mw.Annotations[AnnotationCredentialIssued]

	t.Log("discovery makes the cluster Unmanaged")
	setManaged(g, "unmanaged-a", false, fleetv1alpha1.ClusterUnmanaged)

	t.Log("its hub ServiceAccount is deleted, and with it the spoke's token stops working")
	g.Eventually(func() error {
		return hubClient.Get(ctx, client.ObjectKey{Namespace: "unmanaged-a", Name: SpokeName}, &corev1.ServiceAccount{})
	}).WithTimeout(timeout).Should(Satisfy(apierrors.IsNotFound))
	g.Eventually(func() error { _, err := whoAmI(cfg); return err }).WithTimeout(timeout).Should(Satisfy(apierrors.IsUnauthorized))

	t.Log("the agent work stays and is no longer rotated; heartbeats do not change the phase")
	clock.Advance(DefaultCredentialLifetime)
	renewed := clock.Now()
	simulateAgent(g, "unmanaged-a", metav1.ConditionTrue, "", &renewed, "v1.2.3")
	g.Eventually(available).WithArguments("unmanaged-a").WithTimeout(timeout).Should(HaveField("Reason", fleetv1alpha1.ReasonClusterUnmanaged))
	g.Consistently(func() string { return annotation(g, "unmanaged-a", AnnotationCredentialIssued) }).WithTimeout(2 * time.Second).Should(Equal(issued))
	g.Consistently(clusterStatus("unmanaged-a")).WithTimeout(2 * time.Second).Should(HaveField("Phase", fleetv1alpha1.ClusterUnmanaged))

	t.Log("managed again: a new ServiceAccount and a new token for it")
	setManaged(g, "unmanaged-a", true, fleetv1alpha1.ClusterPending)
	renewed = clock.Now()
	simulateAgent(g, "unmanaged-a", metav1.ConditionTrue, "", &renewed, "v1.2.3")
	newSA := &corev1.ServiceAccount{}
	g.Eventually(func() error {
		return hubClient.Get(ctx, client.ObjectKey{Namespace: "unmanaged-a", Name: SpokeName}, newSA)
	}).WithTimeout(timeout).Should(Succeed())
	g.Expect(newSA.UID).NotTo(Equal(sa.UID))
	mw = agentWorkOf(g, "unmanaged-a", string(newSA.UID))
	g.Expect(whoAmI(restConfig(g, kubeconfigOf(g, mw)))).To(Equal("system:serviceaccount:unmanaged-a:lifeboat-spoke"))
	g.Eventually(clusterStatus("unmanaged-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOnline))
}

func TestReverseLinksToLocations(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "links-a", true)
	createCluster(t, g, "links-b", true)
	valid := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid, Reason: "ValidationSucceeded", Message: "ok",
		LastValidationTime: &metav1.Time{Time: time.Now().Truncate(time.Second)}}
	invalid := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: "AuthenticationFailed", Message: "AADSTS700211: no federated credential"}
	conn := func(cluster string, st backupv1alpha1.ValidationState) fleetv1alpha1.ClusterConnection {
		return fleetv1alpha1.ClusterConnection{Cluster: cluster, ValidationState: st}
	}

	t.Log("each location whose status lists the cluster, sorted by namespace and name")
	primary := createLocation(t, g, "links-x", "primary", conn("links-a", valid), conn("links-b", invalid))
	secondary := createLocation(t, g, "links-x", "secondary", conn("links-a", invalid))
	alpha := createLocation(t, g, "links-y", "alpha", conn("links-a", valid))
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: valid},
		{Namespace: "links-x", Name: "secondary", ValidationState: invalid},
		{Namespace: "links-y", Name: "alpha", ValidationState: valid},
	}))
	g.Eventually(locationsOf("links-b")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: invalid},
	}))

	t.Log("a changed connection is updated")
	setConnections(g, primary, conn("links-a", invalid), conn("links-b", valid))
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(ContainElement(
		fleetv1alpha1.LocationConnection{Namespace: "links-x", Name: "primary", ValidationState: invalid}))
	g.Eventually(locationsOf("links-b")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: valid},
	}))

	t.Log("a location that no longer lists the cluster drops out; its other clusters keep theirs")
	setConnections(g, alpha, conn("links-b", valid))
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(HaveLen(2))
	g.Expect(locationsOf("links-a")()).NotTo(ContainElement(HaveField("Name", "alpha")))
	g.Eventually(locationsOf("links-b")).WithTimeout(timeout).Should(ConsistOf(HaveField("Name", "primary"), HaveField("Name", "alpha")))

	t.Log("a deleted location drops out")
	g.Expect(hubClient.Delete(context.Background(), secondary)).To(Succeed())
	g.Eventually(locationsOf("links-a")).WithTimeout(timeout).Should(Equal([]fleetv1alpha1.LocationConnection{
		{Namespace: "links-x", Name: "primary", ValidationState: invalid},
	}))
}

// L5 of the security review: any tenant can make locations that select a
// cluster, and each connection's message may be 32 KiB. The fleet-level
// BackupCluster lists the first 100 by namespace and name with messages cut
// to 1024 characters, and counts the rest, instead of failing its status
// writes (a 1.5 MB object) and with them the heartbeat.
func TestLocationsAreCappedAndCounted(t *testing.T) {
	g := NewWithT(t)
	createCluster(t, g, "many-a", true)
	long := backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetInvalid, Reason: "AuthenticationFailed", Message: strings.Repeat("é", 20000)}
	const n = fleetv1alpha1.MaxStatusLocations + 30
	for i := range n {
		createLocation(t, g, fmt.Sprintf("many-x%d", i%3), fmt.Sprintf("loc-%03d", i), fleetv1alpha1.ClusterConnection{Cluster: "many-a", ValidationState: long})
	}
	g.Eventually(clusterStatus("many-a")).WithTimeout(timeout).Should(HaveField("LocationsOmitted", BeEquivalentTo(30)))
	st := clusterStatus("many-a")()
	g.Expect(st.Locations).To(HaveLen(fleetv1alpha1.MaxStatusLocations))
	g.Expect(st.Locations[0]).To(And(HaveField("Namespace", "many-x0"), HaveField("Name", "loc-000")))
	g.Expect(st.Locations[len(st.Locations)-1].Namespace).To(Equal("many-x2"))
	for _, l := range st.Locations {
		g.Expect(utf8.RuneCountInString(l.Message)).To(Equal(fleetv1alpha1.MaxConnectionMessage))
		g.Expect(l.Message).To(HaveSuffix("é…"))
	}

	t.Log("the heartbeat still updates the status")
	renewed := clock.Now()
	simulateAgent(g, "many-a", metav1.ConditionTrue, "", &renewed, "v1.2.3")
	g.Eventually(clusterStatus("many-a")).WithTimeout(timeout).Should(HaveField("Phase", fleetv1alpha1.ClusterOnline))
}

// createCluster creates a BackupCluster and its namespace, as discovery would.
func createCluster(t *testing.T, g *WithT, name string, managed bool) *fleetv1alpha1.BackupCluster {
	ctx := context.Background()
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.BackupClusterSpec{Managed: managed}}
	g.Expect(hubClient.Create(ctx, bc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, bc) })
	return bc
}

// setManaged sets spec.managed and the phase, as discovery does.
func setManaged(g *WithT, name string, managed bool, phase fleetv1alpha1.BackupClusterPhase) {
	ctx := context.Background()
	bc := &fleetv1alpha1.BackupCluster{}
	g.Expect(hubClient.Get(ctx, types.NamespacedName{Name: name}, bc)).To(Succeed())
	before := bc.DeepCopy()
	bc.Spec.Managed = managed
	g.Expect(hubClient.Patch(ctx, bc, client.MergeFrom(before))).To(Succeed())
	g.Eventually(func() error {
		g.Expect(hubClient.Get(ctx, types.NamespacedName{Name: name}, bc)).To(Succeed())
		before := bc.DeepCopy()
		bc.Status.Phase = phase
		return hubClient.Status().Patch(ctx, bc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	}).WithTimeout(timeout).Should(Succeed())
}

// agentWorkOf waits for the cluster's agent work (for the ServiceAccount
// saUID, if given) and returns it.
func agentWorkOf(g *WithT, cluster, saUID string) *workv1.ManifestWork {
	mw := &workv1.ManifestWork{}
	g.Eventually(func(g Gomega) {
		g.Expect(hubClient.Get(context.Background(), Work(cluster), mw)).To(Succeed())
		if saUID != "" {
			g.Expect(mw.Annotations).To(HaveKeyWithValue(AnnotationCredentialServiceAccount, saUID))
		}
	}).WithTimeout(timeout).Should(Succeed())
	return mw
}

func annotation(g *WithT, cluster, key string) string {
	mw := &workv1.ManifestWork{}
	g.Expect(hubClient.Get(context.Background(), Work(cluster), mw)).To(Succeed())
	return mw.Annotations[key]
}

// poke changes the agent work's annotations, which wakes the reconciler.
func poke(g *WithT, cluster string) {
	mw := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Namespace: cluster, Name: AgentWorkName}}
	patch := []byte(`{"metadata":{"annotations":{"test/poke":"` + time.Now().Format(time.RFC3339Nano) + `"}}}`)
	g.Expect(hubClient.Patch(context.Background(), mw, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

func manifests(g *WithT, mw *workv1.ManifestWork) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, m := range mw.Spec.Workload.Manifests {
		u := &unstructured.Unstructured{}
		g.Expect(json.Unmarshal(m.Raw, &u.Object)).To(Succeed())
		out = append(out, u)
	}
	return out
}

func find(g *WithT, objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	g.Expect(false).To(BeTrue(), "no %s %s/%s in the work", kind, namespace, name)
	return nil
}

func decode(g *WithT, u *unstructured.Unstructured, into any) {
	raw, err := json.Marshal(u.Object)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Unmarshal(raw, into)).To(Succeed())
}

func kubeconfigOf(g *WithT, mw *workv1.ManifestWork) []byte {
	secret := &corev1.Secret{}
	decode(g, find(g, manifests(g, mw), "Secret", SpokeNamespace, hubcredential.DefaultSecretName), secret)
	g.Expect(secret.Data).To(HaveKey(hubcredential.Key))
	return secret.Data[hubcredential.Key]
}

func credentialTimes(g *WithT, mw *workv1.ManifestWork) (issued, expires time.Time) {
	issued, err := time.Parse(time.RFC3339, mw.Annotations[AnnotationCredentialIssued])
	g.Expect(err).NotTo(HaveOccurred())
	expires, err = time.Parse(time.RFC3339, mw.Annotations[AnnotationCredentialExpires])
	g.Expect(err).NotTo(HaveOccurred())
	return issued, expires
}

func restConfig(g *WithT, kubeconfig []byte) *rest.Config {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	return cfg
}

// whoAmI asks the hub who cfg's credential is.
func whoAmI(cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

// allowed asks the hub's authorizer whether cfg's credential may do verb.
func allowed(cfg *rest.Config, namespace, verb, resource, subresource string) (bool, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	group := ""
	switch resource {
	case "backupcatalogs":
		group = fleetv1alpha1.GroupVersion.Group
	case "manifestworks":
		group = workv1.GroupName
	}
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: subresource,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

func catalog(namespace, name string) *fleetv1alpha1.BackupCatalog {
	ref := backupv1alpha1.HubObjectReference{Namespace: "team-a", Name: "x"}
	return &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       fleetv1alpha1.BackupCatalogSpec{Cluster: backupv1alpha1.ClusterName(namespace), Sync: &ref, Location: &ref, Page: 1, Final: true},
	}
}

func clusterStatus(name string) func() fleetv1alpha1.BackupClusterStatus {
	return func() fleetv1alpha1.BackupClusterStatus {
		bc := &fleetv1alpha1.BackupCluster{}
		if err := hubClient.Get(context.Background(), types.NamespacedName{Name: name}, bc); err != nil {
			return fleetv1alpha1.BackupClusterStatus{}
		}
		return bc.Status
	}
}

func available(cluster string) *metav1.Condition {
	return meta.FindStatusCondition(clusterStatus(cluster)().Conditions, fleetv1alpha1.ConditionAvailable)
}

func locationsOf(cluster string) func() []fleetv1alpha1.LocationConnection {
	return func() []fleetv1alpha1.LocationConnection { return clusterStatus(cluster)().Locations }
}

// simulateAgent writes what a work agent reports on the agent work: its
// Applied condition and, when renewed is set, the heartbeat Lease's feedback.
func simulateAgent(g *WithT, cluster string, applied metav1.ConditionStatus, message string, renewed *time.Time, version string) {
	simulateAgentReporting(g, cluster, applied, message, renewed, version, "")
}

// simulateAgentReporting is simulateAgent with the spoke's check of its hub
// credential in the heartbeat (empty: not reported).
func simulateAgentReporting(g *WithT, cluster string, applied metav1.ConditionStatus, message string, renewed *time.Time, version, hubAccess string) {
	ctx := context.Background()
	g.Eventually(func(g Gomega) {
		mw := &workv1.ManifestWork{}
		g.Expect(hubClient.Get(ctx, Work(cluster), mw)).To(Succeed())
		reason := "AppliedManifestWorkComplete"
		if applied == metav1.ConditionFalse {
			reason = "AppliedManifestWorkFailed"
		}
		if message == "" {
			message = "Apply manifest work complete"
		}
		mw.Status.Conditions = []metav1.Condition{{Type: workv1.WorkApplied, Status: applied, Reason: reason, Message: message,
			LastTransitionTime: metav1.Now(), ObservedGeneration: mw.Generation}}
		lease := workv1.ManifestCondition{ResourceMeta: workv1.ManifestResourceMeta{
			Ordinal: int32(len(mw.Spec.Workload.Manifests) - 1), Group: "coordination.k8s.io", Version: "v1", Kind: "Lease", Resource: "leases",
			Namespace: SpokeNamespace, Name: "lifeboat-spoke-heartbeat",
		}, Conditions: []metav1.Condition{{Type: workv1.ManifestApplied, Status: applied, Reason: reason, Message: message, LastTransitionTime: metav1.Now()}}}
		if renewed != nil {
			str := func(name, v string) workv1.FeedbackValue {
				return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.String, String: &v}}
			}
			seconds := int64(leaseSeconds)
			lease.StatusFeedbacks.Values = []workv1.FeedbackValue{
				str("renewTime", renewed.UTC().Format("2006-01-02T15:04:05.000000Z07:00")),
				{Name: "leaseDurationSeconds", Value: workv1.FieldValue{Type: workv1.Integer, Integer: &seconds}},
				str("version", version),
			}
			if hubAccess != "" {
				lease.StatusFeedbacks.Values = append(lease.StatusFeedbacks.Values, str("hubAccess", hubAccess))
			}
		}
		mw.Status.ResourceStatus.Manifests = []workv1.ManifestCondition{lease}
		g.Expect(hubClient.Status().Update(ctx, mw)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
}

// createLocation creates a BackupLocation (and its namespace) and writes
// its per-cluster status, as the backuplocation reconciler would.
func createLocation(t *testing.T, g *WithT, namespace, name string, conns ...fleetv1alpha1.ClusterConnection) *fleetv1alpha1.BackupLocation {
	ctx := context.Background()
	if err := hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
	}
	loc := &fleetv1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: fleetv1alpha1.BackupLocationSpec{StorageTarget: backupv1alpha1.StorageTarget{
			Azure:    backupv1alpha1.AzureBlobLocation{StorageAccount: "acct", Container: "backups", Prefix: namespace, Cloud: backupv1alpha1.AzurePublic},
			Identity: backupv1alpha1.AzureWorkloadIdentity{ClientID: "00000000-0000-0000-0000-000000000001", TenantID: "00000000-0000-0000-0000-000000000002"},
		}},
	}
	for _, c := range conns {
		loc.Spec.Clusters = append(loc.Spec.Clusters, backupv1alpha1.ClusterName(c.Cluster))
	}
	g.Expect(hubClient.Create(ctx, loc)).To(Succeed())
	t.Cleanup(func() { _ = hubClient.Delete(ctx, loc) })
	setConnections(g, loc, conns...)
	return loc
}

func setConnections(g *WithT, loc *fleetv1alpha1.BackupLocation, conns ...fleetv1alpha1.ClusterConnection) {
	ctx := context.Background()
	g.Eventually(func() error {
		if err := hubClient.Get(ctx, client.ObjectKeyFromObject(loc), loc); err != nil {
			return err
		}
		loc.Status.Clusters = conns
		return hubClient.Status().Update(ctx, loc)
	}).WithTimeout(timeout).Should(Succeed())
}
