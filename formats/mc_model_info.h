/* mc_model_info: a one-screen summary of a checkpoint (for `mconv inspect`).
 *
 * mc_info_open detects the input's format and fills an mc_info through that
 * format's summary function (one per format: GGUF, safetensors file or
 * folder; new formats add one function and one row in the detection table in
 * mc_model_info.c). The summary is plain data; the CLI prints it. Nothing
 * here prints.
 */
#ifndef MC_MODEL_INFO_H
#define MC_MODEL_INFO_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"

struct mc_gguf;
struct mc_st;

/* One row of the tensor type histogram. */
typedef struct mc_info_type {
    int type;          /* mc_type */
    uint64_t count;    /* tensors of this type */
    uint64_t params;   /* elements */
    uint64_t bytes;    /* stored bytes */
} mc_info_type;

/* A hyperparameter (label and value as text, e.g. "layers", "32"). */
typedef struct mc_info_field {
    char *label;
    char *value;
} mc_info_field;

typedef struct mc_info {
    char *path;
    char *format;            /* "GGUF", "safetensors", "safetensors folder" */
    char *version;           /* "3" for GGUF v3; NULL if the format has none */
    char *arch;              /* general.architecture / model_type; NULL if unknown */
    char *name;              /* general.name; NULL if absent */
    uint32_t n_files;        /* files read (shards) */
    uint64_t file_bytes;     /* total size of those files */
    uint64_t n_tensors;
    uint64_t n_params;       /* total element count */
    uint64_t tensor_bytes;   /* total stored tensor bytes */
    size_t n_types;
    mc_info_type *types;     /* by type id */
    /* Main hyperparameters; -1 when not known. */
    int64_t layers, heads, kv_heads, experts, experts_used, context, hidden, ffn, vocab;
    size_t n_extra;
    mc_info_field *extra;    /* further facts worth a line (rope base, head dim, ...) */
    char *tokenizer;         /* tokenizer kind ("gpt2", "llama", "BPE", ...) or NULL */
    int64_t tokenizer_vocab; /* tokens in the tokenizer, -1 if unknown */
    char *tokenizer_files;   /* folders: tokenizer files present, space-separated; NULL if none */
    char *tokenizer_export;  /* GGUF: what a conversion makes of the tokenizer (mc_tokenizer_kind) */
    char *file_type;         /* GGUF general.file_type name ("MOSTLY_Q4_K_M"); NULL if absent */
    char *quantization;      /* MLX quantization ("bits=4 group_size=64"); NULL if none */
    size_t n_warnings;
    char **warnings;
} mc_info;

/* Detect the format of path (file or folder) and summarise it. */
int mc_info_open(const char *path, mc_info **out, mc_error *err);
void mc_info_free(mc_info *info);

/* Per-format summaries of an already-open reader (info zeroed by the caller
 * through mc_info_new). */
mc_info *mc_info_new(void);
int mc_info_from_gguf(const struct mc_gguf *g, mc_info *info, mc_error *err);
int mc_info_from_st(const struct mc_st *st, mc_info *info, mc_error *err);

/* Overall bits per weight (tensor_bytes * 8 / n_params), 0 when empty. */
double mc_info_bpw(const mc_info *info);

/* llama.cpp's name of a general.file_type value (LlamaFileType without the
 * LLAMA_FTYPE_ prefix, e.g. 15 -> "MOSTLY_Q4_K_M"); NULL when unknown. */
const char *mc_gguf_file_type_name(uint64_t ft);

/* Format detection result for a path. */
typedef enum mc_format {
    MC_FMT_UNKNOWN = 0,
    MC_FMT_GGUF = 1,
    MC_FMT_SAFETENSORS = 2,      /* one .safetensors file */
    MC_FMT_SAFETENSORS_DIR = 3   /* checkpoint folder */
} mc_format;

/* Look at path's first bytes (or folder contents) and name its format;
 * MC_ERR_UNSUPPORTED (naming the file) when it is none mconv reads. */
int mc_format_detect(const char *path, mc_format *out, mc_error *err);

#endif
