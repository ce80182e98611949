/* mc_gguf: GGUF reader (versions 1, 2, 3; split files).
 *
 * Only the header (metadata and tensor infos) is read into memory; tensor
 * data is read by offset on demand. Every length and count from the file is
 * checked against the bytes left in the file before anything is allocated.
 */
#ifndef MC_GGUF_H
#define MC_GGUF_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_io.h"

#define MC_GGUF_MAX_DIMS 4
#define MC_GGUF_DEFAULT_ALIGNMENT 32

typedef enum mc_gguf_vtype {
    MC_GGUF_UINT8 = 0, MC_GGUF_INT8 = 1, MC_GGUF_UINT16 = 2, MC_GGUF_INT16 = 3,
    MC_GGUF_UINT32 = 4, MC_GGUF_INT32 = 5, MC_GGUF_FLOAT32 = 6, MC_GGUF_BOOL = 7,
    MC_GGUF_STRING = 8, MC_GGUF_ARRAY = 9, MC_GGUF_UINT64 = 10, MC_GGUF_INT64 = 11,
    MC_GGUF_FLOAT64 = 12, MC_GGUF_VTYPE_COUNT = 13
} mc_gguf_vtype;

/* A string from the file: not NUL-terminated in the file; here always
 * NUL-terminated (len excludes the NUL). May contain embedded NULs. */
typedef struct mc_gguf_str {
    uint64_t len;
    char *s;
} mc_gguf_str;

typedef struct mc_gguf_kv {
    mc_gguf_str key;
    mc_gguf_vtype type;      /* MC_GGUF_ARRAY for arrays */
    mc_gguf_vtype arr_type;  /* element type when type == ARRAY */
    uint64_t arr_n;          /* element count when type == ARRAY */
    union {
        uint64_t u64;        /* UINT8/16/32/64, BOOL (0/1) */
        int64_t i64;         /* INT8/16/32/64 */
        double f64;          /* FLOAT32/64 */
        mc_gguf_str str;     /* STRING */
    } v;
    /* ARRAY: arr_n elements. Numeric arrays: packed little-endian as in the
     * file (element size from mc_gguf_vtype_size). STRING arrays: an array
     * of mc_gguf_str. Nested arrays are refused. */
    void *arr;
} mc_gguf_kv;

typedef struct mc_gguf_tensor {
    mc_gguf_str name;
    int type;                          /* mc_type / GGML type id */
    uint32_t n_dims;
    uint64_t ne[MC_GGUF_MAX_DIMS];     /* GGML order: ne[0] fastest; unused = 1 */
    uint64_t offset;                   /* relative to the shard's data section */
    uint64_t nelements;
    uint64_t nbytes;
    uint32_t shard;                    /* index into mc_gguf.shards */
    uint64_t file_offset;              /* absolute offset in that shard's file */
} mc_gguf_tensor;

typedef struct mc_gguf_shard {
    mc_file file;
    uint32_t version;
    uint64_t data_offset; /* absolute start of the data section */
    uint64_t n_tensors;   /* tensors declared in this shard */
    uint64_t n_kv;
    uint64_t kv_begin;    /* the key/value records: bytes [kv_begin, kv_end) of the file, */
    uint64_t kv_end;      /*   right after the counts, up to the first tensor info */
} mc_gguf_shard;

typedef struct mc_gguf {
    char *path;            /* path as given */
    uint32_t version;      /* of the first shard */
    uint32_t alignment;
    uint64_t n_kv;         /* of the first shard (the model's metadata) */
    mc_gguf_kv *kv;
    uint64_t n_tensors;    /* all shards together */
    mc_gguf_tensor *tensors;
    uint32_t n_shards;
    mc_gguf_shard *shards;
    uint64_t header_bytes; /* bytes of header parsed (all shards) */
    uint64_t header_mem;   /* bytes allocated for the parsed header(s) */
    struct mc_gguf_priv *priv; /* reader internals (arena, name indexes) */
} mc_gguf;

/* Limits on hostile files (refused with a message naming the number). */
#define MC_GGUF_MAX_HEADER_MEM ((uint64_t)1 << 30)  /* total header memory */
#define MC_GGUF_MAX_STRING ((uint64_t)1 << 30)      /* one string's length */
#define MC_GGUF_MAX_ARRAY ((uint64_t)1 << 30)       /* one array's element count */
#define MC_GGUF_MAX_NAME 64                         /* tensor name length limit (GGML_MAX_NAME): len < 64 */
#define MC_GGUF_MAX_SHARDS 9999

/* The header memory limit in force (default MC_GGUF_MAX_HEADER_MEM). Setting
 * a non-zero value replaces it process-wide and returns the previous one;
 * 0 only queries. For tests and memory-tight tools. */
uint64_t mc_gguf_header_mem_limit(uint64_t new_limit);

/* Open a GGUF file. If it is one shard of a split set (split.count > 1 or a
 * name like NAME-00002-of-00005.gguf), every shard is found beside it and
 * opened; tensors of all shards appear in one table. */
int mc_gguf_open(const char *path, mc_gguf **out, mc_error *err);
/* Open exactly one file, never following split keys (for tools and tests). */
int mc_gguf_open_single(const char *path, mc_gguf **out, mc_error *err);
void mc_gguf_close(mc_gguf *g);

/* Parse a GGUF header held in memory (for fuzzing); data offsets are
 * checked against size. The file and memory paths share one parser. data
 * must outlive the result (mc_gguf_read copies from it). */
int mc_gguf_parse_mem(const void *data, size_t size, const char *name, mc_gguf **out, mc_error *err);

const mc_gguf_kv *mc_gguf_find_kv(const mc_gguf *g, const char *key);
const mc_gguf_tensor *mc_gguf_find_tensor(const mc_gguf *g, const char *name);

/* Typed getters: 0 on success; MC_ERR_NOTFOUND if absent; MC_ERR_FORMAT if
 * the value has an incompatible type (integers of any width convert when
 * the value fits). */
int mc_gguf_get_u64(const mc_gguf *g, const char *key, uint64_t *out);
int mc_gguf_get_i64(const mc_gguf *g, const char *key, int64_t *out);
int mc_gguf_get_f64(const mc_gguf *g, const char *key, double *out);
int mc_gguf_get_bool(const mc_gguf *g, const char *key, int *out);
/* Returns the string (NUL-terminated) or NULL if absent or not a string. */
const char *mc_gguf_get_str(const mc_gguf *g, const char *key);
/* "general.architecture" or NULL. */
const char *mc_gguf_arch(const mc_gguf *g);

/* Numeric array element i converted to double / int64 (0 on success). */
int mc_gguf_arr_f64(const mc_gguf_kv *kv, uint64_t i, double *out);
int mc_gguf_arr_i64(const mc_gguf_kv *kv, uint64_t i, int64_t *out);

size_t mc_gguf_vtype_size(mc_gguf_vtype t); /* 0 for STRING/ARRAY */
/* "u8", "i8", ..., "string", "array"; "?" for an undefined value. */
const char *mc_gguf_vtype_name(mc_gguf_vtype t);

/* If path's file name is NAME-NNNNN-of-MMMMM.gguf (llama.cpp's split naming,
 * 5 digits each), store the 1-based shard number and count and return the
 * length of the NAME prefix in path (>0); otherwise return 0. */
size_t mc_gguf_split_name(const char *path, uint32_t *no, uint32_t *count);
/* path of shard no (1-based) of count for prefix (malloc'd; NULL on OOM). */
char *mc_gguf_split_path(const char *prefix, size_t prefix_len, uint32_t no, uint32_t count);

/* Read n bytes of tensor t's data starting at byte off within the tensor. */
int mc_gguf_read(const mc_gguf *g, const mc_gguf_tensor *t, uint64_t off, void *buf, size_t n, mc_error *err);

#endif
