/* The public .flash reader (include/mconv/flash.h) over the one .flash
 * parser (mc_flash.c): it adds the checks an engine relies on (every tensor
 * inside the buffer its read fills), the tensor and layer tables in public
 * form, direct I/O with a buffered fallback (mc_dio.c), parallel expert
 * reads (mc_pool.c), checksums on read, and the config/tokenizer files. */
#include "mconv/flash.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "mc_dio.h"
#include "mc_flash.h"
#include "mc_flash_reader_int.h"
#include "mc_io.h"
#include "mc_pool.h"
#include "mc_types.h"

#define PAGE ((uint64_t)MC_FLASH_READER_PAGE)

/* a stacked expert shape is the per-expert shape and one more dimension */
_Static_assert(MC_FLASH_MAX_DIMS + 1 <= MC_FLASH_READER_MAX_DIMS, "public tensor shape too small");
_Static_assert(MC_FLASH_READER_PAGE == MC_FLASH_PAGE, "public page size");

typedef struct rfile {
    char *name;
    char *text;
    size_t len;
} rfile;

struct mc_flash_reader {
    mc_flash *f;
    const char *path;        /* f->file.path */
    int io_asked;            /* mc_flash_io */
    int verify;
    int fd_direct;           /* -1 when reads are buffered from the start */
    _Atomic int direct;      /* reads go to fd_direct */
    const char *how;         /* "O_DIRECT" / "F_NOCACHE" */
    char note[MC_ERROR_MSG_MAX + 32]; /* why buffered; written before `direct` drops to 0 */
    pthread_mutex_t mu;      /* the fallback switch */
    mc_pool *pool;
    mc_flash_reader_info info;
    mc_flash_reader_tensor *tensors;
    size_t n_tensors;
    char **owned;            /* stacked expert names */
    size_t n_owned;
    mc_flash_reader_layer *layers;
    size_t n_layers;
    rfile *files;
    size_t n_files;
};

int mc_flash_reader_version(void) { return MC_FLASH_READER_VERSION; }

const char *mc_flash_reader_version_string(void)
{
#define MC_STR2(x) #x
#define MC_STR(x) MC_STR2(x)
    return MC_STR(MC_FLASH_READER_VERSION_MAJOR) "." MC_STR(MC_FLASH_READER_VERSION_MINOR) "." MC_STR(
        MC_FLASH_READER_VERSION_PATCH);
#undef MC_STR
#undef MC_STR2
}

void mc_flash_reader_opts_init(mc_flash_reader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->io = MC_FLASH_IO_DIRECT;
}

uint64_t mc_flash_reader_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- open: tables ---- */

static const char *dtype_str(int t)
{
    const mc_type_traits *tr = mc_type_get(t);
    return tr ? (tr->st_name ? tr->st_name : tr->name) : "?";
}

/* nbytes must be what dtype and shape say. */
static int check_size(const char *path, const char *name, int dtype, const uint64_t *shape, uint32_t n_dims,
                      uint64_t nbytes, mc_error *err)
{
    uint64_t ne = 1, want = 0;
    for (uint32_t d = 0; d < n_dims; d++)
        if (mc_mul_u64(ne, shape[d], &ne))
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s: shape overflows", path, name);
    if (mc_type_nbytes(dtype, ne, &want) || want != nbytes)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: tensor %s: %llu bytes, but dtype %s and its %llu elements make %llu", path, name,
                            (unsigned long long)nbytes, dtype_str(dtype), (unsigned long long)ne,
                            (unsigned long long)want);
    return 0;
}

static int inside(uint64_t off, uint64_t n, uint64_t lo, uint64_t hi)
{
    uint64_t end;
    return off >= lo && !mc_add_u64(off, n, &end) && end <= hi;
}

/* The prefix of layer L's mlx-lm names ("model.layers.3.",
 * "language_model.model.layers.3."): the expert table stores names relative
 * to the layer (as the writer strips them at "layers.N."). Taken from a
 * tensor of that layer in the table, else from any layer's tensor, else
 * "model.layers.L.". */
static int layer_prefix(const mc_flash *f, int layer, char *out, size_t cap)
{
    char want[32];
    snprintf(want, sizeof want, "layers.%d.", layer);
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *n = f->tensors[i].name, *q = strstr(n, want);
        if (q && (q == n || q[-1] == '.')) {
            snprintf(out, cap, "%.*s", (int)(q - n + (ptrdiff_t)strlen(want)), n);
            return 0;
        }
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *n = f->tensors[i].name, *q = strstr(n, "layers.");
        if (q && (q == n || q[-1] == '.') && q[7] >= '0' && q[7] <= '9') {
            const char *d = q + 7;
            while (*d >= '0' && *d <= '9') d++;
            if (*d == '.') {
                snprintf(out, cap, "%.*s%s", (int)(q - n), n, want);
                return 0;
            }
        }
    }
    snprintf(out, cap, "model.%s", want);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_offset(const void *a, const void *b)
{
    const mc_flash_reader_layer *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int oom(const char *path, mc_error *err) { return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path); }

/* One pinned or FFN tensor of the table: base is where its read buffer
 * starts in the file (the pinned region or the layer's span). */
static void put_tensor(mc_flash_reader_tensor *o, const mc_flash_tensor *t, int kind, int layer, uint64_t base)
{
    o->name = t->name;
    o->dtype = dtype_str(t->dtype);
    o->kind = kind;
    o->layer = layer;
    o->n_dims = t->n_dims;
    memcpy(o->shape, t->shape, t->n_dims * sizeof *t->shape);
    o->nbytes = t->nbytes;
    o->offset = t->offset;
    o->buffer_offset = t->offset - base;
    o->has_xxh3 = 1;
    o->xxh3 = t->xxh3;
}

static int build_tables(mc_flash_reader *r, mc_error *err)
{
    const mc_flash *f = r->f;
    const char *path = r->path;
    uint64_t fsz = f->file.size, pin_end;
    if (fsz % PAGE)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: file size %llu is not a multiple of 16384", path,
                            (unsigned long long)fsz);
    if (f->pinned_offset % PAGE || f->pinned_nbytes % PAGE || !inside(f->pinned_offset, f->pinned_nbytes, 0, fsz))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: pinned region at %llu, %llu bytes: not 16 KiB-aligned or outside the file", path,
                            (unsigned long long)f->pinned_offset, (unsigned long long)f->pinned_nbytes);
    pin_end = f->pinned_offset + f->pinned_nbytes;

    /* table size: pinned + ffn tensors, then every MoE layer's tensors */
    size_t n = f->n_tensors;
    for (size_t i = 0; i < f->n_experts; i++) {
        if (f->experts[i].n_tensors > ((size_t)1 << 20) || n > ((size_t)1 << 24))
            return mc_error_set(err, MC_ERR_FORMAT, "%s: implausibly many expert tensors (layer %d)", path,
                                f->experts[i].layer);
        n += f->experts[i].n_tensors;
    }
    r->tensors = calloc(n ? n : 1, sizeof *r->tensors);
    r->owned = calloc(n ? n : 1, sizeof *r->owned); /* stacked expert names */
    r->layers = calloc(f->n_ffn + f->n_experts + 1, sizeof *r->layers);
    if (!r->tensors || !r->owned || !r->layers) return oom(path, err);

    /* spans */
    for (size_t i = 0; i < f->n_ffn; i++) {
        const mc_flash_ffn *s = &f->ffn[i];
        if (s->offset % PAGE || s->nbytes % PAGE || s->nbytes == 0 || !inside(s->offset, s->nbytes, 0, fsz))
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: ffn span of layer %d at %llu, %llu bytes: not 16 KiB-aligned or outside the file",
                                path, s->layer, (unsigned long long)s->offset, (unsigned long long)s->nbytes);
        for (size_t j = 0; j < i; j++)
            if (f->ffn[j].layer == s->layer)
                return mc_error_set(err, MC_ERR_FORMAT, "%s: two ffn spans for layer %d", path, s->layer);
    }
    /* pinned tensors, in file order */
    size_t k = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const mc_flash_tensor *t = &f->tensors[i];
        if (t->role != MC_FLASH_PINNED) continue;
        if (t->offset % PAGE || !inside(t->offset, t->nbytes, f->pinned_offset, pin_end))
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: pinned tensor %s at %llu, %llu bytes: not 16 KiB-aligned or outside the pinned "
                                "region (%llu..%llu)",
                                path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                                (unsigned long long)f->pinned_offset, (unsigned long long)pin_end);
        int rc = check_size(path, t->name, t->dtype, t->shape, t->n_dims, t->nbytes, err);
        if (rc) return rc;
        put_tensor(&r->tensors[k++], t, MC_FLASH_READER_PINNED, -1, f->pinned_offset);
    }
    /* each span's tensors, span by span */
    size_t nl = 0;
    for (size_t i = 0; i < f->n_ffn; i++) {
        const mc_flash_ffn *s = &f->ffn[i];
        mc_flash_reader_layer *L = &r->layers[nl++];
        L->layer = s->layer;
        L->kind = MC_FLASH_READER_FFN;
        L->offset = s->offset;
        L->nbytes = s->nbytes;
        L->first_tensor = k;
        for (size_t j = 0; j < f->n_tensors; j++) {
            const mc_flash_tensor *t = &f->tensors[j];
            if (t->role != MC_FLASH_FFN || t->layer != s->layer) continue;
            if (t->offset % PAGE || !inside(t->offset, t->nbytes, s->offset, s->offset + s->nbytes))
                return mc_error_set(err, MC_ERR_FORMAT,
                                    "%s: ffn tensor %s at %llu, %llu bytes: not 16 KiB-aligned or outside the span "
                                    "of layer %d (%llu..%llu)",
                                    path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                                    s->layer, (unsigned long long)s->offset,
                                    (unsigned long long)(s->offset + s->nbytes));
            int rc = check_size(path, t->name, t->dtype, t->shape, t->n_dims, t->nbytes, err);
            if (rc) return rc;
            put_tensor(&r->tensors[k++], t, MC_FLASH_READER_FFN, t->layer, s->offset);
        }
        L->n_tensors = k - L->first_tensor;
    }
    for (size_t j = 0; j < f->n_tensors; j++)
        if (f->tensors[j].role == MC_FLASH_FFN && !mc_flash_find_ffn(f, f->tensors[j].layer))
            return mc_error_set(err, MC_ERR_FORMAT, "%s: ffn tensor %s: no ffn span for layer %d", path,
                                f->tensors[j].name, f->tensors[j].layer);
    /* MoE layers */
    for (size_t i = 0; i < f->n_experts; i++) {
        const mc_flash_experts *x = &f->experts[i];
        uint64_t span;
        char prefix[256];
        if (x->offset % PAGE || x->stride % PAGE || x->stride == 0 || mc_mul_u64(x->stride, x->n_experts, &span) ||
            !inside(x->offset, span, 0, fsz))
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: experts of layer %d at %llu, %u x %llu bytes: not 16 KiB-aligned or outside the "
                                "file (%llu bytes)",
                                path, x->layer, (unsigned long long)x->offset, x->n_experts,
                                (unsigned long long)x->stride, (unsigned long long)fsz);
        for (size_t j = 0; j < i; j++)
            if (f->experts[j].layer == x->layer)
                return mc_error_set(err, MC_ERR_FORMAT, "%s: two expert tables for layer %d", path, x->layer);
        layer_prefix(f, x->layer, prefix, sizeof prefix);
        mc_flash_reader_layer *L = &r->layers[nl++];
        L->layer = x->layer;
        L->kind = MC_FLASH_READER_EXPERT;
        L->offset = x->offset;
        L->nbytes = x->stride;
        L->n_experts = x->n_experts;
        L->block_xxh3 = x->xxh3;
        L->first_tensor = k;
        L->n_tensors = x->n_tensors;
        for (size_t j = 0; j < x->n_tensors; j++) {
            const mc_flash_etensor *t = &x->tensors[j];
            if (t->inner_offset % PAGE || !inside(t->inner_offset, t->nbytes, 0, x->stride))
                return mc_error_set(err, MC_ERR_FORMAT,
                                    "%s: experts of layer %d: tensor %s at +%llu, %llu bytes: not 16 KiB-aligned or "
                                    "past the block (%llu bytes)",
                                    path, x->layer, t->name, (unsigned long long)t->inner_offset,
                                    (unsigned long long)t->nbytes, (unsigned long long)x->stride);
            int rc = check_size(path, t->name, t->dtype, t->shape, t->n_dims, t->nbytes, err);
            if (rc) return rc;
            size_t len = strlen(prefix) + strlen(t->name) + 1;
            char *nm = malloc(len);
            if (!nm) return oom(path, err);
            snprintf(nm, len, "%s%s", prefix, t->name);
            r->owned[r->n_owned++] = nm;
            mc_flash_reader_tensor *o = &r->tensors[k++];
            o->name = nm;
            o->dtype = dtype_str(t->dtype);
            o->kind = MC_FLASH_READER_EXPERT;
            o->layer = x->layer;
            o->n_dims = t->n_dims + 1;
            o->shape[0] = x->n_experts;
            memcpy(o->shape + 1, t->shape, t->n_dims * sizeof *t->shape);
            o->nbytes = t->nbytes;
            o->offset = x->offset + t->inner_offset;
            o->buffer_offset = t->inner_offset;
        }
    }
    r->n_tensors = k;
    r->n_layers = nl;
    qsort(r->layers, nl, sizeof *r->layers, by_offset);

    /* names are unique */
    const char **names = malloc((k ? k : 1) * sizeof *names);
    if (!names) return oom(path, err);
    for (size_t i = 0; i < k; i++) names[i] = r->tensors[i].name;
    qsort(names, k, sizeof *names, by_name);
    for (size_t i = 1; i < k; i++)
        if (!strcmp(names[i - 1], names[i])) {
            int rc = mc_error_set(err, MC_ERR_FORMAT, "%s: tensor %s is listed twice", path, names[i]);
            free(names);
            return rc;
        }
    free(names);

    mc_flash_cost c;
    mc_flash_token_cost(f, &c);
    mc_flash_reader_info *in = &r->info;
    in->path = path;
    in->file_size = fsz;
    in->pinned_offset = f->pinned_offset;
    in->pinned_nbytes = f->pinned_nbytes;
    in->experts_per_tok = f->experts_per_tok;
    in->n_tensors = k;
    in->n_layers = nl;
    in->n_ffn_layers = f->n_ffn;
    in->n_moe_layers = f->n_experts;
    for (size_t i = 0; i < nl; i++) {
        uint64_t *m = r->layers[i].kind == MC_FLASH_READER_FFN ? &in->max_ffn_nbytes : &in->max_expert_stride;
        if (r->layers[i].nbytes > *m) *m = r->layers[i].nbytes;
    }
    in->token_bytes = c.token_bytes;
    in->token_reads = c.token_reads;
    return 0;
}

/* ---- open: config and tokenizer files ---- */

/* A plain file name: [A-Za-z0-9._-], not starting with '.', at most 255. */
static int plain_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && !strcmp(s + a - b, sfx);
}

/* JSON printed as `mconv --layout mlx` writes its files (cJSON_Print and a
 * newline), text as it is. */
static int add_file(mc_flash_reader *r, const char *name, const cJSON *v, mc_error *err)
{
    rfile *fl = &r->files[r->n_files];
    char *s = NULL;
    if (cJSON_IsString(v) && !ends_with(name, ".json")) {
        size_t n = strlen(v->valuestring);
        if ((s = malloc(n + 1))) memcpy(s, v->valuestring, n + 1);
        fl->len = n;
    } else {
        char *p = cJSON_Print(v);
        size_t n = p ? strlen(p) : 0;
        if (p && (s = malloc(n + 2))) {
            memcpy(s, p, n);
            s[n] = '\n';
            s[n + 1] = 0;
            fl->len = n + 1;
        }
        cJSON_free(p);
    }
    size_t nl = strlen(name) + 1;
    fl->name = malloc(nl);
    if (!s || !fl->name) {
        free(s);
        free(fl->name);
        fl->name = NULL;
        return oom(r->path, err);
    }
    memcpy(fl->name, name, nl);
    fl->text = s;
    r->n_files++;
    return 0;
}

static int build_files(mc_flash_reader *r, mc_error *err)
{
    const cJSON *m = mc_flash_manifest(r->f);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m, "tokenizer");
    const cJSON *emb = cJSON_GetObjectItemCaseSensitive(tok, "embedded"), *e;
    if (!cJSON_IsObject(cfg)) return mc_error_set(err, MC_ERR_FORMAT, "%s: manifest: \"config\" is not an object", r->path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
    r->info.model_type = cJSON_IsString(mt) ? mt->valuestring : "";
    size_t n = 1 + (cJSON_IsObject(emb) ? (size_t)cJSON_GetArraySize(emb) : 0);
    if (!(r->files = calloc(n, sizeof *r->files))) return oom(r->path, err);
    int rc = add_file(r, "config.json", cfg, err);
    if (rc || !cJSON_IsObject(emb)) return rc;
    cJSON_ArrayForEach(e, emb) {
        if (!e->string || !plain_name(e->string) || !strcmp(e->string, "config.json"))
            return mc_error_set(err, MC_ERR_FORMAT,
                                "%s: manifest: tokenizer file name \"%.64s\" is not a plain file name (or is "
                                "config.json)",
                                r->path, e->string ? e->string : "");
        for (size_t i = 0; i < r->n_files; i++)
            if (!strcmp(r->files[i].name, e->string))
                return mc_error_set(err, MC_ERR_FORMAT, "%s: manifest: tokenizer file %s is listed twice", r->path,
                                    e->string);
        if ((rc = add_file(r, e->string, e, err))) return rc;
    }
    return 0;
}

/* ---- open / close ---- */

static int open_io(mc_flash_reader *r, mc_error *err)
{
    struct stat a, b;
    mc_error e = { MC_OK, "" };
    r->fd_direct = -1;
    if (r->io_asked == MC_FLASH_IO_BUFFERED) {
        snprintf(r->note, sizeof r->note, "buffered (asked for)");
        mc_dio_advise_random(r->f->file.fd);
        return 0;
    }
    int rc = mc_dio_open(r->path, &r->fd_direct, &r->how, &e);
    if (rc == MC_ERR_UNSUPPORTED && r->io_asked != MC_FLASH_IO_DIRECT_ONLY) {
        snprintf(r->note, sizeof r->note, "buffered: %s", e.msg);
        mc_dio_advise_random(r->f->file.fd);
        return 0;
    }
    if (rc) {
        if (err) *err = e;
        return rc;
    }
    /* the same file as the one parsed (not replaced in between) */
    if (fstat(r->fd_direct, &a) || fstat(r->f->file.fd, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return mc_error_set(err, MC_ERR_IO, "%s: the file changed while it was being opened", r->path);
    atomic_store(&r->direct, 1);
    return 0;
}

int mc_flash_reader_open(const char *path, const mc_flash_reader_opts *opts, mc_flash_reader **out, mc_error *err)
{
    mc_flash_reader_opts dflt;
    if (!opts) {
        mc_flash_reader_opts_init(&dflt);
        opts = &dflt;
    }
    if (out) *out = NULL;
    if (!path || !out) return mc_error_set(err, MC_ERR_ARG, "mc_flash_reader_open: path and out are required");
    if (opts->io < MC_FLASH_IO_DIRECT || opts->io > MC_FLASH_IO_DIRECT_ONLY || opts->threads < 0 ||
        opts->threads > 256)
        return mc_error_set(err, MC_ERR_ARG, "%s: bad reader options (io %d, threads %d)", path, opts->io,
                            opts->threads);
    mc_flash_reader *r = calloc(1, sizeof *r);
    if (!r) return oom(path, err);
    r->fd_direct = -1;
    pthread_mutex_init(&r->mu, NULL);
    r->io_asked = opts->io;
    r->verify = opts->verify != 0;
    int rc = mc_flash_open(path, &r->f, err);
    if (!rc) {
        r->path = r->f->file.path;
        rc = build_tables(r, err);
    }
    if (!rc) rc = build_files(r, err);
    if (!rc) rc = open_io(r, err);
    if (!rc) {
        int th = opts->threads;
        if (th == 0) th = r->f->experts_per_tok < 1 ? 1 : r->f->experts_per_tok > 64 ? 64 : r->f->experts_per_tok;
        rc = mc_pool_create(th, &r->pool, err);
    }
    if (rc) {
        mc_flash_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void mc_flash_reader_close(mc_flash_reader *r)
{
    if (!r) return;
    mc_pool_destroy(r->pool);
    if (r->fd_direct >= 0) close(r->fd_direct);
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].name);
        free(r->files[i].text);
    }
    free(r->files);
    free(r->owned);
    free(r->tensors);
    free(r->layers);
    mc_flash_close(r->f);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int mc_flash_reader_io_mode(const mc_flash_reader *r)
{
    return atomic_load(&((mc_flash_reader *)r)->direct) ? MC_FLASH_IO_DIRECT : MC_FLASH_IO_BUFFERED;
}

const char *mc_flash_reader_io_note(const mc_flash_reader *r)
{
    return atomic_load(&((mc_flash_reader *)r)->direct) ? r->how : r->note;
}

const mc_flash_reader_info *mc_flash_reader_get_info(const mc_flash_reader *r) { return &r->info; }
const struct mc_flash *mc_flash_reader_flash(const mc_flash_reader *r) { return r->f; }

const mc_flash_reader_tensor *mc_flash_reader_tensor_at(const mc_flash_reader *r, size_t i)
{
    return i < r->n_tensors ? &r->tensors[i] : NULL;
}

const mc_flash_reader_tensor *mc_flash_reader_find(const mc_flash_reader *r, const char *name)
{
    for (size_t i = 0; name && i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i].name, name)) return &r->tensors[i];
    return NULL;
}

const mc_flash_reader_layer *mc_flash_reader_layer_at(const mc_flash_reader *r, size_t i)
{
    return i < r->n_layers ? &r->layers[i] : NULL;
}

const mc_flash_reader_layer *mc_flash_reader_find_layer(const mc_flash_reader *r, int layer, int kind)
{
    for (size_t i = 0; i < r->n_layers; i++)
        if (r->layers[i].layer == layer && r->layers[i].kind == kind) return &r->layers[i];
    return NULL;
}

/* ---- reads ---- */

static int check_buf(const mc_flash_reader *r, const void *dst, const char *what, mc_error *err)
{
    if (!dst) return mc_error_set(err, MC_ERR_ARG, "%s: %s: no destination buffer", r->path, what);
    if ((uintptr_t)dst % MC_FLASH_READER_ALIGN)
        return mc_error_set(err, MC_ERR_ARG,
                            "%s: %s: buffer %p is not %u-byte aligned (needed for direct I/O; use "
                            "mc_flash_reader_alloc)",
                            r->path, what, dst, MC_FLASH_READER_ALIGN);
    return 0;
}

/* Direct reads fall back to buffered ones for good when the file system
 * refuses them (unless DIRECT_ONLY). */
static void fall_back(mc_flash_reader *r, const char *why)
{
    pthread_mutex_lock(&r->mu);
    if (atomic_load(&r->direct)) {
        snprintf(r->note, sizeof r->note, "buffered: %s", why);
        mc_dio_advise_random(r->f->file.fd);
        atomic_store(&r->direct, 0);
    }
    pthread_mutex_unlock(&r->mu);
}

static int read_at(mc_flash_reader *r, uint64_t off, uint64_t n, void *dst, mc_error *err)
{
    if (n > SIZE_MAX) return mc_error_set(err, MC_ERR_NOMEM, "%s: %llu bytes do not fit in memory", r->path,
                                          (unsigned long long)n);
    if (atomic_load(&r->direct)) {
        mc_error e = { MC_OK, "" };
        int rc = mc_dio_pread(r->fd_direct, 1, r->path, off, dst, (size_t)n, &e);
        if (rc == 0) return 0;
        if (rc != MC_ERR_UNSUPPORTED || r->io_asked == MC_FLASH_IO_DIRECT_ONLY) {
            if (err && err->code == MC_OK) *err = e;
            return rc;
        }
        fall_back(r, e.msg);
    }
    return mc_dio_pread(r->f->file.fd, 0, r->path, off, dst, (size_t)n, err);
}

static int check_tensor(const mc_flash_reader *r, const mc_flash_reader_tensor *t, const unsigned char *p,
                        mc_error *err)
{
    uint64_t h = XXH3_64bits(p, (size_t)t->nbytes);
    if (h == t->xxh3) return 0;
    char a[17], b[17];
    mc_flash_hex64(h, a);
    mc_flash_hex64(t->xxh3, b);
    return mc_error_set(err, MC_ERR_CHECKSUM, "%s: tensor %s (bytes %llu..%llu): checksum mismatch (xxh3 %s, manifest says %s)",
                        r->path, t->name, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                        a, b);
}

int mc_flash_reader_read_pinned(mc_flash_reader *r, void *dst, mc_error *err)
{
    int rc = check_buf(r, dst, "pinned region", err);
    if (!rc) rc = read_at(r, r->info.pinned_offset, r->info.pinned_nbytes, dst, err);
    for (size_t i = 0; !rc && r->verify && i < r->n_tensors; i++)
        if (r->tensors[i].kind == MC_FLASH_READER_PINNED)
            rc = check_tensor(r, &r->tensors[i], (const unsigned char *)dst + r->tensors[i].buffer_offset, err);
    return rc;
}

int mc_flash_reader_read_ffn(mc_flash_reader *r, int layer, void *dst, mc_error *err)
{
    const mc_flash_reader_layer *L = mc_flash_reader_find_layer(r, layer, MC_FLASH_READER_FFN);
    if (!L) return mc_error_set(err, MC_ERR_NOTFOUND, "%s: layer %d has no ffn span", r->path, layer);
    int rc = check_buf(r, dst, "ffn span", err);
    if (!rc) rc = read_at(r, L->offset, L->nbytes, dst, err);
    for (size_t i = 0; !rc && r->verify && i < L->n_tensors; i++) {
        const mc_flash_reader_tensor *t = &r->tensors[L->first_tensor + i];
        rc = check_tensor(r, t, (const unsigned char *)dst + t->buffer_offset, err);
    }
    return rc;
}

typedef struct xjob {
    mc_flash_reader *r;
    const mc_flash_reader_layer *L;
    const uint32_t *ids;
    unsigned char *dst;
    uint64_t *lat_ns;
    pthread_mutex_t mu;
    size_t bad;        /* lowest failing index, or SIZE_MAX */
    mc_error err;      /* its error */
} xjob;

static void xread(void *ctx, size_t i)
{
    xjob *j = ctx;
    mc_flash_reader *r = j->r;
    const mc_flash_reader_layer *L = j->L;
    uint32_t e = j->ids[i];
    unsigned char *p = j->dst + i * (size_t)L->nbytes;
    uint64_t off = L->offset + (uint64_t)e * L->nbytes;
    mc_error er = { MC_OK, "" };
    uint64_t t0 = j->lat_ns ? mc_flash_reader_now_ns() : 0;
    int rc = read_at(r, off, L->nbytes, p, &er);
    if (j->lat_ns) j->lat_ns[i] = mc_flash_reader_now_ns() - t0;
    if (!rc && r->verify) {
        uint64_t h = XXH3_64bits(p, (size_t)L->nbytes);
        if (h != L->block_xxh3[e]) {
            char a[17], b[17];
            mc_flash_hex64(h, a);
            mc_flash_hex64(L->block_xxh3[e], b);
            rc = mc_error_set(&er, MC_ERR_CHECKSUM,
                              "%s: expert %u of layer %d (bytes %llu..%llu): checksum mismatch (xxh3 %s, manifest "
                              "says %s)",
                              r->path, e, L->layer, (unsigned long long)off, (unsigned long long)(off + L->nbytes), a,
                              b);
        }
    }
    if (rc) {
        pthread_mutex_lock(&j->mu);
        if (i < j->bad) {
            j->bad = i;
            j->err = er;
        }
        pthread_mutex_unlock(&j->mu);
    }
}

int mc_flash_reader_read_experts_timed(mc_flash_reader *r, int layer, const uint32_t *ids, size_t k, void *dst,
                                       uint64_t *lat_ns, mc_error *err)
{
    const mc_flash_reader_layer *L = mc_flash_reader_find_layer(r, layer, MC_FLASH_READER_EXPERT);
    uint64_t total;
    if (!L) return mc_error_set(err, MC_ERR_NOTFOUND, "%s: layer %d has no experts", r->path, layer);
    if (k == 0) return 0;
    if (!ids) return mc_error_set(err, MC_ERR_ARG, "%s: layer %d: no expert ids", r->path, layer);
    for (size_t i = 0; i < k; i++)
        if (ids[i] >= L->n_experts)
            return mc_error_set(err, MC_ERR_ARG, "%s: layer %d has %u experts, asked for expert %u", r->path, layer,
                                L->n_experts, ids[i]);
    if (mc_mul_u64(k, L->nbytes, &total) || total > SIZE_MAX)
        return mc_error_set(err, MC_ERR_ARG, "%s: layer %d: %zu experts of %llu bytes do not fit in memory", r->path,
                            layer, k, (unsigned long long)L->nbytes);
    int rc = check_buf(r, dst, "expert blocks", err);
    if (rc) return rc;
    xjob j;
    memset(&j, 0, sizeof j);
    j.r = r;
    j.L = L;
    j.ids = ids;
    j.dst = dst;
    j.lat_ns = lat_ns;
    j.bad = SIZE_MAX;
    pthread_mutex_init(&j.mu, NULL);
    mc_pool_run(r->pool, k, xread, &j);
    pthread_mutex_destroy(&j.mu);
    if (j.bad == SIZE_MAX) return 0;
    if (err && err->code == MC_OK) *err = j.err;
    return j.err.code ? (int)j.err.code : MC_ERR_IO;
}

int mc_flash_reader_read_experts(mc_flash_reader *r, int layer, const uint32_t *ids, size_t k, void *dst,
                                 mc_error *err)
{
    return mc_flash_reader_read_experts_timed(r, layer, ids, k, dst, NULL, err);
}

uint64_t mc_flash_reader_tensor_read_size(const mc_flash_reader_tensor *t)
{
    return (t->nbytes + PAGE - 1) / PAGE * PAGE;
}

int mc_flash_reader_read_tensor(mc_flash_reader *r, const mc_flash_reader_tensor *t, uint32_t expert, void *dst,
                                mc_error *err)
{
    if (!t || t < r->tensors || t >= r->tensors + r->n_tensors)
        return mc_error_set(err, MC_ERR_ARG, "%s: not a tensor of this reader", r->path);
    uint64_t off = t->offset;
    if (t->kind == MC_FLASH_READER_EXPERT) {
        const mc_flash_reader_layer *L = mc_flash_reader_find_layer(r, t->layer, MC_FLASH_READER_EXPERT);
        if (expert >= L->n_experts)
            return mc_error_set(err, MC_ERR_ARG, "%s: layer %d has %u experts, asked for expert %u of %s", r->path,
                                t->layer, L->n_experts, expert, t->name);
        off += (uint64_t)expert * L->nbytes;
    }
    int rc = check_buf(r, dst, t->name, err);
    if (!rc) rc = read_at(r, off, mc_flash_reader_tensor_read_size(t), dst, err);
    if (!rc && r->verify && t->has_xxh3) rc = check_tensor(r, t, dst, err);
    return rc;
}

int mc_flash_reader_drop_cache(mc_flash_reader *r, uint64_t off, uint64_t len)
{
    return mc_dio_drop_cache(r->f->file.fd, off, len);
}

void *mc_flash_reader_alloc(size_t n) { return mc_dio_alloc(n, MC_FLASH_READER_PAGE); }
void mc_flash_reader_free(void *p) { free(p); }

/* ---- files ---- */

size_t mc_flash_reader_n_files(const mc_flash_reader *r) { return r->n_files; }

const char *mc_flash_reader_file_name(const mc_flash_reader *r, size_t i)
{
    return i < r->n_files ? r->files[i].name : NULL;
}

const char *mc_flash_reader_file_text(const mc_flash_reader *r, size_t i, size_t *len)
{
    if (i >= r->n_files) return NULL;
    if (len) *len = r->files[i].len;
    return r->files[i].text;
}

const char *mc_flash_reader_config_json(const mc_flash_reader *r) { return r->files[0].text; }

const char *mc_flash_reader_manifest_json(const mc_flash_reader *r, size_t *len)
{
    if (len) *len = (size_t)r->f->hdr.manifest_length;
    return r->f->manifest_text;
}

int mc_flash_reader_write_files(const mc_flash_reader *r, const char *dir, mc_error *err)
{
    if (!dir || !*dir) return mc_error_set(err, MC_ERR_ARG, "%s: no folder to write the files into", r->path);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mc_error_set(err, MC_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    if (!mc_io_is_dir(dir)) return mc_error_set(err, MC_ERR_IO, "%s: exists and is not a folder", dir);
    for (size_t i = 0; i < r->n_files; i++) {
        mc_outfile o;
        memset(&o, 0, sizeof o);
        o.fd = -1;
        o.slot = -1;
        char *p = mc_path_join(dir, r->files[i].name);
        if (!p) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", dir);
        int rc = mc_outfile_create(&o, p, 1, err);
        if (!rc) rc = mc_outfile_write(&o, r->files[i].text, r->files[i].len, err);
        if (!rc) rc = mc_outfile_commit(&o, err);
        mc_outfile_abort(&o);
        free(p);
        if (rc) return rc;
    }
    return 0;
}
