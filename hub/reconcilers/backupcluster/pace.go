package backupcluster

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultLocationWrites is how many BackupCluster status writes a second
// may only bring the cluster's list of locations up to date, after a burst
// of locationWriteBurst: a location's fan-out to 5,000 clusters changes
// 5,000 BackupClusters, and written at once those writes compete with the
// fan-out's own (at 5,000 clusters, 3,812 of them went to the API server
// before the location was Valid). The BackupLocation's status is where a
// fan-out's progress shows; each BackupCluster follows within
// clusters/DefaultLocationWrites seconds (about 4 min at 5,000).
const DefaultLocationWrites = 20

// locationWriteBurst is how many such writes go at once: a change that
// touches up to this many clusters shows on them without delay.
const locationWriteBurst = 100

// pace hands out the turns of the status writes that only change a
// cluster's list of locations. A cluster keeps the turn it was given until
// it takes it, so every write costs one turn however often its cluster is
// reconciled while it waits.
type pace struct {
	mu      sync.Mutex
	limiter *rate.Limiter
	turns   map[string]time.Time
}

func newPace(perSecond float64) *pace {
	return &pace{limiter: rate.NewLimiter(rate.Limit(perSecond), locationWriteBurst), turns: map[string]time.Time{}}
}

// wait is how long cluster must wait for its turn to write, from now; 0
// when it may write now.
func (p *pace) wait(cluster string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.turns[cluster]; ok {
		if !now.Before(at) {
			delete(p.turns, cluster)
			return 0
		}
		return at.Sub(now)
	}
	d := p.limiter.ReserveN(now, 1).DelayFrom(now)
	if d > 0 {
		p.turns[cluster] = now.Add(d)
	}
	return d
}
