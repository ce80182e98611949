/* mc_gguf: GGUF reader (versions 1, 2, 3; split sets).
 *
 * One parser reads the header from a small byte source that is either a
 * buffered mc_reader over a file or a block of memory. Every count and length
 * from the file is checked against the bytes left before anything is
 * allocated; all header memory comes from a per-file arena whose total is
 * capped. Tensor data is never read here except on request (mc_gguf_read).
 */
#include "mc_gguf.h"
#include "mc_types.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_BUF_CAP (64u * 1024u)

/* ---- arena ---- */

typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_blk;

/* Open-addressed name index: slots hold index+1, 0 = empty. */
typedef struct name_index {
    uint64_t *slots;
    uint64_t cap; /* power of two */
} name_index;

struct mc_gguf_priv {
    arena_blk *blocks;
    uint64_t mem;           /* bytes taken from the arena (plus indexes) */
    name_index kv_idx;
    name_index tensor_idx;
    const unsigned char *mem_data; /* mc_gguf_parse_mem: the caller's bytes */
    mc_gguf **subs;         /* split set: the single-shard readers */
    uint32_t n_subs;
};

static _Atomic uint64_t g_mem_limit = MC_GGUF_MAX_HEADER_MEM;

uint64_t mc_gguf_header_mem_limit(uint64_t new_limit)
{
    if (new_limit == 0) return atomic_load(&g_mem_limit);
    return atomic_exchange(&g_mem_limit, new_limit);
}

static void *arena_alloc(struct mc_gguf_priv *p, uint64_t n, const char *name, mc_error *err)
{
    uint64_t need = (n + 15u) & ~(uint64_t)15u, limit = atomic_load(&g_mem_limit);
    if (n > limit || p->mem + need > limit) {
        mc_error_set(err, MC_ERR_NOMEM,
                     "%s: header needs more memory than the limit of %" PRIu64 " bytes (%" PRIu64
                     " bytes so far, %" PRIu64 " more requested); refusing",
                     name, limit, p->mem, n);
        return NULL;
    }
    arena_blk *b = p->blocks;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > (64u << 10) ? (size_t)need : (64u << 10);
        b = malloc(sizeof *b + cap);
        if (!b) {
            mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory reading the header (%" PRIu64 " bytes)",
                         name, n);
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        if (p->blocks && need > (64u << 10)) { /* big block: keep the current small one in front */
            b->next = p->blocks->next;
            p->blocks->next = b;
        } else {
            b->next = p->blocks;
            p->blocks = b;
        }
    }
    void *r = b->data + b->used;
    b->used += (size_t)need;
    p->mem += need;
    return r;
}

static void arena_free(struct mc_gguf_priv *p)
{
    arena_blk *b = p->blocks;
    while (b) {
        arena_blk *n = b->next;
        free(b);
        b = n;
    }
    p->blocks = NULL;
}

/* ---- little-endian decoding ---- */

static uint16_t le16(const unsigned char *b) { return (uint16_t)(b[0] | (b[1] << 8)); }
static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static uint64_t le64(const unsigned char *b) { return (uint64_t)le32(b) | ((uint64_t)le32(b + 4) << 32); }

/* ---- value types ---- */

static const struct {
    const char *name;
    uint8_t size;
    uint8_t kind; /* 0 unsigned, 1 signed, 2 float, 3 bool, 4 string, 5 array */
} g_vtypes[MC_GGUF_VTYPE_COUNT] = {
    [MC_GGUF_UINT8] = { "u8", 1, 0 },    [MC_GGUF_INT8] = { "i8", 1, 1 },
    [MC_GGUF_UINT16] = { "u16", 2, 0 },  [MC_GGUF_INT16] = { "i16", 2, 1 },
    [MC_GGUF_UINT32] = { "u32", 4, 0 },  [MC_GGUF_INT32] = { "i32", 4, 1 },
    [MC_GGUF_FLOAT32] = { "f32", 4, 2 }, [MC_GGUF_BOOL] = { "bool", 1, 3 },
    [MC_GGUF_STRING] = { "string", 0, 4 }, [MC_GGUF_ARRAY] = { "array", 0, 5 },
    [MC_GGUF_UINT64] = { "u64", 8, 0 },  [MC_GGUF_INT64] = { "i64", 8, 1 },
    [MC_GGUF_FLOAT64] = { "f64", 8, 2 },
};
enum { K_UNSIGNED, K_SIGNED, K_FLOAT, K_BOOL, K_STRING, K_ARRAY };

size_t mc_gguf_vtype_size(mc_gguf_vtype t)
{
    return (unsigned)t < MC_GGUF_VTYPE_COUNT ? g_vtypes[t].size : 0;
}

const char *mc_gguf_vtype_name(mc_gguf_vtype t)
{
    return (unsigned)t < MC_GGUF_VTYPE_COUNT ? g_vtypes[t].name : "?";
}

/* Decode one scalar of type t from b into kv's value union. */
static void decode_scalar(mc_gguf_vtype t, const unsigned char *b, mc_gguf_kv *kv)
{
    switch (t) {
    case MC_GGUF_UINT8: kv->v.u64 = b[0]; break;
    case MC_GGUF_INT8: kv->v.i64 = (int8_t)b[0]; break;
    case MC_GGUF_UINT16: kv->v.u64 = le16(b); break;
    case MC_GGUF_INT16: kv->v.i64 = (int16_t)le16(b); break;
    case MC_GGUF_UINT32: kv->v.u64 = le32(b); break;
    case MC_GGUF_INT32: kv->v.i64 = (int32_t)le32(b); break;
    case MC_GGUF_UINT64: kv->v.u64 = le64(b); break;
    case MC_GGUF_INT64: kv->v.i64 = (int64_t)le64(b); break;
    case MC_GGUF_BOOL: kv->v.u64 = b[0] != 0; break;
    case MC_GGUF_FLOAT32: {
        uint32_t u = le32(b);
        float f;
        memcpy(&f, &u, 4);
        kv->v.f64 = f;
        break;
    }
    case MC_GGUF_FLOAT64: {
        uint64_t u = le64(b);
        memcpy(&kv->v.f64, &u, 8);
        break;
    }
    default: break;
    }
}

/* ---- name index ---- */

static uint64_t hash_bytes(const char *s, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int index_init(struct mc_gguf_priv *p, name_index *ix, uint64_t n, const char *name, mc_error *err)
{
    uint64_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    uint64_t bytes;
    if (mc_mul_u64(cap, sizeof(uint64_t), &bytes))
        return mc_error_set(err, MC_ERR_OVERFLOW, "%s: name index for %" PRIu64 " entries overflows", name, n);
    ix->slots = arena_alloc(p, bytes, name, err);
    if (!ix->slots) return err ? (int)err->code : MC_ERR_NOMEM;
    memset(ix->slots, 0, (size_t)bytes);
    ix->cap = cap;
    return 0;
}

/* Find str in the index; names(i) gives entry i's string. Returns the slot
 * (for insertion when empty). */
typedef const mc_gguf_str *(*name_of_fn)(const void *tab, uint64_t i);
static const mc_gguf_str *kv_name(const void *tab, uint64_t i) { return &((const mc_gguf_kv *)tab)[i].key; }
static const mc_gguf_str *tensor_name(const void *tab, uint64_t i) { return &((const mc_gguf_tensor *)tab)[i].name; }

static uint64_t *index_slot(const name_index *ix, const void *tab, name_of_fn nf, const char *s, uint64_t n)
{
    if (!ix->slots) return NULL;
    uint64_t mask = ix->cap - 1;
    uint64_t h = hash_bytes(s, n) & mask;
    for (;;) {
        uint64_t *slot = &ix->slots[h];
        if (*slot == 0) return slot;
        const mc_gguf_str *o = nf(tab, *slot - 1);
        if (o->len == n && memcmp(o->s, s, (size_t)n) == 0) return slot;
        h = (h + 1) & mask;
    }
}

/* ---- byte source: a buffered file reader or memory ---- */

typedef struct gsrc {
    const char *name;
    uint64_t size;
    mc_reader *rd;            /* file mode */
    const unsigned char *mem; /* memory mode */
    uint64_t pos;             /* memory mode position */
} gsrc;

static uint64_t src_pos(const gsrc *s) { return s->rd ? s->rd->pos : s->pos; }
static uint64_t src_left(const gsrc *s)
{
    uint64_t p = src_pos(s);
    return p >= s->size ? 0 : s->size - p;
}

static int src_read(gsrc *s, void *dst, size_t n, mc_error *err)
{
    if (s->rd) return mc_reader_read(s->rd, dst, n, err);
    if ((uint64_t)n > src_left(s))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: truncated at offset %" PRIu64, s->name, s->pos);
    memcpy(dst, s->mem + s->pos, n);
    s->pos += n;
    return 0;
}

/* ---- the parser ---- */

typedef struct parser {
    gsrc src;
    mc_gguf *g;
    struct mc_gguf_priv *p;
    uint32_t version;
    char what[200]; /* the item being read, for messages */
    mc_error *err;
} parser;

static int need(parser *ps, uint64_t n)
{
    if (n <= src_left(&ps->src)) return 0;
    return mc_error_set(ps->err, MC_ERR_FORMAT,
                        "%s: truncated header: %s needs %" PRIu64 " bytes at offset %" PRIu64
                        " but only %" PRIu64 " remain (file is %" PRIu64 " bytes)",
                        ps->src.name, ps->what, n, src_pos(&ps->src), src_left(&ps->src), ps->src.size);
}

static int rd_bytes(parser *ps, void *dst, size_t n)
{
    int rc = need(ps, n);
    return rc ? rc : src_read(&ps->src, dst, n, ps->err);
}

static int rd_u32(parser *ps, uint32_t *v)
{
    unsigned char b[4];
    int rc = rd_bytes(ps, b, 4);
    if (!rc) *v = le32(b);
    return rc;
}

static int rd_u64(parser *ps, uint64_t *v)
{
    unsigned char b[8];
    int rc = rd_bytes(ps, b, 8);
    if (!rc) *v = le64(b);
    return rc;
}

/* Counts and lengths: 32-bit in GGUF v1, 64-bit from v2. */
static int rd_len(parser *ps, uint64_t *v)
{
    if (ps->version == 1) {
        uint32_t x = 0;
        int rc = rd_u32(ps, &x);
        *v = x;
        return rc;
    }
    return rd_u64(ps, v);
}
static unsigned len_width(const parser *ps) { return ps->version == 1 ? 4u : 8u; }

/* When a length is implausible, look just behind it for U+FFFD replacement
 * characters (EF BF BD): the mark of a binary file pushed through a text
 * decoder, which changes byte counts so later lengths no longer match. */
static const char *mangle_hint(parser *ps, char *buf, size_t cap)
{
    unsigned char w[512];
    uint64_t pos = src_pos(&ps->src), from = pos > sizeof w ? pos - sizeof w : 0;
    size_t n = (size_t)(pos - from);
    buf[0] = '\0';
    if (ps->src.rd) {
        mc_error tmp = { MC_OK, "" };
        if (mc_file_pread(ps->src.rd->f, from, w, n, &tmp)) return buf;
    } else {
        memcpy(w, ps->src.mem + from, n);
    }
    for (size_t k = 0; k + 3 <= n; k++)
        if (w[k] == 0xEF && w[k + 1] == 0xBF && w[k + 2] == 0xBD) {
            snprintf(buf, cap, "; bytes EF BF BD (U+FFFD replacement characters) at offset %" PRIu64
                     ": the file was mangled by a text-encoding round trip, so its lengths no longer match its bytes",
                     from + k);
            break;
        }
    return buf;
}

static int rd_str(parser *ps, mc_gguf_str *out)
{
    char hint[200];
    uint64_t len = 0;
    int rc = rd_len(ps, &len);
    if (rc) return rc;
    if (len > MC_GGUF_MAX_STRING)
        return mc_error_set(ps->err, MC_ERR_FORMAT,
                            "%s: %s: string length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes%s",
                            ps->src.name, ps->what, len, MC_GGUF_MAX_STRING, mangle_hint(ps, hint, sizeof hint));
    if (len > src_left(&ps->src))
        return mc_error_set(ps->err, MC_ERR_FORMAT,
                            "%s: %s: string length %" PRIu64 " at offset %" PRIu64
                            " exceeds the %" PRIu64 " bytes left in the file%s",
                            ps->src.name, ps->what, len, src_pos(&ps->src) - len_width(ps),
                            src_left(&ps->src), mangle_hint(ps, hint, sizeof hint));
    out->s = arena_alloc(ps->p, len + 1, ps->src.name, ps->err);
    if (!out->s) return ps->err ? (int)ps->err->code : MC_ERR_NOMEM;
    rc = src_read(&ps->src, out->s, (size_t)len, ps->err);
    if (rc) return rc;
    out->s[len] = '\0';
    out->len = len;
    return 0;
}

/* A short printable rendering of a name from the file for messages:
 * unprintable bytes as \xNN, cut with "..." when it does not fit (cap >= 16). */
static const char *show(const mc_gguf_str *s, char *buf, size_t cap)
{
    size_t j = 0;
    uint64_t i = 0;
    for (; i < s->len && j + 8 < cap; i++) {
        unsigned char c = (unsigned char)s->s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') buf[j++] = (char)c;
        else j += (size_t)snprintf(buf + j, cap - j, "\\x%02x", c);
    }
    if (i < s->len) memcpy(buf + j, "...", 4);
    else buf[j] = '\0';
    return buf;
}

static int check_vtype(parser *ps, uint32_t t, const char *role)
{
    char hint[200];
    if (t < MC_GGUF_VTYPE_COUNT) return 0;
    return mc_error_set(ps->err, MC_ERR_FORMAT,
                        "%s: %s has undefined %s type %" PRIu32 " (defined: 0 to %d)%s", ps->src.name,
                        ps->what, role, t, MC_GGUF_VTYPE_COUNT - 1, mangle_hint(ps, hint, sizeof hint));
}

static int parse_kv(parser *ps, uint64_t i, mc_gguf_kv *kv)
{
    char nb[96];
    uint32_t t = 0;
    int rc;
    snprintf(ps->what, sizeof ps->what, "key %" PRIu64 " name", i);
    if ((rc = rd_str(ps, &kv->key))) return rc;
    if (kv->key.len == 0)
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: key %" PRIu64 " has an empty name", ps->src.name, i);
    snprintf(ps->what, sizeof ps->what, "key %" PRIu64 " '%s'", i, show(&kv->key, nb, sizeof nb));
    uint64_t *slot = index_slot(&ps->p->kv_idx, ps->g->kv, kv_name, kv->key.s, kv->key.len);
    if (*slot)
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: duplicate key '%s' (keys %" PRIu64 " and %" PRIu64 ")",
                            ps->src.name, nb, *slot - 1, i);
    *slot = i + 1;
    if ((rc = rd_u32(ps, &t))) return rc;
    if ((rc = check_vtype(ps, t, "value"))) return rc;
    kv->type = (mc_gguf_vtype)t;
    if (t == MC_GGUF_STRING) return rd_str(ps, &kv->v.str);
    if (t != MC_GGUF_ARRAY) {
        unsigned char b[8];
        if ((rc = rd_bytes(ps, b, g_vtypes[t].size))) return rc;
        decode_scalar(kv->type, b, kv);
        return 0;
    }
    /* array */
    uint32_t et = 0;
    uint64_t n = 0;
    if ((rc = rd_u32(ps, &et))) return rc;
    if ((rc = check_vtype(ps, et, "array element"))) return rc;
    if (et == MC_GGUF_ARRAY)
        return mc_error_set(ps->err, MC_ERR_UNSUPPORTED, "%s: %s is an array of arrays (nested arrays are not supported)",
                            ps->src.name, ps->what);
    if ((rc = rd_len(ps, &n))) return rc;
    kv->arr_type = (mc_gguf_vtype)et;
    kv->arr_n = n;
    if (n > MC_GGUF_MAX_ARRAY)
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: %s: array of %" PRIu64 " elements exceeds the limit of %" PRIu64,
                            ps->src.name, ps->what, n, MC_GGUF_MAX_ARRAY);
    uint64_t esz = et == MC_GGUF_STRING ? len_width(ps) : g_vtypes[et].size, min_bytes;
    if (mc_mul_u64(n, esz, &min_bytes) || min_bytes > src_left(&ps->src))
        return mc_error_set(ps->err, MC_ERR_FORMAT,
                            "%s: %s: array of %" PRIu64 " %s elements needs at least %" PRIu64
                            " bytes but only %" PRIu64 " remain in the file",
                            ps->src.name, ps->what, n, g_vtypes[et].name, n * esz, src_left(&ps->src));
    if (et != MC_GGUF_STRING) {
        kv->arr = arena_alloc(ps->p, min_bytes ? min_bytes : 1, ps->src.name, ps->err);
        if (!kv->arr) return ps->err ? (int)ps->err->code : MC_ERR_NOMEM;
        return src_read(&ps->src, kv->arr, (size_t)min_bytes, ps->err);
    }
    uint64_t abytes;
    if (mc_mul_u64(n ? n : 1, sizeof(mc_gguf_str), &abytes))
        return mc_error_set(ps->err, MC_ERR_OVERFLOW, "%s: %s: array size overflows", ps->src.name, ps->what);
    mc_gguf_str *strs = arena_alloc(ps->p, abytes, ps->src.name, ps->err);
    if (!strs) return ps->err ? (int)ps->err->code : MC_ERR_NOMEM;
    kv->arr = strs;
    for (uint64_t j = 0; j < n; j++) {
        snprintf(ps->what, sizeof ps->what, "key %" PRIu64 " '%s' element %" PRIu64 " of %" PRIu64, i, nb, j, n);
        if ((rc = rd_str(ps, &strs[j]))) return rc;
    }
    return 0;
}

/* Removed GGML type ids and their old names. */
static const char *removed_type_name(int64_t t)
{
    static const struct { int id; const char *name; } removed[] = {
        { 4, "Q4_2" }, { 5, "Q4_3" }, { 31, "Q4_0_4_4" }, { 32, "Q4_0_4_8" }, { 33, "Q4_0_8_8" },
        { 36, "IQ4_NL_4_4" }, { 37, "IQ4_NL_4_8" }, { 38, "IQ4_NL_8_8" },
    };
    for (size_t k = 0; k < sizeof removed / sizeof removed[0]; k++)
        if (removed[k].id == t) return removed[k].name;
    return NULL;
}

static int parse_tensor_info(parser *ps, uint64_t i, mc_gguf_tensor *t)
{
    char nb[96];
    uint32_t nd = 0, type = 0;
    int rc;
    snprintf(ps->what, sizeof ps->what, "tensor %" PRIu64 " name", i);
    if ((rc = rd_str(ps, &t->name))) return rc;
    show(&t->name, nb, sizeof nb);
    if (t->name.len >= MC_GGUF_MAX_NAME)
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: tensor %" PRIu64 " name '%s' is %" PRIu64
                            " bytes long (the limit is %d)", ps->src.name, i, nb, t->name.len, MC_GGUF_MAX_NAME - 1);
    snprintf(ps->what, sizeof ps->what, "tensor %" PRIu64 " '%s'", i, nb);
    uint64_t *slot = index_slot(&ps->p->tensor_idx, ps->g->tensors, tensor_name, t->name.s, t->name.len);
    if (*slot)
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: duplicate tensor name '%s' (tensors %" PRIu64 " and %" PRIu64 ")",
                            ps->src.name, nb, *slot - 1, i);
    *slot = i + 1;
    if ((rc = rd_u32(ps, &nd))) return rc;
    if (nd < 1 || nd > MC_GGUF_MAX_DIMS)
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: tensor '%s' has %" PRIu32 " dimensions (must be 1 to %d)",
                            ps->src.name, nb, nd, MC_GGUF_MAX_DIMS);
    t->n_dims = nd;
    uint64_t nel = 1;
    for (uint32_t d = 0; d < MC_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v = 0;
        if ((rc = rd_len(ps, &v))) return rc; /* v1: 32-bit dims */
        if (v > (uint64_t)INT64_MAX)
            return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: tensor '%s' dimension %" PRIu32 " is negative (%" PRId64 ")",
                                ps->src.name, nb, d, (int64_t)v);
        t->ne[d] = v;
    }
    int ovf = 0;
    for (uint32_t d = 0; d < nd; d++)
        if (mc_mul_u64(nel, t->ne[d], &nel) || nel > (uint64_t)INT64_MAX) ovf = 1;
    if (ovf)
        return mc_error_set(ps->err, MC_ERR_OVERFLOW,
                            "%s: tensor '%s' shape [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                            "]: element count overflows 63 bits",
                            ps->src.name, nb, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    t->nelements = nel;
    if ((rc = rd_u32(ps, &type))) return rc;
    int32_t st = (int32_t)type;
    const mc_type_traits *tr = st >= 0 && st < MC_T_GGML_COUNT ? mc_type_get(st) : NULL;
    if (!tr || !tr->in_gguf) {
        const char *old = removed_type_name(st);
        if (old)
            return mc_error_set(ps->err, MC_ERR_UNSUPPORTED,
                                "%s: tensor '%s' has GGML type id %" PRId32 " (%s), which GGML removed; not supported",
                                ps->src.name, nb, st, old);
        return mc_error_set(ps->err, MC_ERR_FORMAT, "%s: tensor '%s' has unknown GGML type id %" PRId32
                            " (defined: 0 to %d)", ps->src.name, nb, st, MC_T_GGML_COUNT - 1);
    }
    t->type = st;
    if (t->ne[0] % tr->blck != 0)
        return mc_error_set(ps->err, MC_ERR_FORMAT,
                            "%s: tensor '%s' of type %s has %" PRIu64 " elements per row, not a multiple of its block size %" PRIu32,
                            ps->src.name, nb, tr->name, t->ne[0], tr->blck);
    if (mc_type_nbytes(st, nel, &t->nbytes))
        return mc_error_set(ps->err, MC_ERR_OVERFLOW, "%s: tensor '%s' of type %s with %" PRIu64 " elements: byte size overflows",
                            ps->src.name, nb, tr->name, nel);
    if ((rc = rd_u64(ps, &t->offset))) return rc;
    return 0;
}

static int parse_header(parser *ps)
{
    mc_gguf *g = ps->g;
    mc_error *err = ps->err;
    const char *name = ps->src.name;
    unsigned char magic[4];
    uint32_t ver = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    int rc;

    snprintf(ps->what, sizeof ps->what, "the magic");
    if (ps->src.size < 4)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: not a GGUF file: only %" PRIu64 " bytes (too short for the magic)",
                            name, ps->src.size);
    if ((rc = rd_bytes(ps, magic, 4))) return rc;
    if (memcmp(magic, "GGUF", 4) != 0) {
        if (memcmp(magic, "FUGG", 4) == 0)
            return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                "%s: magic 'FUGG': byte-swapped (big-endian) GGUF, not supported", name);
        char m[20];
        for (int k = 0; k < 4; k++) m[k] = magic[k] >= 0x20 && magic[k] < 0x7f ? (char)magic[k] : '?';
        m[4] = '\0';
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: not a GGUF file: magic is '%s' (%02x %02x %02x %02x), expected 'GGUF'", name, m,
                            magic[0], magic[1], magic[2], magic[3]);
    }
    snprintf(ps->what, sizeof ps->what, "the version");
    if ((rc = rd_u32(ps, &ver))) return rc;
    if (ver == 0) return mc_error_set(err, MC_ERR_FORMAT, "%s: GGUF version 0 is invalid", name);
    if ((ver & 0xFFFFu) == 0)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: GGUF version 0x%08" PRIx32 " looks byte-swapped (big-endian GGUF, version %" PRIu32 "), not supported",
                            name, ver, ver >> 24 | ((ver >> 8) & 0xFF00u));
    if (ver > 3)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: GGUF version %" PRIu32 " is not supported (1 to 3)", name, ver);
    ps->version = g->version = ver;

    snprintf(ps->what, sizeof ps->what, "the tensor count");
    if ((rc = rd_len(ps, &n_tensors))) return rc;
    snprintf(ps->what, sizeof ps->what, "the key count");
    if ((rc = rd_len(ps, &n_kv))) return rc;
    /* Smallest possible encodings: a tensor info is name length + n_dims +
     * one dim + type + offset; a kv is key length + 1 byte + type + 1-byte value. */
    uint64_t lw = len_width(ps), min_t = lw + 4 + lw + 4 + 8, min_kv = lw + 1 + 4 + 1, left = src_left(&ps->src);
    if (n_tensors > left / min_t)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: header declares %" PRIu64 " tensors but only %" PRIu64
                            " bytes follow (each tensor info needs at least %" PRIu64 ")", name, n_tensors, left, min_t);
    if (n_kv > left / min_kv)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: header declares %" PRIu64 " metadata keys but only %" PRIu64
                            " bytes follow (each key needs at least %" PRIu64 ")", name, n_kv, left, min_kv);
    if (n_tensors * min_t + n_kv * min_kv > left)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: header declares %" PRIu64 " tensors and %" PRIu64 " keys, more than the %" PRIu64
                            " bytes that follow can hold", name, n_tensors, n_kv, left);

    g->kv = arena_alloc(ps->p, (n_kv ? n_kv : 1) * sizeof(mc_gguf_kv), name, err);
    if (!g->kv) return err ? (int)err->code : MC_ERR_NOMEM;
    memset(g->kv, 0, (size_t)((n_kv ? n_kv : 1) * sizeof(mc_gguf_kv)));
    g->tensors = arena_alloc(ps->p, (n_tensors ? n_tensors : 1) * sizeof(mc_gguf_tensor), name, err);
    if (!g->tensors) return err ? (int)err->code : MC_ERR_NOMEM;
    memset(g->tensors, 0, (size_t)((n_tensors ? n_tensors : 1) * sizeof(mc_gguf_tensor)));
    if ((rc = index_init(ps->p, &ps->p->kv_idx, n_kv, name, err))) return rc;
    if ((rc = index_init(ps->p, &ps->p->tensor_idx, n_tensors, name, err))) return rc;

    uint64_t kv_begin = src_pos(&ps->src), kv_end;
    for (uint64_t i = 0; i < n_kv; i++) {
        if ((rc = parse_kv(ps, i, &g->kv[i]))) return rc;
        g->n_kv = i + 1;
    }
    kv_end = src_pos(&ps->src);

    g->alignment = MC_GGUF_DEFAULT_ALIGNMENT;
    const mc_gguf_kv *al = mc_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != MC_GGUF_UINT32)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: general.alignment must be a u32 but is a %s", name,
                                mc_gguf_vtype_name(al->type));
        if (al->v.u64 == 0 || (al->v.u64 & (al->v.u64 - 1)) != 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: general.alignment %" PRIu64 " is not a non-zero power of two",
                                name, al->v.u64);
        g->alignment = (uint32_t)al->v.u64;
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        if ((rc = parse_tensor_info(ps, i, &g->tensors[i]))) return rc;
        g->n_tensors = i + 1;
    }

    uint64_t end = src_pos(&ps->src), data_off = end;
    g->header_bytes = end;
    if (n_tensors > 0) {
        data_off = (end + g->alignment - 1) / g->alignment * g->alignment;
        if (data_off > ps->src.size)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: data section would start at offset %" PRIu64 " (header end %" PRIu64
                                " padded to %" PRIu32 "), past the end of the file (%" PRIu64 " bytes)",
                                name, data_off, end, g->alignment, ps->src.size);
    }
    /* Tensors are stored in order, each padded to the alignment (as ggml
     * requires); every byte range must lie inside the file. */
    uint64_t expect = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        mc_gguf_tensor *t = &g->tensors[i];
        char nb[96];
        show(&t->name, nb, sizeof nb);
        if (t->offset % g->alignment != 0)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: tensor '%s' data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                                name, nb, t->offset, g->alignment);
        if (t->offset != expect)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: tensor '%s' data offset %" PRIu64 ", expected %" PRIu64
                                " (tensor data must follow in order, each padded to %" PRIu32 " bytes)",
                                name, nb, t->offset, expect, g->alignment);
        uint64_t fo, fe, padded;
        if (mc_add_u64(data_off, t->offset, &fo) || mc_add_u64(fo, t->nbytes, &fe))
            return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s' data offset %" PRIu64 " + %" PRIu64 " bytes overflows",
                                name, nb, t->offset, t->nbytes);
        if (fe > ps->src.size)
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: tensor '%s' data [%" PRIu64 ", %" PRIu64 ") extends past end of file (%" PRIu64 " bytes)",
                                name, nb, fo, fe, ps->src.size);
        t->file_offset = fo;
        t->shard = 0;
        if (mc_add_u64(t->nbytes, g->alignment - 1, &padded) || mc_add_u64(expect, padded / g->alignment * g->alignment, &expect))
            return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': data section size overflows", name, nb);
    }

    g->shards[0].version = ver;
    g->shards[0].data_offset = data_off;
    g->shards[0].n_tensors = n_tensors;
    g->shards[0].n_kv = n_kv;
    g->shards[0].kv_begin = kv_begin;
    g->shards[0].kv_end = kv_end;
    return 0;
}

static int gguf_new(const char *path, mc_gguf **out, mc_error *err)
{
    mc_gguf *g = calloc(1, sizeof *g);
    if (g) g->priv = calloc(1, sizeof *g->priv);
    if (g) g->shards = calloc(1, sizeof *g->shards);
    if (g) {
        size_t n = strlen(path) + 1;
        g->path = malloc(n);
        if (g->path) memcpy(g->path, path, n);
    }
    if (!g || !g->priv || !g->shards || !g->path) {
        mc_gguf_close(g);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    }
    g->n_shards = 1;
    g->shards[0].file.fd = -1;
    *out = g;
    return 0;
}

int mc_gguf_parse_mem(const void *data, size_t size, const char *name, mc_gguf **out, mc_error *err)
{
    mc_gguf *g = NULL;
    parser ps;
    int rc;
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && size) return mc_error_set(err, MC_ERR_ARG, "%s: no data", name);
    if ((rc = gguf_new(name, &g, err))) return rc;
    memset(&ps, 0, sizeof ps);
    g->shards[0].file.size = size;
    g->shards[0].file.path = malloc(strlen(name) + 1);
    if (!g->shards[0].file.path) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    strcpy(g->shards[0].file.path, name);
    g->priv->mem_data = data;
    ps.src.name = name;
    ps.src.size = size;
    ps.src.mem = data;
    ps.g = g;
    ps.p = g->priv;
    ps.err = err;
    rc = parse_header(&ps);
    g->header_mem = g->priv->mem;
done:
    if (rc) mc_gguf_close(g);
    else *out = g;
    return rc;
}

int mc_gguf_open_single(const char *path, mc_gguf **out, mc_error *err)
{
    mc_gguf *g = NULL;
    mc_reader rd;
    parser ps;
    int rc, have_rd = 0;
    *out = NULL;
    if ((rc = gguf_new(path, &g, err))) return rc;
    if ((rc = mc_file_open(&g->shards[0].file, path, err))) goto done;
    if ((rc = mc_reader_init(&rd, &g->shards[0].file, 0, HDR_BUF_CAP, err))) goto done;
    have_rd = 1;
    memset(&ps, 0, sizeof ps);
    ps.src.name = path;
    ps.src.size = g->shards[0].file.size;
    ps.src.rd = &rd;
    ps.g = g;
    ps.p = g->priv;
    ps.err = err;
    rc = parse_header(&ps);
    g->header_mem = g->priv->mem;
done:
    if (have_rd) mc_reader_free(&rd);
    if (rc) mc_gguf_close(g);
    else *out = g;
    return rc;
}

/* ---- split sets ---- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

size_t mc_gguf_split_name(const char *path, uint32_t *no, uint32_t *count)
{
    /* NAME-NNNNN-of-MMMMM.gguf */
    static const size_t tail = 1 + 5 + 4 + 5 + 5; /* "-00001-of-00003.gguf" */
    size_t n = strlen(path);
    const char *b = base_name(path);
    if ((size_t)(path + n - b) <= tail) return 0;
    const char *t = path + n - tail;
    if (t[0] != '-' || memcmp(t + 6, "-of-", 4) != 0 || memcmp(t + 15, ".gguf", 5) != 0) return 0;
    uint32_t a = 0, c = 0;
    for (int k = 0; k < 5; k++) {
        if (t[1 + k] < '0' || t[1 + k] > '9' || t[10 + k] < '0' || t[10 + k] > '9') return 0;
        a = a * 10 + (uint32_t)(t[1 + k] - '0');
        c = c * 10 + (uint32_t)(t[10 + k] - '0');
    }
    if (no) *no = a;
    if (count) *count = c;
    return (size_t)(t - path);
}

char *mc_gguf_split_path(const char *prefix, size_t prefix_len, uint32_t no, uint32_t count)
{
    size_t cap = prefix_len + 64;
    char *p = malloc(cap);
    if (!p) return NULL;
    memcpy(p, prefix, prefix_len);
    snprintf(p + prefix_len, cap - prefix_len, "-%05" PRIu32 "-of-%05" PRIu32 ".gguf", no, count);
    return p;
}

/* Split key of a shard as an unsigned number; -1 when absent. */
static int split_key(const mc_gguf *g, const char *key, uint64_t *v, mc_error *err)
{
    int rc = mc_gguf_get_u64(g, key, v);
    if (rc == MC_ERR_NOTFOUND) return -1;
    if (rc)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s has type %s, expected an unsigned integer", g->path, key,
                            mc_gguf_vtype_name(mc_gguf_find_kv(g, key)->type));
    return 0;
}

static int open_split(mc_gguf *first, uint32_t count, const char *path, size_t plen, uint32_t this_no,
                      mc_gguf **out, mc_error *err)
{
    mc_gguf *g = NULL;
    char *sp = NULL;
    int rc = 0;
    uint64_t total = 0, declared = 0;
    int have_declared = 0;
    if ((rc = gguf_new(path, &g, err))) {
        mc_gguf_close(first);
        return rc;
    }
    free(g->shards);
    g->shards = calloc(count, sizeof *g->shards);
    g->priv->subs = calloc(count, sizeof *g->priv->subs);
    if (!g->shards || !g->priv->subs) {
        mc_gguf_close(first);
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    g->priv->n_subs = count;
    g->n_shards = count;
    for (uint32_t k = 0; k < count; k++) g->shards[k].file.fd = -1; /* until moved from the shard's reader */
    g->priv->subs[this_no - 1] = first;
    for (uint32_t k = 1; k <= count; k++) {
        mc_gguf *s = g->priv->subs[k - 1];
        sp = mc_gguf_split_path(path, plen, k, count);
        if (!sp) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        if (!s) {
            if (!mc_io_exists(sp)) {
                rc = mc_error_set(err, MC_ERR_NOTFOUND, "%s: split set of %" PRIu32 " shards: shard %" PRIu32 " (%s) is missing",
                                  path, count, k, sp);
                goto done;
            }
            if ((rc = mc_gguf_open_single(sp, &s, err))) goto done;
            g->priv->subs[k - 1] = s;
        }
        uint64_t sc = 0, sn = 0, stc = 0;
        int r1 = split_key(s, "split.count", &sc, err);
        int r2 = split_key(s, "split.no", &sn, err);
        int r3 = split_key(s, "split.tensors.count", &stc, err);
        if (r1 > 0 || r2 > 0 || r3 > 0) {
            rc = MC_ERR_FORMAT;
            goto done;
        }
        if (r1 < 0) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: shard %" PRIu32 " of a %" PRIu32 "-shard set has no split.count key",
                              sp, k, count);
            goto done;
        }
        if (sc != count) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: shard %" PRIu32 " of a %" PRIu32 "-shard set has split.count %" PRIu64
                              " (mismatched shard)", sp, k, count, sc);
            goto done;
        }
        if (r2 < 0 || sn != k - 1) {
            if (r2 < 0)
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s: shard %" PRIu32 " of %" PRIu32 " has no split.no key", sp, k, count);
            else
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s: shard %" PRIu32 " of %" PRIu32 " has split.no %" PRIu64
                                  ", expected %" PRIu32 " (mismatched shard)", sp, k, count, sn, k - 1);
            goto done;
        }
        if (r3 == 0) {
            if (have_declared && stc != declared) {
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s: split.tensors.count %" PRIu64 " differs from shard 1's %" PRIu64,
                                  sp, stc, declared);
                goto done;
            }
            declared = stc;
            have_declared = 1;
        } else if (k == 1) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: first shard of a split set has no split.tensors.count key", sp);
            goto done;
        }
        total += s->n_tensors;
        g->header_bytes += s->header_bytes;
        g->header_mem += s->header_mem;
        free(sp);
        sp = NULL;
    }
    if (total != declared) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: split set of %" PRIu32 " shards holds %" PRIu64
                          " tensors but split.tensors.count is %" PRIu64, path, count, total, declared);
        goto done;
    }
    /* One table over all shards. */
    uint64_t tbytes;
    if (mc_mul_u64(total ? total : 1, sizeof(mc_gguf_tensor), &tbytes) ||
        !(g->tensors = arena_alloc(g->priv, tbytes, path, err))) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for %" PRIu64 " tensors", path, total);
        goto done;
    }
    if ((rc = index_init(g->priv, &g->priv->tensor_idx, total, path, err))) goto done;
    for (uint32_t k = 0; k < count; k++) {
        mc_gguf *s = g->priv->subs[k];
        g->shards[k] = s->shards[0];
        s->shards[0].file.fd = -1;
        s->shards[0].file.path = NULL;
        for (uint64_t i = 0; i < s->n_tensors; i++) {
            mc_gguf_tensor *t = &g->tensors[g->n_tensors];
            *t = s->tensors[i];
            t->shard = k;
            uint64_t *slot = index_slot(&g->priv->tensor_idx, g->tensors, tensor_name, t->name.s, t->name.len);
            if (*slot) {
                char nb[96];
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s' appears in shard %" PRIu32 " (%s) and again in shard %" PRIu32 " (%s)",
                                  path, show(&t->name, nb, sizeof nb), g->tensors[*slot - 1].shard + 1,
                                  g->shards[g->tensors[*slot - 1].shard].file.path, k + 1, g->shards[k].file.path);
                goto done;
            }
            *slot = ++g->n_tensors;
        }
    }
    mc_gguf *s0 = g->priv->subs[0];
    g->version = s0->version;
    g->alignment = s0->alignment;
    g->kv = s0->kv;
    g->n_kv = s0->n_kv;
    g->priv->kv_idx = s0->priv->kv_idx;
    g->header_mem += g->priv->mem;
done:
    free(sp);
    if (rc) mc_gguf_close(g);
    else *out = g;
    return rc;
}

int mc_gguf_open(const char *path, mc_gguf **out, mc_error *err)
{
    mc_gguf *g = NULL;
    uint32_t no = 0, count = 0;
    uint64_t sc = 0, sn = 0;
    int rc;
    *out = NULL;
    if ((rc = mc_gguf_open_single(path, &g, err))) return rc;
    size_t plen = mc_gguf_split_name(path, &no, &count);
    int r = split_key(g, "split.count", &sc, err);
    if (r > 0) {
        mc_gguf_close(g);
        return MC_ERR_FORMAT;
    }
    if (r < 0 || sc <= 1) {
        if (plen && count > 1 && r < 0) {
            mc_gguf_close(g);
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: named as shard %" PRIu32 " of %" PRIu32 " but has no split.count key", path, no, count);
        }
        *out = g;
        return 0;
    }
    if (!plen) {
        mc_gguf_close(g);
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: has split.count %" PRIu64 " but its name is not NAME-NNNNN-of-%05" PRIu64
                            ".gguf, so the other shards cannot be found", path, sc, sc);
    }
    if (sc > MC_GGUF_MAX_SHARDS || sc != count) {
        mc_gguf_close(g);
        return mc_error_set(err, MC_ERR_FORMAT, "%s: split.count is %" PRIu64 " but the file name says %" PRIu32 " shards",
                            path, sc, count);
    }
    int rn = split_key(g, "split.no", &sn, err);
    if (rn > 0 || no < 1 || no > count || rn < 0 || sn != no - 1) {
        if (rn <= 0) {
            if (rn < 0)
                mc_error_set(err, MC_ERR_FORMAT, "%s: named as shard %" PRIu32 " of %" PRIu32 " but has no split.no key",
                             path, no, count);
            else
                mc_error_set(err, MC_ERR_FORMAT, "%s: named as shard %" PRIu32 " of %" PRIu32 " but its split.no is %" PRIu64
                             " (expected %" PRIu32 ", 0-based)", path, no, count, sn, no - 1);
        }
        mc_gguf_close(g);
        return MC_ERR_FORMAT;
    }
    return open_split(g, count, path, plen, no, out, err);
}

void mc_gguf_close(mc_gguf *g)
{
    if (!g) return;
    for (uint32_t k = 0; k < g->n_shards && g->shards; k++) mc_file_close(&g->shards[k].file);
    if (g->priv) {
        for (uint32_t k = 0; k < g->priv->n_subs; k++) mc_gguf_close(g->priv->subs[k]);
        free(g->priv->subs);
        arena_free(g->priv);
        free(g->priv);
    }
    free(g->shards);
    free(g->path);
    free(g);
}

/* ---- lookups ---- */

const mc_gguf_kv *mc_gguf_find_kv(const mc_gguf *g, const char *key)
{
    if (!g || !key) return NULL;
    uint64_t *slot = index_slot(&g->priv->kv_idx, g->kv, kv_name, key, strlen(key));
    if (!slot || !*slot || *slot > g->n_kv) return NULL;
    return &g->kv[*slot - 1];
}

const mc_gguf_tensor *mc_gguf_find_tensor(const mc_gguf *g, const char *name)
{
    if (!g || !name) return NULL;
    uint64_t *slot = index_slot(&g->priv->tensor_idx, g->tensors, tensor_name, name, strlen(name));
    if (!slot || !*slot || *slot > g->n_tensors) return NULL;
    return &g->tensors[*slot - 1];
}

int mc_gguf_get_u64(const mc_gguf *g, const char *key, uint64_t *out)
{
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, key);
    if (!kv) return MC_ERR_NOTFOUND;
    if (kv->type >= MC_GGUF_VTYPE_COUNT) return MC_ERR_FORMAT;
    switch (g_vtypes[kv->type].kind) {
    case K_UNSIGNED: *out = kv->v.u64; return 0;
    case K_SIGNED:
        if (kv->v.i64 < 0) return MC_ERR_FORMAT;
        *out = (uint64_t)kv->v.i64;
        return 0;
    default: return MC_ERR_FORMAT;
    }
}

int mc_gguf_get_i64(const mc_gguf *g, const char *key, int64_t *out)
{
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, key);
    if (!kv) return MC_ERR_NOTFOUND;
    if (kv->type >= MC_GGUF_VTYPE_COUNT) return MC_ERR_FORMAT;
    switch (g_vtypes[kv->type].kind) {
    case K_SIGNED: *out = kv->v.i64; return 0;
    case K_UNSIGNED:
        if (kv->v.u64 > (uint64_t)INT64_MAX) return MC_ERR_FORMAT;
        *out = (int64_t)kv->v.u64;
        return 0;
    default: return MC_ERR_FORMAT;
    }
}

int mc_gguf_get_f64(const mc_gguf *g, const char *key, double *out)
{
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, key);
    if (!kv) return MC_ERR_NOTFOUND;
    if (kv->type >= MC_GGUF_VTYPE_COUNT) return MC_ERR_FORMAT;
    switch (g_vtypes[kv->type].kind) {
    case K_FLOAT: *out = kv->v.f64; return 0;
    case K_SIGNED: *out = (double)kv->v.i64; return 0;
    case K_UNSIGNED: *out = (double)kv->v.u64; return 0;
    default: return MC_ERR_FORMAT;
    }
}

int mc_gguf_get_bool(const mc_gguf *g, const char *key, int *out)
{
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, key);
    if (!kv) return MC_ERR_NOTFOUND;
    if (kv->type != MC_GGUF_BOOL) return MC_ERR_FORMAT;
    *out = kv->v.u64 != 0;
    return 0;
}

const char *mc_gguf_get_str(const mc_gguf *g, const char *key)
{
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, key);
    return kv && kv->type == MC_GGUF_STRING ? kv->v.str.s : NULL;
}

const char *mc_gguf_arch(const mc_gguf *g) { return mc_gguf_get_str(g, "general.architecture"); }

static int arr_elem(const mc_gguf_kv *kv, uint64_t i, mc_gguf_kv *tmp)
{
    if (!kv || kv->type != MC_GGUF_ARRAY || i >= kv->arr_n || kv->arr_type >= MC_GGUF_VTYPE_COUNT) return MC_ERR_ARG;
    unsigned sz = g_vtypes[kv->arr_type].size;
    if (sz == 0) return MC_ERR_FORMAT; /* strings */
    decode_scalar(kv->arr_type, (const unsigned char *)kv->arr + i * sz, tmp);
    return 0;
}

int mc_gguf_arr_f64(const mc_gguf_kv *kv, uint64_t i, double *out)
{
    mc_gguf_kv tmp;
    int rc = arr_elem(kv, i, &tmp);
    if (rc) return rc;
    switch (g_vtypes[kv->arr_type].kind) {
    case K_FLOAT: *out = tmp.v.f64; return 0;
    case K_SIGNED: *out = (double)tmp.v.i64; return 0;
    default: *out = (double)tmp.v.u64; return 0;
    }
}

int mc_gguf_arr_i64(const mc_gguf_kv *kv, uint64_t i, int64_t *out)
{
    mc_gguf_kv tmp;
    int rc = arr_elem(kv, i, &tmp);
    if (rc) return rc;
    switch (g_vtypes[kv->arr_type].kind) {
    case K_SIGNED: *out = tmp.v.i64; return 0;
    case K_UNSIGNED: case K_BOOL:
        if (tmp.v.u64 > (uint64_t)INT64_MAX) return MC_ERR_FORMAT;
        *out = (int64_t)tmp.v.u64;
        return 0;
    default: return MC_ERR_FORMAT;
    }
}

/* ---- tensor data ---- */

int mc_gguf_read(const mc_gguf *g, const mc_gguf_tensor *t, uint64_t off, void *buf, size_t n, mc_error *err)
{
    uint64_t end;
    if (!g || !t || t->shard >= g->n_shards)
        return mc_error_set(err, MC_ERR_ARG, "mc_gguf_read: bad tensor");
    if (mc_add_u64(off, n, &end) || end > t->nbytes)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': read of %zu bytes at %" PRIu64 " is outside its %" PRIu64 " bytes",
                            g->path, t->name.s, n, off, t->nbytes);
    const mc_gguf_shard *sh = &g->shards[t->shard];
    if (g->priv->mem_data) {
        if (t->file_offset + end > sh->file.size)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor '%s' data past the end", g->path, t->name.s);
        memcpy(buf, g->priv->mem_data + t->file_offset + off, n);
        return 0;
    }
    return mc_file_pread(&sh->file, t->file_offset + off, buf, n, err);
}
