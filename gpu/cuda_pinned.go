//go:build cuda || cudaemu

package gpu

import (
	"fmt"
	"unsafe"

	"github.com/diffroute-go/route/gpu/internal/cu"
)

// pinned is page-locked host memory (cuMemHostAlloc), so that asynchronous
// copies overlap with kernels. It must be allocated and freed on the thread
// that owns the CUDA context.
type pinned struct {
	p unsafe.Pointer
	f []float32
}

func allocPinned(nfloat int) (pinned, error) {
	if nfloat == 0 {
		return pinned{}, nil
	}
	p, err := cu.HostAlloc(int64(nfloat) * 4)
	if err != nil {
		return pinned{}, fmt.Errorf("gpu: cannot allocate %s of pinned host memory: %v", mib(int64(nfloat)*4), err)
	}
	return pinned{p: p, f: unsafe.Slice((*float32)(p), nfloat)}, nil
}

func (m *pinned) free() error {
	if m.p == nil {
		return nil
	}
	err := cu.HostFree(m.p)
	*m = pinned{}
	if err != nil {
		return fmt.Errorf("gpu: freeing pinned host memory: %v", err)
	}
	return nil
}
