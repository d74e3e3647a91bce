// Package kernels holds the CUDA C++ sources of the diffroute GPU kernels
// (*.cu) and a host emulator that compiles the same sources as C++ (g++, via
// cgo) with a small header (emu.h) defining __global__, __device__ and
// threadIdx/blockIdx/blockDim/gridDim, and launches them by looping over the
// grid. Tests compare the emulated kernels with the Go CPU kernel method of
// package diffroute; the CUDA backend (package gpu, build tag cuda) runs the
// PTX compiled from the very same sources (gpu/ptx, scripts/gpu-ptx.sh).
//
// The kernels avoid shared memory, warp intrinsics and library calls so that
// the emulation is faithful: each thread computes its outputs alone.
// LaunchNamed runs a kernel by name with its arguments as raw 8-byte values,
// as the CUDA driver receives them: the emulated device of package
// gpu/internal/cu (tag cudaemu) launches through it.
package kernels
