package diffroute

import (
	"fmt"
)

// alignRunoff returns, for each network reach, the runoff row holding its id,
// so that routers read runoff by id and never by position. Rows for ids not in
// the network are ignored; a network reach without a row is an error.
func alignRunoff(runoff *DataTensor, net *Network) ([]int, error) {
	if runoff == nil {
		return nil, fmt.Errorf("diffroute: no runoff")
	}
	if err := runoff.Validate(); err != nil {
		return nil, err
	}
	if runoff.B < 1 {
		return nil, fmt.Errorf("diffroute: runoff has no batch members")
	}
	rows := make(map[int64]int, runoff.N)
	for j, id := range runoff.IDs {
		if k, dup := rows[id]; dup {
			return nil, fmt.Errorf("diffroute: runoff has reach %d twice (rows %d and %d)", id, k, j)
		}
		rows[id] = j
	}
	idx := make([]int, net.Len())
	missing := 0
	var first int64
	for i, id := range net.IDs() {
		j, ok := rows[id]
		if !ok {
			if missing == 0 {
				first = id
			}
			missing++
			continue
		}
		idx[i] = j
	}
	if missing > 0 {
		return nil, fmt.Errorf("diffroute: runoff lacks %d of the network's %d reaches (first: reach %d)", missing, net.Len(), first)
	}
	return idx, nil
}

// newDischarge allocates the output tensor for net with runoff's batch and
// time labels.
func newDischarge(runoff *DataTensor, net *Network) *DataTensor {
	y := NewDataTensor(runoff.B, net.IDs(), runoff.T)
	if len(runoff.Times) == runoff.T {
		y.Times = append([]string(nil), runoff.Times...)
	}
	y.Step = runoff.Step
	y.Units = "m3/s"
	return y
}
