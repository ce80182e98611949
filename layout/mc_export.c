#include "mc_export.h"
#include "mc_export_int.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__APPLE__)
#include <sys/clonefile.h>
#elif defined(__linux__)
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif
#include <time.h>
#include <unistd.h>

#include "mc_flash.h"
#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_maccode.h"
#include "mc_qerr.h"
#include "mc_qreport.h"
#include "mc_tokenizer.h"
#include "mc_types.h"
#include "mc_workers.h"

#define PAGE ((uint64_t)MC_FLASH_PAGE)

/* ---- names ---- */

static const struct { int type; const char *mlx; } g_mlx_dtypes[] = {
    { MC_T_U32, "mlx.core.uint32" }, { MC_T_F16, "mlx.core.float16" },
    { MC_T_BF16, "mlx.core.bfloat16" }, { MC_T_F32, "mlx.core.float32" },
};

const char *mc_export_mlx_dtype(int type)
{
    for (size_t i = 0; i < sizeof g_mlx_dtypes / sizeof g_mlx_dtypes[0]; i++)
        if (g_mlx_dtypes[i].type == type) return g_mlx_dtypes[i].mlx;
    return NULL;
}

static const char *strip_lm(const char *name)
{
    static const char pfx[] = "language_model.";
    return strncmp(name, pfx, sizeof pfx - 1) ? name : name + sizeof pfx - 1;
}

const char *mc_export_local_name(const char *name)
{
    static const char pfx[] = "model.layers.";
    const char *s = strip_lm(name);
    if (strncmp(s, pfx, sizeof pfx - 1)) return NULL;
    s += sizeof pfx - 1;
    if (*s < '0' || *s > '9') return NULL;
    while (*s >= '0' && *s <= '9') s++;
    return *s == '.' && s[1] ? s + 1 : NULL;
}

/* ---- building ---- */

void mc_export_free(mc_export *X)
{
    if (!X) return;
    for (size_t i = 0; i < X->n_files; i++) {
        free(X->files[i].name);
        free(X->files[i].head);
        free(X->files[i].copy_from);
        free(X->files[i].ranges);
    }
    for (size_t i = 0; i < X->n_dirs; i++) free(X->dirs[i]);
    free(X->files);
    free(X->dirs);
    free(X->place);
    free(X->stats);
    free(X);
}

static int oom(mc_error *err) { return mc_error_set(err, MC_ERR_NOMEM, "out of memory"); }

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Append a file; *idx receives its index. head is taken over (freed on failure). */
static int add_file(mc_export *X, const char *name, unsigned char *head, size_t head_len, uint64_t size,
                    size_t *idx, mc_error *err)
{
    mc_export_file *nf = realloc(X->files, (X->n_files + 1) * sizeof *nf);
    if (!nf) {
        free(head);
        return oom(err);
    }
    X->files = nf;
    mc_export_file *f = &X->files[X->n_files];
    memset(f, 0, sizeof *f);
    if (!(f->name = dup_str(name))) {
        free(head);
        return oom(err);
    }
    f->head = head;
    f->head_len = head_len;
    f->size = size;
    if (idx) *idx = X->n_files;
    X->n_files++;
    return 0;
}

/* A whole JSON file (pretty-printed, newline at the end). */
static int add_json_file(mc_export *X, const char *name, const cJSON *j, mc_error *err)
{
    char *s = cJSON_Print(j);
    if (!s) return oom(err);
    size_t n = strlen(s);
    unsigned char *b = malloc(n + 1);
    if (!b) {
        cJSON_free(s);
        return oom(err);
    }
    memcpy(b, s, n);
    b[n] = '\n';
    cJSON_free(s);
    return add_file(X, name, b, n + 1, n + 1, NULL, err);
}

static int add_dir(mc_export *X, const char *name, mc_error *err)
{
    char **nd = realloc(X->dirs, (X->n_dirs + 1) * sizeof *nd);
    if (!nd) return oom(err);
    X->dirs = nd;
    if (!(X->dirs[X->n_dirs] = dup_str(name))) return oom(err);
    X->n_dirs++;
    return 0;
}

/* Tokenizer files: copied from the source folder, or built from a GGUF. */
static int add_tokenizer(const mc_model *m, mc_export *X, mc_error *err)
{
    const cJSON *t = m->tokenizer;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
    if (!cJSON_IsString(kind)) return 0;
    if (!strcmp(kind->valuestring, "gguf") && m->gguf) {
        mc_tok_out tok;
        int rc = mc_tokenizer_build(m->gguf, &tok, err);
        if (!rc && tok.tokenizer_json) rc = add_json_file(X, "tokenizer.json", tok.tokenizer_json, err);
        if (!rc && tok.tokenizer_config) rc = add_json_file(X, "tokenizer_config.json", tok.tokenizer_config, err);
        if (!rc && tok.generation_config) rc = add_json_file(X, "generation_config.json", tok.generation_config, err);
        if (!rc && tok.chat_template) {
            size_t n = strlen(tok.chat_template);
            unsigned char *b = malloc(n ? n : 1);
            if (!b) rc = oom(err);
            else {
                memcpy(b, tok.chat_template, n);
                rc = add_file(X, "chat_template.jinja", b, n, n, NULL, err);
            }
        }
        mc_tokenizer_out_free(&tok);
        return rc;
    }
    if (strcmp(kind->valuestring, "files")) return 0;
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(t, "dir");
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(t, "files"))
    {
        if (!cJSON_IsString(f) || !cJSON_IsString(dir)) continue;
        struct stat st;
        char *src = mc_path_join(dir->valuestring, f->valuestring);
        if (!src) return oom(err);
        if (stat(src, &st) != 0) {
            int rc = mc_error_set(err, MC_ERR_IO, "%s: %s", src, strerror(errno));
            free(src);
            return rc;
        }
        size_t idx;
        int rc = add_file(X, f->valuestring, NULL, 0, (uint64_t)st.st_size, &idx, err);
        if (rc) {
            free(src);
            return rc;
        }
        X->files[idx].copy_from = src;
    }
    return 0;
}

typedef mc_export_st_ent st_ent;

/* A safetensors file of the entries (data in this order, packed): header
 * with "__metadata__" {"format": "mlx"} first, padded with spaces to a
 * multiple of 8, as MLX writes it. Places every entry. */
static int add_st_file(mc_export *X, const char *fname, const st_ent *e, size_t n, mc_error *err)
{
    const mc_plan *p = X->plan;
    cJSON *h = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(h, "__metadata__");
    int bad = !h || !meta || !cJSON_AddStringToObject(meta, "format", "mlx");
    uint64_t off = 0;
    for (size_t i = 0; !bad && i < n; i++) {
        const mc_pout *o = &p->items[e[i].item].out[e[i].k];
        const mc_type_traits *tt = mc_type_get(o->dtype);
        cJSON *t = cJSON_AddObjectToObject(h, e[i].name);
        cJSON *sh = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *dof = t ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        bad |= !t || !sh || !dof || !tt || !tt->st_name || !cJSON_AddStringToObject(t, "dtype", tt->st_name);
        for (uint32_t d = 0; !bad && d < o->n_dims; d++)
            bad |= !cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)o->shape[d]));
        if (!bad) {
            bad |= !cJSON_AddItemToArray(dof, cJSON_CreateNumber((double)off));
            bad |= !cJSON_AddItemToArray(dof, cJSON_CreateNumber((double)(off + o->nbytes)));
        }
        off += o->nbytes;
    }
    char *js = bad ? NULL : cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return oom(err);
    size_t jl = strlen(js), hl = (jl + 7) & ~(size_t)7;
    unsigned char *b = malloc(8 + hl);
    if (!b) {
        cJSON_free(js);
        return oom(err);
    }
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, js, jl);
    memset(b + 8 + jl, ' ', hl - jl);
    cJSON_free(js);
    size_t fi;
    int rc = add_file(X, fname, b, 8 + hl, 8 + hl + off, &fi, err);
    if (rc) return rc;
    uint64_t cur = 8 + hl;
    for (size_t i = 0; i < n; i++) {
        mc_export_place *pl = &X->place[e[i].item][e[i].k];
        pl->file = fi;
        pl->base = cur;
        pl->estride = 0;
        cur += p->items[e[i].item].out[e[i].k].nbytes;
    }
    X->files[fi].n_tensors = n;
    return 0;
}

/* For the mac-code builder (mc_export_maccode.c, mc_export_int.h). */
int mc_export_oom(mc_error *err) { return oom(err); }
const char *mc_export_strip_lm(const char *name) { return strip_lm(name); }
int mc_export_add_file(mc_export *X, const char *name, unsigned char *head, size_t head_len, uint64_t size,
                       size_t *idx, mc_error *err)
{
    return add_file(X, name, head, head_len, size, idx, err);
}
int mc_export_add_json_file(mc_export *X, const char *name, const cJSON *j, mc_error *err)
{
    return add_json_file(X, name, j, err);
}
int mc_export_add_dir(mc_export *X, const char *name, mc_error *err) { return add_dir(X, name, err); }
int mc_export_add_tokenizer(const mc_model *m, mc_export *X, mc_error *err) { return add_tokenizer(m, X, err); }
int mc_export_add_st_file(mc_export *X, const char *fname, const mc_export_st_ent *e, size_t n, mc_error *err)
{
    return add_st_file(X, fname, e, n, err);
}

static int build_mlx(const mc_model *m, mc_export *X, mc_error *err)
{
    const mc_plan *p = X->plan;
    st_ent *e = NULL;
    size_t ne = 0, *starts = NULL, n_sh = 0;
    cJSON *idx = NULL, *cfg = NULL;
    int rc = 0;
    if (!(e = malloc((p->n_items ? p->n_items : 1) * 3 * sizeof *e)) ||
        !(starts = malloc((p->n_items ? p->n_items : 1) * 3 * sizeof *starts + sizeof *starts))) {
        rc = oom(err);
        goto done;
    }
    /* make_shards: a shard is closed when the next tensor would take it past
     * the limit (never an empty shard). */
    uint64_t cur = 0, total = 0;
    for (size_t i = 0; i < p->n_items; i++)
        for (size_t k = 0; k < p->items[i].n_out; k++) {
            uint64_t nb = p->items[i].out[k].nbytes;
            if (ne == 0 || (cur > 0 && cur + nb > X->shard_bytes)) {
                starts[n_sh++] = ne;
                cur = 0;
            }
            e[ne++] = (st_ent){ i, k, p->items[i].out[k].name };
            cur += nb;
            total += nb;
        }
    if (!ne) {
        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: no tensors to write", m->input_path);
        goto done;
    }
    starts[n_sh] = ne;
    idx = cJSON_CreateObject();
    cJSON *meta = idx ? cJSON_AddObjectToObject(idx, "metadata") : NULL;
    cJSON *wm = meta && cJSON_AddNumberToObject(meta, "total_size", (double)total)
                    ? cJSON_AddObjectToObject(idx, "weight_map") : NULL;
    if (!wm) {
        rc = oom(err);
        goto done;
    }
    for (size_t s = 0; !rc && s < n_sh; s++) {
        char fname[64];
        if (n_sh > 1) snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", s + 1, n_sh);
        else snprintf(fname, sizeof fname, "model.safetensors");
        rc = add_st_file(X, fname, e + starts[s], starts[s + 1] - starts[s], err);
    }
    if (rc) goto done;
    /* weight_map sorted by name (mlx-lm sorts it) */
    {
        size_t first = X->n_files - n_sh;
        const char **names = malloc(ne * sizeof *names);
        size_t *fidx = malloc(ne * sizeof *fidx);
        if (!names || !fidx) {
            free(names);
            free(fidx);
            rc = oom(err);
            goto done;
        }
        for (size_t s = 0; s < n_sh; s++)
            for (size_t i = starts[s]; i < starts[s + 1]; i++) {
                names[i] = e[i].name;
                fidx[i] = first + s;
            }
        /* insertion sort on an index permutation is O(n^2); use qsort on pairs */
        typedef struct { const char *n; size_t f; } pair;
        pair *pp = malloc(ne * sizeof *pp);
        if (!pp) {
            free(names);
            free(fidx);
            rc = oom(err);
            goto done;
        }
        for (size_t i = 0; i < ne; i++) pp[i] = (pair){ names[i], fidx[i] };
        free(names);
        free(fidx);
        for (size_t gap = ne / 2; gap > 0; gap /= 2) /* shell sort: no global state */
            for (size_t i = gap; i < ne; i++) {
                pair v = pp[i];
                size_t j = i;
                while (j >= gap && strcmp(pp[j - gap].n, v.n) > 0) {
                    pp[j] = pp[j - gap];
                    j -= gap;
                }
                pp[j] = v;
            }
        for (size_t i = 0; i < ne && !rc; i++)
            if (!cJSON_AddStringToObject(wm, pp[i].n, X->files[pp[i].f].name)) rc = oom(err);
        free(pp);
    }
    if (rc || (rc = add_json_file(X, "model.safetensors.index.json", idx, err))) goto done;
    if (!(cfg = mc_plan_config(p, m))) {
        rc = oom(err);
        goto done;
    }
    if ((rc = add_json_file(X, "config.json", cfg, err))) goto done;
    rc = add_tokenizer(m, X, err);
done:
    cJSON_Delete(idx);
    cJSON_Delete(cfg);
    free(e);
    free(starts);
    return rc;
}

int mc_export_build_for(const mc_model *m, const mc_plan *p, mc_export_kind kind, uint64_t shard_bytes,
                        uint32_t engines, mc_export **out, mc_error *err)
{
    int rc;
    *out = NULL;
    mc_export *X = calloc(1, sizeof *X);
    if (!X) return oom(err);
    X->kind = kind;
    X->plan = p;
    X->engines = engines;
    X->shard_bytes = shard_bytes ? shard_bytes : ((uint64_t)5 << 30);
    X->place = calloc(p->n_items ? p->n_items : 1, sizeof *X->place);
    X->stats = calloc(1, sizeof *X->stats);
    if (!X->place || !X->stats) {
        mc_export_free(X);
        return oom(err);
    }
    for (size_t i = 0; i < p->n_items; i++)
        for (size_t k = 0; k < p->items[i].n_out; k++) X->tensor_bytes += p->items[i].out[k].nbytes;
    if (kind == MC_EXPORT_MACCODE) rc = mc_export_build_maccode(m, X, err);
    else if (kind == MC_EXPORT_MLX) rc = build_mlx(m, X, err);
    else rc = mc_error_set(err, MC_ERR_ARG, "unknown export layout %d", (int)kind);
    if (rc) mc_export_free(X);
    else *out = X;
    return rc;
}

int mc_export_build(const mc_model *m, const mc_plan *p, mc_export_kind kind, uint64_t shard_bytes,
                    mc_export **out, mc_error *err)
{
    return mc_export_build_for(m, p, kind, shard_bytes, mc_maccode_family(m->model_type, 1), out, err);
}

/* ---- writing ---- */

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, mc_error *err)
{
    const unsigned char *b = buf;
    while (n) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return mc_error_set(err, MC_ERR_IO, "%s: write at offset %llu failed: %s", path,
                                        (unsigned long long)off, w < 0 ? strerror(errno) : "no progress");
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

typedef struct xeng {
    const mc_model *m;
    const mc_export *X;
    const mc_source_ops *ops;
    const int *fds;
    char *const *paths;
    size_t chunk_bytes;
    mc_workers w; /* pool; w.mu also guards the cursors and qerr */
    mc_plan_cursor cur;
    mc_qerr *qerr; /* per plan item, or NULL: not measured */
} xeng;

static int xnext(xeng *E, mc_plan_chunk *j)
{
    pthread_mutex_lock(&E->w.mu);
    int got = !E->w.failed && mc_plan_next_chunk(E->X->plan, E->chunk_bytes, &E->cur, j);
    pthread_mutex_unlock(&E->w.mu);
    return got;
}

static void xworker(void *arg)
{
    xeng *E = arg;
    const mc_plan *p = E->X->plan;
    mc_plan_scratch s;
    mc_error err = { MC_OK, "" };
    mc_plan_chunk j;
    memset(&s, 0, sizeof s);
    while (xnext(E, &j)) {
        const mc_pitem *it = &p->items[j.item];
        uint64_t per = it->nrows / it->n_experts, bytes = 0;
        unsigned char *out[3] = { NULL, NULL, NULL };
        int rc = mc_plan_convert_rows(E->m, E->ops, it, (uint64_t)j.expert * per + j.row, j.nrows, &s, out, &err);
        for (size_t k = 0; !rc && k < it->n_out; k++) {
            const mc_export_place *pl = &E->X->place[j.item][k];
            uint64_t rb = it->out[k].row_bytes;
            /* stacked tensors in one safetensors tensor: expert e follows e-1 */
            uint64_t es = pl->estride ? pl->estride : per * rb;
            uint64_t off = pl->base + (uint64_t)j.expert * es + j.row * rb;
            rc = pwrite_all(E->fds[pl->file], out[k], (size_t)(j.nrows * rb), off, E->paths[pl->file], &err);
            bytes += j.nrows * rb;
        }
        if (!rc && E->qerr) {
            mc_qerr q;
            mc_qerr_init(&q);
            if (!(rc = mc_plan_measure_rows(it, j.nrows, &s, out, &q, &err))) {
                pthread_mutex_lock(&E->w.mu);
                mc_qerr_merge(&E->qerr[j.item], &q);
                pthread_mutex_unlock(&E->w.mu);
            }
        }
        if (rc) {
            mc_workers_fail(&E->w, &err);
            break;
        }
        mc_workers_chunk_done(&E->w, bytes);
    }
    mc_plan_scratch_free(&s);
}

/* quant_report.json beside the weights (docs/QUANT.md). */
static int write_qreport(const mc_plan *p, const mc_qerr *q, const char *path, mc_error *err)
{
    cJSON *j = mc_qreport_json(p, q);
    char *text = j ? cJSON_Print(j) : NULL;
    int rc = 0, fd = -1;
    cJSON_Delete(j);
    if (!text) rc = oom(err);
    if (!rc && (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644)) < 0)
        rc = mc_error_set(err, MC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (!rc) rc = pwrite_all(fd, text, strlen(text), 0, path, err);
    if (!rc && fsync(fd) != 0) rc = mc_error_set(err, MC_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && !rc) rc = mc_error_set(err, MC_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    free(text);
    return rc;
}

/* Remove a folder tree (our own temporary or replaced folder). */
static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = mc_path_join(path, de->d_name);
        if (p) rm_tree(p);
        free(p);
    }
    if (d) closedir(d);
    rmdir(path);
}

static int copy_file(const char *src, int fd, const char *dst, uint64_t size, mc_error *err)
{
    mc_file f;
    int rc = mc_file_open(&f, src, err);
    if (rc) return rc;
    if (f.size != size) {
        mc_file_close(&f);
        return mc_error_set(err, MC_ERR_IO, "%s: changed while converting", src);
    }
    unsigned char *buf = malloc(1 << 20);
    if (!buf) rc = oom(err);
    for (uint64_t off = 0; !rc && off < size;) {
        size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (size_t)1 << 20;
        if (!(rc = mc_file_pread(&f, off, buf, n, err))) rc = pwrite_all(fd, buf, n, off, dst, err);
        off += n;
    }
    free(buf);
    mc_file_close(&f);
    return rc;
}

/* File i (a clone file) from its written source: a copy-on-write clone
 * where the system and file system can (macOS clonefile, Linux FICLONE),
 * else its data ranges copied (holes stay holes); then its own head over
 * the first bytes. *fd is left open. */
static int make_clone(const mc_export *X, size_t i, char *const *paths, int *fd, mc_error *err)
{
    const mc_export_file *f = &X->files[i];
    const char *src = paths[f->clone_src], *dst = paths[i];
    int cloned = 0, rc = 0, sfd = -1;
    unsigned char *buf = NULL;
#if defined(__APPLE__)
    cloned = clonefile(src, dst, 0) == 0;
#endif
    *fd = open(dst, cloned ? O_RDWR : O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0644);
    if (*fd < 0) return mc_error_set(err, MC_ERR_IO, "%s: cannot create: %s", dst, strerror(errno));
    if ((sfd = open(src, O_RDONLY)) < 0) return mc_error_set(err, MC_ERR_IO, "%s: %s", src, strerror(errno));
#if defined(__linux__) && defined(FICLONE)
    if (!cloned) cloned = ioctl(*fd, FICLONE, sfd) == 0;
#endif
    if (!cloned) {
        if (ftruncate(*fd, (off_t)f->size) != 0)
            rc = mc_error_set(err, MC_ERR_IO, "%s: cannot extend to %llu bytes: %s", dst, (unsigned long long)f->size,
                              strerror(errno));
        if (!rc && !(buf = malloc((size_t)1 << 20))) rc = oom(err);
        for (size_t r = 0; !rc && r < f->n_ranges; r++)
            for (uint64_t off = f->ranges[r][0], end = off + f->ranges[r][1]; !rc && off < end;) {
                size_t n = end - off < ((uint64_t)1 << 20) ? (size_t)(end - off) : (size_t)1 << 20;
                ssize_t got = pread(sfd, buf, n, (off_t)off);
                if (got < 0 && errno == EINTR) continue;
                if (got != (ssize_t)n)
                    rc = mc_error_set(err, MC_ERR_IO, "%s: read at offset %llu failed: %s", src, (unsigned long long)off,
                                      got < 0 ? strerror(errno) : "short read");
                else rc = pwrite_all(*fd, buf, n, off, dst, err);
                off += n;
                if (!rc) X->stats->bytes_copied += n;
            }
    }
    if (!rc && f->head_len) rc = pwrite_all(*fd, f->head, f->head_len, 0, dst, err);
    if (!rc) {
        if (cloned) X->stats->n_cloned++;
        else X->stats->n_copied++;
    }
    free(buf);
    close(sfd);
    return rc;
}

/* Remove ".base.mconv-tmp.PID" / ".base.mconv-old.PID" folders in dir left
 * by killed runs (PID no longer alive). */
static void clean_stale(const char *dir, const char *base, const char *outdir)
{
    static const char *const tags[] = { ".mconv-tmp.", ".mconv-old." };
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl)) continue;
        for (size_t k = 0; k < 2; k++) {
            size_t tl = strlen(tags[k]);
            if (strncmp(n + 1 + bl, tags[k], tl)) continue;
            char *end = NULL;
            long pid = strtol(n + 1 + bl + tl, &end, 10);
            if (!end || *end || pid <= 0 || pid == (long)getpid()) continue;
            if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue; /* still alive */
            char *p = mc_path_join(dir, n);
            struct stat st;
            /* a run killed between its two renames: put the old folder back */
            if (p && lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && !(k == 1 && !mc_io_exists(outdir) &&
                                                                  rename(p, outdir) == 0))
                rm_tree(p);
            free(p);
        }
    }
    if (d) closedir(d);
}

/* outdir without trailing slashes, split into its folder and base name. */
static int split_out(const char *outdir, char **dir, char **base)
{
    size_t n = strlen(outdir);
    while (n > 1 && outdir[n - 1] == '/') n--;
    const char *s = outdir + n;
    while (s > outdir && s[-1] != '/') s--;
    size_t dl = (size_t)(s - outdir);
    *dir = malloc(dl + 2);
    *base = malloc(n - dl + 1);
    if (!*dir || !*base) return 1;
    if (dl == 0) strcpy(*dir, ".");
    else if (dl == 1) strcpy(*dir, "/");
    else {
        memcpy(*dir, outdir, dl - 1);
        (*dir)[dl - 1] = 0;
    }
    memcpy(*base, s, n - dl);
    (*base)[n - dl] = 0;
    return 0;
}

int mc_export_write(const mc_model *m, const mc_export *X, const char *outdir, const mc_flash_write_opts *o,
                    mc_error *err)
{
    char *dir = NULL, *base = NULL, *tmp = NULL, *old = NULL, **paths = NULL;
    int *fds = NULL, slot = -1, rc = 0, made = 0, masked = 0;
    sigset_t prev;
    size_t np = 1 + X->n_dirs + X->n_files + 1; /* + quant_report.json */
    xeng E;
    memset(&E, 0, sizeof E);
    mc_workers_init(&E.w, o->test_delay_us);
    if (!o->ops || !o->ops->read_f32 || !o->ops->read_raw) {
        rc = mc_error_set(err, MC_ERR_ARG, "no source functions given (mc_flash_write_opts.ops)");
        goto done;
    }
    if (!o->force && mc_io_exists(outdir)) {
        rc = mc_error_set(err, MC_ERR_EXISTS, "%s: already exists (use --force to overwrite)", outdir);
        goto done;
    }
    if (split_out(outdir, &dir, &base)) {
        rc = oom(err);
        goto done;
    }
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")) {
        rc = mc_error_set(err, MC_ERR_ARG, "%s: not a folder name", outdir);
        goto done;
    }
    size_t need = strlen(dir) + strlen(base) + 64;
    tmp = malloc(need);
    old = malloc(need);
    paths = calloc(np, sizeof *paths);
    fds = malloc((X->n_files ? X->n_files : 1) * sizeof *fds);
    if (!tmp || !old || !paths || !fds) {
        rc = oom(err);
        goto done;
    }
    snprintf(tmp, need, "%s/.%s.mconv-tmp.%ld", dir, base, (long)getpid());
    snprintf(old, need, "%s/.%s.mconv-old.%ld", dir, base, (long)getpid());
    for (size_t i = 0; i < X->n_files; i++) fds[i] = -1;
    paths[0] = tmp;
    for (size_t i = 0; i < X->n_dirs; i++)
        if (!(paths[1 + i] = mc_path_join(tmp, X->dirs[i]))) rc = oom(err);
    for (size_t i = 0; i < X->n_files; i++)
        if (!(paths[1 + X->n_dirs + i] = mc_path_join(tmp, X->files[i].name))) rc = oom(err);
    if (!(paths[np - 1] = mc_path_join(tmp, MC_QREPORT_FILE))) rc = oom(err);
    if (rc) goto done;
    rm_tree(tmp); /* our own pid's leftover from an earlier attempt */
    clean_stale(dir, base, outdir);
    slot = mc_io_register_tmp_list((const char *const *)paths, np);
    if (slot < 0) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: too many temporary outputs registered", outdir);
        goto done;
    }
    if (mkdir(tmp, 0755) != 0) {
        rc = mc_error_set(err, MC_ERR_IO, "%s: cannot create temporary folder %s: %s", outdir, tmp, strerror(errno));
        goto done;
    }
    made = 1;
    for (size_t i = 0; !rc && i < X->n_dirs; i++)
        if (mkdir(paths[1 + i], 0755) != 0)
            rc = mc_error_set(err, MC_ERR_IO, "%s: %s", paths[1 + i], strerror(errno));
    char **fpaths = paths + 1 + X->n_dirs;
    for (size_t i = 0; !rc && i < X->n_files; i++) {
        const mc_export_file *f = &X->files[i];
        if (f->clone) continue; /* made from its source once that is written */
        fds[i] = open(fpaths[i], O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0644);
        if (fds[i] < 0) {
            rc = mc_error_set(err, MC_ERR_IO, "%s: cannot create: %s", fpaths[i], strerror(errno));
            break;
        }
        if (f->head_len) rc = pwrite_all(fds[i], f->head, f->head_len, 0, fpaths[i], err);
        if (!rc && ftruncate(fds[i], (off_t)f->size) != 0)
            rc = mc_error_set(err, MC_ERR_IO, "%s: cannot extend to %llu bytes: %s", fpaths[i],
                              (unsigned long long)f->size, strerror(errno));
        if (!rc && f->copy_from) rc = copy_file(f->copy_from, fds[i], fpaths[i], f->size, err);
    }
    if (rc) goto done;
    E.m = m;
    E.X = X;
    E.ops = o->ops;
    E.fds = fds;
    E.paths = fpaths;
    E.chunk_bytes = o->chunk_bytes ? o->chunk_bytes : ((size_t)4 << 20);
    if (!o->no_qerr) {
        size_t n = X->plan->n_items ? X->plan->n_items : 1;
        if (!(E.qerr = malloc(n * sizeof *E.qerr))) {
            rc = oom(err);
            goto done;
        }
        for (size_t i = 0; i < n; i++) mc_qerr_init(&E.qerr[i]);
    }
    if ((rc = mc_workers_run(&E.w, o->threads, xworker, &E, X->tensor_bytes, o->progress, o->progress_ctx, err)))
        goto done;
    if (E.qerr && (rc = write_qreport(X->plan, E.qerr, paths[np - 1], err))) goto done;
    if (E.qerr && o->qerr_out) memcpy(o->qerr_out, E.qerr, X->plan->n_items * sizeof *E.qerr);
    for (int pass = 0; pass < 2 && !rc; pass++) /* sources first, then their clones */
        for (size_t i = 0; !rc && i < X->n_files; i++) {
            if (X->files[i].clone != pass) continue;
            if (pass && (rc = make_clone(X, i, fpaths, &fds[i], err))) break;
            if (fsync(fds[i]) != 0)
                rc = mc_error_set(err, MC_ERR_IO, "%s: fsync failed: %s", fpaths[i], strerror(errno));
            if (close(fds[i]) != 0 && !rc)
                rc = mc_error_set(err, MC_ERR_IO, "%s: close failed: %s", fpaths[i], strerror(errno));
            fds[i] = -1;
        }
    if (rc) goto done;
    /* into place: an existing OUTDIR (force) is renamed aside first. Signals
     * are held off between the two renames (the workers are done: this is
     * the only thread), so SIGINT/SIGTERM never leave OUTDIR missing. */
    int had_old = 0;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &prev);
    masked = 1;
    if (mc_io_exists(outdir)) {
        if (!o->force) {
            rc = mc_error_set(err, MC_ERR_EXISTS, "%s: already exists (use --force to overwrite)", outdir);
            goto done;
        }
        rm_tree(old);
        if (rename(outdir, old) != 0) {
            rc = mc_error_set(err, MC_ERR_IO, "%s: cannot move the old folder aside: %s", outdir, strerror(errno));
            goto done;
        }
        had_old = 1;
    }
    if (rename(tmp, outdir) != 0) {
        rc = mc_error_set(err, MC_ERR_IO, "%s: cannot rename %s into place: %s", outdir, tmp, strerror(errno));
        if (had_old) rename(old, outdir);
        goto done;
    }
    made = 0;
    mc_io_unregister_tmp_list(slot);
    slot = -1;
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    masked = 0;
    if (had_old) rm_tree(old);
done:
    if (masked) pthread_sigmask(SIG_SETMASK, &prev, NULL);
    for (size_t i = 0; fds && i < X->n_files; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (made) rm_tree(tmp);
    if (slot >= 0) mc_io_unregister_tmp_list(slot);
    for (size_t i = 1; paths && i < np; i++) free(paths[i]);
    free(paths);
    free(fds);
    free(tmp);
    free(old);
    free(dir);
    free(base);
    mc_workers_destroy(&E.w);
    free(E.qerr);
    return rc;
}
