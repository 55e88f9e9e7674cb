package clusterdiscovery

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	gardencorev1beta1 "github.com/gardener/gardener/pkg/apis/core/v1beta1"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/discovery"
	"github.com/lifeboat-dev/lifeboat/e2e/fleet"
)

const (
	backupLabel = "lifeboat.dev/backup"
	// timeout is how long a run may take to show; watchLatency is how soon a
	// shoot change must be onboarded without any other trigger.
	timeout      = 20 * time.Second
	watchLatency = 10 * time.Second
)

var selected = map[string]string{backupLabel: "enabled"}

func TestDiscoveryOnboardsWatchesAndUnmanages(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const project = "onboard"
	createProject(g, project)
	createShoot(g, fleet.ShootOptions{Project: project, Name: "a", Labels: map[string]string{backupLabel: "enabled", "team": "blue"}})
	createShoot(g, fleet.ShootOptions{Project: project, Name: "b", Labels: selected, Region: "northeurope"})
	createShoot(g, fleet.ShootOptions{Project: project, Name: "other", Labels: map[string]string{"team": "blue"}})
	cd := newDiscovery(t, "onboard", []string{project}, selected, nil)

	t.Log("two selected shoots become two registered BackupClusters")
	g.Eventually(readyStatus(cd)).WithTimeout(timeout).Should(Succeed())
	a, b := discovery.ClusterName(project, "a"), discovery.ClusterName(project, "b")
	g.Expect(a).To(Equal("onboard--a"))
	expectOnboarded(g, a, cd)
	expectOnboarded(g, b, cd)
	bcA := backupCluster(g, a)
	g.Expect(bcA.Spec.Shoot).To(Equal(&fleetv1alpha1.ShootInfo{Project: project, Name: "a", Seed: "azure-westeurope", Provider: "azure", Region: "westeurope"}))
	g.Expect(bcA.Labels).To(And(HaveKeyWithValue("team", "blue"), HaveKeyWithValue(backupLabel, "enabled"),
		HaveKeyWithValue("provider.extensions.gardener.cloud/azure", "true")))
	g.Expect(backupCluster(g, b).Spec.Shoot.Region).To(Equal("northeurope"))
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Name: discovery.ClusterName(project, "other")}, &fleetv1alpha1.BackupCluster{})).To(Satisfy(apierrors.IsNotFound))
	role := &rbacv1.ClusterRole{}
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Name: WorkAgentClusterRole}, role)).To(Succeed())
	g.Expect(role.Rules).To(Equal(workAgentRules))
	st := discoveryStatus(g, cd)
	g.Expect(st.Counts.Current).To(BeEquivalentTo(2))
	g.Expect(st.LastRunTime).NotTo(BeNil())
	g.Expect(st.LastSuccessfulRunTime).NotTo(BeNil())
	g.Expect(st.ObservedGeneration).To(Equal(cd.Generation))

	t.Log("a third shoot is onboarded by the watch alone (interval 1h, no spec change)")
	started := time.Now()
	createShoot(g, fleet.ShootOptions{Project: project, Name: "c", Labels: selected})
	c := discovery.ClusterName(project, "c")
	g.Eventually(func(g Gomega) { expectOnboarded(g, c, cd) }).WithTimeout(watchLatency).WithPolling(50 * time.Millisecond).Should(Succeed())
	t.Logf("the third shoot was onboarded %v after it was created", time.Since(started).Round(time.Millisecond))
	g.Expect(discoveryStatus(g, cd).ObservedGeneration).To(Equal(cd.Generation), "no spec change was needed")

	t.Log("shoot labels follow the shoot: changed and removed")
	patchShoot(g, project, "b", func(s *gardencorev1beta1.Shoot) { s.Labels["team"] = "red" })
	g.Eventually(func() map[string]string { return backupCluster(g, b).Labels }).WithTimeout(watchLatency).Should(HaveKeyWithValue("team", "red"))
	patchShoot(g, project, "b", func(s *gardencorev1beta1.Shoot) { delete(s.Labels, "team") })
	g.Eventually(func() map[string]string { return backupCluster(g, b).Labels }).WithTimeout(watchLatency).ShouldNot(HaveKey("team"))

	t.Log("removing the selecting label makes the cluster Unmanaged; nothing is deleted")
	patchShoot(g, project, "a", func(s *gardencorev1beta1.Shoot) { delete(s.Labels, backupLabel) })
	g.Eventually(func(g Gomega) { expectUnmanaged(g, a, cd) }).WithTimeout(watchLatency).Should(Succeed())
	g.Eventually(counts(cd)).WithTimeout(timeout).Should(And(HaveField("Unmanaged", BeEquivalentTo(1)), HaveField("Current", BeEquivalentTo(2))))

	t.Log("putting the label back re-manages it")
	patchShoot(g, project, "a", func(s *gardencorev1beta1.Shoot) { s.Labels[backupLabel] = "enabled" })
	g.Eventually(func(g Gomega) { expectOnboarded(g, a, cd) }).WithTimeout(watchLatency).Should(Succeed())
	g.Eventually(counts(cd)).WithTimeout(timeout).Should(And(HaveField("Remanaged", BeEquivalentTo(1)), HaveField("Current", BeEquivalentTo(3))))

	t.Log("a deleted shoot makes its cluster Unmanaged")
	g.Expect(garden.Client.Delete(ctx, &gardencorev1beta1.Shoot{ObjectMeta: metav1.ObjectMeta{Namespace: discovery.ProjectNamespace(project), Name: "c"}})).To(Succeed())
	g.Eventually(func(g Gomega) { expectUnmanaged(g, c, cd) }).WithTimeout(watchLatency).Should(Succeed())

	t.Log("deleting the discovery stops its watch and releases its clusters")
	g.Expect(rec.watches.running(cd.Name)).To(BeTrue())
	deleteDiscovery(g, cd)
	g.Expect(rec.watches.running(cd.Name)).To(BeFalse())
	for _, n := range []string{a, b, c} {
		expectUnmanaged(g, n, cd)
	}
}

func TestDiscoverySkipsShootsNotReady(t *testing.T) {
	g := NewWithT(t)
	const project = "skip"
	createProject(g, project)
	createShoot(g, fleet.ShootOptions{Project: project, Name: "ok", Labels: selected})
	createShoot(g, fleet.ShootOptions{Project: project, Name: "asleep", Labels: selected, Hibernated: true})
	createShoot(g, fleet.ShootOptions{Project: project, Name: "broken", Labels: selected, LastOperation: gardencorev1beta1.LastOperationStateFailed})
	cd := newDiscovery(t, "skip", []string{project}, selected, nil)

	g.Eventually(readyStatus(cd)).WithTimeout(timeout).Should(Succeed())
	expectOnboarded(g, "skip--ok", cd)
	for _, n := range []string{"skip--asleep", "skip--broken"} {
		g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Name: n}, &fleetv1alpha1.BackupCluster{})).To(Satisfy(apierrors.IsNotFound), n)
		g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Name: n}, &clusterv1.ManagedCluster{})).To(Satisfy(apierrors.IsNotFound), n)
		g.Expect(hubClient.Get(context.Background(), client.ObjectKey{Name: n}, &corev1.Namespace{})).To(Satisfy(apierrors.IsNotFound), n)
	}
	st := discoveryStatus(g, cd)
	g.Expect(st.Counts.Skipped).To(BeEquivalentTo(2))
	g.Expect(st.Counts.Current).To(BeEquivalentTo(1))
	ready := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
	g.Expect(ready.Message).To(And(ContainSubstring("2 shoots skipped"), ContainSubstring("skip/asleep (hibernated)"),
		ContainSubstring("skip/broken (last operation Reconcile Failed 100%")))

	t.Log("an onboarded shoot that hibernates stays onboarded, marked")
	patchShoot(g, project, "ok", func(s *gardencorev1beta1.Shoot) {
		s.Spec.Hibernation = &gardencorev1beta1.Hibernation{Enabled: new(true)}
	})
	g.Eventually(func(g Gomega) {
		bc := backupCluster(g, "skip--ok")
		c := meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionShootReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(discovery.NotReadyHibernated))
		g.Expect(c.Message).To(ContainSubstring("being hibernated"))
	}).WithTimeout(watchLatency).Should(Succeed())
	expectOnboarded(g, "skip--ok", cd)
	g.Eventually(counts(cd)).WithTimeout(timeout).Should(And(HaveField("Current", BeEquivalentTo(1)), HaveField("Skipped", BeEquivalentTo(2))))

	t.Log("a failed shoot whose operation then succeeds is onboarded")
	patchShootStatus(g, project, "broken", func(s *gardencorev1beta1.Shoot) {
		s.Status.LastOperation.State = gardencorev1beta1.LastOperationStateSucceeded
	})
	g.Eventually(func(g Gomega) { expectOnboarded(g, "skip--broken", cd) }).WithTimeout(watchLatency).Should(Succeed())
	bc := backupCluster(g, "skip--broken")
	g.Expect(meta.IsStatusConditionTrue(bc.Status.Conditions, fleetv1alpha1.ConditionShootReady)).To(BeTrue())
}

// L3 of the security review: a tenant who may create namespaces makes
// <project>--<shoot> before the shoot is onboarded. Discovery refuses to
// adopt it, says why on the ClusterDiscovery, and registers nothing for that
// cluster; the other shoots are onboarded. Labelled as the cluster's
// namespace by an admin, it is used.
func TestDiscoveryRefusesANamespaceItDidNotMake(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const project = "squat"
	createProject(g, project)
	createShoot(g, fleet.ShootOptions{Project: project, Name: "prod", Labels: selected})
	createShoot(g, fleet.ShootOptions{Project: project, Name: "ok", Labels: selected})
	squatted := discovery.ClusterName(project, "prod")
	g.Expect(hubClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: squatted, Labels: map[string]string{"team": "payments"}}})).To(Succeed())
	cd := newDiscovery(t, "squat", []string{project}, selected, nil)

	g.Eventually(func(g Gomega) {
		st := discoveryStatus(g, cd)
		g.Expect(st.Phase).To(Equal(fleetv1alpha1.DiscoveryDegraded))
		c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonOnboardingFailed))
		g.Expect(c.Message).To(ContainSubstring("namespace squat--prod already exists and is not this cluster's namespace (it lacks the label " +
			ClusterNameLabel + "=squat--prod), so discovery does not adopt it"))
	}).WithTimeout(timeout).Should(Succeed())
	expectOnboarded(g, discovery.ClusterName(project, "ok"), cd)
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Name: squatted}, &fleetv1alpha1.BackupCluster{})).To(Satisfy(apierrors.IsNotFound))
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Name: squatted}, &clusterv1.ManagedCluster{})).To(Satisfy(apierrors.IsNotFound))
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Namespace: squatted, Name: WorkAgentRoleBinding(squatted)}, &rbacv1.RoleBinding{})).To(Satisfy(apierrors.IsNotFound))
	ns := &corev1.Namespace{}
	g.Expect(hubClient.Get(ctx, client.ObjectKey{Name: squatted}, ns)).To(Succeed())
	g.Expect(ns.Labels).NotTo(HaveKey(ClusterNameLabel))

	t.Log("an admin labels it as the cluster's namespace: the next run onboards the cluster")
	ns.Labels[ClusterNameLabel] = squatted
	g.Expect(hubClient.Update(ctx, ns)).To(Succeed())
	g.Eventually(func(g Gomega) { expectOnboarded(g, squatted, cd) }).WithTimeout(timeout).Should(Succeed())
}

func TestDiscoveryKeepsClustersWhenTheGardenFails(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const project = "broken"
	createProject(g, project)
	createShoot(g, fleet.ShootOptions{Project: project, Name: "a", Labels: selected})
	secret := kubeconfigSecret(g, "broken-garden", kubeconfig)
	cd := newDiscovery(t, "broken", []string{project}, selected, func(cd *fleetv1alpha1.ClusterDiscovery) {
		cd.Spec.Gardener.KubeconfigSecretRef.Name = backupv1alpha1.ObjectName(secret.Name)
	})
	g.Eventually(readyStatus(cd)).WithTimeout(timeout).Should(Succeed())
	const a = "broken--a"
	expectOnboarded(g, a, cd)
	g.Expect(rec.watches.running(cd.Name)).To(BeTrue())

	raw, err := clientcmd.Load(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	unreachable := raw.DeepCopy()
	for _, c := range unreachable.Clusters {
		c.Server = "https://127.0.0.1:1"
	}
	withExec := raw.DeepCopy()
	for _, u := range withExec.AuthInfos {
		u.Exec = &clientcmdapi.ExecConfig{Command: "/bin/sh", APIVersion: "client.authentication.k8s.io/v1"}
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		deleted   bool
		reason    string
		message   []string
		watchStop bool
	}{
		{name: "not a kubeconfig", data: []byte("this is not a kubeconfig"), reason: fleetv1alpha1.ReasonInvalidKubeconfig,
			message: []string{"the kubeconfig in Secret lifeboat-system/broken-garden (key \"kubeconfig\") cannot be used", "parsing the kubeconfig"}},
		{name: "exec plugin", data: write(g, withExec), reason: fleetv1alpha1.ReasonInvalidKubeconfig, message: []string{"runs an exec plugin, which discovery does not allow"}},
		{name: "unreachable garden", data: write(g, unreachable), reason: fleetv1alpha1.ReasonGardenerUnreachable,
			message: []string{"Listing shoots failed", "connection refused"}},
		{name: "missing Secret", deleted: true, reason: fleetv1alpha1.ReasonSecretNotFound,
			message: []string{"the kubeconfig Secret lifeboat-system/broken-garden does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			if tc.deleted {
				g.Expect(hubClient.Delete(ctx, secret)).To(Succeed())
			} else {
				setSecret(g, secret, tc.data)
			}
			kick(g, cd)
			g.Eventually(func(g Gomega) {
				st := discoveryStatus(g, cd)
				g.Expect(st.ObservedGeneration).To(Equal(cd.Generation))
				g.Expect(st.Phase).To(Equal(fleetv1alpha1.DiscoveryFailed))
				c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(c.Reason).To(Equal(tc.reason))
				for _, m := range tc.message {
					g.Expect(c.Message).To(ContainSubstring(m))
				}
				g.Expect(c.Message).To(HaveSuffix("existing clusters are kept as they are"))
			}).WithTimeout(timeout).Should(Succeed())
			// The watch of the old config is stopped; nothing was dropped, and
			// the previous counts still show.
			g.Expect(rec.watches.running(cd.Name)).To(BeFalse())
			expectOnboarded(g, a, cd)
			g.Expect(discoveryStatus(g, cd).Counts.Current).To(BeEquivalentTo(1))
		})
	}

	t.Log("with the right kubeconfig back, discovery is Ready again")
	secret = kubeconfigSecret(g, "broken-garden", kubeconfig)
	kick(g, cd)
	g.Eventually(readyStatus(cd)).WithTimeout(timeout).Should(Succeed())
	expectOnboarded(g, a, cd)
	g.Expect(rec.watches.running(cd.Name)).To(BeTrue())
}

// A kubeconfig that may no longer list one project must not unmanage that
// project's clusters: it does not know whether their shoots are gone.
func TestDiscoveryKeepsClustersOfProjectsItCannotList(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, p := range []string{"rbac-a", "rbac-b"} {
		createProject(g, p)
		createShoot(g, fleet.ShootOptions{Project: p, Name: "s", Labels: selected})
	}
	secret := kubeconfigSecret(g, "rbac-garden", kubeconfig)
	cd := newDiscovery(t, "rbac", []string{"rbac-a", "rbac-b"}, selected, func(cd *fleetv1alpha1.ClusterDiscovery) {
		cd.Spec.Gardener.KubeconfigSecretRef.Name = backupv1alpha1.ObjectName(secret.Name)
	})
	g.Eventually(readyStatus(cd)).WithTimeout(timeout).Should(Succeed())
	expectOnboarded(g, "rbac-a--s", cd)
	expectOnboarded(g, "rbac-b--s", cd)

	t.Log("the garden user may only read project rbac-a now")
	const user = "lifeboat-rbac-viewer"
	g.Expect(garden.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "shoot-viewer", Namespace: "garden-rbac-a"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"core.gardener.cloud"}, Resources: []string{"shoots"}, Verbs: []string{"get", "list", "watch"}}},
	})).To(Succeed())
	g.Expect(garden.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shoot-viewer", Namespace: "garden-rbac-a"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "shoot-viewer"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
	raw, err := clientcmd.Load(kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	for _, a := range raw.AuthInfos {
		a.Impersonate = user
	}
	setSecret(g, secret, write(g, raw))
	kick(g, cd)
	g.Eventually(func(g Gomega) {
		st := discoveryStatus(g, cd)
		g.Expect(st.ObservedGeneration).To(Equal(cd.Generation))
		g.Expect(st.Phase).To(Equal(fleetv1alpha1.DiscoveryDegraded))
		c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
		g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonGardenerUnreachable))
		g.Expect(c.Message).To(And(ContainSubstring("listing shoots in project rbac-b"), ContainSubstring("forbidden"),
			ContainSubstring("the clusters of these projects are kept as they are")))
		g.Expect(st.Counts.Current).To(BeEquivalentTo(2))
		g.Expect(st.Counts.Unmanaged).To(BeEquivalentTo(0))
	}).WithTimeout(timeout).Should(Succeed())
	expectOnboarded(g, "rbac-a--s", cd)
	expectOnboarded(g, "rbac-b--s", cd)
}

func TestOverlappingDiscoveries(t *testing.T) {
	g := NewWithT(t)
	const project = "overlap"
	createProject(g, project)
	createShoot(g, fleet.ShootOptions{Project: project, Name: "x", Labels: map[string]string{"team": "x", "env": "prod"}})
	createShoot(g, fleet.ShootOptions{Project: project, Name: "y", Labels: map[string]string{"team": "x"}})
	team := newDiscovery(t, "team-x", []string{project}, map[string]string{"team": "x"}, nil)
	g.Eventually(readyStatus(team)).WithTimeout(timeout).Should(Succeed())
	prod := newDiscovery(t, "prod", []string{project}, map[string]string{"env": "prod"}, nil)
	g.Eventually(readyStatus(prod)).WithTimeout(timeout).Should(Succeed())

	const x, y = "overlap--x", "overlap--y"
	bcX := backupCluster(g, x)
	g.Expect(bcX.Spec.DiscoveredBy).To(Equal([]backupv1alpha1.ObjectName{"team-x", "prod"}))
	// Both use the default onboarding label; the first keeps it.
	g.Expect(bcX.Labels).To(HaveKeyWithValue(defaultOnboardingLabel, "team-x"))
	g.Expect(managedCluster(g, x).Labels).To(HaveKeyWithValue(defaultOnboardingLabel, "team-x"))
	g.Expect(backupCluster(g, y).Spec.DiscoveredBy).To(Equal([]backupv1alpha1.ObjectName{"team-x"}))
	g.Expect(discoveryStatus(g, prod).Counts.Current).To(BeEquivalentTo(1))

	t.Log("deleting one hands shared clusters to the other and unmanages the rest")
	deleteDiscovery(g, team)
	bcX = backupCluster(g, x)
	g.Expect(bcX.Spec.DiscoveredBy).To(Equal([]backupv1alpha1.ObjectName{"prod"}))
	g.Expect(bcX.Spec.Managed).To(BeTrue())
	g.Expect(bcX.Labels).To(HaveKeyWithValue(defaultOnboardingLabel, "prod"))
	g.Expect(managedCluster(g, x).Labels).To(HaveKeyWithValue(defaultOnboardingLabel, "prod"))
	expectOnboarded(g, x, prod)
	expectUnmanaged(g, y, team)
}

// --- helpers ---

var secretCount atomic.Int32

func createProject(g Gomega, name string) {
	g.ExpectWithOffset(1, garden.CreateProject(context.Background(), name)).To(Succeed())
}

func createShoot(g Gomega, o fleet.ShootOptions) {
	_, err := garden.CreateShoot(context.Background(), o)
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

func patchShoot(g Gomega, project, name string, mutate func(*gardencorev1beta1.Shoot)) {
	ctx := context.Background()
	s := &gardencorev1beta1.Shoot{}
	g.ExpectWithOffset(1, garden.Client.Get(ctx, client.ObjectKey{Namespace: discovery.ProjectNamespace(project), Name: name}, s)).To(Succeed())
	patch := client.MergeFrom(s.DeepCopy())
	mutate(s)
	g.ExpectWithOffset(1, garden.Client.Patch(ctx, s, patch)).To(Succeed())
}

func patchShootStatus(g Gomega, project, name string, mutate func(*gardencorev1beta1.Shoot)) {
	ctx := context.Background()
	s := &gardencorev1beta1.Shoot{}
	g.ExpectWithOffset(1, garden.Client.Get(ctx, client.ObjectKey{Namespace: discovery.ProjectNamespace(project), Name: name}, s)).To(Succeed())
	patch := client.MergeFrom(s.DeepCopy())
	mutate(s)
	g.ExpectWithOffset(1, garden.Client.Status().Patch(ctx, s, patch)).To(Succeed())
}

func kubeconfigSecret(g Gomega, name string, data []byte) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: name}, Data: map[string][]byte{"kubeconfig": data}}
	err := hubClient.Create(context.Background(), s)
	if apierrors.IsAlreadyExists(err) {
		setSecret(g, s, data)
		return s
	}
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return s
}

func setSecret(g Gomega, s *corev1.Secret, data []byte) {
	patch := client.MergeFrom(s.DeepCopy())
	s.Data = map[string][]byte{"kubeconfig": data}
	g.ExpectWithOffset(1, hubClient.Patch(context.Background(), s, patch)).To(Succeed())
}

// newDiscovery creates a ClusterDiscovery with a 1h interval (so only its
// watch and spec changes start runs) and deletes it when the test ends.
func newDiscovery(t *testing.T, name string, projects []string, selector map[string]string, mutate func(*fleetv1alpha1.ClusterDiscovery)) *fleetv1alpha1.ClusterDiscovery {
	t.Helper()
	g := NewWithT(t)
	secret := fmt.Sprintf("garden-%d", secretCount.Add(1))
	kubeconfigSecret(g, secret, kubeconfig)
	cd := &fleetv1alpha1.ClusterDiscovery{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fleetv1alpha1.ClusterDiscoverySpec{
			Gardener: fleetv1alpha1.GardenerSource{
				KubeconfigSecretRef: fleetv1alpha1.SecretKeyReference{Namespace: systemNamespace, Name: backupv1alpha1.ObjectName(secret)},
				Projects:            projects,
				ShootSelector:       &metav1.LabelSelector{MatchLabels: selector},
			},
			Interval: &metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(cd)
	}
	g.Expect(hubClient.Create(context.Background(), cd)).To(Succeed())
	t.Cleanup(func() { deleteDiscovery(NewWithT(t), cd) })
	return cd
}

func deleteDiscovery(g Gomega, cd *fleetv1alpha1.ClusterDiscovery) {
	ctx := context.Background()
	g.ExpectWithOffset(1, client.IgnoreNotFound(hubClient.Delete(ctx, cd))).To(Succeed())
	g.EventuallyWithOffset(1, func() error {
		return hubClient.Get(ctx, client.ObjectKeyFromObject(cd), &fleetv1alpha1.ClusterDiscovery{})
	}).WithTimeout(timeout).Should(Satisfy(apierrors.IsNotFound))
}

// kick changes the spec (the interval), so a run starts and cd's generation
// is the one the status must then show.
func kick(g Gomega, cd *fleetv1alpha1.ClusterDiscovery) {
	ctx := context.Background()
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKeyFromObject(cd), cd)).To(Succeed())
	patch := client.MergeFrom(cd.DeepCopy())
	cd.Spec.Interval = &metav1.Duration{Duration: cd.Spec.Interval.Duration + time.Minute}
	g.ExpectWithOffset(1, hubClient.Patch(ctx, cd, patch)).To(Succeed())
}

func discoveryStatus(g Gomega, cd *fleetv1alpha1.ClusterDiscovery) fleetv1alpha1.ClusterDiscoveryStatus {
	got := &fleetv1alpha1.ClusterDiscovery{}
	g.ExpectWithOffset(1, hubClient.Get(context.Background(), client.ObjectKeyFromObject(cd), got)).To(Succeed())
	return got.Status
}

func counts(cd *fleetv1alpha1.ClusterDiscovery) func(g Gomega) fleetv1alpha1.DiscoveryCounts {
	return func(g Gomega) fleetv1alpha1.DiscoveryCounts {
		st := discoveryStatus(g, cd)
		g.Expect(st.Counts).NotTo(BeNil())
		return *st.Counts
	}
}

// readyStatus succeeds once the latest run of the current spec went well.
func readyStatus(cd *fleetv1alpha1.ClusterDiscovery) func(g Gomega) {
	return func(g Gomega) {
		st := discoveryStatus(g, cd)
		g.Expect(st.ObservedGeneration).To(Equal(cd.Generation))
		g.Expect(st.Phase).To(Equal(fleetv1alpha1.DiscoveryReady))
		c := meta.FindStatusCondition(st.Conditions, fleetv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.Reason).To(Equal(fleetv1alpha1.ReasonDiscoverySucceeded))
	}
}

func backupCluster(g Gomega, name string) *fleetv1alpha1.BackupCluster {
	bc := &fleetv1alpha1.BackupCluster{}
	g.ExpectWithOffset(1, hubClient.Get(context.Background(), client.ObjectKey{Name: name}, bc)).To(Succeed())
	return bc
}

func managedCluster(g Gomega, name string) *clusterv1.ManagedCluster {
	mc := &clusterv1.ManagedCluster{}
	g.ExpectWithOffset(1, hubClient.Get(context.Background(), client.ObjectKey{Name: name}, mc)).To(Succeed())
	return mc
}

// expectOnboarded checks what a registered cluster has on the hub: a managed
// BackupCluster found by cd, an accepted ManagedCluster, the cluster namespace
// and the work agent's RoleBinding.
func expectOnboarded(g Gomega, name string, cd *fleetv1alpha1.ClusterDiscovery) {
	ctx := context.Background()
	bc := &fleetv1alpha1.BackupCluster{}
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Name: name}, bc)).To(Succeed())
	g.ExpectWithOffset(1, bc.Spec.Managed).To(BeTrue(), name)
	g.ExpectWithOffset(1, bc.Spec.DiscoveredBy).To(ContainElement(backupv1alpha1.ObjectName(cd.Name)), name)
	g.ExpectWithOffset(1, bc.Spec.Shoot).NotTo(BeNil())
	g.ExpectWithOffset(1, discovery.ClusterName(bc.Spec.Shoot.Project, bc.Spec.Shoot.Name)).To(Equal(name))
	g.ExpectWithOffset(1, bc.Labels).To(HaveKey(defaultOnboardingLabel))
	g.ExpectWithOffset(1, slices.Contains(bc.Spec.DiscoveredBy, backupv1alpha1.ObjectName(bc.Labels[defaultOnboardingLabel]))).To(BeTrue())
	g.ExpectWithOffset(1, bc.Status.Phase).To(Equal(fleetv1alpha1.ClusterPending), name)
	g.ExpectWithOffset(1, meta.IsStatusConditionTrue(bc.Status.Conditions, fleetv1alpha1.ConditionRegistered)).To(BeTrue(), name)

	mc := &clusterv1.ManagedCluster{}
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Name: name}, mc)).To(Succeed())
	g.ExpectWithOffset(1, mc.Spec.HubAcceptsClient).To(BeTrue(), name)
	g.ExpectWithOffset(1, mc.Labels).To(HaveKeyWithValue(defaultOnboardingLabel, bc.Labels[defaultOnboardingLabel]))

	ns := &corev1.Namespace{}
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
	g.ExpectWithOffset(1, ns.Labels).To(HaveKeyWithValue(ClusterNameLabel, name))

	rb := &rbacv1.RoleBinding{}
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Namespace: name, Name: WorkAgentRoleBinding(name)}, rb)).To(Succeed())
	g.ExpectWithOffset(1, rb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: WorkAgentClusterRole}))
	g.ExpectWithOffset(1, rb.Subjects).To(Equal([]rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: fleet.AgentGroup(name)}}))
}

// expectUnmanaged checks an Unmanaged cluster: kept with its namespace, no
// longer accepted, without the work agent's RoleBinding and onboarding label.
func expectUnmanaged(g Gomega, name string, lastHolder *fleetv1alpha1.ClusterDiscovery) {
	ctx := context.Background()
	bc := &fleetv1alpha1.BackupCluster{}
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Name: name}, bc)).To(Succeed())
	g.ExpectWithOffset(1, bc.Spec.Managed).To(BeFalse(), name)
	g.ExpectWithOffset(1, bc.Spec.DiscoveredBy).To(ContainElement(backupv1alpha1.ObjectName(lastHolder.Name)))
	g.ExpectWithOffset(1, bc.Labels).NotTo(HaveKey(defaultOnboardingLabel))
	g.ExpectWithOffset(1, bc.Status.Phase).To(Equal(fleetv1alpha1.ClusterUnmanaged), name)
	c := meta.FindStatusCondition(bc.Status.Conditions, fleetv1alpha1.ConditionRegistered)
	g.ExpectWithOffset(1, c).NotTo(BeNil())
	g.ExpectWithOffset(1, c.Status).To(Equal(metav1.ConditionFalse))
	g.ExpectWithOffset(1, c.Reason).To(Equal(fleetv1alpha1.ReasonClusterUnmanaged))

	mc := &clusterv1.ManagedCluster{}
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Name: name}, mc)).To(Succeed())
	g.ExpectWithOffset(1, mc.Spec.HubAcceptsClient).To(BeFalse(), name)
	g.ExpectWithOffset(1, mc.Labels).NotTo(HaveKey(defaultOnboardingLabel))
	g.ExpectWithOffset(1, hubClient.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})).To(Succeed())
	err := hubClient.Get(ctx, client.ObjectKey{Namespace: name, Name: WorkAgentRoleBinding(name)}, &rbacv1.RoleBinding{})
	g.ExpectWithOffset(1, apierrors.IsNotFound(err)).To(BeTrue(), "RoleBinding of %s: %v", name, err)
}

func write(g Gomega, c *clientcmdapi.Config) []byte {
	data, err := clientcmd.Write(*c)
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return data
}
