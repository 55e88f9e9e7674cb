package filter

import (
	"testing"

	. "github.com/onsi/gomega"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

func TestResources(t *testing.T) {
	isCore := func(r string) bool { return CoreResources[r] }
	cases := []struct {
		name             string
		include, exclude []backupv1alpha1.GroupResource
		group, resource  string
		takes            bool
	}{
		{"no filter takes all", nil, nil, "apps", "deployments", true},
		{"bare core name means core", []backupv1alpha1.GroupResource{"services"}, nil, "", "services", true},
		{"bare core name is not another group's", []backupv1alpha1.GroupResource{"services"}, nil, "serving.knative.dev", "services", false},
		{"bare non-core name means any group", []backupv1alpha1.GroupResource{"deployments"}, nil, "apps", "deployments", true},
		{"qualified name", []backupv1alpha1.GroupResource{"deployments.apps"}, nil, "apps", "deployments", true},
		{"qualified name of another group", []backupv1alpha1.GroupResource{"deployments.apps"}, nil, "example.com", "deployments", false},
		{"not included", []backupv1alpha1.GroupResource{"configmaps"}, nil, "", "secrets", false},
		{"excluded", nil, []backupv1alpha1.GroupResource{"secrets"}, "", "secrets", false},
		{"exclusion wins over inclusion", []backupv1alpha1.GroupResource{"secrets"}, []backupv1alpha1.GroupResource{"secrets"}, "", "secrets", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := NewResources(&backupv1alpha1.ResourceSelection{IncludedResources: tc.include, ExcludedResources: tc.exclude}, isCore)
			g.Expect(r.Takes(tc.group, tc.resource)).To(Equal(tc.takes))
		})
	}
	g := NewWithT(t)
	g.Expect(NewResources(nil, isCore).Takes("", "pods")).To(BeTrue())
}
