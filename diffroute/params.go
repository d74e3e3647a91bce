package diffroute

import (
	"fmt"
	"math"
)

// Params holds per-reach IRF parameters by name: Params["k"][i] is parameter
// k of reach i (network index order). Values are in units of the runoff step Δ
// unless an IRF says otherwise.
type Params map[string][]float64

// Constant returns parameters with the same value for each of n reaches.
func Constant(n int, kv map[string]float64) Params {
	p := Params{}
	for k, v := range kv {
		s := make([]float64, n)
		for i := range s {
			s[i] = v
		}
		p[k] = s
	}
	return p
}

// check verifies that every name is present with n finite values.
func (p Params) check(names []string, n int, net *Network) error {
	for _, name := range names {
		v, ok := p[name]
		if !ok {
			return fmt.Errorf("diffroute: missing parameter %q", name)
		}
		if len(v) != n {
			return fmt.Errorf("diffroute: parameter %q has %d values for %d reaches", name, len(v), n)
		}
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("diffroute: parameter %q of reach %d is %v", name, net.ID(i), x)
			}
		}
	}
	return nil
}

// add adds the gradients in q to those of the same parameters in p (every
// name of q is in p, with as many reaches).
func (p Params) add(q Params) {
	for name, g := range q {
		d := p[name]
		for i, a := range g {
			d[i] += a
		}
	}
}

// row gathers reach i's parameters in the order of names into dst.
func (p Params) row(dst []float64, names []string, i int) []float64 {
	dst = dst[:0]
	for _, name := range names {
		dst = append(dst, p[name][i])
	}
	return dst
}
