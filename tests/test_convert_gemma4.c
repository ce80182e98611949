/* mc_convert for gemma4 (mlx-lm gemma4_text.py). Hugging Face checkpoints
 * only: the llama.cpp build of the corpus has no Gemma 4 converter.
 *
 * Corpus-new gemma4/hf (sliding + full layers of different head widths and
 * KV heads, attention_k_eq_v, enable_moe_block):
 *  - names and shapes equal testdata/mlx_names/gemma4_text.txt (mlx-lm's
 *    class instantiated with the config mconv writes);
 *  - every tensor bit for bit the checkpoint's, the fused experts split as
 *    mlx-lm's sanitize does (read here straight from the safetensors file,
 *    gate = the first I rows of each expert, up = the next I);
 *  - roles (dense MLP ffn, experts expert, router pinned), router.proj at 8
 *    bits (quant_predicate), config.json: global_head_dim and
 *    num_global_key_value_heads from the full layer, the rest equal to
 *    hf/config.json;
 *  - .flash, verify against the source, --layout mlx (converted back: the
 *    same names), --layout mac-code refused naming the reason.
 * Fixture (no corpus sample): testdata/arch_fixtures/gemma4_kv_shared.json,
 * a KV-shared last layer (its k_proj / v_proj / k_norm dropped as mlx-lm's
 * sanitize does), per-layer inputs, no MoE: the HF tensors are written here
 * from testdata/mlx_names/gemma4_text_kv_shared.txt plus the shared layer's
 * K/V; and refusals (missing v_proj, enable_moe_block contradicting the
 * tensors, a global_head_dim contradicting the full layer's q_norm).
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_convert.h"
#include "mc_safetensors.h"
#include "mc_st_write.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A bf16 safetensors tensor as f32 (independent of mc_convert). */
static float *st_bf16(const mc_st *st, const char *name, uint64_t *n)
{
    const mc_st_tensor *t = mc_st_find(st, name);
    if (!t || t->type != MC_T_BF16) return NULL;
    uint16_t *raw = malloc(t->nbytes ? t->nbytes : 1);
    float *v = malloc((t->nelements ? t->nelements : 1) * sizeof *v);
    mc_error err = {0};
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

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* ------------------------------------------------------------ corpus */

static void corpus_values(const mc_model *m, const char *hf)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", hf);
    mc_st *st = NULL;
    mc_error err = {0};
    CHECKF(mc_st_open(p, &st, &err) == 0, "%s: %s", p, err.msg);
    if (!st) return;
    size_t exact = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        char src[200];
        int half = -1;
        snprintf(src, sizeof src, "%s", t->name);
        char *sw = strstr(src, "experts.switch_glu.");
        if (sw) {
            half = has(sw, "gate_proj") ? 0 : has(sw, "up_proj") ? 1 : -1;
            strcpy(sw, half >= 0 ? "experts.gate_up_proj" : "experts.down_proj");
        }
        uint64_t n = 0;
        float *want = st_bf16(st, src, &n), *got = mc_test_model_read_all(m, t);
        CHECKF(want && got, "%s: source %s or output missing", t->name, src);
        if (want && got) {
            int ok = 1;
            if (half >= 0) { /* [E, 2I, H] -> [E, I, H] */
                uint64_t E = t->shape[0], I = t->shape[1], H = t->shape[2];
                ok = n == E * 2 * I * H;
                for (uint64_t e = 0; ok && e < E; e++)
                    ok = memcmp(got + e * I * H, want + (e * 2 * I + (uint64_t)half * I) * H, I * H * 4) == 0;
            } else {
                ok = n == mc_test_mt_nelem(t) && memcmp(got, want, n * 4) == 0;
            }
            CHECKF(ok, "%s: values differ from hf/ %s", t->name, src);
            exact += ok;
        }
        free(want);
        free(got);
        /* roles and the quant predicate */
        mc_role role = has(t->name, ".mlp.") ? MC_ROLE_FFN : has(t->name, ".experts.") ? MC_ROLE_EXPERT : MC_ROLE_PINNED;
        CHECKF(t->role == role, "%s: role %d, want %d", t->name, t->role, role);
        CHECKF(t->quant_bits == (has(t->name, "router.proj") ? 8 : 0), "%s: quant bits %d", t->name, t->quant_bits);
    }
    printf("gemma4 hf: %zu of %zu tensors bit for bit (fused experts split per expert)\n", exact, m->n_tensors);
    mc_st_close(st);
}

static void corpus_config(const mc_model *m, const char *hf)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/config.json", hf);
    cJSON *ref = mc_test_read_json(p);
    CHECK(ref != NULL);
    const cJSON *c = m->config, *it;
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "model_type")), "gemma4_text");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(c, "global_head_dim");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "num_global_key_value_heads");
    CHECKF(cJSON_IsNumber(g) && g->valuedouble == 64, "global_head_dim");
    CHECKF(cJSON_IsNumber(k) && k->valuedouble == 1, "num_global_key_value_heads");
    int compared = 0;
    cJSON_ArrayForEach(it, ref) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(c, it->string);
        CHECKF(o != NULL, "config.json lacks %s", it->string);
        if (o) {
            CHECKF(cJSON_Compare(o, it, 1), "config.json %s differs from hf/", it->string);
            compared++;
        }
    }
    printf("gemma4 hf: %d config keys equal hf/config.json\n", compared);
    cJSON_Delete(ref);
}

static void corpus_cli(const char *hf)
{
    const char *tmp = mc_test_tmpdir(), *mconv = mc_test_mconv();
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s/g4.flash' && '%s' verify '%s/g4.flash' --source '%s'", mconv, hf, tmp,
                         mconv, tmp, hf);
    CHECKF(rc == 0 && out && strstr(out, "sound"), "flash + verify: %s", out ? out : "");
    CHECKF(out && strstr(out, "experts: 2 MoE layers x 4 experts") && strstr(out, "2 per token"), "%s", out ? out : "");
    free(out);
    /* quantized (the default) and float mlx folders; converted back, the
     * float one gives mlx-lm's names and shapes again, the quantized one
     * every mlx-lm weight with .scales / .biases beside the quantized ones */
    for (int nq = 0; nq < 2; nq++) {
        rc = mc_test_run(&out, "'%s' '%s' '%s/g4mlx%d' --layout mlx%s", mconv, hf, tmp, nq, nq ? " --no-quant" : "");
        CHECKF(rc == 0, "--layout mlx: %s", out ? out : "");
        free(out);
        char p[1024];
        snprintf(p, sizeof p, "%s/g4mlx%d", tmp, nq);
        mc_model *back = NULL;
        mc_error err = {0};
        CHECKF(mc_convert_open(p, NULL, &back, &err) == 0, "mlx folder back: %s", err.msg);
        if (back && nq) mc_test_names_check(back, "gemma4_text", "gemma4 float mlx folder");
        if (back && !nq) {
            static mc_test_name want[128];
            size_t n = mc_test_names_load("gemma4_text", want, 128), quant = 0;
            for (size_t i = 0; i < n; i++) {
                CHECKF(mc_model_find(back, want[i].name) != NULL, "mlx folder: %s", want[i].name);
                char sc[200];
                snprintf(sc, sizeof sc, "%.*s.scales", (int)(strlen(want[i].name) - 7), want[i].name);
                quant += has(want[i].name, ".weight") && mc_model_find(back, sc) != NULL;
            }
            CHECKF(back->n_tensors == n + 2 * quant && quant == 20, "mlx folder: %zu tensors, %zu quantized",
                   back->n_tensors, quant);
        }
        mc_convert_close(back);
    }
    rc = mc_test_run(&out, "'%s' '%s' '%s/g4mc' --layout mac-code", mconv, hf, tmp);
    CHECKF(rc != 0 && out && strstr(out, "no mac-code engine builds gemma4_text"), "mac-code: %s", out ? out : "");
    free(out);
}

static void test_corpus(void)
{
    const char *hf = mc_test_corpus_new_file("models/gemma4/hf");
    if (!hf) return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", hf);
    mc_model *m = NULL;
    mc_error err = {0};
    CHECKF(mc_convert_open(dir, NULL, &m, &err) == 0, "%s: %s", dir, err.msg);
    if (!m) return;
    mc_test_names_check(m, "gemma4_text", "gemma4 hf");
    corpus_values(m, dir);
    corpus_config(m, dir);
    CHECK(m->n_experts == 4 && m->n_experts_per_tok == 2);
    mc_convert_close(m);
    corpus_cli(dir);
}

/* ----------------------------------------------------------- fixture */

static uint32_t g_rng = 12345;
static uint16_t rnd_bf16(void)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return mc_f32_to_bf16(((float)(g_rng >> 9) / (float)(1u << 23) - 0.5f) * 0.1f);
}

/* Write the kv-shared fixture into dir: the list's tensors (minus `skip`)
 * plus the shared layer's K/V, config.json with `edit` applied. */
static int write_fixture(const char *dir, const char *skip, const char *edit_key, cJSON *edit_val)
{
    static mc_test_name e[256];
    size_t n = mc_test_names_load("gemma4_text_kv_shared", e, 250);
    static const char *const extra[] = {"model.layers.2.self_attn.k_proj.weight", "model.layers.2.self_attn.v_proj.weight",
                                        "model.layers.2.self_attn.k_norm.weight"};
    static const uint64_t extra_sh[][2] = {{16, 64}, {16, 64}, {16, 0}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(e[n].name, sizeof e[n].name, "%s", extra[i]);
        e[n].nd = extra_sh[i][1] ? 2 : 1;
        e[n].sh[0] = extra_sh[i][0];
        e[n].sh[1] = extra_sh[i][1];
        n++;
    }
    mkdir(dir, 0755);
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    mc_st_writer *w = NULL;
    mc_error err = {0};
    int rc = mc_st_writer_new(p, 1, &w, &err);
    for (size_t i = 0; i < n && !rc; i++)
        if (!skip || strcmp(e[i].name, skip)) rc = mc_st_writer_add(w, e[i].name, MC_T_BF16, e[i].nd, e[i].sh, &err);
    rc = rc ? rc : mc_st_writer_begin(w, &err);
    for (size_t i = 0; i < n && !rc; i++) {
        if (skip && !strcmp(e[i].name, skip)) continue;
        uint64_t ne = 1;
        for (uint32_t d = 0; d < e[i].nd; d++) ne *= e[i].sh[d];
        uint16_t *b = malloc(ne * 2);
        for (uint64_t k = 0; k < ne; k++) b[k] = rnd_bf16();
        rc = mc_st_writer_tensor(w, e[i].name, b, ne * 2, &err);
        free(b);
    }
    rc = rc ? rc : mc_st_writer_commit(w, &err);
    mc_st_writer_free(w);
    if (rc) fprintf(stderr, "fixture %s: %s\n", p, err.msg);
    snprintf(p, sizeof p, "%s/testdata/arch_fixtures/gemma4_kv_shared.json", MCONV_SOURCE_DIR);
    cJSON *cfg = mc_test_read_json(p);
    if (!cfg) return 1;
    if (edit_key) cJSON_ReplaceItemInObjectCaseSensitive(cfg, edit_key, edit_val);
    char *txt = cJSON_Print(cfg);
    snprintf(p, sizeof p, "%s/config.json", dir);
    rc |= mc_test_write_file(p, txt, strlen(txt));
    free(txt);
    cJSON_Delete(cfg);
    return rc;
}

static void test_fixture(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/g4kv", mc_test_tmpdir());
    CHECK(write_fixture(dir, NULL, NULL, NULL) == 0);
    mc_model *m = NULL;
    mc_error err = {0};
    CHECKF(mc_convert_open(dir, NULL, &m, &err) == 0, "%s", err.msg);
    if (m) {
        mc_test_names_check(m, "gemma4_text_kv_shared", "gemma4 kv-shared fixture");
        int noted = 0;
        for (size_t i = 0; i < m->n_notices; i++)
            noted |= strstr(m->notices[i], "model.layers.2.self_attn.k_proj.weight") != NULL;
        CHECKF(noted, "the shared layer's k_proj is reported unused");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(m->config, "global_head_dim");
        CHECK(cJSON_IsNumber(g) && g->valuedouble == 32);
        CHECK(cJSON_GetObjectItemCaseSensitive(m->config, "num_global_key_value_heads") == NULL);
        mc_convert_close(m);
    }
    static const struct { const char *skip, *key; const char *val, *want; mc_code code; } bad[] = {
        {"model.layers.0.self_attn.v_proj.weight", NULL, NULL, "model.layers.0.self_attn.v_proj.weight", MC_ERR_NOTFOUND},
        {NULL, "enable_moe_block", "true", "enable_moe_block", MC_ERR_FORMAT},
        {NULL, "global_head_dim", "48", "global_head_dim 48", MC_ERR_FORMAT},
        {NULL, "attention_k_eq_v", "true", "model.layers.1.self_attn.v_proj.weight", MC_ERR_NOTFOUND},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(dir, sizeof dir, "%s/g4bad%zu", mc_test_tmpdir(), i);
        CHECK(write_fixture(dir, bad[i].skip, bad[i].key, bad[i].val ? cJSON_Parse(bad[i].val) : NULL) == 0);
        m = NULL;
        mc_error_clear(&err);
        int rc = mc_convert_open(dir, NULL, &m, &err);
        if (i == 3) {
            /* k_eq_v: the full layer's v_proj is not mlx-lm's: left unused, not an error */
            CHECKF(rc == 0 && m && !mc_model_find(m, "model.layers.1.self_attn.v_proj.weight"), "k_eq_v: %s", err.msg);
            mc_convert_close(m);
            continue;
        }
        CHECKF(rc == (int)bad[i].code && !m && strstr(err.msg, bad[i].want), "case %zu: rc %d: %s", i, rc, err.msg);
        printf("refused: %s\n", err.msg);
        mc_convert_close(m);
    }
}

int main(void)
{
    test_corpus();
    test_fixture();
    return mc_test_finish("test_convert_gemma4");
}
