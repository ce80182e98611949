#include "mc_flash.h"
#include "mc_flash_meta.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mc_types.h"

/* ---- header ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void mc_flash_header_encode(const mc_flash_header *h, unsigned char *out)
{
    memset(out, 0, MC_FLASH_HEADER_BYTES);
    memcpy(out, MC_FLASH_MAGIC, 8);
    put_u32(out + 8, h->version);
    put_u32(out + 12, h->page_size);
    put_u64(out + 16, h->manifest_offset);
    put_u64(out + 24, h->manifest_length);
    put_u64(out + 32, h->file_size);
    put_u64(out + 40, h->manifest_xxh3);
}

int mc_flash_sniff(const unsigned char *buf, size_t n)
{
    return n >= 8 && memcmp(buf, MC_FLASH_MAGIC, 8) == 0;
}

int mc_flash_header_decode(const unsigned char *buf, size_t n, mc_flash_header *h, mc_error *err)
{
    if (n < MC_FLASH_HEADER_BYTES || !mc_flash_sniff(buf, n))
        return mc_error_set(err, MC_ERR_FORMAT, "not a .flash file (no MCFLASH header)");
    h->version = get_u32(buf + 8);
    h->page_size = get_u32(buf + 12);
    h->manifest_offset = get_u64(buf + 16);
    h->manifest_length = get_u64(buf + 24);
    h->file_size = get_u64(buf + 32);
    h->manifest_xxh3 = get_u64(buf + 40);
    return 0;
}

void mc_flash_hex64(uint64_t v, char *buf)
{
    snprintf(buf, 17, "%016llx", (unsigned long long)v);
}

int mc_flash_parse_hex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || strlen(s) != 16) return -1;
    for (int i = 0; i < 16; i++) {
        int c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* ---- problem reporting (open stops at the first, verify lists all) ---- */

typedef struct rep {
    mc_flash_problem_fn fn;
    void *ctx;
    uint64_t n;
    const char *path;
    mc_error *first; /* open: the first problem becomes the error */
} rep;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void report(rep *r, const char *fmt, ...)
{
    char msg[MC_ERROR_MSG_MAX];
    int k = snprintf(msg, sizeof msg, "%s: ", r->path);
    va_list ap;
    va_start(ap, fmt);
    if (k > 0 && (size_t)k < sizeof msg) vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    va_end(ap);
    r->n++;
    if (r->first && r->first->code == MC_OK) mc_error_set(r->first, MC_ERR_FORMAT, "%s", msg);
    if (r->fn) r->fn(r->ctx, msg);
}

/* ---- manifest parsing ---- */

/* v as an exact non-negative integer below 2^53: 0, else -1. */
static int exact_u53(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

int mc_flash_json_u64(const cJSON *o, const char *key, uint64_t *out)
{
    return exact_u53(cJSON_GetObjectItemCaseSensitive(o, key), out);
}

static int get_int(const cJSON *o, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= -1.0) || d > 2147483647.0 || d != (double)(int)d) return -1;
    *out = (int)d;
    return 0;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int get_shape(const cJSON *o, const char *key, uint32_t *n_dims, uint64_t *shape)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *e;
    uint32_t n = 0;
    if (!cJSON_IsArray(a)) return -1;
    cJSON_ArrayForEach(e, a) {
        if (n >= MC_FLASH_MAX_DIMS || exact_u53(e, &shape[n])) return -1;
        n++;
    }
    *n_dims = n;
    return 0;
}

static int get_dtype(const cJSON *o, const char *key)
{
    const char *s = get_str(o, key);
    if (!s) return -1;
    int t = mc_type_from_st_name(s);
    if (t < 0) t = mc_type_from_name(s);
    return t;
}

static int parse_tables(mc_flash *f, rep *r)
{
    const cJSON *m = f->manifest, *e, *arr;
    uint64_t before = r->n;
    const char *fmt = get_str(m, "format");
    uint64_t u;
    if (!fmt || strcmp(fmt, "mconv-flash") != 0) report(r, "manifest: \"format\" is not \"mconv-flash\"");
    if (mc_flash_json_u64(m, "version", &u) || u != MC_FLASH_VERSION) report(r, "manifest: \"version\" is not 1");
    if (mc_flash_json_u64(m, "page_size", &u) || u != MC_FLASH_PAGE) report(r, "manifest: \"page_size\" is not 16384");
    const cJSON *pin = cJSON_GetObjectItemCaseSensitive(m, "pinned");
    if (!cJSON_IsObject(pin) || mc_flash_json_u64(pin, "offset", &f->pinned_offset) ||
        mc_flash_json_u64(pin, "nbytes", &f->pinned_nbytes))
        report(r, "manifest: \"pinned\" needs offset and nbytes");
    if (get_int(m, "experts_per_tok", &f->experts_per_tok) || f->experts_per_tok < 0)
        report(r, "manifest: \"experts_per_tok\" missing or negative");
    if (r->first && r->n > before) return -1;

    arr = cJSON_GetObjectItemCaseSensitive(m, "tensors");
    if (!cJSON_IsArray(arr)) {
        report(r, "manifest: \"tensors\" table missing");
        return -1;
    }
    f->n_tensors = (size_t)cJSON_GetArraySize(arr);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->tensors) {
        report(r, "out of memory");
        return -1;
    }
    size_t i = 0;
    cJSON_ArrayForEach(e, arr) {
        mc_flash_tensor *t = &f->tensors[i++];
        const char *role = get_str(e, "role"), *hx = get_str(e, "xxh3");
        t->name = get_str(e, "name");
        t->dtype = get_dtype(e, "dtype");
        t->layer = -1;
        t->role = role && !strcmp(role, "ffn") ? MC_FLASH_FFN : MC_FLASH_PINNED;
        if (!t->name || t->dtype < 0 || get_shape(e, "shape", &t->n_dims, t->shape) ||
            mc_flash_json_u64(e, "offset", &t->offset) || mc_flash_json_u64(e, "nbytes", &t->nbytes) || !role ||
            (strcmp(role, "ffn") && strcmp(role, "pinned")) || mc_flash_parse_hex64(hx, &t->xxh3) ||
            (t->role == MC_FLASH_FFN && get_int(e, "layer", &t->layer))) {
            report(r, "manifest: tensors[%zu] (%s) is incomplete or malformed", i - 1,
                   t->name ? t->name : "no name");
            if (!t->name) t->name = "?";
            if (r->first) return -1;
        }
    }

    arr = cJSON_GetObjectItemCaseSensitive(m, "ffn");
    if (!cJSON_IsArray(arr)) {
        report(r, "manifest: \"ffn\" table missing");
        return -1;
    }
    f->n_ffn = (size_t)cJSON_GetArraySize(arr);
    f->ffn = calloc(f->n_ffn ? f->n_ffn : 1, sizeof *f->ffn);
    if (!f->ffn) {
        report(r, "out of memory");
        return -1;
    }
    i = 0;
    cJSON_ArrayForEach(e, arr) {
        mc_flash_ffn *s = &f->ffn[i++];
        if (get_int(e, "layer", &s->layer) || mc_flash_json_u64(e, "offset", &s->offset) ||
            mc_flash_json_u64(e, "nbytes", &s->nbytes)) {
            report(r, "manifest: ffn[%zu] is incomplete or malformed", i - 1);
            if (r->first) return -1;
        }
    }

    arr = cJSON_GetObjectItemCaseSensitive(m, "experts");
    if (!cJSON_IsArray(arr)) {
        report(r, "manifest: \"experts\" table missing");
        return -1;
    }
    f->n_experts = (size_t)cJSON_GetArraySize(arr);
    f->experts = calloc(f->n_experts ? f->n_experts : 1, sizeof *f->experts);
    if (!f->experts) {
        report(r, "out of memory");
        return -1;
    }
    i = 0;
    cJSON_ArrayForEach(e, arr) {
        mc_flash_experts *x = &f->experts[i++];
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "tensors");
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(e, "xxh3"), *it;
        uint64_t ne = 0;
        if (get_int(e, "layer", &x->layer) || mc_flash_json_u64(e, "offset", &x->offset) ||
            mc_flash_json_u64(e, "n_experts", &ne) || ne == 0 || ne > 1u << 20 ||
            mc_flash_json_u64(e, "stride", &x->stride) || !cJSON_IsArray(ts) || !cJSON_IsArray(hs) ||
            (uint64_t)cJSON_GetArraySize(hs) != ne) {
            report(r, "manifest: experts[%zu] is incomplete or malformed", i - 1);
            x->n_experts = 0;
            if (r->first) return -1;
            continue;
        }
        x->n_experts = (uint32_t)ne;
        x->n_tensors = (size_t)cJSON_GetArraySize(ts);
        x->tensors = calloc(x->n_tensors ? x->n_tensors : 1, sizeof *x->tensors);
        x->xxh3 = calloc(ne, sizeof *x->xxh3);
        if (!x->tensors || !x->xxh3) {
            report(r, "out of memory");
            return -1;
        }
        size_t j = 0;
        cJSON_ArrayForEach(it, ts) {
            mc_flash_etensor *t = &x->tensors[j++];
            t->name = get_str(it, "name");
            t->dtype = get_dtype(it, "dtype");
            if (!t->name || t->dtype < 0 || mc_flash_json_u64(it, "inner_offset", &t->inner_offset) ||
                mc_flash_json_u64(it, "nbytes", &t->nbytes) || get_shape(it, "shape_per_expert", &t->n_dims, t->shape)) {
                report(r, "manifest: experts[%zu] (layer %d) tensor %zu is incomplete or malformed", i - 1,
                       x->layer, j - 1);
                if (!t->name) t->name = "?";
                if (r->first) return -1;
            }
        }
        j = 0;
        cJSON_ArrayForEach(it, hs) {
            if (mc_flash_parse_hex64(cJSON_IsString(it) ? it->valuestring : NULL, &x->xxh3[j++])) {
                report(r, "manifest: experts[%zu] (layer %d) checksum %zu is not 16 hex digits", i - 1,
                       x->layer, j - 1);
                if (r->first) return -1;
            }
        }
    }
    return r->n > before ? -1 : 0;
}

/* Header and manifest: shared by open (stop at the first problem) and verify
 * (report and go on where possible). Returns 0 when the tables are usable;
 * a non-zero return with err set means "not a .flash file" or unreadable. */
static int load(mc_flash *f, const char *path, rep *r, int *usable, mc_error *err)
{
    unsigned char hb[MC_FLASH_HEADER_BYTES];
    *usable = 0;
    int rc = mc_file_open(&f->file, path, err);
    if (rc) return rc;
    if (f->file.size < MC_FLASH_HEADER_BYTES) {
        unsigned char mg[8];
        if (f->file.size >= 8 && mc_file_pread(&f->file, 0, mg, 8, NULL) == 0 && mc_flash_sniff(mg, 8))
            return mc_error_set(err, MC_ERR_FORMAT, "%s: truncated .flash header (%llu bytes)", path,
                                (unsigned long long)f->file.size);
        return mc_error_set(err, MC_ERR_FORMAT, "%s: not a .flash file (no MCFLASH header)", path);
    }
    if ((rc = mc_file_pread(&f->file, 0, hb, sizeof hb, err))) return rc;
    if (mc_flash_header_decode(hb, sizeof hb, &f->hdr, NULL))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: not a .flash file (no MCFLASH header)", path);

    const mc_flash_header *h = &f->hdr;
    if (h->version != MC_FLASH_VERSION) report(r, "header: version %u, expected 1", h->version);
    if (h->page_size != MC_FLASH_PAGE) report(r, "header: page size %u, expected 16384", h->page_size);
    if (h->file_size != f->file.size)
        report(r, "header: file size %llu but the file has %llu bytes%s", (unsigned long long)h->file_size,
               (unsigned long long)f->file.size, f->file.size < h->file_size ? " (truncated)" : "");
    if (r->first && r->n) return 0;
    uint64_t mend;
    if (mc_add_u64(h->manifest_offset, h->manifest_length, &mend) || mend > f->file.size ||
        h->manifest_offset < MC_FLASH_PAGE) {
        report(r, "header: manifest at offset %llu, length %llu lies outside the file (%llu bytes)",
               (unsigned long long)h->manifest_offset, (unsigned long long)h->manifest_length,
               (unsigned long long)f->file.size);
        return 0;
    }
    if (h->manifest_length == 0 || h->manifest_length > MC_FLASH_MANIFEST_MAX) {
        report(r, "header: manifest length %llu is not plausible", (unsigned long long)h->manifest_length);
        return 0;
    }
    f->manifest_text = malloc((size_t)h->manifest_length + 1);
    if (!f->manifest_text) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for the manifest", path);
    if ((rc = mc_file_pread(&f->file, h->manifest_offset, f->manifest_text, (size_t)h->manifest_length, err)))
        return rc;
    f->manifest_text[h->manifest_length] = '\0';
    uint64_t hash = XXH3_64bits(f->manifest_text, (size_t)h->manifest_length);
    if (hash != h->manifest_xxh3) {
        char a[17], b[17];
        mc_flash_hex64(hash, a);
        mc_flash_hex64(h->manifest_xxh3, b);
        report(r, "manifest: checksum mismatch (xxh3 %s, header says %s)", a, b);
        if (r->first) {
            if (err) { *err = *r->first; err->code = MC_ERR_CHECKSUM; }
            return MC_ERR_CHECKSUM;
        }
    }
    f->manifest = cJSON_ParseWithLength(f->manifest_text, (size_t)h->manifest_length);
    if (!cJSON_IsObject(f->manifest)) {
        report(r, "manifest: not a JSON object");
        return 0;
    }
    if (parse_tables(f, r) == 0) *usable = 1;
    return 0;
}

void mc_flash_close(mc_flash *f)
{
    if (!f) return;
    mc_file_close(&f->file);
    for (size_t i = 0; i < f->n_experts; i++) {
        free(f->experts[i].tensors);
        free(f->experts[i].xxh3);
    }
    free(f->experts);
    free(f->ffn);
    free(f->tensors);
    cJSON_Delete(f->manifest);
    free(f->manifest_text);
    free(f);
}

static int region_ok(const mc_flash *f, uint64_t off, uint64_t n)
{
    uint64_t end;
    return !mc_add_u64(off, n, &end) && end <= f->file.size;
}

int mc_flash_open(const char *path, mc_flash **out, mc_error *err)
{
    mc_error first = { MC_OK, "" };
    rep r = { NULL, NULL, 0, path, &first };
    int usable = 0;
    *out = NULL;
    mc_flash *f = calloc(1, sizeof *f);
    if (!f) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    f->file.fd = -1;
    int rc = load(f, path, &r, &usable, err);
    if (!rc && !usable) {
        rc = first.code ? first.code : MC_ERR_FORMAT;
        if (err) *err = first;
        if (err && !first.code) mc_error_set(err, MC_ERR_FORMAT, "%s: unusable manifest", path);
    }
    /* Offsets a reader would follow must at least lie inside the file. */
    for (size_t i = 0; !rc && i < f->n_tensors; i++)
        if (!region_ok(f, f->tensors[i].offset, f->tensors[i].nbytes))
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s lies outside the file", path, f->tensors[i].name);
    for (size_t i = 0; !rc && i < f->n_ffn; i++)
        if (!region_ok(f, f->ffn[i].offset, f->ffn[i].nbytes))
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: ffn span of layer %d lies outside the file", path,
                              f->ffn[i].layer);
    for (size_t i = 0; !rc && i < f->n_experts; i++) {
        uint64_t span;
        if (mc_mul_u64(f->experts[i].stride, f->experts[i].n_experts, &span) ||
            !region_ok(f, f->experts[i].offset, span))
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: experts of layer %d lie outside the file", path,
                              f->experts[i].layer);
    }
    if (rc) {
        mc_flash_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

const cJSON *mc_flash_manifest(const mc_flash *f) { return f->manifest; }

const mc_flash_tensor *mc_flash_find(const mc_flash *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const mc_flash_experts *mc_flash_find_experts(const mc_flash *f, int layer)
{
    for (size_t i = 0; i < f->n_experts; i++)
        if (f->experts[i].layer == layer) return &f->experts[i];
    return NULL;
}

const mc_flash_ffn *mc_flash_find_ffn(const mc_flash *f, int layer)
{
    for (size_t i = 0; i < f->n_ffn; i++)
        if (f->ffn[i].layer == layer) return &f->ffn[i];
    return NULL;
}

int mc_flash_read_tensor(const mc_flash *f, const mc_flash_tensor *t, void *dst, mc_error *err)
{
    return mc_file_pread(&f->file, t->offset, dst, (size_t)t->nbytes, err);
}

int mc_flash_read_ffn(const mc_flash *f, const mc_flash_ffn *s, void *dst, mc_error *err)
{
    return mc_file_pread(&f->file, s->offset, dst, (size_t)s->nbytes, err);
}

int mc_flash_read_expert(const mc_flash *f, const mc_flash_experts *x, uint32_t expert, void *dst,
                         mc_error *err)
{
    if (expert >= x->n_experts)
        return mc_error_set(err, MC_ERR_ARG, "%s: layer %d has %u experts, asked for expert %u", f->file.path,
                            x->layer, x->n_experts, expert);
    return mc_file_pread(&f->file, x->offset + (uint64_t)expert * x->stride, dst, (size_t)x->stride, err);
}

void mc_flash_token_cost(const mc_flash *f, mc_flash_cost *c)
{
    memset(c, 0, sizeof *c);
    c->pinned_bytes = f->pinned_nbytes;
    c->experts_per_tok = f->experts_per_tok;
    for (size_t i = 0; i < f->n_ffn; i++) {
        c->token_dense_bytes += f->ffn[i].nbytes;
        c->token_dense_reads++;
    }
    c->streamed_bytes = c->token_dense_bytes;
    for (size_t i = 0; i < f->n_experts; i++) {
        uint64_t k = (uint64_t)f->experts_per_tok;
        if (k > f->experts[i].n_experts) k = f->experts[i].n_experts;
        c->token_expert_bytes += k * f->experts[i].stride;
        c->token_expert_reads += k;
        c->streamed_bytes += (uint64_t)f->experts[i].n_experts * f->experts[i].stride;
    }
    c->token_bytes = c->token_dense_bytes + c->token_expert_bytes;
    c->token_reads = c->token_dense_reads + c->token_expert_reads;
}

/* ---- verify ---- */

typedef struct ival {
    uint64_t off, end;
    const char *what; /* static or a tensor name */
    int expert;       /* expert index for expert tensors, -1 otherwise */
    int layer;
} ival;

static int ival_cmp(const void *a, const void *b)
{
    const ival *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

#define VCHUNK ((size_t)1 << 22)

/* XXH3 of [off, off+n); -1 on a read error (reported). */
static int hash_range(const mc_flash *f, uint64_t off, uint64_t n, unsigned char *buf, uint64_t *out,
                      rep *r, mc_flash_verify_stats *st)
{
    XXH3_state_t *s = XXH3_createState();
    mc_error e = { MC_OK, "" };
    if (!s) return -1;
    XXH3_64bits_reset(s);
    while (n > 0) {
        size_t k = n < VCHUNK ? (size_t)n : VCHUNK;
        if (mc_file_pread(&f->file, off, buf, k, &e)) {
            report(r, "%s", e.msg);
            XXH3_freeState(s);
            return -1;
        }
        XXH3_64bits_update(s, buf, k);
        st->bytes_checked += k;
        off += k;
        n -= k;
    }
    *out = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return 0;
}

static void check_zero(const mc_flash *f, uint64_t off, uint64_t end, unsigned char *buf, rep *r,
                       mc_flash_verify_stats *st)
{
    mc_error e = { MC_OK, "" };
    uint64_t o = off;
    while (o < end) {
        size_t k = end - o < VCHUNK ? (size_t)(end - o) : VCHUNK;
        if (mc_file_pread(&f->file, o, buf, k, &e)) {
            report(r, "%s", e.msg);
            return;
        }
        st->bytes_checked += k;
        for (size_t i = 0; i < k; i++)
            if (buf[i]) {
                report(r, "padding at offset %llu (gap %llu..%llu) is not zero", (unsigned long long)(o + i),
                       (unsigned long long)off, (unsigned long long)end);
                return;
            }
        o += k;
    }
}

static void check_align(rep *r, uint64_t off, const char *what, const char *name, int layer)
{
    if (off % MC_FLASH_PAGE)
        report(r, "%s %s (layer %d) at offset %llu is not 16 KiB aligned", what, name, layer,
               (unsigned long long)off);
}

/* A stored tensor by its full mlx-lm name: dtype, dims and last dim;
 * expert tensors are found in their layer's block (names relative to
 * "model.layers.L."). 0 when absent. */
static int stored(const mc_flash *f, const char *name, int *dtype, uint32_t *nd, uint64_t *last)
{
    const mc_flash_tensor *t = mc_flash_find(f, name);
    if (t) {
        *dtype = t->dtype;
        *nd = t->n_dims;
        *last = t->n_dims ? t->shape[t->n_dims - 1] : 0;
        return 1;
    }
    int L, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &L, &n) != 1 || n == 0) return 0;
    const mc_flash_experts *x = mc_flash_find_experts(f, L);
    for (size_t j = 0; x && j < x->n_tensors; j++)
        if (strcmp(x->tensors[j].name, name + n) == 0) {
            *dtype = x->tensors[j].dtype;
            *nd = x->tensors[j].n_dims + 1;
            *last = x->tensors[j].n_dims ? x->tensors[j].shape[x->tensors[j].n_dims - 1] : 0;
            return 1;
        }
    return 0;
}

/* config.quantization modules in an MLX floating-point mode (version 1
 * extension: "mode": "mxfp4", group 32, bits 4): a U32 weight of in/8
 * words a row, U8 e8m0 scales of in/32 a row, no biases. */
static void check_quant_modes(const mc_flash *f, rep *r)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(f->manifest, "config");
    const cJSON *q = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "quantization") : NULL, *e;
    cJSON_ArrayForEach(e, q) {
        const cJSON *mode = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "mode") : NULL;
        if (!cJSON_IsString(mode) || strcmp(mode->valuestring, "affine") == 0) continue;
        const cJSON *gs = cJSON_GetObjectItemCaseSensitive(e, "group_size"), *bits = cJSON_GetObjectItemCaseSensitive(e, "bits");
        if (strcmp(mode->valuestring, "mxfp4") != 0 || !cJSON_IsNumber(gs) || gs->valueint != 32 ||
            !cJSON_IsNumber(bits) || bits->valueint != 4) {
            report(r, "config.quantization %s: mode %s with group size / bits other than mxfp4's 32 / 4", e->string,
                   mode->valuestring);
            continue;
        }
        char nm[512];
        int wt = -1, st = -1, bt;
        uint32_t wn = 0, sn = 0, bn;
        uint64_t wl = 0, sl = 0, bl;
        snprintf(nm, sizeof nm, "%s.weight", e->string);
        int hw = stored(f, nm, &wt, &wn, &wl);
        snprintf(nm, sizeof nm, "%s.scales", e->string);
        int hs = stored(f, nm, &st, &sn, &sl);
        snprintf(nm, sizeof nm, "%s.biases", e->string);
        if (stored(f, nm, &bt, &bn, &bl)) report(r, "mxfp4 module %s has biases", e->string);
        if (!hw || !hs || wt != MC_T_U32 || st != MC_T_U8 || wn != sn || wl * 8 != sl * 32)
            report(r, "mxfp4 module %s: expected a U32 weight [..., in/8] and U8 scales [..., in/32] (weight %s, %llu words a row; scales %s, %llu a row)",
                   e->string, hw ? mc_type_name(wt) : "absent", (unsigned long long)wl, hs ? mc_type_name(st) : "absent",
                   (unsigned long long)sl);
    }
}

static int verify_body(mc_flash *f, rep *r, mc_flash_verify_stats *st, mc_error *err)
{
    size_t n = 2 + f->n_tensors, k = 0;
    int rc = 0;
    unsigned char *buf = NULL;
    ival *iv = NULL;
    uint64_t fsz = f->file.size;
    /* the source-metadata region (an extension of version 1): each blob
     * decompressed and checked, its bytes counted as data */
    mc_flash_meta meta;
    mc_error me = { MC_OK, "" };
    if (mc_flash_meta_parse(f->manifest, fsz, &meta, &me)) report(r, "%s", me.msg);
    n += meta.n;
    for (size_t i = 0; i < f->n_experts; i++) {
        uint64_t k2;
        if (mc_mul_u64(f->experts[i].n_experts, f->experts[i].n_tensors, &k2) || k2 > ((uint64_t)1 << 26) ||
            (n += (size_t)k2) > ((size_t)1 << 26)) {
            report(r, "manifest: implausibly many expert tensors (layer %d)", f->experts[i].layer);
            goto done;
        }
    }
    iv = malloc(n * sizeof *iv);
    buf = malloc(VCHUNK);
    if (!iv || !buf) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", f->file.path);
        goto done;
    }
    iv[k++] = (ival){ 0, MC_FLASH_HEADER_BYTES, "header", -1, -1 };
    for (size_t i = 0; i < meta.n; i++) {
        const mc_flash_blob *b = &meta.blobs[i];
        iv[k++] = (ival){ b->offset, b->offset + b->size, b->name, -1, -1 };
        me.code = MC_OK;
        me.msg[0] = 0;
        int brc = mc_flash_meta_stream(&f->file, b, NULL, NULL, &me);
        if (brc == MC_ERR_CHECKSUM || brc == MC_ERR_FORMAT) report(r, "%s", me.msg);
        else if (brc) {
            rc = brc;
            *err = me;
            goto done;
        } else {
            st->n_checksums++;
            st->bytes_checked += b->size;
        }
    }
    iv[k++] = (ival){ f->hdr.manifest_offset, f->hdr.manifest_offset + f->hdr.manifest_length, "manifest", -1, -1 };
    check_align(r, f->hdr.manifest_offset, "manifest", "", -1);

    uint64_t pin_end = f->pinned_offset + f->pinned_nbytes;
    check_align(r, f->pinned_offset, "pinned region", "", -1);
    if (pin_end < f->pinned_offset || pin_end > fsz) report(r, "pinned region lies outside the file");
    for (size_t i = 0; i < f->n_tensors; i++) {
        const mc_flash_tensor *t = &f->tensors[i];
        uint64_t end;
        st->n_tensors++;
        check_align(r, t->offset, "tensor", t->name, t->layer);
        if (mc_add_u64(t->offset, t->nbytes, &end) || end > fsz) {
            report(r, "tensor %s: bytes %llu..%llu lie outside the file (%llu bytes)", t->name,
                   (unsigned long long)t->offset, (unsigned long long)t->offset + t->nbytes, (unsigned long long)fsz);
            continue;
        }
        uint64_t want;
        if (!mc_type_nbytes(t->dtype, 1, &want)) {
            uint64_t ne = 1;
            for (uint32_t d = 0; d < t->n_dims; d++) ne *= t->shape[d];
            if (!mc_type_nbytes(t->dtype, ne, &want) && want != t->nbytes)
                report(r, "tensor %s: nbytes %llu does not match its dtype and shape (%llu)", t->name,
                       (unsigned long long)t->nbytes, (unsigned long long)want);
        }
        if (t->role == MC_FLASH_PINNED && (t->offset < f->pinned_offset || end > pin_end))
            report(r, "pinned tensor %s lies outside the pinned region", t->name);
        if (t->role == MC_FLASH_FFN) {
            const mc_flash_ffn *s = mc_flash_find_ffn(f, t->layer);
            if (!s) report(r, "ffn tensor %s: no ffn span for layer %d", t->name, t->layer);
            else if (t->offset < s->offset || end > s->offset + s->nbytes)
                report(r, "ffn tensor %s lies outside the span of layer %d", t->name, t->layer);
        }
        iv[k++] = (ival){ t->offset, end, t->name, -1, t->layer };
        uint64_t h;
        if (hash_range(f, t->offset, t->nbytes, buf, &h, r, st) == 0) {
            st->n_checksums++;
            if (h != t->xxh3) report(r, "tensor %s: checksum mismatch", t->name);
        }
    }
    for (size_t i = 0; i < f->n_ffn; i++) {
        const mc_flash_ffn *s = &f->ffn[i];
        check_align(r, s->offset, "ffn span", "", s->layer);
        if (!region_ok(f, s->offset, s->nbytes)) report(r, "ffn span of layer %d lies outside the file", s->layer);
        if (s->offset < pin_end && s->offset + s->nbytes > f->pinned_offset)
            report(r, "ffn span of layer %d overlaps the pinned region", s->layer);
    }
    for (size_t i = 0; i < f->n_experts; i++) {
        const mc_flash_experts *x = &f->experts[i];
        uint64_t span;
        if (!x->n_experts) continue;
        check_align(r, x->offset, "expert region", "", x->layer);
        if (x->stride % MC_FLASH_PAGE || x->stride == 0)
            report(r, "experts of layer %d: stride %llu is not a multiple of 16384", x->layer,
                   (unsigned long long)x->stride);
        if (mc_mul_u64(x->stride, x->n_experts, &span) || !region_ok(f, x->offset, span)) {
            report(r, "experts of layer %d: region at %llu (%u x %llu bytes) lies outside the file (%llu bytes)",
                   x->layer, (unsigned long long)x->offset, x->n_experts, (unsigned long long)x->stride,
                   (unsigned long long)fsz);
            continue;
        }
        if (x->offset < pin_end && x->offset + span > f->pinned_offset)
            report(r, "experts of layer %d overlap the pinned region", x->layer);
        for (size_t j = 0; j < x->n_tensors; j++) {
            const mc_flash_etensor *t = &x->tensors[j];
            check_align(r, t->inner_offset, "expert tensor", t->name, x->layer);
            if (t->inner_offset > x->stride || t->nbytes > x->stride - t->inner_offset)
                report(r, "experts of layer %d: tensor %s runs past the expert stride", x->layer, t->name);
        }
        for (uint32_t e = 0; e < x->n_experts; e++) {
            uint64_t base = x->offset + (uint64_t)e * x->stride, h;
            for (size_t j = 0; j < x->n_tensors; j++)
                iv[k++] = (ival){ base + x->tensors[j].inner_offset, base + x->tensors[j].inner_offset + x->tensors[j].nbytes,
                                  x->tensors[j].name, (int)e, x->layer };
            st->n_blocks++;
            if (hash_range(f, base, x->stride, buf, &h, r, st) == 0) {
                st->n_checksums++;
                if (h != x->xxh3[e]) report(r, "expert %u of layer %d: checksum mismatch", e, x->layer);
            }
        }
    }
    /* Overlaps, then every gap must be zero padding. */
    qsort(iv, k, sizeof *iv, ival_cmp);
    uint64_t cur = 0;
    for (size_t i = 0; i < k; i++) {
        if (iv[i].off < cur) {
            report(r, "%s (layer %d%s) at offset %llu overlaps the previous data (ends at %llu)", iv[i].what,
                   iv[i].layer, iv[i].expert >= 0 ? ", an expert" : "", (unsigned long long)iv[i].off,
                   (unsigned long long)cur);
        } else if (iv[i].off > cur) {
            check_zero(f, cur, iv[i].off < fsz ? iv[i].off : fsz, buf, r, st);
        }
        if (iv[i].end > cur) cur = iv[i].end;
    }
    if (cur < fsz) check_zero(f, cur, fsz, buf, r, st);
    if (fsz % MC_FLASH_PAGE) report(r, "file size %llu is not a multiple of 16384", (unsigned long long)fsz);
    check_quant_modes(f, r);
done:
    mc_flash_meta_free(&meta);
    free(iv);
    free(buf);
    return rc;
}

int mc_flash_verify(const char *path, mc_flash_problem_fn problem, void *ctx, mc_flash_verify_stats *stats,
                    mc_error *err)
{
    mc_flash_verify_stats local;
    mc_flash_verify_stats *st = stats ? stats : &local;
    rep r = { problem, ctx, 0, path, NULL };
    int usable = 0, rc;
    memset(st, 0, sizeof *st);
    mc_flash *f = calloc(1, sizeof *f);
    if (!f) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    f->file.fd = -1;
    rc = load(f, path, &r, &usable, err);
    if (!rc && usable) rc = verify_body(f, &r, st, err);
    st->n_problems = r.n;
    mc_flash_close(f);
    if (rc) return rc;
    if (r.n) return mc_error_set(err, MC_ERR_CHECKSUM, "%s: %llu problem%s found", path,
                                 (unsigned long long)r.n, r.n == 1 ? "" : "s");
    return 0;
}
