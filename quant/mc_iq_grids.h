/* mc_iq_grids: ggml's IQ/FP4 lookup tables (data; see mc_iq_grids.c).
 * Internal to quant/. */
#ifndef MC_IQ_GRIDS_H
#define MC_IQ_GRIDS_H

#include <stdint.h>

extern const uint8_t mc_kmask_iq2xs[8];
extern const uint8_t mc_ksigns_iq2xs[128];
extern const uint64_t mc_iq2xxs_grid[256];
extern const uint64_t mc_iq2xs_grid[512];
extern const uint64_t mc_iq2s_grid[1024];
extern const uint32_t mc_iq3xxs_grid[256];
extern const uint32_t mc_iq3s_grid[512];
extern const int8_t mc_kvalues_iq4nl[16];
extern const int8_t mc_kvalues_fp4[16];
extern const uint64_t mc_iq1s_grid[2048];

#endif
