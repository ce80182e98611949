/* mc_convert for the hybrid / MoE families of issue #13 owned here:
 * nemotron_h (Mamba2 + attention + MoE), llama4, olmoe, minimax.
 * Rules: docs/CONVERT.md.
 *
 * Corpus-new models (nemotron_h, llama4):
 *  - the tensor set (names, shapes) from hf/ and every GGUF equals the list
 *    derived from mlx-lm's model class (testdata/mlx_names/<type>.txt);
 *  - the bf16 GGUF gives hf/'s values (after mlx-lm's sanitize) bit for bit,
 *    except nemotron_h A_log (llama.cpp stored f32 -exp(A_log)): within
 *    2^-22 + 2^-24 |A_log|;
 *  - q8_0 and Q4_K_M: every tensor is ggml's dequantization of its source,
 *    checked by applying llama.cpp's forward transforms (written here from
 *    the converter: Llama's Q/K row permutation, -exp(A_log)) to what mconv
 *    produced; relative RMS error against hf/ printed and bounded;
 *  - config.json fields equal hf/config.json's where both exist (the keys a
 *    GGUF cannot give back are listed per family, with the reason);
 *  - --layout mac-code is refused naming the reason (no mac-code engine
 *    builds these families); mconv verify passes on a .flash of each GGUF.
 * .flash and --layout mlx end to end for every corpus-new model:
 * test_flash_reader_corpus (it walks corpus-new).
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_convert.h"
#include "mc_gguf.h"
#include "mc_safetensors.h"
#include "mc_st_write.h"
#include "mc_gguf_write.h"
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ helpers */

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int in_list(const char *const *l, const char *s)
{
    for (size_t i = 0; l && l[i]; i++)
        if (strcmp(l[i], s) == 0) return 1;
    return 0;
}

/* Every key in both configs has the same value, except model_type (the
 * mlx-lm module), the tokenizer ids of the synthetic GGUF vocabulary and
 * `skip` (keys a GGUF cannot give back); every key of `need` is present. */
static void check_config(const mc_model *m, const cJSON *ref, const char *want_type, const char *const *skip,
                         const char *const *need, int min_equal, const char *label)
{
    const cJSON *c = m->config, *it;
    /* a wrapper (llama4): the text model's keys are in text_config */
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c, "text_config");
    if (cJSON_IsObject(tc)) c = tc;
    int compared = 0;
    cJSON_ArrayForEach(it, c) {
        if (strcmp(it->string, "model_type") == 0 || strcmp(it->string, "bos_token_id") == 0 ||
            strcmp(it->string, "eos_token_id") == 0 || in_list(skip, it->string))
            continue;
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
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
    CHECKF(cJSON_IsString(mt) && strcmp(mt->valuestring, want_type) == 0, "%s: model_type %s, want %s", label,
           cJSON_IsString(mt) ? mt->valuestring : "?", want_type);
    for (size_t i = 0; need && need[i]; i++)
        CHECKF(cJSON_GetObjectItemCaseSensitive(c, need[i]) != NULL, "%s: config.json lacks %s", label, need[i]);
    printf("%s: %d config fields equal the reference\n", label, compared);
    CHECKF(compared >= min_equal, "%s: only %d config fields compared", label, compared);
}

/* A_log recovered from llama.cpp's f32 -exp(A_log): the stated bound. */
static double alog_bound(float want)
{
    return ldexp(1.0, -22) + ldexp(fabs((double)want), -24);
}

/* a (from a GGUF) against b (reference), tensor by tensor: bit for bit,
 * except A_log within alog_bound. */
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
        uint64_t n = mc_test_mt_nelem(tb), bad = 0;
        int alog = has_suffix(tb->name, ".A_log");
        for (uint64_t k = 0; x && y && k < n; k++) {
            if (alog) {
                double d = fabs((double)x[k] - (double)y[k]);
                if (d > worst) worst = d;
                bad += d > alog_bound(y[k]);
                continue;
            }
            bad += mc_f32_bits(x[k]) != mc_f32_bits(y[k]);
        }
        CHECKF(bad == 0, "%s: %s: %llu of %llu values differ", label, tb->name, (unsigned long long)bad,
               (unsigned long long)n);
        if (alog) bounded++;
        else exact++;
        free(x);
        free(y);
    }
    printf("%s: %zu tensors bit for bit, %zu A_log within 2^-22 + 2^-24|A_log| (max error %.3g)\n", label, exact,
           bounded, worst);
}

/* ---------------------------------------- llama.cpp's forward transforms */

enum fkind {
    FK_ID,    /* same values in the same order (shape may differ) */
    FK_PERM,  /* Llama's permute(w, heads): rows of each head interleaved (heads = hq / hkv below) */
    FK_ALOG   /* ssm_a = -exp(A_log) */
};

typedef struct fwd_rule {
    int layer;         /* 1: names after "<prefix>layers.N." / "blk.N."; 0: whole names */
    const char *mlx;
    const char *gguf;
    int kind;
    int kv;            /* FK_PERM: 0 query heads, 1 key/value heads */
} fwd_rule;

typedef struct family {
    const char *dir;              /* corpus-new/models/<dir> */
    const char *list;             /* testdata/mlx_names/<list>.txt */
    const char *model_type;
    const char *prefix;           /* of layered names: "backbone." / "model." */
    const fwd_rule *rules;
    size_t n_rules;
    uint64_t heads, kv_heads;     /* for FK_PERM */
    const char *const *gguf_skip; /* config keys a GGUF cannot give back */
    const char *const *need;      /* config keys mlx-lm's ModelArgs requires */
} family;

/* llama.cpp permute(): out row h*hd + 2i + j = in row h*hd + j*hd/2 + i. */
static void fwd_permute(float *dst, const float *src, uint64_t rows, uint64_t rl, uint64_t heads)
{
    uint64_t hd = rows / heads, half = hd / 2;
    for (uint64_t h = 0; h < heads; h++)
        for (uint64_t i = 0; i < half; i++)
            for (uint64_t j = 0; j < 2; j++)
                memcpy(dst + (h * hd + 2 * i + j) * rl, src + (h * hd + j * half + i) * rl, rl * sizeof *dst);
}

static const fwd_rule *find_rule(const family *f, const char *name, char *src, size_t cap)
{
    int L, off = 0;
    size_t pl = strlen(f->prefix);
    int layered = strncmp(name, f->prefix, pl) == 0 && sscanf(name + pl, "layers.%d.%n", &L, &off) == 1 && off > 0;
    for (size_t i = 0; i < f->n_rules; i++) {
        const fwd_rule *r = &f->rules[i];
        if (r->layer != layered) continue;
        if (layered && strcmp(name + pl + off, r->mlx) == 0) {
            snprintf(src, cap, "blk.%d.%s", L, r->gguf);
            return r;
        }
        if (!layered && strcmp(name, r->mlx) == 0) {
            snprintf(src, cap, "%s", r->gguf);
            return r;
        }
    }
    return NULL;
}

/* Produced tensor t of GGUF q against ggml's dequantization of its source
 * through the forward rule; RMS error against the reference summed. */
static int check_forward(const family *f, const mc_model *q, const mc_mtensor *t, const fwd_rule *fr,
                         const char *src, double *se, double *ss, const mc_model *ref, const char *label)
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
    uint64_t bad = 0, rl = mc_test_mt_row_len(t);
    if (!raw || !deq || !fwd || !got) goto done;
    CHECK(mc_gguf_read(q->gguf, gt, 0, raw, gt->nbytes, &err) == 0);
    CHECK(mc_dequant(gt->type, raw, deq, (int64_t)n, &err) == 0);
    if (fr->kind == FK_ALOG) {
        for (uint64_t j = 0; j < n; j++) {
            float a = deq[j], back = (float)-exp((double)got[j]);
            bad += fabsf(back - a) > 2 * (nextafterf(fabsf(a), INFINITY) - fabsf(a));
        }
    } else {
        if (fr->kind == FK_PERM) fwd_permute(fwd, got, n / rl, rl, fr->kv ? f->kv_heads : f->heads);
        else memcpy(fwd, got, n * sizeof *fwd);
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

static void check_quantized(const family *f, const mc_model *q, const mc_model *ref, const char *label)
{
    double se = 0, ss = 0;
    size_t checked = 0;
    for (size_t i = 0; i < q->n_tensors; i++) {
        const mc_mtensor *t = &q->tensors[i];
        char src[256];
        const fwd_rule *fr = find_rule(f, t->name, src, sizeof src);
        CHECKF(fr != NULL, "%s: no test rule for %s", label, t->name);
        if (fr && check_forward(f, q, t, fr, src, &se, &ss, ref, label) == 0) checked++;
    }
    double rel = ss > 0 ? sqrt(se / ss) : 0;
    printf("%s: %zu of %zu tensors = ggml's dequantization of their source through llama.cpp's transforms; RMS error vs hf/ relative %.4f\n",
           label, checked, q->n_tensors, rel);
    CHECK(checked == q->n_tensors);
    CHECKF(rel < 0.25, "%s: relative RMS error %.4f", label, rel);
}

/* mconv on the command line: a .flash of src verifies against its source;
 * --layout mac-code is refused naming the family. */
static void check_cli(const char *src, const char *model_type, const char *tag)
{
    char *out = NULL;
    const char *tmp = mc_test_tmpdir();
    int rc = mc_test_run(&out, "'%s' '%s' '%s/%s.flash' && '%s' verify '%s/%s.flash' --source '%s'", mc_test_mconv(),
                         src, tmp, tag, mc_test_mconv(), tmp, tag, src);
    CHECKF(rc == 0 && out && strstr(out, "sound"), "%s: convert + verify: %s", tag, out ? out : "");
    free(out);
    out = NULL;
    rc = mc_test_run(&out, "'%s' '%s' '%s/%s-mc' --layout mac-code", mc_test_mconv(), src, tmp, tag);
    char want[128];
    snprintf(want, sizeof want, "no mac-code engine builds %s", model_type);
    CHECKF(rc != 0 && out && strstr(out, want), "%s: --layout mac-code: rc %d: %s", tag, rc, out ? out : "");
    free(out);
}

static void test_family(const family *f)
{
    char rel[256], label[256];
    snprintf(rel, sizeof rel, "models/%s/hf", f->dir);
    const char *p = mc_test_corpus_new_file(rel);
    if (!p) return;
    mc_model *h = mc_test_model_open(p, NULL);
    CHECKF(h != NULL, "%s: hf open", f->dir);
    if (!h) return;
    snprintf(label, sizeof label, "%s hf", f->dir);
    mc_test_names_check(h, f->list, label);
    check_config(h, h->st->config, f->model_type, NULL, f->need, 12, label);
    static const char *const quants[] = {"q8_0", "Q4_K_M"};
    snprintf(rel, sizeof rel, "models/%s/gguf/%s-bf16.gguf", f->dir, f->dir);
    p = mc_test_corpus_new_file(rel);
    if (p) {
        mc_model *g = mc_test_model_open(p, NULL);
        CHECKF(g != NULL, "open %s", rel);
        if (g) {
            snprintf(label, sizeof label, "%s bf16", f->dir);
            mc_test_names_check(g, f->list, label);
            check_config(g, h->st->config, f->model_type, f->gguf_skip, f->need, 12, label);
            compare_models(g, h, label);
            for (size_t i = 0; i < g->n_notices; i++) printf("%s notice: %s\n", label, g->notices[i]);
            mc_convert_close(g);
        }
        check_cli(p, f->model_type, f->dir);
    }
    for (size_t k = 0; k < 2; k++) {
        snprintf(rel, sizeof rel, "models/%s/gguf/%s-%s.gguf", f->dir, f->dir, quants[k]);
        p = mc_test_corpus_new_file(rel);
        if (!p) continue;
        mc_model *q = mc_test_model_open(p, NULL);
        CHECKF(q != NULL, "open %s", rel);
        if (!q) continue;
        snprintf(label, sizeof label, "%s %s", f->dir, quants[k]);
        mc_test_names_check(q, f->list, label);
        check_quantized(f, q, h, label);
        mc_convert_close(q);
    }
    mc_convert_close(h);
}

/* ------------------------------------------------------------ nemotron_h */

static const fwd_rule NH_RULES[] = {
    {0, "backbone.embeddings.weight", "token_embd.weight", FK_ID, 0},
    {0, "backbone.norm_f.weight", "output_norm.weight", FK_ID, 0},
    {0, "lm_head.weight", "output.weight", FK_ID, 0},
    {1, "norm.weight", "attn_norm.weight", FK_ID, 0},
    {1, "mixer.A_log", "ssm_a", FK_ALOG, 0},
    {1, "mixer.D", "ssm_d", FK_ID, 0},
    {1, "mixer.dt_bias", "ssm_dt.bias", FK_ID, 0},
    /* [C, K] squeezed by the converter, mlx-lm's [C, K, 1]: same order */
    {1, "mixer.conv1d.weight", "ssm_conv1d.weight", FK_ID, 0},
    {1, "mixer.conv1d.bias", "ssm_conv1d.bias", FK_ID, 0},
    {1, "mixer.in_proj.weight", "ssm_in.weight", FK_ID, 0},
    /* [I] reshaped to [groups, I / groups]: same order */
    {1, "mixer.norm.weight", "ssm_norm.weight", FK_ID, 0},
    {1, "mixer.out_proj.weight", "ssm_out.weight", FK_ID, 0},
    /* NemotronHModel permutes Q/K as LlamaModel does (undo_permute) */
    {1, "mixer.q_proj.weight", "attn_q.weight", FK_PERM, 0},
    {1, "mixer.k_proj.weight", "attn_k.weight", FK_PERM, 1},
    {1, "mixer.v_proj.weight", "attn_v.weight", FK_ID, 0},
    {1, "mixer.o_proj.weight", "attn_output.weight", FK_ID, 0},
    {1, "mixer.gate.weight", "ffn_gate_inp.weight", FK_ID, 0},
    {1, "mixer.gate.e_score_correction_bias", "exp_probs_b.bias", FK_ID, 0},
    {1, "mixer.shared_experts.up_proj.weight", "ffn_up_shexp.weight", FK_ID, 0},
    {1, "mixer.shared_experts.down_proj.weight", "ffn_down_shexp.weight", FK_ID, 0},
    {1, "mixer.switch_mlp.fc1.weight", "ffn_up_exps.weight", FK_ID, 0},
    {1, "mixer.switch_mlp.fc2.weight", "ffn_down_exps.weight", FK_ID, 0},
    {1, "mixer.up_proj.weight", "ffn_up.weight", FK_ID, 0},
    {1, "mixer.down_proj.weight", "ffn_down.weight", FK_ID, 0},
};

/* max_position_embeddings: the converter writes its own context length
 * (1048576), not config.json's; intermediate_size: the MLP blocks' width,
 * and this model has none ("ME*E"): the file holds only the MoE widths. */
static const char *const NH_SKIP[] = {"max_position_embeddings", "intermediate_size", NULL};
static const char *const NH_NEED[] = {
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "max_position_embeddings",
    "num_attention_heads", "num_key_value_heads", "attention_bias", "mamba_num_heads", "mamba_head_dim",
    "mamba_proj_bias", "ssm_state_size", "conv_kernel", "n_groups", "mlp_bias", "layer_norm_epsilon", "use_bias",
    "use_conv_bias", "hybrid_override_pattern", "head_dim", "moe_intermediate_size",
    "moe_shared_expert_intermediate_size", "n_group", "n_routed_experts", "n_shared_experts", "topk_group",
    "num_experts_per_tok", "norm_topk_prob", "routed_scaling_factor", NULL};

static const family NEMOTRON_H = {"nemotron_h", "nemotron_h", "nemotron_h", "backbone.", NH_RULES,
                                  sizeof NH_RULES / sizeof NH_RULES[0], 4, 2, NH_SKIP, NH_NEED};

/* hf/ config: time_step_limit as transformers 5 writes infinity is
 * dropped (mlx-lm's default is (0, inf)); the pattern mismatching the
 * tensors is refused. */
static void test_nemotron_h_config(void)
{
    const char *p = mc_test_corpus_new_file("models/nemotron_h/hf");
    if (!p) return;
    mc_model *h = mc_test_model_open(p, NULL);
    CHECK(h != NULL);
    if (!h) return;
    CHECK(cJSON_GetObjectItemCaseSensitive(h->config, "time_step_limit") == NULL);
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(h->config, "hybrid_override_pattern");
    CHECK(cJSON_IsString(pat) && strcmp(pat->valuestring, "ME*E") == 0);
    mc_convert_close(h);
    p = mc_test_corpus_new_file("models/nemotron_h/gguf/nemotron_h-bf16.gguf");
    if (!p) return;
    mc_model *g = mc_test_model_open(p, NULL);
    CHECK(g != NULL);
    if (!g) return;
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(g->config, "num_key_value_heads");
    /* head_count_kv is a per-layer array [0, 0, 2, 0] in the GGUF */
    CHECK(cJSON_IsNumber(kv) && kv->valuedouble == 2);
    pat = cJSON_GetObjectItemCaseSensitive(g->config, "hybrid_override_pattern");
    CHECK(cJSON_IsString(pat) && strcmp(pat->valuestring, "ME*E") == 0);
    /* pinned vs streamed: experts streamed, the rest (SSM, router, shared
     * expert) pinned */
    for (size_t i = 0; i < g->n_tensors; i++) {
        const mc_mtensor *t = &g->tensors[i];
        int expert = strstr(t->name, "switch_mlp.") != NULL;
        CHECKF(t->role == (expert ? MC_ROLE_EXPERT : MC_ROLE_PINNED), "%s: role %d", t->name, t->role);
    }
    mc_convert_close(g);
}

/* ---------------------------------------------------------------- llama4 */

static const fwd_rule L4_RULES[] = {
    {0, "language_model.model.embed_tokens.weight", "token_embd.weight", FK_ID, 0},
    {0, "language_model.model.norm.weight", "output_norm.weight", FK_ID, 0},
    {0, "language_model.lm_head.weight", "output.weight", FK_ID, 0},
    {1, "input_layernorm.weight", "attn_norm.weight", FK_ID, 0},
    {1, "post_attention_layernorm.weight", "ffn_norm.weight", FK_ID, 0},
    /* Llama4Model: undo_permute = False (interleaved rotary as stored) */
    {1, "self_attn.q_proj.weight", "attn_q.weight", FK_ID, 0},
    {1, "self_attn.k_proj.weight", "attn_k.weight", FK_ID, 0},
    {1, "self_attn.v_proj.weight", "attn_v.weight", FK_ID, 0},
    {1, "self_attn.o_proj.weight", "attn_output.weight", FK_ID, 0},
    {1, "feed_forward.gate_proj.weight", "ffn_gate.weight", FK_ID, 0},
    {1, "feed_forward.up_proj.weight", "ffn_up.weight", FK_ID, 0},
    {1, "feed_forward.down_proj.weight", "ffn_down.weight", FK_ID, 0},
    {1, "feed_forward.router.weight", "ffn_gate_inp.weight", FK_ID, 0},
    {1, "feed_forward.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight", FK_ID, 0},
    {1, "feed_forward.shared_expert.up_proj.weight", "ffn_up_shexp.weight", FK_ID, 0},
    {1, "feed_forward.shared_expert.down_proj.weight", "ffn_down_shexp.weight", FK_ID, 0},
    /* the converter split gate_up_proj [E, H, 2I] and transposed it:
     * [E, I, H] as mlx-lm's sanitize makes them */
    {1, "feed_forward.experts.gate_proj.weight", "ffn_gate_exps.weight", FK_ID, 0},
    {1, "feed_forward.experts.up_proj.weight", "ffn_up_exps.weight", FK_ID, 0},
    {1, "feed_forward.experts.down_proj.weight", "ffn_down_exps.weight", FK_ID, 0},
};

/* attention_chunk_size: no GGUF key; llama.cpp's constant 8192 (Scout and
 * Maverick) is written, the corpus model says 64. */
static const char *const L4_SKIP[] = {"attention_chunk_size", NULL};
static const char *const L4_NEED[] = {
    "attention_bias", "attention_chunk_size", "head_dim", "hidden_size", "interleave_moe_layer_step",
    "intermediate_size", "intermediate_size_mlp", "max_position_embeddings", "model_type", "num_attention_heads",
    "num_experts_per_tok", "num_hidden_layers", "num_key_value_heads", "num_local_experts", "rms_norm_eps",
    "rope_scaling", "rope_theta", "use_qk_norm", "vocab_size", NULL};

static const family LLAMA4 = {"llama4", "llama4", "llama4", "language_model.model.", L4_RULES,
                              sizeof L4_RULES / sizeof L4_RULES[0], 4, 2, L4_SKIP, L4_NEED};

/* The experts from hf/ against hf/'s fused tensors read directly: gate =
 * gate_up[e, :, :I]^T, up = gate_up[e, :, I:]^T, down = down_proj[e]^T
 * (mlx-lm's sanitize, computed here); pinned vs streamed roles. */
static void test_llama4_experts(void)
{
    const char *p = mc_test_corpus_new_file("models/llama4/hf/model.safetensors");
    const char *d = mc_test_corpus_new_file("models/llama4/hf");
    if (!p || !d) return;
    mc_st *st = NULL;
    mc_error err = {0};
    CHECK(mc_st_open(p, &st, &err) == 0);
    mc_model *h = mc_test_model_open(d, NULL);
    CHECK(h != NULL);
    if (!st || !h) {
        mc_st_close(st);
        mc_convert_close(h);
        return;
    }
    const mc_st_tensor *gu = mc_st_find(st, "model.layers.1.feed_forward.experts.gate_up_proj");
    const mc_st_tensor *dn = mc_st_find(st, "model.layers.1.feed_forward.experts.down_proj");
    const mc_mtensor *tg = mc_model_find(h, "language_model.model.layers.1.feed_forward.experts.gate_proj.weight");
    const mc_mtensor *tu = mc_model_find(h, "language_model.model.layers.1.feed_forward.experts.up_proj.weight");
    const mc_mtensor *td = mc_model_find(h, "language_model.model.layers.1.feed_forward.experts.down_proj.weight");
    CHECK(gu && dn && tg && tu && td);
    if (gu && dn && tg && tu && td && gu->n_dims == 3 && dn->n_dims == 3) {
        uint64_t E = gu->shape[0], H = gu->shape[1], I2 = gu->shape[2], I = I2 / 2;
        uint16_t *a = malloc(gu->nbytes), *b = malloc(dn->nbytes);
        float *g = mc_test_model_read_all(h, tg), *u = mc_test_model_read_all(h, tu), *dd = mc_test_model_read_all(h, td);
        CHECK(a && b && g && u && dd);
        if (a && b && g && u && dd && mc_st_read(st, gu, 0, a, gu->nbytes, &err) == 0 &&
            mc_st_read(st, dn, 0, b, dn->nbytes, &err) == 0) {
            uint64_t bad = 0;
            for (uint64_t e = 0; e < E; e++)
                for (uint64_t i = 0; i < I; i++)
                    for (uint64_t k = 0; k < H; k++) {
                        float wg = mc_bf16_to_f32(a[(e * H + k) * I2 + i]);
                        float wu = mc_bf16_to_f32(a[(e * H + k) * I2 + I + i]);
                        float wd = mc_bf16_to_f32(b[(e * I + i) * H + k]);
                        bad += mc_f32_bits(g[(e * I + i) * H + k]) != mc_f32_bits(wg);
                        bad += mc_f32_bits(u[(e * I + i) * H + k]) != mc_f32_bits(wu);
                        bad += mc_f32_bits(dd[(e * H + k) * I + i]) != mc_f32_bits(wd);
                    }
            CHECKF(bad == 0, "llama4 hf: %llu expert values differ from the fused sources", (unsigned long long)bad);
            printf("llama4 hf: experts = gate_up_proj halves and down_proj transposed (%llu values)\n",
                   (unsigned long long)(3 * E * I * H));
        } else {
            CHECK(0);
        }
        free(a);
        free(b);
        free(g);
        free(u);
        free(dd);
    }
    for (size_t i = 0; i < h->n_tensors; i++) {
        const mc_mtensor *t = &h->tensors[i];
        int want = strstr(t->name, ".experts.") ? MC_ROLE_EXPERT
                   : strstr(t->name, "layers.0.feed_forward.") ? MC_ROLE_FFN : MC_ROLE_PINNED;
        CHECKF((int)t->role == want, "%s: role %d, want %d", t->name, (int)t->role, want);
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(h->config, "text_config");
    const cJSON *mt = tc ? cJSON_GetObjectItemCaseSensitive(tc, "model_type") : NULL;
    CHECK(cJSON_IsString(mt) && strcmp(mt->valuestring, "llama4_text") == 0);
    mc_st_close(st);
    mc_convert_close(h);
}

/* dir/model.safetensors: every tensor of src under prefix, then n_extra
 * bf16 [4, 4] zero tensors named extra[]. 1 on success. */
static int st_rewrite(const char *src, const char *dir, const char *prefix, const char *const *extra, size_t n_extra)
{
    char path[1200], name[512];
    mc_st *st = NULL;
    mc_st_writer *w = NULL;
    mc_error err = {0};
    uint16_t vz[16] = {0};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int ok = mc_st_open(src, &st, &err) == 0 && mc_st_writer_new(path, 0, &w, &err) == 0;
    for (uint64_t i = 0; ok && i < st->n_tensors; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, st->tensors[i].name);
        ok = mc_st_writer_add(w, name, st->tensors[i].type, st->tensors[i].n_dims, st->tensors[i].shape, &err) == 0;
    }
    for (size_t i = 0; ok && i < n_extra; i++)
        ok = mc_st_writer_add(w, extra[i], MC_T_BF16, 2, (uint64_t[]){4, 4}, &err) == 0;
    ok = ok && mc_st_writer_begin(w, &err) == 0;
    for (uint64_t i = 0; ok && i < st->n_tensors; i++) {
        void *buf = malloc(st->tensors[i].nbytes ? st->tensors[i].nbytes : 1);
        ok = buf && mc_st_read(st, &st->tensors[i], 0, buf, st->tensors[i].nbytes, &err) == 0 &&
             mc_st_writer_tensor(w, NULL, buf, st->tensors[i].nbytes, &err) == 0;
        free(buf);
    }
    for (size_t i = 0; ok && i < n_extra; i++) ok = mc_st_writer_tensor(w, NULL, vz, sizeof vz, &err) == 0;
    ok = ok && mc_st_writer_commit(w, &err) == 0;
    if (!ok) fprintf(stderr, "rewrite %s: %s\n", src, err.msg);
    mc_st_writer_free(w);
    mc_st_close(st);
    return ok;
}

/* nemotron_h with an MTP block (mtp.* tensors, as the Nemotron-3 hub
 * checkpoints carry): dropped with a notice, as mlx-lm's sanitize does;
 * the rest equals hf/ bit for bit. A config whose pattern disagrees with
 * the tensors is refused. */
static void test_nemotron_h_mtp(void)
{
    const char *p = mc_test_corpus_new_file("models/nemotron_h/hf/model.safetensors");
    const char *c = mc_test_corpus_new_file("models/nemotron_h/hf/config.json");
    const char *d = mc_test_corpus_new_file("models/nemotron_h/hf");
    if (!p || !c || !d) return;
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/nemotron_h-mtp", mc_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    size_t clen;
    unsigned char *craw = mc_test_read_file(c, &clen);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(craw && mc_test_write_file(path, craw, clen) == 0);
    static const char *const mtp[] = {"mtp.layers.0.norm.weight", "mtp.layers.0.mixer.q_proj.weight"};
    CHECK(st_rewrite(p, dir, "", mtp, 2));
    mc_model *a = mc_test_model_open(dir, NULL), *h = mc_test_model_open(d, NULL);
    CHECK(a && h);
    if (a && h) {
        compare_models(a, h, "nemotron_h mtp");
        int noted = 0;
        for (size_t i = 0; i < a->n_notices; i++) noted |= strstr(a->notices[i], "MTP") != NULL;
        CHECKF(noted, "nemotron_h mtp: no MTP notice");
    }
    mc_convert_close(a);
    mc_convert_close(h);
    /* hybrid_override_pattern "M*EE" against tensors "ME*E": refused */
    char *cfg = craw ? malloc(clen + 1) : NULL;
    if (cfg) {
        memcpy(cfg, craw, clen);
        cfg[clen] = '\0';
        char *q = strstr(cfg, "\"ME*E\"");
        CHECK(q != NULL);
        if (q) memcpy(q, "\"M*EE\"", 6);
        CHECK(mc_test_write_file(path, cfg, clen) == 0);
        mc_model *b = NULL;
        mc_error err = {0};
        CHECK(mc_convert_open(dir, NULL, &b, &err) != 0);
        CHECKF(strstr(err.msg, "M*EE") && strstr(err.msg, "ME*E"), "refusal: %s", err.msg);
        mc_convert_close(b);
        free(cfg);
    }
    free(craw);
}

/* The dense Nemotron-H form (GGUF arch nemotron_h, MLP blocks "-"), made
 * from the corpus bf16 GGUF the way the converter writes a dense model:
 * keys under nemotron_h., no expert keys; in the MoE layers (1, 3) the
 * router and routed experts dropped and the shared expert renamed to the
 * MLP block's ffn_up / ffn_down. mconv must give mlx-lm's dense names
 * (testdata/mlx_names/nemotron_h_dense.txt), mixer.up_proj / down_proj
 * equal to hf/'s shared expert bit for bit, streamed as dense FFNs, and
 * the pattern "M-*-". */
static void test_nemotron_h_dense(void)
{
    const char *p = mc_test_corpus_new_file("models/nemotron_h/gguf/nemotron_h-bf16.gguf");
    const char *d = mc_test_corpus_new_file("models/nemotron_h/hf");
    if (!p || !d) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/nemotron_h-dense.gguf", mc_test_tmpdir());
    mc_gguf *src = NULL;
    mc_gguf_writer *w = NULL;
    mc_error err = {0};
    int rc = mc_gguf_open(p, &src, &err);
    rc = rc ? rc : mc_gguf_writer_create(&w, path, NULL, &err);
    static const char pre[] = "nemotron_h_moe.";
    for (uint64_t i = 0; !rc && i < src->n_kv; i++) {
        mc_gguf_kv kv = src->kv[i];
        const char *k = kv.key.s;
        char nk[256];
        if (strcmp(k, "general.architecture") == 0) {
            rc = mc_gguf_writer_add_str(w, k, "nemotron_h", &err);
            continue;
        }
        if (strncmp(k, pre, sizeof pre - 1) == 0) {
            if (strstr(k, "expert")) continue;
            snprintf(nk, sizeof nk, "nemotron_h.%s", k + sizeof pre - 1);
            kv.key.s = nk;
            kv.key.len = strlen(nk);
        }
        rc = mc_gguf_writer_copy_kv(w, &kv, &err);
    }
    const mc_gguf_tensor *keep[64];
    size_t n = 0;
    for (uint64_t i = 0; !rc && i < src->n_tensors && n < 64; i++) {
        const mc_gguf_tensor *t = &src->tensors[i];
        const char *nm = t->name.s;
        if (strstr(nm, "_exps.") || strstr(nm, "exp_probs_b") || strstr(nm, "ffn_gate_inp")) continue;
        char nn[128];
        snprintf(nn, sizeof nn, "%s", nm);
        char *sh = strstr(nn, "_shexp");
        if (sh) memmove(sh, sh + 6, strlen(sh + 6) + 1);
        rc = mc_gguf_writer_add_tensor(w, nn, t->type, t->n_dims, t->ne, &err);
        keep[n++] = t;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        void *buf = malloc(keep[i]->nbytes);
        rc = !buf || mc_gguf_read(src, keep[i], 0, buf, keep[i]->nbytes, &err) ||
             mc_gguf_writer_write(w, buf, keep[i]->nbytes, &err);
        free(buf);
    }
    if (!rc) rc = mc_gguf_writer_commit(w, &err);
    else if (w) mc_gguf_writer_abort(w);
    mc_gguf_close(src);
    CHECKF(rc == 0, "nemotron_h dense fixture: %s", err.msg);
    if (rc) return;
    mc_model *g = mc_test_model_open(path, NULL), *h = mc_test_model_open(d, NULL);
    CHECK(g && h);
    if (g && h) {
        mc_test_names_check(g, "nemotron_h_dense", "nemotron_h dense");
        size_t same = 0;
        for (size_t i = 0; i < g->n_tensors; i++) {
            const mc_mtensor *t = &g->tensors[i];
            char ref[160];
            snprintf(ref, sizeof ref, "%s", t->name);
            char *m = strstr(ref, "mixer.up_proj");
            if (!m) m = strstr(ref, "mixer.down_proj");
            if (m) { /* the shared expert it was made of */
                char tail[64];
                snprintf(tail, sizeof tail, "%s", m + 6);
                snprintf(m, sizeof ref - (size_t)(m - ref), "mixer.shared_experts.%s", tail);
                CHECKF(t->role == MC_ROLE_FFN, "%s: role %d", t->name, (int)t->role);
            }
            const mc_mtensor *r = mc_model_find(h, ref);
            CHECKF(r != NULL, "nemotron_h dense: %s has no reference %s", t->name, ref);
            if (!r || mc_test_mt_nelem(r) != mc_test_mt_nelem(t)) continue;
            float *x = mc_test_model_read_all(g, t), *y = mc_test_model_read_all(h, r);
            uint64_t bad = 0;
            int alog = has_suffix(t->name, ".A_log");
            for (uint64_t k = 0; x && y && k < mc_test_mt_nelem(t); k++)
                bad += alog ? fabs((double)x[k] - y[k]) > alog_bound(y[k]) : mc_f32_bits(x[k]) != mc_f32_bits(y[k]);
            CHECKF(x && y && bad == 0, "nemotron_h dense: %s: %llu values differ", t->name, (unsigned long long)bad);
            same += x && y && bad == 0;
            free(x);
            free(y);
        }
        printf("nemotron_h dense: %zu of %zu tensors equal hf/'s\n", same, g->n_tensors);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(g->config, "hybrid_override_pattern");
        const cJSON *is = cJSON_GetObjectItemCaseSensitive(g->config, "intermediate_size");
        CHECK(cJSON_IsString(pat) && strcmp(pat->valuestring, "M-*-") == 0);
        CHECK(cJSON_IsNumber(is) && is->valuedouble == 32);
        CHECK(cJSON_GetObjectItemCaseSensitive(g->config, "n_routed_experts") == NULL);
    }
    mc_convert_close(g);
    mc_convert_close(h);
    check_cli(path, "nemotron_h", "nemotron_h_dense");
}

/* The hub's Scout / Maverick form, written here from the corpus model:
 * every tensor under language_model., vision tensors beside them, config
 * {model_type llama4, text_config, vision_config}. The conversion equals
 * the text-only hf/'s tensor for tensor, bit for bit; the vision tensors
 * are left out (mlx-lm's sanitize drops them). */
static void test_llama4_wrapper(void)
{
    const char *p = mc_test_corpus_new_file("models/llama4/hf/model.safetensors");
    const char *c = mc_test_corpus_new_file("models/llama4/hf/config.json");
    const char *d = mc_test_corpus_new_file("models/llama4/hf");
    if (!p || !c || !d) return;
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/llama4-wrapper", mc_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    cJSON *text = mc_test_read_json(c);
    cJSON *top = cJSON_CreateObject();
    CHECK(text && top);
    if (!text || !top) {
        cJSON_Delete(text);
        cJSON_Delete(top);
        return;
    }
    cJSON_AddStringToObject(top, "model_type", "llama4");
    cJSON_AddItemToObject(top, "text_config", text);
    cJSON *vc = cJSON_AddObjectToObject(top, "vision_config");
    cJSON_AddNumberToObject(vc, "hidden_size", 8);
    char *js = cJSON_Print(top);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(js && mc_test_write_file(path, js, strlen(js)) == 0);
    free(js);
    cJSON_Delete(top);
    static const char *const vision[] = {"vision_model.patch_embedding.linear.weight",
                                         "multi_modal_projector.linear_1.weight"};
    int ok = st_rewrite(p, dir, "language_model.", vision, 2);
    CHECKF(ok, "llama4 wrapper fixture");
    if (!ok) return;
    mc_model *a = mc_test_model_open(dir, NULL), *h = mc_test_model_open(d, NULL);
    CHECK(a && h);
    if (a && h) {
        mc_test_names_check(a, "llama4", "llama4 wrapper");
        compare_models(a, h, "llama4 wrapper");
        check_config(a, cJSON_GetObjectItemCaseSensitive(h->config, "text_config"), "llama4", NULL, L4_NEED, 30,
                     "llama4 wrapper");
        int noted = 0;
        for (size_t i = 0; i < a->n_notices; i++) noted |= strstr(a->notices[i], "vision_model.") != NULL;
        CHECKF(noted, "llama4 wrapper: the vision tensors are not reported as not used");
    }
    mc_convert_close(a);
    mc_convert_close(h);
}

/* ------------------------------------------- fixtures from the spec (no corpus) */

/* One mlx-lm tensor of a fixture: its GGUF name (as llama.cpp's converter
 * names it) and HF name ("%d" the layer, then the expert for per-expert HF
 * tensors that the converter and mlx-lm's sanitize both stack on a new
 * leading axis, in expert order). shape: the HF shape of one tensor, as
 * letters: V vocab, H hidden, Q heads*head_dim, K kv_heads*head_dim, I
 * expert width, E experts. norm: values near 1. f32: an F32 tensor in HF
 * (e_score_correction_bias, as transformers keeps it). */
typedef struct fx_spec {
    int layered, experts, norm, f32;
    const char *mlx, *gguf, *hf, *shape;
} fx_spec;

typedef struct fx_dims {
    uint64_t V, H, Q, K, I, E, L;
} fx_dims;

static uint64_t fx_dim(const fx_dims *d, char c)
{
    switch (c) {
    case 'V': return d->V;
    case 'H': return d->H;
    case 'Q': return d->Q;
    case 'K': return d->K;
    case 'I': return d->I;
    case 'E': return d->E;
    default: return 0;
    }
}

/* Deterministic values, distinct per tensor, exact in bf16. */
static float fx_value(const char *name, uint64_t i, int norm)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h ^= i * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    float v = (float)((double)(h % 2001) - 1000.0) / 4000.0f;
    return mc_bf16_to_f32(mc_f32_to_bf16(norm ? 1.0f + v / 4 : v));
}

typedef struct fx_out {
    char mlx[160], gguf[160];
    uint32_t nd;          /* mlx (numpy) dims */
    uint64_t shape[3];
    int f32;              /* GGUF F32 (1-D tensors, as the converter writes them) */
    float *v;             /* the values mlx-lm loads */
} fx_out;

/* GGUF metadata of a fixture (the keys the converter writes). */
typedef int (*fx_kv_fn)(mc_gguf_writer *w, const char *arch, const fx_dims *d, mc_error *err);

/* Q8_0 as ggml quantizes (quantize_row_q8_0_ref): per 32 values d =
 * max|x| / 127 stored as f16, codes round(x / d). */
static void fx_q8_0(const float *x, uint64_t n, unsigned char *out)
{
    for (uint64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        float dd = amax / 127.0f, id = dd ? 1.0f / dd : 0.0f;
        uint16_t h = mc_f32_to_f16(dd);
        memcpy(out + b * 34, &h, 2);
        for (int j = 0; j < 32; j++) out[b * 34 + 2 + j] = (unsigned char)(int8_t)roundf(x[b * 32 + j] * id);
    }
}

/* The GGUF as llama.cpp's converter writes it: 1-D tensors F32, the rest
 * bf16 (q8: Q8_0, as llama-quantize makes a q8_0 file), experts stacked,
 * ne the reversed numpy shape. */
static int fx_write_gguf(const char *gguf_path, const char *arch, const fx_dims *d, fx_kv_fn kv, const fx_out *outs,
                         size_t no, int q8)
{
    mc_error err = {0};
    mc_gguf_writer *g = NULL;
    int rc = mc_gguf_writer_create(&g, gguf_path, NULL, &err);
    rc = rc ? rc : mc_gguf_writer_add_str(g, "general.architecture", arch, &err);
    rc = rc ? rc : kv(g, arch, d, &err);
    const char *toks[256];
    char tb[256][8];
    for (uint64_t i = 0; i < d->V && i < 256; i++) {
        snprintf(tb[i], sizeof tb[i], "t%d", (int)i);
        toks[i] = tb[i];
    }
    rc = rc ? rc : mc_gguf_writer_add_str(g, "tokenizer.ggml.model", "gpt2", &err);
    rc = rc ? rc : mc_gguf_writer_add_arr_str(g, "tokenizer.ggml.tokens", toks, NULL, d->V, &err);
    for (size_t i = 0; i < no && !rc; i++) {
        uint64_t ne[3];
        for (uint32_t k = 0; k < outs[i].nd; k++) ne[k] = outs[i].shape[outs[i].nd - 1 - k];
        int ty = outs[i].f32 ? MC_T_F32 : q8 && ne[0] % 32 == 0 ? MC_T_Q8_0 : MC_T_BF16;
        rc = mc_gguf_writer_add_tensor(g, outs[i].gguf, ty, outs[i].nd, ne, &err);
    }
    for (size_t i = 0; i < no && !rc; i++) {
        uint64_t n = 1;
        for (uint32_t k = 0; k < outs[i].nd; k++) n *= outs[i].shape[k];
        if (outs[i].f32) {
            rc = mc_gguf_writer_write(g, outs[i].v, n * 4, &err);
            continue;
        }
        if (q8 && outs[i].shape[outs[i].nd - 1] % 32 == 0) {
            unsigned char *qb = malloc(n / 32 * 34);
            if (!qb) rc = MC_ERR_NOMEM;
            if (!rc) fx_q8_0(outs[i].v, n, qb);
            rc = rc ? rc : mc_gguf_writer_write(g, qb, n / 32 * 34, &err);
            free(qb);
            continue;
        }
        uint16_t *b = malloc(n * 2);
        if (!b) rc = MC_ERR_NOMEM;
        for (uint64_t k = 0; !rc && k < n; k++) b[k] = mc_f32_to_bf16(outs[i].v[k]);
        rc = rc ? rc : mc_gguf_writer_write(g, b, n * 2, &err);
        free(b);
    }
    rc = rc ? rc : mc_gguf_writer_commit(g, &err);
    if (rc) {
        fprintf(stderr, "fixture gguf %s: %s\n", gguf_path, err.msg);
        if (g) mc_gguf_writer_abort(g);
    }
    return rc;
}

/* Write hf/ (config.json from testdata/arch_fixtures/<name>.json and a
 * model.safetensors) and a bf16 GGUF with gguf_kv() metadata; fill outs
 * with what mlx-lm must load. Returns the number of outputs, 0 on failure. */

static size_t fx_build(const char *name, const char *arch, const fx_spec *spec, size_t ns, const fx_dims *d,
                       fx_kv_fn kv, const char *dir, const char *gguf_path, fx_out *outs, size_t cap)
{
    char path[1200], nm[200];
    size_t no = 0;
    mc_error err = {0};
    /* outputs and their values */
    for (size_t i = 0; i < ns; i++)
        for (uint64_t L = 0; L < (spec[i].layered ? d->L : 1); L++) {
            if (no == cap) return 0;
            fx_out *o = &outs[no++];
            memset(o, 0, sizeof *o);
            snprintf(o->mlx, sizeof o->mlx, spec[i].mlx, (int)L);
            snprintf(o->gguf, sizeof o->gguf, spec[i].gguf, (int)L);
            uint32_t nd = 0;
            uint64_t n = 1;
            if (spec[i].experts) o->shape[nd++] = d->E;
            for (const char *c = spec[i].shape; *c; c++)
                if (*c != ',') o->shape[nd++] = fx_dim(d, *c);
            o->nd = nd;
            for (uint32_t k = 0; k < nd; k++) n *= o->shape[k];
            o->f32 = nd == 1;
            o->v = malloc(n * sizeof *o->v);
            if (!o->v) return 0;
            uint64_t per = spec[i].experts ? n / d->E : n;
            for (uint64_t e = 0; e < (spec[i].experts ? d->E : 1); e++) {
                snprintf(nm, sizeof nm, spec[i].hf, (int)L, (int)e);
                for (uint64_t k = 0; k < per; k++) o->v[e * per + k] = fx_value(nm, k, spec[i].norm);
            }
        }
    /* hf/ */
    snprintf(path, sizeof path, "%s/testdata/arch_fixtures/%s.json", MCONV_SOURCE_DIR, name);
    size_t clen;
    unsigned char *cfg = mc_test_read_file(path, &clen);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!cfg || mkdir(dir, 0755) != 0 || mc_test_write_file(path, cfg, clen) != 0) {
        free(cfg);
        return 0;
    }
    free(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    mc_st_writer *w = NULL;
    int ok = mc_st_writer_new(path, 0, &w, &err) == 0;
    size_t oi = 0;
    for (size_t i = 0; ok && i < ns; i++)
        for (uint64_t L = 0; ok && L < (spec[i].layered ? d->L : 1); L++, oi++)
            for (uint64_t e = 0; ok && e < (spec[i].experts ? d->E : 1); e++) {
                snprintf(nm, sizeof nm, spec[i].hf, (int)L, (int)e);
                const fx_out *o = &outs[oi];
                ok = mc_st_writer_add(w, nm, spec[i].f32 ? MC_T_F32 : MC_T_BF16, o->nd - (spec[i].experts ? 1 : 0),
                                      o->shape + (spec[i].experts ? 1 : 0), &err) == 0;
            }
    ok = ok && mc_st_writer_begin(w, &err) == 0;
    oi = 0;
    for (size_t i = 0; ok && i < ns; i++)
        for (uint64_t L = 0; ok && L < (spec[i].layered ? d->L : 1); L++, oi++) {
            const fx_out *o = &outs[oi];
            uint64_t n = 1;
            for (uint32_t k = 0; k < o->nd; k++) n *= o->shape[k];
            /* one write per HF tensor (per expert) */
            uint64_t ne = spec[i].experts ? d->E : 1, per = n / ne;
            if (spec[i].f32) {
                for (uint64_t e = 0; ok && e < ne; e++) ok = mc_st_writer_write(w, o->v + e * per, per * 4, &err) == 0;
                continue;
            }
            uint16_t *b = malloc(n * 2);
            ok = b != NULL;
            for (uint64_t k = 0; ok && k < n; k++) b[k] = mc_f32_to_bf16(o->v[k]);
            for (uint64_t e = 0; ok && e < ne; e++) ok = mc_st_writer_write(w, b + e * per, per * 2, &err) == 0;
            free(b);
        }
    ok = ok && mc_st_writer_commit(w, &err) == 0;
    mc_st_writer_free(w);
    CHECKF(ok, "%s fixture hf: %s", name, err.msg);
    if (!ok) return 0;
    int rc = fx_write_gguf(gguf_path, arch, d, kv, outs, no, 0);
    CHECKF(rc == 0, "%s fixture gguf", name);
    return rc ? 0 : no;
}

/* Every produced tensor holds exactly the values mlx-lm loads. */
static void fx_compare(const mc_model *m, const fx_out *outs, size_t no, const char *label)
{
    size_t exact = 0;
    CHECK_EQ_U64(m->n_tensors, no);
    for (size_t i = 0; i < no; i++) {
        const mc_mtensor *t = mc_model_find(m, outs[i].mlx);
        CHECKF(t != NULL, "%s: %s not produced", label, outs[i].mlx);
        if (!t) continue;
        uint64_t n = 1, bad = 0;
        for (uint32_t k = 0; k < outs[i].nd; k++) n *= outs[i].shape[k];
        CHECK_EQ_U64(mc_test_mt_nelem(t), n);
        float *v = mc_test_mt_nelem(t) == n ? mc_test_model_read_all(m, t) : NULL;
        CHECKF(v != NULL, "%s: reading %s", label, t->name);
        for (uint64_t k = 0; v && k < n; k++) bad += mc_f32_bits(v[k]) != mc_f32_bits(outs[i].v[k]);
        CHECKF(v && bad == 0, "%s: %s: %llu of %llu values differ", label, t->name, (unsigned long long)bad,
               (unsigned long long)n);
        exact += v && bad == 0;
        free(v);
    }
    printf("%s: %zu of %zu tensors hold exactly the values mlx-lm loads\n", label, exact, no);
}

static void fx_free(fx_out *outs, size_t no)
{
    for (size_t i = 0; i < no; i++) free(outs[i].v);
}

/* The fixture config.json as JSON (reference for config fields). */
static cJSON *fx_config(const char *name)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/testdata/arch_fixtures/%s.json", MCONV_SOURCE_DIR, name);
    unsigned char *raw = mc_test_read_file(path, &len);
    cJSON *c = raw ? cJSON_ParseWithLength((const char *)raw, len) : NULL;
    free(raw);
    return c;
}

static void test_fixture(const char *name, const char *arch, const char *model_type, const fx_spec *spec,
                         size_t ns, const fx_dims *d, fx_kv_fn kv, const char *const *gguf_skip,
                         const char *const *need, int min_equal)
{
    char dir[1024], gpath[1100], label[256];
    fx_out outs[128];
    snprintf(dir, sizeof dir, "%s/%s-hf", mc_test_tmpdir(), name);
    snprintf(gpath, sizeof gpath, "%s/%s-bf16.gguf", mc_test_tmpdir(), name);
    size_t no = fx_build(name, arch, spec, ns, d, kv, dir, gpath, outs, 128);
    CHECKF(no > 0, "%s: fixture not built", name);
    if (!no) return;
    cJSON *ref = fx_config(name);
    CHECK(ref != NULL);
    const char *srcs[2] = {dir, gpath};
    for (int k = 0; k < 2 && ref; k++) {
        mc_model *m = mc_test_model_open(srcs[k], NULL);
        snprintf(label, sizeof label, "%s fixture %s", name, k ? "GGUF bf16" : "hf");
        CHECKF(m != NULL, "%s: open", label);
        if (!m) continue;
        mc_test_names_check(m, name, label);
        fx_compare(m, outs, no, label);
        check_config(m, ref, model_type, k ? gguf_skip : NULL, need, min_equal, label);
        for (size_t i = 0; i < m->n_notices; i++) printf("%s notice: %s\n", label, m->notices[i]);
        mc_convert_close(m);
    }
    check_cli(gpath, model_type, name);
    /* q8_0: every tensor is ggml's dequantization of its source (these
     * converters do no arithmetic, no reorder: the mlx tensor is the GGUF
     * tensor) */
    char qpath[1100];
    snprintf(qpath, sizeof qpath, "%s/%s-q8_0.gguf", mc_test_tmpdir(), name);
    int qrc = fx_write_gguf(qpath, arch, d, kv, outs, no, 1);
    CHECK(qrc == 0);
    mc_model *q = qrc ? NULL : mc_test_model_open(qpath, NULL);
    CHECK(qrc != 0 || q != NULL);
    if (q) {
        size_t ok = 0, quant = 0;
        snprintf(label, sizeof label, "%s fixture q8_0", name);
        mc_test_names_check(q, name, label);
        for (size_t i = 0; i < no; i++) {
            const mc_mtensor *t = mc_model_find(q, outs[i].mlx);
            const mc_gguf_tensor *gt = mc_gguf_find_tensor(q->gguf, outs[i].gguf);
            CHECKF(t && gt, "%s: %s / %s", label, outs[i].mlx, outs[i].gguf);
            if (!t || !gt || mc_test_mt_nelem(t) != gt->nelements) continue;
            uint64_t n = gt->nelements, bad = 0;
            unsigned char *raw = malloc(gt->nbytes);
            float *deq = malloc(n * sizeof *deq), *got = mc_test_model_read_all(q, t);
            mc_error err = {0};
            if (raw && deq && got && mc_gguf_read(q->gguf, gt, 0, raw, gt->nbytes, &err) == 0 &&
                mc_dequant(gt->type, raw, deq, (int64_t)n, &err) == 0) {
                for (uint64_t j = 0; j < n; j++) bad += mc_f32_bits(deq[j]) != mc_f32_bits(got[j]);
                CHECKF(bad == 0, "%s: %s: %llu values differ from ggml's dequantization", label, t->name,
                       (unsigned long long)bad);
                ok += bad == 0;
                quant += gt->type == MC_T_Q8_0;
            } else {
                CHECKF(0, "%s: reading %s", label, t->name);
            }
            free(raw);
            free(deq);
            free(got);
        }
        printf("%s: %zu of %zu tensors = ggml's dequantization of their source (%zu Q8_0)\n", label, ok, no, quant);
        CHECK(quant > no / 2);
        mc_convert_close(q);
    }
    cJSON_Delete(ref);
    fx_free(outs, no);
}

/* ----------------------------------------------------------------- olmoe */

#define AT "model.layers.%d.self_attn."
/* What olmoe and minimax share: embeddings, final norm, head, the layer
 * norms, a plain attention (Q/K as they are: TextModel, NEOX rotary) with
 * q/k norms over all heads. */
#define FX_TEXT_QKNORM_HEAD \
    {0, 0, 0, 0, "model.embed_tokens.weight", "token_embd.weight", "model.embed_tokens.weight", "V,H"}, \
    {0, 0, 1, 0, "model.norm.weight", "output_norm.weight", "model.norm.weight", "H"}, \
    {0, 0, 0, 0, "lm_head.weight", "output.weight", "lm_head.weight", "V,H"}, \
    {1, 0, 1, 0, "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", \
     "model.layers.%d.input_layernorm.weight", "H"}, \
    {1, 0, 1, 0, "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", \
     "model.layers.%d.post_attention_layernorm.weight", "H"}, \
    {1, 0, 0, 0, AT "q_proj.weight", "blk.%d.attn_q.weight", AT "q_proj.weight", "Q,H"}, \
    {1, 0, 0, 0, AT "k_proj.weight", "blk.%d.attn_k.weight", AT "k_proj.weight", "K,H"}, \
    {1, 0, 0, 0, AT "v_proj.weight", "blk.%d.attn_v.weight", AT "v_proj.weight", "K,H"}, \
    {1, 0, 0, 0, AT "o_proj.weight", "blk.%d.attn_output.weight", AT "o_proj.weight", "H,Q"}, \
    {1, 0, 1, 0, AT "q_norm.weight", "blk.%d.attn_q_norm.weight", AT "q_norm.weight", "Q"}, \
    {1, 0, 1, 0, AT "k_norm.weight", "blk.%d.attn_k_norm.weight", AT "k_norm.weight", "K"}
static const fx_spec OLMOE_SPEC[] = {
    FX_TEXT_QKNORM_HEAD,
    {1, 0, 0, 0, "model.layers.%d.mlp.gate.weight", "blk.%d.ffn_gate_inp.weight", "model.layers.%d.mlp.gate.weight",
     "E,H"},
    {1, 1, 0, 0, "model.layers.%d.mlp.switch_mlp.gate_proj.weight", "blk.%d.ffn_gate_exps.weight",
     "model.layers.%d.mlp.experts.%d.gate_proj.weight", "I,H"},
    {1, 1, 0, 0, "model.layers.%d.mlp.switch_mlp.up_proj.weight", "blk.%d.ffn_up_exps.weight",
     "model.layers.%d.mlp.experts.%d.up_proj.weight", "I,H"},
    {1, 1, 0, 0, "model.layers.%d.mlp.switch_mlp.down_proj.weight", "blk.%d.ffn_down_exps.weight",
     "model.layers.%d.mlp.experts.%d.down_proj.weight", "H,I"},
};

#define KEY(s) (snprintf(k, sizeof k, "%s." s, arch), k)
/* The keys OlmoeModel / TextModel write. */
static int olmoe_kv(mc_gguf_writer *w, const char *arch, const fx_dims *d, mc_error *err)
{
    char k[128];
    int rc = mc_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)d->L, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("context_length"), 128, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)d->H, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)d->I, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("attention.head_count"), 4, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), 2, err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, KEY("rope.freq_base"), 10000.0f, err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("expert_count"), (uint32_t)d->E, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("expert_used_count"), 2, err);
    return rc;
}

static const char *const OLMOE_NEED[] = {"hidden_size", "num_hidden_layers", "intermediate_size",
                                         "num_attention_heads", "rms_norm_eps", "vocab_size", "num_experts",
                                         "num_experts_per_tok", "norm_topk_prob", "num_key_value_heads",
                                         "rope_theta", NULL};

/* --------------------------------------------------------------- minimax */

#define MB "model.layers.%d.block_sparse_moe."
static const fx_spec MINIMAX_SPEC[] = {
    FX_TEXT_QKNORM_HEAD, /* MiniMaxM2Model: partial rotary */
    {1, 0, 0, 0, MB "gate.weight", "blk.%d.ffn_gate_inp.weight", MB "gate.weight", "E,H"},
    /* the routing bias: F32 in the checkpoint, exp_probs_b.bias in the GGUF */
    {1, 0, 0, 1, MB "e_score_correction_bias", "blk.%d.exp_probs_b.bias", MB "e_score_correction_bias", "E"},
    /* per-expert w1 (gate), w3 (up), w2 (down) */
    {1, 1, 0, 0, MB "switch_mlp.gate_proj.weight", "blk.%d.ffn_gate_exps.weight", MB "experts.%d.w1.weight", "I,H"},
    {1, 1, 0, 0, MB "switch_mlp.up_proj.weight", "blk.%d.ffn_up_exps.weight", MB "experts.%d.w3.weight", "I,H"},
    {1, 1, 0, 0, MB "switch_mlp.down_proj.weight", "blk.%d.ffn_down_exps.weight", MB "experts.%d.w2.weight", "H,I"},
};

/* The keys MiniMaxM2Model / TextModel write. */
static int minimax_kv(mc_gguf_writer *w, const char *arch, const fx_dims *d, mc_error *err)
{
    char k[128];
    int rc = mc_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)d->L, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("context_length"), 128, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)d->H, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)d->I, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("attention.head_count"), 4, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), 2, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("attention.key_length"), 32, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("attention.value_length"), 32, err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, KEY("rope.freq_base"), 5000000.0f, err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("expert_count"), (uint32_t)d->E, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("expert_used_count"), 2, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("expert_gating_func"), 2, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("expert_feed_forward_length"), (uint32_t)d->I, err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, KEY("rope.dimension_count"), 16, err);
    return rc;
}

static const char *const MINIMAX_NEED[] = {
    "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
    "num_experts_per_tok", "num_local_experts", "shared_intermediate_size", "num_hidden_layers", "rms_norm_eps",
    "rope_theta", "rotary_dim", "vocab_size", "scoring_func", "head_dim", "use_qk_norm", NULL};

/* the 8-bit router (quant_predicate) and the float32 routing bias */
static void test_minimax_quant(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/minimax-hf", mc_test_tmpdir());
    mc_model *m = mc_test_model_open(dir, NULL);
    CHECK(m != NULL);
    if (!m) return;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        if (has_suffix(t->name, "block_sparse_moe.gate.weight")) CHECKF(t->quant_bits == 8, "%s: bits %d", t->name, t->quant_bits);
        if (has_suffix(t->name, "e_score_correction_bias")) CHECKF(!t->quantizable, "%s quantizable", t->name);
        int want = strstr(t->name, "switch_mlp.") ? MC_ROLE_EXPERT : MC_ROLE_PINNED;
        CHECKF((int)t->role == want, "%s: role %d", t->name, (int)t->role);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
    CHECK(cJSON_IsString(mt) && strcmp(mt->valuestring, "minimax") == 0);
    mc_convert_close(m);
}

/* The refusal of an unknown architecture lists these tables (the
 * registry's supported list). */
static void test_supported_list(void)
{
    static const char *const names[] = {"nemotron_h", "llama4", "olmoe", "minimax"};
    const char *list = mc_convert_supported_archs();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECKF(strstr(list, names[i]) != NULL, "supported list lacks %s: %s", names[i], list);
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/unknown-arch", mc_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *cfg = "{\"model_type\": \"no_such_model\"}";
    CHECK(mc_test_write_file(path, cfg, strlen(cfg)) == 0);
    /* a one-tensor safetensors file beside it */
    mc_st_writer *w = NULL;
    mc_error err = {0};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    uint16_t z[4] = {0};
    int ok = mc_st_writer_new(path, 0, &w, &err) == 0 &&
             mc_st_writer_add(w, "x.weight", MC_T_BF16, 1, (uint64_t[]){4}, &err) == 0 &&
             mc_st_writer_begin(w, &err) == 0 && mc_st_writer_tensor(w, NULL, z, sizeof z, &err) == 0 &&
             mc_st_writer_commit(w, &err) == 0;
    mc_st_writer_free(w);
    CHECK(ok);
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s/x.flash'", mc_test_mconv(), dir, dir);
    CHECKF(rc != 0 && out && strstr(out, "not supported"), "unknown architecture: rc %d: %s", rc, out ? out : "");
    for (size_t i = 0; out && i < sizeof names / sizeof names[0]; i++)
        CHECKF(strstr(out, names[i]) != NULL, "the refusal does not list %s: %s", names[i], out);
    free(out);
}

int main(void)
{
    test_supported_list();
    test_family(&NEMOTRON_H);
    test_nemotron_h_config();
    test_nemotron_h_mtp();
    test_nemotron_h_dense();
    test_family(&LLAMA4);
    test_llama4_experts();
    test_llama4_wrapper();
    /* olmoe: head_dim 16 (hidden 64 / 4 heads), 2 KV heads */
    static const fx_dims OLMOE_D = {64, 64, 64, 32, 32, 4, 2};
    test_fixture("olmoe", "olmoe", "olmoe", OLMOE_SPEC, sizeof OLMOE_SPEC / sizeof OLMOE_SPEC[0], &OLMOE_D, olmoe_kv,
                 NULL, OLMOE_NEED, 10);
    /* minimax: head_dim 32 (4 heads: Q 128, 2 KV heads: K 64), rotary_dim 16 */
    static const fx_dims MINIMAX_D = {64, 64, 128, 64, 32, 4, 2};
    test_fixture("minimax", "minimax-m2", "minimax", MINIMAX_SPEC, sizeof MINIMAX_SPEC / sizeof MINIMAX_SPEC[0],
                 &MINIMAX_D, minimax_kv, NULL, MINIMAX_NEED, 14);
    test_minimax_quant();
    return mc_test_finish("test_convert_hybrid");
}
