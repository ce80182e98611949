/* glm4_moe: GLM-4.5 / 4.6 / 4.7 / 4.5-Air (mlx-lm models/glm4_moe.py;
 * llama.cpp Glm4MoeModel, GGUF arch glm4moe). Rules and their sources are
 * in docs/CONVERT.md ("glm4_moe").
 *
 * Llama-shaped attention with q/k/v biases (attention_bias) and optional
 * per-head q_norm / k_norm (use_qk_norm); rotary over part of the head
 * (partial_rotary_factor; llama.cpp writes rope.dimension_count = head_dim *
 * factor and keeps Q/K in HF order: GLM uses NeoX rotary, no permutation);
 * the first first_k_dense_replace layers dense, the rest MoE with a sigmoid
 * router (MoEGate: a bare weight, never quantized), its
 * e_score_correction_bias (kept float32 as mlx-lm's cast_predicate), one
 * shared expert and routed experts stacked into switch_mlp. The MTP
 * (nextn) block llama.cpp keeps (blk.N.nextn.* and the block's ordinary
 * tensors; HF model.layers.<num_hidden_layers>) is dropped with a notice,
 * as mlx-lm's sanitize does. mlx-lm glm4_moe has no quant_predicate: every
 * Linear and the embedding are quantized at the global bits. */
#include "mc_arch_rules.h"
#include <cJSON.h>

#define P MC_ROLE_PINNED
#define Q MC_R_Q
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."
#define G "blk.{L}."
#define R(mlx, g, h, role, flags) {mlx, g, h, 0, 0, role, flags}

static const mc_rule glm4_moe_rules[] = {
    MC_RULES_GLOBAL,
    R("model.layers.{L}.input_layernorm.weight", G "attn_norm.weight", "model.layers.{L}.input_layernorm.weight", P, 0),
    R(A "q_proj.weight", G "attn_q.weight", A "q_proj.weight", P, Q),
    R(A "k_proj.weight", G "attn_k.weight", A "k_proj.weight", P, Q),
    R(A "v_proj.weight", G "attn_v.weight", A "v_proj.weight", P, Q),
    /* attention_bias: config.json says whether the biases exist (MC_CFG_HAS) */
    R(A "q_proj.bias", G "attn_q.bias", A "q_proj.bias", P, MC_R_OPT),
    R(A "k_proj.bias", G "attn_k.bias", A "k_proj.bias", P, MC_R_OPT),
    R(A "v_proj.bias", G "attn_v.bias", A "v_proj.bias", P, MC_R_OPT),
    R(A "o_proj.weight", G "attn_output.weight", A "o_proj.weight", P, Q),
    /* use_qk_norm */
    R(A "q_norm.weight", G "attn_q_norm.weight", A "q_norm.weight", P, MC_R_OPT),
    R(A "k_norm.weight", G "attn_k_norm.weight", A "k_norm.weight", P, MC_R_OPT),
    /* llama.cpp names GLM's post-attention norm post_attention_norm (ATTN_POST_NORM) */
    R("model.layers.{L}.post_attention_layernorm.weight", G "post_attention_norm.weight",
      "model.layers.{L}.post_attention_layernorm.weight", P, 0),
    MC_RULES_MLP(MC_R_DENSE),
    R(M "gate.weight", G "ffn_gate_inp.weight", M "gate.weight", P, MC_R_MOE),
    R(M "gate.e_score_correction_bias", G "exp_probs_b.bias", M "gate.e_score_correction_bias", P,
      MC_R_MOE | MC_R_OPT | MC_R_KEEP_DTYPE),
    R(M "shared_experts.gate_proj.weight", G "ffn_gate_shexp.weight", M "shared_experts.gate_proj.weight", P,
      Q | MC_R_MOE | MC_R_OPT),
    R(M "shared_experts.up_proj.weight", G "ffn_up_shexp.weight", M "shared_experts.up_proj.weight", P,
      Q | MC_R_MOE | MC_R_OPT),
    R(M "shared_experts.down_proj.weight", G "ffn_down_shexp.weight", M "shared_experts.down_proj.weight", P,
      Q | MC_R_MOE | MC_R_OPT),
    MC_RULES_EXPERTS(M, M "experts.{E}.gate_proj.weight", M "experts.{E}.up_proj.weight",
                     M "experts.{E}.down_proj.weight"),
};

/* A key mlx-lm's ModelArgs requires without a default (glm4_moe
 * rope_scaling: Optional[Dict] with no default): null when nothing set it. */
static int glm_cfg_null(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    if (cJSON_GetObjectItemCaseSensitive(cfg, k->key)) return 0;
    if (!cJSON_AddNullToObject(cfg, k->key))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", cv->m->input_path);
    return 0;
}

/* llama.cpp expert_gating_func: 1 softmax, 2 sigmoid; absent: k->num
 * (Glm4MoeModel always writes sigmoid; mlx-lm's router is sigmoid only). */
static int glm_cfg_scoring(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t gating = (uint64_t)k->num;
    mc_cv_gguf_u64(cv, "expert_gating_func", &gating);
    if (gating != 2)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: expert_gating_func %llu: mlx-lm's %s router is sigmoid (2) only", cv->m->input_path,
                            (unsigned long long)gating, cv->arch->model_type);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    if (!cJSON_AddStringToObject(cfg, k->key, "sigmoid")) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

/* GGUF glm4moe.* -> mlx-lm glm4_moe ModelArgs (beyond the common keys:
 * head_dim = attention.key_length, rope_theta, ...). */
static const mc_cfg_key glm4_moe_gguf_config[] = {
    MC_CFG_PER_HEAD("partial_rotary_factor", "rope.dimension_count", 0, 1.0),
    MC_CFG_HAS("attention_bias", "model.layers.0.self_attn.q_proj.bias"),
    MC_CFG_HAS("use_qk_norm", "model.layers.0.self_attn.q_norm.weight"),
    MC_CFG_U("moe_intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_MODEL("n_routed_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_U("n_shared_experts", "expert_shared_count", 0, 0),
    MC_CFG_U("first_k_dense_replace", "leading_dense_block_count", 0, 0),
    MC_CFG_F("routed_scaling_factor", "expert_weights_scale", 0, 1.0),
    MC_CFG_GBOOL("norm_topk_prob", "expert_weights_norm", 0),
    MC_CFG_U("n_group", "expert_group_count", 0, 1),
    MC_CFG_U("topk_group", "expert_group_used_count", 0, 1),
    {"scoring_func", MC_CK_FN, 0, NULL, 2, glm_cfg_scoring},
    MC_CFG_STR("topk_method", "noaux_tc"),
    MC_CFG_STR("hidden_act", "silu"),
    MC_CFG_FN("rope_scaling", glm_cfg_null),
};

/* HF: transformers 5 may keep partial_rotary_factor only in
 * rope_parameters (Glm4MoeConfig's default 0.5); rope_scaling may be
 * missing where ModelArgs requires it. */
static const mc_cfg_key glm4_moe_hf_config[] = {
    {"partial_rotary_factor", MC_CK_JSON, MC_CK_IF_ABSENT, "rope_parameters.partial_rotary_factor", 0.5, NULL},
    MC_CFG_FN("rope_scaling", glm_cfg_null),
};

const mc_arch mc_arch_glm4_moe = {
    .name = "glm4moe", .model_type = "glm4_moe", .gguf_arch = "glm4moe", .hf_types = "glm4_moe",
    .rules = glm4_moe_rules, .n_rules = MC_COUNT(glm4_moe_rules),
    .kinds = {{MC_K_MOE, MC_K_DENSE, G "ffn_gate_inp.weight", M "gate.weight"}},
    .mtp = MC_MTP_LAYERS,
    .gguf_config = glm4_moe_gguf_config, .n_gguf_config = MC_COUNT(glm4_moe_gguf_config),
    .hf_config = glm4_moe_hf_config, .n_hf_config = MC_COUNT(glm4_moe_hf_config),
};
