/* mc_convert: apply an architecture table to a GGUF or safetensors source
 * and read the resulting mlx-lm tensors by row range. */
#include "mc_convert.h"
#include "mc_convert_int.h"
#include "mc_tokenizer.h"
#include "mc_types.h"
#include "mc_dequant.h"
#include "mc_io.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_NAME_MAX 512
#define MC_MAX_NOTICES 64

/* Model-private state (m->impl). */
typedef struct mc_model_priv {
    uint64_t f8_br, f8_bc; /* F8 block size from quantization_config, 0 = infer */
} mc_model_priv;

/* ---------------------------------------------------------------- names */

/* Expand "{L}" and "{E}" in pat. Returns 0, or non-zero when it does not fit. */
static int mc_fmt_name(char *buf, size_t cap, const char *pat, int layer, int expert)
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

static int mc_has_tok(const char *pat, char c)
{
    char tok[4] = {'{', c, '}', 0};
    return pat && strstr(pat, tok) != NULL;
}

static char *mc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------- safetensors name index */

struct mc_st_name {
    char *norm;               /* normalized name */
    const mc_st_tensor *t;
    int used;
};

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

static struct mc_st_name *mc_idx_find(mc_cv *cv, const char *name)
{
    if (!cv->idx) return NULL;
    struct mc_st_name key;
    key.norm = (char *)name;
    return bsearch(&key, cv->idx, cv->n_idx, sizeof *cv->idx, mc_st_name_cmp);
}

/* -------------------------------------------------------------- notices */

static void mc_notice(mc_model *m, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void mc_notice(mc_model *m, const char *fmt, ...)
{
    if (m->n_notices >= MC_MAX_NOTICES) return;
    char buf[MC_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nn = realloc(m->notices, (m->n_notices + 1) * sizeof *nn);
    if (!nn) return;
    m->notices = nn;
    char *d = mc_strdup(buf);
    if (d) m->notices[m->n_notices++] = d;
}

void mc_cv_notice(mc_cv *cv, const char *fmt, ...)
{
    char buf[MC_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mc_notice(cv->m, "%s", buf);
}

/* ------------------------------------------------------ gguf metadata */

int mc_cv_gguf_u64(mc_cv *cv, const char *suffix, uint64_t *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", cv->m->arch, suffix);
    return mc_gguf_get_u64(cv->m->gguf, key, out);
}

int mc_cv_gguf_f64(mc_cv *cv, const char *suffix, double *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", cv->m->arch, suffix);
    return mc_gguf_get_f64(cv->m->gguf, key, out);
}

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

int mc_cv_drop_gguf_nextn(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    uint64_t nextn = 0;
    if (m->gguf && mc_cv_gguf_u64(cv, "nextn_predict_layers", &nextn) == 0 && nextn > 0) {
        if (nextn >= (uint64_t)m->n_layers)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: nextn_predict_layers %llu >= block_count %d", m->input_path,
                                (unsigned long long)nextn, m->n_layers);
        m->n_layers -= (int)nextn;
        mc_cv_notice(cv, "%s: %llu MTP (nextn) layer(s) from %d on dropped: mlx-lm does not load them",
                     m->input_path, (unsigned long long)nextn, m->n_layers);
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

/* ---------------------------------------------------------- registry */

static char mc_supported_buf[1024];

static void mc_supported_init(void)
{
    size_t o = 0;
    mc_supported_buf[0] = '\0';
    for (size_t i = 0; i < mc_arch_count; i++) {
        int n = snprintf(mc_supported_buf + o, sizeof mc_supported_buf - o, "%s%s", i ? ", " : "",
                         mc_arch_list[i]->name);
        if (n < 0 || (size_t)n >= sizeof mc_supported_buf - o) break;
        o += (size_t)n;
    }
}

const char *mc_convert_supported_archs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mc_supported_init);
    return mc_supported_buf;
}

static int mc_word_in(const char *list, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = list; p && *p; ) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && strncmp(p, w, l) == 0) return 1;
        p += l;
    }
    return 0;
}

static const mc_arch *mc_arch_for_gguf(const char *ga, int has_experts)
{
    for (size_t i = 0; i < mc_arch_count; i++) {
        const mc_arch *a = mc_arch_list[i];
        if (!a->gguf_arch || strcmp(a->gguf_arch, ga) != 0) continue;
        if (a->gguf_moe >= 0 && a->gguf_moe != has_experts) continue;
        return a;
    }
    return NULL;
}

static const mc_arch *mc_arch_for_hf(const char *mt)
{
    for (size_t i = 0; i < mc_arch_count; i++)
        if (mc_word_in(mc_arch_list[i]->hf_types, mt)) return mc_arch_list[i];
    return NULL;
}

/* ------------------------------------------------------------ tensors */

static void mc_recipe_free(mc_recipe *r)
{
    if (!r) return;
    free(r->parts);
    free(r->col_map);
    free(r);
}

static int mc_push_tensor(mc_model *m, size_t *cap, mc_mtensor **out, mc_error *err)
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

/* Rows of a source tensor and its row length. */
static void mc_part_geom(const mc_part *p, uint64_t *rows, uint64_t *row_len, int *type)
{
    if (p->g) {
        *row_len = p->g->ne[0] ? p->g->ne[0] : 1;
        *rows = p->g->nelements / *row_len;
        *type = p->g->type;
    } else {
        *row_len = p->s->n_dims ? p->s->shape[p->s->n_dims - 1] : 1;
        if (*row_len == 0) *row_len = 1;
        *rows = p->s->nelements / *row_len;
        *type = p->s->type;
    }
}

static const char *mc_part_name(const mc_part *p)
{
    return p->g ? p->g->name.s : p->s->name;
}

/* A found source for one alternative. */
typedef struct mc_found {
    size_t n;                      /* 1, or E for per-expert stacks */
    const mc_gguf_tensor **g;
    struct mc_st_name **s;
    int stacked;                   /* {E} pattern: new leading axis */
} mc_found;

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
    int present = m->gguf ? mc_gguf_find_tensor(m->gguf, name) != NULL : mc_idx_find(cv, name) != NULL;
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
        if (m->gguf) f->g[e] = mc_gguf_find_tensor(m->gguf, name);
        else f->s[e] = mc_idx_find(cv, name);
        if (m->gguf ? !f->g[e] : !f->s[e]) {
            mc_error_set(err, MC_ERR_NOTFOUND, "%s: missing tensor %s (expert %zu of %zu; expert 0 is present)",
                         m->input_path, name, e, n);
            mc_found_free(f);
            return -1;
        }
    }
    return 1;
}

static int mc_is_valuemap(int x)
{
    return x == MC_X_SUB1 || x == MC_X_ADD1 || x == MC_X_LOG_NEG;
}

static int mc_is_rowsel(int x)
{
    return !mc_is_valuemap(x);
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

    rec = calloc(1, sizeof *rec);
    if (rec) rec->parts = calloc(f->n, sizeof *rec->parts);
    if (!rec || !rec->parts) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path); goto done; }
    rec->n_parts = f->n;
    rec->x = (uint8_t)x;
    rec->fixed_src_type = -1;

    /* source geometry; all parts must agree */
    uint64_t src_rows = 0, row_len = 0;
    uint32_t nd = 0;
    uint64_t shp[MC_MT_MAX_DIMS] = {0};
    for (size_t i = 0; i < f->n; i++) {
        mc_part *p = &rec->parts[i];
        uint64_t rows, rl;
        int ty;
        uint32_t pnd;
        uint64_t pshp[MC_MT_MAX_DIMS] = {0};
        if (f->g) {
            p->g = f->g[i];
            pnd = p->g->n_dims ? p->g->n_dims : 1;
            if (pnd > MC_MT_MAX_DIMS - (f->stacked ? 1u : 0u)) {
                rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s has %u dims", m->input_path, p->g->name.s, pnd);
                goto done;
            }
            for (uint32_t d = 0; d < pnd; d++) pshp[d] = p->g->ne[pnd - 1 - d];
        } else {
            p->s = f->s[i]->t;
            f->s[i]->used = 1;
            pnd = p->s->n_dims;
            if (pnd > MC_MT_MAX_DIMS - (f->stacked ? 1u : 0u)) {
                rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s has %u dims", m->input_path, p->s->name, pnd);
                goto done;
            }
            if (pnd == 0) { pnd = 1; pshp[0] = 1; }
            else for (uint32_t d = 0; d < pnd; d++) pshp[d] = p->s->shape[d];
            /* F8 block scales beside the weight */
            if (p->s->type == MC_T_F8_E4M3 || p->s->type == MC_T_F8_E5M2) {
                char sn[MC_NAME_MAX];
                snprintf(sn, sizeof sn, "%s_scale_inv", f->s[i]->norm);
                struct mc_st_name *sc = mc_idx_find(cv, sn);
                if (sc) {
                    p->scale = sc->t;
                    sc->used = 1;
                }
            }
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
    if (nd == 1 && x != MC_X_NONE && mc_is_rowsel(x)) {
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
    uint64_t out_rows = src_rows;
    uint64_t q = cv->n_head * cv->head_dim, kv = cv->n_head_kv * cv->head_dim;
    if (x == MC_X_SPLIT_Q || x == MC_X_SPLIT_K || x == MC_X_SPLIT_V || x == MC_X_SPLIT_Q_ROPE ||
        x == MC_X_SPLIT_K_ROPE) {
        if (nd > 2 || f->n != 1 || src_rows != q + 2 * kv) {
            rc = mc_error_set(err, MC_ERR_FORMAT,
                              "%s: fused tensor %s has %llu rows, expected q %llu + k %llu + v %llu (heads %llu, kv heads %llu, head dim %llu)",
                              m->input_path, mc_part_name(&rec->parts[0]), (unsigned long long)src_rows,
                              (unsigned long long)q, (unsigned long long)kv, (unsigned long long)kv,
                              (unsigned long long)cv->n_head, (unsigned long long)cv->n_head_kv,
                              (unsigned long long)cv->head_dim);
            goto done;
        }
        if (x == MC_X_SPLIT_Q || x == MC_X_SPLIT_Q_ROPE) { rec->parts[0].row0 = 0; out_rows = q; }
        else if (x == MC_X_SPLIT_K || x == MC_X_SPLIT_K_ROPE) { rec->parts[0].row0 = q; out_rows = kv; }
        else { rec->parts[0].row0 = q + kv; out_rows = kv; }
        rec->parts[0].nrows = out_rows;
        shp[0] = out_rows;
        if (x == MC_X_SPLIT_Q_ROPE) rec->perm_heads = (uint32_t)cv->n_head;
        if (x == MC_X_SPLIT_K_ROPE) rec->perm_heads = (uint32_t)cv->n_head_kv;
    } else if (x == MC_X_HALF0 || x == MC_X_HALF1) {
        if (nd > 2 || f->n != 1 || src_rows % 2) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: fused tensor %s has %llu rows, not two equal halves",
                              m->input_path, mc_part_name(&rec->parts[0]), (unsigned long long)src_rows);
            goto done;
        }
        out_rows = src_rows / 2;
        rec->parts[0].row0 = x == MC_X_HALF0 ? 0 : out_rows;
        rec->parts[0].nrows = out_rows;
        shp[0] = out_rows;
    } else if (x == MC_X_ROPE_Q || x == MC_X_ROPE_K) {
        rec->perm_heads = (uint32_t)(x == MC_X_ROPE_Q ? cv->n_head : cv->n_head_kv);
    }
    if (rec->perm_heads) {
        /* 2D weight [heads*hd, in] or 1D bias [heads*hd] */
        uint64_t h = rec->perm_heads;
        uint64_t pelem = rec->parts[0].nrows;
        if (f->n != 1 || nd > 2 || h == 0 || pelem == 0 || pelem % h != 0 || (pelem / h) % 2 != 0 ||
            ((x == MC_X_ROPE_Q || x == MC_X_ROPE_K) && pelem != h * cv->head_dim)) {
            rc = mc_error_set(err, MC_ERR_FORMAT,
                              "%s: tensor %s: %llu rows, expected %llu heads of head dim %llu (even) for the RoPE permutation",
                              m->input_path, mc_part_name(&rec->parts[0]), (unsigned long long)pelem,
                              (unsigned long long)h, (unsigned long long)cv->head_dim);
            goto done;
        }
    }

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
    t->role = (mc_role)r->role;
    t->layer = L;
    t->src_type = rec->fixed_src_type;
    t->quantizable = (r->flags & MC_R_Q) ? 1 : 0;
    t->quant_bits = (r->flags & MC_R_Q8) ? 8 : 0;
    t->impl = rec;
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
        t->impl = rec;
    }
    return 1;
}

/* ------------------------------------------------------------ builders */

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
    } else {
        struct mc_st_name *sn = mc_idx_find(cv, name);
        if (!sn) return 0;
        sn->used = 1;
        p->s = sn->t;
        if (p->s->type == MC_T_F8_E4M3 || p->s->type == MC_T_F8_E5M2) {
            char scn[MC_NAME_MAX + 16];
            snprintf(scn, sizeof scn, "%s_scale_inv", sn->norm);
            struct mc_st_name *sc = mc_idx_find(cv, scn);
            if (sc) {
                p->scale = sc->t;
                sc->used = 1;
            }
        }
    }
    uint64_t rl;
    int ty;
    mc_part_geom(p, &p->nrows, &rl, &ty);
    return 1;
}

void mc_cv_source_shape(const mc_part *p, uint32_t *n_dims, uint64_t shape[MC_MT_MAX_DIMS])
{
    uint32_t nd = 0;
    memset(shape, 0, MC_MT_MAX_DIMS * sizeof shape[0]);
    if (p->g) {
        nd = p->g->n_dims ? p->g->n_dims : 1;
        if (nd > MC_MT_MAX_DIMS) nd = MC_MT_MAX_DIMS;
        for (uint32_t d = 0; d < nd; d++) shape[d] = p->g->ne[nd - 1 - d];
    } else if (p->s) {
        nd = p->s->n_dims;
        if (nd == 0) { nd = 1; shape[0] = 1; }
        else if (nd > MC_MT_MAX_DIMS) { /* fold the leading dims */
            uint64_t lead = 1;
            for (uint32_t d = 0; d + MC_MT_MAX_DIMS <= p->s->n_dims; d++) lead *= p->s->shape[d];
            shape[0] = lead;
            for (uint32_t d = 1; d < MC_MT_MAX_DIMS; d++) shape[d] = p->s->shape[p->s->n_dims - MC_MT_MAX_DIMS + d];
            nd = MC_MT_MAX_DIMS;
        } else {
            for (uint32_t d = 0; d < nd; d++) shape[d] = p->s->shape[d];
        }
    }
    *n_dims = nd;
}

const char *mc_cv_part_name(const mc_part *p)
{
    return mc_part_name(p);
}

int mc_build_part(mc_build *b, const mc_part *src, uint64_t row0, uint64_t nrows, uint64_t t_rows, mc_error *err)
{
    mc_recipe *r = b->rec;
    uint64_t rows, rl, end;
    int ty;
    const char *path = b->m->input_path;
    mc_part_geom(src, &rows, &rl, &ty);
    uint64_t span = t_rows ? t_rows : nrows;
    if (mc_add_u64(row0, span, &end) || end > rows || (t_rows && nrows != rl))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s (%llu rows of %llu): rows [%llu, +%llu)%s out of range",
                            path, mc_part_name(src), (unsigned long long)rows, (unsigned long long)rl,
                            (unsigned long long)row0, (unsigned long long)span, t_rows ? " transposed" : "");
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
    if (t_rows) r->has_t = 1;
    return 0;
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
    b.rec->x = b.x;
    b.rec->flat = b.flat;
    if ((rc = mc_push_tensor(m, cap, &t, err))) goto done;
    t->name = mc_strdup(name);
    if (!t->name) { m->n_tensors--; rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path); goto done; }
    t->n_dims = b.n_dims;
    memcpy(t->shape, b.shape, sizeof t->shape);
    t->role = (mc_role)r->role;
    t->layer = L;
    t->src_type = b.rec->fixed_src_type;
    if (b.x == MC_X_LOG_NEG) t->src_type = MC_T_F32; /* computed values */
    t->quantizable = (r->flags & MC_R_Q) ? 1 : 0;
    t->quant_bits = (r->flags & MC_R_Q8) ? 8 : 0;
    t->impl = b.rec;
    b.rec = NULL;
done:
    mc_recipe_free(b.rec);
    return rc;
}

enum { MC_LAYER_MOE = 1, MC_LAYER_MIXER = 2 };

/* Apply one group of alternative rules (same mlx name) for layer L. */
static int mc_apply_group(mc_cv *cv, const mc_rule *rules, size_t n, int L, int layer_kind, size_t *cap,
                          mc_error *err)
{
    mc_model *m = cv->m;
    const mc_rule *r0 = &rules[0];
    int layer_moe = (layer_kind & MC_LAYER_MOE) != 0, layer_mixer = (layer_kind & MC_LAYER_MIXER) != 0;
    if ((r0->flags & MC_R_MOE) && !layer_moe) return 0;
    if ((r0->flags & MC_R_DENSE) && layer_moe) return 0;
    if ((r0->flags & MC_R_MIXER) && !layer_mixer) return 0;
    if ((r0->flags & MC_R_ATTN) && layer_mixer) return 0;
    int is_gguf = m->gguf != NULL;
    if ((r0->flags & MC_R_NOTIED) && !is_gguf &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->config, "tie_word_embeddings")))
        return 0; /* sanitize: tied lm_head dropped */

    /* safetensors: the mlx name itself first, unless the group has HF
     * builders (they tell the HF form from mlx-lm's when names coincide,
     * e.g. qwen3_next conv1d and zero-centred norms) */
    int hf_built = 0;
    for (size_t i = 0; i < n; i++) hf_built |= rules[i].hx >= MC_X_BUILD;
    if (!is_gguf && !hf_built) {
        char name[MC_NAME_MAX];
        if (!mc_fmt_name(name, sizeof name, r0->mlx, L, 0) && mc_idx_find(cv, name)) {
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
            if (k >= cv->n_builders || !cv->builders[k])
                return mc_error_set(err, MC_ERR_ARG, "%s: rule %s names builder %zu, architecture %s has %zu",
                                    m->input_path, r->mlx, k, cv->arch->name, cv->n_builders);
            mc_build_fn bf = cv->builders[k];
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
            int pr = mc_make_passthrough(cv, r, L, f.s[0]->norm, cap, err);
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

static int mc_layer_has(mc_cv *cv, const char *gpat, const char *hpat, int L)
{
    char name[MC_NAME_MAX];
    mc_model *m = cv->m;
    const char *pat = m->gguf ? gpat : hpat;
    if (!pat || mc_fmt_name(name, sizeof name, pat, L, 0)) return 0;
    return m->gguf ? mc_gguf_find_tensor(m->gguf, name) != NULL : mc_idx_find(cv, name) != NULL;
}

static int mc_layer_kind(mc_cv *cv, int L)
{
    return (mc_layer_has(cv, cv->arch->moe_gguf, cv->arch->moe_hf, L) ? MC_LAYER_MOE : 0) |
           (mc_layer_has(cv, cv->mixer_gguf, cv->mixer_hf, L) ? MC_LAYER_MIXER : 0);
}

static int mc_apply_rules(mc_cv *cv, mc_error *err)
{
    const mc_arch *a = cv->arch;
    size_t cap = 0;
    int rc;
    /* globals without {L} first: embeddings, final norm, lm_head */
    for (int pass = 0; pass < 2; pass++) {
        int lmax = pass == 0 ? 1 : cv->m->n_layers;
        for (int L = 0; L < lmax; L++) {
            int moe = pass == 1 ? mc_layer_kind(cv, L) : 0;
            for (size_t i = 0; i < a->n_rules; ) {
                size_t j = i + 1;
                while (j < a->n_rules && strcmp(a->rules[j].mlx, a->rules[i].mlx) == 0) j++;
                int layered = mc_has_tok(a->rules[i].mlx, 'L');
                if (layered == pass) {
                    if ((rc = mc_apply_group(cv, &a->rules[i], j - i, pass ? L : -1, moe, &cap, err))) return rc;
                }
                i = j;
            }
        }
    }
    return 0;
}

/* --keep-names: every source tensor under its own name. */
static int mc_keep_names(mc_cv *cv, mc_error *err)
{
    mc_model *m = cv->m;
    size_t cap = 0;
    uint64_t n = m->gguf ? m->gguf->n_tensors : m->st->n_tensors;
    for (uint64_t i = 0; i < n; i++) {
        mc_found f;
        memset(&f, 0, sizeof f);
        const mc_gguf_tensor *g = m->gguf ? &m->gguf->tensors[i] : NULL;
        struct mc_st_name sn;
        struct mc_st_name *snp = &sn;
        f.n = 1;
        if (g) f.g = &g;
        else {
            sn.norm = m->st->tensors[i].name;
            sn.t = &m->st->tensors[i];
            sn.used = 0;
            f.s = &snp;
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

static int mc_build_config(mc_cv *cv, mc_error *err)
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

static int mc_build_tokenizer(mc_cv *cv, mc_error *err)
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

static int mc_is_gguf_file(const char *path)
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

static int mc_setup_gguf(mc_cv *cv, mc_error *err)
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
    cv->arch = mc_arch_for_gguf(ga, ec > 0);
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
    if (mc_cv_gguf_u64(cv, "attention.head_count_kv", &cv->n_head_kv)) cv->n_head_kv = cv->n_head;
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

static int mc_setup_st(mc_cv *cv, mc_error *err)
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
    cv->arch = mc_arch_for_hf(mt->valuestring);
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
    mc_cfg_int(m->config, "num_experts_per_tok", &v);
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

static void mc_unused_notices(mc_cv *cv)
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

int mc_convert_open(const char *input_path, const mc_convert_opts *opts, mc_model **out, mc_error *err)
{
    static const mc_convert_opts defaults = {0, 1};
    mc_cv cv;
    mc_model *m = NULL;
    int rc = 0;
    memset(&cv, 0, sizeof cv);
    if (!input_path || !out) return mc_error_set(err, MC_ERR_ARG, "mc_convert_open: NULL argument");
    *out = NULL;
    if (!opts) opts = &defaults;
    m = calloc(1, sizeof *m);
    if (!m) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    cv.m = m;
    cv.opts = opts;
    m->input_path = mc_strdup(input_path);
    m->impl = calloc(1, sizeof(mc_model_priv));
    if (!m->input_path || !m->impl) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto fail; }

    if (!mc_io_is_dir(input_path) && mc_is_gguf_file(input_path)) {
        m->kind = MC_SRC_GGUF;
        if ((rc = mc_gguf_open(input_path, &m->gguf, err))) goto fail;
        if ((rc = mc_setup_gguf(&cv, err))) goto fail;
    } else {
        m->kind = MC_SRC_SAFETENSORS;
        if ((rc = mc_st_open(input_path, &m->st, err))) goto fail;
        if ((rc = mc_setup_st(&cv, err))) goto fail;
    }
    if (opts->keep_names) {
        if ((rc = mc_keep_names(&cv, err))) goto fail;
        if (!m->config) {
            m->config = cJSON_CreateObject();
            if (!m->config || !cJSON_AddStringToObject(m->config, "model_type", m->arch)) {
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        m->model_type = mc_strdup(m->arch);
    } else {
        if (cv.arch->prepare && (rc = cv.arch->prepare(&cv, err))) goto fail;
        if ((rc = mc_apply_rules(&cv, err))) goto fail;
        if ((rc = mc_build_config(&cv, err))) goto fail;
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
        m->model_type = mc_strdup(cJSON_IsString(mt) ? mt->valuestring : cv.arch->model_type);
        mc_unused_notices(&cv);
    }
    if (!m->model_type) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto fail; }
    if ((rc = mc_build_tokenizer(&cv, err))) goto fail;
    for (size_t i = 0; i < cv.n_idx; i++) free(cv.idx[i].norm);
    free(cv.idx);
    *out = m;
    return 0;
fail:
    for (size_t i = 0; i < cv.n_idx; i++) free(cv.idx[i].norm);
    free(cv.idx);
    mc_convert_close(m);
    return rc ? rc : MC_ERR_FORMAT;
}

void mc_convert_close(mc_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        mc_recipe_free(m->tensors[i].impl);
    }
    free(m->tensors);
    for (size_t i = 0; i < m->n_notices; i++) free(m->notices[i]);
    free(m->notices);
    if (m->gguf) mc_gguf_close(m->gguf);
    if (m->st) mc_st_close(m->st);
    cJSON_Delete(m->config);
    cJSON_Delete(m->tokenizer);
    free(m->arch);
    free(m->model_type);
    free(m->input_path);
    free(m->impl);
    free(m);
}

const mc_mtensor *mc_model_find(const mc_model *m, const char *name)
{
    if (!m || !name) return NULL;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

/* -------------------------------------------------------------- reads */

static int mc_part_read(const mc_model *m, const mc_part *p, uint64_t off, void *buf, size_t n, mc_error *err)
{
    return p->g ? mc_gguf_read(m->gguf, p->g, off, buf, n, err) : mc_st_read(m->st, p->s, off, buf, n, err);
}

static uint64_t mc_out_rows(const mc_recipe *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->n_parts; i++) n += r->parts[i].nrows;
    return n;
}

/* Source row (within the part's selection) for local output row lr. */
static uint64_t mc_map_row(const mc_recipe *r, const mc_part *p, uint64_t lr)
{
    if (!r->perm_heads) return lr;
    uint64_t hd = p->nrows / r->perm_heads, half = hd / 2;
    uint64_t h = lr / hd, rem = lr % hd;
    uint64_t j = rem / half, i = rem % half;
    return h * hd + 2 * i + j;
}

static uint64_t mc_src_row_bytes(const mc_part *p, int *type)
{
    uint64_t rows, rl, nb = 0;
    mc_part_geom(p, &rows, &rl, type);
    if (mc_type_nbytes(*type, rl, &nb)) return 0;
    return nb;
}

/* For each segment of output rows [row0, row0+nrows) that falls in one part,
 * call fn with the raw bytes of those rows (selected and ordered). */
typedef int (*mc_seg_fn)(void *ctx, const mc_part *p, int type, const unsigned char *raw, uint64_t row_bytes,
                         const uint64_t *src_rows, uint64_t out_row, uint64_t n, mc_error *err);

static int mc_for_segments(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, mc_seg_fn fn,
                           void *ctx, mc_error *err)
{
    const mc_recipe *r = t->impl;
    uint64_t total = mc_out_rows(r), end;
    if (mc_add_u64(row0, nrows, &end) || end > total)
        return mc_error_set(err, MC_ERR_ARG, "%s: rows [%llu, +%llu) outside tensor %s of %llu rows", m->input_path,
                            (unsigned long long)row0, (unsigned long long)nrows, t->name,
                            (unsigned long long)total);
    uint64_t base = 0;
    int rc = 0;
    unsigned char *span = NULL, *sel = NULL;
    uint64_t *srcs = NULL;
    for (size_t pi = 0; pi < r->n_parts && row0 < end; pi++) {
        const mc_part *p = &r->parts[pi];
        uint64_t pend = base + p->nrows;
        if (row0 >= pend) { base = pend; continue; }
        uint64_t a = row0 - base, b = (end < pend ? end : pend) - base; /* local [a, b) */
        uint64_t n = b - a;
        int type;
        uint64_t rb;
        rb = mc_src_row_bytes(p, &type);
        if (r->elem_rows) {
            /* 1D tensor under a row selection: rows are single elements */
            const mc_type_traits *tr = mc_type_get(type);
            if (!tr || tr->blck != 1) {
                rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s: permuted bias of block type %s",
                                  m->input_path, t->name, mc_type_name(type));
                goto done;
            }
            rb = tr->type_size;
        }
        if (rb == 0) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s: source row size invalid for type %s",
                              m->input_path, mc_part_name(p), mc_type_name(type));
            goto done;
        }
        uint64_t lo = UINT64_MAX, hi = 0;
        free(srcs);
        srcs = malloc(n * sizeof *srcs);
        if (!srcs) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory reading %s", t->name); goto done; }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t s = mc_map_row(r, p, a + i);
            srcs[i] = s;
            if (s < lo) lo = s;
            if (s > hi) hi = s;
        }
        uint64_t span_rows = hi - lo + 1, span_bytes, sel_bytes;
        if (mc_mul_u64(span_rows, rb, &span_bytes) || mc_mul_u64(n, rb, &sel_bytes) || span_bytes > SIZE_MAX) {
            rc = mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor %s: read size overflows", m->input_path, t->name);
            goto done;
        }
        free(span);
        span = malloc(span_bytes ? (size_t)span_bytes : 1);
        if (!span) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory reading %s", t->name); goto done; }
        if ((rc = mc_part_read(m, p, (p->row0 + lo) * rb, span, (size_t)span_bytes, err))) goto done;
        const unsigned char *raw = span;
        int contiguous = 1;
        for (uint64_t i = 0; i < n && contiguous; i++) contiguous = srcs[i] == lo + i;
        if (!contiguous) {
            free(sel);
            sel = malloc(sel_bytes ? (size_t)sel_bytes : 1);
            if (!sel) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory reading %s", t->name); goto done; }
            for (uint64_t i = 0; i < n; i++) memcpy(sel + i * rb, span + (srcs[i] - lo) * rb, (size_t)rb);
            raw = sel;
        }
        for (uint64_t i = 0; i < n; i++) srcs[i] += p->row0;
        if ((rc = fn(ctx, p, type, raw, rb, srcs, base + a, n, err))) goto done;
        row0 = base + b;
        base = pend;
    }
done:
    free(span);
    free(sel);
    free(srcs);
    return rc;
}

/* Element-wise value maps (after decoding). */
static void mc_value_map(int x, float *v, uint64_t n)
{
    if (x == MC_X_SUB1)
        for (uint64_t i = 0; i < n; i++) v[i] -= 1.0f;
    else if (x == MC_X_ADD1)
        for (uint64_t i = 0; i < n; i++) v[i] += 1.0f;
    else if (x == MC_X_LOG_NEG)
        for (uint64_t i = 0; i < n; i++) v[i] = (float)log(-(double)v[i]);
}

typedef struct mc_f32_ctx {
    const mc_model *m;
    const mc_mtensor *t;
    float *dst;
    uint64_t first_row;
    uint64_t row_len;
} mc_f32_ctx;

/* F8 block scales: multiply row values by scale_inv[row / br][col / bc]. */
static int mc_apply_block_scale(const mc_model *m, const mc_part *p, const uint64_t *src_rows, uint64_t n,
                                float *dst, uint64_t row_len, mc_error *err)
{
    const mc_st_tensor *sc = p->scale;
    uint64_t rows, rl;
    int ty;
    mc_part sp;
    memset(&sp, 0, sizeof sp);
    sp.s = sc;
    mc_part_geom(&sp, &rows, &rl, &ty);
    uint64_t wrows, wrl;
    int wty;
    mc_part_geom(p, &wrows, &wrl, &wty);
    if (rows == 0 || rl == 0)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: scale tensor %s is empty", m->input_path, sc->name);
    /* block size: config.json quantization_config.weight_block_size, else
     * 128 x 128 (DeepSeek/Qwen FP8) when it tiles, else from the shapes */
    const mc_model_priv *pv = m->impl;
    uint64_t br = pv && pv->f8_br ? pv->f8_br : 128, bc = pv && pv->f8_bc ? pv->f8_bc : 128;
    if (!(pv && pv->f8_br) && ((wrows + br - 1) / br != rows || (wrl + bc - 1) / bc != rl)) {
        br = (wrows + rows - 1) / rows;
        bc = (wrl + rl - 1) / rl;
    }
    if ((wrows + br - 1) / br != rows || (wrl + bc - 1) / bc != rl)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: scale tensor %s shape %llux%llu does not tile weight %s %llux%llu",
                            m->input_path, sc->name, (unsigned long long)rows, (unsigned long long)rl, p->s->name,
                            (unsigned long long)wrows, (unsigned long long)wrl);
    uint64_t srb;
    if (mc_type_nbytes(ty, rl, &srb)) return mc_error_set(err, MC_ERR_FORMAT, "%s: scale type", sc->name);
    unsigned char *raw = malloc((size_t)srb);
    float *s = malloc((size_t)rl * sizeof *s);
    int rc = 0;
    uint64_t cur = UINT64_MAX;
    if (!raw || !s) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto done; }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t sr = src_rows[i] / br;
        if (sr != cur) {
            if ((rc = mc_st_read(m->st, sc, sr * srb, raw, (size_t)srb, err))) goto done;
            if ((rc = mc_dequant(ty, raw, s, (int64_t)rl, err))) goto done;
            cur = sr;
        }
        float *row = dst + i * row_len;
        for (uint64_t c = 0; c < row_len; c++) row[c] *= s[c / bc];
    }
done:
    free(raw);
    free(s);
    return rc;
}

static int mc_f32_seg(void *vctx, const mc_part *p, int type, const unsigned char *raw, uint64_t rb,
                      const uint64_t *src_rows, uint64_t out_row_unused, uint64_t n, mc_error *err)
{
    mc_f32_ctx *c = vctx;
    const mc_recipe *r = c->t->impl;
    (void)rb;
    (void)out_row_unused;
    uint64_t ne;
    if (mc_mul_u64(n, c->row_len, &ne) || ne > INT64_MAX)
        return mc_error_set(err, MC_ERR_OVERFLOW, "%s: row count overflows", c->t->name);
    int rc = mc_dequant(type, raw, c->dst, (int64_t)ne, err);
    if (rc) return mc_error_set(err, (mc_code)rc, "%s: tensor %s: cannot decode %s", c->m->input_path, c->t->name,
                                mc_type_name(type));
    if (p->scale && (rc = mc_apply_block_scale(c->m, p, src_rows, n, c->dst, c->row_len, err))) return rc;
    mc_value_map(r->x, c->dst, ne);
    c->dst += ne;
    return 0;
}

/* General reads: builder recipes with transposed parts, a column map or
 * flat (reshaped) rows. Recipe rows [q0, q0 + n) as f32 into out. */
static int mc_recipe_rows_f32(const mc_model *m, const mc_mtensor *t, uint64_t q0, uint64_t n, float *out,
                              mc_error *err)
{
    const mc_recipe *r = t->impl;
    uint64_t L = r->row_len, base = 0, end = q0 + n, origin = q0;
    unsigned char *raw = NULL;
    float *blk = NULL;
    uint64_t *srcs = NULL;
    int rc = 0;
    for (size_t pi = 0; pi < r->n_parts && q0 < end; pi++) {
        const mc_part *p = &r->parts[pi];
        uint64_t pend = base + p->nrows;
        if (q0 >= pend) { base = pend; continue; }
        uint64_t a = q0 - base, b = (end < pend ? end : pend) - base, k = b - a;
        int type;
        uint64_t rb = mc_src_row_bytes(p, &type), srows, srl;
        mc_part_geom(p, &srows, &srl, &type);
        uint64_t first = p->t_rows ? p->row0 : p->row0 + a, cnt = p->t_rows ? p->t_rows : k, nb, ne;
        if (rb == 0 || mc_mul_u64(cnt, rb, &nb) || mc_mul_u64(cnt, srl, &ne) || nb > SIZE_MAX || ne > INT64_MAX) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s: source rows of %s cannot be read", m->input_path,
                              t->name, mc_part_name(p));
            goto done;
        }
        free(raw);
        free(blk);
        free(srcs);
        raw = malloc(nb ? (size_t)nb : 1);
        blk = p->t_rows ? malloc((size_t)ne * sizeof *blk) : NULL;
        srcs = malloc((size_t)cnt * sizeof *srcs);
        if (!raw || !srcs || (p->t_rows && !blk)) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory reading %s", m->input_path, t->name);
            goto done;
        }
        float *dst = p->t_rows ? blk : out + (base + a - origin) * L;
        if ((rc = mc_part_read(m, p, first * rb, raw, (size_t)nb, err))) goto done;
        if ((rc = mc_dequant(type, raw, dst, (int64_t)ne, err))) {
            rc = mc_error_set(err, (mc_code)rc, "%s: tensor %s: cannot decode %s", m->input_path, t->name,
                              mc_type_name(type));
            goto done;
        }
        for (uint64_t i = 0; i < cnt; i++) srcs[i] = first + i;
        if (p->scale && (rc = mc_apply_block_scale(m, p, srcs, cnt, dst, srl, err))) goto done;
        if (p->t_rows) /* output row a+i is column a+i of the block */
            for (uint64_t i = 0; i < k; i++) {
                float *o = out + (base + a + i - origin) * L;
                for (uint64_t j = 0; j < p->t_rows; j++) o[j] = blk[j * srl + a + i];
            }
        q0 = base + b;
        base = pend;
    }
    mc_value_map(r->x, out, n * L);
    if (r->col_map) {
        float *tmp = malloc((size_t)L * sizeof *tmp);
        if (!tmp) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path); goto done; }
        for (uint64_t i = 0; i < n; i++) {
            float *row = out + i * L;
            memcpy(tmp, row, (size_t)L * sizeof *tmp);
            for (uint64_t j = 0; j < L; j++) row[j] = tmp[r->col_map[j]];
        }
        free(tmp);
    }
done:
    free(raw);
    free(blk);
    free(srcs);
    return rc;
}

/* Output rows of t (rows of its last dimension) through the recipe rows. */
static int mc_read_general(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, float *dst,
                           mc_error *err)
{
    const mc_recipe *r = t->impl;
    uint64_t L = r->row_len, oL = r->flat ? (t->n_dims ? t->shape[t->n_dims - 1] : 1) : L;
    uint64_t total_el = 0, e0, e1 = 0, end;
    if (L == 0 || oL == 0 || mc_mul_u64(mc_out_rows(r), L, &total_el) || mc_add_u64(row0, nrows, &end) ||
        mc_mul_u64(end, oL, &e1) || e1 > total_el)
        return mc_error_set(err, MC_ERR_ARG, "%s: rows [%llu, +%llu) outside tensor %s of %llu rows", m->input_path,
                            (unsigned long long)row0, (unsigned long long)nrows, t->name,
                            (unsigned long long)(oL ? total_el / oL : 0));
    e0 = row0 * oL;
    if (nrows == 0) return 0;
    uint64_t q0 = e0 / L, q1 = (e1 + L - 1) / L;
    if (e0 % L == 0 && e1 % L == 0) return mc_recipe_rows_f32(m, t, q0, q1 - q0, dst, err);
    float *tmp = malloc((size_t)((q1 - q0) * L) * sizeof *tmp);
    if (!tmp) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory reading %s", m->input_path, t->name);
    int rc = mc_recipe_rows_f32(m, t, q0, q1 - q0, tmp, err);
    if (!rc) memcpy(dst, tmp + (e0 - q0 * L), (size_t)(e1 - e0) * sizeof *dst);
    free(tmp);
    return rc;
}

int mc_model_read_f32(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, float *dst,
                      mc_error *err)
{
    if (!m || !t || !t->impl || (!dst && nrows))
        return mc_error_set(err, MC_ERR_ARG, "mc_model_read_f32: NULL argument");
    const mc_recipe *r = t->impl;
    if (t->passthrough)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s is MLX-quantized: read it raw", m->input_path,
                            t->name);
    if (r->col_map || r->flat || r->has_t) return mc_read_general(m, t, row0, nrows, dst, err);
    mc_f32_ctx c = {m, t, dst, row0, r->row_len};
    if (r->elem_rows) {
        /* 1D under a row selection: the tensor is one row; rows here are elements */
        uint64_t n = mc_out_rows(r);
        if (row0 != 0 || nrows != 1)
            return mc_error_set(err, MC_ERR_ARG, "%s: tensor %s has 1 row", m->input_path, t->name);
        return mc_for_segments(m, t, 0, n, mc_f32_seg, &c, err);
    }
    return mc_for_segments(m, t, row0, nrows, mc_f32_seg, &c, err);
}

typedef struct mc_blk_ctx {
    unsigned char *dst;
    size_t left;
    int type;
} mc_blk_ctx;

static int mc_blk_seg(void *vctx, const mc_part *p, int type, const unsigned char *raw, uint64_t rb,
                      const uint64_t *src_rows, uint64_t out_row_unused, uint64_t n, mc_error *err)
{
    mc_blk_ctx *c = vctx;
    (void)p;
    (void)src_rows;
    (void)out_row_unused;
    uint64_t nb = n * rb;
    if (c->type >= 0 && c->type != type)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "rows span source tensors of types %s and %s",
                            mc_type_name(c->type), mc_type_name(type));
    if (nb > c->left) return mc_error_set(err, MC_ERR_ARG, "mc_model_read_blocks: buffer too small");
    c->type = type;
    memcpy(c->dst, raw, (size_t)nb);
    c->dst += nb;
    c->left -= (size_t)nb;
    return 0;
}

int mc_model_read_blocks(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, void *dst,
                         size_t cap, int *type, mc_error *err)
{
    if (!m || !t || !t->impl || !type || (!dst && nrows))
        return mc_error_set(err, MC_ERR_ARG, "mc_model_read_blocks: NULL argument");
    const mc_recipe *r = t->impl;
    if (t->passthrough || mc_is_valuemap(r->x) || r->elem_rows || r->n_parts == 0 || r->col_map || r->flat ||
        r->has_t)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s is not a plain row selection", m->input_path,
                            t->name);
    for (size_t i = 0; i < r->n_parts; i++)
        if (!r->parts[i].g)
            return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s does not come from GGUF blocks",
                                m->input_path, t->name);
    mc_blk_ctx c = {dst, cap, -1};
    int rc = mc_for_segments(m, t, row0, nrows, mc_blk_seg, &c, err);
    if (rc == 0) *type = c.type >= 0 ? c.type : r->fixed_src_type;
    return rc;
}

int mc_model_read_raw(const mc_model *m, const mc_mtensor *t, uint64_t off, void *dst, size_t n, mc_error *err)
{
    if (!m || !t || !t->impl || (!dst && n)) return mc_error_set(err, MC_ERR_ARG, "mc_model_read_raw: NULL argument");
    const mc_recipe *r = t->impl;
    if (!t->passthrough)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor %s is not a passthrough tensor", m->input_path,
                            t->name);
    unsigned char *d = dst;
    uint64_t base = 0, end;
    if (mc_add_u64(off, n, &end)) return mc_error_set(err, MC_ERR_OVERFLOW, "read range overflows");
    for (size_t i = 0; i < r->n_parts && n; i++) {
        const mc_part *p = &r->parts[i];
        uint64_t pb = p->g ? p->g->nbytes : p->s->nbytes;
        if (off < base + pb) {
            uint64_t lo = off - base, take = base + pb - off;
            if (take > n) take = n;
            int rc = mc_part_read(m, p, lo, d, (size_t)take, err);
            if (rc) return rc;
            d += take;
            off += take;
            n -= (size_t)take;
        }
        base += pb;
    }
    if (n) return mc_error_set(err, MC_ERR_ARG, "%s: raw read past the end of tensor %s (%llu bytes)", m->input_path,
                               t->name, (unsigned long long)base);
    return 0;
}
