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
	conv *cudaConv

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

// takeBuilt returns the device copy of bs's taps if the device built them
// (empty otherwise).
func (b *StagedBackend) takeBuilt(bs *diffroute.BlockSparseKernel) devBuf {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.built[bs]
	delete(b.built, bs)
	return v
}

// NewStagedBackend prepares staged routing on d; pixels may be nil (runoff
// then comes from the staged router's cluster runoff).
func NewStagedBackend(d *Device, ropts *RouterOptions, pixels *DevicePixels) (*StagedBackend, error) {
	ro, err := ropts.orDefaults()
	if err != nil {
		return nil, err
	}
	b := &StagedBackend{d: d, opts: ro, pix: pixels}
	b.conv = &cudaConv{d: d, opts: ro, pix: pixels, built: b.takeBuilt}
	b.core = &stagedCore{dev: b.conv, chunk: b.conv.chunkSteps}
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
	return b.conv.timing(float64(b.core.host.Load()) / 1e9)
}

// Close frees the slots (not the pixels, which the caller closes).
func (b *StagedBackend) Close() error {
	b.mu.Lock()
	built := b.built
	b.built = nil
	b.mu.Unlock()
	_ = b.d.do(func() error {
		for _, v := range built { // built but never routed
			v.free()
		}
		return nil
	})
	return b.conv.close()
}
