/* mc_convert_encoding: source encodings (how stored bytes become rows of
 * values) and the geometry of a source piece. GGUF tensors are rows of a
 * GGML type; safetensors tensors are looked up through the encodings in
 * order: F8 weights with block scales beside them, else the plain tensor.
 * docs/CONVERT.md ("Source encodings") says how to add one. */
#include "mc_convert_priv.h"
#include "mc_types.h"
#include "mc_dequant.h"
#include "mc_repack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ geometry */

void mc_part_geom(const mc_part *p, uint64_t *rows, uint64_t *row_len, int *type)
{
    if (p->enc && p->enc->shape) {
        uint32_t nd;
        uint64_t shp[MC_MT_MAX_DIMS];
        p->enc->shape(p, &nd, shp);
        *row_len = nd && shp[nd - 1] ? shp[nd - 1] : 1;
        *rows = 1;
        for (uint32_t d = 0; d + 1 < nd; d++) *rows *= shp[d];
        *type = p->enc->type(p);
    } else if (p->g) {
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

uint32_t mc_part_dims(const mc_part *p, uint64_t shape[MC_MT_MAX_DIMS])
{
    uint32_t nd;
    memset(shape, 0, MC_MT_MAX_DIMS * sizeof shape[0]);
    if (p->enc && p->enc->shape) {
        p->enc->shape(p, &nd, shape);
        return nd;
    }
    if (p->g) {
        nd = p->g->n_dims ? p->g->n_dims : 1;
        for (uint32_t d = 0; d < nd && nd <= MC_MT_MAX_DIMS; d++) shape[d] = p->g->ne[nd - 1 - d];
        return nd;
    }
    nd = p->s->n_dims;
    if (nd == 0) {
        shape[0] = 1;
        return 1;
    }
    for (uint32_t d = 0; d < nd && nd <= MC_MT_MAX_DIMS; d++) shape[d] = p->s->shape[d];
    return nd;
}

void mc_cv_source_shape(const mc_part *p, uint32_t *n_dims, uint64_t shape[MC_MT_MAX_DIMS])
{
    uint32_t nd = 0;
    memset(shape, 0, MC_MT_MAX_DIMS * sizeof shape[0]);
    if (p->enc && p->enc->shape) {
        p->enc->shape(p, &nd, shape);
    } else if (p->g) {
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

const char *mc_part_name(const mc_part *p)
{
    return p->g ? p->g->name.s : p->s->name;
}

const char *mc_cv_part_name(const mc_part *p)
{
    return mc_part_name(p);
}

/* ---------------------------------------------------------------- reads */

int mc_part_read(const mc_model *m, const mc_part *p, uint64_t off, void *buf, size_t n, mc_error *err)
{
    return p->g ? mc_gguf_read(m->gguf, p->g, off, buf, n, err) : mc_st_read(m->st, p->s, off, buf, n, err);
}

int mc_part_rows(const mc_model *m, const mc_part *p, uint64_t row, uint64_t n, uint64_t row_bytes, void *dst,
                 mc_error *err)
{
    if (p->enc && p->enc->rows) return p->enc->rows(m, p, row, n, row_bytes, dst, err);
    return mc_part_read(m, p, row * row_bytes, dst, (size_t)(n * row_bytes), err);
}

/* ----------------------------------------------------- F8 block scales */

static int mc_f8_match(const mc_st_tensor *data, const mc_st_tensor *const *aux)
{
    (void)aux;
    return data->type == MC_T_F8_E4M3 || data->type == MC_T_F8_E5M2;
}

/* Multiply row values by scale_inv[row / br][col / bc]. */
static int mc_f8_finish(const mc_model *m, const mc_part *p, const uint64_t *src_rows, uint64_t n, float *dst,
                        uint64_t row_len, mc_error *err)
{
    const mc_st_tensor *sc = p->aux[0];
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

/* ------------------------------------------- gpt-oss hub MXFP4 blocks */

/* <name>_blocks U8 [..., R, G, 16] and <name>_scales U8 [..., R, G] (the
 * transformers / OpenAI hub form of gpt-oss's experts): logical rows
 * [..., R, G * 32] of MXFP4, one GGML block (scale byte, 16 code bytes)
 * per group; lossless. */
static int mc_mxb_match(const mc_st_tensor *data, const mc_st_tensor *const *aux)
{
    return data->type == MC_T_U8 && aux[0] && aux[0]->type == MC_T_U8;
}

/* t's shape as "d0,d1,..." in buf (cap bytes; cut where it would not fit). */
static void mc_dims_str(const mc_st_tensor *t, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (uint32_t k = 0; t && k < t->n_dims && o < cap; k++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", k ? "," : "", (unsigned long long)t->shape[k]);
}

/* The shapes must pair up: blocks [..., G, 16], scales [..., G], the same
 * leading dims. 0, or MC_ERR_FORMAT naming both tensors and shapes. */
int mc_enc_mxfp4_check(const char *path, const mc_part *p, mc_error *err)
{
    const mc_st_tensor *d = p->s, *sc = p->aux[0];
    int ok = d && sc && d->type == MC_T_U8 && sc->type == MC_T_U8 && d->n_dims >= 3 && d->n_dims <= MC_MT_MAX_DIMS + 1 &&
             sc->n_dims + 1 == d->n_dims && d->shape[d->n_dims - 1] == 16;
    for (uint32_t k = 0; ok && k < sc->n_dims; k++) ok = sc->shape[k] == d->shape[k] && d->shape[k] > 0;
    if (ok) return 0;
    char a[96], b[96];
    mc_dims_str(d, a, sizeof a);
    mc_dims_str(sc, b, sizeof b);
    return mc_error_set(err, MC_ERR_FORMAT,
                        "%s: MXFP4 tensor %s [%s] %s and its scales %s [%s] %s do not pair up (expected U8 blocks [..., "
                        "G, 16] and U8 scales [..., G])",
                        path, d ? d->name : "?", a, d ? mc_type_name(d->type) : "?", sc ? sc->name : "?", b,
                        sc ? mc_type_name(sc->type) : "?");
}

static void mc_mxb_shape(const mc_part *p, uint32_t *n_dims, uint64_t shape[MC_MT_MAX_DIMS])
{
    const mc_st_tensor *d = p->s;
    uint32_t nd = d->n_dims >= 3 && d->n_dims <= MC_MT_MAX_DIMS + 1 ? d->n_dims - 1 : 0;
    memset(shape, 0, MC_MT_MAX_DIMS * sizeof shape[0]);
    for (uint32_t k = 0; k + 1 < nd; k++) shape[k] = d->shape[k];
    if (nd) shape[nd - 1] = d->shape[nd - 1] * 32; /* G groups of 32 */
    if (nd == 0) { nd = 1; shape[0] = 0; } /* refused by mc_enc_mxfp4_check / rows */
    *n_dims = nd;
}

static int mc_mxb_type(const mc_part *p)
{
    (void)p;
    return MC_T_MXFP4;
}

static int mc_mxb_rows(const mc_model *m, const mc_part *p, uint64_t row, uint64_t n, uint64_t row_bytes, void *dst,
                       mc_error *err)
{
    int rc = mc_enc_mxfp4_check(m->input_path, p, err);
    if (rc) return rc;
    const mc_st_tensor *d = p->s, *sc = p->aux[0];
    uint64_t G = d->shape[d->n_dims - 2], rows = sc->nelements / G, ng, nb, end;
    if (G == 0 || row_bytes != G * 17 || mc_add_u64(row, n, &end) || end > rows || mc_mul_u64(n, G, &ng) ||
        mc_mul_u64(ng, 16, &nb) || nb > SIZE_MAX || d->nbytes != sc->nbytes * 16)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: MXFP4 tensor %s: rows [%llu, +%llu) of %llu (groups %llu) out of range",
                            m->input_path, d->name, (unsigned long long)row, (unsigned long long)n,
                            (unsigned long long)rows, (unsigned long long)G);
    unsigned char *codes = malloc(nb ? (size_t)nb : 1), *scales = malloc(ng ? (size_t)ng : 1);
    if (!codes || !scales) rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory reading %s", m->input_path, d->name);
    if (!rc) rc = mc_st_read(m->st, d, row * G * 16, codes, (size_t)nb, err);
    if (!rc) rc = mc_st_read(m->st, sc, row * G, scales, (size_t)ng, err);
    if (!rc) mc_quant_mxfp4_from_hub(codes, scales, ng, dst);
    free(codes);
    free(scales);
    return rc;
}

/* ------------------------------------------- compressed-tensors INT4 */

/* Kimi K2 / K2.5 (compressed-tensors "pack-quantized", symmetric int4,
 * group 32; config.json checked by mc_convert_source.c): <name>_packed I32
 * [..., R, C] (8 values per int32, element i in bits 4 * (i % 8), stored
 * q + 8), <name>_scale bf16 / f16 [..., R, C / 4] (one per 32 values),
 * <name>_shape I32 [nd] (the unpacked shape [..., R, 8 C]). The rows are
 * Q4_0-layout blocks with the scale as d (MC_T_Q4_0_BF16 for bf16 scales,
 * MC_T_Q4_0 for f16): pure nibble moves, so lossless, and already MLX's
 * affine form (scale d, bias -8d), so carried (repacked) by default. */
static int mc_ct_match(const mc_st_tensor *data, const mc_st_tensor *const *aux)
{
    (void)aux;
    return data->type == MC_T_I32 && data->n_dims >= 2;
}

static void mc_ct_shape(const mc_part *p, uint32_t *n_dims, uint64_t shape[MC_MT_MAX_DIMS])
{
    uint32_t nd = p->s->n_dims < MC_MT_MAX_DIMS ? p->s->n_dims : MC_MT_MAX_DIMS;
    memset(shape, 0, MC_MT_MAX_DIMS * sizeof shape[0]);
    for (uint32_t d = 0; d < nd; d++) shape[d] = p->s->shape[d];
    shape[nd - 1] *= 8;
    *n_dims = nd;
}

static int mc_ct_type(const mc_part *p)
{
    return p->aux[0] && p->aux[0]->type == MC_T_F16 ? MC_T_Q4_0 : MC_T_Q4_0_BF16;
}

/* The three tensors agree: scale [..., R, C / 4] in bf16 / f16, shape
 * I32 [nd] holding [..., R, 8 C]. */
static int mc_ct_check(const mc_model *m, const mc_part *p, mc_error *err)
{
    const mc_st_tensor *pk = p->s, *sc = p->aux[0], *sh = p->aux[1];
    uint32_t nd = pk->n_dims;
    uint64_t c = pk->shape[nd - 1];
    if (nd > MC_MT_MAX_DIMS || c == 0 || c % 4)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: INT4 tensor %s: %llu packed words per row, not a whole number of groups of 32 values",
                            m->input_path, pk->name, (unsigned long long)c);
    if (sc->type != MC_T_BF16 && sc->type != MC_T_F16)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: INT4 scale tensor %s is %s; mconv reads bf16 or f16 group scales",
                            m->input_path, sc->name, mc_type_name(sc->type));
    int ok = sc->n_dims == nd && sc->shape[nd - 1] == c / 4;
    for (uint32_t d = 0; ok && d + 1 < nd; d++) ok = sc->shape[d] == pk->shape[d];
    if (!ok)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: INT4 scale tensor %s does not have one scale per group of 32 values of %s "
                            "(%u dims, last %llu; want %u dims, last %llu)",
                            m->input_path, sc->name, pk->name, sc->n_dims,
                            (unsigned long long)(sc->n_dims ? sc->shape[sc->n_dims - 1] : 0), nd,
                            (unsigned long long)(c / 4));
    int32_t v[MC_MT_MAX_DIMS];
    if (sh->type != MC_T_I32 || sh->n_dims != 1 || sh->shape[0] != nd)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: INT4 shape tensor %s is not %u int32 values", m->input_path,
                            sh->name, nd);
    int rc = mc_st_read(m->st, sh, 0, v, (size_t)nd * 4, err);
    if (rc) return rc;
    for (uint32_t d = 0; d < nd; d++) {
        uint8_t *b = (uint8_t *)&v[d];
        int64_t x = (int32_t)((uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24));
        uint64_t want = d + 1 < nd ? pk->shape[d] : 8 * c;
        if (x < 0 || (uint64_t)x != want)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: INT4 tensor %s: %s says dim %u is %lld, the packed data holds %llu",
                                m->input_path, pk->name, sh->name, d, (long long)x, (unsigned long long)want);
    }
    return 0;
}

static int mc_ct_rows(const mc_model *m, const mc_part *p, uint64_t row, uint64_t n, uint64_t row_bytes, void *dst,
                      mc_error *err)
{
    int rc = mc_ct_check(m, p, err);
    if (rc) return rc;
    const mc_st_tensor *pk = p->s, *sc = p->aux[0];
    uint64_t c = pk->shape[pk->n_dims - 1], groups = c / 4, rows = pk->nelements / c;
    if (row_bytes != groups * 18 || row > rows || n > rows - row)
        return mc_error_set(err, MC_ERR_ARG, "%s: INT4 tensor %s: rows [%llu, +%llu) of %llu, %llu bytes each",
                            m->input_path, pk->name, (unsigned long long)row, (unsigned long long)n,
                            (unsigned long long)rows, (unsigned long long)row_bytes);
    /* a bounded chunk of rows at a time (about 1 MiB of packed words) */
    uint64_t per = (1u << 20) / (c * 4) ? (1u << 20) / (c * 4) : 1;
    if (per > n) per = n;
    uint8_t *pb = malloc(per ? (size_t)(per * c * 4) : 1), *sb = malloc(per ? (size_t)(per * groups * 2) : 1);
    if (!pb || !sb) rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", m->input_path);
    for (uint64_t r = 0; !rc && r < n; r += per) {
        uint64_t k = n - r < per ? n - r : per;
        rc = mc_st_read(m->st, pk, (row + r) * c * 4, pb, (size_t)(k * c * 4), err);
        if (!rc) rc = mc_st_read(m->st, sc, (row + r) * groups * 2, sb, (size_t)(k * groups * 2), err);
        if (!rc) mc_quant_ct_int4_blocks(pb, sb, k * groups, (uint8_t *)dst + r * row_bytes);
    }
    free(pb);
    free(sb);
    return rc;
}

/* -------------------------------------------------------------- the list */

/* GGUF tensors: rows of their GGML type, copied as blocks losslessly. */
const mc_encoding mc_enc_gguf = {.name = "gguf", .lossless = 1};

/* A safetensors tensor as it is (F16, BF16, F32, F8 without scales...). */
const mc_encoding mc_enc_st = {.name = "safetensors", .suffix = ""};

/* DeepSeek / Qwen FP8: F8_E4M3 / E5M2 weight with <name>_scale_inv
 * [ceil(rows / br), ceil(cols / bc)] beside it: w * scale_inv. */
static const mc_encoding mc_enc_f8_scale = {
    .name = "f8-block-scale", .suffix = "", .aux = {"_scale_inv"}, .match = mc_f8_match, .finish = mc_f8_finish,
};

/* gpt-oss hub MXFP4: <name>_blocks + <name>_scales (e8m0). */
static const mc_encoding mc_enc_mxfp4_blocks = {
    .name = "mxfp4-blocks", .suffix = "_blocks", .aux = {"_scales"}, .match = mc_mxb_match,
    .shape = mc_mxb_shape, .type = mc_mxb_type, .rows = mc_mxb_rows, .lossless = 1,
};

/* compressed-tensors INT4: <name>_packed + _scale + _shape (above). */
static const mc_encoding mc_enc_ct_int4 = {
    .name = "ct-int4", .suffix = "_packed", .aux = {"_scale", "_shape"}, .match = mc_ct_match,
    .shape = mc_ct_shape, .type = mc_ct_type, .rows = mc_ct_rows, .lossless = 1, .carry = 1,
};

/* Safetensors encodings, tried in order: the first whose data and
 * companions are present and match is the source's. */
static const mc_encoding *const mc_st_encodings[] = {
    &mc_enc_mxfp4_blocks,
    &mc_enc_ct_int4,
    &mc_enc_f8_scale,
    &mc_enc_st,
};

/* Encoding e for asked name `name` with data entry data: companions found
 * and the match passed, 1; else 0. */
static int mc_st_try(mc_cv *cv, const mc_encoding *e, const char *name, struct mc_st_name *data, mc_st_src *out)
{
    char an[MC_NAME_MAX + 32];
    const mc_st_tensor *aux[MC_ENC_AUX] = {0};
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < MC_ENC_AUX && e->aux[k]; k++) {
        snprintf(an, sizeof an, "%s%s", name, e->aux[k]);
        if (!(out->aux[k] = mc_idx_find(cv, an))) return 0;
        aux[k] = out->aux[k]->t;
    }
    if (e->match && !e->match(data->t, aux)) return 0;
    out->enc = e;
    out->data = data;
    return 1;
}

int mc_st_lookup(mc_cv *cv, const char *name, mc_st_src *out)
{
    char dn[MC_NAME_MAX + 32];
    for (size_t i = 0; i < MC_COUNT(mc_st_encodings); i++) {
        const mc_encoding *e = mc_st_encodings[i];
        snprintf(dn, sizeof dn, "%s%s", name, e->suffix);
        struct mc_st_name *data = mc_idx_find(cv, dn);
        if (data && mc_st_try(cv, e, name, data, out)) return 1;
    }
    memset(out, 0, sizeof *out);
    return 0;
}

void mc_st_encode(mc_cv *cv, const char *name, struct mc_st_name *data, mc_st_src *out)
{
    for (size_t i = 0; i < MC_COUNT(mc_st_encodings); i++)
        if (!mc_st_encodings[i]->suffix[0] && mc_st_try(cv, mc_st_encodings[i], name, data, out)) return;
    out->enc = &mc_enc_st;
    out->data = data;
}

void mc_part_set_st(mc_part *p, const mc_st_src *src)
{
    p->s = src->data->t;
    p->enc = src->enc;
    src->data->used = 1;
    for (size_t k = 0; k < MC_ENC_AUX; k++)
        if (src->aux[k]) {
            p->aux[k] = src->aux[k]->t;
            src->aux[k]->used = 1;
        }
}
