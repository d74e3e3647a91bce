// prefix.cu — log-domain prefix sums to the outlet by pointer jumping
// (DESIGN §3(b) step 3), in double:
//
//   P[i] = L[i] + P[down[i]]   (P = L at an outlet)
//
// Each step doubles the span every reach has summed: with nxt the reach
// beyond that span (−1 past the outlet),
//
//   Pout[i] = Pin[i] + Pin[nxtIn[i]],   nxtOut[i] = nxtIn[nxtIn[i]],
//
// starting from Pin = L, nxtIn = down. ⌈log2(max depth)⌉ steps give P. Rows are
// `width` doubles (a log spectrum of nf complex values is 2·nf doubles); the
// host swaps in/out buffers between steps. One thread per double, row-major.
#include "dr_device.h"

extern "C" __global__ void dr_prefix_jump(double* __restrict__ pout,
                                          const double* __restrict__ pin,
                                          int* __restrict__ nxtOut,
                                          const int* __restrict__ nxtIn, dr_i64 n,
                                          dr_i64 width) {
	const dr_i64 total = n * width;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 i = g / width, j = g % width;
		const int nx = nxtIn[i];
		double v = pin[g];
		if (nx >= 0) {
			v += pin[(dr_i64)nx * width + j];
		}
		pout[g] = v;
		if (j == 0) {
			nxtOut[i] = nx >= 0 ? nxtIn[nx] : -1;
		}
	}
}
