/* mc_convert: a source checkpoint (GGUF, safetensors file or folder, MLX
 * folder) seen as the tensors and config.json of an mlx-lm model.
 *
 * mc_convert_open maps names and shapes through the architecture's table
 * and records, per output tensor, a recipe (which source tensors, which row
 * ranges, which transform). Nothing is read until a tensor's rows are asked
 * for, and every read works on a row range, so no tensor ever has to be in
 * memory whole. All read functions are thread-safe (pread, no shared state).
 */
#ifndef MC_CONVERT_H
#define MC_CONVERT_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"

struct cJSON;
struct mc_gguf;
struct mc_st;

#define MC_MT_MAX_DIMS 4

typedef enum mc_role {
    MC_ROLE_PINNED = 0, /* embeddings, attention, SSM, norms, routers, shared experts, lm_head */
    MC_ROLE_FFN = 1,    /* dense FFN of one layer (gate/up/down), streamed per layer */
    MC_ROLE_EXPERT = 2  /* routed experts, stacked [E, out, in], streamed per expert */
} mc_role;

typedef enum mc_src_kind { MC_SRC_GGUF = 1, MC_SRC_SAFETENSORS = 2 } mc_src_kind;

/* One mlx-lm tensor to produce. */
typedef struct mc_mtensor {
    char *name;                     /* mlx-lm name, e.g. "model.layers.3.mlp.gate_proj.weight" */
    uint32_t n_dims;
    uint64_t shape[MC_MT_MAX_DIMS]; /* row-major; experts [E, out, in] */
    mc_role role;
    int layer;                      /* decoder layer, -1 for global tensors */
    int src_type;                   /* mc_type the values come from (the default float dtype) */
    uint8_t quantizable;            /* a weight mlx-lm quantizes (linear / embedding) */
    uint8_t quant_bits;             /* 0: the global --bits; else forced (8 for routers) */
    uint8_t src_bits;               /* --recipe source: the largest mc_type_src_bits of the source
                                       tensors it is made from (0: all float; MLX input: its bits) */
    uint8_t keep_dtype;             /* float dtype of the source kept under --dtype (mlx-lm's cast_predicate) */
    uint8_t passthrough;            /* already in final form (MLX-quantized input): copy bytes */
    int stored_type;                /* passthrough: the stored mc_type (U32, F16, BF16, F32) */
    uint8_t carry;                  /* the source blocks are already MLX's affine form (compressed-tensors
                                       INT4): repacked, not requantized, at 4 bits (docs/CONVERT.md) */
    uint8_t block_rows;             /* rows of whole source blocks of one type, taken as they are (no
                                       column map, transpose, reshape or value map): what --lossless
                                       can repack (mc_model_read_blocks reads them) */
    void *impl;                     /* convert-private recipe */
} mc_mtensor;

typedef struct mc_convert_opts {
    int keep_names;                 /* --keep-names: pass tensors through under source names */
    int drop_mtp;                   /* drop MTP/nextn layers (default 1) */
} mc_convert_opts;

typedef struct mc_model {
    mc_src_kind kind;
    char *input_path;
    struct mc_gguf *gguf;           /* GGUF source, else NULL */
    struct mc_st *st;               /* safetensors source, else NULL */
    char *arch;                     /* source architecture (gguf general.architecture / hf model_type) */
    char *model_type;               /* mlx-lm model_type */
    struct cJSON *config;           /* mlx-lm config.json (a "quantization" block only for MLX inputs) */
    struct cJSON *tokenizer;        /* what the source had (see docs/FORMAT.md) */
    size_t n_tensors;
    mc_mtensor *tensors;            /* deterministic order: global first, then by layer */
    int n_layers;
    int n_experts;                  /* 0 for dense models */
    int n_experts_per_tok;
    int mlx_bits, mlx_group_size;   /* MLX-quantized input: its quantization; else 0 */
    char **notices;                 /* human-readable notes (dropped MTP layers, fallbacks) */
    size_t n_notices;
    void *impl;
} mc_model;

int mc_convert_open(const char *input_path, const mc_convert_opts *opts, mc_model **out, mc_error *err);
void mc_convert_close(mc_model *m);

/* Rows are the last dimension: a tensor of shape [.., in] has
 * nelements / in rows; stacked experts [E, out, in] have E*out rows, expert
 * e being rows [e*out, (e+1)*out). Writes nrows*in floats to dst. */
int mc_model_read_f32(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows,
                      float *dst, mc_error *err);
/* Passthrough tensors: n raw bytes at byte offset off of the stored tensor. */
int mc_model_read_raw(const mc_model *m, const mc_mtensor *t, uint64_t off, void *dst, size_t n,
                      mc_error *err);
/* Lossless path: when rows of t are a plain selection of rows of one GGML
 * block-quantized source tensor (no arithmetic transform), write those rows'
 * raw blocks to dst (cap bytes) and set *type; else MC_ERR_UNSUPPORTED. */
int mc_model_read_blocks(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows,
                         void *dst, size_t cap, int *type, mc_error *err);

/* Names of supported architectures, comma-separated (for messages). */
const char *mc_convert_supported_archs(void);
const mc_mtensor *mc_model_find(const mc_model *m, const char *name);

#endif
