package backup

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/filter"
)

// ErrInvalidSelection: the selection cannot be applied as written, e.g. a
// label selector with an invalid operator. Run wraps it.
var ErrInvalidSelection = errors.New("invalid selection")

// ValidateSelection checks what the CRD schema cannot: that the label
// selector is one. A nil selection is valid.
func ValidateSelection(sel *backupv1alpha1.ResourceSelection) error {
	_, err := labelSelector(sel)
	return err
}

func labelSelector(sel *backupv1alpha1.ResourceSelection) (string, error) {
	if sel == nil || sel.LabelSelector == nil {
		return "", nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel.LabelSelector)
	if err != nil {
		return "", fmt.Errorf("%w: labelSelector: %v", ErrInvalidSelection, err)
	}
	return s.String(), nil
}

// selection is a ResourceSelection made concrete against the resources the
// cluster serves.
//
//   - Resources are named as `resource.group`, or `resource` alone. A name
//     alone means the core group's resource of that name if there is one
//     (configmaps, pods), else that resource in any group (deployments).
//   - The label selector is applied by the API server to every list. The
//     cluster-scoped objects that Auto takes because the selected objects
//     need them are taken whatever their labels.
//   - Cluster-scoped objects by policy: Exclude takes none. Include takes
//     every cluster-scoped object the resource filters and the label selector
//     allow, and a Namespace object only if the namespace filters select that
//     namespace. Auto takes what the selected namespaces need: their Namespace
//     objects, the CustomResourceDefinitions of the custom resources taken,
//     the PersistentVolumes bound to the claims taken and the StorageClasses
//     of those claims and volumes, and the ClusterRoles that the role bindings
//     taken refer to. The resource filters' exclusions apply to these; their
//     inclusions do not, since these are taken for what was included. Auto
//     without includedNamespaces means the whole cluster and acts as Include,
//     as the API documents.
//   - A self-service backup (Options.Namespace) takes only its namespace,
//     whatever includedNamespaces and excludedNamespaces say, and of the
//     cluster-scoped objects at most its Namespace object and the
//     CustomResourceDefinitions of its custom resources: never data of other
//     namespaces, nor objects that only the cluster's admin manages.
type selection struct {
	spec        *backupv1alpha1.ResourceSelection
	policy      backupv1alpha1.ClusterScopedResourcePolicy
	selfService string
	// named is true when the selection names its namespaces: then they are
	// namespaces; otherwise every namespace but excludedNS.
	named       bool
	namespaces  []string
	excludedNS  map[string]bool
	resources   filter.Resources
	labels      string
	ignoredSpec []string // what a self-service backup ignored, for the log
}

func newSelection(sel *backupv1alpha1.ResourceSelection, selfService string, resources []resource) (*selection, error) {
	if sel == nil {
		sel = &backupv1alpha1.ResourceSelection{}
	}
	labels, err := labelSelector(sel)
	if err != nil {
		return nil, err
	}
	s := &selection{
		spec:        sel,
		policy:      sel.ClusterScopedResources,
		selfService: selfService,
		excludedNS:  map[string]bool{},
		labels:      labels,
	}
	coreServes := map[string]bool{}
	for _, r := range resources {
		if r.gvr.Group == "" {
			coreServes[r.gvr.Resource] = true
		}
	}
	s.resources = filter.NewResources(sel, func(r string) bool { return coreServes[r] })
	if s.policy == "" {
		s.policy = backupv1alpha1.ClusterScopedAuto
	}

	if selfService != "" {
		for _, ns := range sel.IncludedNamespaces {
			if string(ns) != selfService {
				s.ignoredSpec = append(s.ignoredSpec, fmt.Sprintf("includedNamespaces %s", ns))
			}
		}
		if slices.Contains(sel.ExcludedNamespaces, backupv1alpha1.NamespaceName(selfService)) {
			s.ignoredSpec = append(s.ignoredSpec, fmt.Sprintf("excludedNamespaces %s", selfService))
		}
		if s.policy == backupv1alpha1.ClusterScopedInclude {
			s.ignoredSpec = append(s.ignoredSpec, "clusterScopedResources Include (taken as Auto)")
			s.policy = backupv1alpha1.ClusterScopedAuto
		}
		s.named, s.namespaces = true, []string{selfService}
		return s, nil
	}

	for _, ns := range sel.ExcludedNamespaces {
		s.excludedNS[string(ns)] = true
	}
	for _, ns := range sel.IncludedNamespaces {
		if !s.excludedNS[string(ns)] && !slices.Contains(s.namespaces, string(ns)) {
			s.namespaces = append(s.namespaces, string(ns))
		}
	}
	sort.Strings(s.namespaces)
	s.named = len(sel.IncludedNamespaces) > 0
	if !s.named && s.policy == backupv1alpha1.ClusterScopedAuto {
		s.policy = backupv1alpha1.ClusterScopedInclude
	}
	return s, nil
}

func (s *selection) excludes(k resourceKey) bool {
	return s.resources.Excludes(k.group, k.resource)
}

// takes reports whether the resource filters take resource k.
func (s *selection) takes(k resourceKey) bool {
	return s.resources.Takes(k.group, k.resource)
}

// takesDependency reports whether Auto takes objects of resource k that the
// selected objects need.
func (s *selection) takesDependency(k resourceKey) bool {
	if s.excludes(k) {
		return false
	}
	if s.selfService != "" {
		return k == namespacesKey || k == crdsKey
	}
	return true
}

// takesNamespace reports whether the namespace filters select ns.
func (s *selection) takesNamespace(ns string) bool {
	if s.selfService != "" {
		return ns == s.selfService
	}
	return s.spec.TakesNamespace(ns)
}

// task is one list: a resource in one namespace, or across all of them.
type task struct {
	res       resource
	namespace string // "" lists all namespaces, or a cluster-scoped resource
}

// namespacedTasks lists each namespaced resource the filters take: once per
// selected namespace that exists, or across all namespaces when the
// selection names none.
func (s *selection) namespacedTasks(resources []resource, existing []string) []task {
	var tasks []task
	for _, r := range resources {
		if !r.namespaced || !s.takes(r.key()) {
			continue
		}
		if !s.named {
			tasks = append(tasks, task{res: r})
			continue
		}
		for _, ns := range existing {
			tasks = append(tasks, task{res: r, namespace: ns})
		}
	}
	return tasks
}

// clusterTasks lists each cluster-scoped resource the filters take (Include).
func (s *selection) clusterTasks(resources []resource) []task {
	var tasks []task
	for _, r := range resources {
		if !r.namespaced && s.takes(r.key()) {
			tasks = append(tasks, task{res: r})
		}
	}
	return tasks
}

// keeps reports whether an object listed by t is taken: the namespace filters
// for objects listed across namespaces and for Namespace objects.
func (s *selection) keeps(t task, h *head) bool {
	switch {
	case t.res.namespaced:
		return t.namespace != "" || s.takesNamespace(h.Metadata.Namespace)
	case t.res.key() == namespacesKey:
		return s.takesNamespace(h.Metadata.Name)
	}
	return true
}

var (
	namespacesKey     = resourceKey{"", "namespaces"}
	crdsKey           = resourceKey{"apiextensions.k8s.io", "customresourcedefinitions"}
	pvcsKey           = resourceKey{"", "persistentvolumeclaims"}
	pvsKey            = resourceKey{"", "persistentvolumes"}
	storageClassesKey = resourceKey{"storage.k8s.io", "storageclasses"}
	roleBindingsKey   = resourceKey{"rbac.authorization.k8s.io", "rolebindings"}
	clusterRolesKey   = resourceKey{"rbac.authorization.k8s.io", "clusterroles"}
)

// logSelection writes what the backup takes to the archive's log.
func (e *engine) logSelection() {
	s := e.sel
	switch {
	case s.selfService != "":
		e.logInfo(fmt.Sprintf("self-service backup of namespace %s: only that namespace, its Namespace object and the CustomResourceDefinitions of its custom resources are taken", s.selfService))
		if len(s.ignoredSpec) > 0 {
			e.logWarning(nil, fmt.Sprintf("a self-service backup takes only its own namespace %s; ignored %s", s.selfService, strings.Join(s.ignoredSpec, ", ")))
		}
	case s.named:
		e.logInfo(fmt.Sprintf("namespaces %s; cluster-scoped resources %s", strings.Join(s.namespaces, ", "), s.policy))
	default:
		e.logInfo(fmt.Sprintf("all namespaces; cluster-scoped resources %s", s.policy))
	}
}
