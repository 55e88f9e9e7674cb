package clusterdiscovery

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/discovery"
)

// keptNote ends every failure message: a failed run never drops a cluster.
const keptNote = "; existing clusters are kept as they are"

// maxListed is how many shoots a condition message names before "and N more".
const maxListed = 5

type change int

const (
	kept change = iota
	discovered
	remanaged
	unmanaged
)

// run collects what one discovery run did, from many goroutines.
type run struct {
	started  time.Time
	projects []string
	// full: this run re-applies every cluster's namespace and RoleBinding.
	full bool

	// stopped is set when the run could not list shoots at all.
	stopped *metav1.Condition
	listErr *discovery.ListError

	mu       sync.Mutex
	counts   fleetv1alpha1.DiscoveryCounts
	names    map[change][]string
	skipped  []string
	failures []string
	errs     []error
}

func newRun(cd *fleetv1alpha1.ClusterDiscovery, now time.Time) *run {
	return &run{started: now, projects: cd.Spec.Gardener.Projects, names: map[change][]string{}}
}

// configError records a wrong Secret, kubeconfig or selector.
func (r *run) configError(reason, message string) error {
	r.stopped = &metav1.Condition{Reason: reason, Message: message + keptNote}
	return errors.New(message)
}

// listFailed records that no shoot could be listed.
func (r *run) listFailed(err error) {
	r.stopped = &metav1.Condition{Reason: fleetv1alpha1.ReasonGardenerUnreachable, Message: "Listing shoots failed: " + err.Error() + keptNote}
}

// hubFailed records that the hub itself refused what every cluster needs.
func (r *run) hubFailed(what string, err error) {
	r.stopped = &metav1.Condition{Reason: fleetv1alpha1.ReasonOnboardingFailed, Message: what + ": " + err.Error() + keptNote}
}

func (r *run) skip(s discovery.Shoot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts.Skipped++
	r.skipped = append(r.skipped, fmt.Sprintf("%s/%s (%s)", s.Project, s.Name, s.NotReadyMessage))
}

func (r *run) fail(cluster string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts.Failed++
	r.failures = append(r.failures, fmt.Sprintf("%s: %v", cluster, err))
	r.errs = append(r.errs, fmt.Errorf("cluster %s: %w", cluster, err))
}

func (r *run) changed(c change, cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch c {
	case discovered:
		r.counts.Discovered++
		r.counts.Current++
	case remanaged:
		r.counts.Remanaged++
		r.counts.Current++
	case kept:
		r.counts.Current++
	case unmanaged:
		r.counts.Unmanaged++
	}
	if c != kept {
		r.names[c] = append(r.names[c], cluster)
	}
}

// countCurrent counts a cluster that stays managed without being onboarded
// in this run (its shoot is not ready, its project could not be listed, or
// writing it failed).
func (r *run) countCurrent(managed bool) {
	if !managed {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts.Current++
}

// err is every cluster that failed, for a rate-limited retry.
func (r *run) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d clusters failed to onboard or release, first: %w", len(r.errs), r.errs[0])
}

// report writes the run into the status: phase, counts, times and Ready.
func (r *run) report(cd *fleetv1alpha1.ClusterDiscovery, now time.Time) {
	st := &cd.Status
	end := metav1.NewTime(now)
	st.ObservedGeneration = cd.Generation
	st.LastRunTime = &end
	ready := metav1.Condition{Type: fleetv1alpha1.ConditionReady, ObservedGeneration: cd.Generation}
	if r.stopped != nil {
		// The counts stay those of the last run that listed shoots.
		st.Phase = fleetv1alpha1.DiscoveryFailed
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, r.stopped.Reason, r.stopped.Message
		meta.SetStatusCondition(&st.Conditions, ready)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := r.counts
	st.Counts = &counts
	summary := fmt.Sprintf("%d clusters current (%d discovered, %d remanaged, %d unmanaged in this run)",
		counts.Current, counts.Discovered, counts.Remanaged, counts.Unmanaged)
	if len(r.skipped) > 0 {
		summary += fmt.Sprintf("; %d shoots skipped: %s", len(r.skipped), listSome(r.skipped))
	}
	switch {
	case r.listErr != nil:
		st.Phase = fleetv1alpha1.DiscoveryDegraded
		ready.Status, ready.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonGardenerUnreachable
		ready.Message = r.listErr.Error() + "; the clusters of these projects are kept as they are. " + summary
	case len(r.failures) > 0:
		st.Phase = fleetv1alpha1.DiscoveryDegraded
		ready.Status, ready.Reason = metav1.ConditionFalse, fleetv1alpha1.ReasonOnboardingFailed
		ready.Message = fmt.Sprintf("%d shoots failed to onboard or release: %s. %s", len(r.failures), listSome(r.failures), summary)
	default:
		st.Phase = fleetv1alpha1.DiscoveryReady
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, fleetv1alpha1.ReasonDiscoverySucceeded, summary
	}
	if r.listErr == nil {
		st.LastSuccessfulRunTime = &end
	}
	meta.SetStatusCondition(&st.Conditions, ready)
}

// listSome names the first few items, sorted, and how many more there are.
func listSome(items []string) string {
	sorted := append([]string(nil), items...)
	sort.Strings(sorted)
	if len(sorted) <= maxListed {
		return strings.Join(sorted, ", ")
	}
	return strings.Join(sorted[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(sorted)-maxListed)
}

// recordEvents tells what changed in the run: clusters onboarded, remanaged
// or unmanaged, and a Ready condition that turned False.
func (rec *Reconciler) recordEvents(cd *fleetv1alpha1.ClusterDiscovery, before *fleetv1alpha1.ClusterDiscovery, r *run) {
	if rec.Recorder == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, e := range map[change][2]string{
		discovered: {"ClustersOnboarded", "Onboarded"},
		remanaged:  {"ClustersRemanaged", "Remanaged"},
		unmanaged:  {"ClustersUnmanaged", "Unmanaged"},
	} {
		if names := r.names[c]; len(names) > 0 {
			rec.Recorder.Eventf(cd, nil, "Normal", e[0], "Discover", "%s %d clusters: %s", e[1], len(names), listSome(names))
		}
	}
	now := meta.FindStatusCondition(cd.Status.Conditions, fleetv1alpha1.ConditionReady)
	was := meta.FindStatusCondition(before.Status.Conditions, fleetv1alpha1.ConditionReady)
	if now != nil && now.Status == metav1.ConditionFalse && (was == nil || was.Status != now.Status || was.Reason != now.Reason) {
		rec.Recorder.Eventf(cd, nil, "Warning", now.Reason, "Discover", "%s", now.Message)
	}
}
