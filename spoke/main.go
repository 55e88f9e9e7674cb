// Command lifeboat-spoke is the manager on every cluster: it validates backup
// targets with Azure Workload Identity and runs backups, restores, syncs and
// deletions locally against Azure Blob Storage.
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"time"

	"github.com/kopia/kopia/repo/maintenance"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"open-cluster-management.io/addon-framework/pkg/lease"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/crds"
	"github.com/lifeboat-dev/lifeboat/spoke/hubcredential"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/applicationbackup"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/applicationrestore"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backupdeletion"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backupsync"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backuptarget"
	"github.com/lifeboat-dev/lifeboat/spoke/restore"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
	"github.com/lifeboat-dev/lifeboat/spoke/volumes"
)

var scheme = runtime.NewScheme()

// hubScheme is what the spoke reads and writes on the hub: access reviews and BackupCatalogs.
var hubScheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(backupv1alpha1.AddToScheme(scheme))
	utilruntime.Must(clientgoscheme.AddToScheme(hubScheme))
	utilruntime.Must(fleetv1alpha1.AddToScheme(hubScheme))
}

// settings are the spoke's own flags, beside the Azure ones in targets.Factory.
type settings struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	leaderNamespace        string
	caBundle, clusterName  string
	hubCredentialSecret    string
	hubServer              string
	restoreServiceAccount  string

	// Limits: run slots, and what one restore may take.
	maxBackups, maxSelfServiceBackups   int
	maxRestores, maxSelfServiceRestores int
	restoreMaxItems                     int64
	restoreSpoolSize                    string
	moverImage, moverPullPolicy         string
	maintenanceInterval                 time.Duration
}

// The add-on Lease, the hub credential Secret and the targets' encryption key
// Secrets are in the spoke's own namespace.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch,namespace=lifeboat-system
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get,namespace=lifeboat-system

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mover" {
		if err := moverMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "mover:", err)
			os.Exit(1)
		}
		return
	}
	var (
		s       settings
		factory targets.Factory
	)
	flag.StringVar(&s.metricsAddr, "metrics-bind-address", ":8443", "address the metrics endpoint binds to, HTTPS with a self-signed certificate; callers need a token whose user may get /metrics (0 disables it)")
	flag.StringVar(&s.probeAddr, "health-probe-bind-address", ":8081", "address the health probes bind to")
	flag.BoolVar(&s.leaderElect, "leader-elect", true, "elect a leader so that one replica works at a time")
	flag.StringVar(&s.leaderNamespace, "leader-election-namespace", "lifeboat-system", "namespace of the leader election lease")
	flag.StringVar(&factory.AuthorityHost, "azure-authority-host", os.Getenv(blob.EnvAuthorityHost), "Entra ID authority (default: the target's cloud)")
	flag.Var(&factory.AllowedEndpoints, "allowed-blob-endpoint", "private blob endpoint (exact https URL, e.g. https://10.0.0.5:10000/myaccount) that BackupTargets may name besides their storage account's own URL; repeat the flag or separate URLs with commas")
	flag.StringVar(&s.clusterName, "cluster-name", os.Getenv("LIFEBOAT_CLUSTER_NAME"), "this cluster's name in the fleet: backups are stored under it")
	flag.StringVar(&s.caBundle, "ca-bundle", "", "PEM file of CAs to trust for Entra ID and Blob Storage instead of the system roots (private clouds, tests)")
	flag.StringVar(&s.hubCredentialSecret, "hub-credential-secret", hubcredential.DefaultSecretName,
		"Secret in "+hubcredential.Namespace+" holding the hub's kubeconfig (key "+hubcredential.Key+" and the client certificate's files), written and renewed by OCM's registration agent for the lifeboat add-on")
	flag.StringVar(&s.hubServer, "hub-server", "",
		"the hub API server's URL as this spoke reaches it, when that differs from the one in the hub kubeconfig (the address OCM's klusterlet uses)")
	flag.StringVar(&s.restoreServiceAccount, "restore-service-account", "lifeboat-spoke-restore",
		"ServiceAccount in "+targets.SystemNamespace+" that restores write as (the spoke's own only reads)")
	flag.IntVar(&s.maxBackups, "max-backups", applicationbackup.DefaultMaxRunning,
		"how many backups the hub sent (in "+targets.SystemNamespace+") run at once; the others wait as Pending")
	flag.IntVar(&s.maxSelfServiceBackups, "max-self-service-backups", applicationbackup.DefaultMaxSelfServiceRunning,
		"how many teams' own backups (in their namespaces) run at once, in slots of their own: they never make the hub's backups wait")
	flag.IntVar(&s.maxRestores, "max-restores", applicationrestore.DefaultMaxRunning,
		"how many restores the hub sent (in "+targets.SystemNamespace+") run at once; the others wait as Pending")
	flag.IntVar(&s.maxSelfServiceRestores, "max-self-service-restores", applicationrestore.DefaultMaxSelfServiceRunning,
		"how many teams' own restores (in their namespaces) run at once, in slots of their own")
	flag.Int64Var(&s.restoreMaxItems, "restore-max-items", restore.DefaultMaxItems,
		"the most objects a backup may hold for one restore to take it (a restore keeps a few bytes per object in memory); a larger one fails with TooManyItems")
	flag.StringVar(&s.moverImage, "mover-image", os.Getenv("LIFEBOAT_MOVER_IMAGE"),
		"the image of the data mover pods that back up and restore volume data: the spoke's own image (they run `lifeboat-spoke mover`); empty: volume data is not backed up")
	flag.StringVar(&s.moverPullPolicy, "mover-image-pull-policy", string(corev1.PullIfNotPresent), "imagePullPolicy of the mover pods")
	flag.DurationVar(&s.maintenanceInterval, "repository-maintenance-interval", time.Hour,
		"how often the cluster's volume data repositories are checked for maintenance; kopia runs the cycle that is due (quick hourly, full daily: deleted snapshots' data is freed by the full cycle); 0 disables maintenance")
	flag.StringVar(&s.restoreSpoolSize, "restore-spool-size", "",
		"how much restores may spool together in the temporary directory (a quantity such as 2Gi: the size limit of its volume); empty: only the file system's free space bounds it")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	if limit := setSoftMemoryLimit(); limit > 0 {
		log.Info("Set the garbage collector's soft memory limit to 90% of the container's", "bytes", limit)
	}

	if err := run(s, &factory); err != nil {
		log.Error(err, "The spoke manager stopped with an error")
		os.Exit(1)
	}
}

func run(s settings, factory *targets.Factory) error {
	if s.clusterName == "" {
		return fmt.Errorf("--cluster-name (or LIFEBOAT_CLUSTER_NAME) is required: backups are stored under the cluster's name")
	}
	for flag, n := range map[string]int64{"max-backups": int64(s.maxBackups), "max-self-service-backups": int64(s.maxSelfServiceBackups),
		"max-restores": int64(s.maxRestores), "max-self-service-restores": int64(s.maxSelfServiceRestores), "restore-max-items": s.restoreMaxItems} {
		if n <= 0 {
			return fmt.Errorf("--%s must be positive", flag)
		}
	}
	if s.maintenanceInterval < 0 {
		return fmt.Errorf("--repository-maintenance-interval must not be negative (0 disables maintenance)")
	}
	var spoolSize int64
	if s.restoreSpoolSize != "" {
		q, err := resource.ParseQuantity(s.restoreSpoolSize)
		if err != nil || q.Sign() <= 0 {
			return fmt.Errorf("--restore-spool-size %q: want a positive quantity such as 2Gi", s.restoreSpoolSize)
		}
		spoolSize = q.Value()
	}
	if s.caBundle != "" {
		pem, err := os.ReadFile(s.caBundle)
		if err != nil {
			return err
		}
		factory.RootCAs = x509.NewCertPool()
		if !factory.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-bundle %s holds no PEM certificate", s.caBundle)
		}
	}
	cfg := ctrl.GetConfigOrDie()
	// The spoke's kinds must be served before its caches start.
	installed, err := crds.Install(context.Background(), cfg, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("installing the spoke's CustomResourceDefinitions: %w", err)
	}
	ctrl.Log.WithName("setup").Info("Applied the spoke's CustomResourceDefinitions", "count", len(installed))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions(s.metricsAddr),
		HealthProbeBindAddress:  s.probeAddr,
		LeaderElection:          s.leaderElect,
		LeaderElectionID:        "lifeboat-spoke.backup.lifeboat.dev",
		LeaderElectionNamespace: s.leaderNamespace,
		// The process ends when the manager stops, so a stopping leader may hand
		// over at once instead of making its successor wait out the lease.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return err
	}
	tokens, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	factory.Tokens = tokens
	factory.Secrets = mgr.GetAPIReader()
	// A run that fails on storage has its target validated again at once.
	revalidation := targets.NewRevalidation()
	if err := (&backuptarget.Reconciler{
		Client:       mgr.GetClient(),
		Targets:      factory,
		Recorder:     mgr.GetEventRecorder("lifeboat-spoke"),
		Revalidation: revalidation,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	registry := &runs.Registry{}
	var movers *volumes.Movers
	var volumeData applicationbackup.VolumeMover
	if s.moverImage != "" {
		movers = &volumes.Movers{Kube: tokens, Settings: volumes.PodSettings{Image: s.moverImage, PullPolicy: corev1.PullPolicy(s.moverPullPolicy)}}
		volumeData = &applicationbackup.KopiaVolumes{Movers: movers, Targets: factory, Cluster: s.clusterName}
	}
	if err := (&applicationbackup.Reconciler{
		Client:                mgr.GetClient(),
		Targets:               factory,
		Runs:                  registry,
		Revalidation:          revalidation,
		Cluster:               s.clusterName,
		Recorder:              mgr.GetEventRecorder("lifeboat-spoke"),
		MaxRunning:            s.maxBackups,
		VolumeData:            volumeData,
		MaxSelfServiceRunning: s.maxSelfServiceBackups,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&applicationrestore.Reconciler{
		Client:                mgr.GetClient(),
		Cluster:               s.clusterName,
		Movers:                movers,
		Identity:              &restore.Identity{Tokens: tokens, Namespace: targets.SystemNamespace, Name: s.restoreServiceAccount},
		Targets:               factory,
		Revalidation:          revalidation,
		Recorder:              mgr.GetEventRecorder("lifeboat-spoke"),
		MaxRunning:            s.maxRestores,
		MaxSelfServiceRunning: s.maxSelfServiceRestores,
		MaxItems:              s.restoreMaxItems,
		SpoolSize:             spoolSize,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupdeletion.Reconciler{
		Client:       mgr.GetClient(),
		Cluster:      s.clusterName,
		Targets:      factory,
		Runs:         registry,
		Revalidation: revalidation,
		Recorder:     mgr.GetEventRecorder("lifeboat-spoke"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if s.maintenanceInterval > 0 {
		if err := mgr.Add(&volumes.Maintainer{Client: mgr.GetClient(), Targets: factory, Cluster: s.clusterName,
			Interval: s.maintenanceInterval, Safety: maintenance.SafetyFull}); err != nil {
			return err
		}
	}
	hub := &hubcredential.Source{Reader: mgr.GetAPIReader(), Name: s.hubCredentialSecret, ClusterNamespace: s.clusterName, Server: s.hubServer, Scheme: hubScheme}
	syncs := &backupsync.Reconciler{
		Client:       mgr.GetClient(),
		Targets:      factory,
		Hub:          hub.Client,
		Cluster:      s.clusterName,
		Revalidation: revalidation,
		Recorder:     mgr.GetEventRecorder("lifeboat-spoke"),
	}
	if err := syncs.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupsync.RunLogs{Reconciler: syncs}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.Add(&backupsync.Inventory{Client: mgr.GetClient(), Hub: hub.Client, Cluster: s.clusterName}); err != nil {
		return err
	}
	if err := addAddOnLease(mgr, hub); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting the spoke manager", "cluster", s.clusterName, "version", Version(),
		"hubCredentialSecret", hubcredential.Namespace+"/"+s.hubCredentialSecret)
	return mgr.Start(ctrl.SetupSignalHandler())
}

// addAddOnLease renews, on the leader, the lifeboat add-on's Lease with the
// add-on framework's lease updater, while the spoke's hub credential is
// accepted and may write BackupCatalogs in its cluster namespace: OCM's
// registration agent makes the ManagedClusterAddOn Available from it, and
// the hub the cluster Online.
func addAddOnLease(mgr ctrl.Manager, hub *hubcredential.Source) error {
	kube, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	log := ctrl.Log.WithName("addon-lease")
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		hubAccess := func() bool {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := hub.CatalogAccess(cctx); err != nil {
				log.Info("Not renewing the add-on Lease: the hub credential does not work", "error", err.Error())
				return false
			}
			return true
		}
		// The updater renews once a minute; the first renewal waits for the
		// credential OCM is still issuing, so that the add-on turns Available
		// as soon as the credential works rather than a minute later.
		_ = wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			return hub.CatalogAccess(cctx) == nil, nil
		})
		lease.NewLeaseUpdater(kube, fleetv1alpha1.AddOnName, fleetv1alpha1.AddOnNamespace, hubAccess).Start(ctx)
		return nil
	}))
}

// version is the spoke's version, set at build time with
// -ldflags "-X main.version=v0.2.0".
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

// The metrics endpoint asks the API server who a caller is and whether they may get /metrics.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// metricsOptions serve the metrics over HTTPS to callers the API server
// authenticates (TokenReview) and authorizes for GET /metrics
// (SubjectAccessReview, nonResourceURLs).
func metricsOptions(addr string) metricsserver.Options {
	return metricsserver.Options{BindAddress: addr, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization}
}
