/* mc_png: a deterministic PNG writer (8-bit RGB, no interlace) with zlib.
 *
 * The bytes depend only on the pixels: signature, IHDR, one IDAT (zlib
 * stream at a fixed compression level, every scanline with filter 0),
 * IEND; no time, text or gamma chunks. Chunk CRCs are zlib's crc32. */
#ifndef MC_PNG_H
#define MC_PNG_H

#include <stddef.h>
#include <stdint.h>
#include "mc_error.h"

#define MC_PNG_LEVEL 6 /* zlib compression level (fixed: same bytes every run) */
#define MC_PNG_MAX_SIDE 16384

typedef struct mc_image {
    uint32_t w, h;
    unsigned char *rgb; /* w*h*3 bytes, row-major, top row first */
} mc_image;

/* Allocate a w x h image filled with (r, g, b). MC_ERR_ARG for a side of 0
 * or above MC_PNG_MAX_SIDE, MC_ERR_NOMEM. */
int mc_image_init(mc_image *im, uint32_t w, uint32_t h, unsigned char r, unsigned char g, unsigned char b,
                  mc_error *err);
void mc_image_free(mc_image *im);
/* Fill the rectangle [x, x+w) x [y, y+h), clipped to the image. */
void mc_image_fill(mc_image *im, int64_t x, int64_t y, int64_t w, int64_t h, const unsigned char rgb[3]);

/* Encode im as PNG into *out (malloc'd, *len bytes). */
int mc_png_encode(const mc_image *im, unsigned char **out, size_t *len, mc_error *err);
/* Encode and write to path (temporary name, renamed when complete; an
 * existing file is replaced only with force). */
int mc_png_write(const mc_image *im, const char *path, int force, mc_error *err);

#endif
