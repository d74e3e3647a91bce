package data

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/internal/ids"
)

// A global run writes about a gigabyte of Qout: its values are written
// straight into the classic file, in blocks transposed on every core,
// instead of through libnetcdf's conversion buffers and its fill values.

// directWrite switches the direct writer on (tests compare it with
// libnetcdf's writes).
var directWrite = true

// qoutBlock is how many reaches writeQoutDirect transposes at a time: up
// to 32,768 (writes of 128 KiB, few system calls), but no more than a core's
// share, so that a basin of fewer reaches still uses every core.
func qoutBlock(N int) int {
	w := runtime.GOMAXPROCS(0)
	return min(1<<15, max(1<<10, (N+w-1)/w))
}

// qoutPass is about how many values a direct write transposes into its
// buffer between writes (4 MiB): the buffer stays in the caches and is
// reused, rather than one buffer of a block's whole series paged in fresh.
const qoutPass = 1 << 20

// qoutValues writes values into the Qout variable of a classic file whose
// header, ids and times libnetcdf has written (without fill values).
type qoutValues struct {
	f       *os.File
	begin   int64 // offset of the variable's first value
	recsize int64 // bytes from one record to the next
	N, T    int
}

// openQoutValues opens the classic file path for writing the values of its
// float record variable name of N reaches and T steps.
func openQoutValues(path, name string, N, T int) (*qoutValues, error) {
	h, err := readClassicHeader(path)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("not a classic netCDF file")
	}
	i := slices.IndexFunc(h.vars, func(v classicVar) bool { return v.name == name })
	if i < 0 || !h.vars[i].isRec || len(h.vars[i].shape) != 2 || h.vars[i].shape[1] != int64(N) || h.vars[i].typ != ncFloat {
		return nil, fmt.Errorf("variable %s is not a float record variable of %d reaches", name, N)
	}
	v := h.vars[i]
	if T > 0 {
		if end := v.begin + int64(T-1)*h.recsize + int64(N)*4; end > h.size {
			return nil, fmt.Errorf("the file holds %d bytes, its last record ends at byte %d", h.size, end)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return &qoutValues{f: f, begin: v.begin, recsize: h.recsize, N: N, T: T}, nil
}

// write writes the values of the file's reaches [j0, j1) for steps
// [t0, t0+q.T): file reach j is row order[j] of q (row j when order is
// nil). They are transposed into buf (grown as needed, returned) a pass of
// steps at a time and written with one pwrite per step.
func (w *qoutValues) write(q *diffroute.DataTensor, t0 int, order []int32, j0, j1 int, buf []byte) ([]byte, error) {
	T, n := q.T, j1-j0
	if n <= 0 || T == 0 {
		return buf, nil
	}
	rows := max(1, min(T, qoutPass/n))
	if cap(buf) < rows*n*4 {
		buf = make([]byte, rows*n*4)
	}
	buf = buf[:rows*n*4]
	for r0 := 0; r0 < T; r0 += rows {
		nr := min(rows, T-r0)
		transposeBE(buf, q, r0, nr, order, j0, j1)
		for t := range nr {
			off := w.begin + int64(t0+r0+t)*w.recsize + int64(j0)*4
			if _, err := w.f.WriteAt(buf[t*n*4:(t+1)*n*4], off); err != nil {
				return buf, err
			}
			startWriteback(w.f, off, int64(n)*4)
		}
	}
	return buf, nil
}

// transposeBE puts steps [r0, r0+nr) of the file's reaches [j0, j1) into
// buf, step-major and big-endian: buf's step t holds reach j at
// ((t·(j1-j0)) + j-j0)·4. Tiles of 16 reaches: each step writes one cache
// line of buf and reads 16 series front to back.
func transposeBE(buf []byte, q *diffroute.DataTensor, r0, nr int, order []int32, j0, j1 int) {
	n, T := j1-j0, q.T
	for jt := j0; jt < j1; jt += 16 {
		w := min(16, j1-jt)
		var src [16][]float32
		for c := range w {
			r := jt + c
			if order != nil {
				r = int(order[r])
			}
			src[c] = q.Data[r*T+r0 : r*T+r0+nr : r*T+r0+nr]
		}
		o := (jt - j0) * 4
		if w == 16 {
			for t := range nr {
				d := buf[o+t*n*4 : o+t*n*4+64 : o+t*n*4+64]
				for c := range 16 {
					binary.BigEndian.PutUint32(d[c*4:], math.Float32bits(src[c][t]))
				}
			}
			continue
		}
		for t := range nr {
			d := buf[o+t*n*4 : o+t*n*4+w*4]
			for c := range w {
				binary.BigEndian.PutUint32(d[c*4:], math.Float32bits(src[c][t]))
			}
		}
	}
}

func (w *qoutValues) close() error { return w.f.Close() }

// writeQoutDirect writes q's values into the Qout variable of the classic
// file path, whose header, ids and times libnetcdf has written (without
// fill values): column j of record t holds row o.Order[j] (j without
// Order) at step t, big-endian, at the offsets the header gives. Blocks of
// reaches are transposed on every core and written with one pwrite per
// record.
func writeQoutDirect(path string, q *diffroute.DataTensor, o *QoutOptions) error {
	w, err := openQoutValues(path, o.Var, q.N, q.T)
	if err != nil {
		return err
	}
	N := q.N
	block := qoutBlock(N)
	nb := (N + block - 1) / block
	var mu sync.Mutex
	var werr error
	ids.Parallel(nb, 1, func(a, z int) {
		var buf []byte
		for k := a; k < z; k++ {
			var err error
			if buf, err = w.write(q, 0, o.Order, k*block, min(N, (k+1)*block), buf); err != nil {
				mu.Lock()
				werr = cmp.Or(werr, err)
				mu.Unlock()
				return
			}
		}
	})
	if cerr := w.close(); werr == nil {
		werr = cerr
	}
	return werr
}
