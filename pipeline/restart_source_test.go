package pipeline

import (
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// TestSourceFromShiftsEveryReader: a source that starts k steps in
// (continuing from a state) shifts the start of each of its readers.
func TestSourceFromShiftsEveryReader(t *testing.T) {
	var got []int
	rec := func(t0 int) (*diffroute.DataTensor, error) { got = append(got, t0); return nil, nil }
	src := &runoffSource{
		times:      make([]string, 10),
		read:       func(t0, count int) (*diffroute.DataTensor, error) { return rec(t0) },
		readMember: func(b, t0, count int) (*diffroute.DataTensor, error) { return rec(t0) },
		readOrdered: func(t0, count int, order []int32, _ *diffroute.DataTensor) (*diffroute.DataTensor, error) {
			return rec(t0)
		},
		readColumns: func(t0, count int, cols []int32) (*diffroute.DataTensor, error) { return rec(t0) },
		rangesOrdered: func([]int32) (func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error), error) {
			return func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error) { return rec(t0) }, nil
		},
	}
	s := src.from(4)
	s.read(1, 2)
	s.readMember(0, 1, 2)
	s.readOrdered(1, 2, nil, nil)
	s.readColumns(1, 2, nil)
	ranges, _ := s.rangesOrdered(nil)
	ranges(1, 2, nil)
	if len(s.times) != 6 || len(got) != 5 || got[0] != 5 || got[1] != 5 || got[2] != 5 || got[3] != 5 || got[4] != 5 {
		t.Fatalf("%d steps left, readers started at %v, want 6 and [5 5 5 5 5]", len(s.times), got)
	}
}
