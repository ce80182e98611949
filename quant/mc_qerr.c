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

/* ---- per-row lanes ---- */

typedef struct lanes {
    double e[8], r[8], m[8];
    uint64_t bad;
} lanes;

static inline void lanes_zero(lanes *L)
{
    memset(L, 0, sizeof *L);
}

/* 8 values: element k into lane k. `checked`: leave out (and count) the
 * non-finite ones (the slow path, only for a row whose sums overflowed). */
static inline void acc8(lanes *L, const float *y, const float *x, int checked)
{
    for (int k = 0; k < 8; k++) {
        double d = (double)y[k] - (double)x[k];
        double xv = (double)x[k];
        double dd = d * d, xx = xv * xv;
        if (checked && !(isfinite(dd) && isfinite(xx))) {
            L->bad++;
            continue;
        }
        double a = fabs(d);
        L->e[k] += dd;
        L->r[k] += xx;
        L->m[k] = a > L->m[k] ? a : L->m[k];
    }
}

static inline double tree8(const double *v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Add one row's lanes; returns 0, or 1 when its sums are not finite (the
 * caller redoes the row checked). */
static int lanes_commit(mc_qerr *q, const lanes *L, uint64_t n, int checked)
{
    double e = tree8(L->e), r = tree8(L->r);
    if (!checked && !(isfinite(e) && isfinite(r))) return 1;
    mc_xsum_add(&q->err, e);
    mc_xsum_add(&q->ref, r);
    for (int k = 0; k < 8; k++)
        if (L->m[k] > q->max_abs) q->max_abs = L->m[k];
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

/* The 8 codes of elements i..i+7 (i a multiple of 8) of a packed row: they
 * are the 8*bits stream bits from i*bits, a whole number of bytes that lie
 * within two words. */
static inline void codes8(const uint32_t *row, uint64_t i, int bits, uint32_t *q)
{
    uint64_t start = i * (uint64_t)bits;
    uint64_t w = start >> 5;
    unsigned sh = (unsigned)(start & 31u);
    uint64_t v = row[w];
    if (sh + 8u * (unsigned)bits > 32u) v |= (uint64_t)row[w + 1] << 32;
    v >>= sh;
    uint32_t mask = (1u << bits) - 1u;
    for (int k = 0; k < 8; k++) q[k] = (uint32_t)(v >> (k * bits)) & mask;
}

static void row_affine(lanes *L, const float *x, uint64_t ncols, const mc_affine *p, const uint32_t *row,
                       const void *scales, const void *biases, uint64_t g0, int checked)
{
    uint64_t gs = (uint64_t)p->group_size, ng = ncols / gs;
    for (uint64_t g = 0; g < ng; g++) {
        float s = mc_quant_scale_get(scales, g0 + g, p->scale_type);
        float b = mc_quant_scale_get(biases, g0 + g, p->scale_type);
        for (uint64_t j = 0; j < gs; j += 8) {
            uint64_t i = g * gs + j;
            uint32_t q[8];
            float y[8];
            codes8(row, i, p->bits, q);
            for (int k = 0; k < 8; k++) {
                float t = (float)q[k] * s; /* two roundings, never fused (-ffp-contract=off) */
                y[k] = t + b;
            }
            acc8(L, y, x + i, checked);
        }
    }
}

int mc_qerr_affine(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                   const uint32_t *wq, const void *scales, const void *biases, mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    if (ncols % 8) return mc_error_set(err, MC_ERR_ARG, "qerr: %llu columns is not a multiple of 8", (unsigned long long)ncols);
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

/* ---- float ---- */

static inline void load8(const void *stored, int type, uint64_t i, float *y)
{
    const unsigned char *b = stored;
    if (type == MC_T_F32) {
        memcpy(y, b + i * 4, 32);
        return;
    }
    uint16_t h[8];
    memcpy(h, b + i * 2, 16);
    if (type == MC_T_F16)
        for (int k = 0; k < 8; k++) y[k] = mc_f16_to_f32(h[k]);
    else
        for (int k = 0; k < 8; k++) y[k] = mc_bf16_to_f32(h[k]);
}

static inline void load1(const void *stored, int type, uint64_t i, float *y)
{
    const unsigned char *b = stored;
    if (type == MC_T_F32) {
        memcpy(y, b + i * 4, 4);
        return;
    }
    uint16_t h;
    memcpy(&h, b + i * 2, 2);
    *y = type == MC_T_F16 ? mc_f16_to_f32(h) : mc_bf16_to_f32(h);
}

/* A row of any length: 8 at a time, the tail padded with y = x = 0 (adds 0). */
static void row_float(lanes *L, const float *x, uint64_t ncols, int type, const void *stored, uint64_t i0,
                      int checked)
{
    uint64_t j = 0;
    for (; j + 8 <= ncols; j += 8) {
        float y[8];
        load8(stored, type, i0 + j, y);
        acc8(L, y, x + j, checked);
    }
    if (j < ncols) {
        float y[8] = { 0 }, xt[8] = { 0 };
        for (uint64_t k = 0; j + k < ncols; k++) {
            load1(stored, type, i0 + j + k, &y[k]);
            xt[k] = x[j + k];
        }
        acc8(L, y, xt, checked);
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
