/* mconv dump FILE|DIR: every metadata key and the tensor table; one
 * tensor's values on request. Text or one JSON document (--json). */
#include "mc_cli.h"
#include "mc_cli_opt.h"
#include "mc_dequant.h"
#include "mc_flash.h"
#include "mc_flash_meta.h"
#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_model_info.h"
#include "mc_safetensors.h"
#include "mc_tokenizer.h"
#include "mc_types.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_DUMP_ARRAY_ITEMS 8      /* array items shown without --full */
#define MC_DUMP_STRING_BYTES 256   /* string bytes shown in text without --full */
#define MC_DUMP_DEFAULT_ROWS 4     /* --values rows without --limit */
#define MC_DUMP_MAX_DIMS 8

enum {
    OPT_HELP = 1, OPT_JSON, OPT_FULL, OPT_FILTER, OPT_NO_KV, OPT_NO_TENSORS,
    OPT_TENSOR, OPT_VALUES, OPT_LIMIT, OPT_F32_OUT, OPT_FORCE, OPT_TOKENIZER_OUT, OPT_SOURCE_KV
};

static const mc_cli_opt g_dump_opts[] = {
    { "--help", 0, OPT_HELP },     { "-h", 0, OPT_HELP },
    { "--json", 0, OPT_JSON },     { "--full", 0, OPT_FULL },
    { "--filter", 1, OPT_FILTER }, { "--no-kv", 0, OPT_NO_KV },
    { "--no-tensors", 0, OPT_NO_TENSORS }, { "--tensor", 1, OPT_TENSOR },
    { "--values", 0, OPT_VALUES }, { "--limit", 1, OPT_LIMIT },
    { "--f32-out", 1, OPT_F32_OUT }, { "--force", 0, OPT_FORCE },
    { "--tokenizer-out", 1, OPT_TOKENIZER_OUT }, { "--source-kv", 0, OPT_SOURCE_KV },
    { NULL, 0, 0 },
};

typedef struct mc_dump_opts {
    const char *input;
    int json, full, no_kv, no_tensors, values, force, limit_set, source_kv;
    const char *filter;
    const char *tensor;
    const char *f32_out;
    const char *tokenizer_out;
    unsigned long long limit;
} mc_dump_opts;

/* The file being dumped: one of the readers. */
typedef struct mc_dump_src {
    mc_format fmt;
    mc_gguf *g;
    mc_st *st;
} mc_dump_src;

/* One tensor seen the same way for both formats. */
typedef struct mc_dump_tensor {
    const char *name;
    int type;
    uint32_t n_dims;
    uint64_t file_dims[MC_DUMP_MAX_DIMS]; /* the file's order (GGUF ne: fastest first) */
    uint64_t shape[MC_DUMP_MAX_DIMS];     /* row-major (outermost first) */
    uint64_t offset;                      /* absolute, in its file */
    uint64_t rel_offset;                  /* within the data section */
    uint64_t nbytes, nelements;
    uint32_t file;                        /* shard index */
    const char *file_path;
} mc_dump_tensor;

static void mc_dump_usage(FILE *out)
{
    fprintf(out,
            "usage: mconv dump FILE|DIR [options]\n\n"
            "Every metadata key with its type and value, then the tensor table: name,\n"
            "type, shape in the file's order (GGUF ne, fastest first) and row-major,\n"
            "absolute file offset and bytes.\n\n"
            "options:\n"
            "  --json            write one JSON document instead of text\n"
            "  --full            show arrays and long strings whole (default: first %d items)\n"
            "  --filter GLOB     only tensors whose name matches GLOB (fnmatch)\n"
            "  --no-kv           leave out the metadata keys\n"
            "  --no-tensors      leave out the tensor table\n"
            "  --tensor NAME     only tensor NAME\n"
            "  --values          print tensor NAME's values dequantized to f32, row by row\n"
            "  --limit N         rows to print with --values (default %d)\n"
            "  --f32-out PATH    write tensor NAME's values as raw little-endian f32,\n"
            "                    row-major (all rows unless --limit is given)\n"
            "  --source-kv       a .flash file: the source metadata it carries (every GGUF key,\n"
            "                    each safetensors __metadata__, the files beside the weights),\n"
            "                    printed as dump prints a GGUF\n"
            "  --tokenizer-out DIR  GGUF: write the tokenizer.ggml.* keys as Hugging Face\n"
            "                    tokenizer.json + tokenizer_config.json into DIR\n"
            "  --force           overwrite existing output files\n"
            "  -h, --help        this help\n\n"
            "exit codes: 0 done, 1 bad or unreadable input, 2 usage error\n",
            MC_DUMP_ARRAY_ITEMS, MC_DUMP_DEFAULT_ROWS);
}

/* ---- sources ---- */

static int mc_dump_open(const char *path, mc_dump_src *src, mc_error *err)
{
    int rc;
    memset(src, 0, sizeof *src);
    if ((rc = mc_format_detect(path, &src->fmt, err))) return rc;
    if (src->fmt == MC_FMT_GGUF) return mc_gguf_open(path, &src->g, err);
    return mc_st_open(path, &src->st, err);
}

static void mc_dump_close(mc_dump_src *src)
{
    if (src->g) mc_gguf_close(src->g);
    if (src->st) mc_st_close(src->st);
}

static uint64_t mc_dump_n_tensors(const mc_dump_src *src)
{
    return src->g ? src->g->n_tensors : src->st->n_tensors;
}

static void mc_dump_tensor_at(const mc_dump_src *src, uint64_t i, mc_dump_tensor *v)
{
    memset(v, 0, sizeof *v);
    if (src->g) {
        const mc_gguf_tensor *t = &src->g->tensors[i];
        v->name = t->name.s;
        v->type = t->type;
        v->n_dims = t->n_dims > MC_GGUF_MAX_DIMS ? MC_GGUF_MAX_DIMS : t->n_dims;
        for (uint32_t d = 0; d < v->n_dims; d++) {
            v->file_dims[d] = t->ne[d];
            v->shape[v->n_dims - 1 - d] = t->ne[d];
        }
        v->offset = t->file_offset;
        v->rel_offset = t->offset;
        v->nbytes = t->nbytes;
        v->nelements = t->nelements;
        v->file = t->shard;
        v->file_path = t->shard < src->g->n_shards ? src->g->shards[t->shard].file.path : src->g->path;
    } else {
        const mc_st_tensor *t = &src->st->tensors[i];
        v->name = t->name;
        v->type = t->type;
        v->n_dims = t->n_dims > MC_DUMP_MAX_DIMS ? MC_DUMP_MAX_DIMS : t->n_dims;
        for (uint32_t d = 0; d < v->n_dims; d++) v->file_dims[d] = v->shape[d] = t->shape[d];
        v->offset = t->file_offset;
        v->file = t->file;
        const mc_st_file *f = t->file < src->st->n_files ? &src->st->files[t->file] : NULL;
        v->rel_offset = f && t->file_offset >= f->data_offset ? t->file_offset - f->data_offset : 0;
        v->nbytes = t->nbytes;
        v->nelements = t->nelements;
        v->file_path = f ? f->file.path : src->st->path;
    }
}

static int mc_dump_selected(const mc_dump_opts *o, const mc_dump_tensor *t)
{
    if (o->tensor && strcmp(o->tensor, t->name) != 0) return 0;
    return !o->filter || fnmatch(o->filter, t->name, 0) == 0;
}

/* ---- strings ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t mc_utf8_len(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo, hi; size_t len; unsigned char lo2, hi2; } g_lead[] = {
        { 0xC2, 0xDF, 2, 0x80, 0xBF }, { 0xE0, 0xE0, 3, 0xA0, 0xBF }, { 0xE1, 0xEC, 3, 0x80, 0xBF },
        { 0xED, 0xED, 3, 0x80, 0x9F }, { 0xEE, 0xEF, 3, 0x80, 0xBF }, { 0xF0, 0xF0, 4, 0x90, 0xBF },
        { 0xF1, 0xF3, 4, 0x80, 0xBF }, { 0xF4, 0xF4, 4, 0x80, 0x8F },
    };
    if (s[0] < 0x80) return 1;
    for (size_t k = 0; k < sizeof g_lead / sizeof g_lead[0]; k++) {
        if (s[0] < g_lead[k].lo || s[0] > g_lead[k].hi) continue;
        size_t len = g_lead[k].len;
        if (n < len || s[1] < g_lead[k].lo2 || s[1] > g_lead[k].hi2) return 0;
        for (size_t j = 2; j < len; j++)
            if ((s[j] & 0xC0) != 0x80) return 0;
        return len;
    }
    return 0;
}

/* Print s escaped for text output: valid UTF-8 as is, quotes, backslashes
 * and controls escaped, invalid bytes as \xNN. At most max bytes of s. */
static void mc_dump_print_str_q(const char *s, uint64_t len, int full, int quote)
{
    uint64_t show = !full && len > MC_DUMP_STRING_BYTES ? MC_DUMP_STRING_BYTES : len;
    const unsigned char *p = (const unsigned char *)s;
    if (quote) putchar('"');
    for (uint64_t i = 0; i < show;) {
        size_t u = mc_utf8_len(p + i, (size_t)(len - i));
        if (u > 1) {
            fwrite(p + i, 1, u, stdout);
            i += u;
            continue;
        }
        unsigned char c = p[i++];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (u == 0 || c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
    }
    if (quote) putchar('"');
    if (show < len) printf("... (%llu bytes)", (unsigned long long)len);
}

static void mc_dump_print_str(const char *s, uint64_t len, int full) { mc_dump_print_str_q(s, len, full, 1); }

/* A JSON string for bytes s[0..len): cJSON's own string when the bytes are
 * valid UTF-8 without NULs; otherwise a raw string literal in which each
 * invalid byte b becomes \u00bb (and NUL \u0000), so the document stays
 * valid UTF-8. */
static cJSON *mc_json_str(const char *s, uint64_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    int clean = 1;
    for (uint64_t i = 0; i < len && clean;) {
        size_t u = p[i] ? mc_utf8_len(p + i, (size_t)(len - i)) : 0;
        if (u == 0) clean = 0;
        i += u;
    }
    if (clean) return cJSON_CreateString(s);
    if (len > (SIZE_MAX - 3) / 6) return NULL;
    char *buf = malloc((size_t)len * 6 + 3), *q = buf;
    if (!buf) return NULL;
    *q++ = '"';
    for (uint64_t i = 0; i < len;) {
        size_t u = p[i] ? mc_utf8_len(p + i, (size_t)(len - i)) : 0;
        if (u > 1) {
            memcpy(q, p + i, u);
            q += u;
            i += u;
            continue;
        }
        unsigned char c = p[i++];
        if (c == '"' || c == '\\') { *q++ = '\\'; *q++ = (char)c; }
        else if (u == 0 || c < 0x20 || c == 0x7F) q += sprintf(q, "\\u%04x", c);
        else *q++ = (char)c;
    }
    *q++ = '"';
    *q = '\0';
    cJSON *r = cJSON_CreateRaw(buf);
    free(buf);
    return r;
}

static cJSON *mc_json_i64(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

/* Floats as raw number text that reads back to the same value (cJSON's own
 * printer may lose the last bit); NaN and infinities (no JSON spelling)
 * become null. */
static cJSON *mc_json_float(double v, int digits)
{
    char buf[40];
    if (isnan(v) || isinf(v)) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return cJSON_CreateRaw(buf);
}
static cJSON *mc_json_f32(float v) { return mc_json_float(v, 9); }
static cJSON *mc_json_f64(double v) { return mc_json_float(v, 17); }

/* Add item to container (array when name is NULL); NULL item = out of memory. */
static int mc_json_add(cJSON *obj, const char *name, cJSON *item)
{
    if (!item) return 1;
    if (name) cJSON_AddItemToObject(obj, name, item);
    else cJSON_AddItemToArray(obj, item);
    return 0;
}

/* ---- GGUF values ---- */

typedef struct mc_dump_scalar {
    mc_gguf_vtype type;
    uint64_t u;
    int64_t i;
    double f;
    const mc_gguf_str *s;
} mc_dump_scalar;

static int mc_vtype_is_signed(mc_gguf_vtype t)
{
    return t == MC_GGUF_INT8 || t == MC_GGUF_INT16 || t == MC_GGUF_INT32 || t == MC_GGUF_INT64;
}

static int mc_vtype_is_float(mc_gguf_vtype t) { return t == MC_GGUF_FLOAT32 || t == MC_GGUF_FLOAT64; }

/* Element i of an array kv, decoded from the packed little-endian bytes. */
static void mc_dump_arr_elem(const mc_gguf_kv *kv, uint64_t i, mc_dump_scalar *out)
{
    memset(out, 0, sizeof *out);
    out->type = kv->arr_type;
    if (kv->arr_type == MC_GGUF_STRING) {
        out->s = &((const mc_gguf_str *)kv->arr)[i];
        return;
    }
    size_t sz = mc_gguf_vtype_size(kv->arr_type);
    const unsigned char *p = (const unsigned char *)kv->arr + (size_t)i * sz;
    uint64_t u = 0;
    for (size_t b = sz; b-- > 0;) u = u << 8 | p[b];
    out->u = u;
    if (mc_vtype_is_signed(kv->arr_type)) {
        unsigned bits = (unsigned)sz * 8;
        out->i = bits < 64 && (u >> (bits - 1)) ? (int64_t)(u | (~(uint64_t)0 << bits)) : (int64_t)u;
    } else if (kv->arr_type == MC_GGUF_FLOAT32) {
        float f;
        uint32_t w = (uint32_t)u;
        memcpy(&f, &w, 4);
        out->f = f;
    } else if (kv->arr_type == MC_GGUF_FLOAT64) {
        memcpy(&out->f, &u, 8);
    } else if (kv->arr_type == MC_GGUF_BOOL) {
        out->u = u != 0;
    }
}

static void mc_dump_kv_scalar(const mc_gguf_kv *kv, mc_dump_scalar *out)
{
    memset(out, 0, sizeof *out);
    out->type = kv->type;
    if (kv->type == MC_GGUF_STRING) out->s = &kv->v.str;
    else if (mc_vtype_is_signed(kv->type)) out->i = kv->v.i64;
    else if (mc_vtype_is_float(kv->type)) out->f = kv->v.f64;
    else out->u = kv->v.u64;
}

static void mc_dump_print_scalar(const mc_dump_scalar *v, int full)
{
    if (v->type == MC_GGUF_STRING) mc_dump_print_str(v->s->s, v->s->len, full);
    else if (v->type == MC_GGUF_BOOL) fputs(v->u ? "true" : "false", stdout);
    else if (mc_vtype_is_signed(v->type)) printf("%" PRId64, v->i);
    else if (mc_vtype_is_float(v->type)) printf(v->type == MC_GGUF_FLOAT32 ? "%.9g" : "%.17g", v->f);
    else printf("%" PRIu64, v->u);
}

static cJSON *mc_dump_json_scalar(const mc_dump_scalar *v)
{
    if (v->type == MC_GGUF_STRING) return mc_json_str(v->s->s, v->s->len);
    if (v->type == MC_GGUF_BOOL) return cJSON_CreateBool(v->u != 0);
    if (mc_vtype_is_signed(v->type)) return mc_json_i64(v->i);
    if (v->type == MC_GGUF_FLOAT32) return mc_json_f32((float)v->f);
    if (mc_vtype_is_float(v->type)) return mc_json_f64(v->f);
    return mc_cli_json_u64(v->u);
}

static uint64_t mc_dump_shown(uint64_t n, int full) { return full || n <= MC_DUMP_ARRAY_ITEMS ? n : MC_DUMP_ARRAY_ITEMS; }

static void mc_dump_text_kv(const mc_gguf *g, int full)
{
    printf("metadata: %llu keys\n", (unsigned long long)g->n_kv);
    for (uint64_t k = 0; k < g->n_kv; k++) {
        const mc_gguf_kv *kv = &g->kv[k];
        mc_dump_scalar v;
        char type[48];
        if (kv->type == MC_GGUF_ARRAY)
            snprintf(type, sizeof type, "[%s;%llu]", mc_gguf_vtype_name(kv->arr_type), (unsigned long long)kv->arr_n);
        else
            snprintf(type, sizeof type, "%s", mc_gguf_vtype_name(kv->type));
        printf("  ");
        mc_dump_print_str(kv->key.s, kv->key.len, 1);
        printf(" %s = ", type);
        if (kv->type != MC_GGUF_ARRAY) {
            mc_dump_kv_scalar(kv, &v);
            mc_dump_print_scalar(&v, full);
        } else {
            uint64_t shown = mc_dump_shown(kv->arr_n, full);
            putchar('[');
            for (uint64_t i = 0; i < shown; i++) {
                if (i) fputs(", ", stdout);
                mc_dump_arr_elem(kv, i, &v);
                mc_dump_print_scalar(&v, full);
            }
            if (shown < kv->arr_n) printf(", ... (%llu items)", (unsigned long long)kv->arr_n);
            putchar(']');
        }
        putchar('\n');
    }
}

static int mc_dump_json_kv(const mc_gguf *g, int full, cJSON *arr)
{
    for (uint64_t k = 0; k < g->n_kv; k++) {
        const mc_gguf_kv *kv = &g->kv[k];
        mc_dump_scalar v;
        cJSON *o = cJSON_CreateObject();
        if (mc_json_add(arr, NULL, o)) return 1;
        if (mc_json_add(o, "key", mc_json_str(kv->key.s, kv->key.len)) ||
            mc_json_add(o, "type", cJSON_CreateString(mc_gguf_vtype_name(kv->type))))
            return 1;
        if (kv->type != MC_GGUF_ARRAY) {
            mc_dump_kv_scalar(kv, &v);
            if (mc_json_add(o, "value", mc_dump_json_scalar(&v))) return 1;
            continue;
        }
        uint64_t shown = mc_dump_shown(kv->arr_n, full);
        cJSON *items = cJSON_CreateArray();
        if (mc_json_add(o, "elem_type", cJSON_CreateString(mc_gguf_vtype_name(kv->arr_type))) ||
            mc_json_add(o, "n", mc_cli_json_u64(kv->arr_n)) || mc_json_add(o, "value", items))
            return 1;
        for (uint64_t i = 0; i < shown; i++) {
            mc_dump_arr_elem(kv, i, &v);
            if (mc_json_add(items, NULL, mc_dump_json_scalar(&v))) return 1;
        }
        if (shown < kv->arr_n && mc_json_add(o, "truncated", cJSON_CreateTrue())) return 1;
    }
    return 0;
}

/* ---- safetensors metadata ---- */

static void mc_dump_text_meta(const mc_st *st, int full)
{
    printf("metadata: %llu keys\n", (unsigned long long)st->n_meta);
    for (uint64_t k = 0; k < st->n_meta; k++) {
        printf("  ");
        mc_dump_print_str(st->meta[k].key, strlen(st->meta[k].key), 1);
        printf(" string = ");
        mc_dump_print_str(st->meta[k].value, strlen(st->meta[k].value), full);
        putchar('\n');
    }
}

static int mc_dump_json_meta(const mc_st *st, cJSON *arr)
{
    for (uint64_t k = 0; k < st->n_meta; k++) {
        cJSON *o = cJSON_CreateObject();
        if (mc_json_add(arr, NULL, o) ||
            mc_json_add(o, "key", mc_json_str(st->meta[k].key, strlen(st->meta[k].key))) ||
            mc_json_add(o, "type", cJSON_CreateString("string")) ||
            mc_json_add(o, "value", mc_json_str(st->meta[k].value, strlen(st->meta[k].value))))
            return 1;
    }
    return 0;
}

/* ---- header lines ---- */

static void mc_dump_text_header(const mc_dump_src *src, const char *path)
{
    if (src->g) {
        const mc_gguf *g = src->g;
        printf("file: %s\nformat: GGUF v%u, alignment %u, %llu keys, %llu tensors, %u file%s\n", path,
               (unsigned)g->version, (unsigned)g->alignment, (unsigned long long)g->n_kv,
               (unsigned long long)g->n_tensors, (unsigned)g->n_shards, g->n_shards == 1 ? "" : "s");
        for (uint32_t s = 0; s < g->n_shards; s++)
            printf("  shard %u: %s (v%u, data at %llu, %llu bytes)\n", (unsigned)s, g->shards[s].file.path,
                   (unsigned)g->shards[s].version, (unsigned long long)g->shards[s].data_offset,
                   (unsigned long long)g->shards[s].file.size);
    } else {
        const mc_st *st = src->st;
        printf("file: %s\nformat: safetensors%s, %llu tensors, %u file%s\n", path, st->is_dir ? " folder" : "",
               (unsigned long long)st->n_tensors, (unsigned)st->n_files, st->n_files == 1 ? "" : "s");
        for (uint32_t s = 0; s < st->n_files; s++)
            printf("  file %u: %s (header %llu bytes, data at %llu, %llu bytes)\n", (unsigned)s,
                   st->files[s].file.path, (unsigned long long)st->files[s].header_len,
                   (unsigned long long)st->files[s].data_offset, (unsigned long long)st->files[s].file.size);
    }
}

static int mc_dump_json_header(const mc_dump_src *src, const char *path, cJSON *doc)
{
    cJSON *files = cJSON_CreateArray();
    if (mc_json_add(doc, "file", mc_json_str(path, strlen(path))) || mc_json_add(doc, "files", files)) return 1;
    if (src->g) {
        const mc_gguf *g = src->g;
        if (mc_json_add(doc, "format", cJSON_CreateString("gguf")) || mc_json_add(doc, "version", mc_cli_json_u64(g->version)) ||
            mc_json_add(doc, "alignment", mc_cli_json_u64(g->alignment)) || mc_json_add(doc, "n_kv", mc_cli_json_u64(g->n_kv)) ||
            mc_json_add(doc, "n_tensors", mc_cli_json_u64(g->n_tensors)))
            return 1;
        for (uint32_t s = 0; s < g->n_shards; s++) {
            cJSON *f = cJSON_CreateObject();
            const char *p = g->shards[s].file.path;
            if (mc_json_add(files, NULL, f) || mc_json_add(f, "path", mc_json_str(p, strlen(p))) ||
                mc_json_add(f, "version", mc_cli_json_u64(g->shards[s].version)) ||
                mc_json_add(f, "data_offset", mc_cli_json_u64(g->shards[s].data_offset)) ||
                mc_json_add(f, "size", mc_cli_json_u64(g->shards[s].file.size)))
                return 1;
        }
        return 0;
    }
    const mc_st *st = src->st;
    if (mc_json_add(doc, "format", cJSON_CreateString(st->is_dir ? "safetensors folder" : "safetensors")) ||
        mc_json_add(doc, "n_kv", mc_cli_json_u64(st->n_meta)) || mc_json_add(doc, "n_tensors", mc_cli_json_u64(st->n_tensors)))
        return 1;
    for (uint32_t s = 0; s < st->n_files; s++) {
        cJSON *f = cJSON_CreateObject();
        const char *p = st->files[s].file.path;
        if (mc_json_add(files, NULL, f) || mc_json_add(f, "path", mc_json_str(p, strlen(p))) ||
            mc_json_add(f, "header_len", mc_cli_json_u64(st->files[s].header_len)) ||
            mc_json_add(f, "data_offset", mc_cli_json_u64(st->files[s].data_offset)) ||
            mc_json_add(f, "size", mc_cli_json_u64(st->files[s].file.size)))
            return 1;
    }
    return 0;
}

/* ---- tensor table ---- */

static void mc_dump_text_tensors(const mc_dump_src *src, const mc_dump_opts *o)
{
    uint64_t n = mc_dump_n_tensors(src), shown = 0;
    int gguf = src->g != NULL;
    printf("tensors: %llu\n", (unsigned long long)n);
    int multi = (gguf ? src->g->n_shards : src->st->n_files) > 1;
    printf("  %6s  %-8s %-22s %-22s %12s %12s%s  %s\n", "#", "type", gguf ? "ne" : "dims", "shape", "offset", "bytes",
           multi ? "  file" : "", "name");
    for (uint64_t i = 0; i < n; i++) {
        mc_dump_tensor t;
        char dims[160], shape[160];
        mc_dump_tensor_at(src, i, &t);
        if (!mc_dump_selected(o, &t)) continue;
        shown++;
        size_t a = 0, b = 0;
        a += (size_t)snprintf(dims, sizeof dims, "[");
        b += (size_t)snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t.n_dims && a < sizeof dims && b < sizeof shape; d++) {
            a += (size_t)snprintf(dims + a, sizeof dims - a, "%s%llu", d ? "," : "", (unsigned long long)t.file_dims[d]);
            if (b < sizeof shape)
                b += (size_t)snprintf(shape + b, sizeof shape - b, "%s%llu", d ? "," : "", (unsigned long long)t.shape[d]);
        }
        if (a < sizeof dims) snprintf(dims + a, sizeof dims - a, "]");
        if (b < sizeof shape) snprintf(shape + b, sizeof shape - b, "]");
        printf("  %6llu  %-8s %-22s %-22s %12llu %12llu", (unsigned long long)i, mc_type_name(t.type), dims, shape,
               (unsigned long long)t.offset, (unsigned long long)t.nbytes);
        if (multi) printf("  %4u", (unsigned)t.file);
        printf("  ");
        mc_dump_print_str_q(t.name, strlen(t.name), 1, 0);
        putchar('\n');
    }
    if (o->filter || o->tensor) printf("  (%llu of %llu tensors selected)\n", (unsigned long long)shown, (unsigned long long)n);
}

static int mc_dump_json_dims(cJSON *o, const char *key, const uint64_t *d, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    if (mc_json_add(o, key, a)) return 1;
    for (uint32_t i = 0; i < n; i++)
        if (mc_json_add(a, NULL, mc_cli_json_u64(d[i]))) return 1;
    return 0;
}

static int mc_dump_json_tensors(const mc_dump_src *src, const mc_dump_opts *o, cJSON *arr)
{
    uint64_t n = mc_dump_n_tensors(src);
    for (uint64_t i = 0; i < n; i++) {
        mc_dump_tensor t;
        mc_dump_tensor_at(src, i, &t);
        if (!mc_dump_selected(o, &t)) continue;
        cJSON *j = cJSON_CreateObject();
        if (mc_json_add(arr, NULL, j) || mc_json_add(j, "name", mc_json_str(t.name, strlen(t.name))) ||
            mc_json_add(j, "type", cJSON_CreateString(mc_type_name(t.type))) ||
            mc_json_add(j, "type_id", cJSON_CreateNumber(t.type)) ||
            mc_dump_json_dims(j, src->g ? "ne" : "dims", t.file_dims, t.n_dims) ||
            mc_dump_json_dims(j, "shape", t.shape, t.n_dims) || mc_json_add(j, "offset", mc_cli_json_u64(t.offset)) ||
            mc_json_add(j, "data_offset", mc_cli_json_u64(t.rel_offset)) || mc_json_add(j, "bytes", mc_cli_json_u64(t.nbytes)) ||
            mc_json_add(j, "elements", mc_cli_json_u64(t.nelements)) || mc_json_add(j, "file", mc_cli_json_u64(t.file)))
            return 1;
    }
    return 0;
}

/* ---- values ---- */

static int mc_dump_find(const mc_dump_src *src, const char *name, mc_dump_tensor *t, uint64_t *index)
{
    uint64_t n = mc_dump_n_tensors(src);
    for (uint64_t i = 0; i < n; i++) {
        mc_dump_tensor_at(src, i, t);
        if (!strcmp(t->name, name)) {
            *index = i;
            return 0;
        }
    }
    return 1;
}

static int mc_dump_read(const mc_dump_src *src, uint64_t index, uint64_t off, void *buf, size_t n, mc_error *err)
{
    if (src->g) return mc_gguf_read(src->g, &src->g->tensors[index], off, buf, n, err);
    return mc_st_read(src->st, &src->st->tensors[index], off, buf, n, err);
}

static void mc_f32_to_le(const float *src, unsigned char *dst, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &src[i], 4);
        dst[4 * i] = (unsigned char)w;
        dst[4 * i + 1] = (unsigned char)(w >> 8);
        dst[4 * i + 2] = (unsigned char)(w >> 16);
        dst[4 * i + 3] = (unsigned char)(w >> 24);
    }
}

/* Read rows [0, nrows) of the tensor one at a time; print them (text or
 * into jrows) and/or write them to out. */
static int mc_dump_values(const mc_dump_src *src, const mc_dump_opts *o, cJSON *doc, mc_error *err)
{
    mc_dump_tensor t;
    uint64_t index, cols, rows, rowbytes, nrows;
    unsigned char *raw = NULL, *le = NULL;
    float *vals = NULL;
    mc_outfile out = { .fd = -1, .slot = -1 };
    int have_out = 0, rc = 0;
    const char *path = src->g ? src->g->path : src->st->path;
    cJSON *jrows = NULL;

    if (mc_dump_find(src, o->tensor, &t, &index))
        return mc_error_set(err, MC_ERR_NOTFOUND, "%s: no tensor named '%s'", path, o->tensor);
    cols = t.n_dims ? (src->g ? t.file_dims[0] : t.shape[t.n_dims - 1]) : 1;
    rows = cols ? t.nelements / cols : 0;
    if (mc_type_nbytes(t.type, cols, &rowbytes) || !mc_type_get(t.type) || !mc_type_get(t.type)->to_f32)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor '%s' of type %s: values cannot be decoded row by row",
                            path, t.name, mc_type_name(t.type));
    if (rowbytes > SIZE_MAX / 2 || cols > SIZE_MAX / 8)
        return mc_error_set(err, MC_ERR_NOMEM, "%s: tensor '%s': row too large", path, t.name);
    nrows = o->limit_set || !o->f32_out ? (o->limit < rows ? o->limit : rows) : rows;
    raw = malloc(rowbytes ? (size_t)rowbytes : 1);
    vals = malloc(cols ? (size_t)cols * sizeof *vals : 1);
    le = o->f32_out ? malloc(cols ? (size_t)cols * 4 : 1) : NULL;
    if (!raw || !vals || (o->f32_out && !le)) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (o->f32_out) {
        if ((rc = mc_outfile_create(&out, o->f32_out, o->force, err))) goto done;
        have_out = 1;
    }
    if (o->json) {
        cJSON *v = cJSON_CreateObject();
        jrows = cJSON_CreateArray();
        if (mc_json_add(doc, "values", v) || mc_json_add(v, "tensor", mc_json_str(t.name, strlen(t.name))) ||
            mc_json_add(v, "type", cJSON_CreateString(mc_type_name(t.type))) ||
            mc_json_add(v, "rows", mc_cli_json_u64(rows)) || mc_json_add(v, "cols", mc_cli_json_u64(cols)) ||
            mc_json_add(v, "rows_shown", mc_cli_json_u64(o->f32_out ? 0 : nrows)) || mc_json_add(v, "data", jrows)) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
    } else if (!o->f32_out) {
        printf("values of %s (%s, %llu rows x %llu cols), rows 0..%llu:\n", t.name, mc_type_name(t.type),
               (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)(nrows ? nrows - 1 : 0));
    }
    for (uint64_t r = 0; r < nrows; r++) {
        if ((rc = mc_dump_read(src, index, r * rowbytes, raw, (size_t)rowbytes, err))) goto done;
        if ((rc = mc_dequant(t.type, raw, vals, (int64_t)cols, err))) goto done;
        if (have_out) {
            mc_f32_to_le(vals, le, cols);
            if ((rc = mc_outfile_write(&out, le, (size_t)cols * 4, err))) goto done;
            continue;
        }
        if (jrows) {
            cJSON *row = cJSON_CreateArray();
            if (mc_json_add(jrows, NULL, row)) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); goto done; }
            for (uint64_t c = 0; c < cols; c++)
                if (mc_json_add(row, NULL, mc_json_f32(vals[c]))) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); goto done; }
            continue;
        }
        printf("  row %llu:", (unsigned long long)r);
        for (uint64_t c = 0; c < cols; c++) printf(" %.9g", (double)vals[c]);
        putchar('\n');
    }
    if (have_out) {
        if ((rc = mc_outfile_commit(&out, err))) goto done;
        if (!o->json)
            printf("wrote %llu rows x %llu cols of %s as f32 (%llu bytes) to %s\n", (unsigned long long)nrows,
                   (unsigned long long)cols, t.name, (unsigned long long)(nrows * cols * 4), o->f32_out);
    }
done:
    if (have_out) mc_outfile_abort(&out);
    free(raw);
    free(vals);
    free(le);
    return rc;
}

/* ---- tokenizer export ---- */

static int mc_dump_tokenizer(const mc_dump_src *src, const mc_dump_opts *o, mc_error *err)
{
    static const char *const names[] = { "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                                         "generation_config.json" };
    mc_tok_out tok;
    int rc;
    if (!src->g)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: --tokenizer-out reads GGUF tokenizer keys; a checkpoint folder "
                            "already carries its tokenizer files", o->input);
    if (!mc_io_is_dir(o->tokenizer_out))
        return mc_error_set(err, MC_ERR_IO, "%s: not a folder", o->tokenizer_out);
    if (!(rc = mc_tokenizer_build(src->g, &tok, err))) rc = mc_tokenizer_write(o->tokenizer_out, &tok, o->force, err);
    if (!rc && !o->json) {
        const void *have[] = { tok.tokenizer_json, tok.tokenizer_config, tok.chat_template, tok.generation_config };
        int n = 0;
        fprintf(stdout, "tokenizer: %s", tok.kind);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (have[i]) fprintf(stdout, "%s%s", n++ ? ", " : ": wrote ", names[i]);
        fprintf(stdout, "%s\n", tok.approximate ? " (approximate)" : "");
        for (int i = 0; i < tok.n_notes; i++) fprintf(stdout, "note: %s\n", tok.notes[i]);
    }
    mc_tokenizer_out_free(&tok);
    return rc;
}

/* ---- source metadata carried in a .flash file ---- */

/* One blob as dump shows its source: a GGUF's keys, a safetensors
 * __metadata__, a file's size and text. */
static int mc_dump_blob(const mc_dump_opts *o, const mc_flash_blob *b, const unsigned char *d, size_t n, cJSON *arr,
                        mc_error *err)
{
    cJSON *e = NULL, *kv = NULL;
    if (arr) {
        e = cJSON_CreateObject();
        if (mc_json_add(arr, NULL, e) || mc_json_add(e, "name", mc_json_str(b->name, strlen(b->name))) ||
            mc_json_add(e, "kind", cJSON_CreateString(b->kind)) || mc_json_add(e, "raw_size", mc_cli_json_u64(n)))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    } else {
        printf("source %s: %s, %llu bytes (%llu stored)\n", b->kind, b->name, (unsigned long long)n,
               (unsigned long long)b->size);
    }
    if (!strcmp(b->kind, "gguf-kv")) {
        mc_gguf *g = NULL;
        int rc = mc_gguf_parse_mem(d, n, b->name, &g, err);
        if (rc) return rc;
        if (arr) {
            kv = cJSON_CreateArray();
            rc = mc_json_add(e, "version", mc_cli_json_u64(g->version)) || mc_json_add(e, "kv", kv) ||
                 mc_dump_json_kv(g, o->full, kv);
            if (rc) rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        } else {
            printf("format: GGUF v%u key/value records\n", (unsigned)g->version);
            mc_dump_text_kv(g, o->full);
        }
        mc_gguf_close(g);
        return rc;
    }
    if (!strcmp(b->kind, "safetensors-header")) {
        uint64_t hl = 0;
        char what[MC_ERROR_MSG_MAX];
        snprintf(what, sizeof what, "%s: source metadata %s", o->input, b->name);
        int rc = mc_st_header_len(d, n, what, &hl, err);
        if (rc) return rc;
        cJSON *h = hl == n - 8 ? cJSON_ParseWithLength((const char *)d + 8, (size_t)hl) : NULL;
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(h, "__metadata__"), *it;
        if (!h) return mc_error_set(err, MC_ERR_FORMAT, "%s is not a safetensors header", what);
        if (arr) kv = cJSON_CreateArray();
        if (arr && mc_json_add(e, "kv", kv)) {
            cJSON_Delete(h);
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        }
        if (!arr) printf("metadata: %d keys\n", cJSON_GetArraySize(md));
        cJSON_ArrayForEach(it, md) {
            const char *v = cJSON_IsString(it) ? it->valuestring : "";
            if (arr) {
                cJSON *x = cJSON_CreateObject();
                if (mc_json_add(kv, NULL, x) || mc_json_add(x, "key", mc_json_str(it->string, strlen(it->string))) ||
                    mc_json_add(x, "type", cJSON_CreateString("string")) || mc_json_add(x, "value", mc_json_str(v, strlen(v)))) {
                    cJSON_Delete(h);
                    return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                }
                continue;
            }
            printf("  ");
            mc_dump_print_str(it->string, strlen(it->string), 1);
            printf(" string = ");
            mc_dump_print_str(v, strlen(v), o->full);
            putchar('\n');
        }
        cJSON_Delete(h);
        return 0;
    }
    /* a file: its text (strings are shown as dump shows GGUF strings) */
    if (arr) return mc_json_add(e, "text", mc_json_str((const char *)d, n)) ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
    printf("  text = ");
    mc_dump_print_str((const char *)d, n, o->full);
    putchar('\n');
    return 0;
}

static int mc_dump_source_kv(const mc_dump_opts *o, mc_error *err)
{
    mc_flash *f = NULL;
    mc_flash_meta meta;
    cJSON *doc = NULL, *arr = NULL;
    int rc = mc_flash_open(o->input, &f, err);
    memset(&meta, 0, sizeof meta);
    if (rc) return rc;
    if ((rc = mc_flash_meta_parse(f->manifest, f->file.size, &meta, err))) {
        char m[MC_ERROR_MSG_MAX];
        snprintf(m, sizeof m, "%s", err->msg);
        mc_error_set(err, rc, "%s: %s", o->input, m);
        goto done;
    }
    if (!meta.n) {
        rc = mc_error_set(err, MC_ERR_NOTFOUND, "%s: carries no source metadata (written before it was carried, "
                          "or from a model without a source file)", o->input);
        goto done;
    }
    if (o->json) {
        doc = cJSON_CreateObject();
        arr = cJSON_CreateArray();
        if (mc_json_add(doc, "file", mc_json_str(o->input, strlen(o->input))) || mc_json_add(doc, "source_meta", arr)) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
            goto done;
        }
    } else {
        printf("file: %s\nsource metadata: %zu blob%s, region at %llu (%llu bytes)\n", o->input, meta.n,
               meta.n == 1 ? "" : "s", (unsigned long long)meta.offset, (unsigned long long)meta.nbytes);
    }
    for (size_t i = 0; i < meta.n && !rc; i++) {
        unsigned char *d = NULL;
        size_t n = 0;
        if ((rc = mc_flash_meta_load(&f->file, &meta.blobs[i], &d, &n, err))) {
            char m[MC_ERROR_MSG_MAX];
            snprintf(m, sizeof m, "%s", err->msg);
            mc_error_set(err, rc, "%s: %s", o->input, m);
            break;
        }
        rc = mc_dump_blob(o, &meta.blobs[i], d, n, arr, err);
        free(d);
    }
    if (!rc && doc) {
        char *text = cJSON_Print(doc);
        if (!text) rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        else {
            fputs(text, stdout);
            putchar('\n');
            free(text);
        }
    }
done:
    cJSON_Delete(doc);
    if (!doc) cJSON_Delete(arr);
    mc_flash_meta_free(&meta);
    mc_flash_close(f);
    return rc;
}

/* ---- command ---- */

static int mc_dump_parse(int argc, char **argv, mc_dump_opts *o)
{
    const char *arg;
    int i = 1, id;
    memset(o, 0, sizeof *o);
    o->limit = MC_DUMP_DEFAULT_ROWS;
    while ((id = mc_cli_next_opt("dump", argc, argv, &i, g_dump_opts, &arg)) != MC_OPT_END) {
        switch (id) {
        case MC_OPT_ERROR: return MC_EXIT_USAGE;
        case OPT_HELP: mc_dump_usage(stdout); return -1;
        case OPT_JSON: o->json = 1; break;
        case OPT_FULL: o->full = 1; break;
        case OPT_FILTER: o->filter = arg; break;
        case OPT_NO_KV: o->no_kv = 1; break;
        case OPT_NO_TENSORS: o->no_tensors = 1; break;
        case OPT_TENSOR: o->tensor = arg; break;
        case OPT_VALUES: o->values = 1; break;
        case OPT_F32_OUT: o->f32_out = arg; o->values = 1; break;
        case OPT_FORCE: o->force = 1; break;
        case OPT_TOKENIZER_OUT: o->tokenizer_out = arg; break;
        case OPT_SOURCE_KV: o->source_kv = 1; break;
        case OPT_LIMIT:
            if (mc_cli_parse_count(arg, &o->limit)) return mc_cli_usage_error("dump", "--limit needs a row count, got '%s'", arg);
            o->limit_set = 1;
            break;
        default:
            if (o->input) return mc_cli_usage_error("dump", "one input expected, got '%s' too", arg);
            o->input = arg;
            break;
        }
    }
    if (!o->input) return mc_cli_usage_error("dump", "missing FILE|DIR");
    if (o->values && !o->tensor) return mc_cli_usage_error("dump", "--values and --f32-out need --tensor NAME");
    if (o->limit_set && !o->values) return mc_cli_usage_error("dump", "--limit needs --values");
    if (o->force && !o->f32_out && !o->tokenizer_out)
        return mc_cli_usage_error("dump", "--force needs --f32-out or --tokenizer-out");
    return 0;
}

static int mc_dump_text(const mc_dump_src *src, const mc_dump_opts *o, mc_error *err)
{
    mc_dump_text_header(src, o->input);
    if (!o->no_kv) {
        if (src->g) mc_dump_text_kv(src->g, o->full);
        else mc_dump_text_meta(src->st, o->full);
    }
    if (!o->no_tensors) mc_dump_text_tensors(src, o);
    return o->values ? mc_dump_values(src, o, NULL, err) : 0;
}

static int mc_dump_json(const mc_dump_src *src, const mc_dump_opts *o, mc_error *err)
{
    cJSON *doc = cJSON_CreateObject();
    int rc = 0;
    char *text = NULL;
    if (!doc || mc_dump_json_header(src, o->input, doc)) goto nomem;
    if (!o->no_kv) {
        cJSON *kv = cJSON_CreateArray();
        if (mc_json_add(doc, "kv", kv)) goto nomem;
        if (src->g ? mc_dump_json_kv(src->g, o->full, kv) : mc_dump_json_meta(src->st, kv)) goto nomem;
    }
    if (!o->no_tensors) {
        cJSON *ts = cJSON_CreateArray();
        if (mc_json_add(doc, "tensors", ts) || mc_dump_json_tensors(src, o, ts)) goto nomem;
    }
    if (o->values && (rc = mc_dump_values(src, o, doc, err))) goto done;
    if (!(text = cJSON_Print(doc))) goto nomem;
    fputs(text, stdout);
    putchar('\n');
    goto done;
nomem:
    rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building JSON", o->input);
done:
    free(text);
    cJSON_Delete(doc);
    return rc;
}

int mc_cmd_dump(int argc, char **argv)
{
    mc_dump_opts o;
    mc_dump_src src;
    mc_error err = { 0 };
    int rc = mc_dump_parse(argc, argv, &o);
    if (rc) return rc < 0 ? MC_EXIT_OK : rc;
    if (o.source_kv) {
        if (!mc_cli_is_flash(o.input)) return mc_cli_usage_error("dump", "--source-kv reads a .flash file");
        rc = mc_dump_source_kv(&o, &err);
        if (rc) {
            fflush(stdout);
            return mc_cli_report(&err);
        }
        return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
    }
    if (mc_cli_is_flash(o.input)) return mc_cli_flash_dump(o.input, o.json, o.filter);
    if (mc_cli_is_maccode(o.input)) return mc_cli_maccode_dump(o.input, o.json, o.filter);
    if (mc_dump_open(o.input, &src, &err)) {
        mc_dump_close(&src);
        return mc_cli_report(&err);
    }
    rc = o.tokenizer_out ? mc_dump_tokenizer(&src, &o, &err) : o.json ? mc_dump_json(&src, &o, &err) : mc_dump_text(&src, &o, &err);
    mc_dump_close(&src);
    if (rc) {
        fflush(stdout);
        return mc_cli_report(&err);
    }
    return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}
