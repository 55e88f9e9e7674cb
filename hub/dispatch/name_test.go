package dispatch_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

func TestName(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		kind, namespace, name string
		want                  string // "" when only the shape is checked
	}{
		{"BackupLocation", "team-a", "azure-west", "lb-backuplocation-team-a-azure-west-"},
		{"Backup", "", "nightly", "lb-backup-nightly-"},
		{"Backup", "team-a", "db.nightly.v2", "lb-backup-team-a-db-nightly-v2-"},
		{"BackupLocation", long, long, ""},
		{"Restore", long, strings.Repeat("b", 253), ""},
		{"Backup", "ns", "x--", "lb-backup-ns-x-"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.namespace+"/"+tt.name, func(t *testing.T) {
			g := NewWithT(t)
			n := dispatch.Name(tt.kind, tt.namespace, tt.name)
			g.Expect(validation.IsDNS1123Label(n)).To(BeEmpty(), n)
			g.Expect(len(n)).To(BeNumerically("<=", 63))
			g.Expect(dispatch.Name(tt.kind, tt.namespace, tt.name)).To(Equal(n), "stable")
			if tt.want != "" {
				g.Expect(n).To(HavePrefix(tt.want))
				g.Expect(len(n)).To(Equal(len(tt.want)+16), "a 64-bit hash")
			}
		})
	}
}

func TestNameDistinguishesDashes(t *testing.T) {
	g := NewWithT(t)
	g.Expect(dispatch.Name("Backup", "team-a", "x")).NotTo(Equal(dispatch.Name("Backup", "team", "a-x")))
	g.Expect(dispatch.Name("Backup", "a", "x")).NotTo(Equal(dispatch.Name("Restore", "a", "x")))
	long := strings.Repeat("n", 80)
	g.Expect(dispatch.Name("Backup", "ns", long+"1")).NotTo(Equal(dispatch.Name("Backup", "ns", long+"2")), "cut names keep apart")
}

func TestLabels(t *testing.T) {
	g := NewWithT(t)
	longName := strings.Repeat("db.", 80) + "x"
	l := dispatch.Labels(dispatch.HubObject{Kind: "Backup", Namespace: "team-a", Name: longName, UID: "4b5f3a0e-8f2d-4f7a-9c1e-2d3b4a5c6d7e"})
	g.Expect(l).To(HaveKeyWithValue(dispatch.LabelKind, "Backup"))
	g.Expect(l).To(HaveKeyWithValue(dispatch.LabelNamespace, "team-a"))
	g.Expect(l).To(HaveKeyWithValue(dispatch.LabelUID, "4b5f3a0e-8f2d-4f7a-9c1e-2d3b4a5c6d7e"))
	g.Expect(l[dispatch.LabelName]).To(Equal(dispatch.LabelValue(longName)))
	g.Expect(l[dispatch.LabelName]).NotTo(Equal(dispatch.LabelValue(longName + "y")))
	for k, v := range l {
		g.Expect(validation.IsQualifiedName(k)).To(BeEmpty(), k)
		g.Expect(validation.IsValidLabelValue(v)).To(BeEmpty(), v)
	}
	g.Expect(dispatch.LabelValue("_odd.start")).To(MatchRegexp(`^odd-start-[0-9a-f]{16}$`))

	cluster := dispatch.Labels(dispatch.HubObject{Kind: "BackupCluster", Name: "c"})
	g.Expect(cluster).NotTo(HaveKey(dispatch.LabelNamespace))
}
