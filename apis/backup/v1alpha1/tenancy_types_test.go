package v1alpha1

import "testing"

func TestNamespacePatternMatches(t *testing.T) {
	for _, c := range []struct {
		pattern NamespacePattern
		ns      string
		want    bool
	}{
		{"shop", "shop", true},
		{"shop", "shop-1", false},
		{"shop-*", "shop-1", true},
		{"shop-*", "shop", false},
		{"shop-*", "kube-system", false},
		{"*", "kube-system", true},
	} {
		if got := c.pattern.Matches(c.ns); got != c.want {
			t.Errorf("%q.Matches(%q) = %v, want %v", c.pattern, c.ns, got, c.want)
		}
	}
}
