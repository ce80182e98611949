/* mc_st_write: streaming safetensors writer and sharded sets. */
#include "mc_st_write.h"
#include "mc_io.h"
#include "mc_safetensors.h"
#include "mc_types.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef unsigned long long ull;

#define ST_WBUF (4u << 20)

typedef struct st_decl {
    char *name;
    int type;
    uint32_t n_dims;
    uint64_t shape[MC_ST_MAX_DIMS];
    uint64_t nbytes;
} st_decl;

typedef struct st_pair {
    char *key;
    char *value;
} st_pair;

struct mc_st_writer {
    char *path;
    mc_outfile out;
    int begun, committed, failed;
    st_decl *t;
    uint64_t n_t, cap_t;
    st_pair *meta;
    uint64_t n_meta, cap_meta;
    uint64_t cur;        /* index of the tensor being written */
    uint64_t cur_done;   /* bytes of it written */
    uint64_t header_len; /* u64 prefix value */
    uint64_t data_size;
    unsigned char *buf;
    size_t buf_len;
};

static char *w_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static int w_grow(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap) return 0;
    uint64_t nc = *cap ? *cap * 2 : 16, bytes;
    if (nc < need) nc = need;
    if (mc_mul_u64(nc, elem, &bytes) || bytes > SIZE_MAX) return 1;
    void *q = realloc(*p, (size_t)bytes);
    if (!q) return 1;
    *p = q;
    *cap = nc;
    return 0;
}

/* Validate one declaration; fills d (name not copied). */
static int w_decl(const char *path, const char *name, int type, uint32_t n_dims, const uint64_t *shape,
                  st_decl *d, mc_error *err)
{
    const mc_type_traits *tr = mc_type_get(type);
    uint64_t ne = 1;
    if (!name || !mc_st_utf8_valid(name, strlen(name)))
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor name is missing or not UTF-8", path);
    if (strcmp(name, "__metadata__") == 0)
        return mc_error_set(err, MC_ERR_ARG, "%s: a tensor cannot be named __metadata__", path);
    if (!tr || !tr->st_name)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': type %s has no safetensors dtype", path, name,
                            mc_type_name(type));
    if (n_dims > MC_ST_MAX_DIMS || (n_dims && !shape))
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': %u dimensions, at most %d", path, name, n_dims,
                            MC_ST_MAX_DIMS);
    for (uint32_t i = 0; i < n_dims; i++) {
        if (shape[i] >= MC_ST_NUM_LIMIT || mc_mul_u64(ne, shape[i], &ne))
            return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': shape too large (dimension %u is %llu)",
                                path, name, i, (ull)shape[i]);
        d->shape[i] = shape[i];
    }
    if (ne % tr->blck)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s': %llu %s elements do not fill whole bytes", path,
                            name, (ull)ne, tr->st_name);
    if (mc_type_nbytes(type, ne, &d->nbytes) || d->nbytes >= MC_ST_NUM_LIMIT)
        return mc_error_set(err, MC_ERR_OVERFLOW, "%s: tensor '%s': byte size overflows", path, name);
    d->type = type;
    d->n_dims = n_dims;
    return 0;
}

int mc_st_writer_new(const char *path, int force, mc_st_writer **out, mc_error *err)
{
    *out = NULL;
    mc_st_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = w_strdup(path))) {
        free(w);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    }
    w->out.fd = -1;
    w->out.slot = -1;
    int rc = mc_outfile_create(&w->out, path, force, err);
    if (rc) {
        mc_st_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int mc_st_writer_meta(mc_st_writer *w, const char *key, const char *value, mc_error *err)
{
    if (w->begun) return mc_error_set(err, MC_ERR_ARG, "%s: metadata added after begin", w->path);
    if (!key || !value || !mc_st_utf8_valid(key, strlen(key)) || !mc_st_utf8_valid(value, strlen(value)))
        return mc_error_set(err, MC_ERR_ARG, "%s: metadata key or value missing or not UTF-8", w->path);
    for (uint64_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0)
            return mc_error_set(err, MC_ERR_ARG, "%s: metadata key '%s' given twice", w->path, key);
    if (w_grow((void **)&w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path);
    st_pair *p = &w->meta[w->n_meta];
    p->key = w_strdup(key);
    p->value = w_strdup(value);
    w->n_meta++;
    if (!p->key || !p->value) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path);
    return 0;
}

int mc_st_writer_add(mc_st_writer *w, const char *name, int type, uint32_t n_dims, const uint64_t *shape,
                     mc_error *err)
{
    st_decl d;
    memset(&d, 0, sizeof d);
    if (w->begun) return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' added after begin", w->path, name);
    int rc = w_decl(w->path, name, type, n_dims, shape, &d, err);
    if (rc) return rc;
    if (mc_add_u64(w->data_size, d.nbytes, &w->data_size) || w->data_size >= MC_ST_NUM_LIMIT)
        return mc_error_set(err, MC_ERR_OVERFLOW, "%s: total data size overflows at tensor '%s'", w->path, name);
    if (w_grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t) || !(d.name = w_strdup(name)))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path);
    w->t[w->n_t++] = d;
    return 0;
}

static int cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *w_num(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (ull)v); /* raw digits: cJSON would print 1e+15 */
    return cJSON_CreateRaw(b);
}

/* Build the header JSON text (unpadded). */
static char *w_header_json(const mc_st_writer *w)
{
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    char *text = NULL;
    int ok = root != NULL;
    if (ok && w->n_meta) {
        ok = (meta = cJSON_AddObjectToObject(root, "__metadata__")) != NULL;
        for (uint64_t i = 0; ok && i < w->n_meta; i++)
            ok = cJSON_AddStringToObject(meta, w->meta[i].key, w->meta[i].value) != NULL;
    }
    uint64_t off = 0;
    for (uint64_t i = 0; ok && i < w->n_t; i++) {
        const st_decl *d = &w->t[i];
        cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        ok = o && shape && offs && cJSON_AddStringToObject(o, "dtype", mc_type_get(d->type)->st_name);
        for (uint32_t k = 0; ok && k < d->n_dims; k++) ok = cJSON_AddItemToArray(shape, w_num(d->shape[k]));
        ok = ok && cJSON_AddItemToArray(offs, w_num(off)) && cJSON_AddItemToArray(offs, w_num(off + d->nbytes));
        if (ok) {
            cJSON_AddItemToObject(o, "shape", shape);
            cJSON_AddItemToObject(o, "data_offsets", offs);
            cJSON_AddItemToObject(root, d->name, o);
        } else {
            cJSON_Delete(o);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
        }
        off += d->nbytes;
    }
    if (ok) text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

int mc_st_writer_begin(mc_st_writer *w, mc_error *err)
{
    char *json = NULL;
    const char **names = NULL;
    unsigned char *hdr = NULL;
    int rc = 0;
    if (w->begun || w->failed) return mc_error_set(err, MC_ERR_ARG, "%s: begin called twice", w->path);
    if (w->n_t > 1) {
        names = malloc((size_t)w->n_t * sizeof *names);
        if (!names) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path);
        for (uint64_t i = 0; i < w->n_t; i++) names[i] = w->t[i].name;
        qsort(names, (size_t)w->n_t, sizeof *names, cmp_name_ptr);
        for (uint64_t i = 1; i < w->n_t; i++)
            if (strcmp(names[i - 1], names[i]) == 0) {
                rc = mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' declared twice", w->path, names[i]);
                goto done;
            }
    }
    json = w_header_json(w);
    if (!json) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building the header", w->path); goto done; }
    size_t jl = strlen(json), hl = (jl + 7) / 8 * 8;
    if (hl > MC_ST_HEADER_LIMIT) {
        rc = mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: header would be %zu bytes, over the %u-byte limit",
                          w->path, hl, MC_ST_HEADER_LIMIT);
        goto done;
    }
    hdr = malloc(8 + hl);
    w->buf = malloc(ST_WBUF);
    if (!hdr || !w->buf) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", w->path); goto done; }
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(hdr + 8, json, jl);
    memset(hdr + 8 + jl, ' ', hl - jl);
    if ((rc = mc_outfile_write(&w->out, hdr, 8 + hl, err))) { w->failed = 1; goto done; }
    w->header_len = hl;
    w->begun = 1;
done:
    free(names);
    free(hdr);
    cJSON_free(json);
    return rc;
}

static void w_skip_empty(mc_st_writer *w)
{
    while (w->cur < w->n_t && w->cur_done == w->t[w->cur].nbytes) {
        w->cur++;
        w->cur_done = 0;
    }
}

const char *mc_st_writer_current(mc_st_writer *w)
{
    if (!w->begun) return NULL;
    w_skip_empty(w);
    return w->cur < w->n_t ? w->t[w->cur].name : NULL;
}

static int w_flush(mc_st_writer *w, mc_error *err)
{
    if (w->buf_len == 0) return 0;
    int rc = mc_outfile_write(&w->out, w->buf, w->buf_len, err);
    if (rc) w->failed = 1;
    w->buf_len = 0;
    return rc;
}

int mc_st_writer_write(mc_st_writer *w, const void *data, size_t n, mc_error *err)
{
    const unsigned char *p = data;
    if (!w->begun || w->failed || w->committed)
        return mc_error_set(err, MC_ERR_ARG, "%s: write %s", w->path,
                            w->failed ? "after a failed write" : w->committed ? "after commit" : "before begin");
    if (n == 0) return 0;
    w_skip_empty(w);
    if (w->cur == w->n_t)
        return mc_error_set(err, MC_ERR_ARG, "%s: %zu bytes written after the last tensor", w->path, n);
    const st_decl *d = &w->t[w->cur];
    if (n > d->nbytes - w->cur_done)
        return mc_error_set(err, MC_ERR_ARG, "%s: write of %zu bytes runs past tensor '%s' (%llu of %llu bytes left)",
                            w->path, n, d->name, (ull)(d->nbytes - w->cur_done), (ull)d->nbytes);
    if (!p) return mc_error_set(err, MC_ERR_ARG, "%s: no data", w->path);
    w->cur_done += n;
    if (n >= ST_WBUF) {
        int rc = w_flush(w, err);
        if (!rc && (rc = mc_outfile_write(&w->out, p, n, err))) w->failed = 1;
        return rc;
    }
    while (n > 0) {
        size_t take = ST_WBUF - w->buf_len < n ? ST_WBUF - w->buf_len : n;
        memcpy(w->buf + w->buf_len, p, take);
        w->buf_len += take;
        p += take;
        n -= take;
        if (w->buf_len == ST_WBUF) {
            int rc = w_flush(w, err);
            if (rc) return rc;
        }
    }
    return 0;
}

int mc_st_writer_tensor(mc_st_writer *w, const char *name, const void *data, size_t n, mc_error *err)
{
    if (!w->begun) return mc_error_set(err, MC_ERR_ARG, "%s: write before begin", w->path);
    /* zero-size tensors are passed over by position; writing one is a no-op */
    if (n == 0 && !name) return 0;
    if (n == 0)
        for (uint64_t i = 0; i < w->n_t; i++)
            if (w->t[i].nbytes == 0 && strcmp(w->t[i].name, name) == 0) return 0;
    const char *cur = mc_st_writer_current(w);
    if (!cur)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' written after the last tensor", w->path,
                            name ? name : "?");
    if (name && strcmp(name, cur) != 0)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' written out of order (next is '%s')", w->path, name,
                            cur);
    const st_decl *d = &w->t[w->cur];
    if (w->cur_done != 0 || n != d->nbytes)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' is %llu bytes, given %zu%s", w->path, cur,
                            (ull)d->nbytes, n, w->cur_done ? " after a partial write" : "");
    return mc_st_writer_write(w, data, n, err);
}

int mc_st_writer_commit(mc_st_writer *w, mc_error *err)
{
    if (!w->begun || w->failed || w->committed)
        return mc_error_set(err, MC_ERR_ARG, "%s: commit %s", w->path,
                            w->failed ? "after a failed write" : w->committed ? "twice" : "before begin");
    const char *cur = mc_st_writer_current(w);
    if (cur)
        return mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' incomplete: %llu of %llu bytes written", w->path, cur,
                            (ull)w->cur_done, (ull)w->t[w->cur].nbytes);
    int rc = w_flush(w, err);
    if (!rc && w->out.size != 8 + w->header_len + w->data_size)
        rc = mc_error_set(err, MC_ERR_IO, "%s: wrote %llu bytes, expected %llu", w->path, (ull)w->out.size,
                          (ull)(8 + w->header_len + w->data_size));
    if (!rc) rc = mc_outfile_commit(&w->out, err);
    if (rc) w->failed = 1;
    else w->committed = 1;
    return rc;
}

void mc_st_writer_free(mc_st_writer *w)
{
    if (!w) return;
    if (!w->committed) mc_outfile_abort(&w->out);
    for (uint64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    for (uint64_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->meta);
    free(w->buf);
    free(w->path);
    free(w);
}

uint64_t mc_st_writer_header_len(const mc_st_writer *w) { return w->begun ? w->header_len : 0; }
uint64_t mc_st_writer_file_size(const mc_st_writer *w)
{
    return w->begun ? 8 + w->header_len + w->data_size : 0;
}

/* ---- sharded sets ---- */

struct mc_st_set {
    char *dir;
    uint64_t max_bytes;
    int force, begun, committed, failed;
    st_decl *t;
    uint64_t n_t, cap_t;
    st_pair *meta;
    uint64_t n_meta, cap_meta;
    uint64_t total_size, total_params;
    int have_params;
    uint32_t n_shards;
    uint64_t *shard_first;  /* first tensor of shard i; shard_first[n_shards] = n_t */
    uint32_t *shard_of;     /* shard of tensor i */
    char **shard_names;
    uint32_t cur_shard;     /* shard being written (or next to open) */
    mc_st_writer *w;        /* open writer of cur_shard, or NULL */
    char **done_paths;      /* shards renamed into place */
    int *done_slots;        /* their signal-cleanup registrations (-1: none) */
    uint32_t n_done;
};

int mc_st_set_new(const char *dir, uint64_t max_shard_bytes, int force, mc_st_set **out, mc_error *err)
{
    *out = NULL;
    mc_st_set *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = w_strdup(dir))) {
        free(s);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", dir);
    }
    s->max_bytes = max_shard_bytes ? max_shard_bytes : MC_ST_DEFAULT_SHARD_BYTES;
    s->force = force;
    *out = s;
    return 0;
}

int mc_st_set_meta(mc_st_set *s, const char *key, const char *value, mc_error *err)
{
    if (s->begun) return mc_error_set(err, MC_ERR_ARG, "%s: metadata added after begin", s->dir);
    if (!key || !value) return mc_error_set(err, MC_ERR_ARG, "%s: metadata key or value missing", s->dir);
    for (uint64_t i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta[i].key, key) == 0)
            return mc_error_set(err, MC_ERR_ARG, "%s: metadata key '%s' given twice", s->dir, key);
    if (w_grow((void **)&s->meta, &s->cap_meta, s->n_meta + 1, sizeof *s->meta))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    st_pair *p = &s->meta[s->n_meta];
    p->key = w_strdup(key);
    p->value = w_strdup(value);
    s->n_meta++;
    if (!p->key || !p->value) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    return 0;
}

void mc_st_set_total_parameters(mc_st_set *s, uint64_t n)
{
    s->total_params = n;
    s->have_params = 1;
}

int mc_st_set_add(mc_st_set *s, const char *name, int type, uint32_t n_dims, const uint64_t *shape,
                  mc_error *err)
{
    st_decl d;
    memset(&d, 0, sizeof d);
    if (s->begun) return mc_error_set(err, MC_ERR_ARG, "%s: tensor added after begin", s->dir);
    int rc = w_decl(s->dir, name, type, n_dims, shape, &d, err);
    if (rc) return rc;
    if (mc_add_u64(s->total_size, d.nbytes, &s->total_size))
        return mc_error_set(err, MC_ERR_OVERFLOW, "%s: total size overflows at tensor '%s'", s->dir, name);
    if (w_grow((void **)&s->t, &s->cap_t, s->n_t + 1, sizeof *s->t) || !(d.name = w_strdup(name)))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    s->t[s->n_t++] = d;
    return 0;
}

static int cmp_decl_ptr(const void *a, const void *b)
{
    return strcmp((*(const st_decl *const *)a)->name, (*(const st_decl *const *)b)->name);
}

int mc_st_set_begin(mc_st_set *s, mc_error *err)
{
    int rc = 0;
    char *p = NULL;
    if (s->begun) return mc_error_set(err, MC_ERR_ARG, "%s: begin called twice", s->dir);
    if (s->n_t == 0) return mc_error_set(err, MC_ERR_ARG, "%s: no tensors declared for the set", s->dir);
    size_t nt = (size_t)(s->n_t ? s->n_t : 1);
    s->shard_first = malloc((nt + 1) * sizeof *s->shard_first);
    s->shard_of = malloc(nt * sizeof *s->shard_of);
    if (!s->shard_first || !s->shard_of) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    /* mlx-lm make_shards, without empty shards */
    uint64_t size = 0;
    s->n_shards = 1;
    s->shard_first[0] = 0;
    for (uint64_t i = 0; i < s->n_t; i++) {
        if (i > s->shard_first[s->n_shards - 1] && size + s->t[i].nbytes > s->max_bytes) {
            if (s->n_shards == 99999)
                return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: more than 99999 shards; raise the shard size",
                                    s->dir);
            s->shard_first[s->n_shards++] = i;
            size = 0;
        }
        size += s->t[i].nbytes;
        s->shard_of[i] = s->n_shards - 1;
    }
    s->shard_first[s->n_shards] = s->n_t;
    s->shard_names = calloc(s->n_shards, sizeof *s->shard_names);
    s->done_paths = calloc(s->n_shards + 1, sizeof *s->done_paths);
    s->done_slots = calloc(s->n_shards + 1, sizeof *s->done_slots);
    if (!s->shard_names || !s->done_paths || !s->done_slots) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    for (uint32_t i = 0; i < s->n_shards; i++) {
        char b[64];
        if (s->n_shards == 1) snprintf(b, sizeof b, "model.safetensors");
        else snprintf(b, sizeof b, "model-%05u-of-%05u.safetensors", i + 1, s->n_shards);
        if (!(s->shard_names[i] = w_strdup(b))) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    }
    /* duplicate names (a set spans files, so the writer's own check is not enough) */
    if (s->n_t > 1) {
        const st_decl **v = malloc((size_t)s->n_t * sizeof *v);
        if (!v) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
        for (uint64_t i = 0; i < s->n_t; i++) v[i] = &s->t[i];
        qsort(v, (size_t)s->n_t, sizeof *v, cmp_decl_ptr);
        for (uint64_t i = 1; i < s->n_t && !rc; i++)
            if (strcmp(v[i - 1]->name, v[i]->name) == 0)
                rc = mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' declared twice", s->dir, v[i]->name);
        free(v);
        if (rc) return rc;
    }
    if (!mc_io_is_dir(s->dir) && mkdir(s->dir, 0755) != 0 && errno != EEXIST)
        return mc_error_set(err, MC_ERR_IO, "%s: cannot create the folder: %s", s->dir, strerror(errno));
    if (!s->force) {
        for (uint32_t i = 0; i <= s->n_shards && !rc; i++) {
            p = mc_path_join(s->dir, i < s->n_shards ? s->shard_names[i] : "model.safetensors.index.json");
            if (!p) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
            if (mc_io_exists(p))
                rc = mc_error_set(err, MC_ERR_EXISTS, "%s: already exists (use --force to overwrite)", p);
            free(p);
        }
        if (rc) return rc;
    }
    s->begun = 1;
    return 0;
}

uint32_t mc_st_set_n_shards(const mc_st_set *s) { return s->begun ? s->n_shards : 0; }

const char *mc_st_set_shard_name(const mc_st_set *s, uint32_t i)
{
    return s->begun && i < s->n_shards ? s->shard_names[i] : NULL;
}

/* Open the writer of cur_shard: header written. */
static int set_open_shard(mc_st_set *s, mc_error *err)
{
    uint32_t k = s->cur_shard;
    char *p = mc_path_join(s->dir, s->shard_names[k]);
    if (!p) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
    int rc = mc_st_writer_new(p, s->force, &s->w, err);
    free(p);
    for (uint64_t i = 0; !rc && i < s->n_meta; i++) rc = mc_st_writer_meta(s->w, s->meta[i].key, s->meta[i].value, err);
    for (uint64_t i = s->shard_first[k]; !rc && i < s->shard_first[k + 1]; i++)
        rc = mc_st_writer_add(s->w, s->t[i].name, s->t[i].type, s->t[i].n_dims, s->t[i].shape, err);
    if (!rc) rc = mc_st_writer_begin(s->w, err);
    return rc;
}

/* Commit the current shard if it is complete; open the next when asked. */
static int set_advance(mc_st_set *s, mc_error *err)
{
    while (s->cur_shard < s->n_shards) {
        if (!s->w) {
            int rc = set_open_shard(s, err);
            if (rc) return rc;
        }
        if (mc_st_writer_current(s->w)) return 0;
        char *p = mc_path_join(s->dir, s->shard_names[s->cur_shard]);
        if (!p) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", s->dir);
        int rc = mc_st_writer_commit(s->w, err);
        if (rc) { free(p); return rc; }
        /* until the set commits, a signal handler removes this shard too */
        s->done_slots[s->n_done] = mc_io_register_tmp(p);
        s->done_paths[s->n_done++] = p;
        mc_st_writer_free(s->w);
        s->w = NULL;
        s->cur_shard++;
    }
    return 0;
}

int mc_st_set_write(mc_st_set *s, const void *data, size_t n, mc_error *err)
{
    if (!s->begun || s->failed || s->committed)
        return mc_error_set(err, MC_ERR_ARG, "%s: write %s", s->dir,
                            s->failed ? "after a failure" : s->committed ? "after commit" : "before begin");
    if (n == 0) return 0;
    int rc = set_advance(s, err);
    if (!rc && !s->w) rc = mc_error_set(err, MC_ERR_ARG, "%s: %zu bytes written after the last tensor", s->dir, n);
    if (!rc) rc = mc_st_writer_write(s->w, data, n, err);
    if (!rc) rc = set_advance(s, err);
    if (rc && (!err || err->code != MC_ERR_ARG)) s->failed = 1;
    return rc;
}

int mc_st_set_tensor(mc_st_set *s, const char *name, const void *data, size_t n, mc_error *err)
{
    if (!s->begun || s->failed || s->committed)
        return mc_error_set(err, MC_ERR_ARG, "%s: write %s", s->dir,
                            s->failed ? "after a failure" : s->committed ? "after commit" : "before begin");
    int rc = set_advance(s, err);
    if (!rc && !s->w) {
        if (n == 0) return 0;
        rc = mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' written after the last tensor", s->dir, name ? name : "?");
    }
    if (!rc) rc = mc_st_writer_tensor(s->w, name, data, n, err);
    if (!rc) rc = set_advance(s, err);
    if (rc && (!err || err->code != MC_ERR_ARG)) s->failed = 1;
    return rc;
}

static int set_write_index(mc_st_set *s, mc_error *err)
{
    cJSON *root = cJSON_CreateObject(), *meta = NULL, *wm = NULL;
    const st_decl **v = malloc((size_t)(s->n_t ? s->n_t : 1) * sizeof *v);
    char *text = NULL, *p = mc_path_join(s->dir, "model.safetensors.index.json");
    mc_outfile o;
    int rc = 0, ok = root && v && p;
    memset(&o, 0, sizeof o);
    o.fd = -1;
    o.slot = -1;
    ok = ok && (meta = cJSON_AddObjectToObject(root, "metadata")) != NULL;
    ok = ok && cJSON_AddItemToObject(meta, "total_size", w_num(s->total_size));
    if (ok && s->have_params) ok = cJSON_AddItemToObject(meta, "total_parameters", w_num(s->total_params));
    ok = ok && (wm = cJSON_AddObjectToObject(root, "weight_map")) != NULL;
    if (ok) {
        for (uint64_t i = 0; i < s->n_t; i++) v[i] = &s->t[i];
        qsort(v, (size_t)s->n_t, sizeof *v, cmp_decl_ptr);
        for (uint64_t i = 0; ok && i < s->n_t; i++)
            ok = cJSON_AddStringToObject(wm, v[i]->name, s->shard_names[s->shard_of[v[i] - s->t]]) != NULL;
    }
    if (ok) ok = (text = cJSON_Print(root)) != NULL;
    if (!ok) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory writing the index", s->dir);
        goto done;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: written with its length */
    if (!(rc = mc_outfile_create(&o, p, s->force, err)) && !(rc = mc_outfile_write(&o, text, len + 1, err)))
        rc = mc_outfile_commit(&o, err);
    if (rc) mc_outfile_abort(&o);
done:
    cJSON_free(text);
    cJSON_Delete(root);
    free(v);
    free(p);
    return rc;
}

int mc_st_set_commit(mc_st_set *s, mc_error *err)
{
    if (!s->begun || s->failed || s->committed)
        return mc_error_set(err, MC_ERR_ARG, "%s: commit %s", s->dir,
                            s->failed ? "after a failure" : s->committed ? "twice" : "before begin");
    int rc = set_advance(s, err); /* commits complete shards, incl. trailing zero-size ones */
    if (!rc && s->cur_shard < s->n_shards) {
        const char *cur = s->w ? mc_st_writer_current(s->w) : NULL;
        rc = mc_error_set(err, MC_ERR_ARG, "%s: tensor '%s' (shard %s) is incomplete", s->dir, cur ? cur : "?",
                          s->shard_names[s->cur_shard]);
        return rc;
    }
    if (!rc) rc = set_write_index(s, err);
    if (rc) {
        s->failed = 1;
        return rc;
    }
    s->committed = 1;
    for (uint32_t i = 0; i < s->n_done; i++) {
        mc_io_unregister_tmp(s->done_slots[i]);
        s->done_slots[i] = -1;
    }
    return 0;
}

void mc_st_set_free(mc_st_set *s)
{
    if (!s) return;
    mc_st_writer_free(s->w);
    for (uint32_t i = 0; i < s->n_done; i++) {
        if (!s->committed) unlink(s->done_paths[i]);
        mc_io_unregister_tmp(s->done_slots[i]);
        free(s->done_paths[i]);
    }
    free(s->done_paths);
    free(s->done_slots);
    if (s->shard_names)
        for (uint32_t i = 0; i < s->n_shards; i++) free(s->shard_names[i]);
    free(s->shard_names);
    free(s->shard_first);
    free(s->shard_of);
    for (uint64_t i = 0; i < s->n_t; i++) free(s->t[i].name);
    free(s->t);
    for (uint64_t i = 0; i < s->n_meta; i++) {
        free(s->meta[i].key);
        free(s->meta[i].value);
    }
    free(s->meta);
    free(s->dir);
    free(s);
}
