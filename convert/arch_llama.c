/* llama (and mistral) and mixtral: mlx-lm models/llama.py and mixtral.py.
 *
 * llama.cpp's converter (LlamaModel.permute) reorders the rows of Q and K
 * (weights and biases) within each head for its rotary kernel: GGUF row
 * h*hd + 2i + j holds HF row h*hd + j*hd/2 + i. MC_X_ROPE_Q/K undo it.
 * Mixtral GGUFs are general.architecture "llama" with expert_count > 0:
 * stacked ffn_{gate,up,down}_exps (older files: per-expert ffn_gate.E). */
#include "mc_convert_int.h"
#include <cJSON.h>

#define P MC_ROLE_PINNED
#define F MC_ROLE_FFN
#define X MC_ROLE_EXPERT
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."
#define B "model.layers.{L}.block_sparse_moe."

#define LLAMA_GLOBAL \
    {"model.embed_tokens.weight", "token_embd.weight", "model.embed_tokens.weight", 0, 0, P, MC_R_Q}, \
    {"model.norm.weight", "output_norm.weight", "model.norm.weight", 0, 0, P, 0}, \
    {"lm_head.weight", "output.weight", "lm_head.weight", 0, 0, P, MC_R_Q | MC_R_NOTIED}

#define LLAMA_ATTN \
    {"model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", 0, 0, P, 0}, \
    {A "q_proj.weight", "blk.{L}.attn_q.weight", A "q_proj.weight", MC_X_ROPE_Q, 0, P, MC_R_Q}, \
    {A "q_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_Q_ROPE, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_k.weight", A "k_proj.weight", MC_X_ROPE_K, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_K_ROPE, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_v.weight", A "v_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_V, 0, P, MC_R_Q}, \
    {A "o_proj.weight", "blk.{L}.attn_output.weight", A "o_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "q_proj.bias", "blk.{L}.attn_q.bias", A "q_proj.bias", MC_X_ROPE_Q, 0, P, MC_R_OPT}, \
    {A "k_proj.bias", "blk.{L}.attn_k.bias", A "k_proj.bias", MC_X_ROPE_K, 0, P, MC_R_OPT}, \
    {A "v_proj.bias", "blk.{L}.attn_v.bias", A "v_proj.bias", 0, 0, P, MC_R_OPT}, \
    {A "o_proj.bias", "blk.{L}.attn_output.bias", A "o_proj.bias", 0, 0, P, MC_R_OPT}, \
    {"model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", 0, 0, P, 0}

static const mc_rule llama_rules[] = {
    LLAMA_GLOBAL,
    LLAMA_ATTN,
    {M "gate_proj.weight", "blk.{L}.ffn_gate.weight", M "gate_proj.weight", 0, 0, F, MC_R_Q},
    {M "up_proj.weight", "blk.{L}.ffn_up.weight", M "up_proj.weight", 0, 0, F, MC_R_Q},
    {M "down_proj.weight", "blk.{L}.ffn_down.weight", M "down_proj.weight", 0, 0, F, MC_R_Q},
    {M "gate_proj.bias", "blk.{L}.ffn_gate.bias", M "gate_proj.bias", 0, 0, F, MC_R_OPT},
    {M "up_proj.bias", "blk.{L}.ffn_up.bias", M "up_proj.bias", 0, 0, F, MC_R_OPT},
    {M "down_proj.bias", "blk.{L}.ffn_down.bias", M "down_proj.bias", 0, 0, F, MC_R_OPT},
};

static const mc_rule mixtral_rules[] = {
    LLAMA_GLOBAL,
    LLAMA_ATTN,
    {B "gate.weight", "blk.{L}.ffn_gate_inp.weight", B "gate.weight", 0, 0, P, MC_R_Q | MC_R_MOE},
    {B "switch_mlp.gate_proj.weight", "blk.{L}.ffn_gate_exps.weight", B "experts.{E}.w1.weight", 0, 0, X, MC_R_Q | MC_R_MOE},
    {B "switch_mlp.gate_proj.weight", "blk.{L}.ffn_gate.{E}.weight", NULL, 0, 0, X, MC_R_Q | MC_R_MOE},
    {B "switch_mlp.up_proj.weight", "blk.{L}.ffn_up_exps.weight", B "experts.{E}.w3.weight", 0, 0, X, MC_R_Q | MC_R_MOE},
    {B "switch_mlp.up_proj.weight", "blk.{L}.ffn_up.{E}.weight", NULL, 0, 0, X, MC_R_Q | MC_R_MOE},
    {B "switch_mlp.down_proj.weight", "blk.{L}.ffn_down_exps.weight", B "experts.{E}.w2.weight", 0, 0, X, MC_R_Q | MC_R_MOE},
    {B "switch_mlp.down_proj.weight", "blk.{L}.ffn_down.{E}.weight", NULL, 0, 0, X, MC_R_Q | MC_R_MOE},
};

/* attention_bias / mlp_bias as llama.py reads them: from the tensors present. */
static int llama_gguf_config(mc_cv *cv, cJSON *cfg, mc_error *err)
{
    int bad = 0;
    bad |= !cJSON_AddBoolToObject(cfg, "attention_bias", mc_model_find(cv->m, "model.layers.0.self_attn.q_proj.bias") != NULL);
    bad |= !cJSON_AddBoolToObject(cfg, "mlp_bias", mc_model_find(cv->m, "model.layers.0.mlp.gate_proj.bias") != NULL);
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

static int mixtral_gguf_config(mc_cv *cv, cJSON *cfg, mc_error *err)
{
    int bad = 0;
    bad |= !cJSON_AddNumberToObject(cfg, "num_local_experts", cv->m->n_experts);
    bad |= !cJSON_AddNumberToObject(cfg, "num_experts_per_tok", cv->m->n_experts_per_tok);
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

const mc_arch mc_arch_llama = {
    "llama", "llama", "llama", 0, "llama mistral",
    llama_rules, sizeof llama_rules / sizeof llama_rules[0],
    NULL, NULL, NULL, llama_gguf_config, NULL,
};

const mc_arch mc_arch_mixtral = {
    "mixtral", "mixtral", "llama", 1, "mixtral",
    mixtral_rules, sizeof mixtral_rules / sizeof mixtral_rules[0],
    "blk.{L}.ffn_gate_inp.weight", B "gate.weight", NULL, mixtral_gguf_config, NULL,
};
