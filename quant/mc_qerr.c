#include "mc_qerr.h"

#include <math.h>
#include <string.h>

#include "mc_cpu.h"
#include "mc_float.h"
#include "mc_types.h"

/* ---- exact sums ---- */

static void xsum_carry(mc_xsum *s)
{
    uint64_t c = 0;
    for (int i = 0; i < MC_XSUM_LIMBS; i++) {
        uint64_t v = s->d[i] + c; /* d < 2^63, c < 2^32: no overflow */
        s->d[i] = v & 0xffffffffu;
        c = v >> 32;
    }
    /* c != 0 needs a sum beyond 2^1102: not reachable from finite doubles
     * in fewer than 2^80 additions */
    s->adds = 0;
}

/* Inlined into the per-row commit: called twice for every row measured. */
static inline void xsum_add(mc_xsum *s, double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    if (b >> 63) return;                 /* negative (or -0): not summed */
    unsigned e = (unsigned)(b >> 52) & 0x7ffu;
    if (e == 0x7ffu) return;             /* inf / NaN */
    uint64_t m = b & ((UINT64_C(1) << 52) - 1);
    unsigned pos = 0;                    /* weight of m's bit 0, as a power above 2^-1074 */
    if (e) {
        m |= UINT64_C(1) << 52;
        pos = e - 1;
    }
    if (!m) return;
    unsigned li = pos >> 5, sh = pos & 31u;
    /* m << sh spans up to 85 bits: three 32-bit digits */
    uint64_t lo = m << sh;                            /* bits 0..63 of the shifted value */
    uint64_t hi = (m >> 1) >> (63 - sh);              /* bits 64.. (0 for sh 0: m < 2^53) */
    /* all three digits, hi too when 0 (li + 2 <= 65 < MC_XSUM_LIMBS): a
     * branch on hi would follow the exponent, which rows change at random */
    s->d[li] += lo & 0xffffffffu;
    s->d[li + 1] += lo >> 32;
    s->d[li + 2] += hi;
    if (++s->adds >= (UINT64_C(1) << 31)) xsum_carry(s);
}

void mc_xsum_add(mc_xsum *s, double v)
{
    xsum_add(s, v);
}

void mc_xsum_merge(mc_xsum *dst, const mc_xsum *src)
{
    mc_xsum t = *src;
    xsum_carry(&t);
    if (dst->adds + 1 >= (UINT64_C(1) << 31)) xsum_carry(dst);
    for (int i = 0; i < MC_XSUM_LIMBS; i++) dst->d[i] += t.d[i];
    dst->adds++;
}

double mc_xsum_value(const mc_xsum *s)
{
    mc_xsum t = *s;
    xsum_carry(&t);
    int top = MC_XSUM_LIMBS - 1;
    while (top >= 0 && !t.d[top]) top--;
    if (top < 0) return 0.0;
    /* the top three digits (at least 65 significant bits), lowest first,
     * plus a sticky bit for anything below: correctly rounded except for a
     * double rounding in the last place */
    int lo = top >= 2 ? top - 2 : 0;
    int sticky = 0;
    for (int i = 0; i < lo; i++) sticky |= t.d[i] != 0;
    double r = 0.0;
    for (int i = lo; i <= top; i++) {
        uint64_t dig = t.d[i];
        if (i == lo && sticky) dig |= 1;
        r += ldexp((double)dig, 32 * i - 1074);
    }
    return r;
}

/* ---- per-row lanes ----
 *
 * Element j of a row goes to lane j % 16. Per block of 128 values of a row
 * (whole affine groups; the last block may be shorter) every lane sums d*d
 * (and for float rows x*x) in float32 from zero with fused multiply-adds
 * (E = fma(d, d, E): one rounding per step), then adds that to the row's
 * double lane; the largest |d| is kept per lane. d = fl32(y - x), and an
 * affine y is fma(q, scale, bias), rounded once. An affine row's x*x is
 * not summed here: the quantizer's min/max pass sums each group's squares
 * anyway, as its finiteness check (mc_quant_affine_sumsq), and the row's
 * sum is those group sums in double, added in row order. A fused
 * multiply-add is defined to the bit by IEEE 754 (C's fmaf), so every
 * loop below gives the same bits on every machine: the plain C loop (the
 * reference; compilers vectorize it, as clang and gcc do to NEON's fmla
 * and fmaxnm on AArch64) and, on x86-64, loops in AVX2 with FMA and in
 * AVX-512 chosen at run time. -ffp-contract=off keeps the compiler from
 * fusing anything else. */

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(MC_QERR_SCALAR)
#define MC_QERR_X86 1
#include <immintrin.h>
#endif

static int g_scalar; /* mc_qerr_set_scalar: 0 any loop, 1 plain C, 2 not AVX-512 */

void mc_qerr_set_scalar(int on)
{
    g_scalar = on == 1 || on == 2 ? on : 0;
}

int mc_qerr_vector_path(void)
{
#ifdef MC_QERR_X86
    if (g_scalar == 1) return 0;
    int lv = mc_cpu_x86_level();
    return g_scalar == 2 && lv > 2 ? 2 : lv;
#else
    return 0;
#endif
}

#define QE_LANES 16
#define QE_BLOCK 128 /* values per float32 block sum */
/* Groups per run of the affine loops: their scales and biases are decoded
 * into arrays first, so nothing is called while the accumulators are live
 * in registers. A multiple of every QE_BLOCK / group_size. */
#define QE_RUN 32

typedef struct lanes {
    double e[QE_LANES], r[QE_LANES];
    double gr; /* an affine row's group sums of squares so far */
    float m[QE_LANES];
    uint64_t bad;
} lanes;

#if defined(__GNUC__) || defined(__clang__)
#define QE_INLINE __attribute__((always_inline)) static inline
#else
#define QE_INLINE static inline
#endif

static void lanes_zero(lanes *L)
{
    memset(L, 0, sizeof *L);
}

/* The running max of the plain loop: "a > m ? a : m" for a = |d| (a quiet
 * NaN when d is one: never signalling, d comes from a subtraction) and
 * m >= +0, never NaN. On AArch64 that is fmaxf, the same bits for every
 * such a and m (a NaN gives m; equal values are the same positive bits),
 * which compilers turn into one FMAXNM where the select takes two
 * instructions (FCMGT and BIT). Elsewhere fmaxf can be a call into libm
 * (gcc on x86-64), so the select stays. */
QE_INLINE float absmax_plain(float a, float m)
{
#if defined(__aarch64__)
    return fmaxf(a, m);
#else
    return a > m ? a : m;
#endif
}

/* n values (a multiple of 16, at most QE_BLOCK) of y against x: one block;
 * x*x summed too when with_r (float rows; a constant in each caller). */
QE_INLINE void block_sums(lanes *L, const float *restrict y, const float *restrict x, size_t n, const int with_r)
{
    float E[QE_LANES], R[QE_LANES], M[QE_LANES];
    for (int l = 0; l < QE_LANES; l++) {
        E[l] = 0.0f;
        R[l] = 0.0f;
        M[l] = L->m[l];
    }
    for (size_t j = 0; j < n; j += QE_LANES)
        for (int l = 0; l < QE_LANES; l++) {
            float xv = x[j + (size_t)l], d = y[j + (size_t)l] - xv;
            E[l] = fmaf(d, d, E[l]);
            if (with_r) R[l] = fmaf(xv, xv, R[l]);
            M[l] = absmax_plain(fabsf(d), M[l]);
        }
    for (int l = 0; l < QE_LANES; l++) {
        L->e[l] += (double)E[l];
        if (with_r) L->r[l] += (double)R[l];
        L->m[l] = M[l];
    }
}

static void block_plain(lanes *L, const float *y, const float *x, size_t n)
{
    block_sums(L, y, x, n, 1);
}

/* An affine run's group sums of squares added to the row's, in order. */
static double add_sq(double acc, const float *sq, int n)
{
    for (int g = 0; g < n; g++) acc += (double)sq[g];
    return acc;
}

/* The stored values of one group: fma(q, s, b) for each of its gs codes. */
static void deq_group(const uint8_t *restrict q, int gs, float s, float b, float *restrict y)
{
    for (int j = 0; j < gs; j++) y[j] = fmaf((float)q[j], s, b);
}

/* n groups of gs codes (one per byte) with their scales and biases, against
 * x: whole blocks from the start of a block. */
static void bytes_plain(lanes *L, const float *x, int n, int gs, const uint8_t *codes, const float *sv,
                        const float *bv)
{
    const int per = QE_BLOCK / gs;
    float y[QE_BLOCK];
    for (int g = 0; g < n; g += per) {
        const int nb = n - g < per ? n - g : per;
        for (int k = 0; k < nb; k++)
            deq_group(codes + (size_t)(g + k) * (size_t)gs, gs, sv[g + k], bv[g + k], y + k * gs);
        block_sums(L, y, x + (size_t)g * (size_t)gs, (size_t)nb * (size_t)gs, 0);
    }
}

#ifdef MC_QERR_X86
/* AVX2 + FMA: lanes 0-7 and 8-15 in two registers; float sums of the
 * current block (e, r), double sums across blocks (ed, rd), the running
 * max |y - x| (m: maxps(a, m) is "a > m ? a : m" lane by lane). */
typedef struct avx2_acc {
    __m256 m0, m1, e0, e1, r0, r1;
    __m256d ed[4], rd[4];
} avx2_acc;

#define QE_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

QE_AVX2 void avx2_load(avx2_acc *a, const lanes *L)
{
    a->m0 = _mm256_loadu_ps(L->m);
    a->m1 = _mm256_loadu_ps(L->m + 8);
    a->e0 = a->e1 = a->r0 = a->r1 = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        a->ed[k] = _mm256_loadu_pd(L->e + 4 * k);
        a->rd[k] = _mm256_loadu_pd(L->r + 4 * k);
    }
}

/* 16 values: y0, y1 the stored ones, x0, x1 the source's (x*x summed
 * when with_r, a constant in each caller: float rows). */
QE_AVX2 void avx2_step(avx2_acc *a, __m256 y0, __m256 y1, __m256 x0, __m256 x1, const int with_r)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 d0 = _mm256_sub_ps(y0, x0), d1 = _mm256_sub_ps(y1, x1);
    a->e0 = _mm256_fmadd_ps(d0, d0, a->e0);
    a->e1 = _mm256_fmadd_ps(d1, d1, a->e1);
    if (with_r) {
        a->r0 = _mm256_fmadd_ps(x0, x0, a->r0);
        a->r1 = _mm256_fmadd_ps(x1, x1, a->r1);
    }
    a->m0 = _mm256_max_ps(_mm256_and_ps(d0, absmask), a->m0);
    a->m1 = _mm256_max_ps(_mm256_and_ps(d1, absmask), a->m1);
}

/* The end of a block: its float sums into the double ones. */
QE_AVX2 void avx2_flush(avx2_acc *a, const int with_r)
{
    a->ed[0] = _mm256_add_pd(a->ed[0], _mm256_cvtps_pd(_mm256_castps256_ps128(a->e0)));
    a->ed[1] = _mm256_add_pd(a->ed[1], _mm256_cvtps_pd(_mm256_extractf128_ps(a->e0, 1)));
    a->ed[2] = _mm256_add_pd(a->ed[2], _mm256_cvtps_pd(_mm256_castps256_ps128(a->e1)));
    a->ed[3] = _mm256_add_pd(a->ed[3], _mm256_cvtps_pd(_mm256_extractf128_ps(a->e1, 1)));
    if (with_r) {
        a->rd[0] = _mm256_add_pd(a->rd[0], _mm256_cvtps_pd(_mm256_castps256_ps128(a->r0)));
        a->rd[1] = _mm256_add_pd(a->rd[1], _mm256_cvtps_pd(_mm256_extractf128_ps(a->r0, 1)));
        a->rd[2] = _mm256_add_pd(a->rd[2], _mm256_cvtps_pd(_mm256_castps256_ps128(a->r1)));
        a->rd[3] = _mm256_add_pd(a->rd[3], _mm256_cvtps_pd(_mm256_extractf128_ps(a->r1, 1)));
    }
    a->e0 = a->e1 = a->r0 = a->r1 = _mm256_setzero_ps();
}

QE_AVX2 void avx2_store(const avx2_acc *a, lanes *L)
{
    _mm256_storeu_ps(L->m, a->m0);
    _mm256_storeu_ps(L->m + 8, a->m1);
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_pd(L->e + 4 * k, a->ed[k]);
        _mm256_storeu_pd(L->r + 4 * k, a->rd[k]);
    }
}

__attribute__((target("avx2,fma"))) static void block_avx2(lanes *L, const float *y, const float *x, size_t n)
{
    avx2_acc a;
    avx2_load(&a, L);
    for (size_t j = 0; j < n; j += 16)
        avx2_step(&a, _mm256_loadu_ps(y + j), _mm256_loadu_ps(y + j + 8), _mm256_loadu_ps(x + j),
                  _mm256_loadu_ps(x + j + 8), 1);
    avx2_flush(&a, 1);
    avx2_store(&a, L);
}

__attribute__((target("avx2,fma"))) static void bytes_avx2(lanes *L, const float *x, int n, int gs,
                                                            const uint8_t *codes, const float *sv, const float *bv)
{
    const int per = QE_BLOCK / gs;
    avx2_acc a;
    avx2_load(&a, L);
    for (int g = 0; g < n; g += per) {
        const int nb = n - g < per ? n - g : per;
        for (int k = 0; k < nb; k++) {
            const uint8_t *q = codes + (size_t)(g + k) * (size_t)gs;
            const float *xg = x + (size_t)(g + k) * (size_t)gs;
            const __m256 vs = _mm256_set1_ps(sv[g + k]), vb = _mm256_set1_ps(bv[g + k]);
            for (int j = 0; j < gs; j += 16) {
                __m128i c16 = _mm_loadu_si128((const __m128i *)(const void *)(q + j));
                __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c16));
                __m256 c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c16, 8)));
                avx2_step(&a, _mm256_fmadd_ps(c0, vs, vb), _mm256_fmadd_ps(c1, vs, vb), _mm256_loadu_ps(xg + j),
                          _mm256_loadu_ps(xg + j + 8), 0);
            }
        }
        avx2_flush(&a, 0);
    }
    avx2_store(&a, L);
}

/* AVX-512F: the 16 lanes in one register, the same operations. */
typedef struct avx512_acc {
    __m512 m, e, r;
    __m512d ed[2], rd[2];
} avx512_acc;

#define QE_AVX512 __attribute__((target(MC_CPU_AVX512_TARGET), always_inline)) static inline
#define QE_AVX512_RUN __attribute__((target(MC_CPU_AVX512_TARGET)))

QE_AVX512 void avx512_load(avx512_acc *a, const lanes *L)
{
    a->m = _mm512_loadu_ps(L->m);
    a->e = a->r = _mm512_setzero_ps();
    for (int k = 0; k < 2; k++) {
        a->ed[k] = _mm512_loadu_pd(L->e + 8 * k);
        a->rd[k] = _mm512_loadu_pd(L->r + 8 * k);
    }
}

/* max(|d|, m) for m >= 0 in one instruction (VRANGEPS: the larger
 * magnitude, sign cleared). A NaN d can give NaN here where the other loops
 * keep m, but a NaN d makes the row's sums NaN, and such a row is measured
 * again by the checked loop, so the figures do not depend on it. */
QE_AVX512 __m512 avx512_absmax(__m512 d, __m512 m)
{
    return _mm512_range_ps(d, m, 0x0B);
}

/* with_r (a constant in each caller): x*x summed too (float rows). */
QE_AVX512 void avx512_step(avx512_acc *a, __m512 y, __m512 x, const int with_r)
{
    __m512 d = _mm512_sub_ps(y, x);
    a->e = _mm512_fmadd_ps(d, d, a->e);
    if (with_r) a->r = _mm512_fmadd_ps(x, x, a->r);
    a->m = avx512_absmax(d, a->m);
}

/* Lanes 0-7 (lo) and 8-15 (hi) of v widened to double (exactly). */
QE_AVX512 __m512d avx512_lo_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}

QE_AVX512 __m512d avx512_hi_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* A block's float sums (e, and r when with_r) into the double ones. */
QE_AVX512 void avx512_add_block(avx512_acc *a, __m512 e, __m512 r, const int with_r)
{
    a->ed[0] = _mm512_add_pd(a->ed[0], avx512_lo_pd(e));
    a->ed[1] = _mm512_add_pd(a->ed[1], avx512_hi_pd(e));
    if (!with_r) return;
    a->rd[0] = _mm512_add_pd(a->rd[0], avx512_lo_pd(r));
    a->rd[1] = _mm512_add_pd(a->rd[1], avx512_hi_pd(r));
}

QE_AVX512 void avx512_flush(avx512_acc *a, const int with_r)
{
    avx512_add_block(a, a->e, a->r, with_r);
    a->e = a->r = _mm512_setzero_ps();
}

QE_AVX512 void avx512_store(const avx512_acc *a, lanes *L)
{
    _mm512_storeu_ps(L->m, a->m);
    for (int k = 0; k < 2; k++) {
        _mm512_storeu_pd(L->e + 8 * k, a->ed[k]);
        _mm512_storeu_pd(L->r + 8 * k, a->rd[k]);
    }
}

QE_AVX512_RUN static void block_avx512(lanes *L, const float *y, const float *x, size_t n)
{
    avx512_acc a;
    avx512_load(&a, L);
    for (size_t j = 0; j < n; j += 16) avx512_step(&a, _mm512_loadu_ps(y + j), _mm512_loadu_ps(x + j), 1);
    avx512_flush(&a, 1);
    avx512_store(&a, L);
}

/* The masks of elements 0-15 (*m0) and 16-31 (*m1) of a run of n <= 32. */
QE_AVX512 void avx512_run_masks(int n, __mmask16 *m0, __mmask16 *m1)
{
    *m0 = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
    *m1 = (__mmask16)(n >= 32 ? 0xffffu : n > 16 ? (1u << (n - 16)) - 1u : 0u);
}

/* n <= 32 stored scales (or biases) from index i0 as float32 (exactly),
 * by masked loads: nothing past the n-th is read. */
QE_AVX512_RUN static inline void avx512_scales(const void *arr, uint64_t i0, int n, int type, float *out)
{
    __mmask16 m0, m1;
    avx512_run_masks(n, &m0, &m1);
    const char *b = (const char *)arr;
    if (type == MC_T_F32) {
        _mm512_storeu_ps(out, _mm512_maskz_loadu_ps(m0, b + i0 * 4));
        _mm512_storeu_ps(out + 16, _mm512_maskz_loadu_ps(m1, b + i0 * 4 + 64));
        return;
    }
    __m256i h0 = _mm256_maskz_loadu_epi16(m0, b + i0 * 2), h1 = _mm256_maskz_loadu_epi16(m1, b + i0 * 2 + 32);
    if (type == MC_T_F16) {
        _mm512_storeu_ps(out, _mm512_cvtph_ps(h0));
        _mm512_storeu_ps(out + 16, _mm512_cvtph_ps(h1));
    } else {
        _mm512_storeu_ps(out, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h0), 16)));
        _mm512_storeu_ps(out + 16, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h1), 16)));
    }
}

/* A group's scale and bias; for codes below 16 (lut) also its 16 possible
 * values fma(k, scale, bias), k = 0..15: the same bits as computing each. */
typedef struct avx512_grp {
    __m512 s, b, t;
} avx512_grp;

QE_AVX512 avx512_grp avx512_group(float s, float b, const int lut)
{
    avx512_grp g;
    g.s = _mm512_set1_ps(s);
    g.b = _mm512_set1_ps(b);
    g.t = lut ? _mm512_fmadd_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), g.s, g.b)
              : g.s;
    return g;
}

/* 16 stored values from their codes: looked up (lut) or fma(q, s, b). */
QE_AVX512 __m512 avx512_y(const uint8_t *q, const avx512_grp *g, const int lut)
{
    __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)q));
    if (lut) return _mm512_permutexvar_ps(c, g->t);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), g->s, g->b);
}

/* nv values (whole groups of gs, a constant in each instance) from their
 * codes (x*x not summed: affine rows take the quantizer's group sums).
 * Two blocks at a time, each with its own float sums from zero,
 * added to the double lanes in order (first block first: the same bits as
 * one block after the other), so that the two chains of fused
 * multiply-adds overlap instead of waiting on each other. */
QE_AVX512 void avx512_groups(avx512_acc *acc, const float *x, int nv, const uint8_t *codes, const float *sv,
                             const float *bv, const int gs, const int lut)
{
    /* The accumulators in a local copy: __m512 may alias any float, so
     * through acc every step would be stored to memory and read back. */
    avx512_acc local = *acc, *a = &local;
    const int per = QE_BLOCK / gs;
    int v = 0, g = 0;
    for (; v + 2 * QE_BLOCK <= nv; v += 2 * QE_BLOCK, g += 2 * per) {
        __m512 e2 = _mm512_setzero_ps(), m2 = a->m;
        for (int k = 0; k < per; k++) {
            const avx512_grp ga = avx512_group(sv[g + k], bv[g + k], lut);
            const avx512_grp gb = avx512_group(sv[g + per + k], bv[g + per + k], lut);
            for (int j = 0; j < gs; j += 16) {
                const int i = v + k * gs + j, i2 = i + QE_BLOCK;
                avx512_step(a, avx512_y(codes + i, &ga, lut), _mm512_loadu_ps(x + i), 0);
                __m512 d = _mm512_sub_ps(avx512_y(codes + i2, &gb, lut), _mm512_loadu_ps(x + i2));
                e2 = _mm512_fmadd_ps(d, d, e2);
                m2 = avx512_absmax(d, m2);
            }
        }
        avx512_flush(a, 0);
        avx512_add_block(a, e2, e2, 0);
        a->m = _mm512_max_ps(m2, a->m); /* a max: any order gives the same */
    }
    for (; v < nv; v += QE_BLOCK) {
        const int end = nv - v < QE_BLOCK ? nv : v + QE_BLOCK;
        for (; g * gs < end; g++) { /* g * gs == v at the start */
            const avx512_grp ga = avx512_group(sv[g], bv[g], lut);
            for (int j = 0; j < gs; j += 16)
                avx512_step(a, avx512_y(codes + g * gs + j, &ga, lut), _mm512_loadu_ps(x + g * gs + j), 0);
        }
        avx512_flush(a, 0);
    }
    *acc = local;
}

/* n <= QE_RUN groups with their scales and biases as float32 (sv, bv):
 * the instance of avx512_groups for this group size and bit width. */
QE_AVX512 void avx512_run_groups(avx512_acc *a, const float *x, int n, const mc_affine *p,
                                const uint8_t *codes, const float *sv, const float *bv)
{
    const int lut = p->bits <= 4;
    switch (p->group_size * 2 + lut) {
    case 64: avx512_groups(a, x, n * 32, codes, sv, bv, 32, 0); break;
    case 65: avx512_groups(a, x, n * 32, codes, sv, bv, 32, 1); break;
    case 128: avx512_groups(a, x, n * 64, codes, sv, bv, 64, 0); break;
    case 129: avx512_groups(a, x, n * 64, codes, sv, bv, 64, 1); break;
    case 256: avx512_groups(a, x, n * 128, codes, sv, bv, 128, 0); break;
    default: avx512_groups(a, x, n * 128, codes, sv, bv, 128, 1); break;
    }
}

/* A run of n <= QE_RUN groups (whole blocks from a block boundary). */
QE_AVX512_RUN static void run_avx512(lanes *L, const float *x, int n, const mc_affine *p, const uint8_t *codes,
                                     const float *sv, const float *bv)
{
    avx512_acc a;
    avx512_load(&a, L);
    avx512_run_groups(&a, x, n, p, codes, sv, bv);
    avx512_store(&a, L);
}

/* tree8 of ed[0] and of ed[1] at once (the same additions in the same
 * order as tree8: IEEE addition is commutative, so a + b and b + a are the
 * same bits), then tree8(ed[0]) + tree8(ed[1]), as lanes_commit computes e. */
QE_AVX512 double avx512_sum_e(const avx512_acc *a)
{
    /* [x0+x1, y0+y1, x2+x3, y2+y3, ...] for x = ed[0], y = ed[1] */
    __m512d p = _mm512_add_pd(_mm512_unpacklo_pd(a->ed[0], a->ed[1]), _mm512_unpackhi_pd(a->ed[0], a->ed[1]));
    /* 128-bit lanes 0+1 and 2+3: [x0123, y0123, x4567, y4567] */
    __m512d s = _mm512_add_pd(_mm512_shuffle_f64x2(p, p, 0x88), _mm512_shuffle_f64x2(p, p, 0xDD));
    /* [tree8 x, tree8 y] */
    __m128d t = _mm_add_pd(_mm512_castpd512_pd128(s), _mm512_extractf64x2_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

/* add_sq(0.0, sq, n) for n <= QE_RUN group sums, without its chain of n
 * dependent additions where that gives the same bits: when every partial
 * sum is exact. The sq are floats >= 0; each is a multiple of u, the unit
 * in the last place of the smallest nonzero one (2^-149 for a subnormal),
 * and every partial sum is below n * 2^(EM - 126), EM the largest one's
 * biased exponent. In units of u that is below 32 * 2^(EM - Em + 24) for
 * Em the smallest one's biased exponent (1 for a subnormal), so for
 * EM - Em <= 24 every partial sum is a multiple of u below 2^53 u: exact
 * in double, in any order. Otherwise (or when one is not a finite
 * non-negative float) the additions in order. */
QE_AVX512 double avx512_sum_sq(const float *sq, int n)
{
    __mmask16 k0, k1;
    avx512_run_masks(n, &k0, &k1);
    const __m512i a = _mm512_maskz_loadu_epi32(k0, sq), b = _mm512_maskz_loadu_epi32(k1, sq + 16);
    const uint32_t top = (uint32_t)_mm512_reduce_max_epu32(_mm512_max_epu32(a, b));
    if (top == 0) return 0.0; /* all +0: the in-order sum is +0 too */
    if (top >= 0x7f800000u) return add_sq(0.0, sq, n); /* Inf, NaN or a sign bit */
    /* zeros (and the lanes past n) left out of the minimum */
    const __m512i ones = _mm512_set1_epi32(-1);
    const __m512i a1 = _mm512_mask_mov_epi32(ones, _mm512_test_epi32_mask(a, a), a);
    const __m512i b1 = _mm512_mask_mov_epi32(ones, _mm512_test_epi32_mask(b, b), b);
    const uint32_t low = (uint32_t)_mm512_reduce_min_epu32(_mm512_min_epu32(a1, b1));
    const int em = (int)(low >> 23) > 1 ? (int)(low >> 23) : 1;
    if ((int)(top >> 23) - em > 24) return add_sq(0.0, sq, n);
    const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
    const __m512d s0 = _mm512_add_pd(avx512_lo_pd(fa), avx512_hi_pd(fa));
    const __m512d s1 = _mm512_add_pd(avx512_lo_pd(fb), avx512_hi_pd(fb));
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

/* avx512_sum_sq, called from code built for any processor */
QE_AVX512_RUN static double avx512_sum_sq_row(const float *sq, int n)
{
    return avx512_sum_sq(sq, n);
}

/* A whole row in one run (n <= QE_RUN groups) from zero: its sum of d*d
 * and max straight from the registers, as lanes_commit would compute them
 * from the lanes (no lanes in memory); fused_run keeps them for
 * fused_flush, so that nothing waits on these reductions. */
QE_AVX512_RUN static void row_avx512(const float *x, int n, const mc_affine *p, const uint8_t *codes,
                                     const float *sv, const float *bv, double *e, float *m)
{
    avx512_acc a;
    a.m = a.e = a.r = _mm512_setzero_ps();
    a.ed[0] = a.ed[1] = a.rd[0] = a.rd[1] = _mm512_setzero_pd();
    avx512_run_groups(&a, x, n, p, codes, sv, bv);
    *e = avx512_sum_e(&a);
    *m = _mm512_reduce_max_ps(a.m);
}
#endif

/* One block by the loops path names (mc_qerr_vector_path(), taken once per call). */
static void acc_block(lanes *L, const float *y, const float *x, size_t n, int path)
{
#ifdef MC_QERR_X86
    switch (path) {
    case 3: block_avx512(L, y, x, n); return;
    case 2: block_avx2(L, y, x, n); return;
    default: break;
    }
#endif
    (void)path;
    block_plain(L, y, x, n);
}

/* The slow path for a row whose sums overflowed: element by element in
 * double, leaving out (and counting) what is not finite. */
static void acc_checked(lanes *L, const float *y, const float *x, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        double d = (double)y[j] - (double)x[j], xv = (double)x[j];
        double dd = d * d, xx = xv * xv;
        if (!(isfinite(dd) && isfinite(xx))) {
            L->bad++;
            continue;
        }
        L->e[j % QE_LANES] += dd;
        L->r[j % QE_LANES] += xx;
        float a = (float)fabs(d);
        L->m[j % QE_LANES] = a > L->m[j % QE_LANES] ? a : L->m[j % QE_LANES];
    }
}

static double tree8(const double *v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* A row's sums (finite) and largest |d| into the totals. */
static void sums_commit(mc_qerr *q, double e, double r, float m, uint64_t n, uint64_t bad)
{
    xsum_add(&q->err, e);
    xsum_add(&q->ref, r);
    if ((double)m > q->max_abs) q->max_abs = (double)m;
    q->count += n - bad;
    q->nonfinite += bad;
}

/* Add one row's lanes; returns 0, or 1 when its sums are not finite (the
 * caller redoes the row checked). */
static int lanes_commit(mc_qerr *q, const lanes *L, uint64_t n, int checked)
{
    double e = tree8(L->e) + tree8(L->e + 8), r = (tree8(L->r) + tree8(L->r + 8)) + L->gr;
    if (!checked && !(isfinite(e) && isfinite(r))) return 1;
    float m = L->m[0];
    for (int k = 1; k < QE_LANES; k++) m = L->m[k] > m ? L->m[k] : m;
    sums_commit(q, e, r, m, n, L->bad);
    return 0;
}

void mc_qerr_init(mc_qerr *q)
{
    memset(q, 0, sizeof *q);
}

void mc_qerr_merge(mc_qerr *dst, const mc_qerr *src)
{
    mc_xsum_merge(&dst->err, &src->err);
    mc_xsum_merge(&dst->ref, &src->ref);
    if (src->max_abs > dst->max_abs) dst->max_abs = src->max_abs;
    dst->count += src->count;
    dst->nonfinite += src->nonfinite;
}

/* n stored f16/bf16/f32 elements from index i as float32, exactly. */
static inline void decode(const void *stored, int type, uint64_t i, size_t n, float *restrict y)
{
    const unsigned char *b = (const unsigned char *)stored;
    if (type == MC_T_F32) {
        memcpy(y, b + i * 4, n * 4);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        uint16_t h;
        memcpy(&h, b + (i + k) * 2, 2);
        y[k] = type == MC_T_F16 ? mc_f16_to_f32(h) : mc_bf16_to_f32(h);
    }
}

/* ---- affine ---- */

#ifdef MC_QERR_X86
/* f16 to f32 with F16C (exact, as mc_f16_to_f32 for every finite value). */
__attribute__((target("avx,f16c"))) static void f16_decode_f16c(const uint16_t *h, int n, float *out)
{
    int k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(out + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(h + k))));
    for (; k < n; k++) out[k] = mc_f16_to_f32(h[k]);
}
#endif

/* n <= QE_RUN stored scales (or biases) from index i0 as float32, exactly
 * (path: mc_qerr_vector_path()): by masked AVX-512 loads where those loops
 * run, f16 by F16C where the AVX2 loops run. */
static void scales_decode(const void *arr, uint64_t i0, int n, int type, int path, float *restrict out)
{
#ifdef MC_QERR_X86
    if (path == 3) {
        avx512_scales(arr, i0, n, type, out);
        return;
    }
    if (type == MC_T_F16 && path >= 2) {
        uint16_t h[QE_RUN];
        memcpy(h, (const unsigned char *)arr + i0 * 2, (size_t)n * 2);
        f16_decode_f16c(h, n, out);
        return;
    }
#endif
    (void)path;
    decode(arr, type, i0, (size_t)n, out);
}

/* A run of n <= QE_RUN groups of a row, codes one per byte, starting at a
 * block boundary; sv and bv its groups' scales and biases as float32; sq
 * the groups' sums of squares (mc_quant_affine_sumsq); path the loops to
 * use (mc_qerr_vector_path(), taken once per call), checked for the slow
 * path of acc_checked (which sums x*x itself: sq unused). */
static void run_affine(lanes *L, const float *x, int n, const mc_affine *p, const uint8_t *codes, const float *sv,
                       const float *bv, const float *sq, int path, int checked)
{
    if (!checked) L->gr = add_sq(L->gr, sq, n);
    const int gs = p->group_size;
    if (!checked) {
#ifdef MC_QERR_X86
        if (path == 3) {
            run_avx512(L, x, n, p, codes, sv, bv);
            return;
        }
        if (path == 2) {
            bytes_avx2(L, x, n, gs, codes, sv, bv);
            return;
        }
#else
        (void)path;
#endif
        bytes_plain(L, x, n, gs, codes, sv, bv);
        return;
    }
    float y[QE_BLOCK];
    for (int g = 0; g < n; g++) {
        deq_group(codes + (size_t)g * (size_t)gs, gs, sv[g], bv[g], y);
        acc_checked(L, y, x + (size_t)g * (size_t)gs, (size_t)gs);
    }
}

/* One stored row: its codes unpacked, its scales and biases decoded,
 * QE_RUN groups at a time. */
static void row_affine(lanes *L, const float *x, uint64_t ncols, const mc_affine *p, const uint32_t *row,
                       const void *scales, const void *biases, uint64_t g0, int path, int checked)
{
    const int gs = p->group_size;
    const uint64_t ng = ncols / (uint64_t)gs, gw = (uint64_t)gs * (uint64_t)p->bits / 32u;
    uint8_t q[QE_RUN * 128];
    float sq[QE_RUN], sv[QE_RUN], bv[QE_RUN];
    for (uint64_t r0 = 0; r0 < ng; r0 += QE_RUN) {
        const int n = (int)(ng - r0 < QE_RUN ? ng - r0 : QE_RUN);
        const float *xr = x + r0 * (uint64_t)gs;
        mc_quant_unpack_codes(row + r0 * gw, (uint64_t)n * (uint64_t)gs, p->bits, q);
        for (int g = 0; g < n && !checked; g++) sq[g] = mc_quant_affine_sumsq(xr + (size_t)g * (size_t)gs, gs);
        scales_decode(scales, g0 + r0, n, p->scale_type, path, sv);
        scales_decode(biases, g0 + r0, n, p->scale_type, path, bv);
        run_affine(L, xr, n, p, q, sv, bv, sq, path, checked);
    }
}

int mc_qerr_affine(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                   const uint32_t *wq, const void *scales, const void *biases, mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    uint64_t rw = mc_quant_affine_row_words(ncols, p->bits), ng = ncols / (uint64_t)p->group_size;
    const int path = mc_qerr_vector_path();
    for (uint64_t r = 0; r < nrows; r++) {
        lanes L;
        for (int checked = 0; checked < 2; checked++) {
            lanes_zero(&L);
            row_affine(&L, x + r * ncols, ncols, p, wq + r * rw, scales, biases, r * ng, path, checked);
            if (!lanes_commit(q, &L, ncols, checked)) break;
        }
    }
    return 0;
}

/* ---- affine, measured while quantizing ---- */

/* Rows measured in the whole-row form wait, up to QE_PEND of them, before
 * their sums are committed (fused_flush): a row's sums are ready only at
 * the end of its chains of additions, and committing each at once made
 * the next row's work wait behind them. The exact sums and the
 * max do not depend on the order rows are committed in. */
#define QE_PEND 16
typedef struct fused {
    mc_qerr *q;
    const mc_affine *p;
    const float *x;
    const uint32_t *wq;
    const void *scales, *biases;
    uint64_t ncols, ng, rw;
    int path;
    lanes L;
    int np; /* rows measured whole, not yet committed (fused_flush): row, e, r, max */
    uint64_t prow[QE_PEND];
    double pe[QE_PEND], pr[QE_PEND];
    float pm[QE_PEND];
} fused;

/* A row whose sums were not finite: again, checked, from what was stored. */
static void fused_redo(fused *f, uint64_t row)
{
    lanes_zero(&f->L);
    row_affine(&f->L, f->x + row * f->ncols, f->ncols, f->p, f->wq + row * f->rw, f->scales, f->biases,
               row * f->ng, f->path, 1);
    (void)lanes_commit(f->q, &f->L, f->ncols, 1);
}

/* The pending whole rows into the totals, in order (or a row again,
 * checked, when its sums are not finite). */
static void fused_flush(fused *f)
{
    for (int k = 0; k < f->np; k++) {
        if (isfinite(f->pe[k]) && isfinite(f->pr[k])) sums_commit(f->q, f->pe[k], f->pr[k], f->pm[k], f->ncols, 0);
        else fused_redo(f, f->prow[k]);
    }
    f->np = 0;
}

/* A run of groups just quantized (mc_affine_sink): the same blocks, lanes
 * and operations as row_affine, the codes taken from the quantizer's bytes. */
static void fused_run(void *vc, uint64_t row, uint64_t g0, int n, const float *x, const uint8_t *codes,
                      const float *sq, const float *sv, const float *bv, int row_done)
{
    fused *f = (fused *)vc;
    const mc_affine *p = f->p;
    float sd[QE_RUN], bd[QE_RUN]; /* n <= 32: a run is at most MC_AQ_CHUNK groups */
    if (!sv) { /* not handed over (mc_affine_sink): read back */
        scales_decode(f->scales, row * f->ng + g0, n, p->scale_type, f->path, sd);
        scales_decode(f->biases, row * f->ng + g0, n, p->scale_type, f->path, bd);
        sv = sd;
        bv = bd;
    }
#ifdef MC_QERR_X86
    if (f->path == 3 && g0 == 0 && row_done && n <= QE_RUN) { /* the whole row in this run */
        const int k = f->np++;
        f->prow[k] = row;
        f->pr[k] = avx512_sum_sq_row(sq, n);
        row_avx512(x, n, p, codes, sv, bv, &f->pe[k], &f->pm[k]);
        if (f->np == QE_PEND) fused_flush(f);
        return;
    }
#endif
    if (g0 == 0) lanes_zero(&f->L);
    run_affine(&f->L, x, n, p, codes, sv, bv, sq, f->path, 0);
    if (row_done && lanes_commit(f->q, &f->L, f->ncols, 0)) fused_redo(f, row);
}

int mc_qerr_affine_quantize(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                            uint32_t *wq, void *scales, void *biases, mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    fused f;
    f.q = q;
    f.p = p;
    f.x = x;
    f.wq = wq;
    f.scales = scales;
    f.biases = biases;
    f.ncols = ncols;
    f.ng = ncols / (uint64_t)p->group_size;
    f.rw = mc_quant_affine_row_words(ncols, p->bits);
    f.path = mc_qerr_vector_path();
    f.np = 0;
    rc = mc_quant_affine_quantize_sink(x, nrows, ncols, p, wq, scales, biases, fused_run, &f, err);
    fused_flush(&f);
    return rc;
}

/* ---- float ---- */

/* A row of any length in blocks of 128, the tail padded with y = x = 0 (adds 0). */
static void row_float(lanes *L, const float *x, uint64_t ncols, int type, const void *stored, uint64_t i0,
                      int path, int checked)
{
    float y[QE_BLOCK], xt[QE_BLOCK];
    for (uint64_t j = 0; j < ncols; j += QE_BLOCK) {
        size_t n = ncols - j < QE_BLOCK ? (size_t)(ncols - j) : QE_BLOCK, n8 = (n + 15) & ~(size_t)15;
        const float *xb = x + j;
        decode(stored, type, i0 + j, n, y);
        if (n8 != n) {
            memcpy(xt, x + j, n * sizeof *xt);
            for (size_t k = n; k < n8; k++) y[k] = xt[k] = 0.0f;
            xb = xt;
        }
        if (checked) acc_checked(L, y, xb, n8);
        else acc_block(L, y, xb, n8, path);
    }
}

int mc_qerr_float(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, int type, const void *stored,
                  mc_error *err)
{
    if (type != MC_T_F32 && type != MC_T_F16 && type != MC_T_BF16)
        return mc_error_set(err, MC_ERR_ARG, "qerr: stored type %s is not f16, bf16 or f32", mc_type_name(type));
    const int path = mc_qerr_vector_path();
    for (uint64_t r = 0; r < nrows; r++)
        for (int checked = 0; checked < 2; checked++) {
            lanes L;
            lanes_zero(&L);
            row_float(&L, x + r * ncols, ncols, type, stored, r * ncols, path, checked);
            if (!lanes_commit(q, &L, ncols, checked)) break;
        }
    return 0;
}

void mc_qerr_values(mc_qerr *q, const float *x, const float *y, uint64_t nrows, uint64_t ncols)
{
    mc_error e;
    (void)mc_qerr_float(q, x, nrows, ncols, MC_T_F32, y, &e); /* f32 is always accepted */
}

void mc_qerr_stats_get(const mc_qerr *q, mc_qerr_stats *s)
{
    memset(s, 0, sizeof *s);
    s->sum_sq_err = mc_xsum_value(&q->err);
    s->sum_sq_ref = mc_xsum_value(&q->ref);
    s->max_abs = q->max_abs;
    s->count = q->count;
    s->nonfinite = q->nonfinite;
    s->exact = s->sum_sq_err == 0.0 && q->nonfinite == 0;
    if (s->exact) {
        s->rel_rms = 0.0;
        s->snr_db = INFINITY;
    } else if (s->sum_sq_ref > 0.0 && s->sum_sq_err > 0.0) {
        s->defined = 1;
        s->rel_rms = sqrt(s->sum_sq_err / s->sum_sq_ref);
        s->snr_db = 10.0 * log10(s->sum_sq_ref / s->sum_sq_err);
    }
}
