//go:build !cudaemu

package main

// cudaEmulated: this test binary has no CUDA device, real or emulated.
const cudaEmulated = false
