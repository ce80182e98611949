/* mc_dequant: every element type to f32, bit-exact to ggml's dequantizers.
 * Each function converts n elements (n a multiple of the type's block size)
 * from the packed blocks at src. Pure functions; no allocation. The
 * type-traits table (mc_types.c) points at these. */
#ifndef MC_DEQUANT_H
#define MC_DEQUANT_H

#include <stdint.h>
#include "mc_error.h"

#define MC_DEQ_FN(n) void mc_deq_##n(const void *src, float *dst, int64_t n_elems)
MC_DEQ_FN(f32); MC_DEQ_FN(f16); MC_DEQ_FN(bf16); MC_DEQ_FN(f64);
MC_DEQ_FN(i8); MC_DEQ_FN(i16); MC_DEQ_FN(i32); MC_DEQ_FN(i64);
MC_DEQ_FN(u8); MC_DEQ_FN(u16); MC_DEQ_FN(u32); MC_DEQ_FN(u64);
MC_DEQ_FN(q4_0); MC_DEQ_FN(q4_0_bf16); MC_DEQ_FN(q4_1); MC_DEQ_FN(q5_0); MC_DEQ_FN(q5_1);
MC_DEQ_FN(q8_0); MC_DEQ_FN(q8_1);
MC_DEQ_FN(q2_K); MC_DEQ_FN(q3_K); MC_DEQ_FN(q4_K); MC_DEQ_FN(q5_K);
MC_DEQ_FN(q6_K); MC_DEQ_FN(q8_K);
MC_DEQ_FN(iq2_xxs); MC_DEQ_FN(iq2_xs); MC_DEQ_FN(iq2_s);
MC_DEQ_FN(iq3_xxs); MC_DEQ_FN(iq3_s);
MC_DEQ_FN(iq1_s); MC_DEQ_FN(iq1_m);
MC_DEQ_FN(iq4_nl); MC_DEQ_FN(iq4_xs);
MC_DEQ_FN(tq1_0); MC_DEQ_FN(tq2_0);
MC_DEQ_FN(mxfp4); MC_DEQ_FN(nvfp4); MC_DEQ_FN(q1_0); MC_DEQ_FN(q2_0);
MC_DEQ_FN(f8_e4m3); MC_DEQ_FN(f8_e5m2); MC_DEQ_FN(f8_e8m0);
MC_DEQ_FN(f4); MC_DEQ_FN(f6_e2m3); MC_DEQ_FN(f6_e3m2);
#undef MC_DEQ_FN

/* Convert n elements of type t at src to f32 through the traits table.
 * MC_ERR_UNSUPPORTED when t has no decoder, MC_ERR_ARG when n is not a
 * multiple of the block size. */
int mc_dequant(int t, const void *src, float *dst, int64_t n, mc_error *err);

/* The decoders a call takes now: 1 as compiled, 2 the AVX2 builds and 3
 * the AVX-512 builds of the Q4_0, Q4_1, Q8_0 and K-quant decoders (x86-64
 * processors with AVX2, FMA and F16C, or also AVX-512 F, BW, VL and DQ:
 * mc_cpu_x86_level; chosen at run time; the same bits). mc_dequant_limit(1)
 * or (2) keeps calls at most at that level, 0 lifts that: for tests and
 * benchmarks, not thread safe against calls in flight. */
int mc_dequant_path(void);
void mc_dequant_limit(int path);

#endif
