// pairs.cu — the kernel's closure pairs and their taps, built on the device
// from log spectra (DESIGN §3(b) steps 4–5), for IRFs without a recursive
// form (the FFT build of diffroute.KernelRouter in its log-prefix form):
//
//   dr_pair_enum   lists the pairs: for source position s, the positions d
//                  on its way to the outlet, from pairStart[s] on;
//   dr_pair_taps   one thread per pair: the pair's spectrum
//                  S = exp(A_s − P[down d]) bin by bin, folded straight into
//                  Taps coarse taps (diffroute's foldCoarsener: Y = G·S
//                  summed onto M' = M/f bins, an inverse DFT at the taps,
//                  K[0] less its circular terms), written into the
//                  block-sparse kernel, with the taps' sum for the host's
//                  truncation record;
//   dr_pair_taps_fine  the same under ReLU, through the fine kernel.
//
// Tables are indexed by pre-order position. P holds the prefix log spectra
// (dr_prefix_jump), complex as two doubles, nf bins per reach. The source
// term A_s follows `mode`: 0, P[s]; 1, P[down s] (ExcludeSelf: no own IRF);
// 2, where boxed[s], the source's lateral log spectrum src[s] + P[down s],
// else P[s]. With selfTaps (ExcludeSelf) the pair (s, s) is those taps.
// fold holds two tables, for kernels that are not (0) or are (1) whole-step
// responses, each [G: nf complex][wrap: nf complex][tw: taps × (half+1)
// complex]. Normalize divides the taps by their sum (a zero sum is left for
// the host to report).
#include "dr_device.h"
#include "dr_math.h"

// DR_MAX_FOLD bounds half+1, the folded bins a thread keeps: FFTPad·MaxDelay
// ≤ 2·DR_MAX_FOLD − 2 (the host builds on the CPU beyond).
#define DR_MAX_FOLD 160

// dr_pair is one pair's terms: its spectrum is exp(a + a2 − b) bin by bin
// (a null term is zero), and box says the source is a whole-step response.
struct dr_pair {
	const double* a;
	const double* a2;
	const double* b;
	int box;
};

// dr_pair_terms picks pair (d, s)'s terms by the source rule `mode` (see the
// top of this file).
static __device__ __forceinline__ dr_pair dr_pair_terms(int d, int s, const double* P,
                                                        const double* src, const int* boxed,
                                                        const int* downPos, dr_i64 nf,
                                                        dr_i64 mode) {
	dr_pair t = {P + (dr_i64)s * 2 * nf, nullptr, nullptr, 0};
	const int ds = downPos[s];
	if (mode == 1) {
		t.a = ds >= 0 ? P + (dr_i64)ds * 2 * nf : nullptr;
	} else if (mode == 2 && boxed[s]) {
		t.box = 1;
		t.a = src + (dr_i64)s * 2 * nf;
		t.a2 = ds >= 0 ? P + (dr_i64)ds * 2 * nf : nullptr;
	}
	const int dd = downPos[d];
	t.b = dd >= 0 ? P + (dr_i64)dd * 2 * nf : nullptr;
	return t;
}

// dr_pair_bin sets (*re, *im) to bin k of the pair's spectrum.
static __device__ __forceinline__ void dr_pair_bin(const dr_pair& t, dr_i64 k, double* re,
                                                   double* im) {
	double lr = 0, li = 0;
	if (t.a) {
		lr = t.a[2 * k], li = t.a[2 * k + 1];
	}
	if (t.a2) {
		lr += t.a2[2 * k], li += t.a2[2 * k + 1];
	}
	if (t.b) {
		lr -= t.b[2 * k], li -= t.b[2 * k + 1];
	}
	const double e = dr_exp(lr);
	double sn, cs;
	dr_sincos(li, &sn, &cs);
	*re = e * cs, *im = e * sn;
}

// dr_pair_out is where pair (d, s)'s taps go in the block-sparse kernel
// (diffroute.BlockSparseKernel's layout: row block d/B, tile column s/B).
static __device__ __forceinline__ float* dr_pair_out(float* vals, const dr_i64* rowTiles, int d,
                                                     int s, dr_i64 bsz, dr_i64 taps) {
	const dr_i64 t = rowTiles[d / bsz] + (s / bsz - d / bsz);
	return vals + ((t * bsz + d % bsz) * bsz + s % bsz) * taps;
}

// dr_self_taps writes the self pair's taps (ExcludeSelf: the runoff passes
// as given taps), normalised when asked, and returns their sum.
static __device__ __forceinline__ double dr_self_taps(float* out, const double* selfTaps,
                                                      dr_i64 taps, dr_i64 normalize) {
	double sum = 0;
	for (dr_i64 p = 0; p < taps; p++) {
		sum += selfTaps[p];
	}
	const double scale = normalize && sum != 0 ? 1 / sum : 1;
	for (dr_i64 p = 0; p < taps; p++) {
		out[p] = (float)(selfTaps[p] * scale);
	}
	return sum;
}

extern "C" __global__ void dr_pair_enum(int* __restrict__ pairD, int* __restrict__ pairS,
                                        const dr_i64* __restrict__ pairStart,
                                        const int* __restrict__ downPos, dr_i64 n) {
	for (dr_i64 s = dr_gid(); s < n; s += dr_gstride()) {
		dr_i64 o = pairStart[s];
		for (int d = (int)s; d >= 0; d = downPos[d]) {
			pairD[o] = d;
			pairS[o] = (int)s;
			o++;
		}
	}
}

extern "C" __global__ void dr_pair_taps(
    float* __restrict__ vals, double* __restrict__ sums, const int* __restrict__ pairD,
    const int* __restrict__ pairS, const double* __restrict__ P, const double* __restrict__ src,
    const int* __restrict__ boxed, const int* __restrict__ downPos,
    const dr_i64* __restrict__ rowTiles, const double* __restrict__ fold,
    const double* __restrict__ selfTaps, dr_i64 npairs, dr_i64 nf, dr_i64 m, dr_i64 mp,
    dr_i64 taps, dr_i64 bsz, dr_i64 mode, dr_i64 normalize) {
	const dr_i64 half = mp / 2;
	const dr_i64 foldLen = 4 * nf + 2 * taps * (half + 1); // doubles per fold table
	for (dr_i64 g = dr_gid(); g < npairs; g += dr_gstride()) {
		const int d = pairD[g], s = pairS[g];
		float* out = dr_pair_out(vals, rowTiles, d, s, bsz, taps);
		if (selfTaps && d == s) {
			sums[g] = dr_self_taps(out, selfTaps, taps, normalize);
			continue;
		}
		const dr_pair pr = dr_pair_terms(d, s, P, src, boxed, downPos, nf, mode);
		const double* G = fold + pr.box * foldLen;
		const double* wrap = G + 2 * nf;
		const double* tw = G + 4 * nf;

		double z[2 * DR_MAX_FOLD];
		for (dr_i64 j = 0; j <= half; j++) {
			z[2 * j] = z[2 * j + 1] = 0;
		}
		double corr = 0;
		for (dr_i64 k = 0; k < nf; k++) {
			double sr, si;
			dr_pair_bin(pr, k, &sr, &si);
			corr += sr * wrap[2 * k] - si * wrap[2 * k + 1];
			const double yr = G[2 * k] * sr - G[2 * k + 1] * si;
			const double yi = G[2 * k] * si + G[2 * k + 1] * sr;
			// Bin k of the full spectrum, and its mirror M − k (conjugate)
			// where that is past the half spectrum.
			const dr_i64 j1 = k % mp;
			if (j1 <= half) {
				z[2 * j1] += yr, z[2 * j1 + 1] += yi;
			}
			if (k >= 1 && k <= m - nf) {
				const dr_i64 j2 = (m - k) % mp;
				if (j2 <= half) {
					z[2 * j2] += yr, z[2 * j2 + 1] -= yi;
				}
			}
		}
		// Taps: twice, the first pass for their sum (Normalize).
		double sum = 0;
		for (int pass = 0; pass < 2; pass++) {
			const double scale = pass == 1 && normalize && sum != 0 ? 1 / sum : 1;
			for (dr_i64 p = 0; p < taps; p++) {
				const double* w = tw + 2 * p * (half + 1);
				double v = 0;
				for (dr_i64 j = 0; j <= half; j++) {
					v += z[2 * j] * w[2 * j] - z[2 * j + 1] * w[2 * j + 1];
				}
				if (p == 0) {
					v -= corr;
				}
				if (pass == 0) {
					sum += v;
				} else {
					out[p] = (float)(v * scale);
				}
			}
		}
		sums[g] = sum;
	}
}

// dr_pair_taps_fine is dr_pair_taps for kernels whose taps need the fine
// kernel itself: under ReLU (Compat "diffroute") h = max(IDFT(S), 0) at the
// W = taps·f fine steps the taps read, then, unless the source is boxed,
// its box sum over f sub-steps (again clipped at 0), a delay of `shift`
// sub-steps, and per runoff step the mean of f values or the last one
// (`sample`) — diffroute's coarsen. The inverse DFT reads trig, cos and sin
// of 2πj/M for j < M. Each thread keeps the spectrum, h and the taps in
// scratch, a slice of 2·nf + W + taps doubles per thread of the grid.
extern "C" __global__ void dr_pair_taps_fine(
    float* __restrict__ vals, double* __restrict__ sums, const int* __restrict__ pairD,
    const int* __restrict__ pairS, const double* __restrict__ P, const double* __restrict__ src,
    const int* __restrict__ boxed, const int* __restrict__ downPos,
    const dr_i64* __restrict__ rowTiles, const double* __restrict__ trig,
    const double* __restrict__ selfTaps, double* __restrict__ scratch, dr_i64 npairs, dr_i64 nf,
    dr_i64 m, dr_i64 f, dr_i64 taps, dr_i64 bsz, dr_i64 mode, dr_i64 normalize, dr_i64 shift,
    dr_i64 sample) {
	const dr_i64 w = taps * f;
	double* S = scratch + dr_gid() * (2 * nf + w + taps);
	double* h = S + 2 * nf;
	double* K = h + w;
	for (dr_i64 g = dr_gid(); g < npairs; g += dr_gstride()) {
		const int d = pairD[g], s = pairS[g];
		float* out = dr_pair_out(vals, rowTiles, d, s, bsz, taps);
		if (selfTaps && d == s) {
			sums[g] = dr_self_taps(out, selfTaps, taps, normalize);
			continue;
		}
		const dr_pair pr = dr_pair_terms(d, s, P, src, boxed, downPos, nf, mode);
		for (dr_i64 k = 0; k < nf; k++) {
			dr_pair_bin(pr, k, &S[2 * k], &S[2 * k + 1]);
		}
		// h[n] = max(Re Σ_k α_k S[k] e^{2πi·k·n/M} / M, 0), n < W.
		for (dr_i64 n = 0; n < w; n++) {
			double v = S[0];
			dr_i64 idx = 0;
			for (dr_i64 k = 1; k < nf; k++) {
				idx += n; // k·n mod M: n < W ≤ M, one wrap at most
				if (idx >= m) {
					idx -= m;
				}
				const double term = S[2 * k] * trig[2 * idx] - S[2 * k + 1] * trig[2 * idx + 1];
				v += 2 * k == m ? term : 2 * term;
			}
			v /= (double)m;
			h[n] = v > 0 ? v : 0;
		}
		for (dr_i64 p = 0; p < taps; p++) {
			K[p] = 0;
		}
		double run = 0;
		for (dr_i64 i = 0; i < w; i++) {
			double kb = h[i];
			if (!pr.box) {
				run += h[i];
				if (i >= f) {
					run -= h[i - f];
				}
				kb = run > 0 ? run : 0;
			}
			const dr_i64 n = i + shift;
			if (n >= w) {
				break;
			}
			if (sample) {
				if (n % f == f - 1) {
					K[n / f] = kb;
				}
			} else {
				K[n / f] += kb;
			}
		}
		double sum = 0;
		for (dr_i64 p = 0; p < taps; p++) {
			if (!sample) {
				K[p] /= (double)f;
			}
			sum += K[p];
		}
		const double scale = normalize && sum != 0 ? 1 / sum : 1;
		for (dr_i64 p = 0; p < taps; p++) {
			out[p] = (float)(K[p] * scale);
		}
		sums[g] = sum;
	}
}
