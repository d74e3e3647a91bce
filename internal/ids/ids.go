// Package ids sorts and looks up reach ids by the million without maps: a
// radix sort and a sorted index with a bucket table, which touch memory in
// long runs where a map would take a cache miss or two per id.
package ids

import (
	"math/bits"
	"runtime"
	"sync"
)

// SortPositions returns the positions 0..len(ids)-1 ordered by id, equal ids
// in position order (a stable LSD radix sort: O(n) in passes of 11 bits over
// the range of the ids).
func SortPositions(ids []int64) []int32 {
	_, pos := sortKeys(ids, false)
	return pos
}

// sortKeys returns the positions of ids in sorted order (ties in position
// order) and, when keep, the sorted ids.
func sortKeys(ids []int64, keep bool) ([]int64, []int32) {
	n := len(ids)
	pos := make([]int32, n)
	if n == 0 {
		return nil, pos
	}
	lo, hi := ids[0], ids[0]
	for _, v := range ids {
		lo, hi = min(lo, v), max(hi, v)
	}
	span := uint64(hi) - uint64(lo)
	if span <= 1<<32-1 {
		k := make([]uint32, n)
		for i, v := range ids {
			k[i] = uint32(uint64(v) - uint64(lo))
			pos[i] = int32(i)
		}
		k, pos = radix(k, pos, bits.Len64(span))
		if !keep {
			return nil, pos
		}
		out := make([]int64, n)
		for i, v := range k {
			out[i] = int64(uint64(v) + uint64(lo))
		}
		return out, pos
	}
	k := make([]uint64, n)
	for i, v := range ids {
		k[i] = uint64(v) - uint64(lo)
		pos[i] = int32(i)
	}
	k, pos = radix(k, pos, bits.Len64(span))
	if !keep {
		return nil, pos
	}
	out := make([]int64, n)
	for i, v := range k {
		out[i] = int64(v + uint64(lo))
	}
	return out, pos
}

const digit = 11

// radix sorts keys (of width bits) with their positions, stably.
func radix[K uint32 | uint64](keys []K, pos []int32, width int) ([]K, []int32) {
	n := len(keys)
	passes := (width + digit - 1) / digit
	if passes == 0 {
		return keys, pos
	}
	k2, p2 := make([]K, n), make([]int32, n)
	var count [1 << digit]int
	for p := 0; p < passes; p++ {
		shift := uint(p * digit)
		clear(count[:])
		for _, v := range keys {
			count[(v>>shift)&(1<<digit-1)]++
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i, v := range keys {
			d := (v >> shift) & (1<<digit - 1)
			o := count[d]
			count[d] = o + 1
			k2[o], p2[o] = v, pos[i]
		}
		keys, k2, pos, p2 = k2, keys, p2, pos
	}
	return keys, pos
}

// Index finds the position of an id among a fixed list of ids.
type Index struct {
	keys   []int64 // ids, sorted
	pos    []int32 // position of keys[k] in the list
	lo     int64   // smallest id
	shift  uint
	bucket []int32 // bucket[b]: first k with (keys[k]-lo)>>shift >= b
}

// NewIndex indexes ids (which may repeat: Find then returns the first
// position, and Repeat finds the repeats).
func NewIndex(ids []int64) *Index {
	x := &Index{}
	x.keys, x.pos = sortKeys(ids, true)
	n := len(ids)
	if n == 0 {
		return x
	}
	x.lo = x.keys[0]
	span := uint64(x.keys[n-1]) - uint64(x.lo)
	nb := 1
	for nb < n/2 {
		nb *= 2
	}
	w := bits.Len64(span)
	if lb := bits.Len(uint(nb)) - 1; w > lb {
		x.shift = uint(w - lb)
	}
	nbk := int(span>>x.shift) + 1
	x.bucket = make([]int32, nbk+1)
	b := 0
	for k, v := range x.keys {
		kb := int((uint64(v) - uint64(x.lo)) >> x.shift)
		for b <= kb {
			x.bucket[b] = int32(k)
			b++
		}
	}
	for ; b <= nbk; b++ {
		x.bucket[b] = int32(n)
	}
	return x
}

// Find returns the (first) position of id, or -1 when it is not listed.
func (x *Index) Find(id int64) int32 {
	if len(x.keys) == 0 || id < x.lo || id > x.keys[len(x.keys)-1] {
		return -1
	}
	b := (uint64(id) - uint64(x.lo)) >> x.shift
	lo, end := int(x.bucket[b]), int(x.bucket[b+1])
	// The first key >= id lies in [lo, hi].
	for hi := end; hi-lo > 8; {
		m := int(uint(lo+hi) >> 1)
		if x.keys[m] < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for k := lo; k < end; k++ {
		if x.keys[k] == id {
			return x.pos[k]
		}
		if x.keys[k] > id {
			break
		}
	}
	return -1
}

// FindAll sets dst[i] to Find(ids[i]), on every core.
func (x *Index) FindAll(dst []int32, ids []int64) {
	Parallel(len(ids), 1<<14, func(a, b int) {
		for i := a; i < b; i++ {
			dst[i] = x.Find(ids[i])
		}
	})
}

// Repeat returns the earliest position r whose id occurs at an earlier
// position, and that earlier position's first; ok is false when no id
// repeats.
func (x *Index) Repeat() (first, r int32, ok bool) {
	r = -1
	for k := 1; k < len(x.keys); k++ {
		if x.keys[k] == x.keys[k-1] && (r < 0 || x.pos[k] < r) {
			// Ties are in position order: keys[k] repeats the first of its run.
			f := k - 1
			for f > 0 && x.keys[f-1] == x.keys[k] {
				f--
			}
			first, r = x.pos[f], x.pos[k]
		}
	}
	return first, r, r >= 0
}

// Parallel calls fn on consecutive ranges [a, b) covering [0, n), on every
// core, ranges of at least grain items.
func Parallel(n, grain int, fn func(a, b int)) {
	w := runtime.GOMAXPROCS(0)
	if w <= 1 || n < 2*grain {
		fn(0, n)
		return
	}
	w = min(w, n/grain)
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		a, b := k*n/w, (k+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(a, b)
		}()
	}
	wg.Wait()
}
