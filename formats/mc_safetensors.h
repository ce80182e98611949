/* mc_safetensors: safetensors reader (one file, or a checkpoint folder).
 *
 * Checks as huggingface/safetensors makes them: header size limit (100 MB),
 * well-formed JSON object, dtype known, offsets [begin,end) sorted,
 * contiguous from 0 and non-overlapping, each tensor exactly
 * nbytes(dtype, shape), header + data == file size. A header length that is
 * not a multiple of 8 is accepted. 64-bit offsets are read exactly (not via
 * cJSON's int valueint).
 */
#ifndef MC_SAFETENSORS_H
#define MC_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_io.h"

#define MC_ST_MAX_DIMS 8
#define MC_ST_HEADER_LIMIT (100u * 1000u * 1000u)

typedef struct mc_st_tensor {
    char *name;
    int type;                     /* mc_type (MC_T_BF16, MC_T_F8_E4M3, ...) */
    uint32_t n_dims;
    uint64_t shape[MC_ST_MAX_DIMS]; /* row-major: shape[0] outermost */
    uint64_t nelements;
    uint64_t nbytes;
    uint64_t file_offset;         /* absolute offset in its file */
    uint32_t file;                /* index into mc_st.files */
} mc_st_tensor;

typedef struct mc_st_meta {       /* "__metadata__" string pairs */
    char *key;
    char *value;
} mc_st_meta;

typedef struct mc_st_file {
    mc_file file;
    uint64_t header_len;          /* the u64 length prefix */
    uint64_t data_offset;         /* 8 + header_len */
} mc_st_file;

typedef struct mc_st {
    char *path;                   /* file or folder as given */
    int is_dir;
    uint32_t n_files;
    mc_st_file *files;
    uint64_t n_tensors;
    mc_st_tensor *tensors;        /* in file order, then by offset */
    uint64_t n_meta;
    mc_st_meta *meta;             /* __metadata__ of the first file */
    struct cJSON *config;         /* config.json of a folder, or NULL */
    char *dir;                    /* folder holding config/tokenizer files */
    uint64_t header_bytes;
} mc_st;

/* Open a .safetensors file, or a folder holding model.safetensors or
 * model.safetensors.index.json (+ shards), plus config.json. A folder's
 * index naming a missing file or tensor is an error naming it. */
int mc_st_open(const char *path, mc_st **out, mc_error *err);
void mc_st_close(mc_st *st);

/* Parse one safetensors image held in memory (for fuzzing). */
int mc_st_parse_mem(const void *data, size_t size, const char *name, mc_st **out, mc_error *err);

const mc_st_tensor *mc_st_find(const mc_st *st, const char *name);
int mc_st_read(const mc_st *st, const mc_st_tensor *t, uint64_t off, void *buf, size_t n, mc_error *err);
/* __metadata__ value or NULL. */
const char *mc_st_meta_get(const mc_st *st, const char *key);

#endif
