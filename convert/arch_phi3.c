/* phi3: mlx-lm models/phi3.py keeps the fused projections: qkv_proj
 * ([q; k; v] rows) and gate_up_proj ([gate; up] rows), exactly what
 * llama.cpp stores as attn_qkv and ffn_up. No permutation (NEOX rotary). */
#include "mc_arch_rules.h"
#include <cJSON.h>

#define P MC_ROLE_PINNED
#define F MC_ROLE_FFN
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."
#define LY "model.layers.{L}."

static const mc_rule phi3_rules[] = {
    MC_RULES_GLOBAL,
    {LY "input_layernorm.weight", "blk.{L}.attn_norm.weight", LY "input_layernorm.weight", 0, 0, P, 0},
    {A "qkv_proj.weight", "blk.{L}.attn_qkv.weight", A "qkv_proj.weight", 0, 0, P, MC_R_Q},
    {A "o_proj.weight", "blk.{L}.attn_output.weight", A "o_proj.weight", 0, 0, P, MC_R_Q},
    {LY "post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", LY "post_attention_layernorm.weight", 0, 0, P, 0},
    {M "gate_up_proj.weight", "blk.{L}.ffn_up.weight", M "gate_up_proj.weight", 0, 0, F, MC_R_Q},
    {M "down_proj.weight", "blk.{L}.ffn_down.weight", M "down_proj.weight", 0, 0, F, MC_R_Q},
};

/* LongRoPE: llama.cpp stores long_factor / short_factor as tensors
 * rope_factors_long / rope_factors_short; phi3.py's SuScaledRoPE wants them
 * in rope_scaling. */
static int phi3_longrope(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    int bad = 0;
    float lf[4096], sf[4096];
    size_t nl = 0, ns = 0;
    int rl = mc_cv_gguf_read_f32(cv, "rope_factors_long.weight", lf, 4096, &nl, err);
    int rs = mc_cv_gguf_read_f32(cv, "rope_factors_short.weight", sf, 4096, &ns, err);
    if ((rl && rl != MC_ERR_NOTFOUND) || (rs && rs != MC_ERR_NOTFOUND)) return rl ? rl : rs;
    if (rl == 0 && rs == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
        cJSON *o = cJSON_AddObjectToObject(cfg, k->key);
        bad |= !o;
        if (o) {
            bad |= !cJSON_AddStringToObject(o, "type", "longrope");
            cJSON *a = cJSON_AddArrayToObject(o, "long_factor"), *b = cJSON_AddArrayToObject(o, "short_factor");
            bad |= !a || !b;
            for (size_t i = 0; a && i < nl; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(mc_cv_f32_decimal(lf[i])));
            for (size_t i = 0; b && i < ns; i++) cJSON_AddItemToArray(b, cJSON_CreateNumber(mc_cv_f32_decimal(sf[i])));
        }
    }
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

static const mc_cfg_key phi3_gguf_config[] = {
    MC_CFG_U("original_max_position_embeddings", "rope.scaling.original_context_length", MC_CK_OPT, 0),
    MC_CFG_PER_HEAD("partial_rotary_factor", "rope.dimension_count", MC_CK_OPT, 0),
    MC_CFG_U("sliding_window", "attention.sliding_window", MC_CK_OPT | MC_CK_POSITIVE, 0),
    MC_CFG_FN("rope_scaling", phi3_longrope),
};

const mc_arch mc_arch_phi3 = {
    .name = "phi3", .model_type = "phi3", .gguf_arch = "phi3", .hf_types = "phi3",
    .rules = phi3_rules, .n_rules = MC_COUNT(phi3_rules),
    .gguf_config = phi3_gguf_config, .n_gguf_config = MC_COUNT(phi3_gguf_config),
};
