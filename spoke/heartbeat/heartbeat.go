// Package heartbeat renews the spoke's heartbeat Lease, which the hub reads
// back through its agent ManifestWork to tell whether the cluster is online.
package heartbeat

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Where the heartbeat is and what it says. The hub's agent ManifestWork
// reads these (read-only) and feeds them back.
const (
	// Namespace holds the Lease: the spoke's own namespace.
	Namespace = "lifeboat-system"
	// LeaseName is the heartbeat Lease's name.
	LeaseName = "lifeboat-spoke-heartbeat"
	// VersionAnnotation on the Lease is the version of the spoke manager that renewed it.
	VersionAnnotation = "lifeboat.dev/version"
	// HubAccessAnnotation on the Lease says whether the spoke's hub
	// credential works: "ok", or why not. Absent when the spoke does not check.
	HubAccessAnnotation = "lifeboat.dev/hub-access"
	// DefaultInterval is how often the Lease is renewed unless told otherwise.
	DefaultInterval = 30 * time.Second
)

// fieldOwner is the server-side apply field manager of the heartbeat.
const fieldOwner = client.FieldOwner("lifeboat-spoke-heartbeat")

// version is the spoke's version, set at build time with
// -ldflags "-X github.com/lifeboat-dev/lifeboat/spoke/heartbeat.version=v0.2.0".
var version string

// Version is the spoke's version: the one set at build time, else the main
// module's version from the build information (set by go install of a
// tagged module), else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Heartbeat renews the Lease every Interval, for as long as the manager runs.
// Every replica beats (it needs no leader election): the Lease says that a
// spoke manager is alive on the cluster.
type Heartbeat struct {
	// Client writes the Lease (server-side apply; it reads nothing).
	Client client.Client
	// Interval between renewals (default DefaultInterval). The Lease lasts
	// three intervals, so one missed renewal does not make the cluster Offline.
	Interval time.Duration
	// Identity is the Lease's holder (default: the host name, which is the pod's name).
	Identity string
	// Version is written to VersionAnnotation (default Version()).
	Version string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HubAccess, when set, is checked at every beat and its outcome written to
	// HubAccessAnnotation, so the hub sees whether the spoke can reach it.
	HubAccess func(context.Context) error
}

// maxHubAccessMessage bounds the annotation: it travels in the agent
// ManifestWork's status feedback.
const maxHubAccessMessage = 512

// NeedLeaderElection is false: standby replicas beat too.
func (h *Heartbeat) NeedLeaderElection() bool { return false }

// Start renews the Lease at once and then every Interval until ctx ends. A
// failed renewal is logged and tried again at the next tick.
func (h *Heartbeat) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("heartbeat")
	failing := false
	wait.Until(func() {
		err := h.Beat(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error(err, "Could not renew the heartbeat Lease", "namespace", Namespace, "name", LeaseName)
			failing = true
		case err == nil && failing:
			log.Info("Renewed the heartbeat Lease again", "namespace", Namespace, "name", LeaseName)
			failing = false
		}
	}, h.interval(), ctx.Done())
	return nil
}

// Beat renews the Lease once, creating it if it is missing.
func (h *Heartbeat) Beat(ctx context.Context) error {
	identity := h.Identity
	if identity == "" {
		identity, _ = os.Hostname()
	}
	v := h.Version
	if v == "" {
		v = Version()
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	annotations := map[string]string{VersionAnnotation: v}
	if h.HubAccess != nil {
		annotations[HubAccessAnnotation] = "ok"
		if err := h.HubAccess(ctx); err != nil {
			msg := err.Error()
			if len(msg) > maxHubAccessMessage {
				msg = msg[:maxHubAccessMessage-3] + "..."
			}
			annotations[HubAccessAnnotation] = msg
		}
	}
	lease := coordinationv1ac.Lease(LeaseName, Namespace).
		WithAnnotations(annotations).
		WithLabels(map[string]string{"app.kubernetes.io/name": "lifeboat-spoke"}).
		WithSpec(coordinationv1ac.LeaseSpec().
			WithHolderIdentity(identity).
			WithLeaseDurationSeconds(LeaseDuration(h.interval())).
			WithRenewTime(metav1.NewMicroTime(now())))
	if err := h.Client.Apply(ctx, lease, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("renew Lease %s/%s: %w", Namespace, LeaseName, err)
	}
	return nil
}

// LeaseDuration is the leaseDurationSeconds of a Lease renewed every
// interval: three intervals, at least one second.
func LeaseDuration(interval time.Duration) int32 {
	return int32(max(1, math.Ceil((3 * interval).Seconds())))
}

func (h *Heartbeat) interval() time.Duration {
	if h.Interval > 0 {
		return h.Interval
	}
	return DefaultInterval
}
