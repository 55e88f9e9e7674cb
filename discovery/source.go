package discovery

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Source is where clusters come from. A reconciler lists it on every run and
// watches it to know when to run again; it never writes to it.
type Source interface {
	// List returns the selected shoots, sorted by ClusterName. When some projects
	// could not be listed it returns the shoots of the others together with a
	// *ListError naming the failed projects; the caller must not conclude that a
	// cluster of a failed project is gone.
	List(ctx context.Context) ([]Shoot, error)

	// Watch calls notify, from one goroutine, whenever a selected shoot is added,
	// changed or removed, until ctx ends; it retries by itself when the
	// connection breaks. Calls come in bursts (one per shoot on start); notify
	// should only mark that a new List is due.
	Watch(ctx context.Context, notify func()) error
}

// Shoot is what discovery needs to know about one Gardener shoot.
type Shoot struct {
	// Project is the Gardener project, Name the shoot's name in it.
	Project, Name string
	// ClusterName is the stable fleet name of the shoot: see ClusterName.
	ClusterName string
	// Seed hosts the shoot's control plane; Provider is the infrastructure type
	// (azure, aws, ...); Region is the provider region.
	Seed, Provider, Region string
	// Labels are the shoot's labels.
	Labels map[string]string
	// APIServer is the URL of the shoot's API server as Gardener advertises it
	// ("external" address first); empty before the shoot is reconciled.
	APIServer string

	// Ready says the shoot can be onboarded now: its last operation succeeded (or
	// a reconcile runs after one that did), it is not hibernated and not being
	// deleted.
	Ready bool
	// NotReadyReason is why the shoot is not ready, one of the NotReady*
	// constants; empty when Ready.
	NotReadyReason string
	// NotReadyMessage says the same for a person, e.g. "hibernated" or
	// "last operation Create Processing 40%".
	NotReadyMessage string
	// Deleting: the shoot has a deletion timestamp.
	Deleting bool
	// Hibernated: the shoot is hibernated, or is being hibernated or woken up.
	Hibernated bool
}

// Reasons why a shoot is not ready (CamelCase, usable as condition reasons).
const (
	// NotReadyBeingDeleted: the shoot has a deletion timestamp.
	NotReadyBeingDeleted = "ShootBeingDeleted"
	// NotReadyHibernated: the shoot is hibernated, hibernating or waking up.
	NotReadyHibernated = "ShootHibernated"
	// NotReadyNotReconciled: Gardener has not reported any operation yet.
	NotReadyNotReconciled = "ShootNotReconciled"
	// NotReadyLastOperation: the last operation did not succeed (it is still
	// creating, failed, is being migrated, ...).
	NotReadyLastOperation = "ShootLastOperationNotSucceeded"
)

// ListError names the projects whose shoots could not be listed.
type ListError struct {
	// Projects maps a project ("" when all projects were listed at once) to its error.
	Projects map[string]error
}

func (e *ListError) Error() string {
	names := make([]string, 0, len(e.Projects))
	for p := range e.Projects {
		names = append(names, p)
	}
	sort.Strings(names)
	msgs := make([]string, 0, len(names))
	for _, p := range names {
		where := "listing shoots in project " + p
		if p == "" {
			where = "listing shoots in all projects"
		}
		msgs = append(msgs, fmt.Sprintf("%s: %v", where, e.Projects[p]))
	}
	return strings.Join(msgs, "; ")
}

// Failed says whether project could not be listed. When all projects were
// listed at once and that failed, every project failed.
func (e *ListError) Failed(project string) bool {
	if e == nil {
		return false
	}
	if _, all := e.Projects[""]; all {
		return true
	}
	_, ok := e.Projects[project]
	return ok
}
