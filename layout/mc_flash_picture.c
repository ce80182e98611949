#include "mc_flash_picture.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mc_qreport.h"

#define PIC_M 8
#define PIC_MW (MC_PIC_W - 2 * PIC_M)
#define PIC_ROW_STEP 24
#define PIC_BAND 12
#define PIC_TOK 4
#define PIC_CW 64
#define PIC_CSTEP 66

typedef unsigned char rgb_t[3];

static const rgb_t c_bg = MC_PIC_BG, c_meta = MC_PIC_META, c_pinned = MC_PIC_PINNED, c_ffn[2] = { MC_PIC_FFN0, MC_PIC_FFN1 },
                   c_exp[2] = { MC_PIC_EXPERT0, MC_PIC_EXPERT1 }, c_tok = MC_PIC_TOKEN, c_load = MC_PIC_LOAD,
                   c_tok_off = MC_PIC_TOKEN_OFF, c_white = MC_PIC_WHITE, c_empty = MC_PIC_EMPTY;

static void palette(int u, unsigned char out[3])
{
    static const int lo[3] = { 49, 54, 149 }, mid[3] = { 255, 255, 191 }, hi[3] = { 165, 0, 38 };
    if (u < 0) u = 0;
    if (u > 255) u = 255;
    for (int k = 0; k < 3; k++)
        out[k] = (unsigned char)(u <= 127 ? lo[k] + (mid[k] - lo[k]) * u / 127 : mid[k] + (hi[k] - mid[k]) * (u - 128) / 127);
}

/* Colours of byte o in the region band and the token band. */
static void byte_colour(const mc_flash *f, uint64_t o, const unsigned char **band, const unsigned char **tok)
{
    *band = c_bg;
    *tok = c_tok_off;
    if (o >= f->file.size) {
        *tok = c_bg;
        return;
    }
    if (o < f->pinned_offset || o >= f->hdr.manifest_offset) {
        *band = c_meta;
        return;
    }
    if (o < f->pinned_offset + f->pinned_nbytes) {
        *band = c_pinned;
        *tok = c_load;
        return;
    }
    for (size_t i = 0; i < f->n_ffn; i++)
        if (o >= f->ffn[i].offset && o - f->ffn[i].offset < f->ffn[i].nbytes) {
            *band = c_ffn[(unsigned)f->ffn[i].layer & 1u];
            *tok = c_tok;
            return;
        }
    for (size_t i = 0; i < f->n_experts; i++) {
        const mc_flash_experts *x = &f->experts[i];
        if (o < x->offset || !x->stride || (o - x->offset) / x->stride >= x->n_experts) continue;
        uint64_t e = (o - x->offset) / x->stride, n = x->n_experts;
        uint64_t k = f->experts_per_tok > 0 ? (uint64_t)f->experts_per_tok : 1;
        if (k > n) k = n;
        uint64_t step = n / k;
        *band = c_exp[e & 1u];
        for (uint64_t j = 0; j < k; j++)
            if (((uint64_t)(x->layer > 0 ? x->layer : 0) + j * step) % n == e) *tok = c_tok;
        return;
    }
}

static int kind_index(const char *s)
{
    for (int k = 0; k < MC_QK_COUNT; k++)
        if (!strcmp(s, mc_qreport_kind_name(k))) return k;
    return MC_QK_OTHER;
}

int mc_flash_picture(const mc_flash *f, mc_image *im, mc_error *err)
{
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(f->manifest, "qerr"), *r;
    int max_layer = -1;
    memset(im, 0, sizeof *im);
    cJSON_ArrayForEach(r, recs) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "layer");
        if (cJSON_IsNumber(l) && l->valuedouble >= 0 && l->valuedouble < 65536 && (int)l->valuedouble > max_layer)
            max_layer = (int)l->valuedouble;
    }
    for (size_t i = 0; i < f->n_ffn; i++)
        if (f->ffn[i].layer > max_layer && f->ffn[i].layer < 65536) max_layer = f->ffn[i].layer;
    for (size_t i = 0; i < f->n_experts; i++)
        if (f->experts[i].layer > max_layer && f->experts[i].layer < 65536) max_layer = f->experts[i].layer;
    size_t n_rows = (size_t)(max_layer + 2); /* global, then 0 .. max_layer */
    int rh = (int)(400 / n_rows);
    rh = rh < 3 ? 3 : rh > 16 ? 16 : rh;
    int heat_y = PIC_M + MC_PIC_MAP_ROWS * PIC_ROW_STEP + 8;
    int legend_y = heat_y + (int)n_rows * rh + 8;
    int height = legend_y + 16 + 8 + 8;
    double *cell_err = calloc(n_rows * MC_QK_COUNT, sizeof *cell_err), *cell_ref = calloc(n_rows * MC_QK_COUNT, sizeof *cell_ref);
    int *cell_n = calloc(n_rows * MC_QK_COUNT, sizeof *cell_n), *cell_exact = calloc(n_rows * MC_QK_COUNT, sizeof *cell_exact);
    int rc = 0;
    if (!cell_err || !cell_ref || !cell_n || !cell_exact) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory drawing %s", f->file.path);
        goto done;
    }
    if ((rc = mc_image_init(im, MC_PIC_W, (uint32_t)height, c_bg[0], c_bg[1], c_bg[2], err))) goto done;

    /* the file map */
    uint64_t cols = (uint64_t)PIC_MW * MC_PIC_MAP_ROWS;
    uint64_t B = (f->file.size + cols - 1) / cols;
    if (B < 1) B = 1;
    for (uint64_t i = 0; i < cols; i++) {
        const unsigned char *band, *tok;
        byte_colour(f, i * B, &band, &tok);
        int64_t x = PIC_M + (int64_t)(i % PIC_MW), y = PIC_M + (int64_t)(i / PIC_MW) * PIC_ROW_STEP;
        mc_image_fill(im, x, y, 1, PIC_BAND, band);
        mc_image_fill(im, x, y + PIC_BAND, 1, PIC_TOK, tok);
    }

    /* the heat map */
    cJSON_ArrayForEach(r, recs) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "layer"), *k = cJSON_GetObjectItemCaseSensitive(r, "kind");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "sum_sq_err"), *s = cJSON_GetObjectItemCaseSensitive(r, "sum_sq_ref");
        int row = cJSON_IsNumber(l) && l->valuedouble >= 0 && l->valuedouble < 65536 ? (int)l->valuedouble + 1 : 0;
        if (!cJSON_IsString(k) || !cJSON_IsNumber(e) || !cJSON_IsNumber(s) || (size_t)row >= n_rows) continue;
        size_t c = (size_t)row * MC_QK_COUNT + (size_t)kind_index(k->valuestring);
        cell_err[c] += e->valuedouble;
        cell_ref[c] += s->valuedouble;
        cell_n[c]++;
        cell_exact[c] += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "exact"));
    }
    for (size_t row = 0; row < n_rows; row++)
        for (int k = 0; k < MC_QK_COUNT; k++) {
            size_t c = row * MC_QK_COUNT + (size_t)k;
            unsigned char col[3];
            if (!cell_n[c]) memcpy(col, c_empty, 3);
            else if (cell_exact[c] == cell_n[c]) memcpy(col, c_white, 3);
            else {
                int u = 255;
                if (cell_ref[c] > 0) {
                    double t = (log10(sqrt(cell_err[c] / cell_ref[c])) + 4.0) / 4.0;
                    t = t < 0 ? 0 : t > 1 ? 1 : t;
                    u = (int)floor(255.0 * t + 0.5);
                }
                palette(u, col);
            }
            mc_image_fill(im, PIC_M + k * PIC_CSTEP, heat_y + (int64_t)row * rh, PIC_CW, rh - 1, col);
        }

    /* the legend */
    for (int u = 0; u < 256; u++) {
        unsigned char col[3];
        palette(u, col);
        mc_image_fill(im, PIC_M + u, legend_y, 1, 8, col);
    }
    const unsigned char *sw[] = { c_pinned, c_ffn[0], c_ffn[1], c_exp[0], c_exp[1], c_meta, c_tok, c_load, c_white, c_empty };
    for (size_t i = 0; i < sizeof sw / sizeof sw[0]; i++) mc_image_fill(im, PIC_M + (int64_t)i * 20, legend_y + 16, 16, 8, sw[i]);
done:
    free(cell_err);
    free(cell_ref);
    free(cell_n);
    free(cell_exact);
    if (rc) mc_image_free(im);
    return rc;
}
