package protection

// The protection picture of a cluster: for each namespace its spoke
// reports, the newest successful backup that took it, the RPO of the
// schedules covering it, and a verdict Protected, AtRisk or Unprotected
// (see docs/operations.md#protection-report).

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// clockSkew is how far in the future an inventory's observedTime may be.
const clockSkew = 10 * time.Minute

// CheckInventory returns the namespaces that page reports for cluster, or
// why the page cannot be believed. The spoke is trusted with nothing: the
// page must be the inventory page in cluster's own namespace and speak of
// cluster only, and the CRD's bounds are checked again.
func CheckInventory(page *fleetv1alpha1.BackupCatalog, cluster string, now time.Time) (*fleetv1alpha1.NamespaceInventory, error) {
	inv := page.Spec.Inventory
	switch {
	case page.Namespace != cluster || string(page.Spec.Cluster) != cluster:
		return nil, fmt.Errorf("the page in namespace %s speaks of cluster %q, not %s", page.Namespace, page.Spec.Cluster, cluster)
	case page.Name != fleetv1alpha1.InventoryPageName:
		return nil, fmt.Errorf("page %s is not the inventory page %q", page.Name, fleetv1alpha1.InventoryPageName)
	case inv == nil:
		return nil, fmt.Errorf("page %s has no inventory", page.Name)
	case page.Spec.Sync != nil || page.Spec.Location != nil || len(page.Spec.Entries) > 0:
		return nil, fmt.Errorf("page %s mixes an inventory with a sync's catalog", page.Name)
	case len(inv.Namespaces) > fleetv1alpha1.MaxInventoryNamespaces:
		return nil, fmt.Errorf("the inventory lists %d namespaces, more than %d", len(inv.Namespaces), fleetv1alpha1.MaxInventoryNamespaces)
	case inv.NamespacesOmitted < 0:
		return nil, fmt.Errorf("the inventory omits a negative number of namespaces (%d)", inv.NamespacesOmitted)
	case inv.ObservedTime.Time.IsZero() || inv.ObservedTime.Time.After(now.Add(clockSkew)):
		return nil, fmt.Errorf("the inventory's observedTime %s is missing or in the future", inv.ObservedTime.UTC().Format(time.RFC3339))
	}
	seen := make(map[fleetv1alpha1.InventoryNamespaceName]bool, len(inv.Namespaces))
	for _, ns := range inv.Namespaces {
		if errs := validation.IsDNS1123Label(string(ns)); len(errs) > 0 {
			return nil, fmt.Errorf("the inventory lists %q, which is not a namespace name", truncate(string(ns), 80))
		}
		if seen[ns] {
			return nil, fmt.Errorf("the inventory lists namespace %s twice", ns)
		}
		seen[ns] = true
	}
	return inv, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Takes reports whether backup selection sel takes the whole of namespace
// ns: the namespace filters select it (the rule the spoke applies,
// ResourceSelection.TakesNamespace) and neither a labelSelector nor
// includedResources narrows what is taken of it. excludedResources does not
// count against it: leaving out, e.g., events is the admin's choice of
// what matters.
func Takes(sel *backupv1alpha1.ResourceSelection, ns string) bool {
	if sel != nil && (sel.LabelSelector != nil || len(sel.IncludedResources) > 0) {
		return false
	}
	return sel.TakesNamespace(ns)
}

// Backup is a successful backup of the cluster, as the verdicts see it.
type Backup struct {
	// Name is namespace/name of the hub Backup.
	Name      string
	Selection *backupv1alpha1.ResourceSelection
	Start     time.Time
}

// Cover is a schedule covering the cluster and its RPO.
type Cover struct {
	// Name is namespace/name of the BackupSchedule.
	Name      string
	Selection *backupv1alpha1.ResourceSelection
	RPO       time.Duration
}

// Backups are the cluster's Backups that count: restorable, not being
// deleted, started, and with a selection the hub knows (a Backup a sync
// imported from another hub's or an unknown source records none, so it
// is not counted for any namespace).
func Backups(cluster string, list []fleetv1alpha1.Backup) []Backup {
	var out []Backup
	for i := range list {
		b := &list[i]
		if string(b.Spec.Cluster) != cluster || !b.Status.Phase.Restorable() || b.Status.StartTime == nil || !b.DeletionTimestamp.IsZero() {
			continue
		}
		if b.Status.Origin == fleetv1alpha1.OriginSynced || b.Status.Origin == fleetv1alpha1.OriginSelfService && b.Spec.Selection == nil {
			continue
		}
		out = append(out, Backup{Name: b.Namespace + "/" + b.Name, Selection: b.Spec.Selection, Start: b.Status.StartTime.Time})
	}
	// Newest first, so the first that takes a namespace is its newest.
	sort.Slice(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out
}

// RPO is a schedule's recovery point objective: the longest time between
// two of its runs (gap), plus an allowance for the run itself: the
// template's timeout if it has one, else a tenth of the gap, at least 1
// minute and at most 1 hour.
func RPO(gap time.Duration, timeout *metav1.Duration) time.Duration {
	if timeout != nil && timeout.Duration > 0 {
		return gap + timeout.Duration
	}
	return gap + min(max(gap/10, time.Minute), time.Hour)
}

// Evaluate gives the verdict on each namespace: Protected when a covering
// schedule exists and the newest backup that took the namespace started no
// longer ago than the shortest RPO of the covering schedules; AtRisk when a
// schedule covers it but there is no such backup or it is older; Unprotected
// when no schedule covers it (whatever one-off backups there are). The
// report counts all verdicts and names the first MaxProtectionNamespaces
// that are not Protected, AtRisk first, each by name. lapse is when the
// first Protected verdict turns AtRisk if nothing changes (zero if none).
func Evaluate(inv *fleetv1alpha1.NamespaceInventory, backups []Backup, covers []Cover, now time.Time) (report *fleetv1alpha1.ProtectionReport, lapse time.Time) {
	r := &fleetv1alpha1.ProtectionReport{
		InventoryTime:     inv.ObservedTime.DeepCopy(),
		Namespaces:        int32(len(inv.Namespaces)),
		NamespacesOmitted: inv.NamespacesOmitted,
	}
	var atRisk, unprotected []fleetv1alpha1.NamespaceProtection
	for _, ns := range inv.Namespaces {
		p := Namespace(string(ns), backups, covers, now)
		switch p.Verdict {
		case fleetv1alpha1.Protected:
			r.Protected++
			if at := p.LastSuccessfulTime.Add(p.RPO.Duration); lapse.IsZero() || at.Before(lapse) {
				lapse = at
			}
		case fleetv1alpha1.AtRisk:
			r.AtRisk++
			atRisk = append(atRisk, p)
		default:
			r.Unprotected++
			unprotected = append(unprotected, p)
		}
	}
	byName := func(l []fleetv1alpha1.NamespaceProtection) {
		sort.Slice(l, func(i, j int) bool { return l[i].Namespace < l[j].Namespace })
	}
	byName(atRisk)
	byName(unprotected)
	notProtected := append(atRisk, unprotected...)
	if len(notProtected) > fleetv1alpha1.MaxProtectionNamespaces {
		notProtected = notProtected[:fleetv1alpha1.MaxProtectionNamespaces]
	}
	r.NotProtected = notProtected
	return r, lapse
}

// Namespace is the verdict on one namespace.
func Namespace(ns string, backups []Backup, covers []Cover, now time.Time) fleetv1alpha1.NamespaceProtection {
	p := fleetv1alpha1.NamespaceProtection{Namespace: ns, Verdict: fleetv1alpha1.Unprotected}
	for _, b := range backups {
		if Takes(b.Selection, ns) {
			p.LastSuccessfulBackup, p.LastSuccessfulTime = b.Name, &metav1.Time{Time: b.Start}
			break
		}
	}
	var best *Cover
	for i := range covers {
		if Takes(covers[i].Selection, ns) && (best == nil || covers[i].RPO < best.RPO) {
			best = &covers[i]
		}
	}
	if best == nil {
		return p
	}
	p.Schedule, p.RPO = best.Name, &metav1.Duration{Duration: best.RPO}
	p.Verdict = fleetv1alpha1.AtRisk
	if p.LastSuccessfulTime != nil && now.Sub(p.LastSuccessfulTime.Time) <= best.RPO {
		p.Verdict = fleetv1alpha1.Protected
	}
	return p
}
