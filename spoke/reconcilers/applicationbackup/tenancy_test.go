package applicationbackup_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// A backup the hub sent for a tenant reads only the namespaces the tenant is
// granted: one asking for more is refused before anything is written, and
// one within the grant takes no cluster-scoped objects unless granted.
func TestTenantBackupStaysInItsGrant(t *testing.T) {
	e := newEnv(t)
	e.start()
	grant := func(ab *backupv1alpha1.ApplicationBackup, namespaces ...backupv1alpha1.NamespaceName) {
		ab.Spec.Tenancy = &backupv1alpha1.Tenancy{HubNamespace: "tenant-a", Grant: backupv1alpha1.Grant{
			Namespaces: []backupv1alpha1.NamespacePattern{backupv1alpha1.NamespacePattern(e.app)}, ClusterScopedResources: backupv1alpha1.Deny}}
		ab.Spec.Selection.IncludedNamespaces = namespaces
	}
	app := backupv1alpha1.NamespaceName(e.app)
	for _, tc := range []struct {
		name            string
		mutate          func(*backupv1alpha1.ApplicationBackup)
		reason, message string
	}{
		{"kube-system", func(ab *backupv1alpha1.ApplicationBackup) { grant(ab, app, "kube-system") },
			backupv1alpha1.ReasonNamespaceNotAllowed, "may not back up namespace kube-system"},
		{"every namespace", func(ab *backupv1alpha1.ApplicationBackup) { grant(ab) },
			backupv1alpha1.ReasonNamespaceNotAllowed, "names none"},
		{"cluster-scoped", func(ab *backupv1alpha1.ApplicationBackup) {
			grant(ab, app)
			ab.Spec.Selection.ClusterScopedResources = backupv1alpha1.ClusterScopedInclude
		}, backupv1alpha1.ReasonClusterScopedNotAllowed, "cluster-scoped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ab := e.backup(targets.SystemNamespace, "tenant-"+rand.String(6), tc.mutate)
			g.Eventually(e.phase(ab), eventuallyLimit).Should(Equal(backupv1alpha1.ApplicationBackupFailed))
			c := condition(e.get(ab)(), backupv1alpha1.ConditionReady)
			g.Expect(c.Reason).To(Equal(tc.reason))
			g.Expect(c.Message).To(ContainSubstring(tc.message))
			g.Expect(e.files(string(ab.UID))()).To(BeEmpty(), "nothing was written")
		})
	}

	t.Run("within the grant", func(t *testing.T) {
		g := NewWithT(t)
		ab := e.backup(targets.SystemNamespace, "tenant-"+rand.String(6), func(ab *backupv1alpha1.ApplicationBackup) {
			grant(ab, app)
			ab.Spec.Selection.ClusterScopedResources = backupv1alpha1.ClusterScopedAuto
		})
		g.Eventually(e.phase(ab), eventuallyLimit).Should(Equal(backupv1alpha1.ApplicationBackupSuccess))
		_, items := e.itemsOf(string(e.get(ab)().Status.BackupID))
		g.Expect(items).To(ContainElements("configmaps/"+e.app+"/settings", "secrets/"+e.app+"/creds"))
		for _, it := range items {
			g.Expect(it).To(ContainSubstring("/"+e.app+"/"), "only the granted namespace's objects")
		}
	})
}
