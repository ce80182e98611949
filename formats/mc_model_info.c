/* mc_model_info: per-format summaries for `mconv inspect`. */
#include "mc_model_info.h"

#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_safetensors.h"
#include "mc_tokenizer.h"
#include "mc_types.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- small helpers ---- */

static char *mc_info_fmt(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static char *mc_info_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int mc_info_nomem(const mc_info *info, mc_error *err)
{
    return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", info->path ? info->path : "summary");
}

static int mc_info_add_field(mc_info *info, const char *label, char *value, mc_error *err)
{
    if (!value) return mc_info_nomem(info, err);
    mc_info_field *nf = realloc(info->extra, (info->n_extra + 1) * sizeof *nf);
    char *l = strdup(label);
    if (!nf || !l) {
        if (nf) info->extra = nf;
        free(l);
        free(value);
        return mc_info_nomem(info, err);
    }
    info->extra = nf;
    nf[info->n_extra].label = l;
    nf[info->n_extra].value = value;
    info->n_extra++;
    return 0;
}

static int mc_info_add_warning(mc_info *info, char *text, mc_error *err)
{
    if (!text) return mc_info_nomem(info, err);
    char **nw = realloc(info->warnings, (info->n_warnings + 1) * sizeof *nw);
    if (!nw) {
        free(text);
        return mc_info_nomem(info, err);
    }
    info->warnings = nw;
    nw[info->n_warnings++] = text;
    return 0;
}

/* Histogram accumulator indexed by type id. */
typedef struct mc_info_hist {
    mc_info_type row[MC_T_COUNT];
} mc_info_hist;

static void mc_info_hist_add(mc_info_hist *h, int type, uint64_t params, uint64_t bytes)
{
    if (type < 0 || type >= MC_T_COUNT) return;
    h->row[type].type = type;
    h->row[type].count++;
    h->row[type].params += params;
    h->row[type].bytes += bytes;
}

static int mc_info_hist_store(mc_info *info, const mc_info_hist *h, mc_error *err)
{
    size_t n = 0;
    for (int t = 0; t < MC_T_COUNT; t++) n += h->row[t].count ? 1 : 0;
    if (n == 0) return 0;
    info->types = calloc(n, sizeof *info->types);
    if (!info->types) return mc_info_nomem(info, err);
    for (int t = 0; t < MC_T_COUNT; t++)
        if (h->row[t].count) info->types[info->n_types++] = h->row[t];
    return 0;
}

mc_info *mc_info_new(void)
{
    mc_info *info = calloc(1, sizeof *info);
    if (!info) return NULL;
    info->layers = info->heads = info->kv_heads = info->experts = info->experts_used = -1;
    info->context = info->hidden = info->ffn = info->vocab = info->tokenizer_vocab = -1;
    return info;
}

void mc_info_free(mc_info *info)
{
    if (!info) return;
    free(info->path);
    free(info->format);
    free(info->version);
    free(info->arch);
    free(info->name);
    free(info->types);
    for (size_t i = 0; i < info->n_extra; i++) {
        free(info->extra[i].label);
        free(info->extra[i].value);
    }
    free(info->extra);
    free(info->tokenizer);
    free(info->tokenizer_files);
    free(info->tokenizer_export);
    free(info->file_type);
    free(info->quantization);
    for (size_t i = 0; i < info->n_warnings; i++) free(info->warnings[i]);
    free(info->warnings);
    free(info);
}

double mc_info_bpw(const mc_info *info)
{
    return info->n_params ? (double)info->tensor_bytes * 8.0 / (double)info->n_params : 0.0;
}

/* ---- GGUF ---- */

static const char *const g_ftype_names[] = {
    [0] = "ALL_F32", [1] = "MOSTLY_F16", [2] = "MOSTLY_Q4_0", [3] = "MOSTLY_Q4_1",
    [4] = "MOSTLY_Q4_1_SOME_F16", [7] = "MOSTLY_Q8_0", [8] = "MOSTLY_Q5_0", [9] = "MOSTLY_Q5_1",
    [10] = "MOSTLY_Q2_K", [11] = "MOSTLY_Q3_K_S", [12] = "MOSTLY_Q3_K_M", [13] = "MOSTLY_Q3_K_L",
    [14] = "MOSTLY_Q4_K_S", [15] = "MOSTLY_Q4_K_M", [16] = "MOSTLY_Q5_K_S", [17] = "MOSTLY_Q5_K_M",
    [18] = "MOSTLY_Q6_K", [19] = "MOSTLY_IQ2_XXS", [20] = "MOSTLY_IQ2_XS", [21] = "MOSTLY_Q2_K_S",
    [22] = "MOSTLY_IQ3_XS", [23] = "MOSTLY_IQ3_XXS", [24] = "MOSTLY_IQ1_S", [25] = "MOSTLY_IQ4_NL",
    [26] = "MOSTLY_IQ3_S", [27] = "MOSTLY_IQ3_M", [28] = "MOSTLY_IQ2_S", [29] = "MOSTLY_IQ2_M",
    [30] = "MOSTLY_IQ4_XS", [31] = "MOSTLY_IQ1_M", [32] = "MOSTLY_BF16",
    [36] = "MOSTLY_TQ1_0", [37] = "MOSTLY_TQ2_0", [38] = "MOSTLY_MXFP4_MOE",
};

const char *mc_gguf_file_type_name(uint64_t ft)
{
    if (ft == 1024) return "GUESSED";
    if (ft >= sizeof g_ftype_names / sizeof g_ftype_names[0]) return NULL;
    return g_ftype_names[ft];
}

/* Largest value of a numeric scalar or array key (some architectures store
 * per-layer arrays, e.g. head counts); -1 when absent. */
static int64_t mc_info_gguf_int(const mc_gguf *g, const char *arch, const char *suffix)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch ? arch : "", suffix);
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, key);
    if (!kv) return -1;
    if (kv->type == MC_GGUF_ARRAY) {
        int64_t best = -1, v;
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if (mc_gguf_arr_i64(kv, i, &v) == 0 && v > best) best = v;
        return best;
    }
    int64_t v;
    return mc_gguf_get_i64(g, key, &v) == 0 ? v : -1;
}

static int mc_info_gguf_extra(const mc_gguf *g, mc_info *info, mc_error *err)
{
    static const struct { const char *suffix; const char *label; } ints[] = {
        { "expert_feed_forward_length", "expert ffn" },
        { "expert_shared_count", "shared experts" },
        { "leading_dense_block_count", "dense layers first" },
        { "attention.key_length", "head dim (k)" },
        { "attention.value_length", "head dim (v)" },
        { "attention.kv_lora_rank", "kv lora rank" },
        { "attention.sliding_window", "sliding window" },
        { "full_attention_interval", "full attention every" },
        { "rope.dimension_count", "rope dims" },
        { "nextn_predict_layers", "MTP layers" },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = mc_info_gguf_int(g, info->arch, ints[i].suffix);
        if (v >= 0 && mc_info_add_field(info, ints[i].label, mc_info_fmt("%lld", (long long)v), err)) return err ? err->code : 1;
    }
    char key[256];
    double f;
    snprintf(key, sizeof key, "%s.rope.freq_base", info->arch ? info->arch : "");
    if (mc_gguf_get_f64(g, key, &f) == 0 && mc_info_add_field(info, "rope base", mc_info_fmt("%g", f), err))
        return err ? err->code : 1;
    uint64_t qv;
    if (mc_gguf_get_u64(g, "general.quantization_version", &qv) == 0 &&
        mc_info_add_field(info, "quantization version", mc_info_fmt("%llu", (unsigned long long)qv), err))
        return err ? err->code : 1;
    return 0;
}

/* Tensors that fell back from a 256-element-block type because their rows
 * are not a multiple of 256: in a file that uses 256-block quantization,
 * 2-D+ weights stored in a smaller-block quantized type with ne[0] % 256. */
static int mc_info_gguf_fallbacks(const mc_gguf *g, mc_info *info, mc_error *err)
{
    int has_k = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const mc_type_traits *tr = mc_type_get(g->tensors[i].type);
        if (tr && tr->is_quant && tr->blck == 256) has_k = 1;
    }
    if (!has_k) return 0;
    uint64_t n = 0;
    char list[400];
    size_t used = 0;
    list[0] = '\0';
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const mc_gguf_tensor *t = &g->tensors[i];
        const mc_type_traits *tr = mc_type_get(t->type);
        if (!tr || !tr->is_quant || tr->blck >= 256 || t->n_dims < 2 || t->ne[0] % 256 == 0) continue;
        n++;
        if (used < sizeof list - 80) {
            int w = snprintf(list + used, sizeof list - used, "%s%s (%s, row %llu)", used ? ", " : "",
                             t->name.s, tr->name, (unsigned long long)t->ne[0]);
            if (w > 0) used += (size_t)w < sizeof list - used ? (size_t)w : sizeof list - used - 1;
        }
    }
    if (n == 0) return 0;
    const char *more = used >= sizeof list - 80 ? ", ..." : "";
    return mc_info_add_warning(info, mc_info_fmt("%llu tensor%s fell back to a non-K type (rows not a multiple of 256): %s%s",
                                                 (unsigned long long)n, n == 1 ? "" : "s", list, more), err);
}

int mc_info_from_gguf(const mc_gguf *g, mc_info *info, mc_error *err)
{
    mc_info_hist *h = calloc(1, sizeof *h);
    int rc = 0;
    if (!h) return mc_info_nomem(info, err);
    info->format = strdup("GGUF");
    info->version = mc_info_fmt("%u", (unsigned)g->version);
    if (!info->format || !info->version) { rc = mc_info_nomem(info, err); goto done; }
    const char *arch = mc_gguf_arch(g);
    const char *name = mc_gguf_get_str(g, "general.name");
    if ((arch && !(info->arch = strdup(arch))) || (name && !(info->name = strdup(name)))) {
        rc = mc_info_nomem(info, err);
        goto done;
    }
    info->n_files = g->n_shards;
    for (uint32_t s = 0; s < g->n_shards; s++) info->file_bytes += g->shards[s].file.size;
    info->n_tensors = g->n_tensors;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const mc_gguf_tensor *t = &g->tensors[i];
        info->n_params += t->nelements;
        info->tensor_bytes += t->nbytes;
        mc_info_hist_add(h, t->type, t->nelements, t->nbytes);
    }
    if ((rc = mc_info_hist_store(info, h, err))) goto done;

    info->layers = mc_info_gguf_int(g, arch, "block_count");
    info->heads = mc_info_gguf_int(g, arch, "attention.head_count");
    info->kv_heads = mc_info_gguf_int(g, arch, "attention.head_count_kv");
    info->experts = mc_info_gguf_int(g, arch, "expert_count");
    info->experts_used = mc_info_gguf_int(g, arch, "expert_used_count");
    info->context = mc_info_gguf_int(g, arch, "context_length");
    info->hidden = mc_info_gguf_int(g, arch, "embedding_length");
    info->ffn = mc_info_gguf_int(g, arch, "feed_forward_length");
    info->vocab = mc_info_gguf_int(g, arch, "vocab_size");

    const char *tok = mc_gguf_get_str(g, "tokenizer.ggml.model");
    if (tok && !(info->tokenizer = strdup(tok))) { rc = mc_info_nomem(info, err); goto done; }
    const mc_gguf_kv *tokens = mc_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (tokens && tokens->type == MC_GGUF_ARRAY) info->tokenizer_vocab = (int64_t)tokens->arr_n;
    if (info->vocab < 0) {
        const mc_gguf_tensor *emb = mc_gguf_find_tensor(g, "token_embd.weight");
        if (emb && emb->n_dims >= 2) info->vocab = (int64_t)emb->ne[1];
        else info->vocab = info->tokenizer_vocab;
    }
    if (tokens) {
        const char *kind = NULL;
        char note[1024];
        mc_error terr = { 0 };
        int approx = 0;
        if (mc_tokenizer_kind(g, &kind, note, sizeof note, &approx, &terr) == 0)
            info->tokenizer_export = mc_info_fmt("%s%s%s%s", kind, note[0] ? " (" : "", note, note[0] ? ")" : "");
        else
            info->tokenizer_export = mc_info_fmt("unreadable: %s", terr.msg);
        if (!info->tokenizer_export) { rc = mc_info_nomem(info, err); goto done; }
        if (approx && (rc = mc_info_add_warning(info, mc_info_fmt("the tokenizer a conversion rebuilds is approximate: %s", note), err)))
            goto done;
    }
    uint64_t ft;
    if (mc_gguf_get_u64(g, "general.file_type", &ft) == 0) {
        const char *fn = mc_gguf_file_type_name(ft);
        info->file_type = fn ? mc_info_fmt("%s (%llu)", fn, (unsigned long long)ft)
                             : mc_info_fmt("unknown (%llu)", (unsigned long long)ft);
        if (!info->file_type) { rc = mc_info_nomem(info, err); goto done; }
    }
    if ((rc = mc_info_gguf_extra(g, info, err))) goto done;
    if ((rc = mc_info_gguf_fallbacks(g, info, err))) goto done;
    if (!arch && (rc = mc_info_add_warning(info, strdup("no general.architecture key"), err))) goto done;
done:
    free(h);
    return rc;
}

/* ---- safetensors ---- */

static int64_t mc_info_json_int(const cJSON *cfg, const char *const *keys)
{
    for (int pass = 0; pass < 2 && cfg; pass++) {
        const cJSON *obj = pass == 0 ? cfg : cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
        if (!cJSON_IsObject(obj)) continue;
        for (size_t i = 0; keys[i]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, keys[i]);
            if (cJSON_IsNumber(v) && v->valuedouble >= 0) return (int64_t)v->valuedouble;
        }
    }
    return -1;
}

static const char *mc_info_json_str(const cJSON *cfg, const char *key)
{
    for (int pass = 0; pass < 2 && cfg; pass++) {
        const cJSON *obj = pass == 0 ? cfg : cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
        const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
        if (cJSON_IsString(v) && v->valuestring) return v->valuestring;
    }
    return NULL;
}

static void mc_info_st_hyper(const cJSON *cfg, mc_info *info)
{
    static const char *const k_layers[] = { "num_hidden_layers", "n_layer", "num_layers", NULL };
    static const char *const k_heads[] = { "num_attention_heads", "n_head", NULL };
    static const char *const k_kv[] = { "num_key_value_heads", "multi_query_group_num", NULL };
    static const char *const k_exp[] = { "num_experts", "num_local_experts", "n_routed_experts", NULL };
    static const char *const k_used[] = { "num_experts_per_tok", "num_experts_per_token", "moe_topk", NULL };
    static const char *const k_ctx[] = { "max_position_embeddings", "n_positions", "seq_length", NULL };
    static const char *const k_hidden[] = { "hidden_size", "n_embd", "d_model", NULL };
    static const char *const k_ffn[] = { "intermediate_size", "ffn_hidden_size", NULL };
    static const char *const k_vocab[] = { "vocab_size", "padded_vocab_size", NULL };
    info->layers = mc_info_json_int(cfg, k_layers);
    info->heads = mc_info_json_int(cfg, k_heads);
    info->kv_heads = mc_info_json_int(cfg, k_kv);
    info->experts = mc_info_json_int(cfg, k_exp);
    info->experts_used = mc_info_json_int(cfg, k_used);
    info->context = mc_info_json_int(cfg, k_ctx);
    info->hidden = mc_info_json_int(cfg, k_hidden);
    info->ffn = mc_info_json_int(cfg, k_ffn);
    info->vocab = mc_info_json_int(cfg, k_vocab);
}

static int mc_info_st_extra(const cJSON *cfg, mc_info *info, mc_error *err)
{
    static const struct { const char *key; const char *label; } ints[] = {
        { "moe_intermediate_size", "expert ffn" },
        { "n_shared_experts", "shared experts" },
        { "first_k_dense_replace", "dense layers first" },
        { "head_dim", "head dim" },
        { "kv_lora_rank", "kv lora rank" },
        { "sliding_window", "sliding window" },
        { "num_nextn_predict_layers", "MTP layers" },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const char *keys[] = { ints[i].key, NULL };
        int64_t v = mc_info_json_int(cfg, keys);
        if (v >= 0 && mc_info_add_field(info, ints[i].label, mc_info_fmt("%lld", (long long)v), err)) return err ? err->code : 1;
    }
    for (int pass = 0; pass < 2 && cfg; pass++) {
        const cJSON *obj = pass == 0 ? cfg : cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
        const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "rope_theta") : NULL;
        if (cJSON_IsNumber(v)) return mc_info_add_field(info, "rope base", mc_info_fmt("%g", v->valuedouble), err);
    }
    return 0;
}

/* "quantization" (MLX) or "quantization_config" (HF) block of config.json. */
static int mc_info_st_quant(const cJSON *cfg, mc_info *info, int *bits, mc_error *err)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    const char *kind = "MLX";
    if (!cJSON_IsObject(q)) {
        q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization_config");
        kind = "HF";
    }
    if (!cJSON_IsObject(q)) return 0;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "bits");
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(q, "group_size");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(q, "mode");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
    char buf[200];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", kind);
    if (cJSON_IsNumber(b)) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, " bits=%d", b->valueint);
        if (!strcmp(kind, "MLX")) *bits = b->valueint;
    }
    if (n < sizeof buf && cJSON_IsNumber(gs)) n += (size_t)snprintf(buf + n, sizeof buf - n, " group_size=%d", gs->valueint);
    if (n < sizeof buf && cJSON_IsString(mode)) n += (size_t)snprintf(buf + n, sizeof buf - n, " mode=%.40s", mode->valuestring);
    if (n < sizeof buf && cJSON_IsString(method)) snprintf(buf + n, sizeof buf - n, " method=%.40s", method->valuestring);
    info->quantization = strdup(buf);
    return info->quantization ? 0 : mc_info_nomem(info, err);
}

/* Logical element count of an MLX-packed weight (U32 words with sibling
 * .scales): nelements * 32 / bits (per-module bits override the global). */
static uint64_t mc_info_st_logical(const mc_st *st, const mc_st_tensor *t, const cJSON *cfg, int bits)
{
    size_t len = strlen(t->name);
    if (bits <= 0 || t->type != MC_T_U32 || len < 7 || strcmp(t->name + len - 7, ".weight") != 0 || len > 400)
        return t->nelements;
    char sib[420];
    snprintf(sib, sizeof sib, "%.*s.scales", (int)(len - 7), t->name);
    if (!mc_st_find(st, sib)) return t->nelements;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    snprintf(sib, sizeof sib, "%.*s", (int)(len - 7), t->name);
    const cJSON *mod = cJSON_IsObject(q) ? cJSON_GetObjectItemCaseSensitive(q, sib) : NULL;
    const cJSON *mb = cJSON_IsObject(mod) ? cJSON_GetObjectItemCaseSensitive(mod, "bits") : NULL;
    int b = cJSON_IsNumber(mb) && mb->valueint > 0 ? mb->valueint : bits;
    return t->nelements * 32u / (uint64_t)b;
}

static char *mc_info_read_small(const char *path, uint64_t limit)
{
    mc_file f;
    char *buf = NULL;
    if (mc_file_open(&f, path, NULL) != 0) return NULL;
    if (f.size <= limit && (buf = malloc((size_t)f.size + 1)) != NULL) {
        if (mc_file_pread(&f, 0, buf, (size_t)f.size, NULL) == 0) buf[f.size] = '\0';
        else { free(buf); buf = NULL; }
    }
    mc_file_close(&f);
    return buf;
}

static int mc_info_st_tokenizer(const mc_st *st, mc_info *info, mc_error *err)
{
    size_t len = 0;
    if (!st->dir) return 0;
    for (uint32_t i = 0; i < st->n_tokenizer_files; i++) len += strlen(st->tokenizer_files[i]) + 1;
    if (len) {
        if (!(info->tokenizer_files = malloc(len))) return mc_info_nomem(info, err);
        info->tokenizer_files[0] = '\0';
        for (uint32_t i = 0; i < st->n_tokenizer_files; i++) {
            if (i) strcat(info->tokenizer_files, " ");
            strcat(info->tokenizer_files, st->tokenizer_files[i]);
        }
    }
    char *p = mc_path_join(st->dir, "tokenizer.json");
    if (!p) return mc_info_nomem(info, err);
    char *text = mc_info_read_small(p, (uint64_t)256 << 20);
    free(p);
    cJSON *tj = text ? cJSON_Parse(text) : NULL;
    int bad = text && !tj;
    free(text);
    if (bad && mc_info_add_warning(info, strdup("tokenizer.json is not valid JSON"), err)) return err ? err->code : 1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    int rc = 0;
    if (cJSON_IsString(type) && !(info->tokenizer = strdup(type->valuestring))) rc = mc_info_nomem(info, err);
    if (vocab) info->tokenizer_vocab = cJSON_GetArraySize(vocab);
    else if (!info->tokenizer && info->tokenizer_files && strstr(info->tokenizer_files, "tokenizer.model") &&
             !(info->tokenizer = strdup("sentencepiece (tokenizer.model)")))
        rc = mc_info_nomem(info, err);
    cJSON_Delete(tj);
    if (rc) return rc;
    p = mc_path_join(st->dir, "tokenizer_config.json");
    if (!p) return mc_info_nomem(info, err);
    text = mc_info_read_small(p, (uint64_t)64 << 20);
    free(p);
    cJSON *tc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *approx = cJSON_GetObjectItemCaseSensitive(tc, "mconv_approximate");
    if (cJSON_IsString(approx))
        rc = mc_info_add_warning(info, mc_info_fmt("the tokenizer is approximate (mconv_approximate): %s", approx->valuestring), err);
    cJSON_Delete(tc);
    return rc;
}

int mc_info_from_st(const mc_st *st, mc_info *info, mc_error *err)
{
    mc_info_hist *h = calloc(1, sizeof *h);
    int rc = 0, bits = 0;
    if (!h) return mc_info_nomem(info, err);
    info->format = strdup(st->is_dir ? "safetensors folder" : "safetensors");
    if (!info->format) { rc = mc_info_nomem(info, err); goto done; }
    const cJSON *cfg = st->config;
    const char *mt = mc_info_json_str(cfg, "model_type");
    if (mt && !(info->arch = strdup(mt))) { rc = mc_info_nomem(info, err); goto done; }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (cJSON_IsString(a0) && !(info->name = strdup(a0->valuestring))) { rc = mc_info_nomem(info, err); goto done; }
    if (cfg && (rc = mc_info_st_quant(cfg, info, &bits, err))) goto done;
    info->n_files = st->n_files;
    for (uint32_t i = 0; i < st->n_files; i++) info->file_bytes += st->files[i].file.size;
    info->n_tensors = st->n_tensors;
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        const mc_st_tensor *t = &st->tensors[i];
        uint64_t params = mc_info_st_logical(st, t, cfg, bits);
        info->n_params += params;
        info->tensor_bytes += t->nbytes;
        mc_info_hist_add(h, t->type, params, t->nbytes);
    }
    if ((rc = mc_info_hist_store(info, h, err))) goto done;
    if (cfg) {
        mc_info_st_hyper(cfg, info);
        if ((rc = mc_info_st_extra(cfg, info, err))) goto done;
    }
    const char *fmt = mc_st_meta_get(st, "format");
    if (fmt && (rc = mc_info_add_field(info, "metadata format", strdup(fmt), err))) goto done;
    if ((rc = mc_info_st_tokenizer(st, info, err))) goto done;
    if (st->is_dir && !cfg && (rc = mc_info_add_warning(info, strdup("no config.json: hyperparameters unknown"), err)))
        goto done;
done:
    free(h);
    return rc;
}

/* ---- detection and dispatch ---- */

static int mc_info_has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int mc_info_detect_dir(const char *path, mc_format *out, mc_error *err)
{
    DIR *d = opendir(path);
    if (!d) return mc_error_set(err, MC_ERR_IO, "%s: cannot open folder", path);
    struct dirent *e;
    *out = MC_FMT_UNKNOWN;
    while ((e = readdir(d)) != NULL)
        if (mc_info_has_suffix(e->d_name, ".safetensors") || !strcmp(e->d_name, "model.safetensors.index.json"))
            *out = MC_FMT_SAFETENSORS_DIR;
    closedir(d);
    if (*out == MC_FMT_UNKNOWN)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: folder holds no .safetensors files", path);
    return 0;
}

int mc_format_detect(const char *path, mc_format *out, mc_error *err)
{
    mc_file f;
    unsigned char head[9];
    int rc;
    *out = MC_FMT_UNKNOWN;
    if (mc_io_is_dir(path)) return mc_info_detect_dir(path, out, err);
    if ((rc = mc_file_open(&f, path, err))) return rc;
    if (f.size < 4) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: file too short (%llu bytes) to be a model file", path,
                          (unsigned long long)f.size);
        goto done;
    }
    if ((rc = mc_file_pread(&f, 0, head, f.size < 9 ? 4 : 9, err))) goto done;
    if (!memcmp(head, "GGUF", 4)) { *out = MC_FMT_GGUF; goto done; }
    if (!memcmp(head, "FUGG", 4)) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: magic is 'FUGG': a byte-swapped (big-endian) GGUF, not supported", path);
        goto done;
    }
    if (f.size >= 9) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | head[i];
        if (n >= 2 && n <= f.size - 8 && head[8] == '{') { *out = MC_FMT_SAFETENSORS; goto done; }
    }
    rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: not a GGUF or safetensors file (magic %02x %02x %02x %02x)", path,
                      head[0], head[1], head[2], head[3]);
done:
    mc_file_close(&f);
    return rc;
}

static int mc_info_gguf_path(const char *path, mc_info *info, mc_error *err)
{
    mc_gguf *g = NULL;
    int rc = mc_gguf_open(path, &g, err);
    if (rc == 0) {
        rc = mc_info_from_gguf(g, info, err);
        mc_gguf_close(g);
    }
    return rc;
}

static int mc_info_st_path(const char *path, mc_info *info, mc_error *err)
{
    mc_st *st = NULL;
    int rc = mc_st_open(path, &st, err);
    if (rc == 0) {
        rc = mc_info_from_st(st, info, err);
        mc_st_close(st);
    }
    return rc;
}

/* One row per format: how to summarise it. */
static const struct {
    mc_format fmt;
    int (*summarise)(const char *path, mc_info *info, mc_error *err);
} g_info_formats[] = {
    { MC_FMT_GGUF, mc_info_gguf_path },
    { MC_FMT_SAFETENSORS, mc_info_st_path },
    { MC_FMT_SAFETENSORS_DIR, mc_info_st_path },
};

int mc_info_open(const char *path, mc_info **out, mc_error *err)
{
    mc_format fmt;
    int rc;
    *out = NULL;
    if ((rc = mc_format_detect(path, &fmt, err))) return rc;
    mc_info *info = mc_info_new();
    if (!info || !(info->path = strdup(path))) {
        mc_info_free(info);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    }
    rc = -1;
    for (size_t i = 0; i < sizeof g_info_formats / sizeof g_info_formats[0] && rc < 0; i++)
        if (g_info_formats[i].fmt == fmt) rc = g_info_formats[i].summarise(path, info, err);
    if (rc < 0) rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: unsupported format", path);
    if (rc) mc_info_free(info);
    else *out = info;
    return rc;
}
