/* Random model-shaped data shared by the benchmark programs: one xorshift
 * stream (fixed seed, so inputs are the same run after run), random bytes,
 * and GGML blocks with random codes and small finite f16 scales. */
#ifndef MC_BENCH_UTIL_H
#define MC_BENCH_UTIL_H

#include <stdint.h>
#include <string.h>

#include "mc_float.h"
#include "mc_types.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static inline void fill_random(unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = rnd();
        memcpy(buf + i, &r, n - i < 8 ? n - i : 8);
    }
}

/* n blocks of type t: random codes, small finite scales (Q4_K: d and dmin
 * first; Q6_K: d last; Q4_0, Q8_0: d first). */
static inline void fill_blocks(int t, unsigned char *buf, size_t nblocks)
{
    const mc_type_traits *tr = mc_type_get(t);
    size_t bs = tr->type_size;
    fill_random(buf, nblocks * bs);
    for (size_t b = 0; b < nblocks; b++) {
        unsigned char *p = buf + b * bs;
        uint16_t d = mc_f32_to_f16(0.001f + (float)(rnd() % 1000) * 1e-5f);
        uint16_t dm = mc_f32_to_f16(0.0005f);
        switch (t) {
        case MC_T_Q4_K: memcpy(p, &d, 2); memcpy(p + 2, &dm, 2); break;
        case MC_T_Q6_K: memcpy(p + bs - 2, &d, 2); break;
        case MC_T_Q4_0:
        case MC_T_Q8_0: memcpy(p, &d, 2); break;
        default: break;
        }
    }
}

#endif
