package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Options say what to restore, where and how.
type Options struct {
	// Config reaches the cluster to restore into; Run copies it and sets its
	// own QPS and Burst.
	Config *rest.Config
	// Reader is the backup, opened with archive.Open.
	Reader *archive.Reader
	// NamespaceMapping renames namespaces of the backup (keys) to the
	// namespaces to restore them into (values).
	NamespaceMapping backupv1alpha1.NamespaceMapping
	// Selection chooses what to restore, by the names in the backup; nil
	// takes everything.
	Selection *backupv1alpha1.ResourceSelection
	// ExistingResourcePolicy is Skip ("" too) or Update.
	ExistingResourcePolicy backupv1alpha1.ExistingResourcePolicy
	// OnlyNamespace, when set, is the one namespace the restore may write
	// into (self-service); see the package documentation.
	OnlyNamespace string
	// PolicyResources, with OnlyNamespace, lets the restore write RBAC,
	// quota and policy objects (see policyResources); else they are left out.
	PolicyResources bool
	// Tenancy, when set, is the grant of the hub tenant the restore was
	// sent for: only its namespaces, and cluster-scoped objects only if it
	// grants them; see the package documentation.
	Tenancy *backupv1alpha1.Grant
	// Cluster is the name of the cluster restored to. Only a backup taken on
	// this cluster has its PersistentVolumes created: one from another
	// cluster (or when Cluster is empty) points at that cluster's disks, so
	// it is left out, and its claims get new volumes from their
	// StorageClasses; see the package documentation.
	Cluster string
	// StorageClassMapping gives restored PersistentVolumeClaims and
	// PersistentVolumes other StorageClasses (keys: the classes in the
	// backup).
	StorageClassMapping backupv1alpha1.StorageClassMapping
	// FieldManager owns what the restore writes (default "lifeboat").
	FieldManager string

	// Workers is how many objects are written at once (default 16).
	Workers int
	// QPS and Burst bound the requests to the API server (default 200 and
	// 400, as a backup's).
	QPS   float32
	Burst int
	// TempDir holds the spool (default os.TempDir()).
	TempDir string
	// SpoolLimit, when set, bounds the bytes the restore spools; past it
	// the restore fails (ErrSpoolFull) before it writes to the cluster.
	// SpoolNeed is what an honest backup needs.
	SpoolLimit int64
	// MaxItems bounds the objects of the backup (default DefaultMaxItems):
	// the restore keeps a few maps that grow with them. A larger backup
	// fails (ErrTooManyItems) before anything is written.
	MaxItems int64
	// CRDTimeout bounds the wait for restored CRDs to be served (default 1m).
	CRDTimeout time.Duration

	// FillVolume, when set, fills the claim namespace/name that the restore
	// created from the backup's snapshot v of its data; it runs after the
	// claims are written and before the workloads. Unset, claims with a
	// snapshot are restored empty, each with an error in the log.
	FillVolume func(ctx context.Context, v archive.VolumeSnapshot, namespace, name string) error
	// RestoreCommand, when set, gives the output c of a pod's backup command
	// back to the pod of the same workload in namespace (c's namespace
	// mapped) through its restore command, once every object is written;
	// said is the command's output for the log. Unset, each such output is
	// an error in the log.
	RestoreCommand func(ctx context.Context, c archive.CommandOutput, namespace string) (said string, err error)
	// Progress, when set, is called from one goroutine with what the restore
	// has done so far, at most every ProgressInterval and once at the end.
	Progress func(Result)
	// ProgressInterval defaults to 500ms.
	ProgressInterval time.Duration
	// Log, when set, receives what happened: the result of every item (an
	// Entry with an Outcome), other lines about items, and summaries. Calls
	// are serialised.
	Log func(Entry)
}

// Outcome is what a restore did with one item of the backup.
type Outcome string

// Outcomes. Every item of the backup gets exactly one.
const (
	// Created: the item did not exist and was created.
	Created Outcome = "created"
	// Updated: the item existed and was applied over (policy Update).
	Updated Outcome = "updated"
	// Existed: the item existed and was left as it is (policy Skip).
	Existed Outcome = "existed"
	// LeftOut: the restore did not write the item; Message says why.
	LeftOut Outcome = "leftOut"
	// Failed: writing the item failed; Message says why.
	Failed Outcome = "failed"
)

// Entry is one line of a restore's log. Item is the object as the backup
// names it (before mapping), nil for a line about the whole restore. An
// entry with an Outcome is the result of its item; Target then says where
// the item went, when that is not where it was.
type Entry struct {
	Level   archive.Level
	Item    *archive.ItemRef
	Outcome Outcome
	Target  string
	Message string
}

// DefaultFieldManager owns the fields a restore writes.
const DefaultFieldManager = "lifeboat"

// Defaults of Options: requests to the API server as a backup makes them
// (client-go's 5 QPS would make a restore crawl; more would let a few
// restores crowd out everyone else), and the most objects one restore takes.
const (
	DefaultQPS      = 200
	DefaultBurst    = 400
	DefaultMaxItems = 250_000
)

// ErrTooManyItems: the backup holds more objects than Options.MaxItems.
var ErrTooManyItems = errors.New("too many objects for one restore")

// CheckItems returns an error wrapping ErrTooManyItems when the backup m
// describes holds more than max objects. Its counts are what Run's
// verification holds the backup to before anything is spooled.
func CheckItems(m *archive.Manifest, max int64) error {
	if m.Counts.Items > max {
		return fmt.Errorf("%w: backup %s holds %d objects, more than the %d one restore takes", ErrTooManyItems, m.BackupID, m.Counts.Items, max)
	}
	return nil
}

// Result is what a restore did. Every item of the backup ends in exactly one
// of Restored, Skipped, Excluded and Failed.
type Result struct {
	// Total is the number of items in the backup.
	Total int64
	// Restored items were created, or updated by policy Update.
	Restored int64
	// Updated counts the Restored items that existed and were updated.
	Updated int64
	// Skipped items existed and were left as they are.
	Skipped int64
	// Excluded items were left out: by the selection, by self-service, or
	// because the cluster makes them again.
	Excluded int64
	// Failed items could not be restored; the log says why.
	Failed int64
	// Bytes counts the object bytes read from the backup.
	Bytes int64
	// Warnings and Errors count the log lines of those levels. Errors can
	// exceed Failed: a CRD can be created and never become served.
	Warnings int64
	Errors   int64
}

// Done is the number of items handled so far.
func (r Result) Done() int64 { return r.Restored + r.Skipped + r.Excluded + r.Failed }

// ReadError is a failure to read or verify the backup. A restore that
// returns one has changed nothing in the cluster. It wraps the archive's
// error, so errors.Is(err, archive.ErrCorrupt) and the like work.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "reading the backup: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Run restores the backup. It verifies all of it first; a backup that fails
// verification gives a *ReadError and changes nothing. Items that cannot be
// restored are logged and counted in Result.Failed and Result.Errors; Run
// returns an error only when the restore as a whole cannot go on (the backup,
// the spool, the context).
func Run(ctx context.Context, opts Options) (Result, error) {
	r, err := newRun(opts)
	if err != nil {
		return Result{}, err
	}
	defer r.close()
	stop := r.reportProgress()
	err = r.run(ctx)
	stop()
	return r.result(), err
}

func (r *run) run(ctx context.Context) error {
	if err := r.read(ctx); err != nil {
		return err
	}
	if err := r.write(ctx); err != nil {
		return err
	}
	r.restoreCommands(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	r.summarize()
	return nil
}

// run is one restore.
type run struct {
	opts  Options
	sel   *selection
	spool *spool
	api   *api

	total, restored, updated, skipped, excluded, failed, bytes, warnings, errs atomic.Int64
	// seen counts the items read, against Options.MaxItems.
	seen int64

	logMu sync.Mutex
	// excludedWhy counts the items left out without a line each, by reason.
	excludedWhy map[string]int64

	// Gathered while reading, read-only while writing.
	namespaces map[string]bool // target namespaces that receive objects
	needs      map[string]bool // what Auto takes: "<resource>/<name>"
	ownerUIDs  map[string]bool // UIDs in the backup that owner references name

	mu      sync.Mutex
	newUIDs map[string]string // UID in the backup -> UID in the cluster
	volumes map[string]claim  // PV name -> the claim this restore pre-bound it to
	fills   []fill            // claims created that get their data from a snapshot
	crds    []string          // CRDs written, to wait for
}

func newRun(opts Options) (*run, error) {
	if opts.Config == nil || opts.Reader == nil {
		return nil, errors.New("restore: Options.Config and Options.Reader are required")
	}
	switch opts.ExistingResourcePolicy {
	case "":
		opts.ExistingResourcePolicy = backupv1alpha1.ExistingResourceSkip
	case backupv1alpha1.ExistingResourceSkip, backupv1alpha1.ExistingResourceUpdate:
	default:
		return nil, fmt.Errorf("restore: existingResourcePolicy %q: must be Skip or Update", opts.ExistingResourcePolicy)
	}
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.QPS <= 0 {
		opts.QPS = DefaultQPS
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = DefaultMaxItems
	}
	if err := CheckItems(opts.Reader.Manifest(), opts.MaxItems); err != nil {
		return nil, err
	}
	if opts.CRDTimeout <= 0 {
		opts.CRDTimeout = time.Minute
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 500 * time.Millisecond
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	sel, err := newSelection(opts.Selection)
	if err != nil {
		return nil, err
	}
	api, err := newAPI(opts.Config, opts.QPS, opts.Burst, opts.FieldManager)
	if err != nil {
		return nil, err
	}
	sp, err := newSpool(opts.TempDir, opts.SpoolLimit)
	if err != nil {
		return nil, err
	}
	r := &run{
		opts: opts, sel: sel, spool: sp, api: api,
		excludedWhy: map[string]int64{},
		namespaces:  map[string]bool{},
		needs:       map[string]bool{},
		ownerUIDs:   map[string]bool{},
		newUIDs:     map[string]string{},
		volumes:     map[string]claim{},
	}
	r.total.Store(opts.Reader.Manifest().Counts.Items)
	return r, nil
}

func (r *run) close() { r.spool.remove() }

func (r *run) result() Result {
	return Result{
		Total: r.total.Load(), Restored: r.restored.Load(), Updated: r.updated.Load(), Skipped: r.skipped.Load(),
		Excluded: r.excluded.Load(), Failed: r.failed.Load(), Bytes: r.bytes.Load(),
		Warnings: r.warnings.Load(), Errors: r.errs.Load(),
	}
}

// reportProgress calls Options.Progress every ProgressInterval until the
// returned function is called, which reports once more and waits.
func (r *run) reportProgress() (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.opts.Progress(r.result())
			case <-done:
				r.opts.Progress(r.result())
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// mapNamespace returns the namespace that ns of the backup is restored into.
func (r *run) mapNamespace(ns string) string {
	if to, ok := r.opts.NamespaceMapping[ns]; ok && to != "" {
		return string(to)
	}
	return ns
}

func (r *run) log(level archive.Level, item *archive.ItemRef, format string, args ...any) {
	r.emit(Entry{Level: level, Item: item, Message: fmt.Sprintf(format, args...)})
}

// emit counts and passes on a line of the log.
func (r *run) emit(e Entry) {
	switch e.Level {
	case archive.LevelWarning:
		r.warnings.Add(1)
	case archive.LevelError:
		r.errs.Add(1)
	}
	if r.opts.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	r.opts.Log(e)
}

// exclude counts an item left out for a reason that the summary reports
// too; its result says why, at level info.
func (r *run) exclude(ref archive.ItemRef, why string) {
	r.excluded.Add(1)
	r.logMu.Lock()
	r.excludedWhy[why]++
	r.logMu.Unlock()
	r.emit(Entry{Level: archive.LevelInfo, Item: &ref, Outcome: LeftOut, Message: "Left out: " + why})
}

// excludeWith counts an item left out for a reason of its own.
func (r *run) excludeWith(level archive.Level, ref archive.ItemRef, format string, args ...any) {
	r.excluded.Add(1)
	r.emit(Entry{Level: level, Item: &ref, Outcome: LeftOut, Message: fmt.Sprintf(format, args...)})
}

func (r *run) fail(ref archive.ItemRef, format string, args ...any) {
	r.failed.Add(1)
	r.emit(Entry{Level: archive.LevelError, Item: &ref, Outcome: Failed, Message: fmt.Sprintf(format, args...)})
}

// done records an item that was written (Created or Updated) or found
// (Existed, with the level and message given).
func (r *run) done(e *entry, out Outcome, level archive.Level, format string, args ...any) {
	switch out {
	case Created:
		r.restored.Add(1)
	case Updated:
		r.restored.Add(1)
		r.updated.Add(1)
	case Existed:
		r.skipped.Add(1)
	}
	ref := e.Ref
	var target string
	if r.as(e) != "" {
		target = e.target()
	}
	r.emit(Entry{Level: level, Item: &ref, Outcome: out, Target: target, Message: fmt.Sprintf(format, args...)})
}

// summarize logs one line per reason items were left out without a line each.
func (r *run) summarize() {
	r.logMu.Lock()
	whys := make([]string, 0, len(r.excludedWhy))
	for why := range r.excludedWhy {
		whys = append(whys, why)
	}
	counts := r.excludedWhy
	r.logMu.Unlock()
	sort.Strings(whys)
	for _, why := range whys {
		r.log(archive.LevelInfo, nil, "Left out %d objects: %s", counts[why], why)
	}
	res := r.result()
	r.log(archive.LevelInfo, nil, "Restored %d of %d objects; %d existed and were left as they are, %d were left out, %d failed",
		res.Restored, res.Total, res.Skipped, res.Excluded, res.Failed)
}
