/* mc_convert against the corpus: for every corpus model of the convert
 * architectures (llama, qwen3, qwen3_moe, mixtral, phi3, gemma3)
 *  - the tensor set (names, shapes) from hf/ and from every GGUF equals the
 *    list derived from mlx-lm's model classes (testdata/mlx_names/<arch>.txt);
 *  - bf16 and f32 GGUF give the hf/ values bit for bit (f16 GGUF: the hf
 *    value rounded to f16), except gemma norms (llama.cpp stored 1 + w in
 *    f32): within one f32 ulp of |w| + 1;
 *  - every quantized GGUF gives exactly ggml's dequantization of the source
 *    tensor, permuted/split by an independent implementation here, and the
 *    lossless block path gives the same rows; RMS error against hf/ printed;
 *  - config.json fields equal hf/config.json's;
 *  - qwen3_moe hf-sharded equals hf/;
 *  - superpoint.gguf refused with the supported list, passed by --keep-names.
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_convert.h"
#include "mc_gguf.h"
#include "mc_safetensors.h"
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const ARCHS[] = {"llama", "qwen3", "qwen3_moe", "mixtral", "phi3", "gemma3"};
static const char *const QUANTS[] = {"q8_0", "Q4_K_M", "Q6_K", "IQ4_XS", "Q4_0"};

static mc_model *open_model(const char *path, int keep)
{
    mc_convert_opts o = {keep, 1};
    return mc_test_model_open(path, &o);
}

/* ---------------------------------------------------------- names check */

/* -------------------------------------------------------- config check */

static double cfg_num(const cJSON *c, const char *k, int *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    if (cJSON_IsNumber(v)) { *ok = 1; return v->valuedouble; }
    if (cJSON_IsBool(v)) { *ok = 1; return cJSON_IsTrue(v) ? 1.0 : 0.0; }
    *ok = 0;
    return 0;
}

static double hf_rope_theta(const cJSON *hf, int *ok)
{
    double v = cfg_num(hf, "rope_theta", ok);
    if (*ok) return v;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(hf, "rope_parameters");
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
    return cfg_num(fa ? fa : rp, "rope_theta", ok);
}

static void check_config(const mc_model *m, const cJSON *hf, const char *label)
{
    static const char *const keys[] = {"hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                                       "num_hidden_layers", "intermediate_size", "num_experts",
                                       "num_local_experts", "num_experts_per_tok", "moe_intermediate_size",
                                       "rms_norm_eps", "vocab_size", "tie_word_embeddings", "norm_topk_prob",
                                       "max_position_embeddings", "sliding_window"};
    const cJSON *c = m->config;
    int compared = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int oh, om;
        double h = cfg_num(hf, keys[i], &oh), v = cfg_num(c, keys[i], &om);
        if (!oh && om && strcmp(keys[i], "head_dim") == 0) { /* mlx-lm's default: hidden / heads */
            int a, b;
            h = cfg_num(hf, "hidden_size", &a) / cfg_num(hf, "num_attention_heads", &b);
            oh = a && b;
        }
        if (!oh) continue;
        if (strcmp(keys[i], "sliding_window") == 0 && !om) continue; /* null in hf */
        CHECKF(om, "%s: config.json lacks %s (hf has %g)", label, keys[i], h);
        CHECKF(!om || v == h, "%s: config %s = %.9g, hf %.9g", label, keys[i], v, h);
        compared++;
    }
    int oh, om;
    double h = hf_rope_theta(hf, &oh), v = cfg_num(c, "rope_theta", &om);
    CHECKF(oh && om && h == v, "%s: rope_theta %g vs hf %g", label, v, h);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    CHECKF(cJSON_IsString(mt), "%s: no model_type", label);
    CHECKF(compared >= 9, "%s: only %d config fields compared", label, compared);
}

/* ------------------------------------------------------ value compares */

static int is_gemma_norm(const char *arch, const char *name)
{
    size_t n = strlen(name);
    return strcmp(arch, "gemma3") == 0 && n > 11 && strcmp(name + n - 11, "norm.weight") == 0;
}

static float ulp_of(float x)
{
    x = fabsf(x);
    return nextafterf(x, INFINITY) - x;
}

/* Produced from GGUF (g) vs hf (h). Float source: exact, or f16-rounded. */
static void compare_float(const mc_model *g, const mc_model *h, const char *arch, const char *label)
{
    size_t exact = 0, bounded = 0;
    double worst = 0;
    for (size_t i = 0; i < h->n_tensors; i++) {
        const mc_mtensor *th = &h->tensors[i], *tg = mc_model_find(g, th->name);
        CHECKF(tg != NULL, "%s: %s missing", label, th->name);
        if (!tg) continue;
        CHECKF(mc_test_mt_nelem(tg) == mc_test_mt_nelem(th), "%s: %s sizes differ", label, th->name);
        if (mc_test_mt_nelem(tg) != mc_test_mt_nelem(th)) continue;
        float *a = mc_test_model_read_all(g, tg), *b = mc_test_model_read_all(h, th);
        CHECKF(a && b, "%s: reading %s", label, th->name);
        uint64_t n = mc_test_mt_nelem(th), bad = 0;
        int gn = is_gemma_norm(arch, th->name);
        for (uint64_t k = 0; a && b && k < n; k++) {
            float want = b[k];
            if (gn) {
                float d = fabsf(a[k] - want);
                if (d > ulp_of(fabsf(want) + 1.0f)) bad++;
                if (d > worst) worst = d;
                continue;
            }
            if (tg->src_type == MC_T_F16) want = mc_f16_to_f32(mc_f32_to_f16(want));
            if (mc_f32_bits(a[k]) != mc_f32_bits(want)) bad++;
        }
        CHECKF(bad == 0, "%s: %s: %llu of %llu values differ", label, th->name, (unsigned long long)bad,
               (unsigned long long)n);
        if (gn) bounded++;
        else exact++;
        free(a);
        free(b);
    }
    printf("%s: %zu tensors exact, %zu gemma norms within 1 ulp(|w|+1) (max |diff| %.3g)\n", label, exact, bounded,
           worst);
}

/* Independent GGUF source name for an mlx-lm name (test-side facts). */
static int gguf_source(const char *arch, const char *mlx, char *out, size_t cap, int *perm)
{
    static const struct { const char *mlx, *gguf; } glob[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    static const struct { const char *mlx, *gguf; } lay[] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"}, {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"}, {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.qkv_proj.weight", "attn_qkv.weight"}, {"self_attn.q_norm.weight", "attn_q_norm.weight"},
        {"self_attn.k_norm.weight", "attn_k_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"}, {"mlp.down_proj.weight", "ffn_down.weight"},
        {"mlp.gate_up_proj.weight", "ffn_up.weight"}, {"mlp.gate.weight", "ffn_gate_inp.weight"},
        {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
        {"mlp.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight"},
        {"mlp.switch_mlp.up_proj.weight", "ffn_up_exps.weight"},
        {"mlp.switch_mlp.down_proj.weight", "ffn_down_exps.weight"},
        {"block_sparse_moe.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight"},
        {"block_sparse_moe.switch_mlp.up_proj.weight", "ffn_up_exps.weight"},
        {"block_sparse_moe.switch_mlp.down_proj.weight", "ffn_down_exps.weight"},
        {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
        {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    };
    int llama_family = strcmp(arch, "llama") == 0 || strcmp(arch, "mixtral") == 0;
    *perm = 0;
    for (size_t i = 0; i < sizeof glob / sizeof glob[0]; i++)
        if (strcmp(mlx, glob[i].mlx) == 0) { snprintf(out, cap, "%s", glob[i].gguf); return 0; }
    int L, off = 0;
    if (sscanf(mlx, "model.layers.%d.%n", &L, &off) != 1 || off == 0) return 1;
    const char *rest = mlx + off;
    if (strcmp(rest, "post_attention_layernorm.weight") == 0) {
        snprintf(out, cap, "blk.%d.%s", L, strcmp(arch, "gemma3") == 0 ? "post_attention_norm.weight" : "ffn_norm.weight");
        return 0;
    }
    for (size_t i = 0; i < sizeof lay / sizeof lay[0]; i++)
        if (strcmp(rest, lay[i].mlx) == 0) {
            snprintf(out, cap, "blk.%d.%s", L, lay[i].gguf);
            if (llama_family && strcmp(lay[i].mlx, "self_attn.q_proj.weight") == 0) *perm = 1;
            if (llama_family && strcmp(lay[i].mlx, "self_attn.k_proj.weight") == 0) *perm = 2;
            return 0;
        }
    return 1;
}

typedef struct rms_acc { double se, ss, n; } rms_acc;

/* Quantized GGUF q vs its own source bytes, and vs hf for RMS. */
static void compare_quant(const mc_model *q, const mc_model *h, const char *arch, const char *label)
{
    mc_error err = {0};
    rms_acc tot = {0, 0, 0};
    size_t nt = 0, nblk = 0;
    uint64_t nh = 0, nkv = 0;
    int ok;
    nh = (uint64_t)cfg_num(h->config, "num_attention_heads", &ok);
    nkv = (uint64_t)cfg_num(h->config, "num_key_value_heads", &ok);
    for (size_t i = 0; i < q->n_tensors; i++) {
        const mc_mtensor *t = &q->tensors[i];
        char src[256];
        int perm;
        CHECKF(gguf_source(arch, t->name, src, sizeof src, &perm) == 0, "%s: no test mapping for %s", label, t->name);
        const mc_gguf_tensor *gt = mc_gguf_find_tensor(q->gguf, src);
        CHECKF(gt != NULL, "%s: source %s absent", label, src);
        if (!gt) continue;
        /* ggml's dequantization of the whole source tensor */
        unsigned char *raw = malloc(gt->nbytes);
        float *deq = malloc(gt->nelements * sizeof *deq);
        float *got = mc_test_model_read_all(q, t);
        CHECK(raw && deq && got);
        if (!raw || !deq || !got) { free(raw); free(deq); free(got); continue; }
        CHECK(mc_gguf_read(q->gguf, gt, 0, raw, gt->nbytes, &err) == 0);
        CHECK(mc_dequant(gt->type, raw, deq, (int64_t)gt->nelements, &err) == 0);
        uint64_t rl = mc_test_mt_row_len(t), rows = mc_test_mt_nelem(t) / rl, bad = 0;
        CHECKF(mc_test_mt_nelem(t) == gt->nelements, "%s: %s has %llu elements, source %llu", label, t->name,
               (unsigned long long)mc_test_mt_nelem(t), (unsigned long long)gt->nelements);
        for (uint64_t r = 0; r < rows && mc_test_mt_nelem(t) == gt->nelements; r++) {
            /* hf row r sits at llama.cpp's permuted position */
            uint64_t s = r;
            if (perm) {
                uint64_t heads = perm == 1 ? nh : nkv, hd = rows / heads, half = hd / 2;
                uint64_t hh = r / hd, j = (r % hd) / half, ii = (r % hd) % half;
                s = hh * hd + ii * 2 + j;
            }
            if (is_gemma_norm(arch, t->name)) { /* llama.cpp stored 1 + w */
                for (uint64_t k = 0; k < rl; k++) bad += got[r * rl + k] != deq[s * rl + k] - 1.0f;
                continue;
            }
            if (memcmp(got + r * rl, deq + s * rl, rl * sizeof(float)) != 0) bad++;
        }
        CHECKF(bad == 0, "%s: %s: %llu rows differ from ggml's dequantization", label, t->name,
               (unsigned long long)bad);
        /* lossless path: the same rows as raw blocks */
        if (rows > 1) {
            uint64_t rb;
            CHECK(mc_type_nbytes(gt->type, rl, &rb) == 0);
            uint64_t r0 = rows / 3, k = rows - r0 > 5 ? 5 : rows - r0;
            unsigned char *blk = malloc(k * rb);
            float *d2 = malloc(k * rl * sizeof *d2);
            int ty = -1;
            int rc = mc_model_read_blocks(q, t, r0, k, blk, k * rb, &ty, &err);
            CHECKF(rc == 0, "%s: read_blocks %s: %s", label, t->name, err.msg);
            if (rc == 0) {
                CHECK(ty == gt->type);
                CHECK(mc_dequant(ty, blk, d2, (int64_t)(k * rl), &err) == 0);
                CHECKF(memcmp(d2, got + r0 * rl, k * rl * sizeof(float)) == 0, "%s: %s blocks differ", label,
                       t->name);
                nblk++;
            }
            mc_error_clear(&err);
            free(blk);
            free(d2);
        }
        /* RMS against the original */
        const mc_mtensor *th = mc_model_find(h, t->name);
        float *ref = th ? mc_test_model_read_all(h, th) : NULL;
        CHECK(ref != NULL);
        if (ref) {
            double se = 0, ss = 0;
            for (uint64_t k = 0; k < mc_test_mt_nelem(t); k++) {
                double d = (double)got[k] - ref[k];
                se += d * d;
                ss += (double)ref[k] * ref[k];
            }
            tot.se += se;
            tot.ss += ss;
            tot.n += (double)mc_test_mt_nelem(t);
            /* per tensor: a wrong permutation gives relative error ~1.4 */
            CHECKF(ss == 0 || sqrt(se / ss) < 0.5, "%s: %s relative RMS error %.3f", label, t->name, sqrt(se / ss));
        }
        free(ref);
        nt++;
        free(raw);
        free(deq);
        free(got);
    }
    double rel = tot.ss > 0 ? sqrt(tot.se / tot.ss) : 0;
    printf("%s: %zu tensors = ggml dequantization exactly (%zu block reads); RMS error vs hf %.5f (relative %.4f)\n",
           label, nt, nblk, tot.n > 0 ? sqrt(tot.se / tot.n) : 0.0, rel);
    CHECKF(rel < 0.25, "%s: relative RMS error %.4f too large", label, rel);
}

/* Two threads reading the same tensors must agree with a serial read. */
typedef struct thr_arg { const mc_model *m; int bad; } thr_arg;
static void *thr_run(void *p)
{
    thr_arg *a = p;
    for (size_t i = 0; i < a->m->n_tensors; i++) {
        float *v = mc_test_model_read_all(a->m, &a->m->tensors[i]);
        float *w = mc_test_model_read_all(a->m, &a->m->tensors[i]);
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

static void test_arch(const char *arch)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s/hf", arch);
    const char *hfp = mc_test_corpus_file(rel);
    if (!hfp) return;
    char hfdir[512];
    snprintf(hfdir, sizeof hfdir, "%s", hfp);
    mc_model *h = open_model(hfdir, 0);
    CHECKF(h != NULL, "%s: hf open", arch);
    if (!h) return;
    char label[256];
    snprintf(label, sizeof label, "%s hf", arch);
    mc_test_names_check(h, arch, label);
    check_config(h, h->st->config, label);
    for (size_t k = 0; k < h->n_notices; k++) fprintf(stderr, "%s notice: %s\n", label, h->notices[k]);
    CHECKF(h->n_notices == 0, "%s: every source tensor used, no notices", label);

    static const char *const floats[] = {"bf16", "f32", "f16"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "models/%s/gguf/%s-%s.gguf", arch, arch, floats[i]);
        const char *p = mc_test_corpus_file(rel);
        if (!p) continue;
        mc_model *g = open_model(p, 0);
        CHECKF(g != NULL, "open %s", rel);
        if (!g) continue;
        snprintf(label, sizeof label, "%s %s", arch, floats[i]);
        mc_test_names_check(g, arch, label);
        check_config(g, h->st->config, label);
        for (size_t k = 0; k < g->n_notices; k++) fprintf(stderr, "%s notice: %s\n", label, g->notices[k]);
        CHECKF(g->n_notices == 0, "%s: every source tensor used, no notices", label);
        compare_float(g, h, arch, label);
        if (i == 0) check_threads(g, label);
        mc_convert_close(g);
    }
    for (size_t i = 0; i < sizeof QUANTS / sizeof QUANTS[0]; i++) {
        snprintf(rel, sizeof rel, "models/%s/gguf/%s-%s.gguf", arch, arch, QUANTS[i]);
        const char *p = mc_test_corpus_file(rel);
        if (!p) continue;
        mc_model *g = open_model(p, 0);
        CHECKF(g != NULL, "open %s", rel);
        if (!g) continue;
        snprintf(label, sizeof label, "%s %s", arch, QUANTS[i]);
        mc_test_names_check(g, arch, label);
        compare_quant(g, h, arch, label);
        mc_convert_close(g);
    }
    mc_convert_close(h);
}

static void test_sharded(void)
{
    const char *a = mc_test_corpus_file("models/qwen3_moe/hf");
    char ap[512];
    if (!a) return;
    snprintf(ap, sizeof ap, "%s", a);
    const char *b = mc_test_corpus_file("models/qwen3_moe/hf-sharded");
    if (!b) return;
    mc_model *h = open_model(ap, 0), *s = open_model(b, 0);
    CHECK(h && s);
    if (h && s) {
        CHECK_EQ_U64(h->n_tensors, s->n_tensors);
        size_t same = 0;
        for (size_t i = 0; i < h->n_tensors; i++) {
            const mc_mtensor *t = &h->tensors[i], *u = mc_model_find(s, t->name);
            CHECKF(u != NULL, "sharded lacks %s", t->name);
            if (!u) continue;
            float *x = mc_test_model_read_all(h, t), *y = mc_test_model_read_all(s, u);
            CHECKF(x && y && memcmp(x, y, mc_test_mt_nelem(t) * 4) == 0, "sharded %s differs", t->name);
            same += x && y && memcmp(x, y, mc_test_mt_nelem(t) * 4) == 0;
            free(x);
            free(y);
        }
        printf("qwen3_moe hf-sharded: %zu of %zu tensors identical to hf/\n", same, h->n_tensors);
    }
    mc_convert_close(h);
    mc_convert_close(s);
}

static void test_unknown(void)
{
    const char *p = mc_test_corpus_file("external/gguf/superpoint.gguf");
    if (!p) return;
    mc_model *m = NULL;
    mc_error err = {0};
    int rc = mc_convert_open(p, NULL, &m, &err);
    CHECK(rc == MC_ERR_UNSUPPORTED);
    CHECK(m == NULL);
    CHECKF(strstr(err.msg, mc_convert_supported_archs()) != NULL, "message lacks the supported list: %s", err.msg);
    CHECKF(strstr(err.msg, "superpoint") != NULL, "message lacks the file/arch: %s", err.msg);
    printf("superpoint refused: %s\n", err.msg);
    CHECK(strstr(mc_convert_supported_archs(), "llama") && strstr(mc_convert_supported_archs(), "qwen3moe") &&
          strstr(mc_convert_supported_archs(), "gemma2") && strstr(mc_convert_supported_archs(), "phi3"));

    m = open_model(p, 1);
    CHECK(m != NULL);
    if (!m) return;
    CHECK_EQ_U64(m->n_tensors, m->gguf->n_tensors);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_gguf_tensor *g = &m->gguf->tensors[i];
        const mc_mtensor *t = mc_model_find(m, g->name.s);
        CHECKF(t != NULL, "keep-names lacks %s", g->name.s);
        if (!t) continue;
        CHECK_EQ_U64(mc_test_mt_nelem(t), g->nelements);
        const mc_type_traits *tr = mc_type_get(g->type);
        if (!tr || !tr->to_f32) continue;
        float *v = mc_test_model_read_all(m, t);
        float *d = malloc(g->nelements * sizeof *d);
        unsigned char *raw = malloc(g->nbytes);
        CHECK(v && d && raw && mc_gguf_read(m->gguf, g, 0, raw, g->nbytes, &err) == 0 &&
              mc_dequant(g->type, raw, d, (int64_t)g->nelements, &err) == 0 &&
              memcmp(v, d, g->nelements * sizeof *d) == 0);
        free(v);
        free(d);
        free(raw);
    }
    mc_convert_close(m);
}

static void test_errors(void)
{
    mc_model *m = NULL;
    mc_error err = {0};
    CHECK(mc_convert_open("/nonexistent/x.gguf", NULL, &m, &err) != 0 && m == NULL && err.msg[0]);
    const char *p = mc_test_corpus_file("models/llama/gguf/llama-bf16.gguf");
    if (!p) return;
    m = open_model(p, 0);
    if (!m) return;
    const mc_mtensor *t = mc_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    CHECK(t != NULL);
    if (t) {
        float buf[256];
        mc_error_clear(&err);
        CHECK(mc_model_read_f32(m, t, 255, 2, buf, &err) == MC_ERR_ARG);
        CHECKF(strstr(err.msg, "q_proj") != NULL, "%s", err.msg);
        mc_error_clear(&err);
        CHECK(mc_model_read_f32(m, t, UINT64_MAX, 2, buf, &err) == MC_ERR_ARG);
        mc_error_clear(&err);
        CHECK(mc_model_read_raw(m, t, 0, buf, 4, &err) == MC_ERR_UNSUPPORTED);
    }
    /* bf16 GGUF: q_proj is a permuted selection of bf16 rows: blocks work */
    int ty = -1;
    uint16_t blk[256 * 2];
    mc_error_clear(&err);
    CHECK(t && mc_model_read_blocks(m, t, 0, 2, blk, sizeof blk, &ty, &err) == 0 && ty == MC_T_BF16);
    mc_error_clear(&err);
    CHECK(t && mc_model_read_blocks(m, t, 0, 2, blk, 10, &ty, &err) == MC_ERR_ARG);
    /* tokenizer facts */
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(m->tokenizer, "kind");
    CHECK(cJSON_IsString(k) && strcmp(k->valuestring, "gguf") == 0);
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(m->tokenizer, "vocab_size");
    CHECK(cJSON_IsNumber(vs) && vs->valuedouble == 256);
    CHECK(m->n_layers == 2 && m->n_experts == 0);
    mc_convert_close(m);
}

int main(void)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++) test_arch(ARCHS[i]);
    test_sharded();
    test_unknown();
    test_errors();
    return mc_test_finish("test_convert");
}
