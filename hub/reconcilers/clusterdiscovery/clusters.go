package clusterdiscovery

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/discovery"
)

// maxWriteAttempts bounds the retries of a write that met a newer object.
const maxWriteAttempts = 4

// syncClusters onboards or marks every listed shoot and releases the clusters
// this discovery holds whose shoots were not listed, except those of projects
// that could not be listed.
func (r *Reconciler) syncClusters(ctx context.Context, cd *fleetv1alpha1.ClusterDiscovery, shoots []discovery.Shoot, run *run) error {
	clusters := &fleetv1alpha1.BackupClusterList{}
	if err := r.List(ctx, clusters); err != nil {
		return err
	}
	h, err := r.holders(ctx)
	if err != nil {
		return err
	}
	run.full = r.watches.fullDue(cd.Name, run.started, interval(cd))
	byName := make(map[string]*fleetv1alpha1.BackupCluster, len(clusters.Items))
	for i := range clusters.Items {
		byName[clusters.Items[i].Name] = &clusters.Items[i]
	}

	selected := make(map[string]bool, len(shoots))
	pool := newPool(r.workers())
	for _, s := range shoots {
		selected[s.ClusterName] = true
		cached := byName[s.ClusterName]
		pool.do(func() { r.syncShoot(ctx, cd, s, cached, h, run) })
	}
	for _, bc := range byName {
		if !holds(bc, cd.Name) || selected[bc.Name] {
			continue
		}
		if bc.Spec.Shoot != nil && run.listErr.Failed(bc.Spec.Shoot.Project) {
			run.countCurrent(bc.Spec.Managed)
			continue
		}
		why := fmt.Sprintf("its shoot is gone or no longer selected by ClusterDiscovery %s", cd.Name)
		pool.do(func() { r.release(ctx, cd, bc, h, why, run) })
	}
	pool.wait()
	return nil
}

// releaseAll releases every cluster the deleted discovery holds.
func (r *Reconciler) releaseAll(ctx context.Context, cd *fleetv1alpha1.ClusterDiscovery) error {
	clusters := &fleetv1alpha1.BackupClusterList{}
	if err := r.List(ctx, clusters); err != nil {
		return err
	}
	h, err := r.holders(ctx)
	if err != nil {
		return err
	}
	run := newRun(cd, r.now())
	pool := newPool(r.workers())
	for i := range clusters.Items {
		bc := &clusters.Items[i]
		if holds(bc, cd.Name) {
			pool.do(func() { r.release(ctx, cd, bc, h, "ClusterDiscovery "+cd.Name+" was deleted", run) })
		}
	}
	pool.wait()
	return run.err()
}

// syncShoot onboards a ready shoot (or keeps it onboarded), marks a cluster
// whose shoot stopped being ready, and skips a not-ready shoot it does not hold.
func (r *Reconciler) syncShoot(ctx context.Context, cd *fleetv1alpha1.ClusterDiscovery, s discovery.Shoot, cached *fleetv1alpha1.BackupCluster, h holders, run *run) {
	name := s.ClusterName
	if !s.Ready {
		if cached == nil || !holds(cached, cd.Name) || !cached.Spec.Managed {
			run.skip(s)
			return
		}
		bc, err := r.writeCluster(ctx, cached, name, false, func(bc *fleetv1alpha1.BackupCluster) { setShoot(bc, cd, s, h) })
		if err == nil {
			err = r.writeClusterStatus(ctx, bc, func(st *fleetv1alpha1.BackupClusterStatus) { setShootReady(st, bc.Generation, s) })
		}
		if err != nil {
			run.fail(name, err)
		}
		run.countCurrent(true)
		return
	}

	full := cached == nil || !cached.Spec.Managed || run.full || !meta.IsStatusConditionTrue(cached.Status.Conditions, fleetv1alpha1.ConditionRegistered)
	key, value := onboardingLabel(cd), labelValue(cached, cd, h)
	if err := r.register(ctx, name, key, value, cd.Spec.ClusterSet, full); err != nil {
		run.fail(name, err)
		run.countCurrent(cached != nil && holds(cached, cd.Name) && cached.Spec.Managed)
		return
	}
	// What changed is decided on the object written, which may be newer than the cache.
	change := kept
	bc, err := r.writeCluster(ctx, cached, name, true, func(bc *fleetv1alpha1.BackupCluster) {
		switch {
		case bc.ResourceVersion == "":
			change = discovered
		case !bc.Spec.Managed:
			change = remanaged
		default:
			change = kept
		}
		setShoot(bc, cd, s, h)
		bc.Spec.Managed = true
		if !holds(bc, cd.Name) {
			bc.Spec.DiscoveredBy = append(bc.Spec.DiscoveredBy, backupv1alpha1.ObjectName(cd.Name))
		}
	})
	if err == nil {
		err = r.writeClusterStatus(ctx, bc, func(st *fleetv1alpha1.BackupClusterStatus) {
			if st.Phase == "" || st.Phase == fleetv1alpha1.ClusterUnmanaged {
				st.Phase = fleetv1alpha1.ClusterPending
			}
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{
				Type: fleetv1alpha1.ConditionRegistered, Status: metav1.ConditionTrue, Reason: fleetv1alpha1.ReasonClusterRegistered, ObservedGeneration: bc.Generation,
				Message: fmt.Sprintf("Registered with Open Cluster Management for shoot %s/%s", s.Project, s.Name),
			})
			setShootReady(st, bc.Generation, s)
		})
	}
	if err != nil {
		run.fail(name, err)
		return
	}
	run.changed(change, name)
}

type releaseOutcome int

const (
	handedOver releaseOutcome = iota
	alreadyUnmanaged
	madeUnmanaged
)

// release lets go of a cluster this discovery no longer selects. If other
// discoveries hold it, they keep it and this one leaves discoveredBy; if not,
// the cluster becomes Unmanaged: spec.managed false, phase Unmanaged, the
// ManagedCluster no longer accepted and the work agent's RoleBinding removed.
// The BackupCluster, its namespace and everything in it stay, and this
// discovery stays in discoveredBy as the last one that held it.
func (r *Reconciler) release(ctx context.Context, cd *fleetv1alpha1.ClusterDiscovery, cached *fleetv1alpha1.BackupCluster, h holders, why string, run *run) {
	key := onboardingLabel(cd)
	var (
		outcome  releaseOutcome
		newValue string
	)
	bc, err := r.writeCluster(ctx, cached, cached.Name, false, func(bc *fleetv1alpha1.BackupCluster) {
		others := h.others(bc, cd.Name)
		value := bc.Labels[key]
		switch {
		case len(others) > 0:
			outcome = handedOver
			// Leave, and drop names of discoveries that no longer exist.
			bc.Spec.DiscoveredBy = slices.DeleteFunc(bc.Spec.DiscoveredBy, func(n backupv1alpha1.ObjectName) bool { return !slices.Contains(others, string(n)) })
			if value == cd.Name {
				value = ""
				for _, o := range others {
					if onboardingLabel(h[o]) == key {
						value = o
						break
					}
				}
			}
		case !bc.Spec.Managed:
			outcome = alreadyUnmanaged
		default:
			outcome = madeUnmanaged
			bc.Spec.Managed = false
		}
		if outcome != handedOver && value == cd.Name {
			value = ""
		}
		newValue = value
		setLabel(bc.Labels, key, value)
	})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		run.fail(cached.Name, err)
		run.countCurrent(cached.Spec.Managed && outcome != handedOver)
		return
	}
	switch outcome {
	case handedOver:
		err = r.writeManagedCluster(ctx, bc.Name, false, func(mc *clusterv1.ManagedCluster) { setLabel(mc.Labels, key, newValue) })
	case alreadyUnmanaged, madeUnmanaged:
		err = r.revoke(ctx, bc.Name, key, newValue, outcome == madeUnmanaged || run.full)
	}
	if err == nil && outcome != handedOver {
		err = r.writeClusterStatus(ctx, bc, func(st *fleetv1alpha1.BackupClusterStatus) {
			st.Phase = fleetv1alpha1.ClusterUnmanaged
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{
				Type: fleetv1alpha1.ConditionRegistered, Status: metav1.ConditionFalse, Reason: fleetv1alpha1.ReasonClusterUnmanaged, ObservedGeneration: bc.Generation,
				Message: "Unmanaged: " + why + "; the BackupCluster, its namespace and its backups stay",
			})
		})
	}
	if err != nil {
		run.fail(bc.Name, err)
		return
	}
	if outcome == madeUnmanaged {
		run.changed(unmanaged, bc.Name)
	}
}

// writeCluster applies mutate to the BackupCluster name and writes it: a
// create when there is none (if create), else a patch that fails on a newer
// object, in which case it reads the object again and retries. mutate must be
// a function of the object it is given.
func (r *Reconciler) writeCluster(ctx context.Context, cached *fleetv1alpha1.BackupCluster, name string, create bool, mutate func(*fleetv1alpha1.BackupCluster)) (*fleetv1alpha1.BackupCluster, error) {
	current := cached
	for attempt := 1; ; attempt++ {
		var err error
		if current == nil {
			if !create {
				return nil, apierrors.NewNotFound(fleetv1alpha1.GroupVersion.WithResource("backupclusters").GroupResource(), name)
			}
			bc := &fleetv1alpha1.BackupCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
			mutate(bc)
			if err = r.Create(ctx, bc); err == nil {
				return bc, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return nil, err
			}
		} else {
			before := current
			bc := current.DeepCopy()
			mutate(bc)
			if equality.Semantic.DeepEqual(before.Spec, bc.Spec) && maps.Equal(before.Labels, bc.Labels) && maps.Equal(before.Annotations, bc.Annotations) {
				return bc, nil
			}
			if err = r.Patch(ctx, bc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err == nil {
				return bc, nil
			}
			if !apierrors.IsConflict(err) {
				return nil, err
			}
		}
		if attempt == maxWriteAttempts {
			return nil, err
		}
		if current, err = r.freshCluster(ctx, name); err != nil {
			return nil, err
		}
	}
}

// writeClusterStatus patches the BackupCluster's status after mutate, retrying
// on a newer object like writeCluster.
func (r *Reconciler) writeClusterStatus(ctx context.Context, bc *fleetv1alpha1.BackupCluster, mutate func(*fleetv1alpha1.BackupClusterStatus)) error {
	current := bc
	for attempt := 1; ; attempt++ {
		updated := current.DeepCopy()
		mutate(&updated.Status)
		if equality.Semantic.DeepEqual(current.Status, updated.Status) {
			return nil
		}
		err := r.Status().Patch(ctx, updated, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) || attempt == maxWriteAttempts {
			return err
		}
		if current, err = r.freshCluster(ctx, bc.Name); err != nil {
			return err
		}
		if current == nil {
			return nil
		}
	}
}

// freshCluster reads a BackupCluster from the API server; nil if there is none.
func (r *Reconciler) freshCluster(ctx context.Context, name string) (*fleetv1alpha1.BackupCluster, error) {
	bc := &fleetv1alpha1.BackupCluster{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, bc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return bc, nil
}

// setShoot records the shoot on the BackupCluster: shoot info, the shoot's
// labels (dropping the ones it no longer has), the onboarding label and the
// ClusterDiscovery's clusterSet.
func setShoot(bc *fleetv1alpha1.BackupCluster, cd *fleetv1alpha1.ClusterDiscovery, s discovery.Shoot, h holders) {
	if bc.Labels == nil {
		bc.Labels = map[string]string{}
	}
	for _, k := range copiedLabels(bc) {
		if _, still := s.Labels[k]; !still {
			delete(bc.Labels, k)
		}
	}
	keys := make([]string, 0, len(s.Labels))
	for k, v := range s.Labels {
		bc.Labels[k] = v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bc.Labels[onboardingLabel(cd)] = labelValue(bc, cd, h)
	if cd.Spec.ClusterSet != "" {
		// After the shoot's labels: the fleet admin's set wins over a shoot's.
		bc.Labels[clusterv1beta2.ClusterSetLabel] = cd.Spec.ClusterSet
	}
	if bc.Annotations == nil {
		bc.Annotations = map[string]string{}
	}
	setLabel(bc.Annotations, fleetv1alpha1.ShootLabelsAnnotation, strings.Join(keys, ","))
	if len(bc.Annotations) == 0 {
		bc.Annotations = nil
	}
	bc.Spec.Shoot = &fleetv1alpha1.ShootInfo{Project: s.Project, Name: s.Name, Seed: s.Seed, Provider: s.Provider, Region: s.Region}
}

func copiedLabels(bc *fleetv1alpha1.BackupCluster) []string {
	if v := bc.Annotations[fleetv1alpha1.ShootLabelsAnnotation]; v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func setShootReady(st *fleetv1alpha1.BackupClusterStatus, generation int64, s discovery.Shoot) {
	c := metav1.Condition{Type: fleetv1alpha1.ConditionShootReady, Status: metav1.ConditionTrue, Reason: fleetv1alpha1.ReasonShootReconciled, ObservedGeneration: generation,
		Message: fmt.Sprintf("Shoot %s/%s is reconciled and awake", s.Project, s.Name)}
	if !s.Ready {
		c.Status, c.Reason = metav1.ConditionFalse, s.NotReadyReason
		c.Message = fmt.Sprintf("Shoot %s/%s is not ready (%s); the cluster stays onboarded", s.Project, s.Name, s.NotReadyMessage)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// labelValue is the value of the discovery's onboarding label on a cluster:
// the discovery that set it keeps it while it holds the cluster and uses the
// same key, so overlapping discoveries sharing a key do not flip it.
func labelValue(bc *fleetv1alpha1.BackupCluster, cd *fleetv1alpha1.ClusterDiscovery, h holders) string {
	key := onboardingLabel(cd)
	if bc != nil {
		if v := bc.Labels[key]; v != "" && v != cd.Name && holds(bc, v) && h[v] != nil && onboardingLabel(h[v]) == key {
			return v
		}
	}
	return cd.Name
}

// setLabel sets m[k] = v, or deletes k when v is empty.
func setLabel(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
	} else if m != nil {
		m[k] = v
	}
}

func holds(bc *fleetv1alpha1.BackupCluster, discovery string) bool {
	return slices.Contains(bc.Spec.DiscoveredBy, backupv1alpha1.ObjectName(discovery))
}

// holders are the ClusterDiscoveries that exist, by name.
type holders map[string]*fleetv1alpha1.ClusterDiscovery

func (r *Reconciler) holders(ctx context.Context) (holders, error) {
	list := &fleetv1alpha1.ClusterDiscoveryList{}
	if err := r.List(ctx, list); err != nil {
		return nil, err
	}
	h := make(holders, len(list.Items))
	for i := range list.Items {
		h[list.Items[i].Name] = &list.Items[i]
	}
	return h, nil
}

// others are the existing discoveries other than name that hold bc.
func (h holders) others(bc *fleetv1alpha1.BackupCluster, name string) []string {
	var out []string
	for _, n := range bc.Spec.DiscoveredBy {
		if string(n) != name && h[string(n)] != nil {
			out = append(out, string(n))
		}
	}
	return out
}

// pool runs functions on a fixed number of goroutines.
type pool struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

func newPool(n int) *pool { return &pool{sem: make(chan struct{}, n)} }

func (p *pool) do(f func()) {
	p.wg.Add(1)
	p.sem <- struct{}{}
	go func() {
		defer func() { <-p.sem; p.wg.Done() }()
		f()
	}()
}

func (p *pool) wait() { p.wg.Wait() }
