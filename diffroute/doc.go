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
// directly; RecursiveRouter.RouteGradTo writes into tensors the caller keeps
// from one gradient to the next (a calibration loop's). How each router
// gets there:
//
//   - recursive method: the adjoint of each reach's recursive filter runs
//     backwards in time, outlets first, in float64 (λ_n = ḡ_n + A1·λ_{n+1};
//     ∂L/∂B0 = Σ λ_n·x_n, …), mirroring the forward pass reach by reach.
//     Both lateral rules, averaging and sampling conventions are linear maps
//     whose transposes it applies. Convolution IRFs (Hayami, fractional
//     Nash) correlate the adjoint with the inflow and use IRF.ImpulseGrad.
//     Options.CheckpointSteps bounds memory: only the state at block starts
//     is kept, and each block is recomputed once before its adjoint runs.
//     Networks whose reaches are recursive sections (Muskingum, linear
//     storage, Nash cascades of whole n: sections in series) run a tiled
//     adjoint, for every lateral, averaging and sampling rule and any
//     sub-step count: the network is cut into tiles whose block of
//     outflows fits a core's cache; the forward pass keeps only the
//     outflow series leaving each tile and the state at block starts, and
//     the backward pass recomputes one tile's block at a time and runs its
//     adjoint there, so a whole gradient costs about two forward passes
//     and one adjoint pass, in float64, with no series of every reach in
//     memory. Sub-steps in multiples of four (eight with AVX-512) run
//     vector kernels both ways, others plain loops. With AVX-512 and the
//     RAPID lateral rule (sampling a step's start excepted), blocks of
//     whole multiples of 16 steps run chunked, staged clusters' included:
//     a block is cut into 16 chunks of whole steps, one per lane, each
//     lane runs its chunk's recursion (or adjoint) from zero with one FMA
//     a sub-step and no lane shifts, and a second pass adds each chunk's
//     true start. The gradient equals the unchunked one to float64
//     rounding.
//   - kernel method: ∂L/∂runoff by the transposed block-sparse convolution
//     (ReLU and renormalised kernels included). Parameter gradients: for
//     kernels built in the time domain (IRFs with a recursive form, no
//     Compat) by the recursive adjoint, which is the kernel method's
//     derivative wherever MaxDelay covers each path's response
//     (Stats().TruncatedMass), with q0 gradients too; for kernels built in
//     the frequency domain (convolution IRFs, and every Compat "diffroute"
//     kernel with its ReLU, renormalisation and excluded self pairs, which
//     have no recursive form) by the adjoint of the build, exact for the
//     kernel as built: renormalisation K̃ = K/ΣK gives (G − Σ G·K̃)/ΣK, ReLU
//     passes the gradient where a fine tap is positive, the inverse FFT
//     its transpose, and the product of the path's clamped spectra
//     ∂log Ĥ_r/∂θ per reach (its phase only where |Ĥ_r| is floored at ε),
//     summed over the pairs through each reach. It costs one forward and one
//     inverse FFT and one correlation G of ∂L/∂y with runoff per pair
//     (KernelTapGrad; BackwardParamsFromTaps takes G from a device). ReLU,
//     renormalisation or excluded self pairs set by hand on a time-domain
//     build are differentiated through that build: the same chain to
//     ∂L/∂(fine path response), then back up each path through the
//     transposed section cascades, whose coefficient sums give ∂L/∂θ.
//     The kernel method's gradient has no time chunks: unstaged it holds
//     the whole kernel, runoff, discharge, ∂L/∂y and ∂L/∂runoff at once;
//     checkpoint blocks bound only its recursive parameter adjoint.
//     PlanGradient predicts its peak (the tiles' pages that hold pairs,
//     the series, the adjoint's spectra or blocks) and says when a budget
//     needs the recursive method instead.
//   - staged routing: StagedGrad runs the clusters forwards, keeping their
//     transfers, then backwards in reverse order, handing each transfer's
//     adjoint to the cluster it came from; Forward and Backward are
//     iterators that consume per-cluster runoff and ∂L/∂y lazily, so a
//     basin's gradient fits the memory of its staged run plus its transfers
//     (and, for the kernel method, one cluster's kernel). Each method
//     differentiates its own staged run: the recursive method by the
//     recursive adjoint of every cluster; the kernel method exactly as
//     StagedRouter routes it — per cluster the transposed convolution for
//     ∂L/∂runoff, the correlation of ∂L/∂y with the transfer kernels for
//     ∂L/∂(fine transfer), the recursive adjoint of the recursion that gives
//     the transfer sources' fine outflow, and parameter gradients of the
//     cluster's kernel and transfer kernels by KernelRouter.Backward's rule
//     (recursive adjoint for time-domain builds, the FFT build's adjoint for
//     convolution IRFs and Compat "diffroute"); under Compat "diffroute" the
//     coarse transfers' adjoint is the target's runoff gradient added to the
//     source's ∂L/∂y. A reach's parameters act in its own cluster only, so
//     no gradient is summed across clusters. StagedRouter.ClusterGrad hands
//     each cluster's transposed convolution and per-tap correlations to a
//     device (package gpu), as its ClusterRouter does the forward pass.
//     StagedRouter.RouteGrad runs both passes over a Clusters; when the
//     unstaged gradient does not fit a budget, PlanGradient plans it staged
//     (GradPlan.Staged, Clusters), either method, and counts the
//     collector's garbage from the per-cluster engines and kernels.
//
// Built-in derivatives: Muskingum (k, x), linear storage (tau), Nash cascade
// (tau; its n counts whole reservoirs run as recursive sections and has no
// gradient: IRF.GradParam says so), the continuous Nash cascade nash_gamma
// (tau and n: the gamma unit hydrograph t^(n−1)·e^(−t/tau)/(Γ(n)·tau^n)
// integrated over each sub-step, n any positive real, convolved; ∂h/∂n
// from the incomplete gamma function differentiated term by term), Hayami
// and hayami_unshifted (L, D, c). A pure lag moves its pulse between whole
// sub-steps and has no parameter gradient; its runoff and q0 gradients are
// exact. A registered IRF gets parameter gradients by giving GradParams
// with SectionsGrad (recursive form) or ImpulseGrad, and says why a
// parameter has none in NoGrad.
//
// File formats, charts, downloads and CUDA live in sibling packages (data, viz,
// download, gpu); this package depends on none of them.
//
// Conventions (see Options): runoff x[b, i, t] is the lateral inflow into reach i
// during runoff step t of length Δ, in m³/s; discharge y[b, i, t] is in m³/s.
// Routing runs on sub-steps dt = Δ/f. The defaults reproduce RAPID exactly.
package diffroute
