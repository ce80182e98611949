#include "mc_maccode_folder.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mc_flash.h"
#include "mc_io.h"
#include "mc_safetensors.h"
#include "mc_types.h"

#define PAGE ((uint64_t)MC_FLASH_PAGE)
#define CHUNK ((size_t)1 << 20)

typedef mc_maccode_rep rep;

static cJSON *read_json(const char *path, mc_error *err)
{
    mc_file f;
    cJSON *j = NULL;
    if (mc_file_open(&f, path, err)) return NULL;
    if (f.size > MC_ST_JSON_LIMIT) {
        mc_error_set(err, MC_ERR_FORMAT, "%s: %llu bytes, more than a config file holds", path,
                     (unsigned long long)f.size);
    } else {
        char *b = malloc((size_t)f.size + 1);
        if (!b) mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        else if (!mc_file_pread(&f, 0, b, (size_t)f.size, err)) {
            b[f.size] = 0;
            if (!(j = cJSON_ParseWithLength(b, (size_t)f.size)))
                mc_error_set(err, MC_ERR_FORMAT, "%s: not valid JSON", path);
        }
        free(b);
    }
    mc_file_close(&f);
    return j;
}

static cJSON *folder_config(const char *dir, mc_error *err)
{
    char *p = mc_path_join(dir, "config.json");
    cJSON *c = p ? read_json(p, err) : NULL;
    if (!p) mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (c && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "streaming"))) {
        mc_error_set(err, MC_ERR_FORMAT, "%s: no \"streaming\" object: not a mac-code folder", p);
        cJSON_Delete(c);
        c = NULL;
    }
    free(p);
    return c;
}

int mc_maccode_is_folder(const char *path)
{
    if (!mc_io_is_dir(path)) return 0;
    cJSON *c = folder_config(path, NULL);
    int yes = c != NULL;
    cJSON_Delete(c);
    return yes;
}

/* An exact non-negative integer below 2^53. */
static int jint(const cJSON *o, const char *k, uint64_t *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble >= (double)MC_ST_NUM_LIMIT ||
        x->valuedouble != (double)(uint64_t)x->valuedouble)
        return -1;
    *v = (uint64_t)x->valuedouble;
    return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* The readers strip "mlx.core." and know these four (direct_io.py,
 * expert_io.py). */
static int mlx_dtype(const char *s)
{
    static const struct { const char *n; int t; } tab[] = {
        { "uint32", MC_T_U32 }, { "float16", MC_T_F16 }, { "bfloat16", MC_T_BF16 }, { "float32", MC_T_F32 },
    };
    if (!s) return -1;
    if (!strncmp(s, "mlx.core.", 9)) s += 9;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(s, tab[i].n)) return tab[i].t;
    return -1;
}

/* shape array -> dims and byte size (overflow-checked); -1 when unusable */
static int shape_bytes(const cJSON *a, int dtype, uint64_t *dims, uint32_t *nd, uint64_t *nbytes)
{
    uint64_t n = 1;
    const cJSON *x;
    *nd = 0;
    if (!cJSON_IsArray(a)) return -1;
    cJSON_ArrayForEach(x, a)
    {
        if (*nd >= MC_ST_MAX_DIMS || !cJSON_IsNumber(x) || x->valuedouble < 0 ||
            x->valuedouble >= (double)MC_ST_NUM_LIMIT || x->valuedouble != (double)(uint64_t)x->valuedouble)
            return -1;
        dims[(*nd)++] = (uint64_t)x->valuedouble;
        if (mc_mul_u64(n, (uint64_t)x->valuedouble, &n)) return -1;
    }
    return mc_type_nbytes(dtype, n, nbytes) ? -1 : 0;
}

/* ---- modules (what the quantization rules see) ---- */

typedef struct fmod {
    char path[384];
    int expert, have_w, have_s, bf16_bin;
    uint32_t wnd;
    uint64_t wcols, scols;
} fmod;

typedef struct folder {
    const char *dir;
    cJSON *cfg;
    const cJSON *sb;
    int n_layers;
    fmod *mods;
    size_t n_mods, cap_mods;
    int ffn_bin, ffn_st, experts, names_mlp, names_sw, tokenizer;
    int nomem;
} folder;

static const char *strip_lm(const char *name)
{
    return strncmp(name, "language_model.", 15) ? name : name + 15;
}

/* Record tensor name (full path) with its shape (per expert for experts). */
static void add_tensor(folder *F, const char *name, const uint64_t *dims, uint32_t nd, int dtype, int expert, int in_bin)
{
    static const char *const sfx[] = { ".weight", ".scales", ".biases" };
    size_t n = strlen(name), k;
    for (k = 0; k < 3; k++)
        if (n > strlen(sfx[k]) && !strcmp(name + n - strlen(sfx[k]), sfx[k])) break;
    if (k == 3 || !nd) return;
    char path[384];
    snprintf(path, sizeof path, "%.*s", (int)(n - strlen(sfx[k])), strip_lm(name));
    fmod *m = NULL;
    for (size_t i = 0; i < F->n_mods && !m; i++)
        if (!strcmp(F->mods[i].path, path)) m = &F->mods[i];
    if (!m) {
        if (F->n_mods == F->cap_mods) {
            size_t nc = F->cap_mods ? F->cap_mods * 2 : 64;
            fmod *nm = realloc(F->mods, nc * sizeof *nm);
            if (!nm) {
                F->nomem = 1;
                return;
            }
            F->mods = nm;
            F->cap_mods = nc;
        }
        m = &F->mods[F->n_mods++];
        memset(m, 0, sizeof *m);
        snprintf(m->path, sizeof m->path, "%s", path);
    }
    m->expert |= expert;
    if (in_bin && dtype == MC_T_BF16) m->bf16_bin = 1;
    if (k == 0) {
        m->have_w = 1;
        m->wnd = nd + (uint32_t)expert;
        m->wcols = dims[nd - 1];
    } else if (k == 1) {
        m->have_s = 1;
        m->scols = dims[nd - 1];
    }
}

/* Bits and group size of a quantized module from config "quantization". */
static void quant_of(const folder *F, const char *path, int *bits, int *gs)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(F->cfg, "quantization"), *e;
    char alt[420];
    snprintf(alt, sizeof alt, "language_model.%s", path);
    e = cJSON_GetObjectItemCaseSensitive(q, path);
    if (!cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(q, alt);
    if (!cJSON_IsObject(e)) e = q;
    uint64_t b = 0, g = 0;
    *bits = jint(e, "bits", &b) ? 0 : (int)b;
    *gs = jint(e, "group_size", &g) ? 0 : (int)g;
}

/* The module as the rules see it; 0 when it is not one. */
static int to_module(const folder *F, const fmod *m, mc_maccode_module *out)
{
    if (!m->have_w) return 0;
    memset(out, 0, sizeof *out);
    out->path = m->path;
    out->expert = m->expert;
    if (m->have_s) {
        quant_of(F, m->path, &out->bits, &out->gs);
        out->quantizable = 1;
        out->in = out->gs > 0 ? m->scols * (uint64_t)out->gs : 0;
    } else {
        /* a float weight of 2+ dims outside norms and conv1d: a Linear or Embedding */
        out->quantizable = m->wnd >= 2 && !strstr(m->path, "norm") && !strstr(m->path, "conv1d");
        out->in = m->wcols;
    }
    return 1;
}

/* ---- reading ---- */

typedef struct vctx {
    rep r;
    mc_maccode_verify_stats *st;
    int data;       /* verify: read data (zero padding, twins) */
    unsigned char *buf, *buf2;
} vctx;

/* [a, b) of f must be zero. */
static void zero_range(vctx *v, const mc_file *f, const char *name, uint64_t a, uint64_t b)
{
    for (uint64_t off = a; off < b;) {
        size_t n = b - off < CHUNK ? (size_t)(b - off) : CHUNK;
        if (mc_file_pread(f, off, v->buf, n, NULL)) {
            mc_maccode_report(&v->r, "%s: cannot read bytes %llu..%llu", name, (unsigned long long)off,
                    (unsigned long long)(off + n));
            return;
        }
        v->st->bytes_checked += n;
        for (size_t i = 0; i < n; i++)
            if (v->buf[i]) {
                mc_maccode_report(&v->r, "%s: padding byte at offset %llu is not zero", name, (unsigned long long)(off + i));
                return;
            }
        off += n;
    }
}

/* Page 0 of a layer file: JSON, then zeros (the readers rstrip the zeros
 * and json.loads; they assert the JSON is shorter than a page). */
static cJSON *layer_header(vctx *v, const mc_file *f, const char *name)
{
    size_t n = f->size < PAGE ? (size_t)f->size : (size_t)PAGE;
    if (f->size < PAGE) /* reported, and the header still read as the engines would */
        mc_maccode_report(&v->r, "%s: %llu bytes, shorter than its 16384-byte header page", name, (unsigned long long)f->size);
    if (mc_file_pread(f, 0, v->buf, n, NULL)) {
        mc_maccode_report(&v->r, "%s: cannot read its header", name);
        return NULL;
    }
    size_t hl = strnlen((const char *)v->buf, n);
    if (hl == PAGE) {
        mc_maccode_report(&v->r, "%s: the header fills its whole first page (the readers need it shorter)", name);
        return NULL;
    }
    for (size_t i = hl; i < n; i++)
        if (v->buf[i]) {
            mc_maccode_report(&v->r, "%s: header padding byte at offset %zu is not zero", name, i);
            break;
        }
    cJSON *h = cJSON_ParseWithLength((const char *)v->buf, hl);
    if (!cJSON_IsObject(h)) {
        mc_maccode_report(&v->r, "%s: the header is not a JSON object", name);
        cJSON_Delete(h);
        return NULL;
    }
    v->st->bytes_checked += n;
    return h;
}

typedef struct rng {
    uint64_t a, b;
    const char *name;
} rng;

static int cmp_rng(const void *x, const void *y)
{
    const rng *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a ? 1 : p->b < q->b ? -1 : p->b > q->b;
}

/* Sorted ranges: overlaps (same range twice allowed when alias) and the
 * gaps between lo and hi, which must be zero. */
static void ranges_check(vctx *v, const mc_file *f, const char *name, rng *r, size_t n, uint64_t base, uint64_t lo,
                         uint64_t hi, int aliases)
{
    qsort(r, n, sizeof *r, cmp_rng);
    uint64_t cur = lo;
    for (size_t i = 0; i < n; i++) {
        if (r[i].a < cur) {
            int same = i > 0 && r[i].a == r[i - 1].a && r[i].b == r[i - 1].b;
            if (!(aliases && same))
                mc_maccode_report(&v->r, "%s: %s [%llu, %llu) overlaps %s", name, r[i].name, (unsigned long long)r[i].a,
                        (unsigned long long)r[i].b, i ? r[i - 1].name : "the header");
        } else if (v->data && r[i].a > cur) {
            zero_range(v, f, name, base + cur, base + r[i].a);
        }
        if (r[i].b > cur) cur = r[i].b;
    }
    if (v->data && hi > cur) zero_range(v, f, name, base + cur, base + hi);
}

static const char *const g_ffn_names[] = {
    "mlp.gate_proj.weight", "mlp.gate_proj.scales", "mlp.gate_proj.biases",
    "mlp.up_proj.weight",   "mlp.up_proj.scales",   "mlp.up_proj.biases",
    "mlp.down_proj.weight", "mlp.down_proj.scales", "mlp.down_proj.biases",
};

/* ffn_aligned/layer_NN.bin (flash_aligned_v1). */
static cJSON *check_ffn_bin(vctx *v, folder *F, const char *path, const char *name, int L)
{
    mc_file f;
    if (mc_file_open(&f, path, NULL)) {
        mc_maccode_report(&v->r, "%s: missing or unreadable (the engines open it for layer %d)", name, L);
        return NULL;
    }
    cJSON *h = layer_header(v, &f, name);
    const cJSON *tens = cJSON_GetObjectItemCaseSensitive(h, "tensors"), *t;
    uint64_t ps = 0, li = 0, total = 0, end = PAGE;
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(tens);
    rng *r = h ? malloc((cap ? cap : 1) * sizeof *r) : NULL;
    if (!h) goto done;
    if (!r) {
        F->nomem = 1;
        goto done;
    }
    v->st->n_files++;
    if (!jstr(h, "format") || strcmp(jstr(h, "format"), "flash_aligned_v1"))
        mc_maccode_report(&v->r, "%s: format is not \"flash_aligned_v1\"", name);
    if (jint(h, "page_size", &ps) || ps != PAGE) mc_maccode_report(&v->r, "%s: page_size is not 16384", name);
    if (jint(h, "layer_idx", &li) || li != (uint64_t)L) mc_maccode_report(&v->r, "%s: layer_idx is not %d", name, L);
    if (!cJSON_IsObject(tens) || !cap) mc_maccode_report(&v->r, "%s: no \"tensors\" object", name);
    cJSON_ArrayForEach(t, tens)
    {
        uint64_t off = 0, nb = 0, want = 0, dims[MC_ST_MAX_DIMS], e;
        uint32_t nd = 0;
        int dt = mlx_dtype(jstr(t, "dtype"));
        v->st->n_tensors++;
        if (jint(t, "offset", &off) || jint(t, "nbytes", &nb) || dt < 0 ||
            shape_bytes(cJSON_GetObjectItemCaseSensitive(t, "shape"), dt, dims, &nd, &want)) {
            mc_maccode_report(&v->r, "%s: %s: offset, nbytes, dtype or shape unusable", name, t->string);
            continue;
        }
        if (nb != want)
            mc_maccode_report(&v->r, "%s: %s: nbytes %llu, its shape and dtype make %llu", name, t->string,
                    (unsigned long long)nb, (unsigned long long)want);
        if (off % PAGE || off < PAGE)
            mc_maccode_report(&v->r, "%s: %s: offset %llu is not a multiple of 16384 after the header", name, t->string,
                    (unsigned long long)off);
        if (mc_add_u64(off, nb, &e) || e > f.size) {
            mc_maccode_report(&v->r, "%s: %s: bytes [%llu, +%llu) outside the file (%llu bytes)", name, t->string,
                    (unsigned long long)off, (unsigned long long)nb, (unsigned long long)f.size);
            continue;
        }
        if (e > end) end = e;
        r[n++] = (rng){ off, e, t->string };
        char full[420];
        snprintf(full, sizeof full, "model.layers.%d.%s", L, t->string);
        add_tensor(F, full, dims, nd, dt, 0, 1);
    }
    for (size_t k = 0; k < sizeof g_ffn_names / sizeof g_ffn_names[0]; k++)
        if (!cJSON_GetObjectItemCaseSensitive(tens, g_ffn_names[k]))
            mc_maccode_report(&v->r, "%s: no %s (the engines index it)", name, g_ffn_names[k]);
    if (jint(h, "total_size", &total) || total != f.size)
        mc_maccode_report(&v->r, "%s: total_size is not the file size %llu", name, (unsigned long long)f.size);
    if (f.size != mc_flash_align(end))
        mc_maccode_report(&v->r, "%s: %llu bytes; the last tensor ends at %llu (expected %llu, its 16 KiB boundary)", name,
                (unsigned long long)f.size, (unsigned long long)end, (unsigned long long)mc_flash_align(end));
    ranges_check(v, &f, name, r, n, 0, PAGE, f.size, 0);
done:
    free(r);
    mc_file_close(&f);
    return h;
}

/* ffn/layer_NN.safetensors: a strict safetensors file with the FFN names;
 * beside an ffn_aligned/ twin, the twin's tensors byte for byte and zero
 * pads. */
static void check_ffn_st(vctx *v, folder *F, const char *path, const char *name, int L, const cJSON *twin,
                         const char *twin_path)
{
    mc_st *st = NULL;
    mc_error e = { MC_OK, "" };
    if (mc_st_open(path, &st, &e)) {
        mc_maccode_report(&v->r, "%s: %s", name, e.msg);
        return;
    }
    v->st->n_files++;
    mc_file tf = { -1, 0, NULL };
    int have_twin = twin && !mc_file_open(&tf, twin_path, NULL);
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(twin, "tensors");
    for (size_t k = 0; k < sizeof g_ffn_names / sizeof g_ffn_names[0]; k++) {
        int found = 0;
        for (uint64_t i = 0; i < st->n_tensors; i++) found |= !strcmp(st->tensors[i].name, g_ffn_names[k]);
        if (!found) mc_maccode_report(&v->r, "%s: no %s (the engines index it)", name, g_ffn_names[k]);
    }
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        const mc_st_tensor *t = &st->tensors[i];
        int pad = !strncmp(t->name, "mconv.pad.", 10);
        v->st->n_tensors += !pad;
        if (!pad) {
            char full[420];
            snprintf(full, sizeof full, "model.layers.%d.%s", L, t->name);
            add_tensor(F, full, t->shape, t->n_dims, t->type, 0, 0);
        }
        if (!v->data) continue;
        mc_file sf;
        if (mc_file_open(&sf, path, NULL)) continue;
        if (pad) {
            zero_range(v, &sf, name, t->file_offset, t->file_offset + t->nbytes);
        } else if (have_twin) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(tt, t->name);
            uint64_t off = 0, nb = 0;
            if (!b || jint(b, "offset", &off) || jint(b, "nbytes", &nb) || nb != t->nbytes ||
                mlx_dtype(jstr(b, "dtype")) != t->type) {
                mc_maccode_report(&v->r, "%s: %s differs from its ffn_aligned/ twin (name, dtype or size)", name, t->name);
            } else {
                for (uint64_t o = 0; o < nb;) {
                    size_t c = nb - o < CHUNK ? (size_t)(nb - o) : CHUNK;
                    if (mc_file_pread(&sf, t->file_offset + o, v->buf, c, NULL) ||
                        mc_file_pread(&tf, off + o, v->buf2, c, NULL) || memcmp(v->buf, v->buf2, c)) {
                        mc_maccode_report(&v->r, "%s: %s: bytes differ from its ffn_aligned/ twin", name, t->name);
                        break;
                    }
                    v->st->bytes_checked += c;
                    o += c;
                }
            }
        }
        mc_file_close(&sf);
    }
    if (have_twin) mc_file_close(&tf);
    mc_st_close(st);
}

/* A moe_flash_v1 layout (or the older one): blocks, tensors, names. */
static void check_experts(vctx *v, folder *F, const char *path, const char *name, int L, cJSON **first)
{
    mc_file f;
    if (mc_file_open(&f, path, NULL)) {
        mc_maccode_report(&v->r, "%s: missing or unreadable (the engines open it for layer %d)", name, L);
        return;
    }
    cJSON *h = layer_header(v, &f, name);
    const cJSON *lay = cJSON_GetObjectItemCaseSensitive(h, "layout");
    const cJSON *tens = cJSON_GetObjectItemCaseSensitive(lay, "tensors"), *t;
    uint64_t E = 0, E2 = 0, B = 0, ds = 0, li = 0, total = 0, need = 0;
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(tens);
    rng *r = NULL;
    int ok = h != NULL;
    if (!h) goto done;
    v->st->n_files++;
    if (jstr(h, "format") && strcmp(jstr(h, "format"), "moe_flash_v1"))
        mc_maccode_report(&v->r, "%s: format is neither \"moe_flash_v1\" nor absent (the older form)", name);
    if (jint(h, "layer_idx", &li) || li != (uint64_t)L) mc_maccode_report(&v->r, "%s: layer_idx is not %d", name, L);
    int e1 = jint(lay, "num_experts", &E), e2 = jint(h, "num_experts", &E2);
    if (e1 && !e2) E = E2;
    if ((e1 && e2) || (!e1 && !e2 && E != E2) || E == 0 || E > (1u << 20)) {
        mc_maccode_report(&v->r, "%s: num_experts missing, zero or inconsistent", name);
        ok = 0;
    }
    if (jint(lay, "expert_block_size", &B) || B == 0 || B % PAGE) {
        mc_maccode_report(&v->r, "%s: expert_block_size is not a positive multiple of 16384", name);
        ok = 0;
    }
    if (jint(lay, "data_start", &ds) || ds < PAGE || ds % PAGE) {
        mc_maccode_report(&v->r, "%s: data_start is not a multiple of 16384 after the header", name);
        ok = 0;
    }
    if (!cJSON_IsObject(tens) || !cap) {
        mc_maccode_report(&v->r, "%s: no layout.tensors", name);
        ok = 0;
    }
    if (ok && (mc_mul_u64(E, B, &need) || mc_add_u64(need, ds, &need) || need != f.size)) {
        mc_maccode_report(&v->r, "%s: %llu bytes; data_start + num_experts x expert_block_size is %llu", name,
                (unsigned long long)f.size, (unsigned long long)need);
        ok = 0;
    }
    if (!jint(h, "total_size", &total) && total != f.size)
        mc_maccode_report(&v->r, "%s: total_size is not the file size %llu", name, (unsigned long long)f.size);
    if (!ok) goto done;
    if (!(r = malloc(cap * sizeof *r))) {
        F->nomem = 1;
        goto done;
    }
    int mlp = 1, sw = 1;
    cJSON_ArrayForEach(t, tens)
    {
        uint64_t io = 0, nb = 0, want = 0, dims[MC_ST_MAX_DIMS], e;
        uint32_t nd = 0;
        int dt = mlx_dtype(jstr(t, "dtype"));
        if (jint(t, "inner_offset", &io) || jint(t, "nbytes", &nb) || dt < 0 ||
            shape_bytes(cJSON_GetObjectItemCaseSensitive(t, "shape_per_expert"), dt, dims, &nd, &want)) {
            mc_maccode_report(&v->r, "%s: %s: inner_offset, nbytes, dtype or shape_per_expert unusable", name, t->string);
            continue;
        }
        if (nb != want)
            mc_maccode_report(&v->r, "%s: %s: nbytes %llu, its shape and dtype make %llu", name, t->string,
                    (unsigned long long)nb, (unsigned long long)want);
        if (mc_add_u64(io, nb, &e) || e > B) {
            mc_maccode_report(&v->r, "%s: %s: [%llu, +%llu) outside its %llu-byte expert block", name, t->string,
                    (unsigned long long)io, (unsigned long long)nb, (unsigned long long)B);
            continue;
        }
        r[n++] = (rng){ io, e, t->string };
        v->st->n_tensors++;
        /* one name of an alias pair feeds the modules; aliases must agree */
        const char *full = t->string;
        char fn[420];
        if (!strncmp(full, "switch_mlp.", 11)) {
            char alias[420];
            snprintf(alias, sizeof alias, "mlp.%s", full);
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(tens, alias);
            if (o && !cJSON_Compare(o, t, 1))
                mc_maccode_report(&v->r, "%s: %s and %s differ (the two names of one tensor)", name, t->string, alias);
            if (o) continue;
            snprintf(fn, sizeof fn, "model.layers.%d.mlp.%s", L, full);
        } else {
            snprintf(fn, sizeof fn, "model.layers.%d.%s", L, full);
        }
        add_tensor(F, fn, dims, nd, dt, 1, 0);
    }
    static const char *const proj[] = { "gate_proj", "up_proj", "down_proj" }, *const part[] = { "weight", "scales", "biases" };
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            char nm[64];
            snprintf(nm, sizeof nm, "mlp.switch_mlp.%s.%s", proj[a], part[b]);
            mlp &= cJSON_GetObjectItemCaseSensitive(tens, nm) != NULL;
            sw &= cJSON_GetObjectItemCaseSensitive(tens, nm + 4) != NULL;
        }
    if (!mlp && !sw)
        mc_maccode_report(&v->r, "%s: neither mlp.switch_mlp.* nor switch_mlp.* names every gate/up/down weight, scales and "
                       "biases", name);
    if (!L) {
        F->names_mlp = mlp;
        F->names_sw = sw;
    }
    /* MoEExpertReader reads the layout of layer 0 for every layer */
    if (*first && !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(*first, "layout"), lay, 1))
        mc_maccode_report(&v->r, "%s: its layout differs from layer 0's (the readers use layer 0's for every layer)", name);
    for (uint64_t x = 0; x < E; x++) {
        v->st->n_blocks++;
        if (!v->data) break;
        rng *c = malloc((n ? n : 1) * sizeof *c);
        if (!c) {
            F->nomem = 1;
            break;
        }
        memcpy(c, r, n * sizeof *c);
        uint64_t before = v->r.n;
        ranges_check(v, &f, name, c, n, ds + x * B, 0, B, 1);
        free(c);
        if (v->r.n != before) break; /* one expert's report is enough */
    }
done:
    free(r);
    mc_file_close(&f);
    if (h && !*first) *first = h;
    else cJSON_Delete(h);
}

/* Symbolic links must resolve inside the folder; count them and extra hard
 * links. depth: how far below dir. */
static void check_links(vctx *v, const char *root, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = mc_path_join(dir, de->d_name);
        struct stat st;
        if (p && !lstat(p, &st)) {
            if (S_ISLNK(st.st_mode)) {
                char res[PATH_MAX];
                size_t rl = strlen(root);
                v->st->n_links++;
                if (!realpath(p, res)) mc_maccode_report(&v->r, "%s: a broken symbolic link", p + rl + 1);
                else if (strncmp(res, root, rl) || (res[rl] && res[rl] != '/'))
                    mc_maccode_report(&v->r, "%s: a symbolic link to %s, outside the folder", p + rl + 1, res);
            } else if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
                v->st->n_links++;
            } else if (S_ISDIR(st.st_mode) && depth < 2) {
                check_links(v, root, p, depth + 1);
            }
        }
        free(p);
    }
    if (d) closedir(d);
}

typedef struct ino {
    dev_t dev;
    ino_t ino;
} ino;

static void disk_walk(const char *dir, int depth, ino **seen, size_t *n, size_t *cap, uint64_t *disk,
                      uint64_t *apparent, int *nomem)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = mc_path_join(dir, de->d_name);
        struct stat st;
        if (p && !lstat(p, &st)) {
            if (S_ISDIR(st.st_mode) && depth < 8) {
                disk_walk(p, depth + 1, seen, n, cap, disk, apparent, nomem);
            } else if (S_ISREG(st.st_mode)) {
                size_t k = 0;
                while (k < *n && !((*seen)[k].dev == st.st_dev && (*seen)[k].ino == st.st_ino)) k++;
                if (k == *n) {
                    if (*n == *cap) {
                        size_t nc = *cap ? *cap * 2 : 64;
                        ino *ns = realloc(*seen, nc * sizeof *ns);
                        if (!ns) {
                            *nomem = 1;
                            free(p);
                            break;
                        }
                        *seen = ns;
                        *cap = nc;
                    }
                    (*seen)[(*n)++] = (ino){ st.st_dev, st.st_ino };
                    *disk += (uint64_t)st.st_blocks * 512u;
                    *apparent += (uint64_t)st.st_size;
                }
            }
        }
        free(p);
    }
    if (d) closedir(d);
}

int mc_maccode_disk_use(const char *dir, uint64_t *disk, uint64_t *apparent, mc_error *err)
{
    ino *seen = NULL;
    size_t n = 0, cap = 0;
    int nomem = 0;
    *disk = *apparent = 0;
    if (!mc_io_is_dir(dir)) return mc_error_set(err, MC_ERR_IO, "%s: not a folder", dir);
    disk_walk(dir, 0, &seen, &n, &cap, disk, apparent, &nomem);
    free(seen);
    return nomem ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

/* A relative path without ".." components (a folder inside the model's). */
static int inside(const char *p)
{
    if (!*p || *p == '/') return 0;
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += n;
        while (*s == '/') s++;
    }
    return 1;
}

/* Read (and with v->data, verify) the whole folder into F. */
static int load(vctx *v, folder *F, const char *dir, mc_error *err)
{
    memset(F, 0, sizeof *F);
    F->dir = dir;
    if (!(F->cfg = folder_config(dir, err))) return err && err->code ? err->code : MC_ERR_FORMAT;
    F->sb = cJSON_GetObjectItemCaseSensitive(F->cfg, "streaming");
    uint64_t nl = 0;
    if (jint(F->cfg, "num_hidden_layers", &nl) || nl == 0 || nl > 100000) {
        mc_maccode_report(&v->r, "config.json: num_hidden_layers missing or unusable (the engines read it)");
        nl = 0;
    }
    F->n_layers = (int)nl;
    const char *pf = jstr(F->sb, "pinned_file");
    if (!pf || strcmp(pf, "pinned.safetensors"))
        mc_maccode_report(&v->r, "config.json: streaming.pinned_file is not \"pinned.safetensors\" (the name the engines load)");
    char *pp = mc_path_join(dir, "pinned.safetensors");
    mc_st *st = NULL;
    mc_error e = { MC_OK, "" };
    if (!pp || mc_st_open(pp, &st, &e)) {
        mc_maccode_report(&v->r, "pinned.safetensors: %s", pp ? e.msg : "out of memory");
    } else {
        v->st->n_files++;
        for (uint64_t i = 0; i < st->n_tensors; i++) {
            const mc_st_tensor *t = &st->tensors[i];
            v->st->n_tensors++;
            add_tensor(F, t->name, t->shape, t->n_dims, t->type, 0, 0);
        }
        mc_st_close(st);
    }
    free(pp);
    char *tp = mc_path_join(dir, "tokenizer.json");
    F->tokenizer = tp && mc_io_exists(tp);
    free(tp);

    /* dense layers: ffn_aligned/ and the safetensors folder (ffn_dir, or ffn/) */
    const char *fd0 = jstr(F->sb, "ffn_dir"), *xd0 = jstr(F->sb, "expert_dir");
    char fdb[256], xdb[256]; /* without trailing slashes (names in messages) */
    const char *fd = fd0 ? (snprintf(fdb, sizeof fdb, "%s", fd0), fdb) : NULL;
    const char *xd = xd0 ? (snprintf(xdb, sizeof xdb, "%s", xd0), xdb) : NULL;
    for (size_t l = fd ? strlen(fdb) : 0; l > 1 && fdb[l - 1] == '/'; l--) fdb[l - 1] = 0;
    for (size_t l = xd ? strlen(xdb) : 0; l > 1 && xdb[l - 1] == '/'; l--) xdb[l - 1] = 0;
    if (fd && !inside(fd)) {
        mc_maccode_report(&v->r, "config.json: streaming.ffn_dir \"%s\" is not a folder inside the model folder", fd);
        fd = NULL;
    }
    if (xd && !inside(xd)) {
        mc_maccode_report(&v->r, "config.json: streaming.expert_dir \"%s\" is not a folder inside the model folder", xd);
        xd = NULL;
    }
    char *ab = mc_path_join(dir, "ffn_aligned"), *sd = mc_path_join(dir, fd ? fd : "ffn");
    char *xp = xd ? mc_path_join(dir, xd) : NULL;
    F->ffn_bin = ab && mc_io_is_dir(ab);
    F->ffn_st = sd && mc_io_is_dir(sd);
    F->experts = xp && mc_io_is_dir(xp);
    if (fd && !F->ffn_st) mc_maccode_report(&v->r, "config.json: streaming.ffn_dir \"%s\" is not a folder", fd);
    if (xd && !F->experts) mc_maccode_report(&v->r, "config.json: streaming.expert_dir \"%s\" is not a folder", xd);
    cJSON *first = NULL;
    uint64_t missing_before = 0;
    for (int L = 0; L < F->n_layers && !F->nomem; L++) {
        char nm[96], *p;
        cJSON *twin = NULL;
        /* the engines stop at the first layer file they cannot open: so does this */
        const char *form[3] = { F->ffn_bin ? "ffn_aligned" : NULL, F->ffn_st ? (fd ? fd : "ffn") : NULL,
                                F->experts ? xd : NULL };
        const char *ext[3] = { "bin", "safetensors", "bin" };
        int gone = 0;
        for (int k = 0; k < 3 && !gone; k++) {
            char fnm[600];
            if (!form[k]) continue;
            snprintf(fnm, sizeof fnm, "%s/layer_%02d.%s", form[k], L, ext[k]);
            char *fp = mc_path_join(dir, fnm);
            if (fp && !mc_io_exists(fp)) {
                mc_maccode_report(&v->r, "%s: missing (the engines open it for layer %d of %d); later layers not checked", fnm,
                        L, F->n_layers);
                gone = 1;
            }
            free(fp);
        }
        if (gone) break;
        if (F->ffn_bin) {
            snprintf(nm, sizeof nm, "ffn_aligned/layer_%02d.bin", L);
            p = mc_path_join(dir, nm);
            twin = p ? check_ffn_bin(v, F, p, nm, L) : NULL;
            if (F->ffn_st) {
                char sn[600], *q;
                snprintf(sn, sizeof sn, "%s/layer_%02d.safetensors", fd ? fd : "ffn", L);
                q = mc_path_join(dir, sn);
                if (q) check_ffn_st(v, F, q, sn, L, twin, p);
                free(q);
            }
            free(p);
            cJSON_Delete(twin);
        } else if (F->ffn_st) {
            char sn[600], *q;
            snprintf(sn, sizeof sn, "%s/layer_%02d.safetensors", fd ? fd : "ffn", L);
            q = mc_path_join(dir, sn);
            if (q && mc_io_exists(q)) check_ffn_st(v, F, q, sn, L, NULL, NULL);
            else mc_maccode_report(&v->r, "%s: missing (the engines open it for layer %d)", sn, L);
            free(q);
        }
        if (F->experts) {
            char xn[600];
            snprintf(xn, sizeof xn, "%s/layer_%02d.bin", xd, L);
            p = mc_path_join(dir, xn);
            if (p) check_experts(v, F, p, xn, L, &first);
            free(p);
        }
        if (L == 0) missing_before = v->r.n;
        else if (v->r.n > missing_before + 1000) { /* a folder this broken: enough said */
            mc_maccode_report(&v->r, "more problems in layers %d and later not listed", L + 1);
            break;
        }
    }
    uint64_t se = 0;
    if (first && !jint(F->sb, "num_experts", &se)) {
        const cJSON *lay = cJSON_GetObjectItemCaseSensitive(first, "layout");
        uint64_t E = 0;
        if ((!jint(lay, "num_experts", &E) || !jint(first, "num_experts", &E)) && E != se)
            mc_maccode_report(&v->r, "config.json: streaming.num_experts %llu, the expert files hold %llu",
                    (unsigned long long)se, (unsigned long long)E);
    }
    if (!F->ffn_bin && !F->ffn_st && !F->experts) mc_maccode_report(&v->r, "no layer files: nothing is streamed");
    cJSON_Delete(first);
    free(ab);
    free(sd);
    free(xp);
    if (F->nomem) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

static void folder_free(folder *F)
{
    cJSON_Delete(F->cfg);
    free(F->mods);
}

int mc_maccode_verify(const char *dir, mc_maccode_problem_fn fn, void *ctx, mc_maccode_verify_stats *stats,
                      mc_error *err)
{
    mc_maccode_verify_stats local;
    vctx v;
    folder F;
    memset(&v, 0, sizeof v);
    v.r = (rep){ fn, ctx, 0 };
    v.st = stats ? stats : &local;
    memset(v.st, 0, sizeof *v.st);
    v.data = 1;
    v.buf = malloc(CHUNK);
    v.buf2 = malloc(CHUNK);
    if (!v.buf || !v.buf2) {
        free(v.buf);
        free(v.buf2);
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    int rc = load(&v, &F, dir, err);
    if (!rc) {
        /* each quantized module: its shapes make the bits config.quantization says */
        for (size_t i = 0; i < F.n_mods; i++) {
            mc_maccode_module m;
            const fmod *fm = &F.mods[i];
            if (!to_module(&F, fm, &m) || !fm->have_s) continue;
            if (m.bits <= 0 || m.gs <= 0)
                mc_maccode_report(&v.r, "%s: quantized, but config.json \"quantization\" gives no bits and group size", m.path);
            else if (fm->wcols * 32 != m.in * (uint64_t)m.bits)
                mc_maccode_report(&v.r, "%s: weight and scales shapes do not make %d-bit group-%d codes (config.json "
                              "\"quantization\")", m.path, m.bits, m.gs);
        }
        char root[PATH_MAX];
        if (realpath(dir, root)) check_links(&v, root, root, 0);
        mc_maccode_disk_use(dir, &v.st->disk_bytes, &v.st->apparent_bytes, NULL);
        folder_free(&F);
    }
    free(v.buf);
    free(v.buf2);
    v.st->n_problems = v.r.n;
    if (rc) return rc;
    if (v.r.n)
        return mc_error_set(err, MC_ERR_CHECKSUM, "%s: %llu problem%s found", dir, (unsigned long long)v.r.n,
                            v.r.n == 1 ? "" : "s");
    return 0;
}

/* ---- which engines can read it ---- */

static void first_reason(void *ctx, const char *msg)
{
    char *buf = ctx;
    if (!buf[0]) snprintf(buf, 256, "%s", msg);
}

int mc_maccode_scan(const char *dir, mc_maccode_scan_info *info, mc_error *err)
{
    mc_maccode_verify_stats st;
    vctx v;
    folder F;
    memset(info, 0, sizeof *info);
    memset(&v, 0, sizeof v);
    v.st = &st;
    memset(&st, 0, sizeof st);
    v.buf = malloc(CHUNK);
    if (!v.buf) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    int rc = load(&v, &F, dir, err);
    free(v.buf);
    if (rc) return rc;
    const char *mt = jstr(F.cfg, "model_type");
    snprintf(info->model_type, sizeof info->model_type, "%s", mt ? mt : "");
    info->n_layers = F.n_layers;
    info->ffn_bin = F.ffn_bin;
    info->ffn_st = F.ffn_st;
    info->experts = F.experts;
    info->names_mlp = F.names_mlp;
    info->names_sw = F.names_sw;
    info->tokenizer = F.tokenizer;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(F.cfg, "quantization");
    uint64_t b = 0, g = 0;
    if (!jint(q, "bits", &b) && !jint(q, "group_size", &g)) {
        info->bits = (int)b;
        info->group_size = (int)g;
    }
    const char *xd = jstr(F.sb, "expert_dir");
    char *bin = mc_path_join(dir, "bin");
    int has_bin_dir = bin && mc_io_is_dir(bin);
    free(bin);
    size_t n;
    const mc_maccode_engine *E = mc_maccode_engines(&n);
    info->family = mc_maccode_family(mt, 0);
    for (size_t i = 0; i < n; i++) {
        if (!(info->family & (1u << i))) continue;
        char *why = info->why[i];
        why[0] = 0;
        unsigned r = E[i].reads;
        if (v.r.n) snprintf(why, 256, "the folder is not sound (mconv verify lists %llu problems)",
                            (unsigned long long)v.r.n);
        else if ((r & MC_MCR_FFN_ST) && !F.ffn_st) snprintf(why, 256, "no ffn/layer_NN.safetensors");
        else if ((r & MC_MCR_FFN_ST) && (!jstr(F.sb, "ffn_dir") && strcmp(E[i].model_type, "qwen3_5")))
            snprintf(why, 256, "no streaming.ffn_dir in config.json");
        else if ((r & MC_MCR_FFN_BIN) && !F.ffn_bin) snprintf(why, 256, "no ffn_aligned/layer_NN.bin");
        else if ((r & MC_MCR_FFN_ANY) && !F.ffn_bin && !F.ffn_st) snprintf(why, 256, "no FFN layer files");
        else if ((r & MC_MCR_FFN_ANY) && !F.ffn_bin && !jstr(F.sb, "ffn_dir"))
            snprintf(why, 256, "no ffn_aligned/ and no streaming.ffn_dir");
        else if ((r & (MC_MCR_EXP_MLP | MC_MCR_EXP_SW)) && !F.experts)
            snprintf(why, 256, "no expert layer files (streaming.expert_dir)");
        else if ((r & MC_MCR_EXP_MLP) && !F.names_mlp) snprintf(why, 256, "experts not named mlp.switch_mlp.*");
        else if ((r & MC_MCR_EXP_SW) && !F.names_sw) snprintf(why, 256, "experts not named switch_mlp.*");
        else if ((r & MC_MCR_EXP_SW) && (!has_bin_dir || !xd || strcmp(xd, "bin")))
            snprintf(why, 256, "the expert files are not in bin/ (streaming.expert_dir \"bin\")");
        else if ((r & MC_MCR_TOK_DIR) && !F.tokenizer) snprintf(why, 256, "no tokenizer.json in the folder");
        if (!why[0]) /* quantization as this engine builds it */
            for (size_t k = 0; k < F.n_mods && !why[0]; k++) {
                mc_maccode_module m;
                if (!to_module(&F, &F.mods[k], &m)) continue;
                int w = mc_maccode_want_bits(&E[i], &m);
                if (w != m.bits || (w && m.gs != 64))
                    snprintf(why, 256, "%.160s is stored %s%d-bit, it builds it %d-bit group 64", m.path,
                             m.bits ? "" : "un", m.bits, w);
                else if (F.mods[k].bf16_bin && (r & (MC_MCR_FFN_BIN | MC_MCR_FFN_ANY)))
                    snprintf(why, 256, "%.160s is bfloat16 in ffn_aligned/: direct_io.py reads it as float16",
                             m.path);
            }
        if (!why[0]) { /* the config keys it reads */
            cJSON *c = cJSON_Duplicate(F.cfg, 1);
            cJSON *orig = cJSON_Duplicate(F.cfg, 1);
            if (c && orig) {
                mc_maccode_config(c, 1u << i, first_reason, why);
                /* a key the engine reads that had to be filled in is missing */
                const cJSON *x;
                cJSON_ArrayForEach(x, c) if (!why[0] && !cJSON_GetObjectItemCaseSensitive(orig, x->string))
                    snprintf(why, 256, "config.json has no %s", x->string);
            }
            cJSON_Delete(c);
            cJSON_Delete(orig);
        }
        if (!why[0]) info->readers |= 1u << i;
    }
    folder_free(&F);
    return 0;
}
