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
