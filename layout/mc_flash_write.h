/* mc_flash_write: place a plan into the .flash layout and write the file.
 *
 * All offsets are computed first (mc_flash_layout_build); then N worker
 * threads convert row chunks and pwrite them at their precomputed offsets,
 * then checksum what was written; the manifest goes at the end and the
 * header last. The output is byte-identical whatever the thread count.
 * The file is written beside OUT under a temporary name and renamed into
 * place only when complete (mc_outfile).
 */
#ifndef MC_FLASH_WRITE_H
#define MC_FLASH_WRITE_H

#include <stdint.h>
#include <stddef.h>
#include "mc_convert.h"
#include "mc_error.h"
#include "mc_flash.h"
#include "mc_plan.h"

typedef struct mc_flash_span {
    int layer;
    uint64_t offset, nbytes;
    size_t n_items;
    size_t *items;       /* plan item indices, in file order */
} mc_flash_span;

typedef struct mc_flash_xlayer {
    int layer;
    uint64_t offset, stride;
    uint32_t n_experts;
    size_t n_items;
    size_t *items;       /* plan item indices, in block order (gate, up, down) */
} mc_flash_xlayer;

typedef struct mc_flash_layout {
    const mc_plan *plan;
    uint64_t (*off)[3];   /* per plan item and output: absolute offset (pinned/ffn) or
                             offset inside the expert block (experts) */
    int *xl;              /* per plan item: index into xlayers, -1 if not an expert */
    uint64_t pinned_offset, pinned_nbytes;
    size_t n_spans;
    mc_flash_span *spans;
    size_t n_xlayers;
    mc_flash_xlayer *xlayers;
    uint64_t data_end;    /* where the manifest starts */
    int experts_per_tok;
} mc_flash_layout;

int mc_flash_layout_build(const mc_model *m, const mc_plan *p, mc_flash_layout **out, mc_error *err);
void mc_flash_layout_free(mc_flash_layout *L);
/* What an engine pays per token with this layout (same as mc_flash_token_cost
 * on the written file). */
void mc_flash_layout_cost(const mc_flash_layout *L, mc_flash_cost *c);

/* Progress of a conversion: bytes of tensor data written (and checksummed)
 * so far, of total. */
typedef void (*mc_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct mc_flash_write_opts {
    int threads;                /* >= 1 */
    int force;                  /* overwrite an existing OUT */
    size_t chunk_bytes;         /* f32 bytes per row chunk; 0: 1 MiB */
    const mc_source_ops *ops;   /* required: mc_source_model_ops() or a test's */
    mc_progress_fn progress;    /* called from the calling thread, may be NULL */
    void *progress_ctx;
    int no_qerr;                /* skip the quantization error measurement (and its
                                   manifest members / folder report) */
    struct mc_qerr *qerr_out;   /* may be NULL: receives one accumulator per plan item
                                   (plan->n_items of them) when measured */
    unsigned test_delay_us;     /* TEST ONLY: sleep per row chunk (crash-safety tests) */
    unsigned test_window;       /* TEST ONLY: chunks workers may run ahead (0: the default) */
} mc_flash_write_opts;

/* Write m as planned by p and placed by L to out_path. */
int mc_flash_write(const mc_model *m, const mc_flash_layout *L, const char *out_path,
                   const mc_flash_write_opts *o, mc_error *err);

/* Compare a .flash file with what mc_flash_write would produce from m with
 * L: every output tensor is recomputed and compared byte for byte; each
 * difference is reported through problem(). Returns 0 when identical,
 * MC_ERR_CHECKSUM when not, other codes on read errors. */
int mc_flash_compare(const mc_model *m, const mc_flash_layout *L, const char *flash_path,
                     const mc_flash_write_opts *o, mc_flash_problem_fn problem, void *ctx, mc_error *err);

/* The manifest's "tokenizer" object for m (layout/mc_flash_tokenizer.c):
 * the converter's description plus "embedded": {file name: contents} (JSON
 * files as JSON, text as strings; GGUF: tokenizer.json and
 * tokenizer_config.json rebuilt from its keys) and "not_embedded": [names]. */
struct cJSON *mc_flash_tokenizer(const mc_model *m);

#endif
