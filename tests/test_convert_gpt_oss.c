/* mc_convert for gpt_oss (mlx-lm models/gpt_oss.py; GGUF arch gpt-oss).
 * Rules: docs/CONVERT.md, section gpt_oss.
 *
 * Corpus-new models/gpt_oss (bf16 hf/, llama.cpp b8291 GGUFs):
 *  - hf/ and every GGUF give exactly the tensors of
 *    testdata/mlx_names/gpt_oss.txt (mlx-lm's module tree);
 *  - hf/: the experts equal mlx-lm's split of the fused hub tensors, computed
 *    here from the raw safetensors bytes (gate = even columns of
 *    gate_up_proj [E, H, 2I], up = odd, transposed to [E, I, H]; down_proj
 *    [E, I, H] transposed; the biases' even / odd columns);
 *  - bf16 GGUF = hf/ bit for bit, every tensor;
 *  - q8_0, Q4_K_M, MXFP4_MOE: every tensor equals ggml's dequantization of
 *    its GGUF source (names mapped by this test's own table); MXFP4 experts
 *    also equal an independent decode (e2m1 value table * 2^(e - 127));
 *    RMS error against hf/ printed and bounded;
 *  - config.json: fields equal hf/config.json where both exist (rope_scaling
 *    and layer_types compared key by key).
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_convert.h"
#include "mc_gguf.h"
#include "mc_safetensors.h"
#include "mc_st_write.h"
#include "mc_flash.h"
#include <xxhash.h>
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------- hf experts */

/* A bf16 safetensors tensor as f32. */
static float *st_f32(const mc_st *st, const char *name, uint64_t *n)
{
    const mc_st_tensor *t = mc_st_find(st, name);
    mc_error err = {0};
    CHECKF(t != NULL && t->type == MC_T_BF16, "hf tensor %s absent or not bf16", name);
    if (!t || t->type != MC_T_BF16) return NULL;
    uint16_t *raw = malloc(t->nbytes);
    float *v = malloc(t->nelements * sizeof *v);
    if (!raw || !v || mc_st_read(st, t, 0, raw, t->nbytes, &err)) {
        free(raw);
        free(v);
        return NULL;
    }
    for (uint64_t i = 0; i < t->nelements; i++) v[i] = mc_bf16_to_f32(raw[i]);
    free(raw);
    *n = t->nelements;
    return v;
}

/* mlx-lm's form of the fused experts, from the raw hf tensors, against
 * what mconv produced from hf/. */
static void check_hf_experts(const mc_model *m, const char *hfdir)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", hfdir);
    mc_st *st = NULL;
    mc_error err = {0};
    CHECK(mc_st_open(p, &st, &err) == 0);
    if (!st) return;
    size_t checked = 0;
    for (int L = 0; L < m->n_layers; L++) {
        char n[256];
        uint64_t ngu, ngb, nd, E = 0, H = 0, I = 0;
        snprintf(n, sizeof n, "model.layers.%d.mlp.experts.gate_up_proj", L);
        float *gu = st_f32(st, n, &ngu);
        const mc_st_tensor *gut = mc_st_find(st, n);
        snprintf(n, sizeof n, "model.layers.%d.mlp.experts.gate_up_proj_bias", L);
        float *gb = st_f32(st, n, &ngb);
        snprintf(n, sizeof n, "model.layers.%d.mlp.experts.down_proj", L);
        float *dn = st_f32(st, n, &nd);
        if (gut && gut->n_dims == 3) {
            E = gut->shape[0];
            H = gut->shape[1];
            I = gut->shape[2] / 2;
        }
        CHECK(gu && gb && dn && E && H && I);
        for (int w = 0; gu && gb && dn && E && w < 5; w++) {
            static const char *const names[] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight",
                                                "gate_proj.bias", "up_proj.bias"};
            snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%s", L, names[w]);
            const mc_mtensor *t = mc_model_find(m, n);
            CHECKF(t != NULL, "hf: %s absent", n);
            float *got = t ? mc_test_model_read_all(m, t) : NULL;
            if (!got) continue;
            uint64_t bad = 0;
            for (uint64_t e = 0; e < E; e++) {
                if (w < 2) /* [E, I, H]: gate_up[e][h][2i + w] */
                    for (uint64_t i = 0; i < I; i++)
                        for (uint64_t h = 0; h < H; h++)
                            bad += got[(e * I + i) * H + h] != gu[(e * H + h) * 2 * I + 2 * i + (uint64_t)w];
                else if (w == 2) /* [E, H, I]: down[e][i][h] */
                    for (uint64_t h = 0; h < H; h++)
                        for (uint64_t i = 0; i < I; i++)
                            bad += got[(e * H + h) * I + i] != dn[(e * I + i) * H + h];
                else
                    for (uint64_t i = 0; i < I; i++) bad += got[e * I + i] != gb[e * 2 * I + 2 * i + (uint64_t)(w - 3)];
            }
            CHECKF(bad == 0, "hf: %s: %llu values differ from mlx-lm's split of the fused tensor", n,
                   (unsigned long long)bad);
            checked++;
            free(got);
        }
        free(gu);
        free(gb);
        free(dn);
    }
    printf("hf: %zu expert tensors equal mlx-lm's split of gate_up_proj / down_proj (+ biases)\n", checked);
    CHECK(checked == 5u * (size_t)m->n_layers);
    mc_st_close(st);
}

/* Every tensor of a equals b's bit for bit (as f32). */
static void compare_models(const mc_model *a, const mc_model *b, const char *label)
{
    size_t same = 0;
    for (size_t i = 0; i < a->n_tensors; i++) {
        const mc_mtensor *t = &a->tensors[i], *u = mc_model_find(b, t->name);
        CHECKF(u != NULL, "%s: %s absent from the reference", label, t->name);
        if (!u || mc_test_mt_nelem(t) != mc_test_mt_nelem(u)) continue;
        float *x = mc_test_model_read_all(a, t), *y = mc_test_model_read_all(b, u);
        CHECK(x && y);
        if (x && y) {
            uint64_t bad = 0;
            for (uint64_t k = 0; k < mc_test_mt_nelem(t); k++) bad += memcmp(&x[k], &y[k], 4) != 0;
            CHECKF(bad == 0, "%s: %s: %llu values differ", label, t->name, (unsigned long long)bad);
            same += bad == 0;
        }
        free(x);
        free(y);
    }
    printf("%s: %zu of %zu tensors equal hf/ bit for bit\n", label, same, a->n_tensors);
    CHECK(same == a->n_tensors && same > 0);
}

/* ------------------------------------------------------- quantized GGUF */

/* This test's own map from mlx-lm names to llama.cpp's (gguf-py
 * tensor_mapping for gpt-oss). */
static int gguf_source(const char *mlx, char *out, size_t cap)
{
    static const char *const glob[][2] = {{"model.embed_tokens.weight", "token_embd.weight"},
                                          {"model.norm.weight", "output_norm.weight"},
                                          {"lm_head.weight", "output.weight"}};
    static const char *const lay[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "post_attention_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"self_attn.o_proj.bias", "attn_output.bias"},
        {"self_attn.sinks", "attn_sinks.weight"},       {"mlp.router.weight", "ffn_gate_inp.weight"},
        {"mlp.router.bias", "ffn_gate_inp.bias"},       {"mlp.experts.gate_proj.weight", "ffn_gate_exps.weight"},
        {"mlp.experts.gate_proj.bias", "ffn_gate_exps.bias"}, {"mlp.experts.up_proj.weight", "ffn_up_exps.weight"},
        {"mlp.experts.up_proj.bias", "ffn_up_exps.bias"}, {"mlp.experts.down_proj.weight", "ffn_down_exps.weight"},
        {"mlp.experts.down_proj.bias", "ffn_down_exps.bias"}};
    for (size_t i = 0; i < sizeof glob / sizeof glob[0]; i++)
        if (strcmp(mlx, glob[i][0]) == 0) return snprintf(out, cap, "%s", glob[i][1]) < 0;
    int L, n = 0;
    if (sscanf(mlx, "model.layers.%d.%n", &L, &n) != 1 || n == 0) return -1;
    for (size_t i = 0; i < sizeof lay / sizeof lay[0]; i++)
        if (strcmp(mlx + n, lay[i][0]) == 0) return snprintf(out, cap, "blk.%d.%s", L, lay[i][1]) < 0;
    return -1;
}

/* MXFP4 decoded independently of quant/: OCP e2m1 values times 2^(e - 127). */
static void mxfp4_decode(const unsigned char *blk, uint64_t nblocks, float *out)
{
    static const float e2m1[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    for (uint64_t b = 0; b < nblocks; b++, blk += 17, out += 32) {
        float s = ldexpf(1.0f, (int)blk[0] - 127);
        for (int j = 0; j < 16; j++) { /* ggml: byte j holds element j (low) and j + 16 (high) */
            out[j] = e2m1[blk[1 + j] & 15] * s;
            out[j + 16] = e2m1[blk[1 + j] >> 4] * s;
        }
    }
}

static void compare_quant(const mc_model *q, const mc_model *h, const char *label)
{
    mc_error err = {0};
    double se = 0, ss = 0;
    size_t nt = 0, nmx = 0;
    for (size_t i = 0; i < q->n_tensors; i++) {
        const mc_mtensor *t = &q->tensors[i];
        char src[256];
        CHECKF(gguf_source(t->name, src, sizeof src) == 0, "%s: no test mapping for %s", label, t->name);
        const mc_gguf_tensor *gt = mc_gguf_find_tensor(q->gguf, src);
        CHECKF(gt != NULL, "%s: source %s absent", label, src);
        if (!gt || gt->nelements != mc_test_mt_nelem(t)) {
            CHECK(gt == NULL);
            continue;
        }
        unsigned char *raw = malloc(gt->nbytes);
        float *deq = malloc(gt->nelements * sizeof *deq), *got = mc_test_model_read_all(q, t);
        CHECK(raw && deq && got);
        if (raw && deq && got && mc_gguf_read(q->gguf, gt, 0, raw, gt->nbytes, &err) == 0 &&
            mc_dequant(gt->type, raw, deq, (int64_t)gt->nelements, &err) == 0) {
            CHECKF(memcmp(deq, got, gt->nelements * sizeof *got) == 0, "%s: %s differs from ggml's dequantization",
                   label, t->name);
            if (gt->type == MC_T_MXFP4) {
                float *ind = malloc(gt->nelements * sizeof *ind);
                if (ind) {
                    mxfp4_decode(raw, gt->nelements / 32, ind);
                    uint64_t bad = 0;
                    for (uint64_t k = 0; k < gt->nelements; k++) bad += ind[k] != got[k];
                    CHECKF(bad == 0, "%s: %s: %llu values differ from the independent MXFP4 decode", label, t->name,
                           (unsigned long long)bad);
                    nmx += bad == 0;
                }
                free(ind);
            }
            nt++;
            const mc_mtensor *th = mc_model_find(h, t->name);
            float *ref = th ? mc_test_model_read_all(h, th) : NULL;
            CHECK(ref != NULL);
            double tse = 0, tss = 0;
            for (uint64_t k = 0; ref && k < mc_test_mt_nelem(t); k++) {
                double d = (double)got[k] - ref[k];
                tse += d * d;
                tss += (double)ref[k] * ref[k];
            }
            CHECKF(tss == 0 || sqrt(tse / tss) < 0.5, "%s: %s relative RMS error %.3f", label, t->name,
                   sqrt(tse / tss));
            se += tse;
            ss += tss;
            free(ref);
        } else {
            CHECKF(0, "%s: %s: cannot read or decode the source: %s", label, t->name, err.msg);
        }
        free(raw);
        free(deq);
        free(got);
    }
    double rel = ss > 0 ? sqrt(se / ss) : 0;
    printf("%s: %zu tensors = ggml's dequantization (%zu MXFP4 = the independent e2m1 decode); relative RMS error "
           "vs hf %.4f\n", label, nt, nmx, rel);
    CHECK(nt == q->n_tensors);
    CHECKF(rel < 0.25, "%s: relative RMS error %.4f", label, rel);
}

/* ------------------------------------------------------------- config */

static void check_config(const mc_model *m, const cJSON *ref, const char *label)
{
    static const char *const need[] = {"hidden_size", "num_hidden_layers", "intermediate_size",
                                       "num_attention_heads", "num_key_value_heads", "head_dim",
                                       "num_local_experts", "num_experts_per_tok", "sliding_window", "rope_theta",
                                       "rms_norm_eps", "vocab_size", "max_position_embeddings", "layer_types",
                                       "rope_scaling", "tie_word_embeddings"};
    const cJSON *c = m->config;
    int compared = 0;
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, need[i]), *b = cJSON_GetObjectItemCaseSensitive(ref, need[i]);
        CHECKF(a != NULL, "%s: config.json lacks %s", label, need[i]);
        if (!a || !b) continue;
        if (strcmp(need[i], "rope_scaling") == 0) { /* the keys mlx-lm's YarnRoPE reads */
            static const char *const rk[] = {"factor", "original_max_position_embeddings", "beta_fast", "beta_slow"};
            for (size_t k = 0; k < 4; k++) {
                const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, rk[k]), *y = cJSON_GetObjectItemCaseSensitive(b, rk[k]);
                CHECKF(cJSON_IsNumber(x) && cJSON_IsNumber(y) && x->valuedouble == y->valuedouble,
                       "%s: rope_scaling.%s differs", label, rk[k]);
            }
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(a, "rope_type");
            CHECKF(cJSON_IsString(ty) && strcmp(ty->valuestring, "yarn") == 0, "%s: rope_scaling is not yarn", label);
            compared++;
            continue;
        }
        int same = cJSON_Compare(a, b, 1) || (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble == b->valuedouble);
        char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
        CHECKF(same, "%s: config %s = %s, hf %s", label, need[i], x ? x : "?", y ? y : "?");
        free(x);
        free(y);
        compared++;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    CHECKF(cJSON_IsString(mt) && strcmp(mt->valuestring, "gpt_oss") == 0, "%s: model_type", label);
    printf("%s: %d config fields equal hf/config.json\n", label, compared);
    CHECK(compared == (int)(sizeof need / sizeof need[0]));
}

static void test_corpus(void)
{
    const char *hfdir = mc_test_corpus_new_file("models/gpt_oss/hf");
    if (!hfdir) return;
    char hfpath[1024];
    snprintf(hfpath, sizeof hfpath, "%s", hfdir);
    mc_model *h = mc_test_model_open(hfpath, NULL);
    CHECK(h != NULL);
    if (!h) return;
    mc_test_names_check(h, "gpt_oss", "gpt_oss hf");
    check_hf_experts(h, hfpath);
    char cp[1200];
    snprintf(cp, sizeof cp, "%s/config.json", hfpath);
    cJSON *ref = mc_test_read_json(cp);
    CHECK(ref != NULL);
    static const char *const quants[] = {"bf16", "q8_0", "Q4_K_M", "MXFP4_MOE"};
    for (size_t i = 0; i < 4; i++) {
        char rel[128], label[64];
        snprintf(rel, sizeof rel, "models/gpt_oss/gguf/gpt_oss-%s.gguf", quants[i]);
        snprintf(label, sizeof label, "gpt_oss %s", quants[i]);
        const char *g = mc_test_corpus_new_file(rel);
        if (!g) continue;
        mc_model *q = mc_test_model_open(g, NULL);
        CHECKF(q != NULL, "%s: cannot open", label);
        if (!q) continue;
        mc_test_names_check(q, "gpt_oss", label);
        if (ref) check_config(q, ref, label);
        if (i == 0) compare_models(q, h, label);
        else compare_quant(q, h, label);
        mc_convert_close(q);
    }
    if (ref) check_config(h, ref, "gpt_oss hf");
    cJSON_Delete(ref);
    mc_convert_close(h);
}

/* ------------------------------------------------- MXFP4 -> MLX mxfp4 */

/* MLX mxfp4 element k of a row: code in bits 4 * (k % 8) of uint32 word
 * k / 8 (little-endian), scale byte k / 32; ggml's block: byte 0 the e8m0
 * scale, byte 1 + j holds element j (low nibble) and j + 16 (high). Every
 * code and scale of out (weight wq, scales sc) must be the source's; the
 * values (independent e2m1 decode) then agree too. Returns the blocks that
 * differ. */
static uint64_t mxfp4_compare(const unsigned char *src, uint64_t nblocks, const uint32_t *wq, const uint8_t *sc,
                              uint64_t *vals)
{
    uint64_t bad = 0;
    float a[32], b[32];
    static const float e2m1[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    for (uint64_t g = 0; g < nblocks; g++) {
        const unsigned char *blk = src + g * 17;
        int diff = sc[g] != blk[0];
        mxfp4_decode(blk, 1, a);
        for (int k = 0; k < 32; k++) {
            unsigned want = k < 16 ? blk[1 + k] & 15u : blk[1 + k - 16] >> 4;
            unsigned got = (wq[g * 4 + (unsigned)k / 8] >> (4 * ((unsigned)k % 8))) & 15u;
            diff |= got != want;
            b[k] = e2m1[got] * ldexpf(1.0f, (int)sc[g] - 127);
        }
        for (int k = 0; k < 32; k++) *vals += memcmp(&a[k], &b[k], 4) == 0;
        bad += diff;
    }
    return bad;
}

/* A copy of .flash file fl with the first `from` of its manifest replaced
 * by `to` (same length), the header's manifest checksum recomputed: mconv
 * verify must report the mxfp4 module (exit 3). */
static void tamper_manifest(const char *fl, const char *from, const char *to, const char *want)
{
    size_t n;
    unsigned char *b = mc_test_read_file(fl, &n);
    mc_flash_header h;
    mc_error err = {0};
    CHECK(b && strlen(from) == strlen(to) && mc_flash_header_decode(b, n, &h, &err) == 0);
    if (!b || h.manifest_offset + h.manifest_length > n) { free(b); return; }
    char *man = (char *)b + h.manifest_offset;
    char *at = NULL;
    for (uint64_t i = 0; i + strlen(from) <= h.manifest_length && !at; i++)
        if (memcmp(man + i, from, strlen(from)) == 0) at = man + i;
    CHECKF(at != NULL, "manifest has no %s", from);
    if (at) {
        memcpy(at, to, strlen(to));
        h.manifest_xxh3 = XXH3_64bits(man, (size_t)h.manifest_length);
        mc_flash_header_encode(&h, b);
        char p[1300];
        snprintf(p, sizeof p, "%s/tampered.flash", mc_test_tmpdir());
        CHECK(mc_test_write_file(p, b, n) == 0);
        char *out = NULL;
        int rc = mc_test_run(&out, "'%s' verify '%s'", mc_test_mconv(), p);
        CHECKF(rc == 3 && out && strstr(out, want), "verify of a manifest with %s: rc %d: %s", to, rc, out ? out : "");
        free(out);
    }
    free(b);
}

/* An mlx-lm folder of the MXFP4_MOE GGUF: the expert weights are the
 * source blocks exactly, in mode mxfp4 per module; the .flash verifies
 * against its source; --requant-mxfp4 gives affine experts instead. */
static void test_mxfp4_outputs(void)
{
    const char *g = mc_test_corpus_new_file("models/gpt_oss/gguf/gpt_oss-MXFP4_MOE.gguf");
    if (!g) return;
    char in[1024], dir[1200], fl[1200], p[1300];
    snprintf(in, sizeof in, "%s", g);
    snprintf(dir, sizeof dir, "%s/mx_mlx", mc_test_tmpdir());
    snprintf(fl, sizeof fl, "%s/mx.flash", mc_test_tmpdir());
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s' --layout mlx --quiet", mc_test_mconv(), in, dir);
    CHECKF(rc == 0, "mlx layout: %s", out ? out : "");
    free(out);
    out = NULL;
    rc = mc_test_run(&out, "'%s' '%s' '%s' --quiet && '%s' verify '%s' --source '%s'", mc_test_mconv(), in, fl,
                     mc_test_mconv(), fl, in);
    CHECKF(rc == 0 && out && strstr(out, "sound") && strstr(out, "identical"), ".flash verify: %s", out ? out : "");
    free(out);
    /* the manifest describes the mxfp4 modules: verify checks them */
    tamper_manifest(fl, "\"bits\":4,\"mode\":\"mxfp4\"", "\"bits\":8,\"mode\":\"mxfp4\"", "mxfp4");
    tamper_manifest(fl, "\"dtype\":\"U8\"", "\"dtype\":\"I8\"", "mxfp4 module");
    snprintf(p, sizeof p, "%s/config.json", dir);
    cJSON *cfg = mc_test_read_json(p);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    CHECK(cJSON_IsObject(q));
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    mc_st *st = NULL;
    mc_gguf *gg = NULL;
    mc_error err = {0};
    CHECK(mc_st_open(p, &st, &err) == 0);
    CHECK(mc_gguf_open(in, &gg, &err) == 0);
    uint64_t blocks = 0, badb = 0, vals = 0;
    size_t modules = 0;
    for (int L = 0; st && gg && q && L < 2; L++)
        for (int w = 0; w < 3; w++) {
            static const char *const proj[] = {"gate", "up", "down"};
            char mod[128], nm[160], src[128];
            snprintf(mod, sizeof mod, "model.layers.%d.mlp.experts.%s_proj", L, proj[w]);
            snprintf(src, sizeof src, "blk.%d.ffn_%s_exps.weight", L, proj[w]);
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, mod);
            const cJSON *md = e ? cJSON_GetObjectItemCaseSensitive(e, "mode") : NULL;
            const cJSON *gs = e ? cJSON_GetObjectItemCaseSensitive(e, "group_size") : NULL;
            const cJSON *bt = e ? cJSON_GetObjectItemCaseSensitive(e, "bits") : NULL;
            CHECKF(cJSON_IsString(md) && strcmp(md->valuestring, "mxfp4") == 0 && cJSON_IsNumber(gs) &&
                   gs->valueint == 32 && cJSON_IsNumber(bt) && bt->valueint == 4,
                   "%s: config.quantization entry is not {group_size 32, bits 4, mode mxfp4}", mod);
            snprintf(nm, sizeof nm, "%s.weight", mod);
            const mc_st_tensor *wt = mc_st_find(st, nm);
            snprintf(nm, sizeof nm, "%s.scales", mod);
            const mc_st_tensor *stt = mc_st_find(st, nm);
            snprintf(nm, sizeof nm, "%s.biases", mod);
            CHECKF(mc_st_find(st, nm) == NULL, "%s: mxfp4 has no biases", mod);
            const mc_gguf_tensor *gt = mc_gguf_find_tensor(gg, src);
            CHECK(wt && stt && gt && gt->type == MC_T_MXFP4);
            if (!wt || !stt || !gt || gt->type != MC_T_MXFP4) continue;
            uint64_t nb = gt->nelements / 32;
            CHECKF(wt->type == MC_T_U32 && stt->type == MC_T_U8 && wt->nbytes == nb * 16 && stt->nbytes == nb,
                   "%s: weight %s %llu bytes, scales %s %llu bytes; %llu blocks", mod, mc_type_name(wt->type),
                   (unsigned long long)wt->nbytes, mc_type_name(stt->type), (unsigned long long)stt->nbytes,
                   (unsigned long long)nb);
            CHECK(wt->n_dims == 3 && stt->n_dims == 3 && wt->shape[2] * 8 == stt->shape[2] * 32);
            unsigned char *raw = malloc(gt->nbytes), *sc = malloc(stt->nbytes);
            uint32_t *wq = malloc(wt->nbytes);
            if (raw && sc && wq && wt->nbytes == nb * 16 && stt->nbytes == nb &&
                mc_gguf_read(gg, gt, 0, raw, gt->nbytes, &err) == 0 && mc_st_read(st, wt, 0, wq, wt->nbytes, &err) == 0 &&
                mc_st_read(st, stt, 0, sc, stt->nbytes, &err) == 0) {
                badb += mxfp4_compare(raw, nb, wq, sc, &vals);
                blocks += nb;
                modules++;
            }
            free(raw);
            free(sc);
            free(wq);
        }
    printf("MXFP4_MOE -> mlx mxfp4: %zu modules, %llu blocks repacked exactly (codes and e8m0 scales), %llu values "
           "= the independent decode of the source; %llu blocks differ\n", modules, (unsigned long long)blocks,
           (unsigned long long)vals, (unsigned long long)badb);
    CHECK(modules == 6 && badb == 0 && vals == blocks * 32 && blocks > 0);
    mc_st_close(st);
    mc_gguf_close(gg);
    cJSON_Delete(cfg);
    /* asked: requantized to affine at --bits (no mxfp4 entry, biases present) */
    snprintf(dir, sizeof dir, "%s/mx_affine", mc_test_tmpdir());
    out = NULL;
    rc = mc_test_run(&out, "'%s' '%s' '%s' --layout mlx --quiet --requant-mxfp4", mc_test_mconv(), in, dir);
    CHECKF(rc == 0, "--requant-mxfp4: %s", out ? out : "");
    free(out);
    snprintf(p, sizeof p, "%s/config.json", dir);
    cfg = mc_test_read_json(p);
    char *txt = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    CHECKF(txt && !strstr(txt, "mxfp4") && strstr(txt, "\"mode\":\"affine\""), "--requant-mxfp4 config: %s",
           txt ? txt : "?");
    free(txt);
    cJSON_Delete(cfg);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    st = NULL;
    CHECK(mc_st_open(p, &st, &err) == 0);
    CHECK(st && mc_st_find(st, "model.layers.0.mlp.experts.gate_proj.biases") != NULL);
    mc_st_close(st);
}

/* ------------------------------------------- hub MXFP4 _blocks/_scales */

/* The hub form of gpt-oss's experts, written here from the specification
 * (transformers' GptOssExperts / OpenAI's checkpoint; the corpus hf/ is
 * bf16): gate_up_proj_blocks U8 [E, 2I, H/32, 16] (row 2i gate row i, row
 * 2i + 1 up row i), gate_up_proj_scales U8 [E, 2I, H/32], down_proj_blocks
 * [E, H, I/32, 16], down_proj_scales [E, H, I/32]; in a group byte k holds
 * elements 2k (low nibble) and 2k + 1 (high). The codes and scales are the
 * MXFP4_MOE GGUF's experts, regrouped; the other tensors are hf/'s.
 * bad: 0 sound, 1 scales of the wrong group count, 2 blocks of 15 bytes a
 * group (truncated), 3 scales whose rows do not match the blocks'. */
enum { HUB_OK, HUB_BAD_SCALE, HUB_TRUNC, HUB_MISMATCH };

/* ggml block -> 16 hub bytes. */
static void hub_group(const unsigned char *blk, unsigned char *hub)
{
    unsigned char v[32];
    for (int j = 0; j < 16; j++) {
        v[j] = blk[1 + j] & 15;
        v[j + 16] = blk[1 + j] >> 4;
    }
    for (int k = 0; k < 16; k++) hub[k] = (unsigned char)(v[2 * k] | (v[2 * k + 1] << 4));
}

static int write_hub(const char *dir, int bad)
{
    const char *hf = mc_test_corpus_new_file("models/gpt_oss/hf/model.safetensors");
    const char *cfgp = mc_test_corpus_new_file("models/gpt_oss/hf/config.json");
    const char *gp = mc_test_corpus_new_file("models/gpt_oss/gguf/gpt_oss-MXFP4_MOE.gguf");
    if (!hf || !cfgp || !gp) return -1;
    char hfp[1024], cp[1024], ggp[1024], p[1300];
    snprintf(hfp, sizeof hfp, "%s", hf);
    snprintf(cp, sizeof cp, "%s", cfgp);
    snprintf(ggp, sizeof ggp, "%s", gp);
    mc_st *st = NULL;
    mc_gguf *gg = NULL;
    mc_st_writer *w = NULL;
    mc_error err = {0};
    int rc = -1;
    cJSON *cfg = mc_test_read_json(cp);
    if (!cfg || mkdir(dir, 0755) || mc_st_open(hfp, &st, &err) || mc_gguf_open(ggp, &gg, &err)) goto done;
    cJSON *qc = cJSON_AddObjectToObject(cfg, "quantization_config");
    cJSON_AddStringToObject(qc, "quant_method", "mxfp4");
    char *txt = cJSON_Print(cfg);
    snprintf(p, sizeof p, "%s/config.json", dir);
    int wr = txt ? mc_test_write_file(p, txt, strlen(txt)) : -1;
    free(txt);
    if (wr) goto done;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (mc_st_writer_new(p, 0, &w, &err)) goto done;
    /* declare: hf's tensors but the fused bf16 experts, then the hub blocks */
    for (size_t i = 0; i < st->n_tensors; i++) {
        const mc_st_tensor *t = &st->tensors[i];
        if (strstr(t->name, "experts.gate_up_proj") && !strstr(t->name, "bias")) continue;
        if (strstr(t->name, "experts.down_proj") && !strstr(t->name, "bias")) continue;
        if (mc_st_writer_add(w, t->name, t->type, t->n_dims, t->shape, &err)) goto done;
    }
    const uint64_t E = 4, H = 256, I = 32;
    for (int L = 0; L < 2; L++) {
        char nm[160];
        uint64_t g = H / 32, gd = I / 32;
        uint64_t bs[4] = {E, 2 * I, g, bad == HUB_TRUNC ? 15 : 16};
        uint64_t ss[3] = {E, bad == HUB_MISMATCH ? I : 2 * I, bad == HUB_BAD_SCALE ? g + 1 : g};
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.experts.gate_up_proj_blocks", L);
        if (mc_st_writer_add(w, nm, MC_T_U8, 4, bs, &err)) goto done;
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.experts.gate_up_proj_scales", L);
        if (mc_st_writer_add(w, nm, MC_T_U8, 3, ss, &err)) goto done;
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.experts.down_proj_blocks", L);
        if (mc_st_writer_add(w, nm, MC_T_U8, 4, (uint64_t[]){E, H, gd, 16}, &err)) goto done;
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.experts.down_proj_scales", L);
        if (mc_st_writer_add(w, nm, MC_T_U8, 3, (uint64_t[]){E, H, gd}, &err)) goto done;
    }
    if (mc_st_writer_begin(w, &err)) goto done;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const mc_st_tensor *t = &st->tensors[i];
        if ((strstr(t->name, "experts.gate_up_proj") || strstr(t->name, "experts.down_proj")) && !strstr(t->name, "bias"))
            continue;
        unsigned char *b = malloc(t->nbytes);
        int bad_rd = !b || mc_st_read(st, t, 0, b, t->nbytes, &err) || mc_st_writer_tensor(w, t->name, b, t->nbytes, &err);
        free(b);
        if (bad_rd) goto done;
    }
    for (int L = 0; L < 2; L++) {
        char nm[128];
        const mc_gguf_tensor *gt[3];
        static const char *const proj[] = {"gate", "up", "down"};
        unsigned char *src[3] = {0};
        int okg = 1;
        for (int k = 0; k < 3; k++) {
            snprintf(nm, sizeof nm, "blk.%d.ffn_%s_exps.weight", L, proj[k]);
            gt[k] = mc_gguf_find_tensor(gg, nm);
            okg &= gt[k] && gt[k]->type == MC_T_MXFP4 && (src[k] = malloc(gt[k]->nbytes)) &&
                   !mc_gguf_read(gg, gt[k], 0, src[k], gt[k]->nbytes, &err);
        }
        uint64_t g = H / 32, gd = I / 32;
        uint64_t bsz = E * 2 * I * g * (bad == HUB_TRUNC ? 15 : 16);
        uint64_t ssz = E * (bad == HUB_MISMATCH ? I : 2 * I) * (bad == HUB_BAD_SCALE ? g + 1 : g);
        unsigned char *gb = okg ? calloc(1, E * 2 * I * g * 16) : NULL, *gs = okg ? calloc(1, E * 2 * I * (g + 1)) : NULL;
        unsigned char *db = okg ? malloc(E * H * gd * 16) : NULL, *ds = okg ? malloc(E * H * gd) : NULL;
        if (gb && gs && db && ds) {
            for (uint64_t e = 0; e < E; e++)
                for (uint64_t i = 0; i < I; i++)
                    for (int k = 0; k < 2; k++) /* hub row 2i + k: gate (k 0) / up (k 1) row i */
                        for (uint64_t c = 0; c < g; c++) {
                            const unsigned char *blk = src[k] + ((e * I + i) * g + c) * 17;
                            uint64_t o = (e * 2 * I + 2 * i + (uint64_t)k) * g + c;
                            hub_group(blk, gb + o * 16);
                            gs[o] = blk[0];
                        }
            for (uint64_t r = 0; r < E * H * gd; r++) {
                hub_group(src[2] + r * 17, db + r * 16);
                ds[r] = src[2][r * 17];
            }
        }
        int bad_w = !gb || !gs || !db || !ds || mc_st_writer_write(w, gb, (size_t)bsz, &err) ||
                    mc_st_writer_write(w, gs, (size_t)ssz, &err) || mc_st_writer_write(w, db, E * H * gd * 16, &err) ||
                    mc_st_writer_write(w, ds, E * H * gd, &err);
        for (int k = 0; k < 3; k++) free(src[k]);
        free(gb);
        free(gs);
        free(db);
        free(ds);
        if (bad_w) goto done;
    }
    if (mc_st_writer_commit(w, &err)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "hub fixture: %s\n", err.msg);
    mc_st_writer_free(w);
    mc_st_close(st);
    mc_gguf_close(gg);
    cJSON_Delete(cfg);
    return rc;
}

/* The hub form: names, every expert value = the MXFP4_MOE GGUF's (ggml's
 * dequantization), everything else = hf/; the mlx folder holds exactly
 * mlx-lm's sanitize of the hub tensors (blocks viewed as uint32, even /
 * odd rows); .flash verifies; the corrupted forms are refused naming the
 * tensor, leaving nothing behind. */
static void test_hub_blocks(void)
{
    char dir[1200], p[1400];
    snprintf(dir, sizeof dir, "%s/hub", mc_test_tmpdir());
    if (write_hub(dir, HUB_OK)) {
        mc_test_skip("gpt_oss hub fixture: corpus-new gpt_oss files absent or unwritable");
        return;
    }
    printf("gpt_oss hub MXFP4 fixture written from the specification (the corpus hf/ is bf16)\n");
    const char *gp = mc_test_corpus_new_file("models/gpt_oss/gguf/gpt_oss-MXFP4_MOE.gguf");
    char ggp[1024];
    snprintf(ggp, sizeof ggp, "%s", gp ? gp : "");
    mc_model *hub = mc_test_model_open(dir, NULL), *q = mc_test_model_open(ggp, NULL);
    CHECK(hub && q);
    if (hub) mc_test_names_check(hub, "gpt_oss", "gpt_oss hub");
    size_t eq = 0;
    for (size_t i = 0; hub && q && i < hub->n_tensors; i++) {
        const mc_mtensor *t = &hub->tensors[i], *u = mc_model_find(q, t->name);
        if (!strstr(t->name, "experts.") || !strstr(t->name, ".weight")) continue;
        float *a = mc_test_model_read_all(hub, t), *b = u ? mc_test_model_read_all(q, u) : NULL;
        CHECKF(a && b && memcmp(a, b, mc_test_mt_nelem(t) * sizeof *a) == 0, "hub: %s differs from the GGUF's MXFP4", t->name);
        CHECK(t->src_type == MC_T_MXFP4);
        eq += a && b && memcmp(a, b, mc_test_mt_nelem(t) * sizeof *a) == 0;
        free(a);
        free(b);
    }
    printf("gpt_oss hub: %zu expert weights = the MXFP4 GGUF's (ggml's dequantization) bit for bit\n", eq);
    CHECK(eq == 6);
    if (q) mc_convert_close(q);
    if (hub) mc_convert_close(hub);
    /* mlx folder: mlx-lm's sanitize of the hub tensors, byte for byte */
    char mdir[1300];
    snprintf(mdir, sizeof mdir, "%s/hub_mlx", mc_test_tmpdir());
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s' --layout mlx --quiet", mc_test_mconv(), dir, mdir);
    CHECKF(rc == 0, "hub mlx layout: %s", out ? out : "");
    free(out);
    mc_st *src = NULL, *dst = NULL;
    mc_error err = {0};
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(mc_st_open(p, &src, &err) == 0);
    snprintf(p, sizeof p, "%s/model.safetensors", mdir);
    CHECK(mc_st_open(p, &dst, &err) == 0);
    size_t same = 0;
    for (int L = 0; src && dst && L < 2; L++)
        for (int k = 0; k < 3; k++)
            for (int part = 0; part < 2; part++) {
                static const char *const proj[] = {"gate", "up", "down"};
                char sn[160], dn[160];
                snprintf(sn, sizeof sn, "model.layers.%d.mlp.experts.%s_proj_%s", L, k == 2 ? "down" : "gate_up",
                         part ? "scales" : "blocks");
                snprintf(dn, sizeof dn, "model.layers.%d.mlp.experts.%s_proj.%s", L, proj[k], part ? "scales" : "weight");
                const mc_st_tensor *a = mc_st_find(src, sn), *b = mc_st_find(dst, dn);
                CHECKF(a && b, "hub: %s or %s absent", sn, dn);
                if (!a || !b) continue;
                uint64_t rows = a->shape[0] * a->shape[1], rb = a->nbytes / rows; /* [E, R, ...] */
                unsigned char *x = malloc(a->nbytes), *y = malloc(b->nbytes);
                if (x && y && !mc_st_read(src, a, 0, x, a->nbytes, &err) && !mc_st_read(dst, b, 0, y, b->nbytes, &err)) {
                    /* sanitize: gate_up rows ::2 / 1::2, down as is */
                    uint64_t keep = k == 2 ? rows : rows / 2, bad = 0;
                    CHECK(b->nbytes == keep * rb);
                    for (uint64_t r = 0; r < keep && b->nbytes == keep * rb; r++) {
                        uint64_t sr = k == 2 ? r : 2 * r + (uint64_t)k;
                        bad += memcmp(x + sr * rb, y + r * rb, (size_t)rb) != 0;
                    }
                    CHECKF(bad == 0, "hub: %s: %llu rows differ from mlx-lm's sanitize of %s", dn,
                           (unsigned long long)bad, sn);
                    same += bad == 0;
                    CHECK(b->type == (part ? MC_T_U8 : MC_T_U32));
                }
                free(x);
                free(y);
            }
    printf("gpt_oss hub -> mlx: %zu weight/scales tensors = mlx-lm's sanitize of the hub blocks byte for byte\n", same);
    CHECK(same == 12);
    mc_st_close(src);
    mc_st_close(dst);
    snprintf(p, sizeof p, "%s/hub.flash", mc_test_tmpdir());
    out = NULL;
    rc = mc_test_run(&out, "'%s' '%s' '%s' --quiet && '%s' verify '%s' --source '%s'", mc_test_mconv(), dir, p,
                     mc_test_mconv(), p, dir);
    CHECKF(rc == 0 && out && strstr(out, "identical"), "hub .flash verify: %s", out ? out : "");
    free(out);
    /* corrupted forms: one line naming the tensor, non-zero exit, no output */
    static const char *const what[] = {"", "scales of the wrong group count", "truncated blocks (15 bytes a group)",
                                       "scales rows unlike the blocks'"};
    for (int bad = HUB_BAD_SCALE; bad <= HUB_MISMATCH; bad++) {
        char bd[1300], of[1400];
        snprintf(bd, sizeof bd, "%s/hub_bad%d", mc_test_tmpdir(), bad);
        CHECK(write_hub(bd, bad) == 0);
        snprintf(of, sizeof of, "%s/out_bad%d.flash", mc_test_tmpdir(), bad);
        out = NULL;
        rc = mc_test_run(&out, "'%s' '%s' '%s' --quiet", mc_test_mconv(), bd, of);
        FILE *f = fopen(of, "rb");
        CHECKF(rc == 1 && out && strstr(out, "gate_up_proj_blocks") && strstr(out, "gate_up_proj_scales") && !f,
               "hub %s: rc %d, %s", what[bad], rc, out ? out : "");
        if (f) fclose(f);
        printf("hub %s refused: %s", what[bad], out ? out : "\n");
        free(out);
    }
}

int main(void)
{
    test_corpus();
    test_mxfp4_outputs();
    test_hub_blocks();
    return mc_test_finish("test_convert_gpt_oss");
}
