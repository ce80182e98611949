/* bench_dequant: dequantization throughput per type on one core, in GB/s of
 * f32 produced (1 GB = 1e9 bytes), best of N runs, beside this machine's
 * memcpy rate over the same output size (the ceiling).
 *
 *   bench_dequant [-m MiB_of_f32_output] [-r runs] [-l level] [type ...]
 *
 * -l 1 or 2 keeps the decoders at most at that level (mc_dequant_path: 1
 * as compiled, 2 AVX2, 3 AVX-512 where the processor has it).
 *
 * Inputs are random bytes in each type's block layout, except that f16/f32
 * scale fields hold realistic scales (about 1e-3..1e-2) and F16/BF16/F32/F64
 * data hold realistic weights, so no run is dominated by subnormal or NaN
 * arithmetic (which is slow on some CPUs and absent from real checkpoints).
 */
#include "mc_types.h"
#include "mc_dequant.h"
#include "mc_float.h"
#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
/* roughly Gaussian, sd about 1 */
static float gauss(void)
{
    float s = 0;
    for (int i = 0; i < 4; i++) s += (float)(rng() >> 40) / (float)(1 << 24);
    return (s - 2.0f) * 1.7f;
}

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }

/* byte offsets of f16 scale fields inside one block, -1 terminated */
static const int *scale_fields(int t)
{
    static const int at0[] = { 0, -1 }, at02[] = { 0, 2, -1 }, q2k[] = { 80, 82, -1 }, q3k[] = { 108, -1 },
                     q6k[] = { 208, -1 }, tq1[] = { 52, -1 }, tq2[] = { 64, -1 }, none[] = { -1 };
    switch (t) {
    case MC_T_Q4_0: case MC_T_Q5_0: case MC_T_Q8_0: case MC_T_IQ2_XXS: case MC_T_IQ2_XS: case MC_T_IQ2_S:
    case MC_T_IQ3_XXS: case MC_T_IQ3_S: case MC_T_IQ1_S: case MC_T_IQ4_NL: case MC_T_IQ4_XS: case MC_T_Q1_0:
    case MC_T_Q2_0:
        return at0;
    case MC_T_Q4_1: case MC_T_Q5_1: case MC_T_Q8_1: case MC_T_Q4_K: case MC_T_Q5_K:
        return at02;
    case MC_T_Q2_K: return q2k;
    case MC_T_Q3_K: return q3k;
    case MC_T_Q6_K: return q6k;
    case MC_T_TQ1_0: return tq1;
    case MC_T_TQ2_0: return tq2;
    default: return none;
    }
}

static void fill_input(int t, const mc_type_traits *tr, unsigned char *in, size_t bytes)
{
    if (t == MC_T_F16 || t == MC_T_BF16) {
        for (size_t i = 0; i + 2 <= bytes; i += 2) {
            float v = gauss() * 0.02f;
            put16(in + i, t == MC_T_F16 ? mc_f32_to_f16(v) : mc_f32_to_bf16(v));
        }
        return;
    }
    if (t == MC_T_F32) {
        for (size_t i = 0; i + 4 <= bytes; i += 4) {
            float v = gauss() * 0.02f;
            memcpy(in + i, &v, 4);
        }
        return;
    }
    if (t == MC_T_F64) {
        for (size_t i = 0; i + 8 <= bytes; i += 8) {
            double v = gauss() * 0.02;
            memcpy(in + i, &v, 8);
        }
        return;
    }
    for (size_t i = 0; i < bytes; i++) in[i] = (unsigned char)(rng() >> 56);
    const int *sf = scale_fields(t);
    if (sf[0] < 0 && t != MC_T_Q8_K) return;
    for (size_t b = 0; b + tr->type_size <= bytes; b += tr->type_size) {
        if (t == MC_T_Q8_K) {
            float d = 0.001f + (float)(rng() >> 40) / (float)(1 << 24) * 0.01f;
            memcpy(in + b, &d, 4);
            continue;
        }
        for (int k = 0; sf[k] >= 0; k++)
            put16(in + b + (size_t)sf[k], mc_f32_to_f16(0.001f + (float)(rng() >> 40) / (float)(1 << 24) * 0.01f));
    }
}

int main(int argc, char **argv)
{
    size_t mib = 64;
    int runs = 3;
    int first_type = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) mc_dequant_limit(atoi(argv[++i]));
        else { first_type = i; break; }
    }
    if (mib == 0 || runs <= 0) {
        fprintf(stderr, "usage: bench_dequant [-m MiB] [-r runs] [-l level] [type ...]\n");
        return 2;
    }
    const size_t out_bytes = mib << 20;
    float *out = malloc(out_bytes);
    unsigned char *in = malloc(out_bytes * 2); /* f64 input is twice the f32 output */
    if (!out || !in) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(out, 0, out_bytes);
    memset(in, 1, out_bytes * 2);

    double load[3] = { 0, 0, 0 };
    int have_load = getloadavg(load, 3) == 3;
    printf("bench_dequant: %zu MiB of f32 output per run, best of %d, one thread, decoder level %d\n", mib, runs,
           mc_dequant_path());
    if (have_load) printf("load average at start: %.2f %.2f %.2f\n", load[0], load[1], load[2]);

    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        memcpy(out, in, out_bytes);
        double dt = bench_now() - t0;
        if (dt < best) best = dt;
    }
    printf("%-10s %8.2f GB/s  (memcpy of the same output size: the ceiling)\n", "memcpy", (double)out_bytes / best * 1e-9);

    for (int t = 0; t < MC_T_COUNT; t++) {
        const mc_type_traits *tr = mc_type_get(t);
        if (!tr || !tr->to_f32) continue;
        if (first_type < argc) {
            int want = 0;
            for (int i = first_type; i < argc; i++) want |= mc_type_from_name(argv[i]) == t;
            if (!want) continue;
        } else if (!tr->is_float && !tr->is_quant) {
            continue; /* integer types: not interesting */
        }
        int64_t n = (int64_t)(out_bytes / 4) / tr->blck * tr->blck;
        uint64_t in_bytes = 0;
        if (mc_type_nbytes(t, (uint64_t)n, &in_bytes) || in_bytes > out_bytes * 2) continue;
        fill_input(t, tr, in, (size_t)in_bytes);
        best = 1e30;
        for (int r = 0; r < runs; r++) {
            double t0 = bench_now();
            tr->to_f32(in, out, n);
            double dt = bench_now() - t0;
            if (dt < best) best = dt;
        }
        volatile float sink = out[n / 2];
        (void)sink;
        printf("%-10s %8.2f GB/s  (%5.2f bits/weight in)\n", tr->name, (double)n * 4.0 / best * 1e-9, mc_type_bpw(t));
    }
    if (getloadavg(load, 3) == 3) printf("load average at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    free(out);
    free(in);
    return 0;
}
