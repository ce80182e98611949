/* mc_convert_config: config.json of the output: from GGUF metadata (the
 * common keys, then the architecture's) or the checkpoint's own config.json
 * (post-processed for mlx-lm), both through tables of config keys
 * (mc_cfg_key) applied by one function. */
#include "mc_convert.h"
#include "mc_convert_priv.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mc_cv_cfg_u64(const cJSON *c, const char *k, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15) return 1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

int mc_cv_cfg_set_num(cJSON *c, const char *k, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(c, k);
    return cJSON_AddNumberToObject(c, k, v) ? 0 : 1;
}

double mc_cv_f32_decimal(double v)
{
    float f = (float)v;
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return v;
}

/* ------------------------------------------------------- key tables */

static double mc_quantity(const mc_cv *cv, int q, int *have)
{
    const mc_model *m = cv->m;
    uint64_t u;
    *have = 1;
    switch (q) {
    case MC_CV_HIDDEN: return (double)cv->hidden;
    case MC_CV_LAYERS: return (double)m->n_layers;
    case MC_CV_HEADS: return (double)cv->n_head;
    case MC_CV_KV_HEADS: return (double)cv->n_head_kv;
    case MC_CV_HEAD_DIM: return (double)cv->head_dim;
    case MC_CV_EXPERTS: return (double)m->n_experts;
    case MC_CV_EXPERTS_PER_TOK: return (double)m->n_experts_per_tok;
    case MC_CV_VOCAB: { /* rows of the embedding, else the metadata */
        const mc_gguf_tensor *emb = m->gguf ? mc_gguf_find_tensor(m->gguf, "token_embd.weight") : NULL;
        if (emb && emb->n_dims >= 2) return (double)emb->ne[1];
        if (m->gguf && mc_cv_gguf_u64((mc_cv *)cv, "vocab_size", &u) == 0) return (double)u;
        break;
    }
    default: break;
    }
    *have = 0;
    return 0;
}

/* The number at dotted path p ("a.b.c") in c, or NULL. */
static const cJSON *mc_json_path(const cJSON *c, const char *p)
{
    char part[128];
    while (c && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof part) return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        c = cJSON_GetObjectItemCaseSensitive(c, part);
        p += n + (dot ? 1 : 0);
    }
    return cJSON_IsNumber(c) ? c : NULL;
}

/* The value of a declarative entry, or NULL when it has none (absent and
 * optional). *bad on out of memory. */
static cJSON *mc_cfg_value(mc_cv *cv, const cJSON *cfg, const mc_cfg_key *k, int *bad)
{
    uint64_t u;
    double d = 0;
    int b = 0, have = 0, isbool = 0;
    switch (k->src) {
    case MC_CK_GGUF_UINT:
        if ((have = mc_cv_gguf_u64(cv, k->from, &u) == 0)) d = (double)u;
        break;
    case MC_CK_GGUF_F32:
        have = mc_cv_gguf_f64(cv, k->from, &d) == 0;
        break;
    case MC_CK_GGUF_BOOL:
        isbool = 1;
        if ((have = mc_cv_gguf_bool(cv, k->from, &b) == 0)) d = b;
        break;
    case MC_CK_GGUF_PER_HEAD:
        if ((have = mc_cv_gguf_u64(cv, k->from, &u) == 0 && cv->head_dim)) d = (double)u / (double)cv->head_dim;
        break;
    case MC_CK_NUM: have = 1, d = k->num; break;
    case MC_CK_BOOL: have = 1, isbool = 1, d = k->num; break;
    case MC_CK_MODEL: d = mc_quantity(cv, (int)k->num, &have); break;
    case MC_CK_HAS_TENSOR: have = 1, isbool = 1, d = mc_model_find(cv->m, k->from) != NULL; break;
    case MC_CK_JSON: {
        const cJSON *v = mc_json_path(cfg, k->from);
        if ((have = v != NULL)) d = v->valuedouble;
        break;
    }
    case MC_CK_STR: return cJSON_CreateString(k->from);
    case MC_CK_MODEL_TYPE: return cJSON_CreateString(cv->arch->model_type);
    case MC_CK_LAYERS_WITHOUT: {
        cJSON *a = cJSON_CreateArray();
        unsigned kinds = (unsigned)k->num;
        for (int L = 0; a && L < cv->m->n_layers; L++) {
            if ((cv->kinds[L] & kinds) == kinds) continue;
            cJSON *n = cJSON_CreateNumber(L);
            *bad |= !n;
            if (n) cJSON_AddItemToArray(a, n);
        }
        return a;
    }
    default: return NULL;
    }
    if (have && (k->flags & MC_CK_POSITIVE) && !(d > 0)) have = 0;
    if (!have) {
        if (k->flags & MC_CK_OPT) return NULL;
        if (k->flags & MC_CK_NULL) return cJSON_CreateNull();
        d = k->num;
    }
    if (k->src == MC_CK_GGUF_F32) d = mc_cv_f32_decimal(d);
    return isbool ? cJSON_CreateBool(d != 0) : cJSON_CreateNumber(d);
}

int mc_cfg_apply(mc_cv *cv, cJSON *cfg, const mc_cfg_key *keys, size_t n, mc_error *err)
{
    const mc_model *m = cv->m;
    for (size_t i = 0; i < n; i++) {
        const mc_cfg_key *k = &keys[i];
        int bad = 0, rc;
        if ((k->flags & MC_CK_IF_EXPERTS) && m->n_experts == 0) continue;
        if ((k->flags & MC_CK_IF_DENSE) && m->n_experts != 0) continue;
        if ((k->flags & MC_CK_IF_ABSENT) && cJSON_GetObjectItemCaseSensitive(cfg, k->key)) continue;
        if (k->src == MC_CK_FN) {
            if ((rc = k->fn(cv, cfg, k, err))) return rc;
            continue;
        }
        if (k->src == MC_CK_DELETE) {
            cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
            continue;
        }
        cJSON *v = mc_cfg_value(cv, cfg, k, &bad);
        if (v) {
            cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
            bad |= !cJSON_AddItemToObject(cfg, k->key, v);
        } else {
            bad |= k->src == MC_CK_STR || k->src == MC_CK_MODEL_TYPE || k->src == MC_CK_LAYERS_WITHOUT ||
                   !(k->flags & MC_CK_OPT);
        }
        if (bad) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", m->input_path);
    }
    return 0;
}

/* --------------------------------------------------------------- common */

/* rope_scaling {type, rope_type, factor, original_max_position_embeddings}
 * from {arch}.rope.scaling.* (absent or "none": no key). */
static int mc_cfg_rope_scaling(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    mc_model *m = cv->m;
    char key[256];
    uint64_t u;
    double d;
    int bad = 0;
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch);
    const char *rs = mc_gguf_get_str(m->gguf, key);
    if (!rs || strcmp(rs, "none") == 0) return 0;
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    cJSON *o = cJSON_AddObjectToObject(cfg, k->key);
    bad |= !o;
    if (o) {
        bad |= !cJSON_AddStringToObject(o, "type", rs);
        bad |= !cJSON_AddStringToObject(o, "rope_type", rs);
        if (mc_cv_gguf_f64(cv, "rope.scaling.factor", &d) == 0)
            bad |= !cJSON_AddNumberToObject(o, "factor", mc_cv_f32_decimal(d));
        if (mc_cv_gguf_u64(cv, "rope.scaling.original_context_length", &u) == 0)
            bad |= !cJSON_AddNumberToObject(o, "original_max_position_embeddings", (double)u);
    }
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", m->input_path) : 0;
}

/* Every GGUF: what llama.cpp's common hparams say. */
static const mc_cfg_key mc_gguf_common_config[] = {
    MC_CFG_MODEL_TYPE("model_type"),
    MC_CFG_MODEL("hidden_size", MC_CV_HIDDEN, 0),
    MC_CFG_MODEL("num_hidden_layers", MC_CV_LAYERS, 0),
    MC_CFG_U("intermediate_size", "feed_forward_length", MC_CK_OPT, 0),
    MC_CFG_MODEL("num_attention_heads", MC_CV_HEADS, 0),
    MC_CFG_MODEL("num_key_value_heads", MC_CV_KV_HEADS, 0),
    MC_CFG_MODEL("head_dim", MC_CV_HEAD_DIM, 0),
    MC_CFG_F("rope_theta", "rope.freq_base", 0, 10000.0),
    MC_CFG_F("rms_norm_eps", "attention.layer_norm_rms_epsilon", 0, 1e-5),
    MC_CFG_MODEL("vocab_size", MC_CV_VOCAB, MC_CK_OPT),
    MC_CFG_U("max_position_embeddings", "context_length", MC_CK_OPT, 0),
    MC_CFG_FN("rope_scaling", mc_cfg_rope_scaling),
};

/* transformers 5 moved rope_theta into rope_parameters (per layer type:
 * full_attention's); mlx-lm reads rope_theta. */
static int mc_cfg_hf_rope_theta(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)cv;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(cfg, "rope_parameters");
    if (!cJSON_IsObject(rp)) return 0;
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(fa) ? fa : rp, "rope_theta");
    if (cJSON_IsNumber(th) && !cJSON_AddNumberToObject(cfg, k->key, th->valuedouble))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

/* Every safetensors checkpoint, before the architecture's keys. */
static const mc_cfg_key mc_hf_common_config[] = {
    {"rope_theta", MC_CK_FN, MC_CK_IF_ABSENT, NULL, 0, mc_cfg_hf_rope_theta},
};

int mc_build_config(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    const mc_arch *a = cv->arch;
    /* the output head is the arch's MC_R_NOTIED rule (lm_head.weight, or
     * language_model.lm_head.weight for wrapped models) */
    const char *head = "lm_head.weight";
    for (size_t i = 0; i < a->n_rules; i++)
        if (a->rules[i].flags & MC_R_NOTIED) head = a->rules[i].mlx;
    int has_lm = mc_model_find(m, head) != NULL;
    int rc = 0;
    if (m->gguf) {
        m->config = cJSON_CreateObject();
        if (!m->config) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        if ((rc = mc_cfg_apply(cv, m->config, mc_gguf_common_config, MC_COUNT(mc_gguf_common_config), err)) ||
            (rc = mc_cfg_apply(cv, m->config, a->gguf_config, a->n_gguf_config, err)))
            return rc;
    } else {
        if ((rc = mc_cfg_apply(cv, m->config, mc_hf_common_config, MC_COUNT(mc_hf_common_config), err)) ||
            (rc = mc_cfg_apply(cv, m->config, a->hf_config, a->n_hf_config, err)))
            return rc;
        /* F8 weights come out as floats, compressed-tensors INT4 as MLX affine
         * (the plan's quantization block): their quantization_config no longer holds */
        cJSON *qc = cJSON_GetObjectItemCaseSensitive(m->config, "quantization_config");
        const cJSON *qm = qc ? cJSON_GetObjectItemCaseSensitive(qc, "quant_method") : NULL;
        if (cJSON_IsString(qm) && (strcmp(qm->valuestring, "fp8") == 0 || strcmp(qm->valuestring, "compressed-tensors") == 0))
            cJSON_DeleteItemFromObjectCaseSensitive(m->config, "quantization_config");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m->config, "tie_word_embeddings");
    if (!cJSON_AddBoolToObject(m->config, "tie_word_embeddings", has_lm ? 0 : 1))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}
