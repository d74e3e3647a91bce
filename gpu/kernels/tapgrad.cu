// tapgrad.cu — the gradient of a loss with respect to every tap of the
// block-sparse kernel, for the kernel method's parameter gradients (the
// heavy part; the chain from taps to IRF parameters runs on the host,
// diffroute.KernelRouter.BackwardParamsFromTaps):
//
//   dk[p][q][k] += Σ_b Σ_t x[b, q, t] · gy[b, p, t + k]
//
// for every closure entry (row position p, source position q ∈ [p,
// p + size[p])) of every tile, in the layout of the kernel's taps (vals), and
// nothing elsewhere. One time chunk per launch: x is [nb][n][tl] (the
// chunk's runoff steps, positions in pre-order), gy [nb][n][tx] (the same
// steps and tx − tl ≥ taps − 1 steps of lookahead, zeros past the end of the
// series); chunks add up.
//
// One thread per tap, taps fastest: a warp reads one source's runoff
// (broadcast) and consecutive steps of one row's gy (coalesced). The sum is
// kept in double, the accumulator dk in double: the host's chain rule
// divides by kernel sums and differences taps.
#include "dr_device.h"

#ifndef DR_PLANT_LAG
#define DR_PLANT_LAG 0 // tests plant an off-by-one lag here (gy[t + k + 1])
#endif

extern "C" __global__ void dr_tapgrad(double* __restrict__ dk, const float* __restrict__ x,
                                      const float* __restrict__ gy,
                                      const int* __restrict__ tileRow,
                                      const int* __restrict__ tileCol,
                                      const int* __restrict__ size, dr_i64 ntiles, dr_i64 n,
                                      dr_i64 bsz, dr_i64 taps, dr_i64 nb, dr_i64 tl,
                                      dr_i64 tx) {
	const dr_i64 total = ntiles * bsz * bsz * taps;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 k = g % taps;
		const dr_i64 e = g / taps; // entry (tile, row, column)
		const dr_i64 c = e % bsz;
		const dr_i64 r = (e / bsz) % bsz;
		const dr_i64 t = e / (bsz * bsz);
		const dr_i64 p = (dr_i64)tileRow[t] * bsz + r;
		const dr_i64 q = (dr_i64)tileCol[t] * bsz + c;
		if (p >= n || q < p || q >= p + size[p]) {
			continue;
		}
		const dr_i64 lag = k + DR_PLANT_LAG;
		double acc = 0.0;
		for (dr_i64 b = 0; b < nb; b++) {
			const float* xs = x + (b * n + q) * tl;
			const float* gs = gy + (b * n + p) * tx + lag;
			const dr_i64 m = tl < tx - lag ? tl : tx - lag;
			for (dr_i64 s = 0; s < m; s++) {
				acc += (double)xs[s] * (double)gs[s];
			}
		}
		dk[g] += acc;
	}
}
