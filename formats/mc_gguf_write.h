/* mc_gguf_write: streaming GGUF writer (versions 1, 2, 3).
 *
 * Order of use: create; add metadata (any order) and tensor infos (name,
 * type, shape); then stream every tensor's bytes in the order the tensors
 * were added (any chunk sizes; padding to the alignment is written between
 * tensors); commit. The header goes out on the first data call (or commit).
 * Tensor data is never held: each chunk goes straight to the output file,
 * which is a temporary beside the destination until commit renames it into
 * place (mc_outfile). Abort, or any failed call, leaves no file behind.
 *
 *     mc_gguf_writer *w;
 *     mc_gguf_writer_create(&w, "out.gguf", NULL, &err);
 *     mc_gguf_writer_add_str(w, "general.architecture", "llama", &err);
 *     uint64_t ne[2] = { 256, 32 };
 *     mc_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", MC_T_Q4_K, 2, ne, &err);
 *     mc_gguf_writer_write(w, bytes, nbytes, &err);   // repeat as needed
 *     mc_gguf_writer_commit(w, &err);                 // frees w
 *
 * Every call returns 0 or an mc_code with err set; after a failure the only
 * valid call is mc_gguf_writer_abort (commit also refuses and frees).
 */
#ifndef MC_GGUF_WRITE_H
#define MC_GGUF_WRITE_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_gguf.h"

typedef struct mc_gguf_writer mc_gguf_writer;

typedef struct mc_gguf_write_opts {
    uint32_t version;   /* 1, 2 or 3; 0 means 3 */
    uint32_t alignment; /* 0 means 32; other values also add general.alignment (u32) */
    int force;          /* overwrite an existing destination */
    /* Tests only: build hostile files. Tensor infos come from
     * mc_gguf_writer_add_tensor_raw (any type id, dims, offset, duplicate
     * names); data written with mc_gguf_writer_write is appended to the data
     * section as given, with no per-tensor accounting or padding; the
     * declared counts may be overridden. Duplicate keys are allowed. */
    int unchecked;
    uint64_t fake_n_tensors; /* unchecked: when non-zero, the count written */
    uint64_t fake_n_kv;      /* unchecked: when non-zero, the count written */
} mc_gguf_write_opts;

/* opts may be NULL (version 3, alignment 32, no overwrite). */
int mc_gguf_writer_create(mc_gguf_writer **out, const char *path, const mc_gguf_write_opts *opts, mc_error *err);

/* ---- metadata (before the first data call) ---- */
int mc_gguf_writer_add_u8(mc_gguf_writer *w, const char *key, uint8_t v, mc_error *err);
int mc_gguf_writer_add_i8(mc_gguf_writer *w, const char *key, int8_t v, mc_error *err);
int mc_gguf_writer_add_u16(mc_gguf_writer *w, const char *key, uint16_t v, mc_error *err);
int mc_gguf_writer_add_i16(mc_gguf_writer *w, const char *key, int16_t v, mc_error *err);
int mc_gguf_writer_add_u32(mc_gguf_writer *w, const char *key, uint32_t v, mc_error *err);
int mc_gguf_writer_add_i32(mc_gguf_writer *w, const char *key, int32_t v, mc_error *err);
int mc_gguf_writer_add_u64(mc_gguf_writer *w, const char *key, uint64_t v, mc_error *err);
int mc_gguf_writer_add_i64(mc_gguf_writer *w, const char *key, int64_t v, mc_error *err);
int mc_gguf_writer_add_f32(mc_gguf_writer *w, const char *key, float v, mc_error *err);
int mc_gguf_writer_add_f64(mc_gguf_writer *w, const char *key, double v, mc_error *err);
int mc_gguf_writer_add_bool(mc_gguf_writer *w, const char *key, int v, mc_error *err);
int mc_gguf_writer_add_str(mc_gguf_writer *w, const char *key, const char *v, mc_error *err);
/* A string of len bytes (may contain NULs). */
int mc_gguf_writer_add_strn(mc_gguf_writer *w, const char *key, const char *v, uint64_t len, mc_error *err);
/* Array of n numeric or bool elements of type et (not STRING/ARRAY), given
 * as a packed native array (uint8_t for BOOL, float for FLOAT32, ...). */
int mc_gguf_writer_add_arr(mc_gguf_writer *w, const char *key, mc_gguf_vtype et, const void *data, uint64_t n,
                           mc_error *err);
/* Array of n strings; lens may be NULL (NUL-terminated strings). */
int mc_gguf_writer_add_arr_str(mc_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                               uint64_t n, mc_error *err);
/* Copy a key/value as read by mc_gguf (any type, arrays included). */
int mc_gguf_writer_copy_kv(mc_gguf_writer *w, const mc_gguf_kv *kv, mc_error *err);

/* ---- tensor infos (before the first data call) ---- */
/* type: a GGML type id valid in GGUF; 1 <= n_dims <= 4; ne[0] a multiple of
 * the type's block size. Offsets are assigned in order, padded. */
int mc_gguf_writer_add_tensor(mc_gguf_writer *w, const char *name, int type, uint32_t n_dims, const uint64_t *ne,
                              mc_error *err);
/* unchecked mode only: write exactly these fields. */
int mc_gguf_writer_add_tensor_raw(mc_gguf_writer *w, const char *name, uint64_t name_len, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, uint64_t offset, mc_error *err);

/* ---- data ---- */
/* Write the header now (otherwise done by the first data call or commit). */
int mc_gguf_writer_write_header(mc_gguf_writer *w, mc_error *err);
/* Append n bytes of tensor data: fills the current tensor, then the next
 * (a chunk may span tensors). Refuses bytes beyond the last tensor. */
int mc_gguf_writer_write(mc_gguf_writer *w, const void *buf, size_t n, mc_error *err);
/* Like write, but n zero bytes left as a hole in the file (sparse where the
 * file system allows); for benchmarks and tests that need big files fast. */
int mc_gguf_writer_skip(mc_gguf_writer *w, uint64_t n, mc_error *err);
/* Absolute file offset of the data section (after the header is written). */
uint64_t mc_gguf_writer_data_offset(const mc_gguf_writer *w);
/* Bytes of header written (0 before). */
uint64_t mc_gguf_writer_header_size(const mc_gguf_writer *w);

/* Check every tensor got all its bytes, write the last padding, fsync and
 * rename into place. Frees w whether it succeeds or not. */
int mc_gguf_writer_commit(mc_gguf_writer *w, mc_error *err);
/* Discard: remove the temporary file, free w. NULL is fine. */
void mc_gguf_writer_abort(mc_gguf_writer *w);

#endif
