package data

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// QoutOptions tune WriteQoutNC. The zero value writes RAPID's layout.
type QoutOptions struct {
	Var string // data variable name; default "Qout"
	// Units and LongName describe a variable other than discharge (a
	// gradient, say); default "m3 s-1" and RAPID's long name.
	Units, LongName string
	Title           string // global attribute title; default "diffroute-go discharge"
	Institution     string
	Source          string // default "diffroute-go"
	Comment         string
	// NetCDF4 writes netCDF-4 (HDF5) instead of classic: Qout is chunked
	// for reading series reach by reach (chunks of up to 512 steps × 256
	// reaches) and deflated at level Compress (0: not compressed; 1–9), and
	// the file follows CF-1.8.
	NetCDF4  bool
	Compress int
	// Lat and Lon, when given, hold each reach's coordinates (degrees, in
	// the order of the reach ids written): they become lat(rivid) and
	// lon(rivid), auxiliary coordinates of Qout.
	Lat, Lon []float64
	// Order, when set, writes q's rows in another order: the file's reach
	// at position j is row Order[j] of q (every row once), rivid included.
	// A router working in its own order (diffroute.RoutingOrder) writes
	// the file's order this way at no extra cost.
	Order []int32
}

// WriteQoutNC writes a discharge tensor (one batch member, m3/s) in RAPID's
// Qout layout (netCDF classic, 64-bit offsets; time is the UNLIMITED record
// dimension, as RAPID writes it): Qout(time, rivid) float32 "m3 s-1",
// rivid(rivid) int32 in tensor order, time(time) and, when the step is
// known, time_bnds(time, nv) = [t, t + step]. With time labels parseable by
// ParseTime, time holds "seconds since 1970-01-01 00:00:00+00:00" as int32
// when every value is a whole second within int32 range (as RAPID writes it),
// float64 otherwise; without them it holds the step index (units "1").
// Global attributes follow RAPID: Conventions = "CF-1.6",
// featureType = "timeSeries", title, institution, source, history,
// references, comment.
//
// The file is written to a temporary name and renamed into place; on error
// nothing is left at path.
func WriteQoutNC(path string, q *diffroute.DataTensor, opt *QoutOptions) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if q.B != 1 {
		return fmt.Errorf("data: a Qout file holds one batch member, the tensor has %d", q.B)
	}
	if opt == nil || opt.Units == "" {
		if err := checkDischargeUnits(q.Units); err != nil {
			return err
		}
	}
	if err := checkRivids(q.IDs); err != nil {
		return err
	}
	o := qoutOptions(opt)
	if err := o.check(len(q.IDs)); err != nil {
		return err
	}
	if o.Order != nil {
		if _, err := invertOrder(o.Order, q.N); err != nil {
			return fmt.Errorf("data: %s: %w", path, err)
		}
	}
	tc := makeQoutTime(q.Times, q.T, q.Step)

	// A classic file's values are written directly (writeQoutDirect) once
	// libnetcdf has written the rest, without fill values first.
	direct := directWrite && !o.NetCDF4 && q.N > 0 && q.T > 0
	return writeAtomic(path, func(tmp string) error {
		var err error
		if direct {
			if err = createQoutHeader(tmp, q.IDs, &o, &tc); err == nil {
				err = writeQoutDirect(tmp, q, &o)
			}
		} else {
			err = func() error {
				ncMu.Lock()
				defer ncMu.Unlock()
				defer quietHDF5()()
				ds, err := netcdf.CreateFile(tmp, o.mode())
				if err != nil {
					return err
				}
				werr := writeQout(ds, q, &o, &tc)
				if cerr := ds.Close(); werr == nil {
					werr = cerr
				}
				return werr
			}()
		}
		if err != nil {
			return fmt.Errorf("data: %s: %w", path, err)
		}
		return nil
	})
}

// checkDischargeUnits accepts the spellings of m3 s-1 (and "" for unknown).
func checkDischargeUnits(units string) error {
	switch strings.ReplaceAll(strings.ToLower(units), " ", "") {
	case "", "m3s-1", "m3/s", "m^3/s", "m3.s-1", "m**3/s", "m3s^-1", "cms", "cumecs":
		return nil
	}
	return fmt.Errorf("data: Qout holds discharge in m3 s-1, the tensor's units are %q", units)
}

// checkRivids checks that reach ids fit RAPID's int32 rivid.
func checkRivids(ids []int64) error {
	for _, id := range ids {
		if id < math.MinInt32 || id > math.MaxInt32 {
			return fmt.Errorf("data: reach id %d does not fit RAPID's int32 rivid", id)
		}
	}
	return nil
}

// qoutOptions fills in the defaults of opt.
func qoutOptions(opt *QoutOptions) QoutOptions {
	o := QoutOptions{Var: "Qout", Title: "diffroute-go discharge", Source: "diffroute-go",
		Units: "m3 s-1", LongName: "average river water discharge downstream of each river reach"}
	if opt != nil {
		if opt.Units != "" {
			o.Units = opt.Units
		}
		if opt.LongName != "" {
			o.LongName = opt.LongName
		}
		if opt.Var != "" {
			o.Var = opt.Var
		}
		if opt.Title != "" {
			o.Title = opt.Title
		}
		if opt.Source != "" {
			o.Source = opt.Source
		}
		o.Institution, o.Comment = opt.Institution, opt.Comment
		o.NetCDF4, o.Compress, o.Lat, o.Lon, o.Order = opt.NetCDF4, opt.Compress, opt.Lat, opt.Lon, opt.Order
	}
	return o
}

// qoutTime is the time coordinate of a Qout file.
type qoutTime struct {
	T       int
	secs    []float64 // seconds since 1970 (cfTime) or step index
	cfTime  bool      // labels parsed: CF seconds since 1970
	intTime bool      // time stored as int32
	bounds  bool      // time_bnds written
	step    time.Duration
}

// makeQoutTime derives the time coordinate of T steps labelled times (may
// be empty) with the given step (0: from the labels when uniform).
func makeQoutTime(times []string, T int, step time.Duration) qoutTime {
	secs := make([]float64, T)
	cfTime := false
	if ts, ok := parseTimes(times); ok && len(ts) == T {
		cfTime = true
		for t, tm := range ts {
			secs[t] = float64(tm.UnixNano()) / 1e9
		}
	} else {
		for t := range secs {
			secs[t] = float64(t)
		}
	}
	if cfTime && step == 0 {
		if ts, ok := parseTimes(times); ok {
			step = uniformStep(ts)
		}
	}
	intTime := true
	for _, s := range secs {
		if s != math.Trunc(s) || s < math.MinInt32 || s > math.MaxInt32 {
			intTime = false
		}
	}
	bounds := cfTime && step > 0 && step%time.Second == 0 && intTime
	if bounds {
		last := secs[len(secs)-1] + step.Seconds()
		if T == 0 || last > math.MaxInt32 {
			bounds = false
		}
	}
	return qoutTime{T: T, secs: secs, cfTime: cfTime, intTime: intTime, bounds: bounds, step: step}
}

func writeQout(ds netcdf.Dataset, q *diffroute.DataTensor, o *QoutOptions, tc *qoutTime) error {
	ids := q.IDs
	if o.Order != nil {
		ids = make([]int64, q.N)
		for j, k := range o.Order {
			ids[j] = q.IDs[k]
		}
	}
	_, qv, err := writeQoutHeader(ds, ids, o, tc)
	if err != nil {
		return err
	}
	return writeQoutValues(qv, q, o)
}

// createQoutHeader writes at tmp everything of a classic Qout file but the
// values, without fill values, for a tensor whose rows are the reaches
// rows (o.Order puts row o.Order[j] at the file's reach j): the values are
// then written directly (qoutValues).
func createQoutHeader(tmp string, rows []int64, o *QoutOptions, tc *qoutTime) error {
	ids := rows
	if o.Order != nil {
		ids = make([]int64, len(rows))
		for j, k := range o.Order {
			ids[j] = rows[k]
		}
	}
	ncMu.Lock()
	defer ncMu.Unlock()
	defer quietHDF5()()
	ds, err := netcdf.CreateFile(tmp, o.mode())
	if err != nil {
		return err
	}
	werr := setNoFill(ds)
	if werr == nil {
		_, _, werr = writeQoutHeader(ds, ids, o, tc)
	}
	if cerr := ds.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// writeQoutValues writes the values of q through libnetcdf.
func writeQoutValues(qv ncRecVar, q *diffroute.DataTensor, o *QoutOptions) error {
	if q.N == 0 || q.T == 0 {
		return nil
	}
	// Time-major boxes of about 4 M values (time steps × a block of
	// reaches), so that each reach's series is read in one piece rather
	// than one value per pass over the whole tensor.
	box := ncBox
	cols := min(q.N, max(1, box>>10, box/q.T))
	rows := max(1, min(q.T, box/cols))
	buf := make([]float32, rows*cols)
	for c0 := 0; c0 < q.N; c0 += cols {
		nc := min(cols, q.N-c0)
		for t0 := 0; t0 < q.T; t0 += rows {
			nr := min(rows, q.T-t0)
			b := buf[:nr*nc]
			// Transposed in tiles of 16 reaches (see readRunoff).
			for ct := 0; ct < nc; ct += 16 {
				w := min(16, nc-ct)
				var src [16][]float32
				for c := 0; c < w; c++ {
					i := c0 + ct + c
					if o.Order != nil {
						i = int(o.Order[i])
					}
					src[c] = q.Data[i*q.T+t0 : i*q.T+t0+nr : i*q.T+t0+nr]
				}
				for r := 0; r < nr; r++ {
					dst := b[r*nc+ct : r*nc+ct+w]
					for c := range dst {
						dst[c] = src[c][r]
					}
				}
			}
			if err := qv.putFloat32(b, []uint64{uint64(t0), uint64(c0)}, []uint64{uint64(nr), uint64(nc)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeQoutHeader defines the Qout layout for reaches ids and tc.T steps,
// leaves define mode and writes rivid, time and time_bnds. Writing time
// makes the file tc.T records long; the data variable is still unwritten
// (netCDF's default fill value). It returns the data variable as go-netcdf
// reads it and as ncRecVar writes it (time is a record dimension, which
// go-netcdf's writers cannot extend).
func writeQoutHeader(ds netcdf.Dataset, ids []int64, o *QoutOptions, tc *qoutTime) (netcdf.Var, ncRecVar, error) {
	var none netcdf.Var
	var noneRec ncRecVar
	secs, cfTime, intTime, bounds, step := tc.secs, tc.cfTime, tc.intTime, tc.bounds, tc.step
	N, T := len(ids), tc.T
	// time is the record dimension, as in RAPID's Qout.
	tdim, err := ds.AddDim("time", ncUnlimited)
	if err != nil {
		return none, noneRec, err
	}
	rdim, err := ds.AddDim("rivid", uint64(N))
	if err != nil {
		return none, noneRec, err
	}
	var nv netcdf.Dim
	if bounds {
		if nv, err = ds.AddDim("nv", 2); err != nil {
			return none, noneRec, err
		}
	}
	qv, err := ds.AddVar(o.Var, netcdf.FLOAT, []netcdf.Dim{tdim, rdim})
	if err != nil {
		return none, noneRec, err
	}
	rv, err := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rdim})
	if err != nil {
		return none, noneRec, err
	}
	ttype := netcdf.DOUBLE
	if intTime {
		ttype = netcdf.INT
	}
	tv, err := ds.AddVar("time", ttype, []netcdf.Dim{tdim})
	if err != nil {
		return none, noneRec, err
	}
	if bounds {
		if _, err = ds.AddVar("time_bnds", netcdf.INT, []netcdf.Dim{tdim, nv}); err != nil {
			return none, noneRec, err
		}
	}
	attrs := []struct {
		v          netcdf.Var
		name, text string
	}{
		{qv, "long_name", o.LongName},
		{qv, "units", o.Units},
		{qv, "cell_methods", "time: mean"},
		{rv, "long_name", "unique identifier for each river reach"},
		{rv, "units", "1"},
		{rv, "cf_role", "timeseries_id"},
		{tv, "long_name", "time"},
	}
	if cfTime {
		attrs = append(attrs, []struct {
			v          netcdf.Var
			name, text string
		}{
			{tv, "standard_name", "time"},
			{tv, "units", "seconds since 1970-01-01 00:00:00+00:00"},
			{tv, "calendar", "gregorian"},
			{tv, "axis", "T"},
		}...)
		if bounds {
			attrs = append(attrs, struct {
				v          netcdf.Var
				name, text string
			}{tv, "bounds", "time_bnds"})
		}
	} else {
		attrs = append(attrs, struct {
			v          netcdf.Var
			name, text string
		}{tv, "units", "1"}, struct {
			v          netcdf.Var
			name, text string
		}{tv, "comment", "time step index (the discharge had no parseable time labels)"})
	}
	globals := [][2]string{
		{"Conventions", "CF-1.6"},
		{"title", o.Title},
		{"institution", o.Institution},
		{"source", o.Source},
		{"history", "date_created: " + time.Now().UTC().Format(time.RFC3339)},
		{"references", "https://github.com/c-h-david/rapid/, http://dx.doi.org/10.1175/2011JHM1345.1"},
		{"comment", o.Comment},
		{"featureType", "timeSeries"},
	}
	var lat, lon netcdf.Var
	if o.NetCDF4 {
		if err := defineNC4(ds, qv, o, 0, T, N); err != nil {
			return none, noneRec, err
		}
		globals[0][1] = "CF-1.8"
	}
	if o.Lat != nil {
		if lat, err = ds.AddVar("lat", netcdf.DOUBLE, []netcdf.Dim{rdim}); err != nil {
			return none, noneRec, err
		}
		if lon, err = ds.AddVar("lon", netcdf.DOUBLE, []netcdf.Dim{rdim}); err != nil {
			return none, noneRec, err
		}
		for _, a := range [][3]string{
			{"lat", "standard_name", "latitude"}, {"lat", "units", "degrees_north"}, {"lat", "long_name", "latitude of the reach"},
			{"lon", "standard_name", "longitude"}, {"lon", "units", "degrees_east"}, {"lon", "long_name", "longitude of the reach"},
		} {
			v := lat
			if a[0] == "lon" {
				v = lon
			}
			if err := writeText(v.Attr(a[1]), a[2]); err != nil {
				return none, noneRec, err
			}
		}
		if err := writeText(qv.Attr("coordinates"), "lat lon"); err != nil {
			return none, noneRec, err
		}
	}
	for _, a := range attrs {
		if err := writeText(a.v.Attr(a.name), a.text); err != nil {
			return none, noneRec, fmt.Errorf("attribute %s: %w", a.name, err)
		}
	}
	for _, a := range globals {
		if err := writeText(ds.Attr(a[0]), a[1]); err != nil {
			return none, noneRec, fmt.Errorf("global attribute %s: %w", a[0], err)
		}
	}
	if err := ds.EndDef(); err != nil {
		return none, noneRec, err
	}

	rivid := make([]int32, N)
	for i, id := range ids {
		rivid[i] = int32(id)
	}
	if N > 0 {
		if err := rv.WriteInt32s(rivid); err != nil {
			return none, noneRec, err
		}
		if o.Lat != nil {
			if err := lat.WriteFloat64s(o.Lat); err != nil {
				return none, noneRec, err
			}
			if err := lon.WriteFloat64s(o.Lon); err != nil {
				return none, noneRec, err
			}
		}
	}
	qr, err := recVar(ds, o.Var)
	if err != nil {
		return none, noneRec, err
	}
	if T == 0 {
		return qv, qr, nil
	}
	tr, err := recVar(ds, "time")
	if err != nil {
		return none, noneRec, err
	}
	if intTime {
		it := make([]int32, T)
		for t, s := range secs {
			it[t] = int32(s)
		}
		if err := tr.putInt32(it, []uint64{0}, []uint64{uint64(T)}); err != nil {
			return none, noneRec, err
		}
	} else if err := tr.putFloat64(secs, []uint64{0}, []uint64{uint64(T)}); err != nil {
		return none, noneRec, err
	}
	if bounds {
		br, err := recVar(ds, "time_bnds")
		if err != nil {
			return none, noneRec, err
		}
		b := make([]int32, 2*T)
		st := int32(step / time.Second)
		for t, s := range secs {
			b[2*t], b[2*t+1] = int32(s), int32(s)+st
		}
		if err := br.putInt32(b, []uint64{0, 0}, []uint64{uint64(T), 2}); err != nil {
			return none, noneRec, err
		}
	}
	return qv, qr, nil
}

// writeText writes a text attribute; an empty string is skipped.
func writeText(a netcdf.Attr, s string) error {
	if s == "" {
		return nil
	}
	return a.WriteBytes([]byte(s))
}
