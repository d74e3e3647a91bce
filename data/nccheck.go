package data

import (
	"fmt"
	"io"
	"os"

	"github.com/dustin/go-humanize"
	"github.com/fhs/go-netcdf/netcdf"
)

// maxDeflateRatio bounds how much data a netCDF-4 file can hold per byte:
// deflate compresses at most about 1032:1.
const maxDeflateRatio = 1100

// checkNCSizes checks, before any reader sizes a buffer by them, that the
// variables of a netCDF file declare no more data than the file can hold:
// classic files through their header (checkClassicNC); netCDF-4 (HDF5)
// files by comparing each variable's declared size with the file's size
// times the best deflate ratio. A small file declaring a dimension of 2^31
// steps is corrupt or hostile, and reading it would exhaust memory.
func checkNCSizes(path string) error {
	if err := checkClassicNC(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	var magic [8]byte
	_, rerr := io.ReadFull(f, magic[:])
	st, serr := f.Stat()
	f.Close()
	if rerr != nil || serr != nil || string(magic[1:4]) != "HDF" {
		return nil // classic (checked above) or not netCDF: libnetcdf says so
	}
	limit := uint64(st.Size())*maxDeflateRatio + 64<<20
	ncMu.Lock()
	defer ncMu.Unlock()
	defer quietHDF5()()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		return nil // the reader reports it
	}
	defer ds.Close()
	n, err := ds.NVars()
	if err != nil {
		return nil
	}
	for k := 0; k < n; k++ {
		v := ds.VarN(k)
		dims, err := v.LenDims()
		if err != nil {
			continue
		}
		vals := uint64(1)
		for _, d := range dims {
			if d != 0 && vals > (1<<62)/d {
				vals = 1 << 62
				break
			}
			vals *= d
		}
		if bytes := vals * 8; bytes > limit {
			name, _ := v.Name()
			return fmt.Errorf("%s: variable %s declares dimensions %v (%s) in a file of %s: the file is corrupt or truncated",
				path, name, dims, humanize.IBytes(bytes), humanize.IBytes(uint64(st.Size())))
		}
	}
	return nil
}
