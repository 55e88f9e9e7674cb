// Package slots bounds how many runs of one kind (backups, restores) a spoke
// runs at once, with separate slots for the hub's runs and for teams'
// self-service runs, so that teams never make the hub's runs wait.
package slots

import (
	"fmt"
	"sync"
)

// Slots are the run slots of one kind of run. The zero value is not usable:
// set Kind, Hub and SelfService.
type Slots struct {
	// Kind names the runs in messages, in the singular ("backup").
	Kind string
	// Hub and SelfService are how many runs the hub sent (in
	// lifeboat-system) and how many teams made (in their own namespaces) may
	// run at once; the flag names are for messages.
	Hub, SelfService         int
	HubFlag, SelfServiceFlag string

	mu                       sync.Mutex
	hubUsed, selfServiceUsed int
}

// Take claims a slot for a run of the hub (selfService false) or of a team.
// It returns the function that frees the slot (calling it twice frees it
// once), or nil and why the run must wait.
func (s *Slots) Take(selfService bool) (release func(), wait string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used, limit, whose, flag := &s.hubUsed, s.Hub, "the hub's", s.HubFlag
	if selfService {
		used, limit, whose, flag = &s.selfServiceUsed, s.SelfService, "teams'", s.SelfServiceFlag
	}
	if *used >= limit {
		return nil, fmt.Sprintf("Waiting for a %s slot: %d of %s %ss are running, the most at once on this cluster (--%s)",
			s.Kind, *used, whose, s.Kind, flag)
	}
	*used++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		*used--
		s.mu.Unlock()
	}), ""
}
