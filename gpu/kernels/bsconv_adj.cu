// bsconv_adj.cu — the adjoint (transpose) of dr_bsconv: from the gradient of
// a loss with respect to discharge, gy = ∂L/∂y, the gradient with respect to
// runoff,
//
//   gx[b, q, t] = Σ_{p ∈ path(q)} Σ_k K[p][q][k] · gy[b, p, t + k]
//
// Column q of the kernel holds the rows p whose sources [p, p + size[p])
// contain q: q itself and every position downstream of it, which downPos
// lists (the next position towards the outlet, −1 past it). Entry (p, q)
// lies in tile rowTiles[p/B] + q/B − p/B (a row block's tiles cover its
// column blocks contiguously from its own on), row p % B, column q % B: the
// forward kernel's tiles read with rows and columns swapped, the taps
// correlated instead of convolved.
//
// gy is one time chunk in position order, [nb][n][tx]: output steps
// [0, tx − ahead) followed by ahead ≥ taps − 1 steps of lookahead (zeros
// past the end of the series). gx is [nb][n][tx − ahead].
//
// One thread per output value, time fastest: a warp shares q and its path,
// reads the same taps (broadcast) and 32 consecutive steps of gy
// (coalesced). The sum is kept in float, outlet-wards along the path, in
// tap order.
#include "dr_device.h"

#ifndef DR_PLANT_TAPS
#define DR_PLANT_TAPS 0 // tests plant reversed taps here (K[taps − 1 − k])
#endif

extern "C" __global__ void dr_bsconv_adj(float* __restrict__ gx, const float* __restrict__ gy,
                                         const float* __restrict__ vals,
                                         const dr_i64* __restrict__ rowTiles,
                                         const int* __restrict__ downPos, dr_i64 n, dr_i64 bsz,
                                         dr_i64 taps, dr_i64 nb, dr_i64 tx, dr_i64 ahead) {
	const dr_i64 ty = tx - ahead;
	const dr_i64 total = nb * n * ty;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 t = g % ty;
		const dr_i64 rest = g / ty;
		const dr_i64 q = rest % n;
		const dr_i64 b = rest / n;
		const dr_i64 C = q / bsz, c = q % bsz;
		const float* gb = gy + b * n * tx + t;
		float acc = 0.0f;
		for (dr_i64 p = q; p >= 0; p = downPos[p]) {
			const dr_i64 R = p / bsz;
			const float* kk = vals + (((rowTiles[R] + C - R) * bsz + p % bsz) * bsz + c) * taps;
			const float* gs = gb + p * tx;
			for (dr_i64 k = 0; k < taps; k++) {
				acc += kk[DR_PLANT_TAPS ? taps - 1 - k : k] * gs[k];
			}
		}
		gx[(b * n + q) * ty + t] = acc;
	}
}
