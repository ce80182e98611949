/* mc_gguf_write: streaming GGUF writer. See mc_gguf_write.h. */
#include "mc_gguf_write.h"
#include "mc_io.h"
#include "mc_types.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct wtensor {
    char *name;
    uint64_t name_len;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[MC_GGUF_MAX_DIMS];
    uint64_t offset;
    uint64_t nbytes;
} wtensor;

/* Growable byte buffer for the encoded metadata. */
typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
} wbuf;

/* Name set: open addressing over names owned elsewhere (stable pointers). */
typedef struct wslot {
    const char *s;
    uint64_t len;
} wslot;
typedef struct wset {
    wslot *slots;
    uint64_t cap, n;
} wset;

struct mc_gguf_writer {
    mc_outfile out;
    char *path;
    mc_gguf_write_opts o;
    uint32_t version, alignment;
    wbuf kv;
    uint64_t n_kv;
    char **keys;        /* key strings for the duplicate check */
    uint64_t n_keys;
    wset key_set;
    wtensor *t;
    uint64_t n_t, cap_t;
    wset t_set;
    uint64_t data_size; /* offset of the next tensor in the data section */
    int header_done, failed;
    uint64_t header_size, data_start;
    uint64_t cur, cur_written;
};

static const unsigned char g_zeros[4096];

static int fail(mc_gguf_writer *w, int rc)
{
    w->failed = 1;
    return rc;
}

static int wbuf_put(mc_gguf_writer *w, wbuf *b, const void *src, size_t n, mc_error *err)
{
    if (n > SIZE_MAX - b->len) return fail(w, mc_error_set(err, MC_ERR_OVERFLOW, "%s: metadata too large", w->path));
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) return fail(w, mc_error_set(err, MC_ERR_OVERFLOW, "%s: metadata too large", w->path));
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (!p) return fail(w, mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for metadata (%zu bytes)", w->path, cap));
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static void le_put(unsigned char *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* n is 1, 2, 4 or 8: a scalar's size from the value-type table. */
static int put_int(mc_gguf_writer *w, wbuf *b, uint64_t v, int n, mc_error *err)
{
    unsigned char x[8];
    if (n < 1 || n > 8) return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: a scalar of %d bytes", w->path, n));
    le_put(x, v, n);
    return wbuf_put(w, b, x, (size_t)n, err);
}

/* Counts and lengths: 32-bit in v1. */
static int put_len(mc_gguf_writer *w, wbuf *b, uint64_t v, mc_error *err)
{
    if (w->version == 1) {
        if (v > UINT32_MAX)
            return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: %" PRIu64 " does not fit GGUF v1's 32-bit length", w->path, v));
        return put_int(w, b, v, 4, err);
    }
    return put_int(w, b, v, 8, err);
}

static int put_str(mc_gguf_writer *w, wbuf *b, const char *s, uint64_t n, mc_error *err)
{
    int rc = put_len(w, b, n, err);
    if (!rc && n > SIZE_MAX) rc = fail(w, mc_error_set(err, MC_ERR_OVERFLOW, "%s: string too long", w->path));
    return rc ? rc : wbuf_put(w, b, s, (size_t)n, err);
}

static uint64_t hash_bytes(const char *s, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Insert name unless present: 0 inserted, 1 present, -1 out of memory. */
static int wset_insert(wset *s, const char *name, uint64_t len)
{
    if ((s->n + 1) * 2 > s->cap) {
        uint64_t cap = s->cap ? s->cap * 2 : 64;
        wslot *sl = calloc(cap, sizeof *sl);
        if (!sl) return -1;
        for (uint64_t i = 0; i < s->cap; i++) {
            if (!s->slots[i].s) continue;
            uint64_t h = hash_bytes(s->slots[i].s, s->slots[i].len) & (cap - 1);
            while (sl[h].s) h = (h + 1) & (cap - 1);
            sl[h] = s->slots[i];
        }
        free(s->slots);
        s->slots = sl;
        s->cap = cap;
    }
    uint64_t h = hash_bytes(name, len) & (s->cap - 1);
    while (s->slots[h].s) {
        if (s->slots[h].len == len && memcmp(s->slots[h].s, name, (size_t)len) == 0) return 1;
        h = (h + 1) & (s->cap - 1);
    }
    s->slots[h].s = name;
    s->slots[h].len = len;
    s->n++;
    return 0;
}

int mc_gguf_writer_create(mc_gguf_writer **out, const char *path, const mc_gguf_write_opts *opts, mc_error *err)
{
    mc_gguf_writer *w = calloc(1, sizeof *w);
    int rc = 0;
    *out = NULL;
    if (!w) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    w->out.fd = -1;
    w->out.slot = -1;
    if (opts) w->o = *opts;
    w->version = w->o.version ? w->o.version : 3;
    w->alignment = w->o.alignment ? w->o.alignment : MC_GGUF_DEFAULT_ALIGNMENT;
    w->path = malloc(strlen(path) + 1);
    if (!w->path) {
        free(w);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    }
    strcpy(w->path, path);
    if (w->version < 1 || w->version > 3) {
        rc = mc_error_set(err, MC_ERR_ARG, "%s: cannot write GGUF version %" PRIu32 " (1 to 3)", path, w->version);
        goto done;
    }
    if ((w->alignment & (w->alignment - 1)) != 0) {
        rc = mc_error_set(err, MC_ERR_ARG, "%s: alignment %" PRIu32 " is not a power of two", path, w->alignment);
        goto done;
    }
    if ((rc = mc_outfile_create(&w->out, path, w->o.force, err))) goto done;
    if (w->o.alignment && w->o.alignment != MC_GGUF_DEFAULT_ALIGNMENT)
        rc = mc_gguf_writer_add_u32(w, "general.alignment", w->alignment, err);
done:
    if (rc) {
        mc_gguf_writer_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int writable(mc_gguf_writer *w, int meta, mc_error *err)
{
    if (!w) return mc_error_set(err, MC_ERR_ARG, "GGUF writer: no writer");
    if (w->failed) return mc_error_set(err, MC_ERR_ARG, "%s: GGUF writer used after a failure", w->path);
    if (meta && w->header_done)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: metadata and tensor infos must come before tensor data", w->path));
    return 0;
}

/* Start a kv: checks, key, type. */
static int kv_begin(mc_gguf_writer *w, const char *key, uint32_t type, mc_error *err)
{
    int rc = writable(w, 1, err);
    if (rc) return rc;
    uint64_t len = strlen(key);
    if (len == 0 && !w->o.unchecked) return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: empty metadata key", w->path));
    if (!w->o.unchecked) {
        char **keys = realloc(w->keys, (size_t)(w->n_keys + 1) * sizeof *keys);
        if (keys) w->keys = keys;
        char *k = keys ? malloc((size_t)len + 1) : NULL;
        if (!k) return fail(w, mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path));
        memcpy(k, key, (size_t)len + 1);
        int dup = wset_insert(&w->key_set, k, len);
        if (dup == 0) w->keys[w->n_keys++] = k;
        else free(k);
        if (dup != 0) {
            return fail(w, dup < 0 ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path)
                                   : mc_error_set(err, MC_ERR_ARG, "%s: duplicate metadata key '%s'", w->path, key));
        }
        if (strcmp(key, "general.alignment") == 0 && type != MC_GGUF_UINT32)
            return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: general.alignment must be a u32", w->path));
    }
    if ((rc = put_str(w, &w->kv, key, len, err)) || (rc = put_int(w, &w->kv, type, 4, err))) return rc;
    w->n_kv++;
    return 0;
}

static int add_scalar(mc_gguf_writer *w, const char *key, mc_gguf_vtype t, uint64_t bits, mc_error *err)
{
    int rc = kv_begin(w, key, t, err);
    if (rc) return rc;
    if (t == MC_GGUF_UINT32 && strcmp(key, "general.alignment") == 0) {
        if (!w->o.unchecked && (bits == 0 || (bits & (bits - 1)) != 0))
            return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: general.alignment %" PRIu64 " is not a power of two", w->path, bits));
        if (!w->o.unchecked && w->n_t > 0 && bits != w->alignment)
            return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: general.alignment must be set before the tensor infos", w->path));
        if (bits != 0 && (bits & (bits - 1)) == 0) w->alignment = (uint32_t)bits;
    }
    return put_int(w, &w->kv, bits, (int)mc_gguf_vtype_size(t), err);
}

int mc_gguf_writer_add_u8(mc_gguf_writer *w, const char *k, uint8_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_UINT8, v, e); }
int mc_gguf_writer_add_i8(mc_gguf_writer *w, const char *k, int8_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_INT8, (uint8_t)v, e); }
int mc_gguf_writer_add_u16(mc_gguf_writer *w, const char *k, uint16_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_UINT16, v, e); }
int mc_gguf_writer_add_i16(mc_gguf_writer *w, const char *k, int16_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_INT16, (uint16_t)v, e); }
int mc_gguf_writer_add_u32(mc_gguf_writer *w, const char *k, uint32_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_UINT32, v, e); }
int mc_gguf_writer_add_i32(mc_gguf_writer *w, const char *k, int32_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_INT32, (uint32_t)v, e); }
int mc_gguf_writer_add_u64(mc_gguf_writer *w, const char *k, uint64_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_UINT64, v, e); }
int mc_gguf_writer_add_i64(mc_gguf_writer *w, const char *k, int64_t v, mc_error *e) { return add_scalar(w, k, MC_GGUF_INT64, (uint64_t)v, e); }
int mc_gguf_writer_add_bool(mc_gguf_writer *w, const char *k, int v, mc_error *e) { return add_scalar(w, k, MC_GGUF_BOOL, v != 0, e); }
int mc_gguf_writer_add_f32(mc_gguf_writer *w, const char *k, float v, mc_error *e)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return add_scalar(w, k, MC_GGUF_FLOAT32, u, e);
}
int mc_gguf_writer_add_f64(mc_gguf_writer *w, const char *k, double v, mc_error *e)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return add_scalar(w, k, MC_GGUF_FLOAT64, u, e);
}

int mc_gguf_writer_add_strn(mc_gguf_writer *w, const char *key, const char *v, uint64_t len, mc_error *err)
{
    int rc = kv_begin(w, key, MC_GGUF_STRING, err);
    return rc ? rc : put_str(w, &w->kv, v, len, err);
}

int mc_gguf_writer_add_str(mc_gguf_writer *w, const char *key, const char *v, mc_error *err)
{
    return mc_gguf_writer_add_strn(w, key, v, strlen(v), err);
}

/* Native value of element i of a packed native array of type et, as bits. */
static uint64_t native_elem(mc_gguf_vtype et, const void *data, uint64_t i)
{
    const unsigned char *p = (const unsigned char *)data + i * mc_gguf_vtype_size(et);
    switch (mc_gguf_vtype_size(et)) {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

int mc_gguf_writer_add_arr(mc_gguf_writer *w, const char *key, mc_gguf_vtype et, const void *data, uint64_t n,
                           mc_error *err)
{
    size_t sz = mc_gguf_vtype_size(et);
    if (w && !w->failed && sz == 0)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: key '%s': array element type %s needs another call",
                                    w->path, key, mc_gguf_vtype_name(et)));
    int rc = kv_begin(w, key, MC_GGUF_ARRAY, err);
    if (rc || (rc = put_int(w, &w->kv, et, 4, err)) || (rc = put_len(w, &w->kv, n, err))) return rc;
    for (uint64_t i = 0; i < n && !rc; i++) {
        uint64_t v = native_elem(et, data, i);
        if (et == MC_GGUF_BOOL) v = v != 0;
        rc = put_int(w, &w->kv, v, (int)sz, err);
    }
    return rc;
}

int mc_gguf_writer_add_arr_str(mc_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                               uint64_t n, mc_error *err)
{
    int rc = kv_begin(w, key, MC_GGUF_ARRAY, err);
    if (rc || (rc = put_int(w, &w->kv, MC_GGUF_STRING, 4, err)) || (rc = put_len(w, &w->kv, n, err))) return rc;
    for (uint64_t i = 0; i < n && !rc; i++)
        rc = put_str(w, &w->kv, strs[i], lens ? lens[i] : strlen(strs[i]), err);
    return rc;
}

int mc_gguf_writer_copy_kv(mc_gguf_writer *w, const mc_gguf_kv *kv, mc_error *err)
{
    int rc = writable(w, 1, err);
    if (rc) return rc;
    if (memchr(kv->key.s, '\0', (size_t)kv->key.len))
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: key with an embedded NUL cannot be copied", w->path));
    const char *k = kv->key.s;
    switch (kv->type) {
    case MC_GGUF_STRING: return mc_gguf_writer_add_strn(w, k, kv->v.str.s, kv->v.str.len, err);
    case MC_GGUF_FLOAT32: return mc_gguf_writer_add_f32(w, k, (float)kv->v.f64, err);
    case MC_GGUF_FLOAT64: return mc_gguf_writer_add_f64(w, k, kv->v.f64, err);
    case MC_GGUF_ARRAY:
        if (kv->arr_type == MC_GGUF_STRING) {
            const mc_gguf_str *s = kv->arr;
            if ((rc = kv_begin(w, k, MC_GGUF_ARRAY, err)) || (rc = put_int(w, &w->kv, MC_GGUF_STRING, 4, err)) ||
                (rc = put_len(w, &w->kv, kv->arr_n, err)))
                return rc;
            for (uint64_t i = 0; i < kv->arr_n && !rc; i++) rc = put_str(w, &w->kv, s[i].s, s[i].len, err);
            return rc;
        }
        /* numeric arrays are held little-endian as in the file: copy bytes */
        if ((rc = kv_begin(w, k, MC_GGUF_ARRAY, err)) || (rc = put_int(w, &w->kv, kv->arr_type, 4, err)) ||
            (rc = put_len(w, &w->kv, kv->arr_n, err)))
            return rc;
        return wbuf_put(w, &w->kv, kv->arr, (size_t)(kv->arr_n * mc_gguf_vtype_size(kv->arr_type)), err);
    default: {
        uint64_t bits = (uint64_t)kv->v.i64; /* the union's integer view; two's complement for signed */
        return add_scalar(w, k, kv->type, kv->type == MC_GGUF_BOOL ? kv->v.u64 != 0 : bits, err);
    }
    }
}

static int add_tensor_entry(mc_gguf_writer *w, const char *name, uint64_t name_len, wtensor **out, mc_error *err)
{
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return fail(w, mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path));
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = malloc((size_t)name_len + 1);
    if (!t->name) return fail(w, mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path));
    memcpy(t->name, name, (size_t)name_len);
    t->name[name_len] = '\0';
    t->name_len = name_len;
    w->n_t++;
    *out = t;
    return 0;
}

int mc_gguf_writer_add_tensor(mc_gguf_writer *w, const char *name, int type, uint32_t n_dims, const uint64_t *ne,
                              mc_error *err)
{
    int rc = writable(w, 1, err);
    if (rc) return rc;
    uint64_t len = strlen(name), nel = 1, nbytes = 0, padded;
    const mc_type_traits *tr = type >= 0 && type < MC_T_GGML_COUNT ? mc_type_get(type) : NULL;
    if (len == 0 || len >= MC_GGUF_MAX_NAME)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: tensor name '%s' must be 1 to %d bytes", w->path, name,
                                    MC_GGUF_MAX_NAME - 1));
    if (!tr || !tr->in_gguf)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': type %d is not a GGUF tensor type", w->path, name, type));
    if (n_dims < 1 || n_dims > MC_GGUF_MAX_DIMS)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': %" PRIu32 " dimensions (1 to 4)", w->path, name, n_dims));
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] > (uint64_t)INT64_MAX || mc_mul_u64(nel, ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return fail(w, mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': element count overflows", w->path, name));
    if (ne[0] % tr->blck != 0)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': row length %" PRIu64 " is not a multiple of %s's block size %" PRIu32,
                                    w->path, name, ne[0], tr->name, tr->blck));
    if (mc_type_nbytes(type, nel, &nbytes) || mc_add_u64(nbytes, w->alignment - 1, &padded) ||
        mc_add_u64(w->data_size, padded / w->alignment * w->alignment, &padded))
        return fail(w, mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': data size overflows", w->path, name));
    wtensor *t;
    if ((rc = add_tensor_entry(w, name, len, &t, err))) return rc;
    int dup = wset_insert(&w->t_set, t->name, len);
    if (dup != 0) {
        return fail(w, dup < 0 ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path)
                               : mc_error_set(err, MC_ERR_ARG, "%s: duplicate tensor name '%s'", w->path, name));
    }
    t->type = (uint32_t)type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < MC_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    t->offset = w->data_size;
    w->data_size = padded;
    return 0;
}

int mc_gguf_writer_add_tensor_raw(mc_gguf_writer *w, const char *name, uint64_t name_len, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, uint64_t offset, mc_error *err)
{
    int rc = writable(w, 1, err);
    if (rc) return rc;
    if (!w->o.unchecked || n_dims > 64)
        return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: raw tensor infos need the unchecked option (and n_dims <= 64)", w->path));
    wtensor *t;
    if ((rc = add_tensor_entry(w, name, name_len, &t, err))) return rc;
    t->type = type;
    t->n_dims = n_dims;
    /* raw dims beyond 4 are written as 1 (only the count is hostile) */
    for (uint32_t d = 0; d < MC_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->offset = offset;
    t->nbytes = 0;
    return 0;
}

uint64_t mc_gguf_writer_data_offset(const mc_gguf_writer *w) { return w->header_done ? w->data_start : 0; }
uint64_t mc_gguf_writer_header_size(const mc_gguf_writer *w) { return w->header_done ? w->header_size : 0; }

static int write_zeros(mc_gguf_writer *w, uint64_t n, mc_error *err)
{
    while (n > 0) {
        size_t k = n < sizeof g_zeros ? (size_t)n : sizeof g_zeros;
        int rc = mc_outfile_write(&w->out, g_zeros, k, err);
        if (rc) return fail(w, rc);
        n -= k;
    }
    return 0;
}

/* Move past tensors with no bytes left to write (zero-size ones). */
static int advance(mc_gguf_writer *w, mc_error *err)
{
    while (!w->o.unchecked && w->cur < w->n_t && w->cur_written == w->t[w->cur].nbytes) {
        uint64_t nb = w->t[w->cur].nbytes, pad = (w->alignment - nb % w->alignment) % w->alignment;
        int rc = write_zeros(w, pad, err);
        if (rc) return rc;
        w->cur++;
        w->cur_written = 0;
    }
    return 0;
}

int mc_gguf_writer_write_header(mc_gguf_writer *w, mc_error *err)
{
    int rc = writable(w, 1, err);
    if (rc) return rc;
    wbuf h = { 0 };
    uint64_t nt = w->o.unchecked && w->o.fake_n_tensors ? w->o.fake_n_tensors : w->n_t;
    uint64_t nk = w->o.unchecked && w->o.fake_n_kv ? w->o.fake_n_kv : w->n_kv;
    if ((rc = wbuf_put(w, &h, "GGUF", 4, err)) || (rc = put_int(w, &h, w->version, 4, err)) ||
        (rc = put_len(w, &h, nt, err)) || (rc = put_len(w, &h, nk, err)) ||
        (rc = wbuf_put(w, &h, w->kv.p, w->kv.len, err)))
        goto done;
    for (uint64_t i = 0; i < w->n_t && !rc; i++) {
        const wtensor *t = &w->t[i];
        if ((rc = put_str(w, &h, t->name, t->name_len, err)) || (rc = put_int(w, &h, t->n_dims, 4, err))) break;
        for (uint32_t d = 0; d < t->n_dims && !rc; d++)
            rc = w->version == 1 ? put_int(w, &h, d < MC_GGUF_MAX_DIMS ? t->ne[d] : 1, 4, err)
                                 : put_int(w, &h, d < MC_GGUF_MAX_DIMS ? t->ne[d] : 1, 8, err);
        if (!rc) rc = put_int(w, &h, t->type, 4, err);
        if (!rc) rc = put_int(w, &h, t->offset, 8, err);
    }
    if (rc) goto done;
    w->header_size = h.len;
    if (w->n_t > 0 || (w->o.unchecked && nt > 0)) {
        size_t pad = (w->alignment - h.len % w->alignment) % w->alignment;
        while (pad > 0 && !rc) {
            size_t k = pad < sizeof g_zeros ? pad : sizeof g_zeros;
            rc = wbuf_put(w, &h, g_zeros, k, err);
            pad -= k;
        }
        if (rc) goto done;
    }
    if ((rc = mc_outfile_write(&w->out, h.p, h.len, err))) {
        fail(w, rc);
        goto done;
    }
    w->data_start = h.len;
    w->header_done = 1;
    free(w->kv.p);
    w->kv.p = NULL;
    w->kv.len = w->kv.cap = 0;
    rc = advance(w, err);
done:
    free(h.p);
    return rc;
}

static int data_step(mc_gguf_writer *w, const void *buf, uint64_t n, mc_error *err)
{
    int rc = writable(w, 0, err);
    if (rc) return rc;
    if (!w->header_done && (rc = mc_gguf_writer_write_header(w, err))) return rc;
    const unsigned char *p = buf;
    if (w->o.unchecked) {
        if (p) return (rc = mc_outfile_write(&w->out, p, (size_t)n, err)) ? fail(w, rc) : 0;
        return (rc = mc_outfile_truncate(&w->out, w->out.size + n, err)) ? fail(w, rc) : 0;
    }
    while (n > 0) {
        if (w->cur >= w->n_t)
            return fail(w, mc_error_set(err, MC_ERR_ARG, "%s: %" PRIu64 " bytes of data beyond the last tensor", w->path, n));
        wtensor *t = &w->t[w->cur];
        uint64_t take = t->nbytes - w->cur_written;
        if (take > n) take = n;
        if (p) rc = mc_outfile_write(&w->out, p, (size_t)take, err);
        else rc = mc_outfile_truncate(&w->out, w->out.size + take, err);
        if (rc) return fail(w, rc);
        w->cur_written += take;
        n -= take;
        if (p) p += take;
        if ((rc = advance(w, err))) return rc;
    }
    return 0;
}

int mc_gguf_writer_write(mc_gguf_writer *w, const void *buf, size_t n, mc_error *err)
{
    if (!buf && n) return mc_error_set(err, MC_ERR_ARG, "GGUF writer: NULL data");
    return data_step(w, buf ? buf : g_zeros, n, err);
}

int mc_gguf_writer_skip(mc_gguf_writer *w, uint64_t n, mc_error *err) { return data_step(w, NULL, n, err); }

static void writer_free(mc_gguf_writer *w)
{
    for (uint64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    for (uint64_t i = 0; i < w->n_keys; i++) free(w->keys[i]);
    free(w->keys);
    free(w->key_set.slots);
    free(w->t_set.slots);
    free(w->kv.p);
    free(w->path);
    free(w);
}

int mc_gguf_writer_commit(mc_gguf_writer *w, mc_error *err)
{
    int rc = writable(w, 0, err);
    if (rc) goto done;
    if (!w->header_done && (rc = mc_gguf_writer_write_header(w, err))) goto done;
    if ((rc = advance(w, err))) goto done;
    if (!w->o.unchecked && w->cur < w->n_t) {
        const wtensor *t = &w->t[w->cur];
        rc = mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' got %" PRIu64 " of its %" PRIu64 " bytes (%" PRIu64
                          " of %" PRIu64 " tensors complete)", w->path, t->name, w->cur_written, t->nbytes, w->cur, w->n_t);
        goto done;
    }
    rc = mc_outfile_commit(&w->out, err);
done:
    if (w) {
        if (rc) mc_outfile_abort(&w->out);
        writer_free(w);
    }
    return rc;
}

void mc_gguf_writer_abort(mc_gguf_writer *w)
{
    if (!w) return;
    mc_outfile_abort(&w->out);
    writer_free(w);
}
