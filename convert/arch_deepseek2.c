/* deepseek2: DeepSeek V3 (mlx-lm models/deepseek_v3.py) and DeepSeek V2
 * (deepseek_v2.py): multi-head latent attention, shared experts, a
 * sigmoid router with an e_score_correction_bias (V3). Rules and their
 * sources are in docs/CONVERT.md ("deepseek2").
 *
 * MLA: HF kv_b_proj [H*(nope+v), kv_lora] holds per head nope key rows then
 * v value rows. llama.cpp (DeepseekV2Model) stores attn_k_b = the key rows
 * transposed, [H, kv_lora, nope], and attn_v_b = the value rows,
 * [H, v, kv_lora]; older files the fused attn_kv_b. mlx-lm deepseek_v3
 * loads exactly that split (self_attn.embed_q / unembed_out, built by its
 * sanitize from kv_b_proj); deepseek_v2 loads the fused kv_b_proj. Every
 * direction is element selection (per-head transposes), no arithmetic. */
#include "mc_arch_rules.h"
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define X MC_ROLE_EXPERT
#define Q MC_R_Q

typedef struct ds_mla {
    uint64_t heads, nope, v, lora; /* heads, key no-rope dim, value dim, kv_lora_rank */
} ds_mla;

/* GGUF: key_length_mla / value_length_mla (since the split); older files
 * have the per-head sizes in key_length / value_length. */
static int ds_mla_get(mc_cv *cv, ds_mla *d, mc_error *err)
{
    mc_model *m = cv->m;
    int bad = 0;
    memset(d, 0, sizeof *d);
    d->heads = cv->n_head;
    if (m->gguf) {
        uint64_t kl = 0, rope = 0;
        bad |= mc_cv_gguf_u64(cv, "attention.kv_lora_rank", &d->lora) != 0;
        bad |= mc_cv_gguf_u64(cv, "rope.dimension_count", &rope) != 0;
        if (mc_cv_gguf_u64(cv, "attention.key_length_mla", &kl)) bad |= mc_cv_gguf_u64(cv, "attention.key_length", &kl) != 0;
        if (mc_cv_gguf_u64(cv, "attention.value_length_mla", &d->v))
            bad |= mc_cv_gguf_u64(cv, "attention.value_length", &d->v) != 0;
        bad |= kl <= rope;
        d->nope = kl - rope;
    } else {
        bad |= mc_cv_cfg_u64(m->config, "kv_lora_rank", &d->lora);
        bad |= mc_cv_cfg_u64(m->config, "qk_nope_head_dim", &d->nope);
        bad |= mc_cv_cfg_u64(m->config, "v_head_dim", &d->v);
    }
    if (bad || !d->heads || !d->nope || !d->v || !d->lora || d->nope > (1u << 20) || d->v > (1u << 20) ||
        d->lora > (1u << 24))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: MLA sizes missing or inconsistent (heads %llu, nope %llu, v %llu, kv_lora_rank %llu)",
                            m->input_path, (unsigned long long)d->heads, (unsigned long long)d->nope,
                            (unsigned long long)d->v, (unsigned long long)d->lora);
    return 0;
}

/* The rule's source and the MLA sizes (absent: not found; 0 or an error
 * code returned). */
#define DS_BEGIN()                                              \
    ds_mla d;                                                   \
    mc_part src;                                                \
    if (!mc_build_source(cv, r, L, b, &src)) return 0;          \
    if (ds_mla_get(cv, &d, err)) return err ? (int)err->code : 1

/* kv_b_proj -> embed_q [H, kv_lora, nope] (V3): per head, the nope key rows
 * transposed (mlx-lm deepseek_v3 sanitize: v[:, :nope, :].swapaxes(-1, -2)). */
static int ds_b_embed_q(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    DS_BEGIN();
    uint64_t hd = d.nope + d.v;
    int rc = mc_cv_expect(cv, &src, d.heads * hd, d.lora, err);
    for (uint64_t h = 0; h < d.heads && !rc; h++) rc = mc_build_part(b, &src, h * hd, d.lora, d.nope, err);
    mc_build_shape(b, 3, (uint64_t[]){d.heads, d.lora, d.nope});
    return rc;
}

/* kv_b_proj -> unembed_out [H, v, kv_lora] (V3): per head, the v value rows. */
static int ds_b_unembed_out(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    DS_BEGIN();
    uint64_t hd = d.nope + d.v;
    int rc = mc_cv_expect(cv, &src, d.heads * hd, d.lora, err);
    for (uint64_t h = 0; h < d.heads && !rc; h++) rc = mc_build_part(b, &src, h * hd + d.nope, d.v, 0, err);
    mc_build_shape(b, 3, (uint64_t[]){d.heads, d.v, d.lora});
    return rc;
}

/* attn_k_b [H, kv_lora, nope] + attn_v_b [H, v, kv_lora] -> kv_b_proj
 * [H*(nope+v), kv_lora] (V2): per head transpose(k_b[h]), then v_b[h]. */
static int ds_b_kv_b(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    DS_BEGIN();
    mc_part vb;
    if (!mc_cv_source(cv, "blk.{L}.attn_v_b.weight", L, &vb)) {
        b->found = 0;
        return 0;
    }
    int rc = mc_cv_expect(cv, &src, d.heads * d.lora, d.nope, err);
    if (!rc) rc = mc_cv_expect(cv, &vb, d.heads * d.v, d.lora, err);
    for (uint64_t h = 0; h < d.heads && !rc; h++) {
        rc = mc_build_part(b, &src, h * d.lora, d.nope, d.lora, err);
        if (!rc) rc = mc_build_part(b, &vb, h * d.v, d.v, 0, err);
    }
    mc_build_shape(b, 2, (uint64_t[]){d.heads * (d.nope + d.v), d.lora});
    return rc;
}

enum { DS_NONE = -1, B_EMBED_Q, B_UNEMBED_OUT, B_KV_B, B_COUNT };
static const mc_build_fn ds_builders[B_COUNT] = {ds_b_embed_q, ds_b_unembed_out, ds_b_kv_b};

#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."
#define G "blk.{L}."
#define BX(k) ((k) < 0 ? MC_X_NONE : MC_X_B(k))
#define R(mlx, g, h, role, flags) {mlx, g, h, 0, 0, role, flags}
#define RB(mlx, g, h, gb, hb, role, flags) {mlx, g, h, BX(gb), BX(hb), role, flags}

#define DS_HEAD \
    MC_RULES_GLOBAL, \
    R("model.layers.{L}.input_layernorm.weight", G "attn_norm.weight", "model.layers.{L}.input_layernorm.weight", P, 0), \
    R("model.layers.{L}.post_attention_layernorm.weight", G "ffn_norm.weight", \
      "model.layers.{L}.post_attention_layernorm.weight", P, 0), \
    R(A "q_a_proj.weight", G "attn_q_a.weight", A "q_a_proj.weight", P, Q | MC_R_OPT), \
    R(A "q_a_layernorm.weight", G "attn_q_a_norm.weight", A "q_a_layernorm.weight", P, MC_R_OPT), \
    R(A "q_b_proj.weight", G "attn_q_b.weight", A "q_b_proj.weight", P, Q | MC_R_OPT), \
    R(A "q_proj.weight", G "attn_q.weight", A "q_proj.weight", P, Q | MC_R_OPT), \
    R(A "kv_a_proj_with_mqa.weight", G "attn_kv_a_mqa.weight", A "kv_a_proj_with_mqa.weight", P, Q), \
    R(A "kv_a_layernorm.weight", G "attn_kv_a_norm.weight", A "kv_a_layernorm.weight", P, 0)

#define DS_TAIL \
    R(A "o_proj.weight", G "attn_output.weight", A "o_proj.weight", P, Q), \
    MC_RULES_MLP(MC_R_DENSE), \
    /* router: MoEGate holds a bare weight (not a Linear): never quantized */ \
    R(M "gate.weight", G "ffn_gate_inp.weight", M "gate.weight", P, MC_R_MOE), \
    R(M "gate.e_score_correction_bias", G "exp_probs_b.bias", M "gate.e_score_correction_bias", P, \
      MC_R_MOE | MC_R_OPT | MC_R_KEEP_DTYPE), \
    R(M "shared_experts.gate_proj.weight", G "ffn_gate_shexp.weight", M "shared_experts.gate_proj.weight", P, \
      Q | MC_R_MOE | MC_R_OPT), \
    R(M "shared_experts.up_proj.weight", G "ffn_up_shexp.weight", M "shared_experts.up_proj.weight", P, \
      Q | MC_R_MOE | MC_R_OPT), \
    R(M "shared_experts.down_proj.weight", G "ffn_down_shexp.weight", M "shared_experts.down_proj.weight", P, \
      Q | MC_R_MOE | MC_R_OPT), \
    R(M "switch_mlp.gate_proj.weight", G "ffn_gate_exps.weight", M "experts.{E}.gate_proj.weight", X, Q | MC_R_MOE), \
    R(M "switch_mlp.up_proj.weight", G "ffn_up_exps.weight", M "experts.{E}.up_proj.weight", X, Q | MC_R_MOE), \
    R(M "switch_mlp.down_proj.weight", G "ffn_down_exps.weight", M "experts.{E}.down_proj.weight", X, Q | MC_R_MOE)

/* V3: embed_q / unembed_out from the split (renamed) or the fused form. */
static const mc_rule deepseek_v3_rules[] = {
    DS_HEAD,
    R(A "embed_q.weight", G "attn_k_b.weight", NULL, P, Q | MC_R_OPT),
    RB(A "embed_q.weight", G "attn_kv_b.weight", A "kv_b_proj.weight", B_EMBED_Q, B_EMBED_Q, P, Q | MC_R_OPT),
    R(A "unembed_out.weight", G "attn_v_b.weight", NULL, P, Q | MC_R_OPT),
    RB(A "unembed_out.weight", G "attn_kv_b.weight", A "kv_b_proj.weight", B_UNEMBED_OUT, B_UNEMBED_OUT, P,
       Q | MC_R_OPT),
    DS_TAIL,
};

/* V2: the fused kv_b_proj, as it is or rebuilt from the split. */
static const mc_rule deepseek_v2_rules[] = {
    DS_HEAD,
    R(A "kv_b_proj.weight", G "attn_kv_b.weight", A "kv_b_proj.weight", P, Q | MC_R_OPT),
    RB(A "kv_b_proj.weight", G "attn_k_b.weight", NULL, B_KV_B, DS_NONE, P, Q | MC_R_OPT),
    DS_TAIL,
};

/* config.json from GGUF metadata. */

/* kv_lora_rank, qk_nope_head_dim, v_head_dim: the MLA sizes (checked). */
static int ds_cfg_mla(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    ds_mla d;
    int rc = ds_mla_get(cv, &d, err);
    if (rc) return rc;
    uint64_t v = strcmp(k->key, "kv_lora_rank") == 0 ? d.lora : strcmp(k->key, "qk_nope_head_dim") == 0 ? d.nope : d.v;
    return mc_cv_cfg_set_num(cfg, k->key, (double)v) ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

/* llama.cpp expert_gating_func: 1 softmax, 2 sigmoid; absent: k->num (V3's
 * sigmoid, V2's softmax). */
static int ds_cfg_scoring(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t gating = (uint64_t)k->num;
    mc_cv_gguf_u64(cv, "expert_gating_func", &gating);
    if (!cJSON_AddStringToObject(cfg, k->key, gating == 2 ? "sigmoid" : "softmax"))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

/* V2: group-limited when the experts are grouped. */
static int ds_cfg_topk_v2(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t ng = 1;
    mc_cv_gguf_u64(cv, "expert_group_count", &ng);
    if (!cJSON_AddStringToObject(cfg, k->key, ng > 1 ? "group_limited_greedy" : "greedy"))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

/* YaRN: llama.cpp stores 0.1 * mscale_all_dim as yarn_log_multiplier.
 * mlx-lm deepseek_v2 reads rope_scaling["factor"] unconditionally: with
 * k->num, a file without scaling gets YaRN with factor 1 (plain RoPE). */
static int ds_cfg_yarn(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    double f;
    int bad = 0;
    cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, k->key);
    if (!rs && k->num) {
        rs = cJSON_AddObjectToObject(cfg, k->key);
        bad |= !rs || !cJSON_AddStringToObject(rs, "type", "yarn") || !cJSON_AddNumberToObject(rs, "factor", 1.0);
        rs = NULL;
    }
    if (rs && mc_cv_gguf_f64(cv, "rope.scaling.yarn_log_multiplier", &f) == 0 && f > 0) {
        double ms = mc_cv_f32_decimal(mc_cv_f32_decimal(f) * 10.0);
        bad |= !cJSON_AddNumberToObject(rs, "mscale_all_dim", ms);
        bad |= !cJSON_AddNumberToObject(rs, "mscale", ms);
    }
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", cv->m->input_path) : 0;
}

/* llama.cpp runs MLA as MQA (head_count_kv 1); mlx-lm reads the HF value. */
#define DS_CONFIG(v3) \
    MC_CFG_MODEL_TYPE("model_type"), \
    MC_CFG_MODEL("num_key_value_heads", MC_CV_HEADS, 0), \
    MC_CFG_DELETE("head_dim"), \
    MC_CFG_FN("kv_lora_rank", ds_cfg_mla), \
    MC_CFG_U("q_lora_rank", "attention.q_lora_rank", MC_CK_POSITIVE | MC_CK_NULL, 0), \
    MC_CFG_U("qk_rope_head_dim", "rope.dimension_count", 0, 0), \
    MC_CFG_FN("qk_nope_head_dim", ds_cfg_mla), \
    MC_CFG_FN("v_head_dim", ds_cfg_mla), \
    MC_CFG_U("moe_intermediate_size", "expert_feed_forward_length", MC_CK_OPT, 0), \
    MC_CFG_MODEL("n_routed_experts", MC_CV_EXPERTS, MC_CK_IF_EXPERTS), \
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, MC_CK_IF_EXPERTS), \
    MC_CFG_U("n_shared_experts", "expert_shared_count", MC_CK_OPT, 0), \
    MC_CFG_U("first_k_dense_replace", "leading_dense_block_count", 0, 0), \
    MC_CFG_NUM("moe_layer_freq", 1, 0), \
    MC_CFG_F("routed_scaling_factor", "expert_weights_scale", 0, 1.0), \
    MC_CFG_GBOOL("norm_topk_prob", "expert_weights_norm", 0), \
    MC_CFG_U("n_group", "expert_group_count", 0, 1), \
    MC_CFG_U("topk_group", "expert_group_used_count", 0, 1), \
    {"scoring_func", MC_CK_FN, 0, NULL, (v3) ? 2 : 1, ds_cfg_scoring}

static const mc_cfg_key deepseek_v3_gguf_config[] = {
    DS_CONFIG(1),
    MC_CFG_STR("topk_method", "noaux_tc"),
    MC_CFG_BOOL("attention_bias", 0, 0),
    MC_CFG_STR("hidden_act", "silu"),
    {"rope_scaling", MC_CK_FN, 0, NULL, 0, ds_cfg_yarn},
};

static const mc_cfg_key deepseek_v2_gguf_config[] = {
    DS_CONFIG(0),
    MC_CFG_FN("topk_method", ds_cfg_topk_v2),
    MC_CFG_BOOL("attention_bias", 0, 0),
    MC_CFG_STR("hidden_act", "silu"),
    {"rope_scaling", MC_CK_FN, 0, NULL, 1, ds_cfg_yarn},
};

/* A deepseek2 GGUF is DeepSeek V3 when its routers carry the
 * e_score_correction_bias (exp_probs_b) of V3's sigmoid / noaux_tc
 * routing; else V2. Safetensors: the model_type says. */
static int ds_detect_v3(mc_cv *cv)
{
    mc_model *m = cv->m;
    if (!m->gguf) return 1;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const mc_gguf_str *n = &m->gguf->tensors[i].name;
        if (n->len > 17 && strcmp(n->s + n->len - 17, ".exp_probs_b.bias") == 0) return 1;
    }
    return 0;
}

/* Both: MTP in GGUF, the last nextn_predict_layers blocks; HF, layers >=
 * num_hidden_layers (never visited; reported as dropped). */
#define DS_ARCH \
    .name = "deepseek2", .gguf_arch = "deepseek2", \
    .builders = ds_builders, .n_builders = B_COUNT, \
    .kinds = {{MC_K_MOE, MC_K_DENSE, G "ffn_gate_inp.weight", M "gate.weight"}}, \
    .mtp = MC_MTP_LAYERS

const mc_arch mc_arch_deepseek_v3 = {
    DS_ARCH,
    .model_type = "deepseek_v3", .hf_types = "deepseek_v3 kimi_k2", .detect = ds_detect_v3,
    .rules = deepseek_v3_rules, .n_rules = MC_COUNT(deepseek_v3_rules),
    .gguf_config = deepseek_v3_gguf_config, .n_gguf_config = MC_COUNT(deepseek_v3_gguf_config),
};

const mc_arch mc_arch_deepseek_v2 = {
    DS_ARCH,
    .model_type = "deepseek_v2", .hf_types = "deepseek_v2",
    .rules = deepseek_v2_rules, .n_rules = MC_COUNT(deepseek_v2_rules),
    .gguf_config = deepseek_v2_gguf_config, .n_gguf_config = MC_COUNT(deepseek_v2_gguf_config),
};

/* ------------------------------------------------ deepseek2 relatives
 *
 * glm_moe_dsa (GLM-5.x; mlx-lm glm_moe_dsa.py, a deepseek_v32 Model;
 * llama.cpp GlmMoeDsaModel, GGUF arch glm-dsa) and deepseek_v32 (DeepSeek
 * V3.2; mlx-lm deepseek_v32.py; HF only: llama.cpp has no converter for
 * it): DeepSeek V3's MLA, routers and experts plus the DSA indexer of
 * every layer (self_attn.indexer.wq_b / wk / weights_proj: Linear, quantized
 * at the global bits (no quant_predicate); k_norm: a LayerNorm, weight and
 * bias). The indexer is attention: pinned. llama.cpp stores the indexer
 * tensors unchanged (no permutation) under indexer.attn_q_b, attn_k, proj,
 * k_norm. */
#define DS_INDEXER \
    R(A "indexer.wq_b.weight", G "indexer.attn_q_b.weight", A "indexer.wq_b.weight", P, Q), \
    R(A "indexer.wk.weight", G "indexer.attn_k.weight", A "indexer.wk.weight", P, Q), \
    R(A "indexer.k_norm.weight", G "indexer.k_norm.weight", A "indexer.k_norm.weight", P, 0), \
    R(A "indexer.k_norm.bias", G "indexer.k_norm.bias", A "indexer.k_norm.bias", P, 0), \
    R(A "indexer.weights_proj.weight", G "indexer.proj.weight", A "indexer.weights_proj.weight", P, Q)

static const mc_rule deepseek_v32_rules[] = {
    DS_HEAD,
    R(A "embed_q.weight", G "attn_k_b.weight", NULL, P, Q | MC_R_OPT),
    RB(A "embed_q.weight", G "attn_kv_b.weight", A "kv_b_proj.weight", B_EMBED_Q, B_EMBED_Q, P, Q | MC_R_OPT),
    R(A "unembed_out.weight", G "attn_v_b.weight", NULL, P, Q | MC_R_OPT),
    RB(A "unembed_out.weight", G "attn_kv_b.weight", A "kv_b_proj.weight", B_UNEMBED_OUT, B_UNEMBED_OUT, P,
       Q | MC_R_OPT),
    DS_INDEXER,
    DS_TAIL,
};

/* rope_parameters (glm_moe_dsa's ModelArgs requires it and takes
 * rope_theta and rope_scaling from it): rope_scaling's fields when the
 * file has scaling (YaRN), else rope_type default; and rope_theta. */
static int ds_cfg_rope_parameters(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(cfg, "rope_theta");
    cJSON *o = cJSON_IsObject(rs) ? cJSON_Duplicate(rs, 1) : cJSON_CreateObject();
    int bad = !o;
    if (o && !cJSON_IsObject(rs)) bad |= !cJSON_AddStringToObject(o, "rope_type", "default");
    if (o && cJSON_IsNumber(th)) bad |= !cJSON_AddNumberToObject(o, "rope_theta", th->valuedouble);
    if (!bad) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
        bad |= !cJSON_AddItemToObject(cfg, k->key, o);
        o = NULL;
    }
    cJSON_Delete(o);
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", cv->m->input_path) : 0;
}

/* GGUF glm-dsa.*: V3's keys, the indexer's (attention.indexer.*), and
 * rope_parameters. expert_gating_func is absent from files of configs
 * without scoring_func (transformers 5's GlmMoeDsaConfig): sigmoid, the
 * only router mlx-lm's deepseek_v32 has. */
static const mc_cfg_key glm_moe_dsa_gguf_config[] = {
    DS_CONFIG(1),
    MC_CFG_STR("topk_method", "noaux_tc"),
    MC_CFG_BOOL("attention_bias", 0, 0),
    MC_CFG_STR("hidden_act", "silu"),
    {"rope_scaling", MC_CK_FN, 0, NULL, 0, ds_cfg_yarn},
    MC_CFG_U("index_n_heads", "attention.indexer.head_count", 0, 0),
    MC_CFG_U("index_head_dim", "attention.indexer.key_length", 0, 0),
    MC_CFG_U("index_topk", "attention.indexer.top_k", 0, 0),
    MC_CFG_FN("rope_parameters", ds_cfg_rope_parameters),
};

/* HF: glm_moe_dsa's ModelArgs requires topk_method, scoring_func and
 * moe_layer_freq, which transformers 5's GlmMoeDsaConfig does not write
 * (its router is always noaux_tc / sigmoid, every layer from
 * first_k_dense_replace on MoE); rope_parameters from rope_theta when a
 * config lacks it. */
static const mc_cfg_key glm_moe_dsa_hf_config[] = {
    {"topk_method", MC_CK_STR, MC_CK_IF_ABSENT, "noaux_tc", 0, NULL},
    {"scoring_func", MC_CK_STR, MC_CK_IF_ABSENT, "sigmoid", 0, NULL},
    MC_CFG_NUM("moe_layer_freq", 1, MC_CK_IF_ABSENT),
    {"rope_parameters", MC_CK_FN, MC_CK_IF_ABSENT, NULL, 0, ds_cfg_rope_parameters},
};

const mc_arch mc_arch_glm_moe_dsa = {
    .name = "glm-dsa", .model_type = "glm_moe_dsa", .gguf_arch = "glm-dsa", .hf_types = "glm_moe_dsa",
    .builders = ds_builders, .n_builders = B_COUNT,
    .kinds = {{MC_K_MOE, MC_K_DENSE, G "ffn_gate_inp.weight", M "gate.weight"}},
    .mtp = MC_MTP_LAYERS,
    .rules = deepseek_v32_rules, .n_rules = MC_COUNT(deepseek_v32_rules),
    .gguf_config = glm_moe_dsa_gguf_config, .n_gguf_config = MC_COUNT(glm_moe_dsa_gguf_config),
    .hf_config = glm_moe_dsa_hf_config, .n_hf_config = MC_COUNT(glm_moe_dsa_hf_config),
};

/* glm4_moe_lite (GLM-4.7-Flash; mlx-lm glm4_moe_lite.py): DeepSeek V3's
 * module tree, names and sanitize under another model_type. llama.cpp's
 * Glm4MoeLiteModel is a DeepseekV2Model that writes general.architecture
 * deepseek2, so the GGUF is told from DeepSeek's by what only that
 * converter writes:
 *  - {arch}.nextn_predict_layers: DeepseekV2Model skips MTP layers and
 *    never writes the key; Glm4MoeLiteModel keeps the MTP block and writes
 *    it (converters since MTP export; the block is dropped here);
 *  - tokenizer.ggml.pre "glm4": its _set_vocab_glm (the GLM-4.x tokenizer;
 *    DeepSeek and Kimi files say deepseek-v3, deepseek-llm, kimi-k2, ...).
 * Neither: DeepSeek (V3 / V2 below). llama.cpp's own loader guesses from
 * the layer and vocabulary counts (47 or 48 layers, 154880 tokens: sigmoid
 * gating); mconv does not. */
static int ds_detect_glm_lite(mc_cv *cv)
{
    mc_model *m = cv->m;
    if (!m->gguf) return 1; /* safetensors: the model_type says */
    uint64_t nextn = 0;
    if (mc_cv_gguf_u64(cv, "nextn_predict_layers", &nextn) == 0) return 1;
    const char *pre = mc_gguf_get_str(m->gguf, "tokenizer.ggml.pre");
    return pre && strcmp(pre, "glm4") == 0;
}

const mc_arch mc_arch_glm4_moe_lite = {
    .name = "glm4_moe_lite", .gguf_arch = "deepseek2",
    .builders = ds_builders, .n_builders = B_COUNT,
    .kinds = {{MC_K_MOE, MC_K_DENSE, G "ffn_gate_inp.weight", M "gate.weight"}},
    .mtp = MC_MTP_LAYERS,
    .model_type = "glm4_moe_lite", .hf_types = "glm4_moe_lite",
    .detect = ds_detect_glm_lite,
    .rules = deepseek_v3_rules, .n_rules = MC_COUNT(deepseek_v3_rules),
    .gguf_config = deepseek_v3_gguf_config, .n_gguf_config = MC_COUNT(deepseek_v3_gguf_config),
};

/* deepseek_v32 (DeepSeek V3.2; HF only): the glm_moe_dsa rules (hub names
 * of the indexer: self_attn.indexer.{wq_b,wk,k_norm,weights_proj}); FP8
 * block-scaled weights through the f8-block-scale encoding, as V3's.
 * mlx-lm's ModelArgs has a default for every key: the config is kept. */
const mc_arch mc_arch_deepseek_v32 = {
    .name = "deepseek_v32", .model_type = "deepseek_v32", .hf_types = "deepseek_v32",
    .builders = ds_builders, .n_builders = B_COUNT,
    .kinds = {{MC_K_MOE, MC_K_DENSE, G "ffn_gate_inp.weight", M "gate.weight"}},
    .mtp = MC_MTP_LAYERS,
    .rules = deepseek_v32_rules, .n_rules = MC_COUNT(deepseek_v32_rules),
};
