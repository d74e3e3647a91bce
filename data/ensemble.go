package data

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// WriteEnsembleNC writes discharge with several batch (ensemble) members
// as Qout(member, time, rivid) float32 "m3 s-1", with rivid(rivid) int32,
// member(member) int32 (1, 2, …) and time(time) (CF seconds since 1970 when
// the labels are dates, the step index otherwise), atomically. A ".nc4" path
// (or nc4 true) writes netCDF-4 with deflate level 4; otherwise classic.
func WriteEnsembleNC(path string, q *diffroute.DataTensor, nc4 bool) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if err := checkDischargeUnits(q.Units); err != nil {
		return err
	}
	if err := checkRivids(q.IDs); err != nil {
		return err
	}
	nc4 = nc4 || strings.EqualFold(filepath.Ext(path), ".nc4")
	o := qoutOptions(&QoutOptions{NetCDF4: nc4})
	tc := makeQoutTime(q.Times, q.T, q.Step)
	return writeAtomic(path, func(tmp string) error {
		ncMu.Lock()
		defer ncMu.Unlock()
		defer quietHDF5()()
		ds, err := netcdf.CreateFile(tmp, o.mode())
		if err != nil {
			return fmt.Errorf("data: %s: %w", path, err)
		}
		werr := writeEnsemble(ds, q, tc, nc4)
		if cerr := ds.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("data: %s: %w", path, werr)
		}
		return nil
	})
}

func writeEnsemble(ds netcdf.Dataset, q *diffroute.DataTensor, tc qoutTime, nc4 bool) error {
	md, err := ds.AddDim("member", uint64(q.B))
	if err != nil {
		return err
	}
	td, err := ds.AddDim("time", uint64(q.T))
	if err != nil {
		return err
	}
	rd, err := ds.AddDim("rivid", uint64(q.N))
	if err != nil {
		return err
	}
	qv, err := ds.AddVar("Qout", netcdf.FLOAT, []netcdf.Dim{md, td, rd})
	if err != nil {
		return err
	}
	if nc4 {
		if err := qv.SetCompression(true, true, 4); err != nil {
			return err
		}
	}
	mv, err := ds.AddVar("member", netcdf.INT, []netcdf.Dim{md})
	if err != nil {
		return err
	}
	rv, err := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rd})
	if err != nil {
		return err
	}
	tv, err := ds.AddVar("time", netcdf.DOUBLE, []netcdf.Dim{td})
	if err != nil {
		return err
	}
	for _, a := range []struct {
		v          netcdf.Var
		name, text string
	}{
		{qv, "long_name", "average river water discharge downstream of each river reach"},
		{qv, "units", "m3 s-1"}, {rv, "cf_role", "timeseries_id"}, {mv, "long_name", "ensemble member"},
	} {
		if a.name == "" {
			continue
		}
		if err := writeText(a.v.Attr(a.name), a.text); err != nil {
			return err
		}
	}
	if tc.cfTime {
		writeText(tv.Attr("units"), "seconds since 1970-01-01 00:00:00+00:00")
		writeText(tv.Attr("calendar"), "gregorian")
		writeText(tv.Attr("standard_name"), "time")
	} else {
		writeText(tv.Attr("units"), "1")
	}
	writeText(ds.Attr("Conventions"), "CF-1.6")
	writeText(ds.Attr("featureType"), "timeSeries")
	writeText(ds.Attr("source"), "diffroute-go")
	if err := ds.EndDef(); err != nil {
		return err
	}
	members := make([]int32, q.B)
	for b := range members {
		members[b] = int32(b + 1)
	}
	if err := mv.WriteInt32s(members); err != nil {
		return err
	}
	ids := make([]int32, q.N)
	for i, id := range q.IDs {
		ids[i] = int32(id)
	}
	if err := rv.WriteInt32s(ids); err != nil {
		return err
	}
	if err := tv.WriteFloat64s(tc.secs); err != nil {
		return err
	}
	// Time-major rows per member: Qout[b][t][i] = q[b][i][t].
	buf := make([]float32, q.B*q.T*q.N)
	for b := 0; b < q.B; b++ {
		for i := 0; i < q.N; i++ {
			for t, v := range q.Series(b, i) {
				buf[(b*q.T+t)*q.N+i] = v
			}
		}
	}
	return qv.WriteFloat32s(buf)
}
