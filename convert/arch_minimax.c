/* minimax: MiniMax-M2.x (mlx-lm models/minimax.py, which mlx-lm also loads
 * for HF model_type minimax_m2; GGUF arch minimax-m2, llama.cpp
 * MiniMaxM2Model). q_norm / k_norm over all heads ([heads * head_dim]),
 * partial rotary (rotary_dim of head_dim, NEOX: no Q/K permutation in the
 * GGUF), every layer MoE: sigmoid router block_sparse_moe.gate (8 bits, as
 * the quant_predicate says) with the routing bias e_score_correction_bias
 * (kept float32: cast_predicate), per-expert w1 / w3 / w2 (gate / up /
 * down) stacked into switch_mlp as mlx-lm's sanitize does; llama.cpp stacks
 * them into ffn_{gate,up,down}_exps. Rules and sources: docs/CONVERT.md
 * ("minimax"). */
#include "mc_arch_rules.h"
#include <cJSON.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.block_sparse_moe."

static const mc_rule minimax_rules[] = {
    MC_RULES_GLOBAL,
    MC_RULES_NORMS_ATTN,
    /* over all heads; absent when use_qk_norm is false */
    {A "q_norm.weight", "blk.{L}.attn_q_norm.weight", A "q_norm.weight", 0, 0, P, MC_R_OPT},
    {A "k_norm.weight", "blk.{L}.attn_k_norm.weight", A "k_norm.weight", 0, 0, P, MC_R_OPT},
    {M "gate.weight", "blk.{L}.ffn_gate_inp.weight", M "gate.weight", 0, 0, P, MC_R_Q | MC_R_Q8},
    {M "e_score_correction_bias", "blk.{L}.exp_probs_b.bias", M "e_score_correction_bias", 0, 0, P, 0},
    {M "e_score_correction_bias", "blk.{L}.exp_probs_b", NULL, 0, 0, P, 0},
    MC_RULES_EXPERTS(M, M "experts.{E}.w1.weight", M "experts.{E}.w3.weight", M "experts.{E}.w2.weight"),
};

/* scoring_func from expert_gating_func (llama.cpp: 1 softmax, 2 sigmoid;
 * absent: MiniMax's sigmoid). */
static int minimax_cfg_scoring(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t g = 2;
    mc_cv_gguf_u64(cv, "expert_gating_func", &g);
    if (g != 1 && g != 2)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: %s.expert_gating_func %llu: mlx-lm's minimax scores with sigmoid or softmax",
                            cv->m->input_path, cv->m->arch, (unsigned long long)g);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    return cJSON_AddStringToObject(cfg, k->key, g == 1 ? "softmax" : "sigmoid") ? 0
                                                                             : mc_error_set(err, MC_ERR_NOMEM, "out of memory");
}

/* rotary_dim: rope.dimension_count (the converter's rotary_dim); absent:
 * the whole head. */
static const mc_cfg_key minimax_gguf_config[] = {
    MC_CFG_MODEL("num_local_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_U("intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_U("shared_intermediate_size", "expert_shared_feed_forward_length", 0, 0),
    MC_CFG_U("rotary_dim", "rope.dimension_count", MC_CK_OPT, 0),
    MC_CFG_MODEL("rotary_dim", MC_CV_HEAD_DIM, MC_CK_IF_ABSENT),
    MC_CFG_FN("scoring_func", minimax_cfg_scoring),
    MC_CFG_HAS("use_qk_norm", "model.layers.0.self_attn.q_norm.weight"),
};

/* HF: model_type of the mlx-lm module (minimax_m2 is remapped by mlx-lm). */
static const mc_cfg_key minimax_hf_config[] = {
    MC_CFG_MODEL_TYPE("model_type"),
};

const mc_arch mc_arch_minimax = {
    .name = "minimax", .model_type = "minimax", .gguf_arch = "minimax-m2", .hf_types = "minimax_m2 minimax",
    .rules = minimax_rules, .n_rules = MC_COUNT(minimax_rules),
    .kinds = {MC_KINDS_ALL(MC_K_MOE)},
    .gguf_config = minimax_gguf_config, .n_gguf_config = MC_COUNT(minimax_gguf_config),
    .hf_config = minimax_hf_config, .n_hf_config = MC_COUNT(minimax_hf_config),
};
