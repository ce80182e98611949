#include "mc_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static _Atomic uint64_t g_bytes_read;
static _Atomic uint64_t g_bytes_written;

uint64_t mc_io_bytes_read(void) { return atomic_load(&g_bytes_read); }
uint64_t mc_io_bytes_written(void) { return atomic_load(&g_bytes_written); }
void mc_io_count_read(uint64_t n) { atomic_fetch_add(&g_bytes_read, n); }

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

char *mc_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + (size_t)slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + (size_t)slash, name, b + 1);
    return p;
}

int mc_file_open(mc_file *f, const char *path, mc_error *err)
{
    struct stat st;
    f->fd = -1;
    f->size = 0;
    f->path = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return mc_error_set(err, MC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mc_error_set(err, MC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return mc_error_set(err, MC_ERR_IO, "%s: is a directory, expected a file", path);
    }
    f->path = dup_str(path);
    if (!f->path) {
        close(fd);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    }
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    return 0;
}

int mc_file_pread(const mc_file *f, uint64_t off, void *buf, size_t n, mc_error *err)
{
    uint64_t end;
    if (mc_add_u64(off, n, &end) || end > f->size)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: truncated: need bytes %llu..%llu but the file has %llu",
                            f->path, (unsigned long long)off, (unsigned long long)off + n,
                            (unsigned long long)f->size);
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;
        ssize_t r = pread(f->fd, p + done, chunk, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return mc_error_set(err, MC_ERR_IO, "%s: read failed at offset %llu: %s", f->path,
                                (unsigned long long)(off + done), strerror(errno));
        }
        if (r == 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: truncated: file ended at offset %llu",
                                f->path, (unsigned long long)(off + done));
        done += (size_t)r;
    }
    mc_io_count_read(n);
    return 0;
}

void mc_file_close(mc_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    f->fd = -1;
    f->path = NULL;
}

/* ---- buffered reader ---- */

int mc_reader_init(mc_reader *r, const mc_file *f, uint64_t pos, size_t buf_cap, mc_error *err)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->pos = pos;
    r->buf_start = pos;
    r->buf_cap = buf_cap ? buf_cap : (1u << 20);
    r->buf = malloc(r->buf_cap);
    if (!r->buf) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", f->path);
    return 0;
}

static int reader_fill(mc_reader *r, mc_error *err)
{
    uint64_t left = r->f->size > r->pos ? r->f->size - r->pos : 0;
    size_t n = left < r->buf_cap ? (size_t)left : r->buf_cap;
    r->buf_start = r->pos;
    r->buf_len = 0;
    if (n == 0) return 0;
    int rc = mc_file_pread(r->f, r->pos, r->buf, n, err);
    if (rc) return rc;
    r->buf_len = n;
    return 0;
}

int mc_reader_read(mc_reader *r, void *dst, size_t n, mc_error *err)
{
    unsigned char *d = dst;
    if ((uint64_t)n > mc_reader_remaining(r))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: truncated: need %llu bytes at offset %llu but only %llu remain",
                            r->f->path, (unsigned long long)n, (unsigned long long)r->pos,
                            (unsigned long long)mc_reader_remaining(r));
    while (n > 0) {
        if (r->pos < r->buf_start || r->pos >= r->buf_start + r->buf_len) {
            int rc = reader_fill(r, err);
            if (rc) return rc;
            if (r->buf_len == 0)
                return mc_error_set(err, MC_ERR_FORMAT, "%s: truncated at offset %llu",
                                    r->f->path, (unsigned long long)r->pos);
        }
        size_t off = (size_t)(r->pos - r->buf_start);
        size_t avail = r->buf_len - off;
        size_t take = n < avail ? n : avail;
        memcpy(d, r->buf + off, take);
        d += take;
        n -= take;
        r->pos += take;
    }
    return 0;
}

int mc_reader_skip(mc_reader *r, uint64_t n, mc_error *err)
{
    if (n > mc_reader_remaining(r))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: truncated: need %llu bytes at offset %llu but only %llu remain",
                            r->f->path, (unsigned long long)n, (unsigned long long)r->pos,
                            (unsigned long long)mc_reader_remaining(r));
    r->pos += n;
    return 0;
}

void mc_reader_free(mc_reader *r)
{
    if (!r) return;
    free(r->buf);
    r->buf = NULL;
}

/* ---- temporary-file registry for signal cleanup ---- */

#define MC_TMP_SLOTS 64
#define MC_TMP_PATH_MAX 4096
static char g_tmp_paths[MC_TMP_SLOTS][MC_TMP_PATH_MAX];
static volatile sig_atomic_t g_tmp_used[MC_TMP_SLOTS];

int mc_io_register_tmp(const char *path)
{
    size_t n = strlen(path);
    if (n >= MC_TMP_PATH_MAX) return -1;
    for (int i = 0; i < MC_TMP_SLOTS; i++) {
        if (!g_tmp_used[i]) {
            memcpy(g_tmp_paths[i], path, n + 1);
            g_tmp_used[i] = 1;
            return i;
        }
    }
    return -1;
}

void mc_io_unregister_tmp(int slot)
{
    if (slot >= 0 && slot < MC_TMP_SLOTS) g_tmp_used[slot] = 0;
}

/* Path lists (a temporary output folder's tree), owned by the caller. */
#define MC_TMP_LISTS 8
static const char *const *volatile g_tmp_lists[MC_TMP_LISTS];
static volatile size_t g_tmp_list_n[MC_TMP_LISTS];

int mc_io_register_tmp_list(const char *const *paths, size_t n)
{
    for (int i = 0; i < MC_TMP_LISTS; i++) {
        if (!g_tmp_lists[i]) {
            g_tmp_list_n[i] = n;
            g_tmp_lists[i] = paths;
            return i;
        }
    }
    return -1;
}

void mc_io_unregister_tmp_list(int slot)
{
    if (slot >= 0 && slot < MC_TMP_LISTS) g_tmp_lists[slot] = NULL;
}

void mc_io_cleanup_signal_safe(void)
{
    /* Files first, then directories (rmdir fails harmlessly on files). */
    for (int i = MC_TMP_SLOTS - 1; i >= 0; i--)
        if (g_tmp_used[i]) unlink(g_tmp_paths[i]);
    for (int l = 0; l < MC_TMP_LISTS; l++) {
        const char *const *p = g_tmp_lists[l];
        for (size_t i = 0; p && i < g_tmp_list_n[l]; i++)
            if (p[i]) unlink(p[i]);
    }
    for (int l = 0; l < MC_TMP_LISTS; l++) {
        const char *const *p = g_tmp_lists[l];
        for (size_t i = p ? g_tmp_list_n[l] : 0; i > 0; i--)
            if (p[i - 1]) rmdir(p[i - 1]);
    }
    for (int i = MC_TMP_SLOTS - 1; i >= 0; i--)
        if (g_tmp_used[i]) rmdir(g_tmp_paths[i]);
}

/* ---- output files ---- */

static int split_dir_base(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dn = (size_t)(slash - path);
        *dir = malloc(dn + 2);
        if (!*dir) return -1;
        if (dn == 0) {
            strcpy(*dir, "/");
        } else {
            memcpy(*dir, path, dn);
            (*dir)[dn] = '\0';
        }
        *base = dup_str(slash + 1);
    } else {
        *dir = dup_str(".");
        *base = dup_str(path);
    }
    if (!*dir || !*base) {
        free(*dir);
        free(*base);
        return -1;
    }
    return 0;
}

int mc_io_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int mc_io_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int mc_io_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int mc_outfile_create(mc_outfile *o, const char *final_path, int force, mc_error *err)
{
    char *dir = NULL, *base = NULL;
    int rc = 0;
    memset(o, 0, sizeof *o);
    o->fd = -1;
    o->slot = -1;
    if (!force && mc_io_exists(final_path))
        return mc_error_set(err, MC_ERR_EXISTS, "%s: already exists (use --force to overwrite)",
                            final_path);
    if (mc_io_is_dir(final_path))
        return mc_error_set(err, MC_ERR_EXISTS, "%s: is a directory", final_path);
    if (split_dir_base(final_path, &dir, &base))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", final_path);
    mc_io_clean_stale(final_path);
    size_t need = strlen(dir) + strlen(base) + 64;
    o->tmp_path = malloc(need);
    o->final_path = dup_str(final_path);
    if (!o->tmp_path || !o->final_path) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", final_path);
        goto done;
    }
    snprintf(o->tmp_path, need, "%s/.%s.mconv-tmp.%ld", dir, base, (long)getpid());
    o->fd = open(o->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0644);
    if (o->fd < 0 && errno == EEXIST) { /* our own pid from an earlier aborted try */
        unlink(o->tmp_path);
        o->fd = open(o->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0644);
    }
    if (o->fd < 0) {
        rc = mc_error_set(err, MC_ERR_IO, "%s: cannot create temporary file %s: %s", final_path,
                          o->tmp_path, strerror(errno));
        goto done;
    }
    o->slot = mc_io_register_tmp(o->tmp_path);
done:
    free(dir);
    free(base);
    if (rc) {
        free(o->tmp_path);
        free(o->final_path);
        o->tmp_path = o->final_path = NULL;
    }
    return rc;
}

int mc_outfile_pwrite(mc_outfile *o, uint64_t off, const void *buf, size_t n, mc_error *err)
{
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;
        ssize_t w = pwrite(o->fd, p + done, chunk, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            return mc_error_set(err, MC_ERR_IO, "%s: write failed at offset %llu: %s",
                                o->final_path, (unsigned long long)(off + done), strerror(errno));
        }
        if (w == 0)
            return mc_error_set(err, MC_ERR_IO, "%s: write made no progress at offset %llu",
                                o->final_path, (unsigned long long)(off + done));
        done += (size_t)w;
    }
    atomic_fetch_add(&g_bytes_written, n);
    if (off + n > o->size) o->size = off + n;
    return 0;
}

int mc_outfile_write(mc_outfile *o, const void *buf, size_t n, mc_error *err)
{
    return mc_outfile_pwrite(o, o->size, buf, n, err);
}

int mc_outfile_truncate(mc_outfile *o, uint64_t size, mc_error *err)
{
    if (ftruncate(o->fd, (off_t)size) != 0)
        return mc_error_set(err, MC_ERR_IO, "%s: cannot set size to %llu: %s", o->final_path,
                            (unsigned long long)size, strerror(errno));
    o->size = size;
    return 0;
}

int mc_outfile_commit(mc_outfile *o, mc_error *err)
{
    if (o->fd < 0) return mc_error_set(err, MC_ERR_ARG, "output file is not open");
    if (fsync(o->fd) != 0) {
        int e = errno;
        mc_outfile_abort(o);
        return mc_error_set(err, MC_ERR_IO, "%s: fsync failed: %s", o->final_path ? o->final_path : "?", strerror(e));
    }
    if (close(o->fd) != 0) {
        int e = errno;
        o->fd = -1;
        mc_outfile_abort(o);
        return mc_error_set(err, MC_ERR_IO, "%s: close failed: %s", o->final_path ? o->final_path : "?", strerror(e));
    }
    o->fd = -1;
    if (rename(o->tmp_path, o->final_path) != 0) {
        int e = errno;
        int rc = mc_error_set(err, MC_ERR_IO, "%s: cannot rename %s into place: %s",
                              o->final_path, o->tmp_path, strerror(e));
        mc_outfile_abort(o);
        return rc;
    }
    mc_io_unregister_tmp(o->slot);
    o->slot = -1;
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = o->final_path = NULL;
    return 0;
}

void mc_outfile_abort(mc_outfile *o)
{
    if (!o) return;
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    if (o->tmp_path) unlink(o->tmp_path);
    mc_io_unregister_tmp(o->slot);
    o->slot = -1;
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = o->final_path = NULL;
}

int mc_io_clean_stale(const char *final_path)
{
    char *dir = NULL, *base = NULL;
    int removed = 0;
    if (split_dir_base(final_path, &dir, &base)) return 0;
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            const char *n = de->d_name;
            if (n[0] != '.' || strncmp(n + 1, base, bl) != 0) continue;
            const char *tail = n + 1 + bl;
            static const char tag[] = ".mconv-tmp.";
            if (strncmp(tail, tag, sizeof tag - 1) != 0) continue;
            char *end = NULL;
            long pid = strtol(tail + sizeof tag - 1, &end, 10);
            if (!end || *end != '\0' || pid <= 0) continue;
            if (pid == (long)getpid()) continue;
            if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue; /* still alive */
            char *p = mc_path_join(dir, n);
            if (p) {
                struct stat st;
                if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && unlink(p) == 0) removed++;
                free(p);
            }
        }
        closedir(d);
    }
    free(dir);
    free(base);
    return removed;
}
