/* Lossless GGML -> MLX repacking: hand-made blocks with hand-worked MLX
 * words, scales and biases; then every q.<type> / rnd.<type> tensor of the
 * corpus's quant-vectors.gguf repacked and dequantized with MLX's formula,
 * compared with ggml's own dequantization (deq.<type> / rnddeq.<type>). */
#include "mc_repack.h"
#include "mc_mlx.h"
#include "mc_float.h"
#include "mc_gguf.h"
#include "mc_dequant.h"
#include "mc_types.h"
#include "mc_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static void test_supported(void)
{
    int bits = 0, group = 0, exact = -1;
    CHECK(mc_quant_repack_supported(MC_T_Q4_0, MC_T_F16, &bits, &group, &exact) == 1);
    CHECK(bits == 4 && group == 32 && exact == 1);
    CHECK(mc_quant_repack_supported(MC_T_Q4_0, MC_T_BF16, &bits, &group, &exact) == 1);
    CHECK(exact == 0);
    CHECK(mc_quant_repack_supported(MC_T_Q5_1, MC_T_F16, &bits, &group, &exact) == 1);
    CHECK(bits == 5 && exact == 1);
    CHECK(mc_quant_repack_supported(MC_T_Q8_0, MC_T_F32, &bits, &group, &exact) == 1);
    CHECK(bits == 8 && exact == 1);
    CHECK(mc_quant_repack_supported(MC_T_Q4_K, MC_T_F16, &bits, &group, &exact) == 1);
    CHECK(bits == 4 && exact == 0);
    CHECK(mc_quant_repack_supported(MC_T_Q5_K, MC_T_F32, &bits, &group, &exact) == 1);
    CHECK(bits == 5 && exact == 1);
    CHECK(mc_quant_repack_supported(MC_T_MXFP4, MC_T_BF16, &bits, &group, &exact) == 1);
    CHECK(bits == 4 && exact == 1);
    CHECK(mc_quant_repack_supported(MC_T_NVFP4, MC_T_F16, &bits, &group, &exact) == 0);
    CHECK(mc_quant_repack_mx_mode(MC_T_NVFP4) == MC_MX_NVFP4);
    CHECK(mc_quant_repack_mx_mode(MC_T_MXFP4) == MC_MX_MXFP4);
    CHECK(mc_quant_repack_mx_mode(MC_T_Q4_K) == 0);
    CHECK(mc_quant_repack_supported(MC_T_Q6_K, MC_T_F32, NULL, NULL, NULL) == 0); /* groups of 16 */
    CHECK(mc_quant_repack_supported(MC_T_Q2_K, MC_T_F32, NULL, NULL, NULL) == 0);
    CHECK(mc_quant_repack_supported(MC_T_IQ4_NL, MC_T_F32, NULL, NULL, NULL) == 0); /* non-linear */
    CHECK(mc_quant_repack_supported(MC_T_Q4_0, MC_T_F64, NULL, NULL, NULL) == 0);
}

/* Q4_0, d = 0.5 (0x3800), qs[j] = j | (15-j) << 4: element j (low nibbles)
 * has code j, element 16+j code 15-j. MLX words: 0x76543210 0xFEDCBA98
 * 0x89ABCDEF 0x01234567; scale 0.5, bias -8 * 0.5 = -4 (0xC400). */
static void test_q4_0_hand(void)
{
    uint8_t blk[18];
    put16(blk, 0x3800);
    for (int j = 0; j < 16; j++) blk[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    uint32_t wq[4];
    uint16_t s, b;
    mc_affine p = {0, 0, 0};
    CHECK(mc_quant_repack(MC_T_Q4_0, blk, 1, 32, MC_T_F16, wq, &s, &b, &p, NULL) == 0);
    CHECK(p.bits == 4 && p.group_size == 32 && p.scale_type == MC_T_F16);
    CHECK_EQ_U64(wq[0], 0x76543210u);
    CHECK_EQ_U64(wq[1], 0xFEDCBA98u);
    CHECK_EQ_U64(wq[2], 0x89ABCDEFu);
    CHECK_EQ_U64(wq[3], 0x01234567u);
    CHECK_EQ_U64(s, 0x3800);
    CHECK_EQ_U64(b, 0xC400);
    float out[32];
    CHECK(mc_quant_affine_dequantize(wq, &s, &b, 1, 32, &p, out, NULL) == 0);
    CHECK(out[0] == -4.0f);   /* (0 - 8) * 0.5 */
    CHECK(out[15] == 3.5f);   /* (15 - 8) * 0.5 */
    CHECK(out[16] == 3.5f);
    CHECK(out[31] == -4.0f);
}

/* Q4_0 with d = 16384 (0x7400): bias -131072 overflows f16: refused; with
 * f32 scales it is exact. */
static void test_q4_0_overflow(void)
{
    uint8_t blk[18] = {0};
    put16(blk, 0x7400);
    uint32_t wq[4];
    uint16_t s16, b16;
    float s32, b32;
    mc_error err = {0};
    CHECK(mc_quant_repack(MC_T_Q4_0, blk, 1, 32, MC_T_F16, wq, &s16, &b16, NULL, &err) ==
          MC_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "overflow") != NULL);
    CHECK(mc_quant_repack(MC_T_Q4_0, blk, 1, 32, MC_T_F32, wq, &s32, &b32, NULL, NULL) == 0);
    CHECK(s32 == 16384.0f && b32 == -131072.0f);
    /* non-finite d (0x7C00 = +inf) refused */
    put16(blk, 0x7C00);
    mc_error_clear(&err);
    CHECK(mc_quant_repack(MC_T_Q4_0, blk, 1, 32, MC_T_F32, wq, &s32, &b32, NULL, &err) ==
          MC_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "non-finite") != NULL);
}

/* Q4_1: d = 2 (0x4000), m = -1 (0xBC00); codes copied; bias = m. */
static void test_q4_1_hand(void)
{
    uint8_t blk[20] = {0};
    put16(blk, 0x4000);
    put16(blk + 2, 0xBC00);
    blk[4] = 0x3F; /* element 0 code 15, element 16 code 3 */
    uint32_t wq[4];
    uint16_t s, b;
    CHECK(mc_quant_repack(MC_T_Q4_1, blk, 1, 32, MC_T_F16, wq, &s, &b, NULL, NULL) == 0);
    CHECK_EQ_U64(wq[0], 0xFu);
    CHECK_EQ_U64(wq[2], 0x3u);
    CHECK(s == 0x4000 && b == 0xBC00);
}

/* Q8_0: d = 0.25 (0x3400); int8 -128, 127, 0, -1 -> codes (q ^ 0x80)
 * 0x00, 0xFF, 0x80, 0x7F -> word 0x7F80FF00; bias -128 * 0.25 = -32 (0xD000). */
static void test_q8_0_hand(void)
{
    uint8_t blk[34] = {0};
    put16(blk, 0x3400);
    blk[2] = 0x80; blk[3] = 0x7F; blk[4] = 0x00; blk[5] = 0xFF;
    uint32_t wq[8];
    uint16_t s, b;
    mc_affine p;
    CHECK(mc_quant_repack(MC_T_Q8_0, blk, 1, 32, MC_T_F16, wq, &s, &b, &p, NULL) == 0);
    CHECK(p.bits == 8);
    CHECK_EQ_U64(wq[0], 0x7F80FF00u);
    CHECK_EQ_U64(wq[1], 0x80808080u);
    CHECK_EQ_U64(s, 0x3400);
    CHECK_EQ_U64(b, 0xD000);
    /* d = 512 (0x6000): -128 * 512 = -65536 overflows f16 */
    put16(blk, 0x6000);
    CHECK(mc_quant_repack(MC_T_Q8_0, blk, 1, 32, MC_T_F16, wq, &s, &b, NULL, NULL) ==
          MC_ERR_UNSUPPORTED);
    put16(blk, 0x5FFF); /* 511.75: -65504, the largest finite f16 */
    CHECK(mc_quant_repack(MC_T_Q8_0, blk, 1, 32, MC_T_F16, wq, &s, &b, NULL, NULL) == 0);
    CHECK_EQ_U64(b, 0xFBFF);
}

/* Q5_0: d = 1 (0x3C00), qh = 0x80000001, qs = 0: element 0 and element 31
 * get the fifth bit: codes 16 at bit 0 and at bits 155..159 (word 4, bit
 * 27): words 0x10, 0, 0, 0, 0x80000000; bias -16 (0xCC00). Q5_1 the same
 * with m = 0.5 (0x3800) as bias. */
static void test_q5_hand(void)
{
    uint8_t blk[24] = {0};
    put16(blk, 0x3C00);
    blk[2] = 0x01; blk[5] = 0x80;
    uint32_t wq[5];
    uint16_t s, b;
    CHECK(mc_quant_repack(MC_T_Q5_0, blk, 1, 32, MC_T_F16, wq, &s, &b, NULL, NULL) == 0);
    CHECK_EQ_U64(wq[0], 0x10u);
    CHECK_EQ_U64(wq[1], 0);
    CHECK_EQ_U64(wq[4], 0x80000000u);
    CHECK_EQ_U64(b, 0xCC00);
    memset(blk, 0, sizeof blk);
    put16(blk, 0x3C00);
    put16(blk + 2, 0x3800);
    blk[4] = 0x01; blk[7] = 0x80;
    blk[8] = 0x21; /* element 0 low nibble 1 (| 16 = 17), element 16 code 2 */
    CHECK(mc_quant_repack(MC_T_Q5_1, blk, 1, 32, MC_T_F16, wq, &s, &b, NULL, NULL) == 0);
    CHECK_EQ_U64(wq[0], 0x11u);
    CHECK_EQ_U64(wq[2], 0x20000u);             /* element 16 at bit 80 = word 2 bit 16 */
    CHECK_EQ_U64(wq[4], 0x80000000u);
    CHECK(s == 0x3C00 && b == 0x3800);
}

/* Q4_K: d = 1, dmin = 0.5. Sub-block 0: sc 1, m 2 (scales[0], [4]);
 * sub-block 1: sc 3, m 4 with the top bits of sub-block 5 (sc 19 = 0x13,
 * m 42 = 0x2A): scales[1] = 3 | 1 << 6, scales[5] = 4 | 2 << 6,
 * scales[9] = 0x3 | 0xA << 4. qs[0] = 0x5A: group 0 code 10, group 1 code 5;
 * qs[65] = 0x70: group 5 (high nibbles of bytes 64..95) element 1 code 7.
 * MLX: group 0 scale 1, bias -1; group 1 scale 3, bias -2; group 5 scale
 * 19, bias -21: 19*7 - 21 = 112. With f16 scales d = 0.1 (0x2E66 =
 * 0.0999755859375): d*19 = 1.8995361328125 needs 14 bits -> f16 1.8994140625
 * (0x3F99): a rounded scale. */
static void test_q4_K_hand(void)
{
    uint8_t blk[144] = {0};
    put16(blk, 0x3C00);
    put16(blk + 2, 0x3800);
    uint8_t *sc = blk + 4;
    sc[0] = 1; sc[4] = 2;
    sc[1] = 3 | (1 << 6); sc[5] = 4 | (2 << 6);
    sc[9] = 0x3 | (0xA << 4);
    uint8_t *qs = blk + 16;
    qs[0] = 0x5A;
    qs[65] = 0x70;
    uint32_t wq[8 * 4];
    float s[8], b[8];
    mc_affine p;
    CHECK(mc_quant_repack(MC_T_Q4_K, blk, 1, 256, MC_T_F32, wq, s, b, &p, NULL) == 0);
    CHECK(p.bits == 4 && p.group_size == 32);
    CHECK(s[0] == 1.0f && b[0] == -1.0f);
    CHECK(s[1] == 3.0f && b[1] == -2.0f);
    CHECK(s[5] == 19.0f && b[5] == -21.0f);
    CHECK(s[2] == 0.0f);
    CHECK_EQ_U64(wq[0], 0xAu);
    CHECK_EQ_U64(wq[4], 0x5u);
    CHECK_EQ_U64(wq[5 * 4], 0x70u);
    float out[256], ref[256];
    CHECK(mc_quant_affine_dequantize(wq, s, b, 1, 256, &p, out, NULL) == 0);
    CHECK(out[5 * 32 + 1] == 112.0f);
    CHECK(out[0] == 9.0f); /* 1*10 - 1 */
    mc_deq_q4_K(blk, ref, 256);
    int same = 1;
    for (int i = 0; i < 256; i++) same &= out[i] == ref[i];
    CHECK(same);
    uint16_t s16[8], b16[8];
    put16(blk, 0x2E66);
    CHECK(mc_quant_repack(MC_T_Q4_K, blk, 1, 256, MC_T_F16, wq, s16, b16, NULL, NULL) == 0);
    CHECK_EQ_U64(s16[5], 0x3F99);
}

/* Q5_K: the fifth bit of group `is` is bit `is` of qh[l]. d = 1, dmin = 0,
 * sub-block 3 sc 1 (scales[3] = 1); qh[2] = 1 << 3, ql[32 + 2] = 0x40:
 * group 3 element 2 code 4 + 16 = 20 -> group bits 10..14 (its word 0). */
static void test_q5_K_hand(void)
{
    uint8_t blk[176] = {0};
    put16(blk, 0x3C00);
    blk[4 + 3] = 1;
    blk[16 + 2] = 1 << 3;
    blk[48 + 32 + 2] = 0x40;
    uint32_t wq[8 * 5];
    float s[8], b[8];
    CHECK(mc_quant_repack(MC_T_Q5_K, blk, 1, 256, MC_T_F32, wq, s, b, NULL, NULL) == 0);
    CHECK(s[3] == 1.0f && b[3] == 0.0f);
    CHECK_EQ_U64(wq[3 * 5], 20u << 10);
    CHECK_EQ_U64(mc_quant_affine_code(wq + 3 * 5, 2, 5), 20);
}

/* MXFP4: e = 128, qs[0] = 0x71: element 0 code 1 (0.5), element 16 code 7
 * (6): MLX nibble 0 of word 0 and of word 2; the e8m0 byte copied. MLX
 * dequantizes 0.5 * 2^(128-127) = 1 and 6 * 2 = 12 = ggml's 1 * 2^(128-128)
 * (kvalue 1 for code 1) and 12. */
static void test_mxfp4_hand(void)
{
    uint8_t blk[17] = {0};
    blk[0] = 128;
    blk[1] = 0x71;
    uint32_t wq[4];
    uint8_t s;
    mc_affine p;
    CHECK(mc_quant_repack(MC_T_MXFP4, blk, 1, 32, MC_T_BF16, wq, &s, NULL, &p, NULL) == 0);
    CHECK(p.scale_type == MC_T_F8_E8M0 && p.bits == 4 && p.group_size == 32);
    CHECK_EQ_U64(s, 128);
    CHECK_EQ_U64(wq[0], 0x1u);
    CHECK_EQ_U64(wq[2], 0x7u);
    float out[32], ref[32];
    mc_mx mx = {MC_MX_MXFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &mx, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 1.0f && out[16] == 12.0f);
    mc_deq_mxfp4(blk, ref, 32);
    CHECK(ref[0] == 1.0f && ref[16] == 12.0f);
    blk[0] = 0xFF;
    CHECK(mc_quant_repack(MC_T_MXFP4, blk, 1, 32, MC_T_BF16, wq, &s, NULL, &p, NULL) ==
          MC_ERR_UNSUPPORTED);
}

/* NVFP4 (ggml: 4 sub-blocks of 16, unsigned e4m3 bytes, value = kvalue *
 * e4m3/2 = lut * e4m3): d = {0x38, 0xB8, 0x7F, 0x40}: 1.0, 1.0 (bit 7
 * ignored by ggml -> cleared), 0 (the byte 0x7F is 0 in ggml, 480 in MLX ->
 * 0x00; 0xFF is 480 in ggml -> 0x7F), 2.0. qs[0] = 0x71: sub-block 0 element 0 code 1, element 8 code 7 ->
 * MLX nibble 0 of word 0 and of word 1. */
static void test_nvfp4_hand(void)
{
    uint8_t blk[36] = {0x38, 0xB8, 0x7F, 0x40};
    blk[4] = 0x71;
    blk[4 + 8 * 3] = 0x0F; /* sub-block 3 element 0 code 15 (-6) */
    uint32_t wq[8];
    uint8_t s[4];
    mc_affine p;
    CHECK(mc_quant_repack(MC_T_NVFP4, blk, 1, 64, MC_T_F16, wq, s, NULL, &p, NULL) == 0);
    CHECK(p.bits == 4 && p.group_size == 16 && p.scale_type == MC_T_F8_E4M3);
    CHECK(s[0] == 0x38 && s[1] == 0x38 && s[2] == 0x00 && s[3] == 0x40);
    CHECK_EQ_U64(wq[0], 0x1u);
    CHECK_EQ_U64(wq[1], 0x7u);
    CHECK_EQ_U64(wq[6], 0xFu);
    float out[64], ref[64];
    mc_mx mx = {MC_MX_NVFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_dequantize(wq, s, 1, 64, &mx, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 0.5f && out[8] == 6.0f && out[48] == -12.0f);
    mc_deq_nvfp4(blk, ref, 64);
    int same = 1;
    for (int i = 0; i < 64; i++) same &= out[i] == ref[i];
    CHECK(same);
    blk[2] = 0xFF;
    CHECK(mc_quant_repack(MC_T_NVFP4, blk, 1, 64, MC_T_F16, wq, s, NULL, &p, NULL) == 0);
    CHECK_EQ_U64(s[2], 0x7F);
}

/* ---- corpus: quant-vectors.gguf ---- */

static float *read_tensor(mc_gguf *g, const char *name, const mc_gguf_tensor **tp)
{
    const mc_gguf_tensor *t = mc_gguf_find_tensor(g, name);
    if (!t) return NULL;
    void *buf = malloc(t->nbytes ? t->nbytes : 1);
    mc_error err = {0};
    if (mc_gguf_read(g, t, 0, buf, t->nbytes, &err)) {
        fprintf(stderr, "read %s: %s\n", name, err.msg);
        free(buf);
        return NULL;
    }
    if (tp) *tp = t;
    return buf;
}

static int same_value(float a, float b)
{
    if (a != a) return b != b;
    if (a == 0.0f) return b == 0.0f; /* +0 / -0: see mc_repack.h */
    return mc_f32_bits(a) == mc_f32_bits(b);
}

/* MLX dequantization of a repacked tensor (affine or mxfp4) into out. */
static int mlx_deq(int type, const uint32_t *wq, const void *s, const void *b, uint64_t rows,
                   uint64_t cols, const mc_affine *p, float *out)
{
    if (type == MC_T_MXFP4 || type == MC_T_NVFP4) {
        mc_mx mx = {type == MC_T_MXFP4 ? MC_MX_MXFP4 : MC_MX_NVFP4, MC_T_F32, 0, 0};
        return mc_quant_mx_dequantize(wq, s, rows, cols, &mx, MC_T_F32, out, NULL);
    }
    return mc_quant_affine_dequantize(wq, s, b, rows, cols, p, out, NULL);
}

static void corpus_type(mc_gguf *g, int type)
{
    const char *tn = mc_type_name(type);
    char name[64];
    static const int sts[] = {MC_T_F32, MC_T_F16, MC_T_BF16};
    for (int which = 0; which < 2; which++) {
        const mc_gguf_tensor *tq = NULL, *td = NULL;
        snprintf(name, sizeof name, "%s.%s", which ? "rnd" : "q", tn);
        void *blocks = read_tensor(g, name, &tq);
        snprintf(name, sizeof name, "%s.%s", which ? "rnddeq" : "deq", tn);
        float *ref = read_tensor(g, name, &td);
        if (!blocks || !ref) {
            mc_test_skip("%s.%s not in quant-vectors.gguf", which ? "rnd" : "q", tn);
            free(blocks); free(ref);
            continue;
        }
        const uint64_t cols = tq->ne[0], rows = tq->nelements / cols;
        const mc_type_traits *tr = mc_type_get(type);
        const uint64_t row_bytes = cols / tr->blck * tr->type_size;
        float *out = malloc(sizeof(float) * cols);
        uint32_t *wq = malloc(4 * cols);
        float *s = malloc(4 * cols / 32), *b = malloc(4 * cols / 32);
        for (int si = 0; si < 3; si++) {
            int st = sts[si];
            int bits = 4, grp = 16, exact = 1;
            if (type != MC_T_NVFP4)
                CHECK(mc_quant_repack_supported(type, st, &bits, &grp, &exact) == 1);
            int rows_ok = 0, rows_refused = 0, bad = 0;
            for (uint64_t r = 0; r < rows; r++) {
                const uint8_t *rb = (const uint8_t *)blocks + r * row_bytes;
                const float *rr = ref + r * cols;
                mc_affine p;
                mc_error err = {0};
                int rc = mc_quant_repack(type, rb, 1, cols, st, wq, s, b, &p, &err);
                /* A row is refused only when a block scale is not finite
                 * (ggml's values then hold NaN/Inf) or, for f16, a bias overflows. */
                int nonfinite = 0;
                for (uint64_t i = 0; i < cols; i++) nonfinite |= !isfinite(rr[i]);
                if (rc) {
                    rows_refused++;
                    CHECKF(rc == MC_ERR_UNSUPPORTED, "%s %s row %llu: %s", name, mc_type_name(st),
                           (unsigned long long)r, err.msg);
                    CHECKF(nonfinite || (st == MC_T_F16 && strstr(err.msg, "overflow")),
                           "%s %s row %llu refused without cause: %s", name, mc_type_name(st),
                           (unsigned long long)r, err.msg);
                    continue;
                }
                rows_ok++;
                CHECK(mlx_deq(type, wq, s, b, 1, cols, &p, out) == 0);
                for (uint64_t i = 0; i < cols; i++) {
                    int ok;
                    if (type == MC_T_MXFP4 || type == MC_T_NVFP4 || st == MC_T_F32) {
                        ok = same_value(out[i], rr[i]); /* exact */
                    } else {
                        /* MLX computes in T: out = T(T(q*s) + b). For exact
                         * types (s, b) are ggml's (d, c) unchanged: out must
                         * equal that formula over ggml's own d and c. For
                         * rounded scales: within the rounding of s and b. */
                        uint64_t gi = i / 32;
                        uint32_t q = mc_quant_affine_code(wq, i, p.bits);
                        float sT = mc_quant_scale_get(s, gi, st), bT = mc_quant_scale_get(b, gi, st);
                        double u = st == MC_T_F16 ? 1.0 / 2048 : 1.0 / 256;
                        double tol = (double)q * fabs((double)sT) * u + fabs((double)bT) * u +
                                     u * (fabs((double)q * sT) + fabs((double)out[i])) +
                                     (st == MC_T_F16 ? (q + 2) * ldexp(1.0, -24) : 0);
                        ok = fabs((double)out[i] - (double)rr[i]) <= tol;
                        if (exact) {
                            /* the stored parameters are ggml's exactly: the
                             * f32 dequantization of them is ggml's value */
                            float o32 = (float)q * sT;
                            o32 = o32 + bT;
                            ok = ok && same_value(o32, rr[i]);
                        }
                    }
                    if (!ok) {
                        if (bad < 5)
                            fprintf(stderr, "%s %s row %llu col %llu: mlx %.9g ggml %.9g\n", name,
                                    mc_type_name(st), (unsigned long long)r, (unsigned long long)i,
                                    out[i], rr[i]);
                        bad++;
                    }
                }
            }
            CHECKF(bad == 0, "%s with %s scales: %d values differ", name, mc_type_name(st), bad);
            if (which == 0) CHECKF(rows_refused == 0, "%s %s: %d rows refused", name, mc_type_name(st), rows_refused);
            /* random bytes: f16 refuses most rows (bias overflow) for some types */
            if (which == 0 || st != MC_T_F16)
                CHECKF(rows_ok > 0, "%s %s: no row repacked", name, mc_type_name(st));
            if (getenv("MCONV_TEST_VERBOSE"))
                fprintf(stderr, "%s %s: %d rows exact/within bound, %d refused\n", name,
                        mc_type_name(st), rows_ok, rows_refused);
            if (type == MC_T_MXFP4 || type == MC_T_NVFP4) break; /* scale_type does not apply */
        }
        free(out); free(wq); free(s); free(b);
        free(blocks); free(ref);
    }
}

static void test_corpus(void)
{
    const char *path = mc_test_corpus_file("ggml/quant-vectors.gguf");
    if (!path) return;
    mc_gguf *g = NULL;
    mc_error err = {0};
    if (mc_gguf_open(path, &g, &err)) {
        CHECKF(0, "open %s: %s", path, err.msg);
        return;
    }
    static const int types[] = {MC_T_Q4_0, MC_T_Q4_1, MC_T_Q5_0, MC_T_Q5_1, MC_T_Q8_0,
                                MC_T_Q4_K, MC_T_Q5_K, MC_T_MXFP4, MC_T_NVFP4};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) corpus_type(g, types[i]);
    mc_gguf_close(g);
}

/* compressed-tensors INT4 -> Q4_0_BF16 blocks -> MLX affine (bf16 scales):
 * exhaustive over every bf16 scale. The claim (mc_repack.h): scale = d and
 * bias = -8d are exact in bf16 for every finite d with |8d| finite; those
 * with |8d| overflowing and the non-finite ones are refused; MLX's
 * q*scale + bias (f32) gives (q - 8) * d, the compressed-tensors value. */
static void test_ct_int4_bf16_exhaustive(void)
{
    uint8_t packed[16], sc[2], blk[18];
    uint32_t words[4], wq[4];
    /* element i of the group in word i / 8, bits 4 * (i % 8): codes 0..15 twice, shuffled */
    uint8_t q[32];
    for (int i = 0; i < 32; i++) q[i] = (uint8_t)((i * 7 + 3) & 15);
    for (int w = 0; w < 4; w++) {
        words[w] = 0;
        for (int i = 0; i < 8; i++) words[w] |= (uint32_t)q[w * 8 + i] << (4 * i);
        for (int k = 0; k < 4; k++) packed[w * 4 + k] = (uint8_t)(words[w] >> (8 * k));
    }
    long exact = 0, refused = 0, bad = 0, mlx_overflow = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        put16(sc, (uint16_t)h);
        mc_quant_ct_int4_blocks(packed, sc, 1, blk);
        float d = mc_bf16_to_f32((uint16_t)h), deq[32];
        mc_dequant(MC_T_Q4_0_BF16, blk, deq, 32, NULL);
        for (int i = 0; i < 32 && isfinite(d); i++) {
            float want = (float)((int)q[i] - 8) * d;
            if (memcmp(&deq[i], &want, 4) != 0) bad++;
        }
        uint16_t s16 = 0, b16 = 0;
        mc_error err = {0};
        int rc = mc_quant_repack(MC_T_Q4_0_BF16, blk, 1, 32, MC_T_BF16, wq, &s16, &b16, NULL, &err);
        int finite8 = isfinite(d) && isfinite(8.0 * (double)d) && fabs(8.0 * (double)d) <= 0x1.fep127;
        if (!finite8) {
            refused += rc == MC_ERR_UNSUPPORTED;
            bad += rc != MC_ERR_UNSUPPORTED;
            continue;
        }
        int ok = rc == 0 && memcmp(wq, words, 16) == 0 && s16 == h &&
                 (double)mc_bf16_to_f32(b16) == -8.0 * (double)d;
        for (int i = 0; ok && i < 32; i++) { /* MLX: q * scale + bias in f32 (q * scale itself finite:
                                                 |d| < 2^124 * 8.5 / 15 or so; beyond, MLX's own f32 formula overflows) */
            float prod = (float)q[i] * mc_bf16_to_f32(s16), mlx = prod + mc_bf16_to_f32(b16);
            if (!isfinite(prod)) { mlx_overflow++; continue; }
            ok = mlx == (float)((int)q[i] - 8) * d;
        }
        exact += ok;
        if (!ok && bad < 4) fprintf(stderr, "bf16 %04x: rc %d scale %04x bias %04x\n", (unsigned)h, rc, s16, b16);
        bad += !ok;
    }
    CHECKF(bad == 0, "%ld bf16 scales not exact", bad);
    CHECK(exact + refused == 0x10000 && refused == 2 * (128 + 3 * 128)); /* Inf/NaN (exponent 255) and |d| >= 2^125 (exponents 252-254), both signs */
    printf("ct int4 -> MLX bf16: %ld scales exact, %ld refused (non-finite or |8d| overflows); %ld values where MLX's "
           "q * scale overflows f32 (|d| near 2^124)\n", exact, refused, mlx_overflow);
}

int main(void)
{
    test_supported();
    test_q4_0_hand();
    test_q4_0_overflow();
    test_q4_1_hand();
    test_q8_0_hand();
    test_q5_hand();
    test_q4_K_hand();
    test_q5_K_hand();
    test_mxfp4_hand();
    test_nvfp4_hand();
    test_ct_int4_bf16_exhaustive();
    test_corpus();
    return mc_test_finish("test_repack");
}
