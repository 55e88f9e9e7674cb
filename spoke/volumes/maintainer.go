package volumes

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// Metrics of repository maintenance.
const (
	// MaintenanceRuns counts the maintenance checks of repositories by
	// result: full or quick (the cycle that ran), notDue, notOwned, failed.
	MaintenanceRuns = "lifeboat_repository_maintenance_total"
	// MaintenanceLastSuccess is when a repository's maintenance last ran a
	// cycle successfully, by storage account, container and repository folder.
	MaintenanceLastSuccess = "lifeboat_repository_maintenance_last_success_timestamp_seconds"
)

// Results of a maintenance check, the values of MaintenanceRuns' result label.
const (
	ResultFull     = "full"
	ResultQuick    = "quick"
	ResultNotDue   = "notDue"
	ResultNotOwned = "notOwned"
	ResultFailed   = "failed"
)

var (
	maintenanceRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MaintenanceRuns,
		Help: "Maintenance checks of the cluster's volume repositories, by result: full or quick (the kopia cycle that ran), notDue, notOwned, failed."},
		[]string{"result"})
	maintenanceLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MaintenanceLastSuccess,
		Help: "Unix time at which a volume repository's maintenance last ran a cycle successfully."},
		[]string{"storage_account", "container", "repository"})
)

func init() {
	crmetrics.Registry.MustRegister(maintenanceRuns, maintenanceLastSuccess)
}

// TargetAccess gives what maintenance needs of a BackupTarget: a Blob
// client and the encryption key (nil without one); *targets.Factory.
type TargetAccess interface {
	Client(t *backupv1alpha1.BackupTarget) (*blob.Client, error)
	Key(ctx context.Context, t *backupv1alpha1.BackupTarget) (*age.X25519Identity, error)
}

// Maintainer is the manager runnable that maintains the volume
// repositories of its cluster, on the leader only: every Interval, for each
// location of a Valid BackupTarget (targets with the same storage account,
// container and prefix are one location), each repository under
// RepositoriesDir/<Cluster>/ is checked and kopia runs the cycle that is due
// (Repository.Maintain). Repositories of other clusters are never opened:
// each cluster is the only writer of its own.
type Maintainer struct {
	Client   client.Reader
	Targets  TargetAccess
	Cluster  string
	Interval time.Duration
	// Safety is kopia's safety margins: maintenance.SafetyFull in production.
	Safety maintenance.SafetyParameters

	mu sync.Mutex // one pass at a time
}

// Outcome is the result of one repository's maintenance check.
type Outcome struct {
	// StorageAccount, Container and Repository (the folder under the
	// location's prefix, ending in '/') name the repository.
	StorageAccount, Container, Repository string
	// Result is one of the Result constants.
	Result string
	Err    error
}

// Start runs a pass at once and then every Interval, until ctx ends.
func (m *Maintainer) Start(ctx context.Context) error {
	wait.JitterUntilWithContext(ctx, func(ctx context.Context) { m.Pass(ctx) }, m.Interval, 0.1, true)
	return nil
}

// Pass checks every repository of the cluster once, one after another,
// logs and counts each outcome, and returns them.
func (m *Maintainer) Pass(ctx context.Context) []Outcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	log := logf.FromContext(ctx).WithName("repository-maintenance")
	list := &backupv1alpha1.BackupTargetList{}
	if err := m.Client.List(ctx, list); err != nil {
		log.Error(err, "Listing the BackupTargets failed; no repository was maintained")
		return nil
	}
	var out []Outcome
	for _, group := range locations(list.Items) {
		for _, o := range m.location(ctx, group) {
			maintenanceRuns.WithLabelValues(o.Result).Inc()
			kv := []any{"storageAccount", o.StorageAccount, "container", o.Container, "repository", o.Repository, "result", o.Result}
			switch o.Result {
			case ResultFailed:
				log.Error(o.Err, "Repository maintenance failed", kv...)
			case ResultNotOwned:
				log.Info("Repository maintenance left to its owner", append(kv, "error", o.Err.Error())...)
			case ResultNotDue:
				log.V(1).Info("Repository maintenance not due", kv...)
			default:
				maintenanceLastSuccess.WithLabelValues(o.StorageAccount, o.Container, o.Repository).SetToCurrentTime()
				log.Info("Repository maintained", kv...)
			}
			out = append(out, o)
		}
	}
	return out
}

// locations groups the Valid targets by storage account, container and
// prefix, each group in name order.
func locations(all []backupv1alpha1.BackupTarget) [][]*backupv1alpha1.BackupTarget {
	byLocation := map[[3]string][]*backupv1alpha1.BackupTarget{}
	for i := range all {
		t := &all[i]
		if t.Status.Phase != backupv1alpha1.TargetValid {
			continue
		}
		az := t.Spec.Azure
		k := [3]string{az.StorageAccount, az.Container, az.Prefix}
		byLocation[k] = append(byLocation[k], t)
	}
	var out [][]*backupv1alpha1.BackupTarget
	for _, g := range byLocation {
		slices.SortFunc(g, func(a, b *backupv1alpha1.BackupTarget) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b []*backupv1alpha1.BackupTarget) int { return cmp.Compare(a[0].Name, b[0].Name) })
	return out
}

// location maintains the cluster's repositories in one location. Each
// repository is opened with the password of the first target of the
// location that opens it (targets with different encryption keys give
// different passwords).
func (m *Maintainer) location(ctx context.Context, group []*backupv1alpha1.BackupTarget) []Outcome {
	az := group[0].Spec.Azure
	failed := func(repository string, err error) []Outcome {
		return []Outcome{{StorageAccount: az.StorageAccount, Container: az.Container, Repository: repository, Result: ResultFailed, Err: err}}
	}
	blobs, err := m.Targets.Client(group[0])
	if err != nil {
		return failed("", err)
	}
	namespaces, err := Namespaces(ctx, blobs, m.Cluster)
	if err != nil {
		return failed("", err)
	}
	var out []Outcome
	for _, ns := range namespaces {
		o := Outcome{StorageAccount: az.StorageAccount, Container: az.Container}
		o.Repository, o.Result, o.Err = m.repository(ctx, group, ns)
		out = append(out, o)
	}
	return out
}

// repository maintains the repository of namespace in group's location.
func (m *Maintainer) repository(ctx context.Context, group []*backupv1alpha1.BackupTarget, namespace string) (prefix, result string, err error) {
	if prefix, err = archive.RepositoryPath(m.Cluster, namespace); err != nil {
		return "", ResultFailed, err
	}
	for _, t := range group {
		var key *age.X25519Identity
		if key, err = m.Targets.Key(ctx, t); err != nil {
			continue
		}
		blobs, cerr := m.Targets.Client(t)
		if cerr != nil {
			err = cerr
			continue
		}
		var rep *Repository
		rep, err = Open(ctx, blobs, m.Cluster, namespace, Password(t, key, m.Cluster, namespace))
		if errors.Is(err, ErrWrongPassword) {
			continue
		}
		if err != nil {
			return prefix, ResultFailed, err
		}
		mode, err := rep.Maintain(ctx, maintenance.ModeAuto, m.Safety)
		rep.Close(context.WithoutCancel(ctx))
		switch {
		case errors.Is(err, ErrNotOwner):
			return prefix, ResultNotOwned, err
		case err != nil:
			return prefix, ResultFailed, err
		case mode == maintenance.ModeFull:
			return prefix, ResultFull, nil
		case mode == maintenance.ModeQuick:
			return prefix, ResultQuick, nil
		}
		return prefix, ResultNotDue, nil
	}
	return prefix, ResultFailed, err
}
