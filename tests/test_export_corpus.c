/* End to end over the corpus for `--layout mac-code` and `--layout mlx`:
 * every model under models/, from every GGUF there and from hf/, converted
 * to a .flash file, a mac-code folder and an mlx folder (small shard limit).
 * Architectures no mac-code engine builds, and non-default options, are
 * written with --force-layout (every form: ffn_aligned/ and ffn/, expert
 * names mlp.switch_mlp.* and switch_mlp.*); the mac-code folder is compared
 * with a .flash file made with mac-code's own defaults (float16, the
 * qwen3.5 MoE engines' 4-bit routers). What the engines themselves read is
 * tests/test_maccode.c's concern.
 *
 * The readers here share no code with layout/mc_export.c: safetensors
 * headers are parsed by hand (u64 length + cJSON), mac-code layer headers
 * with cJSON after stripping the zero padding, the .flash manifest from its
 * header fields. The mac-code reader loads pinned tensors, dense layers and
 * single experts by their offsets and checks every tensor bit for bit
 * against MLX affine quantization (mc_quant_affine_quantize) or a float
 * conversion of what mc_model_read_f32 gives; the mlx folder must hold the
 * .flash file's tensors byte for byte (names, dtypes, shapes, bytes), its
 * index must name every tensor exactly once, its shards must respect the
 * limit, its config.json the .flash quantization block. Architectures the
 * converter does not support yet are reported as skips. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "mc_convert.h"
#include "mc_float.h"
#include "mc_mlx.h"
#include "mc_test.h"
#include "mc_test_flash.h"
#include "mc_types.h"

#define PG 16384u
#define SHARD_LIMIT 200000u

static int g_router8, g_converted, g_maccode_tensors, g_experts_loaded, g_ffn_layers, g_mlx_tensors;

/* ---- small helpers ---- */

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static double jn(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *js(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* ---- a safetensors file: own parse ---- */

typedef struct stf {
    cJSON *hdr;
    uint64_t data_start, size;
} stf;

static int st_open(const char *path, stf *s)
{
    memset(s, 0, sizeof *s);
    s->size = file_size(path);
    unsigned char *l = s->size >= 8 ? mc_test_read_range(path, 0, 8) : NULL;
    if (!l) return -1;
    uint64_t hl = mc_test_le64(l);
    free(l);
    if (8 + hl > s->size) return -1;
    unsigned char *h = mc_test_read_range(path, 8, hl);
    if (!h) return -1;
    s->hdr = cJSON_ParseWithLength((const char *)h, (size_t)hl);
    free(h);
    s->data_start = 8 + hl;
    return s->hdr ? 0 : -1;
}

/* ---- expected bytes of one stored tensor ---- */

static const mc_mtensor *find_src(const mc_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    char alt[700];
    snprintf(alt, sizeof alt, "language_model.%s", name);
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, alt)) return &m->tensors[i];
    return NULL;
}

static int dtype_from(const char *s)
{
    static const struct { const char *n; int t; } tab[] = {
        { "F16", MC_T_F16 },   { "BF16", MC_T_BF16 }, { "F32", MC_T_F32 }, { "U32", MC_T_U32 },
        { "mlx.core.float16", MC_T_F16 }, { "mlx.core.bfloat16", MC_T_BF16 }, { "mlx.core.float32", MC_T_F32 },
        { "mlx.core.uint32", MC_T_U32 },
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(tab[i].n, s)) return tab[i].t;
    return -1;
}

/* Expected bytes of part `part` of source rows [row0, row0+nrows) of t;
 * quantized with (bits, gs, scale dtype) when bits > 0, else float dtype. */
static unsigned char *expect(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, int part,
                             int bits, int gs, int dtype, size_t *len)
{
    uint64_t ncols = t->shape[t->n_dims - 1];
    float *x = malloc((size_t)(nrows * ncols) * sizeof *x);
    unsigned char *out = NULL;
    mc_error err = { MC_OK, "" };
    if (!x || mc_model_read_f32(m, t, row0, nrows, x, &err)) goto done;
    if (bits <= 0) {
        size_t es = dtype == MC_T_F32 ? 4 : 2, n = (size_t)(nrows * ncols);
        if (!(out = malloc(n * es))) goto done;
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
    mc_affine p = { bits, gs, dtype };
    uint64_t words = ncols * (uint64_t)bits / 32, ng = ncols / (uint64_t)gs;
    size_t ss = dtype == MC_T_F32 ? 4 : 2;
    uint32_t *w = malloc((size_t)(nrows * words) * 4);
    unsigned char *s = malloc((size_t)(nrows * ng) * ss), *b = malloc((size_t)(nrows * ng) * ss);
    if (w && s && b && mc_quant_affine_quantize(x, nrows, ncols, &p, w, s, b, &err) == 0) {
        unsigned char *parts[3] = { (unsigned char *)w, s, b };
        size_t lens[3] = { (size_t)(nrows * words) * 4, (size_t)(nrows * ng) * ss, (size_t)(nrows * ng) * ss };
        out = parts[part];
        *len = lens[part];
        parts[part] = NULL;
        free(parts[0]);
        free(parts[1]);
        free(parts[2]);
        w = NULL;
        s = b = NULL;
    }
    free(w);
    free(s);
    free(b);
done:
    free(x);
    return out;
}

/* bits/group size for module (weight name minus ".weight") from config */
static void qparams(const cJSON *cfg, const char *wname, int *bits, int *gs)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    char mod[600];
    snprintf(mod, sizeof mod, "%.*s", (int)strlen(wname) - 7, wname);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, mod);
    if (!cJSON_IsObject(e)) {
        /* config keys keep the model's own names (language_model. prefix) */
        char alt[640];
        snprintf(alt, sizeof alt, "language_model.%s", mod);
        e = cJSON_GetObjectItemCaseSensitive(q, alt);
    }
    if (!cJSON_IsObject(e)) e = q;
    *bits = (int)jn(e, "bits");
    *gs = (int)jn(e, "group_size");
}

/* Check one stored tensor (full mlx-lm name) against the source.
 * scales_dtype: dtype of "<module>.scales" when stored (quantized), else -1. */
static void check_one(const mc_model *m, const cJSON *cfg, const char *full, const unsigned char *have, uint64_t nbytes,
                      int dtype, int scales_dtype, uint64_t row0, uint64_t nrows, const char *where, int *seen_count)
{
    char wname[600];
    int part = mc_test_part_of(full, wname, sizeof wname);
    const mc_mtensor *t = find_src(m, wname);
    CHECKF(t != NULL, "%s: %s: no source tensor %s", where, full, wname);
    if (!t) return;
    if (seen_count && part == 0) seen_count[t - m->tensors]++;
    int bits = 0, gs = 0;
    if (scales_dtype >= 0) qparams(cfg, wname, &bits, &gs);
    CHECKF(scales_dtype < 0 || (bits > 0 && gs > 0), "%s: %s: no quantization parameters", where, full);
    if (nrows == 0) {
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) nel *= t->shape[d];
        nrows = nel / t->shape[t->n_dims - 1];
    }
    size_t len = 0;
    unsigned char *want = expect(m, t, row0, nrows, part, bits, gs, scales_dtype >= 0 ? scales_dtype : dtype, &len);
    CHECKF(want != NULL, "%s: %s: cannot compute expected bytes", where, full);
    if (want) {
        CHECKF(len == nbytes && !memcmp(want, have, len), "%s: %s: %llu bytes stored, %zu expected%s", where, full,
               (unsigned long long)nbytes, len, len == nbytes ? " (bytes differ)" : "");
        g_maccode_tensors++;
    }
    free(want);
}

/* "<module>.scales" in the object (JSON map name -> entry), its dtype, else -1 */
static int scales_dtype_in(const cJSON *map, const char *name)
{
    char wname[600], sname[620];
    mc_test_part_of(name, wname, sizeof wname);
    snprintf(sname, sizeof sname, "%.*s.scales", (int)strlen(wname) - 7, wname);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(map, sname);
    return e ? dtype_from(js(e, "dtype")) : -1;
}

/* ---- mac-code folder ---- */

static void check_maccode(const char *dir, const mc_model *m, int max_experts)
{
    char p[2048];
    int *seen = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *seen);
    snprintf(p, sizeof p, "%s/config.json", dir);
    cJSON *cfg = mc_test_read_json(p);
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(cfg, "streaming");
    CHECKF(cJSON_IsObject(sb), "%s: config.json has no streaming block", dir);
    CHECK_STR(js(sb, "pinned_file"), "pinned.safetensors");

    /* pinned.safetensors: every tensor by its data_offsets */
    stf s;
    snprintf(p, sizeof p, "%s/pinned.safetensors", dir);
    CHECKF(st_open(p, &s) == 0, "%s: unreadable", p);
    const cJSON *t;
    uint64_t data_end = 0;
    int n_pinned = 0;
    cJSON_ArrayForEach(t, s.hdr)
    {
        if (!strcmp(t->string, "__metadata__")) {
            CHECK_STR(js(t, "format"), "mlx");
            continue;
        }
        const cJSON *dof = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        uint64_t a = (uint64_t)cJSON_GetArrayItem(dof, 0)->valuedouble, b = (uint64_t)cJSON_GetArrayItem(dof, 1)->valuedouble;
        if (b > data_end) data_end = b;
        unsigned char *d = mc_test_read_range(p, s.data_start + a, b - a);
        CHECKF(d != NULL, "%s: %s outside the file", p, t->string);
        if (d) check_one(m, cfg, t->string, d, b - a, dtype_from(js(t, "dtype")), scales_dtype_in(s.hdr, t->string), 0, 0,
                         "pinned", seen);
        free(d);
        n_pinned++;
    }
    CHECK_EQ_U64(s.data_start + data_end, s.size);
    CHECKF(n_pinned > 0, "%s: no pinned tensors", dir);
    cJSON_Delete(s.hdr);

    /* layer files */
    int n_ffn = 0, n_x = 0, n_st = 0;
    for (int L = 0; L < m->n_layers; L++) {
        for (int kind = 0; kind < 2; kind++) {
            snprintf(p, sizeof p, "%s/%s/layer_%02d.bin", dir, kind ? "bin" : "ffn_aligned", L);
            uint64_t fs = file_size(p);
            if (!fs) continue;
            unsigned char *pg = mc_test_read_range(p, 0, PG);
            CHECKF(pg != NULL, "%s: shorter than a page", p);
            if (!pg) continue;
            size_t hl = 0;
            while (hl < PG && pg[hl]) hl++;
            size_t nz = 0;
            for (size_t i = hl; i < PG; i++) nz += pg[i] != 0;
            CHECKF(nz == 0, "%s: %zu header padding bytes not zero", p, nz);
            cJSON *h = cJSON_ParseWithLength((const char *)pg, hl);
            free(pg);
            CHECKF(h != NULL, "%s: header does not parse", p);
            if (!h) continue;
            CHECK_EQ_U64(jn(h, "page_size"), PG);
            CHECK_EQ_U64(jn(h, "layer_idx"), L);
            CHECK_EQ_U64(jn(h, "total_size"), fs);
            if (!kind) {
                n_ffn++;
                CHECK_STR(js(h, "format"), "flash_aligned_v1");
                const cJSON *tens = cJSON_GetObjectItemCaseSensitive(h, "tensors");
                uint64_t last_end = PG;
                cJSON_ArrayForEach(t, tens)
                {
                    uint64_t off = (uint64_t)jn(t, "offset"), nb = (uint64_t)jn(t, "nbytes");
                    CHECKF(off % PG == 0 && off >= last_end && off + nb <= fs, "%s: %s at %llu", p, t->string,
                           (unsigned long long)off);
                    last_end = off + nb;
                    CHECKF(!strncmp(js(t, "dtype"), "mlx.core.", 9), "%s: dtype %s", p, js(t, "dtype"));
                    unsigned char *d = mc_test_read_range(p, off, nb);
                    char full[600];
                    snprintf(full, sizeof full, "model.layers.%d.%s", L, t->string);
                    if (d) check_one(m, cfg, full, d, nb, dtype_from(js(t, "dtype")), scales_dtype_in(tens, t->string), 0,
                                     0, p, seen);
                    free(d);
                }
                /* the local names the engines look up */
                CHECKF(cJSON_GetObjectItemCaseSensitive(tens, "mlp.down_proj.weight") ||
                           cJSON_GetObjectItemCaseSensitive(tens, "mlp.gate_up_proj.weight"),
                       "%s: no mlp.down_proj.weight", p);
                g_ffn_layers++;
                /* ffn/layer_NN.safetensors beside it: the same tensors, byte
                 * for byte, at the same offsets (a clone or a copy), gaps
                 * covered by zero "mconv.pad.N" tensors */
                char sp[2048];
                snprintf(sp, sizeof sp, "%s/ffn/layer_%02d.safetensors", dir, L);
                stf ss;
                if (file_size(sp) && st_open(sp, &ss) == 0) {
                    n_st++;
                    CHECK_EQ_U64(file_size(sp), fs);
                    CHECK_EQ_U64(ss.data_start, PG);
                    const cJSON *x;
                    cJSON_ArrayForEach(x, ss.hdr)
                    {
                        if (!strcmp(x->string, "__metadata__")) continue;
                        const cJSON *dof = cJSON_GetObjectItemCaseSensitive(x, "data_offsets");
                        uint64_t a = (uint64_t)cJSON_GetArrayItem(dof, 0)->valuedouble,
                                 b = (uint64_t)cJSON_GetArrayItem(dof, 1)->valuedouble;
                        unsigned char *d = mc_test_read_range(sp, PG + a, b - a);
                        const cJSON *bt = cJSON_GetObjectItemCaseSensitive(tens, x->string);
                        if (!strncmp(x->string, "mconv.pad.", 10)) {
                            size_t nz = 0;
                            for (uint64_t i = 0; d && i < b - a; i++) nz += d[i] != 0;
                            CHECKF(d && nz == 0, "%s: %s holds %zu non-zero bytes", sp, x->string, nz);
                        } else {
                            unsigned char *w = bt ? mc_test_read_range(p, (uint64_t)jn(bt, "offset"), b - a) : NULL;
                            CHECKF(bt && (uint64_t)jn(bt, "offset") == PG + a && (uint64_t)jn(bt, "nbytes") == b - a &&
                                       d && w && !memcmp(d, w, (size_t)(b - a)),
                                   "%s: %s is not the bytes of %s", sp, x->string, p);
                            free(w);
                        }
                        free(d);
                    }
                    cJSON_Delete(ss.hdr);
                }
            } else {
                n_x++;
                CHECK_STR(js(h, "format"), "moe_flash_v1");
                const cJSON *lay = cJSON_GetObjectItemCaseSensitive(h, "layout");
                const cJSON *tens = cJSON_GetObjectItemCaseSensitive(lay, "tensors");
                uint64_t E = (uint64_t)jn(lay, "num_experts"), B = (uint64_t)jn(lay, "expert_block_size"),
                         ds = (uint64_t)jn(lay, "data_start");
                CHECK_EQ_U64(E, (uint64_t)m->n_experts);
                CHECK_EQ_U64(ds, PG);
                CHECKF(B % PG == 0 && B > 0, "%s: block size %llu", p, (unsigned long long)B);
                CHECK_EQ_U64(ds + E * B, fs);
                CHECKF(cJSON_GetObjectItemCaseSensitive(tens, "mlp.switch_mlp.gate_proj.weight") ||
                           cJSON_GetObjectItemCaseSensitive(tens, "block_sparse_moe.switch_mlp.gate_proj.weight") ||
                           cJSON_GetArraySize(tens) > 0,
                       "%s: no expert tensors", p);
                uint64_t want_e[3] = { 0, E / 2, E ? E - 1 : 0 };
                int ne = max_experts > 0 && max_experts < 3 ? max_experts : 3;
                for (int xi = 0; xi < ne && E; xi++) {
                    uint64_t e = want_e[xi];
                    if (xi && e == want_e[xi - 1]) continue;
                    unsigned char *blk = mc_test_read_range(p, ds + e * B, B); /* one read per expert */
                    CHECKF(blk != NULL, "%s: expert %llu unreadable", p, (unsigned long long)e);
                    if (!blk) continue;
                    g_experts_loaded++;
                    cJSON_ArrayForEach(t, tens)
                    {
                        uint64_t io = (uint64_t)jn(t, "inner_offset"), nb = (uint64_t)jn(t, "nbytes");
                        const cJSON *spe = cJSON_GetObjectItemCaseSensitive(t, "shape_per_expert");
                        CHECKF(io + nb <= B, "%s: %s beyond the block", p, t->string);
                        if (io + nb > B) continue;
                        char full[600], wname[600];
                        /* "switch_mlp.*" (cli-agent's names) is "mlp.switch_mlp.*"; counted once */
                        int alias = !strncmp(t->string, "switch_mlp.", 11);
                        snprintf(full, sizeof full, "model.layers.%d.%s%s", L, alias ? "mlp." : "", t->string);
                        char mname[600];
                        snprintf(mname, sizeof mname, "mlp.%s", t->string);
                        if (alias && cJSON_GetObjectItemCaseSensitive(tens, mname)) alias = 2; /* both names */
                        mc_test_part_of(full, wname, sizeof wname);
                        const mc_mtensor *src = find_src(m, wname);
                        uint64_t rows = src ? src->shape[src->n_dims - 2] : 0;
                        CHECKF(src && (uint64_t)cJSON_GetArrayItem(spe, 0)->valuedouble == rows, "%s: %s shape", p, full);
                        check_one(m, cfg, full, blk + io, nb, dtype_from(js(t, "dtype")), scales_dtype_in(tens, t->string),
                                  e * rows, rows, p, e == 0 && alias != 2 ? seen : NULL);
                    }
                    /* padding after the last tensor is zero */
                    uint64_t used = 0;
                    cJSON_ArrayForEach(t, tens)
                    {
                        uint64_t end = (uint64_t)jn(t, "inner_offset") + (uint64_t)jn(t, "nbytes");
                        if (end > used) used = end;
                    }
                    for (uint64_t i = used; i < B; i++)
                        if (blk[i]) {
                            CHECKF(0, "%s: expert %llu: padding byte %llu not zero", p, (unsigned long long)e,
                                   (unsigned long long)i);
                            break;
                        }
                    free(blk);
                }
            }
            cJSON_Delete(h);
        }
    }
    if (n_ffn) {
        if (n_st) CHECK_STR(js(sb, "ffn_dir"), "ffn/");
        CHECK_EQ_U64(jn(sb, "ffn_layers"), n_ffn);
    }
    if (n_x) {
        CHECK_STR(js(sb, "expert_dir"), "bin");
        CHECK_EQ_U64(jn(sb, "num_experts"), m->n_experts);
        CHECK_EQ_U64(jn(sb, "experts_per_tok"), m->n_experts_per_tok);
    }
    CHECKF(n_ffn + n_x > 0, "%s: nothing streamed", dir);
    if (m->n_experts) CHECKF(n_x > 0, "%s: MoE model without expert files", dir);
    /* every source tensor stored exactly once */
    for (size_t i = 0; i < m->n_tensors; i++)
        CHECKF(seen[i] == 1, "%s: %s stored %d times", dir, m->tensors[i].name, seen[i]);
    free(seen);
    cJSON_Delete(cfg);
}

/* ---- .flash reference (own parse of header + manifest) ---- */

typedef struct ftensor {
    char name[512];
    char dtype[16];
    uint64_t shape[5];
    int nd;
    unsigned char *data;
    uint64_t nbytes;
} ftensor;

static int dtype_is(const char *st, const char *want) { return !strcmp(st, want); }

/* All tensors of a .flash file, experts restacked. */
static ftensor *flash_tensors(const char *path, int *n, cJSON **cfg_out)
{
    unsigned char *h = mc_test_read_range(path, 0, 48);
    ftensor *v = NULL;
    *n = 0;
    if (!h) return NULL;
    uint64_t mo = mc_test_le64(h + 16), ml = mc_test_le64(h + 24);
    free(h);
    unsigned char *mb = mc_test_read_range(path, mo, ml);
    cJSON *man = mb ? cJSON_ParseWithLength((const char *)mb, (size_t)ml) : NULL;
    free(mb);
    if (!man) return NULL;
    *cfg_out = cJSON_DetachItemFromObjectCaseSensitive(man, "config");
    int cap = cJSON_GetArraySize(cJSON_GetObjectItem(man, "tensors")) + 64;
    const cJSON *x, *t;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(man, "experts")) cap += cJSON_GetArraySize(cJSON_GetObjectItem(x, "tensors"));
    v = calloc((size_t)cap, sizeof *v);
    /* expert names are relative to "layers.N."; the model's own prefix
     * (e.g. "language_model.model.") comes from the other tensors */
    char prefix[256] = "model.";
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(man, "tensors"))
    {
        const char *q = strstr(js(t, "name"), "layers.");
        if (q && q - js(t, "name") < 200) snprintf(prefix, sizeof prefix, "%.*s", (int)(q - js(t, "name")), js(t, "name"));
    }
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(man, "tensors"))
    {
        ftensor *f = &v[(*n)++];
        snprintf(f->name, sizeof f->name, "%s", js(t, "name"));
        snprintf(f->dtype, sizeof f->dtype, "%s", js(t, "dtype"));
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "shape")) f->shape[f->nd++] = (uint64_t)d->valuedouble;
        f->nbytes = (uint64_t)jn(t, "nbytes");
        f->data = mc_test_read_range(path, (uint64_t)jn(t, "offset"), f->nbytes);
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(man, "experts"))
    {
        uint64_t E = (uint64_t)jn(x, "n_experts"), off = (uint64_t)jn(x, "offset"), stride = (uint64_t)jn(x, "stride");
        int layer = (int)jn(x, "layer");
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(x, "tensors"))
        {
            ftensor *f = &v[(*n)++];
            snprintf(f->name, sizeof f->name, "%slayers.%d.%s", prefix, layer, js(t, "name"));
            snprintf(f->dtype, sizeof f->dtype, "%s", js(t, "dtype"));
            f->shape[f->nd++] = E;
            const cJSON *d;
            cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "shape_per_expert")) f->shape[f->nd++] = (uint64_t)d->valuedouble;
            uint64_t per = (uint64_t)jn(t, "nbytes"), io = (uint64_t)jn(t, "inner_offset");
            f->nbytes = per * E;
            f->data = malloc((size_t)f->nbytes);
            for (uint64_t e = 0; f->data && e < E; e++) {
                unsigned char *b = mc_test_read_range(path, off + e * stride + io, per);
                if (b) memcpy(f->data + e * per, b, (size_t)per);
                free(b);
            }
        }
    }
    cJSON_Delete(man);
    return v;
}

/* mac-code folder vs the .flash file of the same conversion: every tensor
 * (pinned, dense layer, each expert's slice) byte for byte. */
static void maccode_vs_flash(const char *dir, const char *flash)
{
    int nf = 0, hit = 0;
    cJSON *fcfg = NULL;
    ftensor *ft = flash_tensors(flash, &nf, &fcfg);
    char p[2048];
    CHECKF(ft != NULL, "%s unreadable", flash);
    if (!ft) return;
    for (int k = 0; k < nf; k++) {
        const char *nm = ft[k].name;
        if (!strncmp(nm, "language_model.", 15)) nm += 15;
        const char *q = strncmp(nm, "model.layers.", 13) ? NULL : nm + 13;
        int layer = q ? atoi(q) : -1;
        const char *local = q ? strchr(q, '.') : NULL;
        unsigned char *d = NULL;
        int found = 0;
        /* pinned? */
        stf s;
        snprintf(p, sizeof p, "%s/pinned.safetensors", dir);
        if (st_open(p, &s) == 0) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(s.hdr, nm);
            if (t) {
                const cJSON *dof = cJSON_GetObjectItem(t, "data_offsets");
                uint64_t a = (uint64_t)cJSON_GetArrayItem(dof, 0)->valuedouble, b = (uint64_t)cJSON_GetArrayItem(dof, 1)->valuedouble;
                found = 1;
                if (b - a == ft[k].nbytes) d = mc_test_read_range(p, s.data_start + a, b - a);
            }
            cJSON_Delete(s.hdr);
        }
        for (int kind = 0; !found && local && kind < 2; kind++) {
            snprintf(p, sizeof p, "%s/%s/layer_%02d.bin", dir, kind ? "bin" : "ffn_aligned", layer);
            unsigned char *pg = file_size(p) ? mc_test_read_range(p, 0, PG) : NULL;
            size_t hl = 0;
            while (pg && hl < PG && pg[hl]) hl++;
            cJSON *h = pg ? cJSON_ParseWithLength((const char *)pg, hl) : NULL;
            free(pg);
            const cJSON *lay = cJSON_GetObjectItem(h, "layout");
            const cJSON *tl = cJSON_GetObjectItem(kind ? lay : h, "tensors");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(tl, local + 1);
            if (!t && kind && !strncmp(local + 1, "mlp.", 4)) /* cli-agent's names: no "mlp." */
                t = cJSON_GetObjectItemCaseSensitive(tl, local + 5);
            if (t && !kind) {
                found = 1;
                if ((uint64_t)jn(t, "nbytes") == ft[k].nbytes) d = mc_test_read_range(p, (uint64_t)jn(t, "offset"), ft[k].nbytes);
            } else if (t) {
                uint64_t E = (uint64_t)jn(lay, "num_experts"), B = (uint64_t)jn(lay, "expert_block_size"),
                         ds = (uint64_t)jn(lay, "data_start"), per = (uint64_t)jn(t, "nbytes"), io = (uint64_t)jn(t, "inner_offset");
                found = 1;
                if (per * E == ft[k].nbytes && (d = malloc((size_t)ft[k].nbytes)))
                    for (uint64_t e = 0; e < E; e++) {
                        unsigned char *b = mc_test_read_range(p, ds + e * B + io, per);
                        if (b) memcpy(d + e * per, b, (size_t)per);
                        else memset(d + e * per, 0xEE, (size_t)per);
                        free(b);
                    }
            }
            cJSON_Delete(h);
        }
        CHECKF(found, "%s: %s not in the mac-code folder", dir, ft[k].name);
        CHECKF(!found || (d && ft[k].data && !memcmp(d, ft[k].data, (size_t)ft[k].nbytes)), "%s: %s differs from .flash", dir,
               ft[k].name);
        hit += found;
        free(d);
    }
    CHECK_EQ_U64(hit, nf);
    cJSON_Delete(fcfg);
    for (int k = 0; k < nf; k++) free(ft[k].data);
    free(ft);
}

/* ---- mlx folder ---- */

static void check_mlx(const char *dir, const char *flash, int tokenizer_expected, const mc_model *m, int expect_router8)
{
    char p[2048];
    int nf = 0;
    cJSON *fcfg = NULL;
    ftensor *ft = flash_tensors(flash, &nf, &fcfg);
    CHECKF(ft && nf > 0, "%s: unreadable .flash reference", flash);
    if (!ft) return;
    int *matched = calloc((size_t)nf, sizeof *matched);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    cJSON *idx = mc_test_read_json(p);
    const cJSON *wm = cJSON_GetObjectItem(idx, "weight_map");
    CHECKF(cJSON_IsObject(wm), "%s: no weight_map", p);
    /* weight_map sorted by name, as mlx-lm writes it */
    const cJSON *e, *prev = NULL;
    cJSON_ArrayForEach(e, wm)
    {
        CHECKF(!prev || strcmp(prev->string, e->string) < 0, "weight_map not sorted at %s", e->string);
        prev = e;
    }
    /* every shard the index names, every tensor of every shard */
    DIR *d = opendir(dir);
    struct dirent *de;
    int n_shards = 0, n_in_shards = 0;
    uint64_t total = 0;
    char names[64][300];
    while (d && (de = readdir(d)) != NULL)
        if (!strncmp(de->d_name, "model", 5) && strstr(de->d_name, ".safetensors") &&
            !strstr(de->d_name, ".index.json") && n_shards < 64)
            snprintf(names[n_shards++], sizeof names[0], "%s", de->d_name);
    if (d) closedir(d);
    for (int s = 0; s < n_shards; s++) {
        if (n_shards == 1) CHECK_STR(names[s], "model.safetensors");
        else {
            int a = 0, b = 0;
            CHECKF(sscanf(names[s], "model-%5d-of-%5d.safetensors", &a, &b) == 2 && b == n_shards && a >= 1 &&
                       a <= n_shards && strlen(names[s]) == strlen("model-00001-of-00001.safetensors"),
                   "shard name %s", names[s]);
        }
        snprintf(p, sizeof p, "%s/%s", dir, names[s]);
        stf sf;
        CHECKF(st_open(p, &sf) == 0, "%s unreadable", p);
        uint64_t shard_data = 0;
        int shard_n = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, sf.hdr)
        {
            if (!strcmp(t->string, "__metadata__")) {
                CHECK_STR(js(t, "format"), "mlx");
                continue;
            }
            n_in_shards++;
            shard_n++;
            g_mlx_tensors++;
            const cJSON *we = cJSON_GetObjectItemCaseSensitive(wm, t->string);
            CHECKF(cJSON_IsString(we) && !strcmp(we->valuestring, names[s]), "%s: index says %s for %s", dir,
                   cJSON_IsString(we) ? we->valuestring : "nothing", t->string);
            const cJSON *dof = cJSON_GetObjectItem(t, "data_offsets");
            uint64_t a = (uint64_t)cJSON_GetArrayItem(dof, 0)->valuedouble,
                     b = (uint64_t)cJSON_GetArrayItem(dof, 1)->valuedouble;
            shard_data += b - a;
            int k = 0;
            while (k < nf && strcmp(ft[k].name, t->string)) k++;
            CHECKF(k < nf, "%s: %s is not in the .flash file", dir, t->string);
            if (k == nf) continue;
            matched[k]++;
            CHECK_STR(js(t, "dtype"), ft[k].dtype);
            int nd = 0, same = 1;
            const cJSON *x;
            cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "shape")) same &= nd < 5 && (uint64_t)x->valuedouble == ft[k].shape[nd++];
            CHECKF(same && nd == ft[k].nd, "%s: %s shape differs", dir, t->string);
            unsigned char *data = b - a == ft[k].nbytes ? mc_test_read_range(p, sf.data_start + a, b - a) : NULL;
            CHECKF(data && ft[k].data && !memcmp(data, ft[k].data, (size_t)ft[k].nbytes), "%s: %s bytes differ from .flash",
                   dir, t->string);
            free(data);
        }
        CHECK_EQ_U64(sf.data_start + shard_data, sf.size);
        CHECKF(shard_data <= SHARD_LIMIT || shard_n == 1, "%s: %llu bytes in %d tensors over the limit", p,
               (unsigned long long)shard_data, shard_n);
        total += shard_data;
        cJSON_Delete(sf.hdr);
    }
    CHECKF(n_shards > 1, "%s: expected several shards with a %u byte limit", dir, SHARD_LIMIT);
    CHECK_EQ_U64(cJSON_GetArraySize(wm), n_in_shards);
    CHECK_EQ_U64(n_in_shards, nf);
    CHECK_EQ_U64(jn(cJSON_GetObjectItem(idx, "metadata"), "total_size"), total);
    for (int k = 0; k < nf; k++) CHECKF(matched[k] == 1, "%s: %s found %d times", dir, ft[k].name, matched[k]);

    /* config.json: mlx-lm keys, the same quantization block as the .flash */
    snprintf(p, sizeof p, "%s/config.json", dir);
    cJSON *cfg = mc_test_read_json(p);
    CHECKF(cJSON_IsString(cJSON_GetObjectItem(cfg, "model_type")), "%s: no model_type", p);
    const cJSON *q = cJSON_GetObjectItem(cfg, "quantization"), *fq = cJSON_GetObjectItem(fcfg, "quantization");
    CHECKF((q == NULL) == (fq == NULL) && (!q || cJSON_Compare(q, fq, 1)), "%s: quantization block differs", p);
    if (q) {
        CHECKF(jn(q, "bits") > 0 && jn(q, "group_size") > 0, "%s: no bits/group_size", p);
        CHECKF(cJSON_Compare(q, cJSON_GetObjectItem(cfg, "quantization_config"), 1), "%s: quantization_config", p);
        /* per-module entries name stored modules with that many bits */
        cJSON_ArrayForEach(e, q)
        {
            if (!cJSON_IsObject(e)) continue;
            char wn[600];
            snprintf(wn, sizeof wn, "%s.weight", e->string);
            int k = 0;
            while (k < nf && strcmp(ft[k].name, wn)) k++;
            CHECKF(k < nf, "%s: per-module entry %s names no stored weight", p, e->string);
            if (k < nf) {
                snprintf(wn, sizeof wn, "%s.scales", e->string);
                int ks = 0;
                while (ks < nf && strcmp(ft[ks].name, wn)) ks++;
                /* packed width: in * bits / 32 words; scales: in / group_size */
                CHECKF(ks < nf && dtype_is(ft[k].dtype, "U32") &&
                           ft[k].shape[ft[k].nd - 1] * 32 / (uint64_t)jn(e, "bits") ==
                               ft[ks].shape[ft[ks].nd - 1] * (uint64_t)jn(e, "group_size"),
                       "%s: %s is not stored at %d bits", p, e->string, (int)jn(e, "bits"));
            }
        }
        int want8 = 0;
        for (size_t i = 0; expect_router8 && i < m->n_tensors; i++) {
            const mc_mtensor *t = &m->tensors[i];
            size_t l = strlen(t->name);
            if (t->quant_bits != 8 || !t->quantizable || l < 8 || strcmp(t->name + l - 7, ".weight")) continue;
            if (t->n_dims < 2 || t->shape[t->n_dims - 1] % (uint64_t)jn(q, "group_size")) continue;
            char mod[600];
            snprintf(mod, sizeof mod, "%.*s", (int)(l - 7), t->name);
            const cJSON *me = cJSON_GetObjectItemCaseSensitive(q, mod);
            CHECKF(cJSON_IsObject(me) && jn(me, "bits") == 8, "%s: no 8-bit entry for %s", p, mod);
            want8++;
        }
        g_router8 += want8;
    }
    if (tokenizer_expected) {
        snprintf(p, sizeof p, "%s/tokenizer.json", dir);
        cJSON *tj = mc_test_read_json(p);
        CHECKF(cJSON_IsObject(cJSON_GetObjectItem(tj, "model")), "%s: no tokenizer model", p);
        cJSON_Delete(tj);
    }
    cJSON_Delete(cfg);
    cJSON_Delete(idx);
    cJSON_Delete(fcfg);
    for (int k = 0; k < nf; k++) free(ft[k].data);
    free(ft);
    free(matched);
}

/* ---- driver ---- */

/* Families some mac-code engine builds (layout/mc_maccode.c's table);
 * others, and non-default options, need --force-layout. */
static int maccode_family(const char *model_type)
{
    static const char *const fam[] = { "qwen3", "qwen3_moe", "qwen3_5", "qwen3_5_moe", "qwen3_next" };
    for (size_t i = 0; model_type && i < sizeof fam / sizeof fam[0]; i++)
        if (!strcmp(model_type, fam[i])) return 1;
    return 0;
}

/* An mlx folder is an input too: converting it again must give back the
 * same tensors (quantized ones copied as they are, the rest in their
 * stored dtype), as the .flash file of the original conversion has them. */
static void mlx_readback(const char *mx, const char *flash)
{
    char back[2048];
    char *log = NULL;
    snprintf(back, sizeof back, "%s.back.flash", flash);
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --force --quiet", mc_test_mconv(), mx, back);
    CHECKF(rc == 0, "convert the mlx folder %s: exit %d: %s", mx, rc, log ? log : "");
    free(log);
    if (rc) return;
    int na = 0, nb = 0;
    cJSON *ca = NULL, *cb = NULL;
    ftensor *a = flash_tensors(flash, &na, &ca), *b = flash_tensors(back, &nb, &cb);
    CHECKF(a && b && na == nb, "%s: %d tensors read back, %d written", mx, nb, na);
    for (int i = 0; a && b && i < na; i++) {
        int k = 0;
        while (k < nb && strcmp(a[i].name, b[k].name)) k++;
        CHECKF(k < nb, "%s: %s not read back", mx, a[i].name);
        if (k == nb) continue;
        CHECKF(!strcmp(a[i].dtype, b[k].dtype) && a[i].nbytes == b[k].nbytes && a[i].data && b[k].data &&
                   !memcmp(a[i].data, b[k].data, (size_t)a[i].nbytes),
               "%s: %s read back differs", mx, a[i].name);
    }
    for (int i = 0; a && i < na; i++) free(a[i].data);
    for (int i = 0; b && i < nb; i++) free(b[i].data);
    free(a);
    free(b);
    cJSON_Delete(ca);
    cJSON_Delete(cb);
    remove(back);
}

static void one(const char *src, const char *opts, int max_experts)
{
    char fl[1024], mcfl[1024], mc[1024], mx[1024], mcopts[512], *log = NULL;
    snprintf(fl, sizeof fl, "%s/ref.flash", mc_test_tmpdir());
    snprintf(mcfl, sizeof mcfl, "%s/mcref.flash", mc_test_tmpdir());
    snprintf(mc, sizeof mc, "%s/mc", mc_test_tmpdir());
    snprintf(mx, sizeof mx, "%s/mlx", mc_test_tmpdir());
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --force --quiet %s", mc_test_mconv(), src, fl, opts);
    if (rc == 1 && log && strstr(log, "not supported")) {
        mc_test_skip("%s: %s", src, log);
        free(log);
        return;
    }
    CHECKF(rc == 0, "convert %s %s: exit %d: %s", src, opts, rc, log ? log : "");
    free(log);
    if (rc) return;
    mc_model *m = NULL;
    mc_error err = { MC_OK, "" };
    mc_convert_opts co = { 0, 1 };
    CHECKF(mc_convert_open(src, &co, &m, &err) == 0, "%s", err.msg);
    if (!m) return;
    /* mac-code's own defaults: float16 unless --dtype, the qwen3.5 MoE
     * engines' 4-bit routers; the .flash reference is made with them */
    int fam = maccode_family(m->model_type);
    snprintf(mcopts, sizeof mcopts, "%s%s%s", opts, strstr(opts, "--dtype") ? "" : " --dtype f16",
             fam && m->model_type && !strcmp(m->model_type, "qwen3_5_moe")
                 ? " --bits-for '*.mlp.gate=4' --bits-for '*.mlp.shared_expert_gate=4'" : "");
    rc = mc_test_run(&log, "'%s' '%s' '%s' --force --quiet %s", mc_test_mconv(), src, mcfl, mcopts);
    CHECKF(rc == 0, "convert %s %s: exit %d: %s", src, mcopts, rc, log ? log : "");
    free(log);
    rc |= mc_test_run(&log, "'%s' '%s' '%s' --layout mac-code --force --quiet %s %s", mc_test_mconv(), src, mc, opts,
                      fam && !*opts ? "" : "--force-layout");
    CHECKF(rc == 0, "mac-code %s %s: exit %d: %s", src, opts, rc, log ? log : "");
    free(log);
    rc |= mc_test_run(&log, "'%s' '%s' '%s' --layout mlx --shard-size %u --force --quiet %s", mc_test_mconv(), src, mx,
                      SHARD_LIMIT, opts);
    CHECKF(rc == 0, "mlx %s %s: exit %d: %s", src, opts, rc, log ? log : "");
    free(log);
    if (rc) {
        mc_convert_close(m);
        return;
    }
    g_converted++;
    /* --lossless keeps repacked GGML blocks (not a requantization): the
     * mac-code tensors are checked against the .flash file through the mlx
     * folder's equality instead */
    if (!strstr(opts, "--lossless")) check_maccode(mc, m, max_experts);
    maccode_vs_flash(mc, mcfl);
    /* tensors the converter forces to 8 bits (MoE routers, as mlx-lm
     * quantizes them) get per-module entries unless nothing is quantized or
     * everything is 8-bit already */
    int router8 = !strstr(opts, "--no-quant") && !strstr(opts, "--bits 8");
    check_mlx(mx, fl, m->gguf != NULL, m, router8);
    if (!strstr(opts, "--no-quant")) mlx_readback(mx, fl);
    mc_convert_close(m);
}

static void one_default(const char *path, int gguf, void *ctx)
{
    (void)ctx;
    one(path, "", gguf ? 3 : 0);
}

int main(void)
{
    if (!mc_test_each_corpus_model(one_default, NULL)) return mc_test_finish("test_export_corpus");
    CHECKF(g_converted >= 8, "only %d corpus conversions", g_converted);
    CHECKF(g_router8 > 0, "no 8-bit router entries checked");
    CHECKF(g_experts_loaded > 0 && g_ffn_layers > 0, "experts loaded %d, ffn layers %d", g_experts_loaded, g_ffn_layers);

    /* options carry over: bits, group size, dtype, no-quant, threads */
    static const char *opts[] = { "--bits 3 --group-size 32 --dtype f32", "--bits 8 --group-size 128 --dtype f16",
                                  "--no-quant", "--threads 1 --bits 6" };
    const char *dense = mc_test_corpus_file("models/llama/gguf/llama-Q4_K_M.gguf");
    const char *moe = mc_test_corpus_file("models/qwen3_moe/hf");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (dense) one(dense, opts[i], 2);
        if (moe) one(moe, opts[i], 2);
    }
    static const char *lossless[] = { "models/qwen3/gguf/qwen3-Q4_0.gguf", "models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf" };
    for (size_t i = 0; i < sizeof lossless / sizeof lossless[0]; i++) {
        const char *src = mc_test_corpus_file(lossless[i]);
        if (src) one(src, "--lossless", 2);
    }
    printf("checked %d mac-code tensors (%d ffn layers, %d experts), %d mlx tensors\n", g_maccode_tensors,
           g_ffn_layers, g_experts_loaded, g_mlx_tensors);
    return mc_test_finish("test_export_corpus");
}
