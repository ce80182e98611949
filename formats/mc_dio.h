/* mc_dio: direct (page-cache bypassing) reads, portable.
 *
 * Linux: open with O_DIRECT (offset, length and buffer address must be
 * multiples of the device's logical block size; the .flash reader only reads
 * 16 KiB-aligned ranges into 4 KiB-aligned buffers). macOS: F_NOCACHE on the
 * descriptor, and read-ahead off (F_RDAHEAD 0). Elsewhere O_DIRECT when the
 * system defines it. A file system that refuses direct I/O says EINVAL at
 * open or at the first read: both come back as MC_ERR_UNSUPPORTED so the
 * caller can fall back to buffered reads. */
#ifndef MC_DIO_H
#define MC_DIO_H

#include <stddef.h>
#include <stdint.h>

#include "mc_error.h"

/* Open path read-only for direct reads. *how is set to the mechanism
 * ("O_DIRECT", "F_NOCACHE"). Returns 0; MC_ERR_UNSUPPORTED (message: why)
 * when the system or file system offers no direct I/O for it; MC_ERR_IO when
 * the file cannot be opened at all. */
int mc_dio_open(const char *path, int *fd, const char **how, mc_error *err);

/* Read exactly n bytes at off into buf from fd (direct: opened by
 * mc_dio_open). EINTR and short reads are retried. A direct read the file
 * system refuses (EINVAL) is MC_ERR_UNSUPPORTED; other failures MC_ERR_IO;
 * end of file before n bytes MC_ERR_FORMAT (truncated). Messages name path
 * and the offset. */
int mc_dio_pread(int fd, int direct, const char *path, uint64_t off, void *buf, size_t n, mc_error *err);

/* Buffered descriptors: tell the kernel reads are random (no read-ahead;
 * POSIX_FADV_RANDOM where it exists). */
void mc_dio_advise_random(int fd);
/* Drop [off, off+len) of fd's file from the page cache (POSIX_FADV_DONTNEED;
 * clean pages only). Returns 0, or -1 where the system cannot. */
int mc_dio_drop_cache(int fd, uint64_t off, uint64_t len);

/* n bytes rounded up to `align` (a power of two >= sizeof(void *)), aligned
 * to `align`; NULL when out of memory or n overflows. Free with free(). */
void *mc_dio_alloc(size_t n, size_t align);

/* TEST ONLY: make mc_dio_open (at_open) or every direct mc_dio_pread
 * (at_read) fail as a file system refusing direct I/O does (EINVAL). */
void mc_dio_test_refuse(int at_open, int at_read);

#endif
