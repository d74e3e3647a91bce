// dr_device.h — the few CUDA spellings the diffroute kernels use, for the
// three ways this directory is compiled:
//
//   nvcc -ptx              CUDA defines everything itself; nothing to do.
//   clang -x cuda -nocudainc
//                          no CUDA headers at all: spell the attributes and
//                          the thread/block indices with clang's builtins.
//   g++ (DR_EMU)           host emulation: emu.h has defined everything
//                          before including the kernels.
//
// Kernels use only threadIdx/blockIdx/blockDim/gridDim (.x), __global__,
// __device__ and __restrict__: no shared memory, no warp intrinsics, no
// library calls, so that the same source runs in the emulator.
#ifndef DR_DEVICE_H
#define DR_DEVICE_H

#if defined(DR_EMU) || defined(__NVCC__)
// Nothing: defined by the emulator or by nvcc.
#elif defined(__clang__) && defined(__CUDA__)
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __forceinline__ __attribute__((always_inline)) inline
struct dr_dim3 {
	unsigned int x, y, z;
};
#define threadIdx (dr_dim3{(unsigned int)__nvvm_read_ptx_sreg_tid_x(), (unsigned int)__nvvm_read_ptx_sreg_tid_y(), (unsigned int)__nvvm_read_ptx_sreg_tid_z()})
#define blockIdx (dr_dim3{(unsigned int)__nvvm_read_ptx_sreg_ctaid_x(), (unsigned int)__nvvm_read_ptx_sreg_ctaid_y(), (unsigned int)__nvvm_read_ptx_sreg_ctaid_z()})
#define blockDim (dr_dim3{(unsigned int)__nvvm_read_ptx_sreg_ntid_x(), (unsigned int)__nvvm_read_ptx_sreg_ntid_y(), (unsigned int)__nvvm_read_ptx_sreg_ntid_z()})
#define gridDim (dr_dim3{(unsigned int)__nvvm_read_ptx_sreg_nctaid_x(), (unsigned int)__nvvm_read_ptx_sreg_nctaid_y(), (unsigned int)__nvvm_read_ptx_sreg_nctaid_z()})
#else
#error "dr_device.h: compile with nvcc, clang -x cuda, or define DR_EMU"
#endif

// Every scalar kernel argument is 8 bytes wide (long long or double):
// gorgonia.org/cu copies 8 bytes per argument pointer when launching.
typedef long long dr_i64;

// dr_gid is this thread's index in a 1-D grid, dr_gstride the grid's size:
// kernels loop `for (i = dr_gid(); i < n; i += dr_gstride())`, so any grid
// size covers any problem (the launcher caps the grid).
static __device__ __forceinline__ dr_i64 dr_gid(void) {
	return (dr_i64)blockIdx.x * (dr_i64)blockDim.x + (dr_i64)threadIdx.x;
}
static __device__ __forceinline__ dr_i64 dr_gstride(void) {
	return (dr_i64)gridDim.x * (dr_i64)blockDim.x;
}

#endif
