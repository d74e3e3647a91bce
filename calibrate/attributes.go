package calibrate

import (
	"fmt"
	"math"
)

// Attributes are reach attributes (length, upstream area, slope, …) in
// network order: Values[i][j] is attribute Names[j] of reach i. IDs, when
// set, are the reaches' river ids, so that errors name the reach a user can
// find in the file rather than its position in the network.
type Attributes struct {
	Names  []string
	Values [][]float64
	IDs    []int64
}

// reach names reach i for an error message.
func (a *Attributes) reach(i int) string {
	if i < len(a.IDs) {
		return fmt.Sprintf("reach %d", a.IDs[i])
	}
	return fmt.Sprintf("the reach at network position %d", i)
}

// Standardization turns raw attributes into the inputs of a learned map:
// the log of an attribute that is positive everywhere in the training basin
// (lengths, areas and slopes span orders of magnitude, and hydraulic laws
// are power laws in them), then centred and scaled to unit variance with
// the training basin's mean and deviation. A map trained on one basin is
// applied to another with the same Standardization.
type Standardization struct {
	Names []string  `json:"names"`
	Log   []bool    `json:"log"`
	Mean  []float64 `json:"mean"`
	Std   []float64 `json:"std"`
}

// FitStandardization fits the standardisation of the given attributes.
func FitStandardization(a *Attributes) (*Standardization, error) {
	if a == nil || len(a.Values) == 0 || len(a.Names) == 0 {
		return nil, fmt.Errorf("calibrate: no reach attributes")
	}
	J := len(a.Names)
	s := &Standardization{Names: append([]string(nil), a.Names...), Log: make([]bool, J), Mean: make([]float64, J), Std: make([]float64, J)}
	for j := range J {
		pos := true
		for i, row := range a.Values {
			if len(row) != J {
				return nil, fmt.Errorf("calibrate: %s has %d attributes for %d names", a.reach(i), len(row), J)
			}
			v := row[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("calibrate: attribute %s of %s is %v", a.Names[j], a.reach(i), v)
			}
			pos = pos && v > 0
		}
		s.Log[j] = pos
		var sum, sq float64
		for _, row := range a.Values {
			v := s.raw(j, row[j])
			sum += v
			sq += v * v
		}
		n := float64(len(a.Values))
		s.Mean[j] = sum / n
		s.Std[j] = math.Sqrt(max(sq/n-s.Mean[j]*s.Mean[j], 0))
		if s.Std[j] < 1e-12*max(1, math.Abs(s.Mean[j])) {
			s.Std[j] = 1 // a constant attribute carries no information: it becomes 0
		}
	}
	return s, nil
}

func (s *Standardization) raw(j int, v float64) float64 {
	if s.Log[j] {
		return math.Log(v)
	}
	return v
}

// Apply standardises attributes (same names, in any basin). An attribute
// that was logged in training must be positive here too.
func (s *Standardization) Apply(a *Attributes) (*Standardized, error) {
	J := len(s.Names)
	col := make([]int, J)
	for j, name := range s.Names {
		col[j] = -1
		for k, n := range a.Names {
			if n == name {
				col[j] = k
			}
		}
		if col[j] < 0 {
			return nil, fmt.Errorf("calibrate: reach attributes lack %q, which the map was trained on", name)
		}
	}
	out := &Standardized{N: len(a.Values), J: J, X: make([]float64, len(a.Values)*J)}
	for i, row := range a.Values {
		if len(row) != len(a.Names) {
			return nil, fmt.Errorf("calibrate: %s has %d attributes for %d names", a.reach(i), len(row), len(a.Names))
		}
		for j := range J {
			v := row[col[j]]
			if math.IsNaN(v) || math.IsInf(v, 0) || (s.Log[j] && !(v > 0)) {
				return nil, fmt.Errorf("calibrate: attribute %s of %s is %v (the map needs it finite%s)", s.Names[j], a.reach(i), v, map[bool]string{true: " and positive", false: ""}[s.Log[j]])
			}
			out.X[i*J+j] = (s.raw(j, v) - s.Mean[j]) / s.Std[j]
		}
	}
	return out, nil
}

// Standardized holds standardised attributes: N reaches × J attributes.
type Standardized struct {
	N, J int
	X    []float64
}

// Row returns reach i's standardised attributes.
func (s *Standardized) Row(i int) []float64 { return s.X[i*s.J : (i+1)*s.J] }

// subset returns the rows of the given reaches, in that order.
func (s *Standardized) subset(reaches []int32) *Standardized {
	out := &Standardized{N: len(reaches), J: s.J, X: make([]float64, len(reaches)*s.J)}
	for k, i := range reaches {
		copy(out.Row(k), s.Row(int(i)))
	}
	return out
}
