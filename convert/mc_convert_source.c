/* mc_convert_source: the input as sources for the rules: GGUF and
 * safetensors setup (architecture, geometry), the normalized-name index of
 * safetensors names, metadata accessors, source lookup for builders,
 * unused-tensor notices and the tokenizer description. */
#include "mc_convert.h"
#include "mc_convert_priv.h"
#include "mc_tokenizer.h"
#include "mc_types.h"
#include "mc_dequant.h"
#include "mc_io.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- safetensors name index */

/* Prefixes that wrap a text model inside a multimodal checkpoint. */
static const struct { const char *from, *to; } mc_prefix_map[] = {
    {"model.language_model.", "model."},
    {"language_model.model.", "model."},
    {"language_model.lm_head.", "lm_head."},
};

static char *mc_normalize(const char *name)
{
    for (size_t i = 0; i < sizeof mc_prefix_map / sizeof mc_prefix_map[0]; i++) {
        size_t fl = strlen(mc_prefix_map[i].from);
        if (strncmp(name, mc_prefix_map[i].from, fl) == 0) {
            size_t tl = strlen(mc_prefix_map[i].to), rl = strlen(name + fl);
            char *d = malloc(tl + rl + 1);
            if (!d) return NULL;
            memcpy(d, mc_prefix_map[i].to, tl);
            memcpy(d + tl, name + fl, rl + 1);
            return d;
        }
    }
    return mc_strdup(name);
}

static int mc_st_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mc_st_name *)a)->norm, ((const struct mc_st_name *)b)->norm);
}

/* The index holds normalized names, so a query is normalized the same way
 * (an mlx-lm name such as "language_model.model.layers.0..." finds the
 * tensor a folder stores under it). */
struct mc_st_name *mc_idx_find(mc_cv *cv, const char *name)
{
    if (!cv->idx) return NULL;
    char buf[MC_NAME_MAX + 64];
    struct mc_st_name key;
    key.norm = (char *)name;
    for (size_t i = 0; i < sizeof mc_prefix_map / sizeof mc_prefix_map[0]; i++) {
        size_t fl = strlen(mc_prefix_map[i].from), tl = strlen(mc_prefix_map[i].to);
        if (strncmp(name, mc_prefix_map[i].from, fl) != 0) continue;
        if (tl + strlen(name + fl) >= sizeof buf) return NULL; /* longer than any indexed name may be */
        memcpy(buf, mc_prefix_map[i].to, tl);
        strcpy(buf + tl, name + fl);
        key.norm = buf;
        break;
    }
    return bsearch(&key, cv->idx, cv->n_idx, sizeof *cv->idx, mc_st_name_cmp);
}

/* ------------------------------------------------------ gguf metadata */

int mc_cv_gguf_u64(mc_cv *cv, const char *suffix, uint64_t *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", cv->m->arch, suffix);
    return mc_gguf_get_u64(cv->m->gguf, key, out);
}

int mc_cv_gguf_layer_u64(mc_cv *cv, const char *suffix, uint64_t *out, mc_error *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", cv->m->arch, suffix);
    const mc_gguf_kv *kv = mc_gguf_find_kv(cv->m->gguf, key);
    if (!kv) return -1;
    if (kv->type != MC_GGUF_ARRAY)
        return mc_gguf_get_u64(cv->m->gguf, key, out) == 0 ? 0
               : mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not a count", cv->m->input_path, key);
    uint64_t v = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int64_t e;
        if (mc_gguf_arr_i64(kv, i, &e) || e < 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: %s[%llu] is not a count", cv->m->input_path, key,
                                (unsigned long long)i);
        if (e == 0) continue;
        if (v && (uint64_t)e != v)
            return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                "%s: %s differs between layers (%llu and %lld): mlx-lm models take one value",
                                cv->m->input_path, key, (unsigned long long)v, (long long)e);
        v = (uint64_t)e;
    }
    if (!v) return -1;
    *out = v;
    return 0;
}

int mc_cv_gguf_f64(mc_cv *cv, const char *suffix, double *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", cv->m->arch, suffix);
    return mc_gguf_get_f64(cv->m->gguf, key, out);
}

int mc_cv_gguf_bool(mc_cv *cv, const char *suffix, int *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", cv->m->arch, suffix);
    return mc_gguf_get_bool(cv->m->gguf, key, out);
}

int mc_drop_mtp(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    uint64_t nextn = 0, n = 0;
    if (m->gguf && mc_cv_gguf_u64(cv, "nextn_predict_layers", &nextn) == 0 && nextn > 0) {
        if (nextn >= (uint64_t)m->n_layers)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: nextn_predict_layers %llu >= block_count %d", m->input_path,
                                (unsigned long long)nextn, m->n_layers);
        m->n_layers -= (int)nextn;
        mc_cv_notice(cv, "%s: %llu MTP (nextn) layer(s) from %d on dropped: mlx-lm does not load them",
                     m->input_path, (unsigned long long)nextn, m->n_layers);
    }
    if (!m->st) return 0;
    if (cv->arch->mtp & MC_MTP_LAYERS) { /* DeepSeek V3's MTP layer is model.layers.<num_hidden_layers> */
        for (uint64_t i = 0; i < m->st->n_tensors; i++) {
            int L;
            if (sscanf(m->st->tensors[i].name, "model.layers.%d.", &L) == 1 && L >= m->n_layers) n++;
        }
        if (n)
            mc_cv_notice(cv, "%s: %llu tensors of MTP layers (model.layers.%d and up) dropped, as mlx-lm's sanitize does",
                         m->input_path, (unsigned long long)n, m->n_layers);
    }
    if (cv->arch->mtp & MC_MTP_PREFIX) {
        n = 0;
        for (uint64_t i = 0; i < m->st->n_tensors; i++) {
            const char *nm = m->st->tensors[i].name;
            n += strncmp(nm, "mtp.", 4) == 0 || strstr(nm, ".mtp.") != NULL;
        }
        if (n)
            mc_cv_notice(cv, "%s: %llu MTP tensors (mtp.*) dropped, as mlx-lm's sanitize does", m->input_path,
                         (unsigned long long)n);
    }
    return 0;
}

int mc_cv_gguf_read_f32(mc_cv *cv, const char *name, float *dst, size_t cap, size_t *n, mc_error *err)
{
    mc_model *m = cv->m;
    const mc_gguf_tensor *t = mc_gguf_find_tensor(m->gguf, name);
    if (!t) return MC_ERR_NOTFOUND;
    if (t->nelements > cap || t->nbytes > cap * sizeof(float))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s has %llu elements, at most %zu expected", m->input_path,
                            name, (unsigned long long)t->nelements, cap);
    void *raw = malloc(t->nbytes ? (size_t)t->nbytes : 1);
    if (!raw) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    int rc = mc_gguf_read(m->gguf, t, 0, raw, (size_t)t->nbytes, err);
    if (!rc) rc = mc_dequant(t->type, raw, dst, (int64_t)t->nelements, err);
    free(raw);
    if (rc) return rc;
    *n = (size_t)t->nelements;
    if (cv->n_consumed < sizeof cv->consumed / sizeof cv->consumed[0]) cv->consumed[cv->n_consumed++] = t;
    return 0;
}

int mc_cv_rule_source(mc_cv *cv, const mc_rule *r, int L, mc_part *p)
{
    const char *pat = cv->m->gguf ? r->gguf : r->hf;
    return pat ? mc_cv_source(cv, pat, L, p) : 0;
}

int mc_cv_source(mc_cv *cv, const char *pat, int L, mc_part *p)
{
    char name[MC_NAME_MAX];
    mc_model *m = cv->m;
    memset(p, 0, sizeof *p);
    if (!pat || mc_fmt_name(name, sizeof name, pat, L, 0)) return 0;
    if (m->gguf) {
        p->g = mc_gguf_find_tensor(m->gguf, name);
        if (!p->g) return 0;
        p->enc = &mc_enc_gguf;
    } else {
        mc_st_src src;
        if (!mc_st_lookup(cv, name, &src)) return 0;
        mc_part_set_st(p, &src);
    }
    uint64_t rl;
    int ty;
    mc_part_geom(p, &p->nrows, &rl, &ty);
    return 1;
}

/* The tokenizer rebuilt from a GGUF: "approximate" and its "notes" into
 * the manifest's tokenizer object t (the CLI prints them), the
 * end-of-generation ids into config.json (convert/mc_tokenizer.h). */
static int mc_build_tokenizer_notes(mc_cv *cv, cJSON *t, mc_error *err)
{
    mc_model *m = cv->m;
    mc_tok_out tok;
    int rc = mc_tokenizer_scan(m->gguf, &tok, err);
    cJSON *notes = !rc && tok.n_notes ? cJSON_AddArrayToObject(t, "notes") : NULL;
    int bad = !rc && tok.n_notes && !notes;
    for (int i = 0; notes && i < tok.n_notes; i++) {
        cJSON *n = cJSON_CreateString(tok.notes[i]);
        bad |= !n;
        if (n) cJSON_AddItemToArray(notes, n);
    }
    if (!rc && tok.approximate) bad |= !cJSON_AddTrueToObject(t, "approximate");
    if (!rc && bad) rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (!rc) rc = mc_tokenizer_config_ids(m->gguf, m->config, err);
    return rc;
}

int mc_build_tokenizer(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    cJSON *t = cJSON_CreateObject();
    int bad = !t;
    if (t && m->gguf) {
        const char *tm = mc_gguf_get_str(m->gguf, "tokenizer.ggml.model");
        const char *pre = mc_gguf_get_str(m->gguf, "tokenizer.ggml.pre");
        const mc_gguf_kv *tok = mc_gguf_find_kv(m->gguf, "tokenizer.ggml.tokens");
        bad |= !cJSON_AddStringToObject(t, "kind", "gguf");
        if (tm) bad |= !cJSON_AddStringToObject(t, "model", tm);
        if (pre) bad |= !cJSON_AddStringToObject(t, "pre", pre);
        bad |= !cJSON_AddNumberToObject(t, "vocab_size",
                                        tok && tok->type == MC_GGUF_ARRAY ? (double)tok->arr_n : 0.0);
        if (!bad) {
            int rc = mc_build_tokenizer_notes(cv, t, err);
            if (rc) {
                cJSON_Delete(t);
                return rc;
            }
        }
    } else if (t) {
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                            "special_tokens_map.json", "vocab.json", "merges.txt",
                                            "generation_config.json", "chat_template.jinja",
                                            "chat_template.json", "added_tokens.json"};
        bad |= !cJSON_AddStringToObject(t, "kind", m->st->dir ? "files" : "none");
        if (m->st->dir) {
            bad |= !cJSON_AddStringToObject(t, "dir", m->st->dir);
            cJSON *arr = cJSON_AddArrayToObject(t, "files");
            bad |= !arr;
            for (size_t i = 0; arr && i < sizeof files / sizeof files[0]; i++) {
                char *p = mc_path_join(m->st->dir, files[i]);
                if (p && mc_io_exists(p)) cJSON_AddItemToArray(arr, cJSON_CreateString(files[i]));
                free(p);
            }
        }
    }
    m->tokenizer = t;
    if (bad) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

/* --------------------------------------------------------------- open */

int mc_is_gguf_file(const char *path)
{
    mc_file f;
    unsigned char mg[4];
    int r = 0;
    if (mc_file_open(&f, path, NULL)) return 0;
    /* FUGG: a byte-swapped GGUF, which the GGUF reader names as such */
    if (f.size >= 4 && mc_file_pread(&f, 0, mg, 4, NULL) == 0 && (!memcmp(mg, "GGUF", 4) || !memcmp(mg, "FUGG", 4))) r = 1;
    mc_file_close(&f);
    return r;
}

int mc_setup_gguf(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    const char *ga = mc_gguf_arch(m->gguf);
    if (!ga)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: no general.architecture key", m->input_path);
    m->arch = mc_strdup(ga);
    if (!m->arch) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    uint64_t ec = 0;
    mc_cv_gguf_u64(cv, "expert_count", &ec);
    if (cv->opts->keep_names) return 0;
    cv->arch = mc_arch_for_gguf(cv, ga, ec > 0);
    if (!cv->arch)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: architecture '%s'%s is not supported (supported: %s; --keep-names passes tensors through)",
                            m->input_path, ga, ec ? " with experts" : "", mc_convert_supported_archs());
    uint64_t u;
    if (mc_cv_gguf_u64(cv, "block_count", &u) || u == 0 || u > 100000)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s.block_count missing or out of range", m->input_path, ga);
    m->n_layers = (int)u;
    if (mc_cv_gguf_u64(cv, "embedding_length", &cv->hidden) || cv->hidden == 0)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s.embedding_length missing or 0", m->input_path, ga);
    if (mc_cv_gguf_u64(cv, "attention.head_count", &cv->n_head) || cv->n_head == 0 || cv->n_head > 1u << 20)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s.attention.head_count missing or out of range (a per-layer array is not supported)",
                            m->input_path, ga);
    int kvrc = mc_cv_gguf_layer_u64(cv, "attention.head_count_kv", &cv->n_head_kv, err);
    if (kvrc > 0) return kvrc;
    if (kvrc < 0) cv->n_head_kv = cv->n_head;
    if (cv->n_head_kv == 0 || cv->n_head_kv > cv->n_head)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s.attention.head_count_kv %llu out of range (heads %llu)",
                            m->input_path, ga, (unsigned long long)cv->n_head_kv, (unsigned long long)cv->n_head);
    if (mc_cv_gguf_u64(cv, "attention.key_length", &cv->head_dim)) cv->head_dim = cv->hidden / cv->n_head;
    if (cv->head_dim == 0 || cv->head_dim > (1u << 20))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: head dim %llu out of range", m->input_path,
                            (unsigned long long)cv->head_dim);
    if (ec > 4096) return mc_error_set(err, MC_ERR_FORMAT, "%s: expert_count %llu out of range", m->input_path, (unsigned long long)ec);
    cv->n_experts = (int)ec;
    u = 0;
    mc_cv_gguf_u64(cv, "expert_used_count", &u);
    m->n_experts = cv->n_experts;
    m->n_experts_per_tok = (int)(u <= 4096 ? u : 0);
    return 0;
}

static int mc_cfg_int(const cJSON *c, const char *k, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    if (!cJSON_IsNumber(v)) return 1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

int mc_setup_st(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    mc_st *st = m->st;
    /* name index */
    cv->idx = calloc(st->n_tensors ? st->n_tensors : 1, sizeof *cv->idx);
    if (!cv->idx) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        cv->idx[i].t = &st->tensors[i];
        cv->idx[i].norm = mc_normalize(st->tensors[i].name);
        cv->n_idx = i + 1;
        if (!cv->idx[i].norm) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    qsort(cv->idx, cv->n_idx, sizeof *cv->idx, mc_st_name_cmp);

    if (cv->opts->keep_names) {
        m->config = st->config ? cJSON_Duplicate(st->config, 1) : cJSON_CreateObject();
        m->arch = mc_strdup("safetensors");
        return (m->config && m->arch) ? 0 : mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    if (!st->config)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: no config.json beside the weights: cannot tell the architecture (supported: %s; --keep-names passes tensors through)",
                            m->input_path, mc_convert_supported_archs());
    m->config = cJSON_Duplicate(st->config, 1);
    if (!m->config) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    /* multimodal wrapper: hoist text_config */
    cJSON *tc = cJSON_GetObjectItemCaseSensitive(m->config, "text_config");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
    if (!cJSON_IsString(mt))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json has no model_type", m->input_path);
    m->arch = mc_strdup(mt->valuestring);
    if (!m->arch) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (cJSON_IsObject(tc) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(tc, "model_type"))) {
        cJSON *top = m->config;
        cJSON *text = cJSON_DetachItemViaPointer(top, tc);
        /* keep quantization blocks of the top level */
        static const char *const keep[] = {"quantization", "quantization_config", "tie_word_embeddings"};
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
            cJSON *it = cJSON_GetObjectItemCaseSensitive(top, keep[i]);
            if (it && !cJSON_GetObjectItemCaseSensitive(text, keep[i])) {
                cJSON_AddItemToObject(text, keep[i], cJSON_Duplicate(it, 1));
            }
        }
        cJSON_Delete(top);
        m->config = text;
        mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
    }
    cv->arch = mc_arch_for_hf(cv, mt->valuestring);
    if (!cv->arch)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: architecture '%s' is not supported (supported: %s; --keep-names passes tensors through)",
                            m->input_path, mt->valuestring, mc_convert_supported_archs());
    int64_t v;
    if (mc_cfg_int(m->config, "num_hidden_layers", &v) || v <= 0 || v > 100000)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json num_hidden_layers missing or out of range", m->input_path);
    m->n_layers = (int)v;
    if (mc_cfg_int(m->config, "hidden_size", &v) || v <= 0)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json hidden_size missing", m->input_path);
    cv->hidden = (uint64_t)v;
    if (mc_cfg_int(m->config, "num_attention_heads", &v) || v <= 0 || v > (1 << 20))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json num_attention_heads missing", m->input_path);
    cv->n_head = (uint64_t)v;
    cv->n_head_kv = mc_cfg_int(m->config, "num_key_value_heads", &v) == 0 && v > 0 ? (uint64_t)v : cv->n_head;
    cv->head_dim = mc_cfg_int(m->config, "head_dim", &v) == 0 && v > 0 ? (uint64_t)v : cv->hidden / cv->n_head;
    if (cv->head_dim == 0 || cv->head_dim > (1u << 20) || cv->n_head_kv > cv->n_head)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json head_dim %llu / num_key_value_heads %llu out of range",
                            m->input_path, (unsigned long long)cv->head_dim, (unsigned long long)cv->n_head_kv);
    int64_t ne = 0;
    if (mc_cfg_int(m->config, "num_experts", &ne) && mc_cfg_int(m->config, "num_local_experts", &ne) &&
        mc_cfg_int(m->config, "n_routed_experts", &ne))
        ne = 0;
    if (ne < 0 || ne > 4096) return mc_error_set(err, MC_ERR_FORMAT, "%s: expert count %lld out of range", m->input_path, (long long)ne);
    cv->n_experts = (int)ne;
    m->n_experts = cv->n_experts;
    v = 0;
    if (mc_cfg_int(m->config, "num_experts_per_tok", &v) && mc_cfg_int(m->config, "top_k_experts", &v)) v = 0; /* gemma4: top_k_experts */
    m->n_experts_per_tok = (int)(v >= 0 && v <= 4096 ? v : 0);
    /* FP8 block size */
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(m->config, "quantization_config");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(qc, "weight_block_size");
    if (cJSON_IsArray(bs) && cJSON_GetArraySize(bs) == 2) {
        const cJSON *b0 = cJSON_GetArrayItem(bs, 0), *b1 = cJSON_GetArrayItem(bs, 1);
        if (!cJSON_IsNumber(b0) || !cJSON_IsNumber(b1) || b0->valuedouble < 1 || b1->valuedouble < 1 ||
            b0->valuedouble > 1e9 || b1->valuedouble > 1e9)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json weight_block_size is not two positive integers",
                                m->input_path);
        mc_model_priv *pv = m->impl;
        pv->f8_br = (uint64_t)b0->valuedouble;
        pv->f8_bc = (uint64_t)b1->valuedouble;
    }
    /* compressed-tensors: only the weight-only symmetric int4 group-32
     * packing mconv reads exactly (Kimi K2 / K2.5) */
    int rc = mc_ct_config_check(m, qc, err);
    if (rc) return rc;
    /* MLX-quantized */
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(m->config, "quantization");
    if (cJSON_IsObject(q)) {
        int64_t b = 0, g = 0;
        if (mc_cfg_int(q, "bits", &b) || mc_cfg_int(q, "group_size", &g) || b <= 0 || b > 8 || g <= 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json quantization has no valid bits/group_size", m->input_path);
        m->mlx_bits = (int)b;
        m->mlx_group_size = (int)g;
    }
    return 0;
}

/* config.json quantization_config of quant_method "compressed-tensors":
 * format pack-quantized, every config group's weights int, 4 bits,
 * symmetric, strategy group, group_size 32, static; no activation
 * quantization. Anything else is refused (0 when not compressed-tensors). */
int mc_ct_config_check(const mc_model *m, const cJSON *qc, mc_error *err)
{
    const cJSON *qm = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
    if (!cJSON_IsString(qm) || strcmp(qm->valuestring, "compressed-tensors") != 0) return 0;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(qc, "format");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(qc, "config_groups"), *g;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "pack-quantized") != 0)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: compressed-tensors format %s: mconv reads \"pack-quantized\" (int4 in int32 words) only",
                            m->input_path, cJSON_IsString(fmt) ? fmt->valuestring : "(none)");
    if (!cJSON_IsObject(groups) || !groups->child)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: compressed-tensors quantization_config has no config_groups",
                            m->input_path);
    cJSON_ArrayForEach(g, groups) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
        const cJSON *gf = cJSON_GetObjectItemCaseSensitive(g, "format");
        const cJSON *ia = cJSON_GetObjectItemCaseSensitive(g, "input_activations");
        const cJSON *nb = cJSON_GetObjectItemCaseSensitive(w, "num_bits");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(w, "type");
        const cJSON *sy = cJSON_GetObjectItemCaseSensitive(w, "symmetric");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(w, "strategy");
        const cJSON *gs = cJSON_GetObjectItemCaseSensitive(w, "group_size");
        const cJSON *dy = cJSON_GetObjectItemCaseSensitive(w, "dynamic");
        const char *bad = !cJSON_IsObject(w) ? "no weights"
            : (cJSON_IsString(gf) && strcmp(gf->valuestring, "pack-quantized") != 0) ? "format"
            : !cJSON_IsNumber(nb) || nb->valuedouble != 4 ? "num_bits (want 4)"
            : !cJSON_IsString(ty) || strcmp(ty->valuestring, "int") != 0 ? "type (want int)"
            : !cJSON_IsTrue(sy) ? "symmetric (want true)"
            : !cJSON_IsString(st) || strcmp(st->valuestring, "group") != 0 ? "strategy (want group)"
            : !cJSON_IsNumber(gs) || gs->valuedouble != 32 ? "group_size (want 32)"
            : cJSON_IsTrue(dy) ? "dynamic (want false)"
            : (ia && !cJSON_IsNull(ia)) ? "input_activations (want none: weight-only)" : NULL;
        if (bad)
            return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                "%s: compressed-tensors config group %s: %s; mconv reads symmetric int4 weights in "
                                "groups of 32 exactly, nothing else",
                                m->input_path, g->string ? g->string : "?", bad);
    }
    return 0;
}

void mc_unused_notices(mc_cv *cv)
{
    mc_model *m = cv->m;
    size_t unused = 0;
    if (m->gguf) {
        uint64_t n = m->gguf->n_tensors;
        unsigned char *used = calloc(n ? n : 1, 1);
        if (!used) return;
        for (size_t k = 0; k < m->n_tensors; k++) {
            const mc_recipe *r = m->tensors[k].impl;
            for (size_t p = 0; r && p < r->n_parts; p++) {
                const mc_gguf_tensor *g = r->parts[p].g;
                if (g && g >= m->gguf->tensors && g < m->gguf->tensors + n) used[g - m->gguf->tensors] = 1;
            }
        }
        for (uint64_t i = 0; i < n; i++) {
            const char *nm = m->gguf->tensors[i].name.s;
            for (size_t c = 0; c < cv->n_consumed; c++) used[i] |= cv->consumed[c] == &m->gguf->tensors[i];
            if (used[i]) continue;
            if (unused++ < 8) mc_notice(m, "%s: source tensor %s not used", m->input_path, nm);
        }
        free(used);
    } else {
        for (size_t i = 0; i < cv->n_idx; i++) {
            const char *n = cv->idx[i].norm;
            if (cv->idx[i].used || strstr(n, "rotary_emb.inv_freq")) continue;
            if (strcmp(n, "lm_head.weight") == 0) continue; /* tied: dropped as mlx-lm's sanitize does */
            if (unused++ < 8) mc_notice(m, "%s: source tensor %s not used", m->input_path, cv->idx[i].t->name);
        }
    }
    if (unused > 8) mc_notice(m, "%s: %zu source tensors not used in all", m->input_path, unused);
}
