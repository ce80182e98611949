/* mc_dequant_int: what the decoders' files share (not a public API). */
#ifndef MC_DEQUANT_INT_H
#define MC_DEQUANT_INT_H

#include "mc_dequant.h"

/* Decoders whose loops the compiler vectorizes well also come compiled
 * for AVX-512, and some for AVX2, chosen at run time on x86-64
 * (mc_dequant_path): the same C body inlined into functions built for
 * those targets. MC_DEQ_DISPATCH(type, avx2): avx2 1 where the AVX2 build
 * measured faster than the compiled one (docs/PERFORMANCE.md; for Q4_0,
 * Q4_1 and Q3_K it was slower, so level 2 keeps the compiled body). The
 * operations and their order are the body's (no FMA contraction:
 * -ffp-contract=off), so the values are the same bits; mc_dequant_limit
 * keeps a lower level for tests. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "mc_cpu.h"
#define MC_DEQ_INLINE __attribute__((always_inline)) inline
/* A decoder whose level-3 form is written out (deq_T_avx512, defined
 * before): that at level 3, the compiled body's AVX2 build at level 2
 * where avx2 is 1, else the compiled body. */
#define MC_DEQ_DISPATCH_X512(T, AVX2)                                                              \
    __attribute__((target(MC_CPU_AVX2_TARGET))) static void deq_##T##_avx2(                       \
        const void *src, float *restrict dst, int64_t n)                                           \
    {                                                                                              \
        deq_##T(src, dst, n);                                                                      \
    }                                                                                              \
    void mc_deq_##T(const void *src, float *restrict dst, int64_t n)                               \
    {                                                                                              \
        const int lv = mc_dequant_path();                                                          \
        if (lv == 3)                                                                               \
            deq_##T##_avx512(src, dst, n);                                                         \
        else if (lv == 2 && (AVX2))                                                                \
            deq_##T##_avx2(src, dst, n);                                                           \
        else                                                                                       \
            deq_##T(src, dst, n);                                                                  \
    }
/* The compiled body built for AVX-512 as the level-3 form. */
#define MC_DEQ_DISPATCH(T, AVX2)                                                                   \
    __attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_##T##_avx512(                   \
        const void *src, float *restrict dst, int64_t n)                                           \
    {                                                                                              \
        deq_##T(src, dst, n);                                                                      \
    }                                                                                              \
    MC_DEQ_DISPATCH_X512(T, AVX2)
#else
#define MC_DEQ_INLINE inline
#define MC_DEQ_DISPATCH(T, AVX2)                                                                   \
    void mc_deq_##T(const void *src, float *restrict dst, int64_t n) { deq_##T(src, dst, n); }
#define MC_DEQ_DISPATCH_X512(T, AVX2) MC_DEQ_DISPATCH(T, AVX2)
#endif

#endif
