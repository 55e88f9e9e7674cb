package discovery

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestClusterName(t *testing.T) {
	for _, tc := range []struct{ project, shoot, want string }{
		{"prod", "app", "prod--app"},
		{"p", "s", "p--s"},
		{"a-b", "c", "a-b--c"},
		{"a", "b-c", "a--b-c"},
		// Gardener's longest names: project 10, project plus shoot 21 characters.
		{"abcdefghij", "klmnopqrstu", "abcdefghij--klmnopqrstu"},
		{"garden", "x", "garden--x"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			g := NewWithT(t)
			got := ClusterName(tc.project, tc.shoot)
			g.Expect(got).To(Equal(tc.want))
			g.Expect(validation.IsDNS1123Label(got)).To(BeEmpty())
			// The first "--" splits it back, since neither name may contain "--".
			p, s, _ := strings.Cut(got, "--")
			g.Expect([]string{p, s}).To(Equal([]string{tc.project, tc.shoot}))
		})
	}
}

func TestClusterNameIsUnique(t *testing.T) {
	g := NewWithT(t)
	// Pairs that a plain "-" join would confuse.
	pairs := [][2]string{{"a-b", "c"}, {"a", "b-c"}, {"a", "bc"}, {"ab", "c"}, {"a-b-c", "d"}, {"a", "b-c-d"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		n := ClusterName(p[0], p[1])
		g.Expect(seen).NotTo(HaveKey(n), "%v and %v", seen[n], p)
		seen[n] = p
	}
}

func TestClusterNameTooLong(t *testing.T) {
	g := NewWithT(t)
	// Only possible without Gardener's admission plugins; still a DNS label.
	long := strings.Repeat("s", 60)
	a, b := ClusterName("proj", long), ClusterName("proj", long+"x")
	for _, n := range []string{a, b} {
		g.Expect(len(n)).To(BeNumerically("<=", 63))
		g.Expect(validation.IsDNS1123Label(n)).To(BeEmpty())
	}
	g.Expect(a).NotTo(Equal(b))
	g.Expect(ClusterName("proj", long)).To(Equal(a), "stable")
	// A cut that ends in '-' is trimmed.
	dashy := ClusterName("p", strings.Repeat("ab-", 25))
	g.Expect(validation.IsDNS1123Label(dashy)).To(BeEmpty())
}

func TestProjectNamespace(t *testing.T) {
	g := NewWithT(t)
	for _, p := range []string{"prod", "garden", "a-b"} {
		g.Expect(projectOfNamespace(ProjectNamespace(p))).To(Equal(p))
	}
	g.Expect(ProjectNamespace("prod")).To(Equal("garden-prod"))
	g.Expect(ProjectNamespace("garden")).To(Equal("garden"))
}
