/* mc_dequant: element types to f32. Plain float and integer types here;
 * block-quantized GGML types in the functions below them. */
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <string.h>

#include "mc_dequant_int.h"

static int g_deq_limit = 3; /* mc_dequant_limit: the highest level taken */

void mc_dequant_limit(int path)
{
    g_deq_limit = path == 1 || path == 2 ? path : 3;
}

int mc_dequant_path(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const int lv = mc_cpu_x86_level();
    if (lv >= 3 && g_deq_limit >= 3) return 3;
    if (lv >= 2 && g_deq_limit >= 2) return 2;
#endif
    return 1;
}

void mc_deq_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

/* f16 -> f32 without branches so the loop vectorizes (SSE2/NEON): normal
 * and Inf/NaN by moving bits (NaN payload kept), subnormals as man * 2^-24
 * (exact). Same values as mc_f16_to_f32 (checked over all 65536 inputs in
 * tests/test_dequant.c). */
static MC_DEQ_INLINE float f16_fast(uint32_t h)
{
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t em = h & 0x7fffu;
    const uint32_t is_sub = 0u - (uint32_t)(em < 0x400u);   /* all ones when subnormal or zero */
    const uint32_t is_inf = 0u - (uint32_t)(em >= 0x7c00u); /* all ones when Inf or NaN */
    const uint32_t nrm = (em << 13) + 0x38000000u + (is_inf & 0x38000000u);
    const uint32_t sub = mc_f32_bits((float)(int32_t)em * (1.0f / 16777216.0f));
    return mc_f32_from_bits((sub & is_sub) | (nrm & ~is_sub) | sign);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MC_LE_HOST 1
#else
#define MC_LE_HOST 0
#endif

static MC_DEQ_INLINE void deq_f16(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *restrict p = src;
    if (MC_LE_HOST) {
        /* In chunks through an aligned buffer (the loops then vectorize).
         * A run of 32 with no zero, subnormal, Inf or NaN (most runs of real
         * weights) needs only the rebias of a normal number. */
        uint16_t h[256];
        for (int64_t i = 0; i < n; i += 256) {
            const int64_t m = n - i < 256 ? n - i : 256;
            memcpy(h, p + 2 * i, (size_t)m * 2);
            for (int64_t c = 0; c < m; c += 32) {
                const int64_t e_end = m - c < 32 ? m - c : 32;
                const uint16_t *restrict hc = h + c;
                float *restrict dc = dst + i + c;
                unsigned special = 0;
                for (int64_t k = 0; k < e_end; k++) {
                    const unsigned e = hc[k] & 0x7c00u;
                    special |= (e == 0) | (e == 0x7c00u);
                }
                if (special) {
                    for (int64_t k = 0; k < e_end; k++) dc[k] = f16_fast(hc[k]);
                } else {
                    for (int64_t k = 0; k < e_end; k++) {
                        const uint32_t x = hc[k];
                        dc[k] = mc_f32_from_bits((((x & 0x7fffu) << 13) + 0x38000000u) | ((x & 0x8000u) << 16));
                    }
                }
            }
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = f16_fast((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* f16 by the processor's conversion (VCVTPH2PS: exact for every finite
 * value, subnormals included: mconv never sets MXCSR.DAZ; test_dequant
 * checks all 65536 inputs at each level), 32 values at a time;
 * a run of 32 holding an Inf or NaN (exponent 31) goes through f16_fast,
 * which keeps a signalling NaN's payload as mc_f16_to_f32 does (VCVTPH2PS
 * would quiet it). The tail too. The same bits as deq_f16. */
__attribute__((target(MC_CPU_AVX2_TARGET))) static void deq_f16_f16c(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *p = src;
    const __m256i em = _mm256_set1_epi16(0x7c00);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * i));
        const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * i + 32));
        const __m256i sp = _mm256_or_si256(_mm256_cmpeq_epi16(_mm256_and_si256(a, em), em),
                                           _mm256_cmpeq_epi16(_mm256_and_si256(b, em), em));
        if (_mm256_testz_si256(sp, sp)) {
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm256_castsi256_si128(a)));
            _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1)));
            _mm256_storeu_ps(dst + i + 16, _mm256_cvtph_ps(_mm256_castsi256_si128(b)));
            _mm256_storeu_ps(dst + i + 24, _mm256_cvtph_ps(_mm256_extracti128_si256(b, 1)));
        } else {
            for (int k = 0; k < 32; k++)
                dst[i + k] = f16_fast((uint32_t)p[2 * (i + k)] | ((uint32_t)p[2 * (i + k) + 1] << 8));
        }
    }
    for (; i < n; i++) dst[i] = f16_fast((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8));
}

__attribute__((target(MC_CPU_AVX512_TARGET))) static void deq_f16_avx512(const void *src, float *restrict dst,
                                                                       int64_t n)
{
    const unsigned char *p = src;
    const __m512i em = _mm512_set1_epi16(0x7c00);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i a = _mm512_loadu_si512((const void *)(p + 2 * i));
        if (!_mm512_cmpeq_epi16_mask(_mm512_and_si512(a, em), em)) {
            _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm512_castsi512_si256(a)));
            _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(_mm512_extracti64x4_epi64(a, 1)));
        } else {
            for (int k = 0; k < 32; k++)
                dst[i + k] = f16_fast((uint32_t)p[2 * (i + k)] | ((uint32_t)p[2 * (i + k) + 1] << 8));
        }
    }
    for (; i < n; i++) dst[i] = f16_fast((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8));
}

void mc_deq_f16(const void *src, float *restrict dst, int64_t n)
{
    const int lv = mc_dequant_path();
    if (lv == 3 && MC_LE_HOST)
        deq_f16_avx512(src, dst, n);
    else if (lv == 2 && MC_LE_HOST)
        deq_f16_f16c(src, dst, n);
    else
        deq_f16(src, dst, n);
}
#else
void mc_deq_f16(const void *src, float *restrict dst, int64_t n) { deq_f16(src, dst, n); }
#endif

static MC_DEQ_INLINE void deq_bf16(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *restrict p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = ((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8)) << 16;
        dst[i] = mc_f32_from_bits(u);
    }
}
MC_DEQ_DISPATCH(bf16, 1)

void mc_deq_f64(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        dst[i] = (float)d;
    }
}

#define INT_DEQ(name, T)                                                       \
    void mc_deq_##name(const void *src, float *dst, int64_t n)                 \
    {                                                                          \
        const unsigned char *p = src;                                          \
        for (int64_t i = 0; i < n; i++) {                                      \
            T v;                                                               \
            memcpy(&v, p + sizeof(T) * (size_t)i, sizeof(T));                  \
            dst[i] = (float)v;                                                 \
        }                                                                      \
    }
INT_DEQ(i8, int8_t)
INT_DEQ(i16, int16_t)
INT_DEQ(i32, int32_t)
INT_DEQ(i64, int64_t)
INT_DEQ(u8, uint8_t)
INT_DEQ(u16, uint16_t)
INT_DEQ(u32, uint32_t)
INT_DEQ(u64, uint64_t)
#undef INT_DEQ

/* ------------------------------------------------ OCP 8/6/4-bit floats
 * Definitions of the OCP "8-bit Floating Point Specification (OFP8)" and
 * "Microscaling Formats (MX) v1.0" as implemented by ml_dtypes
 * (float8_e4m3fn, float8_e5m2, float8_e8m0fnu, float4_e2m1fn,
 * float6_e2m3fn, float6_e3m2fn). Every value is exact in f32. */

/* (float)mant * 2^e2 for small integers, exact (e2 in -133..127 here only
 * through normal-range powers: callers keep 2^e2 a normal f32). */
static inline float ldexp_small(int mant, int e2)
{
    return (float)mant * mc_f32_from_bits((uint32_t)(e2 + 127) << 23);
}

/* E4M3FN: bias 7, no Inf; S.1111.111 is NaN; exponent 0 is subnormal. */
static inline float f8_e4m3(uint32_t b)
{
    const uint32_t sign = (b & 0x80u) << 24;
    const int e = (int)((b >> 3) & 0xF), m = (int)(b & 7);
    if ((b & 0x7Fu) == 0x7Fu) return mc_f32_from_bits(sign | 0x7fc00000u);
    const float v = e == 0 ? ldexp_small(m, -9) : ldexp_small(8 + m, e - 10);
    return mc_f32_from_bits(mc_f32_bits(v) | sign);
}

/* Long runs go through a 256-entry table built on the stack (pure, no
 * global state); short ones decode directly. */
#define LUT_MIN 1024

void mc_deq_f8_e4m3(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *restrict p = src;
    if (n >= LUT_MIN) {
        float lut[256];
        for (int i = 0; i < 256; i++) lut[i] = f8_e4m3((uint32_t)i);
        for (int64_t i = 0; i < n; i++) dst[i] = lut[p[i]];
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = f8_e4m3(p[i]);
}

/* E5M2: IEEE-like (bias 15, Inf and NaN): exactly the top byte of an f16. */
void mc_deq_f8_e5m2(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *restrict p = src;
    if (n >= LUT_MIN) {
        float lut[256];
        for (int i = 0; i < 256; i++) lut[i] = mc_f16_to_f32((uint16_t)(i << 8));
        for (int64_t i = 0; i < n; i++) dst[i] = lut[p[i]];
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = mc_f16_to_f32((uint16_t)(p[i] << 8));
}

/* E8M0 (unsigned exponent): 2^(e-127); 0xFF is NaN; e = 0 is 2^-127, an
 * f32 subnormal. */
void mc_deq_f8_e8m0(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *restrict p = src;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t e = p[i];
        const uint32_t u = e == 0xFFu ? 0x7fc00000u : e == 0 ? 0x00400000u : e << 23;
        dst[i] = mc_f32_from_bits(u);
    }
}

/* E2M1 (bias 1, no Inf/NaN): 0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives.
 * Packing: safetensors dtype "F4" is torch.float4_e2m1fn_x2 (safetensors
 * bindings/python/src/lib.rs maps the two to each other): two values per
 * byte, element 2i in the low nibble, 2i+1 in the high nibble. */
static const float k_e2m1[16] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f };

void mc_deq_f4(const void *src, float *restrict dst, int64_t n)
{
    const unsigned char *restrict p = src;
    for (int64_t i = 0; i < n / 2; i++) {
        dst[2 * i] = k_e2m1[p[i] & 0xF];
        dst[2 * i + 1] = k_e2m1[p[i] >> 4];
    }
}

/* F6: sign bit 5. E2M3: 2 exponent bits (bias 1), 3 mantissa bits, max 7.5.
 * E3M2: 3 exponent bits (bias 3), 2 mantissa bits, max 28. Neither has Inf
 * or NaN; exponent 0 is subnormal.
 * Packing: the safetensors crate defines F6_E2M3/F6_E3M2 only as 6-bit
 * elements packed without padding (safetensors/src/tensor.rs,
 * Dtype::bitsize() == 6; byte length = elements * 6 / 8). Bits are taken
 * LSB-first, continuing F4's low-nibble-first order: in each group of 3
 * bytes b0 b1 b2, w = b0 | b1 << 8 | b2 << 16 and element k (0..3) is
 * bits 6k..6k+5 of w. */
static inline float f6(uint32_t v, int mbits, int bias)
{
    const uint32_t sign = (v & 0x20u) << 26;
    const int e = (int)((v & 0x1Fu) >> mbits), m = (int)(v & ((1u << mbits) - 1u));
    const float x = e == 0 ? ldexp_small(m, 1 - bias - mbits) : ldexp_small((1 << mbits) + m, e - bias - mbits);
    return mc_f32_from_bits(mc_f32_bits(x) | sign);
}

static void deq_f6(const void *src, float *restrict dst, int64_t n, int mbits, int bias)
{
    const unsigned char *restrict p = src;
    float lut[64];
    for (uint32_t v = 0; v < 64; v++) lut[v] = f6(v, mbits, bias);
    for (int64_t i = 0; i < n / 4; i++, p += 3, dst += 4) {
        const uint32_t w = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
        for (int k = 0; k < 4; k++) dst[k] = lut[(w >> (6 * k)) & 63u];
    }
}

void mc_deq_f6_e2m3(const void *src, float *restrict dst, int64_t n) { deq_f6(src, dst, n, 3, 1); }
void mc_deq_f6_e3m2(const void *src, float *restrict dst, int64_t n) { deq_f6(src, dst, n, 2, 3); }

int mc_dequant(int t, const void *src, float *dst, int64_t n, mc_error *err)
{
    const mc_type_traits *tr = mc_type_get(t);
    if (!tr || !tr->to_f32)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "no decoder for type %s (id %d)", mc_type_name(t), t);
    if (n < 0 || n % tr->blck != 0)
        return mc_error_set(err, MC_ERR_ARG, "%lld elements of %s: not a multiple of its block size %u",
                            (long long)n, tr->name, tr->blck);
    tr->to_f32(src, dst, n);
    return 0;
}
