/* Fixtures of the qwen3.5 family in Hugging Face and GGUF form (see
 * mc_test_qwen35.c). */
#ifndef MC_TEST_QWEN35_H
#define MC_TEST_QWEN35_H

#include <stdint.h>
#include <stddef.h>

#include "mc_error.h"
#include "mc_gguf_write.h"

struct cJSON;

typedef struct q35_geom { uint64_t nk, nv, dk, dv, kernel; } q35_geom;

/* A tensor held in memory for writing: bf16 bits or f32. */
typedef struct ftensor {
    char name[160];
    int type;                /* MC_T_BF16, MC_T_F32 or MC_T_F8_E4M3 */
    uint32_t nd;
    uint64_t shape[4];       /* row-major */
    void *data;
} ftensor;

typedef struct flist {
    ftensor *t;
    size_t n, cap;
} flist;

/* GGUF: metadata callback, then the tensors of l (GGUF ne = shape reversed). */
typedef int (*meta_fn)(mc_gguf_writer *w, void *ctx, mc_error *err);

typedef struct qcfg {
    int next;                          /* qwen3_next (in_proj_qkvz / in_proj_ba; no V reorder) */
    int mtp;                           /* add one MTP layer (HF mtp.*, GGUF nextn block) */
    uint64_t H, I, nh, nkv, hd, L, iv, V, E, topk, Im, Is, ctx;
    q35_geom g;
    double theta, eps, prf;
    const char *arch;                  /* GGUF architecture */
    const char *hf_prefix;             /* HF name prefix of the decoder */
} qcfg;

/* The converter's _reorder_v_heads along one axis (conversion/qwen.py). */
uint64_t fwd_pos(uint64_t nk, uint64_t r, uint64_t hd, uint64_t hf_pos);
/* linear_* geometry of a config; 1 when a key is missing. */
int q35_geom_of(const struct cJSON *c, q35_geom *g);

uint64_t fnel(const ftensor *t);
/* Append a zeroed tensor (NULL when out of memory). */
ftensor *fadd(flist *l, const char *name, int type, uint32_t nd, const uint64_t *shape);
void ffree(flist *l);
const ftensor *ffind(const flist *l, const char *name);
float fget(const ftensor *t, uint64_t i);
void fset(ftensor *t, uint64_t i, float v);
/* Uniform [0, 1) (a fixed xorshift sequence). */
double rnd(void);
/* HF-form bf16 tensor with values a + b * u, u uniform in [-1, 1). */
int hf_rand(flist *l, const char *name, uint32_t nd, const uint64_t *shape, double a, double b);
/* Minimal safetensors writer (header padded with spaces to 8 bytes). */
int write_st(const flist *l, const char *path);
int write_gguf(const flist *l, const char *path, meta_fn meta, void *ctx);

/* The fixture config (1 when unusable). */
int qcfg_read(const struct cJSON *c, qcfg *q);
int q_linear(const qcfg *q, uint64_t l);
/* The HF-form checkpoint for the config (transformers' names, per-expert MoE). */
int make_hf(const qcfg *q, flist *l);
/* llama.cpp's forward transforms: the GGUF tensors of hf (legacy_ssm_in:
 * qwen3_next's older fused ssm_in). */
int hf_to_gguf(const qcfg *q, const flist *hf, flist *out, int legacy_ssm_in);
/* The GGUF metadata of the fixture (ctx: its qcfg). */
int q_meta(mc_gguf_writer *w, void *ctx, mc_error *err);

#endif
