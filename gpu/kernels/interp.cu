// interp.cu — catchment interpolation (DESIGN §5): runoff of reach i is the
// weighted sum of its pixels,
//
//   x[b, i, t] = Σ_{w ∈ [wStart[i], wStart[i+1])} weight[w] · pix[b, pixel[w], t]
//
// pix is [nb][npix][nt], x is [nb][n][nt]; weights are double (areas in m²
// times a unit factor such as 1/86 400 span many decades) and the sum is kept
// in double. One thread per output value, time fastest (coalesced pixel reads).
#include "dr_device.h"

extern "C" __global__ void dr_interp(float* __restrict__ x, const float* __restrict__ pix,
                                     const dr_i64* __restrict__ wStart,
                                     const int* __restrict__ pixel,
                                     const double* __restrict__ weight, dr_i64 n, dr_i64 npix,
                                     dr_i64 nb, dr_i64 nt) {
	const dr_i64 total = nb * n * nt;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 t = g % nt;
		const dr_i64 rest = g / nt;
		const dr_i64 i = rest % n;
		const dr_i64 b = rest / n;
		double acc = 0.0;
		for (dr_i64 w = wStart[i]; w < wStart[i + 1]; w++) {
			acc += weight[w] * (double)pix[(b * npix + pixel[w]) * nt + t];
		}
		x[(b * n + i) * nt + t] = (float)acc;
	}
}

// dr_interp_window is dr_interp for one time window of a resident pixel
// matrix, written straight into a convolution input buffer: x is
// [nb][n][tx], pix [nb][npix][pnt], and
//
//   x[b, i, t] = Σ_w weight[w] · pix[b, pixel[w], ps + t]
//
// with pixel columns outside [0, pnt) read as zero (steps before the start
// of the series, the convolution's zero history). ps may be negative.
extern "C" __global__ void dr_interp_window(float* __restrict__ x, const float* __restrict__ pix,
                                            const dr_i64* __restrict__ wStart,
                                            const int* __restrict__ pixel,
                                            const double* __restrict__ weight, dr_i64 n,
                                            dr_i64 npix, dr_i64 nb, dr_i64 tx, dr_i64 pnt,
                                            dr_i64 ps) {
	const dr_i64 total = nb * n * tx;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 t = g % tx;
		const dr_i64 rest = g / tx;
		const dr_i64 i = rest % n;
		const dr_i64 b = rest / n;
		const dr_i64 col = ps + t;
		double acc = 0.0;
		if (col >= 0 && col < pnt) {
			for (dr_i64 w = wStart[i]; w < wStart[i + 1]; w++) {
				acc += weight[w] * (double)pix[(b * npix + pixel[w]) * pnt + col];
			}
		}
		x[(b * n + i) * tx + t] = (float)acc;
	}
}
