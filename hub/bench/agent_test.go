package bench

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	workclientset "open-cluster-management.io/api/client/work/clientset/versioned"
	workinformers "open-cluster-management.io/api/client/work/informers/externalversions"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/lifeboat-dev/lifeboat/hub/dispatch"
)

// agentWorkers is how many status writes the simulated agents, and the
// baseline, make at once.
const agentWorkers = 16

// agents stands in for the OCM work agents of every cluster: it watches the
// ManifestWorks of one dispatch kind and, for each work of a generation it
// has not answered yet, writes the status feedback an agent would write after
// applying the spoke object and its controller validating it. Only the hub's
// work is under test, so the agents answer at once.
type agents struct {
	works workclientset.Interface
	kind  string
	// want is how many works make "all": allSeen and allFed are set when
	// that many distinct works were seen and answered.
	want int

	mu              sync.Mutex
	seen, fed       map[string]bool
	allSeen, allFed time.Time

	writes, failures atomic.Int64
}

func newAgents(works workclientset.Interface, kind string, want int) *agents {
	return &agents{works: works, kind: kind, want: want, seen: map[string]bool{}, fed: map[string]bool{}}
}

// run watches and answers until ctx ends; it returns once its watch is synced.
func (a *agents) run(ctx context.Context) {
	factory := workinformers.NewSharedInformerFactoryWithOptions(a.works, 0,
		workinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = dispatch.LabelKind + "=" + dispatch.LabelValue(a.kind)
		}))
	inf := factory.Work().V1().ManifestWorks().Informer()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		mw, ok := obj.(*workv1.ManifestWork)
		if !ok {
			return
		}
		key := mw.Namespace + "/" + mw.Name
		a.mu.Lock()
		if !a.seen[key] {
			a.seen[key] = true
			if len(a.seen) == a.want {
				a.allSeen = time.Now()
			}
		}
		a.mu.Unlock()
		queue.Add(key)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go func() {
		<-ctx.Done()
		queue.ShutDown()
		factory.Shutdown()
	}()
	for range agentWorkers {
		go func() {
			for {
				key, shutdown := queue.Get()
				if shutdown {
					return
				}
				if err := a.answer(ctx, inf.GetIndexer(), key); err != nil {
					a.failures.Add(1)
					queue.AddRateLimited(key)
				} else {
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}()
	}
}

// answer writes the feedback of the work key unless it already holds
// feedback of its generation.
func (a *agents) answer(ctx context.Context, store cache.Store, key string) error {
	obj, exists, err := store.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	mw := obj.(*workv1.ManifestWork)
	if !mw.DeletionTimestamp.IsZero() {
		return nil
	}
	gen, err := strconv.ParseInt(mw.Annotations[dispatch.AnnotationGeneration], 10, 64)
	if err != nil {
		return nil // not a dispatch work
	}
	if _, ok := dispatch.Feedback(mw, gen); ok {
		return nil
	}
	if err := writeFeedback(ctx, a.works, mw); err != nil {
		return err
	}
	a.writes.Add(1)
	a.mu.Lock()
	if !a.fed[key] {
		a.fed[key] = true
		if len(a.fed) == a.want {
			a.allFed = time.Now()
		}
	}
	a.mu.Unlock()
	return nil
}

// progress returns how many works were seen and answered, and when all were.
func (a *agents) progress() (seen, fed int, allSeen, allFed time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen), len(a.fed), a.allSeen, a.allFed
}

// writeFeedback patches mw's status as the work agent does once it has
// applied the spoke object and read it back: Applied and Available, the
// manifest's conditions, and the feedback values the work asks for, of a
// spoke object (generation 1) whose controller found the location valid.
// dispatch's reserved values carry the hub generation of the work.
func writeFeedback(ctx context.Context, works workclientset.Interface, mw *workv1.ManifestWork) error {
	patch, err := json.Marshal(map[string]any{"status": agentStatus(mw, time.Now())})
	if err != nil {
		return err
	}
	_, err = works.WorkV1().ManifestWorks(mw.Namespace).Patch(ctx, mw.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func agentStatus(mw *workv1.ManifestWork, at time.Time) workv1.ManifestWorkStatus {
	now := metav1.NewTime(at)
	str := func(name, v string) workv1.FeedbackValue {
		return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.String, String: &v}}
	}
	num := func(name string, v int64) workv1.FeedbackValue {
		return workv1.FeedbackValue{Name: name, Value: workv1.FieldValue{Type: workv1.Integer, Integer: &v}}
	}
	cond := func(typ, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: reason, LastTransitionTime: now, ObservedGeneration: mw.Generation}
	}
	var spoke metav1.PartialObjectMetadata
	if len(mw.Spec.Workload.Manifests) > 0 {
		_ = json.Unmarshal(mw.Spec.Workload.Manifests[0].Raw, &spoke)
	}
	gv, _ := schema.ParseGroupVersion(spoke.APIVersion)
	resource := ""
	if len(mw.Spec.ManifestConfigs) > 0 {
		resource = mw.Spec.ManifestConfigs[0].ResourceIdentifier.Resource
	}
	return workv1.ManifestWorkStatus{
		Conditions: []metav1.Condition{cond(workv1.WorkApplied, "AppliedManifestWorkComplete"), cond(workv1.WorkAvailable, "ResourcesAvailable")},
		ResourceStatus: workv1.ManifestResourceStatus{Manifests: []workv1.ManifestCondition{{
			ResourceMeta: workv1.ManifestResourceMeta{Ordinal: 0, Group: gv.Group, Version: gv.Version, Kind: spoke.Kind, Resource: resource, Name: spoke.Name, Namespace: spoke.Namespace},
			StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{
				str("lifeboat.generation", mw.Annotations[dispatch.AnnotationGeneration]),
				num("lifeboat.objectGeneration", 1),
				str("phase", "Valid"),
				str("reason", "ValidationSucceeded"),
				str("message", "probe blob written, read and deleted"),
				str("lastValidationTime", at.UTC().Format(time.RFC3339)),
				num("observedGeneration", 1),
			}},
			Conditions: []metav1.Condition{
				cond(workv1.ManifestApplied, "AppliedManifestComplete"),
				cond(workv1.ManifestAvailable, "ResourceAvailable"),
				cond("StatusFeedbackSynced", "StatusFeedbackSynced"),
			},
		}}},
	}
}
