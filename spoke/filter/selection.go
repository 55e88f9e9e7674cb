// Package filter matches resources against a ResourceSelection's
// includedResources and excludedResources, for backups and restores alike.
package filter

import (
	"strings"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// pattern is one entry of includedResources or excludedResources:
// "resource.group", or a bare "resource".
type pattern struct {
	resource, group string
	qualified       bool
}

func parse(s string) pattern {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return pattern{resource: s[:i], group: s[i+1:], qualified: true}
	}
	return pattern{resource: s}
}

// matches: a bare name means the core group's resource when the core group
// serves one of that name, and that resource in any group otherwise.
func (p pattern) matches(group, resource string, isCore func(resource string) bool) bool {
	if p.resource != resource {
		return false
	}
	if p.qualified {
		return p.group == group
	}
	return group == "" || !isCore(resource)
}

// Resources is the resource filter of a selection.
type Resources struct {
	include, exclude []pattern
	isCore           func(string) bool
}

// NewResources is sel's resource filter; isCore reports whether the core group
// serves a resource of that name (bare names mean it).
func NewResources(sel *backupv1alpha1.ResourceSelection, isCore func(resource string) bool) Resources {
	r := Resources{isCore: isCore}
	if sel == nil {
		return r
	}
	for _, s := range sel.IncludedResources {
		r.include = append(r.include, parse(string(s)))
	}
	for _, s := range sel.ExcludedResources {
		r.exclude = append(r.exclude, parse(string(s)))
	}
	return r
}

// Excludes reports whether excludedResources names the resource.
func (r Resources) Excludes(group, resource string) bool {
	for _, p := range r.exclude {
		if p.matches(group, resource, r.isCore) {
			return true
		}
	}
	return false
}

// Takes reports whether the filter takes the resource: not excluded, and
// included when includedResources is set.
func (r Resources) Takes(group, resource string) bool {
	if r.Excludes(group, resource) {
		return false
	}
	if len(r.include) == 0 {
		return true
	}
	for _, p := range r.include {
		if p.matches(group, resource, r.isCore) {
			return true
		}
	}
	return false
}

// CoreResources are the resources the core group serves in every cluster, for
// code that has no discovery at hand (a restore reading a backup).
var CoreResources = map[string]bool{
	"bindings": true, "componentstatuses": true, "configmaps": true, "endpoints": true, "events": true,
	"limitranges": true, "namespaces": true, "nodes": true, "persistentvolumeclaims": true,
	"persistentvolumes": true, "pods": true, "podtemplates": true, "replicationcontrollers": true,
	"resourcequotas": true, "secrets": true, "serviceaccounts": true, "services": true,
}
