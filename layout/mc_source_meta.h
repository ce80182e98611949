/* mc_source_meta: the source's metadata, carried verbatim into a .flash
 * file as zstd-compressed blobs (docs/FORMAT.md "Source metadata";
 * formats/mc_flash_meta.h reads them back).
 *
 * What is carried:
 * - a GGUF (each shard): "gguf-kv", named after the shard's file: a GGUF
 *   image with no tensors whose key/value records are the shard's bytes
 *   [kv_begin, kv_end) exactly, behind the shard's own header fields (magic,
 *   version, a tensor count of 0, its key count): every key, tokenizer
 *   arrays included, byte for byte, and a valid GGUF any GGUF reader parses;
 * - a safetensors source (each file): "safetensors-header", the file's
 *   first 8 + N bytes (the length and the JSON header, __metadata__ included);
 * - beside safetensors weights (the folder, or a single file's folder): every
 *   regular file named *.json, *.jinja, *.txt, *.model, *.tiktoken, *.md,
 *   *.yaml or *.yml ("file": config.json, tokenizer*.json,
 *   generation_config.json, chat templates, tokenizer.model, README...).
 * Each is read and compressed in pieces (bounded memory, whatever its size).
 */
#ifndef MC_SOURCE_META_H
#define MC_SOURCE_META_H

#include <stdint.h>
#include "mc_convert.h"
#include "mc_error.h"
#include "mc_io.h"

struct cJSON;

/* Write m's metadata blobs into out from region_off (16 KiB-aligned) on:
 * *region_end is where the region's padding ends (region_off when nothing
 * is carried, e.g. a model without a source file); *json the manifest's
 * "source_meta" object (NULL when nothing is carried). */
int mc_source_meta_write(const mc_model *m, mc_outfile *out, uint64_t region_off, uint64_t *region_end,
                         struct cJSON **json, mc_error *err);

/* What mc_source_meta_write would carry, without compressing: the same
 * "source_meta" object whose blobs have name, kind, raw_size and xxh3 as
 * written (offsets and sizes are not meaningful); NULL when nothing. */
int mc_source_meta_expect(const mc_model *m, struct cJSON **json, mc_error *err);

#endif
