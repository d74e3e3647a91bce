// emu_planted.cpp — dr_bsconv with a planted off-by-one (x[t − k − 1]), so
// that tests can show the emulator comparison catches such a bug.
#include "emu.h"
#define DR_PLANT_SHIFT 1
#define dr_bsconv dr_bsconv_planted
#include "bsconv.cu"
