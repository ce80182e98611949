/* mc_tok_config: the tokenizer-side files besides tokenizer.json, from a
 * GGUF's keys: tokenizer_config.json (special tokens, add_bos/add_eos, chat
 * templates, the approximate marker), chat_template.jinja,
 * generation_config.json and config.json's bos/eos ids; and writing them. */
#include "mc_tok_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_io.h"

#define MC_TOK_TEMPLATE_KEY "tokenizer.chat_template"

/* End-of-generation ids, in this order, duplicates once (mlx-lm stops on
 * any of them). */
static const char *const g_eog_keys[] = { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                          "tokenizer.ggml.eom_token_id" };

/* The end-of-generation ids of g (at most 3) into ids; their count. */
static int mc_tok_eog(const mc_gguf *g, uint64_t n, int64_t ids[3])
{
    int k = 0;
    for (size_t i = 0; i < sizeof g_eog_keys / sizeof g_eog_keys[0]; i++) {
        int64_t id = mc_tok_id(g, g_eog_keys[i], n);
        int seen = 0;
        for (int j = 0; j < k; j++) seen |= ids[j] == id;
        if (id >= 0 && !seen) ids[k++] = id;
    }
    return k;
}

/* An id list as mlx-lm and transformers read it: a number for one id, an
 * array for several. */
static cJSON *mc_tok_ids_json(const int64_t *ids, int k)
{
    if (k == 1) return cJSON_CreateNumber((double)ids[0]);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < k; i++) {
        cJSON *v = cJSON_CreateNumber((double)ids[i]);
        if (!v) { cJSON_Delete(a); return NULL; }
        cJSON_AddItemToArray(a, v);
    }
    return a;
}

static void mc_tok_set(cJSON *obj, const char *name, cJSON *item, int *oom)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
    mc_tok_add(obj, name, item, oom);
}

int mc_tokenizer_config_ids(const mc_gguf *g, cJSON *config, mc_error *err)
{
    const mc_gguf_kv *tk = mc_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!config || !tk || tk->type != MC_GGUF_ARRAY) return 0;
    int64_t ids[3];
    int k = mc_tok_eog(g, tk->arr_n, ids), oom = 0;
    int64_t bos = mc_tok_id(g, "tokenizer.ggml.bos_token_id", tk->arr_n);
    if (bos >= 0) mc_tok_set(config, "bos_token_id", cJSON_CreateNumber((double)bos), &oom);
    if (k) mc_tok_set(config, "eos_token_id", mc_tok_ids_json(ids, k), &oom);
    return oom ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building config.json", g->path ? g->path : "gguf") : 0;
}

/* The string value of kv when it is valid UTF-8, else NULL. */
static const char *mc_tok_kv_text(const mc_gguf_kv *kv)
{
    return kv && kv->type == MC_GGUF_STRING && mc_tok_utf8_ok(kv->v.str.s, kv->v.str.len) ? kv->v.str.s : NULL;
}

/* chat_template: the template string, or, with named templates
 * (tokenizer.chat_template.NAME), the list [{"name", "template"}] that
 * transformers reads ("default" first). */
static cJSON *mc_tok_templates(const mc_gguf *g, int *oom)
{
    const char *dflt = mc_tok_kv_text(mc_gguf_find_kv(g, MC_TOK_TEMPLATE_KEY));
    size_t plen = strlen(MC_TOK_TEMPLATE_KEY) + 1;
    cJSON *list = NULL;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const mc_gguf_kv *kv = &g->kv[i];
        const char *text = mc_tok_kv_text(kv);
        if (!text || kv->key.len <= plen || strncmp(kv->key.s, MC_TOK_TEMPLATE_KEY ".", plen)) continue;
        if (!list) {
            list = mc_tok_chk(cJSON_CreateArray(), oom);
            if (!list) return NULL;
            if (dflt) {
                cJSON *d = mc_tok_chk(cJSON_CreateObject(), oom);
                mc_tok_add(list, NULL, d, oom);
                if (d) {
                    mc_tok_add(d, "name", cJSON_CreateString("default"), oom);
                    mc_tok_add(d, "template", cJSON_CreateString(dflt), oom);
                }
            }
        }
        cJSON *t = mc_tok_chk(cJSON_CreateObject(), oom);
        mc_tok_add(list, NULL, t, oom);
        if (t) {
            mc_tok_add(t, "name", cJSON_CreateString(kv->key.s + plen), oom);
            mc_tok_add(t, "template", cJSON_CreateString(text), oom);
        }
    }
    if (list) return list;
    return dflt ? mc_tok_chk(cJSON_CreateString(dflt), oom) : NULL;
}

static cJSON *mc_tok_tc(const mc_tok_src *s, const mc_tok_out *out, int *oom)
{
    static const struct { const char *key; const char *name; } ids[] = {
        { "tokenizer.ggml.bos_token_id", "bos_token" }, { "tokenizer.ggml.eos_token_id", "eos_token" },
        { "tokenizer.ggml.unknown_token_id", "unk_token" }, { "tokenizer.ggml.padding_token_id", "pad_token" },
    };
    cJSON *c = mc_tok_chk(cJSON_CreateObject(), oom);
    if (!c) return NULL;
    mc_tok_add(c, "add_bos_token", cJSON_CreateBool(mc_tok_add_bos(s)), oom);
    mc_tok_add(c, "add_eos_token", cJSON_CreateBool(mc_tok_bool(s->g, "tokenizer.ggml.add_eos_token", 0)), oom);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int64_t id = mc_tok_id(s->g, ids[i].key, s->n);
        if (id >= 0 && mc_tok_utf8_ok(s->tokens[id].s, s->tokens[id].len))
            mc_tok_add(c, ids[i].name, cJSON_CreateString(s->tokens[id].s), oom);
    }
    cJSON *tmpl = mc_tok_templates(s->g, oom);
    if (tmpl) mc_tok_add(c, "chat_template", tmpl, oom);
    mc_tok_add(c, "clean_up_tokenization_spaces", cJSON_CreateBool(s->bpe && (s->flags & MC_TP_CLEAN)), oom);
    if (s->spm) mc_tok_add(c, "legacy", cJSON_CreateTrue(), oom);
    int64_t ctx = -1;
    const char *arch = mc_gguf_arch(s->g);
    if (arch) {
        char key[200];
        snprintf(key, sizeof key, "%s.context_length", arch);
        if (mc_gguf_get_i64(s->g, key, &ctx) == 0 && ctx > 0)
            mc_tok_add(c, "model_max_length", cJSON_CreateNumber((double)ctx), oom);
    }
    if (out->tokenizer_json) mc_tok_add(c, "tokenizer_class", cJSON_CreateString("PreTrainedTokenizerFast"), oom);
    if (out->approximate) mc_tok_add(c, "mconv_approximate", cJSON_CreateString(out->notes[0]), oom);
    return c;
}

static cJSON *mc_tok_gc(const mc_tok_src *s, int *oom)
{
    int64_t ids[3];
    int k = mc_tok_eog(s->g, s->n, ids);
    if (!k) return NULL;
    cJSON *c = mc_tok_chk(cJSON_CreateObject(), oom);
    if (!c) return NULL;
    int64_t bos = mc_tok_id(s->g, "tokenizer.ggml.bos_token_id", s->n);
    int64_t pad = mc_tok_id(s->g, "tokenizer.ggml.padding_token_id", s->n);
    if (bos >= 0) mc_tok_add(c, "bos_token_id", cJSON_CreateNumber((double)bos), oom);
    mc_tok_add(c, "eos_token_id", mc_tok_ids_json(ids, k), oom);
    if (pad >= 0) mc_tok_add(c, "pad_token_id", cJSON_CreateNumber((double)pad), oom);
    return c;
}

int mc_tok_config_build(const mc_tok_src *s, mc_tok_out *out, mc_error *err)
{
    int oom = 0;
    const char *tmpl = mc_tok_kv_text(mc_gguf_find_kv(s->g, MC_TOK_TEMPLATE_KEY));
    out->tokenizer_config = mc_tok_tc(s, out, &oom);
    out->generation_config = mc_tok_gc(s, &oom);
    if (tmpl) {
        size_t n = strlen(tmpl);
        if ((out->chat_template = malloc(n + 1)) != NULL) memcpy(out->chat_template, tmpl, n + 1);
        else oom = 1;
    }
    return oom ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building tokenizer_config.json", s->path) : 0;
}

/* ---- writing ---- */

static int mc_tok_write_one(const char *dir, const char *name, const char *text, int force, mc_error *err)
{
    char *path = mc_path_join(dir, name);
    mc_outfile o = { .fd = -1, .slot = -1 };
    int rc = 0, created = 0;
    if (!path || !text) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory writing %s", dir, name);
        goto done;
    }
    if ((rc = mc_outfile_create(&o, path, force, err))) goto done;
    created = 1;
    if ((rc = mc_outfile_write(&o, text, strlen(text), err))) goto done;
    rc = mc_outfile_commit(&o, err);
done:
    if (created) mc_outfile_abort(&o);
    free(path);
    return rc;
}

static int mc_tok_write_json(const char *dir, const char *name, const cJSON *doc, int force, mc_error *err)
{
    char *text = cJSON_PrintUnformatted(doc);
    int rc = mc_tok_write_one(dir, name, text, force, err);
    free(text);
    return rc;
}

int mc_tokenizer_write(const char *dir, const mc_tok_out *out, int force, mc_error *err)
{
    int rc = 0;
    if (out->tokenizer_json) rc = mc_tok_write_json(dir, "tokenizer.json", out->tokenizer_json, force, err);
    if (!rc && out->tokenizer_config)
        rc = mc_tok_write_json(dir, "tokenizer_config.json", out->tokenizer_config, force, err);
    if (!rc && out->chat_template) rc = mc_tok_write_one(dir, "chat_template.jinja", out->chat_template, force, err);
    if (!rc && out->generation_config)
        rc = mc_tok_write_json(dir, "generation_config.json", out->generation_config, force, err);
    return rc;
}
