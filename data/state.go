package data

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// StateFormat and StateVersion identify diffroute state files: a reader
// refuses a file of another format or a newer version.
const (
	StateFormat  = "diffroute-state"
	StateVersion = 1
)

// WriteStateNC writes a routing state (see diffroute.State) to a
// self-describing netCDF-4 file, atomically (a temporary file renamed into
// place):
//
//   - global attributes: format = "diffroute-state", format_version, method,
//     irf, substeps, max_delay, params_checksum, steps (runoff steps routed
//     since the start of the run), time (label of the last step routed),
//     step_seconds, and convention_<name> for each convention;
//   - rivid(reach): the network's reach ids, int64;
//   - per state variable V: V(member, reach, V_width) float64, or, when V
//     covers only some reaches, V(member, V_reach, V_width) with their ids in
//     V_rivid(V_reach).
func WriteStateNC(path string, s *diffroute.State) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return writeAtomic(path, func(tmp string) error {
		ncMu.Lock()
		defer ncMu.Unlock()
		defer quietHDF5()()
		ds, err := netcdf.CreateFile(tmp, netcdf.CLOBBER|netcdf.NETCDF4)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		werr := writeState(ds, s)
		cerr := ds.Close()
		if werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("%s: %w", path, werr)
		}
		return nil
	})
}

func writeState(ds netcdf.Dataset, s *diffroute.State) error {
	text := map[string]string{
		"format": StateFormat, "method": string(s.Method), "irf": s.IRF, "params_checksum": s.Params,
		"time": s.Time, "title": "diffroute-go routing state (restart file)", "source": "diffroute-go",
	}
	for k, v := range s.Conventions {
		text["convention_"+k] = v
	}
	for _, k := range slices.Sorted(mapKeys(text)) {
		if text[k] == "" {
			continue
		}
		if err := ds.Attr(k).WriteBytes([]byte(text[k])); err != nil {
			return err
		}
	}
	ints := map[string]int64{"format_version": StateVersion, "substeps": int64(s.SubSteps), "max_delay": int64(s.MaxDelay), "steps": s.Steps}
	for _, k := range slices.Sorted(mapKeys(ints)) {
		if err := ds.Attr(k).WriteInt64s([]int64{ints[k]}); err != nil {
			return err
		}
	}
	if err := ds.Attr("step_seconds").WriteFloat64s([]float64{s.Step.Seconds()}); err != nil {
		return err
	}
	mdim, err := ds.AddDim("member", uint64(s.B))
	if err != nil {
		return err
	}
	rdim, err := ds.AddDim("reach", uint64(len(s.IDs)))
	if err != nil {
		return err
	}
	rv, err := ds.AddVar("rivid", netcdf.INT64, []netcdf.Dim{rdim})
	if err != nil {
		return err
	}
	if err := rv.Attr("cf_role").WriteBytes([]byte("timeseries_id")); err != nil {
		return err
	}
	type pending struct {
		v    netcdf.Var
		data []float64
		ids  *netcdf.Var
		idv  []int64
	}
	var todo []pending
	for _, sv := range s.Vars {
		if sv.Width == 0 || len(sv.Data) == 0 {
			continue // netCDF has no empty fixed dimensions; readers default these
		}
		if !validVarName(sv.Name) {
			return fmt.Errorf("state variable name %q is not a plain name", sv.Name)
		}
		wdim, err := ds.AddDim(sv.Name+"_width", uint64(sv.Width))
		if err != nil {
			return err
		}
		d := rdim
		p := pending{data: sv.Data}
		if sv.IDs != nil {
			if d, err = ds.AddDim(sv.Name+"_reach", uint64(len(sv.IDs))); err != nil {
				return err
			}
			iv, err := ds.AddVar(sv.Name+"_rivid", netcdf.INT64, []netcdf.Dim{d})
			if err != nil {
				return err
			}
			p.ids, p.idv = &iv, sv.IDs
		}
		v, err := ds.AddVar(sv.Name, netcdf.DOUBLE, []netcdf.Dim{mdim, d, wdim})
		if err != nil {
			return err
		}
		// History arrays are long and smooth: deflate them.
		if err := v.SetCompression(true, true, 1); err != nil {
			return err
		}
		p.v = v
		todo = append(todo, p)
	}
	if err := ds.EndDef(); err != nil {
		return err
	}
	if err := rv.WriteInt64s(s.IDs); err != nil {
		return err
	}
	for _, p := range todo {
		if p.ids != nil {
			if err := p.ids.WriteInt64s(p.idv); err != nil {
				return err
			}
		}
		if err := p.v.WriteFloat64s(p.data); err != nil {
			return err
		}
	}
	return nil
}

func validVarName(s string) bool {
	if s == "" || s == "rivid" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ReadStateNC reads a state file written by WriteStateNC. A file of another
// format, a newer format version, or inconsistent sizes is an error naming
// the file.
func ReadStateNC(path string) (*diffroute.State, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	if err := checkNCSizes(path); err != nil {
		return nil, err
	}
	ncMu.Lock()
	defer ncMu.Unlock()
	defer quietHDF5()()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		return nil, fmt.Errorf("%s: not a netCDF file (%w)", path, err)
	}
	defer ds.Close()
	s, err := readState(ds)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func globalText(ds netcdf.Dataset, name string) string {
	a := ds.Attr(name)
	if t, err := a.Type(); err != nil || t != netcdf.CHAR {
		return ""
	}
	n, err := a.Len()
	if err != nil || n == 0 || n > 1<<20 {
		return ""
	}
	b := make([]byte, n)
	if err := a.ReadBytes(b); err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\x00")
}

func globalInt(ds netcdf.Dataset, name string) (int64, bool) {
	a := ds.Attr(name)
	if n, err := a.Len(); err != nil || n != 1 {
		return 0, false
	}
	v := make([]int64, 1)
	if err := a.ReadInt64s(v); err != nil {
		return 0, false
	}
	return v[0], true
}

func readState(ds netcdf.Dataset) (*diffroute.State, error) {
	if f := globalText(ds, "format"); f != StateFormat {
		return nil, fmt.Errorf("not a diffroute state file (format attribute %q, want %q)", f, StateFormat)
	}
	ver, ok := globalInt(ds, "format_version")
	if !ok || ver < 1 {
		return nil, fmt.Errorf("state file has no valid format_version")
	}
	if ver > StateVersion {
		return nil, fmt.Errorf("state file is format version %d; this diffroute reads up to version %d: upgrade diffroute", ver, StateVersion)
	}
	s := &diffroute.State{Method: diffroute.Method(globalText(ds, "method")), IRF: globalText(ds, "irf"),
		Params: globalText(ds, "params_checksum"), Time: globalText(ds, "time"), Conventions: map[string]string{}}
	for name, dst := range map[string]*int{"substeps": &s.SubSteps, "max_delay": &s.MaxDelay} {
		v, ok := globalInt(ds, name)
		if !ok || v < 0 || v > 1<<30 {
			return nil, fmt.Errorf("state file has no valid %s attribute", name)
		}
		*dst = int(v)
	}
	steps, ok := globalInt(ds, "steps")
	if !ok || steps < 0 {
		return nil, fmt.Errorf("state file has no valid steps attribute")
	}
	s.Steps = steps
	{
		a := ds.Attr("step_seconds")
		v := make([]float64, 1)
		if n, err := a.Len(); err == nil && n == 1 && a.ReadFloat64s(v) == nil && v[0] > 0 && v[0] < 1e10 {
			s.Step = time.Duration(v[0] * float64(time.Second))
		}
	}
	nattrs, err := ds.NAttrs()
	if err != nil {
		return nil, err
	}
	for k := 0; k < nattrs; k++ {
		a, err := ds.AttrN(k)
		if err != nil {
			return nil, err
		}
		if name := a.Name(); strings.HasPrefix(name, "convention_") {
			s.Conventions[strings.TrimPrefix(name, "convention_")] = globalText(ds, name)
		}
	}
	mdim, err := ds.Dim("member")
	if err != nil {
		return nil, fmt.Errorf("state file has no member dimension")
	}
	b, err := mdim.Len()
	if err != nil {
		return nil, err
	}
	s.B = int(b)
	rv, err := ds.Var("rivid")
	if err != nil {
		return nil, fmt.Errorf("state file has no rivid variable")
	}
	if s.IDs, err = readInt64Var(rv); err != nil {
		return nil, fmt.Errorf("rivid: %w", err)
	}
	nvars, err := ds.NVars()
	if err != nil {
		return nil, err
	}
	for k := 0; k < nvars; k++ {
		v := ds.VarN(k)
		name, err := v.Name()
		if err != nil {
			return nil, err
		}
		if name == "rivid" || strings.HasSuffix(name, "_rivid") {
			continue
		}
		dims, err := v.LenDims()
		if err != nil {
			return nil, err
		}
		if len(dims) != 3 || dims[0] != b {
			return nil, fmt.Errorf("state variable %s has dimensions %v, want (member, reach, width)", name, dims)
		}
		sv := diffroute.StateVar{Name: name, Width: int(dims[2])}
		rows := int(dims[1])
		if iv, err := ds.Var(name + "_rivid"); err == nil {
			if sv.IDs, err = readInt64Var(iv); err != nil {
				return nil, fmt.Errorf("%s_rivid: %w", name, err)
			}
		}
		if want := len(s.IDs); sv.IDs == nil && rows != want || sv.IDs != nil && rows != len(sv.IDs) {
			return nil, fmt.Errorf("state variable %s has %d reaches, its ids %d", name, rows, max(want, len(sv.IDs)))
		}
		sv.Data = make([]float64, int(b)*rows*sv.Width)
		if len(sv.Data) > 0 {
			if err := v.ReadFloat64s(sv.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		s.Vars = append(s.Vars, sv)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func readInt64Var(v netcdf.Var) ([]int64, error) {
	n, err := v.Len()
	if err != nil {
		return nil, err
	}
	ids := make([]int64, n)
	if n > 0 {
		if err := v.ReadInt64s(ids); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// StateContinues says why a state does not continue a run whose first
// runoff step is labelled first (step: the run's runoff step), or returns
// nil: the state's last step plus one step must be first. A state or run
// without time labels cannot be checked and passes.
func StateContinues(s *diffroute.State, first string, step time.Duration) error {
	if s.Time == "" || first == "" {
		return nil
	}
	if s.Step > 0 && step > 0 && s.Step != step {
		return fmt.Errorf("state is for a runoff step of %v, the runoff's step is %v", s.Step, step)
	}
	last, err1 := ParseTime(s.Time)
	t0, err2 := ParseTime(first)
	if err1 != nil || err2 != nil {
		if _, e := strconv.Atoi(first); e == nil {
			return nil // step indices, no calendar: nothing to compare
		}
		return fmt.Errorf("state time %q or runoff time %q is not a date", s.Time, first)
	}
	if d := step; d > 0 && !last.Add(d).Equal(t0) {
		return fmt.Errorf("state ends at %s, so the runoff must start at %s, but it starts at %s (not contiguous)",
			FormatTime(last), FormatTime(last.Add(d)), FormatTime(t0))
	}
	return nil
}
