package calibrate

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

func testAttributes(rng *rand.Rand, n int) *Attributes {
	a := &Attributes{Names: []string{"length", "area", "slope"}}
	for range n {
		a.Values = append(a.Values, []float64{1000 + 9000*rng.Float64(), math.Exp(10 * rng.Float64()), rng.NormFloat64()})
	}
	return a
}

func testMaps(t *testing.T, rng *rand.Rand, p, n int) []Map {
	st, err := FitStandardization(testAttributes(rng, n))
	if err != nil {
		t.Fatal(err)
	}
	x, err := st.Apply(testAttributes(rng, n))
	if err != nil {
		t.Fatal(err)
	}
	group := make([]int, n)
	for i := range group {
		group[i] = rng.IntN(4)
	}
	g, err := NewGrouped(p, group)
	if err != nil {
		t.Fatal(err)
	}
	return []Map{PerReach{P: p, N: n}, g, &Linear{P: p, Attr: x}, &MLP{P: p, H: 5, Attr: x, Seed: 9}}
}

// Each map's Backward is the transpose of its Forward's derivative: the
// gradient of Σ c·u(z) against central differences, in float64.
func TestMapGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const p, n = 2, 30
	for _, m := range testMaps(t, rng, p, n) {
		c := make([][]float64, p)
		u := make([][]float64, p)
		for k := range c {
			c[k], u[k] = make([]float64, n), make([]float64, n)
			for i := range c[k] {
				c[k][i] = rng.NormFloat64()
			}
		}
		z := make([]float64, m.NumVars())
		for k := range z {
			z[k] = rng.NormFloat64()
		}
		f := func(z []float64) float64 {
			m.Forward(u, z)
			s := 0.0
			for k := range u {
				for i, v := range u[k] {
					s += c[k][i] * v
				}
			}
			return s
		}
		dz := make([]float64, len(z))
		m.Backward(dz, z, c)
		if err := checkGrad(f, z, dz, 1, 1e-6); err != nil {
			t.Errorf("%s: %v", m.Kind(), err)
		}
	}
}

// The planted-error check for the MLP: a wrong activation derivative
// (tanh' taken as 1) must fail.
func TestMLPGradCheckSeesPlantedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	m := testMaps(t, rng, 2, 20)[3].(*MLP)
	z := make([]float64, m.NumVars())
	for k := range z {
		z[k] = rng.NormFloat64()
	}
	c := [][]float64{make([]float64, 20), make([]float64, 20)}
	for k := range c {
		for i := range c[k] {
			c[k][i] = rng.NormFloat64()
		}
	}
	u := [][]float64{make([]float64, 20), make([]float64, 20)}
	f := func(z []float64) float64 {
		m.Forward(u, z)
		s := 0.0
		for k := range u {
			for i, v := range u[k] {
				s += c[k][i] * v
			}
		}
		return s
	}
	// The wrong backward: tanh'(a) replaced by 1 for the hidden layer.
	wrong := make([]float64, len(z))
	w1, b1, w2, _ := m.split(z)
	dw1, db1, dw2, db2 := m.split(wrong)
	h := make([]float64, m.H)
	for i := range 20 {
		a := m.Attr.Row(i)
		m.hidden(h, w1, b1, a)
		for p := range 2 {
			db2[p] += c[p][i]
			for k := range h {
				dw2[p*m.H+k] += c[p][i] * h[k]
				db1[k] += c[p][i] * w2[p*m.H+k]
				for j, x := range a {
					dw1[k*m.Attr.J+j] += c[p][i] * w2[p*m.H+k] * x
				}
			}
		}
	}
	if err := checkGrad(f, z, wrong, 1, 1e-6); err == nil {
		t.Fatal("an MLP gradient without tanh' passed the check")
	}
}

// Space.Grad chains transforms and map: the gradient of Σ c·θ(z).
func TestSpaceGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 25
	for _, m := range testMaps(t, rng, 2, n) {
		fixed := diffroute.Params{"other": make([]float64, n)}
		s, err := NewSpace([]string{"k", "x"}, []Transform{Exp{0.1}, Sigmoid{0, 0.5}}, m, n, fixed)
		if err != nil {
			t.Fatal(err)
		}
		c := diffroute.Params{"k": make([]float64, n), "x": make([]float64, n)}
		for _, v := range c {
			for i := range v {
				v[i] = rng.NormFloat64()
			}
		}
		z := make([]float64, m.NumVars())
		for k := range z {
			z[k] = 0.3 * rng.NormFloat64()
		}
		f := func(z []float64) float64 {
			th := s.Params(z)
			if _, ok := th["other"]; !ok {
				t.Fatal("fixed parameter lost")
			}
			v := 0.0
			for name, cv := range c {
				for i := range cv {
					v += cv[i] * th[name][i]
				}
			}
			return v
		}
		if err := checkGrad(f, z, s.Grad(z, c), 1, 1e-6); err != nil {
			t.Errorf("%s: %v", m.Kind(), err)
		}
	}
}

// Init reproduces what a map can represent: exactly per reach, the group
// means per group, and a parameter field that is linear in the attributes
// for the linear map and (nearly) for the MLP.
func TestMapInit(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n = 60
	ms := testMaps(t, rng, 1, n)
	lin := ms[2].(*Linear)
	u := [][]float64{make([]float64, n)}
	for i := range n {
		a := lin.Attr.Row(i)
		u[0][i] = 0.5 + 0.3*a[0] - 0.2*a[1] + 0.1*a[2]
	}
	for _, m := range ms {
		z, err := m.Init(u)
		if err != nil {
			t.Fatal(err)
		}
		got := [][]float64{make([]float64, n)}
		m.Forward(got, z)
		worst := 0.0
		for i := range n {
			worst = max(worst, math.Abs(got[0][i]-u[0][i]))
		}
		switch m.Kind() {
		case "reach", "loglinear":
			if worst > 1e-9 {
				t.Errorf("%s: Init reproduces u within %v", m.Kind(), worst)
			}
		case "mlp":
			if worst > 0.05 {
				t.Errorf("mlp: Init reproduces a linear field within %v", worst)
			}
		case "group":
			g := m.(*Grouped)
			for k := range g.Groups {
				sum, cnt := 0.0, 0.0
				for i, gi := range g.Group {
					if gi == k {
						sum += u[0][i]
						cnt++
					}
				}
				if cnt > 0 && math.Abs(z[k]-sum/cnt) > 1e-12 {
					t.Errorf("group %d: %v, mean %v", k, z[k], sum/cnt)
				}
			}
		}
	}
}

func TestStandardization(t *testing.T) {
	a := &Attributes{Names: []string{"pos", "signed", "const"}, Values: [][]float64{{1, -1, 3}, {10, 1, 3}, {100, 0, 3}}}
	s, err := FitStandardization(a)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Log[0] || s.Log[1] || !s.Log[2] {
		t.Errorf("log flags %v", s.Log)
	}
	x, err := s.Apply(a)
	if err != nil {
		t.Fatal(err)
	}
	// log10 spacing is uniform: standardised values are −√1.5, 0, √1.5.
	if math.Abs(x.Row(0)[0]+math.Sqrt(1.5)) > 1e-12 || math.Abs(x.Row(1)[0]) > 1e-12 || x.Row(2)[2] != 0 {
		t.Errorf("standardised %v", x.X)
	}
	b := &Attributes{Names: []string{"const", "signed", "pos"}, Values: [][]float64{{3, 0, -5}}}
	if _, err := s.Apply(b); err == nil {
		t.Error("a negative value of a logged attribute was accepted")
	}
	if _, err := s.Apply(&Attributes{Names: []string{"pos"}, Values: [][]float64{{1}}}); err == nil {
		t.Error("missing attributes were accepted")
	}
}

// Errors about one reach's attributes name its river id (the id a user finds
// in attributes.csv), not its position in the network.
func TestAttributeErrorsNameTheReach(t *testing.T) {
	train := &Attributes{Names: []string{"area", "slope"}, Values: [][]float64{{10, 0.001}, {100, 0.01}, {1000, 0.1}}}
	s, err := FitStandardization(train)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{7231, 9823, 11917}
	for _, tc := range []struct {
		name   string
		values [][]float64
		ids    []int64
		fit    bool // FitStandardization rather than Apply
		want   string
	}{
		{"zero logged", [][]float64{{10, 0.001}, {100, 0}, {1000, 0.1}}, ids, false, "slope of reach 9823 is 0"},
		{"negative logged", [][]float64{{10, 0.001}, {100, 0.01}, {-1, 0.1}}, ids, false, "area of reach 11917 is -1"},
		{"NaN", [][]float64{{math.NaN(), 0.001}, {100, 0.01}, {1000, 0.1}}, ids, false, "area of reach 7231 is NaN"},
		{"short row", [][]float64{{10, 0.001}, {100}, {1000, 0.1}}, ids, false, "reach 9823 has 1 attributes for 2 names"},
		{"fit NaN", [][]float64{{10, 0.001}, {100, 0.01}, {1000, math.Inf(1)}}, ids, true, "slope of reach 11917 is +Inf"},
		{"fit short row", [][]float64{{10}, {100, 0.01}, {1000, 0.1}}, ids, true, "reach 7231 has 1 attributes"},
		{"no ids", [][]float64{{10, 0.001}, {100, 0}, {1000, 0.1}}, nil, false, "network position 1"},
	} {
		a := &Attributes{Names: train.Names, Values: tc.values, IDs: tc.ids}
		if tc.fit {
			_, err = FitStandardization(a)
		} else {
			_, err = s.Apply(a)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
