// emu_planted_adj.cpp — dr_bsconv_adj with its taps read reversed
// (K[taps − 1 − k]), so that tests can show the emulator comparison catches
// a swapped tap index.
#include "emu.h"
#define DR_PLANT_TAPS 1
#define dr_bsconv_adj dr_bsconv_adj_planted
#include "bsconv_adj.cu"
