/* mc_convert for the hard architectures: deepseek2 (DeepSeek V3 / V2, MLA
 * and shared experts) and the Qwen3.5 family (qwen35moe, qwen35, qwen3next:
 * gated delta-net layers). Rules: docs/CONVERT.md.
 *
 * Corpus deepseek_v3 and qwen3_5_moe:
 *  - the tensor set (names, shapes) from hf/ and from every GGUF equals the
 *    list derived from mlx-lm's model classes (testdata/mlx_names/);
 *  - bf16 GGUF gives the hf/ values (after mlx-lm's sanitize) bit for bit,
 *    except qwen35 A_log (llama.cpp stored -exp(A_log) in f32): within
 *    2^-22 + 2^-24 |A_log|, and rounding to bf16 gives hf/'s value back;
 *  - Q4_K_M: every tensor is ggml's dequantization of its source tensor,
 *    checked by applying llama.cpp's forward transforms (written here from
 *    the converter's code, not from mconv's tables) to what mconv produced;
 *    RMS error against hf/ printed;
 *  - config.json fields equal hf/config.json's where both exist.
 * Corpus-new glm4_moe and glm_moe_dsa (hf/, bf16, q8_0, Q4_K_M), the same
 * checks (q8_0 too), and the notice that the MTP block was dropped.
 * Fixtures made here (no corpus sample):
 *  - deepseek_v3 in the older fused attn_kv_b form, and as DeepSeek V2
 *    (kv_b_proj rebuilt from attn_k_b / attn_v_b), from the corpus bf16 GGUF;
 *  - glm4_moe_lite (GLM-4.7-Flash, whose GGUF llama.cpp writes as deepseek2)
 *    from the same file the way Glm4MoeLiteModel writes it (with its MTP
 *    block and nextn_predict_layers; with tokenizer.ggml.pre "glm4"), and
 *    from hf/ under model_type glm4_moe_lite; the unmodified file stays V3;
 *  - deepseek_v32 (HF only): corpus-new glm_moe_dsa hf/ written as DeepSeek
 *    V3.2 is released (FP8 block-scaled q_b_proj and indexer wq_b / wk);
 *  - qwen3_5 (dense) and qwen3_next: an HF-form checkpoint written from the
 *    fixture config, llama.cpp's forward transforms applied here to write
 *    the GGUF; mconv must give mlx-lm's form from both, and the names list.
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_test_qwen35.h"
#include "mc_test_gguf.h"
#include "mc_convert.h"
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_safetensors.h"
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* Whole tensor as f32, read in chunks of `chunk` rows. */
static float *read_chunked(const mc_model *m, const mc_mtensor *t, uint64_t chunk)
{
    mc_error err = {0};
    float *v = mc_test_model_read(m, t, chunk, &err);
    if (!v) fprintf(stderr, "read %s in chunks of %llu rows: %s\n", t->name, (unsigned long long)chunk, err.msg);
    return v;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Every key present in both configs has the same value (model_type aside:
 * it names the mlx-lm module, want_type); every key of `need` is present. */
static void check_config(const mc_model *m, const cJSON *ref, const char *want_type, const char *const *need,
                         const char *label)
{
    const cJSON *c = m->config, *it;
    int compared = 0;
    cJSON_ArrayForEach(it, c) {
        if (strcmp(it->string, "model_type") == 0) continue;
        /* from a GGUF these are its tokenizer's ids (tokenizer.ggml.*), which the
         * synthetic corpus vocabulary numbers differently from config.json */
        if (strcmp(it->string, "bos_token_id") == 0 || strcmp(it->string, "eos_token_id") == 0) continue;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(ref, it->string);
        if (!r) continue;
        int same = cJSON_Compare(it, r, 1);
        if (!same && cJSON_IsNumber(it) && cJSON_IsNumber(r)) same = it->valuedouble == r->valuedouble;
        char *a = cJSON_PrintUnformatted(it), *b = cJSON_PrintUnformatted(r);
        CHECKF(same, "%s: config %s = %s, reference %s", label, it->string, a ? a : "?", b ? b : "?");
        free(a);
        free(b);
        compared++;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    CHECKF(cJSON_IsString(mt) && strcmp(mt->valuestring, want_type) == 0, "%s: model_type %s, want %s", label,
           cJSON_IsString(mt) ? mt->valuestring : "?", want_type);
    for (size_t i = 0; need && need[i]; i++)
        CHECKF(cJSON_GetObjectItemCaseSensitive(c, need[i]) != NULL, "%s: config.json lacks %s", label, need[i]);
    printf("%s: %d config fields equal the reference\n", label, compared);
    CHECKF(compared >= 12, "%s: only %d config fields compared", label, compared);
}

/* A_log recovered from llama.cpp's f32 -exp(A_log): the stated bound. */
static double alog_bound(float want)
{
    return ldexp(1.0, -22) + ldexp(fabs((double)want), -24);
}

/* bf16 spacing at x */
static double bf16_ulp(float x)
{
    uint16_t h = mc_f32_to_bf16(fabsf(x));
    return (double)mc_bf16_to_f32((uint16_t)(h + 1)) - (double)mc_bf16_to_f32(h);
}

/* a (from GGUF) against b (reference), tensor by tensor: bit for bit, except
 * A_log within alog_bound. */
static void compare_models(const mc_model *a, const mc_model *b, const char *label)
{
    size_t exact = 0, bounded = 0;
    double worst = 0;
    CHECK_EQ_U64(a->n_tensors, b->n_tensors);
    for (size_t i = 0; i < b->n_tensors; i++) {
        const mc_mtensor *tb = &b->tensors[i], *ta = mc_model_find(a, tb->name);
        CHECKF(ta != NULL, "%s: %s missing", label, tb->name);
        if (!ta || mc_test_mt_nelem(ta) != mc_test_mt_nelem(tb)) {
            CHECKF(ta == NULL, "%s: %s sizes differ", label, tb->name);
            continue;
        }
        float *x = mc_test_model_read_all(a, ta), *y = mc_test_model_read_all(b, tb);
        CHECKF(x && y, "%s: reading %s", label, tb->name);
        uint64_t n = mc_test_mt_nelem(tb), bad = 0, bf_bad = 0;
        int alog = has_suffix(tb->name, ".A_log");
        for (uint64_t k = 0; x && y && k < n; k++) {
            if (alog) {
                double d = fabs((double)x[k] - (double)y[k]);
                if (d > worst) worst = d;
                if (d > alog_bound(y[k])) bad++;
                /* where half a bf16 step exceeds the bound, bf16 rounding gives the original */
                if (bf16_ulp(y[k]) / 2 > alog_bound(y[k]) && mc_bf16_to_f32(mc_f32_to_bf16(x[k])) != y[k]) bf_bad++;
                continue;
            }
            if (mc_f32_bits(x[k]) != mc_f32_bits(y[k])) bad++;
        }
        CHECKF(bad == 0 && bf_bad == 0, "%s: %s: %llu of %llu values differ (%llu bf16 roundings)", label, tb->name,
               (unsigned long long)bad, (unsigned long long)n, (unsigned long long)bf_bad);
        if (alog) bounded++;
        else exact++;
        free(x);
        free(y);
    }
    printf("%s: %zu tensors bit for bit, %zu A_log within 2^-22 + 2^-24|A_log| (max error %.3g)\n", label, exact,
           bounded, worst);
}

/* Reading any row range gives the same values as reading it whole. */
static void check_ranges(const mc_model *m, const char *label)
{
    size_t bad = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        uint64_t rows = mc_test_mt_nelem(t) / mc_test_mt_row_len(t);
        float *a = read_chunked(m, t, 1), *b = read_chunked(m, t, rows ? rows : 1), *c = read_chunked(m, t, 5);
        if (!a || !b || !c || memcmp(a, b, mc_test_mt_nelem(t) * 4) != 0 || memcmp(a, c, mc_test_mt_nelem(t) * 4) != 0) bad++;
        free(a);
        free(b);
        free(c);
    }
    CHECKF(bad == 0, "%s: %zu tensors read differently by row range", label, bad);
}

typedef struct thr_arg { const mc_model *m; int bad; } thr_arg;
static void *thr_run(void *p)
{
    thr_arg *a = p;
    for (size_t i = 0; i < a->m->n_tensors; i++) {
        float *v = mc_test_model_read_all(a->m, &a->m->tensors[i]), *w = read_chunked(a->m, &a->m->tensors[i], 3);
        if (!v || !w || memcmp(v, w, mc_test_mt_nelem(&a->m->tensors[i]) * sizeof *v) != 0) a->bad++;
        free(v);
        free(w);
    }
    return NULL;
}

static void check_threads(const mc_model *m, const char *label)
{
    pthread_t th[2];
    thr_arg a[2] = {{m, 0}, {m, 0}};
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, thr_run, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECKF(a[0].bad == 0 && a[1].bad == 0, "%s: concurrent reads disagree", label);
}

/* ---------------------------------------- llama.cpp's forward transforms */

/* Kinds of source relations the test knows (from the converter). */
enum fkind {
    FK_ID,      /* same values, same order (shape may differ, e.g. [H] vs [1, H]) */
    FK_VROWS,   /* rows [off, off + nv*hd) reordered in blocks of hd rows */
    FK_VCOLS,   /* columns reordered in blocks of hd */
    FK_VELEM,   /* 1-D, per value head */
    FK_ALOG,    /* ssm_a = -exp(A_log), per value head */
    FK_CONV     /* [C, K]: channels from off reordered in blocks of hd */
};

typedef struct fwd_rule {
    int layer;               /* 1: names after "<prefix>layers.N." / "blk.N."; 0: whole names */
    const char *mlx;
    const char *gguf;
    int kind;
    int off_qk;              /* 1: the reordered range starts after 2*nk*dk rows/channels */
    int hd_v;                /* 1: blocks of the value head dim (else single entries) */
} fwd_rule;


/* Check produced tensor t (from GGUF q) against ggml's dequantization of
 * its source, through the forward rule. Returns 0 when checked. */
static int check_forward(const mc_model *q, const mc_mtensor *t, const fwd_rule *fr, const char *src, int reorder,
                         const q35_geom *g, double *se, double *ss, const mc_model *ref, const char *label)
{
    mc_error err = {0};
    const mc_gguf_tensor *gt = mc_gguf_find_tensor(q->gguf, src);
    CHECKF(gt != NULL, "%s: source %s absent", label, src);
    if (!gt) return 1;
    uint64_t n = mc_test_mt_nelem(t);
    CHECKF(n == gt->nelements, "%s: %s has %llu elements, source %s %llu", label, t->name, (unsigned long long)n,
           src, (unsigned long long)gt->nelements);
    if (n != gt->nelements) return 1;
    unsigned char *raw = malloc(gt->nbytes);
    float *deq = malloc(n * sizeof *deq), *fwd = malloc(n * sizeof *fwd), *got = mc_test_model_read_all(q, t);
    int rc = 1;
    if (!raw || !deq || !fwd || !got) goto done;
    CHECK(mc_gguf_read(q->gguf, gt, 0, raw, gt->nbytes, &err) == 0);
    CHECK(mc_dequant(gt->type, raw, deq, (int64_t)n, &err) == 0);
    uint64_t rl = mc_test_mt_row_len(t), rows = n / rl, r = g ? g->nv / g->nk : 1;
    uint64_t hd = fr->hd_v ? (g ? g->dv : 1) : 1, off = fr->off_qk ? 2 * g->nk * g->dk : 0;
    uint64_t bad = 0;
    if (fr->kind == FK_ALOG) {
        for (uint64_t j = 0; j < n; j++) {
            uint64_t p = reorder ? fwd_pos(g->nk, r, 1, j) : j;
            float a = deq[p], back = (float)-exp((double)got[j]);
            if (fabsf(back - a) > 2 * (nextafterf(fabsf(a), INFINITY) - fabsf(a))) bad++;
        }
    } else {
        memcpy(fwd, got, n * sizeof *fwd); /* FK_ID */
        if (reorder && fr->kind == FK_VROWS)
            for (uint64_t row = off; row < off + g->nv * hd; row++)
                memcpy(fwd + (off + fwd_pos(g->nk, r, hd, row - off)) * rl, got + row * rl, rl * sizeof *fwd);
        if (reorder && fr->kind == FK_CONV) /* produced [C, K, 1]: channel blocks of K values */
            for (uint64_t c = off; c < off + g->nv * hd; c++)
                memcpy(fwd + (off + fwd_pos(g->nk, r, hd, c - off)) * g->kernel, got + c * g->kernel,
                       g->kernel * sizeof *fwd);
        if (reorder && (fr->kind == FK_VCOLS || fr->kind == FK_VELEM))
            for (uint64_t row = 0; row < rows; row++)
                for (uint64_t c = 0; c < rl; c++) fwd[row * rl + fwd_pos(g->nk, r, hd, c)] = got[row * rl + c];
        for (uint64_t j = 0; j < n; j++) bad += mc_f32_bits(fwd[j]) != mc_f32_bits(deq[j]);
    }
    CHECKF(bad == 0, "%s: %s: %llu values differ from ggml's dequantization of %s", label, t->name,
           (unsigned long long)bad, src);
    const mc_mtensor *th = mc_model_find(ref, t->name);
    float *h = th ? mc_test_model_read_all(ref, th) : NULL;
    CHECKF(h != NULL, "%s: %s not in the reference", label, t->name);
    if (h) {
        double e = 0, s = 0;
        for (uint64_t j = 0; j < n; j++) {
            double d = (double)got[j] - h[j];
            e += d * d;
            s += (double)h[j] * h[j];
        }
        *se += e;
        *ss += s;
        /* a wrong order gives a relative error near 1.4 */
        CHECKF(s == 0 || sqrt(e / s) < 0.5, "%s: %s relative RMS error %.3f", label, t->name, sqrt(e / s));
    }
    free(h);
    rc = 0;
done:
    free(raw);
    free(deq);
    free(fwd);
    free(got);
    return rc;
}

/* Source and rule of a produced name. */
static const fwd_rule *find_rule(const fwd_rule *rules, size_t n, const char *prefix, const char *name, char *src,
                                 size_t cap)
{
    int L, off = 0;
    size_t pl = strlen(prefix);
    int layered = strncmp(name, prefix, pl) == 0 && sscanf(name + pl, "layers.%d.%n", &L, &off) == 1 && off > 0;
    for (size_t i = 0; i < n; i++) {
        if (rules[i].layer != layered) continue;
        if (layered && strcmp(name + pl + off, rules[i].mlx) == 0) {
            snprintf(src, cap, "blk.%d.%s", L, rules[i].gguf);
            return &rules[i];
        }
        if (!layered && strcmp(name, rules[i].mlx) == 0) {
            snprintf(src, cap, "%s", rules[i].gguf);
            return &rules[i];
        }
    }
    return NULL;
}

static void check_quantized(const mc_model *q, const mc_model *ref, const fwd_rule *rules, size_t nr,
                            const char *prefix, int reorder, const q35_geom *g, const char *label)
{
    double se = 0, ss = 0;
    size_t checked = 0;
    for (size_t i = 0; i < q->n_tensors; i++) {
        const mc_mtensor *t = &q->tensors[i];
        char src[256];
        const fwd_rule *fr = find_rule(rules, nr, prefix, t->name, src, sizeof src);
        CHECKF(fr != NULL, "%s: no test rule for %s", label, t->name);
        if (fr && check_forward(q, t, fr, src, reorder, g, &se, &ss, ref, label) == 0) checked++;
    }
    double rel = ss > 0 ? sqrt(se / ss) : 0;
    printf("%s: %zu of %zu tensors = ggml's dequantization of their source through llama.cpp's transforms; RMS error vs hf/ relative %.4f\n",
           label, checked, q->n_tensors, rel);
    CHECK(checked == q->n_tensors);
    CHECKF(rel < 0.25, "%s: relative RMS error %.4f", label, rel);
}

/* ------------------------------------------------------- corpus models */

#define DS_FWD_RULES \
    {0, "model.embed_tokens.weight", "token_embd.weight", FK_ID, 0, 0}, \
    {0, "model.norm.weight", "output_norm.weight", FK_ID, 0, 0}, \
    {0, "lm_head.weight", "output.weight", FK_ID, 0, 0}, \
    {1, "input_layernorm.weight", "attn_norm.weight", FK_ID, 0, 0}, \
    {1, "post_attention_layernorm.weight", "ffn_norm.weight", FK_ID, 0, 0}, \
    {1, "self_attn.q_a_proj.weight", "attn_q_a.weight", FK_ID, 0, 0}, \
    {1, "self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight", FK_ID, 0, 0}, \
    {1, "self_attn.q_b_proj.weight", "attn_q_b.weight", FK_ID, 0, 0}, \
    {1, "self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight", FK_ID, 0, 0}, \
    {1, "self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight", FK_ID, 0, 0}, \
    /* llama.cpp: k_b = kv_b[h, :nope, :].T, v_b = kv_b[h, nope:, :]; mlx-lm's \
     * embed_q / unembed_out are the same arrays */ \
    {1, "self_attn.embed_q.weight", "attn_k_b.weight", FK_ID, 0, 0}, \
    {1, "self_attn.unembed_out.weight", "attn_v_b.weight", FK_ID, 0, 0}, \
    {1, "self_attn.o_proj.weight", "attn_output.weight", FK_ID, 0, 0}, \
    {1, "mlp.gate_proj.weight", "ffn_gate.weight", FK_ID, 0, 0}, \
    {1, "mlp.up_proj.weight", "ffn_up.weight", FK_ID, 0, 0}, \
    {1, "mlp.down_proj.weight", "ffn_down.weight", FK_ID, 0, 0}, \
    {1, "mlp.gate.weight", "ffn_gate_inp.weight", FK_ID, 0, 0}, \
    {1, "mlp.gate.e_score_correction_bias", "exp_probs_b.bias", FK_ID, 0, 0}, \
    {1, "mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight", FK_ID, 0, 0}, \
    {1, "mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight", FK_ID, 0, 0}, \
    {1, "mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight", FK_ID, 0, 0}, \
    {1, "mlp.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight", FK_ID, 0, 0}, \
    {1, "mlp.switch_mlp.up_proj.weight", "ffn_up_exps.weight", FK_ID, 0, 0}, \
    {1, "mlp.switch_mlp.down_proj.weight", "ffn_down_exps.weight", FK_ID, 0, 0},

static const fwd_rule DS_RULES[] = {
    DS_FWD_RULES
};

/* glm_moe_dsa: DeepSeek's MLA layout plus the DSA indexer (llama.cpp
 * GlmMoeDsaModel: indexer.wq_b -> indexer.attn_q_b, wk -> attn_k,
 * weights_proj -> proj, k_norm kept; no permutation) */
static const fwd_rule DSA_RULES[] = {
    DS_FWD_RULES
    {1, "self_attn.indexer.wq_b.weight", "indexer.attn_q_b.weight", FK_ID, 0, 0},
    {1, "self_attn.indexer.wk.weight", "indexer.attn_k.weight", FK_ID, 0, 0},
    {1, "self_attn.indexer.k_norm.weight", "indexer.k_norm.weight", FK_ID, 0, 0},
    {1, "self_attn.indexer.k_norm.bias", "indexer.k_norm.bias", FK_ID, 0, 0},
    {1, "self_attn.indexer.weights_proj.weight", "indexer.proj.weight", FK_ID, 0, 0},
};

/* glm4_moe (llama.cpp Glm4MoeModel: no Q/K permutation, NeoX rotary) */
static const fwd_rule GLM4_RULES[] = {
    {0, "model.embed_tokens.weight", "token_embd.weight", FK_ID, 0, 0},
    {0, "model.norm.weight", "output_norm.weight", FK_ID, 0, 0},
    {0, "lm_head.weight", "output.weight", FK_ID, 0, 0},
    {1, "input_layernorm.weight", "attn_norm.weight", FK_ID, 0, 0},
    {1, "post_attention_layernorm.weight", "post_attention_norm.weight", FK_ID, 0, 0},
    {1, "self_attn.q_proj.weight", "attn_q.weight", FK_ID, 0, 0},
    {1, "self_attn.k_proj.weight", "attn_k.weight", FK_ID, 0, 0},
    {1, "self_attn.v_proj.weight", "attn_v.weight", FK_ID, 0, 0},
    {1, "self_attn.q_proj.bias", "attn_q.bias", FK_ID, 0, 0},
    {1, "self_attn.k_proj.bias", "attn_k.bias", FK_ID, 0, 0},
    {1, "self_attn.v_proj.bias", "attn_v.bias", FK_ID, 0, 0},
    {1, "self_attn.o_proj.weight", "attn_output.weight", FK_ID, 0, 0},
    {1, "self_attn.q_norm.weight", "attn_q_norm.weight", FK_ID, 0, 0},
    {1, "self_attn.k_norm.weight", "attn_k_norm.weight", FK_ID, 0, 0},
    {1, "mlp.gate_proj.weight", "ffn_gate.weight", FK_ID, 0, 0},
    {1, "mlp.up_proj.weight", "ffn_up.weight", FK_ID, 0, 0},
    {1, "mlp.down_proj.weight", "ffn_down.weight", FK_ID, 0, 0},
    {1, "mlp.gate.weight", "ffn_gate_inp.weight", FK_ID, 0, 0},
    {1, "mlp.gate.e_score_correction_bias", "exp_probs_b.bias", FK_ID, 0, 0},
    {1, "mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight", FK_ID, 0, 0},
    {1, "mlp.switch_mlp.up_proj.weight", "ffn_up_exps.weight", FK_ID, 0, 0},
    {1, "mlp.switch_mlp.down_proj.weight", "ffn_down_exps.weight", FK_ID, 0, 0},
};

static const fwd_rule Q35_RULES[] = {
    {0, "language_model.model.embed_tokens.weight", "token_embd.weight", FK_ID, 0, 0},
    {0, "language_model.model.norm.weight", "output_norm.weight", FK_ID, 0, 0},
    {0, "language_model.lm_head.weight", "output.weight", FK_ID, 0, 0},
    {0, "model.embed_tokens.weight", "token_embd.weight", FK_ID, 0, 0},
    {0, "model.norm.weight", "output_norm.weight", FK_ID, 0, 0},
    {0, "lm_head.weight", "output.weight", FK_ID, 0, 0},
    /* llama.cpp stores the zero-centred norms as 1 + w: mlx-lm's form */
    {1, "input_layernorm.weight", "attn_norm.weight", FK_ID, 0, 0},
    {1, "post_attention_layernorm.weight", "post_attention_norm.weight", FK_ID, 0, 0},
    {1, "linear_attn.A_log", "ssm_a", FK_ALOG, 0, 0},
    {1, "linear_attn.dt_bias", "ssm_dt.bias", FK_VELEM, 0, 0},
    {1, "linear_attn.conv1d.weight", "ssm_conv1d.weight", FK_CONV, 1, 1},
    {1, "linear_attn.norm.weight", "ssm_norm.weight", FK_ID, 0, 0},
    {1, "linear_attn.out_proj.weight", "ssm_out.weight", FK_VCOLS, 0, 1},
    {1, "linear_attn.in_proj_qkv.weight", "attn_qkv.weight", FK_VROWS, 1, 1},
    {1, "linear_attn.in_proj_z.weight", "attn_gate.weight", FK_VROWS, 0, 1},
    {1, "linear_attn.in_proj_b.weight", "ssm_beta.weight", FK_VROWS, 0, 0},
    {1, "linear_attn.in_proj_a.weight", "ssm_alpha.weight", FK_VROWS, 0, 0},
    {1, "self_attn.q_proj.weight", "attn_q.weight", FK_ID, 0, 0},
    {1, "self_attn.k_proj.weight", "attn_k.weight", FK_ID, 0, 0},
    {1, "self_attn.v_proj.weight", "attn_v.weight", FK_ID, 0, 0},
    {1, "self_attn.o_proj.weight", "attn_output.weight", FK_ID, 0, 0},
    {1, "self_attn.q_norm.weight", "attn_q_norm.weight", FK_ID, 0, 0},
    {1, "self_attn.k_norm.weight", "attn_k_norm.weight", FK_ID, 0, 0},
    {1, "mlp.gate.weight", "ffn_gate_inp.weight", FK_ID, 0, 0},
    {1, "mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight", FK_ID, 0, 0},
    {1, "mlp.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight", FK_ID, 0, 0},
    {1, "mlp.switch_mlp.up_proj.weight", "ffn_up_exps.weight", FK_ID, 0, 0},
    {1, "mlp.switch_mlp.down_proj.weight", "ffn_down_exps.weight", FK_ID, 0, 0},
    {1, "mlp.gate_proj.weight", "ffn_gate.weight", FK_ID, 0, 0},
    {1, "mlp.up_proj.weight", "ffn_up.weight", FK_ID, 0, 0},
    {1, "mlp.down_proj.weight", "ffn_down.weight", FK_ID, 0, 0},
};

static const char *const DS_NEED[] = {"kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim",
                                      "v_head_dim", "n_routed_experts", "n_shared_experts", "moe_intermediate_size",
                                      "first_k_dense_replace", "routed_scaling_factor", "topk_group", "n_group",
                                      "num_experts_per_tok", "norm_topk_prob", "scoring_func", "topk_method",
                                      "rope_theta", "rms_norm_eps", "vocab_size", "hidden_size",
                                      "intermediate_size", "num_hidden_layers", "num_attention_heads", NULL};
static const char *const GLM4_NEED[] = {"partial_rotary_factor", "attention_bias", "use_qk_norm", "head_dim",
                                        "n_routed_experts", "n_shared_experts", "moe_intermediate_size",
                                        "first_k_dense_replace", "routed_scaling_factor", "topk_group", "n_group",
                                        "num_experts_per_tok", "norm_topk_prob", "scoring_func", "topk_method",
                                        "rope_theta", "rope_scaling", "rms_norm_eps", "vocab_size", "hidden_size",
                                        "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                        "num_key_value_heads", "max_position_embeddings", "tie_word_embeddings",
                                        NULL};
static const char *const DSA_NEED[] = {"kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim",
                                       "v_head_dim", "n_routed_experts", "n_shared_experts", "moe_intermediate_size",
                                       "first_k_dense_replace", "routed_scaling_factor", "topk_group", "n_group",
                                       "num_experts_per_tok", "norm_topk_prob", "scoring_func", "topk_method",
                                       "moe_layer_freq", "index_head_dim", "index_n_heads", "index_topk",
                                       "rope_parameters", "attention_bias", "max_position_embeddings",
                                       "rms_norm_eps", "vocab_size", "hidden_size", "intermediate_size",
                                       "num_hidden_layers", "num_attention_heads", "num_key_value_heads", NULL};
static const char *const Q35_NEED[] = {"linear_num_value_heads", "linear_num_key_heads", "linear_key_head_dim",
                                       "linear_value_head_dim", "linear_conv_kernel_dim", "full_attention_interval",
                                       "head_dim", "num_key_value_heads", "rope_parameters", "rms_norm_eps",
                                       "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                       "tie_word_embeddings", NULL};
static const char *const Q35_MOE_NEED[] = {"num_experts", "num_experts_per_tok", "moe_intermediate_size",
                                           "shared_expert_intermediate_size", "norm_topk_prob", NULL};

static void need_keys(const mc_model *m, const char *const *need, const char *label)
{
    for (size_t i = 0; need[i]; i++)
        CHECKF(cJSON_GetObjectItemCaseSensitive(m->config, need[i]) != NULL, "%s: config.json lacks %s", label,
               need[i]);
}

/* A notice that says MTP layers were dropped (the corpus-new GLM models
 * carry one MTP block, in the GGUF and in hf/). */
static void need_mtp_notice(const mc_model *m, const char *label)
{
    int found = 0;
    for (size_t i = 0; i < m->n_notices; i++) found |= strstr(m->notices[i], "MTP") != NULL;
    CHECKF(found, "%s: no notice that the MTP layer was dropped", label);
}

/* corpus (models/<dir>) or corpus-new; mtp: the model has an MTP block. */
static const char *corpus_file(int new_corpus, const char *rel)
{
    return new_corpus ? mc_test_corpus_new_file(rel) : mc_test_corpus_file(rel);
}

static void test_corpus_in(int new_corpus, int mtp, const char *dir, const char *list, const char *model_type,
                           const fwd_rule *rules, size_t nr, const char *prefix, const char *const *need,
                           const char *const *need2)
{
    char rel[256], label[256], hfdir[512];
    snprintf(rel, sizeof rel, "models/%s/hf", dir);
    const char *p = corpus_file(new_corpus, rel);
    if (!p) return;
    snprintf(hfdir, sizeof hfdir, "%s", p);
    mc_model *h = mc_test_model_open(hfdir, NULL);
    CHECKF(h != NULL, "%s: hf open", dir);
    if (!h) return;
    snprintf(label, sizeof label, "%s hf", dir);
    mc_test_names_check(h, list, label);
    /* hf/: mlx-lm's defaults stand for keys transformers-5 configs lack */
    check_config(h, h->st->config, model_type, NULL, label);
    if (mtp) need_mtp_notice(h, label);

    snprintf(rel, sizeof rel, "models/%s/gguf/%s-bf16.gguf", dir, dir);
    p = corpus_file(new_corpus, rel);
    if (p) {
        mc_model *g = mc_test_model_open(p, NULL);
        CHECKF(g != NULL, "open %s", rel);
        if (g) {
            snprintf(label, sizeof label, "%s bf16", dir);
            mc_test_names_check(g, list, label);
            check_config(g, h->st->config, model_type, need, label);
            if (need2) need_keys(g, need2, label);
            compare_models(g, h, label);
            check_ranges(g, label);
            check_threads(g, label);
            for (size_t i = 0; i < g->n_notices; i++) printf("%s notice: %s\n", label, g->notices[i]);
            if (mtp) need_mtp_notice(g, label);
            mc_convert_close(g);
        }
    }
    static const char *const quants[] = {"q8_0", "Q4_K_M"};
    for (size_t qi = new_corpus ? 0 : 1; qi < sizeof quants / sizeof quants[0]; qi++) { /* q8_0: corpus-new only */
        snprintf(rel, sizeof rel, "models/%s/gguf/%s-%s.gguf", dir, dir, quants[qi]);
        p = corpus_file(new_corpus, rel);
        if (!p) continue;
        mc_model *q = mc_test_model_open(p, NULL);
        CHECKF(q != NULL, "open %s", rel);
        if (q) {
            snprintf(label, sizeof label, "%s %s", dir, quants[qi]);
            mc_test_names_check(q, list, label);
            q35_geom g;
            int is_q35 = q35_geom_of(h->config, &g) == 0;
            check_quantized(q, h, rules, nr, prefix, is_q35 && g.nk != g.nv, is_q35 ? &g : NULL, label);
            check_ranges(q, label);
            if (mtp) need_mtp_notice(q, label);
            mc_convert_close(q);
        }
    }
    mc_convert_close(h);
}

static void test_corpus(const char *dir, const char *list, const char *model_type, const fwd_rule *rules, size_t nr,
                        const char *prefix, const char *const *need, const char *const *need2)
{
    test_corpus_in(0, 0, dir, list, model_type, rules, nr, prefix, need, need2);
}

/* ------------------------------------------------------------- fixtures */

/* A fixture through the command line: .flash written and `verify
 * --source` sound, `--layout mlx` with the model_type, `--layout mac-code`
 * refused naming it (no mac-code engine builds the GLM / DeepSeek MLA
 * families). */
static void cli_end_to_end(const char *src, const char *model_type, const char *label)
{
    const char *mc = mc_test_mconv(), *tmp = mc_test_tmpdir();
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s/e2e.flash' --force", mc, src, tmp);
    CHECKF(rc == 0, "%s: convert exit %d: %s", label, rc, out ? out : "");
    free(out);
    out = NULL;
    rc = mc_test_run(&out, "'%s' verify '%s/e2e.flash' --source '%s'", mc, tmp, src);
    CHECKF(rc == 0 && out && strstr(out, "sound"), "%s: verify exit %d: %s", label, rc, out ? out : "");
    free(out);
    out = NULL;
    rc = mc_test_run(&out, "'%s' '%s' '%s/e2e-mlx' --layout mlx --force && cat '%s/e2e-mlx/config.json'", mc, src,
                     tmp, tmp);
    char want[128];
    snprintf(want, sizeof want, "\"model_type\":\t\"%s\"", model_type);
    CHECKF(rc == 0 && out && strstr(out, want), "%s: --layout mlx exit %d, model_type %s: %s", label, rc,
           model_type, out ? out : "");
    free(out);
    out = NULL;
    rc = mc_test_run(&out, "rm -rf '%s/e2e-mc'; '%s' '%s' '%s/e2e-mc' --layout mac-code", tmp, mc, src, tmp);
    snprintf(want, sizeof want, "no mac-code engine builds %s", model_type);
    CHECKF(rc == 1 && out && strstr(out, want), "%s: --layout mac-code exit %d: %s", label, rc, out ? out : "");
    free(out);
}



/* mlx-lm's sanitize of the HF checkpoint, computed here: the value of each
 * produced name. NULL when the test has no rule (a failure). */
static float *q_expected(const qcfg *q, const flist *hf, const char *mlx, uint64_t *n)
{
    const char *mp = q->next ? "model." : "language_model.model.";
    char hn[200];
    size_t ml = strlen(mp);
    if (strcmp(mlx, q->next ? "lm_head.weight" : "language_model.lm_head.weight") == 0)
        snprintf(hn, sizeof hn, "lm_head.weight");
    else if (strncmp(mlx, mp, ml) == 0)
        snprintf(hn, sizeof hn, "%s%s", q->hf_prefix, mlx + ml);
    else
        return NULL;
    char *sw = strstr(hn, "mlp.switch_mlp.");
    if (sw) { /* stack experts.E.<w> */
        char w[64], en[320];
        snprintf(w, sizeof w, "%s", sw + strlen("mlp.switch_mlp."));
        *sw = '\0';
        snprintf(en, sizeof en, "%smlp.experts.0.%s", hn, w);
        const ftensor *t0 = ffind(hf, en);
        if (!t0) return NULL;
        uint64_t per = fnel(t0);
        float *v = malloc(per * q->E * sizeof *v);
        for (uint64_t e = 0; v && e < q->E; e++) {
            snprintf(en, sizeof en, "%smlp.experts.%llu.%s", hn, (unsigned long long)e, w);
            const ftensor *t = ffind(hf, en);
            if (!t) { free(v); return NULL; }
            for (uint64_t k = 0; k < per; k++) v[e * per + k] = fget(t, k);
        }
        *n = per * q->E;
        return v;
    }
    const ftensor *t = ffind(hf, hn);
    if (!t) return NULL;
    int plus1 = has_suffix(hn, "input_layernorm.weight") || has_suffix(hn, "post_attention_layernorm.weight") ||
                has_suffix(hn, "q_norm.weight") || has_suffix(hn, "k_norm.weight") ||
                (strncmp(hn, q->hf_prefix, strlen(q->hf_prefix)) == 0 &&
                 strcmp(hn + strlen(q->hf_prefix), "norm.weight") == 0);
    *n = fnel(t);
    float *v = malloc(*n * sizeof *v);
    for (uint64_t k = 0; v && k < *n; k++) v[k] = fget(t, k) + (plus1 ? 1.0f : 0.0f);
    return v;
}

/* Write what mconv produced (mlx-lm names and form, f32) as a checkpoint
 * folder with mconv's config.json and read it back: mlx-lm's sanitize
 * leaves such a folder alone (conv1d already [C, K, 1]: no norm + 1), and
 * so must mconv. */
static void check_mlx_roundtrip(const mc_model *s, const char *dir, const char *label)
{
    flist l = {0};
    int bad = 0;
    for (size_t i = 0; i < s->n_tensors && !bad; i++) {
        const mc_mtensor *t = &s->tensors[i];
        ftensor *o = fadd(&l, t->name, MC_T_F32, t->n_dims, t->shape);
        float *v = mc_test_model_read_all(s, t);
        bad = !o || !v;
        if (!bad) memcpy(o->data, v, mc_test_mt_nelem(t) * sizeof *v);
        free(v);
    }
    char path[1300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!bad && mc_test_run(NULL, "mkdir -p '%s'", dir) == 0 && write_st(&l, path) == 0);
    char *js = cJSON_Print(s->config);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(js && mc_test_write_file(path, js, strlen(js)) == 0);
    free(js);
    mc_model *m = mc_test_model_open(dir, NULL);
    CHECKF(m != NULL, "%s: open", label);
    if (m) {
        compare_models(m, s, label);
        mc_convert_close(m);
    }
    ffree(&l);
}

static void test_qwen_fixture(const char *name)
{
    char path[1200], label[128];
    snprintf(path, sizeof path, "%s/testdata/arch_fixtures/%s.json", MCONV_SOURCE_DIR, name);
    size_t len;
    unsigned char *raw = mc_test_read_file(path, &len);
    CHECKF(raw != NULL, "cannot read %s", path);
    if (!raw) return;
    cJSON *cfg = cJSON_ParseWithLength((const char *)raw, len);
    free(raw);
    qcfg q;
    CHECKF(cfg && qcfg_read(cfg, &q) == 0, "%s: fixture config", name);
    if (!cfg) return;
    q.mtp = !q.next;
    flist hf = {0}, gg = {0}, gl = {0};
    int bad = make_hf(&q, &hf) | hf_to_gguf(&q, &hf, &gg, 0) | (q.next ? hf_to_gguf(&q, &hf, &gl, 1) : 0);
    CHECKF(!bad, "%s: building the fixture", name);
    char dir[512], gpath[512], lpath[512];
    snprintf(dir, sizeof dir, "%s/%s-hf", mc_test_tmpdir(), name);
    snprintf(gpath, sizeof gpath, "%s/%s.gguf", mc_test_tmpdir(), name);
    snprintf(lpath, sizeof lpath, "%s/%s-legacy.gguf", mc_test_tmpdir(), name);
    char *js = cJSON_Print(cfg);
    if (!bad) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        CHECK(mc_test_run(NULL, "%s", cmd) == 0);
        snprintf(path, sizeof path, "%s/config.json", dir);
        CHECK(js && mc_test_write_file(path, js, strlen(js)) == 0);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(write_st(&hf, path) == 0);
        CHECK(write_gguf(&gg, gpath, q_meta, &q) == 0);
        if (q.next) CHECK(write_gguf(&gl, lpath, q_meta, &q) == 0);
    }
    free(js);
    mc_model *s = bad ? NULL : mc_test_model_open(dir, NULL), *g = bad ? NULL : mc_test_model_open(gpath, NULL);
    CHECKF(s && g, "%s: open fixtures", name);
    if (s && g) {
        snprintf(label, sizeof label, "%s fixture hf", name);
        mc_test_names_check(s, name, label);
        size_t ok = 0;
        for (size_t i = 0; i < s->n_tensors; i++) {
            const mc_mtensor *t = &s->tensors[i];
            uint64_t n = 0;
            float *want = q_expected(&q, &hf, t->name, &n), *got = mc_test_model_read_all(s, t);
            CHECKF(want && got && n == mc_test_mt_nelem(t), "%s: %s: no expectation", label, t->name);
            if (want && got && n == mc_test_mt_nelem(t)) {
                uint64_t diff = 0;
                for (uint64_t k = 0; k < n; k++) diff += mc_f32_bits(want[k]) != mc_f32_bits(got[k]);
                CHECKF(diff == 0, "%s: %s: %llu values differ from mlx-lm's sanitize", label, t->name,
                       (unsigned long long)diff);
                ok += diff == 0;
            }
            free(want);
            free(got);
        }
        printf("%s: %zu of %zu tensors equal mlx-lm's sanitize of the HF checkpoint\n", label, ok, s->n_tensors);
        check_config(s, cfg, name, NULL, label);
        snprintf(dir, sizeof dir, "%s/%s-mlx", mc_test_tmpdir(), name);
        snprintf(label, sizeof label, "%s fixture mlx-form folder", name);
        check_mlx_roundtrip(s, dir, label);

        snprintf(label, sizeof label, "%s fixture gguf", name);
        mc_test_names_check(g, name, label);
        compare_models(g, s, label);
        check_config(g, cfg, name, Q35_NEED, label);
        if (q.mtp) { /* the MTP block is dropped, with a notice, from both */
            int ns = 0, ng = 0;
            for (size_t i = 0; i < s->n_notices; i++) ns |= strstr(s->notices[i], "MTP") != NULL;
            for (size_t i = 0; i < g->n_notices; i++) ng |= strstr(g->notices[i], "MTP") != NULL;
            CHECKF(ns && ng, "%s: no MTP notice (hf %d, gguf %d)", label, ns, ng);
            CHECK(g->n_layers == (int)q.L && s->n_layers == (int)q.L);
        }
        if (q.E) need_keys(g, Q35_MOE_NEED, label);
        check_ranges(g, label);
        if (q.next) {
            mc_model *lg = mc_test_model_open(lpath, NULL);
            CHECKF(lg != NULL, "%s: open legacy", name);
            if (lg) {
                snprintf(label, sizeof label, "%s fixture gguf (legacy ssm_in)", name);
                mc_test_names_check(lg, name, label);
                compare_models(lg, s, label);
                mc_convert_close(lg);
            }
        }
    }
    mc_convert_close(s);
    mc_convert_close(g);
    ffree(&hf);
    ffree(&gg);
    ffree(&gl);
    cJSON_Delete(cfg);
}

/* --------------------------------------------------- deepseek2 fixtures */

/* Rewrite the corpus bf16 GGUF: every key; tensors as they are except
 * - fused (1): attn_k_b / attn_v_b replaced by attn_kv_b = HF kv_b_proj
 *   (the converter's output before the split);
 * - v2 (1): exp_probs_b dropped (DeepSeek V2 has no correction bias). */
/* glm_mtp / glm_pre: GLM-4.7-Flash the way llama.cpp's Glm4MoeLiteModel
 * writes it (general.architecture deepseek2): with its MTP block (block_count
 * + 1, deepseek2.nextn_predict_layers 1, blk.N.nextn.* beside a copy of the
 * last layer's tensors), or with the GLM tokenizer's tokenizer.ggml.pre
 * "glm4" (older converters, no MTP). */
typedef struct ds_fix { const mc_gguf *src; const mc_st *hf; int fused, v2, glm_mtp, glm_pre; } ds_fix;

static int ds_skip(const ds_fix *f, const char *n)
{
    return (f->fused && (has_suffix(n, ".attn_k_b.weight") || has_suffix(n, ".attn_v_b.weight"))) ||
           (f->v2 && has_suffix(n, ".exp_probs_b.bias"));
}

static int ds_write(const ds_fix *f, const char *path)
{
    mc_error err = {0};
    mc_gguf_writer *w = NULL;
    mc_gguf_write_opts o = {3, 32, 1, 0, 0, 0};
    if (mc_gguf_writer_create(&w, path, &o, &err)) return 1;
    int rc = 0;
    uint64_t blocks = 0;
    for (uint64_t i = 0; i < f->src->n_kv && !rc; i++) {
        const mc_gguf_kv *kv = &f->src->kv[i];
        if (f->glm_mtp && strcmp(kv->key.s, "deepseek2.block_count") == 0) {
            blocks = kv->v.u64;
            rc = mc_gguf_writer_add_u32(w, kv->key.s, (uint32_t)blocks + 1, &err);
        } else if (f->glm_pre && strcmp(kv->key.s, "tokenizer.ggml.pre") == 0) {
            rc = mc_gguf_writer_add_str(w, kv->key.s, "glm4", &err);
        } else {
            rc = mc_gguf_writer_copy_kv(w, kv, &err);
        }
    }
    if (f->glm_mtp && !rc) rc = blocks < 2 || mc_gguf_writer_add_u32(w, "deepseek2.nextn_predict_layers", 1, &err);
    /* what to write, in order: (gguf tensor | hf tensor with a GGUF name |
     * neither: zeros) */
    const mc_gguf_tensor *gs[256];
    const mc_st_tensor *hs[256];
    char names[256][64];
    size_t n = 0;
    for (uint64_t i = 0; i < f->src->n_tensors && n < 250 && !rc; i++) {
        const mc_gguf_tensor *t = &f->src->tensors[i];
        if (ds_skip(f, t->name.s)) {
            int L = -1;
            if (f->fused && has_suffix(t->name.s, ".attn_k_b.weight") && sscanf(t->name.s, "blk.%d.", &L) == 1) {
                char hn[128];
                snprintf(hn, sizeof hn, "model.layers.%d.self_attn.kv_b_proj.weight", L);
                gs[n] = NULL;
                hs[n] = mc_st_find(f->hf, hn);
                snprintf(names[n], sizeof names[n], "blk.%d.attn_kv_b.weight", L);
                if (!hs[n]) rc = 1;
                else {
                    uint64_t ne[2] = {hs[n]->shape[1], hs[n]->shape[0]};
                    rc = mc_gguf_writer_add_tensor(w, names[n], hs[n]->type, 2, ne, &err);
                    n++;
                }
            }
            continue;
        }
        gs[n] = t;
        hs[n] = NULL;
        snprintf(names[n], sizeof names[n], "%s", t->name.s);
        rc = mc_gguf_writer_add_tensor(w, t->name.s, t->type, t->n_dims, t->ne, &err);
        n++;
    }
    /* the MTP block: the last layer's tensors again, then the nextn ones */
    uint64_t zero_bytes = 0;
    for (uint64_t i = 0; f->glm_mtp && i < f->src->n_tensors && n < 240 && !rc; i++) {
        const mc_gguf_tensor *t = &f->src->tensors[i];
        int L = -1, off = 0;
        if (sscanf(t->name.s, "blk.%d.%n", &L, &off) != 1 || off == 0 || (uint64_t)L != blocks - 1) continue;
        gs[n] = t;
        hs[n] = NULL;
        snprintf(names[n], sizeof names[n], "blk.%llu.%s", (unsigned long long)blocks, t->name.s + off);
        rc = mc_gguf_writer_add_tensor(w, names[n], t->type, t->n_dims, t->ne, &err);
        n++;
    }
    static const struct { const char *nextn, *from; } nx[] = {
        {"embed_tokens.weight", "token_embd.weight"}, {"enorm.weight", "output_norm.weight"},
        {"hnorm.weight", "output_norm.weight"}, {"shared_head_head.weight", "output.weight"},
        {"shared_head_norm.weight", "output_norm.weight"},
    };
    for (size_t k = 0; f->glm_mtp && k < sizeof nx / sizeof nx[0] && !rc; k++) {
        const mc_gguf_tensor *t = mc_gguf_find_tensor(f->src, nx[k].from);
        if (!t) { rc = 1; break; }
        gs[n] = t;
        hs[n] = NULL;
        snprintf(names[n], sizeof names[n], "blk.%llu.nextn.%s", (unsigned long long)blocks, nx[k].nextn);
        rc = mc_gguf_writer_add_tensor(w, names[n], t->type, t->n_dims, t->ne, &err);
        n++;
    }
    if (f->glm_mtp && !rc) { /* eh_proj [H, 2H] (numpy): zeros */
        const mc_gguf_tensor *e = mc_gguf_find_tensor(f->src, "token_embd.weight");
        uint64_t hid = e ? e->ne[0] : 0, ne[2] = {2 * hid, hid};
        gs[n] = NULL;
        hs[n] = NULL;
        snprintf(names[n], sizeof names[n], "blk.%llu.nextn.eh_proj.weight", (unsigned long long)blocks);
        zero_bytes = 2 * hid * hid * 2;
        rc = !e || mc_gguf_writer_add_tensor(w, names[n], MC_T_BF16, 2, ne, &err);
        n++;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t nb = gs[i] ? gs[i]->nbytes : hs[i] ? hs[i]->nbytes : zero_bytes;
        void *buf = calloc(1, nb);
        rc = !buf ||
             (gs[i] ? mc_gguf_read(f->src, gs[i], 0, buf, nb, &err)
                    : hs[i] ? mc_st_read(f->hf, hs[i], 0, buf, nb, &err) : 0) ||
             mc_gguf_writer_write(w, buf, nb, &err);
        free(buf);
    }
    if (rc) {
        fprintf(stderr, "ds fixture %s: %s\n", path, err.msg);
        mc_gguf_writer_abort(w);
        return 1;
    }
    return mc_gguf_writer_commit(w, &err) != 0;
}

static void test_deepseek_fixtures(void)
{
    const char *p = mc_test_corpus_file("models/deepseek_v3/hf");
    if (!p) return;
    char hfdir[512], bpath[512], path[512], label[128];
    snprintf(hfdir, sizeof hfdir, "%s", p);
    p = mc_test_corpus_file("models/deepseek_v3/gguf/deepseek_v3-bf16.gguf");
    if (!p) return;
    snprintf(bpath, sizeof bpath, "%s", p);
    mc_model *h = mc_test_model_open(hfdir, NULL), *b = mc_test_model_open(bpath, NULL);
    CHECK(h && b);
    if (!h || !b) { mc_convert_close(h); mc_convert_close(b); return; }
    static const struct { int fused, v2, glm_mtp, glm_pre; const char *name, *list, *type; } var[] = {
        {1, 0, 0, 0, "v3-fused", "deepseek_v3", "deepseek_v3"},
        {0, 1, 0, 0, "v2-split", "deepseek_v2", "deepseek_v2"},
        {1, 1, 0, 0, "v2-fused", "deepseek_v2", "deepseek_v2"},
        /* GLM-4.7-Flash (deepseek2 GGUF): told apart by what Glm4MoeLiteModel writes */
        {0, 0, 1, 0, "glm4-lite-mtp", "glm4_moe_lite", "glm4_moe_lite"},
        {0, 0, 0, 1, "glm4-lite-pre", "glm4_moe_lite", "glm4_moe_lite"},
        {1, 0, 1, 1, "glm4-lite-fused", "glm4_moe_lite", "glm4_moe_lite"},
    };
    /* the corpus file itself (no nextn key, pre-tokenizer "default") stays DeepSeek V3 */
    CHECKF(strcmp(b->model_type, "deepseek_v3") == 0, "corpus deepseek2 GGUF taken as %s", b->model_type);
    for (size_t v = 0; v < sizeof var / sizeof var[0]; v++) {
        ds_fix f = {b->gguf, h->st, var[v].fused, var[v].v2, var[v].glm_mtp, var[v].glm_pre};
        snprintf(path, sizeof path, "%s/deepseek-%s.gguf", mc_test_tmpdir(), var[v].name);
        CHECKF(ds_write(&f, path) == 0, "write %s", path);
        mc_model *m = mc_test_model_open(path, NULL);
        CHECKF(m != NULL, "open %s", path);
        if (!m) continue;
        snprintf(label, sizeof label, "deepseek fixture %s", var[v].name);
        mc_test_names_check(m, var[v].list, label);
        CHECKF(strcmp(m->model_type, var[v].type) == 0, "%s: model_type %s", label, m->model_type);
        check_ranges(m, label);
        if (var[v].glm_mtp) need_mtp_notice(m, label);
        if (var[v].glm_mtp || var[v].glm_pre) cli_end_to_end(path, "glm4_moe_lite", label);
        if (var[v].glm_mtp || var[v].glm_pre) {
            const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
            CHECKF(cJSON_IsString(mt) && strcmp(mt->valuestring, "glm4_moe_lite") == 0, "%s: config model_type",
                   label);
            CHECK_EQ_U64(m->n_layers, b->n_layers);
        }
        if (!var[v].v2) {
            compare_models(m, b, label); /* same as the split form, which equals hf/ */
        } else {
            /* everything but the MLA tensors as from the V3 file; kv_b_proj = hf/'s, raw */
            size_t same = 0;
            for (size_t i = 0; i < m->n_tensors; i++) {
                const mc_mtensor *t = &m->tensors[i];
                float *x = mc_test_model_read_all(m, t), *y = NULL;
                uint64_t ny = 0;
                if (strstr(t->name, "kv_b_proj")) {
                    const mc_st_tensor *st = mc_st_find(h->st, t->name);
                    uint16_t *bf = st ? malloc(st->nbytes) : NULL;
                    mc_error e2 = {0};
                    if (bf && st->type == MC_T_BF16 && mc_st_read(h->st, st, 0, bf, st->nbytes, &e2) == 0) {
                        ny = st->nelements;
                        y = malloc(ny * sizeof *y);
                        for (uint64_t k = 0; y && k < ny; k++) y[k] = mc_bf16_to_f32(bf[k]);
                    }
                    free(bf);
                } else {
                    const mc_mtensor *r = mc_model_find(b, t->name);
                    if (r) {
                        y = mc_test_model_read_all(b, r);
                        ny = mc_test_mt_nelem(r);
                    }
                }
                int eq = x && y && mc_test_mt_nelem(t) == ny && memcmp(x, y, ny * 4) == 0;
                CHECKF(eq, "%s: %s differs from its reference", label, t->name);
                same += eq;
                free(x);
                free(y);
            }
            printf("%s: %zu of %zu tensors bit for bit (kv_b_proj against hf/)\n", label, same, m->n_tensors);
            const cJSON *rs = cJSON_GetObjectItemCaseSensitive(m->config, "rope_scaling");
            CHECKF(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rs, "factor")),
                   "%s: deepseek_v2 needs rope_scaling.factor (mlx-lm reads it unconditionally)", label);
        }
        mc_convert_close(m);
    }
    mc_convert_close(h);
    mc_convert_close(b);
}

/* GLM-4.7-Flash from safetensors: the corpus DeepSeek V3 checkpoint (the
 * same module tree) under model_type glm4_moe_lite, as its hub config says:
 * the names of mlx-lm's glm4_moe_lite model class, every tensor equal to
 * the deepseek_v3 conversion, model_type kept. */
static void test_glm_lite_hf(void)
{
    const char *p = mc_test_corpus_file("models/deepseek_v3/hf");
    if (!p) return;
    char hfdir[512], dir[600], path[700], target[700];
    snprintf(hfdir, sizeof hfdir, "%s", p);
    snprintf(dir, sizeof dir, "%s/glm4-lite-hf", mc_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(target, sizeof target, "%s/model.safetensors", hfdir);
    CHECK(symlink(target, path) == 0);
    snprintf(target, sizeof target, "%s/config.json", hfdir);
    cJSON *c = mc_test_read_json(target);
    CHECK(c != NULL);
    if (!c) return;
    cJSON_DeleteItemFromObjectCaseSensitive(c, "model_type");
    cJSON_AddStringToObject(c, "model_type", "glm4_moe_lite");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "architectures");
    char *txt = cJSON_Print(c);
    cJSON_Delete(c);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(txt && mc_test_write_file(path, txt, strlen(txt)) == 0);
    free(txt);
    mc_model *m = mc_test_model_open(dir, NULL), *h = mc_test_model_open(hfdir, NULL);
    CHECK(m && h);
    if (m && h) {
        mc_test_names_check(m, "glm4_moe_lite", "glm4_moe_lite hf fixture");
        CHECKF(strcmp(m->model_type, "glm4_moe_lite") == 0, "hf fixture: model_type %s", m->model_type);
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
        CHECK(cJSON_IsString(mt) && strcmp(mt->valuestring, "glm4_moe_lite") == 0);
        compare_models(m, h, "glm4_moe_lite hf fixture");
        cli_end_to_end(dir, "glm4_moe_lite", "glm4_moe_lite hf fixture");
    }
    mc_convert_close(m);
    mc_convert_close(h);
}

/* Add bf16 matrix t (raw bf16 values) to l as FP8 E4M3 (nearest code of
 * e4, the e4m3 table) with a B x B block weight_scale_inv of max|w| / 448,
 * the way DeepSeek's released checkpoints store their Linear weights.
 * 0, or 1 out of memory. */
static int f8_add(flist *l, const mc_st_tensor *t, const uint16_t *bf, const float *e4, uint64_t B)
{
    uint64_t R = t->shape[0], C = t->shape[1], sr = (R + B - 1) / B, sc = (C + B - 1) / B;
    ftensor *w = fadd(l, t->name, MC_T_F8_E4M3, 2, t->shape);
    char sn[200];
    snprintf(sn, sizeof sn, "%s_scale_inv", t->name);
    ftensor *s = w ? fadd(l, sn, MC_T_F32, 2, (uint64_t[]){sr, sc}) : NULL;
    w = s ? &l->t[l->n - 2] : NULL;
    if (!w) return 1;
    for (uint64_t br = 0; br < sr; br++)
        for (uint64_t bc = 0; bc < sc; bc++) {
            float mx = 0;
            for (uint64_t r = br * B; r < R && r < (br + 1) * B; r++)
                for (uint64_t c = bc * B; c < C && c < (bc + 1) * B; c++)
                    mx = fmaxf(mx, fabsf(mc_bf16_to_f32(bf[r * C + c])));
            float scale = mx > 0 ? mx / 448.0f : 1.0f;
            ((float *)s->data)[br * sc + bc] = scale;
            for (uint64_t r = br * B; r < R && r < (br + 1) * B; r++)
                for (uint64_t c = bc * B; c < C && c < (bc + 1) * B; c++) {
                    float x = mc_bf16_to_f32(bf[r * C + c]) / scale, best = INFINITY;
                    int code = 0;
                    for (int k = 0; k < 256; k++)
                        if (!isnan(e4[k]) && fabsf(e4[k] - x) < best) { best = fabsf(e4[k] - x); code = k; }
                    ((unsigned char *)w->data)[r * C + c] = (unsigned char)code;
                }
        }
    return 0;
}

/* DeepSeek V3 as released (FP8 E4M3 weights with 128 x 128 block scales):
 * kv_b_proj stored as F8 + weight_scale_inv; embed_q / unembed_out must be
 * the block-dequantized kv_b_proj split (key block transposed). */
static void test_deepseek_f8(void)
{
    const char *p = mc_test_corpus_file("models/deepseek_v3/hf");
    if (!p) return;
    char hfdir[512], dir[600], path[700];
    snprintf(hfdir, sizeof hfdir, "%s", p);
    mc_model *h = mc_test_model_open(hfdir, NULL);
    CHECK(h != NULL);
    if (!h) return;
    /* e4m3 code table */
    float e4[256];
    unsigned char codes[256];
    mc_error err = {0};
    for (int i = 0; i < 256; i++) codes[i] = (unsigned char)i;
    CHECK(mc_dequant(MC_T_F8_E4M3, codes, e4, 256, &err) == 0);
    flist l = {0};
    int bad = 0;
    const uint64_t B = 128;
    for (uint64_t i = 0; i < h->st->n_tensors && !bad; i++) {
        const mc_st_tensor *t = &h->st->tensors[i];
        unsigned char *raw = malloc(t->nbytes);
        bad = !raw || mc_st_read(h->st, t, 0, raw, t->nbytes, &err) != 0 || t->type != MC_T_BF16;
        if (bad) { free(raw); break; }
        if (!strstr(t->name, "kv_b_proj")) {
            ftensor *o = fadd(&l, t->name, MC_T_BF16, t->n_dims, t->shape);
            bad = !o;
            if (o) memcpy(o->data, raw, t->nbytes);
        } else {
            bad = f8_add(&l, t, (const uint16_t *)raw, e4, B);
        }
        free(raw);
    }
    snprintf(dir, sizeof dir, "%s/deepseek-f8", mc_test_tmpdir());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!bad && mc_test_run(NULL, "mkdir -p '%s'", dir) == 0 && write_st(&l, path) == 0);
    char *js = cJSON_Print(h->st->config);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(js && mc_test_write_file(path, js, strlen(js)) == 0);
    free(js);
    mc_model *m = bad ? NULL : mc_test_model_open(dir, NULL);
    CHECKF(m != NULL, "deepseek f8: open");
    size_t same = 0;
    uint64_t H = 4, nope = 32, v = 64;
    for (size_t i = 0; m && i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        float *x = mc_test_model_read_all(m, t), *y = NULL;
        int L = -1, k0 = strstr(t->name, "embed_q") && !strstr(t->name, "unembed"), k1 = strstr(t->name, "unembed_out") != NULL;
        if ((k0 || k1) && sscanf(t->name, "model.layers.%d.", &L) == 1) {
            char wn[128], sn[160];
            snprintf(wn, sizeof wn, "model.layers.%d.self_attn.kv_b_proj.weight", L);
            snprintf(sn, sizeof sn, "%s_scale_inv", wn);
            const ftensor *w = ffind(&l, wn), *s = ffind(&l, sn);
            uint64_t C = w ? w->shape[1] : 0, sc = s ? s->shape[1] : 0, hd = nope + v;
            y = w && s ? malloc(mc_test_mt_nelem(t) * sizeof *y) : NULL;
            for (uint64_t hh = 0; y && hh < H; hh++)
                for (uint64_t a = 0; a < (k0 ? C : v); a++)
                    for (uint64_t b = 0; b < (k0 ? nope : C); b++) {
                        uint64_t r = hh * hd + (k0 ? b : nope + a), c = k0 ? a : b;
                        float val = e4[((const unsigned char *)w->data)[r * C + c]];
                        val *= ((const float *)s->data)[(r / B) * sc + c / B];
                        y[(hh * (k0 ? C : v) + a) * (k0 ? nope : C) + b] = val;
                    }
        } else {
            const mc_mtensor *r = mc_model_find(h, t->name);
            y = r ? mc_test_model_read_all(h, r) : NULL;
        }
        int eq = x && y && memcmp(x, y, mc_test_mt_nelem(t) * 4) == 0;
        CHECKF(eq, "deepseek f8: %s differs from the block-dequantized expectation", t->name);
        same += eq;
        free(x);
        free(y);
    }
    if (m) {
        mc_test_names_check(m, "deepseek_v3", "deepseek f8");
        printf("deepseek f8 (kv_b_proj F8_E4M3 + 128x128 weight_scale_inv): %zu of %zu tensors exact\n", same,
               m->n_tensors);
    }
    mc_convert_close(m);
    mc_convert_close(h);
    ffree(&l);
}

/* DeepSeek V3.2 (deepseek_v32, HF only: llama.cpp has no converter for
 * it): the corpus-new glm_moe_dsa checkpoint has exactly its module tree
 * and hub names (MLA, indexer, experts, an MTP layer); written here as V3.2
 * is released: model_type deepseek_v32, the attention Linears q_b_proj and
 * the indexer's wq_b / wk as FP8 E4M3 with 128 x 128 weight_scale_inv, an
 * fp8 quantization_config. mconv must give mlx-lm deepseek_v32's names,
 * those tensors block-dequantized, every other tensor equal to the
 * glm_moe_dsa conversion of the bf16 checkpoint, the MTP notice, and drop
 * the fp8 quantization_config. */
static int v32_f8(const char *n)
{
    return has_suffix(n, ".self_attn.q_b_proj.weight") || has_suffix(n, ".indexer.wq_b.weight") ||
           has_suffix(n, ".indexer.wk.weight");
}

static void test_deepseek_v32(void)
{
    const char *p = mc_test_corpus_new_file("models/glm_moe_dsa/hf");
    if (!p) return;
    char hfdir[512], dir[600], path[700];
    snprintf(hfdir, sizeof hfdir, "%s", p);
    mc_model *h = mc_test_model_open(hfdir, NULL);
    CHECK(h != NULL);
    if (!h) return;
    float e4[256];
    unsigned char codes[256];
    mc_error err = {0};
    for (int i = 0; i < 256; i++) codes[i] = (unsigned char)i;
    CHECK(mc_dequant(MC_T_F8_E4M3, codes, e4, 256, &err) == 0);
    flist l = {0};
    int bad = 0, n_f8 = 0;
    const uint64_t B = 128;
    for (uint64_t i = 0; i < h->st->n_tensors && !bad; i++) {
        const mc_st_tensor *t = &h->st->tensors[i];
        unsigned char *raw = malloc(t->nbytes);
        bad = !raw || mc_st_read(h->st, t, 0, raw, t->nbytes, &err) != 0;
        if (!bad && v32_f8(t->name) && t->type == MC_T_BF16 && t->n_dims == 2) {
            bad = f8_add(&l, t, (const uint16_t *)raw, e4, B);
            n_f8++;
        } else if (!bad) {
            ftensor *o = fadd(&l, t->name, t->type, t->n_dims, t->shape);
            bad = !o;
            if (o) memcpy(o->data, raw, t->nbytes);
        }
        free(raw);
    }
    CHECKF(n_f8 == 9, "deepseek_v32 fixture: %d FP8 tensors (3 layers x 3)", n_f8);
    snprintf(dir, sizeof dir, "%s/deepseek-v32", mc_test_tmpdir());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!bad && mc_test_run(NULL, "mkdir -p '%s'", dir) == 0 && write_st(&l, path) == 0);
    cJSON *c = cJSON_Duplicate(h->st->config, 1);
    cJSON *qc = cJSON_CreateObject();
    CHECK(c && qc);
    if (c && qc) {
        cJSON_DeleteItemFromObjectCaseSensitive(c, "model_type");
        cJSON_AddStringToObject(c, "model_type", "deepseek_v32");
        cJSON_DeleteItemFromObjectCaseSensitive(c, "architectures");
        cJSON_AddStringToObject(qc, "quant_method", "fp8");
        cJSON_AddStringToObject(qc, "fmt", "e4m3");
        cJSON_AddItemToObject(qc, "weight_block_size", cJSON_CreateIntArray((const int[]){128, 128}, 2));
        cJSON_AddItemToObject(c, "quantization_config", qc);
        qc = NULL;
    }
    cJSON_Delete(qc);
    char *js = c ? cJSON_Print(c) : NULL;
    cJSON_Delete(c);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(js && mc_test_write_file(path, js, strlen(js)) == 0);
    free(js);
    mc_model *m = bad ? NULL : mc_test_model_open(dir, NULL);
    CHECKF(m != NULL, "deepseek_v32: open");
    size_t same = 0, deq = 0;
    for (size_t i = 0; m && i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        float *x = mc_test_model_read_all(m, t), *y = NULL;
        const ftensor *w = v32_f8(t->name) ? ffind(&l, t->name) : NULL;
        if (w) {
            char sn[200];
            snprintf(sn, sizeof sn, "%s_scale_inv", t->name);
            const ftensor *s = ffind(&l, sn);
            uint64_t C = w->shape[1], sc = s ? s->shape[1] : 0;
            y = s ? malloc(mc_test_mt_nelem(t) * sizeof *y) : NULL;
            for (uint64_t k = 0; y && k < mc_test_mt_nelem(t); k++)
                y[k] = e4[((const unsigned char *)w->data)[k]] * ((const float *)s->data)[(k / C / B) * sc + (k % C) / B];
            deq += y != NULL;
        } else {
            const mc_mtensor *r = mc_model_find(h, t->name);
            y = r ? mc_test_model_read_all(h, r) : NULL;
        }
        int eq = x && y && memcmp(x, y, mc_test_mt_nelem(t) * 4) == 0;
        CHECKF(eq, "deepseek_v32: %s differs from its expectation", t->name);
        same += eq;
        free(x);
        free(y);
    }
    if (m) {
        mc_test_names_check(m, "deepseek_v32", "deepseek_v32 fixture");
        CHECKF(strcmp(m->model_type, "deepseek_v32") == 0, "deepseek_v32: model_type %s", m->model_type);
        CHECK(cJSON_GetObjectItemCaseSensitive(m->config, "quantization_config") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(m->config, "index_topk") != NULL);
        need_mtp_notice(m, "deepseek_v32 fixture");
        CHECK(deq == 6); /* the MTP layer's are dropped */
        cli_end_to_end(dir, "deepseek_v32", "deepseek_v32 fixture");
        printf("deepseek_v32 fixture (q_b_proj, indexer wq_b / wk F8_E4M3 + 128x128 weight_scale_inv): %zu of %zu "
               "tensors exact, %zu block-dequantized\n", same, m->n_tensors, deq);
    }
    mc_convert_close(m);
    mc_convert_close(h);
    ffree(&l);
}

/* src with metadata key `key` set to the u32 `v` (added when absent). */
static int gguf_set_u32(const char *src, const char *dst, const char *key, uint32_t v)
{
    mc_error err = {0};
    mc_gguf *g = NULL;
    mc_gguf_writer *w = NULL;
    mc_gguf_write_opts o = {3, 32, 1, 0, 0, 0};
    if (mc_gguf_open(src, &g, &err)) return 1;
    int rc = mc_gguf_writer_create(&w, dst, &o, &err), set = 0;
    for (uint64_t i = 0; i < g->n_kv && !rc; i++) {
        if (strcmp(g->kv[i].key.s, key) == 0) rc = mc_gguf_writer_add_u32(w, key, v, &err), set = 1;
        else rc = mc_gguf_writer_copy_kv(w, &g->kv[i], &err);
    }
    if (!rc && !set) rc = mc_gguf_writer_add_u32(w, key, v, &err);
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++)
        rc = mc_gguf_writer_add_tensor(w, g->tensors[i].name.s, g->tensors[i].type, g->tensors[i].n_dims,
                                       g->tensors[i].ne, &err);
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++) rc = mc_test_gguf_copy_data(w, g, &g->tensors[i], &err);
    if (!rc) rc = mc_gguf_writer_commit(w, &err);
    else if (w) mc_gguf_writer_abort(w);
    mc_gguf_close(g);
    if (rc) fprintf(stderr, "rewrite %s: %s\n", src, err.msg);
    return rc != 0;
}

/* hf/ of corpus-new `arch` with its config.json edited by `edit`, in tmp/<name>. */
static int hf_with_config(const char *arch, const char *name, void (*edit)(cJSON *), char *dir, size_t cap)
{
    char rel[128], src[512], path[700];
    snprintf(rel, sizeof rel, "models/%s/hf", arch);
    const char *p = mc_test_corpus_new_file(rel);
    if (!p) return 1;
    snprintf(src, sizeof src, "%s", p);
    snprintf(dir, cap, "%s/%s", mc_test_tmpdir(), name);
    if (mkdir(dir, 0755)) return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char target[700];
    snprintf(target, sizeof target, "%s/model.safetensors", src);
    if (symlink(target, path)) return 1;
    snprintf(target, sizeof target, "%s/config.json", src);
    cJSON *c = mc_test_read_json(target);
    if (!c) return 1;
    edit(c);
    char *txt = cJSON_Print(c);
    cJSON_Delete(c);
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = !txt || mc_test_write_file(path, txt, strlen(txt)) != 0;
    free(txt);
    return rc;
}

static void edit_glm4_transformers5(cJSON *c) /* partial_rotary_factor in rope_parameters only, no rope_scaling */
{
    cJSON_DeleteItemFromObjectCaseSensitive(c, "partial_rotary_factor");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "rope_scaling");
    cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, "rope_parameters");
    cJSON_DeleteItemFromObjectCaseSensitive(rp, "partial_rotary_factor");
    cJSON_AddNumberToObject(rp, "partial_rotary_factor", 0.25);
}

static void edit_dsa_classic(cJSON *c) /* a config with rope_theta only, and the router keys */
{
    cJSON_DeleteItemFromObjectCaseSensitive(c, "rope_parameters");
    cJSON_AddStringToObject(c, "scoring_func", "sigmoid");
    cJSON_AddNumberToObject(c, "moe_layer_freq", 1);
}

/* GLM config forms and refusals: an HF glm4_moe config with
 * partial_rotary_factor only in rope_parameters (and no rope_scaling); a
 * glm_moe_dsa config without rope_parameters; a glm4moe GGUF whose
 * expert_gating_func is softmax (1), which mlx-lm's router cannot run:
 * refused with the file and the value, nothing written. */
static void test_glm_configs(void)
{
    char dir[600];
    /* the refusal message's list (mc_convert_supported_archs) names the new tables */
    static const char *const names[] = {"glm4moe", "glm-dsa", "glm4_moe_lite", "deepseek_v32"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECKF(strstr(mc_convert_supported_archs(), names[i]) != NULL, "supported list lacks %s: %s", names[i],
               mc_convert_supported_archs());
    if (hf_with_config("glm4_moe", "glm4-t5", edit_glm4_transformers5, dir, sizeof dir) == 0) {
        mc_model *m = mc_test_model_open(dir, NULL);
        CHECK(m != NULL);
        const cJSON *pv = m ? cJSON_GetObjectItemCaseSensitive(m->config, "partial_rotary_factor") : NULL;
        double prf = cJSON_IsNumber(pv) ? pv->valuedouble : -1;
        CHECKF(prf == 0.25, "glm4_moe hf: partial_rotary_factor %g from rope_parameters", prf);
        CHECK(m && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(m->config, "rope_scaling")));
        mc_convert_close(m);
    }
    if (hf_with_config("glm_moe_dsa", "dsa-classic", edit_dsa_classic, dir, sizeof dir) == 0) {
        mc_model *m = mc_test_model_open(dir, NULL);
        CHECK(m != NULL);
        const cJSON *rp = m ? cJSON_GetObjectItemCaseSensitive(m->config, "rope_parameters") : NULL;
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(rp, "rope_theta");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        CHECKF(cJSON_IsNumber(th) && th->valuedouble == 10000 && cJSON_IsString(ty) &&
                   strcmp(ty->valuestring, "default") == 0,
               "glm_moe_dsa hf: rope_parameters from rope_theta");
        const cJSON *tm = m ? cJSON_GetObjectItemCaseSensitive(m->config, "topk_method") : NULL;
        CHECK(cJSON_IsString(tm) && strcmp(tm->valuestring, "noaux_tc") == 0);
        mc_convert_close(m);
    }
    const char *p = mc_test_corpus_new_file("models/glm4_moe/gguf/glm4_moe-q8_0.gguf");
    if (!p) return;
    char src[512], dst[600];
    snprintf(src, sizeof src, "%s", p);
    snprintf(dst, sizeof dst, "%s/glm4-softmax.gguf", mc_test_tmpdir());
    CHECK(gguf_set_u32(src, dst, "glm4moe.expert_gating_func", 1) == 0);
    mc_model *m = NULL;
    mc_error err = {0};
    CHECK(mc_convert_open(dst, NULL, &m, &err) == MC_ERR_UNSUPPORTED && m == NULL);
    CHECKF(strstr(err.msg, "glm4-softmax.gguf") && strstr(err.msg, "expert_gating_func 1"), "refusal: %s", err.msg);
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s/sm.flash'", mc_test_mconv(), dst, mc_test_tmpdir());
    CHECKF(rc == 1 && out && strstr(out, "expert_gating_func"), "cli refusal exit %d: %s", rc, out ? out : "");
    free(out);
    out = NULL;
    CHECK(mc_test_run(&out, "test ! -e '%s/sm.flash'", mc_test_tmpdir()) == 0);
    free(out);
}

int main(void)
{
    test_corpus("deepseek_v3", "deepseek_v3", "deepseek_v3", DS_RULES, sizeof DS_RULES / sizeof DS_RULES[0], "model.",
                DS_NEED, NULL);
    test_corpus("qwen3_5_moe", "qwen3_5_moe", "qwen3_5_moe", Q35_RULES, sizeof Q35_RULES / sizeof Q35_RULES[0],
                "language_model.model.", Q35_NEED, Q35_MOE_NEED);
    test_corpus_in(1, 1, "glm4_moe", "glm4_moe", "glm4_moe", GLM4_RULES, sizeof GLM4_RULES / sizeof GLM4_RULES[0],
                   "model.", GLM4_NEED, NULL);
    test_corpus_in(1, 1, "glm_moe_dsa", "glm_moe_dsa", "glm_moe_dsa", DSA_RULES,
                   sizeof DSA_RULES / sizeof DSA_RULES[0], "model.", DSA_NEED, NULL);
    test_deepseek_fixtures();
    test_glm_lite_hf();
    test_deepseek_v32();
    test_glm_configs();
    test_deepseek_f8();
    test_qwen_fixture("qwen3_5");
    test_qwen_fixture("qwen3_next");
    return mc_test_finish("test_convert_mla_gdn");
}
