// Package cu is the slice of gorgonia.org/cu that package gpu uses, behind
// one of two build tags:
//
//   - cuda: type and function aliases of gorgonia.org/cu, plus pinned host
//     memory (cuMemHostAlloc, which gorgonia.org/cu lacks) — the real driver;
//   - cudaemu: an emulated device on the CPU. Device memory is host memory,
//     copies are copies, streams run in call order, events read the clock,
//     and kernel launches run the kernels compiled as C++ (package
//     gpu/kernels). With it, `go test -tags cudaemu ./gpu/` runs the CUDA
//     backend's own host code — routers, pipelines, staged backend, device
//     builds — and its device tests without a GPU.
//
// Without either tag the package is empty.
package cu
