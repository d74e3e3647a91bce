package data

// #cgo pkg-config: hdf5
// #include <hdf5.h>
// static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
import "C"

import "runtime"

// quietHDF5 pins the goroutine to its thread and turns off HDF5's error
// printing there, until the returned function is called. libnetcdf turns it
// off when it starts, but a thread-safe HDF5 keeps that setting per thread,
// and goroutines move between threads: without this, expected misses (such
// as libnetcdf probing netCDF-4 files for optional attributes) print
// "HDF5-DIAG: Error detected" stacks on stderr.
func quietHDF5() (done func()) {
	runtime.LockOSThread()
	C.quiet_hdf5()
	return runtime.UnlockOSThread
}
