// Command lifeboat-spoke is the manager on every cluster: it validates backup
// targets with Azure Workload Identity and runs backups, restores, syncs and
// deletions locally against Azure Blob Storage.
package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/applicationbackup"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/applicationrestore"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backupdeletion"
	"github.com/lifeboat-dev/lifeboat/spoke/reconcilers/backuptarget"
	"github.com/lifeboat-dev/lifeboat/spoke/runs"
	"github.com/lifeboat-dev/lifeboat/spoke/targets"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(backupv1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		leaderNamespace        string
		factory                targets.Factory
		caBundle, clusterName  string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address the metrics endpoint binds to (0 disables it)")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address the health probes bind to")
	flag.BoolVar(&leaderElect, "leader-elect", true, "elect a leader so that one replica works at a time")
	flag.StringVar(&leaderNamespace, "leader-election-namespace", "lifeboat-system", "namespace of the leader election lease")
	flag.StringVar(&factory.TokenFile, "azure-token-file", os.Getenv(blob.EnvTokenFile), "projected service-account token for Azure Workload Identity")
	flag.StringVar(&factory.AuthorityHost, "azure-authority-host", os.Getenv(blob.EnvAuthorityHost), "Entra ID authority (default: the target's cloud)")
	flag.StringVar(&clusterName, "cluster-name", os.Getenv("LIFEBOAT_CLUSTER_NAME"), "this cluster's name in the fleet: backups are stored under it")
	flag.StringVar(&caBundle, "ca-bundle", "", "PEM file of CAs to trust for Entra ID and Blob Storage instead of the system roots (private clouds, tests)")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	if err := run(metricsAddr, probeAddr, leaderElect, leaderNamespace, &factory, caBundle, clusterName); err != nil {
		log.Error(err, "The spoke manager stopped with an error")
		os.Exit(1)
	}
}

func run(metricsAddr, probeAddr string, leaderElect bool, leaderNamespace string, factory *targets.Factory, caBundle, clusterName string) error {
	if clusterName == "" {
		return fmt.Errorf("--cluster-name (or LIFEBOAT_CLUSTER_NAME) is required: backups are stored under the cluster's name")
	}
	if caBundle != "" {
		pem, err := os.ReadFile(caBundle)
		if err != nil {
			return err
		}
		factory.RootCAs = x509.NewCertPool()
		if !factory.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-bundle %s holds no PEM certificate", caBundle)
		}
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "lifeboat-spoke.backup.lifeboat.dev",
		LeaderElectionNamespace: leaderNamespace,
	})
	if err != nil {
		return err
	}
	if err := (&backuptarget.Reconciler{
		Client:   mgr.GetClient(),
		Targets:  factory,
		Recorder: mgr.GetEventRecorder("lifeboat-spoke"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	registry := &runs.Registry{}
	if err := (&applicationbackup.Reconciler{
		Client:   mgr.GetClient(),
		Targets:  factory,
		Runs:     registry,
		Cluster:  clusterName,
		Recorder: mgr.GetEventRecorder("lifeboat-spoke"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&applicationrestore.Reconciler{
		Client:   mgr.GetClient(),
		Targets:  factory,
		Recorder: mgr.GetEventRecorder("lifeboat-spoke"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&backupdeletion.Reconciler{
		Client:   mgr.GetClient(),
		Targets:  factory,
		Runs:     registry,
		Recorder: mgr.GetEventRecorder("lifeboat-spoke"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting the spoke manager")
	return mgr.Start(ctrl.SetupSignalHandler())
}
