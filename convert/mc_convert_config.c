/* mc_convert_config: config.json of the output: from GGUF metadata (the
 * common keys, then the architecture's) or the checkpoint's own config.json
 * (post-processed for mlx-lm). */
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

/* ------------------------------------------------------------- config */

static int mc_cfg_num(cJSON *cfg, const char *k, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k);
    return cJSON_AddNumberToObject(cfg, k, v) ? 0 : 1;
}

static int mc_gguf_common_config(mc_cv *cv, cJSON *cfg, mc_error *err)
{
    mc_model *m = cv->m;
    uint64_t u;
    double d;
    int bad = 0;
    bad |= !cJSON_AddStringToObject(cfg, "model_type", cv->arch->model_type);
    bad |= mc_cfg_num(cfg, "hidden_size", (double)cv->hidden);
    bad |= mc_cfg_num(cfg, "num_hidden_layers", (double)m->n_layers);
    if (mc_cv_gguf_u64(cv, "feed_forward_length", &u) == 0) bad |= mc_cfg_num(cfg, "intermediate_size", (double)u);
    bad |= mc_cfg_num(cfg, "num_attention_heads", (double)cv->n_head);
    bad |= mc_cfg_num(cfg, "num_key_value_heads", (double)cv->n_head_kv);
    bad |= mc_cfg_num(cfg, "head_dim", (double)cv->head_dim);
    d = 10000.0;
    mc_cv_gguf_f64(cv, "rope.freq_base", &d);
    bad |= mc_cfg_num(cfg, "rope_theta", mc_cv_f32_decimal(d));
    d = 1e-5;
    if (mc_cv_gguf_f64(cv, "attention.layer_norm_rms_epsilon", &d) == 0) d = mc_cv_f32_decimal(d);
    bad |= mc_cfg_num(cfg, "rms_norm_eps", d);
    const mc_gguf_tensor *emb = mc_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (emb && emb->n_dims >= 2) bad |= mc_cfg_num(cfg, "vocab_size", (double)emb->ne[1]);
    else if (mc_cv_gguf_u64(cv, "vocab_size", &u) == 0) bad |= mc_cfg_num(cfg, "vocab_size", (double)u);
    if (mc_cv_gguf_u64(cv, "context_length", &u) == 0) bad |= mc_cfg_num(cfg, "max_position_embeddings", (double)u);
    /* rope scaling */
    char key[256];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch);
    const char *rs = mc_gguf_get_str(m->gguf, key);
    if (rs && strcmp(rs, "none") != 0) {
        cJSON *o = cJSON_AddObjectToObject(cfg, "rope_scaling");
        bad |= !o;
        if (o) {
            bad |= !cJSON_AddStringToObject(o, "type", rs);
            bad |= !cJSON_AddStringToObject(o, "rope_type", rs);
            if (mc_cv_gguf_f64(cv, "rope.scaling.factor", &d) == 0)
                bad |= !cJSON_AddNumberToObject(o, "factor", mc_cv_f32_decimal(d));
            if (mc_cv_gguf_u64(cv, "rope.scaling.original_context_length", &u) == 0)
                bad |= !cJSON_AddNumberToObject(o, "original_max_position_embeddings", (double)u);
        }
    }
    if (bad) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", m->input_path);
    return 0;
}

int mc_build_config(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    /* the output head is the arch's MC_R_NOTIED rule (lm_head.weight, or
     * language_model.lm_head.weight for wrapped models) */
    const char *head = "lm_head.weight";
    for (size_t i = 0; i < cv->arch->n_rules; i++)
        if (cv->arch->rules[i].flags & MC_R_NOTIED) head = cv->arch->rules[i].mlx;
    int has_lm = mc_model_find(m, head) != NULL;
    int rc = 0;
    if (m->gguf) {
        m->config = cJSON_CreateObject();
        if (!m->config) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        if ((rc = mc_gguf_common_config(cv, m->config, err))) return rc;
        if (cv->arch->gguf_config && (rc = cv->arch->gguf_config(cv, m->config, err))) return rc;
    } else {
        /* transformers 5 moved rope_theta into rope_parameters; mlx-lm reads rope_theta */
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(m->config, "rope_parameters");
        if (cJSON_IsObject(rp) && !cJSON_GetObjectItemCaseSensitive(m->config, "rope_theta")) {
            const cJSON *fa = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
            const cJSON *th = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(fa) ? fa : rp, "rope_theta");
            if (cJSON_IsNumber(th) && !cJSON_AddNumberToObject(m->config, "rope_theta", th->valuedouble))
                return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        }
        if (cv->arch->hf_config && (rc = cv->arch->hf_config(cv, m->config, err))) return rc;
        cJSON *qc = cJSON_GetObjectItemCaseSensitive(m->config, "quantization_config");
        const cJSON *qm = qc ? cJSON_GetObjectItemCaseSensitive(qc, "quant_method") : NULL;
        if (cJSON_IsString(qm) && strcmp(qm->valuestring, "fp8") == 0)
            cJSON_DeleteItemFromObjectCaseSensitive(m->config, "quantization_config");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m->config, "tie_word_embeddings");
    if (!cJSON_AddBoolToObject(m->config, "tie_word_embeddings", has_lm ? 0 : 1))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}
