/* mc_convert_int: the architecture-facing API of convert/. An
 * architecture (convert/arch_<name>.c) is one descriptor, mc_arch:
 *
 *  - detection: GGUF general.architecture (with or without experts), HF
 *    model_type values, and optionally a detect function that tells it from
 *    another table of the same name by metadata (deepseek2 V3 / V2);
 *  - one table of rules, each mapping one mlx-lm tensor to its source:
 *
 *      { mlx name, GGUF source, HF source, GGUF transform, HF transform, role, flags }
 *
 *    "{L}" is the decoder layer; "{E}" in a source means one tensor per
 *    expert, stacked on a new leading axis. Consecutive rules with the same
 *    mlx name are alternatives, the first whose sources are present wins
 *    (converter versions: stacked ffn_gate_exps vs per-expert ffn_gate.{E},
 *    attn_q vs fused attn_qkv); a NULL source means none of that kind. For
 *    safetensors the mlx name itself is tried first (MLX folders, already
 *    sanitized checkpoints), unless the group has HF builders. Transforms
 *    are named in one table (mc_xforms); MC_X_B(k) calls the descriptor's
 *    builder k instead, for tensors made of several sources or with column
 *    maps, transposed blocks, reshapes;
 *  - layer kinds (attention / other mixer, MoE / dense), from tensor
 *    presence (selectors) and an optional hook; rule flags select on them;
 *  - which MTP layers safetensors checkpoints carry (GGUF: always the last
 *    nextn_predict_layers blocks);
 *  - two tables of config.json keys (GGUF metadata -> config, HF config
 *    post-processing), declarative where they can be, with builder
 *    functions named in the table for what they cannot say.
 *
 * How sources are stored (GGUF blocks, F8 with scales, and the packings to
 * come) is the source encodings' business (mc_encoding), not the
 * architectures'. docs/CONVERT.md has the whole picture and the checklist
 * for adding an architecture.
 */
#ifndef MC_CONVERT_INT_H
#define MC_CONVERT_INT_H

#include <stdint.h>
#include <stddef.h>
#include "mc_convert.h"
#include "mc_gguf.h"
#include "mc_safetensors.h"

struct cJSON;

/* Transforms: the named operations that make an output tensor out of
 * source rows, one table (mc_xforms, convert/mc_convert_xform.c) used by
 * every architecture. Rules name the first group in gx / hx; the recipe
 * primitives after MC_X_RULES are set by the framework ({E} stacking) or by
 * builders (mc_build_part with t_rows, mc_build_col_map, flat). */
typedef enum mc_xform {
    MC_X_NONE = 0,
    MC_X_ROPE_Q,     /* undo llama.cpp's Q row permutation (n_head heads) */
    MC_X_ROPE_K,     /* same with n_head_kv heads */
    MC_X_SPLIT_Q,    /* rows of Q out of a fused [q; k; v] */
    MC_X_SPLIT_K,
    MC_X_SPLIT_V,
    MC_X_SPLIT_Q_ROPE, /* split then undo the permutation */
    MC_X_SPLIT_K_ROPE,
    MC_X_HALF0,      /* first half of the rows (fused gate_up: gate) */
    MC_X_HALF1,      /* second half (up) */
    MC_X_SUB1,       /* value - 1 (llama.cpp stored gemma norms as 1 + w) */
    MC_X_ADD1,       /* value + 1 (mlx-lm's sanitize of zero-centred norms) */
    MC_X_LOG_NEG,    /* log(-value) in double (A_log from llama.cpp's ssm_a = -exp(A_log)) */
    MC_X_EVEN,       /* the even rows of the second-to-last axis (gpt-oss hub gate_up_proj_blocks: gate) */
    MC_X_ODD,        /* the odd rows (up) */
    MC_X_RULES,      /* the ids above may stand in rules */
    MC_X_STACK = MC_X_RULES, /* {E}: one source per expert, stacked on a new leading axis */
    MC_X_TRANSPOSE,  /* a block of source rows read as columns (mc_build_part t_rows) */
    MC_X_COLS,       /* a permutation of every row's columns (mc_build_col_map) */
    MC_X_FLAT,       /* the same elements in the same order under another shape (b->flat) */
    MC_X_COUNT,
    /* MC_X_B(k): the architecture's builder k (see mc_build_fn) */
    MC_X_BUILD = 32
} mc_xform;
#define MC_X_B(k) (MC_X_BUILD + (k))

/* Layer kinds. Before rules apply, every decoder layer gets a set of kinds
 * from the architecture's selectors (mc_kind_sel) and its layer_kinds
 * hook; rules flagged with kinds apply only in layers that have them all. */
enum {
    MC_K_ATTN = 1u << 0,   /* attention mixer */
    MC_K_MIXER = 1u << 1,  /* another sequence mixer (SSM, linear attention) */
    MC_K_MOE = 1u << 2,    /* routed experts */
    MC_K_DENSE = 1u << 3   /* a dense FFN */
};

enum {
    MC_R_OPT = 1u << 0,
    MC_R_NOTIED = 1u << 1,
    MC_R_Q = 1u << 2,   /* quantizable (Linear / Embedding / SwitchLinear weight) */
    MC_R_Q8 = 1u << 3,  /* quantized at 8 bits as mlx-lm's quant_predicate does */
    MC_R_KEEP_DTYPE = 1u << 4, /* never cast by --dtype, as mlx-lm's cast_predicate (e_score_correction_bias) */
    /* only in layers of that kind */
    MC_R_ATTN = MC_K_ATTN << 8,
    MC_R_MIXER = MC_K_MIXER << 8,
    MC_R_MOE = MC_K_MOE << 8,
    MC_R_DENSE = MC_K_DENSE << 8
};
#define MC_R_KINDS(flags) ((unsigned)(flags) >> 8)

typedef struct mc_cv mc_cv;
typedef struct mc_rule mc_rule;
typedef struct mc_build mc_build;

/* Architecture-built recipe. A rule whose transform for the input's kind
 * (gx for GGUF, hx for safetensors) is MC_X_B(k) calls the architecture's
 * builder k (the arch's builders table) instead
 * of looking its pattern up.
 * The builder finds its sources (mc_cv_source), appends row runs of them
 * with mc_build_part (any number, from any source tensors; a part may also
 * be the transpose of a block of source rows), sets the output shape, and
 * may set a value map (x: MC_X_SUB1 / ADD1 / LOG_NEG), a column
 * permutation (mc_build_col_map) and flat (the output's rows are a reshape
 * of the parts' rows: same elements in the same order, e.g. [C, K] read as
 * [C, K, 1]). found = 0 means this alternative's sources are absent: the
 * next alternative is tried. Returns 0 or an mc_code with err set. */
typedef int (*mc_build_fn)(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err);

struct mc_rule {
    const char *mlx;
    const char *gguf;
    const char *hf;
    uint8_t gx;      /* mc_xform for a GGUF source */
    uint8_t hx;      /* mc_xform for a safetensors source */
    uint8_t role;    /* mc_role */
    uint16_t flags;  /* MC_R_* */
};

/* Layer-kind selector: layers whose source holds tensor pattern gguf / hf
 * ("{L}" = the layer) get the kinds `present`, the others `absent`
 * (MC_KINDS_ALL: no pattern, every layer). */
typedef struct mc_kind_sel {
    uint8_t present, absent;
    const char *gguf, *hf;
} mc_kind_sel;
#define MC_KINDS_ALL(k) {0, (k), NULL, NULL}
#define MC_MAX_KIND_SEL 4

/* GGUF files of an architecture name: with or without routed experts. */
enum { MC_GGUF_ANY = 0, MC_GGUF_NO_EXPERTS = 1, MC_GGUF_EXPERTS = 2 };

/* MTP (multi-token prediction) layers in safetensors checkpoints, dropped
 * with a notice as mlx-lm's sanitize does. (GGUF: the last
 * {arch}.nextn_predict_layers blocks, for every architecture.) */
enum {
    MC_MTP_LAYERS = 1u << 0, /* model.layers.N with N >= num_hidden_layers */
    MC_MTP_PREFIX = 1u << 1  /* tensors named mtp.* or *.mtp.* */
};

/* config.json keys, one table entry a key, applied in order (the order
 * of the keys in the output). Each sets its key (replacing an earlier
 * value, at the end of the object) from one source: */
typedef enum mc_ck_src {
    MC_CK_GGUF_UINT = 1, /* from: GGUF key "{arch}.<from>", a count */
    MC_CK_GGUF_F32,      /* from: GGUF key, a float: the shortest decimal of its f32 (mc_cv_f32_decimal) */
    MC_CK_GGUF_BOOL,     /* from: GGUF key, a bool */
    MC_CK_GGUF_PER_HEAD, /* from: GGUF key, a count divided by head_dim (partial_rotary_factor) */
    MC_CK_NUM,           /* num */
    MC_CK_BOOL,          /* num != 0 */
    MC_CK_STR,           /* from, a string */
    MC_CK_MODEL,         /* num: a model quantity, MC_CV_* */
    MC_CK_MODEL_TYPE,    /* the architecture's model_type */
    MC_CK_HAS_TENSOR,    /* from: an mlx-lm tensor name: whether the output has it */
    MC_CK_LAYERS_WITHOUT,/* num: layer kinds (MC_K_*): the list of layers that lack them */
    MC_CK_JSON,          /* from: a number at a dotted path in the source's config.json ("a.b.c") */
    MC_CK_DELETE,        /* no source: the key is removed */
    MC_CK_FN             /* fn writes the key (and may write others, or none) */
} mc_ck_src;

/* Model quantities for MC_CK_MODEL. */
enum { MC_CV_HIDDEN = 1, MC_CV_LAYERS, MC_CV_HEADS, MC_CV_KV_HEADS, MC_CV_HEAD_DIM, MC_CV_EXPERTS,
       MC_CV_EXPERTS_PER_TOK, MC_CV_VOCAB };

enum {
    MC_CK_OPT = 1u << 0,        /* source absent: no key (else num, the default) */
    MC_CK_NULL = 1u << 1,       /* source absent: null */
    MC_CK_POSITIVE = 1u << 2,   /* a value <= 0 counts as absent */
    MC_CK_IF_ABSENT = 1u << 3,  /* only when config.json has no such key yet */
    MC_CK_IF_EXPERTS = 1u << 4, /* only for models with routed experts */
    MC_CK_IF_DENSE = 1u << 5    /* only for models without */
};

typedef struct mc_cfg_key mc_cfg_key;
/* A config builder: what the table cannot say (fitted or derived values,
 * objects). Writes k->key (and possibly more) into cfg; 0 or an mc_code
 * with err set. */
typedef int (*mc_cfg_fn)(mc_cv *cv, struct cJSON *cfg, const mc_cfg_key *k, mc_error *err);

struct mc_cfg_key {
    const char *key;   /* config.json key */
    uint8_t src;       /* mc_ck_src */
    uint8_t flags;     /* MC_CK_* */
    const char *from;  /* GGUF key suffix, string, tensor name or JSON path */
    double num;        /* default, constant, model quantity or kinds */
    mc_cfg_fn fn;      /* MC_CK_FN */
};

#define MC_CFG_U(key, gguf, flags, def) {key, MC_CK_GGUF_UINT, flags, gguf, def, NULL}
#define MC_CFG_F(key, gguf, flags, def) {key, MC_CK_GGUF_F32, flags, gguf, def, NULL}
#define MC_CFG_GBOOL(key, gguf, def) {key, MC_CK_GGUF_BOOL, 0, gguf, def, NULL}
#define MC_CFG_PER_HEAD(key, gguf, flags, def) {key, MC_CK_GGUF_PER_HEAD, flags, gguf, def, NULL}
#define MC_CFG_NUM(key, v, flags) {key, MC_CK_NUM, flags, NULL, v, NULL}
#define MC_CFG_BOOL(key, v, flags) {key, MC_CK_BOOL, flags, NULL, v, NULL}
#define MC_CFG_STR(key, s) {key, MC_CK_STR, 0, s, 0, NULL}
#define MC_CFG_MODEL(key, q, flags) {key, MC_CK_MODEL, flags, NULL, q, NULL}
#define MC_CFG_MODEL_TYPE(key) {key, MC_CK_MODEL_TYPE, 0, NULL, 0, NULL}
#define MC_CFG_HAS(key, tensor) {key, MC_CK_HAS_TENSOR, 0, tensor, 0, NULL}
#define MC_CFG_LAYERS_WITHOUT(key, kinds) {key, MC_CK_LAYERS_WITHOUT, 0, NULL, kinds, NULL}
#define MC_CFG_JSON(key, path, flags) {key, MC_CK_JSON, flags, path, 0, NULL}
#define MC_CFG_DELETE(key) {key, MC_CK_DELETE, 0, NULL, 0, NULL}
#define MC_CFG_FN(key, f) {key, MC_CK_FN, 0, NULL, 0, f}

typedef struct mc_arch {
    const char *name;        /* table name shown in the supported list */
    const char *model_type;  /* mlx-lm model_type written to config.json */
    /* detection */
    const char *gguf_arch;   /* general.architecture, NULL if none */
    int gguf_experts;        /* MC_GGUF_* */
    const char *hf_types;    /* HF model_type values, space separated */
    /* optional: among the tables that match by name (and experts), whether
     * this source is this one, from its metadata or tensors (never by
     * guessing); the registry tries tables in order */
    int (*detect)(mc_cv *cv);
    /* tensors: the rules and the builders they name (MC_X_B(k): builders[k]) */
    const mc_rule *rules;
    size_t n_rules;
    const mc_build_fn *builders;
    size_t n_builders;
    /* layer kinds: selectors, then an optional hook that may set or check
     * cv->kinds (kinds from the config, layouts mlx-lm cannot build) */
    mc_kind_sel kinds[MC_MAX_KIND_SEL];
    int (*layer_kinds)(mc_cv *cv, mc_error *err);
    unsigned mtp;            /* MC_MTP_* */
    /* config.json: from GGUF metadata, the keys beyond the common ones
     * (mc_gguf_common_config); from a safetensors checkpoint, what changes
     * in its own config.json */
    const mc_cfg_key *gguf_config;
    size_t n_gguf_config;
    const mc_cfg_key *hf_config;
    size_t n_hf_config;
} mc_arch;
#define MC_COUNT(a) (sizeof (a) / sizeof (a)[0])

/* Registry (mc_arch_registry.c). */
extern const mc_arch *const mc_arch_list[];
extern const size_t mc_arch_count;

/* ------------------------------------------------------ source encodings */

typedef struct mc_encoding mc_encoding;
#define MC_ENC_AUX 2

/* One source piece of an output tensor: nrows rows of a source tensor
 * starting at row0, stored in encoding enc. */
typedef struct mc_part {
    const mc_gguf_tensor *g;     /* GGUF source, or */
    const mc_st_tensor *s;       /* safetensors source (the encoding's data tensor) */
    const mc_encoding *enc;      /* how its bytes become rows of values */
    const mc_st_tensor *aux[MC_ENC_AUX]; /* the encoding's companion tensors (F8: weight_scale_inv) */
    uint64_t row0, nrows;
    /* 0: plain rows. Else the part is the transpose of the t_rows source
     * rows from row0: its nrows output rows (= the source row length) are
     * the block's columns, each t_rows long. */
    uint64_t t_rows;
    /* transposed parts: output row i is source column t_col0 + i * t_step
     * (t_step 0 means 1; mc_build_part_cols, gpt-oss interleaved gate/up) */
    uint64_t t_col0, t_step;
} mc_part;

/* A source encoding: how the stored bytes of a source tensor become rows
 * of values. The read pipeline gets raw rows in a GGML type (mc_types.h)
 * from the encoding, decodes them with mc_dequant (or, when the encoding is
 * lossless, copies them block for block into MLX's format: the lossless
 * path), then lets the encoding finish the floats. The encodings are
 * listed in mc_convert_encoding.c: GGUF tensors, plain safetensors, F8 with
 * block scales; safetensors encodings are tried in order for every source
 * name a rule or builder asks for. docs/CONVERT.md: adding one. */
struct mc_encoding {
    const char *name;
    /* safetensors: the data tensor is the asked name + suffix ("" itself);
     * each companion the asked name + aux[k] (NULL: none); all must be
     * present, and match (NULL: always) must accept them */
    const char *suffix;
    const char *aux[MC_ENC_AUX];
    int (*match)(const mc_st_tensor *data, const mc_st_tensor *const *aux);
    /* the rows when they are not the stored tensor's: logical row-major
     * shape (n_dims <= MC_MT_MAX_DIMS) and the GGML type the rows come in;
     * NULL: the stored shape and type */
    void (*shape)(const mc_part *p, uint32_t *n_dims, uint64_t shape[MC_MT_MAX_DIMS]);
    int (*type)(const mc_part *p);
    /* raw rows [row, row + n) of the source, row_bytes each, into dst;
     * NULL: the stored bytes at row * row_bytes */
    int (*rows)(const mc_model *m, const mc_part *p, uint64_t row, uint64_t n, uint64_t row_bytes, void *dst,
                mc_error *err);
    /* after decoding rows src_rows[0..n) (row_len floats each) into dst:
     * what the decoding cannot do alone (block scales); NULL: nothing */
    int (*finish)(const mc_model *m, const mc_part *p, const uint64_t *src_rows, uint64_t n, float *dst,
                  uint64_t row_len, mc_error *err);
    uint8_t lossless;            /* raw rows may be copied as blocks (mc_model_read_blocks) */
    uint8_t carry;               /* the blocks are MLX's own affine form: repack them by default (mc_mtensor carry) */
};

typedef struct mc_recipe {
    size_t n_parts;
    mc_part *parts;              /* output rows are the parts' rows in order */
    uint64_t row_len;            /* elements per row (last dimension) */
    uint8_t values_x;            /* value map (an MC_XK_VALUES transform), 0 none */
    uint8_t rows_x;              /* row map at read time (a transform with a row function), 0 none */
    uint32_t rows_arg;           /* its argument (heads of the rope permutation) */
    int fixed_src_type;          /* all parts' type, or -1 when they differ */
    uint8_t elem_rows;           /* 1D tensor under a row selection: rows are elements */
    uint32_t *col_map;           /* NULL, or row_len entries: output column j = column col_map[j] */
    uint8_t flat;                /* output rows are a reshape of the recipe's rows */
    uint8_t has_t;               /* some part is a transposed block */
} mc_recipe;

struct mc_build {
    int found;                   /* set by the builder when its sources are present */
    uint32_t n_dims;             /* output shape, set by the builder */
    uint64_t shape[MC_MT_MAX_DIMS];
    uint8_t x;                   /* value map: MC_X_NONE or an MC_XK_VALUES transform (MC_X_SUB1, ADD1, LOG_NEG) */
    uint8_t flat;
    mc_recipe *rec;              /* framework-owned */
    const mc_model *m;
};

/* ------------------------------------------------------------ transforms */

typedef enum mc_xform_kind {
    MC_XK_NONE = 0,
    MC_XK_ROWS,      /* row selection: which source rows, in which order (lossless block copies stay possible) */
    MC_XK_COLS,      /* column selection or permutation */
    MC_XK_VALUES,    /* element-wise map of the decoded values */
    MC_XK_RESHAPE,   /* the same elements under another shape */
    MC_XK_TRANSPOSE  /* a block of source rows read as columns */
} mc_xform_kind;

/* What a rule transform's plan sees: the recipe of one output tensor with
 * every part covering its whole source (n_src sources of equal shape). */
typedef struct mc_xplan {
    mc_cv *cv;
    mc_recipe *rec;
    size_t n_src;                /* 1, or E for a stacked {E} source */
    uint32_t nd;                 /* dims of one source */
    uint64_t *shape;             /* its shape, row-major: a row selection changes shape[0] */
    uint64_t src_rows;           /* its rows (elements, for a 1-D source under a row selection) */
} mc_xplan;

typedef struct mc_xform_def mc_xform_def;
struct mc_xform_def {
    const char *name;
    uint8_t kind;                /* mc_xform_kind */
    uint8_t arg;                 /* the plan's argument (which block of a fused tensor) */
    uint8_t heads;               /* rope permutation: 1 n_head, 2 n_head_kv heads */
    uint8_t computed;            /* values are computed, not the source's: the output dtype is f32 */
    /* open time: select rows of the recipe (rule transforms) */
    int (*plan)(mc_xplan *p, const mc_xform_def *x, mc_error *err);
    /* read time: the source row (within the part) of local output row lr */
    uint64_t (*row)(const mc_recipe *r, const mc_part *p, uint64_t lr);
    /* read time: the value map */
    void (*values)(float *v, uint64_t n);
};
extern const mc_xform_def mc_xforms[MC_X_COUNT];

/* Conversion context while opening. */
struct mc_cv {
    mc_model *m;
    const mc_arch *arch;
    const mc_convert_opts *opts;
    uint64_t n_head, n_head_kv, head_dim, hidden;
    int n_experts;
    /* GGUF tensors read by a config function rather than mapped (rope
     * factors): not reported as unused (mc_cv_gguf_read_f32 records them) */
    const mc_gguf_tensor *consumed[8];
    size_t n_consumed;
    /* safetensors: normalized-name index (sorted) */
    size_t n_idx;
    struct mc_st_name *idx;
    /* kinds of each decoder layer (n_layers entries), MC_K_* */
    uint8_t *kinds;
};

/* Helpers shared by the architecture files. */
int mc_cv_gguf_u64(mc_cv *cv, const char *suffix, uint64_t *out); /* "{arch}.suffix" */
/* A per-layer count that may be an array (nemotron_h head_count_kv,
 * feed_forward_length: 0 in layers without one): the value the nonzero
 * entries share (a scalar as it is). 0; -1 absent (or all 0); or an
 * mc_code with err set when the entries differ or are not counts. */
int mc_cv_gguf_layer_u64(mc_cv *cv, const char *suffix, uint64_t *out, mc_error *err);
int mc_cv_gguf_f64(mc_cv *cv, const char *suffix, double *out);
int mc_cv_gguf_bool(mc_cv *cv, const char *suffix, int *out);
/* config.json number k of c as a count (0 .. 1e15): 0, or 1 when absent or
 * out of range. */
int mc_cv_cfg_u64(const struct cJSON *c, const char *k, uint64_t *out);
/* Apply a table of config keys to cfg (what mc_build_config does with the
 * arch's tables; for config builders that share entries). */
int mc_cfg_apply(mc_cv *cv, struct cJSON *cfg, const mc_cfg_key *keys, size_t n, mc_error *err);
/* Set number k of c (replacing it): 0, or 1 out of memory. */
int mc_cv_cfg_set_num(struct cJSON *c, const char *k, double v);
/* Float for config.json: the shortest decimal that rounds to the same f32. */
double mc_cv_f32_decimal(double v);
/* A small GGUF tensor (<= cap elements) as f32, for config values (rope
 * factors); *n gets its element count. MC_ERR_NOTFOUND when absent. */
int mc_cv_gguf_read_f32(mc_cv *cv, const char *name, float *dst, size_t cap, size_t *n, mc_error *err);
/* A human-readable note in m->notices. */
void mc_cv_notice(mc_cv *cv, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Layer kinds from the config, for layer_kinds hooks (and their checks):
 * each gives the selected layers the kinds `on` and the others `off`,
 * keeping bits set before. Layers L with (L + 1) % step == 0 (llama4
 * interleave_moe_layer_step; step 0 selects none): */
void mc_cv_kinds_period(mc_cv *cv, uint64_t step, unsigned on, unsigned off);
/* Layers L >= first (first_k_dense_replace: on = MC_K_MOE, off = MC_K_DENSE). */
void mc_cv_kinds_from(mc_cv *cv, uint64_t first, unsigned on, unsigned off);
/* Layers listed in the config.json array `key` of layer indices (qwen3moe
 * mlp_only_layers); an absent key lists none. 0, or MC_ERR_FORMAT when it
 * is not an array of indices < n_layers. */
int mc_cv_kinds_list(mc_cv *cv, const struct cJSON *cfg, const char *key, unsigned on, unsigned off, mc_error *err);
/* One character per layer (nemotron_h hybrid_override_pattern "M-M*E"):
 * layer L gets kinds[i] where pattern[L] == chars[i]. 0, or MC_ERR_FORMAT
 * naming what when the length is not n_layers or a character is not in
 * chars. */
int mc_cv_kinds_pattern(mc_cv *cv, const char *what, const char *pattern, const char *chars, const uint8_t *kinds,
                        mc_error *err);
/* The reverse, for config.json: layer L is chars[i] for the first i whose
 * kinds it has all of; into buf (n_layers + 1 bytes). 0, or 1 when a layer
 * has none of them or buf is too small. */
int mc_cv_kinds_string(const mc_cv *cv, const char *chars, const uint8_t *kinds, char *buf, size_t cap);

/* For builders. The source tensor named by pattern pat ("{L}" = L) in the
 * input: 1 and *p covering all its rows, or 0 when absent. Safetensors
 * names are matched normalized (multimodal prefixes stripped) and marked
 * used. */
int mc_cv_source(mc_cv *cv, const char *pat, int L, mc_part *p);
/* The same for rule r's own source pattern of this input's kind (r->gguf
 * for a GGUF, r->hf otherwise); 0 when the rule names none. */
int mc_cv_rule_source(mc_cv *cv, const mc_rule *r, int L, mc_part *p);
/* A source's shape, row-major (GGUF ne reversed). */
void mc_cv_source_shape(const mc_part *p, uint32_t *n_dims, uint64_t shape[MC_MT_MAX_DIMS]);
const char *mc_cv_part_name(const mc_part *p);
/* The rule's own source for this input's kind into *src, with b->found
 * set: 1; absent: 0 (the builder returns 0 and the next alternative is
 * tried). */
int mc_build_source(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_part *src);
/* A source must have these rows (all dims but the last) and row length:
 * 0, or MC_ERR_FORMAT naming the tensor and both shapes. */
int mc_cv_expect(mc_cv *cv, const mc_part *p, uint64_t rows, uint64_t row_len, mc_error *err);
/* The output shape: n_dims dims (mc_build_shape(b, 2, (uint64_t[]){r, c})). */
void mc_build_shape(mc_build *b, uint32_t n_dims, const uint64_t *dims);
/* Append output rows: rows [row0, row0 + nrows) of src's tensor (t_rows 0),
 * or the transpose of its rows [row0, row0 + t_rows) (nrows must then be
 * the source row length). Ranges are checked. */
int mc_build_part(mc_build *b, const mc_part *src, uint64_t row0, uint64_t nrows, uint64_t t_rows, mc_error *err);
/* The same with every step-th column of the transposed block from col0:
 * output row i is source column col0 + i * step (an interleaved split of
 * columns, as gpt-oss's gate_up_proj [..., ::2]); nrows columns must fit
 * in the source row. t_rows 1 with flat output picks columns of one row. */
int mc_build_part_cols(mc_build *b, const mc_part *src, uint64_t row0, uint64_t nrows, uint64_t t_rows, uint64_t col0,
                       uint64_t step, mc_error *err);
/* Column permutation of n entries (output column j = source column
 * map[j]); takes ownership of map (malloc'd), also on failure. */
int mc_build_col_map(mc_build *b, uint32_t *map, uint64_t n, mc_error *err);

#endif
