package data

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// ncMu serialises every call into libnetcdf, which is not thread-safe.
var ncMu sync.Mutex

// RunoffVarNames are the variable names ReadRunoffNC tries, in order, when
// none is given: RAPID inflow, xarray-style runoff, RAPID output and
// DiffHydro's unnamed xarray DataArray.
var RunoffVarNames = []string{"m3_riv", "runoff", "Qout", "__xarray_dataarray_variable__"}

// memberDimNames name the ensemble member dimension of a three-dimensional
// runoff variable (member, time, reach).
var memberDimNames = []string{"member", "ensemble", "realization", "number", "ens"}

// idVarNames are tried for reach ids when the spatial dimension has no
// coordinate variable of its own name.
var idVarNames = []string{"rivid", "river_id", "COMID", "comid", "spatial", "feature_id", "reach_id", "LINKNO"}

// NCOptions select what ReadRunoffNC reads.
type NCOptions struct {
	// Var is the data variable; "" tries RunoffVarNames, then the only
	// two-dimensional numeric variable that is not a coordinate.
	Var string
	// IDs are the reach ids of the spatial axis when the file has no id
	// variable (RAPID m3_riv files without rivid follow rapid_connect.csv
	// order: pass RAPID.ConnectIDs). Ignored when the file has ids.
	IDs []int64
	// TimeStart and TimeCount restrict reading to steps
	// [TimeStart, TimeStart+TimeCount); TimeCount 0 reads to the end and
	// TimeCount < 0 reads no values (labels and ids only). Time-major files
	// (time first, as RAPID writes them) read a time range contiguously, so
	// long series can be routed in time chunks without loading them whole.
	TimeStart, TimeCount int
	// Order, when set, picks the tensor's row order: row k holds the
	// file's reach at position Order[k] (every position once). Reading in
	// a router's order (diffroute.RoutingOrder) costs nothing extra: the
	// values are transposed on the way in anyway.
	Order []int32
	// Columns, when set, reads only these reaches: row k of the tensor
	// holds the file's reach at position Columns[k] (each position at most
	// once). A time-major classic file skips the blocks of reaches not
	// listed (a few routed out of many cost a fraction of the whole file);
	// other layouts and formats are read whole and the columns picked.
	// Not with Order.
	Columns []int32
	// Member, when > 0, reads only that ensemble member (1-based along the
	// member dimension) of a (member, time, reach) variable; 0 reads all.
	Member int
	// Into, when set, receives the values instead of a new tensor (a
	// time-chunked run reuses a few chunk buffers): it must have the batch
	// members, rows and steps read; its ids, times, step and units are
	// set, and it is returned.
	Into *diffroute.DataTensor

	ranges *RunoffRanges // set by readRunoff for OpenRunoffRanges
}

// ReadRunoffNC reads a two-dimensional (time, reach) variable of a netCDF
// file into a tensor with one batch member (an ensemble: see below): RAPID m3_riv(time, rivid),
// xarray-style runoff(time, river_id), Qout(time, rivid) or DiffHydro's
// __xarray_dataarray_variable__(time, spatial). A (reach, time) layout is
// recognised by the dimension named "time" and transposed. A
// three-dimensional variable with a member dimension (member, ensemble,
// realization, number or ens), such as runoff(member, time, rivid) or the
// Qout(member, time, rivid) of WriteEnsembleNC, is an ensemble: one batch
// member per member (opt.Member picks one).
//
// Reach ids come from the coordinate variable of the spatial dimension (or
// rivid, river_id, … when it has none), else from opt.IDs. Time labels come
// from the time coordinate: with CF units "<unit> since <date>" they are
// RFC 3339 instants (UTC) and Step is their uniform spacing; otherwise the raw
// numbers. Units is the variable's units attribute, unconverted (RAPID m3_riv
// holds m3 per step: see VolumeToRate). scale_factor and add_offset are
// applied; values equal to a non-zero _FillValue or missing_value become NaN
// (RAPID writes _FillValue = 0 on m3_riv, where 0 means no runoff, so a zero
// fill value is kept as 0); without a _FillValue attribute, netCDF's default
// fill value of the type (cells never written) becomes NaN.
//
// The header of a classic file (CDF-1, CDF-2, CDF-5) is validated before
// libnetcdf opens it, so that a corrupted file is an error naming it rather
// than a crash or an allocation of what the header declares; a netCDF-4
// (HDF5) file's variables must not declare more data than the file can hold
// compressed.
func ReadRunoffNC(path string, opt *NCOptions) (*diffroute.DataTensor, error) {
	if opt == nil {
		opt = &NCOptions{}
	}
	if err := checkNCSizes(path); err != nil {
		return nil, err
	}
	ncMu.Lock()
	defer ncMu.Unlock()
	defer quietHDF5()()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer ds.Close()
	x, err := readRunoff(ds, path, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}

// readRunoff reads a variable of the open dataset ds of the file at path.
func readRunoff(ds netcdf.Dataset, path string, opt *NCOptions) (*diffroute.DataTensor, error) {
	v, name, err := findDataVar(ds, opt.Var)
	if err != nil {
		return nil, err
	}
	dims, err := v.Dims()
	if err != nil {
		return nil, err
	}
	if len(dims) != 2 && len(dims) != 3 {
		return nil, fmt.Errorf("variable %s has %d dimensions, want 2 (time, reach) or 3 (member, time, reach)", name, len(dims))
	}
	// An ensemble: the member dimension is set aside, the other two are
	// (time, reach) in either order.
	mi, B := -1, 1
	if len(dims) == 3 {
		for i, d := range dims {
			n, err := d.Name()
			if err != nil {
				return nil, err
			}
			if slices.Contains(memberDimNames, strings.ToLower(n)) {
				mi = i
			}
		}
		if mi < 0 {
			return nil, fmt.Errorf("variable %s has 3 dimensions but none is a member dimension (%s)", name, strings.Join(memberDimNames, ", "))
		}
		l, err := dims[mi].Len()
		if err != nil {
			return nil, err
		}
		B = int(l)
		dims = slices.Delete(slices.Clone(dims), mi, mi+1)
	}
	first := 0 // first member read
	switch {
	case opt.Member > B || opt.Member > 1 && mi < 0:
		return nil, fmt.Errorf("variable %s: no member %d (%d members)", name, opt.Member, B)
	case opt.Member > 0:
		first, B = opt.Member-1, 1
	}
	dn := make([]string, 2)
	dl := make([]int, 2)
	for i, d := range dims {
		if dn[i], err = d.Name(); err != nil {
			return nil, err
		}
		n, err := d.Len()
		if err != nil {
			return nil, err
		}
		dl[i] = int(n)
	}
	ti, si := 0, 1
	if strings.EqualFold(dn[1], "time") && !strings.EqualFold(dn[0], "time") {
		ti, si = 1, 0
	}
	fullT, N := dl[ti], dl[si]
	t0, T := opt.TimeStart, fullT-opt.TimeStart
	switch {
	case t0 < 0 || t0 > fullT:
		return nil, fmt.Errorf("variable %s: time start %d outside [0, %d]", name, t0, fullT)
	case opt.TimeCount < 0:
		T = 0
	case opt.TimeCount > 0:
		if t0+opt.TimeCount > fullT {
			return nil, fmt.Errorf("variable %s: steps [%d, %d) beyond its %d steps", name, t0, t0+opt.TimeCount, fullT)
		}
		T = opt.TimeCount
	}

	// Reach ids.
	var ids []int64
	idVar, ok := varByName(ds, append([]string{dn[si]}, idVarNames...)...)
	if ok {
		if l, err := idVar.Len(); err == nil && int(l) == N {
			f, err := readAllFloat64(idVar)
			if err != nil {
				return nil, fmt.Errorf("reach ids: %w", err)
			}
			ids = make([]int64, N)
			for i, f := range f {
				if f != math.Trunc(f) || math.IsNaN(f) || math.Abs(f) > 1<<53 {
					return nil, fmt.Errorf("reach id %v at position %d is not an integer", f, i)
				}
				ids[i] = int64(f)
			}
		}
	}
	if ids == nil {
		if opt.IDs == nil {
			return nil, fmt.Errorf("variable %s: no reach id variable for dimension %s; pass the ids (rapid_connect.csv order for RAPID files)", name, dn[si])
		}
		if len(opt.IDs) != N {
			return nil, fmt.Errorf("variable %s has %d reaches but %d ids were given", name, N, len(opt.IDs))
		}
		ids = slices.Clone(opt.IDs)
	}

	// rowOf[c]: tensor row of the file's reach c (< 0: not read).
	var rowOf []int32
	if opt.Order != nil && opt.Columns != nil {
		return nil, fmt.Errorf("variable %s: both an order and columns to read", name)
	}
	if opt.Columns != nil {
		rowOf = make([]int32, N)
		for c := range rowOf {
			rowOf[c] = -1
		}
		picked := make([]int64, len(opt.Columns))
		for k, c := range opt.Columns {
			if c < 0 || int(c) >= N {
				return nil, fmt.Errorf("variable %s: reach position %d outside its %d reaches", name, c, N)
			}
			if rowOf[c] >= 0 {
				return nil, fmt.Errorf("variable %s: reach position %d listed twice", name, c)
			}
			rowOf[c] = int32(k)
			picked[k] = ids[c]
		}
		ids = picked
	}
	if opt.Order != nil {
		if rowOf, err = invertOrder(opt.Order, N); err != nil {
			return nil, fmt.Errorf("variable %s: %w", name, err)
		}
		ordered := make([]int64, N)
		for k, c := range opt.Order {
			ordered[k] = ids[c]
		}
		ids = ordered
	}
	if B < 1 {
		return nil, fmt.Errorf("variable %s has no ensemble members", name)
	}
	var x *diffroute.DataTensor
	if x = opt.Into; x != nil {
		if x.B != B || x.N != len(ids) || x.T != T || len(x.Data) != B*len(ids)*T {
			return nil, fmt.Errorf("variable %s: %d members x %d reaches x %d steps do not fit the tensor given (%d x %d x %d)", name, B, len(ids), T, x.B, x.N, x.T)
		}
		x.IDs, x.Times, x.Step = ids, nil, 0
	} else {
		// ids is this call's own: no copy (millions of reaches).
		x = &diffroute.DataTensor{B: B, N: len(ids), T: T, Data: make([]float32, B*len(ids)*T), IDs: ids}
		adviseHuge(x.Data)
	}
	x.Units, _ = attrString(v, "units")

	// Values, in blocks along the first dimension.
	scale, hasScale := attrFloat(v, "scale_factor")
	offset, hasOffset := attrFloat(v, "add_offset")
	fill := math.NaN()
	if f, ok := attrFloat(v, "_FillValue"); ok && f != 0 {
		fill = f
	} else if !ok {
		// Without _FillValue, cells never written hold netCDF's default fill
		// value for the type, which netCDF's own tools show as missing:
		// routing it as ~1e37 of runoff would be silent nonsense.
		fill = defaultFill(v)
	}
	missing := math.NaN()
	if f, ok := attrFloat(v, "missing_value"); ok && f != 0 {
		missing = f
	}
	nan := float32(math.NaN())
	conv := func(f float64) float32 {
		if f == fill || f == missing {
			return nan
		}
		if hasScale {
			f *= scale
		}
		if hasOffset {
			f += offset
		}
		return float32(f)
	}
	row := func(c int) int {
		if rowOf != nil {
			return int(rowOf[c])
		}
		return c
	}
	// Values in boxes of about 4 M: a time-major file (RAPID's) is read
	// time steps × a block of reaches at once, so that each reach's series
	// is filled in one piece rather than one value per pass over the
	// whole tensor.
	box := ncBox
	// slab is the hyperslab (start, count) of member b's (time, reach) box:
	// member first + b along the member dimension.
	slab := func(b int, start, count []uint64) ([]uint64, []uint64) {
		if mi >= 0 {
			start = slices.Insert(start, mi, uint64(first+b))
			count = slices.Insert(count, mi, 1)
		}
		return start, count
	}
	// A classic file's FLOAT or DOUBLE values without scaling are read
	// straight from the file.
	var direct *classicReader
	if mi < 0 && !hasScale && !hasOffset && path != "" && directRead {
		if direct, err = openClassic(path, name); err != nil {
			return nil, err
		}
		if direct != nil && direct.v.isRec && ti != 0 {
			// A reach dimension that is the unlimited one: each reach a
			// record; libnetcdf reads it.
			direct = nil
		}
	}
	if opt.ranges != nil && direct != nil {
		*opt.ranges = RunoffRanges{path: path, r: direct, rowOf: rowOf, ti: ti, n: N, fullT: fullT, fill: fill, missing: missing}
	}
	if direct != nil {
		if err := direct.read(x, rowOf, ti, t0, T, N, fullT, fill, missing); err != nil {
			return nil, err
		}
	} else {
		for b := 0; b < B; b++ {
			if err := readMember(x, b, v, name, slab, conv, row, ti, t0, T, N, box); err != nil {
				return nil, err
			}
		}
	}

	// Time labels.
	if tv, ok := varByName(ds, dn[ti]); ok {
		if l, err := tv.Len(); err == nil && int(l) == fullT {
			vals, err := readAllFloat64(tv)
			if err != nil {
				return nil, fmt.Errorf("time: %w", err)
			}
			units, _ := attrString(tv, "units")
			cal, _ := attrString(tv, "calendar")
			var all []string
			all, x.Step = timeLabels(vals, units, cal)
			if opt.TimeCount < 0 {
				x.Times = all // header only: every label, no values
			} else {
				x.Times = all[t0 : t0+T]
			}
		}
	}
	return x, nil
}

// readMember reads the (time, reach) box of ensemble member into its rows
// of x: steps [t0, t0+T) of N reaches converted by conv, the file's reach c
// into row row(c); ti is the box's time dimension (0: time-major).
func readMember(x *diffroute.DataTensor, member int, v netcdf.Var, name string, slab func(int, []uint64, []uint64) ([]uint64, []uint64),
	conv func(float64) float32, row func(int) int, ti, t0, T, N, box int) error {
	xd := x.Data[member*x.N*T : (member+1)*x.N*T]
	var unread []float32 // where the values of columns not read go
	if T > 0 && ti == 0 {
		cols := min(N, max(1, box>>10, box/T))
		rows := max(1, min(T, box/max(1, cols)))
		buf := make([]float64, rows*cols)
		for c0 := 0; c0 < N; c0 += cols {
			nc := min(cols, N-c0)
			for r0 := 0; r0 < T; r0 += rows {
				nr := min(rows, T-r0)
				bx := buf[:nr*nc]
				start, count := slab(member, []uint64{uint64(t0 + r0), uint64(c0)}, []uint64{uint64(nr), uint64(nc)})
				if err := readSliceFloat64(v, bx, start, count); err != nil {
					return fmt.Errorf("variable %s: %w", name, err)
				}
				// Transposed in tiles of 16 reaches: each pass over the
				// steps reads two cache lines of the box per step and
				// writes 16 series.
				for ct := 0; ct < nc; ct += 16 {
					w := min(16, nc-ct)
					var dst [16][]float32
					for c := 0; c < w; c++ {
						k := row(c0 + ct + c)
						if k < 0 {
							if len(unread) < nr {
								unread = make([]float32, rows)
							}
							dst[c] = unread[:nr]
							continue
						}
						o := k*T + r0
						dst[c] = xd[o : o+nr : o+nr]
					}
					for r := 0; r < nr; r++ {
						src := bx[r*nc+ct : r*nc+ct+w]
						for c, f := range src {
							dst[c][r] = conv(f)
						}
					}
				}
			}
		}
	} else if T > 0 {
		// Reach-major: each row is a reach's series.
		rows := max(1, box/T)
		buf := make([]float64, 0, rows*T)
		for r0 := 0; r0 < N; r0 += rows {
			nr := min(rows, N-r0)
			buf = buf[:nr*T]
			start, count := slab(member, []uint64{uint64(r0), uint64(t0)}, []uint64{uint64(nr), uint64(T)})
			if err := readSliceFloat64(v, buf, start, count); err != nil {
				return fmt.Errorf("variable %s: %w", name, err)
			}
			for r := 0; r < nr; r++ {
				k := row(r0 + r)
				if k < 0 {
					continue
				}
				dst := xd[k*T : k*T+T]
				for t := range dst {
					dst[t] = conv(buf[r*T+t])
				}
			}
		}
	}

	return nil
}

// timeLabels decodes CF times; without decodable units it returns the raw
// numbers and no step.
func timeLabels(vals []float64, units, calendar string) ([]string, time.Duration) {
	raw := func() []string {
		s := make([]string, len(vals))
		for i, v := range vals {
			s[i] = fmt.Sprint(v)
		}
		return s
	}
	switch strings.ToLower(calendar) {
	case "", "standard", "gregorian", "proleptic_gregorian":
	default:
		return raw(), 0
	}
	cf, err := ParseCFUnits(units)
	if err != nil {
		return raw(), 0
	}
	ts := make([]time.Time, len(vals))
	labels := make([]string, len(vals))
	for i, v := range vals {
		t, err := cf.Time(v)
		if err != nil {
			return raw(), 0
		}
		ts[i] = t
		labels[i] = FormatTime(t)
	}
	return labels, uniformStep(ts)
}

// findDataVar finds the data variable by name or by the default rules.
func findDataVar(ds netcdf.Dataset, name string) (netcdf.Var, string, error) {
	if name != "" {
		v, err := ds.Var(name)
		if err != nil {
			return v, name, fmt.Errorf("no variable %q: %w", name, err)
		}
		return v, name, nil
	}
	if v, ok := varByName(ds, RunoffVarNames...); ok {
		n, _ := v.Name()
		return v, n, nil
	}
	nv, err := ds.NVars()
	if err != nil {
		return netcdf.Var{}, "", err
	}
	var found []netcdf.Var
	var names []string
	for i := 0; i < nv; i++ {
		v := ds.VarN(i)
		dims, err := v.Dims()
		if err != nil || len(dims) != 2 && len(dims) != 3 {
			continue
		}
		t, err := v.Type()
		if err != nil || !numericType(t) {
			continue
		}
		n, _ := v.Name()
		if n == "time_bnds" || strings.HasSuffix(n, "_bnds") || strings.HasSuffix(n, "_bounds") {
			continue
		}
		found = append(found, v)
		names = append(names, n)
	}
	if len(found) != 1 {
		return netcdf.Var{}, "", fmt.Errorf("cannot choose the data variable (found %d two- or three-dimensional candidates %v); name it", len(found), names)
	}
	return found[0], names[0], nil
}

func numericType(t netcdf.Type) bool {
	switch t {
	case netcdf.BYTE, netcdf.SHORT, netcdf.INT, netcdf.FLOAT, netcdf.DOUBLE,
		netcdf.UBYTE, netcdf.USHORT, netcdf.UINT, netcdf.INT64, netcdf.UINT64:
		return true
	}
	return false
}

// varByName returns the first variable that exists among names.
func varByName(ds netcdf.Dataset, names ...string) (netcdf.Var, bool) {
	for _, n := range names {
		if v, err := ds.Var(n); err == nil {
			return v, true
		}
	}
	return netcdf.Var{}, false
}

// attrString reads a text attribute.
func attrString(v netcdf.Var, name string) (string, bool) {
	a := v.Attr(name)
	t, err := a.Type()
	if err != nil || t != netcdf.CHAR {
		return "", false
	}
	n, err := a.Len()
	if err != nil {
		return "", false
	}
	if n == 0 {
		return "", true
	}
	b := make([]byte, n)
	if err := a.ReadBytes(b); err != nil {
		return "", false
	}
	return strings.TrimRight(string(b), "\x00"), true
}

// attrFloat reads the first value of a numeric attribute.
func attrFloat(v netcdf.Var, name string) (float64, bool) {
	a := v.Attr(name)
	t, err := a.Type()
	if err != nil {
		return 0, false
	}
	n, err := a.Len()
	if err != nil || n == 0 {
		return 0, false
	}
	switch t {
	case netcdf.DOUBLE:
		b := make([]float64, n)
		if a.ReadFloat64s(b) == nil {
			return b[0], true
		}
	case netcdf.FLOAT:
		b := make([]float32, n)
		if a.ReadFloat32s(b) == nil {
			return float64(b[0]), true
		}
	case netcdf.INT:
		b := make([]int32, n)
		if a.ReadInt32s(b) == nil {
			return float64(b[0]), true
		}
	case netcdf.SHORT:
		b := make([]int16, n)
		if a.ReadInt16s(b) == nil {
			return float64(b[0]), true
		}
	case netcdf.INT64:
		b := make([]int64, n)
		if a.ReadInt64s(b) == nil {
			return float64(b[0]), true
		}
	case netcdf.BYTE:
		b := make([]int8, n)
		if a.ReadInt8s(b) == nil {
			return float64(b[0]), true
		}
	}
	return 0, false
}

func readAllFloat64(v netcdf.Var) ([]float64, error) {
	ls, err := v.LenDims()
	if err != nil {
		return nil, err
	}
	n := uint64(1)
	start := make([]uint64, len(ls))
	for _, l := range ls {
		n *= l
	}
	out := make([]float64, n)
	if n == 0 {
		return out, nil
	}
	return out, readSliceFloat64(v, out, start, ls)
}

// readSliceFloat64 reads a hyperslab of any numeric type into dst as float64.
func readSliceFloat64(v netcdf.Var, dst []float64, start, count []uint64) error {
	t, err := v.Type()
	if err != nil {
		return err
	}
	n := len(dst)
	if n == 0 {
		return nil
	}
	if len(start) == 0 {
		start, count = nil, nil
	}
	switch t {
	case netcdf.DOUBLE:
		return readVals(v, dst, start, count, netcdf.Var.ReadFloat64Slice, netcdf.Var.ReadFloat64s)
	case netcdf.FLOAT:
		return readConv(v, dst, start, count, netcdf.Var.ReadFloat32Slice, netcdf.Var.ReadFloat32s)
	case netcdf.INT:
		return readConv(v, dst, start, count, netcdf.Var.ReadInt32Slice, netcdf.Var.ReadInt32s)
	case netcdf.INT64:
		return readConv(v, dst, start, count, netcdf.Var.ReadInt64Slice, netcdf.Var.ReadInt64s)
	case netcdf.SHORT:
		return readConv(v, dst, start, count, netcdf.Var.ReadInt16Slice, netcdf.Var.ReadInt16s)
	case netcdf.BYTE:
		return readConv(v, dst, start, count, netcdf.Var.ReadInt8Slice, netcdf.Var.ReadInt8s)
	case netcdf.UINT:
		return readConv(v, dst, start, count, netcdf.Var.ReadUint32Slice, netcdf.Var.ReadUint32s)
	case netcdf.USHORT:
		return readConv(v, dst, start, count, netcdf.Var.ReadUint16Slice, netcdf.Var.ReadUint16s)
	case netcdf.UBYTE:
		return readConv(v, dst, start, count, netcdf.Var.ReadUint8Slice, netcdf.Var.ReadUint8s)
	case netcdf.UINT64:
		return readConv(v, dst, start, count, netcdf.Var.ReadUint64Slice, netcdf.Var.ReadUint64s)
	}
	return fmt.Errorf("unsupported netCDF type %v", t)
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

func readVals[T number](v netcdf.Var, dst []T, start, count []uint64,
	slice func(netcdf.Var, []T, []uint64, []uint64) error, all func(netcdf.Var, []T) error) error {
	if start == nil {
		return all(v, dst)
	}
	return slice(v, dst, start, count)
}

func readConv[T number](v netcdf.Var, dst []float64, start, count []uint64,
	slice func(netcdf.Var, []T, []uint64, []uint64) error, all func(netcdf.Var, []T) error) error {
	tmp := make([]T, len(dst))
	if err := readVals(v, tmp, start, count, slice, all); err != nil {
		return err
	}
	for i, x := range tmp {
		dst[i] = float64(x)
	}
	return nil
}

// VolumeToRate converts, in place, a tensor of volumes per step (m3, as in
// RAPID m3_riv files) into rates (m3/s) by dividing by the step, and sets
// Units to "m3 s-1". step must be positive.
func VolumeToRate(x *diffroute.DataTensor, step time.Duration) error {
	if step <= 0 {
		return errors.New("data: VolumeToRate needs a positive step")
	}
	s := step.Seconds()
	for i, v := range x.Data {
		x.Data[i] = float32(float64(v) / s)
	}
	x.Units = "m3 s-1"
	return nil
}

// defaultFill is netCDF's default fill value for v's type (NaN when the
// type has none worth treating as missing).
func defaultFill(v netcdf.Var) float64 {
	t, err := v.Type()
	if err != nil {
		return math.NaN()
	}
	switch t {
	case netcdf.FLOAT:
		return float64(float32(9.9692099683868690e+36)) // NC_FILL_FLOAT
	case netcdf.DOUBLE:
		return 9.9692099683868690e+36 // NC_FILL_DOUBLE
	case netcdf.INT:
		return -2147483647 // NC_FILL_INT
	case netcdf.SHORT:
		return -32767 // NC_FILL_SHORT
	}
	return math.NaN()
}

// directRead switches the direct reader of classic files on (tests compare
// it with libnetcdf's reads).
var directRead = true

// ncBox is how many values a netCDF table is read and written by at once.
var ncBox = 1 << 22

// invertOrder checks that order lists positions 0..n−1 once each and
// returns the position of each in order.
func invertOrder(order []int32, n int) ([]int32, error) {
	if len(order) != n {
		return nil, fmt.Errorf("order lists %d reaches of %d", len(order), n)
	}
	inv := make([]int32, n)
	for i := range inv {
		inv[i] = -1
	}
	for k, c := range order {
		if c < 0 || int(c) >= n || inv[c] >= 0 {
			return nil, fmt.Errorf("order entry %d: reach position %d out of range or repeated", k, c)
		}
		inv[c] = int32(k)
	}
	return inv, nil
}
