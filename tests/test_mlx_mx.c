/* MLX mxfp4 / mxfp8 / nvfp4 quantization: hand-worked groups. */
#include "mc_mlx.h"
#include "mc_float.h"
#include "mc_test.h"

#include <math.h>
#include <string.h>

static void test_params(void)
{
    int b = 0, g = 0;
    CHECK(mc_quant_mx_params(MC_MX_MXFP4, &b, &g) == 0 && b == 4 && g == 32);
    CHECK(mc_quant_mx_params(MC_MX_MXFP8, &b, &g) == 0 && b == 8 && g == 32);
    CHECK(mc_quant_mx_params(MC_MX_NVFP4, &b, &g) == 0 && b == 4 && g == 16);
    CHECK(mc_quant_mx_params(7, &b, &g) == MC_ERR_ARG);
    CHECK_STR(mc_quant_mx_name(MC_MX_NVFP4), "nvfp4");
}

/* e4m3 (MLX ToFP8/FromFP8): 1.0 = exp 7 -> 0x38; -2 -> 0xC0; 448 -> 0x7E and
 * anything above saturates to 0x7E; 0.1 = 1.6 * 2^-4 -> mantissa 4.8 -> 5:
 * 0x1D (0.1015625); subnormal steps of 2^-9: 2^-10 ties to 0, 3*2^-10 ties
 * to 2 (even). */
static void test_e4m3(void)
{
    CHECK_EQ_U64(mc_quant_to_e4m3(1.0f), 0x38);
    CHECK_EQ_U64(mc_quant_to_e4m3(-2.0f), 0xC0);
    CHECK_EQ_U64(mc_quant_to_e4m3(448.0f), 0x7E);
    CHECK_EQ_U64(mc_quant_to_e4m3(1000.0f), 0x7E);
    CHECK_EQ_U64(mc_quant_to_e4m3(-1000.0f), 0xFE);
    CHECK_EQ_U64(mc_quant_to_e4m3(0.1f), 0x1D);
    CHECK_EQ_U64(mc_quant_to_e4m3(0.0009765625f), 0x00);
    CHECK_EQ_U64(mc_quant_to_e4m3(0.0029296875f), 0x02);
    CHECK(mc_quant_from_e4m3(0x7E) == 448.0f);
    CHECK(mc_quant_from_e4m3(0x1D) == 0.1015625f);
    CHECK(mc_quant_from_e4m3(0x01) == 0.001953125f);
    CHECK(mc_quant_from_e4m3(0xB8) == -1.0f);
    CHECK(mc_quant_from_e4m3(0x7F) == 480.0f); /* MLX decodes NaN's pattern as 480 */
}

/* mxfp4, f32: amax 6 -> scale 1 -> log2 0 -> e8m0 127. Codes (lut index):
 * 6 -> 7, 3 -> 5, -1.5 -> 11, 0.25 ties 0/0.5 -> 0 (first), 5 ties 4/6 -> 6
 * (4.0), -0.1 ties +0/-0 -> 0, 2.5 ties 2/3 -> 4 (2.0), 1.75 ties 1.5/2 -> 3. */
static void test_mxfp4_basic(void)
{
    float x[32] = {6.0f, 3.0f, -1.5f, 0.25f, 5.0f, -0.1f, 2.5f, 1.75f};
    uint32_t wq[4];
    uint8_t s;
    mc_mx p = {MC_MX_MXFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &p, wq, &s, NULL) == 0);
    CHECK_EQ_U64(s, 127);
    CHECK_EQ_U64(wq[0], 0x34060B57u);
    CHECK_EQ_U64(wq[1], 0);
    float out[32];
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &p, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 6.0f && out[1] == 3.0f && out[2] == -1.5f && out[3] == 0.0f);
    CHECK(out[4] == 4.0f && out[6] == 2.0f && out[7] == 1.5f);
}

/* The dtype MLX computes in changes the exponent:
 * f32: amax 16.96875 -> scale 2.828125, log2 = 1.49998 -> rint 1 -> 128.
 * bf16: amax 17 -> 17/6 = 2.8333 -> bf16 2.828125 -> log2 1.49998 -> bf16
 * 1.5 -> rint (even) 2 -> 129; then 17 / 4 = 4.25 -> 4.0 (index 6). */
static void test_mxfp4_dtype_exponent(void)
{
    float x[32] = {0};
    uint32_t wq[4];
    uint8_t s;
    x[0] = 16.96875f;
    mc_mx p32 = {MC_MX_MXFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &p32, wq, &s, NULL) == 0);
    CHECK_EQ_U64(s, 128);
    x[0] = 17.0f;
    mc_mx pb = {MC_MX_MXFP4, MC_T_BF16, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &pb, wq, &s, NULL) == 0);
    CHECK_EQ_U64(s, 129);
    CHECK_EQ_U64(wq[0] & 0xF, 6);
    float out[32];
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &pb, MC_T_BF16, out, NULL) == 0);
    CHECK(out[0] == 16.0f);
}

/* Zero group: scale 0 -> exponent 0 -> byte 127, codes 0. */
static void test_mxfp4_zero(void)
{
    float x[64] = {0};
    uint32_t wq[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    uint8_t s[2];
    mc_mx p = {MC_MX_MXFP4, MC_T_F16, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 2, 32, &p, wq, s, NULL) == 0);
    CHECK(s[0] == 127 && s[1] == 127);
    CHECK(wq[0] == 0 && wq[7] == 0);
}

/* mxfp8, f32: amax 448 -> scale 1 -> 127; bytes 448 -> 7E, 1 -> 38,
 * -2 -> C0, 0.1 -> 1D. */
static void test_mxfp8(void)
{
    float x[32] = {448.0f, 1.0f, -2.0f, 0.1f};
    uint32_t wq[8];
    uint8_t s;
    mc_mx p = {MC_MX_MXFP8, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &p, wq, &s, NULL) == 0);
    CHECK_EQ_U64(s, 127);
    CHECK_EQ_U64(wq[0], 0x1DC0387Eu);
    float out[32];
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &p, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 448.0f && out[3] == 0.1015625f);
    /* amax 896 -> scale 2 -> 128; 896 / 2 = 448 */
    x[0] = 896.0f;
    CHECK(mc_quant_mx_quantize(x, 1, 32, &p, wq, &s, NULL) == 0);
    CHECK_EQ_U64(s, 128);
    CHECK_EQ_U64(wq[0] & 0xFF, 0x7E);
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &p, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 896.0f && out[1] == 1.0f);
}

/* nvfp4, f32, group 16: amax 3 -> scale 0.5 -> e4m3 0x30; 3/0.5 = 6 -> 7,
 * 1/0.5 = 2 -> 4, -0.75/0.5 = -1.5 -> 11. With global scale 1344 the scale
 * is encoded times 2688/1344 = 2: e4m3(1.0) = 0x38, values (w/1)*2. */
static void test_nvfp4(void)
{
    float x[32] = {3.0f, 1.0f, -0.75f};
    x[16] = 6.0f;
    uint32_t wq[4];
    uint8_t s[2];
    mc_mx p = {MC_MX_NVFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &p, wq, s, NULL) == 0);
    CHECK_EQ_U64(s[0], 0x30);
    CHECK_EQ_U64(s[1], 0x38); /* amax 6 -> scale 1 */
    CHECK_EQ_U64(wq[0], 0xB47u);
    CHECK_EQ_U64(wq[2], 0x7u);
    float out[32];
    CHECK(mc_quant_mx_dequantize(wq, s, 1, 32, &p, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 3.0f && out[1] == 1.0f && out[2] == -0.75f && out[16] == 6.0f);
    mc_mx pg = {MC_MX_NVFP4, MC_T_F32, 1, 1344.0f};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &pg, wq, s, NULL) == 0);
    CHECK_EQ_U64(s[0], 0x38); /* 0.5 * 2 */
    CHECK_EQ_U64(wq[0], 0xB47u); /* (3/1)*2 = 6 -> 7; (1/1)*2 = 2; -1.5 */
    CHECK(mc_quant_mx_dequantize(wq, s, 1, 32, &pg, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 3.0f && out[1] == 1.0f);
}

/* Dequantization scale range: e8m0 byte 0 is 2^-127, which f16 flushes to
 * 0 and f32 keeps (subnormal); 254 is 2^127, inf in f16. */
static void test_mx_scale_range(void)
{
    uint32_t wq[4] = {0x7u, 0, 0, 0}; /* element 0 = 6.0 */
    uint8_t s = 0;
    float out[32];
    mc_mx p = {MC_MX_MXFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &p, MC_T_F32, out, NULL) == 0);
    CHECK(out[0] == 6.0f * ldexpf(1.0f, -127));
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &p, MC_T_F16, out, NULL) == 0);
    CHECK(out[0] == 0.0f);
    s = 254;
    CHECK(mc_quant_mx_dequantize(wq, &s, 1, 32, &p, MC_T_F16, out, NULL) == 0);
    CHECK(isinf(out[0]));
}

static void test_refused(void)
{
    float x[32] = {0};
    uint32_t wq[4];
    uint8_t s;
    mc_error err = {0};
    mc_mx p = {MC_MX_MXFP4, MC_T_F32, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 16, &p, wq, &s, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    x[3] = INFINITY;
    CHECK(mc_quant_mx_quantize(x, 1, 32, &p, wq, &s, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    mc_mx bad = {MC_MX_MXFP4, MC_T_F64, 0, 0};
    CHECK(mc_quant_mx_quantize(x, 1, 32, &bad, wq, &s, &err) == MC_ERR_ARG);
}

int main(void)
{
    test_params();
    test_e4m3();
    test_mxfp4_basic();
    test_mxfp4_dtype_exponent();
    test_mxfp4_zero();
    test_mxfp8();
    test_nvfp4();
    test_mx_scale_range();
    test_refused();
    return mc_test_finish("test_mlx_mx");
}
