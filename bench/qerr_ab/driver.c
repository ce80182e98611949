/* The driver of bench/qerr_ab.sh: two builds of quant/mc_qerr.c (their
 * symbols renamed to A_... and B_...) measuring the same quantization, in
 * alternating order, between two runs of the plain quantizer.
 *
 *   qerr_ab ROWS COLS REPS
 *
 * Quantizes ROWS x COLS f32 (4-bit, group 64, bf16 scales; COLS a multiple
 * of 128) REPS times, each time 10 calls plain, 10 measured by A, 10 by B
 * (B before A in odd repetitions), 10 plain again. Prints, in cycles per 16
 * values at the clock given by MC_GHZ (default 3.57): the plain quantizer's
 * median, the medians of what A and B add to it (with quartiles), the
 * median of B - A per repetition (with quartiles), the minimum of each,
 * and whether A and B gave the same bits. Exit 1 when they did not. */
#include "mc_mlx.h"
#include "mc_qerr.h"
#include "mc_types.h"
#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int A_mc_qerr_affine_quantize(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                              uint32_t *wq, void *scales, void *biases, mc_error *err);
int B_mc_qerr_affine_quantize(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                              uint32_t *wq, void *scales, void *biases, mc_error *err);
void A_mc_qerr_init(mc_qerr *q);
void B_mc_qerr_init(mc_qerr *q);
void A_mc_qerr_stats_get(const mc_qerr *q, mc_qerr_stats *s);
void B_mc_qerr_stats_get(const mc_qerr *q, mc_qerr_stats *s);

static uint64_t st = 88172645463325252ull;
static float rnd(void) /* as bench_mlx_quant's */
{
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    float u = (float)(st >> 40) / 16777216.0f;
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    float v = (float)(st >> 40) / 16777216.0f;
    return (u + v - 1.0f) * 0.05f;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define CALLS 10

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: qerr_ab ROWS COLS REPS\n");
        return 2;
    }
    const uint64_t rows = strtoull(argv[1], NULL, 10), cols = strtoull(argv[2], NULL, 10);
    const int reps = atoi(argv[3]);
    if (!rows || !cols || cols % 128 || rows > (1u << 20) || cols > (1u << 20) || reps < 4) {
        fprintf(stderr, "qerr_ab: ROWS and COLS (a multiple of 128) up to 2^20, REPS at least 4\n");
        return 2;
    }
    const char *ghz_s = getenv("MC_GHZ");
    const double ghz = ghz_s ? atof(ghz_s) : 3.57;
    const uint64_t n = rows * cols;
    float *x = malloc(n * sizeof *x);
    uint32_t *wq = malloc(n / 2);
    uint16_t *s = malloc(n / 64 * 2), *b = malloc(n / 64 * 2);
    double *tp = malloc(sizeof(double) * (size_t)reps * 5), *da = tp + reps, *db = da + reps, *dd = db + reps,
           *pl = dd + reps;
    if (!x || !wq || !s || !b || !tp) {
        fprintf(stderr, "qerr_ab: out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) x[i] = rnd();
    const mc_affine p = { 4, 64, MC_T_BF16 };
    mc_error e = { MC_OK, "" };
    mc_qerr qa, qb;
    double mina = 1e30, minb = 1e30, minp = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = bench_now(), ta = 0, tb = 0;
        for (int k = 0; k < CALLS; k++) (void)mc_quant_affine_quantize(x, rows, cols, &p, wq, s, b, &e);
        const double p1 = (bench_now() - t) / CALLS;
        for (int o = 0; o < 2; o++) {
            t = bench_now();
            if ((o ^ (r & 1)) == 0) {
                for (int k = 0; k < CALLS; k++) {
                    A_mc_qerr_init(&qa);
                    (void)A_mc_qerr_affine_quantize(&qa, x, rows, cols, &p, wq, s, b, &e);
                }
                ta = (bench_now() - t) / CALLS;
            } else {
                for (int k = 0; k < CALLS; k++) {
                    B_mc_qerr_init(&qb);
                    (void)B_mc_qerr_affine_quantize(&qb, x, rows, cols, &p, wq, s, b, &e);
                }
                tb = (bench_now() - t) / CALLS;
            }
        }
        t = bench_now();
        for (int k = 0; k < CALLS; k++) (void)mc_quant_affine_quantize(x, rows, cols, &p, wq, s, b, &e);
        const double p2 = (bench_now() - t) / CALLS, pm = (p1 + p2) / 2;
        pl[r] = pm;
        da[r] = ta - pm;
        db[r] = tb - pm;
        dd[r] = tb - ta;
        if (ta < mina) mina = ta;
        if (tb < minb) minb = tb;
        if (pm < minp) minp = pm;
    }
    mc_qerr_stats sa, sb;
    A_mc_qerr_stats_get(&qa, &sa);
    B_mc_qerr_stats_get(&qb, &sb);
    const int same = !memcmp(&sa.sum_sq_err, &sb.sum_sq_err, sizeof sa.sum_sq_err) &&
                     !memcmp(&sa.sum_sq_ref, &sb.sum_sq_ref, sizeof sa.sum_sq_ref) && sa.max_abs == sb.max_abs &&
                     sa.count == sb.count;
    qsort(pl, (size_t)reps, sizeof *pl, cmp);
    qsort(da, (size_t)reps, sizeof *da, cmp);
    qsort(db, (size_t)reps, sizeof *db, cmp);
    qsort(dd, (size_t)reps, sizeof *dd, cmp);
    const double c = 16.0 / (double)n * ghz * 1e9; /* seconds per call -> cycles per 16 values */
    const int h = reps / 2, q1 = reps / 4, q3 = 3 * reps / 4;
    printf("%llu x %llu, %d repetitions, cycles per 16 values at %.2f GHz\n", (unsigned long long)rows,
           (unsigned long long)cols, reps, ghz);
    printf("  plain quantizer  %.2f (min %.2f)\n", pl[h] * c, minp * c);
    printf("  A adds           %.2f (quartiles %.2f-%.2f; min %.2f)\n", da[h] * c, da[q1] * c, da[q3] * c,
           (mina - minp) * c);
    printf("  B adds           %.2f (quartiles %.2f-%.2f; min %.2f)\n", db[h] * c, db[q1] * c, db[q3] * c,
           (minb - minp) * c);
    printf("  B - A            %.3f (quartiles %.3f-%.3f)\n", dd[h] * c, dd[q1] * c, dd[q3] * c);
    printf("  same figures     %s\n", same ? "yes" : "NO");
    free(x);
    free(wq);
    free(s);
    free(b);
    free(tp);
    return same ? 0 : 1;
}
