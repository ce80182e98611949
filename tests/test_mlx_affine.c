/* MLX affine quantization: hand-worked groups, packed words for every bit
 * width, dequantization arithmetic, error bounds, and agreement with a plain
 * transcription of MLX's CPU kernel (mlx/backend/cpu/quantized.cpp). */
#include "mc_mlx.h"
#include "mc_float.h"
#include "mc_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float f32_of(uint32_t u) { return mc_f32_from_bits(u); }

/* Deterministic xorshift generator. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void)
{
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_unit(void) { return (float)(rnd32() & 0xffffff) / 16777216.0f; } /* [0,1) */
static float rnd_normalish(void) { return (rnd_unit() + rnd_unit() + rnd_unit() - 1.5f) * 2.0f; }

/* Quantize one 32-wide row at `bits`, f32 scales. */
static int q32(const float *x, int bits, int st, uint32_t *wq, void *s, void *b)
{
    mc_affine p = {bits, 32, st};
    mc_error err = {0};
    int rc = mc_quant_affine_quantize(x, 1, 32, &p, wq, s, b, &err);
    if (rc) fprintf(stderr, "quantize: %s\n", err.msg);
    return rc;
}

static void test_row_words(void)
{
    CHECK_EQ_U64(mc_quant_affine_row_words(64, 4), 8);
    CHECK_EQ_U64(mc_quant_affine_row_words(32, 3), 3);
    CHECK_EQ_U64(mc_quant_affine_row_words(128, 5), 20);
    CHECK_EQ_U64(mc_quant_affine_row_words(4096, 6), 768);
    CHECK_EQ_U64(mc_quant_affine_row_words(16, 3), 0); /* 48 bits: not whole words */
}

static void test_params_refused(void)
{
    float x[64] = {0};
    uint32_t wq[64];
    float s[4], b[4];
    mc_error err = {0};
    mc_affine bad_bits = {7, 32, MC_T_F32}, bad_gs = {4, 48, MC_T_F32}, bad_st = {4, 32, MC_T_F64};
    mc_affine ok = {4, 64, MC_T_F32};
    CHECK(mc_quant_affine_quantize(x, 1, 64, &bad_bits, wq, s, b, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    CHECK(mc_quant_affine_quantize(x, 1, 64, &bad_gs, wq, s, b, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    CHECK(mc_quant_affine_quantize(x, 1, 64, &bad_st, wq, s, b, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    CHECK(mc_quant_affine_quantize(x, 1, 32, &ok, wq, s, b, &err) == MC_ERR_ARG); /* 32 % 64 */
    mc_error_clear(&err);
    x[17] = NAN;
    CHECK(mc_quant_affine_quantize(x, 1, 64, &ok, wq, s, b, &err) == MC_ERR_ARG);
    CHECK(strstr(err.msg, "non-finite") != NULL);
    mc_error_clear(&err);
    x[17] = -INFINITY;
    CHECK(mc_quant_affine_quantize(x, 1, 64, &ok, wq, s, b, &err) == MC_ERR_ARG);
    mc_error_clear(&err);

    /* Past the first chunk of 32 groups, as the first value of a group and
     * deep inside one: the message names the row and group. */
    enum { NR = 2, NC = 64 * 40 };
    float *big = calloc(NR * NC, sizeof(float));
    uint32_t *bwq = malloc(sizeof(uint32_t) * NR * NC);
    float *bs = malloc(sizeof(float) * NR * NC / 64), *bb = malloc(sizeof(float) * NR * NC / 64);
    CHECK(big && bwq && bs && bb);
    if (big && bwq && bs && bb) {
        big[NC + 35 * 64] = NAN;
        CHECK(mc_quant_affine_quantize(big, NR, NC, &ok, bwq, bs, bb, &err) == MC_ERR_ARG);
        CHECK(strstr(err.msg, "row 1, group 35") != NULL);
        mc_error_clear(&err);
        big[NC + 35 * 64] = 0.0f;
        big[33 * 64 + 63] = INFINITY;
        CHECK(mc_quant_affine_quantize(big, NR, NC, &ok, bwq, bs, bb, &err) == MC_ERR_ARG);
        CHECK(strstr(err.msg, "row 0, group 33") != NULL);
        mc_error_clear(&err);
        big[33 * 64 + 63] = 1.0f;
        CHECK(mc_quant_affine_quantize(big, NR, NC, &ok, bwq, bs, bb, &err) == 0);
    }
    free(big); free(bwq); free(bs); free(bb);
}

/* 0..15 ramp at 4 bits: |max| >= |min| so the grid is anchored at max = 15
 * with scale -1: q = 15 - w, bias 15. */
static void test_ramp_4bit(void)
{
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 16);
    uint32_t wq[4];
    float s, b;
    CHECK(q32(x, 4, MC_T_F32, wq, &s, &b) == 0);
    CHECK(s == -1.0f);
    CHECK(b == 15.0f);
    CHECK_EQ_U64(wq[0], 0x89ABCDEFu); /* codes 15,14,...,8 low nibble first */
    CHECK_EQ_U64(wq[1], 0x01234567u);
    CHECK_EQ_U64(wq[2], 0x89ABCDEFu);
    CHECK_EQ_U64(wq[3], 0x01234567u);
    float out[32];
    mc_affine p = {4, 32, MC_T_F32};
    CHECK(mc_quant_affine_dequantize(wq, &s, &b, 1, 32, &p, out, NULL) == 0);
    int same = 1;
    for (int j = 0; j < 32; j++) same &= out[j] == x[j];
    CHECK(same);
}

/* All negative: |min| > |max|: scale +1 anchored at min = -15, bias -15. */
static void test_all_negative(void)
{
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = -(float)(j % 16);
    uint32_t wq[4];
    float s, b;
    CHECK(q32(x, 4, MC_T_F32, wq, &s, &b) == 0);
    CHECK(s == 1.0f);
    CHECK(b == -15.0f);
    /* q = w + 15: j%16 = 0 -> 15, ..., 15 -> 0: the same codes as the ramp */
    CHECK_EQ_U64(wq[0], 0x89ABCDEFu);
    CHECK_EQ_U64(wq[1], 0x01234567u);
}

/* All zeros: scale = max(0, 1e-7) negated (max >= min in magnitude), q0 = 0,
 * bias 0, codes 0. 1e-7f = 0x33D6BF95; in f16 it is 1.68 * 2^-24 -> 2 * 2^-24
 * (0x0002); in bf16 0x33D6BF95 rounds up to 0x33D7. */
static void test_zeros(void)
{
    float x[32] = {0};
    uint32_t wq[4] = {1, 1, 1, 1};
    float s, b;
    CHECK(q32(x, 4, MC_T_F32, wq, &s, &b) == 0);
    CHECK_EQ_U64(mc_f32_bits(s), 0xB3D6BF95u);
    CHECK_EQ_U64(mc_f32_bits(b), 0);
    CHECK(wq[0] == 0 && wq[1] == 0 && wq[2] == 0 && wq[3] == 0);
    uint16_t s16, b16;
    CHECK(q32(x, 4, MC_T_F16, wq, &s16, &b16) == 0);
    CHECK_EQ_U64(s16, 0x8002);
    CHECK_EQ_U64(b16, 0x0000);
    CHECK(q32(x, 4, MC_T_BF16, wq, &s16, &b16) == 0);
    CHECK_EQ_U64(s16, 0xB3D7);
    CHECK_EQ_U64(b16, 0x0000);
}

/* Constant 2.0: range 0 -> scale -eps; q0 = rint(2 / -1e-7f) = -2e7 (float
 * spacing is 2 there), scale = 2 / -2e7 = -1e-7f, bias = 2, codes 0:
 * dequantizes to exactly 2. */
static void test_constant(void)
{
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = 2.0f;
    uint32_t wq[4] = {1, 1, 1, 1};
    float s, b;
    CHECK(q32(x, 4, MC_T_F32, wq, &s, &b) == 0);
    CHECK_EQ_U64(mc_f32_bits(s), 0xB3D6BF95u);
    CHECK(b == 2.0f);
    CHECK(wq[0] == 0 && wq[3] == 0);
    float out[32];
    mc_affine p = {4, 32, MC_T_F32};
    CHECK(mc_quant_affine_dequantize(wq, &s, &b, 1, 32, &p, out, NULL) == 0);
    CHECK(out[0] == 2.0f && out[31] == 2.0f);
}

/* One outlier 30 among zeros at 4 bits: scale -2, bias 30; zeros -> 15,
 * the outlier -> 0. */
static void test_outlier(void)
{
    float x[32] = {0};
    x[5] = 30.0f;
    uint32_t wq[4];
    float s, b;
    CHECK(q32(x, 4, MC_T_F32, wq, &s, &b) == 0);
    CHECK(s == -2.0f);
    CHECK(b == 30.0f);
    CHECK_EQ_U64(wq[0], 0xFF0FFFFFu);
    CHECK_EQ_U64(wq[1], 0xFFFFFFFFu);
    CHECK_EQ_U64(wq[3], 0xFFFFFFFFu);
}

/* Midpoints: grid scale -1, bias 15 (0 and 15 present). (w - 15) / -1 for
 * w = 0.5, 1.5, 2.5, 3.5 is 14.5, 13.5, 12.5, 11.5: rint (ties to even)
 * gives 14, 14, 12, 12 (round-half-away would give 15, 14, 13, 12). */
static void test_midpoints(void)
{
    float x[32] = {0};
    x[1] = 15.0f;
    x[2] = 0.5f; x[3] = 1.5f; x[4] = 2.5f; x[5] = 3.5f;
    uint32_t wq[4];
    float s, b;
    CHECK(q32(x, 4, MC_T_F32, wq, &s, &b) == 0);
    CHECK(s == -1.0f && b == 15.0f);
    /* codes: 15, 0, 14, 14, 12, 12, 15, 15 */
    CHECK_EQ_U64(wq[0], 0xFFCCEE0Fu);
}

/* The grid is anchored at the larger-magnitude extreme and stretched to
 * edge/q0, so the other extreme can clamp by more than half a step:
 * 2 bits, max 1, min -0.9375: scale0 = 1.9375/3, q0 = rint(1 / -0.6458) = -2,
 * scale = -0.5, bias 1. w = -0.9375 -> (-1.9375)/-0.5 = 3.875 -> 4 -> clamp 3,
 * dequantized -0.5: error 0.4375 = 0.875 steps (kept: it is what MLX does). */
static void test_edge_clamp(void)
{
    float x[32] = {0};
    x[0] = 1.0f;
    x[1] = -0.9375f;
    uint32_t wq[2];
    float s, b;
    CHECK(q32(x, 2, MC_T_F32, wq, &s, &b) == 0);
    CHECK(s == -0.5f);
    CHECK(b == 1.0f);
    /* codes: x0 -> 0, x1 -> 3, zeros -> (0-1)/-0.5 = 2 */
    CHECK_EQ_U64(wq[0], 0xAAAAAAACu);
    CHECK_EQ_U64(wq[1], 0xAAAAAAAAu);
    float out[32];
    mc_affine p = {2, 32, MC_T_F32};
    CHECK(mc_quant_affine_dequantize(wq, &s, &b, 1, 32, &p, out, NULL) == 0);
    CHECK(out[1] == -0.5f);
    CHECK(fabsf(out[1] - x[1]) > 0.5f * fabsf(s));
    CHECK(fabsf(out[1] - x[1]) < fabsf(s));
}

/* Packed words for every width: inputs w = n - c (0 and n present) give
 * scale -1, bias n and code c. Expected words worked out bit by bit: e.g.
 * 3 bits, codes 0..7: 000 001 010 ... 111 LSB first = bytes 88 C6 FA
 * (MLX's 8-codes-in-3-bytes), words 0x88FAC688 0xC688FAC6 0xFAC688FA;
 * 5 bits word 0 = 1<<5 | 2<<10 | 3<<15 | 4<<20 | 5<<25 | (6&3)<<30. */
/* Symmetric 2-bit group {1, -1, 0...}: edge = max = 1 (|min| is not
 * greater), 1 / -(2/3) = -1.5 ties to -2, scale -0.5, bias 1; -1 -> code 4
 * clamps to 3 -> -0.5: an error of exactly one step, the worst case. */
static void test_symmetric_full_step(void)
{
    float x[32] = {0};
    x[0] = 1.0f;
    x[1] = -1.0f;
    uint32_t wq[2];
    float s, b, out[32];
    CHECK(q32(x, 2, MC_T_F32, wq, &s, &b) == 0);
    CHECK(s == -0.5f && b == 1.0f);
    CHECK_EQ_U64(mc_quant_affine_code(wq, 1, 2), 3);
    mc_affine p = {2, 32, MC_T_F32};
    CHECK(mc_quant_affine_dequantize(wq, &s, &b, 1, 32, &p, out, NULL) == 0);
    CHECK(out[1] == -0.5f);
    CHECK(fabsf(out[1] - x[1]) == fabsf(s));
}

static void test_packed_words(void)
{
    static const struct { int bits; int nw; uint32_t w[8]; } cases[] = {
        {2, 2, {0xE4E4E4E4u, 0xE4E4E4E4u}},
        {3, 3, {0x88FAC688u, 0xC688FAC6u, 0xFAC688FAu}},
        {4, 4, {0x76543210u, 0xFEDCBA98u, 0x76543210u, 0xFEDCBA98u}},
        {5, 5, {0x8A418820u, 0xC5A92839u, 0xCA307B9Au, 0x38BDAB49u, 0xFFBBCDEBu}},
        {6, 6, {0x440C203Fu, 0xA2481C61u, 0x3CE34C2Cu, 0x544D2450u, 0xA6585D65u, 0x7DE75C6Du}},
        {8, 8, {0x030200FFu, 0x07060504u, 0x0B0A0908u, 0x0F0E0D0Cu, 0x13121110u, 0x17161514u,
                0x1B1A1918u, 0x1F1E1D1Cu}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int bits = cases[c].bits, n = (1 << bits) - 1;
        float x[32];
        for (int j = 0; j < 32; j++) {
            int code = bits <= 5 ? j % (n + 1) : (j == 0 ? n : j == 1 ? 0 : j);
            x[j] = (float)(n - code);
        }
        uint32_t wq[8] = {0};
        float s, b;
        CHECK(q32(x, bits, MC_T_F32, wq, &s, &b) == 0);
        CHECKF(s == -1.0f && b == (float)n, "bits %d scale %g bias %g", bits, s, b);
        for (int w = 0; w < cases[c].nw; w++)
            CHECKF(wq[w] == cases[c].w[w], "bits %d word %d: %08X != %08X", bits, w, wq[w],
                   cases[c].w[w]);
        for (int j = 0; j < 32; j++) {
            uint32_t code = mc_quant_affine_code(wq, (uint64_t)j, bits);
            CHECKF(code == (uint32_t)(n - (int)x[j]), "bits %d code %d", bits, j);
        }
        /* dequantize: -code + n = x exactly in every scale type */
        float out[32];
        mc_affine p = {bits, 32, MC_T_F32};
        CHECK(mc_quant_affine_dequantize(wq, &s, &b, 1, 32, &p, out, NULL) == 0);
        CHECK(memcmp(out, x, sizeof x) == 0);
    }
    /* MLX's own 6-bit extractor on bytes 3F 20 0C: 63, 0, 2, 3 */
    uint32_t w0 = 0x440C203Fu;
    const uint8_t by[3] = {(uint8_t)w0, (uint8_t)(w0 >> 8), (uint8_t)(w0 >> 16)};
    CHECK((by[0] & 0x3f) == 63);
    CHECK((((by[0] >> 6) & 0x03) + ((by[1] & 0x0f) << 2)) == 0);
    CHECK((((by[1] >> 4) & 0x0f) + ((by[2] & 0x03) << 4)) == 2);
    CHECK(((by[2] >> 2) & 0x3f) == 3);
}

/* Dequantize in the scale dtype: w = round_T(round_T(q*s) + b).
 * f16: s = 0x3C01 (1 + 2^-10), q = 15: q*s = 15.0146484375 -> f16 spacing
 * 2^-7 near 15: 15.015625 (0x4B82) ... then + b = -0.0078125 (-2^-7) ->
 * 15.0078125 (exact in f16). Plain f32 arithmetic would give 15.00683...
 * bf16: s = 1.0078125 (0x3F81), q = 255: 256.9921875 -> bf16 spacing 2 near
 * 256: 256 (0.99 from 256, 1.01 from 258) -> + b = 0.5 -> 256.5 -> 256.
 * f32 scales: 256.9921875 + 0.5 = 257.4921875. */
static void test_dequant_arith(void)
{
    mc_affine p16 = {4, 32, MC_T_F16};
    uint32_t wq[4] = {0xFu, 0, 0, 0}; /* code 15 at element 0, others 0 */
    uint16_t s16 = 0x3C01, b16 = 0xA000; /* -2^-7 */
    float out[32];
    CHECK(mc_quant_affine_dequantize(wq, &s16, &b16, 1, 32, &p16, out, NULL) == 0);
    CHECK(out[0] == 15.0078125f);
    CHECK(out[1] == -0.0078125f);
    mc_affine pb = {8, 32, MC_T_BF16};
    uint32_t wq8[8] = {0xFFu};
    uint16_t sb = 0x3F81, bb = 0x3F00; /* 0.5 */
    CHECK(mc_quant_affine_dequantize(wq8, &sb, &bb, 1, 32, &pb, out, NULL) == 0);
    CHECK(out[0] == 256.0f);
    CHECK(out[1] == 0.5f);
    mc_affine p32 = {8, 32, MC_T_F32};
    float s32 = f32_of(0x3F810000u), b32 = 0.5f;
    CHECK(mc_quant_affine_dequantize(wq8, &s32, &b32, 1, 32, &p32, out, NULL) == 0);
    CHECK(out[0] == 257.4921875f);
}

/* Plain transcription of MLX's CPU kernel for one group (std::max/min as
 * ternaries, rintf, a 64-bit shift accumulator, 8-bit-byte writes). */
static void ref_group(const float *w, int gs, int bits, uint8_t *bytes, float *so, float *bo)
{
    float n_bins = (float)((1 << bits) - 1);
    float eps = 1e-7f;
    float w_min = INFINITY, w_max = -INFINITY;
    for (int j = 0; j < gs; j++) {
        w_max = w_max < w[j] ? w[j] : w_max;
        w_min = w[j] < w_min ? w[j] : w_min;
    }
    int mask = fabsf(w_min) > fabsf(w_max);
    float scale = (w_max - w_min) / n_bins;
    scale = scale < eps ? eps : scale;
    scale = mask ? scale : -scale;
    float edge = mask ? w_min : w_max;
    float q0 = rintf(edge / scale);
    float bias = 0;
    if (q0 != 0) { scale = edge / q0; bias = edge; }
    int el = (bits == 3 || bits == 5) ? 8 : bits == 6 ? 4 : 32 / bits;
    int bpp = (bits == 3 || bits == 6) ? 3 : bits == 5 ? 5 : 4;
    int pos = 0;
    for (int j = 0; j < gs / el; j++) {
        uint64_t out_el = 0;
        for (int k = 0; k < el; k++) {
            float v = rintf((w[j * el + k] - bias) / scale);
            v = fminf(fmaxf(v, 0.0f), n_bins);
            out_el |= (uint64_t)v << (k * bits);
        }
        for (int k = 0; k < bpp; k++) bytes[pos++] = (uint8_t)(out_el >> (8 * k));
    }
    *so = scale;
    *bo = bias;
}

static void test_against_reference(void)
{
    static const int bitsv[] = {2, 3, 4, 5, 6, 8};
    static const int gsv[] = {32, 64, 128};
    static const int stv[] = {MC_T_F32, MC_T_F16, MC_T_BF16};
    /* 4736 columns: 148, 74 and 37 groups per row, so every group size
     * crosses the quantizer's chunks of 32 groups and ends in a partial one. */
    const int nrows = 7, ncols = 4736;
    float *x = malloc(sizeof(float) * nrows * ncols);
    uint32_t *wq = malloc(4u * nrows * ncols);
    float *s = malloc(sizeof(float) * nrows * ncols), *b = malloc(sizeof(float) * nrows * ncols);
    float *out = malloc(sizeof(float) * nrows * ncols);
    int mismatches = 0, bound_fail = 0;
    for (int trial = 0; trial < 3; trial++) {
        for (int st_i = 0; st_i < 3; st_i++) {
            int st = stv[st_i];
            for (int i = 0; i < nrows * ncols; i++) {
                float v = rnd_normalish() * (trial == 0 ? 0.02f : trial == 1 ? 3.0f : 1e-3f);
                if (i % 97 == 0) v *= 40.0f; /* outliers */
                if (i / ncols == 2) v = -fabsf(v); /* a negative row */
                if (i / ncols == 3) v = 0.0f;       /* a zero row */
                if (i / ncols == 4 && i % 3) v = 0.25f; /* near-constant row */
                x[i] = mc_quant_round_to(v, st); /* values of the source dtype */
            }
            for (int bi = 0; bi < 6; bi++) for (int gi = 0; gi < 3; gi++) {
                int bits = bitsv[bi], gs = gsv[gi];
                mc_affine p = {bits, gs, st};
                mc_error err = {0};
                CHECK(mc_quant_affine_quantize(x, nrows, ncols, &p, wq, s, b, &err) == 0);
                uint64_t rw = mc_quant_affine_row_words(ncols, bits);
                for (int r = 0; r < nrows; r++)
                    for (int g = 0; g < ncols / gs; g++) {
                        uint8_t bytes[128];
                        float rs, rb;
                        ref_group(x + r * ncols + g * gs, gs, bits, bytes, &rs, &rb);
                        const uint32_t *gw = wq + r * rw + (uint64_t)g * gs * bits / 32;
                        for (int k = 0; k < gs * bits / 8; k++)
                            if ((uint8_t)(gw[k / 4] >> (8 * (k % 4))) != bytes[k]) { mismatches++; break; }
                        uint64_t gidx = (uint64_t)r * (ncols / gs) + g;
                        if (mc_f32_bits(mc_quant_scale_get(s, gidx, st)) !=
                                mc_f32_bits(mc_quant_round_to(rs, st)) ||
                            mc_f32_bits(mc_quant_scale_get(b, gidx, st)) !=
                                mc_f32_bits(mc_quant_round_to(rb, st)))
                            mismatches++;
                    }
                CHECK(mc_quant_affine_dequantize(wq, s, b, nrows, ncols, &p, out, &err) == 0);
                /* Error bound: one step of the f32 scale, plus what rounding
                 * scale and bias to T and the dequantized value to T adds. */
                for (int i = 0; i < nrows * ncols; i++) {
                    uint64_t gidx = (uint64_t)i / gs;
                    float sT = mc_quant_scale_get(s, gidx, st), bT = mc_quant_scale_get(b, gidx, st);
                    uint32_t code = mc_quant_affine_code(wq + (i / ncols) * rw, (uint64_t)(i % ncols), bits);
                    double step = fabs((double)sT);
                    double slack = 0;
                    if (st != MC_T_F32) {
                        double u = st == MC_T_F16 ? 1.0 / 2048 : 1.0 / 256; /* half ulp, relative */
                        step = step / (1 - u);
                        slack = (double)code * step * u + fabs((double)bT) * u +
                                2 * u * (fabs((double)out[i]) + fabs((double)bT));
                        if (st == MC_T_F16) slack += (code + 3) * ldexp(1.0, -25); /* subnormals */
                    }
                    if (fabs((double)out[i] - (double)x[i]) > step + slack) {
                        if (bound_fail < 5)
                            fprintf(stderr, "bits %d gs %d st %d i %d x %g out %g step %g\n", bits, gs,
                                    st, i, x[i], out[i], step);
                        bound_fail++;
                    }
                }
            }
        }
    }
    CHECK_EQ_U64(mismatches, 0);
    CHECK_EQ_U64(bound_fail, 0);
    free(x); free(wq); free(s); free(b); free(out);
}

/* Scales and biases beyond the narrow type's range or below its normal
 * numbers, in 20 groups (the AVX-512 pass stores them 16 at a time): each
 * stored value is the reference's f32 value rounded to the type once
 * (f16: overflow to Inf, subnormals; bf16: ties to even in the bits, from
 * biases that are inputs on a tie). */
static void test_scale_rounding(void)
{
    const int gs = 32, ng = 20, ncols = gs * ng;
    float x[32 * 20];
    uint32_t wq[32 * 20 / 4]; /* 8 bits a code at most */
    uint16_t s[20], b[20];
    static const int stv[] = {MC_T_F16, MC_T_BF16};
    int bad = 0, inf_seen = 0, sub_seen = 0, ties = 0;
    for (int si = 0; si < 2; si++)
        for (int bits = 2; bits <= 8; bits += 2) {
            for (int i = 0; i < ncols; i++) {
                const int g = i / gs;
                const float mag = g % 4 == 0 ? 2e6f : g % 4 == 1 ? 3e-4f : g % 4 == 2 ? 7e4f : 1.0f;
                x[i] = rnd_normalish() * mag + (g % 5 == 0 ? mag : 0.0f);
            }
            /* groups whose bias is an input of bf16 ties (the edge): below
             * an even and an odd last bit */
            for (int j = 0; j < gs; j++) x[7 * gs + j] = x[8 * gs + j] = rnd_normalish() * 0.25f;
            x[7 * gs + 3] = -(1.0f + 0x1p-8f);
            x[8 * gs + 3] = -(1.0f + 0x3p-8f);
            mc_affine p = {bits, gs, stv[si]};
            mc_error err = {0};
            CHECK(mc_quant_affine_quantize(x, 1, ncols, &p, wq, s, b, &err) == 0);
            for (int g = 0; g < ng; g++) {
                uint8_t bytes[32];
                float rs, rb;
                ref_group(x + g * gs, gs, bits, bytes, &rs, &rb);
                const float gs_ = mc_quant_scale_get(s, (uint64_t)g, stv[si]);
                const float gb_ = mc_quant_scale_get(b, (uint64_t)g, stv[si]);
                bad += mc_f32_bits(gs_) != mc_f32_bits(mc_quant_round_to(rs, stv[si]));
                bad += mc_f32_bits(gb_) != mc_f32_bits(mc_quant_round_to(rb, stv[si]));
                inf_seen += isinf(gs_) || isinf(gb_);
                ties += stv[si] == MC_T_BF16 && (mc_f32_bits(rb) & 0xffffu) == 0x8000u;
                sub_seen += stv[si] == MC_T_F16 && gs_ != 0.0f && fabsf(gs_) < 6.103515625e-05f;
            }
        }
    CHECK_EQ_U64(bad, 0);
    CHECK(inf_seen > 0);
    CHECK(sub_seen > 0);
    CHECK(ties >= 8); /* both groups at each width */
}

/* The quantizer's sums of squares (mc_quant_affine_sumsq, also its
 * finiteness check) against the definition written out here: 8 float32
 * lanes (value j to lane j % 8), x*x rounded then added in order, the lanes
 * added 0 to 7 left to right. Values spread over 2^-10..2^10 make the
 * order show in the bits (a sum in another order differs). Then values
 * whose squares pass FLT_MAX: the sum is Inf, yet nothing is refused and
 * the codes, scales and biases are MLX's. */
static float ref_sumsq(const float *x, int gs)
{
    float lane[8];
    for (int l = 0; l < 8; l++) lane[l] = x[l] * x[l];
    for (int j = 8; j < gs; j += 8)
        for (int l = 0; l < 8; l++) lane[l] = lane[l] + x[j + l] * x[j + l];
    float c = lane[0];
    for (int l = 1; l < 8; l++) c = c + lane[l];
    return c;
}

typedef struct sumsq_ctx {
    const float *x;
    int ncols, gs;
    uint64_t groups, bad;
    const void *scales, *biases; /* as stored, of type st */
    int st;
    uint64_t sb_bad; /* scales and biases handed over that differ from those stored */
    uint64_t handed; /* groups whose scale and bias were handed over */
} sumsq_ctx;

static void sumsq_sink(void *vctx, uint64_t row, uint64_t group0, int n, const float *x, const uint8_t *codes,
                       const float *sq, const float *sv, const float *bv, int row_done)
{
    sumsq_ctx *c = vctx;
    (void)codes;
    (void)row_done;
    for (int k = 0; k < n; k++) {
        const float *xg = c->x + row * (uint64_t)c->ncols + (group0 + (uint64_t)k) * (uint64_t)c->gs;
        const uint64_t gi = row * (uint64_t)(c->ncols / c->gs) + group0 + (uint64_t)k;
        c->bad += xg != x + (size_t)k * (size_t)c->gs;
        c->bad += mc_f32_bits(sq[k]) != mc_f32_bits(ref_sumsq(xg, c->gs));
        c->sb_bad += (sv == NULL) != (bv == NULL);
        if (sv && bv) {
            c->sb_bad += mc_f32_bits(sv[k]) != mc_f32_bits(mc_quant_scale_get(c->scales, gi, c->st));
            c->sb_bad += mc_f32_bits(bv[k]) != mc_f32_bits(mc_quant_scale_get(c->biases, gi, c->st));
            c->handed++;
        }
        c->groups++;
    }
}

static void test_sumsq(void)
{
    static const int gsv[] = {32, 64, 128};
    float x[128];
    int bad = 0, far = 0, order_shows = 0;
    for (int gi = 0; gi < 3; gi++)
        for (int t = 0; t < 300; t++) {
            const int gs = gsv[gi];
            long double exact = 0;
            float seq = 0.0f; /* one running sum: another order */
            for (int j = 0; j < gs; j++) {
                x[j] = ldexpf(rnd_normalish(), (int)(rnd32() % 21) - 10);
                exact += (long double)x[j] * x[j];
                seq = seq + x[j] * x[j];
            }
            float got = mc_quant_affine_sumsq(x, gs), want = ref_sumsq(x, gs);
            bad += mc_f32_bits(got) != mc_f32_bits(want);
            far += fabsl((long double)got - exact) > exact * 1e-5L;
            order_shows += mc_f32_bits(seq) != mc_f32_bits(want);
        }
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(far, 0);
    CHECK(order_shows > 300); /* the data tells orders apart */

    /* the sums the quantizer hands its sink (from its min/max pass:
     * AVX-512 where it runs), and the scales and biases as stored, on
     * every quantizer path and scale type; rows of 148, 74 or 37 groups
     * (whole chunks of 32 and a partial one) */
    static const int stv[] = {MC_T_F32, MC_T_F16, MC_T_BF16};
    if (mc_quant_affine_path() != 3)
        printf("test_mlx_affine: no AVX-512 passes here: the scales they hand over are not checked\n");
    for (int gi = 0; gi < 3; gi++) {
        const int gs = gsv[gi], ncols = 4736;
        const uint64_t ng = (uint64_t)(ncols / gs);
        float *xr = malloc(sizeof(float) * 2 * ncols), *sb = malloc(sizeof(float) * 2 * ncols);
        uint32_t *wr = malloc(sizeof(float) * 2 * ncols);
        for (int j = 0; j < 2 * ncols; j++) xr[j] = ldexpf(rnd_normalish(), (int)(rnd32() % 21) - 10);
        mc_error err = {0};
        for (int si = 0; si < 3; si++)
            for (int lim = 1; lim >= 0; lim--) {
                mc_quant_affine_limit(lim);
                const int st = stv[si];
                char *bi = (char *)sb + 2 * ng * 4; /* after the scales, room for f32 */
                sumsq_ctx ctx = {xr, ncols, gs, 0, 0, sb, bi, st, 0, 0};
                mc_affine p = {4, gs, st};
                CHECK(mc_quant_affine_quantize_sink(xr, 2, ncols, &p, wr, sb, bi, sumsq_sink, &ctx, &err) == 0);
                CHECK_EQ_U64(ctx.groups, (uint64_t)(2 * ncols / gs));
                CHECK_EQ_U64(ctx.bad, 0);
                CHECK_EQ_U64(ctx.sb_bad, 0);
                /* handed over where the AVX-512 passes run, else NULL */
                CHECK_EQ_U64(ctx.handed, mc_quant_affine_path() == 3 ? ctx.groups : 0);
            }
        mc_quant_affine_limit(0);
        mc_affine p = {4, gs, MC_T_F32};
        /* a NaN in row 1, group 33 (a second chunk): refused, naming that group */
        xr[ncols + 33 * gs + 3] = NAN;
        CHECK(mc_quant_affine_quantize_sink(xr, 2, ncols, &p, wr, sb, sb + ncols, NULL, NULL, &err) == MC_ERR_ARG);
        CHECK(strstr(err.msg, "row 1, group 33") != NULL);
        free(xr); free(sb); free(wr);
    }

    /* squares beyond FLT_MAX: one value of 3e19, then eight of 1.5e19
     * (each square finite, their sum not) */
    const int gs = 64, bits = 4;
    mc_affine p = {bits, gs, MC_T_F32};
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < gs; j++) x[j] = rnd_normalish();
        if (k == 0) x[5] = 3e19f;
        else for (int j = 0; j < 8; j++) x[8 * j + 3] = 1.5e19f;
        CHECK(isinf(mc_quant_affine_sumsq(x, gs)));
        uint32_t wq[8];
        float s, b, rs, rb;
        uint8_t bytes[32];
        mc_error err = {0};
        CHECK(mc_quant_affine_quantize(x, 1, gs, &p, wq, &s, &b, &err) == 0);
        ref_group(x, gs, bits, bytes, &rs, &rb);
        int diff = mc_f32_bits(s) != mc_f32_bits(rs) || mc_f32_bits(b) != mc_f32_bits(rb);
        for (int i = 0; i < 32; i++) diff += (uint8_t)(wq[i / 4] >> (8 * (i % 4))) != bytes[i];
        CHECK_EQ_U64(diff, 0);
        x[9] = NAN; /* and a NaN beside them is still refused */
        CHECK(mc_quant_affine_quantize(x, 1, gs, &p, wq, &s, &b, &err) == MC_ERR_ARG);
        CHECK(!isfinite(mc_quant_affine_sumsq(x, gs)));
    }
}

/* Code packing: mc_quant_pack_codes / mc_quant_unpack_codes against a plain
 * bit-by-bit bitstream (mc_quant_affine_code reads one code at a time). */
static void test_pack_roundtrip(void)
{
    static const int bitsv[] = {2, 3, 4, 5, 6, 8};
    uint8_t q[256], back[256];
    uint32_t w[64];
    int bad = 0;
    for (int bi = 0; bi < 6; bi++) {
        int bits = bitsv[bi];
        for (int trial = 0; trial < 50; trial++) {
            for (int i = 0; i < 256; i++) q[i] = (uint8_t)(rnd32() & ((1u << bits) - 1u));
            if (trial == 0) memset(q, (1 << bits) - 1, sizeof q); /* all ones */
            mc_quant_pack_codes(q, 256, bits, w);
            for (int i = 0; i < 256; i++) bad += mc_quant_affine_code(w, (uint64_t)i, bits) != q[i];
            /* bit-by-bit stream: bit k of code i at stream position i*bits + k */
            for (int i = 0; i < 256; i++)
                for (int k = 0; k < bits; k++) {
                    int pos = i * bits + k;
                    bad += (int)((w[pos / 32] >> (pos % 32)) & 1u) != ((q[i] >> k) & 1);
                }
            mc_quant_unpack_codes(w, 256, bits, back);
            bad += memcmp(q, back, sizeof q) != 0;
        }
    }
    CHECK_EQ_U64(bad, 0);
}

static void test_all(void);

int main(void)
{
    /* every check on each set of passes this build and processor have:
     * the compiled ones (limit 1), then the AVX-512 ones where they run */
    for (int limit = 1; limit >= 0; limit--) {
        mc_quant_affine_limit(limit);
        if (!limit && mc_quant_affine_path() != 3) break;
        printf("test_mlx_affine: quantizer passes %d\n", mc_quant_affine_path());
        test_all();
    }
    mc_quant_affine_limit(0);
    return mc_test_finish("test_mlx_affine");
}

static void test_all(void)
{
    test_row_words();
    test_params_refused();
    test_ramp_4bit();
    test_all_negative();
    test_zeros();
    test_constant();
    test_outlier();
    test_midpoints();
    test_edge_clamp();
    test_symmetric_full_step();
    test_packed_words();
    test_pack_roundtrip();
    test_dequant_arith();
    test_against_reference();
    test_scale_rounding();
    test_sumsq();
}
