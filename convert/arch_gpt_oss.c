/* gpt_oss (gpt-oss-20b / 120b): mlx-lm models/gpt_oss.py; llama.cpp GGUF
 * arch "gpt-oss" (GptOssModel in convert_hf_to_gguf.py, src/models/openai-moe*.cpp).
 *
 * Attention: q/k/v/o with biases, no RoPE row permutation (NEOX rotary),
 * attention sinks (self_attn.sinks, one per head: never quantized).
 * Layers alternate sliding-window / full attention (layer_types; llama.cpp
 * set_swa_pattern(2): even layers sliding). Every layer is MoE: the router
 * mlp.router (Linear with bias; mlx-lm's quant_predicate keeps it at 8 bits,
 * group 64) and SwitchGLU experts mlp.experts.{gate,up,down}_proj with
 * biases (routed experts streamed; their biases, [E, n], pinned).
 *
 * Sources of the experts:
 *  - GGUF: ffn_{gate,up,down}_exps (+ .bias), already split and [E, out, in]
 *    (bf16 / q8_0 / Q4_K_M, or MXFP4 blocks in MXFP4_MOE files);
 *  - HF bf16 (transformers' GptOssExperts): gate_up_proj [E, H, 2I] with
 *    gate in the even columns, up in the odd ones, down_proj [E, I, H], i.e.
 *    [in, out]: each expert's block is transposed with a column step
 *    (mc_build_part_cols); gate_up_proj_bias [E, 2I] likewise per column;
 *  - HF hub MXFP4 (gate_up_proj_blocks [E, 2I, H/32, 16] + _scales
 *    [E, 2I, H/32], down_proj_blocks [E, H, I/32, 16]): already [out, in]; the
 *    mxfp4-blocks encoding gives MXFP4 rows, gate = even rows, up = odd rows
 *    (mlx-lm's sanitize v[..., ::2, :]), lossless (MC_X_EVEN / MC_X_ODD). */
#include "mc_arch_rules.h"
#include "mc_convert_priv.h"
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define X MC_ROLE_EXPERT
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."
#define HE "model.layers.{L}.mlp.experts."

enum { B_GATE_W, B_UP_W, B_DOWN_W, B_GATE_B, B_UP_B };

/* The HF experts' expert count E, hidden H and expert width I from
 * gate_up_proj: bf16 [E, H, 2I], or hub MXFP4 rows [E, 2I, H]. */
static int go_dims(mc_cv *cv, const mc_part *gu, int blocks, uint64_t *E, uint64_t *H, uint64_t *I, mc_error *err)
{
    uint32_t nd;
    uint64_t s[MC_MT_MAX_DIMS];
    mc_cv_source_shape(gu, &nd, s);
    uint64_t two_i = blocks ? s[1] : s[2], h = blocks ? s[2] : s[1];
    if (nd != 3 || s[0] == 0 || two_i == 0 || two_i % 2 || h == 0 || (cv->hidden && h != cv->hidden))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: tensor %s: expected [experts, %s] (hidden %llu), got %u dims [%llu, %llu, %llu]",
                            cv->m->input_path, mc_cv_part_name(gu), blocks ? "2 * expert width, hidden" : "hidden, 2 * expert width",
                            (unsigned long long)cv->hidden, nd, (unsigned long long)s[0],
                            (unsigned long long)(nd > 1 ? s[1] : 0), (unsigned long long)(nd > 2 ? s[2] : 0));
    *E = s[0];
    *H = h;
    *I = two_i / 2;
    return 0;
}

static int go_is_blocks(const mc_part *p)
{
    return p->enc && p->enc->name && strcmp(p->enc->name, "mxfp4-blocks") == 0;
}

/* gate (arg 0) or up (1) projection weight [E, I, H]. */
static int go_gate_up_w(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err, uint64_t arg)
{
    mc_part gu;
    uint64_t E = 0, H = 0, I = 0;
    int rc;
    if (!mc_build_source(cv, r, L, b, &gu)) return 0;
    int blocks = go_is_blocks(&gu);
    if (blocks && (rc = mc_enc_mxfp4_check(cv->m->input_path, &gu, err))) return rc;
    if ((rc = go_dims(cv, &gu, blocks, &E, &H, &I, err))) return rc;
    if (blocks) {
        /* rows [E * 2I] of MXFP4 blocks: the even / odd ones, lossless */
        if ((rc = mc_build_part(b, &gu, 0, E * I, 0, err))) return rc;
        b->rec->rows_x = (uint8_t)(arg ? MC_X_ODD : MC_X_EVEN);
        b->rec->rows_arg = (uint32_t)arg;
    } else {
        for (uint64_t e = 0; e < E; e++)
            if ((rc = mc_build_part_cols(b, &gu, e * H, I, H, arg, 2, err))) return rc;
    }
    mc_build_shape(b, 3, (uint64_t[]){E, I, H});
    return 0;
}

static int go_gate_w(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return go_gate_up_w(cv, r, L, b, err, 0);
}

static int go_up_w(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return go_gate_up_w(cv, r, L, b, err, 1);
}

/* down_proj: bf16 [E, I, H] transposed per expert; hub MXFP4 rows [E, H, I] as they are. */
static int go_down_w(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    mc_part d;
    uint32_t nd;
    uint64_t s[MC_MT_MAX_DIMS];
    int rc;
    if (!mc_build_source(cv, r, L, b, &d)) return 0;
    int blocks = go_is_blocks(&d);
    if (blocks && (rc = mc_enc_mxfp4_check(cv->m->input_path, &d, err))) return rc;
    mc_cv_source_shape(&d, &nd, s);
    uint64_t H = blocks ? s[1] : s[2];
    if (nd != 3 || s[0] == 0 || s[1] == 0 || s[2] == 0 || (cv->hidden && H != cv->hidden))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s: expected 3 dims with hidden %llu %s",
                            cv->m->input_path, mc_cv_part_name(&d), (unsigned long long)cv->hidden,
                            blocks ? "rows" : "columns");
    uint64_t E = s[0], I = blocks ? s[2] : s[1];
    if (blocks) {
        if ((rc = mc_build_part(b, &d, 0, E * H, 0, err))) return rc;
    } else {
        for (uint64_t e = 0; e < E; e++)
            if ((rc = mc_build_part(b, &d, e * I, H, I, err))) return rc;
    }
    mc_build_shape(b, 3, (uint64_t[]){E, H, I});
    return 0;
}

/* gate / up bias [E, I] from gate_up_proj_bias [E, 2I]: each output
 * element is one column of a source row (flat rows of one element). */
static int go_gate_up_b(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err, uint64_t arg)
{
    mc_part gb;
    uint32_t nd;
    uint64_t s[MC_MT_MAX_DIMS];
    int rc;
    if (!mc_build_source(cv, r, L, b, &gb)) return 0;
    mc_cv_source_shape(&gb, &nd, s);
    if (nd != 2 || s[0] == 0 || s[1] == 0 || s[1] % 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s: expected [experts, 2 * expert width]",
                            cv->m->input_path, mc_cv_part_name(&gb));
    uint64_t E = s[0], I = s[1] / 2;
    for (uint64_t e = 0; e < E; e++)
        if ((rc = mc_build_part_cols(b, &gb, e, I, 1, arg, 2, err))) return rc;
    b->flat = 1;
    mc_build_shape(b, 2, (uint64_t[]){E, I});
    return 0;
}

static int go_gate_b(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return go_gate_up_b(cv, r, L, b, err, 0);
}

static int go_up_b(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return go_gate_up_b(cv, r, L, b, err, 1);
}

static const mc_build_fn gpt_oss_builders[] = {
    [B_GATE_W] = go_gate_w, [B_UP_W] = go_up_w, [B_DOWN_W] = go_down_w, [B_GATE_B] = go_gate_b, [B_UP_B] = go_up_b,
};

static const mc_rule gpt_oss_rules[] = {
    MC_RULES_GLOBAL,
    {"model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", 0, 0, P, 0},
    {A "q_proj.weight", "blk.{L}.attn_q.weight", A "q_proj.weight", 0, 0, P, MC_R_Q},
    {A "q_proj.bias", "blk.{L}.attn_q.bias", A "q_proj.bias", 0, 0, P, 0},
    {A "k_proj.weight", "blk.{L}.attn_k.weight", A "k_proj.weight", 0, 0, P, MC_R_Q},
    {A "k_proj.bias", "blk.{L}.attn_k.bias", A "k_proj.bias", 0, 0, P, 0},
    {A "v_proj.weight", "blk.{L}.attn_v.weight", A "v_proj.weight", 0, 0, P, MC_R_Q},
    {A "v_proj.bias", "blk.{L}.attn_v.bias", A "v_proj.bias", 0, 0, P, 0},
    {A "o_proj.weight", "blk.{L}.attn_output.weight", A "o_proj.weight", 0, 0, P, MC_R_Q},
    {A "o_proj.bias", "blk.{L}.attn_output.bias", A "o_proj.bias", 0, 0, P, 0},
    {A "sinks", "blk.{L}.attn_sinks.weight", A "sinks", 0, 0, P, 0},
    {"model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.post_attention_norm.weight",
     "model.layers.{L}.post_attention_layernorm.weight", 0, 0, P, 0},
    {M "router.weight", "blk.{L}.ffn_gate_inp.weight", M "router.weight", 0, 0, P, MC_R_Q | MC_R_Q8},
    {M "router.bias", "blk.{L}.ffn_gate_inp.bias", M "router.bias", 0, 0, P, 0},
    {M "experts.gate_proj.weight", "blk.{L}.ffn_gate_exps.weight", HE "gate_up_proj", 0, MC_X_B(B_GATE_W), X, MC_R_Q},
    {M "experts.gate_proj.weight", NULL, M "experts.gate_proj.weight", 0, 0, X, MC_R_Q}, /* mlx-lm form */
    {M "experts.gate_proj.bias", "blk.{L}.ffn_gate_exps.bias", HE "gate_up_proj_bias", 0, MC_X_B(B_GATE_B), P, 0},
    {M "experts.gate_proj.bias", NULL, M "experts.gate_proj.bias", 0, 0, P, 0},
    {M "experts.up_proj.weight", "blk.{L}.ffn_up_exps.weight", HE "gate_up_proj", 0, MC_X_B(B_UP_W), X, MC_R_Q},
    {M "experts.up_proj.weight", NULL, M "experts.up_proj.weight", 0, 0, X, MC_R_Q},
    {M "experts.up_proj.bias", "blk.{L}.ffn_up_exps.bias", HE "gate_up_proj_bias", 0, MC_X_B(B_UP_B), P, 0},
    {M "experts.up_proj.bias", NULL, M "experts.up_proj.bias", 0, 0, P, 0},
    {M "experts.down_proj.weight", "blk.{L}.ffn_down_exps.weight", HE "down_proj", 0, MC_X_B(B_DOWN_W), X, MC_R_Q},
    {M "experts.down_proj.weight", NULL, M "experts.down_proj.weight", 0, 0, X, MC_R_Q},
    {M "experts.down_proj.bias", "blk.{L}.ffn_down_exps.bias", HE "down_proj_bias", 0, 0, P, 0},
};

/* layer_types: llama.cpp's gpt-oss graph uses set_swa_pattern(2): layer L
 * is sliding-window when L % 2 == 0 (what the hub configs say too). */
static int go_cfg_layer_types(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    cJSON *a = cJSON_CreateArray();
    int bad = !a;
    for (int L = 0; a && L < cv->m->n_layers; L++) {
        cJSON *s = cJSON_CreateString(L % 2 == 0 ? "sliding_attention" : "full_attention");
        bad |= !s || !cJSON_AddItemToArray(a, s);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    if (bad || !cJSON_AddItemToObject(cfg, k->key, a)) {
        cJSON_Delete(a);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", cv->m->input_path);
    }
    return 0;
}

/* YaRN's beta_fast / beta_slow (gpt-oss: 32 / 1) into the common rope_scaling. */
static int go_cfg_yarn_betas(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, k->key);
    static const char *const keys[][2] = {{"beta_fast", "rope.scaling.yarn_beta_fast"},
                                          {"beta_slow", "rope.scaling.yarn_beta_slow"}};
    if (!cJSON_IsObject(rs)) return 0;
    for (size_t i = 0; i < 2; i++) {
        double d;
        if (mc_cv_gguf_f64(cv, keys[i][1], &d)) continue;
        cJSON_DeleteItemFromObjectCaseSensitive(rs, keys[i][0]);
        if (!cJSON_AddNumberToObject(rs, keys[i][0], mc_cv_f32_decimal(d)))
            return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", cv->m->input_path);
    }
    return 0;
}

static const mc_cfg_key gpt_oss_gguf_config[] = {
    MC_CFG_FN("rope_scaling", go_cfg_yarn_betas),
    MC_CFG_U("intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_MODEL("num_local_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_MODEL("experts_per_token", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_U("sliding_window", "attention.sliding_window", 0, 128),
    MC_CFG_FN("layer_types", go_cfg_layer_types),
    MC_CFG_BOOL("attention_bias", 1, 0),
};

/* A hub checkpoint's quantization_config {"quant_method": "mxfp4"} describes
 * the _blocks / _scales source, not mconv's output (recorded in "quantization"). */
static int go_cfg_hub_quant(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)cv;
    (void)err;
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(cfg, k->key);
    const cJSON *qm = qc ? cJSON_GetObjectItemCaseSensitive(qc, "quant_method") : NULL;
    if (cJSON_IsString(qm) && strcmp(qm->valuestring, "mxfp4") == 0) cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    return 0;
}

static const mc_cfg_key gpt_oss_hf_config[] = {
    MC_CFG_FN("quantization_config", go_cfg_hub_quant),
};

const mc_arch mc_arch_gpt_oss = {
    .name = "gpt_oss", .model_type = "gpt_oss", .gguf_arch = "gpt-oss", .hf_types = "gpt_oss",
    .rules = gpt_oss_rules, .n_rules = MC_COUNT(gpt_oss_rules),
    .builders = gpt_oss_builders, .n_builders = MC_COUNT(gpt_oss_builders),
    .kinds = {MC_KINDS_ALL(MC_K_ATTN | MC_K_MOE)},
    .gguf_config = gpt_oss_gguf_config, .n_gguf_config = MC_COUNT(gpt_oss_gguf_config),
    .hf_config = gpt_oss_hf_config, .n_hf_config = MC_COUNT(gpt_oss_hf_config),
};
