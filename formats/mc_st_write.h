/* mc_st_write: streaming safetensors writer, and sharded sets with
 * model.safetensors.index.json (mlx-lm style).
 *
 * Declare every tensor (name, mc_type, shape) and optional __metadata__
 * pairs up front, call begin (the header is written: JSON via cJSON, keys in
 * declared order with "__metadata__" first, padded with spaces to a multiple
 * of 8 as the reference writer does), then stream each tensor's bytes in
 * declared order. Byte counts are checked exactly: a write may not run past
 * the current tensor, and commit refuses while any tensor is incomplete.
 * Data offsets follow declared order (unlike the reference writer, which
 * sorts by dtype alignment then name; readers accept any order).
 *
 * Output goes through mc_outfile: a temporary file renamed into place on
 * commit; free without commit removes it.
 *
 * Usage:
 *     mc_st_writer *w;
 *     mc_st_writer_new("out.safetensors", 0, &w, &err);
 *     mc_st_writer_meta(w, "format", "mlx", &err);
 *     mc_st_writer_add(w, "a.weight", MC_T_BF16, 2, (uint64_t[]){4096, 4096}, &err);
 *     mc_st_writer_begin(w, &err);
 *     mc_st_writer_write(w, rows, nbytes, &err);   (repeat, in declared order)
 *     mc_st_writer_commit(w, &err);
 *     mc_st_writer_free(w);                          (always)
 */
#ifndef MC_ST_WRITE_H
#define MC_ST_WRITE_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"

typedef struct mc_st_writer mc_st_writer;

/* Create path's temporary file. Existing path and !force: MC_ERR_EXISTS. */
int mc_st_writer_new(const char *path, int force, mc_st_writer **out, mc_error *err);
/* Add a "__metadata__" string pair (keys unique). Before begin. */
int mc_st_writer_meta(mc_st_writer *w, const char *key, const char *value, mc_error *err);
/* Declare the next tensor. type must be a safetensors dtype (mc_type with a
 * safetensors name); n_dims <= MC_ST_MAX_DIMS; dims < 2^53; F4/F6 shapes
 * must fill whole bytes. Names must be unique (checked at begin) and not
 * "__metadata__". Before begin. */
int mc_st_writer_add(mc_st_writer *w, const char *name, int type, uint32_t n_dims, const uint64_t *shape,
                     mc_error *err);
/* Write the header. */
int mc_st_writer_begin(mc_st_writer *w, mc_error *err);
/* Append n bytes of the current tensor (may not run past its end). */
int mc_st_writer_write(mc_st_writer *w, const void *data, size_t n, mc_error *err);
/* Write one whole tensor: name (NULL: not checked) must be the next tensor
 * and n its full size. */
int mc_st_writer_tensor(mc_st_writer *w, const char *name, const void *data, size_t n, mc_error *err);
/* Every byte written: flush, fsync, rename into place. */
int mc_st_writer_commit(mc_st_writer *w, mc_error *err);
/* Free; removes the temporary file unless committed. NULL is fine. */
void mc_st_writer_free(mc_st_writer *w);

/* Header length (the u64 prefix value) and total file size; valid after begin. */
uint64_t mc_st_writer_header_len(const mc_st_writer *w);
uint64_t mc_st_writer_file_size(const mc_st_writer *w);
/* Name of the tensor the next write belongs to, or NULL when all are done. */
const char *mc_st_writer_current(mc_st_writer *w);

/* ---- sharded sets ---- */

#define MC_ST_DEFAULT_SHARD_BYTES ((uint64_t)5 << 30) /* mlx-lm MAX_FILE_SIZE_GB = 5 */

typedef struct mc_st_set mc_st_set;

/* A set of shards in folder dir (created if absent; its parent must exist).
 * Tensors are split in declared order as mlx-lm's make_shards does: a
 * shard is closed when the next tensor would take its data past
 * max_shard_bytes (0: MC_ST_DEFAULT_SHARD_BYTES); a tensor larger than the
 * limit gets a shard of its own (no empty shards). Shards are named
 * model-00001-of-0000N.safetensors, or model.safetensors when there is only
 * one; model.safetensors.index.json (metadata.total_size, weight_map sorted
 * by name) is always written, as mlx-lm does. */
int mc_st_set_new(const char *dir, uint64_t max_shard_bytes, int force, mc_st_set **out, mc_error *err);
/* "__metadata__" pair written into every shard (mlx-lm writes format=mlx). */
int mc_st_set_meta(mc_st_set *s, const char *key, const char *value, mc_error *err);
/* metadata.total_parameters in the index (omitted unless set). */
void mc_st_set_total_parameters(mc_st_set *s, uint64_t n);
int mc_st_set_add(mc_st_set *s, const char *name, int type, uint32_t n_dims, const uint64_t *shape,
                  mc_error *err);
/* Plan the shards; refuses existing outputs unless force, and a set
 * without tensors. */
int mc_st_set_begin(mc_st_set *s, mc_error *err);
uint32_t mc_st_set_n_shards(const mc_st_set *s);
/* File name of shard i (after begin), or NULL. */
const char *mc_st_set_shard_name(const mc_st_set *s, uint32_t i);
/* Stream data in declared order, as for mc_st_writer_write/_tensor. Each
 * shard is committed (renamed into place) when its last byte arrives; until
 * the set commits it stays registered with mc_io_register_tmp, so
 * mc_io_cleanup_signal_safe removes it on SIGINT/SIGTERM as well. */
int mc_st_set_write(mc_st_set *s, const void *data, size_t n, mc_error *err);
int mc_st_set_tensor(mc_st_set *s, const char *name, const void *data, size_t n, mc_error *err);
/* Check completeness, commit the last shard and write the index. */
int mc_st_set_commit(mc_st_set *s, mc_error *err);
/* Free; when not committed, removes every shard this set already renamed
 * into place and every temporary file. NULL is fine. */
void mc_st_set_free(mc_st_set *s);

#endif
