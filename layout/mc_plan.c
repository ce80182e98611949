#include "mc_plan.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "mc_float.h"
#include "mc_dequant.h"
#include "mc_mlx.h"
#include "mc_qerr.h"
#include "mc_recipe.h"
#include "mc_repack.h"
#include "mc_types.h"

void mc_plan_opts_default(mc_plan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->bits = 4;
    o->group_size = 64;
    o->dtype = -1;
}

static int bits_valid(int b) { return b == 2 || b == 3 || b == 4 || b == 5 || b == 6 || b == 8; }

int mc_plan_opts_add_bits_for(mc_plan_opts *o, const char *glob, int bits, mc_error *err)
{
    size_t n = strlen(glob);
    if (o->n_bits_for >= MC_PLAN_BITS_FOR_MAX)
        return mc_error_set(err, MC_ERR_ARG, "--bits-for %s: at most %d overrides", glob, MC_PLAN_BITS_FOR_MAX);
    if (n == 0 || n >= MC_PLAN_GLOB_MAX)
        return mc_error_set(err, MC_ERR_ARG, "--bits-for: a pattern of 1 to %d characters expected", MC_PLAN_GLOB_MAX - 1);
    if (!bits_valid(bits))
        return mc_error_set(err, MC_ERR_ARG, "--bits-for %s=%d: expected 2, 3, 4, 5, 6 or 8 bits", glob, bits);
    memcpy(o->bits_for[o->n_bits_for].glob, glob, n + 1);
    o->bits_for[o->n_bits_for++].bits = bits;
    return 0;
}

/* Bits an override gives the module of weight name, or 0 when none matches. */
static int bits_override(const mc_plan_opts *o, const char *name)
{
    char mod[MC_PLAN_GLOB_MAX * 4];
    size_t n = strlen(name), k = strlen(".weight");
    if (!o->n_bits_for || n <= k || strcmp(name + n - k, ".weight") || n - k >= sizeof mod) return 0;
    memcpy(mod, name, n - k);
    mod[n - k] = '\0';
    for (size_t i = 0; i < o->n_bits_for; i++)
        if (fnmatch(o->bits_for[i].glob, mod, 0) == 0) return o->bits_for[i].bits;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* "a.b.weight" -> "a.b" + suffix; NULL when name does not end in ".weight". */
static char *swap_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(".weight"), s = strlen(suffix);
    if (n <= k || strcmp(name + n - k, ".weight") != 0) return NULL;
    char *p = malloc(n - k + s + 1);
    if (!p) return NULL;
    memcpy(p, name, n - k);
    memcpy(p + n - k, suffix, s + 1);
    return p;
}

static int order_key(const char *name)
{
    static const struct { const char *tag; int key; } tab[] = {
        { "down", 2 }, { "gate", 0 }, { "up", 1 }, { ".w1.", 0 }, { ".w3.", 1 }, { ".w2.", 2 },
    };
    const char *last = strrchr(name, '.');
    /* look at the module part (after the layer prefix) */
    const char *mod = strstr(name, "mlp");
    if (!mod) mod = name;
    (void)last;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strstr(mod, tab[i].tag)) return tab[i].key;
    return 3;
}

static int part_key(const char *name)
{
    static const struct { const char *suffix; int key; } tab[] = {
        { ".weight", 0 }, { ".scales", 1 }, { ".biases", 2 }, { ".bias", 3 },
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        size_t k = strlen(tab[i].suffix);
        if (n >= k && !strcmp(name + n - k, tab[i].suffix)) return tab[i].key;
    }
    return 4;
}

static int is_float_type(int t) { return t == MC_T_F16 || t == MC_T_BF16 || t == MC_T_F32; }

static int float_type_for(const mc_mtensor *t, const mc_plan_opts *o)
{
    if (o->dtype >= 0 && !(t->keep_dtype && is_float_type(t->src_type))) return o->dtype;
    if (is_float_type(t->src_type)) return t->src_type;
    if (t->src_type == MC_T_F64) return MC_T_F32;
    if (t->src_type == MC_T_Q4_0_BF16) return MC_T_BF16; /* its own scale type */
    return MC_T_F16; /* block-quantized GGML source: ggml's own scale type */
}

static uint64_t type_size(int t) { return mc_type_get(t)->type_size; }

static int set_out(mc_pout *o, const char *name, int dtype, const mc_mtensor *t, uint64_t last, uint64_t nrows,
                   uint64_t row_bytes, int part)
{
    o->name = dup_str(name);
    if (!o->name) return -1;
    o->dtype = dtype;
    o->n_dims = t->n_dims ? t->n_dims : 1;
    for (uint32_t d = 0; d < t->n_dims; d++) o->shape[d] = t->shape[d];
    if (t->n_dims == 0) o->shape[0] = 1;
    o->shape[o->n_dims - 1] = last;
    o->row_bytes = row_bytes;
    o->nbytes = nrows * row_bytes;
    o->part = part;
    return 0;
}

static int plan_item(const mc_model *m, const mc_mtensor *t, const mc_plan_opts *o, const mc_recipe_ctx *rc_,
                     mc_pitem *it, mc_error *err)
{
    uint64_t nel = 1;
    memset(it, 0, sizeof *it);
    it->mt = t;
    it->n_experts = 1;
    it->order = order_key(t->name) * 8 + part_key(t->name);
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (mc_mul_u64(nel, t->shape[d], &nel))
            return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor %s: size overflows", m->input_path, t->name);
    it->ncols = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    if (it->ncols == 0 || nel == 0)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s is empty", m->input_path, t->name);
    it->nrows = nel / it->ncols;
    if (t->role == MC_ROLE_EXPERT) {
        if (t->n_dims != 3 || t->shape[0] == 0 || t->shape[0] > 1u << 20)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: expert tensor %s is not [E, out, in]", m->input_path,
                                t->name);
        it->n_experts = (uint32_t)t->shape[0];
    }
    it->float_type = float_type_for(t, o);

    if (t->passthrough) {
        uint64_t nb;
        const mc_type_traits *tr = mc_type_get(t->stored_type);
        if (!tr || mc_type_nbytes(t->stored_type, nel, &nb) || nb % it->nrows)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: passthrough tensor %s has an unusable stored type %d",
                                m->input_path, t->name, t->stored_type);
        it->kind = MC_PK_RAW;
        it->n_out = 1;
        if (set_out(&it->out[0], t->name, t->stored_type, t, it->ncols, it->nrows, nb / it->nrows, MC_PART_DATA))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        /* stored shape as given */
        return 0;
    }
    /* --bits-for, else the recipe's choice, else the converter's (8-bit
     * routers) or --bits */
    int bits = bits_override(o, t->name);
    if (!bits && t->quantizable && rc_->recipe != MC_RECIPE_UNIFORM) {
        char *mod = swap_suffix(t->name, ""); /* NULL: not a ".weight" (kept float below) */
        int r = mod ? mc_recipe_bits(rc_, m, t, mod, &bits, err) : 0;
        free(mod);
        if (r) return r;
    }
    if (!bits) bits = t->quant_bits ? t->quant_bits : o->bits;
    if (!o->no_quant && !o->requant_mxfp4 && t->quantizable && t->n_dims >= 2 && t->src_type == MC_T_MXFP4 &&
        it->ncols % 32 == 0) {
        /* MXFP4 blocks carried as they are into MLX's mxfp4 mode: the e2m1
         * codes packed 8 per uint32, the e8m0 byte as the uint8 scale, no
         * biases (quant/mc_repack.h); never requantized unless asked */
        char *rs = swap_suffix(t->name, ".scales");
        if (rs) {
            uint64_t words = mc_quant_affine_row_words(it->ncols, 4), ng = it->ncols / 32;
            int rc = 0;
            it->kind = MC_PK_REPACK;
            it->bits = 4;
            it->group_size = 32;
            it->float_type = MC_T_U8;
            it->block_type = MC_T_MXFP4;
            it->mx_mode = MC_MX_MXFP4;
            it->n_out = 2;
            if (set_out(&it->out[0], t->name, MC_T_U32, t, words, it->nrows, words * 4, MC_PART_DATA) ||
                set_out(&it->out[1], rs, MC_T_U8, t, ng, it->nrows, ng, MC_PART_SCALES))
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
            free(rs);
            return rc;
        }
    }
    /* --lossless, or a source already in MLX's affine form (compressed-tensors
     * INT4) at the 4 bits of that form */
    if ((o->lossless || (t->carry && bits == 4)) && !o->no_quant && t->quantizable && t->block_rows && t->n_dims >= 2 &&
        mc_type_get(t->src_type) && mc_type_get(t->src_type)->is_quant && t->src_type != MC_T_MXFP4) {
        /* the first float dtype in which the source blocks repack exactly */
        const int cand[] = { o->dtype >= 0 ? o->dtype : it->float_type, MC_T_F16, MC_T_F32 };
        for (size_t c = 0; c < (o->dtype >= 0 ? 1u : 3u); c++) {
            int rb = 0, rg = 0, exact = 0;
            if (!mc_quant_repack_supported(t->src_type, cand[c], &rb, &rg, &exact) || !exact ||
                it->ncols % (uint64_t)rg || (it->ncols * (uint64_t)rb) % 32)
                continue;
            uint64_t words = mc_quant_affine_row_words(it->ncols, rb), ng = it->ncols / (uint64_t)rg;
            char *rs = swap_suffix(t->name, ".scales"), *rbn = swap_suffix(t->name, ".biases");
            int rc = 0;
            if (!rs || !rbn) {
                free(rs);
                free(rbn);
                break; /* not a ".weight": requantize path below decides */
            }
            it->kind = MC_PK_REPACK;
            it->bits = rb;
            it->group_size = rg;
            it->float_type = cand[c];
            it->block_type = t->src_type;
            it->n_out = 3;
            uint64_t fs = type_size(cand[c]);
            if (set_out(&it->out[0], t->name, MC_T_U32, t, words, it->nrows, words * 4, MC_PART_DATA) ||
                set_out(&it->out[1], rs, cand[c], t, ng, it->nrows, ng * fs, MC_PART_SCALES) ||
                set_out(&it->out[2], rbn, cand[c], t, ng, it->nrows, ng * fs, MC_PART_BIASES))
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
            free(rs);
            free(rbn);
            return rc;
        }
    }
    int quant = !o->no_quant && t->quantizable && t->n_dims >= 2 && it->ncols % (uint64_t)o->group_size == 0 &&
                (it->ncols * (uint64_t)bits) % 32 == 0;
    char *sn = quant ? swap_suffix(t->name, ".scales") : NULL;
    char *bn = quant ? swap_suffix(t->name, ".biases") : NULL;
    int rc = 0;
    if (quant && (!sn || !bn)) quant = 0; /* not a ".weight": keep float */
    if (!quant) {
        it->kind = MC_PK_FLOAT;
        it->n_out = 1;
        if (set_out(&it->out[0], t->name, it->float_type, t, it->ncols, it->nrows,
                    it->ncols * type_size(it->float_type), MC_PART_DATA))
            rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    } else {
        uint64_t words = mc_quant_affine_row_words(it->ncols, bits);
        uint64_t ng = it->ncols / (uint64_t)o->group_size, fs = type_size(it->float_type);
        it->kind = MC_PK_AFFINE;
        it->bits = bits;
        it->group_size = o->group_size;
        it->n_out = 3;
        if (set_out(&it->out[0], t->name, MC_T_U32, t, words, it->nrows, words * 4, MC_PART_DATA) ||
            set_out(&it->out[1], sn, it->float_type, t, ng, it->nrows, ng * fs, MC_PART_SCALES) ||
            set_out(&it->out[2], bn, it->float_type, t, ng, it->nrows, ng * fs, MC_PART_BIASES))
            rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    free(sn);
    free(bn);
    return rc;
}

void mc_plan_free(mc_plan *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_items; i++)
        for (size_t k = 0; k < p->items[i].n_out; k++) free(p->items[i].out[k].name);
    free(p->items);
    cJSON_Delete(p->quantization);
    free(p);
}

int mc_plan_build(const mc_model *m, const mc_plan_opts *o, mc_plan **out, mc_error *err)
{
    static const int ok_gs[] = { 32, 64, 128 };
    int gs_ok = 0, rc = 0;
    *out = NULL;
    for (size_t i = 0; i < sizeof ok_gs / sizeof ok_gs[0]; i++) gs_ok |= o->group_size == ok_gs[i];
    if (o->n_bits_for > MC_PLAN_BITS_FOR_MAX) return mc_error_set(err, MC_ERR_ARG, "too many --bits-for overrides");
    for (size_t i = 0; i < o->n_bits_for; i++)
        if (!bits_valid(o->bits_for[i].bits) || !memchr(o->bits_for[i].glob, 0, MC_PLAN_GLOB_MAX))
            return mc_error_set(err, MC_ERR_ARG, "--bits-for override %zu is invalid", i + 1);
    if (!bits_valid(o->bits)) return mc_error_set(err, MC_ERR_ARG, "--bits %d: expected 2, 3, 4, 5, 6 or 8", o->bits);
    if (!gs_ok) return mc_error_set(err, MC_ERR_ARG, "--group-size %d: expected 32, 64 or 128", o->group_size);
    if (o->dtype >= 0 && !is_float_type(o->dtype))
        return mc_error_set(err, MC_ERR_ARG, "--dtype: expected bf16, f16 or f32");
    mc_recipe_ctx rctx;
    if ((rc = mc_recipe_prepare(m, o->recipe, &rctx, err))) return rc;
    mc_plan *p = calloc(1, sizeof *p);
    if (!p) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    p->opts = *o;
    p->items = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *p->items);
    if (!p->items) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        rc = plan_item(m, &m->tensors[i], o, &rctx, &p->items[i], err);
        p->n_items = i + 1;
        if (rc) goto done;
    }
    /* The mlx-lm "quantization" block: global params plus per-module entries
     * for modules quantized differently (routers at 8 bits). mlx-lm's mixed
     * recipes write an entry with "mode" for every quantized module
     * (mlx_lm/utils.py quantize_model, wrapped_predicate): so do they here. */
    int every = mc_recipe_is_mixed(o->recipe);
    int any = 0;
    for (size_t i = 0; i < p->n_items; i++) any |= p->items[i].kind == MC_PK_AFFINE || p->items[i].kind == MC_PK_REPACK;
    if (any) {
        cJSON *q = cJSON_CreateObject();
        p->quantization = q;
        if (!q || !cJSON_AddNumberToObject(q, "group_size", o->group_size) ||
            !cJSON_AddNumberToObject(q, "bits", o->bits) || !cJSON_AddStringToObject(q, "mode", "affine")) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < p->n_items; i++) {
            const mc_pitem *it = &p->items[i];
            if ((it->kind != MC_PK_AFFINE && it->kind != MC_PK_REPACK) ||
                (!every && it->bits == o->bits && it->group_size == o->group_size && !it->mx_mode))
                continue;
            char *mod = swap_suffix(it->mt->name, "");
            cJSON *e = cJSON_CreateObject();
            if (!mod || !e || !cJSON_AddNumberToObject(e, "group_size", it->group_size) ||
                !cJSON_AddNumberToObject(e, "bits", it->bits) ||
                (it->mx_mode ? !cJSON_AddStringToObject(e, "mode", mc_quant_mx_name(it->mx_mode))
                             : (every && !cJSON_AddStringToObject(e, "mode", "affine")))) {
                free(mod);
                cJSON_Delete(e);
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                goto done;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(q, mod);
            cJSON_AddItemToObject(q, mod, e);
            free(mod);
        }
    }
done:
    if (rc) mc_plan_free(p);
    else *out = p;
    return rc;
}

cJSON *mc_plan_config(const mc_plan *p, const mc_model *m)
{
    cJSON *c = m->config ? cJSON_Duplicate(m->config, 1) : cJSON_CreateObject();
    if (!c || !p->quantization) return c;
    cJSON *q1 = cJSON_Duplicate(p->quantization, 1), *q2 = cJSON_Duplicate(p->quantization, 1);
    if (!q1 || !q2) {
        cJSON_Delete(q1);
        cJSON_Delete(q2);
        cJSON_Delete(c);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(c, "quantization");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "quantization_config");
    cJSON_AddItemToObject(c, "quantization", q1);
    cJSON_AddItemToObject(c, "quantization_config", q2);
    return c;
}

static const struct { const char *name; int type; } g_dtypes[] = {
    { "bf16", MC_T_BF16 }, { "f16", MC_T_F16 }, { "f32", MC_T_F32 },
};

cJSON *mc_plan_shape_json(const uint64_t *shape, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t d = 0; a && d < n; d++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[d]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

cJSON *mc_plan_opts_json(const mc_plan_opts *o)
{
    const char *dt = "source";
    for (size_t i = 0; i < sizeof g_dtypes / sizeof g_dtypes[0]; i++)
        if (g_dtypes[i].type == o->dtype) dt = g_dtypes[i].name;
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddNumberToObject(j, "bits", o->bits) || !cJSON_AddNumberToObject(j, "group_size", o->group_size) ||
        !cJSON_AddStringToObject(j, "dtype", dt) || !cJSON_AddBoolToObject(j, "no_quant", o->no_quant) ||
        !cJSON_AddBoolToObject(j, "lossless", o->lossless) ||
        (o->requant_mxfp4 && !cJSON_AddBoolToObject(j, "requant_mxfp4", 1))) { /* only when set: older files keep their bytes */
        cJSON_Delete(j);
        return NULL;
    }
    if (o->recipe != MC_RECIPE_UNIFORM && !cJSON_AddStringToObject(j, "recipe", mc_recipe_name(o->recipe))) {
        cJSON_Delete(j);
        return NULL;
    }
    if (o->n_bits_for) { /* only when given, so files written without overrides keep their bytes */
        cJSON *a = cJSON_AddArrayToObject(j, "bits_for");
        for (size_t i = 0; a && i < o->n_bits_for; i++) {
            cJSON *e = cJSON_CreateObject();
            if (!e || !cJSON_AddItemToArray(a, e) || !cJSON_AddStringToObject(e, "glob", o->bits_for[i].glob) ||
                !cJSON_AddNumberToObject(e, "bits", o->bits_for[i].bits))
                a = NULL;
        }
        if (!a) {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

int mc_plan_opts_from_json(const cJSON *j, mc_plan_opts *o, mc_error *err)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "bits");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "group_size");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    mc_plan_opts_default(o);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(g) || !cJSON_IsString(d))
        return mc_error_set(err, MC_ERR_FORMAT, "options: bits, group_size and dtype are required");
    o->bits = b->valueint;
    o->group_size = g->valueint;
    o->dtype = -1;
    for (size_t i = 0; i < sizeof g_dtypes / sizeof g_dtypes[0]; i++)
        if (!strcmp(d->valuestring, g_dtypes[i].name)) o->dtype = g_dtypes[i].type;
    if (o->dtype < 0 && strcmp(d->valuestring, "source"))
        return mc_error_set(err, MC_ERR_FORMAT, "options: unknown dtype \"%s\"", d->valuestring);
    o->no_quant = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "no_quant"));
    o->lossless = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "lossless"));
    const cJSON *rcp = cJSON_GetObjectItemCaseSensitive(j, "recipe");
    if (rcp && (!cJSON_IsString(rcp) || (o->recipe = mc_recipe_from_name(rcp->valuestring)) < 0))
        return mc_error_set(err, MC_ERR_FORMAT, "options: recipe is not one of %s", mc_recipe_list());
    o->requant_mxfp4 = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "requant_mxfp4"));
    const cJSON *e, *bf = cJSON_GetObjectItemCaseSensitive(j, "bits_for");
    if (bf && !cJSON_IsArray(bf)) return mc_error_set(err, MC_ERR_FORMAT, "options: bits_for is not an array");
    cJSON_ArrayForEach(e, bf) {
        const cJSON *eg = cJSON_GetObjectItemCaseSensitive(e, "glob"), *eb = cJSON_GetObjectItemCaseSensitive(e, "bits");
        mc_error ae = { MC_OK, "" };
        if (!cJSON_IsString(eg) || !cJSON_IsNumber(eb) || mc_plan_opts_add_bits_for(o, eg->valuestring, eb->valueint, &ae))
            return mc_error_set(err, MC_ERR_FORMAT, "options: bits_for entry unusable%s%s", ae.code ? ": " : "", ae.msg);
    }
    return 0;
}

/* ---- row conversion ---- */

void mc_plan_scratch_free(mc_plan_scratch *s)
{
    free(s->f32);
    free(s->blocks);
    for (int k = 0; k < 3; k++) free(s->out[k]);
    for (int k = 0; k < 2; k++) free(s->aux[k]);
    memset(s, 0, sizeof *s);
}

static int grow(void **p, size_t *cap, size_t need)
{
    if (*cap >= need) return 0;
    void *n = realloc(*p, need ? need : 1);
    if (!n) return -1;
    *p = n;
    *cap = need;
    return 0;
}

uint64_t mc_plan_chunk_rows(const mc_pitem *it, size_t chunk_bytes)
{
    uint64_t per_row = it->kind == MC_PK_RAW ? it->out[0].row_bytes : it->ncols * 4;
    uint64_t rows = per_row ? chunk_bytes / per_row : it->nrows;
    if (rows == 0) rows = 1;
    uint64_t per_expert = it->nrows / it->n_experts;
    if (rows > per_expert) rows = per_expert;
    return rows;
}

int mc_plan_next_chunk(const mc_plan *p, size_t chunk_bytes, mc_plan_cursor *c, mc_plan_chunk *j)
{
    while (c->ci < p->n_items) {
        const mc_pitem *it = &p->items[c->ci];
        uint64_t per = it->nrows / it->n_experts;
        if (c->ce >= it->n_experts) {
            c->ci++;
            c->ce = 0;
            c->cr = 0;
            continue;
        }
        if (c->cr >= per) {
            c->ce++;
            c->cr = 0;
            continue;
        }
        uint64_t rows = mc_plan_chunk_rows(it, chunk_bytes);
        if (rows > per - c->cr) rows = per - c->cr;
        j->item = c->ci;
        j->expert = c->ce;
        j->row = c->cr;
        j->nrows = rows;
        c->cr += rows;
        return 1;
    }
    return 0;
}

static void f32_to(int t, const float *x, size_t n, void *dst)
{
    if (t == MC_T_F32) {
        memcpy(dst, x, n * 4);
    } else if (t == MC_T_F16) {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = mc_f32_to_f16(x[i]);
    } else {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = mc_f32_to_bf16(x[i]);
    }
}

int mc_plan_convert_rows(const mc_model *m, const mc_source_ops *ops, const mc_pitem *it, uint64_t row0,
                         uint64_t nrows, mc_plan_scratch *s, unsigned char *out[3], mc_error *err)
{
    int rc;
    for (size_t k = 0; k < it->n_out; k++) {
        uint64_t need = nrows * it->out[k].row_bytes;
        if (grow((void **)&s->out[k], &s->out_cap[k], (size_t)need))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory converting %s", it->mt->name);
        out[k] = s->out[k];
    }
    s->src = MC_PSRC_NONE;
    if (it->kind == MC_PK_RAW) {
        s->src = MC_PSRC_RAW;
        return ops->read_raw(m, it->mt, row0 * it->out[0].row_bytes, s->out[0],
                             (size_t)(nrows * it->out[0].row_bytes), err);
    }
    if (it->kind == MC_PK_REPACK && ops->read_blocks) {
        uint64_t rowb = 0;
        int type = -1;
        mc_error re = { MC_OK, "" };
        if (mc_type_nbytes(it->block_type, it->ncols, &rowb) ||
            grow((void **)&s->blocks, &s->blocks_cap, (size_t)(nrows * rowb)))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory converting %s", it->mt->name);
        if ((rc = ops->read_blocks(m, it->mt, row0, nrows, s->blocks, s->blocks_cap, &type, err))) return rc;
        if (type != it->block_type)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s rows %llu..: blocks of type %s, planned %s",
                                m->input_path, it->mt->name, (unsigned long long)row0, mc_type_name(type),
                                mc_type_name(it->block_type));
        if (mc_quant_repack(type, s->blocks, nrows, it->ncols, it->float_type, (uint32_t *)(void *)s->out[0],
                            s->out[1], it->mx_mode ? NULL : s->out[2], NULL, &re) == 0) {
            s->src = MC_PSRC_BLOCKS;
            return 0;
        }
        if (re.code != MC_ERR_UNSUPPORTED || it->mx_mode)
            return mc_error_set(err, re.code, "%s: tensor %s: %s", m->input_path, it->mt->name, re.msg);
        /* a block that cannot be expressed (f16 bias overflow, non-finite
         * scale): these rows are requantized from their values with the same
         * bits and group size, so the layout is unchanged */
    }
    if (it->mx_mode) /* no source blocks to carry: never requantized behind the plan's back */
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s: planned as MLX %s blocks, but the source gives no raw blocks",
                            m->input_path, it->mt->name, mc_quant_mx_name(it->mx_mode));
    if (grow((void **)&s->f32, &s->f32_cap, (size_t)(nrows * it->ncols * sizeof(float))))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory converting %s", it->mt->name);
    if ((rc = ops->read_f32(m, it->mt, row0, nrows, s->f32, err))) return rc;
    s->src = MC_PSRC_F32;
    if (it->kind == MC_PK_FLOAT) {
        f32_to(it->float_type, s->f32, (size_t)(nrows * it->ncols), s->out[0]);
        return 0;
    }
    mc_affine p = { it->bits, it->group_size, it->float_type };
    mc_error qe = { MC_OK, "" };
    /* measuring (s->qerr): each run of groups is measured by the quantizer's
     * sink right after it is quantized, from its codes and values in cache */
    uint32_t *wq = (uint32_t *)(void *)s->out[0];
    int qrc = s->qerr ? mc_qerr_affine_quantize(s->qerr, s->f32, nrows, it->ncols, &p, wq, s->out[1], s->out[2], &qe)
                      : mc_quant_affine_quantize(s->f32, nrows, it->ncols, &p, wq, s->out[1], s->out[2], &qe);
    if (qrc)
        return mc_error_set(err, qe.code ? qe.code : MC_ERR_ARG, "%s: tensor %s rows %llu..%llu: %s", m->input_path,
                            it->mt->name, (unsigned long long)row0, (unsigned long long)(row0 + nrows), qe.msg);
    if (s->qerr) s->src = MC_PSRC_MEASURED;
    return 0;
}

const char *mc_plan_method(const mc_pitem *it)
{
    static const char *const names[] = { "float", "affine", "passthrough", "repack" };
    return (unsigned)it->kind < sizeof names / sizeof names[0] ? names[it->kind] : "unknown";
}

int mc_plan_measure_rows(const mc_pitem *it, uint64_t nrows, mc_plan_scratch *s, unsigned char *const out[3],
                         mc_qerr *q, mc_error *err)
{
    uint64_t n = nrows * it->ncols;
    mc_error qe = { MC_OK, "" };
    int rc = 0;
    switch (s->src) {
    case MC_PSRC_RAW:
    case MC_PSRC_MEASURED:
        return 0;
    case MC_PSRC_F32:
        if (it->kind == MC_PK_FLOAT) {
            rc = mc_qerr_float(q, s->f32, nrows, it->ncols, it->float_type, out[0], &qe);
        } else {
            mc_affine p = { it->bits, it->group_size, it->float_type };
            rc = mc_qerr_affine(q, s->f32, nrows, it->ncols, &p, (const uint32_t *)(const void *)out[0], out[1],
                                out[2], &qe);
        }
        break;
    case MC_PSRC_BLOCKS: {
        /* the source values: ggml's dequantization of the blocks just read */
        if (n > SIZE_MAX / sizeof(float) || grow((void **)&s->aux[0], &s->aux_cap[0], (size_t)n * sizeof(float)))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory measuring %s", it->mt->name);
        if ((rc = mc_dequant(it->block_type, s->blocks, s->aux[0], (int64_t)n, &qe))) break;
        int mode = mc_quant_repack_mx_mode(it->block_type);
        if (mode) {
            mc_mx mx = { mode, MC_T_F32, 0, 0.0f };
            if (grow((void **)&s->aux[1], &s->aux_cap[1], (size_t)n * sizeof(float)))
                return mc_error_set(err, MC_ERR_NOMEM, "out of memory measuring %s", it->mt->name);
            if ((rc = mc_quant_mx_dequantize((const uint32_t *)(const void *)out[0], out[1], nrows, it->ncols, &mx,
                                             MC_T_F32, s->aux[1], &qe)))
                break;
            mc_qerr_values(q, s->aux[0], s->aux[1], nrows, it->ncols);
        } else {
            mc_affine p = { it->bits, it->group_size, it->float_type };
            rc = mc_qerr_affine(q, s->aux[0], nrows, it->ncols, &p, (const uint32_t *)(const void *)out[0], out[1],
                                out[2], &qe);
        }
        break;
    }
    default:
        return mc_error_set(err, MC_ERR_ARG, "internal error: %s: nothing converted to measure", it->mt->name);
    }
    if (rc) return mc_error_set(err, qe.code ? qe.code : MC_ERR_ARG, "%s: measuring the quantization error: %s",
                                it->mt->name, qe.msg);
    return 0;
}
