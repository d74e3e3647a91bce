// Package diffroute routes runoff through river networks with linear
// time-invariant (LTI) schemes: Muskingum, linear storage, Nash cascade, pure
// lag, Hayami diffusive wave and user-registered impulse response functions.
//
// It holds the maths and nothing else: the river Network (a forest of reaches,
// each draining into at most one downstream reach), impulse response functions
// (IRF) on a fine grid of sub-steps, the DataTensor that carries runoff and
// discharge labelled by reach id and time, and two routers that agree with each
// other:
//
//   - the recursive method (the CPU default): reaches in topological order, each
//     running its recursive filter (or causal convolution) over a whole block of
//     sub-steps and adding its outflow into its downstream reach's inflow. Exact,
//     O(N·T·f) work, state carried across calls so time chunks are exact.
//   - the kernel method (DiffRoute's formulation): the transitive closure of the
//     network as a block-sparse bank of path kernels, built in the log-frequency
//     domain with prefix sums, then one causal convolution. Embarrassingly
//     parallel; the reference for DiffRoute compatibility and the GPU workhorse.
//
// Memory management lives here too: Schedule cuts a network into clusters
// (transfers between them carry fine-grid discharge, so staged routing equals
// plain routing), StagedRouter routes them in dependency order, whole or
// through Go iterators (RouteClusters consumes per-cluster runoff lazily and
// yields per-cluster discharge), TimeChunks and Coalescer route long series in
// exact chunks, Select routes only chosen reaches and what drains into them,
// Interpolator turns pixel runoff into catchment runoff on the fly, and Plan
// predicts the peak memory of each strategy and picks one for a budget.
//
// # Gradients
//
// Routing is differentiable (reverse mode, exact to float64 rounding): every
// router implements Differentiable. RouteGrad routes, evaluates a LossFunc on
// the discharge and returns ∂L/∂runoff, ∂L/∂θ for every IRF parameter with a
// gradient (IRF.GradParams, in the units of Options.Params) and ∂L/∂q0 for
// the initial discharge; Gradient does it in one call; Backward takes ∂L/∂y
// directly. How each router gets there:
//
//   - recursive method: the adjoint of each reach's recursive filter runs
//     backwards in time, outlets first, in float64 (λ_n = ḡ_n + A1·λ_{n+1};
//     ∂L/∂B0 = Σ λ_n·x_n, …), mirroring the forward pass reach by reach.
//     Both lateral rules, averaging and sampling conventions are linear maps
//     whose transposes it applies. Convolution IRFs (Hayami, fractional
//     Nash) correlate the adjoint with the inflow and use IRF.ImpulseGrad.
//     Options.CheckpointSteps bounds memory: only the state at block starts
//     is kept, and each block is recomputed once before its adjoint runs.
//     Networks of one-section reaches (Muskingum, linear storage) with
//     sub-steps in multiples of four run a tiled adjoint on vector kernels
//     (eight-wide with AVX-512 and sub-steps in multiples of eight):
//     the network is cut into tiles whose block of outflows fits a core's
//     cache; the forward pass keeps only the outflow series leaving each
//     tile and the state at block starts, and the backward pass recomputes
//     one tile's block at a time and runs its adjoint there, so a whole
//     gradient costs about two forward passes and one adjoint pass, in
//     float64, with no series of every reach in memory.
//   - kernel method: ∂L/∂runoff by the transposed block-sparse convolution
//     (ReLU and renormalised kernels included); parameter and q0 gradients by
//     the recursive adjoint, which is the kernel method's derivative wherever
//     MaxDelay covers each path's response (Stats().TruncatedMass). Kernels
//     with ReLU, renormalisation or excluded self pairs (Compat "diffroute")
//     have no recursive form: their parameter gradients come from the adjoint
//     of the frequency-domain kernel build, exact for the kernel as built
//     (ReLU passes the gradient where a fine tap is positive,
//     renormalisation K/ΣK gives (G − Σ G·K̃)/ΣK, the inverse FFT its
//     transpose, the product of the path's spectra ∂log Ĥ_r/∂θ per reach),
//     at the cost of one forward and one inverse FFT and one correlation
//     of ∂L/∂y with runoff per pair (KernelTapGrad; BackwardParamsFromTaps
//     takes that correlation from a device). The same kernels built in the
//     time domain (ExcludeSelf with an IRF that has a recursive form, without
//     Compat) give the runoff gradient only.
//   - staged routing: StagedGrad runs the clusters forwards, keeping their
//     fine transfers, then backwards in reverse order, handing each
//     transfer's adjoint to the cluster it came from; Forward and Backward
//     are iterators that consume per-cluster runoff and ∂L/∂y lazily, so a
//     basin's gradient fits the memory of its staged run plus its transfers.
//
// Built-in derivatives: Muskingum (k, x), linear storage (tau), Nash cascade
// (tau; n is the number of reservoirs, a structural choice without
// gradient), Hayami and hayami_unshifted (L, D, c). A pure lag moves its
// pulse between whole sub-steps and has no parameter gradient; its runoff
// and q0 gradients are exact. A registered IRF gets parameter gradients by
// giving GradParams with SectionsGrad (recursive form) or ImpulseGrad.
//
// File formats, charts, downloads and CUDA live in sibling packages (data, viz,
// download, gpu); this package depends on none of them.
//
// Conventions (see Options): runoff x[b, i, t] is the lateral inflow into reach i
// during runoff step t of length Δ, in m³/s; discharge y[b, i, t] is in m³/s.
// Routing runs on sub-steps dt = Δ/f. The defaults reproduce RAPID exactly.
package diffroute
