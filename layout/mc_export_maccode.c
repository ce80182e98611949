/* The mac-code folder: what walter-grace/mac-code's flash-streaming and
 * expert-sniper engines read (docs/FORMAT.md, "mac-code folder"). */
#include "mc_export_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_flash.h"
#include "mc_types.h"

#define PAGE ((uint64_t)MC_FLASH_PAGE)

/* A mac-code layer file header: JSON, strictly shorter than one page. */
static int add_layer_file(mc_export *X, const char *fname, cJSON *hdr, uint64_t total, size_t n_tensors,
                          mc_error *err)
{
    char *js = cJSON_PrintUnformatted(hdr);
    if (!js) return mc_export_oom(err);
    size_t jl = strlen(js);
    if (jl >= PAGE) {
        cJSON_free(js);
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: header of %zu bytes does not fit in %llu", fname, jl,
                            (unsigned long long)PAGE);
    }
    unsigned char *b = malloc(jl);
    if (!b) {
        cJSON_free(js);
        return mc_export_oom(err);
    }
    memcpy(b, js, jl);
    cJSON_free(js);
    size_t fi;
    int rc = mc_export_add_file(X, fname, b, jl, total, &fi, err);
    if (!rc) X->files[fi].n_tensors = n_tensors;
    return rc;
}

static int layer_local(const mc_model *m, const mc_pout *o, const char **local, mc_error *err)
{
    *local = mc_export_local_name(o->name);
    if (!*local)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: streamed tensor %s is not under model.layers.N",
                            m->input_path, o->name);
    if (!mc_export_mlx_dtype(o->dtype))
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: %s: dtype %s has no MLX spelling", m->input_path, o->name,
                            mc_type_name(o->dtype));
    return 0;
}

static int build_ffn(const mc_model *m, mc_export *X, const mc_flash_span *s, mc_error *err)
{
    const mc_plan *p = X->plan;
    char fname[64];
    size_t nt = 0;
    uint64_t cur = PAGE;
    int rc = 0;
    snprintf(fname, sizeof fname, "ffn/layer_%02d.bin", s->layer);
    cJSON *h = cJSON_CreateObject(), *tens = NULL;
    int bad = !h || !cJSON_AddStringToObject(h, "format", "flash_aligned_v1") ||
              !cJSON_AddNumberToObject(h, "page_size", (double)PAGE) ||
              !cJSON_AddNumberToObject(h, "layer_idx", s->layer);
    cJSON *total = bad ? NULL : cJSON_AddNumberToObject(h, "total_size", 0);
    bad |= !total || !(tens = cJSON_AddObjectToObject(h, "tensors"));
    for (size_t j = 0; !bad && !rc && j < s->n_items; j++) {
        const mc_pitem *it = &p->items[s->items[j]];
        for (size_t k = 0; !bad && !rc && k < it->n_out; k++) {
            const mc_pout *o = &it->out[k];
            const char *local;
            if ((rc = layer_local(m, o, &local, err))) break;
            cJSON *t = cJSON_AddObjectToObject(tens, local);
            bad |= !t || !cJSON_AddNumberToObject(t, "offset", (double)cur) ||
                   !cJSON_AddNumberToObject(t, "nbytes", (double)o->nbytes) ||
                   !cJSON_AddStringToObject(t, "dtype", mc_export_mlx_dtype(o->dtype));
            cJSON *sh = bad ? NULL : mc_plan_shape_json(o->shape, o->n_dims);
            bad |= !sh;
            if (sh) cJSON_AddItemToObject(t, "shape", sh);
            X->place[s->items[j]][k] = (mc_export_place){ X->n_files, cur, 0 };
            cur = mc_flash_align(cur + o->nbytes);
            nt++;
        }
    }
    if (!bad && !rc) {
        cJSON_SetNumberValue(total, (double)cur);
        rc = add_layer_file(X, fname, h, cur, nt, err);
    }
    cJSON_Delete(h);
    return rc ? rc : bad ? mc_export_oom(err) : 0;
}

static int build_experts(const mc_model *m, mc_export *X, const mc_flash_xlayer *x, mc_error *err)
{
    const mc_plan *p = X->plan;
    char fname[64];
    size_t nt = 0;
    uint64_t inner = 0;
    int rc = 0;
    snprintf(fname, sizeof fname, "experts/layer_%02d.bin", x->layer);
    cJSON *h = cJSON_CreateObject(), *lay = NULL, *tens = NULL, *total = NULL, *ebs = NULL;
    int bad = !h || !cJSON_AddStringToObject(h, "format", "moe_flash_v1") ||
              !cJSON_AddNumberToObject(h, "page_size", (double)PAGE) ||
              !cJSON_AddNumberToObject(h, "layer_idx", x->layer) ||
              !(total = cJSON_AddNumberToObject(h, "total_size", 0)) ||
              !(lay = cJSON_AddObjectToObject(h, "layout")) ||
              !cJSON_AddNumberToObject(lay, "num_experts", x->n_experts) ||
              !(ebs = cJSON_AddNumberToObject(lay, "expert_block_size", 0)) ||
              !cJSON_AddNumberToObject(lay, "data_start", (double)PAGE) ||
              !(tens = cJSON_AddObjectToObject(lay, "tensors"));
    for (size_t j = 0; !bad && !rc && j < x->n_items; j++) {
        const mc_pitem *it = &p->items[x->items[j]];
        for (size_t k = 0; !bad && !rc && k < it->n_out; k++) {
            const mc_pout *o = &it->out[k];
            const char *local;
            if ((rc = layer_local(m, o, &local, err))) break;
            if (o->n_dims < 2 || o->shape[0] != x->n_experts) {
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not stacked over %u experts", m->input_path,
                                  o->name, x->n_experts);
                break;
            }
            uint64_t per = o->nbytes / x->n_experts;
            cJSON *t = cJSON_AddObjectToObject(tens, local);
            bad |= !t || !cJSON_AddNumberToObject(t, "inner_offset", (double)inner) ||
                   !cJSON_AddNumberToObject(t, "nbytes", (double)per) ||
                   !cJSON_AddStringToObject(t, "dtype", mc_export_mlx_dtype(o->dtype));
            cJSON *sh = bad ? NULL : mc_plan_shape_json(o->shape + 1, o->n_dims - 1);
            bad |= !sh;
            if (sh) cJSON_AddItemToObject(t, "shape_per_expert", sh);
            X->place[x->items[j]][k] = (mc_export_place){ X->n_files, PAGE + inner, 0 };
            inner += per;
            nt++;
        }
    }
    uint64_t block = mc_flash_align(inner), tot = PAGE + block * x->n_experts;
    if (!bad && !rc) {
        for (size_t j = 0; j < x->n_items; j++)
            for (size_t k = 0; k < p->items[x->items[j]].n_out; k++) X->place[x->items[j]][k].estride = block;
        cJSON_SetNumberValue(total, (double)tot);
        cJSON_SetNumberValue(ebs, (double)block);
        rc = add_layer_file(X, fname, h, tot, nt, err);
    }
    cJSON_Delete(h);
    return rc ? rc : bad ? mc_export_oom(err) : 0;
}

int mc_export_build_maccode(const mc_model *m, mc_export *X, mc_error *err)
{
    const mc_plan *p = X->plan;
    mc_flash_layout *L = NULL;
    mc_export_st_ent *e = NULL;
    size_t ne = 0;
    cJSON *cfg = NULL;
    int rc = mc_flash_layout_build(m, p, &L, err);
    if (rc) return rc;
    if (!(e = malloc((p->n_items ? p->n_items : 1) * 3 * sizeof *e))) {
        rc = mc_export_oom(err);
        goto done;
    }
    for (size_t i = 0; i < p->n_items; i++)
        if (p->items[i].mt->role == MC_ROLE_PINNED)
            for (size_t k = 0; k < p->items[i].n_out; k++)
                e[ne++] = (mc_export_st_ent){ i, k, mc_export_strip_lm(p->items[i].out[k].name) };
    if ((rc = mc_export_add_st_file(X, "pinned.safetensors", e, ne, err))) goto done;
    if (L->n_spans && (rc = mc_export_add_dir(X, "ffn", err))) goto done;
    if (L->n_xlayers && (rc = mc_export_add_dir(X, "experts", err))) goto done;
    for (size_t i = 0; !rc && i < L->n_spans; i++) rc = build_ffn(m, X, &L->spans[i], err);
    for (size_t i = 0; !rc && i < L->n_xlayers; i++) rc = build_experts(m, X, &L->xlayers[i], err);
    if (rc) goto done;
    /* config.json: the mlx-lm config (with the quantization block) and the
     * "streaming" block the engines read. */
    cfg = mc_plan_config(p, m);
    cJSON *sb = cfg ? cJSON_CreateObject() : NULL;
    int bad = !sb;
    if (sb) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "streaming");
        cJSON_AddItemToObject(cfg, "streaming", sb);
        bad |= !cJSON_AddStringToObject(sb, "pinned_file", "pinned.safetensors");
        if (L->n_spans)
            bad |= !cJSON_AddStringToObject(sb, "ffn_dir", "ffn/") ||
                   !cJSON_AddNumberToObject(sb, "ffn_layers", (double)L->n_spans);
        if (L->n_xlayers)
            bad |= !cJSON_AddStringToObject(sb, "expert_dir", "experts/") ||
                   !cJSON_AddNumberToObject(sb, "num_layers", m->n_layers) ||
                   !cJSON_AddNumberToObject(sb, "num_experts", L->xlayers[0].n_experts) ||
                   !cJSON_AddNumberToObject(sb, "experts_per_tok", L->experts_per_tok);
        bad |= !cJSON_AddStringToObject(sb, "model_class", L->n_xlayers ? "moe" : "dense");
    }
    if (bad) {
        rc = mc_export_oom(err);
        goto done;
    }
    if ((rc = mc_export_add_json_file(X, "config.json", cfg, err))) goto done;
    rc = mc_export_add_tokenizer(m, X, err);
done:
    cJSON_Delete(cfg);
    free(e);
    mc_flash_layout_free(L);
    return rc;
}
