/* quant/mc_qerr: the error kernel against an independent computation, its
 * exact sums, and its determinism over chunking and merge order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mc_float.h"
#include "mc_mlx.h"
#include "mc_qerr.h"
#include "mc_test.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Independent: the stored code of element i read byte by byte from the
 * little-endian stream (not the kernel's word logic). */
static unsigned ref_code(const uint32_t *row, uint64_t i, int bits)
{
    unsigned v = 0;
    for (int b = 0; b < bits; b++) {
        uint64_t bit = i * (uint64_t)bits + (uint64_t)b;
        uint32_t w = row[bit / 32];
        v |= ((w >> (bit % 32)) & 1u) << b;
    }
    return v;
}

static float ref_scale(const void *arr, uint64_t i, int t)
{
    const unsigned char *p = arr;
    if (t == MC_T_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
    if (t == MC_T_BF16) return mc_f32_from_bits((uint32_t)h << 16);
    /* f16 by hand */
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static void test_xsum(void)
{
    enum { N = 5000 };
    static double v[N];
    for (int i = 0; i < N; i++) v[i] = ldexp(urand(), (int)(urand() * 60) - 30);
    v[7] = 0.0;
    v[8] = 4.9e-324;  /* smallest subnormal */
    v[9] = 1e300;
    v[10] = 2.2250738585072014e-308;
    mc_xsum a, b, c, d;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    long double ref = 0;
    for (int i = 0; i < N; i++) {
        mc_xsum_add(&a, v[i]);
        mc_xsum_add(&b, v[N - 1 - i]);
        ref += v[i];
    }
    /* split in three and merged in another order */
    for (int i = 0; i < N; i++) mc_xsum_add(i % 3 == 0 ? &c : &d, v[i]);
    mc_xsum e;
    memset(&e, 0, sizeof e);
    mc_xsum_merge(&e, &d);
    mc_xsum_merge(&e, &c);
    double va = mc_xsum_value(&a), vb = mc_xsum_value(&b), ve = mc_xsum_value(&e);
    CHECK(same_bits(va, vb));
    CHECK(same_bits(va, ve));
    CHECKF(fabsl((long double)va - ref) <= ref * 1e-15L, "%.17g vs %.17Lg", va, ref);
    /* exactness where a double sum is not: 1 + 2^-60 * 2^10 times = 1 + 2^-50 */
    mc_xsum x;
    memset(&x, 0, sizeof x);
    mc_xsum_add(&x, 1.0);
    double naive = 1.0;
    for (int i = 0; i < 1024; i++) {
        mc_xsum_add(&x, ldexp(1.0, -60));
        naive += ldexp(1.0, -60);
    }
    CHECK(naive == 1.0);
    CHECK(mc_xsum_value(&x) == 1.0 + ldexp(1.0, -50));
    /* the smallest subnormal is kept */
    memset(&x, 0, sizeof x);
    mc_xsum_add(&x, 4.9e-324);
    mc_xsum_add(&x, 4.9e-324);
    CHECK(mc_xsum_value(&x) == 2 * 4.9e-324);
    /* negatives, inf and NaN are ignored */
    mc_xsum_add(&x, -1.0);
    mc_xsum_add(&x, INFINITY);
    mc_xsum_add(&x, NAN);
    CHECK(mc_xsum_value(&x) == 2 * 4.9e-324);
}

typedef struct ref_fig { long double err, ref; double max; } ref_fig;

static ref_fig ref_affine(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p, const uint32_t *wq,
                          const void *sc, const void *bi)
{
    ref_fig f = { 0, 0, 0 };
    uint64_t rw = ncols * (uint64_t)p->bits / 32, ng = ncols / (uint64_t)p->group_size;
    for (uint64_t r = 0; r < nrows; r++)
        for (uint64_t i = 0; i < ncols; i++) {
            uint64_t g = r * ng + i / (uint64_t)p->group_size;
            float s = ref_scale(sc, g, p->scale_type), b = ref_scale(bi, g, p->scale_type);
            /* C's fmaf: q * s + b rounded once, as IEEE 754 defines it */
            float y = fmaf((float)ref_code(wq + r * rw, i, p->bits), s, b);
            long double d = (long double)y - (long double)x[r * ncols + i];
            f.err += d * d;
            f.ref += (long double)x[r * ncols + i] * x[r * ncols + i];
            if (fabsl(d) > f.max) f.max = (double)fabsl(d);
        }
    return f;
}

/* An affine row's sum of squares as docs/QUANT.md defines it: per group 8
 * float32 lanes (value j to lane j % 8, x*x rounded then added in order),
 * the lanes added 0 to 7 left to right (the quantizer's min/max pass sums
 * them so), the groups' sums in double added in row order. */
static double ref_row_sumsq(const float *x, uint64_t ncols, int gs)
{
    double r = 0.0;
    for (uint64_t g = 0; g < ncols / (uint64_t)gs; g++) {
        const float *xg = x + g * (uint64_t)gs;
        float lane[8];
        for (int l = 0; l < 8; l++) lane[l] = xg[l] * xg[l];
        for (int j = 8; j < gs; j += 8)
            for (int l = 0; l < 8; l++) lane[l] = lane[l] + xg[j + l] * xg[j + l];
        float c = lane[0];
        for (int l = 1; l < 8; l++) c = c + lane[l];
        r += (double)c;
    }
    return r;
}

/* The kernel sums float32 squares per group (at most 16 per lane) and rounds
 * y - x to float32: within 4e-6 of the exact sums; max |d| within one
 * float32 rounding. */
#define TOL 4e-6L
static void check_close(const mc_qerr_stats *s, const ref_fig *f, const char *what)
{
    CHECKF(fabsl((long double)s->sum_sq_err - f->err) <= f->err * TOL, "%s: err %.17g vs %.17Lg", what,
           s->sum_sq_err, f->err);
    CHECKF(fabsl((long double)s->sum_sq_ref - f->ref) <= f->ref * TOL, "%s: ref %.17g vs %.17Lg", what,
           s->sum_sq_ref, f->ref);
    CHECKF(fabs(s->max_abs - f->max) <= f->max * 1.2e-7, "%s: max %.17g vs %.17g", what, s->max_abs, f->max);
}

/* The plain C loop and the vector loop: the same bits. */
static void check_paths(const mc_qerr_stats *vec, mc_qerr *q, const char *what)
{
    mc_qerr_stats s;
    mc_qerr_stats_get(q, &s);
    CHECKF(memcmp(vec, &s, sizeof s) == 0, "%s: scalar and vector paths differ: err %.17g / %.17g, max %.17g / %.17g",
           what, vec->sum_sq_err, s.sum_sq_err, vec->max_abs, s.max_abs);
}

/* Quantized and measured in one pass (mc_qerr_affine_quantize), with the
 * loops path 0 (any), 1 (plain C) or 2 (not AVX-512) behind the AVX-512
 * code pass where there is one, or 3: any loop behind the compiled pass. */
static int fused_on_path(mc_qerr *q, int path, const float *x, uint64_t rows, uint64_t ncols, const mc_affine *p,
                         uint32_t *wq, void *sc, void *bi, mc_error *err)
{
    mc_qerr_set_scalar(path % 3);
    mc_quant_affine_limit(path == 3);
    mc_qerr_init(q);
    int rc = mc_qerr_affine_quantize(q, x, rows, ncols, p, wq, sc, bi, err);
    mc_qerr_set_scalar(0);
    mc_quant_affine_limit(0);
    return rc;
}

static void test_affine(void)
{
    static const int bits[] = { 2, 3, 4, 5, 6, 8 }, gss[] = { 32, 64, 128 },
                     sts[] = { MC_T_F16, MC_T_BF16, MC_T_F32 };
    /* 4480 columns: several of the quantizer's 32-group runs per row (and a
     * shorter last one) for every group size; 896: each row in one run (the
     * AVX-512 loop's whole-row form), 7 blocks of 128 (pairs and a single) */
    const uint64_t nrows = 7, maxcols = 4480;
    uint64_t ncols = maxcols;
    float *x = malloc(nrows * maxcols * sizeof *x);
    uint32_t *wq = malloc(nrows * maxcols), *wq2 = malloc(nrows * maxcols);
    unsigned char *sc = malloc(nrows * maxcols / 32 * 4), *bi = malloc(nrows * maxcols / 32 * 4);
    unsigned char *sc2 = malloc(nrows * maxcols / 32 * 4), *bi2 = malloc(nrows * maxcols / 32 * 4);
    for (int nc = 0; nc < 2; nc++)
    for (size_t b = 0; b < 6; b++)
        for (size_t g = 0; g < 3; g++)
            for (size_t t = 0; t < 3; t++) {
                mc_affine p = { bits[b], gss[g], sts[t] };
                mc_error err = { MC_OK, "" };
                ncols = nc ? 896 : maxcols;
                for (uint64_t i = 0; i < nrows * ncols; i++)
                    x[i] = (float)((urand() - 0.5) * (i % 97 == 0 ? 8.0 : 0.1) * (1 + (double)(i / ncols)));
                CHECK(mc_quant_affine_quantize(x, nrows, ncols, &p, wq, sc, bi, &err) == 0);
                mc_qerr q, q2, q3;
                mc_qerr_init(&q);
                CHECK(mc_qerr_affine(&q, x, nrows, ncols, &p, wq, sc, bi, &err) == 0);
                mc_qerr_stats s;
                mc_qerr_stats_get(&q, &s);
                ref_fig f = ref_affine(x, nrows, ncols, &p, wq, sc, bi);
                char what[96];
                snprintf(what, sizeof what, "bits %d gs %d type %d cols %llu", p.bits, p.group_size, p.scale_type,
                         (unsigned long long)ncols);
                check_close(&s, &f, what);
                CHECK_EQ_U64(s.count, nrows * ncols);
                CHECK(!s.exact && s.defined);
                CHECK(s.rel_rms > 0 && s.rel_rms < (p.bits >= 4 ? 0.2 : 0.8));
                CHECK(fabs(s.snr_db + 20 * log10(s.rel_rms)) < 1e-9);
                /* chunked by 1, 2 and 4 rows and merged in reverse: the same bits */
                mc_qerr_init(&q2);
                uint64_t rw = ncols * (uint64_t)p.bits / 32, ng = ncols / (uint64_t)p.group_size;
                size_t sb = p.scale_type == MC_T_F32 ? 4 : 2;
                for (uint64_t r0 = nrows; r0 > 0;) {
                    uint64_t n = r0 >= 2 ? 2 : 1, r = r0 - n;
                    mc_qerr_init(&q3);
                    CHECK(mc_qerr_affine(&q3, x + r * ncols, n, ncols, &p, wq + r * rw, sc + r * ng * sb,
                                         bi + r * ng * sb, &err) == 0);
                    mc_qerr_merge(&q2, &q3);
                    r0 = r;
                }
                mc_qerr_stats s2;
                mc_qerr_stats_get(&q2, &s2);
                CHECK(same_bits(s.sum_sq_err, s2.sum_sq_err) && same_bits(s.sum_sq_ref, s2.sum_sq_ref) &&
                      same_bits(s.max_abs, s2.max_abs) && s.count == s2.count);
                /* the reference loop, and AVX2 where AVX-512 would be taken */
                for (int path = 1; path <= 2; path++) {
                    mc_qerr_set_scalar(path);
                    mc_qerr_init(&q3);
                    CHECK(mc_qerr_affine(&q3, x, nrows, ncols, &p, wq, sc, bi, &err) == 0);
                    mc_qerr_set_scalar(0);
                    check_paths(&s, &q3, what);
                }
                /* quantized and measured in one pass (every path): the same
                 * bytes as the quantizer, the same bits as mc_qerr_affine */
                for (int path = 0; path <= 3; path++) {
                    memset(wq2, 0xa5, nrows * ncols);
                    CHECK(fused_on_path(&q3, path, x, nrows, ncols, &p, wq2, sc2, bi2, &err) == 0);
                    CHECK(memcmp(wq, wq2, nrows * rw * 4) == 0);
                    CHECK(memcmp(sc, sc2, nrows * ng * sb) == 0 && memcmp(bi, bi2, nrows * ng * sb) == 0);
                    check_paths(&s, &q3, what);
                }
            }
    /* rows whose float32 sums overflow (x*x beyond FLT_MAX): redone in
     * double, in the fused pass as in mc_qerr_affine (rows of several runs
     * and of one) */
    for (int nc = 0; nc < 2; nc++) {
        ncols = nc ? 896 : maxcols;
        mc_affine p = { 4, 64, MC_T_F32 };
        mc_error err = { MC_OK, "" };
        for (uint64_t i = 0; i < nrows * ncols; i++)
            x[i] = (float)((urand() - 0.5) * ((i / ncols) == 3 ? 1e20 : 1.0));
        CHECK(mc_quant_affine_quantize(x, nrows, ncols, &p, wq, sc, bi, &err) == 0);
        mc_qerr q, q3;
        mc_qerr_init(&q);
        CHECK(mc_qerr_affine(&q, x, nrows, ncols, &p, wq, sc, bi, &err) == 0);
        mc_qerr_stats s;
        mc_qerr_stats_get(&q, &s);
        CHECK(s.sum_sq_ref > 1e38 && s.count == nrows * ncols);
        for (int path = 0; path <= 3; path++) {
            CHECK(fused_on_path(&q3, path, x, nrows, ncols, &p, wq2, sc2, bi2, &err) == 0);
            check_paths(&s, &q3, "overflowing row");
        }
    }
    /* blocks of 128 of very different sizes (x about 2^(5 (block % 7))):
     * the double sums of a row's lanes have long mantissas and round when
     * added, so a row measured alone has the plain C loop's bits only with
     * the same additions in the same order (with the data above nearly
     * every sum is exact and most orders pass). 896 columns: 35 rows in the
     * whole-row form; 4480: 7 rows through the lanes. */
    for (int nc = 0; nc < 2; nc++)
        for (int b6 = 0; b6 < 2; b6++) {
            ncols = nc ? 896 : maxcols;
            const uint64_t rows = nrows * maxcols / ncols;
            mc_affine p = { b6 ? 6 : 4, 64, MC_T_BF16 };
            mc_error err = { MC_OK, "" };
            for (uint64_t i = 0; i < rows * ncols; i++)
                x[i] = (float)((urand() - 0.5) * ldexp(1.0, 5 * (int)((i % ncols) / 128 % 7)));
            CHECK(mc_quant_affine_quantize(x, rows, ncols, &p, wq, sc, bi, &err) == 0);
            const uint64_t rw = ncols * (uint64_t)p.bits / 32, ng = ncols / (uint64_t)p.group_size;
            for (uint64_t r = 0; r < rows; r++) {
                const float *xr = x + r * ncols;
                const uint32_t *wr = wq + r * rw;
                const unsigned char *sr = sc + r * ng * 2, *br = bi + r * ng * 2;
                mc_qerr q, q3;
                mc_qerr_set_scalar(1);
                mc_qerr_init(&q);
                CHECK(mc_qerr_affine(&q, xr, 1, ncols, &p, wr, sr, br, &err) == 0);
                mc_qerr_set_scalar(0);
                mc_qerr_stats s;
                mc_qerr_stats_get(&q, &s);
                CHECK(s.defined && s.count == ncols);
                CHECKF(same_bits(s.sum_sq_ref, ref_row_sumsq(xr, ncols, p.group_size)), "row %llu: ref %.17g vs %.17g",
                       (unsigned long long)r, s.sum_sq_ref, ref_row_sumsq(xr, ncols, p.group_size));
                for (int path = 0; path <= 3; path++) {
                    CHECK(fused_on_path(&q3, path, xr, 1, ncols, &p, wq2, sc2, bi2, &err) == 0);
                    check_paths(&s, &q3, "blocks of very different sizes");
                }
                mc_qerr_init(&q3); /* and from the stored row, by the vector loop */
                CHECK(mc_qerr_affine(&q3, xr, 1, ncols, &p, wr, sr, br, &err) == 0);
                check_paths(&s, &q3, "blocks of very different sizes, stored");
            }
        }
    /* a row's group sums of squares about 2^(2k) apart (the first group's
     * x about 2^k, k = 12..15, the rest about 1): with exponents up to 24
     * apart every partial sum of the AVX-512 whole-row form is exact and any
     * order gives the plain loop's bits; past that the partial sums round,
     * and only the additions in order do. 896 columns: 35 rows in the
     * whole-row form, more than the 16 it holds before adding them up. */
    {
        ncols = 896;
        const uint64_t rows = nrows * maxcols / ncols;
        mc_affine p = { 4, 64, MC_T_BF16 };
        mc_error err = { MC_OK, "" };
        for (uint64_t i = 0; i < rows * ncols; i++)
            x[i] = (float)((urand() - 0.5) * ((i % ncols) < 64 ? ldexp(1.0, 12 + (int)(i / ncols) % 4) : 1.0));
        CHECK(mc_quant_affine_quantize(x, rows, ncols, &p, wq, sc, bi, &err) == 0);
        mc_qerr q, q3;
        mc_qerr_set_scalar(1);
        mc_qerr_init(&q);
        CHECK(mc_qerr_affine(&q, x, rows, ncols, &p, wq, sc, bi, &err) == 0);
        mc_qerr_set_scalar(0);
        mc_qerr_stats s;
        mc_qerr_stats_get(&q, &s);
        CHECK(s.defined && s.count == rows * ncols);
        for (int path = 0; path <= 3; path++) {
            CHECK(fused_on_path(&q3, path, x, rows, ncols, &p, wq2, sc2, bi2, &err) == 0);
            check_paths(&s, &q3, "group sums 2^24 to 2^30 apart");
        }
        const uint64_t rw = ncols * (uint64_t)p.bits / 32, ng = ncols / (uint64_t)p.group_size;
        for (uint64_t r = 0; r < rows; r++) { /* and row by row */
            mc_qerr_set_scalar(1);
            mc_qerr_init(&q);
            CHECK(mc_qerr_affine(&q, x + r * ncols, 1, ncols, &p, wq + r * rw, sc + r * ng * 2, bi + r * ng * 2,
                                 &err) == 0);
            mc_qerr_set_scalar(0);
            mc_qerr_stats_get(&q, &s);
            CHECK(fused_on_path(&q3, 0, x + r * ncols, 1, ncols, &p, wq2, sc2, bi2, &err) == 0);
            check_paths(&s, &q3, "group sums 2^24 to 2^30 apart, one row");
        }
    }
    /* bad parameters */
    mc_affine bad = { 7, 64, MC_T_F16 };
    mc_qerr q;
    mc_qerr_init(&q);
    mc_error err = { MC_OK, "" };
    CHECK(mc_qerr_affine(&q, x, 1, ncols, &bad, wq, sc, bi, &err) == MC_ERR_ARG);
    free(x);
    free(wq);
    free(sc);
    free(bi);
    free(wq2);
    free(sc2);
    free(bi2);
}

static void test_float(void)
{
    const uint64_t n = 3, c = 101; /* not a multiple of 8: the tail path */
    float x[303], y32[303];
    uint16_t h[303], bf[303];
    for (uint64_t i = 0; i < n * c; i++) {
        x[i] = (float)((urand() - 0.5) * 10);
        y32[i] = x[i];
        h[i] = mc_f32_to_f16(x[i]);
        bf[i] = mc_f32_to_bf16(x[i]);
    }
    mc_error err = { MC_OK, "" };
    mc_qerr q;
    mc_qerr_stats s;
    /* f32 stored: exact */
    mc_qerr_init(&q);
    CHECK(mc_qerr_float(&q, x, n, c, MC_T_F32, y32, &err) == 0);
    mc_qerr_stats_get(&q, &s);
    CHECK(s.exact && s.sum_sq_err == 0 && s.max_abs == 0 && s.count == n * c && s.sum_sq_ref > 0);
    CHECK(isinf(s.snr_db) && s.rel_rms == 0);
    /* f16 and bf16: against a naive sum */
    for (int t = 0; t < 2; t++) {
        long double e = 0, r = 0;
        double mx = 0;
        for (uint64_t i = 0; i < n * c; i++) {
            float v = t ? mc_bf16_to_f32(bf[i]) : mc_f16_to_f32(h[i]);
            long double d = (long double)v - x[i];
            e += d * d;
            r += (long double)x[i] * x[i];
            if (fabsl(d) > mx) mx = (double)fabsl(d);
        }
        mc_qerr_init(&q);
        CHECK(mc_qerr_float(&q, x, n, c, t ? MC_T_BF16 : MC_T_F16, t ? (void *)bf : (void *)h, &err) == 0);
        mc_qerr_stats_get(&q, &s);
        ref_fig f = { e, r, mx };
        check_close(&s, &f, t ? "bf16" : "f16");
        for (int path = 1; path <= 2; path++) { /* the reference loop; AVX2 where AVX-512 would be taken */
            mc_qerr_set_scalar(path);
            mc_qerr_init(&q);
            CHECK(mc_qerr_float(&q, x, n, c, t ? MC_T_BF16 : MC_T_F16, t ? (void *)bf : (void *)h, &err) == 0);
            mc_qerr_set_scalar(0);
            check_paths(&s, &q, t ? "bf16" : "f16");
        }
        CHECK(!s.exact && s.defined && s.rel_rms < (t ? 4e-3 : 5e-4));
    }
    /* beyond f16: the value is left out and counted */
    x[5] = 1e6f;
    h[5] = mc_f32_to_f16(x[5]);
    mc_qerr_init(&q);
    CHECK(mc_qerr_float(&q, x, n, c, MC_T_F16, h, &err) == 0);
    mc_qerr_stats_get(&q, &s);
    CHECK_EQ_U64(s.nonfinite, 1);
    CHECK_EQ_U64(s.count, n * c - 1);
    CHECK(!s.exact && isfinite(s.sum_sq_err));
    /* an all-zero source stored as non-zero: undefined ratios */
    float z[8] = { 0 }, one[8] = { 0, 0, 1, 0, 0, 0, 0, 0 };
    mc_qerr_init(&q);
    mc_qerr_values(&q, z, one, 1, 8);
    mc_qerr_stats_get(&q, &s);
    CHECK(!s.exact && !s.defined && s.sum_sq_err == 1 && s.sum_sq_ref == 0 && s.max_abs == 1);
    /* all zero both: exact */
    mc_qerr_init(&q);
    mc_qerr_values(&q, z, z, 1, 8);
    mc_qerr_stats_get(&q, &s);
    CHECK(s.exact && s.count == 8);
    CHECK(mc_qerr_float(&q, x, 1, 8, MC_T_U32, h, &err) == MC_ERR_ARG);
}

int main(void)
{
    printf("test_qerr: loop %d (0 plain C, 2 AVX2 + FMA, 3 AVX-512), checked against the plain C loop;\n"
           "  behind quantizer code pass %d (1 as compiled, 3 AVX-512; also checked behind the compiled one)\n",
           mc_qerr_vector_path(), mc_quant_affine_path());
    test_xsum();
    test_affine();
    test_float();
    return mc_test_finish("test_qerr");
}
