/* gemma4 (text): mlx-lm models/gemma4_text.py (and gemma4.py, whose
 * text_config the framework hoists). Hugging Face checkpoints only: the
 * llama.cpp build the corpus was made with (b8291) has no Gemma 4
 * converter, so there is no GGUF form to map.
 *
 * What differs from gemma3:
 *  - norms are plain RMSNorm scales in both HF and mlx-lm (nn.RMSNorm): no
 *    1 + w, no transform;
 *  - layers are sliding or full attention (config layer_types, else every
 *    sliding_window_pattern-th full); full layers may have another head
 *    width and KV head count (mlx-lm: global_head_dim,
 *    num_global_key_value_heads; transformers 5: per_layer_config), and
 *    with attention_k_eq_v they have no v_proj (values = keys);
 *  - the last num_kv_shared_layers layers reuse earlier K/V: mlx-lm's
 *    sanitize drops their k_proj / v_proj / k_norm;
 *  - enable_moe_block: every layer has its dense GeGLU MLP and routed
 *    experts beside it (router.proj / scale / per_expert_scale, fused
 *    experts.gate_up_proj [E, 2I, H] with gate in the first I rows of each
 *    expert, experts.down_proj [E, H, I]) and three more norms;
 *  - layer_scalar [1] per layer; per-layer input embeddings in the small
 *    models (hidden_size_per_layer_input > 0).
 * quant_predicate: router.proj at 8 bits; every other Linear / Embedding /
 * SwitchLinear at the global bits. Roles: the dense MLP streamed per layer
 * (ffn), the experts per expert (expert), router and norms pinned. */
#include "mc_arch_rules.h"
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define LY "model.layers.{L}."
#define A LY "self_attn."
#define G4_B_KV MC_X_B(0)
#define G4_B_GATE MC_X_B(1)
#define G4_B_UP MC_X_B(2)

/* Whether layer L is a full-attention layer, as mlx-lm's ModelArgs decides:
 * layer_types when present, else every sliding_window_pattern-th (5). */
static int g4_full(const mc_cv *cv, int L)
{
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(cv->m->config, "layer_types");
    if (cJSON_IsArray(lt)) {
        const cJSON *t = cJSON_GetArrayItem(lt, L);
        return cJSON_IsString(t) && strcmp(t->valuestring, "full_attention") == 0;
    }
    uint64_t pat = 5;
    if (mc_cv_cfg_u64(cv->m->config, "sliding_window_pattern", &pat) || pat == 0) pat = 5;
    return (uint64_t)L % pat == pat - 1;
}

/* The first KV-shared layer (num_hidden_layers - num_kv_shared_layers). */
static uint64_t g4_first_shared(const mc_cv *cv)
{
    uint64_t shared = 0, n = (uint64_t)cv->m->n_layers;
    if (mc_cv_cfg_u64(cv->m->config, "num_kv_shared_layers", &shared) || shared > n) shared = 0;
    return n - shared;
}

/* k_proj, k_norm, v_proj: only in layers with their own K/V (not
 * KV-shared), v_proj not in full layers with attention_k_eq_v. Where
 * mlx-lm has the module the source must have the tensor; where it has not,
 * a source tensor is left unused (and reported), as sanitize drops it. */
static int g4_build_kv(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    int is_v = strstr(r->mlx, "v_proj") != NULL;
    int k_eq_v = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cv->m->config, "attention_k_eq_v"));
    if ((uint64_t)L >= g4_first_shared(cv) || (is_v && k_eq_v && g4_full(cv, L))) return 0;
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) {
        char name[160];
        snprintf(name, sizeof name, "model.layers.%d.self_attn.%s", L, strstr(r->mlx, "k_norm") ? "k_norm.weight" :
                 is_v ? "v_proj.weight" : "k_proj.weight");
        return mc_error_set(err, MC_ERR_NOTFOUND, "%s: missing tensor %s (layer %d is a %s attention layer with its own %s)",
                            cv->m->input_path, name, L, g4_full(cv, L) ? "full" : "sliding", is_v ? "values" : "keys");
    }
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS], rows = 1;
    mc_cv_source_shape(&src, &nd, shp);
    for (uint32_t d = 0; d + 1 < nd; d++) rows *= shp[d];
    mc_build_shape(b, nd, shp);
    return mc_build_part(b, &src, 0, rows, 0, err);
}

/* experts.gate_up_proj [E, 2I, H] -> switch_glu gate_proj / up_proj
 * [E, I, H]: rows [e*2I + half*I, +I) of each expert, as mlx-lm's sanitize
 * mx.split(v, 2, axis=-2). Row runs only: block copies stay lossless. */
static int g4_build_gate_up(mc_cv *cv, const mc_rule *r, int L, mc_build *b, int half, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    if (nd != 3 || shp[0] == 0 || shp[1] == 0 || shp[1] % 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s is not [experts, 2 * intermediate, hidden]",
                            cv->m->input_path, mc_cv_part_name(&src));
    uint64_t I = shp[1] / 2;
    for (uint64_t e = 0; e < shp[0]; e++) {
        int rc = mc_build_part(b, &src, e * shp[1] + (uint64_t)half * I, I, 0, err);
        if (rc) return rc;
    }
    mc_build_shape(b, 3, (uint64_t[]){shp[0], I, shp[2]});
    return 0;
}

static int g4_build_gate(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return g4_build_gate_up(cv, r, L, b, 0, err);
}

static int g4_build_up(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return g4_build_gate_up(cv, r, L, b, 1, err);
}

static const mc_build_fn gemma4_builders[] = {g4_build_kv, g4_build_gate, g4_build_up};

#define G4_EXP LY "experts."
#define G4_SW LY "experts.switch_glu."
static const mc_rule gemma4_rules[] = {
    {"model.embed_tokens.weight", NULL, "model.embed_tokens.weight", 0, 0, P, MC_R_Q},
    {"model.norm.weight", NULL, "model.norm.weight", 0, 0, P, 0},
    {"lm_head.weight", NULL, "lm_head.weight", 0, 0, P, MC_R_Q | MC_R_NOTIED},
    /* per-layer input embeddings (hidden_size_per_layer_input > 0) */
    {"model.embed_tokens_per_layer.weight", NULL, "model.embed_tokens_per_layer.weight", 0, 0, P, MC_R_Q | MC_R_OPT},
    {"model.per_layer_model_projection.weight", NULL, "model.per_layer_model_projection.weight", 0, 0, P,
     MC_R_Q | MC_R_OPT},
    {"model.per_layer_projection_norm.weight", NULL, "model.per_layer_projection_norm.weight", 0, 0, P, MC_R_OPT},
    {LY "input_layernorm.weight", NULL, LY "input_layernorm.weight", 0, 0, P, 0},
    {A "q_proj.weight", NULL, A "q_proj.weight", 0, 0, P, MC_R_Q},
    {A "k_proj.weight", NULL, A "k_proj.weight", 0, G4_B_KV, P, MC_R_Q | MC_R_OPT},
    {A "v_proj.weight", NULL, A "v_proj.weight", 0, G4_B_KV, P, MC_R_Q | MC_R_OPT},
    {A "o_proj.weight", NULL, A "o_proj.weight", 0, 0, P, MC_R_Q},
    {A "q_norm.weight", NULL, A "q_norm.weight", 0, 0, P, 0},
    {A "k_norm.weight", NULL, A "k_norm.weight", 0, G4_B_KV, P, MC_R_OPT},
    {LY "post_attention_layernorm.weight", NULL, LY "post_attention_layernorm.weight", 0, 0, P, 0},
    {LY "pre_feedforward_layernorm.weight", NULL, LY "pre_feedforward_layernorm.weight", 0, 0, P, 0},
    {LY "post_feedforward_layernorm.weight", NULL, LY "post_feedforward_layernorm.weight", 0, 0, P, 0},
    MC_RULES_MLP(0),
    {LY "router.proj.weight", NULL, LY "router.proj.weight", 0, 0, P, MC_R_Q | MC_R_Q8 | MC_R_MOE},
    {LY "router.scale", NULL, LY "router.scale", 0, 0, P, MC_R_MOE},
    {LY "router.per_expert_scale", NULL, LY "router.per_expert_scale", 0, 0, P, MC_R_MOE},
    {G4_SW "gate_proj.weight", NULL, G4_EXP "gate_up_proj", 0, G4_B_GATE, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE},
    {G4_SW "up_proj.weight", NULL, G4_EXP "gate_up_proj", 0, G4_B_UP, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE},
    {G4_SW "down_proj.weight", NULL, G4_EXP "down_proj", 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE},
    {LY "post_feedforward_layernorm_1.weight", NULL, LY "post_feedforward_layernorm_1.weight", 0, 0, P, MC_R_MOE},
    {LY "post_feedforward_layernorm_2.weight", NULL, LY "post_feedforward_layernorm_2.weight", 0, 0, P, MC_R_MOE},
    {LY "pre_feedforward_layernorm_2.weight", NULL, LY "pre_feedforward_layernorm_2.weight", 0, 0, P, MC_R_MOE},
    {LY "per_layer_input_gate.weight", NULL, LY "per_layer_input_gate.weight", 0, 0, P, MC_R_Q | MC_R_OPT},
    {LY "per_layer_projection.weight", NULL, LY "per_layer_projection.weight", 0, 0, P, MC_R_Q | MC_R_OPT},
    {LY "post_per_layer_input_norm.weight", NULL, LY "post_per_layer_input_norm.weight", 0, 0, P, MC_R_OPT},
    {LY "layer_scalar", NULL, LY "layer_scalar", 0, 0, P, 0},
};

/* mlx-lm builds the router and experts in every layer iff
 * enable_moe_block: the tensors must say the same in every layer. */
static int gemma4_layer_kinds(mc_cv *cv, mc_error *err)
{
    int moe = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cv->m->config, "enable_moe_block"));
    for (int L = 0; L < cv->m->n_layers; L++)
        if (!(cv->kinds[L] & MC_K_MOE) != !moe)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: layer %d %s a router (model.layers.%d.router.proj.weight) but config.json enable_moe_block is %s: "
                                "mlx-lm's gemma4_text has routed experts in every layer or none",
                                cv->m->input_path, L, moe ? "lacks" : "has", L, moe ? "true" : "false");
    return 0;
}

/* global_head_dim / num_global_key_value_heads: mlx-lm's full-attention
 * layers have one head width and (with attention_k_eq_v) one KV head count
 * of their own. transformers 5 says them per layer (per_layer_config); the
 * output tensors say them for certain: the q_norm width and k_proj rows of
 * every full layer, which must agree (else mlx-lm cannot build the model).
 * A value already in config.json must be the tensors' (k->num unused). */
static int gemma4_cfg_global(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)k;
    const mc_model *m = cv->m;
    uint64_t ghd = 0, gkv = 0, kv = cv->n_head_kv;
    int first = -1;
    int k_eq_v = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "attention_k_eq_v"));
    char name[160];
    for (int L = 0; L < m->n_layers; L++) {
        if (!g4_full(cv, L)) continue;
        snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", L);
        const mc_mtensor *qn = mc_model_find(m, name);
        snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.weight", L);
        const mc_mtensor *kp = mc_model_find(m, name);
        if (!qn || qn->n_dims != 1 || qn->shape[0] == 0) continue;
        uint64_t hd = qn->shape[0], nkv = kp && kp->n_dims == 2 && kp->shape[0] % hd == 0 ? kp->shape[0] / hd : 0;
        if (first < 0) first = L, ghd = hd, gkv = nkv;
        if (hd != ghd || (nkv && gkv && nkv != gkv))
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: full-attention layers %d and %d differ (head width %llu vs %llu, KV heads %llu vs %llu): "
                                "mlx-lm's gemma4_text has one global_head_dim and num_global_key_value_heads",
                                m->input_path, first, L, (unsigned long long)ghd, (unsigned long long)hd,
                                (unsigned long long)gkv, (unsigned long long)nkv);
        if (!gkv) gkv = nkv;
    }
    if (first < 0) return 0;
    uint64_t have;
    if (mc_cv_cfg_u64(cfg, "global_head_dim", &have) == 0 && have != ghd)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json global_head_dim %llu, but layer %d's q_norm is %llu wide",
                            m->input_path, (unsigned long long)have, first, (unsigned long long)ghd);
    if (gkv && !k_eq_v && gkv != kv)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: full-attention layer %d has %llu KV heads, the others %llu: mlx-lm's gemma4_text takes "
                            "num_global_key_value_heads only with attention_k_eq_v",
                            m->input_path, first, (unsigned long long)gkv, (unsigned long long)kv);
    if (mc_cv_cfg_set_num(cfg, "global_head_dim", (double)ghd)) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (k_eq_v && gkv && mc_cv_cfg_set_num(cfg, "num_global_key_value_heads", (double)gkv))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

static const mc_cfg_key gemma4_hf_config[] = {
    MC_CFG_FN("global_head_dim", gemma4_cfg_global),
};

const mc_arch mc_arch_gemma4 = {
    .name = "gemma4", .model_type = "gemma4_text", .gguf_arch = NULL, .hf_types = "gemma4_text gemma4",
    .rules = gemma4_rules, .n_rules = MC_COUNT(gemma4_rules),
    .builders = gemma4_builders, .n_builders = MC_COUNT(gemma4_builders),
    .kinds = {MC_KINDS_ALL(MC_K_ATTN | MC_K_DENSE), {MC_K_MOE, 0, NULL, LY "router.proj.weight"}},
    .layer_kinds = gemma4_layer_kinds,
    .hf_config = gemma4_hf_config, .n_hf_config = MC_COUNT(gemma4_hf_config),
};
