package data

// #cgo pkg-config: netcdf
// #include <netcdf.h>
import "C"

import (
	"fmt"
	"math"

	"github.com/fhs/go-netcdf/netcdf"
)

// mode is the netCDF creation mode of a Qout file.
func (o *QoutOptions) mode() netcdf.FileMode {
	if o.NetCDF4 {
		return netcdf.CLOBBER | netcdf.NETCDF4
	}
	return netcdf.CLOBBER | netcdf.OFFSET_64BIT
}

// check refuses options that cannot be written for n reaches.
func (o *QoutOptions) check(n int) error {
	if o.Compress < 0 || o.Compress > 9 {
		return fmt.Errorf("data: compression level %d: want 0 (none) to 9", o.Compress)
	}
	if o.Compress > 0 && !o.NetCDF4 {
		return fmt.Errorf("data: compression needs netCDF-4 (classic netCDF has none)")
	}
	if (o.Lat == nil) != (o.Lon == nil) || o.Lat != nil && (len(o.Lat) != n || len(o.Lon) != n) {
		return fmt.Errorf("data: coordinates for %d/%d reaches, want both for all %d", len(o.Lat), len(o.Lon), n)
	}
	for i := range o.Lat {
		if math.IsNaN(o.Lat[i]) || math.IsNaN(o.Lon[i]) || math.Abs(o.Lat[i]) > 90 || math.Abs(o.Lon[i]) > 360 {
			return fmt.Errorf("data: reach %d has coordinates (%v, %v), not a latitude and longitude", i, o.Lat[i], o.Lon[i])
		}
	}
	return nil
}

// defineNC4 chunks and deflates the data variable v (time, rivid) of a
// netCDF-4 file, or v (member, time, rivid) when members > 0: chunks of up to
// 512 steps × 256 reaches (512 KiB of float32) of one member make reading one
// reach's series touch T/512 chunks, while a time-major writer fills whole
// chunk rows.
func defineNC4(ds netcdf.Dataset, v netcdf.Var, o *QoutOptions, members, T, N int) error {
	name, err := v.Name()
	if err != nil {
		return err
	}
	rv, err := recVar(ds, name)
	if err != nil {
		return err
	}
	chunks := []C.size_t{C.size_t(max(1, min(T, 512))), C.size_t(max(1, min(N, 256)))}
	if members > 0 {
		chunks = append([]C.size_t{1}, chunks...)
	}
	if err := ncErr(C.nc_def_var_chunking(rv.ncid, rv.varid, C.NC_CHUNKED, &chunks[0])); err != nil {
		return fmt.Errorf("chunking %s: %w", name, err)
	}
	if o.Compress > 0 {
		if err := v.SetCompression(true, true, o.Compress); err != nil {
			return fmt.Errorf("compressing %s: %w", name, err)
		}
	}
	// A chunk cache holding a whole row of chunks (every reach, 512 steps,
	// every member) lets a time-major writer fill each chunk before it is
	// compressed, up to 256 MiB.
	cache := min(int64(max(1, members))*int64(N)*512*4*2, 256<<20)
	if err := ncErr(C.nc_set_var_chunk_cache(rv.ncid, rv.varid, C.size_t(max(cache, 1<<20)), 1009, 0.75)); err != nil {
		return fmt.Errorf("chunk cache of %s: %w", name, err)
	}
	return nil
}
