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

#ifdef __cplusplus
}
#endif
#endif
