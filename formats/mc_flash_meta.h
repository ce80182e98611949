/* mc_flash_meta: the source-metadata region of a .flash file (an extension
 * of format version 1, docs/FORMAT.md "Source metadata").
 *
 * The manifest key "source_meta" lists zstd-compressed blobs that carry the
 * source's metadata verbatim: every GGUF key/value record ("gguf-kv"), each
 * safetensors file's header ("safetensors-header") and the JSON/text files
 * beside the weights ("file"). Each blob is one zstd frame at an absolute
 * offset inside the 16 KiB-aligned region; its xxh3 is that of the
 * decompressed bytes. Readers that do not know the key ignore it.
 */
#ifndef MC_FLASH_META_H
#define MC_FLASH_META_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_io.h"

struct cJSON;

/* Largest blob decompressed into memory (dump): larger ones are refused. */
#define MC_FLASH_META_LOAD_MAX ((uint64_t)1 << 30)

typedef struct mc_flash_blob {
    const char *name;  /* points into the manifest: a file's base name */
    const char *kind;  /* "gguf-kv", "safetensors-header", "file" (others: unknown, still checked) */
    uint64_t offset;   /* absolute, inside the region */
    uint64_t size;     /* stored (compressed) bytes */
    uint64_t raw_size; /* decompressed bytes */
    uint64_t xxh3;     /* XXH3-64 of the decompressed bytes */
} mc_flash_blob;

typedef struct mc_flash_meta {
    uint64_t offset, nbytes; /* the region (16 KiB-aligned start, nbytes a multiple of 16384) */
    size_t n;
    mc_flash_blob *blobs;
} mc_flash_meta;

/* Parse manifest["source_meta"] of a file of file_size bytes: 0 with n = 0
 * when absent; MC_ERR_FORMAT naming what is wrong (a blob outside the
 * region or the file, a missing field, a region not aligned). */
int mc_flash_meta_parse(const struct cJSON *manifest, uint64_t file_size, mc_flash_meta *out, mc_error *err);
void mc_flash_meta_free(mc_flash_meta *m);

/* Decompress blob b of file f piece by piece (bounded memory), handing each
 * piece to sink (may be NULL); then check the size and XXH3: 0, or
 * MC_ERR_CHECKSUM (a corrupt frame, a size or checksum mismatch) naming the
 * blob. sink returning non-zero stops with that code. */
typedef int (*mc_flash_meta_sink)(void *ctx, const void *data, size_t n);
int mc_flash_meta_stream(const mc_file *f, const mc_flash_blob *b, mc_flash_meta_sink sink, void *ctx,
                         mc_error *err);
/* The whole decompressed blob (malloc'd, *n bytes, plus a NUL not counted):
 * raw_size must be at most MC_FLASH_META_LOAD_MAX. */
int mc_flash_meta_load(const mc_file *f, const mc_flash_blob *b, unsigned char **out, size_t *n, mc_error *err);

#endif
