package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/proc"
)

// GardenProject is the Gardener project whose Shoots are the fleet's spokes.
const GardenProject = "fleet"

// ShootBackupLabel marks the fleet's Shoots as to be backed up.
const ShootBackupLabel = "lifeboat.dev/backup"

// Options configure a fleet.
type Options struct {
	// Spokes is the number of spoke clusters (default 2): the Shoots spoke-1,
	// spoke-2, ... of the garden project "fleet", so the clusters fleet--spoke-1,
	// fleet--spoke-2, ...
	Spokes int
	// Dir holds everything the fleet writes; default a new temporary directory,
	// removed by Stop unless KeepDir.
	Dir     string
	KeepDir bool
	// NoGarden skips the Gardener test environment.
	NoGarden bool
	// SpokeManagers runs lifeboat-spoke, built from this repository, on every
	// onboarded spoke.
	SpokeManagers bool
	// HubManager runs lifeboat-hub, built from this repository, on the hub.
	// Discovery then creates and accepts the spokes' ManagedClusters from
	// their Shoots. Without it, the fleet accepts every spoke's ManagedCluster
	// itself. Either way each spoke's registration agent joins by CSR.
	HubManager bool
	// Pods gives every spoke a real node (containerd, kubelet) running the
	// Azure Workload Identity webhook, and lifeboat-hub (HubManager) installs
	// lifeboat-spoke on each onboarded spoke as a pod through its agent work,
	// with the spoke chart's RBAC and a webhook-injected identity. Instead of
	// SpokeManagers.
	Pods bool
	// Discovery (with HubManager) creates the ClusterDiscovery that onboards
	// the fleet's Shoots and waits until every onboarded spoke is registered.
	Discovery bool
	// LateSpokes is how many of the last spokes get no Shoot at start; they
	// run, but are onboarded only by Fleet.Onboard.
	LateSpokes int
	// Log receives progress lines (default: discarded).
	Log func(format string, args ...any)
}

// Fleet is a running local fleet.
type Fleet struct {
	Dir    string
	Hub    *ControlPlane
	Garden *Garden
	Spokes []*Spoke
	Azure  *Azure
	// HubManager is the lifeboat-hub process, when Options.HubManager.
	HubManager *proc.Process
	// HubMetricsURL is where HubManager serves its metrics: HTTPS with a
	// self-signed certificate, for callers the hub's API server authorizes.
	HubMetricsURL string
	// OCMHub are OCM's hub controllers: registration, placement, add-on manager.
	OCMHub []*proc.Process
	// Images are the images the nodes run, with Options.Pods.
	Images   NodeImages
	opts     Options
	spokeBin string
}

// Spoke is one spoke cluster: its control plane and OCM's klusterlet agents,
// the registration agent that joined it to the hub and the work agent that
// applies the hub's ManifestWork on it.
type Spoke struct {
	// ControlPlane's Name is the spoke's cluster name in the fleet.
	*ControlPlane
	// Shoot is the name of the spoke's Shoot in the garden project.
	Shoot string
	// HubKubeconfig is the agents' credential for the hub, which the
	// registration agent writes from the certificate the hub signed for it.
	HubKubeconfig string
	// RegistrationAgent and WorkAgent are OCM's klusterlet agents, started
	// again whenever they exit, as their Deployments would be.
	RegistrationAgent *proc.Supervised
	WorkAgent         *proc.Supervised
	// TokenFile is the spoke manager's projected service-account token
	// (audience api://AzureADTokenExchange), refreshed like the kubelet does;
	// tests sign in with it (Azure.Federate with TokenFile.Subject).
	TokenFile *TokenFile
	// Manager is the lifeboat-spoke process, when Options.SpokeManagers.
	Manager *proc.Process
	// Node is the spoke's node, when Options.Pods: lifeboat-spoke runs there.
	Node *Node
}

// Start starts a fleet and waits until every part is ready.
func Start(ctx context.Context, opts Options) (f *Fleet, err error) {
	if opts.Spokes == 0 {
		opts.Spokes = 2
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	if opts.Dir == "" {
		if opts.Dir, err = os.MkdirTemp("", "lifeboat-fleet-"); err != nil {
			return nil, err
		}
	}
	f = &Fleet{Dir: opts.Dir, opts: opts, Spokes: make([]*Spoke, opts.Spokes)}
	// Every failed return below is "return nil, err", which sets f to nil
	// before this runs: stop what was started through its own name.
	started := f
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()

	start := time.Now()
	if opts.Pods {
		if !opts.HubManager || opts.SpokeManagers {
			return nil, fmt.Errorf("fleet: Pods needs HubManager and excludes SpokeManagers")
		}
		if f.Images, err = TestImages(ctx, filepath.Join(opts.Dir, "images")); err != nil {
			return nil, err
		}
		opts.Log("images built (%s)", time.Since(start).Round(time.Millisecond))
	}
	g, gctx := errgroup.WithContext(ctx)
	// Spokes join the hub as soon as OCM's hub controllers run.
	ocmHubReady := make(chan struct{})
	g.Go(func() error {
		hub, err := StartControlPlane(gctx, "hub", filepath.Join(opts.Dir, "hub"), true)
		f.Hub = hub
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		opts.Log("hub control plane ready at %s (%s)", hub.URL, time.Since(start).Round(time.Millisecond))
		if err := f.startOCMHub(gctx); err != nil {
			return fmt.Errorf("OCM hub: %w", err)
		}
		close(ocmHubReady)
		opts.Log("OCM registration, placement and add-on manager running on the hub (%s)", time.Since(start).Round(time.Millisecond))
		if !opts.HubManager {
			return nil
		}
		if err := f.startHubManager(gctx); err != nil {
			return fmt.Errorf("lifeboat-hub: %w", err)
		}
		opts.Log("lifeboat-hub running on the hub (%s)", time.Since(start).Round(time.Millisecond))
		return nil
	})
	if opts.SpokeManagers {
		g.Go(func() (err error) {
			f.spokeBin, err = buildManager(filepath.Join(opts.Dir, "bin"), "./spoke", "lifeboat-spoke")
			return err
		})
	}
	for i := range f.Spokes {
		shoot := fmt.Sprintf("spoke-%d", i+1)
		name := ClusterName(shoot)
		g.Go(func() error {
			cp, err := StartControlPlane(gctx, name, filepath.Join(opts.Dir, shoot), true)
			f.Spokes[i] = &Spoke{ControlPlane: cp, Shoot: shoot}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			opts.Log("%s control plane ready at %s (%s)", name, cp.URL, time.Since(start).Round(time.Millisecond))
			if opts.Pods {
				if err := f.startSpokeNode(gctx, f.Spokes[i]); err != nil {
					return fmt.Errorf("%s node: %w", name, err)
				}
				opts.Log("%s node %s Ready (%s)", name, f.Spokes[i].Node.IP, time.Since(start).Round(time.Millisecond))
			}
			if err := AllowIssuerDiscovery(gctx, cp); err != nil {
				return err
			}
			// With lifeboat-hub, the spoke applies its CRDs as it starts.
			if !opts.HubManager {
				if err := installLifeboatCRDs(gctx, cp, spokeCRDs); err != nil {
					return err
				}
			}
			select {
			case <-ocmHubReady:
			case <-gctx.Done():
				return gctx.Err()
			}
			if !opts.HubManager {
				if err := AcceptCluster(gctx, f.Hub, name); err != nil {
					return err
				}
			}
			if err := startRegistrationAgent(gctx, f.Hub, f.Spokes[i]); err != nil {
				return fmt.Errorf("%s registration agent: %w", name, err)
			}
			return nil
		})
	}
	if !opts.NoGarden {
		g.Go(func() error {
			garden, err := StartGarden(gctx, filepath.Join(opts.Dir, "garden"))
			f.Garden = garden
			if err != nil {
				return fmt.Errorf("garden: %w", err)
			}
			opts.Log("garden (gardener-apiserver) ready (%s)", time.Since(start).Round(time.Millisecond))
			return nil
		})
	}
	g.Go(func() error {
		azure, err := StartAzure(gctx, opts.Dir)
		f.Azure = azure
		if err != nil {
			return fmt.Errorf("azure: %w", err)
		}
		azure.podFacing = opts.Pods
		opts.Log("azure ready: %s (%s)", azure, time.Since(start).Round(time.Millisecond))
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	for _, s := range f.Spokes {
		if err := waitHubKubeconfig(ctx, s); err != nil {
			return nil, err
		}
		opts.Log("%s: joined the hub by CSR (%s)", s.Name, time.Since(start).Round(time.Millisecond))
		if s.WorkAgent, err = startWorkAgent(s.ControlPlane, s.Name, s.HubKubeconfig); err != nil {
			return nil, fmt.Errorf("%s work agent: %w", s.Name, err)
		}
		tokenPath := filepath.Join(s.Dir, "identity", "azure-identity-token")
		if s.TokenFile, err = StartTokenFile(ctx, s.ControlPlane, SpokeNamespace, SpokeServiceAccount, WorkloadIdentityAudience, tokenPath, time.Hour); err != nil {
			return nil, err
		}
		if err := f.Azure.Entra.TrustIssuerCA(s.Issuer(), s.CA.CertPEM()); err != nil {
			return nil, err
		}
		opts.Log("%s: work agent started", s.Name)
	}
	if opts.Pods {
		var pg errgroup.Group
		for _, s := range f.Spokes {
			pg.Go(func() error { return f.preparePods(ctx, s) })
		}
		if err := pg.Wait(); err != nil {
			return nil, err
		}
		opts.Log("workload identity webhook running on every spoke (%s)", time.Since(start).Round(time.Millisecond))
	}
	onboarded := f.Spokes[:len(f.Spokes)-min(opts.LateSpokes, len(f.Spokes))]
	if f.Garden != nil {
		if err := f.Garden.CreateProject(ctx, GardenProject); err != nil {
			return nil, err
		}
		for _, s := range onboarded {
			if _, err := f.Garden.CreateShoot(ctx, f.shootOf(s)); err != nil {
				return nil, err
			}
		}
		opts.Log("garden project %q holds a Shoot for %d of %d spokes", GardenProject, len(onboarded), len(f.Spokes))
	}
	if opts.HubManager && opts.Discovery {
		if _, err := f.CreateDiscovery(ctx); err != nil {
			return nil, err
		}
		if err := f.WaitRegistered(ctx, onboarded...); err != nil {
			return nil, err
		}
		opts.Log("discovery registered %d clusters (%s)", len(onboarded), time.Since(start).Round(time.Millisecond))
	}
	if opts.Pods && opts.Discovery {
		if err := f.WaitSpokePods(ctx, onboarded...); err != nil {
			return nil, err
		}
		opts.Log("lifeboat-spoke pods available on %d spokes (%s)", len(onboarded), time.Since(start).Round(time.Millisecond))
	}
	if opts.SpokeManagers && (!opts.HubManager || opts.Discovery) {
		if err := f.StartSpokeManagers(ctx, onboarded...); err != nil {
			return nil, err
		}
		opts.Log("lifeboat-spoke running on %d spokes (%s)", len(onboarded), time.Since(start).Round(time.Millisecond))
	}
	opts.Log("fleet ready in %s", time.Since(start).Round(time.Millisecond))
	return f, nil
}

// Spoke returns the spoke called name, or nil.
func (f *Fleet) Spoke(name string) *Spoke {
	for _, s := range f.Spokes {
		if s != nil && s.Name == name {
			return s
		}
	}
	return nil
}

// Processes lists every process the fleet started that is still tracked.
func (f *Fleet) Processes() []*proc.Process {
	var ps []*proc.Process
	for _, s := range f.Spokes {
		if s == nil {
			continue
		}
		if s.WorkAgent != nil {
			ps = append(ps, s.WorkAgent.Current())
		}
		if s.RegistrationAgent != nil {
			ps = append(ps, s.RegistrationAgent.Current())
		}
		if s.Manager != nil {
			ps = append(ps, s.Manager)
		}
		if s.Node != nil {
			ps = append(ps, s.Node.Processes()...)
		}
		if s.ControlPlane != nil {
			ps = append(ps, s.ControlPlane.Processes()...)
		}
	}
	if f.Garden != nil && f.Garden.process != nil {
		ps = append(ps, f.Garden.process)
	}
	if f.HubManager != nil {
		ps = append(ps, f.HubManager)
	}
	ps = append(ps, f.OCMHub...)
	if f.Hub != nil {
		ps = append(ps, f.Hub.Processes()...)
	}
	return ps
}

// Stop stops every part of the fleet, agents first, and removes its directory
// unless KeepDir was set.
func (f *Fleet) Stop() {
	if f == nil {
		return
	}
	var g errgroup.Group
	if f.HubManager != nil {
		_ = f.HubManager.Stop(5 * time.Second)
	}
	for _, s := range f.Spokes {
		if s != nil {
			s.TokenFile.Stop()
			if s.Manager != nil {
				_ = s.Manager.Stop(5 * time.Second)
			}
			for _, p := range []*proc.Supervised{s.WorkAgent, s.RegistrationAgent} {
				_ = p.Stop(5 * time.Second)
			}
		}
	}
	for _, p := range f.OCMHub {
		_ = p.Stop(5 * time.Second)
	}
	for _, s := range f.Spokes {
		if s != nil && s.Node != nil {
			g.Go(func() error { s.Node.Stop(); return nil })
		}
	}
	_ = g.Wait()
	if f.Azure != nil {
		g.Go(func() error { f.Azure.Stop(); return nil })
	}
	for _, s := range f.Spokes {
		if s != nil && s.ControlPlane != nil {
			g.Go(func() error { s.ControlPlane.Stop(); return nil })
		}
	}
	if f.Garden != nil {
		g.Go(func() error { f.Garden.Stop(); return nil })
	}
	if f.Hub != nil {
		g.Go(func() error { f.Hub.Stop(); return nil })
	}
	_ = g.Wait()
	if !f.opts.KeepDir {
		_ = os.RemoveAll(f.Dir)
	}
}
