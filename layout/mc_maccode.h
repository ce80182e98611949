/* mc_maccode: the MLX engines of walter-grace/mac-code as data.
 *
 * Every engine of research/flash-streaming and research/expert-sniper
 * (mlx-sniper scripts and the cli-agent package `mlx-sniper`) that streams a
 * model folder is one row of a table: the architecture it builds (its
 * mlx-lm model class), the files and tensor names it reads, how it
 * quantizes its model before load_weights(strict=False) (4 bits, group 64,
 * hard-coded, with one of four predicates), the config.json keys it reads
 * and the values it fixes without reading them, and where it gets its
 * tokenizer. The mac-code export (mc_export_maccode.c), its refusals and
 * `mconv inspect` / `mconv verify` of a folder are driven by this table
 * (docs/FORMAT.md, "mac-code folder").
 *
 * A selection of engines is a bit mask over the table (bit i: row i).
 */
#ifndef MC_MACCODE_H
#define MC_MACCODE_H

#include <stdint.h>
#include <stddef.h>
#include "mc_convert.h"
#include "mc_error.h"
#include "mc_plan.h"

struct cJSON;

/* What an engine reads besides config.json and pinned.safetensors. */
enum {
    MC_MCR_FFN_ST = 1u << 0,  /* ffn/layer_NN.safetensors (mx.load; streaming.ffn_dir or "ffn/") */
    MC_MCR_FFN_BIN = 1u << 1, /* ffn_aligned/layer_NN.bin, flash_aligned_v1 (direct_io.py DirectFFNReader) */
    MC_MCR_FFN_ANY = 1u << 2, /* ffn_aligned/ when that folder exists, else ffn/ (flash_agent.py) */
    MC_MCR_EXP_MLP = 1u << 3, /* streaming.expert_dir/layer_NN.bin, experts named mlp.switch_mlp.* */
    MC_MCR_EXP_SW = 1u << 4,  /* the same files, experts named switch_mlp.* (bin/ listed first) */
    MC_MCR_TOK_DIR = 1u << 5  /* AutoTokenizer.from_pretrained(MODEL_DIR) */
};

/* How an engine quantizes its model: nn.quantize(model, group_size=64,
 * bits=4, class_predicate=...). */
typedef enum mc_maccode_qrule {
    MC_MCQ_ALL = 0,     /* no predicate: every Linear and Embedding at 4 bits */
    MC_MCQ_IN64 = 1,    /* Embedding, SwitchLinear, and Linear with >= 64 inputs outside conv1d */
    MC_MCQ_ROUTER8 = 2, /* Embedding, SwitchLinear, Linear by mlx-lm's quant_predicate: mlp.gate 8 bits */
    MC_MCQ_ROUTER8S = 3 /* ... mlp.gate and shared_expert_gate 8 bits (qwen3_next) */
} mc_maccode_qrule;

typedef struct mc_maccode_engine {
    const char *id;         /* unique: "flash-streaming/flash_moe.py" */
    const char *path;       /* in walter-grace/mac-code: "research/flash-streaming/flash_moe.py" */
    const char *model_type; /* the mlx-lm model_type it builds */
    const char *builds;     /* the mlx-lm class it instantiates */
    unsigned reads;         /* MC_MCR_* */
    mc_maccode_qrule qrule;
    int dflt;               /* written for by default (0: conflicts with a default engine) */
    const char *tokenizer;  /* the hub id it loads; NULL: the folder's tokenizer files */
    const char *run;        /* how it is pointed at a folder */
} mc_maccode_engine;

#define MC_MACCODE_MAX_ENGINES 32

/* The table (n rows). */
const mc_maccode_engine *mc_maccode_engines(size_t *n);

/* Engines building model_type (defaults only or all), as a mask; 0: none. */
uint32_t mc_maccode_family(const char *model_type, int defaults_only);

/* Parse an --engines list for model_type: comma-separated engine ids
 * ("cli-agent/engine_30b.py"), base names when unique ("moe_agent_30b",
 * ".py" optional), folder names ("flash-streaming", "mlx-sniper",
 * "cli-agent": their engines building model_type) or "all". MC_ERR_ARG for
 * an unknown or ambiguous name, MC_ERR_UNSUPPORTED for an engine of another
 * architecture (the message says what it builds). */
int mc_maccode_select(const char *model_type, const char *list, uint32_t *mask, mc_error *err);

/* "qwen3 (flash-streaming/flash_stream.py, ...), qwen3_5 (...), ..." into buf. */
void mc_maccode_describe_families(char *buf, size_t cap);
/* Engine ids of mask, comma-separated, into buf. */
void mc_maccode_names(uint32_t mask, char *buf, size_t cap);

/* Plan options for the engines of mask: float dtype f16 when none was given
 * (DirectFFNReader misreads bf16; mlx-lm's own --dtype float16), and a bits
 * override for each module kind the engines build at other bits than the
 * converter chooses (routers and shared-expert gates at 4 bits for the
 * IN64 engines). */
int mc_maccode_plan_opts(uint32_t mask, mc_plan_opts *o, mc_error *err);

/* A module as the quantization rules see it. */
typedef struct mc_maccode_module {
    const char *path;  /* module path without "language_model." ("model.layers.0.mlp.gate") */
    int quantizable;   /* a Linear, Embedding or SwitchLinear */
    int expert;        /* a SwitchLinear (stacked experts) */
    uint64_t in;       /* input features */
    int bits, gs;      /* as stored; bits 0: float */
} mc_maccode_module;

/* Bits engine e builds module m with (0: it keeps it float). */
int mc_maccode_want_bits(const mc_maccode_engine *e, const mc_maccode_module *m);

/* Problems are reported one line at a time. */
typedef void (*mc_maccode_problem_fn)(void *ctx, const char *msg);

/* A problem sink the checks share: counts what is reported and passes each
 * message (formatted, at most 1023 bytes) to fn when set. */
typedef struct mc_maccode_rep {
    mc_maccode_problem_fn fn;
    void *ctx;
    uint64_t n;
} mc_maccode_rep;
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
void mc_maccode_report(mc_maccode_rep *r, const char *fmt, ...);

/* Everything the engines of mask cannot run correctly in a conversion:
 * options (--lossless, --no-quant, bits, group size), every module whose
 * stored bits/group size differ from what an engine builds (the built plan,
 * so recipes and overrides are covered), layers that are not all dense or
 * all MoE with one expert layout, missing FFN / expert tensor names, and
 * config values (keys they read that are missing, values they fix that
 * differ). Returns the number of problems. */
size_t mc_maccode_check(const mc_model *m, const mc_plan *p, uint32_t mask, mc_maccode_problem_fn fn, void *ctx);

/* The config.json keys the engines of mask read, completed into cfg (a
 * copy of the model's mlx-lm config): keys they read that are missing are
 * added from mlx-lm's defaults or derived (head_dim, rope_parameters,
 * full_attention_interval); values they fix are checked. Problems through
 * fn; returns their number. */
size_t mc_maccode_config(struct cJSON *cfg, uint32_t mask, mc_maccode_problem_fn fn, void *ctx);

/* Engines of mask that misread bfloat16 scales/biases (DirectFFNReader maps
 * "bfloat16" to float16): the mask of those. */
uint32_t mc_maccode_bf16_misreaders(uint32_t mask);

#endif
