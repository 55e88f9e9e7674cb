package clusterdiscovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"

	fleetv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/fleet/v1alpha1"
	"github.com/lifeboat-dev/lifeboat/discovery"
)

// openSource reads the kubeconfig Secret and returns the discovery's shoot
// source, reusing the running one while Secret and spec are unchanged. What is
// wrong is recorded on run.
func (r *Reconciler) openSource(ctx context.Context, cd *fleetv1alpha1.ClusterDiscovery, run *run) (discovery.Source, error) {
	g := cd.Spec.Gardener
	ref := g.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = "kubeconfig"
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: string(ref.Namespace), Name: string(ref.Name)}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, run.configError(fleetv1alpha1.ReasonSecretNotFound, fmt.Sprintf("the kubeconfig Secret %s/%s does not exist", ref.Namespace, ref.Name))
		}
		return nil, run.configError(fleetv1alpha1.ReasonSecretNotFound, fmt.Sprintf("reading the kubeconfig Secret %s/%s: %v", ref.Namespace, ref.Name, err))
	}
	kubeconfig, ok := secret.Data[key]
	if !ok || len(kubeconfig) == 0 {
		return nil, run.configError(fleetv1alpha1.ReasonSecretNotFound, fmt.Sprintf("the Secret %s/%s has no key %q holding a kubeconfig", ref.Namespace, ref.Name, key))
	}
	selector := labels.Everything()
	if g.ShootSelector != nil {
		var err error
		if selector, err = metav1.LabelSelectorAsSelector(g.ShootSelector); err != nil {
			return nil, run.configError(fleetv1alpha1.ReasonInvalidSelector, "spec.gardener.shootSelector is not valid: "+err.Error())
		}
	}
	fingerprint := configFingerprint(kubeconfig, g.Projects, selector)
	if src := r.watches.source(cd.Name, fingerprint); src != nil {
		return src, nil
	}
	newSource := r.NewSource
	if newSource == nil {
		newSource = func(kubeconfig []byte, projects []string, selector labels.Selector) (discovery.Source, error) {
			return discovery.NewGardener(kubeconfig, projects, selector)
		}
	}
	src, err := newSource(kubeconfig, g.Projects, selector)
	if err != nil {
		return nil, run.configError(fleetv1alpha1.ReasonInvalidKubeconfig, fmt.Sprintf("the kubeconfig in Secret %s/%s (key %q) cannot be used: %v", ref.Namespace, ref.Name, key, err))
	}
	r.watches.replace(cd.Name, fingerprint, src)
	return src, nil
}

// listShoots lists the selected shoots. A partial failure (some projects) is
// recorded and the run goes on with the rest; a total one ends the run.
func (r *Reconciler) listShoots(ctx context.Context, src discovery.Source, run *run) ([]discovery.Shoot, error) {
	shoots, err := src.List(ctx)
	var partial *discovery.ListError
	switch {
	case err == nil:
	case errors.As(err, &partial) && !partial.Failed("") && len(partial.Projects) < len(run.projects):
		run.listErr = partial
	default:
		run.listFailed(err)
		return nil, fmt.Errorf("listing shoots: %w", err)
	}
	return shoots, nil
}

func configFingerprint(kubeconfig []byte, projects []string, selector labels.Selector) string {
	h := sha256.New()
	h.Write(kubeconfig)
	fmt.Fprintf(h, "\x00%s\x00%s", strings.Join(projects, ","), selector.String())
	return hex.EncodeToString(h.Sum(nil))
}

// watchSet holds the shoot source and watch of each ClusterDiscovery.
type watchSet struct {
	mu     sync.Mutex
	byName map[string]*gardenWatch
}

type gardenWatch struct {
	fingerprint string
	src         discovery.Source
	// cancel stops the watch; nil until the first successful list starts it.
	cancel context.CancelFunc
	// lastFull is when the latest run that re-applied every registration began.
	lastFull time.Time
}

// source returns the discovery's source if it was built from the same config.
func (ws *watchSet) source(name, fingerprint string) discovery.Source {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.byName[name]; w != nil && w.fingerprint == fingerprint {
		return w.src
	}
	return nil
}

// replace records a source built from a new config, stopping the old watch.
func (ws *watchSet) replace(name, fingerprint string, src discovery.Source) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.byName == nil {
		ws.byName = map[string]*gardenWatch{}
	}
	if w := ws.byName[name]; w != nil && w.cancel != nil {
		w.cancel()
	}
	ws.byName[name] = &gardenWatch{fingerprint: fingerprint, src: src}
}

// ensure starts the watch of the discovery's current source unless it runs.
// Each change makes at most one event wait for the controller: a burst of
// shoot changes becomes one or two runs.
func (ws *watchSet) ensure(ctx context.Context, name string, src discovery.Source, events chan<- event.GenericEvent) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.byName[name]
	if w == nil || w.src != src || w.cancel != nil || events == nil {
		return
	}
	log := ctrl.LoggerFrom(ctx).WithName("shoot-watch")
	wctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), log))
	w.cancel = cancel
	due := make(chan struct{}, 1)
	notify := func() {
		select {
		case due <- struct{}{}:
		default:
		}
	}
	go relay(wctx, name, due, events)
	go watchLoop(wctx, src, notify)
	log.Info("Started the shoot watch")
}

// relay turns "shoots changed" into a controller event for the discovery.
func relay(ctx context.Context, name string, due <-chan struct{}, events chan<- event.GenericEvent) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-due:
		}
		ev := event.GenericEvent{Object: &fleetv1alpha1.ClusterDiscovery{ObjectMeta: metav1.ObjectMeta{Name: name}}}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// watchLoop keeps the source's watch running until ctx ends.
func watchLoop(ctx context.Context, src discovery.Source, notify func()) {
	for ctx.Err() == nil {
		if err := src.Watch(ctx, notify); err != nil && ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "Shoot watch ended; restarting it")
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// markFull records that a run which re-applied every registration succeeded.
func (ws *watchSet) markFull(name string, full bool, started time.Time) {
	if !full {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.byName[name]; w != nil {
		w.lastFull = started
	}
}

// fullDue says whether a run should re-apply every registration: the first
// run of a source, then once per interval.
func (ws *watchSet) fullDue(name string, now time.Time, every time.Duration) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.byName[name]
	return w == nil || w.lastFull.IsZero() || now.Sub(w.lastFull) >= every
}

func (ws *watchSet) stop(name string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.byName[name]; w != nil {
		if w.cancel != nil {
			w.cancel()
		}
		delete(ws.byName, name)
	}
}

func (ws *watchSet) stopAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for name, w := range ws.byName {
		if w.cancel != nil {
			w.cancel()
		}
		delete(ws.byName, name)
	}
}

// running says whether a watch runs for the discovery (for tests).
func (ws *watchSet) running(name string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.byName[name]
	return w != nil && w.cancel != nil
}
