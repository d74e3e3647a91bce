package calibrate

import (
	"fmt"
	"maps"

	"github.com/diffroute-go/route/diffroute"
)

// Space is the search space of a calibration: the calibrated parameters,
// each with its transform, and the map from free variables to per-reach
// values. Parameters the IRF has but Space does not calibrate keep their
// values from Fixed.
type Space struct {
	Names      []string    // calibrated parameters
	Transforms []Transform // one per name
	Map        Map
	N          int              // reaches
	Fixed      diffroute.Params // every other parameter, network order
}

// NewSpace checks that the map and transforms agree with the names.
func NewSpace(names []string, tr []Transform, m Map, n int, fixed diffroute.Params) (*Space, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("calibrate: no parameter to calibrate")
	}
	if len(tr) != len(names) {
		return nil, fmt.Errorf("calibrate: %d transforms for %d parameters", len(tr), len(names))
	}
	for k, t := range tr {
		if t == nil {
			return nil, fmt.Errorf("calibrate: parameter %s has no transform (bounds)", names[k])
		}
	}
	return &Space{Names: names, Transforms: tr, Map: m, N: n, Fixed: fixed}, nil
}

func (s *Space) unconstrained() [][]float64 {
	u := make([][]float64, len(s.Names))
	for p := range u {
		u[p] = make([]float64, s.N)
	}
	return u
}

// Params returns the per-reach parameters for free variables z: the
// calibrated ones from the map and transforms, the others from Fixed.
func (s *Space) Params(z []float64) diffroute.Params {
	u := s.unconstrained()
	s.Map.Forward(u, z)
	out := maps.Clone(s.Fixed)
	if out == nil {
		out = diffroute.Params{}
	}
	for p, name := range s.Names {
		v := make([]float64, s.N)
		for i, x := range u[p] {
			v[i], _ = s.Transforms[p].Param(x)
		}
		out[name] = v
	}
	return out
}

// Grad returns ∂L/∂z given the routing gradient ∂L/∂θ per reach.
// Parameters missing from g have a zero gradient.
func (s *Space) Grad(z []float64, g diffroute.Params) []float64 {
	u := s.unconstrained()
	s.Map.Forward(u, z)
	for p, name := range s.Names {
		gp := g[name]
		for i, x := range u[p] {
			_, d := s.Transforms[p].Param(x)
			if gp == nil {
				u[p][i] = 0
			} else {
				u[p][i] = gp[i] * d
			}
		}
	}
	dz := make([]float64, s.Map.NumVars())
	s.Map.Backward(dz, z, u)
	return dz
}

// Init returns free variables that reproduce prior (per reach, network
// order) as closely as the map can. Prior values outside the bounds are an
// error naming the reach.
func (s *Space) Init(prior diffroute.Params, net *diffroute.Network) ([]float64, error) {
	u := s.unconstrained()
	for p, name := range s.Names {
		v, ok := prior[name]
		if !ok || len(v) != s.N {
			return nil, fmt.Errorf("calibrate: no prior for parameter %s", name)
		}
		for i, x := range v {
			f, err := s.Transforms[p].Free(x)
			if err != nil {
				id := int64(i)
				if net != nil {
					id = net.ID(i)
				}
				return nil, fmt.Errorf("calibrate: prior %s of reach %d: %v", name, id, err)
			}
			u[p][i] = f
		}
	}
	return s.Map.Init(u)
}

// Clamp pulls prior values into the bounds of their transforms (a prior
// from a RAPID k.csv may sit outside the bounds chosen for calibration),
// returning how many values moved.
func (s *Space) Clamp(prior diffroute.Params) int {
	moved := 0
	for p, name := range s.Names {
		v := prior[name]
		for i, x := range v {
			c := x
			switch t := s.Transforms[p].(type) {
			case Sigmoid:
				w := 1e-3 * (t.Max - t.Min)
				c = min(max(x, t.Min+w), t.Max-w)
			case Exp:
				c = max(x, t.Min+1e-9*max(1, t.Min))
			}
			if c != x {
				v[i] = c
				moved++
			}
		}
	}
	return moved
}
