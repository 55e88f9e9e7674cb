package backupsync

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// Defaults of Inventory.
const (
	DefaultInventoryInterval = 30 * time.Second
	DefaultInventoryRefresh  = 10 * time.Minute
)

// Inventory reports the cluster's namespaces to the hub through the catalog
// channel: the BackupCatalog page "inventory" in the cluster's namespace on
// the hub, written with the same hub credential as the sync pages. It lists
// the namespaces every Interval and writes the page when they changed, or
// every Refresh so the hub sees the inventory is current. Only the leader
// writes.
type Inventory struct {
	// Client lists the cluster's namespaces.
	Client client.Reader
	// Hub is a client for the hub.
	Hub func(context.Context) (client.Client, error)
	// Cluster is this cluster's name: the hub namespace the page goes to.
	Cluster string
	// Interval between listings (default DefaultInventoryInterval).
	Interval time.Duration
	// Refresh is how old a written inventory may grow before it is written
	// again unchanged (default DefaultInventoryRefresh).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	written []fleetv1alpha1.InventoryNamespaceName
	omitted int32
	at      time.Time
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Start reports until ctx ends; a failed report is logged and tried again
// at the next interval.
func (inv *Inventory) Start(ctx context.Context) error {
	interval := inv.Interval
	if interval <= 0 {
		interval = DefaultInventoryInterval
	}
	log := ctrl.LoggerFrom(ctx).WithName("inventory")
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := inv.Report(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Could not report the namespace inventory to the hub", "cluster", inv.Cluster)
		}
	}, interval)
	return nil
}

// Report lists the namespaces and writes the inventory page when it changed
// or is due for a refresh.
func (inv *Inventory) Report(ctx context.Context) error {
	now := time.Now
	if inv.Now != nil {
		now = inv.Now
	}
	refresh := inv.Refresh
	if refresh <= 0 {
		refresh = DefaultInventoryRefresh
	}
	names, omitted, err := inv.namespaces(ctx)
	if err != nil {
		return err
	}
	t := now()
	if slices.Equal(names, inv.written) && omitted == inv.omitted && t.Sub(inv.at) < refresh {
		return nil
	}
	hub, err := inv.Hub(ctx)
	if err != nil {
		return err
	}
	page := &fleetv1alpha1.BackupCatalog{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: inv.Cluster,
			Name:      fleetv1alpha1.InventoryPageName,
			Labels:    map[string]string{fleetv1alpha1.LabelInventory: "true"},
		},
		Spec: fleetv1alpha1.BackupCatalogSpec{
			Cluster: backupv1alpha1.ClusterName(inv.Cluster),
			Inventory: &fleetv1alpha1.NamespaceInventory{
				Namespaces:        names,
				NamespacesOmitted: omitted,
				ObservedTime:      metav1.NewTime(t),
			},
		},
	}
	if err := put(ctx, hub, page); err != nil {
		return fmt.Errorf("write the namespace inventory %s/%s to the hub: %w", page.Namespace, page.Name, err)
	}
	inv.written, inv.omitted, inv.at = names, omitted, t
	return nil
}

// namespaces are the names of the cluster's namespaces that are not being
// deleted, sorted, the first MaxInventoryNamespaces, and how many more there are.
func (inv *Inventory) namespaces(ctx context.Context) ([]fleetv1alpha1.InventoryNamespaceName, int32, error) {
	list := &corev1.NamespaceList{}
	if err := inv.Client.List(ctx, list); err != nil {
		return nil, 0, fmt.Errorf("list namespaces: %w", err)
	}
	names := make([]fleetv1alpha1.InventoryNamespaceName, 0, len(list.Items))
	for _, ns := range list.Items {
		if ns.DeletionTimestamp.IsZero() {
			names = append(names, fleetv1alpha1.InventoryNamespaceName(ns.Name))
		}
	}
	slices.Sort(names)
	if len(names) > fleetv1alpha1.MaxInventoryNamespaces {
		return names[:fleetv1alpha1.MaxInventoryNamespaces], int32(len(names) - fleetv1alpha1.MaxInventoryNamespaces), nil
	}
	return names, 0, nil
}
