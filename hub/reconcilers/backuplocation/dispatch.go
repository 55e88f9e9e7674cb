package backuplocation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/locations"
	"github.com/lifeboat-dev/lifeboat/hub/placement"
)

// Kind is the hub kind dispatch labels the ManifestWorks with.
const Kind = locations.Kind

// refuseConflict reports a location that overlaps the storage of an older
// location in another namespace, whose prefix lies inside the data of an
// older location of its own namespace (or the other way round), or whose
// BackupTarget name is an older location's, removes whatever it had
// dispatched, and returns true. The older location keeps working: a new
// tenant cannot take a container or a BackupTarget away from an existing one.
func (r *Reconciler) refuseConflict(ctx context.Context, loc *fleetv1alpha1.BackupLocation) (bool, error) {
	all := &fleetv1alpha1.BackupLocationList{}
	if err := r.List(ctx, all); err != nil {
		return false, err
	}
	var other *fleetv1alpha1.BackupLocation
	for i := range all.Items {
		o := &all.Items[i]
		if (o.Namespace == loc.Namespace && o.Name == loc.Name) || !o.DeletionTimestamp.IsZero() || !older(o, loc) {
			continue
		}
		if o.Namespace == loc.Namespace && !nestedInData(loc, o) || o.Namespace != loc.Namespace && !sharesStorage(loc, o) {
			continue
		}
		if other == nil || older(o, other) {
			other = o
		}
	}
	a := loc.Spec.Azure
	var msg string
	switch same := sameTargetName(loc, all.Items, TargetName); {
	case other != nil && other.Namespace == loc.Namespace:
		msg = fmt.Sprintf("prefix %q and the prefix %q of BackupLocation %s/%s in the same container lie one inside the other's lifeboat/ folder, "+
			"so deleting a backup of one could delete the other's data; nothing was sent to any cluster. Use a prefix outside the other location's",
			a.Prefix, other.Spec.Azure.Prefix, other.Namespace, other.Name)
	case other != nil:
		msg = fmt.Sprintf("storage account %q at %s, container %q, prefix %q overlaps BackupLocation %s/%s (prefix %q) of another namespace; "+
			"nothing was sent to any cluster. Use another container or a prefix outside the other location's",
			a.StorageAccount, a.ServiceURL(), a.Container, a.Prefix, other.Namespace, other.Name, other.Spec.Azure.Prefix)
	case same != nil:
		other = same
		msg = fmt.Sprintf("its BackupTarget name %s is also that of the older BackupLocation %s/%s, whose target on the clusters it would overwrite; "+
			"nothing was sent to any cluster. Rename this location", TargetName(loc.Namespace, loc.Name), other.Namespace, other.Name)
	default:
		return false, nil
	}
	if err := r.deleteWorks(ctx, loc, nil); err != nil {
		return true, err
	}
	summarize(loc, nil)
	setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonLocationConflict, msg)
	setCondition(loc, fleetv1alpha1.ConditionValidated, metav1.ConditionFalse, fleetv1alpha1.ReasonLocationConflict, msg)
	setCondition(loc, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, fleetv1alpha1.ReasonLocationConflict, msg)
	ctrl.LoggerFrom(ctx).Info("Refused location sharing storage with an older location", "other", client.ObjectKeyFromObject(other))
	return true, nil
}

// refuseOversized refuses a location that selects more than
// MaxLocationClusters clusters (refuseTooMany), removes whatever it had
// dispatched, and returns true: its status could not say how the clusters
// stand.
func (r *Reconciler) refuseOversized(ctx context.Context, loc *fleetv1alpha1.BackupLocation, selected int) (bool, error) {
	if selected <= fleetv1alpha1.MaxLocationClusters {
		return false, nil
	}
	if err := r.deleteWorks(ctx, loc, nil); err != nil {
		return true, err
	}
	refuseTooMany(loc, selected, fmt.Sprintf("at most %d", fleetv1alpha1.MaxLocationClusters))
	setCondition(loc, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, fleetv1alpha1.ReasonTooManyClusters, "nothing was sent to any cluster")
	return true, nil
}

// sameTargetName is the oldest location in all, other than loc and older
// than it, whose BackupTarget name (by targetName) is loc's; nil when none.
// Names end in 40 bits of a hash, so a tenant could search for a collision.
func sameTargetName(loc *fleetv1alpha1.BackupLocation, all []fleetv1alpha1.BackupLocation, targetName func(namespace, name string) string) *fleetv1alpha1.BackupLocation {
	want := targetName(loc.Namespace, loc.Name)
	var oldest *fleetv1alpha1.BackupLocation
	for i := range all {
		o := &all[i]
		if (o.Namespace == loc.Namespace && o.Name == loc.Name) || !o.DeletionTimestamp.IsZero() || !older(o, loc) || targetName(o.Namespace, o.Name) != want {
			continue
		}
		if oldest == nil || older(o, oldest) {
			oldest = o
		}
	}
	return oldest
}

// sharesStorage is true when a and b are the same container (sameContainer)
// and one prefix is the other or a folder inside it.
func sharesStorage(a, b *fleetv1alpha1.BackupLocation) bool {
	if !sameContainer(a, b) {
		return false
	}
	p, q := normalizePrefix(a.Spec.Azure.Prefix), normalizePrefix(b.Spec.Azure.Prefix)
	return p == "" || q == "" || p == q || strings.HasPrefix(p, q+"/") || strings.HasPrefix(q, p+"/")
}

// nestedInData is true when a and b are the same container and one's prefix
// lies inside the other's lifeboat/ folder, where a deletion through the
// outer location could reach the inner one's data. The CRD refuses a
// lifeboat segment in a prefix; this catches locations stored before it did.
func nestedInData(a, b *fleetv1alpha1.BackupLocation) bool {
	if !sameContainer(a, b) {
		return false
	}
	inside := func(outer, inner string) bool {
		data := "lifeboat"
		if outer != "" {
			data = outer + "/lifeboat"
		}
		return inner == data || strings.HasPrefix(inner, data+"/")
	}
	p, q := normalizePrefix(a.Spec.Azure.Prefix), normalizePrefix(b.Spec.Azure.Prefix)
	return inside(p, q) || inside(q, p)
}

// sameContainer is true when a and b name the same container of the same
// account, named alike or reached at the same service URL (endpoint, or the
// account's URL in its cloud).
func sameContainer(a, b *fleetv1alpha1.BackupLocation) bool {
	x, y := a.Spec.Azure, b.Spec.Azure
	sameAccount := strings.EqualFold(x.StorageAccount, y.StorageAccount) || strings.EqualFold(x.ServiceURL(), y.ServiceURL())
	return sameAccount && x.Container == y.Container
}

func normalizePrefix(p string) string { return strings.Trim(p, "/") }

// older orders locations by creation, then by namespace and name.
func older(a, b *fleetv1alpha1.BackupLocation) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// selectedClusters are the managed BackupClusters that spec.clusters names,
// spec.clusterSelector selects or spec.placementRef's Placement decides for,
// by name, and the identity each uses. While the Placement does not exist
// nothing is selected or changed: the location is not Ready for that reason.
func (r *Reconciler) selectedClusters(ctx context.Context, loc *fleetv1alpha1.BackupLocation) ([]string, map[string]backupv1alpha1.AzureWorkloadIdentity, error) {
	invalid := func(err error) error {
		setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonInvalidSelector, err.Error())
		return reconcile.TerminalError(err)
	}
	var decided sets.Set[string]
	if ref := loc.Spec.PlacementRef; ref != nil {
		d, found, err := placement.Decided(ctx, r, loc.Namespace, string(ref.Name))
		if err != nil {
			return nil, nil, err
		}
		if !found {
			msg := placement.NotFoundMessage(loc.Namespace, string(ref.Name)) + "; the location sends nothing to clusters and removes nothing until it exists"
			setCondition(loc, fleetv1alpha1.ConditionReady, metav1.ConditionFalse, fleetv1alpha1.ReasonPlacementNotFound, msg)
			return nil, nil, reconcile.TerminalError(errors.New(msg))
		}
		decided = d
	}
	var sel labels.Selector
	if loc.Spec.ClusterSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(loc.Spec.ClusterSelector)
		if err != nil {
			return nil, nil, invalid(fmt.Errorf("clusterSelector: %v", err))
		}
		sel = s
	}
	ids, err := newIdentityMap(loc)
	if err != nil {
		return nil, nil, invalid(err)
	}
	list := &fleetv1alpha1.BackupClusterList{}
	if err := r.List(ctx, list); err != nil {
		return nil, nil, err
	}
	var names []string
	identities := map[string]backupv1alpha1.AzureWorkloadIdentity{}
	for i := range list.Items {
		c := &list.Items[i]
		if !c.Spec.Managed || !c.DeletionTimestamp.IsZero() {
			continue
		}
		if slices.Contains(loc.Spec.Clusters, backupv1alpha1.ClusterName(c.Name)) || (sel != nil && sel.Matches(labels.Set(c.Labels))) || decided.Has(c.Name) {
			names = append(names, c.Name)
			identities[c.Name] = ids.of(c)
		}
	}
	sort.Strings(names)
	return names, identities, nil
}

// dispatchTargets applies the BackupTarget work of every selected cluster,
// deletes the works of the others, and returns the works by cluster. When
// some could not be sent it returns those that were and an error.
func (r *Reconciler) dispatchTargets(ctx context.Context, loc *fleetv1alpha1.BackupLocation, clusters []string, identities map[string]backupv1alpha1.AzureWorkloadIdentity) (map[string]*workv1.ManifestWork, error) {
	existing, err := r.works(ctx, loc)
	if err != nil {
		return nil, err
	}
	owner := dispatch.HubObject{Kind: Kind, Namespace: loc.Namespace, Name: loc.Name, UID: loc.UID, Generation: loc.Generation}
	out := make(map[string]*workv1.ManifestWork, len(clusters))
	results := make([]*workv1.ManifestWork, len(clusters))
	var eg errgroup.Group
	eg.SetLimit(r.workers())
	failed := make([]error, len(clusters))
	for i, cluster := range clusters {
		mw, err := dispatch.Work(cluster, owner, backupTarget(loc, identities[cluster]), locations.Feedback, dispatch.WithResource("backuptargets"))
		if err != nil {
			return nil, reconcile.TerminalError(err)
		}
		same, err := dispatch.Unchanged(mw, existing[cluster])
		if err != nil {
			return nil, err
		}
		if same {
			results[i] = existing[cluster]
			continue
		}
		send := dispatch.Apply
		if existing[cluster] == nil {
			send = dispatch.Create
		}
		eg.Go(func() error {
			if err := send(ctx, r.Client, mw); err != nil {
				failed[i] = err
				return nil
			}
			results[i] = mw
			return nil
		})
	}
	_ = eg.Wait()
	var errs []error
	var failedClusters []string
	for i, cluster := range clusters {
		if failed[i] != nil {
			errs = append(errs, failed[i])
			failedClusters = append(failedClusters, cluster)
			continue
		}
		out[cluster] = results[i]
	}
	if err := r.deleteWorks(ctx, loc, func(cluster string) bool { return slices.Contains(clusters, cluster) }); err != nil {
		errs = append(errs, err)
	}
	if len(failedClusters) > 0 {
		setCondition(loc, fleetv1alpha1.ConditionDispatched, metav1.ConditionFalse, fleetv1alpha1.ReasonDispatchFailed,
			fmt.Sprintf("the BackupTarget could not be sent to %d cluster(s): %s", len(failedClusters), summarizeNames(failedClusters)))
	} else {
		setCondition(loc, fleetv1alpha1.ConditionDispatched, metav1.ConditionTrue, "Dispatched",
			fmt.Sprintf("the BackupTarget %s was sent to %d cluster(s)", TargetName(loc.Namespace, loc.Name), len(clusters)))
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("dispatch BackupLocation %s/%s: %w", loc.Namespace, loc.Name, errs[0])
	}
	return out, nil
}

// backupTarget is the spoke's copy of the location, signing in as identity.
func backupTarget(loc *fleetv1alpha1.BackupLocation, identity backupv1alpha1.AzureWorkloadIdentity) *backupv1alpha1.BackupTarget {
	t := &backupv1alpha1.BackupTarget{
		TypeMeta: metav1.TypeMeta{APIVersion: backupv1alpha1.GroupVersion.String(), Kind: "BackupTarget"},
		ObjectMeta: metav1.ObjectMeta{
			Name: TargetName(loc.Namespace, loc.Name),
			Labels: map[string]string{
				dispatch.LabelKind:      Kind,
				dispatch.LabelNamespace: dispatch.LabelValue(loc.Namespace),
				dispatch.LabelName:      dispatch.LabelValue(loc.Name),
			},
		},
		Spec: backupv1alpha1.BackupTargetSpec{StorageTarget: *loc.Spec.StorageTarget.DeepCopy()},
	}
	t.Spec.Identity = identity
	return t
}

// works are the location's ManifestWorks by cluster namespace.
func (r *Reconciler) works(ctx context.Context, loc *fleetv1alpha1.BackupLocation) (map[string]*workv1.ManifestWork, error) {
	list := &workv1.ManifestWorkList{}
	if err := r.List(ctx, list, locations.WorkLabels(loc)); err != nil {
		return nil, err
	}
	out := make(map[string]*workv1.ManifestWork, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Namespace] = &list.Items[i]
	}
	return out, nil
}

// deleteWorks deletes the location's works in clusters keep does not keep
// (all of them when keep is nil).
func (r *Reconciler) deleteWorks(ctx context.Context, loc *fleetv1alpha1.BackupLocation, keep func(cluster string) bool) error {
	works, err := r.works(ctx, loc)
	if err != nil {
		return err
	}
	var errs []error
	for cluster, mw := range works {
		if (keep != nil && keep(cluster)) || !mw.DeletionTimestamp.IsZero() {
			continue
		}
		if err := r.Delete(ctx, mw); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err)
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Deleted BackupTarget work", "cluster", cluster, "work", mw.Name)
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// locationOfWork maps a ManifestWork back to its BackupLocation.
func (r *Reconciler) locationOfWork(ctx context.Context, obj client.Object) []reconcile.Request {
	return dispatch.OwnerOfWork(ctx, r, obj, Kind, &fleetv1alpha1.BackupLocationList{})
}

// allLocations enqueues every location: a cluster change may change what any
// selector selects.
func (r *Reconciler) allLocations(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &fleetv1alpha1.BackupLocationList{}
	if err := r.List(ctx, list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list BackupLocations for a cluster change")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, loc := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&loc)})
	}
	return out
}

// locationsSharingStorage enqueues the other locations on the storage, or
// with the BackupTarget name, of a deleted one, so one it refused can be
// accepted.
func (r *Reconciler) locationsSharingStorage(ctx context.Context, obj client.Object) []reconcile.Request {
	gone, ok := obj.(*fleetv1alpha1.BackupLocation)
	if !ok {
		return nil
	}
	list := &fleetv1alpha1.BackupLocationList{}
	if err := r.List(ctx, list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		loc := &list.Items[i]
		if (loc.Namespace != gone.Namespace && sharesStorage(loc, gone)) || TargetName(loc.Namespace, loc.Name) == TargetName(gone.Namespace, gone.Name) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(loc)})
		}
	}
	return out
}

func setCondition(loc *fleetv1alpha1.BackupLocation, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&loc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: loc.Generation,
	})
}

func summarizeNames(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}
