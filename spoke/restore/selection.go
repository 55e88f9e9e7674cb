package restore

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/filter"
)

// selection is Options.Selection made ready to test items against. It reads
// the names in the backup, before mapping.
type selection struct {
	policy     backupv1alpha1.ClusterScopedResourcePolicy // Include, Exclude or Auto; never ""
	named      bool                                       // includedNamespaces is set
	namespaces map[string]bool
	excludedNS map[string]bool
	resources  filter.Resources
	labels     labels.Selector // nil takes every object
}

func newSelection(sel *backupv1alpha1.ResourceSelection) (*selection, error) {
	if sel == nil {
		sel = &backupv1alpha1.ResourceSelection{}
	}
	s := &selection{policy: sel.ClusterScopedResources, namespaces: map[string]bool{}, excludedNS: map[string]bool{}}
	if s.policy == "" {
		s.policy = backupv1alpha1.ClusterScopedAuto
	}
	for _, ns := range sel.IncludedNamespaces {
		s.namespaces[string(ns)] = true
	}
	for _, ns := range sel.ExcludedNamespaces {
		s.excludedNS[string(ns)] = true
	}
	s.named = len(sel.IncludedNamespaces) > 0
	if !s.named && s.policy == backupv1alpha1.ClusterScopedAuto {
		s.policy = backupv1alpha1.ClusterScopedInclude
	}
	s.resources = filter.NewResources(sel, func(r string) bool { return filter.CoreResources[r] })
	if sel.LabelSelector != nil {
		ls, err := metav1.LabelSelectorAsSelector(sel.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("restore: selection.labelSelector: %w", err)
		}
		s.labels = ls
	}
	return s, nil
}

func (s *selection) excludes(ref archive.ItemRef) bool {
	return s.resources.Excludes(ref.Group, ref.Resource)
}

// takes reports whether the resource filters take the item's resource.
func (s *selection) takes(ref archive.ItemRef) bool {
	return s.resources.Takes(ref.Group, ref.Resource)
}

// takesNamespace reports whether the namespace filters select ns of the backup.
func (s *selection) takesNamespace(ns string) bool {
	if s.excludedNS[ns] {
		return false
	}
	return !s.named || s.namespaces[ns]
}

func (s *selection) matchesLabels(obj map[string]any) bool {
	if s.labels == nil {
		return true
	}
	return s.labels.Matches(labels.Set(stringMap(obj, "metadata", "labels")))
}

// Verdicts of selection.decide.
type verdict int

const (
	leaveOut verdict = iota
	take
	// takeIfNeeded: a cluster-scoped object that Auto takes only if a
	// selected object needs it; known once the whole backup is read.
	takeIfNeeded
)

// decide says whether the selection takes an item.
func (s *selection) decide(ref archive.ItemRef, obj map[string]any) verdict {
	switch {
	case ref.Namespace != "":
		if s.takesNamespace(ref.Namespace) && s.takes(ref) && s.matchesLabels(obj) {
			return take
		}
	case isNamespace(ref):
		// A Namespace object follows its namespace; Auto takes it as what the
		// namespace's objects need, so the label selector does not apply.
		switch {
		case s.policy == backupv1alpha1.ClusterScopedExclude || !s.takesNamespace(ref.Name):
		case s.policy == backupv1alpha1.ClusterScopedAuto && !s.excludes(ref):
			return take
		case s.takes(ref) && s.matchesLabels(obj):
			return take
		}
	case s.policy == backupv1alpha1.ClusterScopedInclude:
		if s.takes(ref) && s.matchesLabels(obj) {
			return take
		}
	case s.policy == backupv1alpha1.ClusterScopedAuto:
		if needKey(ref) != "" && !s.excludes(ref) {
			return takeIfNeeded
		}
	}
	return leaveOut
}

// needKey names a cluster-scoped object as what a namespaced one can need,
// or "" for a kind that Auto never takes.
func needKey(ref archive.ItemRef) string {
	switch {
	case ref.Group == "apiextensions.k8s.io" && ref.Resource == "customresourcedefinitions",
		ref.Group == "" && ref.Resource == "persistentvolumes",
		ref.Group == "rbac.authorization.k8s.io" && ref.Resource == "clusterroles",
		ref.Group == "storage.k8s.io" && ref.Resource == "storageclasses":
		return ref.Resource + "/" + ref.Name
	}
	return ""
}

// needsOf lists what a selected namespaced object needs of the cluster-scoped
// ones: its CRD, a claim's volume and storage class, a binding's ClusterRole.
func needsOf(ref archive.ItemRef, obj map[string]any) []string {
	var needs []string
	if ref.Group != "" && strings.Contains(ref.Group, ".") {
		needs = append(needs, "customresourcedefinitions/"+ref.Resource+"."+ref.Group)
	}
	switch {
	case ref.Group == "" && ref.Resource == "persistentvolumeclaims":
		if v := str(obj, "spec", "volumeName"); v != "" {
			needs = append(needs, "persistentvolumes/"+v)
		}
		if sc := str(obj, "spec", "storageClassName"); sc != "" {
			needs = append(needs, "storageclasses/"+sc)
		}
	case ref.Group == "rbac.authorization.k8s.io" && ref.Resource == "rolebindings":
		if str(obj, "roleRef", "kind") == "ClusterRole" {
			needs = append(needs, "clusterroles/"+str(obj, "roleRef", "name"))
		}
	}
	return needs
}
