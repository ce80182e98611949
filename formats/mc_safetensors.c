/* mc_safetensors: safetensors reader. See mc_safetensors.h for the rules. */
#include "mc_safetensors.h"
#include "mc_types.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull;

static const char *const g_tok_files[] = MC_ST_TOKENIZER_FILES;
#define N_TOK_FILES (sizeof g_tok_files / sizeof g_tok_files[0])

/* Valid safetensors dtypes that mconv has no mc_type for. */
static const char *const g_unsupported_dtypes[] = { "F8_E4M3FNUZ", "F8_E5M2FNUZ" };

static char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Grow *p (elements of size elem) so that it holds at least need. */
static int st_grow(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap) return 0;
    uint64_t nc = *cap ? *cap : 16, bytes;
    while (nc < need) nc = nc > UINT64_MAX / 2 ? need : nc * 2;
    if (mc_mul_u64(nc, elem, &bytes) || bytes > SIZE_MAX) return 1;
    void *q = realloc(*p, (size_t)bytes);
    if (!q) return 1;
    memset((char *)q + *cap * elem, 0, (size_t)(bytes - *cap * elem));
    *p = q;
    *cap = nc;
    return 0;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* ---- lexical checks on header text (before cJSON sees it) ---- */

/* Length of the UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0xFFu >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int mc_st_utf8_valid(const void *s, size_t n)
{
    const unsigned char *p = s;
    for (size_t i = 0, l; i < n; i += l)
        if ((l = utf8_len(p + i, n - i)) == 0) return 0;
    return 1;
}

/* UTF-8, no control bytes in strings or outside whitespace, no \u0000,
 * every number plain decimal digits without a leading zero. */
static int st_lex_check(const unsigned char *h, size_t n, const char *path, const char *what,
                        int strict_numbers, mc_error *err)
{
    int in_str = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = h[i];
        size_t l = utf8_len(h + i, n - i);
        if (l == 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not valid UTF-8 (byte 0x%02x at offset %zu)",
                                path, what, c, i);
        if (in_str) {
            if (c < 0x20)
                return mc_error_set(err, MC_ERR_FORMAT,
                                    "%s: %s has a raw control byte 0x%02x inside a string at offset %zu",
                                    path, what, c, i);
            if (c == '\\') {
                if (i + 1 < n && h[i + 1] == 'u' && i + 6 <= n && memcmp(h + i + 2, "0000", 4) == 0)
                    return mc_error_set(err, MC_ERR_FORMAT,
                                        "%s: %s has a NUL character (\\u0000) in a string at offset %zu",
                                        path, what, i);
                i += 2; /* skip the escaped character; cJSON validates the escape */
                continue;
            }
            if (c == '"') in_str = 0;
            i += l;
            continue;
        }
        if (c == '"') { in_str = 1; i++; continue; }
        if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return mc_error_set(err, MC_ERR_FORMAT, "%s: %s has a control byte 0x%02x at offset %zu",
                                path, what, c, i);
        if (strict_numbers && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t j = i;
            int plain = 1;
            while (j < n && strchr("0123456789+-.eE", h[j]) && h[j]) {
                if (h[j] < '0' || h[j] > '9') plain = 0;
                j++;
            }
            if (!plain || (h[i] == '0' && j - i > 1))
                return mc_error_set(err, MC_ERR_FORMAT,
                                    "%s: %s has the number '%.*s' at offset %zu; sizes and offsets must be "
                                    "non-negative integers in plain decimal",
                                    path, what, (int)(j - i > 40 ? 40 : j - i), (const char *)h + i, i);
            i = j;
            continue;
        }
        i += l;
    }
    return 0;
}

/* An exact non-negative integer below 2^53 (see the header comment). */
static int st_num(const cJSON *it, uint64_t *out)
{
    if (!cJSON_IsNumber(it)) return -1;
    double d = it->valuedouble;
    if (!(d >= 0.0) || d >= (double)MC_ST_NUM_LIMIT) return 1;
    uint64_t v = (uint64_t)d;
    if ((double)v != d) return -1;
    *out = v;
    return 0;
}

static const char *json_kind(const cJSON *j)
{
    if (!j) return "missing";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    return "invalid";
}

/* Parse text as JSON; trailing whitespace allowed, nothing else. */
static int st_json_parse(const unsigned char *text, size_t n, const char *path, const char *what,
                         cJSON **out, mc_error *err)
{
    const char *end = NULL;
    *out = NULL;
    if (n == 0) return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is empty", path, what);
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)text, n, &end, 0);
    if (!root) {
        size_t at = end && end >= (const char *)text ? (size_t)(end - (const char *)text) : 0;
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not valid JSON (error near byte %zu of %zu)",
                            path, what, at, n);
    }
    for (const char *p = end; p < (const char *)text + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: %s has trailing bytes after the JSON value (byte 0x%02x at offset %zu)",
                                path, what, (unsigned char)*p, (size_t)(p - (const char *)text));
        }
    }
    if (!cJSON_IsObject(root)) {
        int rc = mc_error_set(err, MC_ERR_FORMAT, "%s: %s is %s, expected a JSON object", path, what,
                              json_kind(root));
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* First duplicated string among n (sorted copy), or NULL. */
static const char *st_find_dup(const char **names, size_t n, int *nomem)
{
    *nomem = 0;
    if (n < 2) return NULL;
    const char **s = malloc(n * sizeof *s);
    if (!s) { *nomem = 1; return NULL; }
    memcpy(s, names, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0) dup = s[i];
    free(s);
    return dup;
}

/* ---- one header ---- */

typedef struct st_ctx {
    mc_st *st;
    uint64_t cap_tensors;
    uint64_t cap_meta;
} st_ctx;

static int st_parse_meta(st_ctx *cx, const cJSON *m, int keep, const char *path, mc_error *err)
{
    mc_st *st = cx->st;
    size_t n = 0, k = 0;
    int rc = 0, nomem;
    const cJSON *c;
    if (cJSON_IsNull(m)) return 0;
    if (!cJSON_IsObject(m))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: __metadata__ is %s, expected an object of strings",
                            path, json_kind(m));
    cJSON_ArrayForEach(c, m) n++;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(c, m) {
        if (!cJSON_IsString(c)) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: __metadata__ value of '%s' is %s, expected a string",
                              path, c->string, json_kind(c));
            goto done;
        }
        keys[k++] = c->string;
    }
    const char *dup = st_find_dup(keys, n, &nomem);
    if (nomem) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if (dup) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", path, dup);
        goto done;
    }
    if (keep) {
        if (st_grow((void **)&st->meta, &cx->cap_meta, n, sizeof *st->meta)) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        cJSON_ArrayForEach(c, m) {
            mc_st_meta *e = &st->meta[st->n_meta];
            e->key = st_strdup(c->string);
            e->value = st_strdup(c->valuestring);
            st->n_meta++;
            if (!e->key || !e->value) {
                rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
        }
    }
done:
    free(keys);
    return rc;
}

static const char *st_dims_str(const mc_st_tensor *t, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (uint32_t d = 0; d < t->n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "", (ull)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

/* One tensor entry: fills t (name already set) and *end. */
static int st_parse_tensor(mc_st_tensor *t, const cJSON *info, const char *path, uint64_t *end,
                           mc_error *err)
{
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *c;
    const char *nm = t->name;
    char dims[200];
    uint64_t b = 0, e = 0, v;
    if (!cJSON_IsObject(info))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': entry is %s, expected an object", path, nm,
                            json_kind(info));
    cJSON_ArrayForEach(c, info) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0 ? &dtype
                             : strcmp(c->string, "shape") == 0 ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs : NULL;
        if (!slot) continue; /* unknown fields are ignored, as the reference does */
        if (*slot)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': field '%s' appears twice", path, nm,
                                c->string);
        *slot = c;
    }
    if (!cJSON_IsString(dtype))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': dtype is %s, expected a string", path, nm,
                            json_kind(dtype));
    t->type = mc_type_from_st_name(dtype->valuestring);
    if (t->type < 0) {
        for (size_t i = 0; i < sizeof g_unsupported_dtypes / sizeof g_unsupported_dtypes[0]; i++)
            if (strcmp(dtype->valuestring, g_unsupported_dtypes[i]) == 0)
                return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported",
                                    path, nm, dtype->valuestring);
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.64s'", path, nm,
                            dtype->valuestring);
    }
    if (!cJSON_IsArray(shape))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': shape is %s, expected an array", path, nm,
                            json_kind(shape));
    int nd = cJSON_GetArraySize(shape);
    if (nd > MC_ST_MAX_DIMS)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d supported",
                            path, nm, nd, MC_ST_MAX_DIMS);
    t->n_dims = 0;
    t->nelements = 1;
    cJSON_ArrayForEach(c, shape) {
        int r = st_num(c, &v);
        if (r < 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': shape holds %s, expected integers",
                                path, nm, json_kind(c));
        if (r > 0)
            return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor '%s': dimension %.0f is 2^53 or more",
                                path, nm, c->valuedouble);
        t->shape[t->n_dims++] = v;
    }
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (mc_mul_u64(t->nelements, t->shape[d], &t->nelements))
            return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': element count of shape %s overflows 64 bits",
                                path, nm, st_dims_str(t, dims, sizeof dims));
    const mc_type_traits *tr = mc_type_get(t->type);
    if (t->nelements % tr->blck != 0)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: tensor '%s': %s shape %s has %llu elements, which do not fill whole bytes",
                            path, nm, tr->st_name, st_dims_str(t, dims, sizeof dims), (ull)t->nelements);
    if (mc_type_nbytes(t->type, t->nelements, &t->nbytes))
        return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': byte size of %s shape %s overflows 64 bits",
                            path, nm, tr->st_name, st_dims_str(t, dims, sizeof dims));
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': data_offsets is %s, expected [begin, end]",
                            path, nm, cJSON_IsArray(offs) ? "an array of the wrong length" : json_kind(offs));
    for (int i = 0; i < 2; i++) {
        const cJSON *o = cJSON_GetArrayItem(offs, i);
        int r = st_num(o, i ? &e : &b);
        if (r < 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': data_offsets holds %s, expected integers",
                                path, nm, json_kind(o));
        if (r > 0)
            return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: tensor '%s': data offset %.0f is 2^53 or more",
                                path, nm, o->valuedouble);
    }
    if (e < b)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                            path, nm, (ull)b, (ull)e);
    if (e - b != t->nbytes)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but %s %s needs %llu",
                            path, nm, (ull)b, (ull)e, (ull)(e - b), tr->st_name,
                            st_dims_str(t, dims, sizeof dims), (ull)t->nbytes);
    t->data_begin = b;
    *end = e;
    return 0;
}

static int cmp_tensor_off(const void *a, const void *b)
{
    const mc_st_tensor *x = a, *y = b;
    if (x->data_begin != y->data_begin) return x->data_begin < y->data_begin ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Parse the header text of file fi (hdr, hlen bytes; the file is file_size
 * bytes) and append its tensors. */
static int st_parse_header(st_ctx *cx, uint32_t fi, const char *path, const unsigned char *hdr, uint64_t hlen,
                           uint64_t file_size, mc_error *err)
{
    mc_st *st = cx->st;
    cJSON *root = NULL;
    const cJSON *c, *meta = NULL;
    uint64_t n = 0, base = st->n_tensors;
    int rc = st_lex_check(hdr, (size_t)hlen, path, "header", 1, err);
    if (rc) return rc;
    rc = st_json_parse(hdr, (size_t)hlen, path, "header", &root, err);
    if (rc) return rc;
    cJSON_ArrayForEach(c, root) n++;
    if (st_grow((void **)&st->tensors, &cx->cap_tensors, base + n, sizeof *st->tensors)) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for %llu tensors", path, (ull)n);
        goto done;
    }
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (meta) {
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s: __metadata__ appears twice", path);
                goto done;
            }
            meta = c;
            rc = st_parse_meta(cx, c, fi == 0, path, err);
            if (rc) goto done;
            continue;
        }
        mc_st_tensor *t = &st->tensors[st->n_tensors];
        memset(t, 0, sizeof *t);
        t->name = st_strdup(c->string);
        if (!t->name) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); goto done; }
        st->n_tensors++;
        t->file = fi;
        t->indexed = 1;
        uint64_t end;
        rc = st_parse_tensor(t, c, path, &end, err);
        if (rc) goto done;
    }
    /* Offsets: sorted, they must tile [0, data size) exactly. */
    uint64_t cnt = st->n_tensors - base, expect = 0, data_size = file_size - 8 - hlen;
    mc_st_tensor *ts = cnt ? st->tensors + base : NULL;
    if (cnt > 1) qsort(ts, (size_t)cnt, sizeof *ts, cmp_tensor_off);
    for (uint64_t i = 0; i < cnt; i++) {
        if (ts[i].data_begin < expect) {
            rc = mc_error_set(err, MC_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' ending at %llu",
                              path, ts[i].name, (ull)ts[i].data_begin, (ull)(ts[i].data_begin + ts[i].nbytes),
                              ts[i - 1].name, (ull)expect);
            goto done;
        }
        if (ts[i].data_begin > expect) {
            rc = mc_error_set(err, MC_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets begin at %llu but the data before it ends at %llu "
                              "(a gap)", path, ts[i].name, (ull)ts[i].data_begin, (ull)expect);
            goto done;
        }
        expect = ts[i].data_begin + ts[i].nbytes; /* both < 2^53: no overflow */
        ts[i].file_offset = 8 + hlen + ts[i].data_begin;
    }
    if (expect != data_size) {
        rc = mc_error_set(err, MC_ERR_FORMAT,
                          "%s: tensors cover %llu data bytes but the file holds %llu after the header (%s)",
                          path, (ull)expect, (ull)data_size,
                          expect > data_size ? "truncated" : "extra bytes at the end");
        goto done;
    }
    st->files[fi].first_tensor = base;
    st->files[fi].n_tensors = cnt;
    st->header_bytes += 8 + hlen;
    st->data_bytes += data_size;
done:
    cJSON_Delete(root);
    return rc;
}

int mc_st_header_len(const void *prefix, uint64_t size, const char *path, uint64_t *hlen, mc_error *err)
{
    const unsigned char *pre = (const unsigned char *)prefix;
    if (size < 8)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: file is %llu bytes, too short for the 8-byte header length", path, (ull)size);
    uint64_t n = le64(pre);
    if (n > MC_ST_HEADER_LIMIT)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: header length %llu exceeds the safetensors limit of %u bytes (not a safetensors file?)",
                            path, (ull)n, MC_ST_HEADER_LIMIT);
    if (n > size - 8)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: header length %llu runs past the end of the file (%llu bytes)", path, (ull)n,
                            (ull)size);
    *hlen = n;
    return 0;
}

static mc_st *st_new(const char *path, mc_error *err)
{
    mc_st *st = calloc(1, sizeof *st);
    if (st) st->path = st_strdup(path);
    if (!st || !st->path) {
        free(st);
        mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    return st;
}

static int st_reserve_files(mc_st *st, uint64_t n, mc_error *err)
{
    uint64_t bytes;
    if (mc_mul_u64(n, sizeof *st->files, &bytes) || bytes > SIZE_MAX ||
        !(st->files = calloc((size_t)(n ? n : 1), sizeof *st->files)))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for %llu files", st->path, (ull)n);
    return 0;
}

static int cmp_by_name(const void *a, const void *b, const mc_st *st)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return strcmp(st->tensors[x].name, st->tensors[y].name);
}
/* Sort tensor indices by name. Heap sort: qsort has no context argument in
 * C11 and a global would make opening non-reentrant. */
static void sort_names(mc_st *st, uint64_t *idx, uint64_t n)
{
    /* heap sort on indices: no global state, O(n log n) */
    for (uint64_t k = n / 2; k-- > 0;) {
        uint64_t i = k;
        for (;;) {
            uint64_t l = 2 * i + 1, m = i;
            if (l < n && cmp_by_name(&idx[l], &idx[m], st) > 0) m = l;
            if (l + 1 < n && cmp_by_name(&idx[l + 1], &idx[m], st) > 0) m = l + 1;
            if (m == i) break;
            uint64_t t = idx[i]; idx[i] = idx[m]; idx[m] = t;
            i = m;
        }
    }
    for (uint64_t end = n; end-- > 1;) {
        uint64_t t = idx[0]; idx[0] = idx[end]; idx[end] = t;
        uint64_t i = 0;
        for (;;) {
            uint64_t l = 2 * i + 1, m = i;
            if (l < end && cmp_by_name(&idx[l], &idx[m], st) > 0) m = l;
            if (l + 1 < end && cmp_by_name(&idx[l + 1], &idx[m], st) > 0) m = l + 1;
            if (m == i) break;
            uint64_t t2 = idx[i]; idx[i] = idx[m]; idx[m] = t2;
            i = m;
        }
    }
}

static int st_build_names(mc_st *st, mc_error *err)
{
    st->by_name = malloc((size_t)(st->n_tensors ? st->n_tensors : 1) * sizeof *st->by_name);
    if (!st->by_name) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", st->path);
    for (uint64_t i = 0; i < st->n_tensors; i++) st->by_name[i] = i;
    sort_names(st, st->by_name, st->n_tensors);
    for (uint64_t i = 1; i < st->n_tensors; i++) {
        const mc_st_tensor *a = &st->tensors[st->by_name[i - 1]], *b = &st->tensors[st->by_name[i]];
        if (strcmp(a->name, b->name) == 0) {
            if (a->file == b->file)
                return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s' appears twice in the header",
                                    st->files[a->file].file.path, a->name);
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s' is in both %s and %s", st->path, a->name,
                                st->files[a->file].name, st->files[b->file].name);
        }
    }
    return 0;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Open path as file number fi of st and parse its header. */
static int st_add_file(st_ctx *cx, const char *path, mc_error *err)
{
    mc_st *st = cx->st;
    uint32_t fi = st->n_files;
    mc_st_file *f = &st->files[fi];
    unsigned char pre[8];
    unsigned char *hdr = NULL;
    uint64_t hlen = 0;
    int rc = mc_file_open(&f->file, path, err);
    if (rc) return rc;
    st->n_files++;
    f->name = st_strdup(base_name(path));
    if (!f->name) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    memset(pre, 0, sizeof pre);
    if (f->file.size >= 8 && (rc = mc_file_pread(&f->file, 0, pre, 8, err))) return rc;
    rc = mc_st_header_len(pre, f->file.size, path, &hlen, err);
    if (rc) return rc;
    f->header_len = hlen;
    f->data_offset = 8 + hlen;
    hdr = malloc((size_t)(hlen ? hlen : 1));
    if (!hdr) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path, (ull)hlen);
    rc = mc_file_pread(&f->file, 8, hdr, (size_t)hlen, err);
    if (!rc) rc = st_parse_header(cx, fi, path, hdr, hlen, f->file.size, err);
    free(hdr);
    return rc;
}

int mc_st_parse_mem(const void *data, size_t size, const char *name, mc_st **out, mc_error *err)
{
    st_ctx cx = { 0 };
    uint64_t hlen = 0;
    const unsigned char *p = data;
    unsigned char pre[8] = { 0 };
    int rc;
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && size) return mc_error_set(err, MC_ERR_ARG, "%s: no data", name);
    mc_st *st = cx.st = st_new(name, err);
    if (!st) return MC_ERR_NOMEM;
    st->mem = p;
    if ((rc = st_reserve_files(st, 1, err))) goto done;
    mc_st_file *f = &st->files[0];
    f->file.fd = -1;
    f->file.size = size;
    f->file.path = st_strdup(name);
    f->name = st_strdup(base_name(name));
    st->n_files = 1;
    if (!f->file.path || !f->name) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", name); goto done; }
    if (size >= 8) memcpy(pre, p, 8);
    if ((rc = mc_st_header_len(pre, size, name, &hlen, err))) goto done;
    f->header_len = hlen;
    f->data_offset = 8 + hlen;
    if ((rc = st_parse_header(&cx, 0, name, p + 8, hlen, size, err))) goto done;
    rc = st_build_names(st, err);
done:
    if (rc) mc_st_close(st);
    else *out = st;
    return rc;
}

/* ---- folders ---- */

/* Read a whole small text file (at most limit bytes). */
static int st_read_text(const char *path, uint64_t limit, unsigned char **out, size_t *len, mc_error *err)
{
    mc_file f;
    *out = NULL;
    int rc = mc_file_open(&f, path, err);
    if (rc) return rc;
    if (f.size > limit) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: %llu bytes, more than the %llu-byte limit for a JSON file",
                          path, (ull)f.size, (ull)limit);
    } else if (!(*out = malloc((size_t)f.size + 1))) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    } else if (!(rc = mc_file_pread(&f, 0, *out, (size_t)f.size, err))) {
        (*out)[f.size] = 0;
        *len = (size_t)f.size;
    }
    mc_file_close(&f);
    if (rc) { free(*out); *out = NULL; }
    return rc;
}

static int st_read_json(const char *path, cJSON **out, mc_error *err)
{
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = st_read_text(path, MC_ST_JSON_LIMIT, &text, &len, err);
    /* config.json and the index may hold any JSON numbers */
    if (!rc) rc = st_lex_check(text, len, path, "file", 0, err);
    if (!rc) rc = st_json_parse(text, len, path, "file", out, err);
    free(text);
    return rc;
}

/* Is a shard name from an index safe to join to the folder? */
static int st_shard_name_ok(const char *s)
{
    if (!*s || s[0] == '/') return 0;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        p += n + (q ? 1 : 0);
        if (q && !*p) return 0;
    }
    return 1;
}

typedef struct st_index {
    uint64_t n;             /* weight_map entries */
    const char **tensor;    /* names (point into the cJSON tree) */
    const char **shard;
    uint64_t n_shards;
    const char **shards;    /* distinct shard names, sorted */
} st_index;

static void st_index_free(st_index *ix)
{
    free(ix->tensor);
    free(ix->shard);
    free(ix->shards);
    memset(ix, 0, sizeof *ix);
}

static int st_index_parse(const cJSON *root, const char *path, st_index *ix, mc_error *err)
{
    const cJSON *wm = NULL, *c;
    int rc = 0, nomem = 0;
    memset(ix, 0, sizeof *ix);
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "weight_map") != 0) continue;
        if (wm) return mc_error_set(err, MC_ERR_FORMAT, "%s: weight_map appears twice", path);
        wm = c;
    }
    if (!cJSON_IsObject(wm))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: weight_map is %s, expected an object", path, json_kind(wm));
    cJSON_ArrayForEach(c, wm) ix->n++;
    size_t n = (size_t)(ix->n ? ix->n : 1);
    ix->tensor = malloc(n * sizeof *ix->tensor);
    ix->shard = malloc(n * sizeof *ix->shard);
    ix->shards = malloc(n * sizeof *ix->shards);
    if (!ix->tensor || !ix->shard || !ix->shards) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    uint64_t k = 0;
    cJSON_ArrayForEach(c, wm) {
        if (!cJSON_IsString(c)) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: weight_map entry '%s' is %s, expected a file name", path,
                              c->string, json_kind(c));
            goto done;
        }
        if (!st_shard_name_ok(c->valuestring)) {
            rc = mc_error_set(err, MC_ERR_FORMAT,
                              "%s: weight_map entry '%s' names '%.200s', not a file inside the folder", path,
                              c->string, c->valuestring);
            goto done;
        }
        ix->tensor[k] = c->string;
        ix->shard[k] = c->valuestring;
        k++;
    }
    const char *dup = st_find_dup(ix->tensor, (size_t)ix->n, &nomem);
    if (nomem) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if (dup) { rc = mc_error_set(err, MC_ERR_FORMAT, "%s: weight_map lists tensor '%s' twice", path, dup); goto done; }
    memcpy(ix->shards, ix->shard, (size_t)ix->n * sizeof *ix->shards);
    qsort(ix->shards, (size_t)ix->n, sizeof *ix->shards, cmp_str_ptr);
    for (uint64_t i = 0; i < ix->n; i++)
        if (i == 0 || strcmp(ix->shards[i], ix->shards[ix->n_shards - 1]) != 0)
            ix->shards[ix->n_shards++] = ix->shards[i];
done:
    if (rc) st_index_free(ix);
    return rc;
}

int mc_st_index_check_mem(const void *data, size_t size, const char *name, uint64_t *n_entries,
                          uint64_t *n_shards, mc_error *err)
{
    cJSON *root = NULL;
    st_index ix;
    if (!name) name = "(memory)";
    if (!data && size) return mc_error_set(err, MC_ERR_ARG, "%s: no data", name);
    int rc = st_lex_check(data, size, name, "index", 0, err);
    if (!rc) rc = st_json_parse(data, size, name, "index", &root, err);
    if (!rc) rc = st_index_parse(root, name, &ix, err);
    if (!rc) {
        if (n_entries) *n_entries = ix.n;
        if (n_shards) *n_shards = ix.n_shards;
        st_index_free(&ix);
    }
    cJSON_Delete(root);
    return rc;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* model*.safetensors in dir, sorted (mlx-lm's glob). */
static int st_glob_models(const char *dir, char ***names, uint64_t *n, mc_error *err)
{
    uint64_t cap = 0;
    int rc = 0;
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return mc_error_set(err, MC_ERR_IO, "%s: cannot list the folder", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        static const char ext[] = ".safetensors";
        if (strncmp(de->d_name, "model", 5) != 0 || l < sizeof ext - 1 + 5 ||
            strcmp(de->d_name + l - (sizeof ext - 1), ext) != 0)
            continue;
        if (st_grow((void **)names, &cap, *n + 1, sizeof **names) || !((*names)[*n] = st_strdup(de->d_name))) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (!rc && *n) qsort(*names, (size_t)*n, sizeof **names, cmp_cstr);
    return rc;
}

static int st_open_side_files(mc_st *st, mc_error *err)
{
    char *p = mc_path_join(st->dir, "config.json");
    int rc = 0;
    if (!p) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (mc_io_exists(p)) rc = st_read_json(p, &st->config, err);
    free(p);
    if (rc) return rc;
    st->tokenizer_files = calloc(N_TOK_FILES, sizeof *st->tokenizer_files);
    if (!st->tokenizer_files) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < N_TOK_FILES; i++) {
        p = mc_path_join(st->dir, g_tok_files[i]);
        if (!p) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        int there = mc_io_exists(p) && !mc_io_is_dir(p);
        free(p);
        if (there && !(st->tokenizer_files[st->n_tokenizer_files++] = st_strdup(g_tok_files[i])))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int st_open_dir(st_ctx *cx, mc_error *err)
{
    mc_st *st = cx->st;
    char **names = NULL;
    uint64_t n_names = 0;
    st_index ix = { 0 };
    char *p = NULL;
    int rc = 0;
    st->index_path = mc_path_join(st->dir, "model.safetensors.index.json");
    if (!st->index_path) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (mc_io_exists(st->index_path)) {
        if ((rc = st_read_json(st->index_path, &st->index, err))) goto done;
        if ((rc = st_index_parse(st->index, st->index_path, &ix, err))) goto done;
        if (ix.n_shards == 0) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: weight_map is empty", st->index_path);
            goto done;
        }
        if ((rc = st_reserve_files(st, ix.n_shards, err))) goto done;
        for (uint64_t i = 0; i < ix.n_shards; i++) {
            p = mc_path_join(st->dir, ix.shards[i]);
            if (!p) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto done; }
            if (!mc_io_exists(p)) {
                rc = mc_error_set(err, MC_ERR_NOTFOUND, "%s: names shard '%s', which does not exist in %s",
                                  st->index_path, ix.shards[i], st->dir);
                goto done;
            }
            if ((rc = st_add_file(cx, p, err))) goto done;
            free(st->files[st->n_files - 1].name); /* keep the name as the index spells it */
            if (!(st->files[st->n_files - 1].name = st_strdup(ix.shards[i]))) {
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                goto done;
            }
            free(p);
            p = NULL;
        }
    } else {
        free(st->index_path);
        st->index_path = NULL;
        p = mc_path_join(st->dir, "model.safetensors");
        if (!p) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        if (mc_io_exists(p)) {
            names = malloc(sizeof *names);
            if (!names || !(names[0] = st_strdup("model.safetensors"))) {
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                goto done;
            }
            n_names = 1;
        } else if ((rc = st_glob_models(st->dir, &names, &n_names, err))) {
            goto done;
        }
        free(p);
        p = NULL;
        if (n_names == 0) {
            rc = mc_error_set(err, MC_ERR_NOTFOUND,
                              "%s: no model.safetensors, model.safetensors.index.json or model*.safetensors in the folder",
                              st->dir);
            goto done;
        }
        if ((rc = st_reserve_files(st, n_names, err))) goto done;
        for (uint64_t i = 0; i < n_names; i++) {
            p = mc_path_join(st->dir, names[i]);
            if (!p) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto done; }
            if ((rc = st_add_file(cx, p, err))) goto done;
            free(p);
            p = NULL;
        }
    }
    if ((rc = st_build_names(st, err))) goto done;
    if (st->index) {
        for (uint64_t i = 0; i < st->n_tensors; i++) st->tensors[i].indexed = 0;
        for (uint64_t i = 0; i < ix.n; i++) {
            mc_st_tensor *t = (mc_st_tensor *)mc_st_find(st, ix.tensor[i]);
            if (!t || strcmp(st->files[t->file].name, ix.shard[i]) != 0) {
                rc = mc_error_set(err, MC_ERR_NOTFOUND, "%s: tensor '%s' is mapped to %s, which does not hold it%s%s",
                                  st->index_path, ix.tensor[i], ix.shard[i], t ? "; it is in " : "",
                                  t ? st->files[t->file].name : "");
                goto done;
            }
            t->indexed = 1;
        }
        for (uint64_t i = 0; i < st->n_tensors; i++) st->n_unindexed += !st->tensors[i].indexed;
    }
done:
    for (uint64_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(p);
    st_index_free(&ix);
    return rc;
}

int mc_st_open(const char *path, mc_st **out, mc_error *err)
{
    st_ctx cx = { 0 };
    int rc = 0;
    *out = NULL;
    mc_st *st = cx.st = st_new(path, err);
    if (!st) return MC_ERR_NOMEM;
    st->is_dir = mc_io_is_dir(path);
    if (st->is_dir) {
        st->dir = st_strdup(path);
    } else {
        const char *s = strrchr(path, '/');
        st->dir = s ? malloc((size_t)(s - path) + 2) : st_strdup(".");
        if (s && st->dir) {
            size_t dn = s == path ? 1 : (size_t)(s - path);
            memcpy(st->dir, path, dn);
            st->dir[dn] = 0;
        }
    }
    if (!st->dir) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if (st->is_dir) {
        rc = st_open_dir(&cx, err);
    } else {
        if (!(rc = st_reserve_files(st, 1, err)) && !(rc = st_add_file(&cx, path, err)))
            rc = st_build_names(st, err);
    }
    if (!rc) rc = st_open_side_files(st, err);
done:
    if (rc) mc_st_close(st);
    else *out = st;
    return rc;
}

void mc_st_close(mc_st *st)
{
    if (!st) return;
    for (uint32_t i = 0; i < st->n_files; i++) {
        mc_file_close(&st->files[i].file);
        free(st->files[i].name);
    }
    free(st->files);
    for (uint64_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (uint64_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    for (uint32_t i = 0; i < st->n_tokenizer_files; i++) free(st->tokenizer_files[i]);
    free(st->tokenizer_files);
    cJSON_Delete(st->config);
    cJSON_Delete(st->index);
    free(st->index_path);
    free(st->by_name);
    free(st->dir);
    free(st->path);
    free(st);
}

const mc_st_tensor *mc_st_find(const mc_st *st, const char *name)
{
    if (!st || !name || !st->by_name) return NULL;
    uint64_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const mc_st_tensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int mc_st_read(const mc_st *st, const mc_st_tensor *t, uint64_t off, void *buf, size_t n, mc_error *err)
{
    uint64_t end;
    if (!st || !t || t->file >= st->n_files)
        return mc_error_set(err, MC_ERR_ARG, "mc_st_read: bad tensor");
    if (mc_add_u64(off, n, &end) || end > t->nbytes)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': read of %llu bytes at %llu is past its %llu bytes",
                            st->files[t->file].file.path, t->name, (ull)n, (ull)off, (ull)t->nbytes);
    if (n == 0) return 0;
    if (st->mem) {
        memcpy(buf, st->mem + t->file_offset + off, n);
        mc_io_count_read(n);
        return 0;
    }
    return mc_file_pread(&st->files[t->file].file, t->file_offset + off, buf, n, err);
}

const char *mc_st_meta_get(const mc_st *st, const char *key)
{
    if (!st || !key) return NULL;
    for (uint64_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

const char *mc_st_tensor_path(const mc_st *st, const mc_st_tensor *t)
{
    if (!st || !t || t->file >= st->n_files) return "?";
    return st->files[t->file].file.path;
}
