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
// File formats, charts, downloads and CUDA live in sibling packages (data, viz,
// download, gpu); this package depends on none of them.
//
// Conventions (see Options): runoff x[b, i, t] is the lateral inflow into reach i
// during runoff step t of length Δ, in m³/s; discharge y[b, i, t] is in m³/s.
// Routing runs on sub-steps dt = Δ/f. The defaults reproduce RAPID exactly.
package diffroute
