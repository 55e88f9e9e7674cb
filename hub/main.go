// Command lifeboat-hub is the manager on the backup cluster: it discovers the
// fleet's clusters, runs the lifeboat OCM add-on that installs the spoke on
// them, and turns fleet admins' resources into OCM ManifestWork, one per
// object and cluster.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	addonv1alpha1 "open-cluster-management.io/api/addon/v1alpha1"
	clusterv1 "open-cluster-management.io/api/cluster/v1"
	clusterv1beta1 "open-cluster-management.io/api/cluster/v1beta1"
	clusterv1beta2 "open-cluster-management.io/api/cluster/v1beta2"
	workv1 "open-cluster-management.io/api/work/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/hub/addon"
	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
	"github.com/lifeboat-dev/lifeboat/hub/metrics"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backup"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupcluster"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backuplocation"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupschedule"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/backupsync"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/clusterdiscovery"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/execrule"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/protection"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/restore"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/runlog"
	"github.com/lifeboat-dev/lifeboat/hub/reconcilers/tombstone"
	"github.com/lifeboat-dev/lifeboat/hub/tenancy"
	"github.com/lifeboat-dev/lifeboat/images"
	"sigs.k8s.io/yaml"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(clusterv1.Install(scheme))
	utilruntime.Must(clusterv1beta1.Install(scheme))
	utilruntime.Must(clusterv1beta2.Install(scheme))
	utilruntime.Must(workv1.Install(scheme))
	utilruntime.Must(addonv1alpha1.Install(scheme))
	utilruntime.Must(fleetv1alpha1.AddToScheme(scheme))
}

// settings are the hub's flags.
type settings struct {
	metricsAddr, probeAddr, leaderNamespace string
	pprofAddr                               string
	leaderElect                             bool
	spokeValuesFile                         string
	systemNamespace                         string
	fleetAdminNamespaces                    string
	qps                                     float64
	burst                                   int
	addon                                   addon.Options
	clusters                                backupcluster.Options
}

func main() {
	var s settings
	flag.StringVar(&s.metricsAddr, "metrics-bind-address", ":8443", "address the metrics endpoint binds to, HTTPS with a self-signed certificate; callers need a token whose user may get /metrics (0 disables it)")
	flag.StringVar(&s.probeAddr, "health-probe-bind-address", ":8081", "address the health probes bind to")
	flag.StringVar(&s.pprofAddr, "pprof-bind-address", "", "address Go's /debug/pprof endpoints bind to, plain HTTP without authentication, for profiling (empty, the default, disables them)")
	flag.BoolVar(&s.leaderElect, "leader-elect", true, "elect a leader so that one replica works at a time")
	flag.StringVar(&s.leaderNamespace, "leader-election-namespace", "lifeboat-system", "namespace of the leader election lease")
	flag.StringVar(&s.addon.SpokeImage, "spoke-image", images.Ref(images.Spoke.Name), "image of the spoke manager that the lifeboat add-on installs on every cluster")
	flag.StringVar(&s.spokeValuesFile, "spoke-values", "", "YAML file of lifeboat-spoke chart values for the spoke on every cluster (resources, nodeSelector, tolerations, extraArgs, extraVolumes, ...); "+
		"an AddOnDeploymentConfig overrides node placement, resources and image registries per cluster, and the hub sets clusterName, the hub credential, the namespace and the image itself")
	flag.IntVar(&s.clusters.CatalogPages, "catalog-pages-per-cluster", backupcluster.DefaultCatalogPages,
		"how many BackupCatalog pages a cluster's namespace may hold at once (a ResourceQuota there refuses more)")
	flag.Float64Var(&s.clusters.LocationWrites, "backupcluster-location-writes", backupcluster.DefaultLocationWrites,
		"how many BackupCluster status writes a second may only update a cluster's list of locations, after a burst of 100 (a location's fan-out to thousands of clusters yields to the fan-out itself; health changes are written at once)")
	flag.StringVar(&s.systemNamespace, "system-namespace", backupsync.DefaultSystemNamespace, "namespace of the hub's own objects, such as the Leases that let one sync per storage container run at a time")
	flag.StringVar(&s.fleetAdminNamespaces, "fleet-admin-namespaces", "lifeboat-system",
		"comma-separated hub namespaces of the fleet admins (names, or prefixes ending in '*'): their objects may use every cluster, every spoke namespace, "+
			"cluster-scoped resources and Update; any other namespace only what its ManagedClusterSetBindings and BackupTenant grant")
	// A fleet of thousands of clusters, or a sync importing thousands of
	// backups, needs far more than client-go's default 5 QPS.
	flag.Float64Var(&s.qps, "kube-api-qps", 500, "requests per second to the hub's API server")
	flag.IntVar(&s.burst, "kube-api-burst", 1000, "burst of requests to the hub's API server")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	if err := run(s); err != nil {
		ctrl.Log.WithName("setup").Error(err, "The hub manager stopped with an error")
		os.Exit(1)
	}
}

func run(s settings) error {
	cfg := ctrl.GetConfigOrDie()
	if s.spokeValuesFile != "" {
		raw, err := os.ReadFile(s.spokeValuesFile)
		if err != nil {
			return fmt.Errorf("--spoke-values: %w", err)
		}
		if err := yaml.Unmarshal(raw, &s.addon.SpokeValues); err != nil {
			return fmt.Errorf("--spoke-values %s: %w", s.spokeValuesFile, err)
		}
	}
	admins, err := fleetAdminPatterns(s.fleetAdminNamespaces)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(s.qps), s.burst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions(s.metricsAddr),
		HealthProbeBindAddress:  s.probeAddr,
		PprofBindAddress:        s.pprofAddr,
		LeaderElection:          s.leaderElect,
		LeaderElectionID:        "lifeboat-hub.fleet.lifeboat.dev",
		LeaderElectionNamespace: s.leaderNamespace,
		// The process ends when the manager stops, so a stopping leader may hand
		// over at once instead of making its successor wait out the lease.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cache.Options{ByObject: cachedObjects()},
	})
	if err != nil {
		return err
	}
	policy := &tenancy.Policy{Reader: mgr.GetClient(), FleetAdmin: tenancy.FleetAdminNamespaces(admins)}
	if err := (&clusterdiscovery.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("lifeboat-hub"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backup.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: policy}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&tombstone.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), SystemNamespace: s.systemNamespace,
		Recorder: mgr.GetEventRecorder("lifeboat-hub")}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&restore.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: policy}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backuplocation.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: policy}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupsync.Reconciler{
		Client:          mgr.GetClient(),
		Recorder:        mgr.GetEventRecorder("lifeboat-hub"),
		APIReader:       mgr.GetAPIReader(),
		SystemNamespace: s.systemNamespace,
		Tenancy:         policy,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupsync.Interval{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupsync.Pages{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&runlog.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Tenancy: policy}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupcluster.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Options:   s.clusters,
		Recorder:  mgr.GetEventRecorder("lifeboat-hub"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := addSpokeAddOn(mgr, cfg, s); err != nil {
		return err
	}
	if err := (&backupschedule.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("lifeboat-hub"), Tenancy: policy}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupschedule.PolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&protection.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&execrule.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	metrics.Register(mgr.GetClient())
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting the hub manager")
	return mgr.Start(ctrl.SetupSignalHandler())
}

// cachedObjects limits what the hub manager caches of some kinds. Of
// ResourceQuotas, those that bound the spokes' BackupCatalogs
// (backupcluster.LabelCluster): the hub reads no others through its cache,
// and a busy hub has many. Of ManifestWorks, the hub's own, which dispatch
// labels with their owner's kind (dispatch.LabelKind): not the add-on's
// work on every cluster (about 100 KiB each), which the add-on framework
// caches for itself. And of BackupCatalogs, the pages of syncs.
func cachedObjects() map[client.Object]cache.ByObject {
	exists := func(key string) labels.Selector {
		req, err := labels.NewRequirement(key, selection.Exists, nil)
		if err != nil {
			panic(err)
		}
		return labels.NewSelector().Add(*req)
	}
	return map[client.Object]cache.ByObject{
		&corev1.ResourceQuota{}: {Label: exists(backupcluster.LabelCluster)},
		&workv1.ManifestWork{}:  {Label: exists(dispatch.LabelKind)},
		// Only pages that name their sync; backupsync.Pages deletes those
		// of syncs that do not run.
		&fleetv1alpha1.BackupCatalog{}: backupsync.PageCache(),
	}
}

// addSpokeAddOn runs, on the leader, the lifeboat add-on: it first creates the
// default ClusterManagementAddOn and Placement in the system namespace unless
// they exist, then runs the add-on framework's manager.
func addSpokeAddOn(mgr ctrl.Manager, cfg *rest.Config, s settings) error {
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if err := addon.Ensure(ctx, mgr.GetClient(), s.systemNamespace); err != nil {
			return err
		}
		return addon.Run(ctx, cfg, s.addon)
	}))
}

// fleetAdminPatterns parses --fleet-admin-namespaces.
func fleetAdminPatterns(flagValue string) ([]backupv1alpha1.NamespacePattern, error) {
	valid := regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?|([a-z0-9][-a-z0-9]*)?[*])$`)
	var out []backupv1alpha1.NamespacePattern
	for _, p := range strings.Split(flagValue, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !valid.MatchString(p) || len(p) > 63 {
			return nil, fmt.Errorf("--fleet-admin-namespaces: %q is neither a namespace name nor a prefix ending in '*'", p)
		}
		out = append(out, backupv1alpha1.NamespacePattern(p))
	}
	return out, nil
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
