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

// writeQoutDirect writes q's values into the Qout variable of the classic
// file path, whose header, ids and times libnetcdf has written (without
// fill values): column j of record t holds row o.Order[j] (j without
// Order) at step t, big-endian, at the offsets the header gives. Blocks of
// reaches are transposed on every core and written with one pwrite per
// record.
// qoutBlock is how many reaches writeQoutDirect transposes at a time: up
// to 32,768 (writes of 128 KiB, few system calls), but no more than a core's
// share, so that a basin of fewer reaches still uses every core.
func qoutBlock(N int) int {
	w := runtime.GOMAXPROCS(0)
	return min(1<<15, max(1<<10, (N+w-1)/w))
}

func writeQoutDirect(path string, q *diffroute.DataTensor, o *QoutOptions) error {
	h, err := readClassicHeader(path)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("not a classic netCDF file")
	}
	i := slices.IndexFunc(h.vars, func(v classicVar) bool { return v.name == o.Var })
	if i < 0 || !h.vars[i].isRec || len(h.vars[i].shape) != 2 || h.vars[i].shape[1] != int64(q.N) || h.vars[i].typ != ncFloat {
		return fmt.Errorf("variable %s is not a float record variable of %d reaches", o.Var, q.N)
	}
	v := h.vars[i]
	N, T := q.N, q.T
	if end := v.begin + int64(T-1)*h.recsize + int64(N)*4; end > h.size {
		return fmt.Errorf("the file holds %d bytes, its last record ends at byte %d", h.size, end)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	block := qoutBlock(N)
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
				off := v.begin + int64(t)*h.recsize + int64(j0)*4
				if _, err := f.WriteAt(buf[t*block*4:(t*block+w)*4], off); err != nil {
					mu.Lock()
					werr = cmp.Or(werr, err)
					mu.Unlock()
					return
				}
				startWriteback(f, off, int64(w)*4)
			}
		}
	})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}
