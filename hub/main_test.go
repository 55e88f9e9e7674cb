package main

import (
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

func TestFleetAdminPatterns(t *testing.T) {
	g := NewWithT(t)
	got, err := fleetAdminPatterns("lifeboat-system, team-*,,*")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal([]backupv1alpha1.NamespacePattern{"lifeboat-system", "team-*", "*"}))
	for _, bad := range []string{"Team", "team-*-x", "a_b", "-x"} {
		_, err := fleetAdminPatterns(bad)
		g.Expect(err).To(MatchError(ContainSubstring("--fleet-admin-namespaces")), bad)
	}
}
