// transfer.cu — fine upstream inflow (staged routing's transfers, DESIGN §5)
// added to the coarse discharge through polyphase kernels:
//
//   y[b, d, q] += Σ_m Kf[m] · z[b, q·f + f − 1 − m],   m < min(wf, q·f + f)
//
// Tasks (one per (output reach d, inflow)) are grouped by output row so that
// one thread owns each output value and no atomics are needed: group g covers
// tasks groupStart[g] .. groupStart[g+1]−1, all adding into row groupRow[g] of
// y ([nb][ny][ty], output step q − q0 for q in [q0, q0 + ty)). Task j reads
// inflow series taskIn[j] of z ([nin][nb][tz], tz = T·f fine values from the
// start of the run) and the kernel row kf + taskOff[j] (wf taps).
#include "dr_device.h"

extern "C" __global__ void dr_transfer_add(float* __restrict__ y, const float* __restrict__ z,
                                           const float* __restrict__ kf,
                                           const dr_i64* __restrict__ groupStart,
                                           const int* __restrict__ groupRow,
                                           const int* __restrict__ taskIn,
                                           const dr_i64* __restrict__ taskOff, dr_i64 ngroups,
                                           dr_i64 ny, dr_i64 nb, dr_i64 ty, dr_i64 q0, dr_i64 f,
                                           dr_i64 wf, dr_i64 nin, dr_i64 tz) {
	const dr_i64 total = ngroups * nb * ty;
	for (dr_i64 g = dr_gid(); g < total; g += dr_gstride()) {
		const dr_i64 q = q0 + g % ty;
		const dr_i64 rest = g / ty;
		const dr_i64 b = rest % nb;
		const dr_i64 grp = rest / nb;
		const dr_i64 top = q * f + f - 1;
		dr_i64 mmax = top + 1;
		if (mmax > wf) {
			mmax = wf;
		}
		float acc = 0.0f;
		for (dr_i64 j = groupStart[grp]; j < groupStart[grp + 1]; j++) {
			const float* row = kf + taskOff[j];
			const float* zs = z + ((dr_i64)taskIn[j] * nb + b) * tz + top;
			float s = 0.0f;
			for (dr_i64 m = 0; m < mmax; m++) {
				s += row[m] * zs[-m];
			}
			acc += s;
		}
		y[(b * ny + groupRow[grp]) * ty + (q - q0)] += acc;
	}
	(void)nin;
}
