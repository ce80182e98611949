/* mc_dequant_q: GGML's block-quantized types to f32, bit-exact to ggml's
 * reference dequantizers (src/ggml-quants.c, dequantize_row_*).
 *
 * Bit-exactness rules followed throughout:
 *  - the same float operations in the same order as ggml (e.g. Q4_K is
 *    (d*sc)*q - (dmin*m); Q6_K is (d*sc)*q; IQ2 is ((d*(0.5+s))*0.25)*g*sign);
 *    hoisting a product out of a loop is exact, re-associating is not;
 *  - integer parts are formed as ints and converted to float (exact);
 *  - multiplying by +-1.0f is done as a sign choice of the product (exact,
 *    except that the sign of a NaN may differ: NaN stays NaN);
 *  - quant/ is compiled with -ffp-contract=off (CMakeLists.txt) so no
 *    compiler fuses a*b+c into an FMA on any platform.
 * Blocks are read byte by byte (little-endian fields, no alignment needed);
 * every table index is masked to its table size, whatever the bytes say.
 */
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_iq_grids.h"

#include <string.h>

#define QK_K 256

#include "mc_dequant_int.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* hand-written vector decoders (K-quants, IQ types, MXFP4) beside MC_DEQ_DISPATCH's */
#define MC_DEQ_X86 1
#include <immintrin.h>
#endif

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline float h2f(const uint8_t *p) { return mc_f16_to_f32(rd16(p)); }
/* byte j (0..7) of a little-endian packed grid entry */
static inline int g8(uint64_t v, int j) { return (int)((v >> (8 * j)) & 0xffu); }
static inline int g8s(uint64_t v, int j) /* the same byte as int8 (two's complement, no cast) */
{
    const int u = (int)((v >> (8 * j)) & 0xffu);
    return u - ((u & 0x80) << 1);
}

/* ---------------------------------------------------------------- legacy */

/* Q4_0's blocks: a 2-byte d (f16, or bf16 for mconv's form of
 * compressed-tensors INT4 groups), value = (q - 8) * d. bf is a constant
 * at each call, so each caller gets its own loop. */
static MC_DEQ_INLINE void q4_0_rows(const void *src, float *restrict dst, int64_t n, const int bf)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        const float d = bf ? mc_bf16_to_f32(rd16(b)) : h2f(b);
        const uint8_t *restrict qs = b + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((qs[j] & 0x0F) - 8) * d;
            dst[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

static MC_DEQ_INLINE void deq_q4_0(const void *src, float *restrict dst, int64_t n) { q4_0_rows(src, dst, n, 0); }
MC_DEQ_DISPATCH(q4_0, 0)

static MC_DEQ_INLINE void deq_q4_0_bf16(const void *src, float *restrict dst, int64_t n) { q4_0_rows(src, dst, n, 1); }
MC_DEQ_DISPATCH(q4_0_bf16, 0)

static MC_DEQ_INLINE void deq_q4_1(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 20, dst += 32) {
        const float d = h2f(b), m = h2f(b + 2);
        const uint8_t *restrict qs = b + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 0x0F) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}
MC_DEQ_DISPATCH(q4_1, 0)

void mc_deq_q5_0(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 22, dst += 32) {
        const float d = h2f(b);
        const uint8_t *restrict qh = b + 2; /* bit j of the LE u32: 5th bit of element j */
        const uint8_t *restrict qs = b + 6;
        for (int k = 0; k < 2; k++)
            for (int t = 0; t < 8; t++) {
                const int j = 8 * k + t;
                const int xh0 = ((qh[k] >> t) & 1) << 4, xh1 = ((qh[k + 2] >> t) & 1) << 4;
                dst[j] = (float)(((qs[j] & 0x0F) | xh0) - 16) * d;
                dst[j + 16] = (float)(((qs[j] >> 4) | xh1) - 16) * d;
            }
    }
}

void mc_deq_q5_1(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 24, dst += 32) {
        const float d = h2f(b), m = h2f(b + 2);
        const uint8_t *restrict qh = b + 4;
        const uint8_t *restrict qs = b + 8;
        for (int k = 0; k < 2; k++)
            for (int t = 0; t < 8; t++) {
                const int j = 8 * k + t;
                const int xh0 = ((qh[k] >> t) & 1) << 4, xh1 = ((qh[k + 2] >> t) & 1) << 4;
                dst[j] = (float)((qs[j] & 0x0F) | xh0) * d + m;
                dst[j + 16] = (float)((qs[j] >> 4) | xh1) * d + m;
            }
    }
}

static MC_DEQ_INLINE void deq_q8_0(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 34, dst += 32) {
        const float d = h2f(b);
        const int8_t *restrict qs = (const int8_t *)(b + 2);
        for (int j = 0; j < 32; j++) dst[j] = (float)qs[j] * d;
    }
}
MC_DEQ_DISPATCH(q8_0, 1)

/* Q8_1: ggml has no to_float for it; its values are qs*d like Q8_0 (the
 * second half s = d*sum(qs) is only used by dot products). */
void mc_deq_q8_1(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 36, dst += 32) {
        const float d = h2f(b);
        const int8_t *restrict qs = (const int8_t *)(b + 4);
        for (int j = 0; j < 32; j++) dst[j] = (float)qs[j] * d;
    }
}

void mc_deq_q1_0(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 128; i++, b += 18, dst += 128) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        /* bit set: d, clear: -d (ggml's neg_d, an exact sign flip) */
        const uint32_t db = mc_f32_bits(d);
        for (int k = 0; k < 16; k++)
            for (int j = 0; j < 8; j++)
                dst[8 * k + j] = mc_f32_from_bits(db ^ ((~((uint32_t)qs[k] >> j) & 1u) << 31));
    }
}

void mc_deq_q2_0(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / 64; i++, b += 18, dst += 64) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        for (int k = 0; k < 16; k++)
            for (int s = 0; s < 4; s++) dst[4 * k + s] = (float)(((qs[k] >> (2 * s)) & 3) - 1) * d;
    }
}

/* ---------------------------------------------------------------- FP4 */

/* 2^(x-128) (ggml_e8m0_to_fp32_half): x < 2 gives the subnormals 2^-128,
 * 2^-127; x = 255 gives 2^127 (ggml does not treat 0xFF as NaN here). */
static inline float e8m0_half(uint8_t x)
{
    uint32_t bits = x < 2 ? 0x00200000u << x : (uint32_t)(x - 1) << 23;
    return mc_f32_from_bits(bits);
}

/* ggml_ue4m3_to_fp32: the sign bit is ignored; 0 and 0x7F are 0; the value
 * is halved (all values and the halving are exact in f32). */
static inline float ue4m3(uint8_t x)
{
    if (x == 0 || x == 0x7F) return 0.0f;
    const int e = (x >> 3) & 0xF, m = x & 7;
    float raw;
    if (e == 0)
        raw = (float)m * (1.0f / 512.0f);                                   /* m * 2^-9 */
    else
        raw = (1.0f + (float)m / 8.0f) * mc_f32_from_bits((uint32_t)(e - 7 + 127) << 23); /* 2^(e-7) */
    return raw * 0.5f;
}

/* the int8 value tables as floats (exact), built per call on the stack */
static inline void kv_float(float *kv, const int8_t *k)
{
    for (int i = 0; i < 16; i++) kv[i] = (float)k[i];
}

#ifdef MC_DEQ_X86
/* 32 values of a 16-entry table block in AVX-512: byte j's low nibble
 * gives value j, its high nibble value j + 16, each d * table[q]
 * (VPERMPS looks the 16 floats up; IEEE products commute, so d * t and
 * t * d are the same bits). */
#define MC_DEQ_AVX512_FN __attribute__((target(MC_CPU_AVX512_TARGET)))
MC_DEQ_AVX512_FN static inline void lut32_avx512(float *dst, const uint8_t *qs, __m512 t, float d)
{
    const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)qs));
    const __m512 vd = _mm512_set1_ps(d);
    _mm512_storeu_ps(dst, _mm512_mul_ps(vd, _mm512_permutexvar_ps(_mm512_and_si512(c, _mm512_set1_epi32(0xF)), t)));
    _mm512_storeu_ps(dst + 16, _mm512_mul_ps(vd, _mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), t)));
}

MC_DEQ_AVX512_FN static void deq_mxfp4_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_fp4);
    const __m512 t = _mm512_loadu_ps(kv);
    for (int64_t i = 0; i < n / 32; i++, b += 17, dst += 32) lut32_avx512(dst, b + 1, t, e8m0_half(b[0]));
}
#endif

static void deq_mxfp4(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_fp4);
    for (int64_t i = 0; i < n / 32; i++, b += 17, dst += 32) {
        const float d = e8m0_half(b[0]);
        const uint8_t *restrict qs = b + 1;
        for (int j = 0; j < 16; j++) {
            dst[j] = kv[qs[j] & 0x0F] * d;
            dst[j + 16] = kv[qs[j] >> 4] * d;
        }
    }
}

MC_DEQ_DISPATCH_X512(mxfp4, 0)

void mc_deq_nvfp4(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_fp4);
    for (int64_t i = 0; i < n / 64; i++, b += 36, dst += 64) {
        for (int s = 0; s < 4; s++) {
            const float d = ue4m3(b[s]);
            const uint8_t *restrict qs = b + 4 + s * 8;
            float *restrict y = dst + s * 16;
            for (int j = 0; j < 8; j++) {
                y[j] = kv[qs[j] & 0x0F] * d;
                y[j + 8] = kv[qs[j] >> 4] * d;
            }
        }
    }
}

/* ---------------------------------------------------------------- K-quants */

static MC_DEQ_INLINE void deq_q2_K(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 84) {
        const uint8_t *restrict sc = b;
        const uint8_t *restrict q = b + 16;
        const float d = h2f(b + 80), min = h2f(b + 82);
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++, is++, dst += 16) {
                    const float dl = d * (float)(sc[is] & 0xF), ml = min * (float)(sc[is] >> 4);
                    const uint8_t *restrict qq = q + 16 * k;
                    for (int l = 0; l < 16; l++) dst[l] = dl * (float)((qq[l] >> shift) & 3) - ml;
                }
            }
        }
    }
}
#ifdef MC_DEQ_X86
/* deq_q2_K in AVX-512: each 16 bytes of codes widened once and used for
 * its four 2-bit fields, dl * q - ml as in the C body: the same bits.
 * Level 2 keeps the compiler's AVX2 build. */
__attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_q2_K_avx512(const void *src, float *restrict dst,
                                                                        int64_t n)
{
    const uint8_t *b = src;
    const __m512i m3 = _mm512_set1_epi32(3);
    for (int64_t i = 0; i < n / QK_K; i++, b += 84, dst += QK_K) {
        const uint8_t *sc = b, *q = b + 16;
        const float d = h2f(b + 80), min = h2f(b + 82);
        for (int half = 0; half < 2; half++)
            for (int k = 0; k < 2; k++) {
                const __m512i c = _mm512_cvtepu8_epi32(
                    _mm_loadu_si128((const __m128i *)(const void *)(q + 32 * half + 16 * k)));
                for (int j = 0; j < 4; j++) {
                    const int is = 8 * half + 2 * j + k;
                    const __m512 dl = _mm512_set1_ps(d * (float)(sc[is] & 0xF));
                    const __m512 ml = _mm512_set1_ps(min * (float)(sc[is] >> 4));
                    const __m512i v = _mm512_and_si512(_mm512_srl_epi32(c, _mm_cvtsi32_si128(2 * j)), m3);
                    _mm512_storeu_ps(dst + 16 * is, _mm512_sub_ps(_mm512_mul_ps(dl, _mm512_cvtepi32_ps(v)), ml));
                }
            }
    }
}
#endif
MC_DEQ_DISPATCH_X512(q2_K, 1)

/* Q3_K's 16 6-bit scales: low 4 bits from s[0..7] (low nibbles, then
 * high nibbles), high 2 bits from s[8..11] (ggml's aux[] shuffle on a
 * little-endian host). */
static MC_DEQ_INLINE void q3_K_scales(const uint8_t *s, int *scales)
{
    for (int j = 0; j < 16; j++) {
        const int bb = j & 3, grp = j >> 2;
        const int lo8 = (grp & 1) ? s[4 + bb] : s[bb];
        const int lo = grp < 2 ? (lo8 & 0xF) : (lo8 >> 4);
        const int hi = (s[8 + bb] >> (2 * grp)) & 3;
        scales[j] = (lo | (hi << 4)) - 32;
    }
}

static MC_DEQ_INLINE void deq_q3_K(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 110) {
        const uint8_t *restrict hm = b;
        const uint8_t *restrict q = b + 32;
        const float d_all = h2f(b + 108);
        int scales[16];
        q3_K_scales(b + 96, scales);
        int is = 0;
        unsigned m = 1;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++, is++, dst += 16) {
                    const float dl = d_all * (float)scales[is];
                    const uint8_t *restrict qq = q + 16 * k;
                    const uint8_t *restrict hh = hm + 16 * k;
                    for (int l = 0; l < 16; l++)
                        dst[l] = dl * (float)(((qq[l] >> shift) & 3) - ((hh[l] & m) ? 0 : 4));
                }
            }
        }
    }
}
#ifdef MC_DEQ_X86
/* deq_q3_K in AVX-512: each 16 bytes of codes and of high bits widened
 * once and used for their four 2-bit fields; a code loses 4 where its
 * high bit is clear (a masked subtract), then dl * q as in the C body:
 * the same bits. Level 2 keeps the compiled body (its AVX2 build was
 * slower). */
__attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_q3_K_avx512(const void *src, float *restrict dst,
                                                                        int64_t n)
{
    const uint8_t *b = src;
    const __m512i m3 = _mm512_set1_epi32(3), four = _mm512_set1_epi32(4);
    for (int64_t i = 0; i < n / QK_K; i++, b += 110, dst += QK_K) {
        const uint8_t *hm = b, *q = b + 32;
        const float d_all = h2f(b + 108);
        int scales[16];
        q3_K_scales(b + 96, scales);
        for (int k = 0; k < 2; k++) {
            const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(hm + 16 * k)));
            for (int half = 0; half < 2; half++) {
                const __m512i c = _mm512_cvtepu8_epi32(
                    _mm_loadu_si128((const __m128i *)(const void *)(q + 32 * half + 16 * k)));
                for (int j = 0; j < 4; j++) {
                    const int is = 8 * half + 2 * j + k;
                    const __m512i v = _mm512_and_si512(_mm512_srl_epi32(c, _mm_cvtsi32_si128(2 * j)), m3);
                    const __mmask16 set = _mm512_test_epi32_mask(h, _mm512_set1_epi32(1 << (4 * half + j)));
                    const __m512i w = _mm512_mask_sub_epi32(v, (__mmask16)~set, v, four);
                    _mm512_storeu_ps(dst + 16 * is,
                                     _mm512_mul_ps(_mm512_set1_ps(d_all * (float)scales[is]), _mm512_cvtepi32_ps(w)));
                }
            }
        }
    }
}

#endif
MC_DEQ_DISPATCH_X512(q3_K, 0)

static inline void scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static MC_DEQ_INLINE void deq_q4_K(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 144) {
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *restrict sc = b + 4;
        const uint8_t *restrict q = b + 16;
        for (int is = 0; is < 8; is += 2, q += 32, dst += 64) {
            int s1, m1i, s2, m2i;
            scale_min_k4(is, sc, &s1, &m1i);
            scale_min_k4(is + 1, sc, &s2, &m2i);
            const float d1 = d * (float)s1, m1 = min * (float)m1i;
            const float d2 = d * (float)s2, m2 = min * (float)m2i;
            for (int l = 0; l < 32; l++) dst[l] = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) dst[l + 32] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}
#ifdef MC_DEQ_X86
/* deq_q4_K in AVX-512: 16 codes at a time widened to 32-bit lanes, the
 * same d1 * q - m1 (a multiply, then a subtract: no FMA), the same bits.
 * (The compiler's AVX-512 build of the C body: 49 GB/s in cache; this:
 * 78; docs/PERFORMANCE.md.) Level 2 keeps the compiler's AVX2 build. */
__attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_q4_K_avx512(const void *src, float *restrict dst,
                                                                        int64_t n)
{
    const uint8_t *b = src;
    const __m512i m4 = _mm512_set1_epi32(0xF);
    for (int64_t i = 0; i < n / QK_K; i++, b += 144) {
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *sc = b + 4, *q = b + 16;
        for (int is = 0; is < 8; is += 2, q += 32, dst += 64) {
            int s1, m1i, s2, m2i;
            scale_min_k4(is, sc, &s1, &m1i);
            scale_min_k4(is + 1, sc, &s2, &m2i);
            const __m512 d1 = _mm512_set1_ps(d * (float)s1), m1 = _mm512_set1_ps(min * (float)m1i);
            const __m512 d2 = _mm512_set1_ps(d * (float)s2), m2 = _mm512_set1_ps(min * (float)m2i);
            for (int l = 0; l < 32; l += 16) {
                const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(q + l)));
                const __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(c, m4));
                const __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(c, 4));
                _mm512_storeu_ps(dst + l, _mm512_sub_ps(_mm512_mul_ps(d1, lo), m1));
                _mm512_storeu_ps(dst + l + 32, _mm512_sub_ps(_mm512_mul_ps(d2, hi), m2));
            }
        }
    }
}
#endif
MC_DEQ_DISPATCH_X512(q4_K, 1)

static MC_DEQ_INLINE void deq_q5_K(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 176) {
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *restrict sc = b + 4;
        const uint8_t *restrict qh = b + 16;
        const uint8_t *restrict ql = b + 48;
        int sh = 0;
        for (int is = 0; is < 8; is += 2, ql += 32, dst += 64, sh += 2) {
            int s1, m1i, s2, m2i;
            scale_min_k4(is, sc, &s1, &m1i);
            scale_min_k4(is + 1, sc, &s2, &m2i);
            const float d1 = d * (float)s1, m1 = min * (float)m1i;
            const float d2 = d * (float)s2, m2 = min * (float)m2i;
            for (int l = 0; l < 32; l++)
                dst[l] = d1 * (float)((ql[l] & 0xF) + (((qh[l] >> sh) & 1) << 4)) - m1;
            for (int l = 0; l < 32; l++)
                dst[l + 32] = d2 * (float)((ql[l] >> 4) + (((qh[l] >> (sh + 1)) & 1) << 4)) - m2;
        }
    }
}
#ifdef MC_DEQ_X86
/* deq_q5_K in AVX-512: 16 values of l at a time, the same 5-bit codes
 * (the fifth bit put in by the same shift and mask), d1 * q - m1 as in
 * the C body: the same bits. Level 2 keeps the compiler's AVX2 build. */
__attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_q5_K_avx512(const void *src, float *restrict dst,
                                                                        int64_t n)
{
    const uint8_t *b = src;
    const __m512i m4 = _mm512_set1_epi32(0xF), one = _mm512_set1_epi32(1);
    for (int64_t i = 0; i < n / QK_K; i++, b += 176) {
        const float d = h2f(b), min = h2f(b + 2);
        const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
        for (int is = 0, sh = 0; is < 8; is += 2, ql += 32, dst += 64, sh += 2) {
            int s1, m1i, s2, m2i;
            scale_min_k4(is, sc, &s1, &m1i);
            scale_min_k4(is + 1, sc, &s2, &m2i);
            const __m512 d1 = _mm512_set1_ps(d * (float)s1), m1 = _mm512_set1_ps(min * (float)m1i);
            const __m512 d2 = _mm512_set1_ps(d * (float)s2), m2 = _mm512_set1_ps(min * (float)m2i);
            const __m128i s0 = _mm_cvtsi32_si128(sh), s1c = _mm_cvtsi32_si128(sh + 1);
            for (int l = 0; l < 32; l += 16) {
                const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(ql + l)));
                const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(qh + l)));
                const __m512i lo = _mm512_add_epi32(_mm512_and_si512(c, m4),
                                                    _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(h, s0), one), 4));
                const __m512i hi = _mm512_add_epi32(_mm512_srli_epi32(c, 4),
                                                    _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(h, s1c), one), 4));
                _mm512_storeu_ps(dst + l, _mm512_sub_ps(_mm512_mul_ps(d1, _mm512_cvtepi32_ps(lo)), m1));
                _mm512_storeu_ps(dst + l + 32, _mm512_sub_ps(_mm512_mul_ps(d2, _mm512_cvtepi32_ps(hi)), m2));
            }
        }
    }
}
#endif
MC_DEQ_DISPATCH_X512(q5_K, 1)

static MC_DEQ_INLINE void deq_q6_K(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 210) {
        const uint8_t *restrict ql = b;
        const uint8_t *restrict qh = b + 128;
        const int8_t *restrict sc = (const int8_t *)(b + 192);
        const float d = h2f(b + 208);
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, dst += 128) {
            /* ggml: y = d * sc * q, i.e. (d*sc)*q; d*sc is hoisted (exact). */
            for (int g = 0; g < 2; g++) {
                const float ds0 = d * (float)sc[g + 0], ds2 = d * (float)sc[g + 2];
                const float ds4 = d * (float)sc[g + 4], ds6 = d * (float)sc[g + 6];
                for (int l = 16 * g; l < 16 * g + 16; l++) {
                    const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    dst[l] = ds0 * (float)q1;
                    dst[l + 32] = ds2 * (float)q2;
                    dst[l + 64] = ds4 * (float)q3;
                    dst[l + 96] = ds6 * (float)q4;
                }
            }
        }
    }
}

#ifdef MC_DEQ_X86
/* deq_q6_K in AVX-512, 16 values of l at a time: the four 6-bit fields
 * of each as 32-bit lanes by the same masks and shifts, minus 32,
 * converted (exact) and multiplied by the same d*sc: the same bits. (The
 * compiler's AVX-512 build of the C body was no faster than the compiled
 * one, so these are written out.) */
__attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_q6_K_avx512(const void *src, float *restrict dst,
                                                                        int64_t n)
{
    const uint8_t *b = src;
    const __m512i m4 = _mm512_set1_epi32(0xF), m30 = _mm512_set1_epi32(0x30), k32 = _mm512_set1_epi32(32);
    for (int64_t i = 0; i < n / QK_K; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = h2f(b + 208);
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, dst += 128)
            for (int g = 0; g < 2; g++) {
                const __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(ql + 16 * g)));
                const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(ql + 32 + 16 * g)));
                const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(qh + 16 * g)));
                const __m512i q1 = _mm512_or_si512(_mm512_and_si512(a, m4), _mm512_and_si512(_mm512_slli_epi32(h, 4), m30));
                const __m512i q2 = _mm512_or_si512(_mm512_and_si512(c, m4), _mm512_and_si512(_mm512_slli_epi32(h, 2), m30));
                const __m512i q3 = _mm512_or_si512(_mm512_srli_epi32(a, 4), _mm512_and_si512(h, m30));
                const __m512i q4 = _mm512_or_si512(_mm512_srli_epi32(c, 4), _mm512_and_si512(_mm512_srli_epi32(h, 2), m30));
                float *o = dst + 16 * g;
                _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[g]), _mm512_cvtepi32_ps(_mm512_sub_epi32(q1, k32))));
                _mm512_storeu_ps(o + 32, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[g + 2]), _mm512_cvtepi32_ps(_mm512_sub_epi32(q2, k32))));
                _mm512_storeu_ps(o + 64, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[g + 4]), _mm512_cvtepi32_ps(_mm512_sub_epi32(q3, k32))));
                _mm512_storeu_ps(o + 96, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[g + 6]), _mm512_cvtepi32_ps(_mm512_sub_epi32(q4, k32))));
            }
    }
}

/* The same in AVX2, 8 values of l at a time. */
__attribute__((target(MC_CPU_AVX2_TARGET))) static void deq_q6_K_avx2(const void *src, float *restrict dst,
                                                                    int64_t n)
{
    const uint8_t *b = src;
    const __m256i m4 = _mm256_set1_epi32(0xF), m30 = _mm256_set1_epi32(0x30), k32 = _mm256_set1_epi32(32);
    for (int64_t i = 0; i < n / QK_K; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = h2f(b + 208);
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, dst += 128)
            for (int l = 0; l < 32; l += 8) {
                const int g = l / 16;
                const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(ql + l)));
                const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(ql + 32 + l)));
                const __m256i h = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(qh + l)));
                const __m256i q1 = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi32(h, 4), m30));
                const __m256i q2 = _mm256_or_si256(_mm256_and_si256(c, m4), _mm256_and_si256(_mm256_slli_epi32(h, 2), m30));
                const __m256i q3 = _mm256_or_si256(_mm256_srli_epi32(a, 4), _mm256_and_si256(h, m30));
                const __m256i q4 = _mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_and_si256(_mm256_srli_epi32(h, 2), m30));
                float *o = dst + l;
                _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[g]), _mm256_cvtepi32_ps(_mm256_sub_epi32(q1, k32))));
                _mm256_storeu_ps(o + 32, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[g + 2]), _mm256_cvtepi32_ps(_mm256_sub_epi32(q2, k32))));
                _mm256_storeu_ps(o + 64, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[g + 4]), _mm256_cvtepi32_ps(_mm256_sub_epi32(q3, k32))));
                _mm256_storeu_ps(o + 96, _mm256_mul_ps(_mm256_set1_ps(d * (float)sc[g + 6]), _mm256_cvtepi32_ps(_mm256_sub_epi32(q4, k32))));
            }
    }
}

void mc_deq_q6_K(const void *src, float *restrict dst, int64_t n)
{
    const int lv = mc_dequant_path();
    if (lv == 3) deq_q6_K_avx512(src, dst, n);
    else if (lv == 2) deq_q6_K_avx2(src, dst, n);
    else deq_q6_K(src, dst, n);
}
#else
void mc_deq_q6_K(const void *src, float *restrict dst, int64_t n) { deq_q6_K(src, dst, n); }
#endif

/* Q8_K: f32 scale, 256 int8 quants, 16 int16 block sums (unused here). */
static MC_DEQ_INLINE void deq_q8_K(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 292, dst += QK_K) {
        const float d = mc_f32_from_bits(rd32(b));
        const int8_t *restrict qs = (const int8_t *)(b + 4);
        for (int j = 0; j < QK_K; j++) dst[j] = d * (float)qs[j];
    }
}
MC_DEQ_DISPATCH(q8_K, 1)

/* ---------------------------------------------------------------- ternary */

void mc_deq_tq1_0(const void *src, float *restrict dst, int64_t n)
{
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 54) {
        const uint8_t *restrict qs = b;      /* 48 bytes, 5 trits each */
        const uint8_t *restrict qh = b + 48; /* 4 bytes, 4 trits each */
        const float d = h2f(b + 52);
        /* bytes 0..31 (5 trits), then 32..47 (5 trits), then qh (4 trits) */
        for (int n5 = 0; n5 < 5; n5++)
            for (int m = 0; m < 32; m++) {
                const uint8_t q = (uint8_t)(qs[m] * pow3[n5]);
                *dst++ = (float)((int)(((unsigned)q * 3u) >> 8) - 1) * d;
            }
        for (int n5 = 0; n5 < 5; n5++)
            for (int m = 0; m < 16; m++) {
                const uint8_t q = (uint8_t)(qs[32 + m] * pow3[n5]);
                *dst++ = (float)((int)(((unsigned)q * 3u) >> 8) - 1) * d;
            }
        for (int n4 = 0; n4 < 4; n4++)
            for (int j = 0; j < 4; j++) {
                const uint8_t q = (uint8_t)(qh[j] * pow3[n4]);
                *dst++ = (float)((int)(((unsigned)q * 3u) >> 8) - 1) * d;
            }
    }
}

void mc_deq_tq2_0(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 66) {
        const float d = h2f(b + 64);
        for (int j = 0; j < 64; j += 32)
            for (int l = 0; l < 4; l++, dst += 32)
                for (int m = 0; m < 32; m++) dst[m] = (float)(((b[j + m] >> (l * 2)) & 3) - 1) * d;
    }
}

/* ---------------------------------------------------------------- IQ types */

/* v with its sign flipped when bit j of signs is set: exactly ggml's
 * v * -1.f (an exact negation), done on the bits so the loop has no branch. */
static inline float sgn(float v, unsigned signs, int j)
{
    return mc_f32_from_bits(mc_f32_bits(v) ^ (((uint32_t)(signs >> j) & 1u) << 31));
}

#ifdef MC_DEQ_X86
/* 16 grid values (unsigned bytes) times d, the sign of lane j flipped
 * where bit j of sm is set: sgn(d * (float)g, ...) lane by lane (the same
 * product, the same sign-bit xor). */
MC_DEQ_AVX512_FN static inline void grid16_avx512(float *dst, __m128i g, __m512 d, __mmask16 sm)
{
    const __m512 v = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(g)));
    _mm512_storeu_ps(dst, _mm512_mask_xor_ps(v, sm, v, _mm512_set1_ps(-0.0f)));
}

MC_DEQ_AVX512_FN static void deq_iq2_xxs_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 66) {
        const float d = h2f(b);
        for (int ib = 0; ib < 8; ib++, dst += 32) {
            const uint8_t *q = b + 2 + 8 * ib;
            const uint32_t a1 = rd32(q + 4);
            const __m512 db = _mm512_set1_ps(d * (0.5f + (float)(a1 >> 28)) * 0.25f);
            for (int l = 0; l < 4; l += 2) {
                const __m128i g = _mm_set_epi64x((long long)mc_iq2xxs_grid[q[l + 1]], (long long)mc_iq2xxs_grid[q[l]]);
                const unsigned sm = mc_ksigns_iq2xs[(a1 >> (7 * l)) & 127] |
                                    (unsigned)mc_ksigns_iq2xs[(a1 >> (7 * (l + 1))) & 127] << 8;
                grid16_avx512(dst + 8 * l, g, db, (__mmask16)sm);
            }
        }
    }
}
#endif

static void deq_iq2_xxs(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 66) {
        const float d = h2f(b);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *restrict q = b + 2 + 8 * ib;
            const uint32_t a1 = rd32(q + 4);
            const float db = d * (0.5f + (float)(a1 >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint64_t g = mc_iq2xxs_grid[q[l]];
                const unsigned signs = mc_ksigns_iq2xs[(a1 >> (7 * l)) & 127];
                for (int j = 0; j < 8; j++) dst[j] = sgn(db * (float)g8(g, j), signs, j);
            }
        }
    }
}
MC_DEQ_DISPATCH_X512(iq2_xxs, 0)

#ifdef MC_DEQ_X86
MC_DEQ_AVX512_FN static void deq_iq2_xs_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 74) {
        const float d = h2f(b);
        const uint8_t *qs = b + 2, *sc = b + 66;
        for (int ib = 0; ib < 8; ib++, dst += 32)
            for (int l = 0; l < 4; l += 2) {
                const float db = d * (0.5f + (float)(l ? sc[ib] >> 4 : sc[ib] & 0xf)) * 0.25f;
                const unsigned v0 = rd16(qs + 2 * (4 * ib + l)), v1 = rd16(qs + 2 * (4 * ib + l + 1));
                const __m128i g = _mm_set_epi64x((long long)mc_iq2xs_grid[v1 & 511], (long long)mc_iq2xs_grid[v0 & 511]);
                const unsigned sm = mc_ksigns_iq2xs[(v0 >> 9) & 127] | (unsigned)mc_ksigns_iq2xs[(v1 >> 9) & 127] << 8;
                grid16_avx512(dst + 8 * l, g, _mm512_set1_ps(db), (__mmask16)sm);
            }
    }
}

MC_DEQ_AVX512_FN static void deq_iq2_s_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 82) {
        const float d = h2f(b);
        const uint8_t *qs = b + 2, *signs = b + 2 + 32, *qh = b + 66, *sc = b + 74;
        for (int ib = 0; ib < 8; ib++, qs += 4, signs += 4, dst += 32)
            for (int l = 0; l < 4; l += 2) {
                const float db = d * (0.5f + (float)(l ? sc[ib] >> 4 : sc[ib] & 0xf)) * 0.25f;
                const unsigned i0 = qs[l] | (((unsigned)qh[ib] << (8 - 2 * l)) & 0x300);
                const unsigned i1 = qs[l + 1] | (((unsigned)qh[ib] << (8 - 2 * (l + 1))) & 0x300);
                const __m128i g = _mm_set_epi64x((long long)mc_iq2s_grid[i1], (long long)mc_iq2s_grid[i0]);
                grid16_avx512(dst + 8 * l, g, _mm512_set1_ps(db), (__mmask16)(signs[l] | (unsigned)signs[l + 1] << 8));
            }
    }
}
#endif

static void deq_iq2_xs(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 74) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        const uint8_t *restrict sc = b + 66;
        for (int ib = 0; ib < 8; ib++) {
            float db[2];
            db[0] = d * (0.5f + (float)(sc[ib] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const unsigned v = rd16(qs + 2 * (4 * ib + l));
                const uint64_t g = mc_iq2xs_grid[v & 511];
                const unsigned signs = mc_ksigns_iq2xs[(v >> 9) & 127];
                for (int j = 0; j < 8; j++) dst[j] = sgn(db[l / 2] * (float)g8(g, j), signs, j);
            }
        }
    }
}
MC_DEQ_DISPATCH_X512(iq2_xs, 0)

static void deq_iq2_s(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 82) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        const uint8_t *restrict signs = b + 2 + 32;
        const uint8_t *restrict qh = b + 66;
        const uint8_t *restrict sc = b + 74;
        for (int ib = 0; ib < 8; ib++, qs += 4, signs += 4) {
            float db[2];
            db[0] = d * (0.5f + (float)(sc[ib] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const float dl = db[l / 2];
                const unsigned idx = qs[l] | (((unsigned)qh[ib] << (8 - 2 * l)) & 0x300);
                const uint64_t g = mc_iq2s_grid[idx];
                for (int j = 0; j < 8; j++) dst[j] = sgn(dl * (float)g8(g, j), signs[l], j);
            }
        }
    }
}
MC_DEQ_DISPATCH_X512(iq2_s, 0)

#ifdef MC_DEQ_X86
MC_DEQ_AVX512_FN static void deq_iq3_xxs_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 98) {
        const float d = h2f(b);
        const uint8_t *qs = b + 2, *ss = b + 2 + 64;
        for (int ib = 0; ib < 8; ib++, qs += 8, dst += 32) {
            const uint32_t a = rd32(ss + 4 * ib);
            const __m512 db = _mm512_set1_ps(d * (0.5f + (float)(a >> 28)) * 0.5f);
            for (int l = 0; l < 4; l += 2) {
                const __m128i g = _mm_set_epi32((int)mc_iq3xxs_grid[qs[2 * l + 3]], (int)mc_iq3xxs_grid[qs[2 * l + 2]],
                                                (int)mc_iq3xxs_grid[qs[2 * l + 1]], (int)mc_iq3xxs_grid[qs[2 * l]]);
                const unsigned sm = mc_ksigns_iq2xs[(a >> (7 * l)) & 127] |
                                    (unsigned)mc_ksigns_iq2xs[(a >> (7 * (l + 1))) & 127] << 8;
                grid16_avx512(dst + 8 * l, g, db, (__mmask16)sm);
            }
        }
    }
}
#endif

static void deq_iq3_xxs(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 98) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        const uint8_t *restrict ss = b + 2 + 64;
        for (int ib = 0; ib < 8; ib++, qs += 8) {
            const uint32_t a = rd32(ss + 4 * ib);
            const float db = d * (0.5f + (float)(a >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const unsigned signs = mc_ksigns_iq2xs[(a >> (7 * l)) & 127];
                const uint32_t g1 = mc_iq3xxs_grid[qs[2 * l]];
                const uint32_t g2 = mc_iq3xxs_grid[qs[2 * l + 1]];
                for (int j = 0; j < 4; j++) {
                    dst[j] = sgn(db * (float)g8(g1, j), signs, j);
                    dst[j + 4] = sgn(db * (float)g8(g2, j), signs, j + 4);
                }
            }
        }
    }
}
MC_DEQ_DISPATCH_X512(iq3_xxs, 0)

#ifdef MC_DEQ_X86
MC_DEQ_AVX512_FN static void deq_iq3_s_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 110) {
        const float d = h2f(b);
        const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *sc = b + 106;
        for (int ib = 0; ib < 8; ib++, qs += 8, signs += 4, dst += 32) {
            const int s4 = (ib & 1) ? (sc[ib / 2] >> 4) : (sc[ib / 2] & 0xf);
            const __m512 db = _mm512_set1_ps(d * (float)(1 + 2 * s4));
            const unsigned h = qh[ib];
            for (int l = 0; l < 4; l += 2) {
                uint32_t g[4];
                for (int k = 0; k < 2; k++) {
                    g[2 * k] = mc_iq3s_grid[(qs[2 * (l + k)] | ((h << (8 - 2 * (l + k))) & 256)) & 511];
                    g[2 * k + 1] = mc_iq3s_grid[(qs[2 * (l + k) + 1] | ((h << (7 - 2 * (l + k))) & 256)) & 511];
                }
                const __m128i gv = _mm_set_epi32((int)g[3], (int)g[2], (int)g[1], (int)g[0]);
                grid16_avx512(dst + 8 * l, gv, db, (__mmask16)(signs[l] | (unsigned)signs[l + 1] << 8));
            }
        }
    }
}
#endif

static void deq_iq3_s(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 110) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        const uint8_t *restrict qh = b + 66;
        const uint8_t *restrict signs = b + 74;
        const uint8_t *restrict sc = b + 106;
        for (int ib = 0; ib < 8; ib++, qs += 8, signs += 4) {
            const int s4 = (ib & 1) ? (sc[ib / 2] >> 4) : (sc[ib / 2] & 0xf);
            const float db = d * (float)(1 + 2 * s4);
            const unsigned h = qh[ib];
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint32_t g1 = mc_iq3s_grid[(qs[2 * l] | ((h << (8 - 2 * l)) & 256)) & 511];
                const uint32_t g2 = mc_iq3s_grid[(qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256)) & 511];
                for (int j = 0; j < 4; j++) {
                    dst[j] = sgn(db * (float)g8(g1, j), signs[l], j);
                    dst[j + 4] = sgn(db * (float)g8(g2, j), signs[l], j + 4);
                }
            }
        }
    }
}
MC_DEQ_DISPATCH_X512(iq3_s, 0)

#ifdef MC_DEQ_X86
/* dl * ((float)q + delta) for 16 signed grid bytes, as the C body. */
MC_DEQ_AVX512_FN static void deq_iq1_s_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 50) {
        const float d = h2f(b);
        const uint8_t *qs = b + 2, *qhb = b + 34;
        for (int ib = 0; ib < 8; ib++, qs += 4, dst += 32) {
            const unsigned qh = rd16(qhb + 2 * ib);
            const __m512 dl = _mm512_set1_ps(d * (float)(2 * ((qh >> 12) & 7) + 1));
            const __m512 delta = _mm512_set1_ps((qh & 0x8000) ? -0.125f : 0.125f);
            for (int l = 0; l < 4; l += 2) {
                const uint64_t g0 = mc_iq1s_grid[(qs[l] | (((qh >> (3 * l)) & 7) << 8)) & 2047];
                const uint64_t g1 = mc_iq1s_grid[(qs[l + 1] | (((qh >> (3 * (l + 1))) & 7) << 8)) & 2047];
                const __m512i w = _mm512_cvtepi8_epi32(_mm_set_epi64x((long long)g1, (long long)g0));
                _mm512_storeu_ps(dst + 8 * l, _mm512_mul_ps(dl, _mm512_add_ps(_mm512_cvtepi32_ps(w), delta)));
            }
        }
    }
}
#endif

static void deq_iq1_s(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 50) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        const uint8_t *restrict qhb = b + 34;
        for (int ib = 0; ib < 8; ib++, qs += 4) {
            const unsigned qh = rd16(qhb + 2 * ib);
            const float dl = d * (float)(2 * ((qh >> 12) & 7) + 1);
            const float delta = (qh & 0x8000) ? -0.125f : 0.125f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint64_t g = mc_iq1s_grid[(qs[l] | (((qh >> (3 * l)) & 7) << 8)) & 2047];
                for (int j = 0; j < 8; j++) dst[j] = dl * ((float)g8s(g, j) + delta);
            }
        }
    }
}
MC_DEQ_DISPATCH_X512(iq1_s, 0)

void mc_deq_iq1_m(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += 56) {
        const uint8_t *restrict qs = b;
        const uint8_t *restrict qh = b + 32;
        unsigned sc[4];
        for (int k = 0; k < 4; k++) sc[k] = rd16(b + 48 + 2 * k);
        const uint16_t su = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                                       (sc[3] & 0xf000));
        const float d = mc_f16_to_f32(su);
        for (int ib = 0; ib < 8; ib++, qs += 4, qh += 2) {
            const float dl1 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 7) + 1);
            const float dl2 = d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1);
            unsigned idx[4];
            float delta[4];
            idx[0] = qs[0] | ((qh[0] << 8) & 0x700);
            idx[1] = qs[1] | ((qh[0] << 4) & 0x700);
            idx[2] = qs[2] | ((qh[1] << 8) & 0x700);
            idx[3] = qs[3] | ((qh[1] << 4) & 0x700);
            delta[0] = (qh[0] & 0x08) ? -0.125f : 0.125f;
            delta[1] = (qh[0] & 0x80) ? -0.125f : 0.125f;
            delta[2] = (qh[1] & 0x08) ? -0.125f : 0.125f;
            delta[3] = (qh[1] & 0x80) ? -0.125f : 0.125f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const float dl = l < 2 ? dl1 : dl2;
                const uint64_t g = mc_iq1s_grid[idx[l] & 2047];
                for (int j = 0; j < 8; j++) dst[j] = dl * ((float)g8s(g, j) + delta[l]);
            }
        }
    }
}

#ifdef MC_DEQ_X86
MC_DEQ_AVX512_FN static void deq_iq4_nl_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_iq4nl);
    const __m512 t = _mm512_loadu_ps(kv);
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) lut32_avx512(dst, b + 2, t, h2f(b));
}

MC_DEQ_AVX512_FN static void deq_iq4_xs_avx512(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_iq4nl);
    const __m512 t = _mm512_loadu_ps(kv);
    for (int64_t i = 0; i < n / QK_K; i++, b += 136) {
        const float d = h2f(b);
        const unsigned sh = rd16(b + 2);
        const uint8_t *sl = b + 4, *qs = b + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16, dst += 32) {
            const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xf) | (int)(((sh >> (2 * ib)) & 3) << 4);
            lut32_avx512(dst, qs, t, d * (float)(ls - 32));
        }
    }
}
#endif

static void deq_iq4_nl(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_iq4nl);
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        const float d = h2f(b);
        const uint8_t *restrict qs = b + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * kv[qs[j] & 0xf];
            dst[j + 16] = d * kv[qs[j] >> 4];
        }
    }
}

MC_DEQ_DISPATCH_X512(iq4_nl, 0)

static void deq_iq4_xs(const void *src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict b = src;
    float kv[16];
    kv_float(kv, mc_kvalues_iq4nl);
    for (int64_t i = 0; i < n / QK_K; i++, b += 136) {
        const float d = h2f(b);
        const unsigned sh = rd16(b + 2);
        const uint8_t *restrict sl = b + 4;
        const uint8_t *restrict qs = b + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16, dst += 32) {
            const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xf) | (int)(((sh >> (2 * ib)) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                dst[j] = dl * kv[qs[j] & 0xf];
                dst[j + 16] = dl * kv[qs[j] >> 4];
            }
        }
    }
}

MC_DEQ_DISPATCH_X512(iq4_xs, 0)
