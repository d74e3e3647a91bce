//go:build cuda || cudaemu

package gpu

import (
	"context"
	"fmt"
	"sync"
	"unsafe"

	"github.com/diffroute-go/route/gpu/internal/cu"

	"github.com/diffroute-go/route/diffroute"
)

// DevicePixels is pixel runoff kept resident on a device: every pixel the
// interpolation weights use, for a window of source steps, screened on the
// host once (missing values per the fill policy) and uploaded. A
// StagedBackend made with it interpolates each cluster's runoff on the
// device (dr_interp_window) straight into the convolution's input buffers.
type DevicePixels struct {
	d   *Device
	m   *pixelMatrix
	buf devBuf
}

// NewDevicePixels reads the window po of src for every pixel that w names
// and uploads it to d.
func NewDevicePixels(d *Device, w *diffroute.Weights, src diffroute.PixelSource, po PixelOptions) (*DevicePixels, error) {
	m, err := newPixelMatrix(w, src, po)
	if err != nil {
		return nil, err
	}
	p := &DevicePixels{d: d, m: m}
	err = d.do(func() error {
		var err error
		p.buf, err = upload(m.data, fmt.Sprintf("resident pixel runoff (%d pixels × %d steps)", m.npix, m.nt))
		return err
	})
	if err != nil {
		return nil, err
	}
	m.data = nil // the device holds it now
	return p, nil
}

// Bytes is the device memory of the pixel matrix.
func (p *DevicePixels) Bytes() int64 { return p.m.bytes() }

// Steps is the number of resident steps.
func (p *DevicePixels) Steps() int { return p.m.nt }

// Close frees the matrix on the device.
func (p *DevicePixels) Close() error {
	return p.d.do(func() error { p.buf.free(); return nil })
}

// Interpolate returns the catchment runoff of rivers (rows in that order)
// for resident steps [t0, t1), interpolated on the device and downloaded;
// as diffroute.Interpolator.Interpolate of source steps [First+t0, First+t1).
func (p *DevicePixels) Interpolate(ctx context.Context, rivers []int64, t0, t1 int) (*diffroute.DataTensor, error) {
	if t0 < 0 || t1 > p.m.nt || t0 > t1 {
		return nil, fmt.Errorf("gpu: steps [%d, %d) outside the %d resident steps", t0, t1, p.m.nt)
	}
	tab, err := p.m.tablesFor(rivers)
	if err != nil {
		return nil, err
	}
	x := diffroute.NewDataTensor(1, rivers, t1-t0)
	if len(x.Data) == 0 {
		return x, ctx.Err()
	}
	err = p.d.do(func() error {
		dt, err := uploadInterp(tab)
		if err != nil {
			return err
		}
		defer dt.free()
		out, err := alloc(int64(len(x.Data))*4, "interpolated runoff")
		if err != nil {
			return err
		}
		defer out.free()
		err = p.d.launch(kernelInterpWin, int64(len(x.Data)), 256, cu.Stream{},
			out.p, p.buf.p, dt.wStart.p, dt.pixel.p, dt.weight.p,
			int64(len(rivers)), int64(p.m.npix), int64(1), int64(t1-t0), int64(p.m.nt), int64(t0))
		if err != nil {
			return err
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&x.Data[0]), out.p, out.bytes); err != nil {
			return fmt.Errorf("gpu: copying interpolated runoff from the device: %v", err)
		}
		return nil
	})
	return x, err
}

// devInterp is the device copy of interpTables.
type devInterp struct{ wStart, pixel, weight devBuf }

func uploadInterp(t *interpTables) (d devInterp, err error) {
	defer func() {
		if err != nil {
			d.free()
		}
	}()
	if d.wStart, err = upload(t.wStart, "interpolation row index"); err != nil {
		return d, err
	}
	if d.pixel, err = upload(t.pixel, "interpolation pixel columns"); err != nil {
		return d, err
	}
	d.weight, err = upload(t.weight, "interpolation weights")
	return d, err
}

func (d *devInterp) free() {
	d.wStart.free()
	d.pixel.free()
	d.weight.free()
}

// devTransfers is the device copy of transferTables.
type devTransfers struct{ groupStart, groupRow, taskIn, taskOff, kf, z devBuf }

func uploadTransfers(t *transferTables) (d devTransfers, err error) {
	defer func() {
		if err != nil {
			d.free()
		}
	}()
	if d.groupStart, err = upload(t.groupStart, "transfer groups"); err != nil {
		return d, err
	}
	if d.groupRow, err = upload(t.groupRow, "transfer rows"); err != nil {
		return d, err
	}
	if d.taskIn, err = upload(t.taskIn, "transfer tasks"); err != nil {
		return d, err
	}
	if d.taskOff, err = upload(t.taskOff, "transfer kernel offsets"); err != nil {
		return d, err
	}
	if d.kf, err = upload(t.kf, "polyphase transfer kernels"); err != nil {
		return d, err
	}
	d.z, err = upload(t.z, fmt.Sprintf("fine transfer inflow (%d series)", t.nin))
	return d, err
}

func (d *devTransfers) free() {
	for _, b := range []*devBuf{&d.groupStart, &d.groupRow, &d.taskIn, &d.taskOff, &d.kf, &d.z} {
		b.free()
	}
}

// devKernel is a cluster's kernel on the device.
type devKernel struct {
	bs                            *diffroute.BlockSparseKernel
	vals, rowTiles, tileCol, size devBuf
}

func (k *devKernel) free() {
	for _, b := range []*devBuf{&k.vals, &k.rowTiles, &k.tileCol, &k.size} {
		b.free()
	}
}

// StagedBackend routes the clusters of a diffroute.StagedRouter on a GPU:
// set the staged router's ClusterRouter to Factory(). Each cluster's kernel
// (built on the CPU) is uploaded once per build (kept with KeepKernels);
// each cluster chunk's fine transfer inflow and the polyphase transfer
// kernels (built on the CPU) are uploaded and added to the convolution's
// output on the device by dr_transfer_add; with resident pixels the runoff
// is interpolated on the device. The two slots (streams, pinned and device
// buffers) are kept across clusters and chunks. Not safe for concurrent use
// by several staged routers.
type StagedBackend struct {
	d    *Device
	opts RouterOptions
	pix  *DevicePixels
	core *stagedCore
	dev  *cudaStagedDev

	mu    sync.Mutex
	built map[*diffroute.BlockSparseKernel]devBuf // device-built taps, until uploadKernel takes them
}

// KernelBuilder is the staged router's KernelBuilder: cluster kernels built
// from spectra are built on the device (as for Router; see
// RouterOptions.CPUBuild), and their taps stay there for the cluster's
// router; others are built on the CPU.
func (b *StagedBackend) KernelBuilder() func(ctx context.Context, net *diffroute.Network, opts diffroute.Options) (*diffroute.KernelRouter, error) {
	return func(ctx context.Context, net *diffroute.Network, opts diffroute.Options) (*diffroute.KernelRouter, error) {
		kr, vals, err := b.d.buildKernel(ctx, net, opts, b.opts)
		if err != nil || vals.bytes == 0 {
			return kr, err
		}
		b.mu.Lock()
		if b.built == nil {
			b.built = map[*diffroute.BlockSparseKernel]devBuf{}
		}
		b.built[kr.BlockSparse()] = vals
		b.mu.Unlock()
		return kr, nil
	}
}

// takeBuilt returns the device copy of bs's taps if the device built them.
func (b *StagedBackend) takeBuilt(bs *diffroute.BlockSparseKernel) (devBuf, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.built[bs]
	delete(b.built, bs)
	return v, ok
}

// NewStagedBackend prepares staged routing on d; pixels may be nil (runoff
// then comes from the staged router's cluster runoff).
func NewStagedBackend(d *Device, ropts *RouterOptions, pixels *DevicePixels) (*StagedBackend, error) {
	var ro RouterOptions
	if ropts != nil {
		ro = *ropts
	}
	ro, err := ro.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &StagedBackend{d: d, opts: ro, pix: pixels}
	b.dev = &cudaStagedDev{b: b}
	b.core = &stagedCore{dev: b.dev, chunk: b.chunkSteps}
	if pixels != nil {
		b.core.pix = pixels.m
	}
	return b, nil
}

// Factory is the staged router's ClusterRouter.
func (b *StagedBackend) Factory() diffroute.ClusterRouterFactory { return b.core.factory() }

// ConvSeconds is the device time of the convolutions so far (CUDA events).
func (b *StagedBackend) ConvSeconds() float64 { return b.Timing().ConvSeconds }

// Timing says where device time went so far, over every cluster and time
// chunk routed by this backend (CUDA events; see Timing).
func (b *StagedBackend) Timing() Timing {
	var t Timing
	_ = b.d.do(func() error {
		if b.dev.slots != nil {
			t = b.dev.slots.timing(0)
		}
		return nil
	})
	t.HostSeconds = float64(b.core.host.Load()) / 1e9
	return t
}

// Close frees the slots (not the pixels, which the caller closes).
func (b *StagedBackend) Close() error {
	b.mu.Lock()
	built := b.built
	b.built = nil
	b.mu.Unlock()
	return b.d.do(func() error {
		for _, v := range built { // built but never routed
			v.free()
		}
		b.dev.unloadLocked()
		if b.dev.slots != nil {
			b.dev.slots.close()
			b.dev.slots = nil
		}
		return nil
	})
}

// chunkSteps sizes a job's chunks from the device budget.
func (b *StagedBackend) chunkSteps(j *clusterJob) (int, error) {
	var tc int
	err := b.d.do(func() error {
		free, _, err := cu.MemInfo()
		if err != nil {
			return fmt.Errorf("gpu: memory info: %v", err)
		}
		budget := b.opts.MemoryBudget
		if budget == 0 {
			budget = (free + b.dev.slots.deviceBytes()) / 10 * 8
		}
		if tc, err = jobChunkSteps(budget, j); err != nil {
			return err
		}
		htc, err := chunkSteps(b.opts.HostBudget, j.B, j.bs.N, j.hist, j.T-j.warm)
		if err != nil {
			return fmt.Errorf("%v (pinned host buffers)", err)
		}
		tc = min(tc, htc)
		if b.opts.ChunkSteps > 0 {
			tc = min(tc, b.opts.ChunkSteps)
		}
		return nil
	})
	return tc, err
}

// cudaStagedDev is the clusterDevice of a StagedBackend. Its methods are
// called from the staged router's goroutine and run their CUDA calls on the
// device goroutine; the pipeline's packing and unpacking stay on the
// caller's, overlapping with the device.
type cudaStagedDev struct {
	b     *StagedBackend
	slots *cudaSlots
	job   *clusterJob
	tr    devTransfers
	it    devInterp
}

func (c *cudaStagedDev) uploadKernel(bs *diffroute.BlockSparseKernel) (any, error) {
	k := &devKernel{bs: bs}
	vals, built := c.b.takeBuilt(bs)
	err := c.b.d.do(func() error {
		var err error
		if built {
			k.vals = vals
		} else if k.vals, err = upload(bs.Vals, "a cluster's block-sparse kernel"); err != nil {
			return err
		}
		if k.rowTiles, err = upload(bs.RowTiles, "the kernel's row index"); err != nil {
			return err
		}
		if k.tileCol, err = upload(bs.TileCol, "the kernel's tile columns"); err != nil {
			return err
		}
		k.size, err = upload(bs.Size, "the kernel's row lengths")
		return err
	})
	if err != nil {
		_ = c.b.d.do(func() error { k.free(); return nil })
		return nil, err
	}
	return k, nil
}

func (c *cudaStagedDev) freeKernel(dk any) {
	_ = c.b.d.do(func() error { dk.(*devKernel).free(); return nil })
}

func (c *cudaStagedDev) load(j *clusterJob, tc int) error {
	return c.b.d.do(func() error {
		var err error
		if c.slots == nil {
			if c.slots, err = newSlots(c.b.d); err != nil {
				return err
			}
		}
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
		return nil
	})
}

func (c *cudaStagedDev) unload() {
	_ = c.b.d.do(func() error { c.unloadLocked(); return nil })
}

// unloadLocked runs on the device goroutine.
func (c *cudaStagedDev) unloadLocked() {
	if c.slots != nil {
		for s := range 2 {
			_ = c.slots.wait(s)
		}
	}
	c.tr.free()
	c.it.free()
	c.job = nil
}

func (c *cudaStagedDev) hostIn(s int) []float32  { return c.slots.hostIn(s) }
func (c *cudaStagedDev) hostOut(s int) []float32 { return c.slots.hostOut(s) }

func (c *cudaStagedDev) wait(s int) error {
	return c.b.d.do(func() error { return c.slots.wait(s) })
}

func (c *cudaStagedDev) run(s int, ch chunk) error {
	return c.b.d.do(func() error {
		j, sl, d := c.job, c.slots, c.b.d
		k := j.dk.(*devKernel)
		n := int64(j.bs.N)
		nb := int64(j.B)
		threads := c.b.opts.Threads
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
				sl.din[s].p, c.b.pix.buf.p, c.it.wStart.p, c.it.pixel.p, c.it.weight.p,
				n, int64(j.pix.npix), nb, int64(ch.TX()), int64(j.pix.nt), int64(j.psFor(ch)))
			if err != nil {
				return err
			}
		}
		err := sl.timedLaunch(s, kernelBSConv, nb*n*int64(ch.Len), threads,
			sl.dout[s].p, sl.din[s].p, k.vals.p, k.rowTiles.p, k.tileCol.p, k.size.p,
			n, int64(j.bs.B), int64(j.bs.Taps), nb, int64(ch.TX()), int64(ch.Hist))
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

var _ clusterDevice = (*cudaStagedDev)(nil)
