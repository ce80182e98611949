/* mc_safetensors: safetensors reader (one file, or a checkpoint folder).
 *
 * Checks as huggingface/safetensors makes them: header size limit (100 MB),
 * header is UTF-8 holding one JSON object (trailing whitespace allowed, so
 * space-padded headers are fine), dtype known, offsets [begin,end) with
 * begin <= end, contiguous from 0 with no gaps or overlaps once sorted by
 * offset (the reference sorts; key order in the JSON is free), each tensor
 * exactly nbytes(dtype, shape) (overflow-checked; F4/F6 tensors must fill
 * whole bytes), header + data == file size. A header length that is not a
 * multiple of 8 (older writers) is accepted. "__metadata__" must be an
 * object of string values (or null). Duplicate keys anywhere that matters
 * (tensor names, "__metadata__", dtype/shape/data_offsets of one tensor,
 * metadata keys) are refused.
 *
 * Numbers (shape dims, offsets) are read exactly: every number in the header
 * must be written as plain decimal digits (no sign, fraction or exponent,
 * as the reference's usize fields demand) and be below 2^53, so that the
 * double cJSON parses it into is exact. Larger values are refused with a
 * message naming the tensor and the value (2^53 bytes is 8 PiB).
 *
 * Folders: model.safetensors.index.json (weight_map) when present, every
 * shard it names opened once; else model.safetensors; else every
 * model*.safetensors (as mlx-lm globs). An index entry naming a missing
 * shard or a tensor absent from the named shard is an error. A tensor that
 * a shard holds but the index does not name is ACCEPTED (kept, counted in
 * n_unindexed): the shard's own header is authoritative for its contents,
 * and loaders (transformers, mlx-lm) load every tensor of each shard. A
 * tensor name held by two shards is an error.
 *
 * config.json (and the list of tokenizer files) are taken from the folder,
 * or from the folder holding a single file.
 */
#ifndef MC_SAFETENSORS_H
#define MC_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_io.h"

#define MC_ST_MAX_DIMS 8
#define MC_ST_HEADER_LIMIT (100u * 1000u * 1000u)
/* Largest offset or dimension read from a header: 2^53 - 1. */
#define MC_ST_NUM_LIMIT ((uint64_t)1 << 53)
/* Largest model.safetensors.index.json / config.json read. */
#define MC_ST_JSON_LIMIT (100u * 1000u * 1000u)

typedef struct mc_st_tensor {
    char *name;
    int type;                     /* mc_type (MC_T_BF16, MC_T_F8_E4M3, ...) */
    uint32_t n_dims;
    uint64_t shape[MC_ST_MAX_DIMS]; /* row-major: shape[0] outermost */
    uint64_t nelements;
    uint64_t nbytes;
    uint64_t file_offset;         /* absolute offset in its file */
    uint32_t file;                /* index into mc_st.files */
    uint64_t data_begin;          /* data_offsets[0] as written (relative to data start) */
    uint8_t indexed;              /* named by the folder's index (1 when there is no index) */
} mc_st_tensor;

typedef struct mc_st_meta {       /* "__metadata__" string pairs */
    char *key;
    char *value;
} mc_st_meta;

typedef struct mc_st_file {
    mc_file file;                 /* fd -1 for an in-memory image */
    uint64_t header_len;          /* the u64 length prefix */
    uint64_t data_offset;         /* 8 + header_len */
    char *name;                   /* base name ("model-00001-of-00002.safetensors") */
    uint64_t first_tensor;        /* this file's tensors: tensors[first_tensor ..  */
    uint64_t n_tensors;           /*   first_tensor + n_tensors) */
} mc_st_file;

/* Tokenizer-related files recognised beside a checkpoint, in this order. */
#define MC_ST_TOKENIZER_FILES { "tokenizer.json", "tokenizer_config.json", \
    "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt", \
    "generation_config.json", "added_tokens.json", "chat_template.jinja" }

typedef struct mc_st {
    char *path;                   /* file or folder as given */
    int is_dir;
    uint32_t n_files;
    mc_st_file *files;
    uint64_t n_tensors;
    mc_st_tensor *tensors;        /* in file order, then by offset */
    uint64_t n_meta;
    mc_st_meta *meta;             /* __metadata__ of the first file */
    struct cJSON *config;         /* config.json of the folder, or NULL */
    char *dir;                    /* folder holding config/tokenizer files */
    uint64_t header_bytes;        /* sum over files of 8 + header_len */
    /* --- additions --- */
    uint64_t data_bytes;          /* sum of tensor nbytes */
    char *index_path;             /* model.safetensors.index.json used, or NULL */
    struct cJSON *index;          /* that index parsed, or NULL */
    uint64_t n_unindexed;         /* tensors in shards that the index does not name */
    uint32_t n_tokenizer_files;
    char **tokenizer_files;       /* base names present in dir (MC_ST_TOKENIZER_FILES order) */
    const unsigned char *mem;     /* mc_st_parse_mem: the caller's image (not owned) */
    uint64_t *by_name;            /* tensor indices sorted by name (mc_st_find) */
} mc_st;

/* Open a .safetensors file, or a folder holding model.safetensors or
 * model.safetensors.index.json (+ shards), plus config.json. A folder's
 * index naming a missing file or tensor is an error naming it. */
int mc_st_open(const char *path, mc_st **out, mc_error *err);
void mc_st_close(mc_st *st);

/* Parse one safetensors image held in memory (for fuzzing and tests). The
 * image must stay alive while the result is used (mc_st_read reads it). */
int mc_st_parse_mem(const void *data, size_t size, const char *name, mc_st **out, mc_error *err);

/* Check a model.safetensors.index.json text held in memory (for fuzzing):
 * JSON object with a "weight_map" object of string values naming shard files
 * (no absolute paths, no ".." parts). On success *n_entries and *n_shards
 * (distinct files) are set when non-NULL. */
int mc_st_index_check_mem(const void *data, size_t size, const char *name,
                          uint64_t *n_entries, uint64_t *n_shards, mc_error *err);

const mc_st_tensor *mc_st_find(const mc_st *st, const char *name);
/* Read n bytes at offset off within tensor t (off + n <= t->nbytes). */
int mc_st_read(const mc_st *st, const mc_st_tensor *t, uint64_t off, void *buf, size_t n, mc_error *err);
/* __metadata__ value or NULL. */
const char *mc_st_meta_get(const mc_st *st, const char *key);
/* The header length in the 8-byte little-endian prefix of a safetensors
 * image of size bytes (prefix: its first 8 bytes when size >= 8): an error
 * naming path when the image is too short, the length is over
 * MC_ST_HEADER_LIMIT or runs past the end. */
int mc_st_header_len(const void *prefix, uint64_t size, const char *path, uint64_t *hlen, mc_error *err);
/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int mc_st_utf8_valid(const void *s, size_t n);
/* Path of the file holding t (for messages). */
const char *mc_st_tensor_path(const mc_st *st, const mc_st_tensor *t);

#endif
