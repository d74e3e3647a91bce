// diffroute.cu — every diffroute kernel in one translation unit: one PTX
// module for the CUDA backend (gpu/ptx/diffroute.ptx) and one object for the
// host emulator (gpu/kernels/emu.cpp).
#include "bsconv.cu"
#include "bsconv_adj.cu"
#include "interp.cu"
#include "pairs.cu"
#include "prefix.cu"
#include "tapgrad.cu"
#include "transfer.cu"
