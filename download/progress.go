package download

import (
	"fmt"
	"github.com/diffroute-go/route/progress"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress receives progress reports for one file at a time.
//
// For every file, [Fetch] calls Start exactly once, then Update any number of
// times, then Done exactly once. A Progress passed to [SingleVPU] sees these
// sequences one file after another, never interleaved.
//
//   - Start(name, total): name is the base name of the destination; total is
//     the expected size in bytes, or -1 when it is not known yet.
//   - Update(done): done is the number of bytes of the file present so far,
//     counting bytes resumed from an earlier attempt. It normally grows, but
//     goes back (usually to 0) when a transfer has to start over. Fetch calls
//     Update at most about ten times a second, and always once with the final
//     count.
//   - Done(err): err is nil on success (including when the file was already
//     present) and the error Fetch returns otherwise.
//
// Calls come from the goroutine that runs Fetch. Implementations need not be
// safe for concurrent use unless the caller shares one between concurrent
// Fetch calls.
type Progress = progress.Reporter

// Quiet is a [Progress] that reports nothing. It is the default.
var Quiet = progress.Quiet

// Terminal returns a [Progress] that draws a text progress bar on w
// (typically os.Stderr), one bar per file, with sizes in IEC units and the
// transfer rate. When a file fails, the bar is left as it stands and the
// error is printed below it.
func Terminal(w io.Writer) Progress {
	return &terminal{w: w}
}

type terminal struct {
	mu   sync.Mutex
	w    io.Writer
	bar  *progressbar.ProgressBar
	last int64
}

func (t *terminal) Start(name string, total int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if total == 0 {
		// progressbar refuses max == 0; an empty file is shown as unknown size.
		total = -1
	}
	t.last = 0
	t.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(t.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(t.w) }),
	)
}

func (t *terminal) Update(done int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar == nil {
		return
	}
	if done < t.last {
		// The transfer started over; the bar cannot count backwards.
		t.bar.Reset()
		t.last = 0
	}
	_ = t.bar.Add64(done - t.last)
	t.last = done
}

func (t *terminal) Done(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar == nil {
		return
	}
	if err == nil {
		_ = t.bar.Finish()
	} else {
		_ = t.bar.Exit()
		fmt.Fprintf(t.w, "%v\n", err)
	}
	t.bar = nil
}

// tracker wraps the caller's Progress for one Fetch: it enforces the
// Start/Update/Done order and throttles Update.
type tracker struct {
	p       Progress
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
