package data

// #cgo pkg-config: netcdf
// #include <stdlib.h>
// #include <netcdf.h>
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/fhs/go-netcdf/netcdf"
)

// Record (UNLIMITED) dimensions.
//
// go-netcdf defines an unlimited dimension (AddDim with length 0 is
// nc_def_dim with NC_UNLIMITED) but its hyperslab writers check start and
// count against the dimension's current length, so they cannot add records.
// ncRecVar writes hyperslabs with the C API directly, which extends the
// record dimension as RAPID's Fortran/C writers do. Callers hold ncMu.

// ncUnlimited is the length that makes AddDim define a record dimension.
const ncUnlimited = 0

// ncRecVar is a variable of an open dataset, addressed by the C ids that
// go-netcdf keeps unexported.
type ncRecVar struct {
	name  string
	ncid  C.int
	varid C.int
	ndims int
}

// recVar looks up the variable name of ds.
func recVar(ds netcdf.Dataset, name string) (ncRecVar, error) {
	v := ncRecVar{name: name, ncid: C.int(ds)}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if err := ncErr(C.nc_inq_varid(v.ncid, cname, &v.varid)); err != nil {
		return v, fmt.Errorf("variable %s: %w", name, err)
	}
	var nd C.int
	if err := ncErr(C.nc_inq_varndims(v.ncid, v.varid, &nd)); err != nil {
		return v, fmt.Errorf("variable %s: %w", name, err)
	}
	v.ndims = int(nd)
	return v, nil
}

// ncErr turns a netCDF status into go-netcdf's error type (its message is
// nc_strerror's).
func ncErr(rc C.int) error {
	if rc == C.NC_NOERR {
		return nil
	}
	return netcdf.Error(rc)
}

// hyperslab checks start and count against the variable's rank and n
// values, and converts them to size_t.
func (v ncRecVar) hyperslab(n int, start, count []uint64) (cs, cc []C.size_t, err error) {
	if len(start) != v.ndims || len(count) != v.ndims || v.ndims == 0 {
		return nil, nil, fmt.Errorf("variable %s: hyperslab of rank %d/%d, the variable has %d dimensions", v.name, len(start), len(count), v.ndims)
	}
	total := uint64(1)
	cs = make([]C.size_t, v.ndims)
	cc = make([]C.size_t, v.ndims)
	for i := range start {
		total *= count[i]
		cs[i], cc[i] = C.size_t(start[i]), C.size_t(count[i])
	}
	if total != uint64(n) {
		return nil, nil, fmt.Errorf("variable %s: hyperslab of %d values, %d given", v.name, total, n)
	}
	return cs, cc, nil
}

// putFloat32 writes data into the hyperslab start, count (nc_put_vara_float).
func (v ncRecVar) putFloat32(data []float32, start, count []uint64) error {
	cs, cc, err := v.hyperslab(len(data), start, count)
	if err != nil || len(data) == 0 {
		return err
	}
	if err := ncErr(C.nc_put_vara_float(v.ncid, v.varid, &cs[0], &cc[0], (*C.float)(unsafe.Pointer(&data[0])))); err != nil {
		return fmt.Errorf("variable %s: %w", v.name, err)
	}
	return nil
}

// putFloat64 writes data into the hyperslab start, count (nc_put_vara_double).
func (v ncRecVar) putFloat64(data []float64, start, count []uint64) error {
	cs, cc, err := v.hyperslab(len(data), start, count)
	if err != nil || len(data) == 0 {
		return err
	}
	if err := ncErr(C.nc_put_vara_double(v.ncid, v.varid, &cs[0], &cc[0], (*C.double)(unsafe.Pointer(&data[0])))); err != nil {
		return fmt.Errorf("variable %s: %w", v.name, err)
	}
	return nil
}

// putInt32 writes data into the hyperslab start, count (nc_put_vara_int).
func (v ncRecVar) putInt32(data []int32, start, count []uint64) error {
	cs, cc, err := v.hyperslab(len(data), start, count)
	if err != nil || len(data) == 0 {
		return err
	}
	if err := ncErr(C.nc_put_vara_int(v.ncid, v.varid, &cs[0], &cc[0], (*C.int)(unsafe.Pointer(&data[0])))); err != nil {
		return fmt.Errorf("variable %s: %w", v.name, err)
	}
	return nil
}

// ncDimLen returns the current length of the dimension name of ds (for a
// record dimension, the number of records) and whether it is unlimited.
func ncDimLen(ds netcdf.Dataset, name string) (n uint64, unlimited bool, err error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var id, unlim C.int
	if err := ncErr(C.nc_inq_dimid(C.int(ds), cname, &id)); err != nil {
		return 0, false, fmt.Errorf("dimension %s: %w", name, err)
	}
	var l C.size_t
	if err := ncErr(C.nc_inq_dimlen(C.int(ds), id, &l)); err != nil {
		return 0, false, fmt.Errorf("dimension %s: %w", name, err)
	}
	if err := ncErr(C.nc_inq_unlimdim(C.int(ds), &unlim)); err != nil {
		return 0, false, err
	}
	return uint64(l), unlim == id, nil
}

// setNoFill stops libnetcdf from writing fill values into fixed-size
// variables when the header is complete: a writer that checks every value
// is written before it renames the file would otherwise write the data
// twice. Callers hold ncMu.
func setNoFill(ds netcdf.Dataset) error {
	var old C.int
	return ncErr(C.nc_set_fill(C.int(ds), C.NC_NOFILL, &old))
}
