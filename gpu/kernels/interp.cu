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
