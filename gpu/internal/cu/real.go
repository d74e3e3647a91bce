//go:build cuda && !cudaemu

package cu

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult dr_host_alloc(void** p, size_t n) { return cuMemHostAlloc(p, n, 0); }
static CUresult dr_host_free(void* p) { return cuMemFreeHost(p); }
*/
import "C"

import (
	"fmt"
	"unsafe"

	cu "gorgonia.org/cu"
)

// Emulated is false: this is the real driver.
const Emulated = false

type (
	DevicePtr = cu.DevicePtr
	Device    = cu.Device
	CUContext = cu.CUContext
	Module    = cu.Module
	Function  = cu.Function
	Stream    = cu.Stream
	Event     = cu.Event
)

const (
	NonBlocking          = cu.NonBlocking
	DefaultEvent         = cu.DefaultEvent
	SchedAuto            = cu.SchedAuto
	MultiprocessorCount  = cu.MultiprocessorCount
	ClockRate            = cu.ClockRate
	MemoryClockRate      = cu.MemoryClockRate
	GlobalMemoryBusWidth = cu.GlobalMemoryBusWidth
)

// OutOfMemory is the driver's CUDA_ERROR_OUT_OF_MEMORY.
var OutOfMemory error = cu.OutOfMemory

var (
	NumDevices      = cu.NumDevices
	GetDevice       = cu.GetDevice
	Version         = cu.Version
	LoadData        = cu.LoadData
	MemInfo         = cu.MemInfo
	MemAlloc        = cu.MemAlloc
	MemFree         = cu.MemFree
	MemcpyHtoD      = cu.MemcpyHtoD
	MemcpyDtoH      = cu.MemcpyDtoH
	MemcpyHtoDAsync = cu.MemcpyHtoDAsync
	MemcpyDtoHAsync = cu.MemcpyDtoHAsync
	MemsetD32       = cu.MemsetD32
	MakeStream      = cu.MakeStream
	MakeEvent       = cu.MakeEvent
	DestroyEvent    = cu.DestroyEvent
	Synchronize     = cu.Synchronize
)

// HostAlloc allocates page-locked host memory, so that asynchronous copies
// overlap with kernels. Call it on the thread that owns the context.
func HostAlloc(bytes int64) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	if r := C.dr_host_alloc(&p, C.size_t(bytes)); r != C.CUDA_SUCCESS {
		return nil, fmt.Errorf("CUDA error %d", int(r))
	}
	return p, nil
}

// HostFree frees HostAlloc's memory.
func HostFree(p unsafe.Pointer) error {
	if r := C.dr_host_free(p); r != C.CUDA_SUCCESS {
		return fmt.Errorf("CUDA error %d", int(r))
	}
	return nil
}
