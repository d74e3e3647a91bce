// emu.h — host emulation of the CUDA launch model for the diffroute kernels.
// Included before the .cu sources (which then see DR_EMU): __global__ and
// __device__ vanish, and threadIdx/blockIdx/blockDim/gridDim are per-thread
// globals that the launcher (emu.cpp) sets while it loops over the grid.
// Valid because the kernels share nothing between threads of a block.
#ifndef DR_EMU_H
#define DR_EMU_H
#define DR_EMU 1
#define __global__
#define __device__
#define __forceinline__ inline

struct emu_dim3 {
	unsigned int x, y, z;
};
extern thread_local emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

// emu_launch runs body once per thread of a grid × block 1-D launch, in
// block order.
template <class F>
static void emu_launch(long long grid, long long block, F body) {
	gridDim = emu_dim3{(unsigned)grid, 1, 1};
	blockDim = emu_dim3{(unsigned)block, 1, 1};
	for (long long b = 0; b < grid; b++) {
		blockIdx = emu_dim3{(unsigned)b, 0, 0};
		for (long long t = 0; t < block; t++) {
			threadIdx = emu_dim3{(unsigned)t, 0, 0};
			body();
		}
	}
}
#endif
