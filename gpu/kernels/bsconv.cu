// bsconv.cu — block-sparse causal convolution (DESIGN §3(b) step 6).
//
//   y[b, p, t] = Σ_tiles Σ_c Σ_k K[tile][r][c][k] · x[b, q, t − k]
//
// Reaches are numbered by pre-order position p (diffroute.BlockSparseKernel):
// row p's sources are the contiguous positions [p, p + size[p]); row block
// R = p / B owns tiles rowTiles[R] .. rowTiles[R+1]−1, tile `tile` covering
// source positions tileCol[tile]·B .. +B−1, and holding B×B entries of `taps`
// float taps in causal order at vals[((tile·B + r)·B + c)·taps + k].
//
// x is one time chunk in position order, [nb][n][tx]: its first t0 steps are
// history (t0 ≥ taps − 1; zeros before the start of the series), the rest the
// chunk. y is [nb][n][tx − t0]: output step t − t0 for t in [t0, tx).
//
// One thread per output value, time fastest: a warp reads 32 consecutive
// steps of the same source (coalesced) and the same tap (broadcast). The sum
// is kept in float, in tile, column, tap order.
#include "dr_device.h"

#ifndef DR_PLANT_SHIFT
#define DR_PLANT_SHIFT 0 // tests plant an off-by-one here (x[t − k − 1])
#endif

extern "C" __global__ void dr_bsconv(float* __restrict__ y, const float* __restrict__ x,
                                     const float* __restrict__ vals,
                                     const dr_i64* __restrict__ rowTiles,
                                     const int* __restrict__ tileCol, const int* __restrict__ size,
                                     dr_i64 n, dr_i64 bsz, dr_i64 taps, dr_i64 nb, dr_i64 tx,
                                     dr_i64 t0) {
	const dr_i64 ty = tx - t0;
	const dr_i64 total = nb * n * ty;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 t = t0 + g % ty;
		const dr_i64 rest = g / ty;
		const dr_i64 p = rest % n;
		const dr_i64 b = rest / n;
		const dr_i64 R = p / bsz, r = p % bsz;
		const dr_i64 end = p + size[p];
		dr_i64 kmax = t - DR_PLANT_SHIFT;
		if (kmax > taps - 1) {
			kmax = taps - 1;
		}
		const float* xb = x + b * n * tx;
		float acc = 0.0f;
		for (dr_i64 tile = rowTiles[R]; tile < rowTiles[R + 1]; tile++) {
			const dr_i64 c0 = (dr_i64)tileCol[tile] * bsz;
			dr_i64 clo = p - c0, chi = end - c0;
			if (clo < 0) {
				clo = 0;
			}
			if (chi > bsz) {
				chi = bsz;
			}
			for (dr_i64 c = clo; c < chi; c++) {
				const float* kk = vals + ((tile * bsz + r) * bsz + c) * taps;
				const float* xs = xb + (c0 + c) * tx + t - DR_PLANT_SHIFT;
				for (dr_i64 k = 0; k <= kmax; k++) {
					acc += kk[k] * xs[-k];
				}
			}
		}
		y[(b * n + p) * ty + (t - t0)] = acc;
	}
}
