// Package backup reads the Kubernetes objects a backup selects and streams them
// into an archive, without holding more than a few list pages in memory.
//
// Run discovers every served resource (preferred versions), lists the selected
// ones page by page on a small pool of workers, and hands each page to one
// goroutine that adds the objects to the archive Writer. Objects go into the
// archive as the API server returned them (JSON), with apiVersion and kind set.
// What is never backed up, and why, is in exclusions.go; how the selection and
// the cluster-scoped policy are read is in selection.go.
package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/spoke/archive"
)

// Writer is where Run puts the objects; *archive.Writer is one.
type Writer interface {
	Add(archive.Item) error
	Log(level archive.Level, item *archive.ItemRef, message string)
}

// Options says what to back up and where to.
type Options struct {
	// Config reaches the API server. Run raises its QPS and Burst to at least
	// 200 and 400 (client-go's default of 5 QPS would make a backup crawl) and
	// turns off response compression, which costs the API server more CPU
	// than it saves on a cluster's own network.
	Config *rest.Config

	// Selection chooses the resources; nil takes everything.
	Selection *backupv1alpha1.ResourceSelection

	// Namespace, when set, restricts the backup to that one namespace, whatever
	// Selection says: a team's own (self-service) backup. Its cluster-scoped
	// objects are then at most the Namespace object and the
	// CustomResourceDefinitions of its custom resources.
	Namespace string

	// Writer receives the objects and the log lines about them.
	Writer Writer

	// Progress, when set, is called from one goroutine as the backup goes on;
	// it must return quickly.
	Progress func(Progress)

	// PageSize is the limit of each list request (default 500).
	PageSize int64
	// Workers is the number of lists that run at once (default 4).
	Workers int
}

// Progress counts the work done so far.
//
// ItemsTotal is the number of items selected so far: it grows as each list
// page arrives, before its items are written, so that a backup never needs a
// first pass to count. It is final, and equal to ItemsDone, when Run returns
// without error.
type Progress struct {
	ItemsTotal int64
	// ItemsDone counts the items handled, written or not.
	ItemsDone int64
	// BytesDone is the size of the items' JSON written so far, before compression.
	BytesDone int64
	// Errors counts what could not be backed up: items that could not be
	// written, resources or API groups that could not be read. Each is logged
	// with archive.LevelError.
	Errors int64
	// Warnings counts the warnings logged, e.g. a selected namespace that does
	// not exist.
	Warnings int64
}

// ErrWrite: the Writer failed, so the backup cannot go on. Run wraps it.
var ErrWrite = errors.New("writing the backup failed")

// Run backs up what opts select into opts.Writer and returns the final counts.
// Problems with single items or resources are logged in the archive, counted
// in Progress.Errors and do not stop the backup; Run returns an error only
// when the backup cannot go on (the cluster cannot be discovered, the Writer
// failed, ctx ended). It neither closes nor aborts the Writer.
func Run(ctx context.Context, opts Options) (Progress, error) {
	if opts.Config == nil || opts.Writer == nil {
		return Progress{}, errors.New("backup: Options.Config and Options.Writer are required")
	}
	e, err := newEngine(opts)
	if err != nil {
		return Progress{}, err
	}
	return e.run(ctx)
}

const (
	defaultPageSize = 500
	defaultWorkers  = 4
)

// engine is one run of Run.
type engine struct {
	opts Options
	api  *apiClient
	sel  *selection

	// out carries list pages from the workers to the writer goroutine.
	out chan []archive.Item

	total, done, bytes, errs, warnings atomic.Int64

	mu   sync.Mutex
	deps dependencies
	// listed counts the items taken per resource, for the CRDs Auto takes.
	listed map[resourceKey]int64
	// nsObjects are the Namespace objects of the namespaces the selection names.
	nsObjects []archive.Item
}

func newEngine(opts Options) (*engine, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = defaultPageSize
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	api, err := newAPIClient(opts.Config)
	if err != nil {
		return nil, err
	}
	return &engine{opts: opts, api: api, listed: map[resourceKey]int64{}, deps: newDependencies()}, nil
}

func (e *engine) run(ctx context.Context) (Progress, error) {
	resources, err := e.discover(ctx)
	if err != nil {
		return e.progress(), err
	}
	if e.sel, err = newSelection(e.opts.Selection, e.opts.Namespace, resources); err != nil {
		return e.progress(), err
	}
	e.logSelection()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.out = make(chan []archive.Item, 2*e.opts.Workers)
	writeErr := make(chan error, 1)
	go func() {
		err := e.write(e.out)
		if err != nil {
			cancel(err)
			for range e.out { // let the workers finish
			}
		}
		writeErr <- err
	}()

	listErr := e.collect(ctx, resources)
	close(e.out)
	if err := <-writeErr; err != nil {
		return e.progress(), err
	}
	if listErr != nil {
		return e.progress(), listErr
	}
	if err := context.Cause(ctx); err != nil {
		return e.progress(), err
	}
	e.report()
	return e.progress(), nil
}

// collect lists the namespaced resources, then the cluster-scoped objects the
// policy takes (Auto needs to know what the namespaces hold first).
func (e *engine) collect(ctx context.Context, resources []resource) error {
	namespaces, err := e.namespaces(ctx, resources)
	if err != nil {
		return err
	}
	tasks := e.sel.namespacedTasks(resources, namespaces)
	if e.sel.policy == backupv1alpha1.ClusterScopedInclude {
		tasks = append(tasks, e.sel.clusterTasks(resources)...)
	}
	if err := e.listAll(ctx, tasks); err != nil {
		return err
	}
	if e.sel.policy == backupv1alpha1.ClusterScopedAuto {
		return e.addDependencies(ctx, resources)
	}
	return nil
}

// listAll runs tasks on the worker pool.
func (e *engine) listAll(ctx context.Context, tasks []task) error {
	work := make(chan task)
	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Go(func() {
			for t := range work {
				e.list(ctx, t)
			}
		})
	}
	for _, t := range tasks {
		select {
		case work <- t:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// send hands a page to the writer goroutine.
func (e *engine) send(ctx context.Context, items []archive.Item) bool {
	if len(items) == 0 {
		return true
	}
	e.total.Add(int64(len(items)))
	select {
	case e.out <- items:
		return true
	case <-ctx.Done():
		return false
	}
}

// write adds every item to the Writer; only a Writer that cannot go on stops it.
func (e *engine) write(pages <-chan []archive.Item) error {
	for page := range pages {
		for _, it := range page {
			err := e.opts.Writer.Add(it)
			e.done.Add(1)
			switch {
			case err == nil:
				e.bytes.Add(int64(len(it.Object)))
			case errors.Is(err, archive.ErrInvalidItem):
				ref := it.Ref()
				e.logError(&ref, err.Error())
			default:
				return fmt.Errorf("%w: %w", ErrWrite, err)
			}
		}
		e.report()
	}
	return nil
}

func (e *engine) progress() Progress {
	return Progress{
		ItemsTotal: e.total.Load(), ItemsDone: e.done.Load(), BytesDone: e.bytes.Load(),
		Errors: e.errs.Load(), Warnings: e.warnings.Load(),
	}
}

func (e *engine) report() {
	if e.opts.Progress != nil {
		e.opts.Progress(e.progress())
	}
}

func (e *engine) logError(item *archive.ItemRef, msg string) {
	e.errs.Add(1)
	e.opts.Writer.Log(archive.LevelError, item, msg)
}

func (e *engine) logWarning(item *archive.ItemRef, msg string) {
	e.warnings.Add(1)
	e.opts.Writer.Log(archive.LevelWarning, item, msg)
}

func (e *engine) logInfo(msg string) {
	e.opts.Writer.Log(archive.LevelInfo, nil, msg)
}
