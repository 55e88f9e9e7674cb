package backuplocation

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// M5 of the security review: two locations whose BackupTarget names are
// equal (a hash collision, stubbed here) would overwrite each other's target
// on the clusters. The younger one is flagged with the older; the older one
// is not, and a location is never its own collision.
func TestSameTargetNameFlagsTheYoungerLocation(t *testing.T) {
	g := NewWithT(t)
	at := func(ns, name string, age time.Duration) fleetv1alpha1.BackupLocation {
		return fleetv1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Now().Add(-age))}}
	}
	victim := at("team-a", "nightly", time.Hour)
	attacker := at("team", "a-nightly-crafted", time.Minute)
	other := at("team-c", "weekly", 2*time.Hour)
	all := []fleetv1alpha1.BackupLocation{victim, attacker, other}
	collide := func(ns, name string) string {
		if ns == "team-c" {
			return "team-c-weekly-0123456789abcdef"
		}
		return "team-a-nightly-0123456789abcdef"
	}

	g.Expect(sameTargetName(&attacker, all, collide)).To(HaveField("ObjectMeta.Name", "nightly"))
	g.Expect(sameTargetName(&victim, all, collide)).To(BeNil(), "the older location keeps working")
	g.Expect(sameTargetName(&other, all, collide)).To(BeNil())
	g.Expect(sameTargetName(&attacker, all, TargetName)).To(BeNil(), "the real names differ")
}

// L4 of the security review: within one namespace, a location whose prefix
// lies inside another's lifeboat/ folder (or the other way round) conflicts;
// folders beside or below a prefix that are not its data do not. The CRD
// refuses such prefixes since; this guards locations stored before.
func TestNestedInDataWithinANamespace(t *testing.T) {
	g := NewWithT(t)
	loc := func(account, container, prefix string) *fleetv1alpha1.BackupLocation {
		l := &fleetv1alpha1.BackupLocation{}
		l.Spec.Azure.StorageAccount, l.Spec.Azure.Container, l.Spec.Azure.Prefix = account, container, prefix
		return l
	}
	for _, tc := range []struct {
		a, b   *fleetv1alpha1.BackupLocation
		nested bool
	}{
		{loc("acct", "c", "a"), loc("acct", "c", "a/lifeboat/v1/backups/c1"), true},
		{loc("acct", "c", "a/lifeboat/v1/backups/c1"), loc("acct", "c", "a"), true},
		{loc("acct", "c", ""), loc("acct", "c", "lifeboat/v1"), true},
		{loc("acct", "c", "a/"), loc("acct", "c", "a/lifeboat"), true},
		{loc("acct", "c", "a"), loc("acct", "c", "a/b"), false},
		{loc("acct", "c", "a"), loc("acct", "c", "a/lifeboats"), false},
		{loc("acct", "c", "a"), loc("acct", "c", "a"), false},
		{loc("acct", "c", "a"), loc("acct", "other", "a/lifeboat/v1"), false},
		{loc("acct", "c", "a"), loc("other", "c", "a/lifeboat/v1"), false},
	} {
		g.Expect(nestedInData(tc.a, tc.b)).To(Equal(tc.nested), "%q and %q", tc.a.Spec.Azure.Prefix, tc.b.Spec.Azure.Prefix)
	}
}
