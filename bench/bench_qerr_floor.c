/* bench_qerr_floor: what measuring the quantization error costs, wherever
 * it runs. A model of the AVX-512 paths (4-bit, group 64, the lookup form
 * of quant/mc_qerr.c), timed on one core, in ns per value:
 *
 *   codes      the quantizer's AVX-512 code pass alone (quant/mc_mlx.c:
 *              division, clamp, rounding, codes stored as bytes)
 *   separate   codes, then the measurement from the stored bytes, as the
 *              library does it (per 16 values: widen and look up the codes,
 *              subtract, one fused multiply-add, one max-magnitude; the
 *              float sums widened to double every block of 128; x*x is
 *              summed by the quantizer's min/max pass, not modelled here,
 *              where it replaced a finiteness check of as many operations)
 *   in-pass    the measurement inside the code pass's loop (the stored
 *              value from the rounded code still in its register: no reload
 *              of x or of the codes, no lookup)
 *   blocks512  separate, with the float sums widened every 512 values (a
 *              cheaper definition, not the library's)
 *
 * The models are copies of the kernels' arithmetic, not the library's code:
 * bench_mlx_quant times the library itself. Needs x86-64 with AVX-512
 * F/BW/VL/DQ; elsewhere it says so and exits 0.
 *
 * usage: bench_qerr_floor [rows [cols [reps]]]   (default 64 2048 300; cols a multiple of 512)
 */
#include "mc_cpu.h"
#include "bench_time.h"
#include "bench_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>

#define FLOOR_FN __attribute__((target(MC_CPU_AVX512_TARGET), noinline)) static
#define FLOOR_IN __attribute__((target(MC_CPU_AVX512_TARGET), always_inline)) static inline

typedef struct sums {
    __m512d ed[2];
    __m512 m;
} sums;

FLOOR_IN void widen(sums *a, __m512 e)
{
    a->ed[0] = _mm512_add_pd(a->ed[0], _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    a->ed[1] = _mm512_add_pd(a->ed[1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
}

/* One row: ng groups of 64 from x, scales sc/bi (float32, for the codes)
 * and s16/b16 (the stored ones, for the error). */
FLOOR_FN void codes_row(const float *x, int ng, const float *sc, const float *bi, uint8_t *q)
{
    const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(15.0f), magic = _mm512_set1_ps(12582912.0f);
    const __m512i mbits = _mm512_set1_epi32(0x4B400000);
    for (int g = 0; g < ng; g++) {
        const __m512 vb = _mm512_set1_ps(bi[g]), vs = _mm512_set1_ps(sc[g]);
        for (int j = 0; j < 64; j += 16) {
            const int i = g * 64 + j;
            __m512 v = _mm512_div_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vb), vs);
            v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
            __m512i c = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(v, magic)), mbits);
            _mm_storeu_si128((__m128i *)(void *)(q + i), _mm512_cvtepi32_epi8(c));
        }
    }
}

FLOOR_FN void measure_row(sums *out, const float *x, int ng, const float *s16, const float *b16, const uint8_t *q,
                          const int block_groups)
{
    sums a = *out;
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int g = 0; g < ng; g += block_groups) {
        __m512 e = _mm512_setzero_ps();
        for (int k = 0; k < block_groups; k++) {
            const __m512 t = _mm512_fmadd_ps(iota, _mm512_set1_ps(s16[g + k]), _mm512_set1_ps(b16[g + k]));
            for (int j = 0; j < 64; j += 16) {
                const int i = (g + k) * 64 + j;
                const __m512 xv = _mm512_loadu_ps(x + i);
                const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(q + i)));
                const __m512 d = _mm512_sub_ps(_mm512_permutexvar_ps(c, t), xv);
                e = _mm512_fmadd_ps(d, d, e);
                a.m = _mm512_range_ps(d, a.m, 0x0B);
            }
        }
        widen(&a, e);
    }
    *out = a;
}

FLOOR_FN void codes_measured_row(sums *out, const float *x, int ng, const float *sc, const float *bi,
                                 const float *s16, const float *b16, uint8_t *q)
{
    sums a = *out;
    const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(15.0f), magic = _mm512_set1_ps(12582912.0f);
    const __m512i mbits = _mm512_set1_epi32(0x4B400000);
    for (int g = 0; g < ng; g += 2) {
        __m512 e = _mm512_setzero_ps();
        for (int k = 0; k < 2; k++) {
            const __m512 vb = _mm512_set1_ps(bi[g + k]), vs = _mm512_set1_ps(sc[g + k]);
            const __m512 ws = _mm512_set1_ps(s16[g + k]), wb = _mm512_set1_ps(b16[g + k]);
            for (int j = 0; j < 64; j += 16) {
                const int i = (g + k) * 64 + j;
                const __m512 xv = _mm512_loadu_ps(x + i);
                __m512 v = _mm512_div_ps(_mm512_sub_ps(xv, vb), vs);
                v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
                const __m512 rv = _mm512_add_ps(v, magic);
                __m512i c = _mm512_sub_epi32(_mm512_castps_si512(rv), mbits);
                _mm_storeu_si128((__m128i *)(void *)(q + i), _mm512_cvtepi32_epi8(c));
                const __m512 d = _mm512_sub_ps(_mm512_fmadd_ps(_mm512_sub_ps(rv, magic), ws, wb), xv);
                e = _mm512_fmadd_ps(d, d, e);
                a.m = _mm512_range_ps(d, a.m, 0x0B);
            }
        }
        widen(&a, e);
    }
    *out = a;
}

int main(int argc, char **argv)
{
    const long rows = argc > 1 ? atol(argv[1]) : 64, cols = argc > 2 ? atol(argv[2]) : 2048,
               reps = argc > 3 ? atol(argv[3]) : 300;
    if (rows < 1 || cols < 512 || cols % 512 || cols > (1L << 20) || rows > (1L << 20) || reps < 1) {
        fprintf(stderr, "usage: bench_qerr_floor [rows [cols [reps]]]  (cols a multiple of 512, up to 2^20)\n");
        return 2;
    }
    if (mc_cpu_x86_level() < 3) {
        printf("bench_qerr_floor: this processor has no AVX-512 F/BW/VL/DQ: skipped\n");
        return 0;
    }
    const long n = rows * cols, ng = n / 64;
    float *x = malloc((size_t)n * sizeof *x), *sc = malloc((size_t)ng * 4 * sizeof *sc);
    uint8_t *q = malloc((size_t)n);
    if (!x || !sc || !q) {
        fprintf(stderr, "bench_qerr_floor: out of memory\n");
        return 1;
    }
    float *bi = sc + ng, *s16 = sc + 2 * ng, *b16 = sc + 3 * ng;
    for (long i = 0; i < n; i++) x[i] = ((float)(rnd() >> 40) / 16777216.0f - 0.5f) * 0.05f;
    for (long g = 0; g < ng; g++) { /* MLX's scale and bias from the group's range */
        float mn = x[g * 64], mx = mn;
        for (int j = 1; j < 64; j++) {
            mn = x[g * 64 + j] < mn ? x[g * 64 + j] : mn;
            mx = x[g * 64 + j] > mx ? x[g * 64 + j] : mx;
        }
        sc[g] = (mx - mn) / 15.0f;
        bi[g] = mn;
        s16[g] = mc_bf16_to_f32(mc_f32_to_bf16(sc[g]));
        b16[g] = mc_bf16_to_f32(mc_f32_to_bf16(bi[g]));
    }
    static const char *names[4] = { "codes", "separate", "in-pass", "blocks512" };
    double best[4] = { 1e30, 1e30, 1e30, 1e30 };
    sums a;
    memset(&a, 0, sizeof a);
    const int gpr = (int)(cols / 64);
    for (long t = 0; t < reps; t++)
        for (int m = 0; m < 4; m++) { /* interleaved: drifts in the machine's speed hit all four */
            double t0 = bench_now();
            for (long r = 0; r < rows; r++) {
                const float *xr = x + r * cols;
                const long g0 = r * gpr;
                uint8_t *qr = q + r * cols;
                if (m == 2) {
                    codes_measured_row(&a, xr, gpr, sc + g0, bi + g0, s16 + g0, b16 + g0, qr);
                    continue;
                }
                codes_row(xr, gpr, sc + g0, bi + g0, qr);
                if (m == 1) measure_row(&a, xr, gpr, s16 + g0, b16 + g0, qr, 2);
                if (m == 3) measure_row(&a, xr, gpr, s16 + g0, b16 + g0, qr, 8);
            }
            double dt = bench_now() - t0;
            if (dt < best[m]) best[m] = dt;
        }
    double chk[8];
    memcpy(chk, &a.ed[0], sizeof chk);
    printf("bench_qerr_floor: %ld x %ld f32 (%.1f MB), 4-bit group 64, best of %ld, one thread (check %.6g)\n", rows,
           cols, (double)n * 4 / 1e6, reps, chk[0]);
    for (int m = 0; m < 4; m++) {
        printf("  %-10s %7.4f ns/value", names[m], best[m] * 1e9 / (double)n);
        if (m) printf("   measuring %+7.4f ns/value (%+4.0f%% of codes)", (best[m] - best[0]) * 1e9 / (double)n,
                      100.0 * (best[m] - best[0]) / best[0]);
        printf("\n");
    }
    free(x);
    free(sc);
    free(q);
    return 0;
}
#else
int main(void)
{
    printf("bench_qerr_floor: needs x86-64 (AVX-512) and gcc or clang: skipped\n");
    return 0;
}
#endif
