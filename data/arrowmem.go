package data

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Decompression budget of the Feather readers: the bytes of decompressed
// buffers they may hold at once are limited to featherBudgetBase plus
// featherBudgetRatio times the file's size. LZ4 cannot expand data more than
// about 255 times and real runoff tables compress far less than the ratio
// allows, but a corrupted (or hostile) file can declare any decompressed
// length in a buffer's 8-byte prefix, which arrow-go allocates before
// decompressing: 2^40 bytes kills the process with "out of memory".
const (
	featherBudgetBase  = 64 << 20
	featherBudgetRatio = 1024
)

// limitAllocator is a memory.Allocator that holds at most limit bytes at
// once. Beyond that it panics with an error; the Feather readers recover
// panics from arrow-go into errors naming the file.
type limitAllocator struct {
	mem   memory.Allocator
	limit int64
	used  atomic.Int64
}

func newFeatherAllocator(fileSize int) *limitAllocator {
	limit := int64(featherBudgetBase)
	if int64(fileSize) < (1<<62)/featherBudgetRatio {
		limit += int64(fileSize) * featherBudgetRatio
	} else {
		limit = 1 << 62
	}
	return &limitAllocator{mem: memory.DefaultAllocator, limit: limit}
}

func (a *limitAllocator) take(n int) {
	if n < 0 {
		panic(fmt.Errorf("negative buffer size %d", n))
	}
	if a.used.Add(int64(n)) > a.limit {
		a.used.Add(-int64(n))
		panic(fmt.Errorf("decompressed buffers would exceed %d bytes (%d times the file's size plus %d MiB): corrupted length or implausible compression ratio",
			a.limit, featherBudgetRatio, featherBudgetBase>>20))
	}
}

func (a *limitAllocator) Allocate(size int) []byte {
	a.take(size)
	return a.mem.Allocate(size)
}

func (a *limitAllocator) Reallocate(size int, b []byte) []byte {
	if size > len(b) {
		a.take(size - len(b))
	} else {
		a.used.Add(int64(size - len(b)))
	}
	return a.mem.Reallocate(size, b)
}

func (a *limitAllocator) Free(b []byte) {
	a.used.Add(-int64(len(b)))
	a.mem.Free(b)
}
