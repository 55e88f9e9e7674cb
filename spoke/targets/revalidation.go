package targets

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	backupv1alpha1 "github.com/lifeboat-dev/lifeboat/apis/backup/v1alpha1"
)

// Revalidation lets a backup, restore, sync or deletion that failed on
// storage ask for its BackupTarget to be validated again at once, instead of
// the target showing Valid (on this cluster and, through it, on the hub) until
// its next validation, up to an hour later. A nil Revalidation ignores
// requests.
type Revalidation struct {
	mu     sync.Mutex
	due    map[string]bool
	events chan event.GenericEvent
}

// NewRevalidation makes a Revalidation for the BackupTarget controller.
func NewRevalidation() *Revalidation {
	return &Revalidation{due: map[string]bool{}, events: make(chan event.GenericEvent, 64)}
}

// Request asks for target to be validated again. It never blocks: while
// earlier requests wait, the target is marked due and validated when the
// controller next looks at it.
func (v *Revalidation) Request(target string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.due[target] = true
	v.mu.Unlock()
	select {
	case v.events <- event.GenericEvent{Object: &backupv1alpha1.BackupTarget{ObjectMeta: metav1.ObjectMeta{Name: target}}}:
	default:
	}
}

// Take reports whether target was asked to be validated again, and forgets
// the request.
func (v *Revalidation) Take(target string) bool {
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	due := v.due[target]
	delete(v.due, target)
	return due
}

// Source makes the BackupTarget controller reconcile the targets asked for.
func (v *Revalidation) Source() source.Source {
	return source.Channel(v.events, &handler.EnqueueRequestForObject{})
}
