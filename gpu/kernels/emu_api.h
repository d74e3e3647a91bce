// emu_api.h — C entry points of the kernel emulator (emu.cpp), one per
// kernel: each launches the kernel on a grid × block 1-D grid on the host.
#ifndef DR_EMU_API_H
#define DR_EMU_API_H
#ifdef __cplusplus
extern "C" {
#endif

void emu_bsconv(int planted, long long grid, long long block, float* y, const float* x,
                const float* vals, const long long* rowTiles, const int* tileCol,
                const int* size, long long n, long long bsz, long long taps, long long nb,
                long long tx, long long t0);
void emu_bsconv_adj(int planted, long long grid, long long block, float* gx, const float* gy,
                    const float* vals, const long long* rowTiles, const int* downPos,
                    long long n, long long bsz, long long taps, long long nb, long long tx,
                    long long ahead);
void emu_transfer_add(long long grid, long long block, float* y, const float* z,
                      const float* kf, const long long* groupStart, const int* groupRow,
                      const int* taskIn, const long long* taskOff, long long ngroups,
                      long long ny, long long nb, long long ty, long long q0, long long f,
                      long long wf, long long nin, long long tz);
void emu_interp(long long grid, long long block, float* x, const float* pix,
                const long long* wStart, const int* pixel, const double* weight, long long n,
                long long npix, long long nb, long long nt);
void emu_interp_window(long long grid, long long block, float* x, const float* pix,
                       const long long* wStart, const int* pixel, const double* weight,
                       long long n, long long npix, long long nb, long long tx, long long pnt,
                       long long ps);
void emu_prefix_jump(long long grid, long long block, double* pout, const double* pin,
                     int* nxtOut, const int* nxtIn, long long n, long long width);
void emu_pair_enum(long long grid, long long block, int* pairD, int* pairS,
                   const long long* pairStart, const int* downPos, long long n);
void emu_pair_taps(long long grid, long long block, float* vals, double* sums, const int* pairD,
                   const int* pairS, const double* P, const double* src, const int* boxed,
                   const int* downPos, const long long* rowTiles, const double* fold,
                   const double* selfTaps, long long npairs, long long nf, long long m,
                   long long mp, long long taps, long long bsz, long long mode,
                   long long normalize);
void emu_pair_taps_fine(long long grid, long long block, float* vals, double* sums,
                        const int* pairD, const int* pairS, const double* P, const double* src,
                        const int* boxed, const int* downPos, const long long* rowTiles,
                        const double* trig, const double* selfTaps, double* scratch,
                        long long npairs, long long nf, long long m, long long f, long long taps,
                        long long bsz, long long mode, long long normalize, long long shift,
                        long long sample);
void emu_tapgrad(int planted, long long grid, long long block, double* dk, const float* x,
                 const float* gy, const int* tileRow, const int* tileCol, const int* size,
                 long long ntiles, long long n, long long bsz, long long taps, long long nb,
                 long long tl, long long tx);
int emu_launch_named(const char* name, long long grid, long long block,
                     const unsigned long long* args, int nargs);
void emu_math(const double* x, double* ex, double* sn, double* cs, long long n);

#ifdef __cplusplus
}
#endif
#endif
