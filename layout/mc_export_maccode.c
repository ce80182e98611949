/* The mac-code folder: what walter-grace/mac-code's flash-streaming and
 * expert-sniper engines read, for the engines X->engines names
 * (docs/FORMAT.md, "mac-code folder"):
 *
 *   config.json            mlx-lm config + every key the engines read + "streaming"
 *   pinned.safetensors     pinned tensors (mx.load + load_weights(strict=False))
 *   ffn_aligned/layer_NN.bin     flash_aligned_v1 (DirectFFNReader)          dense
 *   ffn/layer_NN.safetensors     mx.load; beside ffn_aligned/ a clone of    dense
 *                                its .bin with a safetensors header
 *   bin/layer_NN.bin       moe_flash_v1 + the older header keys, expert     MoE
 *                          tensors under the names the engines index
 *   README.md              which engine to run and how
 *   tokenizer files        as the source had them
 */
#include "mc_export_int.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_flash.h"
#include "mc_maccode.h"
#include "mc_types.h"

#define PAGE ((uint64_t)MC_FLASH_PAGE)

/* The forms the selected engines read (every form when none is selected). */
typedef struct forms {
    int ffn_st, ffn_bin;   /* ffn/ safetensors, ffn_aligned/ .bin */
    int names_mlp, names_sw; /* expert names mlp.switch_mlp.* / switch_mlp.* */
} forms;

static forms forms_of(uint32_t mask)
{
    size_t n;
    const mc_maccode_engine *E = mc_maccode_engines(&n);
    unsigned r = 0;
    for (size_t i = 0; i < n; i++)
        if (mask & (1u << i)) r |= E[i].reads;
    if (!mask) r = MC_MCR_FFN_ST | MC_MCR_FFN_BIN | MC_MCR_EXP_MLP | MC_MCR_EXP_SW;
    forms f = { !!(r & MC_MCR_FFN_ST), !!(r & MC_MCR_FFN_BIN), !!(r & MC_MCR_EXP_MLP), !!(r & MC_MCR_EXP_SW) };
    if ((r & MC_MCR_FFN_ANY) && !f.ffn_st && !f.ffn_bin) f.ffn_bin = 1; /* flash_agent.py: direct I/O */
    if (!f.names_mlp && !f.names_sw) f.names_mlp = 1;
    return f;
}

/* A layer file header: JSON, strictly shorter than one page. */
static int add_layer_file(mc_export *X, const char *fname, cJSON *hdr, uint64_t total, size_t n_tensors, size_t *idx,
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
    if (!rc && idx) *idx = fi;
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

static cJSON *shape_of(const mc_pout *o, uint32_t from)
{
    return mc_plan_shape_json(o->shape + from, o->n_dims - from);
}

/* One pad or tensor entry of a clone header. */
static int clone_entry(cJSON *h, const char *name, const char *dtype, cJSON *shape, uint64_t a, uint64_t b)
{
    cJSON *t = cJSON_AddObjectToObject(h, name), *d = NULL;
    int ok = t && shape && cJSON_AddStringToObject(t, "dtype", dtype);
    if (ok) cJSON_AddItemToObject(t, "shape", shape);
    else cJSON_Delete(shape);
    return ok && (d = cJSON_AddArrayToObject(t, "data_offsets")) && cJSON_AddItemToArray(d, cJSON_CreateNumber((double)a)) &&
           cJSON_AddItemToArray(d, cJSON_CreateNumber((double)b));
}

/* Beside a flash_aligned_v1 file: the same bytes as a safetensors file,
 * its header filling the first page (8-byte length, JSON, spaces) and
 * "mconv.pad.N" U8 tensors covering the alignment gaps (a safetensors file
 * has no holes), so that every tensor keeps its offset and the file can be
 * a block-sharing clone of the .bin. */
static int add_ffn_clone(const mc_model *m, mc_export *X, const mc_flash_span *s, size_t src, mc_error *err)
{
    const mc_plan *p = X->plan;
    char fname[64], pn[32];
    snprintf(fname, sizeof fname, "ffn/layer_%02d.safetensors", s->layer);
    uint64_t total = X->files[src].size, cur = PAGE;
    size_t nr = 0, npad = 0, cap = 0;
    for (size_t j = 0; j < s->n_items; j++) cap += p->items[s->items[j]].n_out;
    uint64_t(*ranges)[2] = malloc((cap ? cap : 1) * sizeof *ranges);
    cJSON *h = cJSON_CreateObject(), *meta = h ? cJSON_AddObjectToObject(h, "__metadata__") : NULL;
    int rc = 0, ok = ranges && meta && cJSON_AddStringToObject(meta, "format", "mlx");
    for (size_t j = 0; ok && !rc && j < s->n_items; j++) /* the .bin's order: ascending offsets */
        for (size_t k = 0; ok && !rc && k < p->items[s->items[j]].n_out; k++) {
            const mc_pout *o = &p->items[s->items[j]].out[k];
            const mc_type_traits *tt = mc_type_get(o->dtype);
            uint64_t off = X->place[s->items[j]][k].base;
            const char *local;
            if ((rc = layer_local(m, o, &local, err))) break;
            if (off > cur) {
                snprintf(pn, sizeof pn, "mconv.pad.%zu", npad++);
                cJSON *sh = cJSON_CreateArray();
                ok = sh && cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)(off - cur))) &&
                     clone_entry(h, pn, "U8", sh, cur - PAGE, off - PAGE);
            }
            ok = ok && tt && tt->st_name && clone_entry(h, local, tt->st_name, shape_of(o, 0), off - PAGE,
                                                         off + o->nbytes - PAGE);
            ranges[nr][0] = off;
            ranges[nr++][1] = o->nbytes;
            cur = off + o->nbytes;
        }
    if (ok && !rc && total > cur) {
        snprintf(pn, sizeof pn, "mconv.pad.%zu", npad++);
        cJSON *sh = cJSON_CreateArray();
        ok = sh && cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)(total - cur))) &&
             clone_entry(h, pn, "U8", sh, cur - PAGE, total - PAGE);
    }
    char *js = ok && !rc ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    size_t jl = js ? strlen(js) : 0;
    unsigned char *b = js && jl + 8 <= PAGE ? malloc(PAGE) : NULL;
    if (!rc && js && jl + 8 > PAGE)
        rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: header of %zu bytes does not fit in %llu", fname, jl,
                          (unsigned long long)PAGE);
    if (!rc && !b) rc = mc_export_oom(err);
    if (rc) {
        cJSON_free(js);
        free(b);
        free(ranges);
        return rc;
    }
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((PAGE - 8) >> (8 * i));
    memcpy(b + 8, js, jl);
    memset(b + 8 + jl, ' ', PAGE - 8 - jl);
    cJSON_free(js);
    size_t fi;
    if ((rc = mc_export_add_file(X, fname, b, PAGE, total, &fi, err))) {
        free(ranges);
        return rc;
    }
    mc_export_file *f = &X->files[fi];
    f->clone = 1;
    f->clone_src = src;
    f->ranges = ranges;
    f->n_ranges = nr;
    f->n_tensors = nr;
    return 0;
}

/* ffn_aligned/layer_NN.bin (flash_aligned_v1): each tensor at a 16 KiB
 * offset, the first at 16384 (convert_aligned.py's layout). */
static int build_ffn_bin(const mc_model *m, mc_export *X, const mc_flash_span *s, size_t *idx, mc_error *err)
{
    const mc_plan *p = X->plan;
    char fname[64];
    size_t nt = 0;
    uint64_t cur = PAGE;
    int rc = 0;
    snprintf(fname, sizeof fname, "ffn_aligned/layer_%02d.bin", s->layer);
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
            cJSON *sh = bad ? NULL : shape_of(o, 0);
            bad |= !sh;
            if (sh) cJSON_AddItemToObject(t, "shape", sh);
            X->place[s->items[j]][k] = (mc_export_place){ X->n_files, cur, 0 };
            cur = mc_flash_align(cur + o->nbytes);
            nt++;
        }
    }
    if (!bad && !rc) {
        cJSON_SetNumberValue(total, (double)cur);
        rc = add_layer_file(X, fname, h, cur, nt, idx, err);
    }
    cJSON_Delete(h);
    return rc ? rc : bad ? mc_export_oom(err) : 0;
}

/* ffn/layer_NN.safetensors alone: packed, local names (split_dense_27b.py's
 * mx.save_safetensors form). */
static int build_ffn_st(mc_export *X, const mc_flash_span *s, mc_error *err)
{
    const mc_plan *p = X->plan;
    size_t n = 0, cap = 0;
    char fname[64];
    for (size_t j = 0; j < s->n_items; j++) cap += p->items[s->items[j]].n_out;
    mc_export_st_ent *e = malloc((cap ? cap : 1) * sizeof *e);
    if (!e) return mc_export_oom(err);
    for (size_t j = 0; j < s->n_items; j++)
        for (size_t k = 0; k < p->items[s->items[j]].n_out; k++) {
            const char *local = mc_export_local_name(p->items[s->items[j]].out[k].name);
            e[n++] = (mc_export_st_ent){ s->items[j], k, local ? local : p->items[s->items[j]].out[k].name };
        }
    snprintf(fname, sizeof fname, "ffn/layer_%02d.safetensors", s->layer);
    int rc = mc_export_add_st_file(X, fname, e, n, err);
    free(e);
    return rc;
}

/* bin/layer_NN.bin: moe_flash_v1 (split_mlx_model.py) with the older
 * header's top-level num_experts (preprocess.py); expert e is the block
 * [data_start + e*expert_block_size, ...), its tensors packed from
 * inner_offset 0, each listed under every name the engines index. */
static int build_experts(const mc_model *m, mc_export *X, const mc_flash_xlayer *x, forms fo, mc_error *err)
{
    const mc_plan *p = X->plan;
    char fname[64];
    size_t nt = 0;
    uint64_t inner = 0;
    int rc = 0;
    snprintf(fname, sizeof fname, "bin/layer_%02d.bin", x->layer);
    cJSON *h = cJSON_CreateObject(), *lay = NULL, *tens = NULL, *total = NULL, *ebs = NULL;
    int bad = !h || !cJSON_AddStringToObject(h, "format", "moe_flash_v1") ||
              !cJSON_AddNumberToObject(h, "page_size", (double)PAGE) ||
              !cJSON_AddNumberToObject(h, "layer_idx", x->layer) ||
              !cJSON_AddNumberToObject(h, "num_experts", x->n_experts) ||
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
            /* "mlp.switch_mlp.gate_proj.weight" and "switch_mlp.gate_proj.weight" */
            const char *names[2] = { fo.names_mlp ? local : NULL, NULL };
            if (fo.names_sw) names[1] = strncmp(local, "mlp.", 4) ? local : local + 4;
            for (int a = 0; a < 2 && !bad; a++) {
                if (!names[a] || (a && names[0] && !strcmp(names[0], names[1]))) continue;
                cJSON *t = cJSON_AddObjectToObject(tens, names[a]);
                bad |= !t || !cJSON_AddNumberToObject(t, "inner_offset", (double)inner) ||
                       !cJSON_AddNumberToObject(t, "nbytes", (double)per) ||
                       !cJSON_AddStringToObject(t, "dtype", mc_export_mlx_dtype(o->dtype));
                cJSON *sh = bad ? NULL : shape_of(o, 1);
                bad |= !sh;
                if (sh) cJSON_AddItemToObject(t, "shape_per_expert", sh);
            }
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
        rc = add_layer_file(X, fname, h, tot, nt, NULL, err);
    }
    cJSON_Delete(h);
    return rc ? rc : bad ? mc_export_oom(err) : 0;
}

/* The per-module entries of a quantization block under the folder's names
 * (pinned.safetensors drops "language_model."). */
static int strip_quant_keys(cJSON *cfg, const char *key)
{
    cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, key), *e = q ? q->child : NULL;
    for (; e; e = e->next) {
        const char *s = mc_export_strip_lm(e->string);
        if (s == e->string) continue;
        char *n = malloc(strlen(s) + 1);
        if (!n) return -1;
        strcpy(n, s);
        if (!(e->type & cJSON_StringIsConst)) cJSON_free(e->string);
        e->string = n;
        e->type &= ~cJSON_StringIsConst;
    }
    return 0;
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int bad;
} sbuf;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (int tries = 0; tries < 2 && !b->bad; tries++) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->bad = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap + (size_t)k + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->bad = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* The last component of path (trailing slashes ignored): its length in *n. */
static const char *base_of(const char *path, int *n)
{
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/') l--;
    size_t s = l;
    while (s > 0 && path[s - 1] != '/') s--;
    *n = (int)(l - s);
    return path + s;
}

/* README.md: which engine to run and how (no absolute paths: the folder
 * is the same wherever it is written). */
static int add_readme(const mc_model *m, mc_export *X, forms fo, int dense, int moe, int has_tok, mc_error *err)
{
    const mc_plan *p = X->plan;
    size_t n;
    const mc_maccode_engine *E = mc_maccode_engines(&n);
    sbuf b = { 0 };
    char names[1024];
    sb(&b, "# %s for mac-code's streaming engines\n\n", m->model_type ? m->model_type : "model");
    int bl;
    const char *base = base_of(m->input_path, &bl);
    sb(&b, "Written by mconv (`mconv IN OUTDIR --layout mac-code`) from `%.*s`.\n", bl, base);
    if (p->opts.no_quant) sb(&b, "Weights: unquantized.\n");
    else
        sb(&b, "Weights: MLX affine %d-bit, group size %d, %s scales and biases (config.json \"quantization\" "
               "lists what is stored).\n",
           p->opts.bits, p->opts.group_size, p->opts.dtype >= 0 ? mc_type_name(p->opts.dtype) : "source-dtype");
    if (!X->engines) {
        sb(&b, "\n**No mac-code engine builds %s**: this folder was written with `--force-layout` and holds every "
               "form; no engine is known to run it correctly.\n",
           m->model_type ? m->model_type : "this architecture");
    } else {
        sb(&b, "\n## Engines (walter-grace/mac-code, `research/`)\n\nEach loads this folder unchanged once pointed at "
               "it:\n\n");
        for (size_t i = 0; i < n; i++)
            if (X->engines & (1u << i))
                sb(&b, "- `%s` (builds `%s`): %s.\n", E[i].path + strlen("research/"), E[i].builds, E[i].run);
        uint32_t hub = 0, dir = 0;
        for (size_t i = 0; i < n; i++)
            if (X->engines & (1u << i)) {
                if (E[i].tokenizer) hub |= 1u << i;
                else dir |= 1u << i;
            }
        sb(&b, "\nTokenizer:");
        for (size_t i = 0; i < n; i++) {
            if (!(hub & (1u << i))) continue;
            uint32_t same = 0;
            for (size_t j = 0; j < n; j++)
                if ((hub & (1u << j)) && !strcmp(E[j].tokenizer, E[i].tokenizer)) same |= 1u << j;
            if (same & ((1u << i) - 1)) continue; /* listed with an earlier one */
            mc_maccode_names(same, names, sizeof names);
            sb(&b, " %s load%s `%s` from the Hugging Face hub (its files are also here for offline use where the "
                   "source had them);",
               names, same & (same - 1) ? "" : "s", E[i].tokenizer);
        }
        if (dir) {
            mc_maccode_names(dir, names, sizeof names);
            sb(&b, " %s load%s it from this folder%s", names, dir & (dir - 1) ? "" : "s",
               has_tok ? "." : ": **the source had no tokenizer files; copy its tokenizer.json and "
                               "tokenizer_config.json here**.");
        }
        sb(&b, "\n");
    }
    sb(&b, "\n## Files\n\n- `config.json`: the mlx-lm config, every key the engines read, \"streaming\".\n");
    sb(&b, "- `pinned.safetensors`: embeddings, attention, norms%s, lm_head (loaded once).\n",
       moe ? ", routers, shared experts" : "");
    if (dense && fo.ffn_bin)
        sb(&b, "- `ffn_aligned/layer_NN.bin`: each layer's FFN, flash_aligned_v1 (direct I/O, one file per layer).\n");
    if (dense && fo.ffn_st)
        sb(&b, "- `ffn/layer_NN.safetensors`: each layer's FFN for `mx.load`%s.\n",
           fo.ffn_bin ? "; the same bytes as ffn_aligned/ (a copy-on-write clone where the file system can clone, "
                        "else a copy: then the FFN weights are on disk twice)"
                      : "");
    if (moe)
        sb(&b, "- `bin/layer_NN.bin`: each MoE layer's experts, one 16 KiB-aligned block per expert%s.\n",
           fo.names_mlp && fo.names_sw ? "; every expert tensor is listed as `mlp.switch_mlp.*` and as "
                                         "`switch_mlp.*` (the engines differ): each engine parses both, so its "
                                         "expert cache holds each expert twice (`--engines` picks one naming)"
                                       : "");
    if (b.bad || !b.s) {
        free(b.s);
        return mc_export_oom(err);
    }
    return mc_export_add_file(X, "README.md", (unsigned char *)b.s, b.n, b.n, NULL, err);
}

int mc_export_build_maccode(const mc_model *m, mc_export *X, mc_error *err)
{
    const mc_plan *p = X->plan;
    mc_flash_layout *L = NULL;
    mc_export_st_ent *e = NULL;
    size_t ne = 0;
    cJSON *cfg = NULL;
    forms fo = forms_of(X->engines);
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
    if (L->n_spans && fo.ffn_bin && (rc = mc_export_add_dir(X, "ffn_aligned", err))) goto done;
    if (L->n_spans && fo.ffn_st && (rc = mc_export_add_dir(X, "ffn", err))) goto done;
    if (L->n_xlayers && (rc = mc_export_add_dir(X, "bin", err))) goto done;
    for (size_t i = 0; !rc && i < L->n_spans; i++) {
        size_t bin = 0;
        if (fo.ffn_bin && !(rc = build_ffn_bin(m, X, &L->spans[i], &bin, err)) && fo.ffn_st)
            rc = add_ffn_clone(m, X, &L->spans[i], bin, err);
        else if (!fo.ffn_bin) rc = build_ffn_st(X, &L->spans[i], err);
    }
    for (size_t i = 0; !rc && i < L->n_xlayers; i++) rc = build_experts(m, X, &L->xlayers[i], fo, err);
    if (rc) goto done;
    /* config.json: the mlx-lm config with the quantization block under the
     * folder's names, every key the engines read, and "streaming" */
    cfg = mc_plan_config(p, m);
    cJSON *sb_ = cfg ? cJSON_CreateObject() : NULL, *wf = NULL;
    int bad = !sb_ || strip_quant_keys(cfg, "quantization") || strip_quant_keys(cfg, "quantization_config");
    if (!bad) {
        mc_maccode_config(cfg, X->engines, NULL, NULL);
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "streaming");
        cJSON_AddItemToObject(cfg, "streaming", sb_);
        bad |= !cJSON_AddStringToObject(sb_, "pinned_file", "pinned.safetensors");
        if (L->n_spans && fo.ffn_st)
            bad |= !cJSON_AddStringToObject(sb_, "ffn_dir", "ffn/");
        if (L->n_spans)
            bad |= !cJSON_AddNumberToObject(sb_, "ffn_layers", (double)L->n_spans);
        if (L->n_xlayers) /* "bin": no trailing slash (cli-agent's calibrate takes its dirname) */
            bad |= !cJSON_AddStringToObject(sb_, "expert_dir", "bin") ||
                   !cJSON_AddNumberToObject(sb_, "num_layers", (double)L->n_xlayers) ||
                   !cJSON_AddNumberToObject(sb_, "num_experts", L->xlayers[0].n_experts) ||
                   !cJSON_AddNumberToObject(sb_, "experts_per_tok", L->experts_per_tok);
        bad |= !cJSON_AddStringToObject(sb_, "model_class", L->n_xlayers ? "moe" : "dense") ||
               !(wf = cJSON_AddArrayToObject(sb_, "engines"));
        size_t n;
        const mc_maccode_engine *E = mc_maccode_engines(&n);
        for (size_t i = 0; !bad && i < n; i++)
            if (X->engines & (1u << i)) bad |= !cJSON_AddItemToArray(wf, cJSON_CreateString(E[i].id));
    } else {
        cJSON_Delete(sb_);
    }
    if (bad) {
        rc = mc_export_oom(err);
        goto done;
    }
    if ((rc = mc_export_add_json_file(X, "config.json", cfg, err))) goto done;
    size_t before = X->n_files;
    if ((rc = mc_export_add_tokenizer(m, X, err))) goto done;
    rc = add_readme(m, X, fo, L->n_spans > 0, L->n_xlayers > 0, X->n_files > before, err);
done:
    cJSON_Delete(cfg);
    free(e);
    mc_flash_layout_free(L);
    return rc;
}
