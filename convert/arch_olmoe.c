/* olmoe: OLMoE (mlx-lm models/olmoe.py; GGUF arch olmoe, llama.cpp
 * OlmoeModel; HF model_type olmoe). Llama-shaped attention with q_norm /
 * k_norm over all heads ([heads * head_dim], applied before the head
 * split), every layer MoE: softmax router mlp.gate, SwitchGLU experts
 * (per-expert HF tensors stacked as mlx-lm's sanitize does; llama.cpp
 * stacks them into ffn_*_exps). llama.cpp writes OLMoE as a TextModel: no
 * Q/K permutation (NEOX rotary). No quant_predicate: the router is quantized
 * at the global bits. Rules and sources: docs/CONVERT.md ("olmoe"). */
#include "mc_arch_rules.h"
#include <cJSON.h>

#define P MC_ROLE_PINNED
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."

static const mc_rule olmoe_rules[] = {
    MC_RULES_GLOBAL,
    MC_RULES_NORMS_ATTN,
    {A "q_proj.bias", "blk.{L}.attn_q.bias", A "q_proj.bias", 0, 0, P, MC_R_OPT},
    {A "k_proj.bias", "blk.{L}.attn_k.bias", A "k_proj.bias", 0, 0, P, MC_R_OPT},
    {A "v_proj.bias", "blk.{L}.attn_v.bias", A "v_proj.bias", 0, 0, P, MC_R_OPT},
    {A "o_proj.bias", "blk.{L}.attn_output.bias", A "o_proj.bias", 0, 0, P, MC_R_OPT},
    /* over all heads: [heads * head_dim], [kv_heads * head_dim] */
    {A "q_norm.weight", "blk.{L}.attn_q_norm.weight", A "q_norm.weight", 0, 0, P, 0},
    {A "k_norm.weight", "blk.{L}.attn_k_norm.weight", A "k_norm.weight", 0, 0, P, 0},
    {M "gate.weight", "blk.{L}.ffn_gate_inp.weight", M "gate.weight", 0, 0, P, MC_R_Q},
    MC_RULES_EXPERTS(M, M "experts.{E}.gate_proj.weight", M "experts.{E}.up_proj.weight",
                     M "experts.{E}.down_proj.weight"),
};

/* llama.cpp's olmoe graph never renormalizes the top-k weights
 * (norm_topk_prob false, OLMoE's own value). */
static const mc_cfg_key olmoe_gguf_config[] = {
    MC_CFG_MODEL("num_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_U("intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_BOOL("norm_topk_prob", 0, 0),
    MC_CFG_HAS("attention_bias", "model.layers.0.self_attn.q_proj.bias"),
    MC_CFG_BOOL("mlp_bias", 0, 0),
};

const mc_arch mc_arch_olmoe = {
    .name = "olmoe", .model_type = "olmoe", .gguf_arch = "olmoe", .hf_types = "olmoe",
    .rules = olmoe_rules, .n_rules = MC_COUNT(olmoe_rules),
    .kinds = {MC_KINDS_ALL(MC_K_MOE)},
    .gguf_config = olmoe_gguf_config, .n_gguf_config = MC_COUNT(olmoe_gguf_config),
};
