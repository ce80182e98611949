/* mc_convert_rules: the rule engine. Name patterns ({L}, {E}), groups of
 * alternative rules, layer kinds and flags, source lookup, the recipe of
 * each output tensor (plain rules, MLX passthrough, architecture builders)
 * and --keep-names. */
#include "mc_convert.h"
#include "mc_convert_priv.h"
#include "mc_types.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

/* Expand "{L}" and "{E}" in pat. Returns 0, or non-zero when it does not fit. */
int mc_fmt_name(char *buf, size_t cap, const char *pat, int layer, int expert)
{
    size_t o = 0;
    for (const char *p = pat; *p; ) {
        if (p[0] == '{' && (p[1] == 'L' || p[1] == 'E') && p[2] == '}') {
            char num[24];
            int v = p[1] == 'L' ? layer : expert;
            int n = snprintf(num, sizeof num, "%d", v);
            if (n < 0 || o + (size_t)n >= cap) return 1;
            memcpy(buf + o, num, (size_t)n);
            o += (size_t)n;
            p += 3;
        } else {
            if (o + 1 >= cap) return 1;
            buf[o++] = *p++;
        }
    }
    buf[o] = '\0';
    return 0;
}

int mc_has_tok(const char *pat, char c)
{
    char tok[4] = {'{', c, '}', 0};
    return pat && strstr(pat, tok) != NULL;
}

/* ------------------------------------------------------------ tensors */

int mc_push_tensor(mc_model *m, size_t *cap, mc_mtensor **out, mc_error *err)
{
    if (m->n_tensors == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        mc_mtensor *nt = realloc(m->tensors, nc * sizeof *nt);
        if (!nt) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for the tensor list", m->input_path);
        m->tensors = nt;
        *cap = nc;
    }
    mc_mtensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    t->layer = -1;
    t->stored_type = -1;
    *out = t;
    return 0;
}

/* The largest --recipe source bits of the source tensors a recipe reads
 * (a stack of experts stored in different types keeps the most bits). */
static uint8_t mc_recipe_src_bits(const mc_recipe *rec)
{
    int best = 0;
    for (size_t i = 0; i < rec->n_parts; i++) {
        uint64_t rows, rl;
        int ty, b;
        mc_part_geom(&rec->parts[i], &rows, &rl, &ty);
        b = mc_type_src_bits(ty);
        if (b > best) best = b;
    }
    return (uint8_t)best;
}

static void mc_found_free(mc_found *f)
{
    free(f->g);
    free(f->s);
    memset(f, 0, sizeof *f);
}

/* Look up pattern pat (kind: GGUF if gguf) for layer L. Returns 1 found, 0 absent,
 * negative on error (err set). */
static int mc_lookup(mc_cv *cv, const char *pat, int L, mc_found *f, mc_error *err)
{
    char name[MC_NAME_MAX];
    mc_model *m = cv->m;
    memset(f, 0, sizeof *f);
    int stacked = mc_has_tok(pat, 'E');
    size_t n = stacked ? (size_t)(cv->n_experts > 0 ? cv->n_experts : 0) : 1;
    if (n == 0) return 0;
    if (mc_fmt_name(name, sizeof name, pat, L, 0)) return 0;
    mc_st_src probe;
    int present = m->gguf ? mc_gguf_find_tensor(m->gguf, name) != NULL : mc_st_lookup(cv, name, &probe);
    if (!present) return 0;
    f->n = n;
    f->stacked = stacked;
    if (m->gguf) f->g = calloc(n, sizeof *f->g);
    else f->s = calloc(n, sizeof *f->s);
    if (!f->g && !f->s) {
        mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path);
        return -1;
    }
    for (size_t e = 0; e < n; e++) {
        mc_fmt_name(name, sizeof name, pat, L, (int)e);
        int got = m->gguf ? (f->g[e] = mc_gguf_find_tensor(m->gguf, name)) != NULL : mc_st_lookup(cv, name, &f->s[e]);
        if (!got) {
            mc_error_set(err, MC_ERR_NOTFOUND, "%s: missing tensor %s (expert %zu of %zu; expert 0 is present)",
                         m->input_path, name, e, n);
            mc_found_free(f);
            return -1;
        }
    }
    return 1;
}

uint8_t mc_recipe_block_rows(const mc_recipe *r)
{
    if (!r->n_parts || r->values_x || r->elem_rows || r->col_map || r->flat || r->has_t || r->fixed_src_type < 0)
        return 0;
    for (size_t i = 0; i < r->n_parts; i++)
        if (!r->parts[i].enc || !r->parts[i].enc->lossless) return 0;
    return 1;
}

/* Every part's encoding carries MLX's own blocks, read as rows. */
static uint8_t mc_recipe_carry(const mc_recipe *r)
{
    if (!mc_recipe_block_rows(r)) return 0;
    for (size_t i = 0; i < r->n_parts; i++)
        if (!r->parts[i].enc->carry) return 0;
    return 1;
}

/* What a rule and its recipe say of output tensor t (layer L); t takes rec. */
static void mc_tensor_from_recipe(mc_mtensor *t, const mc_rule *r, int L, mc_recipe *rec)
{
    t->role = (mc_role)r->role;
    t->layer = L;
    t->src_type = rec->fixed_src_type;
    t->src_bits = mc_recipe_src_bits(rec);
    t->carry = mc_recipe_carry(rec);
    t->block_rows = mc_recipe_block_rows(rec);
    t->quantizable = (r->flags & MC_R_Q) ? 1 : 0;
    t->quant_bits = (r->flags & MC_R_Q8) ? 8 : 0;
    t->keep_dtype = (r->flags & MC_R_KEEP_DTYPE) ? 1 : 0;
    t->impl = rec;
}

/* Build the recipe and shape of one output tensor from found sources. */
static int mc_make_tensor(mc_cv *cv, const mc_rule *r, int L, int x, mc_found *f, size_t *cap, mc_error *err)
{
    mc_model *m = cv->m;
    char name[MC_NAME_MAX];
    mc_mtensor *t = NULL;
    mc_recipe *rec = NULL;
    int rc = 0;
    if (mc_fmt_name(name, sizeof name, r->mlx, L, 0))
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor name pattern %s too long", m->input_path, r->mlx);
    if (x < 0 || x >= MC_X_RULES)
        return mc_error_set(err, MC_ERR_ARG, "%s: rule %s names transform %d, not a rule transform", m->input_path,
                            r->mlx, x);
    const mc_xform_def *xd = &mc_xforms[x];

    rec = calloc(1, sizeof *rec);
    if (rec) rec->parts = calloc(f->n, sizeof *rec->parts);
    if (!rec || !rec->parts) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path); goto done; }
    rec->n_parts = f->n;
    rec->fixed_src_type = -1;
    if (xd->kind == MC_XK_VALUES) rec->values_x = (uint8_t)x;

    /* source geometry; all parts must agree */
    uint64_t src_rows = 0, row_len = 0;
    uint32_t nd = 0;
    uint64_t shp[MC_MT_MAX_DIMS] = {0};
    for (size_t i = 0; i < f->n; i++) {
        mc_part *p = &rec->parts[i];
        uint64_t rows, rl;
        int ty;
        uint64_t pshp[MC_MT_MAX_DIMS];
        if (f->g) {
            p->g = f->g[i];
            p->enc = &mc_enc_gguf;
        } else {
            mc_part_set_st(p, &f->s[i]);
        }
        uint32_t pnd = mc_part_dims(p, pshp);
        if (pnd > MC_MT_MAX_DIMS - (f->stacked ? 1u : 0u)) {
            rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s has %u dims", m->input_path, mc_part_name(p), pnd);
            goto done;
        }
        mc_part_geom(p, &rows, &rl, &ty);
        p->row0 = 0;
        p->nrows = rows;
        if (i == 0) {
            src_rows = rows;
            row_len = rl;
            nd = pnd;
            memcpy(shp, pshp, sizeof shp);
            rec->fixed_src_type = ty;
        } else {
            if (rows != src_rows || rl != row_len || pnd != nd || memcmp(pshp, shp, sizeof shp) != 0) {
                rc = mc_error_set(err, MC_ERR_FORMAT,
                                  "%s: tensor %s: expert %zu has %llu x %llu, expert 0 has %llu x %llu",
                                  m->input_path, mc_part_name(p), i, (unsigned long long)rows,
                                  (unsigned long long)rl, (unsigned long long)src_rows, (unsigned long long)row_len);
                goto done;
            }
            if (ty != rec->fixed_src_type) rec->fixed_src_type = -1;
        }
    }
    rec->row_len = row_len;
    if (nd == 1 && xd->kind == MC_XK_ROWS) {
        if (f->n != 1) {
            rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: stacked 1D tensor %s under a row selection",
                              m->input_path, mc_part_name(&rec->parts[0]));
            goto done;
        }
        rec->elem_rows = 1;
        rec->row_len = 1;
        src_rows = shp[0];
        rec->parts[0].nrows = src_rows;
    }
    /* row selections */
    mc_xplan xp = {cv, rec, f->n, nd, shp, src_rows};
    if (xd->plan && (rc = xd->plan(&xp, xd, err))) goto done;

    if ((rc = mc_push_tensor(m, cap, &t, err))) goto done;
    t->name = mc_strdup(name);
    if (!t->name) { m->n_tensors--; rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path); goto done; }
    t->n_dims = nd + (f->stacked ? 1u : 0u);
    if (f->stacked) {
        t->shape[0] = f->n;
        for (uint32_t d = 0; d < nd; d++) t->shape[d + 1] = shp[d];
    } else {
        for (uint32_t d = 0; d < nd; d++) t->shape[d] = shp[d];
    }
    mc_tensor_from_recipe(t, r, L, rec);
    rec = NULL;
done:
    mc_recipe_free(rec);
    return rc;
}

/* MLX-quantized checkpoint: X.weight with X.scales and X.biases beside it. */
static int mc_make_passthrough(mc_cv *cv, const mc_rule *r, int L, const char *wname_norm, size_t *cap,
                               mc_error *err)
{
    mc_model *m = cv->m;
    char base[MC_NAME_MAX], mlxbase[MC_NAME_MAX], sn[MC_NAME_MAX + 16], on[MC_NAME_MAX + 16];
    size_t bl = strlen(wname_norm);
    if (bl < 7 || strcmp(wname_norm + bl - 7, ".weight") != 0 || bl >= sizeof base) return 0;
    memcpy(base, wname_norm, bl - 7);
    base[bl - 7] = '\0';
    snprintf(sn, sizeof sn, "%s.scales", base);
    if (!mc_idx_find(cv, sn)) return 0;
    if (mc_fmt_name(mlxbase, sizeof mlxbase, r->mlx, L, 0)) return 0;
    size_t ml = strlen(mlxbase);
    if (ml < 7 || strcmp(mlxbase + ml - 7, ".weight") != 0) return 0;
    mlxbase[ml - 7] = '\0';

    /* per-module bits override in "quantization" */
    int bits = m->mlx_bits;
    const cJSON *qz = cJSON_GetObjectItemCaseSensitive(m->config, "quantization");
    const cJSON *ov = qz ? cJSON_GetObjectItemCaseSensitive(qz, mlxbase) : NULL;
    if (cJSON_IsObject(ov)) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(ov, "bits");
        if (cJSON_IsNumber(b)) bits = b->valueint;
    }

    static const char *const sfx[] = {"weight", "scales", "biases"};
    for (int k = 0; k < 3; k++) {
        snprintf(sn, sizeof sn, "%s.%s", base, sfx[k]);
        snprintf(on, sizeof on, "%s.%s", mlxbase, sfx[k]);
        struct mc_st_name *sx = mc_idx_find(cv, sn);
        if (!sx) {
            if (k == 2) continue; /* some modes have no biases */
            return mc_error_set(err, MC_ERR_NOTFOUND, "%s: missing tensor %s", m->input_path, sn);
        }
        sx->used = 1;
        mc_mtensor *t = NULL;
        mc_recipe *rec = calloc(1, sizeof *rec);
        if (rec) rec->parts = calloc(1, sizeof *rec->parts);
        if (!rec || !rec->parts) {
            mc_recipe_free(rec);
            return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path);
        }
        rec->n_parts = 1;
        rec->parts[0].s = sx->t;
        rec->parts[0].enc = &mc_enc_st;
        uint64_t rows, rl;
        int ty;
        mc_part_geom(&rec->parts[0], &rows, &rl, &ty);
        rec->parts[0].nrows = rows;
        rec->row_len = rl;
        rec->fixed_src_type = ty;
        int rc = mc_push_tensor(m, cap, &t, err);
        if (rc) { mc_recipe_free(rec); return rc; }
        t->name = mc_strdup(on);
        if (!t->name) { m->n_tensors--; mc_recipe_free(rec); return mc_error_set(err, MC_ERR_NOMEM, "out of memory"); }
        if (sx->t->n_dims > MC_MT_MAX_DIMS) {
            free(t->name); m->n_tensors--; mc_recipe_free(rec);
            return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s has %u dims", m->input_path, sn, sx->t->n_dims);
        }
        t->n_dims = sx->t->n_dims;
        for (uint32_t d = 0; d < t->n_dims; d++) t->shape[d] = sx->t->shape[d];
        t->role = (mc_role)r->role;
        t->layer = L;
        t->src_type = ty;
        t->passthrough = 1;
        t->stored_type = ty;
        t->quantizable = (r->flags & MC_R_Q) ? 1 : 0;
        t->quant_bits = (uint8_t)bits;
        t->src_bits = (uint8_t)bits;
        t->impl = rec;
    }
    return 1;
}

/* ------------------------------------------------------------ builders */

int mc_build_source(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_part *src)
{
    if (!mc_cv_rule_source(cv, r, L, src)) return 0;
    b->found = 1;
    return 1;
}

int mc_cv_expect(mc_cv *cv, const mc_part *p, uint64_t rows, uint64_t row_len, mc_error *err)
{
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(p, &nd, shp);
    uint64_t n = 1;
    for (uint32_t i = 0; i + 1 < nd; i++) n *= shp[i];
    uint64_t rl = nd ? shp[nd - 1] : 1;
    if (n != rows || rl != row_len)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s has %llu rows of %llu, expected %llu of %llu",
                            cv->m->input_path, mc_cv_part_name(p), (unsigned long long)n, (unsigned long long)rl,
                            (unsigned long long)rows, (unsigned long long)row_len);
    return 0;
}

void mc_build_shape(mc_build *b, uint32_t n_dims, const uint64_t *dims)
{
    b->n_dims = n_dims <= MC_MT_MAX_DIMS ? n_dims : 0; /* 0: refused as a shape by the framework */
    for (uint32_t d = 0; d < b->n_dims; d++) b->shape[d] = dims[d];
}

int mc_build_part_cols(mc_build *b, const mc_part *src, uint64_t row0, uint64_t nrows, uint64_t t_rows, uint64_t col0,
                       uint64_t step, mc_error *err)
{
    mc_recipe *r = b->rec;
    uint64_t rows, rl, end, last = 0;
    int ty;
    const char *path = b->m->input_path;
    mc_part_geom(src, &rows, &rl, &ty);
    uint64_t span = t_rows ? t_rows : nrows;
    /* transposed: the columns col0, col0 + step, ... (nrows of them) lie in the row;
     * plain rows take whole rows (col0 0, step 1) */
    int cols_bad = step == 0 || (!t_rows && (col0 != 0 || step != 1)) ||
                   (t_rows && (nrows == 0 || mc_mul_u64(nrows - 1, step, &last) || mc_add_u64(last, col0, &last) ||
                               last >= rl));
    if (mc_add_u64(row0, span, &end) || end > rows || cols_bad)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: tensor %s (%llu rows of %llu): rows [%llu, +%llu)%s, %llu columns from %llu step %llu out of range",
                            path, mc_part_name(src), (unsigned long long)rows, (unsigned long long)rl,
                            (unsigned long long)row0, (unsigned long long)span, t_rows ? " transposed" : "",
                            (unsigned long long)nrows, (unsigned long long)col0, (unsigned long long)step);
    uint64_t out_len = t_rows ? t_rows : rl;
    if (r->n_parts == 0) {
        r->row_len = out_len;
        r->fixed_src_type = ty;
    } else {
        if (r->row_len != out_len)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s: rows of %llu elements after rows of %llu", path,
                                mc_part_name(src), (unsigned long long)out_len, (unsigned long long)r->row_len);
        if (r->fixed_src_type != ty) r->fixed_src_type = -1;
    }
    mc_part *np = realloc(r->parts, (r->n_parts + 1) * sizeof *np);
    if (!np) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    r->parts = np;
    mc_part *p = &r->parts[r->n_parts++];
    *p = *src;
    p->row0 = row0;
    p->nrows = nrows;
    p->t_rows = t_rows;
    p->t_col0 = col0;
    p->t_step = step;
    if (t_rows) r->has_t = 1;
    return 0;
}

int mc_build_part(mc_build *b, const mc_part *src, uint64_t row0, uint64_t nrows, uint64_t t_rows, mc_error *err)
{
    uint64_t rows, rl;
    int ty;
    mc_part_geom(src, &rows, &rl, &ty);
    if (t_rows && nrows != rl)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s (%llu rows of %llu): %llu transposed rows, not the row length",
                            b->m->input_path, mc_part_name(src), (unsigned long long)rows, (unsigned long long)rl,
                            (unsigned long long)nrows);
    return mc_build_part_cols(b, src, row0, nrows, t_rows, 0, 1, err);
}

int mc_build_col_map(mc_build *b, uint32_t *map, uint64_t n, mc_error *err)
{
    for (uint64_t j = 0; j < n; j++)
        if (map[j] >= n) {
            uint32_t v = map[j];
            free(map);
            return mc_error_set(err, MC_ERR_ARG, "%s: column map entry %llu = %u out of range", b->m->input_path,
                                (unsigned long long)j, v);
        }
    free(b->rec->col_map);
    b->rec->col_map = map;
    b->rec->row_len = b->rec->n_parts ? b->rec->row_len : n;
    if (b->rec->row_len != n)
        return mc_error_set(err, MC_ERR_ARG, "%s: column map of %llu for rows of %llu", b->m->input_path,
                            (unsigned long long)n, (unsigned long long)b->rec->row_len);
    return 0;
}

/* Run rule r's builder bf for layer L: 0 with *found set, or an mc_code. */
static int mc_run_builder(mc_cv *cv, const mc_rule *r, int L, mc_build_fn bf, int *found, size_t *cap, mc_error *err)
{
    mc_model *m = cv->m;
    char name[MC_NAME_MAX];
    mc_build b;
    mc_mtensor *t = NULL;
    int rc;
    memset(&b, 0, sizeof b);
    *found = 0;
    b.m = m;
    b.x = MC_X_NONE;
    b.rec = calloc(1, sizeof *b.rec);
    if (!b.rec) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path);
    b.rec->fixed_src_type = -1;
    if ((rc = bf(cv, r, L, &b, err))) goto done;
    if (!b.found) goto done;
    *found = 1;
    if (mc_fmt_name(name, sizeof name, r->mlx, L, 0)) {
        rc = mc_error_set(err, MC_ERR_ARG, "%s: tensor name pattern %s too long", m->input_path, r->mlx);
        goto done;
    }
    /* the parts' rows must make up the declared shape */
    uint64_t out_rows = 0, nel = 1, ne;
    for (size_t i = 0; i < b.rec->n_parts; i++) out_rows += b.rec->parts[i].nrows;
    for (uint32_t d = 0; d < b.n_dims; d++) nel *= b.shape[d];
    uint64_t last = b.n_dims ? b.shape[b.n_dims - 1] : 1;
    if (b.n_dims == 0 || b.n_dims > MC_MT_MAX_DIMS || b.rec->n_parts == 0 || mc_mul_u64(out_rows, b.rec->row_len, &ne) ||
        ne != nel || (!b.flat && last != b.rec->row_len) || (b.flat && last == 0)) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: %s: %llu rows of %llu from the sources do not make the %u-dim shape of %llu elements",
                          m->input_path, name, (unsigned long long)out_rows, (unsigned long long)b.rec->row_len,
                          b.n_dims, (unsigned long long)nel);
        goto done;
    }
    if (b.x && (b.x >= MC_X_COUNT || mc_xforms[b.x].kind != MC_XK_VALUES)) {
        rc = mc_error_set(err, MC_ERR_ARG, "%s: %s: builder value map %d is not a value transform", m->input_path,
                          name, b.x);
        goto done;
    }
    b.rec->values_x = b.x;
    b.rec->flat = b.flat;
    if ((rc = mc_push_tensor(m, cap, &t, err))) goto done;
    t->name = mc_strdup(name);
    if (!t->name) { m->n_tensors--; rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path); goto done; }
    t->n_dims = b.n_dims;
    memcpy(t->shape, b.shape, sizeof t->shape);
    mc_tensor_from_recipe(t, r, L, b.rec);
    if (mc_xforms[b.x].computed) t->src_type = MC_T_F32;
    b.rec = NULL;
done:
    mc_recipe_free(b.rec);
    return rc;
}

/* Apply one group of alternative rules (same mlx name) for layer L, whose
 * kinds are layer_kinds. */
static int mc_apply_group(mc_cv *cv, const mc_rule *rules, size_t n, int L, unsigned layer_kinds, size_t *cap,
                          mc_error *err)
{
    mc_model *m = cv->m;
    const mc_rule *r0 = &rules[0];
    unsigned need = MC_R_KINDS(r0->flags);
    if ((layer_kinds & need) != need) return 0;
    int is_gguf = m->gguf != NULL;
    if ((r0->flags & MC_R_NOTIED) && !is_gguf &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->config, "tie_word_embeddings")))
        return 0; /* sanitize: tied lm_head dropped */

    /* safetensors: the mlx name itself first, unless the group has HF
     * builders (they tell the HF form from mlx-lm's when names coincide,
     * e.g. qwen3_next conv1d and zero-centred norms) and the input is not
     * known to be in mlx-lm's form already: an MLX-quantized folder, or
     * files mlx-lm wrote (__metadata__ "format": "mlx", as mx.save_safetensors
     * and mconv's mlx folders have it; HF checkpoints say "pt") */
    int hf_built = 0;
    for (size_t i = 0; i < n; i++) hf_built |= rules[i].hx >= MC_X_BUILD;
    const char *st_format = m->st ? mc_st_meta_get(m->st, "format") : NULL;
    int mlx_form = m->mlx_bits || (st_format && !strcmp(st_format, "mlx"));
    if (!is_gguf && (!hf_built || mlx_form)) {
        char name[MC_NAME_MAX];
        mc_st_src probe;
        if (!mc_fmt_name(name, sizeof name, r0->mlx, L, 0) && mc_st_lookup(cv, name, &probe)) {
            if (m->mlx_bits) {
                int pr = mc_make_passthrough(cv, r0, L, name, cap, err);
                if (pr < 0 || pr > 1) return pr;
                if (pr == 1) return 0;
            }
            mc_found f;
            int lr = mc_lookup(cv, r0->mlx, L, &f, err);
            if (lr < 0) return err ? err->code : MC_ERR_FORMAT;
            int rc = mc_make_tensor(cv, r0, L, MC_X_NONE, &f, cap, err);
            mc_found_free(&f);
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const mc_rule *r = &rules[i];
        int bx = is_gguf ? r->gx : r->hx;
        if (bx >= MC_X_BUILD) {
            size_t k = (size_t)(bx - MC_X_BUILD);
            if (k >= cv->arch->n_builders || !cv->arch->builders[k])
                return mc_error_set(err, MC_ERR_ARG, "%s: rule %s names builder %zu, architecture %s has %zu",
                                    m->input_path, r->mlx, k, cv->arch->name, cv->arch->n_builders);
            mc_build_fn bf = cv->arch->builders[k];
            int found = 0;
            int rc = mc_run_builder(cv, r, L, bf, &found, cap, err);
            if (rc || found) return rc;
            continue;
        }
        const char *pat = is_gguf ? r->gguf : r->hf;
        if (!pat) continue;
        mc_found f;
        int lr = mc_lookup(cv, pat, L, &f, err);
        if (lr < 0) return err ? err->code : MC_ERR_FORMAT;
        if (lr == 0) continue;
        if (!is_gguf && m->mlx_bits && !f.stacked) {
            int pr = mc_make_passthrough(cv, r, L, f.s[0].data->norm, cap, err);
            if (pr == 1) { mc_found_free(&f); return 0; }
            if (pr != 0) { mc_found_free(&f); return pr; }
        }
        int rc = mc_make_tensor(cv, r, L, is_gguf ? r->gx : r->hx, &f, cap, err);
        mc_found_free(&f);
        return rc;
    }
    if (r0->flags & (MC_R_OPT | MC_R_NOTIED)) return 0;
    /* required and absent: name the first source pattern we would have used */
    char want[MC_NAME_MAX], mlx[MC_NAME_MAX];
    const char *pat = NULL;
    for (size_t i = 0; i < n && !pat; i++) pat = is_gguf ? rules[i].gguf : rules[i].hf;
    if (!pat) pat = r0->mlx;
    mc_fmt_name(want, sizeof want, pat, L, 0);
    mc_fmt_name(mlx, sizeof mlx, r0->mlx, L, 0);
    return mc_error_set(err, MC_ERR_NOTFOUND, "%s: missing tensor %s (for %s of architecture %s)", m->input_path,
                        want, mlx, cv->arch->name);
}

int mc_apply_rules(mc_cv *cv, mc_error *err)
{
    const mc_arch *a = cv->arch;
    size_t cap = 0;
    int rc;
    /* globals without {L} first: embeddings, final norm, lm_head */
    for (int pass = 0; pass < 2; pass++) {
        int lmax = pass == 0 ? 1 : cv->m->n_layers;
        for (int L = 0; L < lmax; L++) {
            unsigned kinds = pass == 1 ? cv->kinds[L] : 0;
            for (size_t i = 0; i < a->n_rules; ) {
                size_t j = i + 1;
                while (j < a->n_rules && strcmp(a->rules[j].mlx, a->rules[i].mlx) == 0) j++;
                int layered = mc_has_tok(a->rules[i].mlx, 'L');
                if (layered == pass) {
                    if ((rc = mc_apply_group(cv, &a->rules[i], j - i, pass ? L : -1, kinds, &cap, err))) return rc;
                }
                i = j;
            }
        }
    }
    return 0;
}

/* --keep-names: every source tensor under its own name. */
int mc_keep_names(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    size_t cap = 0;
    uint64_t n = m->gguf ? m->gguf->n_tensors : m->st->n_tensors;
    for (uint64_t i = 0; i < n; i++) {
        mc_found f;
        memset(&f, 0, sizeof f);
        const mc_gguf_tensor *g = m->gguf ? &m->gguf->tensors[i] : NULL;
        struct mc_st_name sn;
        mc_st_src src;
        f.n = 1;
        if (g) f.g = &g;
        else {
            sn.norm = m->st->tensors[i].name;
            sn.t = &m->st->tensors[i];
            sn.used = 0;
            mc_st_encode(cv, sn.norm, &sn, &src);
            f.s = &src;
        }
        mc_rule r;
        memset(&r, 0, sizeof r);
        r.mlx = g ? g->name.s : m->st->tensors[i].name;
        r.role = MC_ROLE_PINNED;
        int rc = mc_make_tensor(cv, &r, -1, MC_X_NONE, &f, &cap, err);
        if (rc) return rc;
        mc_mtensor *t = &m->tensors[m->n_tensors - 1];
        const mc_type_traits *tr = mc_type_get(t->src_type);
        t->quantizable = (t->n_dims == 2 && tr && (tr->is_float || tr->is_quant)) ? 1 : 0;
    }
    return 0;
}
