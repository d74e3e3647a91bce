package data

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/diffroute-go/route/diffroute"

	"github.com/diffroute-go/route/internal/ids"
)

// A global runoff file is read most often of all: a classic netCDF file's
// (time, reach) float variable is read here straight from the file mapped
// into memory, on every core, instead of through libnetcdf's copies and
// conversions. Values are big-endian IEEE floats at known offsets; the
// result is the same as libnetcdf's read followed by conv.

// directRead switches the direct reader on (tests compare it with
// libnetcdf's reads).
var directRead = true

// directConv is readRunoff's conversion of stored values: fill and missing
// values become NaN, then scale and offset apply.
type directConv struct {
	fill, missing, scale, offset float64
	hasScale, hasOffset          bool
}

func (d *directConv) apply(f float64) float32 {
	if f == d.fill || f == d.missing {
		return float32(math.NaN())
	}
	if d.hasScale {
		f *= d.scale
	}
	if d.hasOffset {
		f += d.offset
	}
	return float32(f)
}

// readClassicDirect reads steps [t0, t0+T) of the time-major variable name
// of the classic file at path into dst, reach c's series at row rowOf[c]
// (c when rowOf is nil). ok is false, with nothing read, when the file or
// variable is not one it reads (not classic, not float or double, not two
// dimensions); libnetcdf then reads it.
func readClassicDirect(path, name string, dst []float32, rowOf []int32, t0, T, N int, d directConv) (ok bool, err error) {
	if !directRead {
		return false, nil
	}
	h, err := classicLayout(path)
	if err != nil || h == nil {
		return false, nil
	}
	v, found := h.variable(name)
	if !found || len(v.dims) != 2 || v.dims[1] != int64(N) || (v.typ != 5 && v.typ != 6) {
		return false, nil
	}
	ts := int64(4)
	if v.typ == 6 {
		ts = 8
	}
	// Offset of step t's slab of N values.
	stride := int64(N) * ts
	if v.rec {
		stride = h.recsize
	} else if v.dims[0] < int64(t0+T) {
		return false, nil
	}
	end := v.begin + int64(t0+T-1)*stride + int64(N)*ts
	if end > h.size || end < 0 {
		return false, nil // libnetcdf explains
	}
	b, unmap, err := mapFile(path)
	if err != nil {
		return false, nil
	}
	defer unmap()
	if int64(len(b)) < end {
		return false, fmt.Errorf("the file is shorter than its header says")
	}
	plain := !d.hasScale && !d.hasOffset && math.IsNaN(d.missing) &&
		(math.IsNaN(d.fill) || float64(float32(d.fill)) == d.fill)
	fill32 := float32(d.fill)
	nan := float32(math.NaN())
	var fault atomic.Bool
	// Tiles of 16 reaches × every step: each step's 16 values are one
	// cache line of the file, and the 16 destination series stay in cache.
	const tile = 16
	ids.Parallel((N+tile-1)/tile, 1024, func(a, z int) {
		defer func() {
			// The file shrank under the mapping: a fault, reported as an error.
			if recover() != nil {
				fault.Store(true)
			}
		}()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		var dsts [tile][]float32
		for k := a; k < z; k++ {
			c0 := k * tile
			w := min(tile, N-c0)
			for c := 0; c < w; c++ {
				r := c0 + c
				if rowOf != nil {
					r = int(rowOf[r])
				}
				dsts[c] = dst[r*T : r*T+T : r*T+T]
			}
			for t := 0; t < T; t++ {
				off := v.begin + int64(t0+t)*stride + int64(c0)*ts
				if ts == 4 {
					src := b[off : off+int64(w)*4]
					for c := 0; c < w; c++ {
						f := math.Float32frombits(binary.BigEndian.Uint32(src[4*c:]))
						switch {
						case !plain:
							f = d.apply(float64(f))
						case f == fill32:
							f = nan
						}
						dsts[c][t] = f
					}
				} else {
					src := b[off : off+int64(w)*8]
					for c := 0; c < w; c++ {
						dsts[c][t] = d.apply(math.Float64frombits(binary.BigEndian.Uint64(src[8*c:])))
					}
				}
			}
		}
	})
	if fault.Load() {
		return false, fmt.Errorf("%s changed while it was read", path)
	}
	return true, nil
}

// directWrite switches the direct writer on (tests compare it with
// libnetcdf's writes).
var directWrite = true

// writeQoutDirect writes q's values into the Qout variable of the classic
// file path, whose header, ids and times libnetcdf has written (without
// fill values): column j of record t holds row o.Order[j] (j without
// Order) at step t, big-endian, at the offsets the header gives. Blocks of
// reaches are transposed on every core and written with one pwrite per
// record.
func writeQoutDirect(path string, q *diffroute.DataTensor, o *QoutOptions) error {
	h, err := classicLayout(path)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("not a classic netCDF file")
	}
	v, ok := h.variable(o.Var)
	if !ok || !v.rec || len(v.dims) != 2 || v.dims[1] != int64(q.N) || v.typ != 5 {
		return fmt.Errorf("variable %s is not a float record variable of %d reaches", o.Var, q.N)
	}
	N, T := q.N, q.T
	if end := v.begin + int64(T-1)*h.recsize + int64(N)*4; end > h.size {
		return fmt.Errorf("the file holds %d bytes, its last record ends at byte %d", h.size, end)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	const block = 1 << 15 // reaches per block: T buffers of 128 KiB
	nb := (N + block - 1) / block
	var mu sync.Mutex
	var werr error
	ids.Parallel(nb, 1, func(a, z int) {
		buf := make([]byte, T*block*4)
		for k := a; k < z; k++ {
			j0 := k * block
			w := min(block, N-j0)
			for j := 0; j < w; j++ {
				r := j0 + j
				if o.Order != nil {
					r = int(o.Order[r])
				}
				row := q.Data[r*T : r*T+T : r*T+T]
				for t, x := range row {
					binary.BigEndian.PutUint32(buf[(t*block+j)*4:], math.Float32bits(x))
				}
			}
			for t := 0; t < T; t++ {
				if _, err := f.WriteAt(buf[t*block*4:(t*block+w)*4], v.begin+int64(t)*h.recsize+int64(j0)*4); err != nil {
					mu.Lock()
					werr = cmp.Or(werr, err)
					mu.Unlock()
					return
				}
			}
		}
	})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}
