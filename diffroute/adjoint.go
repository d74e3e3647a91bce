package diffroute

// adjArgs are the inputs and outputs of the adjoint of one recursive
// section y[n] = B0·x[n] + B1·x[n−1] + A1·y[n−1] over a block of len(gy)
// runoff steps of f sub-steps, x = u + lateral (the lateral's share is
// left to the caller, from sumL and firstL).
type adjArgs struct {
	s   Section
	f   int
	ubd []float64 // ∂L/∂y[n] through the downstream reach (fine)
	y   []float64 // the section's outflow y[n]; overwritten with ∂L/∂u[n]
	u   []float64 // the upstream inflow u[n]
	gy  []float64 // ∂L/∂(reported discharge) of the block's steps
	// w weighs a step's reported value: w[0]·Σy + w[1]·y_last + w[2]·y_last of
	// the step before (stepWeights).
	w       [3]float64
	gyn     float64 // ∂L/∂(reported discharge) of the step after the block
	y0, up0 float64 // y[−1], u[−1]
	lam     float64 // in: λ at the first sub-step after the block; out: at the block's first sub-step
	sumL    []float64
	firstL  []float64 // out: per step Σλ over its sub-steps, λ at its first
	du, dup float64   // out: Σλ[n]·u[n], Σλ[n]·u[n−1]
	dy      float64   // out: Σλ[n]·y[n−1]
}

// adjointSection is the scalar adjoint of one section over a block, backwards
// in time: with ȳ[n] = ubd[n] + the loss's share of y[n],
// λ[n] = ȳ[n] + A1·λ[n+1] and ∂L/∂u[n] = B0·λ[n] + B1·λ[n+1]. It is the
// reference for adjointVector.
func adjointSection(a *adjArgs) {
	f := a.f
	nq := len(a.gy)
	s := a.s
	lam := a.lam
	var du, dup, dy float64
	gyn := a.gyn
	for q := nq - 1; q >= 0; q-- {
		c := a.w[0] * a.gy[q]
		extra := a.w[1]*a.gy[q] + a.w[2]*gyn
		gyn = a.gy[q]
		sum := 0.0
		for j := f - 1; j >= 0; j-- {
			n := q*f + j
			yb := a.ubd[n] + c
			if j == f-1 {
				yb += extra
			}
			l := yb + s.A1*lam
			yp, upv := a.y0, a.up0
			if n > 0 {
				yp, upv = a.y[n-1], a.u[n-1]
			}
			dy += l * yp
			du += l * a.u[n]
			dup += l * upv
			a.y[n] = s.B0*l + s.B1*lam
			sum += l
			lam = l
		}
		a.sumL[q], a.firstL[q] = sum, lam
	}
	a.lam, a.du, a.dup, a.dy = lam, du, dup, dy
}

// mixedSeries is a series in float32 (s32) or float64 (s64).
type mixedSeries struct {
	s32 []float32
	s64 []float64
}

func (m mixedSeries) len() int {
	if m.s64 != nil {
		return len(m.s64)
	}
	return len(m.s32)
}

func (m mixedSeries) at(q int) float64 {
	if m.s64 != nil {
		return m.s64[q]
	}
	return float64(m.s32[q])
}

func (m mixedSeries) set(q int, v float64) {
	if m.s64 != nil {
		m.s64[q] = v
		return
	}
	m.s32[q] = float32(v)
}
