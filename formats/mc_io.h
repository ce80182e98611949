/* mc_io: portable file I/O for libmconv (POSIX: Linux and macOS).
 *
 * Input files are read by offset (pread), never loaded whole. Output files
 * are written to a temporary file beside the destination and renamed into
 * place on commit, so an interrupted run never leaves a partial file at the
 * destination and never touches an existing one.
 */
#ifndef MC_IO_H
#define MC_IO_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"

typedef struct mc_file {
    int fd;
    uint64_t size;
    char *path;
} mc_file;

/* Open path read-only; fills f (size from fstat). Refuses directories. */
int mc_file_open(mc_file *f, const char *path, mc_error *err);
/* Read exactly n bytes at off; a short read (file shorter than off+n) is
 * MC_ERR_FORMAT "truncated". Overflow-checked. */
int mc_file_pread(const mc_file *f, uint64_t off, void *buf, size_t n, mc_error *err);
void mc_file_close(mc_file *f);

/* Process-wide counters (for --stats and benchmarks). */
uint64_t mc_io_bytes_read(void);
uint64_t mc_io_bytes_written(void);
void mc_io_count_read(uint64_t n);

/* Buffered sequential reader over an mc_file, used for headers. */
typedef struct mc_reader {
    const mc_file *f;
    uint64_t pos;       /* absolute offset of the next byte */
    uint64_t buf_start; /* file offset of buf[0] */
    size_t buf_len;
    size_t buf_cap;
    unsigned char *buf;
} mc_reader;

int mc_reader_init(mc_reader *r, const mc_file *f, uint64_t pos, size_t buf_cap, mc_error *err);
/* Read exactly n bytes; MC_ERR_FORMAT (naming the file and offset) at EOF. */
int mc_reader_read(mc_reader *r, void *dst, size_t n, mc_error *err);
int mc_reader_skip(mc_reader *r, uint64_t n, mc_error *err);
static inline uint64_t mc_reader_remaining(const mc_reader *r)
{
    return r->pos >= r->f->size ? 0 : r->f->size - r->pos;
}
void mc_reader_free(mc_reader *r);

/* ---- output ---- */

typedef struct mc_outfile {
    int fd;
    char *final_path;
    char *tmp_path;
    uint64_t size; /* bytes written so far (high-water mark) */
    int slot;      /* registry slot for signal cleanup, -1 if none */
} mc_outfile;

/* Create a temporary file beside final_path (".NAME.mconv-tmp.PID").
 * If final_path exists and !force: MC_ERR_EXISTS. */
int mc_outfile_create(mc_outfile *o, const char *final_path, int force, mc_error *err);
int mc_outfile_pwrite(mc_outfile *o, uint64_t off, const void *buf, size_t n, mc_error *err);
int mc_outfile_write(mc_outfile *o, const void *buf, size_t n, mc_error *err); /* append at o->size */
/* Extend with zeros up to size (sparse where the system allows). */
int mc_outfile_truncate(mc_outfile *o, uint64_t size, mc_error *err);
/* fsync, close and atomically rename over final_path. */
int mc_outfile_commit(mc_outfile *o, mc_error *err);
/* Close and remove the temporary file; final_path untouched. Safe to call
 * after commit (does nothing then) and on a zeroed struct. */
void mc_outfile_abort(mc_outfile *o);

/* Async-signal-safe: unlink every temporary file (and directory path
 * registered with mc_io_register_tmp) still open. For a SIGINT/SIGTERM handler. */
void mc_io_cleanup_signal_safe(void);
/* Register/unregister extra temporary paths (e.g. a temporary output
 * directory's files). Returns a slot or -1 when the registry is full. */
int mc_io_register_tmp(const char *path);
void mc_io_unregister_tmp(int slot);
/* Register a whole list of paths (a temporary folder tree: folders before
 * the files and folders inside them). The caller keeps paths (and every
 * string) alive and unchanged until unregistering. On a signal every path
 * is unlinked, then the list is rmdir'd from last to first. Returns a slot
 * or -1 when the registry is full. */
int mc_io_register_tmp_list(const char *const *paths, size_t n);
void mc_io_unregister_tmp_list(int slot);

/* Remove stale temporaries of final_path left by a killed run
 * (".NAME.mconv-tmp.PID" whose PID is no longer alive). Returns the number
 * removed. */
int mc_io_clean_stale(const char *final_path);

/* True if a and b name the same existing file (same device and inode). */
int mc_io_same_file(const char *a, const char *b);
int mc_io_is_dir(const char *path);
int mc_io_exists(const char *path);

/* Join dir and name with '/', malloc'd; NULL on allocation failure. */
char *mc_path_join(const char *dir, const char *name);

#endif
