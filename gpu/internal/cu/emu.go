//go:build cudaemu

package cu

/*
#include <stdlib.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/diffroute-go/route/gpu/kernels"
)

// Emulated is true: the device is the CPU (see the package documentation).
const Emulated = true

type (
	// DevicePtr is the address of an emulated allocation (C memory).
	DevicePtr uintptr
	Device    int
	CUContext struct{ id int }
	Module    struct{ loaded bool }
	Function  struct{ name string }
	Stream    struct{ id int }
	Event     struct{ id int }

	StreamFlags     int
	EventFlags      int
	ContextFlags    int
	DeviceAttribute int
)

const (
	NonBlocking  StreamFlags  = 1
	DefaultEvent EventFlags   = 0
	SchedAuto    ContextFlags = 0
)

const (
	MultiprocessorCount DeviceAttribute = iota
	ClockRate
	MemoryClockRate
	GlobalMemoryBusWidth
)

// OutOfMemory is returned when an allocation would pass the emulated
// device's capacity (DIFFROUTE_EMU_DEVICE_BYTES, default 2 GiB).
var OutOfMemory = errors.New("CUDA_ERROR_OUT_OF_MEMORY (emulated device)")

var emu = struct {
	sync.Mutex
	capacity, used int64
	peak           int64 // most used since ResetPeak
	allocs         map[DevicePtr]emuAlloc
	ids            int
	recorded       map[int]time.Time
}{allocs: map[DevicePtr]emuAlloc{}, recorded: map[int]time.Time{}, capacity: capacity()}

type emuAlloc struct {
	p     unsafe.Pointer
	bytes int64
}

func capacity() int64 {
	if v, err := strconv.ParseInt(os.Getenv("DIFFROUTE_EMU_DEVICE_BYTES"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 2 << 30
}

func nextID() int {
	emu.Lock()
	defer emu.Unlock()
	emu.ids++
	return emu.ids
}

func NumDevices() (int, error) { return 1, nil }

func GetDevice(ordinal int) (Device, error) {
	if ordinal != 0 {
		return 0, fmt.Errorf("no emulated device %d", ordinal)
	}
	return 0, nil
}

func (d Device) MakeContext(ContextFlags) (CUContext, error) { return CUContext{nextID()}, nil }
func (c *CUContext) Destroy() error                          { *c = CUContext{}; return nil }
func (d Device) Name() (string, error)                       { return "emulated device (CPU)", nil }
func (d Device) ComputeCapability() (int, int, error)        { return 8, 0, nil }

// Attributes: 2 multiprocessors at 1 GHz, 1 GHz memory on a 64-bit bus.
func (d Device) Attributes(attrs ...DeviceAttribute) ([]int, error) {
	v := make([]int, len(attrs))
	for i, a := range attrs {
		switch a {
		case MultiprocessorCount:
			v[i] = 2
		case ClockRate, MemoryClockRate:
			v[i] = 1_000_000 // kHz
		case GlobalMemoryBusWidth:
			v[i] = 64
		}
	}
	return v, nil
}

func Version() int { return 0 }

func LoadData(image string) (Module, error) {
	if image == "" {
		return Module{}, errors.New("empty PTX")
	}
	return Module{loaded: true}, nil
}

func (m Module) Function(name string) (Function, error) {
	if !kernels.HasKernel(name) {
		return Function{}, fmt.Errorf("no kernel %s in the emulator", name)
	}
	return Function{name: name}, nil
}

func (m Module) Unload() error { return nil }

// Launch runs the kernel on the CPU; params point at 8-byte arguments.
func (f Function) Launch(gx, gy, gz, bx, by, bz, shared int, s Stream, params []unsafe.Pointer) error {
	if gy != 1 || gz != 1 || by != 1 || bz != 1 || shared != 0 {
		return fmt.Errorf("kernel %s: the emulator runs 1-D grids without shared memory", f.name)
	}
	args := make([]uint64, len(params))
	for i, p := range params {
		args[i] = *(*uint64)(p)
	}
	return kernels.LaunchNamed(f.name, gx, bx, args)
}

func MemInfo() (free, total int64, err error) {
	emu.Lock()
	defer emu.Unlock()
	return emu.capacity - emu.used, emu.capacity, nil
}

func MemAlloc(bytes int64) (DevicePtr, error) {
	if bytes <= 0 {
		return 0, errors.New("CUDA_ERROR_INVALID_VALUE: allocation of 0 bytes")
	}
	emu.Lock()
	defer emu.Unlock()
	if emu.used+bytes > emu.capacity {
		return 0, OutOfMemory
	}
	p := C.calloc(1, C.size_t(bytes))
	if p == nil {
		return 0, OutOfMemory
	}
	d := DevicePtr(uintptr(p))
	emu.allocs[d] = emuAlloc{p, bytes}
	emu.used += bytes
	emu.peak = max(emu.peak, emu.used)
	return d, nil
}

func MemFree(d DevicePtr) error {
	emu.Lock()
	defer emu.Unlock()
	a, ok := emu.allocs[d]
	if !ok {
		return fmt.Errorf("CUDA_ERROR_INVALID_VALUE: freeing %#x, not an allocation", uintptr(d))
	}
	delete(emu.allocs, d)
	emu.used -= a.bytes
	C.free(a.p)
	return nil
}

// device returns the bytes of allocation d, checking that n fit.
func device(d DevicePtr, n int64) ([]byte, error) {
	emu.Lock()
	defer emu.Unlock()
	a, ok := emu.allocs[d]
	if !ok {
		return nil, fmt.Errorf("CUDA_ERROR_INVALID_VALUE: %#x is not the start of an allocation", uintptr(d))
	}
	if n > a.bytes {
		return nil, fmt.Errorf("CUDA_ERROR_INVALID_VALUE: %d bytes at %#x, allocation of %d", n, uintptr(d), a.bytes)
	}
	return unsafe.Slice((*byte)(a.p), n), nil
}

func MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, n int64) error {
	b, err := device(dst, n)
	if err == nil {
		copy(b, unsafe.Slice((*byte)(src), n))
	}
	return err
}

func MemcpyDtoH(dst unsafe.Pointer, src DevicePtr, n int64) error {
	b, err := device(src, n)
	if err == nil {
		copy(unsafe.Slice((*byte)(dst), n), b)
	}
	return err
}

// The asynchronous copies run at once: an emulated stream is the call order.
func MemcpyHtoDAsync(dst DevicePtr, src unsafe.Pointer, n int64, s Stream) error {
	return MemcpyHtoD(dst, src, n)
}

func MemcpyDtoHAsync(dst unsafe.Pointer, src DevicePtr, n int64, s Stream) error {
	return MemcpyDtoH(dst, src, n)
}

func MemsetD32(d DevicePtr, v uint32, n int64) error {
	b, err := device(d, 4*n)
	if err != nil {
		return err
	}
	w := unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), n)
	for i := range w {
		w[i] = v
	}
	return nil
}

func MakeStream(StreamFlags) (Stream, error) { return Stream{nextID()}, nil }
func (s Stream) Synchronize() error          { return nil }
func (s *Stream) Destroy() error             { *s = Stream{}; return nil }
func Synchronize() error                     { return nil }

func MakeEvent(EventFlags) (Event, error) { return Event{nextID()}, nil }

func DestroyEvent(e *Event) error {
	emu.Lock()
	delete(emu.recorded, e.id)
	emu.Unlock()
	*e = Event{}
	return nil
}

func (e Event) Record(Stream) error {
	emu.Lock()
	emu.recorded[e.id] = time.Now()
	emu.Unlock()
	return nil
}

func (e Event) Synchronize() error { return nil }

// Elapsed is the time in milliseconds between two recorded events.
func (e Event) Elapsed(end Event) (float64, error) {
	emu.Lock()
	defer emu.Unlock()
	a, ok1 := emu.recorded[e.id]
	b, ok2 := emu.recorded[end.id]
	if !ok1 || !ok2 {
		return 0, errors.New("CUDA_ERROR_INVALID_HANDLE: event not recorded")
	}
	return float64(b.Sub(a)) / 1e6, nil
}

// HostAlloc allocates host memory (nothing to pin on the emulated device).
func HostAlloc(bytes int64) (unsafe.Pointer, error) {
	p := C.calloc(1, C.size_t(bytes))
	if p == nil {
		return nil, errors.New("out of host memory")
	}
	return p, nil
}

// HostFree frees HostAlloc's memory.
func HostFree(p unsafe.Pointer) error {
	C.free(p)
	return nil
}

// SetCapacity sets the emulated device's memory (tests of out-of-memory
// paths) and returns the previous capacity.
func SetCapacity(bytes int64) int64 {
	emu.Lock()
	defer emu.Unlock()
	old := emu.capacity
	emu.capacity = bytes
	return old
}

// ResetPeak starts a new measurement of Peak.
func ResetPeak() {
	emu.Lock()
	emu.peak = emu.used
	emu.Unlock()
}

// Peak is the most device memory allocated at once since ResetPeak.
func Peak() int64 {
	emu.Lock()
	defer emu.Unlock()
	return emu.peak
}
