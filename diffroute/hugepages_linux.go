package diffroute

import (
	"syscall"
	"unsafe"
)

// hugePageBytes is the size of a transparent huge page on linux/amd64 and
// most arm64 kernels.
const hugePageBytes = 2 << 20

// adviseHugePages asks the kernel to back the 2 MiB-aligned interior of a
// large series with transparent huge pages (where the system enables them
// on request, as "madvise" does): routing reads one short row per reach
// from scattered places of a tensor, and with 4 KiB pages nearly every row
// costs a TLB miss, and every fresh page a fault. Pages already touched
// keep their size; errors are ignored (it is a hint).
func adviseHugePages[E float32 | float64](s []E) {
	var e E
	n := uintptr(len(s)) * unsafe.Sizeof(e)
	if n < 2*hugePageBytes {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	lo := (p + hugePageBytes - 1) &^ (hugePageBytes - 1)
	hi := (p + n) &^ (hugePageBytes - 1)
	if hi <= lo {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s)), lo-p)), hi-lo)
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
