/* bench_mlx_quant: MLX affine quantization / dequantization throughput on
 * one core (group 64, f32 in, bf16 scales), in GB/s of f32 consumed
 * (quantize) or produced (dequantize); quantizing with the error measured
 * inside the quantizer (mc_qerr_affine_quantize) beside it, and where the AVX-512 passes
 * run, both again with the compiled (SSE) ones; memcpy of the same f32 buffer as the
 * ceiling and ggml dequantization (Q4_0, Q4_K via mc_dequant) for scale.
 *
 * usage: bench_mlx_quant [rows [cols [reps]]]   (default 512 4096 5)
 */
#include "mc_mlx.h"
#include "mc_qerr.h"
#include "mc_dequant.h"
#include "mc_types.h"
#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t st = 88172645463325252ull;
static float rnd(void)
{
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    float u = (float)(st >> 40) / 16777216.0f;
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    float v = (float)(st >> 40) / 16777216.0f;
    return (u + v - 1.0f) * 0.05f;
}

int main(int argc, char **argv)
{
    uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
    uint64_t cols = argc > 2 ? strtoull(argv[2], NULL, 10) : 4096;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (rows == 0 || cols == 0 || cols % 128 || reps <= 0) {
        fprintf(stderr, "usage: bench_mlx_quant [rows [cols (multiple of 128) [reps]]]\n");
        return 2;
    }
    uint64_t n = rows * cols;
    double gb = (double)n * 4.0 / 1e9;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint32_t *wq = malloc(n); /* 8 bits max: n bytes */
    uint16_t *s = malloc(n / 64 * 2), *b = malloc(n / 64 * 2);
    void *blk = malloc(n * 2);
    if (!x || !y || !wq || !s || !b || !blk) { fprintf(stderr, "out of memory\n"); return 1; }
    for (uint64_t i = 0; i < n; i++) x[i] = rnd();

    printf("MLX affine, group 64, bf16 scales, %llu x %llu f32 (%.1f MB), best of %d, one thread\n",
           (unsigned long long)rows, (unsigned long long)cols, gb * 1e3, reps);
    printf("  measured = quantized with the error measured inside (mc_qerr_affine_quantize), error loop %d\n"
           "  (0 plain C, 2 AVX2, 3 AVX-512), quantizer passes %d (1 as compiled, 3 AVX-512)\n",
           mc_qerr_vector_path(), mc_quant_affine_path());
    double tm = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = bench_now();
        memcpy(y, x, n * 4);
        t = bench_now() - t;
        if (t < tm) tm = t;
    }
    printf("  memcpy (ceiling)        %7.2f GB/s\n", gb / tm);

    static const int bitsv[] = {2, 3, 4, 5, 6, 8};
    for (int i = 0; i < 6; i++) {
        mc_affine p = {bitsv[i], 64, MC_T_BF16};
        double tq = 1e30, td = 1e30, te = 1e30, t2 = 1e30, tq1 = 1e30, te1 = 1e30;
        const int pass3 = mc_quant_affine_path() == 3;
        for (int r = 0; r < reps; r++) {
            double t = bench_now();
            if (mc_quant_affine_quantize(x, rows, cols, &p, wq, s, b, NULL)) { fprintf(stderr, "quantize failed\n"); return 1; }
            t = bench_now() - t;
            if (t < tq) tq = t;
            mc_qerr qe;
            mc_qerr_init(&qe);
            t = bench_now();
            if (mc_qerr_affine_quantize(&qe, x, rows, cols, &p, wq, s, b, NULL)) { fprintf(stderr, "quantize failed\n"); return 1; }
            t = bench_now() - t;
            if (t < te) te = t;
            if (mc_qerr_vector_path() == 3) { /* and with the AVX2 loop, as processors without AVX-512 run it */
                mc_qerr_set_scalar(2);
                mc_qerr_init(&qe);
                t = bench_now();
                int rc = mc_qerr_affine_quantize(&qe, x, rows, cols, &p, wq, s, b, NULL);
                t = bench_now() - t;
                mc_qerr_set_scalar(0);
                if (rc) { fprintf(stderr, "quantize failed\n"); return 1; }
                if (t < t2) t2 = t;
            }
            if (pass3) { /* and with the compiled (SSE) passes, measured after them */
                mc_quant_affine_limit(1);
                t = bench_now();
                int rc = mc_quant_affine_quantize(x, rows, cols, &p, wq, s, b, NULL);
                t = bench_now() - t;
                if (t < tq1) tq1 = t;
                mc_qerr_init(&qe);
                t = bench_now();
                rc |= mc_qerr_affine_quantize(&qe, x, rows, cols, &p, wq, s, b, NULL);
                t = bench_now() - t;
                mc_quant_affine_limit(0);
                if (rc) { fprintf(stderr, "quantize failed\n"); return 1; }
                if (t < te1) te1 = t;
            }
        }
        for (int r = 0; r < reps; r++) {
            double t = bench_now();
            if (mc_quant_affine_dequantize(wq, s, b, rows, cols, &p, y, NULL)) { fprintf(stderr, "dequantize failed\n"); return 1; }
            t = bench_now() - t;
            if (t < td) td = t;
        }
        printf("  %d-bit  quantize %6.2f GB/s   measured %6.2f GB/s (+%2.0f%% time)", bitsv[i], gb / tq, gb / te,
               100.0 * (te / tq - 1.0));
        if (t2 < 1e30) printf("   AVX2 loop %6.2f GB/s (+%2.0f%%)", gb / t2, 100.0 * (t2 / tq - 1.0));
        if (pass3)
            printf("   SSE passes: quantize %6.2f, measured %6.2f GB/s (+%2.0f%%)", gb / tq1, gb / te1,
                   100.0 * (te1 / tq1 - 1.0));
        printf("   dequantize %6.2f GB/s\n", gb / td);
    }

    /* ggml dequantization of the same size for comparison (blocks of
     * arbitrary bytes with a sane f16 scale). */
    static const int gt[] = {MC_T_Q4_0, MC_T_Q4_K};
    for (int i = 0; i < 2; i++) {
        const mc_type_traits *tr = mc_type_get(gt[i]);
        uint64_t nb = n / tr->blck;
        unsigned char *bp = blk;
        for (uint64_t k = 0; k < nb * tr->type_size; k++) bp[k] = (unsigned char)(k * 131u + 7u);
        for (uint64_t k = 0; k < nb; k++) { bp[k * tr->type_size] = 0x00; bp[k * tr->type_size + 1] = 0x20; }
        double t1 = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = bench_now();
            mc_dequant(gt[i], blk, y, (int64_t)n, NULL);
            t = bench_now() - t;
            if (t < t1) t1 = t;
        }
        printf("  ggml %-5s dequantize (mc_dequant) %7.2f GB/s of f32 out\n", tr->name, gb / t1);
    }
    free(x); free(y); free(wq); free(s); free(b); free(blk);
    return 0;
}
