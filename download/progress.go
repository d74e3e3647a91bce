package download

import (
	"time"

	"github.com/diffroute-go/route/progress"
)

// tracker wraps the caller's progress.Reporter for one Fetch: it enforces the
// Start/Update/Done order and throttles Update.
type tracker struct {
	p       progress.Reporter
	name    string
	started bool
	last    time.Time
	done    int64
}

const updateEvery = 100 * time.Millisecond

func (t *tracker) start(total int64) {
	if !t.started {
		t.started = true
		t.p.Start(t.name, total)
	}
}

func (t *tracker) update(done int64, force bool) {
	t.start(-1)
	t.done = done
	if now := time.Now(); force || now.Sub(t.last) >= updateEvery {
		t.last = now
		t.p.Update(done)
	}
}

func (t *tracker) finish(err error) {
	t.start(-1)
	t.p.Done(err)
}
