/* mc_export: a plan written as a model folder for other engines.
 *
 * Two layouts (docs/FORMAT.md, sections "mac-code folder" and "mlx-lm
 * folder"):
 *   MC_EXPORT_MACCODE  the folder walter-grace/mac-code's flash-streaming and
 *                      expert-sniper engines read: pinned.safetensors,
 *                      ffn/layer_NN.bin ("flash_aligned_v1"),
 *                      experts/layer_NN.bin ("moe_flash_v1"), config.json
 *                      with a "streaming" block;
 *   MC_EXPORT_MLX      a plain mlx-lm folder: model(-0000N-of-0000M).safetensors
 *                      shards, model.safetensors.index.json, config.json.
 * Both carry the source's tokenizer files (copied from a safetensors folder,
 * or built from a GGUF's keys).
 *
 * mc_export_build places every output tensor of the plan (file, offset) and
 * renders every header before anything is written; mc_export_write then
 * converts row chunks on N threads and pwrites them at their offsets, so the
 * folder is byte-identical for any thread count and memory stays bounded
 * (one row chunk per thread). The folder is written as
 * ".NAME.mconv-tmp.PID" beside OUTDIR (registered for signal cleanup) and
 * renamed into place when complete; an existing OUTDIR is replaced only with
 * force (old one renamed aside, new one renamed in, old one removed).
 * A mac-code folder's files and forms depend on the engines it is written
 * for (mc_maccode.h).
 */
#ifndef MC_EXPORT_H
#define MC_EXPORT_H

#include <stdint.h>
#include <stddef.h>
#include "mc_convert.h"
#include "mc_error.h"
#include "mc_flash_write.h"
#include "mc_plan.h"

typedef enum mc_export_kind { MC_EXPORT_MACCODE = 1, MC_EXPORT_MLX = 2 } mc_export_kind;

typedef struct mc_export_file {
    char *name;          /* path inside OUTDIR, e.g. "ffn/layer_00.bin" */
    uint64_t size;       /* final size in bytes */
    unsigned char *head; /* bytes at offset 0: a header, or a whole JSON file */
    size_t head_len;
    char *copy_from;     /* copied verbatim from this file (tokenizer files), or NULL */
    size_t n_tensors;    /* output tensors placed in this file */
    /* a second form of file clone_src's data (mac-code ffn/layer_NN.safetensors
     * beside ffn_aligned/layer_NN.bin): a copy-on-write clone of it where the
     * file system can (clonefile, FICLONE), else its ranges copied; then head
     * written over the first head_len bytes */
    int clone;
    size_t clone_src;
    size_t n_ranges;
    uint64_t (*ranges)[2]; /* [offset, length] of the data to copy when cloning fails */
} mc_export_file;

typedef struct mc_export_place {
    size_t file;     /* index into files */
    uint64_t base;   /* offset of the tensor (of expert 0) in that file */
    uint64_t estride;/* experts: distance between expert e and e+1; else 0 */
} mc_export_place;

/* What writing did (filled by mc_export_write). */
typedef struct mc_export_stats {
    size_t n_cloned, n_copied;   /* clone files: shared with their source / copied */
    uint64_t bytes_copied;
} mc_export_stats;

typedef struct mc_export {
    mc_export_kind kind;
    uint32_t engines;            /* mac-code: the engines written for (mc_maccode.h mask); 0: every form */
    const mc_plan *plan;
    size_t n_files;
    mc_export_file *files;
    size_t n_dirs;
    char **dirs;                 /* sub-folders to create ("ffn", "experts") */
    mc_export_place (*place)[3]; /* per plan item and output */
    uint64_t tensor_bytes;       /* bytes of tensor data to convert */
    uint64_t shard_bytes;        /* mlx: the shard size limit used */
    mc_export_stats *stats;      /* filled by mc_export_write */
} mc_export;

/* Place p's outputs in the kind's layout. shard_bytes: mlx shard limit
 * (0: 5 GiB as mlx-lm); ignored for mac-code. */
int mc_export_build(const mc_model *m, const mc_plan *p, mc_export_kind kind, uint64_t shard_bytes,
                    mc_export **out, mc_error *err);
/* The same with the mac-code engines to write for (mc_maccode.h mask; 0:
 * every form, for --force-layout on an architecture no engine builds).
 * mc_export_build uses the model family's default engines. */
int mc_export_build_for(const mc_model *m, const mc_plan *p, mc_export_kind kind, uint64_t shard_bytes,
                        uint32_t engines, mc_export **out, mc_error *err);
void mc_export_free(mc_export *X);

/* Write X into the folder outdir (see above). Uses threads, force,
 * chunk_bytes, ops, progress and test_delay_us of o. */
int mc_export_write(const mc_model *m, const mc_export *X, const char *outdir, const mc_flash_write_opts *o,
                    mc_error *err);

/* Local tensor name inside a mac-code layer file: "language_model." dropped,
 * then "model.layers.N." dropped ("mlp.gate_proj.weight"); NULL if name is
 * not under model.layers. Points into name. */
const char *mc_export_local_name(const char *name);
/* mac-code dtype spelling (MLX's str(dtype)): "mlx.core.uint32", ...; NULL if none. */
const char *mc_export_mlx_dtype(int type);

#endif
