/* mc_plan: what becomes of each tensor of a model (layout independent).
 *
 * For every mlx-lm tensor of an mc_model the plan decides how it is stored
 * (MLX affine quantization, float, raw passthrough bytes, lossless repack)
 * and lists the output tensors it produces (weight, scales, biases) with
 * their mlx-lm names, stored dtypes, shapes and byte sizes. Every output
 * tensor is produced row by row: output k of source row r occupies bytes
 * [r*row_bytes[k], (r+1)*row_bytes[k]) of that output, so any row range can
 * be converted and written independently (see mc_plan_convert_rows).
 * The .flash writer (layout/mc_flash_write.h) and the other exports place
 * these outputs; this module knows nothing about offsets.
 */
#ifndef MC_PLAN_H
#define MC_PLAN_H

#include <stdint.h>
#include <stddef.h>
#include "mc_convert.h"
#include "mc_error.h"

struct cJSON;

typedef enum mc_pkind {
    MC_PK_FLOAT = 0,  /* stored in a float dtype (data only) */
    MC_PK_AFFINE = 1, /* MLX affine quantization: weight (U32), scales, biases */
    MC_PK_RAW = 2,    /* passthrough: source bytes copied as they are */
    MC_PK_REPACK = 3  /* lossless: GGML blocks repacked exactly (mc_quant_repack);
                         mx_mode: into MLX's mxfp4 mode (config.quantization
                         per-module {"group_size": 32, "bits": 4, "mode": "mxfp4"}) */
} mc_pkind;

enum { MC_PART_DATA = 0, MC_PART_SCALES = 1, MC_PART_BIASES = 2 };

/* A per-module bits override: modules whose path (the tensor name without
 * ".weight", e.g. "model.layers.3.mlp.gate") matches glob (fnmatch, no
 * flags: '*' crosses dots) get these bits, whatever --bits or the
 * converter's own choice (8-bit routers) says. The first matching rule wins. */
#define MC_PLAN_BITS_FOR_MAX 32
#define MC_PLAN_GLOB_MAX 160
typedef struct mc_plan_bits_for {
    char glob[MC_PLAN_GLOB_MAX];
    int bits;
} mc_plan_bits_for;

typedef struct mc_plan_opts {
    int bits;       /* 2,3,4,5,6,8 (default 4) */
    int group_size; /* 32, 64, 128 (default 64) */
    int dtype;      /* MC_T_F16/MC_T_BF16/MC_T_F32, or -1: the source's */
    int no_quant;   /* keep every weight in the float dtype */
    int lossless;   /* keep GGML source blocks that repack exactly (group size 32,
                       scales in the float dtype: the first of the --dtype (or
                       the source's), f16, f32 that represents them exactly) */
    int recipe;         /* mc_recipe_id (layout/mc_recipe.h): per-module bits beyond --bits
                           (recorded in the options as "recipe" when not uniform) */
    int requant_mxfp4;  /* MXFP4 source blocks (GGUF MXFP4, hub _blocks/_scales) are
                           requantized to affine at bits; default 0: carried
                           losslessly into MLX's "mxfp4" mode (recorded in the
                           options only when set) */
    size_t n_bits_for;  /* per-module overrides, in order (recorded in the options) */
    mc_plan_bits_for bits_for[MC_PLAN_BITS_FOR_MAX];
} mc_plan_opts;

/* Append an override "glob=bits" style pair: 0, or MC_ERR_ARG (too many,
 * glob too long or empty, bits not 2, 3, 4, 5, 6 or 8). */
int mc_plan_opts_add_bits_for(mc_plan_opts *o, const char *glob, int bits, mc_error *err);

void mc_plan_opts_default(mc_plan_opts *o);

typedef struct mc_pout {
    char *name;        /* mlx-lm name of the stored tensor */
    int dtype;         /* mc_type of the stored elements (U32, F16, BF16, F32) */
    uint32_t n_dims;
    uint64_t shape[MC_MT_MAX_DIMS]; /* full shape (stacked experts keep [E, ...]) */
    uint64_t nbytes;   /* whole tensor (all experts) */
    uint64_t row_bytes;/* bytes per source row */
    int part;          /* MC_PART_* */
} mc_pout;

typedef struct mc_pitem {
    const mc_mtensor *mt;
    mc_pkind kind;
    int bits, group_size;  /* MC_PK_AFFINE / MC_PK_REPACK */
    int float_type;        /* float dtype of data (FLOAT) or scales/biases (AFFINE) */
    uint64_t nrows, ncols; /* source rows (all experts) and row length */
    uint32_t n_experts;    /* MC_ROLE_EXPERT: E (rows per expert = nrows / E); else 1 */
    size_t n_out;
    mc_pout out[3];
    int order;             /* expert/ffn ordering key: gate 0, up 1, down 2, other 3 */
    int block_type;        /* MC_PK_REPACK: the source's GGML block type */
    int mx_mode;           /* MC_PK_REPACK into an MLX floating-point mode (MC_MX_MXFP4:
                              weight U32 and U8 e8m0 scales, no biases; n_out 2), else 0 */
} mc_pitem;

typedef struct mc_plan {
    mc_plan_opts opts;
    size_t n_items;
    mc_pitem *items;       /* the model's order */
    struct cJSON *quantization; /* the config "quantization" block; NULL when nothing is quantized */
} mc_plan;

/* Decide every tensor of m. Validates options (MC_ERR_ARG). */
int mc_plan_build(const mc_model *m, const mc_plan_opts *o, mc_plan **out, mc_error *err);
void mc_plan_free(mc_plan *p);

/* A deep copy of m->config with the plan's "quantization" (and the mirrored
 * "quantization_config") block; NULL on allocation failure. */
struct cJSON *mc_plan_config(const mc_plan *p, const mc_model *m);

/* A tensor shape as a JSON array of numbers (NULL when out of memory);
 * both writers' manifests and headers use it. */
struct cJSON *mc_plan_shape_json(const uint64_t *shape, uint32_t n);

/* The options as a JSON object (recorded in outputs so they can be re-run). */
struct cJSON *mc_plan_opts_json(const mc_plan_opts *o);
/* Parse what mc_plan_opts_json wrote. */
int mc_plan_opts_from_json(const struct cJSON *j, mc_plan_opts *o, mc_error *err);

/* Source access (default: the mc_model_* functions of mc_convert.h). Tests
 * can convert synthetic models through their own functions. */
typedef struct mc_source_ops {
    int (*read_f32)(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, float *dst,
                    mc_error *err);
    int (*read_raw)(const mc_model *m, const mc_mtensor *t, uint64_t off, void *dst, size_t n, mc_error *err);
    /* lossless only (may be NULL: --lossless then requantizes) */
    int (*read_blocks)(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, void *dst, size_t cap,
                       int *type, mc_error *err);
} mc_source_ops;

/* The default source ops (layout/mc_source_model.c). */
const mc_source_ops *mc_source_model_ops(void);

/* Scratch buffers for one converting thread. */
typedef struct mc_plan_scratch {
    float *f32;
    size_t f32_cap;      /* bytes */
    unsigned char *out[3];
    size_t out_cap[3];
    unsigned char *blocks;
    size_t blocks_cap;
    /* what the last mc_plan_convert_rows read (for mc_plan_measure_rows):
     * MC_PSRC_* */
    int src;
    float *aux[2];       /* mc_plan_measure_rows: dequantized blocks, stored values */
    size_t aux_cap[2];   /* bytes */
    /* when set, mc_plan_convert_rows measures affine rows itself as it
     * quantizes them (mc_qerr_affine_quantize: each run of groups from the
     * quantizer's codes, still in cache), adds them to *qerr and sets src to
     * MC_PSRC_MEASURED; mc_plan_measure_rows measures the rest */
    struct mc_qerr *qerr;
} mc_plan_scratch;
enum { MC_PSRC_NONE = 0, MC_PSRC_RAW = 1, MC_PSRC_F32 = 2, MC_PSRC_BLOCKS = 3, MC_PSRC_MEASURED = 4 };
void mc_plan_scratch_free(mc_plan_scratch *s);

/* Rows per chunk for it so that one chunk stays near chunk_bytes of f32. */
uint64_t mc_plan_chunk_rows(const mc_pitem *it, size_t chunk_bytes);

/* Row chunks of a whole plan, in plan order: item by item, expert by expert,
 * mc_plan_chunk_rows rows at a time. The cursor starts zeroed; the caller
 * serializes calls. */
typedef struct mc_plan_cursor {
    size_t ci;
    uint32_t ce;
    uint64_t cr;
} mc_plan_cursor;
typedef struct mc_plan_chunk {
    size_t item;
    uint32_t expert;
    uint64_t row, nrows; /* rows inside the expert */
} mc_plan_chunk;
/* The next chunk into *j: 1, or 0 when the plan is done. */
int mc_plan_next_chunk(const mc_plan *p, size_t chunk_bytes, mc_plan_cursor *c, mc_plan_chunk *j);

/* Convert source rows [row0, row0+nrows) of it: on success out[k] points at
 * nrows*row_bytes bytes of output k (inside s). */
int mc_plan_convert_rows(const mc_model *m, const mc_source_ops *ops, const mc_pitem *it, uint64_t row0,
                         uint64_t nrows, mc_plan_scratch *s, unsigned char *out[3], mc_error *err);

/* The quantization error of the rows the last mc_plan_convert_rows call on
 * s produced (out as it returned them), added to *q (quant/mc_qerr.h),
 * unless that call measured them already (s->qerr; pass the same q):
 * the stored form read back (affine codes with the stored scales and
 * biases, float elements, MLX mxfp4/nvfp4 values) against the values it was
 * made from: the f32 rows that call read, or for a lossless repack the
 * source blocks dequantized as ggml does. Nothing is read again. Raw
 * passthrough adds nothing (it is exact by construction: see
 * mc_plan_method). */
struct mc_qerr;
int mc_plan_measure_rows(const mc_pitem *it, uint64_t nrows, mc_plan_scratch *s, unsigned char *const out[3],
                         struct mc_qerr *q, mc_error *err);
/* How an item is stored, as the reports name it: "affine", "float",
 * "repack" or "passthrough". */
const char *mc_plan_method(const mc_pitem *it);

#endif
