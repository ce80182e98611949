/* mc_convert_read: the row-reading pipeline. Output rows of a recipe as
 * f32 (segments of source rows read and finished through the parts'
 * encodings, row selections, value maps, transposed parts, column maps,
 * flat rows), as raw GGML blocks (the lossless path) or as raw bytes (MLX
 * passthrough). */
#include "mc_convert.h"
#include "mc_convert_priv.h"
#include "mc_types.h"
#include "mc_dequant.h"

#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------- reads */

static uint64_t mc_out_rows(const mc_recipe *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->n_parts; i++) n += r->parts[i].nrows;
    return n;
}

/* Source row (within the part's selection) for local output row lr. */
static uint64_t mc_map_row(const mc_recipe *r, const mc_part *p, uint64_t lr)
{
    return r->rows_x ? mc_xforms[r->rows_x].row(r, p, lr) : lr;
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
        if ((rc = mc_part_rows(m, p, p->row0 + lo, span_rows, rb, span, err))) goto done;
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

/* Element-wise value map x (after decoding). */
static void mc_value_map(int x, float *v, uint64_t n)
{
    if (mc_xforms[x].values) mc_xforms[x].values(v, n);
}

typedef struct mc_f32_ctx {
    const mc_model *m;
    const mc_mtensor *t;
    float *dst;
    uint64_t first_row;
    uint64_t row_len;
} mc_f32_ctx;

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
    if (p->enc->finish && (rc = p->enc->finish(c->m, p, src_rows, n, c->dst, c->row_len, err))) return rc;
    mc_value_map(r->values_x, c->dst, ne);
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
        if ((rc = mc_part_rows(m, p, first, cnt, rb, raw, err))) goto done;
        if ((rc = mc_dequant(type, raw, dst, (int64_t)ne, err))) {
            rc = mc_error_set(err, (mc_code)rc, "%s: tensor %s: cannot decode %s", m->input_path, t->name,
                              mc_type_name(type));
            goto done;
        }
        for (uint64_t i = 0; i < cnt; i++) srcs[i] = first + i;
        if (p->enc->finish && (rc = p->enc->finish(m, p, srcs, cnt, dst, srl, err))) goto done;
        if (p->t_rows) { /* output row a+i is column t_col0 + (a+i) * t_step of the block */
            uint64_t step = p->t_step ? p->t_step : 1;
            for (uint64_t i = 0; i < k; i++) {
                float *o = out + (base + a + i - origin) * L;
                uint64_t col = p->t_col0 + (a + i) * step;
                for (uint64_t j = 0; j < p->t_rows; j++) o[j] = blk[j * srl + col];
            }
        }
        q0 = base + b;
        base = pend;
    }
    mc_value_map(r->values_x, out, n * L);
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
    if (t->passthrough || !mc_recipe_block_rows(r))
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: tensor %s is not whole rows of source blocks taken as they are", m->input_path,
                            t->name);
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
