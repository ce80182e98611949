/* gemma2 and gemma3 (text): mlx-lm models/gemma2.py, gemma3_text.py.
 *
 * Gemma's RMSNorm multiplies by (1 + w); Hugging Face stores w, llama.cpp's
 * converter stores 1 + w (computed in f32 from the bf16/f16/f32 source and
 * kept as f32). mlx-lm expects w, so MC_X_SUB1 subtracts 1 in f32. Every
 * norm weight ending in "norm.weight" got the +1, q_norm/k_norm included.
 * Bound: (w + 1) - 1 in f32 differs from w by at most half an f32 ulp of
 * (w + 1), i.e. 2^-24 * 2^ceil(log2|w+1|) (2^-24 for |w| < 1); w = f32(bf16)
 * has 8 significant bits so for |w| >= 2^-16 the round trip is exact. */
#include "mc_arch_rules.h"
#include <cJSON.h>

#define P MC_ROLE_PINNED
#define A "model.layers.{L}.self_attn."
#define LY "model.layers.{L}."
#define S1 MC_X_SUB1

#define GEMMA_COMMON \
    {"model.embed_tokens.weight", "token_embd.weight", "model.embed_tokens.weight", 0, 0, P, MC_R_Q}, \
    {"model.norm.weight", "output_norm.weight", "model.norm.weight", S1, 0, P, 0}, \
    {LY "input_layernorm.weight", "blk.{L}.attn_norm.weight", LY "input_layernorm.weight", S1, 0, P, 0}, \
    {A "q_proj.weight", "blk.{L}.attn_q.weight", A "q_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_k.weight", A "k_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_v.weight", A "v_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "o_proj.weight", "blk.{L}.attn_output.weight", A "o_proj.weight", 0, 0, P, MC_R_Q}, \
    {LY "post_attention_layernorm.weight", "blk.{L}.post_attention_norm.weight", LY "post_attention_layernorm.weight", S1, 0, P, 0}, \
    {LY "pre_feedforward_layernorm.weight", "blk.{L}.ffn_norm.weight", LY "pre_feedforward_layernorm.weight", S1, 0, P, 0}, \
    {LY "post_feedforward_layernorm.weight", "blk.{L}.post_ffw_norm.weight", LY "post_feedforward_layernorm.weight", S1, 0, P, 0}, \
    MC_RULES_MLP(0)

/* gemma2.py has no lm_head: the output is always the tied embedding. */
static const mc_rule gemma2_rules[] = {
    GEMMA_COMMON,
};

static const mc_rule gemma3_rules[] = {
    GEMMA_COMMON,
    {"lm_head.weight", "output.weight", "lm_head.weight", 0, 0, P, MC_R_Q | MC_R_NOTIED},
    {A "q_norm.weight", "blk.{L}.attn_q_norm.weight", A "q_norm.weight", S1, 0, P, 0},
    {A "k_norm.weight", "blk.{L}.attn_k_norm.weight", A "k_norm.weight", S1, 0, P, 0},
};

/* query_pre_attn_scalar is not in GGUF; mlx-lm scales queries by its
 * inverse square root. llama.cpp (load_hparams, f_attention_scale) uses
 * 1/sqrt(n_embd_head_k) except for the 27B models, which it recognises by
 * block_count alone (gemma2: 46, gemma3: 62; LLM_TYPE_27B) and scales by
 * 1/sqrt(n_embd / n_head(0)) in integer division. k->num is that block
 * count: the value written is what llama.cpp ran with. */
static int gemma_cfg_attn_scalar(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t layers = 0, v = cv->head_dim;
    if (mc_cv_gguf_u64(cv, "block_count", &layers) == 0 && layers == (uint64_t)k->num && cv->n_head)
        v = cv->hidden / cv->n_head;
    return mc_cv_cfg_set_num(cfg, k->key, (double)v) ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}
#define GEMMA_ATTN_SCALAR(layers_27b) {"query_pre_attn_scalar", MC_CK_FN, 0, NULL, layers_27b, gemma_cfg_attn_scalar}

#define GEMMA_CONFIG \
    MC_CFG_U("sliding_window", "attention.sliding_window", MC_CK_OPT | MC_CK_POSITIVE, 0), \
    MC_CFG_F("attn_logit_softcapping", "attn_logit_softcapping", MC_CK_OPT, 0), \
    MC_CFG_F("final_logit_softcapping", "final_logit_softcapping", MC_CK_OPT, 0)

static const mc_cfg_key gemma2_gguf_config[] = {
    GEMMA_ATTN_SCALAR(46),
    GEMMA_CONFIG,
};

/* llama.cpp: every 6th layer global unless the file says otherwise; local
 * layers use a fixed 10000 base. */
static const mc_cfg_key gemma3_gguf_config[] = {
    GEMMA_ATTN_SCALAR(62),
    GEMMA_CONFIG,
    MC_CFG_U("sliding_window_pattern", "attention.sliding_window_pattern", MC_CK_POSITIVE, 6),
    MC_CFG_NUM("rope_local_base_freq", 10000.0, 0),
};

/* transformers 5 configs: rope_parameters.sliding_attention.rope_theta is
 * mlx-lm's rope_local_base_freq; _sliding_window_pattern its
 * sliding_window_pattern. */
static const mc_cfg_key gemma3_hf_config[] = {
    MC_CFG_JSON("rope_local_base_freq", "rope_parameters.sliding_attention.rope_theta", MC_CK_OPT | MC_CK_IF_ABSENT),
    MC_CFG_JSON("sliding_window_pattern", "_sliding_window_pattern", MC_CK_OPT | MC_CK_IF_ABSENT),
};

const mc_arch mc_arch_gemma2 = {
    .name = "gemma2", .model_type = "gemma2", .gguf_arch = "gemma2", .hf_types = "gemma2",
    .rules = gemma2_rules, .n_rules = MC_COUNT(gemma2_rules),
    .gguf_config = gemma2_gguf_config, .n_gguf_config = MC_COUNT(gemma2_gguf_config),
};

const mc_arch mc_arch_gemma3 = {
    .name = "gemma3", .model_type = "gemma3_text", .gguf_arch = "gemma3", .hf_types = "gemma3_text gemma3",
    .rules = gemma3_rules, .n_rules = MC_COUNT(gemma3_rules),
    .gguf_config = gemma3_gguf_config, .n_gguf_config = MC_COUNT(gemma3_gguf_config),
    .hf_config = gemma3_hf_config, .n_hf_config = MC_COUNT(gemma3_hf_config),
};
