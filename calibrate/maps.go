package calibrate

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// A Map turns free variables z into unconstrained parameter values
// u[p][i] (parameter p, reach i, network order), before each parameter's
// Transform. The free variables are what an optimizer moves.
type Map interface {
	// Kind names the map: reach, group, loglinear or mlp.
	Kind() string
	// NumVars is the number of free variables.
	NumVars() int
	// Forward writes u[p][i] for free variables z.
	Forward(u [][]float64, z []float64)
	// Backward adds ∂L/∂z to dz, given gu[p][i] = ∂L/∂u[p][i].
	Backward(dz, z []float64, gu [][]float64)
	// Init returns free variables whose u is as close to the given one as
	// the map can come (exactly for reach; least squares otherwise).
	Init(u [][]float64) ([]float64, error)
}

// PerReach gives every reach its own value of every parameter: z holds
// u[p][i] at p·N + i.
type PerReach struct{ P, N int }

func (m PerReach) Kind() string { return "reach" }

func (m PerReach) NumVars() int { return m.P * m.N }

func (m PerReach) Forward(u [][]float64, z []float64) {
	for p := range m.P {
		copy(u[p], z[p*m.N:(p+1)*m.N])
	}
}

func (m PerReach) Backward(dz, _ []float64, gu [][]float64) {
	for p := range m.P {
		d := dz[p*m.N : (p+1)*m.N]
		for i, g := range gu[p] {
			d[i] += g
		}
	}
}

func (m PerReach) Init(u [][]float64) ([]float64, error) {
	z := make([]float64, m.NumVars())
	for p := range m.P {
		copy(z[p*m.N:], u[p])
	}
	return z, nil
}

// Grouped gives every group of reaches one value of every parameter: reach
// i takes group Group[i] (0..Groups−1), and z holds u at p·Groups + group.
type Grouped struct {
	P, Groups int
	Group     []int
}

// NewGrouped checks the group of each reach.
func NewGrouped(p int, group []int) (*Grouped, error) {
	g := 0
	for i, v := range group {
		if v < 0 {
			return nil, fmt.Errorf("calibrate: reach %d has negative group %d", i, v)
		}
		g = max(g, v+1)
	}
	return &Grouped{P: p, Groups: g, Group: group}, nil
}

func (m *Grouped) Kind() string { return "group" }

func (m *Grouped) NumVars() int { return m.P * m.Groups }

func (m *Grouped) Forward(u [][]float64, z []float64) {
	for p := range m.P {
		for i, g := range m.Group {
			u[p][i] = z[p*m.Groups+g]
		}
	}
}

func (m *Grouped) Backward(dz, _ []float64, gu [][]float64) {
	for p := range m.P {
		for i, g := range m.Group {
			dz[p*m.Groups+g] += gu[p][i]
		}
	}
}

// Init takes each group's mean.
func (m *Grouped) Init(u [][]float64) ([]float64, error) {
	z := make([]float64, m.NumVars())
	cnt := make([]float64, m.Groups)
	for _, g := range m.Group {
		cnt[g]++
	}
	for p := range m.P {
		for i, g := range m.Group {
			z[p*m.Groups+g] += u[p][i] / cnt[g]
		}
	}
	return z, nil
}

// Linear is u[p][i] = b_p + Σ_j W[p][j]·a[i][j] over standardised reach
// attributes a. Under the Exp transform this is the log-linear
// regionalisation log θ = W·a + b (with log attributes, a power law
// θ ∝ Π attr^w). z holds, per parameter, b_p then W[p][·].
type Linear struct {
	P    int
	Attr *Standardized
}

func (m *Linear) Kind() string { return "loglinear" }

func (m *Linear) NumVars() int { return m.P * (1 + m.Attr.J) }

func (m *Linear) Forward(u [][]float64, z []float64) {
	J := m.Attr.J
	for p := range m.P {
		w := z[p*(1+J) : (p+1)*(1+J)]
		for i := range u[p] {
			a := m.Attr.Row(i)
			v := w[0]
			for j, x := range a {
				v += w[1+j] * x
			}
			u[p][i] = v
		}
	}
}

func (m *Linear) Backward(dz, _ []float64, gu [][]float64) {
	J := m.Attr.J
	for p := range m.P {
		d := dz[p*(1+J) : (p+1)*(1+J)]
		for i, g := range gu[p] {
			d[0] += g
			for j, x := range m.Attr.Row(i) {
				d[1+j] += g * x
			}
		}
	}
}

// Init fits b and W by least squares.
func (m *Linear) Init(u [][]float64) ([]float64, error) {
	J := m.Attr.J
	z := make([]float64, m.NumVars())
	feat := func(i int, dst []float64) {
		dst[0] = 1
		copy(dst[1:], m.Attr.Row(i))
	}
	for p := range m.P {
		w, err := leastSquares(m.Attr.N, 1+J, feat, u[p], 1e-9)
		if err != nil {
			return nil, err
		}
		copy(z[p*(1+J):], w)
	}
	return z, nil
}

// leastSquares solves min ‖F w − y‖² + ridge·n·‖w[1:]‖² (the ridge keeps
// constant or collinear features from giving huge weights), through the normal equations:
// the systems here have a handful of unknowns.
func leastSquares(n, k int, feat func(i int, dst []float64), y []float64, ridge float64) ([]float64, error) {
	a := mat.NewSymDense(k, nil)
	b := mat.NewVecDense(k, nil)
	f := make([]float64, k)
	for i := range n {
		feat(i, f)
		for r := range k {
			b.SetVec(r, b.AtVec(r)+f[r]*y[i])
			for c := r; c < k; c++ {
				a.SetSym(r, c, a.At(r, c)+f[r]*f[c])
			}
		}
	}
	for r := range k {
		if r > 0 { // the intercept is not shrunk
			a.SetSym(r, r, a.At(r, r)+ridge*float64(n))
		}
		a.SetSym(r, r, a.At(r, r)+1e-12)
	}
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		return nil, fmt.Errorf("calibrate: cannot fit the map's initial weights (singular system)")
	}
	var w mat.VecDense
	if err := ch.SolveVecTo(&w, b); err != nil {
		return nil, fmt.Errorf("calibrate: cannot fit the map's initial weights: %v", err)
	}
	return w.RawVector().Data, nil
}

// MLP is a perceptron with one hidden layer of tanh units from standardised
// reach attributes to the unconstrained parameters (DiffHydro learns the
// Muskingum parameters from two attributes with such a network). z holds
// W1 (H×J, row-major), b1 (H), W2 (P×H), b2 (P).
//
// Go has no maintained automatic differentiation library that fits here,
// and the network is small: its backward pass is written out below and
// checked against finite differences in the tests.
type MLP struct {
	P, H int
	Attr *Standardized
	Seed uint64
}

func (m *MLP) Kind() string { return "mlp" }

func (m *MLP) NumVars() int { J := m.Attr.J; return m.H*J + m.H + m.P*m.H + m.P }

func (m *MLP) split(z []float64) (w1, b1, w2, b2 []float64) {
	J, H, P := m.Attr.J, m.H, m.P
	w1 = z[:H*J]
	b1 = z[H*J : H*J+H]
	w2 = z[H*J+H : H*J+H+P*H]
	b2 = z[H*J+H+P*H : H*J+H+P*H+P]
	return
}

func (m *MLP) hidden(h []float64, w1, b1, a []float64) {
	J := m.Attr.J
	for k := range h {
		v := b1[k]
		for j, x := range a {
			v += w1[k*J+j] * x
		}
		h[k] = math.Tanh(v)
	}
}

func (m *MLP) Forward(u [][]float64, z []float64) {
	w1, b1, w2, b2 := m.split(z)
	h := make([]float64, m.H)
	for i := range m.Attr.N {
		m.hidden(h, w1, b1, m.Attr.Row(i))
		for p := range m.P {
			v := b2[p]
			for k, hk := range h {
				v += w2[p*m.H+k] * hk
			}
			u[p][i] = v
		}
	}
}

func (m *MLP) Backward(dz, z []float64, gu [][]float64) {
	w1, b1, w2, _ := m.split(z)
	dw1, db1, dw2, db2 := m.split(dz)
	J := m.Attr.J
	h := make([]float64, m.H)
	gh := make([]float64, m.H)
	for i := range m.Attr.N {
		a := m.Attr.Row(i)
		m.hidden(h, w1, b1, a)
		clear(gh)
		for p := range m.P {
			g := gu[p][i]
			if g == 0 {
				continue
			}
			db2[p] += g
			for k, hk := range h {
				dw2[p*m.H+k] += g * hk
				gh[k] += g * w2[p*m.H+k]
			}
		}
		for k, hk := range h {
			ga := gh[k] * (1 - hk*hk)
			db1[k] += ga
			for j, x := range a {
				dw1[k*J+j] += ga * x
			}
		}
	}
}

// Init draws the hidden layer at random (seeded, small enough that the
// units start nearly linear) and fits
// the output layer by least squares, so that training starts from the best
// fit of u that those hidden units allow.
func (m *MLP) Init(u [][]float64) ([]float64, error) {
	z := make([]float64, m.NumVars())
	w1, b1, w2, b2 := m.split(z)
	rng := rand.New(rand.NewPCG(m.Seed, 0x31a9))
	sd := 0.3 / math.Sqrt(float64(m.Attr.J)) // near-linear units: the fit below starts from the linear model
	for k := range w1 {
		w1[k] = sd * rng.NormFloat64()
	}
	for k := range b1 {
		b1[k] = 0.1 * rng.NormFloat64()
	}
	H := m.H
	hs := make([]float64, m.Attr.N*H)
	for i := range m.Attr.N {
		m.hidden(hs[i*H:(i+1)*H], w1, b1, m.Attr.Row(i))
	}
	feat := func(i int, dst []float64) {
		dst[0] = 1
		copy(dst[1:], hs[i*H:(i+1)*H])
	}
	for p := range m.P {
		w, err := leastSquares(m.Attr.N, 1+H, feat, u[p], 1e-8)
		if err != nil {
			return nil, err
		}
		b2[p] = w[0]
		copy(w2[p*H:(p+1)*H], w[1:])
	}
	return z, nil
}

// restrictMap returns m over the given reaches only (indices into m's
// reaches), with the same free variables: a cluster of a larger basin
// calibrated with the basin's shared map. PerReach has no shared variables
// and is not restricted here.
func restrictMap(m Map, reaches []int32) (Map, error) {
	switch m := m.(type) {
	case *Grouped:
		g := make([]int, len(reaches))
		for k, i := range reaches {
			g[k] = m.Group[i]
		}
		return &Grouped{P: m.P, Groups: m.Groups, Group: g}, nil
	case *Linear:
		return &Linear{P: m.P, Attr: m.Attr.subset(reaches)}, nil
	case *MLP:
		return &MLP{P: m.P, H: m.H, Attr: m.Attr.subset(reaches), Seed: m.Seed}, nil
	}
	return nil, fmt.Errorf("calibrate: a %s map cannot be shared between clusters", m.Kind())
}
