// Package gpu routes with the kernel method (DESIGN §3(b)) on an NVIDIA GPU
// through CUDA's driver API (gorgonia.org/cu v0.9.6).
//
// # What runs where
//
// The transitive-closure kernel is built on the CPU by
// diffroute.NewKernelRouter, with the same Options and therefore the same
// numbers as the CPU kernel method, and uploaded in its block-sparse layout
// (diffroute.BlockSparseKernel). Router.Route then streams the runoff through
// the device in time chunks: each chunk carries MaxDelay−1 steps of history,
// so chunks are exact; two slots, each a CUDA stream with pinned host and
// device buffers, alternate, so that the host packs chunk i+1 and unpacks
// chunk i−1 while the device copies and convolves chunk i. The chunk length
// follows the free device memory (RouterOptions). A Router implements
// diffroute.Router.
//
// A single goroutine, locked to its OS thread, owns the CUDA context (Device)
// and runs every CUDA call; kernel arguments are passed as int64 and
// cu.DevicePtr values only, because cu copies 8 bytes per argument. Pinned
// host memory comes from a few lines of cgo (cuMemHostAlloc), which cu lacks.
//
// # Build tag
//
// Everything that imports gorgonia.org/cu sits behind the build tag cuda: cu's
// package initialisation calls cuInit and exits the process when no GPU
// driver is present. Without the tag, Open and NewRouter return ErrNoCUDA and
// the module builds and tests on any machine. With it:
//
//	scripts/gpu-install-deps.sh                  # CUDA 11.8 cuda.h + stub libcuda.so (~1 min)
//	eval "$(scripts/gpu-install-deps.sh --env)"  # CGO_CFLAGS / CGO_LDFLAGS
//	go vet -tags cuda ./gpu/...
//	scripts/gpu-run-device.sh build              # bin/gpu/gpu.test, to run on a GPU machine
//	scripts/gpu-run-device.sh run                # there: tests, then the benchmark
//
// # Kernels and PTX
//
// The kernels are CUDA C++ in gpu/kernels/*.cu: block-sparse causal
// convolution (the one Route uses), fine transfer inflow, catchment
// interpolation and pointer-jumping log-domain prefix sums. They use no shared
// memory, warp intrinsics or library calls, so package gpu/kernels compiles
// the same sources with g++ and emulates the launch grid on the host; its tests
// (and this package's, without the tag) compare them with the CPU kernel
// method on random networks and on rapid_xx9, and check that a planted
// off-by-one is caught.
//
// The PTX in gpu/ptx/diffroute.ptx is generated from those sources and
// committed; it is embedded with go:embed and JIT-compiled by the driver when
// a Device opens (compute capability 8.0 and newer). After editing a .cu
// file, regenerate it with
//
//	scripts/gpu-ptx.sh           # clang-14 (apt-get install clang-14), no CUDA SDK needed
//	scripts/gpu-ptx.sh --check   # fails when the committed PTX is stale
//
// or CUDA_PTX_COMPILER=nvcc scripts/gpu-ptx.sh where nvcc is installed.
package gpu
