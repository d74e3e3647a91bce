//go:build cuda || cudaemu

package gpu

import (
	"fmt"

	"github.com/diffroute-go/route/gpu/internal/cu"

	"github.com/diffroute-go/route/diffroute"
)

// devKernel is a kernel on the device: a Router's, or a staged run's
// cluster's.
type devKernel struct {
	bs                            *diffroute.BlockSparseKernel
	vals, rowTiles, tileCol, size devBuf
}

func (k *devKernel) free() {
	for _, b := range []*devBuf{&k.vals, &k.rowTiles, &k.tileCol, &k.size} {
		b.free()
	}
}

// uploadKernel copies bs to the device; vals, when not empty, are its taps
// already there (built on the device) and become the kernel's. It runs on
// the device goroutine and frees what it allocated on error.
func uploadKernel(bs *diffroute.BlockSparseKernel, vals devBuf) (k *devKernel, err error) {
	k = &devKernel{bs: bs, vals: vals}
	defer func() {
		if err != nil {
			k.free()
			k = nil
		}
	}()
	if vals.bytes == 0 {
		if k.vals, err = upload(bs.Vals, "the block-sparse kernel"); err != nil {
			return nil, err
		}
	}
	if k.rowTiles, err = upload(bs.RowTiles, "the kernel's row index"); err != nil {
		return nil, err
	}
	if k.tileCol, err = upload(bs.TileCol, "the kernel's tile columns"); err != nil {
		return nil, err
	}
	k.size, err = upload(bs.Size, "the kernel's row lengths")
	return k, err
}

// cudaConv is the one device pipeline of the CUDA backend: the clusterDevice
// of a Router (one job per Route or BackwardRunoff call: the whole network,
// no transfers) and of a StagedBackend (one job per cluster chunk). Its
// slots are kept across jobs. Its methods are called from the routing
// goroutine and run their CUDA calls on the device goroutine, so that the
// pipeline's packing and unpacking overlap with the device.
type cudaConv struct {
	d     *Device
	opts  RouterOptions
	pix   *DevicePixels                             // resident pixels, or nil
	built func(*diffroute.BlockSparseKernel) devBuf // taps the device built, or nil

	slots   *cudaSlots
	job     *clusterJob
	tr      devTransfers
	it      devInterp
	downPos devBuf // adjoint jobs: the kernel's downstream positions
}

func (c *cudaConv) uploadKernel(bs *diffroute.BlockSparseKernel) (any, error) {
	var vals devBuf
	if c.built != nil {
		vals = c.built(bs)
	}
	var k *devKernel
	err := c.d.do(func() (err error) {
		k, err = uploadKernel(bs, vals)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (c *cudaConv) freeKernel(dk any) {
	_ = c.d.do(func() error { dk.(*devKernel).free(); return nil })
}

// chunkSteps picks the time chunk of job j: what the device memory budget
// (free memory and the slots already held, when RouterOptions.MemoryBudget
// is 0) leaves after the job's tables, the pinned host budget and
// RouterOptions.ChunkSteps allow.
func (c *cudaConv) chunkSteps(j *clusterJob) (int, error) {
	var tc int
	err := c.d.do(func() error {
		free, _, err := cu.MemInfo()
		if err != nil {
			return fmt.Errorf("gpu: memory info: %v", err)
		}
		budget := c.opts.MemoryBudget
		if budget == 0 {
			budget = (free + c.slots.deviceBytes()) / 10 * 8 // kept slots count as free
		}
		if tc, err = jobChunkSteps(budget, j); err != nil {
			return err
		}
		htc, err := chunkSteps(c.opts.HostBudget, j.B, j.bs.N, j.hist, j.T-j.warm)
		if err != nil {
			return fmt.Errorf("%v (pinned host buffers)", err)
		}
		tc = min(tc, htc)
		if c.opts.ChunkSteps > 0 {
			tc = min(tc, c.opts.ChunkSteps)
		}
		return nil
	})
	return tc, err
}

// resetTiming starts a new timeline (a Router call).
func (c *cudaConv) resetTiming() {
	_ = c.d.do(func() error {
		if c.slots != nil {
			c.slots.resetTiming()
		}
		return nil
	})
}

// timing measures the timeline so far; host is the host's packing time.
func (c *cudaConv) timing(host float64) Timing {
	t := Timing{HostSeconds: host}
	_ = c.d.do(func() error {
		if c.slots != nil {
			t = c.slots.timing(host)
		}
		return nil
	})
	return t
}

func (c *cudaConv) load(j *clusterJob, tc int) error {
	return c.d.do(func() error {
		var err error
		if c.slots == nil {
			if c.slots, err = newSlots(c.d); err != nil {
				return err
			}
		}
		// The slots grow when a job needs longer chunks.
		if err := c.slots.ensure(j.B*j.bs.N*(j.hist+tc), j.B*j.bs.N*tc); err != nil {
			return err
		}
		c.job = j
		if j.tr != nil {
			if c.tr, err = uploadTransfers(j.tr); err != nil {
				return err
			}
		}
		if j.itab != nil {
			if c.it, err = uploadInterp(j.itab); err != nil {
				return err
			}
		}
		if j.adj {
			c.downPos, err = upload(downPositions(j.bs, j.kr.Network()), "the kernel's downstream positions")
		}
		return err
	})
}

func (c *cudaConv) unload() {
	_ = c.d.do(func() error { c.unloadLocked(); return nil })
}

// unloadLocked runs on the device goroutine.
func (c *cudaConv) unloadLocked() {
	if c.slots != nil {
		for s := range 2 {
			_ = c.slots.wait(s)
		}
	}
	c.tr.free()
	c.it.free()
	c.downPos.free()
	c.job = nil
}

// close frees the slots and what a job left loaded.
func (c *cudaConv) close() error {
	return c.d.do(func() error {
		c.unloadLocked()
		if c.slots != nil {
			c.slots.close()
			c.slots = nil
		}
		return nil
	})
}

func (c *cudaConv) hostIn(s int) []float32  { return c.slots.hostIn(s) }
func (c *cudaConv) hostOut(s int) []float32 { return c.slots.hostOut(s) }

func (c *cudaConv) wait(s int) error {
	return c.d.do(func() error { return c.slots.wait(s) })
}

// run queues chunk ch of the current job on slot s: its input (upload, or
// interpolation of resident pixels), the convolution (or its adjoint), the
// transfer-add kernel, and the download.
func (c *cudaConv) run(s int, ch chunk) error {
	return c.d.do(func() error {
		j, sl, d := c.job, c.slots, c.d
		k := j.dk.(*devKernel)
		n := int64(j.bs.N)
		nb := int64(j.B)
		threads := c.opts.Threads
		st := sl.streams[s]
		in := opCopy
		if j.pix != nil {
			in = opCompute
		}
		if err := sl.begin(s, in); err != nil {
			return err
		}
		if j.pix == nil {
			if err := sl.upload(s, nb*n*int64(ch.TX())*4); err != nil {
				return err
			}
		} else {
			err := d.launch(kernelInterpWin, nb*n*int64(ch.TX()), threads, st,
				sl.din[s].p, c.pix.buf.p, c.it.wStart.p, c.it.pixel.p, c.it.weight.p,
				n, int64(j.pix.npix), nb, int64(ch.TX()), int64(j.pix.nt), int64(j.psFor(ch)))
			if err != nil {
				return err
			}
		}
		var err error
		if j.adj {
			err = sl.timedLaunch(s, kernelBSConvAdj, nb*n*int64(ch.Len), threads,
				sl.dout[s].p, sl.din[s].p, k.vals.p, k.rowTiles.p, c.downPos.p,
				n, int64(j.bs.B), int64(j.bs.Taps), nb, int64(ch.TX()), int64(ch.Hist))
		} else {
			err = sl.timedLaunch(s, kernelBSConv, nb*n*int64(ch.Len), threads,
				sl.dout[s].p, sl.din[s].p, k.vals.p, k.rowTiles.p, k.tileCol.p, k.size.p,
				n, int64(j.bs.B), int64(j.bs.Taps), nb, int64(ch.TX()), int64(ch.Hist))
		}
		if err != nil {
			return err
		}
		if t := j.tr; t != nil {
			ng := int64(len(t.groupRow))
			err := d.launch(kernelTransferAdd, ng*nb*int64(ch.Len), threads, st,
				sl.dout[s].p, c.tr.z.p, c.tr.kf.p, c.tr.groupStart.p, c.tr.groupRow.p, c.tr.taskIn.p, c.tr.taskOff.p,
				ng, n, nb, int64(ch.Len), int64(ch.T0), int64(j.kr.Options().SubSteps), int64(t.wf), int64(t.nin), int64(t.tz))
			if err != nil {
				return err
			}
		}
		return sl.download(s, nb*n*int64(ch.Len)*4)
	})
}

var _ clusterDevice = (*cudaConv)(nil)
