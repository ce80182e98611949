/* Internal side of the public .flash reader (include/mconv/flash.h): what
 * mconv's own tools (mconv bench, tests) need beyond the public API. */
#ifndef MC_FLASH_READER_INT_H
#define MC_FLASH_READER_INT_H

#include <stdint.h>

#include "mconv/flash.h"

struct mc_flash;

/* The parsed file underneath (formats/mc_flash.h). */
const struct mc_flash *mc_flash_reader_flash(const mc_flash_reader *r);

/* mc_flash_reader_read_experts, and lat_ns[i] = how long block i's read took
 * (ns; the read alone, without the checksum). */
int mc_flash_reader_read_experts_timed(mc_flash_reader *r, int layer, const uint32_t *ids, size_t k, void *dst,
                                       uint64_t *lat_ns, mc_error *err);

/* Drop [off, off+len) from the page cache (buffered reads only matter);
 * 0, or -1 where the system cannot (macOS). */
int mc_flash_reader_drop_cache(mc_flash_reader *r, uint64_t off, uint64_t len);

/* Monotonic clock in nanoseconds. */
uint64_t mc_flash_reader_now_ns(void);

#endif
