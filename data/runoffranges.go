package data

import (
	"fmt"
	"slices"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// RunoffRanges reads time ranges of one runoff variable of a classic
// netCDF file straight from the file, the header read once: a time-chunked
// run reads each chunk without libnetcdf opening the file and reading the
// reach ids and times again.
type RunoffRanges struct {
	path          string
	r             *classicReader
	rowOf         []int32
	ti, n, fullT  int
	fill, missing float64
	ids           []int64
	times         []string
	step          time.Duration
	units         string
}

// OpenRunoffRanges prepares reads of time ranges of the variable that
// ReadRunoffNC(path, opt) reads, in the rows opt asks for (Order or
// Columns); TimeStart, TimeCount and Into are ignored. It returns nil and
// no error when the variable is not read straight from the file
// (netCDF-4, scaled values, ensembles, reaches as records): read those
// with ReadRunoffNC.
func OpenRunoffRanges(path string, opt *NCOptions) (*RunoffRanges, error) {
	o := NCOptions{}
	if opt != nil {
		o = *opt
	}
	o.TimeStart, o.TimeCount, o.Into = 0, -1, nil
	var rg RunoffRanges
	o.ranges = &rg
	head, err := ReadRunoffNC(path, &o)
	if err != nil || rg.r == nil {
		return nil, err
	}
	rg.ids, rg.times, rg.step, rg.units = head.IDs, head.Times, head.Step, head.Units
	return &rg, nil
}

// Steps is the variable's number of steps.
func (rg *RunoffRanges) Steps() int { return rg.fullT }

// Read reads steps [t0, t0+x.T) into x, a tensor of one batch member
// and the rows asked for, as ReadRunoffNC would return them (ids, times,
// step and units set).
func (rg *RunoffRanges) Read(x *diffroute.DataTensor, t0 int) error {
	T := x.T
	switch {
	case x.B != 1 || x.N != len(rg.ids) || len(x.Data) != x.N*T:
		return fmt.Errorf("%s: a tensor of %d members x %d reaches x %d steps for %d reaches", rg.path, x.B, x.N, x.T, len(rg.ids))
	case t0 < 0 || t0+T > rg.fullT:
		return fmt.Errorf("%s: variable %s: steps [%d, %d) beyond its %d steps", rg.path, rg.r.v.name, t0, t0+T, rg.fullT)
	}
	if err := rg.r.read(x, rg.rowOf, rg.ti, t0, T, rg.n, rg.fullT, rg.fill, rg.missing); err != nil {
		return fmt.Errorf("%s: %w", rg.path, err)
	}
	x.IDs, x.Step, x.Units, x.Times = rg.ids, rg.step, rg.units, nil
	if len(rg.times) == rg.fullT {
		x.Times = slices.Clip(rg.times[t0 : t0+T])
	}
	return nil
}
