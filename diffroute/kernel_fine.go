package diffroute

import (
	"context"
	"fmt"
)

// fineOutKernel gives the fine outflow of one reach u: vals[k·W + m] is the
// outflow of u at the end of sub-step t·f + m after a unit runoff step t at
// source srcs[k] (m < W = MaxDelay·f); inflow[v] is the response (fine taps,
// m ≤ (MaxDelay−1)·f) of u's outflow to a unit fine inflow into v.
type fineOutKernel struct {
	srcs   []int32
	vals   []float32
	inflow map[int][]float32
}

// RouteFine returns the fine outflow of the given reaches (network indices):
// for each, B·(T−warmup)·f values, batch-major, the outflow at the end of each
// sub-step of steps [warmup, T) — exactly the FineInflow.Q that a transfer out
// of that reach carries into a downstream cluster. Runoff and inflow are as in
// RouteWith; with warmup ≥ MaxDelay−1, time chunks are exact.
//
// The runoff part uses, per source s in the reach's closure, the fine response
// to a unit runoff step (the same path response as the kernel, not coarsened:
// W = MaxDelay·f taps; built in the time domain or by FFT like the kernel);
// the fine-inflow part a fine convolution with the path
// response h_v ⊛ … ⊛ h_u, truncated to (MaxDelay−1)·f + 1 taps so that a
// warm-up of MaxDelay−1 steps covers it.
func (kr *KernelRouter) RouteFine(ctx context.Context, runoff *DataTensor, inflow []FineInflow, warmup int, reaches []int) ([][]float32, error) {
	net := kr.net
	idx, err := alignRunoff(runoff, net)
	if err != nil {
		return nil, err
	}
	T, B, f, w := runoff.T, runoff.B, kr.f, kr.w
	if warmup < 0 || warmup > T {
		return nil, fmt.Errorf("diffroute: warm-up of %d steps outside [0, %d]", warmup, T)
	}
	if err := kr.checkInflow(inflow, B, T); err != nil {
		return nil, err
	}
	out := make([][]float32, len(reaches))
	nOut := (T - warmup) * f
	n0 := warmup * f
	for ri, u := range reaches {
		if u < 0 || u >= net.Len() {
			return nil, fmt.Errorf("diffroute: fine output for reach position %d, outside the network's %d reaches", u, net.Len())
		}
		fk, err := kr.fineOut(u)
		if err != nil {
			return nil, err
		}
		y := make([]float32, B*nOut)
		for b := 0; b < B; b++ {
			yb := y[b*nOut : (b+1)*nOut]
			for k, s := range fk.srcs {
				kern := fk.vals[k*w : (k+1)*w]
				xs := runoff.Series(b, idx[s])
				// y[n] += x[t]·kern[n − t·f] for n − t·f in [0, W), n ≥ n0.
				for t := max(0, (n0-w)/f); t < T; t++ {
					a := xs[t]
					if a == 0 {
						continue
					}
					lo := max(t*f, n0)
					hi := min(t*f+w, T*f)
					if lo >= hi {
						continue
					}
					dst := yb[lo-n0 : hi-n0]
					src := kern[lo-t*f : hi-t*f]
					src = src[:len(dst)]
					for i := range dst {
						dst[i] += a * src[i]
					}
				}
			}
			for _, in := range inflow {
				kern, ok, err := kr.fineInflowKernel(fk, u, in.Reach)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				z := in.Q[b*T*f : (b+1)*T*f]
				for n := n0; n < T*f; n++ {
					s := float32(0)
					for m, a := range kern[:min(len(kern), n+1)] {
						s += a * z[n-m]
					}
					yb[n-n0] += s
				}
			}
		}
		out[ri] = y
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (kr *KernelRouter) checkInflow(inflow []FineInflow, B, T int) error {
	net := kr.net
	for j, in := range inflow {
		if in.Reach < 0 || in.Reach >= net.Len() {
			return fmt.Errorf("diffroute: inflow %d enters reach position %d, outside the network's %d reaches", j, in.Reach, net.Len())
		}
		if len(in.Q) != B*T*kr.f {
			return fmt.Errorf("diffroute: inflow %d into reach %d has %d values, want batch %d × %d steps × %d sub-steps = %d",
				j, net.ID(in.Reach), len(in.Q), B, T, kr.f, B*T*kr.f)
		}
	}
	return nil
}

// fineOut returns (building on first use) the fine-output kernel of reach u.
func (kr *KernelRouter) fineOut(u int) (*fineOutKernel, error) {
	kr.tmu.Lock()
	defer kr.tmu.Unlock()
	if fk, ok := kr.fineOuts[u]; ok {
		return fk, nil
	}
	if kr.td != nil {
		fk := &fineOutKernel{inflow: map[int][]float32{}}
		kr.fineOutTD(u, fk)
		if kr.fineOuts == nil {
			kr.fineOuts = map[int]*fineOutKernel{}
		}
		kr.fineOuts[u] = fk
		return fk, nil
	}
	net, o := kr.net, kr.opts
	wk := kr.newWorker()
	nf := kr.m/2 + 1
	E := make([]complex128, nf)
	spec := make([]complex128, nf)
	var levels [][]complex128 // levels[L]: product of exp(L_i) from the reach at depth L below u down to u
	fk := &fineOutKernel{inflow: map[int][]float32{}}
	order := net.PreOrder()
	du := net.Depth(u)
	exclude, compat := o.ExcludeSelf, o.Compat == CompatDiffRoute
	for p := net.Pre(u); p < net.Pre(u)+net.Size(u); p++ {
		s := int(order[p])
		lv := net.Depth(s) - du
		if _, err := kr.reachLog(wk, s, false); err != nil {
			return nil, err
		}
		expSpec(E, wk.spec)
		var above []complex128 // path spectrum from down s to u
		if lv > 0 {
			above = levels[lv-1]
		}
		// Spectrum of the pair (s, s), as in build.
		boxed := false
		switch {
		case exclude && !compat:
			for j := range spec {
				spec[j] = 1
			}
		case o.Lateral == LateralRAPID && !exclude:
			var err error
			if boxed, err = kr.reachLog(wk, s, true); err != nil {
				return nil, err
			}
			if boxed {
				expSpec(spec, wk.spec)
			} else {
				copy(spec, E)
			}
		default:
			copy(spec, E)
		}
		if lv >= len(levels) {
			levels = append(levels, make([]complex128, nf))
		}
		z := levels[lv]
		for j := range z {
			z[j] = E[j]
			if above != nil {
				z[j] *= above[j]
			}
		}
		if exclude && s == u {
			clear(wk.h)
			wk.h[0] = 1
		} else {
			if above != nil {
				for j := range spec {
					spec[j] *= above[j]
				}
			}
			kr.fineFromSpec(wk, spec)
		}
		kr.shifted(wk, !boxed) // wk.kb: response to a whole unit runoff step
		fk.srcs = append(fk.srcs, int32(s))
		for _, v := range wk.kb {
			fk.vals = append(fk.vals, float32(v))
		}
	}
	if kr.fineOuts == nil {
		kr.fineOuts = map[int]*fineOutKernel{}
	}
	kr.fineOuts[u] = fk
	return fk, nil
}

// fineInflowKernel returns the fine response of u's outflow to inflow into v,
// or ok = false when v is not upstream of u (or u itself).
func (kr *KernelRouter) fineInflowKernel(fk *fineOutKernel, u, v int) ([]float32, bool, error) {
	net := kr.net
	if pv := net.Pre(v); pv < net.Pre(u) || pv >= net.Pre(u)+net.Size(u) {
		return nil, false, nil
	}
	kr.tmu.Lock()
	defer kr.tmu.Unlock()
	if k, ok := fk.inflow[v]; ok {
		return k, true, nil
	}
	if kr.td != nil {
		k := make([]float32, kr.w-kr.f+1)
		kr.fineInflowTD(u, v, k)
		fk.inflow[v] = k
		return k, true, nil
	}
	wk := kr.newWorker()
	acc := make([]complex128, kr.m/2+1)
	for d := v; ; d = net.Down(d) {
		if _, err := kr.reachLog(wk, d, false); err != nil {
			return nil, false, err
		}
		for j := range acc {
			acc[j] += wk.spec[j]
		}
		if d == u {
			break
		}
	}
	copy(wk.spec, acc)
	kr.fineKernel(wk)
	k := make([]float32, kr.w-kr.f+1)
	for m := range k {
		k[m] = float32(wk.h[m])
	}
	fk.inflow[v] = k
	return k, true, nil
}
