/* mc_mlx: MLX affine and floating-point quantization (see mc_mlx.h).
 *
 * Floating point: every operation below is one IEEE float32 operation in
 * source order (the build uses -ffp-contract=off; nothing here relies on
 * excess precision or fused multiply-add). Where MLX computes in f16/bf16,
 * the float32 result of an operation on f16/bf16 operands is rounded to the
 * narrow type: for +, -, *, / that double rounding equals the correctly
 * rounded narrow result because float32 has >= 2p+2 bits (p = 11 or 8).
 */
#include "mc_mlx.h"
#include "mc_float.h"

#include <float.h>
#include <math.h>
#include <string.h>
/* Vector paths: SSE2 intrinsics on x86 (MC_MLX_SSE2), GCC/Clang generic
 * vectors elsewhere (ARM NEON, ...), plain C otherwise; on x86-64 all three
 * passes and the packing also in AVX-512, chosen at run time
 * (MC_MLX_AVX512, mc_quant_affine_path). Tests build the same checks with MC_MLX_NO_SSE
 * (the generic path ARM builds take) and MC_MLX_SCALAR (plain C), and run
 * them on both x86 code passes, so every path is proven to give the same
 * bytes. */
#if defined(__SSE2__) && !defined(MC_MLX_SCALAR) && !defined(MC_MLX_NO_SSE)
#define MC_MLX_SSE2 1
#include <emmintrin.h>
/* and on x86-64 an AVX-512 code pass chosen at run time (same bytes) */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MC_MLX_AVX512 1
#include <immintrin.h>
#include "mc_cpu.h"
#endif
#endif

/* ---------------------------------------------------------------- helpers */

#if defined(__GNUC__) || defined(__clang__)
#define MC_INLINE __attribute__((always_inline)) inline
#else
#define MC_INLINE inline
#endif

/* bf16 round to nearest even of a finite or infinite float (NaN input is
 * not produced on these paths), branch-free so loops vectorize. */
static MC_INLINE float round_bf16(float f)
{
    uint32_t x = mc_f32_bits(f);
    x += 0x7fffu + ((x >> 16) & 1u);
    return mc_f32_from_bits(x & 0xffff0000u);
}

/* Round v to type t (constant at inlined call sites). */
static MC_INLINE float round_to(float v, const int t)
{
    if (t == MC_T_F16) return mc_f16_to_f32(mc_f32_to_f16(v));
    if (t == MC_T_BF16) return mc_bf16_to_f32(mc_f32_to_bf16(v));
    return v;
}

static MC_INLINE void put_scale(void *arr, uint64_t i, const int t, float v)
{
    if (t == MC_T_F32) {
        memcpy((unsigned char *)arr + i * 4, &v, 4);
    } else {
        uint16_t h = t == MC_T_F16 ? mc_f32_to_f16(v) : mc_f32_to_bf16(v);
        memcpy((unsigned char *)arr + i * 2, &h, 2);
    }
}

static MC_INLINE float get_scale(const void *arr, uint64_t i, const int t)
{
    if (t == MC_T_F32) {
        float f;
        memcpy(&f, (const unsigned char *)arr + i * 4, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const unsigned char *)arr + i * 2, 2);
    return t == MC_T_F16 ? mc_f16_to_f32(h) : mc_bf16_to_f32(h);
}

int mc_quant_scale_bytes(int scale_type)
{
    switch (scale_type) {
    case MC_T_F16: case MC_T_BF16: return 2;
    case MC_T_F32: return 4;
    default: return 0;
    }
}

float mc_quant_round_to(float v, int scale_type)
{
    if (scale_type == MC_T_F16) return mc_f16_to_f32(mc_f32_to_f16(v));
    if (scale_type == MC_T_BF16) return mc_bf16_to_f32(mc_f32_to_bf16(v));
    return v;
}

float mc_quant_scale_get(const void *arr, uint64_t i, int scale_type)
{
    if (scale_type == MC_T_F32) {
        float f;
        memcpy(&f, (const unsigned char *)arr + i * 4, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const unsigned char *)arr + i * 2, 2);
    return scale_type == MC_T_F16 ? mc_f16_to_f32(h) : mc_bf16_to_f32(h);
}

void mc_quant_scale_put(void *arr, uint64_t i, int scale_type, float v)
{
    if (scale_type == MC_T_F32) {
        memcpy((unsigned char *)arr + i * 4, &v, 4);
        return;
    }
    uint16_t h = scale_type == MC_T_F16 ? mc_f32_to_f16(v) : mc_f32_to_bf16(v);
    memcpy((unsigned char *)arr + i * 2, &h, 2);
}

uint64_t mc_quant_affine_row_words(uint64_t ncols, int bits)
{
    if (bits <= 0 || bits > 32) return 0;
    if (ncols > UINT64_MAX / (uint64_t)bits) return 0;
    uint64_t nb = ncols * (uint64_t)bits;
    if (nb % 32u) return 0;
    return nb / 32u;
}

int mc_quant_affine_check(const mc_affine *p, uint64_t ncols, mc_error *err)
{
    if (!p) return mc_error_set(err, MC_ERR_ARG, "affine quantization: no parameters");
    if (p->bits < 2 || p->bits > 8 || p->bits == 7)
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: bits %d not supported (2, 3, 4, 5, 6, 8)", p->bits);
    if (p->group_size != 32 && p->group_size != 64 && p->group_size != 128)
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: group size %d not supported (32, 64, 128)",
                            p->group_size);
    if (!mc_quant_scale_bytes(p->scale_type))
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: scale type %d not f16, bf16 or f32", p->scale_type);
    if (ncols == 0 || ncols % (uint64_t)p->group_size)
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: row length %llu is not a multiple of group size %d",
                            (unsigned long long)ncols, p->group_size);
    return 0;
}

/* Round to nearest, ties to even, for |v| < 2^22 (1.5*2^23 trick). For
 * larger |v| the result still has the sign of v and magnitude >= 2^22, so
 * after the clamp to [0, 2^bits-1] it equals clamp(rint(v)). */
#define MC_RINT_MAGIC 12582912.0f

/* ---------------------------------------------------------------- packing */

/* 8 bytes as a little-endian uint64 (one load on little-endian hosts). */
static MC_INLINE uint64_t le64(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

/* 8 codes (one per byte, < 2^bits) -> their 8*bits-bit LSB-first stream:
 * pairs of fields are merged in three steps (bytes -> 16 -> 32 -> 64-bit
 * lanes), masking both halves so wide fields do not overlap. */
static MC_INLINE uint64_t squeeze8(uint64_t v, const int bits)
{
    if (bits == 8) return v;
    const uint64_t l1 = 0x0001000100010001ull * ((1ull << bits) - 1u);
    const uint64_t l2 = 0x0000000100000001ull * ((1ull << (2 * bits)) - 1u);
    const uint64_t l3 = (1ull << (4 * bits)) - 1u;
    v = (v & l1) | ((v >> (8 - bits)) & (l1 << bits));
    v = (v & l2) | ((v >> (16 - 2 * bits)) & (l2 << (2 * bits)));
    v = (v & l3) | ((v >> (32 - 4 * bits)) & (l3 << (4 * bits)));
    return v;
}

/* 32 uint8 codes -> `bits` words of MLX's bitstream. */
static MC_INLINE void pack32(const uint8_t *q, const int bits, uint32_t *o)
{
    uint64_t c0 = squeeze8(le64(q), bits), c1 = squeeze8(le64(q + 8), bits);
    uint64_t c2 = squeeze8(le64(q + 16), bits), c3 = squeeze8(le64(q + 24), bits);
    switch (bits) {
    case 2: /* 16-bit chunks */
        o[0] = (uint32_t)(c0 | c1 << 16);
        o[1] = (uint32_t)(c2 | c3 << 16);
        break;
    case 3: /* 24-bit chunks at 0, 24, 48, 72 */
        o[0] = (uint32_t)(c0 | c1 << 24);
        o[1] = (uint32_t)(c1 >> 8 | c2 << 16);
        o[2] = (uint32_t)(c2 >> 16 | c3 << 8);
        break;
    case 4:
        o[0] = (uint32_t)c0; o[1] = (uint32_t)c1; o[2] = (uint32_t)c2; o[3] = (uint32_t)c3;
        break;
    case 5: /* 40-bit chunks at 0, 40, 80, 120 */
        o[0] = (uint32_t)c0;
        o[1] = (uint32_t)(c0 >> 32 | c1 << 8);
        o[2] = (uint32_t)(c1 >> 24 | c2 << 16);
        o[3] = (uint32_t)(c2 >> 16 | c3 << 24);
        o[4] = (uint32_t)(c3 >> 8);
        break;
    case 6: /* 48-bit chunks at 0, 48, 96, 144 */
        o[0] = (uint32_t)c0;
        o[1] = (uint32_t)(c0 >> 32 | c1 << 16);
        o[2] = (uint32_t)(c1 >> 16);
        o[3] = (uint32_t)c2;
        o[4] = (uint32_t)(c2 >> 32 | c3 << 16);
        o[5] = (uint32_t)(c3 >> 16);
        break;
    default: /* 8 */
        o[0] = (uint32_t)c0; o[1] = (uint32_t)(c0 >> 32);
        o[2] = (uint32_t)c1; o[3] = (uint32_t)(c1 >> 32);
        o[4] = (uint32_t)c2; o[5] = (uint32_t)(c2 >> 32);
        o[6] = (uint32_t)c3; o[7] = (uint32_t)(c3 >> 32);
        break;
    }
}

/* ------------------------------------------------------- affine quantize */

/* rintf (round half to even) without a libm call or a branch, so the
 * per-group loop below vectorizes: below 2^23 adding and removing 2^23
 * rounds in the FPU's nearest-even mode; from 2^23 on every float is an
 * integer. The sign is put back so -0.3 gives -0, as rintf does. */
static MC_INLINE float rint_even(float v)
{
    const float two23 = 8388608.0f;
    float a = fabsf(v);
    float r = (a + two23) - two23;
    r = a < two23 ? r : a;
    return copysignf(r, v);
}

/* Groups are quantized MC_AQ_CHUNK at a time in three passes, each a loop
 * the compiler vectorizes (x86 SSE2 and ARM NEON alike):
 *   1. per group min, max and a NaN/Inf check (8 lanes of partial results);
 *   2. scale and bias of every group from its min and max, several groups
 *      per vector instead of one long chain of dependent divisions each;
 *   3. codes of every element, then their packing into MLX's words.
 * Splitting 2 from 3 keeps the division chain of one group from stalling
 * the element loop, and packing after all codes of the chunk are stored
 * keeps it from reloading bytes still in the store buffer. On x86-64
 * processors with AVX-512 each pass, and the packing, has an AVX-512 form
 * below (affine_*_avx512) giving the same bytes. */
#define MC_AQ_CHUNK 32

/* Exactly: is any of the group's values Inf or NaN? Only asked when the
 * sum of squares below is not finite (or beyond FLT_MAX). */
static int affine_nonfinite(const float *x, const int gs)
{
    for (int j = 0; j < gs; j++)
        if (!(fabsf(x[j]) <= FLT_MAX)) return 1;
    return 0;
}

/* Pass 1 for one group: min and max (NaN ignored unless first), the sum of
 * squares and an Inf or NaN flag. gs is a multiple of 32. The sum of
 * squares (mc_quant_affine_sumsq) is 8 float32 lanes, value j to lane
 * j % 8, each x*x rounded and then added in order, the lanes then added
 * 0 to 7 left to right; it doubles as the finiteness check (an Inf or NaN
 * makes it Inf or NaN; a finite sum rules both out), the exact check
 * running only when it is not finite (squares beyond FLT_MAX too). */
static MC_INLINE int affine_minmax(const float *restrict x, const int gs, float *mn_o, float *mx_o, float *sq_o)
{
    float mx[8], mn[8], ck[8];
#if (defined(__GNUC__) || defined(__clang__)) && !defined(MC_MLX_SCALAR)
    /* gcc does not vectorize the select form of min/max (the form that
     * keeps NaN handling exact) on its own: generic vectors of 4 floats
     * (SSE2 on x86, NEON on ARM), two of them per step; on x86 the select
     * is SSE's maxps/minps, which compute exactly that select. */
    typedef float v4f __attribute__((vector_size(16)));
    v4f mxa, mxb, mna, mnb, cka, ckb;
    memcpy(&mxa, x, 16);
    memcpy(&mxb, x + 4, 16);
    mna = mxa;
    mnb = mxb;
    cka = mxa * mxa;
    ckb = mxb * mxb;
    for (int j = 8; j < gs; j += 8) {
        v4f a, b;
        memcpy(&a, x + j, 16);
        memcpy(&b, x + j + 4, 16);
#ifdef MC_MLX_SSE2
        /* maxps(a, m) is exactly "m < a ? a : m" lane by lane (m when
         * either is NaN), minps likewise: one instruction for the select */
        mxa = (v4f)_mm_max_ps((__m128)a, (__m128)mxa);
        mxb = (v4f)_mm_max_ps((__m128)b, (__m128)mxb);
        mna = (v4f)_mm_min_ps((__m128)a, (__m128)mna);
        mnb = (v4f)_mm_min_ps((__m128)b, (__m128)mnb);
#else
        typedef int32_t v4i __attribute__((vector_size(16)));
        v4i m;
        m = mxa < a; mxa = (v4f)((m & (v4i)a) | (~m & (v4i)mxa));
        m = mxb < b; mxb = (v4f)((m & (v4i)b) | (~m & (v4i)mxb));
        m = mna > a; mna = (v4f)((m & (v4i)a) | (~m & (v4i)mna));
        m = mnb > b; mnb = (v4f)((m & (v4i)b) | (~m & (v4i)mnb));
#endif
        cka = cka + a * a;
        ckb = ckb + b * b;
    }
    memcpy(mx, &mxa, 16); memcpy(mx + 4, &mxb, 16);
    memcpy(mn, &mna, 16); memcpy(mn + 4, &mnb, 16);
    memcpy(ck, &cka, 16); memcpy(ck + 4, &ckb, 16);
#else
    for (int l = 0; l < 8; l++) {
        mx[l] = x[l];
        mn[l] = x[l];
        ck[l] = x[l] * x[l];
    }
    for (int j = 8; j < gs; j += 8) {
        for (int l = 0; l < 8; l++) {
            float v = x[j + l];
            mx[l] = mx[l] < v ? v : mx[l];
            mn[l] = mn[l] > v ? v : mn[l];
            ck[l] = ck[l] + v * v;
        }
    }
#endif
    float w_max = mx[0], w_min = mn[0], c = ck[0];
    for (int l = 1; l < 8; l++) {
        w_max = w_max < mx[l] ? mx[l] : w_max;
        w_min = w_min > mn[l] ? mn[l] : w_min;
        c = c + ck[l];
    }
    *mn_o = w_min;
    *mx_o = w_max;
    *sq_o = c;
    return c <= FLT_MAX ? 0 : affine_nonfinite(x, gs);
}

float mc_quant_affine_sumsq(const float *x, int gs)
{
    float mn, mx, sq;
    (void)affine_minmax(x, gs, &mn, &mx, &sq);
    return sq;
}

/* Pass 2: MLX's scale and bias of n groups from their min and max
 * (mlx/backend/cpu/quantized.cpp): the grid is anchored at the extreme of
 * larger magnitude (negative scale when that is the max), the scale is at
 * least eps, and when that extreme is not on the zero code the scale is
 * edge / q0 and the bias is the edge itself. */
static MC_INLINE void affine_params(const float *restrict mn, const float *restrict mx, const int n,
                                    const int bits, float *restrict sc, float *restrict bi)
{
    const float n_bins = (float)((1 << bits) - 1);
    const float eps = 1e-7f;
    for (int g = 0; g < n; g++) {
        float w_min = mn[g], w_max = mx[g];
        int mask = fabsf(w_min) > fabsf(w_max);
        float scale = (w_max - w_min) / n_bins;
        scale = scale < eps ? eps : scale; /* std::max(scale, eps) */
        scale = mask ? scale : -scale;
        float edge = mask ? w_min : w_max;
        float q0 = rint_even(edge / scale);
        int nz = q0 != 0.0f;
        float s2 = edge / (nz ? q0 : 1.0f);
        sc[g] = nz ? s2 : scale;
        bi[g] = nz ? edge : 0.0f;
    }
}

/* Pass 3, codes: clamp(rint(v), 0, n) == rint(clamp(v, 0, n)) since 0 and
 * n are integers (a NaN v gives 0 either way); rint by adding 1.5*2^23,
 * whose float has the rounded integer in its low mantissa bits. */
static MC_INLINE void affine_codes(const float *restrict x, const int gs, const int bits,
                                   const float scale, const float bias, uint8_t *restrict q)
{
    const float n_bins = (float)((1 << bits) - 1);
#ifdef MC_MLX_SSE2
    /* The same operations 16 codes at a time; x86 has no narrowing of
     * 32-bit lanes to bytes that compilers find here, so it is spelled
     * out (codes are 0..255: the saturating packs are exact). */
    const __m128 vb = _mm_set1_ps(bias), vs = _mm_set1_ps(scale), zero = _mm_setzero_ps();
    const __m128 top = _mm_set1_ps(n_bins), magic = _mm_set1_ps(MC_RINT_MAGIC);
    const __m128i mbits = _mm_set1_epi32(0x4B400000);
    for (int j = 0; j < gs; j += 16) {
        __m128i c[4];
        for (int l = 0; l < 4; l++) {
            __m128 v = _mm_div_ps(_mm_sub_ps(_mm_loadu_ps(x + j + 4 * l), vb), vs);
            v = _mm_min_ps(_mm_max_ps(v, zero), top); /* v > 0 ? v : 0, then v < n ? v : n */
            c[l] = _mm_sub_epi32(_mm_castps_si128(_mm_add_ps(v, magic)), mbits);
        }
        __m128i w = _mm_packus_epi16(_mm_packs_epi32(c[0], c[1]), _mm_packs_epi32(c[2], c[3]));
        _mm_storeu_si128((__m128i *)(void *)(q + j), w);
    }
#else
    for (int j = 0; j < gs; j++) {
        float v = (x[j] - bias) / scale;
        v = v > 0.0f ? v : 0.0f;
        v = v < n_bins ? v : n_bins;
        q[j] = (uint8_t)(mc_f32_bits(v + MC_RINT_MAGIC) - 0x4B400000u);
    }
#endif
}

#ifdef MC_MLX_AVX512
#define MC_MLX_AVX512_FN __attribute__((target(MC_CPU_AVX512_TARGET))) static
/* the passes below, inlined into affine_chunk_avx512 (so its callers'
 * constant widths reach them) */
#define MC_MLX_AVX512_INLINE __attribute__((target(MC_CPU_AVX512_TARGET), always_inline)) static inline

/* Pass 3 for the nc groups of a run, 16 values at a time: affine_codes's
 * SSE operations on 16 lanes (max and min keep their operand order, so a
 * NaN gives 0 alike), the codes (0..255) narrowed to bytes exactly. */
MC_MLX_AVX512_INLINE void affine_codes_avx512(const float *x, int nc, int gs, int bits, const float *sc,
                                              const float *bi, uint8_t *q)
{
    const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps((float)((1 << bits) - 1));
    const __m512 magic = _mm512_set1_ps(MC_RINT_MAGIC);
    const __m512i mbits = _mm512_set1_epi32(0x4B400000);
    for (int g = 0; g < nc; g++) {
        const __m512 vb = _mm512_set1_ps(bi[g]), vs = _mm512_set1_ps(sc[g]);
        for (int j = 0; j < gs; j += 16) {
            const size_t i = (size_t)g * (size_t)gs + (size_t)j;
            __m512 v = _mm512_div_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vb), vs);
            v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
            const __m512i c = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(v, magic)), mbits);
            _mm_storeu_si128((__m128i *)(void *)(q + i), _mm512_cvtepi32_epi8(c));
        }
    }
}

/* Pass 1 for the nc groups of a run, 16 values at a time. The sum of
 * squares keeps affine_minmax's 8 lanes and order (the square of 16 values
 * in one multiply, then their low 8 added before their high 8, as the
 * steps of 8 are). Min and max over 16 lanes: for finite values any order
 * gives the same value (a mix of -0 and +0 can come out either way, which
 * changes no scale, bias or code: MLX's formulas compare magnitudes and
 * subtract, and a zero edge makes the bias 0); a group with an Inf or NaN
 * is refused and its min and max unused. One group's lanes: */
typedef struct avx512_mm {
    __m256 hi, lo, ck;
} avx512_mm;

MC_MLX_AVX512_INLINE avx512_mm affine_mm_avx512(const float *xg, const int gs)
{
    __m512 z = _mm512_loadu_ps(xg), hi = z, lo = z, p = _mm512_mul_ps(z, z);
    __m256 ck = _mm256_add_ps(_mm512_castps512_ps256(p), _mm512_extractf32x8_ps(p, 1));
    for (int j = 16; j < gs; j += 16) {
        z = _mm512_loadu_ps(xg + j);
        hi = _mm512_max_ps(z, hi);
        lo = _mm512_min_ps(z, lo);
        p = _mm512_mul_ps(z, z);
        ck = _mm256_add_ps(ck, _mm512_castps512_ps256(p));
        ck = _mm256_add_ps(ck, _mm512_extractf32x8_ps(p, 1));
    }
    avx512_mm m;
    m.hi = _mm256_max_ps(_mm512_castps512_ps256(hi), _mm512_extractf32x8_ps(hi, 1));
    m.lo = _mm256_min_ps(_mm512_castps512_ps256(lo), _mm512_extractf32x8_ps(lo, 1));
    m.ck = ck;
    return m;
}

/* r[l] lane g <- r[g] lane l (8 x 8). */
MC_MLX_AVX512_INLINE void transpose8_avx512(__m256 *r)
{
    __m256 t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 2; k++) {
        u[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
        u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
        u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
        u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
    }
}

/* Eight groups at once: their lanes transposed, so that one vector
 * operation finishes a step of all eight (the sum's lanes added 0 to 7
 * left to right, as affine_minmax adds them). Returns the first group
 * with an Inf or NaN, or -1. */
MC_MLX_AVX512_INLINE int affine_minmax_avx512(const float *x, int nc, int gs, float *mn, float *mx, float *sq)
{
    int bad = -1, g = 0;
    for (; g + 8 <= nc; g += 8) {
        __m256 hi[8], lo[8], ck[8];
        for (int k = 0; k < 8; k++) {
            const avx512_mm m = affine_mm_avx512(x + (size_t)(g + k) * (size_t)gs, gs);
            hi[k] = m.hi;
            lo[k] = m.lo;
            ck[k] = m.ck;
        }
        transpose8_avx512(hi);
        transpose8_avx512(lo);
        transpose8_avx512(ck);
        __m256 h = hi[0], l = lo[0], c = ck[0];
        for (int k = 1; k < 8; k++) {
            h = _mm256_max_ps(hi[k], h);
            l = _mm256_min_ps(lo[k], l);
            c = _mm256_add_ps(c, ck[k]);
        }
        _mm256_storeu_ps(mx + g, h);
        _mm256_storeu_ps(mn + g, l);
        _mm256_storeu_ps(sq + g, c);
    }
    for (; g < nc; g++) {
        const avx512_mm m = affine_mm_avx512(x + (size_t)g * (size_t)gs, gs);
        float h8[8], l8[8], c8[8];
        _mm256_storeu_ps(h8, m.hi);
        _mm256_storeu_ps(l8, m.lo);
        _mm256_storeu_ps(c8, m.ck);
        float h = h8[0], l = l8[0], c = c8[0];
        for (int k = 1; k < 8; k++) {
            h = h < h8[k] ? h8[k] : h;
            l = l > l8[k] ? l8[k] : l;
            c = c + c8[k];
        }
        mx[g] = h;
        mn[g] = l;
        sq[g] = c;
    }
    for (g = 0; g < nc; g++)
        if (!(sq[g] <= FLT_MAX) && affine_nonfinite(x + (size_t)g * (size_t)gs, gs)) {
            bad = g;
            break;
        }
    return bad;
}

/* put_scale of the lanes of v that k selects, to elements i on of arr in
 * type st: VCVTPS2PH rounds to nearest even as mc_f32_to_f16 does, bf16 is
 * mc_f32_to_bf16's rounding (for values that are not NaN, which scales and
 * biases never are). Returns what was stored, read back as float32
 * (exactly, from the registers). */
MC_MLX_AVX512_INLINE __m512 affine_put_avx512(void *arr, uint64_t i, __mmask16 k, int st, __m512 v)
{
    if (st == MC_T_F32) {
        _mm512_mask_storeu_ps((float *)arr + i, k, v);
        return v;
    }
    __m256i h;
    __m512 back;
    if (st == MC_T_F16) {
        h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        back = _mm512_cvtph_ps(h);
    } else {
        const __m512i u = _mm512_castps_si512(v);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        const __m512i hi = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
        h = _mm512_cvtepi32_epi16(hi);
        back = _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16));
    }
    _mm256_mask_storeu_epi16((uint16_t *)arr + i, k, h);
    return back;
}

/* Pass 2 (affine_params) 16 groups at a time, masked at the end: the same
 * IEEE operations lane by lane (rint_even is VRNDSCALEPS's round to
 * nearest even, which keeps a zero's sign as copysignf does); then the
 * scales and biases stored in their type (affine_put_avx512), and as
 * stored, in float32, to sv and bv (for the sink, mc_affine_sink). */
MC_MLX_AVX512_INLINE void affine_params_avx512(const float *mn, const float *mx, int n, int bits, float *sc,
                                               float *bi, void *scales, void *biases, uint64_t gi0, int st,
                                               float *sv, float *bv)
{
    const __m512 n_bins = _mm512_set1_ps((float)((1 << bits) - 1)), eps = _mm512_set1_ps(1e-7f);
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    for (int g = 0; g < n; g += 16) {
        const __mmask16 k = (__mmask16)(n - g >= 16 ? 0xffffu : (1u << (n - g)) - 1u);
        const __m512 w_min = _mm512_maskz_loadu_ps(k, mn + g), w_max = _mm512_maskz_loadu_ps(k, mx + g);
        const __mmask16 mask = _mm512_cmp_ps_mask(_mm512_abs_ps(w_min), _mm512_abs_ps(w_max), _CMP_GT_OQ);
        __m512 scale = _mm512_div_ps(_mm512_sub_ps(w_max, w_min), n_bins);
        scale = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(scale, eps, _CMP_LT_OQ), scale, eps);
        scale = _mm512_mask_blend_ps(mask, _mm512_sub_ps(zero, scale), scale);
        const __m512 edge = _mm512_mask_blend_ps(mask, w_max, w_min);
        const __m512 q0 = _mm512_roundscale_ps(_mm512_div_ps(edge, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __mmask16 nz = _mm512_cmp_ps_mask(q0, zero, _CMP_NEQ_OQ);
        const __m512 s2 = _mm512_div_ps(edge, _mm512_mask_blend_ps(nz, one, q0));
        const __m512 s = _mm512_mask_blend_ps(nz, scale, s2), b = _mm512_mask_blend_ps(nz, zero, edge);
        _mm512_mask_storeu_ps(sc + g, k, s);
        _mm512_mask_storeu_ps(bi + g, k, b);
        _mm512_mask_storeu_ps(sv + g, k, affine_put_avx512(scales, gi0 + (uint64_t)g, k, st, s));
        _mm512_mask_storeu_ps(bv + g, k, affine_put_avx512(biases, gi0 + (uint64_t)g, k, st, b));
    }
}

/* pack32 of n codes (a multiple of 32), 64 at a time: neighbouring fields
 * are merged by multiply-adds (nothing saturates), then narrowed to bytes
 * (2 and 4 bits) or gathered by a byte shuffle (3, 5, 6 bits); 8-bit codes
 * are their own stream. The stream is little-endian, as MLX's words are; a
 * last 32 codes of 3, 5 or 6 bits go through pack32. */
MC_MLX_AVX512_INLINE void affine_pack_avx512(const uint8_t *q, int n, const int bits, uint32_t *o)
{
    if (bits == 8) {
        memcpy(o, q, (size_t)n);
        return;
    }
    uint8_t *ob = (uint8_t *)o;
    int k = 0;
    if (bits == 4) {
        const __m512i m = _mm512_set1_epi16(0x1001); /* bytes 1, 16 */
        for (; k + 64 <= n; k += 64)
            _mm256_storeu_si256((__m256i *)(void *)(ob + k / 2),
                                _mm512_cvtepi16_epi8(_mm512_maddubs_epi16(_mm512_loadu_si512(q + k), m)));
        if (k < n)
            _mm_storeu_si128((__m128i *)(void *)(ob + k / 2),
                             _mm256_cvtepi16_epi8(_mm256_maddubs_epi16(
                                 _mm256_loadu_si256((const __m256i *)(const void *)(q + k)), _mm256_set1_epi16(0x1001))));
        return;
    }
    if (bits == 2) {
        const __m512i m1 = _mm512_set1_epi16(0x0401), m2 = _mm512_set1_epi32(0x00100001); /* 1, 4 then 1, 16 */
        for (; k + 64 <= n; k += 64) {
            __m512i v = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_loadu_si512(q + k), m1), m2);
            _mm_storeu_si128((__m128i *)(void *)(ob + k / 4), _mm512_cvtepi32_epi8(v));
        }
        if (k < n) {
            __m256i v = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(q + k)),
                                     _mm256_set1_epi16(0x0401)),
                _mm256_set1_epi32(0x00100001));
            _mm_storel_epi64((__m128i *)(void *)(ob + k / 4), _mm256_cvtepi32_epi8(v));
        }
        return;
    }
    /* 3, 5, 6: eight codes to a 64-bit lane (bits bytes of it), as
     * multiply-adds of pairs, pairs of pairs, then the upper half shifted
     * down to its place; each 128-bit lane's two such runs gathered to its
     * front and stored, 2 * bits bytes a lane. */
    const __m512i m1 = _mm512_set1_epi16((short)(1 | (1 << (bits + 8))));
    const __m512i m2 = _mm512_set1_epi32((int)(1u | (1u << (2 * bits + 16))));
    const __m512i lo32 = _mm512_set1_epi64(0xffffffff);
    /* each 64-bit lane's first `bits` bytes, the second lane's after the first's */
    const __m512i pick = _mm512_broadcast_i32x4(
        bits == 6   ? _mm_setr_epi8(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1)
        : bits == 5 ? _mm_setr_epi8(0, 1, 2, 3, 4, 8, 9, 10, 11, 12, -1, -1, -1, -1, -1, -1)
                    : _mm_setr_epi8(0, 1, 2, 8, 9, 10, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
    const __mmask16 lane_bytes = (__mmask16)((1u << (2 * bits)) - 1u);
    for (; k + 64 <= n; k += 64) {
        __m512i v = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_loadu_si512(q + k), m1), m2);
        v = _mm512_or_si512(_mm512_and_si512(v, lo32), _mm512_srli_epi64(_mm512_andnot_si512(lo32, v), 32 - 4 * bits));
        const __m512i w = _mm512_shuffle_epi8(v, pick);
        uint8_t *d = ob + (size_t)k / 8 * (size_t)bits;
        _mm_mask_storeu_epi8(d, lane_bytes, _mm512_castsi512_si128(w));
        _mm_mask_storeu_epi8(d + 2 * bits, lane_bytes, _mm512_extracti32x4_epi32(w, 1));
        _mm_mask_storeu_epi8(d + 4 * bits, lane_bytes, _mm512_extracti32x4_epi32(w, 2));
        _mm_mask_storeu_epi8(d + 6 * bits, lane_bytes, _mm512_extracti32x4_epi32(w, 3));
    }
    for (; k < n; k += 32) pack32(q + k, bits, o + k / 32 * bits);
}
#endif

static int g_limit; /* mc_quant_affine_limit: 1 keeps the compiled code pass */

void mc_quant_affine_limit(int path)
{
    g_limit = path == 1;
}

int mc_quant_affine_path(void)
{
#ifdef MC_MLX_AVX512
    if (!g_limit && mc_cpu_x86_level() >= 3) return 3;
#endif
    return 1;
}

/* One chunk of nc groups (group gi0 of the tensor on) through the three
 * passes and the packing, as compiled: sums of squares to sq, scales and
 * biases stored, codes to q and packed to o. Returns the first group with
 * an Inf or NaN (then nothing past the min/max pass is done), or -1. */
static MC_INLINE int affine_chunk(const float *xc, const int nc, const int bits, const int gs, const int st,
                                  float *sq, void *scales, void *biases, uint64_t gi0, uint8_t *q, uint32_t *o)
{
    float mn[MC_AQ_CHUNK], mx[MC_AQ_CHUNK], sc[MC_AQ_CHUNK], bi[MC_AQ_CHUNK];
    for (int c = 0; c < nc; c++)
        if (affine_minmax(xc + c * gs, gs, &mn[c], &mx[c], &sq[c])) return c;
    affine_params(mn, mx, nc, bits, sc, bi);
    for (int c = 0; c < nc; c++) {
        put_scale(scales, gi0 + (uint64_t)c, st, sc[c]);
        put_scale(biases, gi0 + (uint64_t)c, st, bi[c]);
    }
    for (int c = 0; c < nc; c++) affine_codes(xc + c * gs, gs, bits, sc[c], bi[c], q + c * gs);
    for (int k = 0; k < nc * gs / 32; k++) pack32(q + 32 * k, bits, o + k * bits);
    return -1;
}

#ifdef MC_MLX_AVX512
/* affine_chunk with the AVX-512 passes (the same results). */
MC_MLX_AVX512_FN int affine_chunk_avx512(const float *xc, int nc, int bits, int gs, int st, float *sq, void *scales,
                                         void *biases, uint64_t gi0, uint8_t *q, uint32_t *o, float *sv, float *bv)
{
    float mn[MC_AQ_CHUNK], mx[MC_AQ_CHUNK], sc[MC_AQ_CHUNK], bi[MC_AQ_CHUNK];
    const int bad = affine_minmax_avx512(xc, nc, gs, mn, mx, sq);
    if (bad >= 0) return bad;
    affine_params_avx512(mn, mx, nc, bits, sc, bi, scales, biases, gi0, st, sv, bv);
    affine_codes_avx512(xc, nc, gs, bits, sc, bi, q);
    affine_pack_avx512(q, nc * gs, bits, o);
    return -1;
}
#endif

/* v512: the AVX-512 passes (mc_quant_affine_path() 3). */
static MC_INLINE int affine_rows(const float *x, uint64_t nrows, uint64_t ncols, uint32_t *wq, void *scales,
                                 void *biases, const int bits, const int gs, const int st, mc_affine_sink sink,
                                 const int v512, void *ctx, mc_error *err)
{
    const uint64_t ng = ncols / (uint64_t)gs;
    const uint64_t gw = (uint64_t)gs * (uint64_t)bits / 32u;
    float sq[MC_AQ_CHUNK], sv[MC_AQ_CHUNK], bv[MC_AQ_CHUNK];
    uint8_t q[MC_AQ_CHUNK * 128];
#ifndef MC_MLX_AVX512
    (void)v512;
#endif
    for (uint64_t r = 0; r < nrows; r++) {
        for (uint64_t g0 = 0; g0 < ng; g0 += MC_AQ_CHUNK) {
            const int nc = (int)(ng - g0 < MC_AQ_CHUNK ? ng - g0 : MC_AQ_CHUNK);
            const uint64_t gi0 = r * ng + g0;
            const float *xc = x + gi0 * (uint64_t)gs;
            uint32_t *o = wq + gi0 * gw;
            int bad;
#ifdef MC_MLX_AVX512
            if (v512)
                bad = affine_chunk_avx512(xc, nc, bits, gs, st, sq, scales, biases, gi0, q, o, sv, bv);
            else
#endif
                bad = affine_chunk(xc, nc, bits, gs, st, sq, scales, biases, gi0, q, o);
            if (bad >= 0)
                return mc_error_set(err, MC_ERR_ARG, "affine quantization: non-finite value in row %llu, group %llu",
                                    (unsigned long long)r, (unsigned long long)(g0 + (uint64_t)bad));
            if (sink) sink(ctx, r, g0, nc, xc, q, sq, v512 ? sv : NULL, v512 ? bv : NULL, g0 + (uint64_t)nc == ng);
        }
    }
    return 0;
}

int mc_quant_affine_quantize(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                             uint32_t *wq, void *scales, void *biases, mc_error *err)
{
    return mc_quant_affine_quantize_sink(x, nrows, ncols, p, wq, scales, biases, NULL, NULL, err);
}

int mc_quant_affine_quantize_sink(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                                  uint32_t *wq, void *scales, void *biases, mc_affine_sink sink, void *ctx,
                                  mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    if (nrows && (!x || !wq || !scales || !biases))
        return mc_error_set(err, MC_ERR_ARG, "affine quantization: NULL buffer");
    const int v512 = mc_quant_affine_path() == 3;
    /* Specialise the hot loop per bit width (constant bits inlines the packer). */
#define MC_AQ3(B, G, T) affine_rows(x, nrows, ncols, wq, scales, biases, B, G, T, sink, v512, ctx, err)
#define MC_AQ(B, G)                                                     \
    case (B) * 1000 + (G):                                              \
        return p->scale_type == MC_T_BF16 ? MC_AQ3(B, G, MC_T_BF16)     \
             : p->scale_type == MC_T_F16  ? MC_AQ3(B, G, MC_T_F16)      \
                                          : MC_AQ3(B, G, MC_T_F32)
    switch (p->bits * 1000 + p->group_size) {
    MC_AQ(2, 32); MC_AQ(2, 64); MC_AQ(2, 128);
    MC_AQ(3, 32); MC_AQ(3, 64); MC_AQ(3, 128);
    MC_AQ(4, 32); MC_AQ(4, 64); MC_AQ(4, 128);
    MC_AQ(5, 32); MC_AQ(5, 64); MC_AQ(5, 128);
    MC_AQ(6, 32); MC_AQ(6, 64); MC_AQ(6, 128);
    MC_AQ(8, 32); MC_AQ(8, 64); MC_AQ(8, 128);
    default: return mc_error_set(err, MC_ERR_ARG, "affine quantization: bad parameters");
    }
#undef MC_AQ
#undef MC_AQ3
}

/* ----------------------------------------------------- affine dequantize */

/* Inverse of squeeze8: an 8*bits-bit stream -> 8 codes, one per byte. */
static MC_INLINE uint64_t expand8(uint64_t v, const int bits)
{
    if (bits == 8) return v;
    const uint64_t l1 = 0x0001000100010001ull * ((1ull << bits) - 1u);
    const uint64_t l2 = 0x0000000100000001ull * ((1ull << (2 * bits)) - 1u);
    const uint64_t l3 = (1ull << (4 * bits)) - 1u;
    v = (v & l3) | ((v << (32 - 4 * bits)) & (l3 << 32));
    v = (v & l2) | ((v << (16 - 2 * bits)) & (l2 << 16));
    v = (v & l1) | ((v << (8 - bits)) & (l1 << 8));
    return v;
}

/* `bits` words of MLX's bitstream -> 32 uint8 codes. */
static MC_INLINE void unpack32(const uint32_t *o, const int bits, uint8_t *q)
{
    uint64_t c[4];
    const uint64_t m = bits == 8 ? ~0ull : (1ull << (8 * bits)) - 1u;
    switch (bits) {
    case 2: c[0] = o[0] & 0xFFFFu; c[1] = o[0] >> 16; c[2] = o[1] & 0xFFFFu; c[3] = o[1] >> 16; break;
    case 3:
        c[0] = o[0] & m;
        c[1] = ((uint64_t)o[0] >> 24 | (uint64_t)o[1] << 8) & m;
        c[2] = ((uint64_t)o[1] >> 16 | (uint64_t)o[2] << 16) & m;
        c[3] = o[2] >> 8;
        break;
    case 4: c[0] = o[0]; c[1] = o[1]; c[2] = o[2]; c[3] = o[3]; break;
    case 5:
        c[0] = ((uint64_t)o[0] | (uint64_t)o[1] << 32) & m;
        c[1] = ((uint64_t)o[1] >> 8 | (uint64_t)o[2] << 24) & m;
        c[2] = ((uint64_t)o[2] >> 16 | (uint64_t)o[3] << 16) & m;
        c[3] = ((uint64_t)o[3] >> 24 | (uint64_t)o[4] << 8) & m;
        break;
    case 6:
        c[0] = ((uint64_t)o[0] | (uint64_t)o[1] << 32) & m;
        c[1] = ((uint64_t)o[1] >> 16 | (uint64_t)o[2] << 16) & m;
        c[2] = ((uint64_t)o[3] | (uint64_t)o[4] << 32) & m;
        c[3] = ((uint64_t)o[4] >> 16 | (uint64_t)o[5] << 16) & m;
        break;
    default:
        for (int k = 0; k < 4; k++) c[k] = (uint64_t)o[2 * k] | (uint64_t)o[2 * k + 1] << 32;
        break;
    }
    for (int k = 0; k < 4; k++) {
        uint64_t v = expand8(c[k], bits);
        for (int b = 0; b < 8; b++) q[8 * k + b] = (uint8_t)(v >> (8 * b));
    }
}

#define MC_PACK_ALL(STMT)                     \
    switch (bits) {                           \
    case 2: { const int B = 2; STMT; } break; \
    case 3: { const int B = 3; STMT; } break; \
    case 4: { const int B = 4; STMT; } break; \
    case 5: { const int B = 5; STMT; } break; \
    case 6: { const int B = 6; STMT; } break; \
    default: { const int B = 8; STMT; } break; \
    }

void mc_quant_pack_codes(const uint8_t *q, uint64_t n, int bits, uint32_t *out)
{
    MC_PACK_ALL(for (uint64_t c = 0; c < n / 32; c++) pack32(q + 32 * c, B, out + c * B))
}

void mc_quant_unpack_codes(const uint32_t *in, uint64_t n, int bits, uint8_t *q)
{
    MC_PACK_ALL(for (uint64_t c = 0; c < n / 32; c++) unpack32(in + c * B, B, q + 32 * c))
}

static MC_INLINE void affine_deq_rows(const uint32_t *wq, const void *scales, const void *biases,
                                      uint64_t ngroups, const int bits, const int gs, const int st,
                                      float *out)
{
    const uint64_t gw = (uint64_t)gs * (uint64_t)bits / 32u;
    uint8_t q[128];
    for (uint64_t gi = 0; gi < ngroups; gi++) {
        for (int c = 0; c < gs / 32; c++) unpack32(wq + gi * gw + (uint64_t)c * bits, bits, q + 32 * c);
        const float s = get_scale(scales, gi, st), b = get_scale(biases, gi, st);
        float *o = out + gi * (uint64_t)gs;
        if (st == MC_T_F32) {
            for (int j = 0; j < gs; j++) {
                float m = (float)q[j] * s;
                o[j] = m + b;
            }
        } else if (st == MC_T_BF16) {
            for (int j = 0; j < gs; j++) {
                float m = round_bf16((float)q[j] * s);
                o[j] = round_bf16(m + b);
            }
        } else {
            for (int j = 0; j < gs; j++) {
                float m = round_to((float)q[j] * s, MC_T_F16);
                o[j] = round_to(m + b, MC_T_F16);
            }
        }
    }
}

int mc_quant_affine_dequantize(const uint32_t *wq, const void *scales, const void *biases,
                               uint64_t nrows, uint64_t ncols, const mc_affine *p, float *out,
                               mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    if (nrows && (!out || !wq || !scales || !biases))
        return mc_error_set(err, MC_ERR_ARG, "affine dequantization: NULL buffer");
    const uint64_t ng = nrows * (ncols / (uint64_t)p->group_size);
#define MC_AD3(B, G, T) affine_deq_rows(wq, scales, biases, ng, B, G, T, out)
#define MC_AD(B, G)                                                                     \
    case (B) * 1000 + (G):                                                              \
        if (p->scale_type == MC_T_BF16) MC_AD3(B, G, MC_T_BF16);                        \
        else if (p->scale_type == MC_T_F16) MC_AD3(B, G, MC_T_F16);                     \
        else MC_AD3(B, G, MC_T_F32);                                                    \
        break
    switch (p->bits * 1000 + p->group_size) {
    MC_AD(2, 32); MC_AD(2, 64); MC_AD(2, 128);
    MC_AD(3, 32); MC_AD(3, 64); MC_AD(3, 128);
    MC_AD(4, 32); MC_AD(4, 64); MC_AD(4, 128);
    MC_AD(5, 32); MC_AD(5, 64); MC_AD(5, 128);
    MC_AD(6, 32); MC_AD(6, 64); MC_AD(6, 128);
    MC_AD(8, 32); MC_AD(8, 64); MC_AD(8, 128);
    default: return mc_error_set(err, MC_ERR_ARG, "affine dequantization: bad parameters");
    }
#undef MC_AD
#undef MC_AD3
    return 0;
}

/* ------------------------------------------- mxfp4 / mxfp8 / nvfp4 modes */

static const float FP4_LUT[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

int mc_quant_mx_params(int mode, int *bits, int *group_size)
{
    int b, g;
    switch (mode) {
    case MC_MX_MXFP4: b = 4; g = 32; break;
    case MC_MX_MXFP8: b = 8; g = 32; break;
    case MC_MX_NVFP4: b = 4; g = 16; break;
    default: return MC_ERR_ARG;
    }
    if (bits) *bits = b;
    if (group_size) *group_size = g;
    return 0;
}

const char *mc_quant_mx_name(int mode)
{
    switch (mode) {
    case MC_MX_MXFP4: return "mxfp4";
    case MC_MX_MXFP8: return "mxfp8";
    case MC_MX_NVFP4: return "nvfp4";
    default: return NULL;
    }
}

/* MLX detail::ToFP8 (mlx/backend/cpu/unary_ops.h), transcribed. */
uint8_t mc_quant_to_e4m3(float f)
{
    const uint32_t fp8_max = 543u << 21;
    const uint32_t denorm_mask = 141u << 23;
    uint32_t f_bits = mc_f32_bits(f);
    uint32_t sign = f_bits & 0x80000000u;
    f_bits ^= sign;
    uint8_t result;
    if (f_bits >= fp8_max) {
        result = 0x7E;
    } else if (f_bits < (121u << 23)) {
        uint32_t low = mc_f32_bits(mc_f32_from_bits(f_bits) + mc_f32_from_bits(denorm_mask));
        result = (uint8_t)(low - denorm_mask);
    } else {
        uint32_t mant_odd = (f_bits >> 20) & 1u;
        uint32_t hi = f_bits + (((uint32_t)(7 - 127) << 23) + 0x7FFFFu);
        hi += mant_odd;
        result = (uint8_t)(hi >> 20);
    }
    return (uint8_t)(result | (uint8_t)(sign >> 24));
}

/* MLX detail::FromFP8: (x & 127) << 7 read as f16, times 256, sign applied. */
float mc_quant_from_e4m3(uint8_t x)
{
    float out = mc_f16_to_f32((uint16_t)((x & 127u) << 7)) * 256.0f;
    return (x & 128u) ? -out : out;
}

static int mx_dtype_ok(int t) { return t == MC_T_F16 || t == MC_T_BF16 || t == MC_T_F32; }

/* 2^n rounded to type t (n an integer value). */
static float pow2_to(int n, int t)
{
    if (n > 200) n = 200;
    if (n < -200) n = -200;
    return mc_quant_round_to((float)ldexp(1.0, n), t);
}

int mc_quant_mx_quantize(const float *x, uint64_t nrows, uint64_t ncols, const mc_mx *p,
                         uint32_t *wq, uint8_t *scales, mc_error *err)
{
    int bits, gs;
    if (!p || mc_quant_mx_params(p->mode, &bits, &gs))
        return mc_error_set(err, MC_ERR_ARG, "mx quantization: unknown mode %d", p ? p->mode : -1);
    if (!mx_dtype_ok(p->dtype))
        return mc_error_set(err, MC_ERR_ARG, "mx quantization: dtype %d not f16, bf16 or f32",
                            p->dtype);
    if (ncols == 0 || ncols % (uint64_t)gs)
        return mc_error_set(err, MC_ERR_ARG, "%s: row length %llu is not a multiple of %d",
                            mc_quant_mx_name(p->mode), (unsigned long long)ncols, gs);
    uint64_t n;
    if (mc_mul_u64(nrows, ncols, &n))
        return mc_error_set(err, MC_ERR_OVERFLOW, "mx quantization: size overflows");
    if (n && (!x || !wq || !scales))
        return mc_error_set(err, MC_ERR_ARG, "mx quantization: NULL buffer");
    const int T = p->dtype;
    const float maxval = bits == 4 ? 6.0f : 448.0f;
    float enc = 1.0f;
    if (p->mode == MC_MX_NVFP4 && p->has_global_scale) enc = 2688.0f / p->global_scale;
    const uint64_t gw = (uint64_t)gs * (uint64_t)bits / 32u;
    uint8_t q[32];
    for (uint64_t g = 0; g < n / (uint64_t)gs; g++) {
        const float *w = x + g * (uint64_t)gs;
        float amax = 0.0f;
        for (int j = 0; j < gs; j++) {
            if (!isfinite(w[j]))
                return mc_error_set(err, MC_ERR_ARG, "%s: non-finite value in group %llu",
                                    mc_quant_mx_name(p->mode), (unsigned long long)g);
            float a = fabsf(w[j]);
            amax = amax < a ? a : amax;
        }
        float scale = mc_quant_round_to(amax / maxval, T);
        float v[32];
        if (p->mode == MC_MX_NVFP4) {
            float s32 = scale * enc;
            uint8_t s8 = mc_quant_to_e4m3(s32);
            float ds = mc_quant_round_to(mc_quant_from_e4m3(s8), T);
            for (int j = 0; j < gs; j++) v[j] = mc_quant_round_to(w[j] / ds, T) * enc;
            scales[g] = s8;
        } else {
            int e = 0;
            if (scale != 0.0f) {
                float l2 = mc_quant_round_to((float)log2((double)scale), T);
                e = (int)rintf(l2);
            }
            float p2 = pow2_to(e, T);
            for (int j = 0; j < gs; j++) v[j] = mc_quant_round_to(w[j] / p2, T);
            int sb = e + 127;
            scales[g] = (uint8_t)(sb < 0 ? 0 : sb > 255 ? 255 : sb);
        }
        for (int j = 0; j < gs; j++) {
            if (bits == 8) {
                q[j] = mc_quant_to_e4m3(v[j]);
                continue;
            }
            /* argmin |v - lut| (first minimum wins), in T for mx, f32 for nvfp4 */
            int TT = p->mode == MC_MX_NVFP4 ? MC_T_F32 : T;
            float best = fabsf(mc_quant_round_to(v[j] - FP4_LUT[0], TT));
            int bi = 0;
            for (int i = 1; i < 16; i++) {
                float d = fabsf(mc_quant_round_to(v[j] - FP4_LUT[i], TT));
                if (d < best) { best = d; bi = i; }
            }
            q[j] = (uint8_t)bi;
        }
        uint32_t *o = wq + g * gw;
        if (bits == 8) {
            for (int k = 0; k < gs / 4; k++)
                o[k] = (uint32_t)q[4 * k] | ((uint32_t)q[4 * k + 1] << 8) |
                       ((uint32_t)q[4 * k + 2] << 16) | ((uint32_t)q[4 * k + 3] << 24);
        } else {
            for (int k = 0; k < gs / 8; k++) {
                uint32_t word = 0;
                for (int i = 0; i < 8; i++) word |= (uint32_t)q[8 * k + i] << (4 * i);
                o[k] = word;
            }
        }
    }
    return 0;
}

int mc_quant_mx_dequantize(const uint32_t *wq, const uint8_t *scales, uint64_t nrows,
                           uint64_t ncols, const mc_mx *p, int out_type, float *out,
                           mc_error *err)
{
    int bits, gs;
    if (!p || mc_quant_mx_params(p->mode, &bits, &gs))
        return mc_error_set(err, MC_ERR_ARG, "mx dequantization: unknown mode %d", p ? p->mode : -1);
    if (!mx_dtype_ok(out_type))
        return mc_error_set(err, MC_ERR_ARG, "mx dequantization: output type %d not f16, bf16 or f32",
                            out_type);
    if (ncols == 0 || ncols % (uint64_t)gs)
        return mc_error_set(err, MC_ERR_ARG, "%s: row length %llu is not a multiple of %d",
                            mc_quant_mx_name(p->mode), (unsigned long long)ncols, gs);
    uint64_t n;
    if (mc_mul_u64(nrows, ncols, &n))
        return mc_error_set(err, MC_ERR_OVERFLOW, "mx dequantization: size overflows");
    if (n && (!out || !wq || !scales))
        return mc_error_set(err, MC_ERR_ARG, "mx dequantization: NULL buffer");
    const int O = out_type;
    const int global = p->mode == MC_MX_NVFP4 && p->has_global_scale;
    const float inv = global ? p->global_scale / 2688.0f : 1.0f;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t g = i / (uint64_t)gs;
        uint32_t word = wq[i * (uint64_t)bits / 32u];
        uint32_t code = (word >> ((i * (uint64_t)bits) & 31u)) & ((1u << bits) - 1u);
        float v = bits == 8 ? mc_quant_round_to(mc_quant_from_e4m3((uint8_t)code), O) : FP4_LUT[code];
        if (p->mode == MC_MX_NVFP4) {
            float s = mc_quant_round_to(mc_quant_from_e4m3(scales[g]), O);
            if (global) {
                out[i] = v * (s * inv); /* f32 from here: the global scale is f32 */
            } else {
                out[i] = mc_quant_round_to(v * s, O);
            }
        } else {
            float s = pow2_to((int)scales[g] - 127, O);
            out[i] = mc_quant_round_to(v * s, O);
        }
    }
    return 0;
}
