//go:build cuda

package gpu

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
)

// pinned is page-locked host memory (cuMemHostAlloc: gorgonia.org/cu has no
// binding for it), so that asynchronous copies overlap with kernels. It must
// be allocated and freed on the thread that owns the CUDA context.
type pinned struct {
	p unsafe.Pointer
	f []float32
}

func allocPinned(nfloat int) (pinned, error) {
	if nfloat == 0 {
		return pinned{}, nil
	}
	var p unsafe.Pointer
	if r := C.dr_host_alloc(&p, C.size_t(nfloat)*4); r != C.CUDA_SUCCESS {
		return pinned{}, fmt.Errorf("gpu: cannot allocate %s of pinned host memory: CUDA error %d", mib(int64(nfloat)*4), int(r))
	}
	return pinned{p: p, f: unsafe.Slice((*float32)(p), nfloat)}, nil
}

func (m *pinned) free() error {
	if m.p == nil {
		return nil
	}
	r := C.dr_host_free(m.p)
	*m = pinned{}
	if r != C.CUDA_SUCCESS {
		return fmt.Errorf("gpu: freeing pinned host memory: CUDA error %d", int(r))
	}
	return nil
}
