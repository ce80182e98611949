/* Dequantizers: every GGML type against ggml's own numbers (corpus
 * ggml/quant-vectors.gguf: q.T -> deq.T and rnd.T -> rnddeq.T, bit for bit,
 * NaN matching NaN), row-range decoding, hand-computed values of the OCP
 * 8/6/4-bit floats, the branch-free f16 decoder against the reference one
 * over all 65536 inputs, and a random-bytes sweep over every decoder (run
 * under ASan+UBSan by scripts/test.sh) that also checks each decoder writes
 * exactly its n outputs. */
#include "mc_test.h"
#include "mc_types.h"
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int same_f32(float a, float b)
{
    if (isnan(a) && isnan(b)) return 1;
    return mc_f32_bits(a) == mc_f32_bits(b);
}

/* ------------------------------------------------------------ traits */

static void test_traits(void)
{
    /* every GGML type a GGUF file can carry has a decoder */
    for (int t = 0; t < MC_T_GGML_COUNT; t++) {
        const mc_type_traits *tr = mc_type_get(t);
        if (!tr) continue;
        CHECKF(tr->to_f32 != NULL, "type %s (%d) has no decoder", tr->name, t);
    }
    static const int sub_byte[] = { MC_T_F8_E4M3, MC_T_F8_E5M2, MC_T_F8_E8M0, MC_T_F4, MC_T_F6_E2M3, MC_T_F6_E3M2 };
    for (size_t i = 0; i < sizeof sub_byte / sizeof *sub_byte; i++) {
        const mc_type_traits *tr = mc_type_get(sub_byte[i]);
        CHECK(tr && tr->to_f32 != NULL);
    }
    mc_error err = { 0 };
    float out[64];
    unsigned char in[64] = { 0 };
    CHECK(mc_dequant(MC_T_Q4_0, in, out, 31, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    CHECK(mc_dequant(MC_T_C64, in, out, 1, &err) == MC_ERR_UNSUPPORTED);
    mc_error_clear(&err);
    CHECK(mc_dequant(4, in, out, 32, &err) == MC_ERR_UNSUPPORTED); /* removed GGML id */
}

/* ------------------------------------------------------------ f16 */

/* Every f16 input at the current decoder level: in order, then shuffled
 * from an odd address with a short tail (so runs of 32 mix NaN and Inf
 * with finite values, which the vector levels take by another path). */
static void test_f16_all(void)
{
    static unsigned char in[65536 * 2 + 1];
    static float out[65536];
    static uint16_t perm[65536];
    for (uint32_t h = 0; h < 65536; h++) {
        in[2 * h] = (unsigned char)(h & 0xff);
        in[2 * h + 1] = (unsigned char)(h >> 8);
    }
    mc_deq_f16(in, out, 65536);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float ref = mc_f16_to_f32((uint16_t)h);
        /* bit-identical, NaN payload included */
        if (mc_f32_bits(out[h]) != mc_f32_bits(ref)) bad++;
    }
    CHECKF(bad == 0, "%d of 65536 f16 inputs decode differently from mc_f16_to_f32", bad);
    for (uint32_t h = 0; h < 65536; h++) perm[h] = (uint16_t)h;
    uint64_t st = 0x2545F4914F6CDD1Dull;
    for (uint32_t h = 65535; h > 0; h--) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        const uint32_t j = (uint32_t)(st % (h + 1));
        const uint16_t t = perm[h];
        perm[h] = perm[j];
        perm[j] = t;
    }
    for (uint32_t k = 0; k < 65536; k++) {
        in[1 + 2 * k] = (unsigned char)(perm[k] & 0xff);
        in[2 + 2 * k] = (unsigned char)(perm[k] >> 8);
    }
    const int64_t n = 65536 - 5;
    out[n] = 42.0f;
    mc_deq_f16(in + 1, out, n);
    bad = 0;
    for (int64_t k = 0; k < n; k++) bad += mc_f32_bits(out[k]) != mc_f32_bits(mc_f16_to_f32(perm[k]));
    CHECKF(bad == 0, "shuffled, odd address: %d of %d f16 inputs decode differently", bad, (int)n);
    CHECK(out[n] == 42.0f); /* nothing written past n */
    /* in order again, for the fixed points below */
    for (uint32_t h = 0; h < 65536; h++) {
        in[2 * h] = (unsigned char)(h & 0xff);
        in[2 * h + 1] = (unsigned char)(h >> 8);
    }
    mc_deq_f16(in, out, 65536);
    /* a few fixed points */
    CHECK(out[0x3c00] == 1.0f && out[0xc000] == -2.0f && out[0x0001] == ldexpf(1.0f, -24));
    CHECK(out[0x7bff] == 65504.0f && isinf(out[0x7c00]) && isnan(out[0x7e00]));
    CHECK(mc_f32_bits(out[0x8000]) == 0x80000000u);
}

/* ------------------------------------------------------------ OCP small floats */

#define NAN_MARK 12345.0f /* stands for "expected NaN" in the tables below */

static void check_bytes(int t, const unsigned char *in, size_t nin, const float *want, int n, const char *what)
{
    float out[64];
    mc_error err = { 0 };
    (void)nin;
    int rc = mc_dequant(t, in, out, n, &err);
    CHECKF(rc == 0, "%s: %s", what, err.msg);
    if (rc) return;
    for (int i = 0; i < n; i++) {
        if (want[i] == NAN_MARK)
            CHECKF(isnan(out[i]), "%s[%d]: got %g, want NaN", what, i, out[i]);
        else
            CHECKF(mc_f32_bits(out[i]) == mc_f32_bits(want[i]), "%s[%d]: got %a, want %a", what, i,
                   (double)out[i], (double)want[i]);
    }
}

static void test_small_floats(void)
{
    /* F8_E4M3 (E4M3FN): bias 7, S.1111.111 NaN, no Inf, max 448 */
    {
        static const unsigned char in[] = { 0x00, 0x80, 0x01, 0x07, 0x08, 0x38, 0x3C, 0x40,
                                            0x77, 0x7E, 0xFE, 0x7F, 0xFF, 0xB8, 0x78, 0x7D };
        static const float want[] = { 0.0f, -0.0f, 0.001953125f, 0.013671875f, 0.015625f, 1.0f, 1.5f, 2.0f,
                                      240.0f, 448.0f, -448.0f, NAN_MARK, NAN_MARK, -1.0f, 256.0f, 416.0f };
        check_bytes(MC_T_F8_E4M3, in, sizeof in, want, 16, "f8_e4m3");
    }
    /* F8_E5M2: bias 15, IEEE Inf/NaN, max 57344 */
    {
        static const unsigned char in[] = { 0x00, 0x80, 0x01, 0x03, 0x04, 0x3C, 0xBC, 0x3E,
                                            0x7B, 0x7C, 0xFC, 0x7D, 0x7E, 0x7F, 0xFF, 0x41 };
        static const float want[] = { 0.0f, -0.0f, 1.52587890625e-05f, 4.57763671875e-05f, 6.103515625e-05f,
                                      1.0f, -1.0f, 1.5f, 57344.0f, INFINITY, -INFINITY, NAN_MARK, NAN_MARK,
                                      NAN_MARK, NAN_MARK, 2.5f };
        check_bytes(MC_T_F8_E5M2, in, sizeof in, want, 16, "f8_e5m2");
    }
    /* F8_E8M0: 2^(e-127), 0xFF NaN, no sign, no zero */
    {
        static const unsigned char in[] = { 0x7F, 0x80, 0x7E, 0x00, 0x01, 0xFE, 0xFF, 0x85 };
        float want[8] = { 1.0f, 2.0f, 0.5f, 0, 0, 0, NAN_MARK, 64.0f };
        want[3] = mc_f32_from_bits(0x00400000u); /* 2^-127: an f32 subnormal */
        want[4] = mc_f32_from_bits(0x00800000u); /* 2^-126 */
        want[5] = mc_f32_from_bits(0x7f000000u); /* 2^127 */
        check_bytes(MC_T_F8_E8M0, in, sizeof in, want, 8, "f8_e8m0");
        CHECK(want[3] == ldexpf(1.0f, -127) && want[5] == ldexpf(1.0f, 127));
    }
    /* F4 (E2M1), two per byte, low nibble first */
    {
        static const unsigned char in[] = { 0x21, 0xF7, 0x98, 0x5A, 0x00, 0x43, 0xEC, 0x6B };
        static const float want[] = { 0.5f, 1.0f, 6.0f, -6.0f, -0.0f, -0.5f, -1.0f, 3.0f,
                                      0.0f, 0.0f, 1.5f, 2.0f, -2.0f, -4.0f, -1.5f, 4.0f };
        check_bytes(MC_T_F4, in, sizeof in, want, 16, "f4");
    }
    /* long runs (table path) agree with one-at-a-time decoding (direct path) */
    {
        static const int t8[] = { MC_T_F8_E4M3, MC_T_F8_E5M2, MC_T_F8_E8M0 };
        static unsigned char in[4096];
        static float all[4096];
        for (int i = 0; i < 4096; i++) in[i] = (unsigned char)(i * 7 + (i >> 8));
        for (int k = 0; k < 3; k++) {
            CHECK(mc_dequant(t8[k], in, all, 4096, NULL) == 0);
            int bad = 0;
            for (int i = 0; i < 4096; i++) {
                float one;
                mc_dequant(t8[k], in + i, &one, 1, NULL);
                bad += mc_f32_bits(one) != mc_f32_bits(all[i]);
            }
            CHECKF(bad == 0, "%s: %d values differ between long and single decoding", mc_type_name(t8[k]), bad);
        }
    }
    /* F6_E2M3: bias 1, max 7.5; four per 3 bytes, LSB first.
     * group 1: 0x08 (1.0), 0x01 (0.125), 0x3F (-7.5), 0x14 (3.0)
     *   w = 0x08 | 0x01<<6 | 0x3F<<12 | 0x14<<18 = 0x53F048
     * group 2: 0x07 (0.875), 0x20 (-0), 0x1F (7.5), 0x29 (-1.125)
     *   w = 0x07 | 0x20<<6 | 0x1F<<12 | 0x29<<18 = 0xA5F807 */
    {
        static const unsigned char in[] = { 0x48, 0xF0, 0x53, 0x07, 0xF8, 0xA5 };
        static const float want[] = { 1.0f, 0.125f, -7.5f, 3.0f, 0.875f, -0.0f, 7.5f, -1.125f };
        check_bytes(MC_T_F6_E2M3, in, sizeof in, want, 8, "f6_e2m3");
    }
    /* F6_E3M2: bias 3, max 28, smallest subnormal 0.0625.
     * group 1: 0x0C (1.0), 0x01 (0.0625), 0x3F (-28), 0x16 (6.0)
     *   w = 0x0C | 0x01<<6 | 0x3F<<12 | 0x16<<18 = 0x5BF04C
     * group 2: 0x03 (0.1875), 0x04 (0.25), 0x2D (-1.25), 0x10 (2.0)
     *   w = 0x03 | 0x04<<6 | 0x2D<<12 | 0x10<<18 = 0x42D103 */
    {
        static const unsigned char in[] = { 0x4C, 0xF0, 0x5B, 0x03, 0xD1, 0x42 };
        static const float want[] = { 1.0f, 0.0625f, -28.0f, 6.0f, 0.1875f, 0.25f, -1.25f, 2.0f };
        check_bytes(MC_T_F6_E3M2, in, sizeof in, want, 8, "f6_e3m2");
    }
}

/* Q8_1 and Q8_K are not in the corpus (ggml has no to_float for Q8_1; Q8_K
 * is ggml's dot-product intermediate): hand-built blocks. */
static void test_q8_1_q8_K(void)
{
    unsigned char b1[2 * 36];
    memset(b1, 0, sizeof b1);
    b1[0] = 0x00, b1[1] = 0x40; /* d = 2.0 (f16 0x4000) */
    b1[2] = 0x00, b1[3] = 0x7C; /* s = +Inf: must be ignored */
    for (int j = 0; j < 32; j++) b1[4 + j] = (unsigned char)(int8_t)(j - 16);
    b1[36] = 0x00, b1[37] = 0xB8; /* second block: d = -0.5 (f16 0xB800) */
    b1[38] = 0xFF, b1[39] = 0x7F;
    for (int j = 0; j < 32; j++) b1[40 + j] = (unsigned char)(j == 0 ? 0x80 : j); /* -128, 1..31 */
    float out[256];
    CHECK(mc_dequant(MC_T_Q8_1, b1, out, 64, NULL) == 0);
    int bad = 0;
    for (int j = 0; j < 32; j++) bad += out[j] != (float)(2 * (j - 16));
    bad += out[32] != 64.0f;
    for (int j = 1; j < 32; j++) bad += out[32 + j] != -0.5f * (float)j;
    CHECKF(bad == 0, "q8_1: %d wrong values", bad);

    unsigned char bk[292];
    memset(bk, 0, sizeof bk);
    const float d = 0.25f;
    memcpy(bk, &d, 4); /* f32 little-endian on the hosts we build for */
    for (int j = 0; j < 256; j++) bk[4 + j] = (unsigned char)j; /* int8: 0..127, -128..-1 */
    for (int j = 260; j < 292; j++) bk[j] = 0xAB; /* bsums: ignored */
    CHECK(mc_dequant(MC_T_Q8_K, bk, out, 256, NULL) == 0);
    bad = 0;
    for (int j = 0; j < 256; j++) bad += out[j] != (float)(j < 128 ? j : j - 256) * 0.25f;
    CHECKF(bad == 0, "q8_K: %d wrong values", bad);
}

/* ------------------------------------------------------------ random sweep */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

#define SWEEP_BLOCKS 1024
#define GUARD 16
#define SENTINEL 0x7fbadbadu /* a NaN no decoder of a quantized type produces */

/* SWEEP_BLOCKS blocks of type tr: random bytes, the first block all 0x00
 * and the second all 0xFF (extremes of every field). NULL when out of
 * memory. */
static unsigned char *sweep_blocks(const mc_type_traits *tr)
{
    const size_t in_bytes = (size_t)SWEEP_BLOCKS * tr->type_size;
    unsigned char *in = malloc(in_bytes);
    if (!in) return NULL;
    for (size_t i = 0; i < in_bytes; i++) in[i] = (unsigned char)(rng() >> 56);
    memset(in, 0, tr->type_size);
    memset(in + tr->type_size, 0xFF, tr->type_size);
    return in;
}

static void test_random_sweep(void)
{
    int types = 0;
    for (int t = 0; t < MC_T_COUNT; t++) {
        const mc_type_traits *tr = mc_type_get(t);
        if (!tr || !tr->to_f32) continue;
        types++;
        const int64_t n = (int64_t)SWEEP_BLOCKS * tr->blck;
        unsigned char *in = sweep_blocks(tr);
        float *out = malloc(((size_t)n + GUARD) * sizeof(float));
        float *out2 = malloc((size_t)tr->blck * 4 * sizeof(float));
        if (!in || !out || !out2) {
            CHECK(!"out of memory");
            free(in), free(out), free(out2);
            return;
        }
        const uint32_t sent = SENTINEL;
        for (int64_t i = 0; i < n + GUARD; i++) memcpy(&out[i], &sent, 4);
        mc_error err = { 0 };
        int rc = mc_dequant(t, in, out, n, &err);
        CHECKF(rc == 0, "%s: %s", tr->name, err.msg);
        int over = 0, unwritten = 0;
        for (int64_t i = n; i < n + GUARD; i++) over += mc_f32_bits(out[i]) != SENTINEL;
        /* plain types (f32, integers) can legitimately produce any bits */
        if (tr->is_quant || t == MC_T_F16 || t == MC_T_BF16)
            for (int64_t i = 0; i < n; i++) unwritten += mc_f32_bits(out[i]) == SENTINEL;
        CHECKF(over == 0, "%s wrote %d floats past its output", tr->name, over);
        CHECKF(unwritten == 0, "%s left %d outputs unwritten", tr->name, unwritten);
        /* block-by-block decoding of a few blocks gives the same values
         * (no state carried between blocks) */
        int diff = 0;
        for (int k = 0; k < 8; k++) {
            size_t blk = (size_t)(rng() % (SWEEP_BLOCKS - 4));
            mc_dequant(t, in + blk * tr->type_size, out2, (int64_t)tr->blck * 4, NULL);
            for (uint32_t j = 0; j < tr->blck * 4; j++) diff += !same_f32(out2[j], out[blk * tr->blck + j]);
        }
        CHECKF(diff == 0, "%s: %d values differ when decoded block by block", tr->name, diff);
        free(in), free(out), free(out2);
    }
    CHECKF(types == 47, "%d types decoded", types); /* 46 + mconv's internal q4_0_bf16 */
}

/* ------------------------------------------------------------ ggml oracle */

/* Types in ggml/quant-vectors.gguf (its README). Every q.* tensor of the
 * file must be one of these (checked), so no type is silently skipped. */
static const char *const k_oracle_types[] = {
    "f16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K",
    "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "iq1_m",
    "bf16", "tq1_0", "tq2_0", "mxfp4", "nvfp4", "q1_0", "q2_0",
};
#define N_ORACLE (sizeof k_oracle_types / sizeof *k_oracle_types)

static void *read_tensor(const mc_gguf *g, const char *name, int want_type, uint64_t *nbytes)
{
    const mc_gguf_tensor *t = mc_gguf_find_tensor(g, name);
    CHECKF(t != NULL, "tensor %s absent", name);
    if (!t) return NULL;
    CHECKF(t->type == want_type, "%s: type %d, want %d", name, t->type, want_type);
    CHECKF(t->ne[0] == 512 && t->ne[1] == 8 && t->nelements == 4096, "%s: shape %llu x %llu", name,
           (unsigned long long)t->ne[0], (unsigned long long)t->ne[1]);
    if (t->type != want_type || t->nelements != 4096) return NULL;
    /* our traits table gives the size ggml wrote (independent check of
     * blck/type_size: the next tensor starts at the aligned end of this one) */
    uint64_t nb = 0;
    CHECK(mc_type_nbytes(want_type, t->nelements, &nb) == 0 && nb == t->nbytes);
    uint64_t next = UINT64_MAX;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].offset > t->offset && g->tensors[i].offset < next) next = g->tensors[i].offset;
    if (next != UINT64_MAX) {
        uint64_t a = g->alignment, padded = (nb + a - 1) / a * a;
        CHECKF(next - t->offset == padded, "%s: %llu bytes by our traits, ggml laid out %llu", name,
               (unsigned long long)padded, (unsigned long long)(next - t->offset));
    }
    void *buf = malloc(t->nbytes);
    if (!buf) return NULL;
    mc_error err = { 0 };
    int rc = mc_gguf_read(g, t, 0, buf, t->nbytes, &err);
    CHECKF(rc == 0, "%s: %s", name, err.msg);
    if (rc) {
        free(buf);
        return NULL;
    }
    *nbytes = t->nbytes;
    return buf;
}

/* Decode q.<T> (or rnd.<T>) and compare with deq.<T> (rnddeq.<T>); also
 * decode rows 3..5 alone. Returns the number of mismatching values. */
static int oracle_one(const mc_gguf *g, const char *tname, int rnd)
{
    const int t = mc_type_from_name(tname);
    CHECKF(t >= 0, "type %s unknown", tname);
    if (t < 0) return -1;
    char qn[64], dn[64];
    snprintf(qn, sizeof qn, "%s.%s", rnd ? "rnd" : "q", tname);
    snprintf(dn, sizeof dn, "%s.%s", rnd ? "rnddeq" : "deq", tname);
    uint64_t qbytes = 0, dbytes = 0;
    unsigned char *q = read_tensor(g, qn, t, &qbytes);
    float *want = read_tensor(g, dn, MC_T_F32, &dbytes);
    int bad = -1;
    float *got = malloc(4096 * sizeof(float));
    float *rows = malloc(3 * 512 * sizeof(float));
    if (q && want && got && rows) {
        mc_error err = { 0 };
        int rc = mc_dequant(t, q, got, 4096, &err);
        CHECKF(rc == 0, "%s: %s", qn, err.msg);
        bad = 0;
        int first = -1;
        for (int i = 0; i < 4096; i++)
            if (!same_f32(got[i], want[i])) {
                if (first < 0) first = i;
                bad++;
            }
        CHECKF(bad == 0, "%s: %d of 4096 values differ from ggml's %s (first at %d: %a, ggml %a)", qn, bad, dn,
               first, first >= 0 ? (double)got[first] : 0.0, first >= 0 ? (double)want[first] : 0.0);
        /* rows 3..5 alone, from their own byte offset */
        const uint64_t row_bytes = qbytes / 8;
        rc = mc_dequant(t, q + 3 * row_bytes, rows, 3 * 512, &err);
        CHECKF(rc == 0, "%s rows 3..5: %s", qn, err.msg);
        int rbad = 0;
        for (int i = 0; i < 3 * 512; i++) rbad += !same_f32(rows[i], got[3 * 512 + i]);
        CHECKF(rbad == 0, "%s: rows 3..5 decoded alone differ in %d values from the full decode", qn, rbad);
        /* the NaN/Inf cases of rnd.* are really exercised where ggml made them */
        if (rnd) {
            int nan_want = 0, nan_got = 0;
            for (int i = 0; i < 4096; i++) nan_want += isnan(want[i]), nan_got += isnan(got[i]);
            CHECKF(nan_want == nan_got, "%s: %d NaN, ggml %d", qn, nan_got, nan_want);
        }
    }
    free(q), free(want), free(got), free(rows);
    return bad;
}

static void test_oracle(void)
{
    const char *path = mc_test_corpus_file("ggml/quant-vectors.gguf");
    if (!path) return;
    mc_gguf *g = NULL;
    mc_error err = { 0 };
    if (mc_gguf_open_single(path, &g, &err) != 0) {
        CHECKF(0, "%s: %s", path, err.msg);
        return;
    }
    /* every q.* tensor of the file is in our list */
    int n_q = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const char *nm = g->tensors[i].name.s;
        if (strncmp(nm, "q.", 2) != 0) continue;
        n_q++;
        int known = 0;
        for (size_t k = 0; k < N_ORACLE; k++) known |= strcmp(nm + 2, k_oracle_types[k]) == 0;
        CHECKF(known, "%s in the corpus is not checked here", nm);
    }
    CHECK_EQ_U64(n_q, N_ORACLE);
    int total_bad = 0;
    for (size_t k = 0; k < N_ORACLE; k++) {
        int bq = oracle_one(g, k_oracle_types[k], 0);
        int br = oracle_one(g, k_oracle_types[k], 1);
        printf("oracle %-8s q->deq: %4d of 4096 mismatch   rnd->rnddeq: %4d of 4096 mismatch\n", k_oracle_types[k],
               bq, br);
        total_bad += (bq != 0) + (br != 0);
    }
    printf("oracle: %zu types, %d tensors not bit-exact\n", N_ORACLE, total_bad);
    mc_gguf_close(g);
}

/* Every decoder level this processor has (mc_dequant_path: the compiled
 * decoders, then the AVX2 and AVX-512 builds) gives the compiled level's
 * bits for every type, on random blocks (NaN and Inf scales included) and
 * blocks of all 0x00 and all 0xFF. */
static void test_levels_agree(void)
{
    int levels = 0;
    for (int lv = 2; lv <= 3; lv++) {
        mc_dequant_limit(lv);
        if (mc_dequant_path() != lv) {
            printf("test_dequant: SKIP level %d: this processor lacks %s\n", lv, lv == 2 ? "AVX2/FMA/F16C" : "AVX-512");
            continue;
        }
        levels++;
        int types = 0, diff = 0;
        for (int t = 0; t < MC_T_COUNT; t++) {
            const mc_type_traits *tr = mc_type_get(t);
            if (!tr || !tr->to_f32) continue;
            types++;
            const int64_t n = (int64_t)SWEEP_BLOCKS * tr->blck;
            unsigned char *in = sweep_blocks(tr);
            float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
            if (!in || !a || !b) {
                CHECK(!"out of memory");
                free(in), free(a), free(b);
                break;
            }
            mc_dequant_limit(1);
            CHECK(mc_dequant(t, in, a, n, NULL) == 0);
            mc_dequant_limit(lv);
            CHECK(mc_dequant(t, in, b, n, NULL) == 0);
            int d = 0;
            for (int64_t i = 0; i < n; i++) d += mc_f32_bits(a[i]) != mc_f32_bits(b[i]);
            CHECKF(d == 0, "%s: %d values differ between decoder levels 1 and %d", tr->name, d, lv);
            diff += d;
            free(in), free(a), free(b);
        }
        printf("test_dequant: level %d: %d types, %d values differ from level 1\n", lv, types, diff);
    }
    mc_dequant_limit(0);
    printf("test_dequant: %d vector decoder levels checked\n", levels);
}

int main(void)
{
    /* the ggml oracle and the sweep on every decoder level this processor
     * has (1: as compiled, then 2 AVX2 and 3 AVX-512 where they run) */
    for (int lv = 1; lv <= 3; lv++) {
        mc_dequant_limit(lv);
        if (mc_dequant_path() != lv) continue;
        printf("test_dequant: decoder level %d\n", lv);
        test_oracle();
        test_random_sweep();
        test_f16_all();
    }
    mc_dequant_limit(0);
    test_levels_agree();
    test_traits();
    test_small_floats();
    test_q8_1_q8_K();
    return mc_test_finish("test_dequant");
}
