//go:build cuda

package gpu

import (
	"fmt"

	"gorgonia.org/cu"
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
	ev        [2][2]cu.Event // per slot: before and after the convolution
	timed     [2]bool        // slot has a convolution whose events are not yet read
	convSecs  float64        // convolution time read so far
	grows     int            // buffer (re)allocations
}

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
		for e := range 2 {
			if c.ev[s][e], err = cu.MakeEvent(cu.DefaultEvent); err != nil {
				return nil, fmt.Errorf("gpu: creating an event: %v", err)
			}
		}
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

// upload queues the copy of the first bytes of slot s's host input.
func (c *cudaSlots) upload(s int, bytes int64) error {
	if err := cu.MemcpyHtoDAsync(c.din[s].p, c.hin[s].p, bytes, c.streams[s]); err != nil {
		return fmt.Errorf("gpu: copying a runoff chunk (%s) to the device: %v", mib(bytes), err)
	}
	return nil
}

// download queues the copy of the first bytes of slot s's device output.
func (c *cudaSlots) download(s int, bytes int64) error {
	if err := cu.MemcpyDtoHAsync(c.hout[s].p, c.dout[s].p, bytes, c.streams[s]); err != nil {
		return fmt.Errorf("gpu: copying a discharge chunk (%s) from the device: %v", mib(bytes), err)
	}
	return nil
}

// timedLaunch queues a launch on slot s between the slot's two events.
func (c *cudaSlots) timedLaunch(s int, name string, total int64, threads int, args ...any) error {
	st := c.streams[s]
	if err := c.ev[s][0].Record(st); err != nil {
		return fmt.Errorf("gpu: recording an event: %v", err)
	}
	if err := c.d.launch(name, total, threads, st, args...); err != nil {
		return err
	}
	if err := c.ev[s][1].Record(st); err != nil {
		return fmt.Errorf("gpu: recording an event: %v", err)
	}
	c.timed[s] = true
	return nil
}

// wait blocks until slot s's stream is idle and adds its timed launch.
func (c *cudaSlots) wait(s int) error {
	if err := c.streams[s].Synchronize(); err != nil {
		return fmt.Errorf("gpu: a kernel failed: %v", err)
	}
	if c.timed[s] {
		ms, err := c.ev[s][0].Elapsed(c.ev[s][1])
		if err != nil {
			return fmt.Errorf("gpu: reading event times: %v", err)
		}
		c.convSecs += ms / 1e3
		c.timed[s] = false
	}
	return nil
}

func (c *cudaSlots) close() {
	for s := range 2 {
		if c.streams[s] != (cu.Stream{}) {
			_ = c.streams[s].Synchronize()
			_ = c.streams[s].Destroy()
		}
		for e := range 2 {
			if c.ev[s][e] != (cu.Event{}) {
				_ = cu.DestroyEvent(&c.ev[s][e])
			}
		}
		_ = c.hin[s].free()
		_ = c.hout[s].free()
		c.din[s].free()
		c.dout[s].free()
	}
}
