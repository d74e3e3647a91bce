// Package gpu routes with the kernel method (docs/design.md, two methods) on an NVIDIA GPU
// through CUDA's driver API (gorgonia.org/cu v0.9.6).
//
// # What runs where
//
// The transitive-closure kernel is built where it is faster:
//
//   - IRFs without a recursive form (Hayami, pure lag, fractional Nash
//     cascades) are built on the device: the CPU computes each reach's log
//     spectrum (N forward FFTs, diffroute.NewSpectralKernel); on the device
//     dr_prefix_jump sums them to the outlet by pointer jumping
//     (⌈log2 depth⌉ launches), dr_pair_enum lists the closure pairs, and
//     dr_pair_taps evaluates every pair's spectrum exp(A_s − P[down d]) and
//     folds it straight into its taps in the block-sparse layout, which stays
//     on the device for the convolution (a host copy backs Router.CPU).
//     Under ReLU (Compat "diffroute", where every IRF is built from spectra)
//     the taps need the fine kernel itself: dr_pair_taps_fine evaluates its
//     first MaxDelay·f values by a direct inverse DFT, clips and coarsens
//     them. RouterOptions.CPUBuild forces the CPU build, and a device build
//     that runs out of memory falls back to it.
//   - IRFs with a recursive form are built on the CPU in the time domain,
//     exactly and without FFTs, at about 4.7 M pairs/s on two cores
//     (BENCHMARKS.md), by diffroute.NewKernelRouter.
//
// Either way the kernel equals the CPU kernel method's to rounding, with
// the same Options. Router.Route then streams the runoff through the device
// in time chunks: each chunk carries MaxDelay−1 steps of history, so chunks
// are exact; two slots, each a CUDA stream with pinned host and device
// buffers, alternate, so that the host packs chunk i+1 and unpacks chunk
// i−1 while the device copies and convolves chunk i. The chunk length
// follows the free device memory (RouterOptions). A Router implements
// diffroute.Router.
//
// Every chunk's copies and kernels are timed with CUDA events against one
// origin, so that RouteStats.Timing (and StagedBackend.Timing, and the CLI's
// --device cuda report) shows how long copies ran under kernels of the other
// slot; an emulated device with two asynchronous queues checks in CI that the
// pipeline produces that overlap and that a one-stream pipeline does not.
//
// A Router keeps its streams, pinned host buffers and device chunk buffers
// across Route calls (growing them when a call needs longer chunks) and
// frees them in Close.
//
// Route, BackwardRunoff and StagedBackend run on one device pipeline: a
// plain run is a single job over the whole network (no warm-up, no
// transfers), a staged run one job per cluster and time chunk, a backward
// run a job of the transposed convolution; the kernel upload, the chunk
// sizing, the convolution launch and the two-slot pipeline are the same
// code for all three.
//
// # Gradients
//
// A Router is a diffroute.Differentiable. Router.BackwardRunoff computes
// ∂L/∂runoff from ∂L/∂y on the device: the transposed block-sparse
// convolution (dr_bsconv_adj), which walks each source's column of the
// kernel from the source to its outlet and correlates the taps with ∂L/∂y,
// over the same chunks and slots as Route (each chunk carries MaxDelay−1
// steps of lookahead instead of history). For kernels that are not the
// recursion's (built from spectra: convolution IRFs, Compat "diffroute";
// or with ReLU, renormalisation or excluded self pairs) the parameter
// gradients come from the adjoint of the kernel build: Router.KernelTapGrad correlates ∂L/∂y with runoff for every tap on
// the device (dr_tapgrad, in double, over time chunks: the heavy part, as
// much work as the convolution), and the host chains ∂L/∂ taps to the IRF
// parameters (diffroute.KernelRouter.BackwardParamsFromTaps: a few FFTs per
// pair). For the other kernels (time-domain builds, the recursion's path
// responses) Backward and RouteGrad run
// BackwardRunoff while the CPU computes the parameter gradients by the
// recursive adjoint (diffroute.KernelRouter.BackwardParams). Either way they
// are the CPU kernel method's gradients, with the heavy parts on the device.
//
// # Staged routing on the device
//
// StagedBackend plugs the GPU into diffroute.StagedRouter through the core's
// hooks (StagedRouter.ClusterRouter = backend.Factory() and
// StagedRouter.KernelBuilder = backend.KernelBuilder(); the core never
// imports this package). Per cluster, the kernel is built on the device
// when it comes from spectra (its taps stay there) or on the CPU and
// uploaded (kept with KeepKernels); per cluster and time chunk, the fine
// transfer inflow and the polyphase transfer kernels (built on the CPU,
// KernelRouter.TransferKernel) are uploaded and added to the convolution's
// output by dr_transfer_add, grouped by output reach so that no atomics are
// needed. The two slots are kept across clusters and chunks. The fine
// outflow of transfer sources still comes from the core's recursive routers
// on the CPU.
//
// DevicePixels keeps pixel runoff (every pixel the weights use, for a window
// of steps) resident on the device; a StagedBackend made with it
// interpolates each cluster chunk's runoff with dr_interp_window straight
// into the convolution's input buffer, with no host round trip. The staged
// router still wants each cluster's host runoff for its transfer-source
// routers. DevicePixels.Interpolate checks the interpolation on its own.
//
// MemoryModel, the planner's model of this path (diffroute.PlanDevice),
// predicts its device memory (largest cluster kernel, transfer tables and
// inflow, two slots of chunk buffers, resident pixels) and picks the device time chunk; the emulated tests
// check the prediction against the buffers the backend allocates.
//
// The host side of all this (tables, chunking, the pipeline) is shared by
// the CUDA device and an emulated one in the tests, which routes StagedRouter
// runs through the C++-compiled kernels and compares them with the CPU staged
// kernel method.
//
// # The emulated device
//
// The CUDA code imports gorgonia.org/cu through gpu/internal/cu, which with
// the build tag cudaemu (instead of cuda) is an emulated device: host memory
// for device memory, streams that run in call order, events that read the
// clock, and launches that run the kernels compiled as C++. `go test -tags
// cudaemu ./gpu/ ./cmd/...` (in `make test`) thus runs this package's device
// tests — Router, StagedBackend, DevicePixels, device kernel builds, memory
// errors — and the CLI's --device cuda without a GPU. What it cannot show
// is real concurrency (copy/kernel overlap is checked with the two-queue
// emulator of emu_async_test.go instead), the driver's PTX JIT, and speed.
//
// A single goroutine, locked to its OS thread, owns the CUDA context (Device)
// and runs every CUDA call; kernel arguments are passed as int64 and
// cu.DevicePtr values only, because cu copies 8 bytes per argument. Pinned
// host memory comes from a few lines of cgo (cuMemHostAlloc), which cu lacks.
//
// # Build tag
//
// Everything that imports gorgonia.org/cu sits behind the build tag cuda (or
// cudaemu, above): cu's
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
// convolution and its adjoint, fine transfer inflow (staged routing), catchment
// interpolation (whole series, and a time window of resident pixels with
// zero history), pointer-jumping log-domain prefix sums, closure pair
// enumeration and per-pair taps (exp and sincos written out in dr_math.h,
// as the PTX links no library). They use no shared
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
