/* Direct reads (mc_dio.h). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include "mc_dio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "mc_io.h"

static _Atomic int g_refuse_open, g_refuse_read;

void mc_dio_test_refuse(int at_open, int at_read)
{
    atomic_store(&g_refuse_open, at_open);
    atomic_store(&g_refuse_read, at_read);
}

int mc_dio_open(const char *path, int *fd, const char **how, mc_error *err)
{
    *fd = -1;
    *how = "";
    if (atomic_load(&g_refuse_open))
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: direct I/O refused by the file system at open (%s)", path,
                            strerror(EINVAL));
#if defined(__APPLE__)
    int d = open(path, O_RDONLY | O_CLOEXEC);
    if (d < 0) return mc_error_set(err, MC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fcntl(d, F_NOCACHE, 1) == -1) {
        int e = errno;
        close(d);
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: F_NOCACHE refused (%s)", path, strerror(e));
    }
    (void)fcntl(d, F_RDAHEAD, 0); /* expert reads are random: read-ahead only wastes bandwidth */
    *fd = d;
    *how = "F_NOCACHE";
    return 0;
#elif defined(O_DIRECT)
    int d = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (d < 0) {
        int e = errno;
        if (e == EINVAL || e == EOPNOTSUPP)
            return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: O_DIRECT refused by the file system at open (%s)",
                                path, strerror(e));
        return mc_error_set(err, MC_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = d;
    *how = "O_DIRECT";
    return 0;
#else
    (void)fd;
    return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: this system has no direct I/O (no O_DIRECT or F_NOCACHE)",
                        path);
#endif
}

int mc_dio_pread(int fd, int direct, const char *path, uint64_t off, void *buf, size_t n, mc_error *err)
{
    unsigned char *p = buf;
    size_t done = 0;
    if (direct && atomic_load(&g_refuse_read))
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "%s: direct read at offset %llu refused by the file system (%s)",
                            path, (unsigned long long)off, strerror(EINVAL));
    while (done < n) {
        /* 1 GiB at a time (Linux returns at most 2 GiB - 4 KiB per call);
         * a multiple of 16 KiB, so direct reads stay aligned */
        size_t chunk = n - done;
        if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;
        ssize_t r = pread(fd, p + done, chunk, (off_t)(off + done));
        if (r < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (direct && e == EINVAL)
                return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                    "%s: direct read at offset %llu refused by the file system (%s)", path,
                                    (unsigned long long)(off + done), strerror(e));
            return mc_error_set(err, MC_ERR_IO, "%s: read failed at offset %llu: %s", path,
                                (unsigned long long)(off + done), strerror(e));
        }
        if (r == 0)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: truncated: file ended at offset %llu", path,
                                (unsigned long long)(off + done));
        done += (size_t)r;
    }
    mc_io_count_read(n);
    return 0;
}

void mc_dio_advise_random(int fd)
{
#if defined(POSIX_FADV_RANDOM) && !defined(__APPLE__)
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
#else
    (void)fd;
#endif
}

int mc_dio_drop_cache(int fd, uint64_t off, uint64_t len)
{
#if defined(POSIX_FADV_DONTNEED) && !defined(__APPLE__)
    return posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED) == 0 ? 0 : -1;
#else
    (void)fd;
    (void)off;
    (void)len;
    return -1;
#endif
}

void *mc_dio_alloc(size_t n, size_t align)
{
    void *p = NULL;
    if (n == 0) n = 1;
    if (n > SIZE_MAX - align) return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (posix_memalign(&p, align, n) != 0) return NULL;
    return p;
}
