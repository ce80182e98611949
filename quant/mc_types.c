#include "mc_types.h"
#include "mc_dequant.h"

#include <string.h>
#include <strings.h>

#define Q(nm, b, s, fn, sb) { nm, NULL, b, s, 1, 1, 0, fn, sb }
static const mc_type_traits g_traits[MC_T_COUNT] = {
    [MC_T_F32] = { "f32", "F32", 1, 4, 0, 1, 1, mc_deq_f32, 0 },
    [MC_T_F16] = { "f16", "F16", 1, 2, 0, 1, 1, mc_deq_f16, 0 },
    [MC_T_BF16] = { "bf16", "BF16", 1, 2, 0, 1, 1, mc_deq_bf16, 0 },
    [MC_T_F64] = { "f64", "F64", 1, 8, 0, 1, 1, mc_deq_f64, 0 },
    [MC_T_I8] = { "i8", "I8", 1, 1, 0, 1, 0, mc_deq_i8, 0 },
    [MC_T_I16] = { "i16", "I16", 1, 2, 0, 1, 0, mc_deq_i16, 0 },
    [MC_T_I32] = { "i32", "I32", 1, 4, 0, 1, 0, mc_deq_i32, 0 },
    [MC_T_I64] = { "i64", "I64", 1, 8, 0, 1, 0, mc_deq_i64, 0 },
    [MC_T_Q4_0] = Q("q4_0", 32, 18, mc_deq_q4_0, 4),
    [MC_T_Q4_1] = Q("q4_1", 32, 20, mc_deq_q4_1, 4),
    [MC_T_Q5_0] = Q("q5_0", 32, 22, mc_deq_q5_0, 5),
    [MC_T_Q5_1] = Q("q5_1", 32, 24, mc_deq_q5_1, 5),
    [MC_T_Q8_0] = Q("q8_0", 32, 34, mc_deq_q8_0, 8),
    [MC_T_Q8_1] = Q("q8_1", 32, 36, mc_deq_q8_1, 8),
    [MC_T_Q2_K] = Q("q2_K", 256, 84, mc_deq_q2_K, 2),
    [MC_T_Q3_K] = Q("q3_K", 256, 110, mc_deq_q3_K, 3),
    [MC_T_Q4_K] = Q("q4_K", 256, 144, mc_deq_q4_K, 4),
    [MC_T_Q5_K] = Q("q5_K", 256, 176, mc_deq_q5_K, 5),
    [MC_T_Q6_K] = Q("q6_K", 256, 210, mc_deq_q6_K, 6),
    [MC_T_Q8_K] = Q("q8_K", 256, 292, mc_deq_q8_K, 8),
    [MC_T_IQ2_XXS] = Q("iq2_xxs", 256, 66, mc_deq_iq2_xxs, 2),
    [MC_T_IQ2_XS] = Q("iq2_xs", 256, 74, mc_deq_iq2_xs, 2),
    [MC_T_IQ3_XXS] = Q("iq3_xxs", 256, 98, mc_deq_iq3_xxs, 3),
    [MC_T_IQ1_S] = Q("iq1_s", 256, 50, mc_deq_iq1_s, 2),
    [MC_T_IQ4_NL] = Q("iq4_nl", 32, 18, mc_deq_iq4_nl, 4),
    [MC_T_IQ3_S] = Q("iq3_s", 256, 110, mc_deq_iq3_s, 3),
    [MC_T_IQ2_S] = Q("iq2_s", 256, 82, mc_deq_iq2_s, 2),
    [MC_T_IQ4_XS] = Q("iq4_xs", 256, 136, mc_deq_iq4_xs, 4),
    [MC_T_IQ1_M] = Q("iq1_m", 256, 56, mc_deq_iq1_m, 2),
    [MC_T_TQ1_0] = Q("tq1_0", 256, 54, mc_deq_tq1_0, 2),
    [MC_T_TQ2_0] = Q("tq2_0", 256, 66, mc_deq_tq2_0, 2),
    [MC_T_MXFP4] = Q("mxfp4", 32, 17, mc_deq_mxfp4, 4),
    [MC_T_NVFP4] = Q("nvfp4", 64, 36, mc_deq_nvfp4, 4),
    [MC_T_Q1_0] = Q("q1_0", 128, 18, mc_deq_q1_0, 2),
    [MC_T_Q2_0] = Q("q2_0", 64, 18, mc_deq_q2_0, 2),
    [MC_T_BOOL] = { "bool", "BOOL", 1, 1, 0, 0, 0, mc_deq_u8, 0 },
    [MC_T_U8] = { "u8", "U8", 1, 1, 0, 0, 0, mc_deq_u8, 0 },
    [MC_T_U16] = { "u16", "U16", 1, 2, 0, 0, 0, mc_deq_u16, 0 },
    [MC_T_U32] = { "u32", "U32", 1, 4, 0, 0, 0, mc_deq_u32, 0 },
    [MC_T_U64] = { "u64", "U64", 1, 8, 0, 0, 0, mc_deq_u64, 0 },
    [MC_T_F8_E4M3] = { "f8_e4m3", "F8_E4M3", 1, 1, 0, 0, 1, mc_deq_f8_e4m3, 0 },
    [MC_T_F8_E5M2] = { "f8_e5m2", "F8_E5M2", 1, 1, 0, 0, 1, mc_deq_f8_e5m2, 0 },
    [MC_T_F8_E8M0] = { "f8_e8m0", "F8_E8M0", 1, 1, 0, 0, 1, mc_deq_f8_e8m0, 0 },
    [MC_T_F4] = { "f4", "F4", 2, 1, 0, 0, 1, mc_deq_f4, 0 },
    [MC_T_F6_E2M3] = { "f6_e2m3", "F6_E2M3", 4, 3, 0, 0, 1, mc_deq_f6_e2m3, 0 },
    [MC_T_F6_E3M2] = { "f6_e3m2", "F6_E3M2", 4, 3, 0, 0, 1, mc_deq_f6_e3m2, 0 },
    [MC_T_C64] = { "c64", "C64", 1, 8, 0, 0, 0, NULL, 0 },
    [MC_T_Q4_0_BF16] = { "q4_0_bf16", NULL, 32, 18, 1, 0, 0, mc_deq_q4_0_bf16, 4 },
};
#undef Q

const mc_type_traits *mc_type_get(int t)
{
    if (t < 0 || t >= MC_T_COUNT || !g_traits[t].name) return NULL;
    return &g_traits[t];
}

const char *mc_type_name(int t)
{
    const mc_type_traits *tr = mc_type_get(t);
    return tr ? tr->name : "?";
}

int mc_type_from_name(const char *name)
{
    for (int t = 0; t < MC_T_COUNT; t++)
        if (g_traits[t].name && strcasecmp(g_traits[t].name, name) == 0) return t;
    return -1;
}

int mc_type_from_st_name(const char *st_name)
{
    for (int t = 0; t < MC_T_COUNT; t++)
        if (g_traits[t].st_name && strcmp(g_traits[t].st_name, st_name) == 0) return t;
    return -1;
}

int mc_type_nbytes(int t, uint64_t n, uint64_t *out)
{
    const mc_type_traits *tr = mc_type_get(t);
    if (!tr || n % tr->blck != 0) return 1;
    uint64_t blocks = n / tr->blck;
    if (tr->type_size != 0 && blocks > UINT64_MAX / tr->type_size) return 1;
    *out = blocks * tr->type_size;
    return 0;
}

int mc_type_src_bits(int t)
{
    const mc_type_traits *tr = mc_type_get(t);
    return tr ? tr->src_bits : 0;
}

double mc_type_bpw(int t)
{
    const mc_type_traits *tr = mc_type_get(t);
    return tr ? (double)tr->type_size * 8.0 / (double)tr->blck : 0.0;
}
