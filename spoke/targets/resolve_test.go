package targets_test

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

// M5 of the security review: a BackupTarget the hub made for one hub
// namespace is not used by an object the hub sent for another (the other
// tenant's location got the same target name and overwrote it).
func TestResolveChecksTheTargetsHubNamespace(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := backupv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	target := func(name string, labels map[string]string) *backupv1alpha1.BackupTarget {
		return &backupv1alpha1.BackupTarget{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status:     backupv1alpha1.BackupTargetStatus{ValidationState: backupv1alpha1.ValidationState{Phase: backupv1alpha1.TargetValid}},
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		target("team-a-nightly-0123456789abcdef", map[string]string{backupv1alpha1.LabelHubNamespace: "team"}),
		target("admins-own", nil),
	).WithStatusSubresource(&backupv1alpha1.BackupTarget{}).Build()
	hubOf := func(ns string) *backupv1alpha1.HubObjectReference {
		return &backupv1alpha1.HubObjectReference{Namespace: backupv1alpha1.NamespaceName(ns), Name: "nightly"}
	}
	for _, tc := range []struct {
		name, target string
		hub          *backupv1alpha1.HubObjectReference
		refused      bool
	}{
		{"the other tenant's target is refused", "team-a-nightly-0123456789abcdef", hubOf("team-a"), true},
		{"its own tenant's target is used", "team-a-nightly-0123456789abcdef", hubOf("team"), false},
		{"objects not from the hub are not held to it", "team-a-nightly-0123456789abcdef", nil, false},
		{"a target the hub did not make is not checked", "admins-own", hubOf("team-a"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := targets.Resolve(context.Background(), c, targets.SystemNamespace, tc.target, tc.hub)
			if !tc.refused {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			var refusal *targets.Refusal
			g.Expect(errors.As(err, &refusal)).To(BeTrue(), "%v", err)
			g.Expect(refusal.Reason).To(Equal(backupv1alpha1.ReasonNamespaceNotAllowed))
			g.Expect(refusal.Message).To(ContainSubstring("made for hub namespace team, not for team-a"))
		})
	}
}
