/* mc_convert_priv: what the framework's files (mc_convert*.c,
 * mc_arch_registry.c) share and architectures do not use. The
 * architecture-facing API is mc_convert_int.h. */
#ifndef MC_CONVERT_PRIV_H
#define MC_CONVERT_PRIV_H

#include "mc_convert_int.h"

#define MC_NAME_MAX 512
#define MC_MAX_NOTICES 64

/* Model-private state (m->impl). */
typedef struct mc_model_priv {
    uint64_t f8_br, f8_bc; /* F8 block size from quantization_config, 0 = infer */
} mc_model_priv;

/* One safetensors tensor under its normalized name (multimodal prefixes
 * stripped); used: some output tensor reads it. */
struct mc_st_name {
    char *norm;               /* normalized name */
    const mc_st_tensor *t;
    int used;
};

/* A safetensors source: its encoding, data tensor and companions. */
typedef struct mc_st_src {
    const mc_encoding *enc;
    struct mc_st_name *data;
    struct mc_st_name *aux[MC_ENC_AUX];
} mc_st_src;

/* A found source for one alternative. */
typedef struct mc_found {
    size_t n;                      /* 1, or E for per-expert stacks */
    const mc_gguf_tensor **g;
    mc_st_src *s;
    int stacked;                   /* {E} pattern: new leading axis */
} mc_found;

/* mc_convert.c */
char *mc_strdup(const char *s);
void mc_notice(mc_model *m, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void mc_recipe_free(mc_recipe *r);

/* mc_arch_registry.c: the table for a GGUF general.architecture (with or
 * without experts) or an HF model_type, the first in the list whose detect
 * (if any) accepts the source; NULL when none. */
const mc_arch *mc_arch_for_gguf(mc_cv *cv, const char *ga, int has_experts);
const mc_arch *mc_arch_for_hf(mc_cv *cv, const char *mt);

/* mc_convert_source.c */
int mc_is_gguf_file(const char *path);
int mc_setup_gguf(mc_cv *cv, mc_error *err);
int mc_setup_st(mc_cv *cv, mc_error *err);
struct mc_st_name *mc_idx_find(mc_cv *cv, const char *name);

/* mc_convert_encoding.c */
extern const mc_encoding mc_enc_gguf, mc_enc_st;
/* The safetensors source a rule or builder asks for under name: through
 * the encodings in order; 1 found, 0 absent. Nothing is marked used. */
int mc_st_lookup(mc_cv *cv, const char *name, mc_st_src *out);
/* The encoding of a known data tensor asked for under name (--keep-names). */
void mc_st_encode(mc_cv *cv, const char *name, struct mc_st_name *data, mc_st_src *out);
/* p reads src (tensor, encoding, companions), which are marked used. */
void mc_part_set_st(mc_part *p, const mc_st_src *src);
/* Rows of a source piece, its row length and type (the encoding's). */
void mc_part_geom(const mc_part *p, uint64_t *rows, uint64_t *row_len, int *type);
/* Its dims (may exceed MC_MT_MAX_DIMS for a stored tensor: shape then
 * unset) and shape; a 0-dim tensor is [1]. */
uint32_t mc_part_dims(const mc_part *p, uint64_t shape[MC_MT_MAX_DIMS]);
const char *mc_part_name(const mc_part *p);
/* A gpt-oss hub MXFP4 source (encoding "mxfp4-blocks"): its blocks and
 * scales pair up. 0, or MC_ERR_FORMAT naming both. */
int mc_enc_mxfp4_check(const char *path, const mc_part *p, mc_error *err);
/* n stored bytes at byte offset off (passthrough), and raw rows through
 * the encoding. */
int mc_part_read(const mc_model *m, const mc_part *p, uint64_t off, void *buf, size_t n, mc_error *err);
int mc_part_rows(const mc_model *m, const mc_part *p, uint64_t row, uint64_t n, uint64_t row_bytes, void *dst,
                 mc_error *err);
/* MTP layers: GGUF, drop the last {arch}.nextn_predict_layers blocks
 * from m->n_layers; safetensors, note the tensors the arch's mtp says are
 * MTP (they are never mapped). */
int mc_drop_mtp(mc_cv *cv, mc_error *err);
void mc_unused_notices(mc_cv *cv);
/* quantization_config of compressed-tensors: the int4 form mconv reads, else refused. */
int mc_ct_config_check(const mc_model *m, const struct cJSON *qc, mc_error *err);
int mc_build_tokenizer(mc_cv *cv, mc_error *err);

/* mc_convert_rules.c */
/* Expand "{L}" and "{E}" in pat. Returns 0, or non-zero when it does not fit. */
int mc_fmt_name(char *buf, size_t cap, const char *pat, int layer, int expert);
int mc_has_tok(const char *pat, char c);
int mc_push_tensor(mc_model *m, size_t *cap, mc_mtensor **out, mc_error *err);
/* The recipe takes whole rows of lossless encodings' blocks of one type
 * as they are (mc_mtensor.block_rows). */
uint8_t mc_recipe_block_rows(const mc_recipe *r);
/* cv->kinds of every layer: the arch's selectors, then its hook. */
int mc_layer_kinds(mc_cv *cv, mc_error *err);
int mc_apply_rules(mc_cv *cv, mc_error *err);
int mc_keep_names(mc_cv *cv, mc_error *err);

/* mc_convert_config.c */
int mc_build_config(mc_cv *cv, mc_error *err);

#endif
