//go:build linux

package data

import (
	"syscall"
	"unsafe"
)

// adviseHuge asks the kernel to back a large buffer about to be filled with
// huge pages (where transparent huge pages are on "madvise"): a 1 GB
// tensor filled in scattered rows then takes 500 page faults rather than
// 250,000, and far fewer TLB misses. Only whole 2 MiB pages inside the
// buffer are advised; failure is harmless.
func adviseHuge(b []float32) {
	const huge = 2 << 20
	if len(b)*4 < 4*huge {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	end := start + uintptr(len(b))*4
	lo, hi := (start+huge-1)&^(huge-1), end&^(huge-1)
	if hi <= lo {
		return
	}
	all := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b)*4)
	_ = syscall.Madvise(all[lo-start:hi-start], 14) // MADV_HUGEPAGE
}
