package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/diffroute-go/route/diffroute"
)

// Classic netCDF types read straight from the file.
const (
	ncFloat  = 5
	ncDouble = 6
)

// classicBlock is the size in bytes of the blocks a time-major variable is
// read by.
var classicBlock = 1 << 20

// classicReader reads the values of a (time, reach) or (reach, time) FLOAT
// or DOUBLE variable of a classic netCDF file straight from the file
// (big-endian), without libnetcdf: one read per block of adjacent reach
// columns and step, converted and transposed in cache-sized tiles, and only
// the blocks that hold a wanted column. libnetcdf converts every value to
// the type asked for and reads a record variable one record per call; here
// the values go to the tensor in one pass.
type classicReader struct {
	path     string
	v        classicVar
	size     int64 // bytes per value
	stride   int64 // bytes from one index of the first dimension to the next
	fileSize int64
}

// openClassic returns the reader of variable name of the classic file at
// path, or nil when the file is not classic or the variable is not a
// two-dimensional FLOAT or DOUBLE.
func openClassic(path, name string) (*classicReader, error) {
	h, err := readClassicHeader(path)
	if err != nil || h == nil {
		return nil, err
	}
	i := slices.IndexFunc(h.vars, func(v classicVar) bool { return v.name == name })
	if i < 0 {
		return nil, nil
	}
	v := h.vars[i]
	if len(v.shape) != 2 || (v.typ != ncFloat && v.typ != ncDouble) {
		return nil, nil
	}
	r := &classicReader{path: path, v: v, size: 4, fileSize: h.size}
	if v.typ == ncDouble {
		r.size = 8
	}
	r.stride = v.shape[1] * r.size
	if v.isRec {
		r.stride = h.recsize
	}
	return r, nil
}

// read fills member 0 of x with steps [t0, t0+T) of the variable: the
// file's reach c goes to row rowOf[c] (nil: row c; < 0: not read). ti is
// the variable's time dimension, N its number of reaches, fullT its number
// of steps. Values equal to fill or missing become NaN.
func (r *classicReader) read(x *diffroute.DataTensor, rowOf []int32, ti, t0, T, N, fullT int, fill, missing float64) error {
	if T == 0 {
		return nil
	}
	if r.v.isRec && ti != 0 {
		return fmt.Errorf("variable %s: records along its reach dimension are not read directly", r.v.name)
	}
	// The last value read must lie in the file (a truncated file).
	first, last := r.v.begin, r.v.begin
	if ti == 0 {
		last += int64(t0+T-1)*r.stride + int64(N)*r.size
	} else {
		last += (int64(N-1)*int64(fullT) + int64(t0+T)) * r.size
	}
	if first < 0 || last > r.fileSize {
		return fmt.Errorf("variable %s: values end at byte %d beyond the file's %d", r.v.name, last, r.fileSize)
	}
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	nan := float32(math.NaN())
	// The fill and missing values as float32 values would show them (NaN:
	// none can).
	fill32, missing32 := nan, nan
	if float64(float32(fill)) == fill {
		fill32 = float32(fill)
	}
	if float64(float32(missing)) == missing {
		missing32 = float32(missing)
	}
	decode := func(b []byte) float32 {
		var v float64
		if r.size == 4 {
			v = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		} else {
			v = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
		if v == fill || v == missing {
			return nan
		}
		return float32(v)
	}
	row := func(c int) int {
		if rowOf == nil {
			return c
		}
		return int(rowOf[c])
	}
	xd := x.Data[:x.N*T]
	adviseHuge(xd)
	sz := int(r.size)

	if ti != 0 { // reach-major: each reach's series is contiguous
		buf := make([]byte, T*sz)
		for c := range N {
			k := row(c)
			if k < 0 {
				continue
			}
			if _, err := f.ReadAt(buf, r.v.begin+(int64(c)*int64(fullT)+int64(t0))*r.size); err != nil {
				return fmt.Errorf("variable %s: %w", r.v.name, err)
			}
			dst := xd[k*T : k*T+T]
			for t := range dst {
				dst[t] = decode(buf[t*sz:])
			}
		}
		return nil
	}

	// Time-major: blocks of cols reach columns × rows steps, about 1 MiB,
	// so that the block stays in cache while it is transposed and each
	// series gets whole cache lines.
	rows := min(T, 64)
	cols := min(N, max(1, classicBlock/(rows*sz)))
	// Blocks of columns go to the cores in turn: their rows are distinct.
	blocks := (N + cols - 1) / cols
	workers := min(runtime.GOMAXPROCS(0), blocks)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = r.readBlocks(f, xd, row, decode, w, workers, rows, cols, t0, T, N, fill32, missing32)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// blockBufs holds the block buffers of readBlocks (*[]byte): a run read in
// time chunks reads every chunk into the same few megabytes rather than
// leave them to the collector.
var blockBufs sync.Pool

// blockBuf returns a buffer of n bytes from blockBufs (put it back).
func blockBuf(n int) *[]byte {
	if bp, ok := blockBufs.Get().(*[]byte); ok && cap(*bp) >= n {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n)
	return &b
}

// readBlocks reads the column blocks w, w+workers, … of a time-major
// variable (see read).
func (r *classicReader) readBlocks(f *os.File, xd []float32, row func(int) int, decode func([]byte) float32,
	w, workers, rows, cols, t0, T, N int, fill32, missing32 float32) error {
	nan := float32(math.NaN())
	sz := int(r.size)
	bp := blockBuf(rows * cols * sz)
	defer blockBufs.Put(bp)
	buf := *bp
	for c0 := w * cols; c0 < N; c0 += workers * cols {
		// The wanted columns of the block: [lo, hi].
		lo, hi := -1, -1
		for c := c0; c < min(N, c0+cols); c++ {
			if row(c) >= 0 {
				if lo < 0 {
					lo = c
				}
				hi = c
			}
		}
		if lo < 0 {
			continue
		}
		span := hi - lo + 1
		for r0 := 0; r0 < T; r0 += rows {
			nr := min(rows, T-r0)
			for k := range nr {
				b := buf[k*span*sz : (k+1)*span*sz]
				if _, err := f.ReadAt(b, r.v.begin+int64(t0+r0+k)*r.stride+int64(lo)*r.size); err != nil {
					return fmt.Errorf("variable %s: %w", r.v.name, err)
				}
			}
			// Transposed in tiles of 16 columns: each pass over the
			// steps reads a cache line or two of the block per step and
			// writes 16 series.
			for ct := lo; ct <= hi; ct += 16 {
				w := min(16, hi+1-ct)
				var dst [16][]float32
				var src [16]int // byte offset of the column in a block row
				n := 0
				for c := ct; c < ct+w; c++ {
					if k := row(c); k >= 0 {
						o := k*T + r0
						dst[n] = xd[o : o+nr : o+nr]
						src[n] = (c - lo) * sz
						n++
					}
				}
				if sz == 4 {
					// Step by step (a block row's 16 values share a cache
					// line; a column's steps are a power of two apart).
					for k := range nr {
						b := buf[k*span*4 : (k+1)*span*4]
						for j := range n {
							v := math.Float32frombits(binary.BigEndian.Uint32(b[src[j]:]))
							if v == fill32 || v == missing32 {
								v = nan
							}
							dst[j][k] = v
						}
					}
					continue
				}
				for k := range nr {
					b := buf[k*span*sz : (k+1)*span*sz]
					for j := range n {
						dst[j][k] = decode(b[src[j]:])
					}
				}
			}
		}
	}
	return nil
}
