/* nemotron_h: NVIDIA Nemotron-H / Nemotron-3 (mlx-lm models/nemotron_h.py),
 * a hybrid of Mamba2 mixers, attention (no RoPE) and MLP or MoE blocks,
 * one kind per layer (hybrid_override_pattern: M Mamba2, * attention,
 * E MoE, - MLP). Every block is backbone.layers.N.{norm, mixer.*}. GGUF
 * arch nemotron_h_moe (with experts) or nemotron_h (dense). Rules and their
 * sources are in docs/CONVERT.md ("nemotron_h").
 *
 * GGUF (llama.cpp NemotronHModel, Mamba2Model): A_log is stored as
 * ssm_a = -exp(A_log) [nh, 1] (recovered as log(-ssm_a)); D [nh, 1]; conv1d
 * [C, 1, K] squeezed to [C, K] (mlx-lm's Conv1d wants [C, K, 1], the same
 * memory order); the gated norm [I] reshaped to [groups, I / groups];
 * attention Q/K rows permuted as for Llama although nothing rotates (undone
 * with the usual row map). MoE: non-gated ReLU² experts (ffn_up_exps /
 * ffn_down_exps = switch_mlp.fc1 / fc2), a shared expert, a sigmoid router
 * with exp_probs_b = e_score_correction_bias.
 * Safetensors: mlx-lm's sanitize (conv1d moveaxis, per-expert stacking,
 * mtp.* dropped). */
#include "mc_convert_int.h"
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define F MC_ROLE_FFN
#define X MC_ROLE_EXPERT
#define Q MC_R_Q
#define MX MC_R_MIXER

/* ------------------------------------------------------------ builders */

/* A source of n elements (any shape) read as the 1-D [n] mlx-lm holds (D
 * [nh, 1], the gated norm [groups, I / groups]). */
static int nh_b_vec(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS], n = 1;
    mc_cv_source_shape(&src, &nd, shp);
    for (uint32_t i = 0; i < nd; i++) n *= shp[i];
    uint64_t rows = nd > 1 ? n / shp[nd - 1] : 1;
    mc_build_shape(b, 1, &n);
    b->flat = nd > 1;
    return mc_build_part(b, &src, 0, rows, 0, err);
}

/* ssm_a = -exp(A_log) -> A_log = log(-ssm_a). */
static int nh_b_alog(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    b->x = MC_X_LOG_NEG;
    return nh_b_vec(cv, r, L, b, err);
}

/* conv1d: GGUF [C, K] or HF [C, 1, K] -> [C, K, 1] (the same memory
 * order); an already sanitized [C, K, 1] as it is. */
static int nh_b_conv(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    uint64_t c = shp[0], k;
    if (nd == 2) k = shp[1];
    else if (nd == 3 && shp[1] == 1) k = shp[2];
    else if (nd == 3 && shp[2] == 1) k = shp[1];
    else
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not a depthwise conv1d weight ([C, K], [C, 1, K] or [C, K, 1])",
                            cv->m->input_path, mc_cv_part_name(&src));
    uint64_t rows = nd == 2 ? c : (shp[2] == 1 && shp[1] != 1 ? c * k : c);
    mc_build_shape(b, 3, (uint64_t[]){c, k, 1});
    b->flat = 1;
    return mc_build_part(b, &src, 0, rows, 0, err);
}

enum { B_VEC, B_ALOG, B_CONV, B_COUNT };
static const mc_build_fn nh_builders[B_COUNT] = {nh_b_vec, nh_b_alog, nh_b_conv};

/* --------------------------------------------------------------- rules */

#define ML "backbone.layers.{L}.mixer."
#define GL "blk.{L}."

static const mc_rule nh_rules[] = {
    {"backbone.embeddings.weight", "token_embd.weight", "backbone.embeddings.weight", 0, 0, P, Q},
    {"backbone.norm_f.weight", "output_norm.weight", "backbone.norm_f.weight", 0, 0, P, 0},
    {"lm_head.weight", "output.weight", "lm_head.weight", 0, 0, P, Q | MC_R_NOTIED},
    {"backbone.layers.{L}.norm.weight", GL "attn_norm.weight", "backbone.layers.{L}.norm.weight", 0, 0, P, 0},
    /* Mamba2 mixer (pinned: SSM tensors) */
    {ML "A_log", GL "ssm_a", ML "A_log", MC_X_B(B_ALOG), MC_X_B(B_VEC), P, MX},
    {ML "D", GL "ssm_d", ML "D", MC_X_B(B_VEC), MC_X_B(B_VEC), P, MX},
    {ML "dt_bias", GL "ssm_dt.bias", ML "dt_bias", MC_X_B(B_VEC), MC_X_B(B_VEC), P, MX},
    {ML "conv1d.weight", GL "ssm_conv1d.weight", ML "conv1d.weight", MC_X_B(B_CONV), MC_X_B(B_CONV), P, MX},
    {ML "conv1d.bias", GL "ssm_conv1d.bias", ML "conv1d.bias", 0, 0, P, MX | MC_R_OPT},
    {ML "in_proj.weight", GL "ssm_in.weight", ML "in_proj.weight", 0, 0, P, Q | MX},
    {ML "in_proj.bias", GL "ssm_in.bias", ML "in_proj.bias", 0, 0, P, MX | MC_R_OPT},
    {ML "norm.weight", GL "ssm_norm.weight", ML "norm.weight", MC_X_B(B_VEC), MC_X_B(B_VEC), P, MX},
    {ML "out_proj.weight", GL "ssm_out.weight", ML "out_proj.weight", 0, 0, P, Q | MX},
    {ML "out_proj.bias", GL "ssm_out.bias", ML "out_proj.bias", 0, 0, P, MX | MC_R_OPT},
    /* attention (no RoPE, but llama.cpp permuted Q/K rows all the same) */
    {ML "q_proj.weight", GL "attn_q.weight", ML "q_proj.weight", MC_X_ROPE_Q, 0, P, Q | MC_R_ATTN},
    {ML "k_proj.weight", GL "attn_k.weight", ML "k_proj.weight", MC_X_ROPE_K, 0, P, Q | MC_R_ATTN},
    {ML "v_proj.weight", GL "attn_v.weight", ML "v_proj.weight", 0, 0, P, Q | MC_R_ATTN},
    {ML "o_proj.weight", GL "attn_output.weight", ML "o_proj.weight", 0, 0, P, Q | MC_R_ATTN},
    {ML "q_proj.bias", GL "attn_q.bias", ML "q_proj.bias", MC_X_ROPE_Q, 0, P, MC_R_ATTN | MC_R_OPT},
    {ML "k_proj.bias", GL "attn_k.bias", ML "k_proj.bias", MC_X_ROPE_K, 0, P, MC_R_ATTN | MC_R_OPT},
    {ML "v_proj.bias", GL "attn_v.bias", ML "v_proj.bias", 0, 0, P, MC_R_ATTN | MC_R_OPT},
    {ML "o_proj.bias", GL "attn_output.bias", ML "o_proj.bias", 0, 0, P, MC_R_ATTN | MC_R_OPT},
    /* MLP block ("-"): up / down, ReLU² */
    {ML "up_proj.weight", GL "ffn_up.weight", ML "up_proj.weight", 0, 0, F, Q | MC_R_DENSE},
    {ML "down_proj.weight", GL "ffn_down.weight", ML "down_proj.weight", 0, 0, F, Q | MC_R_DENSE},
    {ML "up_proj.bias", GL "ffn_up.bias", ML "up_proj.bias", 0, 0, F, MC_R_DENSE | MC_R_OPT},
    {ML "down_proj.bias", GL "ffn_down.bias", ML "down_proj.bias", 0, 0, F, MC_R_DENSE | MC_R_OPT},
    /* MoE block ("E"): MoEGate is no Linear (never quantized), kept pinned */
    {ML "gate.weight", GL "ffn_gate_inp.weight", ML "gate.weight", 0, 0, P, MC_R_MOE},
    {ML "gate.e_score_correction_bias", GL "exp_probs_b.bias", ML "gate.e_score_correction_bias", 0, 0, P,
     MC_R_MOE},
    {ML "shared_experts.up_proj.weight", GL "ffn_up_shexp.weight", ML "shared_experts.up_proj.weight", 0, 0, P,
     Q | MC_R_MOE | MC_R_OPT},
    {ML "shared_experts.down_proj.weight", GL "ffn_down_shexp.weight", ML "shared_experts.down_proj.weight", 0, 0,
     P, Q | MC_R_MOE | MC_R_OPT},
    {ML "switch_mlp.fc1.weight", GL "ffn_up_exps.weight", ML "experts.{E}.up_proj.weight", 0, 0, X, Q | MC_R_MOE},
    {ML "switch_mlp.fc1.weight", GL "ffn_up.{E}.weight", NULL, 0, 0, X, Q | MC_R_MOE},
    {ML "switch_mlp.fc2.weight", GL "ffn_down_exps.weight", ML "experts.{E}.down_proj.weight", 0, 0, X,
     Q | MC_R_MOE},
    {ML "switch_mlp.fc2.weight", GL "ffn_down.{E}.weight", NULL, 0, 0, X, Q | MC_R_MOE},
    /* LatentMoE (Nemotron-3 Super, moe_latent_size): safetensors only (no
     * GGUF names for them are known to mconv: a GGUF's latent tensors
     * would be reported as not used) */
    {ML "fc1_latent_proj.weight", NULL, ML "fc1_latent_proj.weight", 0, 0, P, Q | MC_R_MOE | MC_R_OPT},
    {ML "fc2_latent_proj.weight", NULL, ML "fc2_latent_proj.weight", 0, 0, P, Q | MC_R_MOE | MC_R_OPT},
};

/* ---------------------------------------------------------- layer kinds */

static const char NH_CHARS[] = "M*E-";
static const uint8_t NH_KINDS[] = {MC_K_MIXER, MC_K_ATTN, MC_K_MOE, MC_K_DENSE};

/* Each layer is exactly one block kind (from its tensors); a
 * safetensors config's hybrid_override_pattern / layers_block_type must
 * say the same. */
static int nh_layer_kinds(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    for (int L = 0; L < m->n_layers; L++) {
        unsigned k = cv->kinds[L], n = 0;
        for (size_t i = 0; i < sizeof NH_KINDS; i++) n += (k & NH_KINDS[i]) != 0;
        if (n != 1)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: layer %d holds %s of a Mamba2 mixer, attention, an MoE and an MLP block (one each layer)",
                                m->input_path, L, n ? "more than one" : "none");
    }
    if (m->gguf) return 0;
    char have[1024], want[1024];
    if (mc_cv_kinds_string(cv, NH_CHARS, NH_KINDS, have, sizeof have))
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: %d layers: too many for a pattern", m->input_path,
                            m->n_layers);
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(m->config, "hybrid_override_pattern");
    const cJSON *lbt = cJSON_GetObjectItemCaseSensitive(m->config, "layers_block_type");
    if (cJSON_IsString(pat)) {
        snprintf(want, sizeof want, "%s", pat->valuestring);
    } else if (cJSON_IsArray(lbt)) {
        static const char *const names[] = {"mamba", "attention", "moe", "mlp"};
        size_t o = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, lbt) {
            size_t i = 0;
            while (i < 4 && !(cJSON_IsString(it) && strcmp(it->valuestring, names[i]) == 0)) i++;
            if (i == 4 || o + 1 >= sizeof want)
                return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json layers_block_type holds '%s', not mamba, attention, moe or mlp",
                                    m->input_path, cJSON_IsString(it) ? it->valuestring : "(not a string)");
            want[o++] = NH_CHARS[i];
        }
        want[o] = '\0';
    } else {
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json has neither hybrid_override_pattern nor layers_block_type",
                            m->input_path);
    }
    if (strcmp(have, want) != 0)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json says the layers are \"%s\", the tensors say \"%s\"",
                            m->input_path, want, have);
    return 0;
}

/* -------------------------------------------------------------- config */

static int nh_set(cJSON *cfg, const char *k, cJSON *v, mc_error *err)
{
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k);
    if (!v || !cJSON_AddItemToObject(cfg, k, v)) {
        cJSON_Delete(v);
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int nh_cfg_pattern(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    char s[1024];
    if (mc_cv_kinds_string(cv, NH_CHARS, NH_KINDS, s, sizeof s))
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: %d layers: too many for a pattern", cv->m->input_path,
                            cv->m->n_layers);
    return nh_set(cfg, k->key, cJSON_CreateString(s), err);
}

/* mamba_num_heads = ssm.time_step_rank, mamba_head_dim = inner / heads. */
static int nh_cfg_mamba(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t nh = 0, inner = 0;
    (void)k;
    int has_mixer = 0;
    for (int L = 0; L < cv->m->n_layers; L++) has_mixer |= (cv->kinds[L] & MC_K_MIXER) != 0;
    if (mc_cv_gguf_u64(cv, "ssm.time_step_rank", &nh) || mc_cv_gguf_u64(cv, "ssm.inner_size", &inner) || !nh ||
        inner % nh) {
        if (has_mixer)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: ssm.time_step_rank %llu / ssm.inner_size %llu missing or inconsistent",
                                cv->m->input_path, (unsigned long long)nh, (unsigned long long)inner);
        nh = 1, inner = 1;
    }
    if (mc_cv_cfg_set_num(cfg, "mamba_num_heads", (double)nh) ||
        mc_cv_cfg_set_num(cfg, "mamba_head_dim", (double)(inner / nh)))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

/* Whether some layer's output has tensor backbone.layers.N.<suffix>. */
static int nh_any(mc_cv *cv, const char *suffix)
{
    char name[256];
    for (int L = 0; L < cv->m->n_layers; L++) {
        snprintf(name, sizeof name, "backbone.layers.%d.%s", L, suffix);
        if (mc_model_find(cv->m, name)) return 1;
    }
    return 0;
}

static int nh_cfg_biases(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)k;
    int ab = nh_any(cv, "mixer.q_proj.bias"), mb = nh_any(cv, "mixer.in_proj.bias");
    int fb = nh_any(cv, "mixer.up_proj.bias"), cb = nh_any(cv, "mixer.conv1d.bias");
    int bad = nh_set(cfg, "attention_bias", cJSON_CreateBool(ab), err);
    if (!bad) bad = nh_set(cfg, "mamba_proj_bias", cJSON_CreateBool(mb), err);
    if (!bad) bad = nh_set(cfg, "use_bias", cJSON_CreateBool(mb), err);
    if (!bad) bad = nh_set(cfg, "mlp_bias", cJSON_CreateBool(fb), err);
    if (!bad) bad = nh_set(cfg, "use_conv_bias", cJSON_CreateBool(cb), err);
    return bad;
}

/* intermediate_size: the MLP blocks' width (feed_forward_length, a
 * per-layer array in these files; 0 where a layer has none). A file
 * without MLP blocks has no such width: the MoE layers' is written
 * (ModelArgs requires the key; nothing reads it then). */
static int nh_cfg_ffn(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t v = 0;
    int rc = mc_cv_gguf_layer_u64(cv, "feed_forward_length", &v, err);
    if (rc > 0) return rc;
    if (rc < 0) v = 0;
    return mc_cv_cfg_set_num(cfg, k->key, (double)v) ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

static const mc_cfg_key nh_gguf_config[] = {
    MC_CFG_FN("intermediate_size", nh_cfg_ffn),
    MC_CFG_FN("hybrid_override_pattern", nh_cfg_pattern),
    MC_CFG_FN("mamba_num_heads", nh_cfg_mamba),
    MC_CFG_U("ssm_state_size", "ssm.state_size", 0, 1),
    MC_CFG_U("conv_kernel", "ssm.conv_kernel", 0, 1),
    MC_CFG_U("n_groups", "ssm.group_count", 0, 1),
    MC_CFG_F("layer_norm_epsilon", "attention.layer_norm_epsilon", 0, 1e-5),
    MC_CFG_FN("attention_bias", nh_cfg_biases),
    MC_CFG_U("moe_intermediate_size", "expert_feed_forward_length", MC_CK_OPT | MC_CK_IF_EXPERTS, 0),
    MC_CFG_U("moe_shared_expert_intermediate_size", "expert_shared_feed_forward_length",
             MC_CK_OPT | MC_CK_IF_EXPERTS, 0),
    MC_CFG_MODEL("n_routed_experts", MC_CV_EXPERTS, MC_CK_IF_EXPERTS),
    MC_CFG_U("n_shared_experts", "expert_shared_count", MC_CK_OPT | MC_CK_POSITIVE | MC_CK_IF_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, MC_CK_IF_EXPERTS),
    {"norm_topk_prob", MC_CK_GGUF_BOOL, MC_CK_IF_EXPERTS, "expert_weights_norm", 1, NULL},
    MC_CFG_F("routed_scaling_factor", "expert_weights_scale", MC_CK_IF_EXPERTS, 1.0),
    MC_CFG_U("n_group", "expert_group_count", MC_CK_IF_EXPERTS, 1),
    MC_CFG_U("topk_group", "expert_group_used_count", MC_CK_IF_EXPERTS, 1),
};

/* time_step_limit as transformers 5 writes infinity ([0.0, {"__float__":
 * "Infinity"}]) is no pair of numbers mlx-lm can use; mlx-lm's default is
 * (0.0, inf): such a key is dropped (a finite pair is kept). */
static int nh_cfg_hf_tsl(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)err;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, k->key), *it;
    if (!t) return 0;
    int ok = cJSON_IsArray(t) && cJSON_GetArraySize(t) == 2;
    cJSON_ArrayForEach(it, t) ok &= cJSON_IsNumber(it);
    if (ok) return 0;
    const cJSON *lo = cJSON_IsArray(t) ? cJSON_GetArrayItem(t, 0) : NULL;
    const cJSON *hi = cJSON_IsArray(t) ? cJSON_GetArrayItem(t, 1) : NULL;
    const cJSON *f = cJSON_IsObject(hi) ? cJSON_GetObjectItemCaseSensitive(hi, "__float__") : NULL;
    if (!(cJSON_IsNumber(lo) && lo->valuedouble == 0.0 && cJSON_IsString(f) && strcmp(f->valuestring, "Infinity") == 0))
        mc_cv_notice(cv, "%s: config.json time_step_limit is not a pair of numbers: dropped (mlx-lm's default (0, inf))",
                     cv->m->input_path);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    return 0;
}

static const mc_cfg_key nh_hf_config[] = {
    MC_CFG_FN("time_step_limit", nh_cfg_hf_tsl),
};

#define NH_KIND_SELS \
    {{MC_K_MIXER, 0, GL "ssm_in.weight", ML "in_proj.weight"}, \
     {MC_K_ATTN, 0, GL "attn_q.weight", ML "q_proj.weight"}, \
     {MC_K_MOE, 0, GL "ffn_gate_inp.weight", ML "gate.weight"}, \
     {MC_K_DENSE, 0, GL "ffn_up.weight", ML "up_proj.weight"}}

const mc_arch mc_arch_nemotron_h_moe = {
    .name = "nemotron_h", .model_type = "nemotron_h", .gguf_arch = "nemotron_h_moe", .hf_types = "nemotron_h",
    .rules = nh_rules, .n_rules = MC_COUNT(nh_rules),
    .builders = nh_builders, .n_builders = B_COUNT,
    .kinds = NH_KIND_SELS, .layer_kinds = nh_layer_kinds, .mtp = MC_MTP_PREFIX,
    .gguf_config = nh_gguf_config, .n_gguf_config = MC_COUNT(nh_gguf_config),
    .hf_config = nh_hf_config, .n_hf_config = MC_COUNT(nh_hf_config),
};

/* The dense variants (Nemotron-H 4B/8B/47B...): GGUF arch nemotron_h. */
const mc_arch mc_arch_nemotron_h = {
    .name = "nemotron_h", .model_type = "nemotron_h", .gguf_arch = "nemotron_h",
    .rules = nh_rules, .n_rules = MC_COUNT(nh_rules),
    .builders = nh_builders, .n_builders = B_COUNT,
    .kinds = NH_KIND_SELS, .layer_kinds = nh_layer_kinds, .mtp = MC_MTP_PREFIX,
    .gguf_config = nh_gguf_config, .n_gguf_config = MC_COUNT(nh_gguf_config),
    .hf_config = nh_hf_config, .n_hf_config = MC_COUNT(nh_hf_config),
};
