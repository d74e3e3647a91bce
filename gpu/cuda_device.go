//go:build cuda || cudaemu

package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/diffroute-go/route/gpu/internal/cu"
)

// Device is one CUDA device with its own context. A single goroutine, locked
// to its OS thread, owns the context and runs every CUDA call (contexts are
// bound to threads); the methods hand work to it and wait.
type Device struct {
	info DeviceInfo
	jobs chan func()
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	// Owned by the device goroutine.
	ctx cu.CUContext
	mod cu.Module
	fn  map[string]cu.Function
}

// Open creates a context on device ordinal and loads the kernels (the driver
// JIT-compiles the embedded PTX). Note that gorgonia.org/cu initialises the
// driver when the program starts and exits the process if that fails, so a
// cuda build cannot run on a machine without an NVIDIA driver.
func Open(ordinal int) (*Device, error) {
	d := &Device{jobs: make(chan func()), quit: make(chan struct{}), fn: map[string]cu.Function{}}
	ready := make(chan error, 1)
	d.wg.Add(1)
	go d.own(ordinal, ready)
	if err := <-ready; err != nil {
		d.wg.Wait()
		return nil, err
	}
	return d, nil
}

// own is the device goroutine.
func (d *Device) own(ordinal int, ready chan<- error) {
	defer d.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.init(ordinal); err != nil {
		d.teardown()
		ready <- err
		return
	}
	ready <- nil
	for {
		select {
		case job := <-d.jobs:
			job()
		case <-d.quit:
			d.teardown()
			return
		}
	}
}

func (d *Device) init(ordinal int) error {
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("gpu: cannot count CUDA devices: %v", err)
	}
	if n == 0 {
		return errors.New("gpu: no CUDA device found")
	}
	if ordinal < 0 || ordinal >= n {
		return fmt.Errorf("gpu: no CUDA device %d (there are %d)", ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return fmt.Errorf("gpu: device %d: %v", ordinal, err)
	}
	if d.ctx, err = dev.MakeContext(cu.SchedAuto); err != nil { // current on this thread
		return fmt.Errorf("gpu: cannot create a context on device %d: %v", ordinal, err)
	}
	info := DeviceInfo{Ordinal: ordinal, DriverVersion: cu.Version(), Emulated: cu.Emulated}
	info.Name, _ = dev.Name()
	if info.Major, info.Minor, err = dev.ComputeCapability(); err != nil {
		return fmt.Errorf("gpu: device %d: %v", ordinal, err)
	}
	if info.Major < 8 {
		return fmt.Errorf("gpu: device %d (%s) has compute capability %d.%d; the kernels need 8.0 or newer", ordinal, info.Name, info.Major, info.Minor)
	}
	attrs, err := dev.Attributes(cu.MultiprocessorCount, cu.ClockRate, cu.MemoryClockRate, cu.GlobalMemoryBusWidth)
	if err == nil {
		info.SMs = attrs[0]
		clock, memClock, bus := float64(attrs[1])*1e3, float64(attrs[2])*1e3, float64(attrs[3])
		info.PeakFLOPs = 2 * float64(info.SMs*fp32Lanes(info.Major, info.Minor)) * clock
		info.PeakBandwidth = 2 * memClock * bus / 8 // double data rate
	}
	if info.FreeBytes, info.TotalBytes, err = cu.MemInfo(); err != nil {
		return fmt.Errorf("gpu: device %d: memory info: %v", ordinal, err)
	}
	if d.mod, err = cu.LoadData(ptxSource); err != nil {
		return fmt.Errorf("gpu: the driver cannot load the kernels' PTX on %s: %v", info.Name, err)
	}
	for _, name := range kernelNames {
		f, err := d.mod.Function(name)
		if err != nil {
			return fmt.Errorf("gpu: kernel %s missing from the PTX: %v", name, err)
		}
		d.fn[name] = f
	}
	d.info = info
	return nil
}

func (d *Device) teardown() {
	if d.mod != (cu.Module{}) {
		_ = d.mod.Unload()
	}
	if d.ctx != (cu.CUContext{}) {
		_ = d.ctx.Destroy()
	}
}

// do runs f on the device goroutine and returns its error; a panic in f
// becomes an error.
func (d *Device) do(f func() error) error {
	errc := make(chan error, 1)
	job := func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("gpu: panic on the device goroutine: %v", p)
			}
		}()
		errc <- f()
	}
	select {
	case d.jobs <- job:
		return <-errc
	case <-d.quit:
		return ErrClosed
	}
}

// Info describes the device; FreeBytes is read now.
func (d *Device) Info() DeviceInfo {
	info := d.info
	_ = d.do(func() error {
		free, total, err := cu.MemInfo()
		if err == nil {
			info.FreeBytes, info.TotalBytes = free, total
		}
		return err
	})
	return info
}

// Close destroys the context (freeing everything allocated on it) and stops
// the device goroutine. Routers of the device stop working.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.quit) })
	d.wg.Wait()
	return nil
}

// Device-memory helpers; they run on the device goroutine.

// devBuf is an allocation on the device.
type devBuf struct {
	p     cu.DevicePtr
	bytes int64
}

// alloc allocates bytes on the device; out of memory is reported with the
// request, what it is for and what is free.
func alloc(bytes int64, what string) (devBuf, error) {
	if bytes == 0 {
		return devBuf{}, nil
	}
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		free, total, _ := cu.MemInfo()
		if errors.Is(err, cu.OutOfMemory) {
			return devBuf{}, fmt.Errorf("%w: %s needs %s, %s free of %s", ErrOutOfMemory, what, mib(bytes), mib(free), mib(total))
		}
		return devBuf{}, fmt.Errorf("gpu: allocating %s for %s: %v", mib(bytes), what, err)
	}
	return devBuf{p: p, bytes: bytes}, nil
}

func (b *devBuf) free() {
	if b.bytes != 0 {
		_ = cu.MemFree(b.p)
	}
	*b = devBuf{}
}

// upload allocates a device copy of a Go slice.
func upload[T any](s []T, what string) (devBuf, error) {
	if len(s) == 0 {
		return devBuf{}, nil
	}
	n := int64(len(s)) * int64(unsafe.Sizeof(s[0]))
	b, err := alloc(n, what)
	if err != nil {
		return b, err
	}
	if err := cu.MemcpyHtoD(b.p, unsafe.Pointer(&s[0]), n); err != nil {
		b.free()
		return devBuf{}, fmt.Errorf("gpu: copying %s (%s) to the device: %v", what, mib(n), err)
	}
	return b, nil
}

// gridThreads is the number of threads launch starts for total work items:
// a whole number of blocks, at most 32 blocks per SM (kernels loop over the
// rest with a grid stride).
func (d *Device) gridThreads(total int64, threads int) int64 {
	blocks := (total + int64(threads) - 1) / int64(threads)
	return min(blocks, int64(max(d.info.SMs, 1)*32)) * int64(threads)
}

// launch runs kernel name over total work items with a grid-stride 1-D grid
// of at most 32 blocks per SM. Arguments must be cu.DevicePtr or int64
// values: cu copies 8 bytes from each argument pointer.
func (d *Device) launch(name string, total int64, threads int, stream cu.Stream, args ...any) error {
	if total == 0 {
		return nil
	}
	ptrs := make([]unsafe.Pointer, len(args))
	vals := make([]uint64, len(args)) // kept alive for the call
	for i, a := range args {
		switch v := a.(type) {
		case cu.DevicePtr:
			vals[i] = uint64(v)
		case int64:
			vals[i] = uint64(v)
		default:
			return fmt.Errorf("gpu: kernel %s argument %d is %T, want cu.DevicePtr or int64", name, i, a)
		}
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	blocks := d.gridThreads(total, threads) / int64(threads)
	if err := d.fn[name].Launch(int(blocks), 1, 1, threads, 1, 1, 0, stream, ptrs); err != nil {
		return fmt.Errorf("gpu: launching %s (%d blocks × %d threads): %v", name, blocks, threads, err)
	}
	return nil
}
