package slots

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestSlotsOfTheHubAndOfTeamsAreSeparate(t *testing.T) {
	g := NewWithT(t)
	s := &Slots{Kind: "restore", Hub: 2, SelfService: 1, HubFlag: "max-restores", SelfServiceFlag: "max-self-service-restores"}
	team, why := s.Take(true)
	g.Expect(team).NotTo(BeNil())
	g.Expect(why).To(BeEmpty())
	_, why = s.Take(true)
	g.Expect(why).To(Equal("Waiting for a restore slot: 1 of teams' restores are running, the most at once on this cluster (--max-self-service-restores)"))

	hub1, _ := s.Take(false)
	hub2, _ := s.Take(false)
	g.Expect(hub1).NotTo(BeNil(), "teams' runs take no slot of the hub's")
	g.Expect(hub2).NotTo(BeNil())
	_, why = s.Take(false)
	g.Expect(why).To(ContainSubstring("2 of the hub's restores are running"))

	hub1()
	hub1() // a second call frees nothing more
	again, _ := s.Take(false)
	g.Expect(again).NotTo(BeNil())
	_, why = s.Take(false)
	g.Expect(why).NotTo(BeEmpty())
	team()
	g.Expect(s.Take(true)).NotTo(BeNil())
}
