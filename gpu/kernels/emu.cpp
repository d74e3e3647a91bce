// emu.cpp — the diffroute kernels compiled as C++ and launched on the host.
#include "emu.h"
#include "emu_api.h"
#include "diffroute.cu"

#include <stdint.h>
#include <string.h>

thread_local emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

// The planted off-by-one variant of dr_bsconv (emu_planted.cpp).
extern "C" void dr_bsconv_planted(float*, const float*, const float*, const dr_i64*,
                                  const int*, const int*, dr_i64, dr_i64, dr_i64, dr_i64,
                                  dr_i64, dr_i64);

// The planted reversed-taps variant of dr_bsconv_adj (emu_planted_adj.cpp).
extern "C" void dr_bsconv_adj_planted(float*, const float*, const float*, const dr_i64*,
                                      const int*, dr_i64, dr_i64, dr_i64, dr_i64, dr_i64,
                                      dr_i64);

// The planted off-by-one-lag variant of dr_tapgrad (emu_planted_tapgrad.cpp).
extern "C" void dr_tapgrad_planted(double*, const float*, const float*, const int*, const int*,
                                   const int*, dr_i64, dr_i64, dr_i64, dr_i64, dr_i64, dr_i64,
                                   dr_i64);

extern "C" void emu_tapgrad(int planted, long long grid, long long block, double* dk,
                            const float* x, const float* gy, const int* tileRow,
                            const int* tileCol, const int* size, long long ntiles, long long n,
                            long long bsz, long long taps, long long nb, long long tl,
                            long long tx) {
	emu_launch(grid, block, [&] {
		if (planted) {
			dr_tapgrad_planted(dk, x, gy, tileRow, tileCol, size, ntiles, n, bsz, taps, nb, tl, tx);
		} else {
			dr_tapgrad(dk, x, gy, tileRow, tileCol, size, ntiles, n, bsz, taps, nb, tl, tx);
		}
	});
}

extern "C" void emu_bsconv(int planted, long long grid, long long block, float* y,
                           const float* x, const float* vals, const long long* rowTiles,
                           const int* tileCol, const int* size, long long n, long long bsz,
                           long long taps, long long nb, long long tx, long long t0) {
	emu_launch(grid, block, [&] {
		if (planted) {
			dr_bsconv_planted(y, x, vals, rowTiles, tileCol, size, n, bsz, taps, nb, tx, t0);
		} else {
			dr_bsconv(y, x, vals, rowTiles, tileCol, size, n, bsz, taps, nb, tx, t0);
		}
	});
}

extern "C" void emu_bsconv_adj(int planted, long long grid, long long block, float* gx,
                               const float* gy, const float* vals, const long long* rowTiles,
                               const int* downPos, long long n, long long bsz, long long taps,
                               long long nb, long long tx, long long ahead) {
	emu_launch(grid, block, [&] {
		if (planted) {
			dr_bsconv_adj_planted(gx, gy, vals, rowTiles, downPos, n, bsz, taps, nb, tx, ahead);
		} else {
			dr_bsconv_adj(gx, gy, vals, rowTiles, downPos, n, bsz, taps, nb, tx, ahead);
		}
	});
}

extern "C" void emu_transfer_add(long long grid, long long block, float* y, const float* z,
                                 const float* kf, const long long* groupStart,
                                 const int* groupRow, const int* taskIn,
                                 const long long* taskOff, long long ngroups, long long ny,
                                 long long nb, long long ty, long long q0, long long f,
                                 long long wf, long long nin, long long tz) {
	emu_launch(grid, block, [&] {
		dr_transfer_add(y, z, kf, groupStart, groupRow, taskIn, taskOff, ngroups, ny, nb, ty,
		                q0, f, wf, nin, tz);
	});
}

extern "C" void emu_interp(long long grid, long long block, float* x, const float* pix,
                           const long long* wStart, const int* pixel, const double* weight,
                           long long n, long long npix, long long nb, long long nt) {
	emu_launch(grid, block,
	           [&] { dr_interp(x, pix, wStart, pixel, weight, n, npix, nb, nt); });
}

extern "C" void emu_prefix_jump(long long grid, long long block, double* pout,
                                const double* pin, int* nxtOut, const int* nxtIn, long long n,
                                long long width) {
	emu_launch(grid, block, [&] { dr_prefix_jump(pout, pin, nxtOut, nxtIn, n, width); });
}

extern "C" void emu_interp_window(long long grid, long long block, float* x, const float* pix,
                                  const long long* wStart, const int* pixel,
                                  const double* weight, long long n, long long npix,
                                  long long nb, long long tx, long long pnt, long long ps) {
	emu_launch(grid, block, [&] {
		dr_interp_window(x, pix, wStart, pixel, weight, n, npix, nb, tx, pnt, ps);
	});
}

extern "C" void emu_pair_enum(long long grid, long long block, int* pairD, int* pairS,
                              const long long* pairStart, const int* downPos, long long n) {
	emu_launch(grid, block, [&] { dr_pair_enum(pairD, pairS, pairStart, downPos, n); });
}

extern "C" void emu_pair_taps(long long grid, long long block, float* vals, double* sums,
                              const int* pairD, const int* pairS, const double* P,
                              const double* src, const int* boxed, const int* downPos,
                              const long long* rowTiles, const double* fold,
                              const double* selfTaps, long long npairs, long long nf,
                              long long m, long long mp, long long taps, long long bsz,
                              long long mode, long long normalize) {
	emu_launch(grid, block, [&] {
		dr_pair_taps(vals, sums, pairD, pairS, P, src, boxed, downPos, rowTiles, fold, selfTaps,
		             npairs, nf, m, mp, taps, bsz, mode, normalize);
	});
}

extern "C" void emu_pair_taps_fine(long long grid, long long block, float* vals, double* sums,
                                   const int* pairD, const int* pairS, const double* P,
                                   const double* src, const int* boxed, const int* downPos,
                                   const long long* rowTiles, const double* trig,
                                   const double* selfTaps, double* scratch, long long npairs,
                                   long long nf, long long m, long long f, long long taps,
                                   long long bsz, long long mode, long long normalize,
                                   long long shift, long long sample) {
	emu_launch(grid, block, [&] {
		dr_pair_taps_fine(vals, sums, pairD, pairS, P, src, boxed, downPos, rowTiles, trig, selfTaps,
		                  scratch, npairs, nf, m, f, taps, bsz, mode, normalize, shift, sample);
	});
}

// emu_math evaluates dr_math.h's functions, for their accuracy test.
extern "C" void emu_math(const double* x, double* ex, double* sn, double* cs, long long n) {
	for (long long i = 0; i < n; i++) {
		ex[i] = dr_exp(x[i]);
		dr_sincos(x[i], &sn[i], &cs[i]);
	}
}

// emu_launch_named launches a kernel by name with its arguments as 8-byte
// values (device pointers are host addresses in the emulator), the way the
// CUDA driver receives them. It returns 0, or −1 for an unknown kernel or a
// wrong argument count.
extern "C" int emu_launch_named(const char* name, long long grid, long long block,
                                const unsigned long long* a, int n) {
#define P(T, i) ((T)(uintptr_t)a[i])
#define I(i) ((dr_i64)a[i])
	if (!strcmp(name, "dr_bsconv") && n == 12) {
		emu_launch(grid, block, [&] {
			dr_bsconv(P(float*, 0), P(const float*, 1), P(const float*, 2), P(const dr_i64*, 3),
			          P(const int*, 4), P(const int*, 5), I(6), I(7), I(8), I(9), I(10), I(11));
		});
	} else if (!strcmp(name, "dr_bsconv_adj") && n == 11) {
		emu_launch(grid, block, [&] {
			dr_bsconv_adj(P(float*, 0), P(const float*, 1), P(const float*, 2),
			              P(const dr_i64*, 3), P(const int*, 4), I(5), I(6), I(7), I(8), I(9),
			              I(10));
		});
	} else if (!strcmp(name, "dr_transfer_add") && n == 16) {
		emu_launch(grid, block, [&] {
			dr_transfer_add(P(float*, 0), P(const float*, 1), P(const float*, 2),
			                P(const dr_i64*, 3), P(const int*, 4), P(const int*, 5),
			                P(const dr_i64*, 6), I(7), I(8), I(9), I(10), I(11), I(12), I(13),
			                I(14), I(15));
		});
	} else if (!strcmp(name, "dr_interp") && n == 9) {
		emu_launch(grid, block, [&] {
			dr_interp(P(float*, 0), P(const float*, 1), P(const dr_i64*, 2), P(const int*, 3),
			          P(const double*, 4), I(5), I(6), I(7), I(8));
		});
	} else if (!strcmp(name, "dr_interp_window") && n == 11) {
		emu_launch(grid, block, [&] {
			dr_interp_window(P(float*, 0), P(const float*, 1), P(const dr_i64*, 2),
			                 P(const int*, 3), P(const double*, 4), I(5), I(6), I(7), I(8), I(9),
			                 I(10));
		});
	} else if (!strcmp(name, "dr_prefix_jump") && n == 6) {
		emu_launch(grid, block, [&] {
			dr_prefix_jump(P(double*, 0), P(const double*, 1), P(int*, 2), P(const int*, 3), I(4),
			               I(5));
		});
	} else if (!strcmp(name, "dr_pair_enum") && n == 5) {
		emu_launch(grid, block, [&] {
			dr_pair_enum(P(int*, 0), P(int*, 1), P(const dr_i64*, 2), P(const int*, 3), I(4));
		});
	} else if (!strcmp(name, "dr_pair_taps") && n == 19) {
		emu_launch(grid, block, [&] {
			dr_pair_taps(P(float*, 0), P(double*, 1), P(const int*, 2), P(const int*, 3),
			             P(const double*, 4), P(const double*, 5), P(const int*, 6),
			             P(const int*, 7), P(const dr_i64*, 8), P(const double*, 9),
			             P(const double*, 10), I(11), I(12), I(13), I(14), I(15), I(16), I(17),
			             I(18));
		});
	} else if (!strcmp(name, "dr_pair_taps_fine") && n == 22) {
		emu_launch(grid, block, [&] {
			dr_pair_taps_fine(P(float*, 0), P(double*, 1), P(const int*, 2), P(const int*, 3),
			                  P(const double*, 4), P(const double*, 5), P(const int*, 6),
			                  P(const int*, 7), P(const dr_i64*, 8), P(const double*, 9),
			                  P(const double*, 10), P(double*, 11), I(12), I(13), I(14), I(15),
			                  I(16), I(17), I(18), I(19), I(20), I(21));
		});
	} else if (!strcmp(name, "dr_tapgrad") && n == 13) {
		emu_launch(grid, block, [&] {
			dr_tapgrad(P(double*, 0), P(const float*, 1), P(const float*, 2), P(const int*, 3),
			           P(const int*, 4), P(const int*, 5), I(6), I(7), I(8), I(9), I(10), I(11),
			           I(12));
		});
	} else {
		return -1;
	}
	return 0;
#undef P
#undef I
}
