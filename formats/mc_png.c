#include "mc_png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mc_io.h"

int mc_image_init(mc_image *im, uint32_t w, uint32_t h, unsigned char r, unsigned char g, unsigned char b,
                  mc_error *err)
{
    memset(im, 0, sizeof *im);
    if (!w || !h || w > MC_PNG_MAX_SIDE || h > MC_PNG_MAX_SIDE)
        return mc_error_set(err, MC_ERR_ARG, "image of %u x %u pixels: each side must be 1..%u", w, h, MC_PNG_MAX_SIDE);
    size_t n = (size_t)w * h * 3;
    if (!(im->rgb = malloc(n))) return mc_error_set(err, MC_ERR_NOMEM, "out of memory for a %u x %u image", w, h);
    im->w = w;
    im->h = h;
    for (size_t i = 0; i < n; i += 3) {
        im->rgb[i] = r;
        im->rgb[i + 1] = g;
        im->rgb[i + 2] = b;
    }
    return 0;
}

void mc_image_free(mc_image *im)
{
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

void mc_image_fill(mc_image *im, int64_t x, int64_t y, int64_t w, int64_t h, const unsigned char rgb[3])
{
    int64_t x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int64_t x1 = x + w > (int64_t)im->w ? (int64_t)im->w : x + w, y1 = y + h > (int64_t)im->h ? (int64_t)im->h : y + h;
    for (int64_t yy = y0; yy < y1; yy++)
        for (int64_t xx = x0; xx < x1; xx++) {
            unsigned char *p = im->rgb + ((size_t)yy * im->w + (size_t)xx) * 3;
            p[0] = rgb[0];
            p[1] = rgb[1];
            p[2] = rgb[2];
        }
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* length, type, data, crc32(type + data) at *pos */
static void chunk(unsigned char *buf, size_t *pos, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char *p = buf + *pos;
    be32(p, n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, p + 4, 4 + n);
    be32(p + 8 + n, (uint32_t)c);
    *pos += 12 + (size_t)n;
}

int mc_png_encode(const mc_image *im, unsigned char **out, size_t *len, mc_error *err)
{
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    *out = NULL;
    *len = 0;
    if (!im->rgb || !im->w || !im->h || im->w > MC_PNG_MAX_SIDE || im->h > MC_PNG_MAX_SIDE)
        return mc_error_set(err, MC_ERR_ARG, "png: no image or a bad size (%u x %u)", im->w, im->h);
    size_t stride = (size_t)im->w * 3 + 1, raw_n = stride * im->h;
    unsigned char *raw = malloc(raw_n);
    uLong zcap = compressBound((uLong)raw_n);
    unsigned char *buf = raw ? malloc(8 + 25 + 12 + (size_t)zcap + 12) : NULL;
    if (!raw || !buf) {
        free(raw);
        free(buf);
        return mc_error_set(err, MC_ERR_NOMEM, "png: out of memory");
    }
    for (uint32_t y = 0; y < im->h; y++) {
        raw[y * stride] = 0; /* filter: none */
        memcpy(raw + y * stride + 1, im->rgb + (size_t)y * im->w * 3, (size_t)im->w * 3);
    }
    size_t pos = 8;
    memcpy(buf, sig, 8);
    unsigned char ihdr[13];
    be32(ihdr, im->w);
    be32(ihdr + 4, im->h);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* filter method 0 */
    ihdr[12] = 0; /* no interlace */
    chunk(buf, &pos, "IHDR", ihdr, 13);
    /* IDAT: compressed straight after its 8-byte chunk head */
    uLongf zn = zcap;
    int zrc = compress2(buf + pos + 8, &zn, raw, (uLong)raw_n, MC_PNG_LEVEL);
    free(raw);
    if (zrc != Z_OK || zn > 0x7fffffffu) {
        free(buf);
        return mc_error_set(err, zrc == Z_MEM_ERROR ? MC_ERR_NOMEM : MC_ERR_ARG, "png: zlib compress2 failed (%d)", zrc);
    }
    /* the IDAT chunk around the data compress2 wrote in place */
    unsigned char *p = buf + pos;
    be32(p, (uint32_t)zn);
    memcpy(p + 4, "IDAT", 4);
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, p + 4, 4 + (uInt)zn);
    be32(p + 8 + zn, (uint32_t)c);
    pos += 12 + (size_t)zn;
    chunk(buf, &pos, "IEND", NULL, 0);
    *out = buf;
    *len = pos;
    return 0;
}

int mc_png_write(const mc_image *im, const char *path, int force, mc_error *err)
{
    unsigned char *png = NULL;
    size_t n = 0;
    mc_outfile o;
    memset(&o, 0, sizeof o);
    o.fd = -1;
    o.slot = -1;
    int rc = mc_png_encode(im, &png, &n, err);
    if (!rc) rc = mc_outfile_create(&o, path, force, err);
    if (!rc) rc = mc_outfile_pwrite(&o, 0, png, n, err);
    if (!rc) rc = mc_outfile_commit(&o, err);
    if (rc) mc_outfile_abort(&o);
    free(png);
    return rc;
}
