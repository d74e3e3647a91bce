// Package data reads and writes the file formats around diffroute: RAPID
// configuration folders (rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv and
// qinit files), runoff and discharge netCDF files (RAPID m3_riv and Qout,
// xarray-style runoff(time, river_id), DiffHydro's
// __xarray_dataarray_variable__(time, spatial)), CSV tables
// (header time,<id>,<id>,…, one row per step) and the Feather v2 (Arrow IPC)
// tables of gridded pixel runoff and interpolation weights.
//
// It depends on the core package diffroute; the core never depends on it.
//
// # Orders and ids
//
// A RAPID folder has two reach orders: the order of rapid_connect.csv (which
// k.csv, x.csv, qinit files and id-less m3_riv files follow) and the order of
// riv_bas_id.csv, which ReadRAPID keeps as the network's index order. Readers
// re-index everything into network order; tensors carry their reach ids so
// that routers align them by id, never by position.
//
// The RAPID text files (rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv,
// qinit) may have a UTF-8 byte-order mark, CRLF line ends, spaces around
// fields, blank lines at the end and one trailing comma per line
// ("17880258,17880834,0,"); any other empty field is an error at its column.
//
// # Errors
//
// Parse errors are *ParseError values naming the file, the 1-based line and,
// where it helps, the 1-based column. Network errors from diffroute.NewNetwork
// (cycles, self-loops) are translated into the rapid_connect.csv line of the
// offending reach.
//
// # Units
//
// Readers report units as found (DataTensor.Units = the variable's units
// attribute). RAPID inflow files hold volumes per step (m3); converting them to
// m3/s is the caller's decision: see VolumeToRate.
//
// # netCDF
//
// netCDF goes through github.com/fhs/go-netcdf (cgo, libnetcdf). libnetcdf is
// not thread-safe, so every netCDF call in this package holds one
// package-level mutex; concurrent use of the package's readers and writers is
// safe but serialised.
//
// # Writers
//
// Writers create a temporary file in the destination's folder and rename it
// into place when complete, so that an error never leaves a partial file at
// the destination.
//
// Qout files (WriteQoutNC, QoutWriter) make time the record (UNLIMITED)
// dimension, as RAPID does. go-netcdf's hyperslab writers cannot add records,
// so the record variables are written through the netCDF C API directly
// (a few lines of cgo, under the same mutex).
package data
