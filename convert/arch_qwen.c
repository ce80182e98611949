/* qwen2, qwen3, qwen3moe: mlx-lm models/qwen2.py, qwen3.py, qwen3_moe.py.
 * llama.cpp keeps Q/K rows in HF order for these (NEOX rotary): no
 * permutation. qwen2 has q/k/v biases; qwen3 has per-head q_norm/k_norm.
 * qwen3moe: router mlp.gate (8 bits, as Model.quant_predicate says), routed
 * experts stacked into mlp.switch_mlp; layers listed in mlp_only_layers
 * keep a dense mlp (told apart by the router's presence). */
#include "mc_arch_rules.h"
#include <cJSON.h>

#define P MC_ROLE_PINNED
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."

#define QWEN_ATTN(fl) \
    {"model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", 0, 0, P, 0}, \
    {A "q_proj.weight", "blk.{L}.attn_q.weight", A "q_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "q_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_Q, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_k.weight", A "k_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_K, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_v.weight", A "v_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_V, 0, P, MC_R_Q}, \
    {A "q_proj.bias", "blk.{L}.attn_q.bias", A "q_proj.bias", 0, 0, P, fl}, \
    {A "q_proj.bias", "blk.{L}.attn_qkv.bias", NULL, MC_X_SPLIT_Q, 0, P, fl}, \
    {A "k_proj.bias", "blk.{L}.attn_k.bias", A "k_proj.bias", 0, 0, P, fl}, \
    {A "k_proj.bias", "blk.{L}.attn_qkv.bias", NULL, MC_X_SPLIT_K, 0, P, fl}, \
    {A "v_proj.bias", "blk.{L}.attn_v.bias", A "v_proj.bias", 0, 0, P, fl}, \
    {A "v_proj.bias", "blk.{L}.attn_qkv.bias", NULL, MC_X_SPLIT_V, 0, P, fl}, \
    {A "o_proj.weight", "blk.{L}.attn_output.weight", A "o_proj.weight", 0, 0, P, MC_R_Q}, \
    {"model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", 0, 0, P, 0}

#define QWEN_QK_NORM \
    {A "q_norm.weight", "blk.{L}.attn_q_norm.weight", A "q_norm.weight", 0, 0, P, 0}, \
    {A "k_norm.weight", "blk.{L}.attn_k_norm.weight", A "k_norm.weight", 0, 0, P, 0}

static const mc_rule qwen2_rules[] = {
    MC_RULES_GLOBAL,
    QWEN_ATTN(0), /* qwen2.py: q/k/v Linear(bias=True) */
    MC_RULES_MLP(0),
};

static const mc_rule qwen3_rules[] = {
    MC_RULES_GLOBAL,
    QWEN_ATTN(MC_R_OPT),
    QWEN_QK_NORM,
    MC_RULES_MLP(0),
};

static const mc_rule qwen3moe_rules[] = {
    MC_RULES_GLOBAL,
    QWEN_ATTN(MC_R_OPT),
    QWEN_QK_NORM,
    MC_RULES_MLP(MC_R_DENSE),
    {M "gate.weight", "blk.{L}.ffn_gate_inp.weight", M "gate.weight", 0, 0, P, MC_R_Q | MC_R_Q8 | MC_R_MOE},
    MC_RULES_EXPERTS(M, M "experts.{E}.gate_proj.weight", M "experts.{E}.up_proj.weight",
                     M "experts.{E}.down_proj.weight"),
};

/* llama.cpp's qwen3moe graph always renormalizes the top-k weights;
 * mlp_only_layers: the layers without a router. */
static const mc_cfg_key qwen3moe_gguf_config[] = {
    MC_CFG_MODEL("num_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_U("moe_intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_U("intermediate_size", "expert_feed_forward_length", MC_CK_OPT | MC_CK_IF_ABSENT, 0),
    MC_CFG_BOOL("norm_topk_prob", 1, 0),
    MC_CFG_NUM("decoder_sparse_step", 1, 0),
    MC_CFG_LAYERS_WITHOUT("mlp_only_layers", MC_K_MOE),
};

const mc_arch mc_arch_qwen2 = {
    .name = "qwen2", .model_type = "qwen2", .gguf_arch = "qwen2", .hf_types = "qwen2",
    .rules = qwen2_rules, .n_rules = MC_COUNT(qwen2_rules),
};

const mc_arch mc_arch_qwen3 = {
    .name = "qwen3", .model_type = "qwen3", .gguf_arch = "qwen3", .hf_types = "qwen3",
    .rules = qwen3_rules, .n_rules = MC_COUNT(qwen3_rules),
};

const mc_arch mc_arch_qwen3moe = {
    .name = "qwen3moe", .model_type = "qwen3_moe", .gguf_arch = "qwen3moe", .hf_types = "qwen3_moe",
    .rules = qwen3moe_rules, .n_rules = MC_COUNT(qwen3moe_rules),
    .kinds = {{MC_K_MOE, MC_K_DENSE, "blk.{L}.ffn_gate_inp.weight", M "gate.weight"}},
    .gguf_config = qwen3moe_gguf_config, .n_gguf_config = MC_COUNT(qwen3moe_gguf_config),
};
