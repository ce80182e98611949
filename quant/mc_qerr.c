#include "mc_qerr.h"

#include <math.h>
#include <string.h>

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

void mc_xsum_add(mc_xsum *s, double v)
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
    uint64_t hi = sh ? m >> (64 - sh) : 0;            /* bits 64.. */
    s->d[li] += lo & 0xffffffffu;
    s->d[li + 1] += lo >> 32;
    if (hi) s->d[li + 2] += hi;
    if (++s->adds >= (UINT64_C(1) << 31)) xsum_carry(s);
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
 * and x*x in float32 from zero, then adds that to the row's double lane; the
 * largest |d| is kept per lane in float32. d = fl32(y - x). The plain C
 * loop (the reference) and the vector loop (GCC/Clang generic vectors:
 * SSE2 on x86, NEON on ARM) do the same float32 operations lane by lane in
 * the same order (no fused multiply-add: -ffp-contract=off), so they give
 * the same bits; mc_qerr_set_scalar(1) makes every call take the plain C
 * loop (tests compare the two). */

#if (defined(__GNUC__) || defined(__clang__)) && !defined(MC_QERR_SCALAR)
#define MC_QERR_VEC 1
#if defined(__x86_64__)
#define MC_QERR_AVX2 1
#include <immintrin.h>
#include <stdatomic.h>
#endif
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MC_QERR_INLINE __attribute__((always_inline)) inline
#else
#define MC_QERR_INLINE inline
#endif

static int g_scalar; /* mc_qerr_set_scalar: 0 any loop, 1 plain C, 2 no AVX2 */

void mc_qerr_set_scalar(int on)
{
    g_scalar = on == 1 || on == 2 ? on : 0;
}

#ifdef MC_QERR_AVX2
static int have_avx2(void);
#endif

int mc_qerr_vector_path(void)
{
#ifdef MC_QERR_AVX2
    if (g_scalar == 0 && have_avx2()) return 2;
#endif
#ifdef MC_QERR_VEC
    return g_scalar != 1;
#else
    return 0;
#endif
}

#define QE_LANES 16
#define QE_BLOCK 128 /* values per float32 block sum */

typedef struct lanes {
    double e[QE_LANES], r[QE_LANES];
    float m[QE_LANES];
    uint64_t bad;
} lanes;

static MC_QERR_INLINE void lanes_zero(lanes *L)
{
    memset(L, 0, sizeof *L);
}

/* n values (a multiple of 16, at most QE_BLOCK) of y against x: one block. */
static MC_QERR_INLINE void acc_block(lanes *L, const float *restrict y, const float *restrict x, size_t n)
{
    float E[QE_LANES], R[QE_LANES], Mx[QE_LANES];
#ifdef MC_QERR_VEC
    if (g_scalar != 1) {
        /* four 4-lane vectors: lanes 0-3, 4-7, 8-11, 12-15 (SSE2 / NEON) */
        v4f e[4] = { { 0 } }, r[4] = { { 0 } }, m[4];
        const v4i absmask = { 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff };
        memcpy(m, L->m, sizeof m);
        for (size_t j = 0; j < n; j += QE_LANES)
            for (int v = 0; v < 4; v++) {
                v4f xv, yv;
                memcpy(&xv, x + j + 4 * v, 16);
                memcpy(&yv, y + j + 4 * v, 16);
                v4f d = yv - xv;
                v4f dd = d * d, xx = xv * xv;
                e[v] = e[v] + dd;
                r[v] = r[v] + xx;
                v4f a = (v4f)((v4i)d & absmask);
                v4i k = a > m[v];
                m[v] = (v4f)((k & (v4i)a) | (~k & (v4i)m[v]));
            }
        memcpy(E, e, sizeof E);
        memcpy(R, r, sizeof R);
        memcpy(Mx, m, sizeof Mx);
    } else
#endif
    {
        for (int l = 0; l < QE_LANES; l++) {
            E[l] = 0.0f;
            R[l] = 0.0f;
            Mx[l] = L->m[l];
        }
        for (size_t j = 0; j < n; j += QE_LANES)
            for (int l = 0; l < QE_LANES; l++) {
                float d = y[j + l] - x[j + l];
                float dd = d * d, xx = x[j + l] * x[j + l];
                E[l] = E[l] + dd;
                R[l] = R[l] + xx;
                float a = fabsf(d);
                Mx[l] = a > Mx[l] ? a : Mx[l];
            }
    }
    for (int l = 0; l < QE_LANES; l++) {
        L->e[l] += (double)E[l];
        L->r[l] += (double)R[l];
        L->m[l] = Mx[l];
    }
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

static MC_QERR_INLINE double tree8(const double *v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Add one row's lanes; returns 0, or 1 when its sums are not finite (the
 * caller redoes the row checked). */
static int lanes_commit(mc_qerr *q, const lanes *L, uint64_t n, int checked)
{
    double e = tree8(L->e) + tree8(L->e + 8), r = tree8(L->r) + tree8(L->r + 8);
    if (!checked && !(isfinite(e) && isfinite(r))) return 1;
    mc_xsum_add(&q->err, e);
    mc_xsum_add(&q->ref, r);
    for (int k = 0; k < QE_LANES; k++)
        if ((double)L->m[k] > q->max_abs) q->max_abs = (double)L->m[k];
    q->count += n - L->bad;
    q->nonfinite += L->bad;
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

/* ---- affine ---- */


static MC_QERR_INLINE void deq_group(const uint8_t *restrict q, int gs, float s, float b, float *restrict y)
{
    for (int j = 0; j < gs; j++) {
        float t = (float)q[j] * s; /* two roundings, never fused (-ffp-contract=off) */
        y[j] = t + b;
    }
}

#ifdef MC_QERR_AVX2
/* The same lanes with AVX2 (8 lanes in one register), chosen at run time
 * where the processor has it; no FMA (two roundings, as the plain loop).
 * Codes straight from the words for 2, 4 and 8 bits (a variable shift per
 * lane), through unpacked bytes for 3, 5 and 6. */
/* One row, bits a constant in each instance (no branch per step): lanes
 * 0-7 and 8-15 in two registers, blocks of QE_BLOCK values (whole groups). */
__attribute__((target("avx2"), always_inline)) static inline __m256i
avx2_codes(const uint32_t *w, const uint8_t *q, int j, const int bits)
{
    if (bits == 4)
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w[j / 8]),
                                                  _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                _mm256_set1_epi32(15));
    if (bits == 8) {
        const int w0 = (int)w[j / 4], w1 = (int)w[j / 4 + 1];
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_setr_epi32(w0, w0, w0, w0, w1, w1, w1, w1),
                                                  _mm256_setr_epi32(0, 8, 16, 24, 0, 8, 16, 24)),
                                _mm256_set1_epi32(255));
    }
    if (bits == 2) {
        const __m256i sh = (j & 8) ? _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30)
                                   : _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w[j / 16]), sh), _mm256_set1_epi32(3));
    }
    int64_t v8;
    memcpy(&v8, q + j, 8);
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v8));
}

/* The accumulators of one run: lanes 0-7 and 8-15 in two registers each,
 * float sums of the current block (e, r), double sums across blocks (ed,
 * rd), the running max |y - x| (m). */
typedef struct avx2_acc {
    __m256 m0, m1, e0, e1, r0, r1;
    __m256d ed[4], rd[4];
} avx2_acc;

__attribute__((target("avx2"), always_inline)) static inline void avx2_acc_load(avx2_acc *a, const lanes *L)
{
    a->m0 = _mm256_loadu_ps(L->m);
    a->m1 = _mm256_loadu_ps(L->m + 8);
    a->e0 = a->e1 = a->r0 = a->r1 = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        a->ed[k] = _mm256_loadu_pd(L->e + 4 * k);
        a->rd[k] = _mm256_loadu_pd(L->r + 4 * k);
    }
}

/* 16 values: y0, y1 the stored ones, x0, x1 the source's. */
__attribute__((target("avx2"), always_inline)) static inline void avx2_acc_step(avx2_acc *a, __m256 y0, __m256 y1,
                                                                                 __m256 x0, __m256 x1)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 d0 = _mm256_sub_ps(y0, x0), d1 = _mm256_sub_ps(y1, x1);
    a->e0 = _mm256_add_ps(a->e0, _mm256_mul_ps(d0, d0));
    a->e1 = _mm256_add_ps(a->e1, _mm256_mul_ps(d1, d1));
    a->r0 = _mm256_add_ps(a->r0, _mm256_mul_ps(x0, x0));
    a->r1 = _mm256_add_ps(a->r1, _mm256_mul_ps(x1, x1));
    a->m0 = _mm256_max_ps(_mm256_and_ps(d0, absmask), a->m0); /* a > m ? a : m */
    a->m1 = _mm256_max_ps(_mm256_and_ps(d1, absmask), a->m1);
}

/* The end of a block: its float sums into the double ones. */
__attribute__((target("avx2"), always_inline)) static inline void avx2_acc_flush(avx2_acc *a)
{
    a->ed[0] = _mm256_add_pd(a->ed[0], _mm256_cvtps_pd(_mm256_castps256_ps128(a->e0)));
    a->ed[1] = _mm256_add_pd(a->ed[1], _mm256_cvtps_pd(_mm256_extractf128_ps(a->e0, 1)));
    a->ed[2] = _mm256_add_pd(a->ed[2], _mm256_cvtps_pd(_mm256_castps256_ps128(a->e1)));
    a->ed[3] = _mm256_add_pd(a->ed[3], _mm256_cvtps_pd(_mm256_extractf128_ps(a->e1, 1)));
    a->rd[0] = _mm256_add_pd(a->rd[0], _mm256_cvtps_pd(_mm256_castps256_ps128(a->r0)));
    a->rd[1] = _mm256_add_pd(a->rd[1], _mm256_cvtps_pd(_mm256_extractf128_ps(a->r0, 1)));
    a->rd[2] = _mm256_add_pd(a->rd[2], _mm256_cvtps_pd(_mm256_castps256_ps128(a->r1)));
    a->rd[3] = _mm256_add_pd(a->rd[3], _mm256_cvtps_pd(_mm256_extractf128_ps(a->r1, 1)));
    a->e0 = a->e1 = a->r0 = a->r1 = _mm256_setzero_ps();
}

__attribute__((target("avx2"), always_inline)) static inline void avx2_acc_store(const avx2_acc *a, lanes *L)
{
    _mm256_storeu_ps(L->m, a->m0);
    _mm256_storeu_ps(L->m + 8, a->m1);
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_pd(L->e + 4 * k, a->ed[k]);
        _mm256_storeu_pd(L->r + 4 * k, a->rd[k]);
    }
}

__attribute__((target("avx2"), always_inline)) static inline void
avx2_row(lanes *L, const float *x, uint64_t ncols, const mc_affine *p, const uint32_t *row, const void *scales,
         const void *biases, uint64_t g0, const int bits)
{
    const int gs = p->group_size;
    const uint64_t ng = ncols / (uint64_t)gs, gw = (uint64_t)gs * (uint64_t)bits / 32u;
    const uint64_t per = QE_BLOCK / (uint64_t)gs; /* groups per block */
    avx2_acc a;
    avx2_acc_load(&a, L);
    uint8_t q[128];
    for (uint64_t g = 0; g < ng; g += per) {
        uint64_t nb = ng - g < per ? ng - g : per;
        for (uint64_t k = 0; k < nb; k++) {
            const uint32_t *w = row + (g + k) * gw;
            const float *xg = x + (g + k) * (uint64_t)gs;
            const __m256 vs = _mm256_set1_ps(mc_quant_scale_get(scales, g0 + g + k, p->scale_type));
            const __m256 vb = _mm256_set1_ps(mc_quant_scale_get(biases, g0 + g + k, p->scale_type));
            if (bits == 3 || bits == 5 || bits == 6) mc_quant_unpack_codes(w, (uint64_t)gs, bits, q);
            for (int j = 0; j < gs; j += 16) {
                __m256 y0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(avx2_codes(w, q, j, bits)), vs), vb);
                __m256 y1 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(avx2_codes(w, q, j + 8, bits)), vs), vb);
                avx2_acc_step(&a, y0, y1, _mm256_loadu_ps(xg + j), _mm256_loadu_ps(xg + j + 8));
            }
        }
        avx2_acc_flush(&a);
    }
    avx2_acc_store(&a, L);
}

__attribute__((target("avx2"))) static void row_affine_avx2(lanes *L, const float *x, uint64_t ncols,
                                                             const mc_affine *p, const uint32_t *row,
                                                             const void *scales, const void *biases, uint64_t g0)
{
    switch (p->bits) {
    case 2: avx2_row(L, x, ncols, p, row, scales, biases, g0, 2); break;
    case 3: avx2_row(L, x, ncols, p, row, scales, biases, g0, 3); break;
    case 4: avx2_row(L, x, ncols, p, row, scales, biases, g0, 4); break;
    case 5: avx2_row(L, x, ncols, p, row, scales, biases, g0, 5); break;
    case 6: avx2_row(L, x, ncols, p, row, scales, biases, g0, 6); break;
    default: avx2_row(L, x, ncols, p, row, scales, biases, g0, 8); break;
    }
}

/* A run of n groups (whole blocks: the run starts on a block boundary of
 * its row) from codes held one per byte: the same operations as avx2_row
 * (its 3/5/6-bit form), without unpacking the words. */
__attribute__((target("avx2"))) static void avx2_bytes(lanes *L, const float *x, int n, const mc_affine *p,
                                                        const uint8_t *codes, const void *scales,
                                                        const void *biases, uint64_t gi0)
{
    const int gs = p->group_size, per = QE_BLOCK / gs;
    avx2_acc a;
    avx2_acc_load(&a, L);
    for (int g = 0; g < n; g += per) {
        int nb = n - g < per ? n - g : per;
        for (int k = 0; k < nb; k++) {
            const uint8_t *q = codes + (size_t)(g + k) * (size_t)gs;
            const float *xg = x + (size_t)(g + k) * (size_t)gs;
            const __m256 vs = _mm256_set1_ps(mc_quant_scale_get(scales, gi0 + (uint64_t)(g + k), p->scale_type));
            const __m256 vb = _mm256_set1_ps(mc_quant_scale_get(biases, gi0 + (uint64_t)(g + k), p->scale_type));
            for (int j = 0; j < gs; j += 16) {
                __m128i c16 = _mm_loadu_si128((const __m128i *)(const void *)(q + j));
                __m256 y0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c16)), vs), vb);
                __m256 y1 = _mm256_add_ps(
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c16, 8))), vs), vb);
                avx2_acc_step(&a, y0, y1, _mm256_loadu_ps(xg + j), _mm256_loadu_ps(xg + j + 8));
            }
        }
        avx2_acc_flush(&a);
    }
    avx2_acc_store(&a, L);
}

static int have_avx2(void)
{
    static _Atomic int state; /* 0 unknown, 1 no, 2 yes */
    int v = atomic_load_explicit(&state, memory_order_relaxed);
    if (!v) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") ? 2 : 1;
        atomic_store_explicit(&state, v, memory_order_relaxed);
    }
    return v == 2;
}
#endif

static void row_affine(lanes *L, const float *x, uint64_t ncols, const mc_affine *p, const uint32_t *row,
                       const void *scales, const void *biases, uint64_t g0, int checked)
{
#ifdef MC_QERR_AVX2
    if (!checked && g_scalar == 0 && have_avx2()) {
        row_affine_avx2(L, x, ncols, p, row, scales, biases, g0);
        return;
    }
#endif
    const int gs = p->group_size, bits = p->bits;
    const uint64_t ng = ncols / (uint64_t)gs, gw = (uint64_t)gs * (uint64_t)bits / 32u;
    const uint64_t per = QE_BLOCK / (uint64_t)gs; /* groups per block */
    uint8_t q[QE_BLOCK];
    float y[QE_BLOCK];
    for (uint64_t g = 0; g < ng; g += per) {
        uint64_t n = ng - g < per ? ng - g : per;
        mc_quant_unpack_codes(row + g * gw, n * (uint64_t)gs, bits, q);
        for (uint64_t k = 0; k < n; k++) {
            float s = mc_quant_scale_get(scales, g0 + g + k, p->scale_type);
            float b = mc_quant_scale_get(biases, g0 + g + k, p->scale_type);
            deq_group(q + k * (uint64_t)gs, gs, s, b, y + k * (uint64_t)gs);
        }
        const float *xb = x + g * (uint64_t)gs;
        size_t nv = (size_t)(n * (uint64_t)gs);
        if (checked) acc_checked(L, y, xb, nv);
        else acc_block(L, y, xb, nv);
    }
}

int mc_qerr_affine(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                   const uint32_t *wq, const void *scales, const void *biases, mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    uint64_t rw = mc_quant_affine_row_words(ncols, p->bits), ng = ncols / (uint64_t)p->group_size;
    for (uint64_t r = 0; r < nrows; r++) {
        lanes L;
        for (int checked = 0; checked < 2; checked++) {
            lanes_zero(&L);
            row_affine(&L, x + r * ncols, ncols, p, wq + r * rw, scales, biases, r * ng, checked);
            if (!lanes_commit(q, &L, ncols, checked)) break;
        }
    }
    return 0;
}

/* ---- affine, measured while quantizing ---- */

typedef struct fused {
    mc_qerr *q;
    const mc_affine *p;
    const float *x;
    const uint32_t *wq;
    const void *scales, *biases;
    uint64_t ncols, ng, rw;
    lanes L;
} fused;

/* A run of groups just quantized (mc_affine_sink): the same blocks, lanes
 * and operations as row_affine, the codes taken from the quantizer's bytes. */
static void fused_run(void *vc, uint64_t row, uint64_t g0, int n, const float *x, const uint8_t *codes, int row_done)
{
    fused *f = (fused *)vc;
    const mc_affine *p = f->p;
    const int gs = p->group_size, per = QE_BLOCK / gs;
    const uint64_t gi0 = row * f->ng + g0;
    if (g0 == 0) lanes_zero(&f->L);
#ifdef MC_QERR_AVX2
    if (g_scalar == 0 && have_avx2())
        avx2_bytes(&f->L, x, n, p, codes, f->scales, f->biases, gi0);
    else
#endif
    {
        float y[QE_BLOCK];
        for (int g = 0; g < n; g += per) {
            int nb = n - g < per ? n - g : per;
            for (int k = 0; k < nb; k++) {
                float s = mc_quant_scale_get(f->scales, gi0 + (uint64_t)(g + k), p->scale_type);
                float b = mc_quant_scale_get(f->biases, gi0 + (uint64_t)(g + k), p->scale_type);
                deq_group(codes + (size_t)(g + k) * (size_t)gs, gs, s, b, y + k * gs);
            }
            acc_block(&f->L, y, x + (size_t)g * (size_t)gs, (size_t)nb * (size_t)gs);
        }
    }
    if (!row_done || !lanes_commit(f->q, &f->L, f->ncols, 0)) return;
    /* sums not finite: the row again, checked, from what was stored */
    lanes_zero(&f->L);
    row_affine(&f->L, f->x + row * f->ncols, f->ncols, p, f->wq + row * f->rw, f->scales, f->biases, row * f->ng, 1);
    (void)lanes_commit(f->q, &f->L, f->ncols, 1);
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
    return mc_quant_affine_quantize_sink(x, nrows, ncols, p, wq, scales, biases, fused_run, &f, err);
}

/* ---- float ---- */

static MC_QERR_INLINE void decode(const void *stored, int type, uint64_t i, size_t n, float *restrict y)
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

/* A row of any length in blocks of 128, the tail padded with y = x = 0 (adds 0). */
static void row_float(lanes *L, const float *x, uint64_t ncols, int type, const void *stored, uint64_t i0,
                      int checked)
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
        else acc_block(L, y, xb, n8);
    }
}

int mc_qerr_float(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, int type, const void *stored,
                  mc_error *err)
{
    if (type != MC_T_F32 && type != MC_T_F16 && type != MC_T_BF16)
        return mc_error_set(err, MC_ERR_ARG, "qerr: stored type %s is not f16, bf16 or f32", mc_type_name(type));
    for (uint64_t r = 0; r < nrows; r++)
        for (int checked = 0; checked < 2; checked++) {
            lanes L;
            lanes_zero(&L);
            row_float(&L, x + r * ncols, ncols, type, stored, r * ncols, checked);
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
