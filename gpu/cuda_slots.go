//go:build cuda || cudaemu

package gpu

import (
	"fmt"

	"github.com/diffroute-go/route/gpu/internal/cu"
)

// cudaSlots are the pipeline's two slots: per slot a stream, pinned host and
// device buffers for one chunk's input and output, and events around the
// convolution. They are kept across calls — by a Router across Route calls,
// by a StagedBackend across clusters and time chunks — and grow when a call
// needs longer chunks. Every method runs on the device goroutine.
type cudaSlots struct {
	d         *Device
	streams   [2]cu.Stream
	hin, hout [2]pinned
	din, dout [2]devBuf
	grows     int // buffer (re)allocations

	// Timing: per slot, events at the chunk's start, around the
	// convolution, and around the download; the chunk's input is an upload
	// or, with resident pixels, the interpolation kernel (inKind). Times are
	// read against origin, recorded before the first chunk of a call, when
	// the slot is waited for.
	ev         [2][5]cu.Event
	inKind     [2]opKind
	timed      [2]bool // slot has a chunk whose events are not yet read
	origin     cu.Event
	originSet  bool // origin recorded in this call
	originDone bool // and completed
	tl         timeline
	lastEnd    [2]float64 // end of each slot's last timed chunk
	timedOnce  [2]bool
}

// timelineKeep bounds the operations kept unmeasured on a timeline; past
// it, everything before the point where the next chunks can start is
// folded (a staged run can time millions of chunks).
const timelineKeep = 1 << 12

func newSlots(d *Device) (c *cudaSlots, err error) {
	c = &cudaSlots{d: d}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	for s := range 2 {
		if c.streams[s], err = cu.MakeStream(cu.NonBlocking); err != nil {
			return nil, fmt.Errorf("gpu: creating a stream: %v", err)
		}
		for e := range c.ev[s] {
			if c.ev[s][e], err = cu.MakeEvent(cu.DefaultEvent); err != nil {
				return nil, fmt.Errorf("gpu: creating an event: %v", err)
			}
		}
	}
	if c.origin, err = cu.MakeEvent(cu.DefaultEvent); err != nil {
		return nil, fmt.Errorf("gpu: creating an event: %v", err)
	}
	return c, nil
}

// deviceBytes is the device memory of the buffers (0 for nil slots).
func (c *cudaSlots) deviceBytes() int64 {
	if c == nil {
		return 0
	}
	var b int64
	for s := range 2 {
		b += c.din[s].bytes + c.dout[s].bytes
	}
	return b
}

// ensure makes every slot hold nin input and nout output floats, keeping
// the buffers when they are large enough.
func (c *cudaSlots) ensure(nin, nout int) error {
	for s := range 2 {
		if len(c.hin[s].f) >= nin && len(c.hout[s].f) >= nout {
			continue
		}
		if err := c.streams[s].Synchronize(); err != nil {
			return fmt.Errorf("gpu: waiting for a stream: %v", err)
		}
		c.grows++
		_ = c.hin[s].free()
		_ = c.hout[s].free()
		c.din[s].free()
		c.dout[s].free()
		var err error
		if c.hin[s], err = allocPinned(nin); err != nil {
			return err
		}
		if c.hout[s], err = allocPinned(nout); err != nil {
			return err
		}
		if c.din[s], err = alloc(int64(nin)*4, fmt.Sprintf("input chunk buffer %d", s)); err != nil {
			return err
		}
		if c.dout[s], err = alloc(int64(nout)*4, fmt.Sprintf("discharge chunk buffer %d", s)); err != nil {
			return err
		}
	}
	return nil
}

func (c *cudaSlots) hostIn(s int) []float32  { return c.hin[s].f }
func (c *cudaSlots) hostOut(s int) []float32 { return c.hout[s].f }

// resetTiming forgets the timeline (at the start of a call).
func (c *cudaSlots) resetTiming() {
	c.tl.reset()
	c.originSet, c.originDone = false, false
	c.lastEnd, c.timedOnce = [2]float64{}, [2]bool{}
}

// timing measures the timeline read so far; host is the host's packing time.
func (c *cudaSlots) timing(host float64) Timing {
	t := c.tl.timing()
	t.HostSeconds = host
	return t
}

// record records event e of slot s on its stream.
func (c *cudaSlots) record(s, e int) error {
	if err := c.ev[s][e].Record(c.streams[s]); err != nil {
		return fmt.Errorf("gpu: recording an event: %v", err)
	}
	return nil
}

// begin starts a chunk on slot s whose input comes from an operation of
// kind in (a copy, or the interpolation kernel).
func (c *cudaSlots) begin(s int, in opKind) error {
	if !c.originSet {
		if err := c.origin.Record(c.streams[s]); err != nil {
			return fmt.Errorf("gpu: recording an event: %v", err)
		}
		c.originSet = true
	}
	c.inKind[s] = in
	return c.record(s, 0)
}

// upload queues the copy of the first bytes of slot s's host input.
func (c *cudaSlots) upload(s int, bytes int64) error {
	if err := cu.MemcpyHtoDAsync(c.din[s].p, c.hin[s].p, bytes, c.streams[s]); err != nil {
		return fmt.Errorf("gpu: copying a runoff chunk (%s) to the device: %v", mib(bytes), err)
	}
	return nil
}

// download queues the copy of the first bytes of slot s's device output,
// the chunk's last operation.
func (c *cudaSlots) download(s int, bytes int64) error {
	if err := c.record(s, 3); err != nil {
		return err
	}
	if err := cu.MemcpyDtoHAsync(c.hout[s].p, c.dout[s].p, bytes, c.streams[s]); err != nil {
		return fmt.Errorf("gpu: copying a discharge chunk (%s) from the device: %v", mib(bytes), err)
	}
	if err := c.record(s, 4); err != nil {
		return err
	}
	c.timed[s] = true
	return nil
}

// timedLaunch queues a launch on slot s between the slot's two events.
func (c *cudaSlots) timedLaunch(s int, name string, total int64, threads int, args ...any) error {
	if err := c.record(s, 1); err != nil {
		return err
	}
	if err := c.d.launch(name, total, threads, c.streams[s], args...); err != nil {
		return err
	}
	return c.record(s, 2)
}

// wait blocks until slot s's stream is idle and reads its chunk's events
// into the timeline.
func (c *cudaSlots) wait(s int) error {
	if err := c.streams[s].Synchronize(); err != nil {
		return fmt.Errorf("gpu: a kernel failed: %v", err)
	}
	if !c.timed[s] {
		return nil
	}
	c.timed[s] = false
	if !c.originDone { // recorded first, maybe on the other stream
		if err := c.origin.Synchronize(); err != nil {
			return fmt.Errorf("gpu: waiting for an event: %v", err)
		}
		c.originDone = true
	}
	var at [5]float64
	for e := range at {
		ms, err := c.origin.Elapsed(c.ev[s][e])
		if err != nil {
			return fmt.Errorf("gpu: reading event times: %v", err)
		}
		at[e] = ms / 1e3
	}
	c.tl.add(
		op{at[0], at[1], c.inKind[s]},
		op{at[1], at[2], opConv},
		op{at[2], at[3], opCompute}, // the transfer add, or nothing
		op{at[3], at[4], opCopy})
	c.lastEnd[s], c.timedOnce[s] = at[4], true
	// A slot's next chunk starts after its last one ended.
	if len(c.tl.ops) > timelineKeep && c.timedOnce[0] && c.timedOnce[1] {
		c.tl.cut(min(c.lastEnd[0], c.lastEnd[1]))
	}
	return nil
}

func (c *cudaSlots) close() {
	for s := range 2 {
		if c.streams[s] != (cu.Stream{}) {
			_ = c.streams[s].Synchronize()
			_ = c.streams[s].Destroy()
		}
		for e := range c.ev[s] {
			if c.ev[s][e] != (cu.Event{}) {
				_ = cu.DestroyEvent(&c.ev[s][e])
			}
		}
		_ = c.hin[s].free()
		_ = c.hout[s].free()
		c.din[s].free()
		c.dout[s].free()
	}
	if c.origin != (cu.Event{}) {
		_ = cu.DestroyEvent(&c.origin)
	}
}
