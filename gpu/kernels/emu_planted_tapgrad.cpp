// emu_planted_tapgrad.cpp — dr_tapgrad with an off-by-one lag
// (gy[t + k + 1]), so that tests can show the emulator comparison catches
// a shifted correlation.
#include "emu.h"
#define DR_PLANT_LAG 1
#define dr_tapgrad dr_tapgrad_planted
#include "tapgrad.cu"
