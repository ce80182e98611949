/* llama4: Llama 4 Scout / Maverick (mlx-lm models/llama4.py, the
 * multimodal wrapper: config {model_type llama4, text_config {...}}, names
 * language_model.model.*, language_model.lm_head). MoE layers where
 * (L + 1) % interleave_moe_layer_step == 0 (router, shared expert, SwitchGLU
 * experts), dense SwiGLU layers (intermediate_size_mlp) between them;
 * qk-norm without weights; chunked attention. Rules and their sources are
 * in docs/CONVERT.md ("llama4").
 *
 * GGUF (llama.cpp Llama4Model): Q/K stored unpermuted (the model rotates
 * interleaved pairs, mlx-lm's traditional RoPE); experts already split and
 * transposed: ffn_gate_exps / ffn_up_exps [E, I, H], ffn_down_exps
 * [E, H, I]; router ffn_gate_inp; shared expert ffn_*_shexp.
 * Safetensors (the hub's wrapper with language_model. and text_config, or
 * the text-only Llama4ForCausalLM, model_type llama4_text): fused
 * experts.gate_up_proj [E, H, 2I] (gate the first half of the last axis)
 * and experts.down_proj [E, I, H], split and transposed as mlx-lm's
 * sanitize does; vision tensors are not used. */
#include "mc_convert_int.h"
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define F MC_ROLE_FFN
#define X MC_ROLE_EXPERT
#define Q MC_R_Q

/* ------------------------------------------------------------ builders */

/* Fused experts.gate_up_proj [E, H, 2I] -> gate (half 0) or up (half 1)
 * [E, I, H]: per expert the transpose of that half of the columns. */
static int l4_gate_up(mc_cv *cv, const mc_rule *r, int L, mc_build *b, uint64_t half, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    if (nd != 3 || shp[2] % 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not [experts, hidden, 2*inter]", cv->m->input_path,
                            mc_cv_part_name(&src));
    uint64_t E = shp[0], H = shp[1], I = shp[2] / 2;
    for (uint64_t e = 0; e < E; e++) {
        int rc = mc_build_part_cols(b, &src, e * H, I, H, half * I, 1, err);
        if (rc) return rc;
    }
    mc_build_shape(b, 3, (uint64_t[]){E, I, H});
    return 0;
}

static int l4_b_gate(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return l4_gate_up(cv, r, L, b, 0, err);
}

static int l4_b_up(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return l4_gate_up(cv, r, L, b, 1, err);
}

/* experts.down_proj [E, I, H] -> [E, H, I]: per expert a transpose. */
static int l4_b_down(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    if (nd != 3)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not [experts, inter, hidden]", cv->m->input_path,
                            mc_cv_part_name(&src));
    uint64_t E = shp[0], I = shp[1], H = shp[2];
    for (uint64_t e = 0; e < E; e++) {
        int rc = mc_build_part(b, &src, e * I, H, I, err);
        if (rc) return rc;
    }
    mc_build_shape(b, 3, (uint64_t[]){E, H, I});
    return 0;
}

enum { B_GATE, B_UP, B_DOWN, B_COUNT };
static const mc_build_fn l4_builders[B_COUNT] = {l4_b_gate, l4_b_up, l4_b_down};

/* --------------------------------------------------------------- rules */

#define LM "language_model.model.layers.{L}."
#define HL "model.layers.{L}."
#define GL "blk.{L}."
#define FF "feed_forward."

static const mc_rule l4_rules[] = {
    {"language_model.model.embed_tokens.weight", "token_embd.weight", "model.embed_tokens.weight", 0, 0, P, Q},
    {"language_model.model.norm.weight", "output_norm.weight", "model.norm.weight", 0, 0, P, 0},
    /* mlx-lm's llama4 always has lm_head: a tied source gives it the
     * embedding */
    {"language_model.lm_head.weight", "output.weight", "lm_head.weight", 0, 0, P, Q | MC_R_NOTIED},
    {"language_model.lm_head.weight", "token_embd.weight", "model.embed_tokens.weight", 0, 0, P, Q},
    {LM "input_layernorm.weight", GL "attn_norm.weight", HL "input_layernorm.weight", 0, 0, P, 0},
    {LM "post_attention_layernorm.weight", GL "ffn_norm.weight", HL "post_attention_layernorm.weight", 0, 0, P, 0},
    {LM "self_attn.q_proj.weight", GL "attn_q.weight", HL "self_attn.q_proj.weight", 0, 0, P, Q},
    {LM "self_attn.k_proj.weight", GL "attn_k.weight", HL "self_attn.k_proj.weight", 0, 0, P, Q},
    {LM "self_attn.v_proj.weight", GL "attn_v.weight", HL "self_attn.v_proj.weight", 0, 0, P, Q},
    {LM "self_attn.o_proj.weight", GL "attn_output.weight", HL "self_attn.o_proj.weight", 0, 0, P, Q},
    /* dense layers */
    {LM FF "gate_proj.weight", GL "ffn_gate.weight", HL FF "gate_proj.weight", 0, 0, F, Q | MC_R_DENSE},
    {LM FF "up_proj.weight", GL "ffn_up.weight", HL FF "up_proj.weight", 0, 0, F, Q | MC_R_DENSE},
    {LM FF "down_proj.weight", GL "ffn_down.weight", HL FF "down_proj.weight", 0, 0, F, Q | MC_R_DENSE},
    /* MoE layers: the router is an nn.Linear (no quant_predicate: global bits) */
    {LM FF "router.weight", GL "ffn_gate_inp.weight", HL FF "router.weight", 0, 0, P, Q | MC_R_MOE},
    {LM FF "shared_expert.gate_proj.weight", GL "ffn_gate_shexp.weight", HL FF "shared_expert.gate_proj.weight", 0,
     0, P, Q | MC_R_MOE},
    {LM FF "shared_expert.up_proj.weight", GL "ffn_up_shexp.weight", HL FF "shared_expert.up_proj.weight", 0, 0, P,
     Q | MC_R_MOE},
    {LM FF "shared_expert.down_proj.weight", GL "ffn_down_shexp.weight", HL FF "shared_expert.down_proj.weight", 0,
     0, P, Q | MC_R_MOE},
    {LM FF "experts.gate_proj.weight", GL "ffn_gate_exps.weight", HL FF "experts.gate_up_proj", 0, MC_X_B(B_GATE),
     X, Q | MC_R_MOE},
    {LM FF "experts.up_proj.weight", GL "ffn_up_exps.weight", HL FF "experts.gate_up_proj", 0, MC_X_B(B_UP), X,
     Q | MC_R_MOE},
    {LM FF "experts.down_proj.weight", GL "ffn_down_exps.weight", HL FF "experts.down_proj", 0, MC_X_B(B_DOWN), X,
     Q | MC_R_MOE},
};

/* ---------------------------------------------------------- layer kinds */

static uint64_t l4_step(mc_cv *cv)
{
    uint64_t step = 1;
    if (cv->m->gguf) mc_cv_gguf_u64(cv, "interleave_moe_layer_step", &step);
    else mc_cv_cfg_u64(cv->m->config, "interleave_moe_layer_step", &step);
    return step;
}

/* mlx-lm builds an MoE layer exactly where L % step == step - 1: the layers
 * with a router must be those. */
static int l4_layer_kinds(mc_cv *cv, mc_error *err)
{
    uint64_t step = l4_step(cv);
    if (step == 0 || step > (uint64_t)cv->m->n_layers + 1)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: interleave_moe_layer_step %llu out of range",
                            cv->m->input_path, (unsigned long long)step);
    for (int L = 0; L < cv->m->n_layers; L++) {
        int want = ((uint64_t)L + 1) % step == 0, have = (cv->kinds[L] & MC_K_MOE) != 0;
        if (want != have)
            return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                "%s: layer %d is %s, but mlx-lm's llama4 places MoE layers only where (i+1) %% interleave_moe_layer_step == 0 (step %llu)",
                                cv->m->input_path, L, have ? "MoE" : "dense", (unsigned long long)step);
    }
    return 0;
}

/* -------------------------------------------------------------- config */

/* TextArgs requires rope_scaling: null when there is none. */
static int l4_cfg_rope_scaling(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)cv;
    if (cJSON_GetObjectItemCaseSensitive(cfg, k->key)) return 0;
    return cJSON_AddNullToObject(cfg, k->key) ? 0 : mc_error_set(err, MC_ERR_NOMEM, "out of memory");
}

/* The wrapper mlx-lm's llama4 loads: {"model_type": "llama4",
 * "text_config": {every other key, model_type "llama4_text"}}. */
static int l4_cfg_nest(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    cJSON *tc = cJSON_CreateObject();
    if (!tc) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    cJSON *it = cfg->child;
    while (it) {
        cJSON *next = it->next;
        if (strcmp(it->string, "model_type") != 0 && strcmp(it->string, "quantization") != 0 &&
            strcmp(it->string, "quantization_config") != 0)
            cJSON_AddItemToObject(tc, it->string, cJSON_DetachItemViaPointer(cfg, it));
        it = next;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "model_type");
    if (!cJSON_AddStringToObject(tc, "model_type", "llama4_text") ||
        !cJSON_AddStringToObject(cfg, "model_type", cv->arch->model_type) ||
        !cJSON_AddItemToObject(cfg, k->key, tc)) {
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int l4_cfg_qk_norm(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    return cJSON_AddBoolToObject(cfg, k->key, cv->n_experts != 128) ? 0
                                                                     : mc_error_set(err, MC_ERR_NOMEM, "out of memory");
}

/* use_qk_norm: llama.cpp's rule (every Llama 4 but the 128-expert
 * Maverick); attention_chunk_size: llama.cpp's constant (no GGUF key). */
static const mc_cfg_key l4_gguf_config[] = {
    MC_CFG_U("intermediate_size_mlp", "feed_forward_length", 0, 0),
    MC_CFG_U("intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_MODEL("num_local_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
    MC_CFG_U("interleave_moe_layer_step", "interleave_moe_layer_step", 0, 1),
    MC_CFG_NUM("attention_chunk_size", 8192, 0),
    MC_CFG_HAS("attention_bias", "language_model.model.layers.0.self_attn.q_proj.bias"),
    MC_CFG_FN("rope_scaling", l4_cfg_rope_scaling),
    MC_CFG_FN("use_qk_norm", l4_cfg_qk_norm),
    MC_CFG_FN("text_config", l4_cfg_nest),
};

static const mc_cfg_key l4_hf_config[] = {
    MC_CFG_FN("rope_scaling", l4_cfg_rope_scaling),
    MC_CFG_FN("text_config", l4_cfg_nest),
};

const mc_arch mc_arch_llama4 = {
    .name = "llama4", .model_type = "llama4", .gguf_arch = "llama4", .hf_types = "llama4_text llama4",
    .rules = l4_rules, .n_rules = MC_COUNT(l4_rules),
    .builders = l4_builders, .n_builders = B_COUNT,
    .kinds = {{MC_K_MOE, MC_K_DENSE, GL "ffn_gate_inp.weight", HL FF "router.weight"}, MC_KINDS_ALL(MC_K_ATTN)},
    .layer_kinds = l4_layer_kinds,
    .gguf_config = l4_gguf_config, .n_gguf_config = MC_COUNT(l4_gguf_config),
    .hf_config = l4_hf_config, .n_hf_config = MC_COUNT(l4_hf_config),
};
