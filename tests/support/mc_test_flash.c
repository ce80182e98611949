#include "mc_test_flash.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mc_float.h"
#include "mc_mlx.h"
#include "mc_types.h"

#define PAGE 16384u

static void bad(mc_test_flash_report *r, const char *fmt, ...)
{
    r->n_bad++;
    if (r->first_bad[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->first_bad, sizeof r->first_bad, fmt, ap);
    va_end(ap);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int read_at(FILE *f, uint64_t off, void *dst, size_t n)
{
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) return -1;
    return fread(dst, 1, n, f) == n ? 0 : -1;
}

static uint64_t num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (uint64_t)v->valuedouble : (uint64_t)-1;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int dtype_of(const char *s)
{
    static const struct { const char *n; int t; } tab[] = {
        { "F16", MC_T_F16 }, { "BF16", MC_T_BF16 }, { "F32", MC_T_F32 }, { "U32", MC_T_U32 },
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(tab[i].n, s)) return tab[i].t;
    return -1;
}

static const mc_mtensor *find_src(const mc_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

int mc_test_part_of(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    static const char *sfx[] = { ".scales", ".biases" };
    for (int k = 0; k < 2; k++) {
        size_t s = strlen(sfx[k]);
        if (n > s && !strcmp(name + n - s, sfx[k])) {
            snprintf(out, cap, "%.*s.weight", (int)(n - s), name);
            return k + 1;
        }
    }
    snprintf(out, cap, "%s", name);
    return 0;
}

typedef struct qparams {
    int quantized, bits, group_size, scale_type;
} qparams;

/* How the manifest says t was stored: quantized when "<module>.scales"
 * exists (in the tensors table or beside it in the expert block); bits and
 * group size from config.quantization (per-module entry first). */
static qparams params_for(const cJSON *man, const char *weight_name, int has_scales, int scale_type)
{
    qparams q = { 0, 0, 0, scale_type };
    if (!has_scales) return q;
    const cJSON *qz = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(man, "config"), "quantization");
    char mod[512];
    size_t n = strlen(weight_name);
    snprintf(mod, sizeof mod, "%.*s", (int)(n > 7 ? n - 7 : n), weight_name);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(qz, mod);
    if (!cJSON_IsObject(e)) e = qz;
    q.quantized = 1;
    q.bits = (int)num(e, "bits");
    q.group_size = (int)num(e, "group_size");
    return q;
}

/* Expected bytes of one part for source rows [row0, row0+nrows). */
static unsigned char *expect(const mc_model *m, mc_test_read_f32_fn rd, const mc_mtensor *t, uint64_t row0,
                             uint64_t nrows, int part, int dtype, const qparams *q, size_t *len)
{
    uint64_t ncols = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    float *x = malloc((size_t)(nrows * ncols) * sizeof *x);
    unsigned char *out = NULL;
    mc_error err = { MC_OK, "" };
    if (!x || rd(m, t, row0, nrows, x, &err)) goto done;
    if (!q->quantized) {
        size_t es = dtype == MC_T_F32 ? 4 : 2, n = (size_t)(nrows * ncols);
        out = malloc(n * es);
        if (!out) goto done;
        for (size_t i = 0; i < n; i++) {
            if (dtype == MC_T_F32) memcpy(out + 4 * i, &x[i], 4);
            else {
                uint16_t h = dtype == MC_T_F16 ? mc_f32_to_f16(x[i]) : mc_f32_to_bf16(x[i]);
                memcpy(out + 2 * i, &h, 2);
            }
        }
        *len = n * es;
        goto done;
    }
    mc_affine p = { q->bits, q->group_size, q->scale_type };
    uint64_t words = ncols * (uint64_t)q->bits / 32, ng = ncols / (uint64_t)q->group_size;
    size_t ss = q->scale_type == MC_T_F32 ? 4 : 2;
    uint32_t *w = malloc((size_t)(nrows * words) * 4);
    unsigned char *s = malloc((size_t)(nrows * ng) * ss), *b = malloc((size_t)(nrows * ng) * ss);
    if (w && s && b && mc_quant_affine_quantize(x, nrows, ncols, &p, w, s, b, &err) == 0) {
        if (part == 0) {
            out = (unsigned char *)w;
            w = NULL;
            *len = (size_t)(nrows * words) * 4;
        } else {
            out = part == 1 ? s : b;
            if (part == 1) s = NULL; else b = NULL;
            *len = (size_t)(nrows * ng) * ss;
        }
    }
    free(w);
    free(s);
    free(b);
done:
    free(x);
    return out;
}

/* Expert tables name tensors relative to "layers.N."; the model's own
 * expert tensors give the prefix. */
static void expert_full_name(const mc_model *m, int layer, const char *rel, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "layers.%d.", layer);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const char *nm = m->tensors[i].name, *q;
        if (m->tensors[i].role != MC_ROLE_EXPERT || m->tensors[i].layer != layer || !(q = strstr(nm, key))) continue;
        snprintf(out, cap, "%.*s%s%s", (int)(q - nm), nm, key, rel);
        return;
    }
    snprintf(out, cap, "model.layers.%d.%s", layer, rel);
}

static int has_tensor(const cJSON *arr, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (!strcmp(str(e, "name"), name)) return 1;
    return 0;
}

static int scale_type_of(const cJSON *arr, const char *scales_name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (!strcmp(str(e, "name"), scales_name)) return dtype_of(str(e, "dtype"));
    return -1;
}

static void check_tensor(const mc_model *m, mc_test_read_f32_fn rd, const cJSON *man, const cJSON *table,
                         const char *full_name, const char *shown, const unsigned char *have, uint64_t nbytes,
                         int dtype, uint64_t row0, uint64_t nrows, int expert_block, mc_test_flash_report *r)
{
    char wname[512], sname[520];
    int part = mc_test_part_of(full_name, wname, sizeof wname);
    const mc_mtensor *t = find_src(m, wname);
    if (!t) {
        bad(r, "%s: no source tensor %s", shown, wname);
        return;
    }
    snprintf(sname, sizeof sname, "%.*s.scales", (int)strlen(wname) - 7, wname);
    const char *lookup = sname;
    /* expert tables name tensors relative to the layer */
    if (expert_block) {
        const char *q = strstr(sname, "layers.");
        if (q) {
            q += 7;
            while (*q >= '0' && *q <= '9') q++;
            lookup = q + 1;
        }
    }
    int st = scale_type_of(table, lookup);
    qparams q = params_for(man, wname, has_tensor(table, lookup), st);
    if (!expert_block && t->role == MC_ROLE_EXPERT) {
        bad(r, "%s: expert tensor in the tensors table", shown);
        return;
    }
    if (nrows == 0) {
        uint64_t ncols = t->n_dims ? t->shape[t->n_dims - 1] : 1, nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) nel *= t->shape[d];
        nrows = nel / ncols;
    }
    size_t len = 0;
    unsigned char *want = expect(m, rd, t, row0, nrows, part, dtype, &q, &len);
    if (!want) {
        bad(r, "%s: cannot compute the expected bytes", shown);
        return;
    }
    if (len != nbytes) bad(r, "%s: %llu bytes stored, %zu expected", shown, (unsigned long long)nbytes, len);
    else if (memcmp(want, have, len)) bad(r, "%s: bytes differ from the quantized source", shown);
    else if (q.quantized && part == 0) r->n_quantized++;
    else if (!q.quantized) r->n_float++;
    free(want);
}

int mc_test_flash_check(const char *path, const mc_model *m, mc_test_read_f32_fn rd, int max_experts,
                        mc_test_flash_report *r)
{
    unsigned char hdr[PAGE];
    char *text = NULL;
    cJSON *man = NULL;
    unsigned char *buf = NULL;
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) {
        bad(r, "%s: cannot open", path);
        return r->n_bad;
    }
    fseeko(f, 0, SEEK_END);
    uint64_t fsize = (uint64_t)ftello(f);
    if (fsize < PAGE || read_at(f, 0, hdr, PAGE)) {
        bad(r, "short file");
        goto done;
    }
    if (memcmp(hdr, "MCFLASH\0", 8) || hdr[8] != 1 || hdr[9] || hdr[10] || hdr[11] ||
        (hdr[12] | hdr[13] << 8 | hdr[14] << 16 | (unsigned)hdr[15] << 24) != PAGE) {
        bad(r, "bad magic, version or page size");
        goto done;
    }
    for (size_t i = 48; i < PAGE; i++)
        if (hdr[i]) {
            bad(r, "header page not zero at %zu", i);
            break;
        }
    uint64_t moff = le64(hdr + 16), mlen = le64(hdr + 24), hsize = le64(hdr + 32), mh = le64(hdr + 40);
    if (hsize != fsize || moff % PAGE || moff + mlen > fsize || mlen > (1u << 30)) {
        bad(r, "header sizes wrong");
        goto done;
    }
    text = malloc((size_t)mlen + 1);
    if (!text || read_at(f, moff, text, (size_t)mlen)) {
        bad(r, "cannot read the manifest");
        goto done;
    }
    text[mlen] = 0;
    if (XXH3_64bits(text, (size_t)mlen) != mh) bad(r, "manifest checksum");
    man = cJSON_Parse(text);
    if (!man) {
        bad(r, "manifest is not JSON");
        goto done;
    }
    if (strcmp(str(man, "format"), "mconv-flash")) bad(r, "format");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(man, "tensors"), *e;
    const cJSON *pin = cJSON_GetObjectItemCaseSensitive(man, "pinned");
    uint64_t poff = num(pin, "offset"), plen = num(pin, "nbytes");
    r->pinned_nbytes = plen;
    r->experts_per_tok = (int)num(man, "experts_per_tok");

    /* pinned: one read */
    buf = malloc(plen ? (size_t)plen : 1);
    if (!buf || poff % PAGE || read_at(f, poff, buf, (size_t)plen)) {
        bad(r, "cannot load the pinned region in one read");
        goto done;
    }
    cJSON_ArrayForEach(e, tensors) {
        if (strcmp(str(e, "role"), "pinned")) continue;
        uint64_t off = num(e, "offset"), nb = num(e, "nbytes");
        if (off % PAGE || off < poff || off + nb > poff + plen) {
            bad(r, "%s: not an aligned part of the pinned region", str(e, "name"));
            continue;
        }
        r->n_pinned++;
        check_tensor(m, rd, man, tensors, str(e, "name"), str(e, "name"), buf + (off - poff), nb,
                     dtype_of(str(e, "dtype")), 0, 0, 0, r);
    }
    free(buf);
    buf = NULL;

    /* dense layers: one read per span */
    const cJSON *sp;
    cJSON_ArrayForEach(sp, cJSON_GetObjectItemCaseSensitive(man, "ffn")) {
        uint64_t off = num(sp, "offset"), nb = num(sp, "nbytes");
        int layer = (int)num(sp, "layer");
        buf = malloc((size_t)nb);
        if (!buf || off % PAGE || read_at(f, off, buf, (size_t)nb)) {
            bad(r, "ffn layer %d: cannot load the span", layer);
            goto done;
        }
        r->n_ffn_spans++;
        r->token_bytes += nb;
        r->token_reads++;
        cJSON_ArrayForEach(e, tensors) {
            if (strcmp(str(e, "role"), "ffn") || (int)num(e, "layer") != layer) continue;
            uint64_t to = num(e, "offset"), tn = num(e, "nbytes");
            if (to % PAGE || to < off || to + tn > off + nb) {
                bad(r, "%s: outside its layer's span", str(e, "name"));
                continue;
            }
            r->n_ffn_tensors++;
            check_tensor(m, rd, man, tensors, str(e, "name"), str(e, "name"), buf + (to - off), tn,
                         dtype_of(str(e, "dtype")), 0, 0, 0, r);
        }
        free(buf);
        buf = NULL;
    }

    /* experts: single blocks */
    const cJSON *xl;
    cJSON_ArrayForEach(xl, cJSON_GetObjectItemCaseSensitive(man, "experts")) {
        uint64_t off = num(xl, "offset"), stride = num(xl, "stride"), ne = num(xl, "n_experts");
        int layer = (int)num(xl, "layer");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(xl, "tensors");
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(xl, "xxh3");
        r->n_expert_layers++;
        uint64_t k = (uint64_t)r->experts_per_tok < ne ? (uint64_t)r->experts_per_tok : ne;
        r->token_bytes += k * stride;
        r->token_reads += k;
        if (off % PAGE || stride % PAGE || stride == 0) {
            bad(r, "experts of layer %d: not aligned", layer);
            continue;
        }
        buf = malloc((size_t)stride);
        if (!buf) goto done;
        uint64_t want_n = max_experts > 0 && (uint64_t)max_experts < ne ? (uint64_t)max_experts : ne;
        for (uint64_t i = 0; i < want_n; i++) {
            uint64_t ex = want_n == ne ? i : (want_n == 1 ? 0 : i * (ne - 1) / (want_n - 1));
            if (read_at(f, off + ex * stride, buf, (size_t)stride)) {
                bad(r, "layer %d expert %llu: cannot read", layer, (unsigned long long)ex);
                continue;
            }
            r->n_expert_blocks++;
            const cJSON *hx = cJSON_GetArrayItem(hs, (int)ex);
            char hb[17];
            snprintf(hb, sizeof hb, "%016llx", (unsigned long long)XXH3_64bits(buf, (size_t)stride));
            if (!cJSON_IsString(hx) || strcmp(hx->valuestring, hb))
                bad(r, "layer %d expert %llu: block checksum", layer, (unsigned long long)ex);
            cJSON_ArrayForEach(e, ts) {
                char full[600], shown[700];
                uint64_t io = num(e, "inner_offset"), nb = num(e, "nbytes");
                const cJSON *shp = cJSON_GetObjectItemCaseSensitive(e, "shape_per_expert");
                uint64_t out_rows = 1;
                for (int d = 0; d + 1 < cJSON_GetArraySize(shp); d++)
                    out_rows *= (uint64_t)cJSON_GetArrayItem(shp, d)->valuedouble;
                expert_full_name(m, layer, str(e, "name"), full, sizeof full);
                snprintf(shown, sizeof shown, "%s [expert %llu]", full, (unsigned long long)ex);
                if (io % PAGE || io + nb > stride) {
                    bad(r, "%s: outside the block", shown);
                    continue;
                }
                check_tensor(m, rd, man, ts, full, shown, buf + io, nb, dtype_of(str(e, "dtype")), ex * out_rows,
                             out_rows, 1, r);
            }
        }
        free(buf);
        buf = NULL;
    }
done:
    free(buf);
    free(text);
    cJSON_Delete(man);
    fclose(f);
    return r->n_bad;
}
