// Package locations answers, for the hub reconcilers that send work to a
// cluster, whether a BackupLocation can be used from that cluster, and if not,
// why not.
package locations

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
)

// State is what a location's connection from one cluster allows.
type State int

const (
	// Valid: the location is Valid on the cluster; work may be sent.
	Valid State = iota
	// Validating: the location's status is not current, or its connection
	// from the cluster is still being validated; look again later.
	Validating
	// Unusable: the location does not exist, does not select the cluster, or
	// is not Valid on it. Reason and Message say which.
	Unusable
)

// Verdict is the answer of Check.
type Verdict struct {
	State State
	// Reason is a fleet condition reason: ReasonWaitingForLocation while
	// Validating; ReasonLocationNotFound, ReasonClusterNotAllowed or
	// ReasonLocationNotValid when Unusable; empty when Valid.
	Reason string
	// Message explains Reason for a user, naming the location and cluster
	// and, when the cluster reported them, its reason and message.
	Message string
}

// Check reads BackupLocation namespace/name from live (the API server) and
// tells whether it is Valid on cluster. The cluster's connection is read
// from cached, the manager's cache, which holds every BackupTarget
// ManifestWork: a Valid or Validating verdict from it stands (a location is
// checked for every Backup and Restore, and the cache has what the
// location's own status was made from), but an Unusable one, which fails
// the caller's object for good, is read again from live, so that a cache
// that has not yet seen the work, or its latest feedback, never fails it.
// Only errors reading the location or its work are returned as errors.
func Check(ctx context.Context, live, cached client.Reader, namespace, name, cluster string) (Verdict, error) {
	loc := &fleetv1alpha1.BackupLocation{}
	err := live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, loc)
	if apierrors.IsNotFound(err) {
		return Verdict{Unusable, fleetv1alpha1.ReasonLocationNotFound,
			fmt.Sprintf("BackupLocation %q does not exist in namespace %s", name, namespace)}, nil
	}
	if err != nil {
		return Verdict{}, err
	}
	v, err := Of(ctx, cached, loc, cluster)
	if err != nil || v.State != Unusable {
		return v, err
	}
	return Of(ctx, live, loc, cluster)
}

// Of is Check for a location already read: it reads the cluster's
// connection (Connection) through c.
func Of(ctx context.Context, c client.Reader, loc *fleetv1alpha1.BackupLocation, cluster string) (Verdict, error) {
	conn, err := Connection(ctx, c, loc, cluster)
	if err != nil {
		return Verdict{}, err
	}
	return verdict(loc, cluster, conn), nil
}

// verdict is what conn, loc's connection from cluster (nil: none), allows.
func verdict(loc *fleetv1alpha1.BackupLocation, cluster string, conn *fleetv1alpha1.ClusterConnection) Verdict {
	current := loc.Status.ObservedGeneration == loc.Generation && loc.Status.Phase != ""
	switch {
	case !current || (conn != nil && (conn.Phase == "" || conn.Phase == backupv1alpha1.TargetPending || conn.Phase == backupv1alpha1.TargetInProgress)):
		msg := fmt.Sprintf("BackupLocation %q is still being validated on cluster %s", loc.Name, cluster)
		if conn != nil && conn.Message != "" {
			msg += ": " + conn.Message
		}
		return Verdict{Validating, fleetv1alpha1.ReasonWaitingForLocation, msg}
	case conn == nil:
		return Verdict{Unusable, fleetv1alpha1.ReasonClusterNotAllowed,
			fmt.Sprintf("BackupLocation %q does not select cluster %s (see its clusters and clusterSelector)", loc.Name, cluster)}
	case conn.Reason == fleetv1alpha1.ReasonClusterNotAllowed:
		return Verdict{Unusable, fleetv1alpha1.ReasonClusterNotAllowed,
			fmt.Sprintf("BackupLocation %q may not be used on cluster %s: %s", loc.Name, cluster, conn.Message)}
	case conn.Phase != backupv1alpha1.TargetValid:
		return Verdict{Unusable, fleetv1alpha1.ReasonLocationNotValid,
			fmt.Sprintf("BackupLocation %q is %s on cluster %s: %s: %s", loc.Name, conn.Phase, cluster, conn.Reason, conn.Message)}
	}
	return Verdict{State: Valid}
}

// Usable are the clusters from which loc is Valid (Verdict Valid), by name,
// and whether any is still being validated.
func Usable(ctx context.Context, c client.Reader, loc *fleetv1alpha1.BackupLocation) (valid []string, validating bool, err error) {
	conns, err := Connections(ctx, c, loc)
	if err != nil {
		return nil, false, err
	}
	for i := range conns {
		switch verdict(loc, conns[i].Cluster, &conns[i]).State {
		case Valid:
			valid = append(valid, conns[i].Cluster)
		case Validating:
			validating = true
		}
	}
	return valid, validating, nil
}
