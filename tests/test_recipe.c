/* Per-module bits: --recipe source and mlx-lm's mixed recipes.
 *
 * mixed_*: testdata/recipes/mixed_expected.tsv holds, for every corpus model
 * (hf/ and the bf16 GGUF) and every recipe, the bits mlx-lm's own
 * mixed_quant_predicate_builder (mlx_lm/convert.py, run unchanged as Python
 * source by scripts/mixed_recipe_expected.py; the revision is in the file's
 * first line) gives each module mconv quantizes. For reference, that
 * function: high bits 6 (4 for mixed_3_4), low bits 2/3/3/4; a module gets
 * the high bits when its path contains "lm_head", or contains v_proj,
 * v_a_proj, v_b_proj or down_proj in a layer with use_more_bits (index <
 * n/8, index >= 7n/8, or (index - n/8) % 3 == 2); everything else,
 * embeddings and routers included (the recipe replaces the model's own
 * quant_predicate in mlx_lm/utils.py quantize_model), gets the low bits.
 * Every plan must give exactly those bits to exactly those modules, and its
 * "quantization" block an entry with "mode" for each, as mlx-lm writes.
 *
 * source: on every Q4_K_M corpus GGUF each quantized tensor gets the bits of
 * its GGML type (this file's own table, not mconv's), Q6_K tensors 6, the
 * others 4 (float sources --bits or the converter's 8-bit routers); the
 * config's quantization lists exactly the modules that are not 4-bit; an
 * mlx folder written from it has, for every module, weight and scales whose
 * shapes are those bits and group size 64.
 */
#include "mc_test.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_convert.h"
#include "mc_plan.h"
#include "mc_recipe.h"
#include "mc_safetensors.h"
#include "mc_types.h"

static int g_models_mixed, g_rows_mixed, g_models_source, g_q6;

/* ---- mixed ---- */

typedef struct row {
    char model[256], recipe[32], module[256];
    int bits, seen;
} row;

static row *g_rows;
static size_t g_nrows;

static int load_fixture(void)
{
    size_t n = 0;
    char *d = (char *)mc_test_read_file(MCONV_SOURCE_DIR "/testdata/recipes/mixed_expected.tsv", &n);
    if (!d) return 0;
    char *save = NULL;
    for (char *ln = strtok_r(d, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (ln[0] == '#') continue;
        row r;
        memset(&r, 0, sizeof r);
        if (sscanf(ln, "%255[^\t]\t%31[^\t]\t%255[^\t]\t%d", r.model, r.recipe, r.module, &r.bits) != 4) continue;
        row *nr = realloc(g_rows, (g_nrows + 1) * sizeof *nr);
        if (!nr) break;
        g_rows = nr;
        g_rows[g_nrows++] = r;
    }
    free(d);
    return g_nrows > 0;
}

static char *module_of(const char *name)
{
    size_t n = strlen(name);
    if (n <= 7 || strcmp(name + n - 7, ".weight")) return NULL;
    char *m = malloc(n - 6);
    if (m) {
        memcpy(m, name, n - 7);
        m[n - 7] = 0;
    }
    return m;
}

static void check_mixed_model(const char *rel)
{
    const char *path = mc_test_corpus_file(rel);
    if (!path) return;
    mc_model *m = NULL;
    mc_error err = { MC_OK, "" };
    mc_convert_opts co = { 0, 1 };
    if (mc_convert_open(path, &co, &m, &err)) {
        CHECKF(0, "%s: %s", rel, err.msg);
        return;
    }
    g_models_mixed++;
    for (int r = MC_RECIPE_MIXED_2_6; r <= MC_RECIPE_MIXED_4_6; r++) {
        mc_plan_opts o;
        mc_plan *p = NULL;
        mc_plan_opts_default(&o);
        o.recipe = r;
        if (mc_plan_build(m, &o, &p, &err)) {
            CHECKF(0, "%s %s: %s", rel, mc_recipe_name(r), err.msg);
            continue;
        }
        size_t want = 0, have = 0;
        for (size_t i = 0; i < g_nrows; i++)
            if (!strcmp(g_rows[i].model, rel) && !strcmp(g_rows[i].recipe, mc_recipe_name(r))) want++;
        for (size_t i = 0; i < p->n_items; i++) {
            const mc_pitem *it = &p->items[i];
            if (it->kind != MC_PK_AFFINE) continue;
            char *mod = module_of(it->mt->name);
            if (!mod) continue;
            have++;
            row *f = NULL;
            for (size_t k = 0; k < g_nrows && !f; k++)
                if (!strcmp(g_rows[k].model, rel) && !strcmp(g_rows[k].recipe, mc_recipe_name(r)) &&
                    !strcmp(g_rows[k].module, mod))
                    f = &g_rows[k];
            CHECKF(f != NULL, "%s %s: %s quantized, mlx-lm's list lacks it", rel, mc_recipe_name(r), mod);
            if (f) {
                f->seen = 1;
                g_rows_mixed++;
                CHECKF(it->bits == f->bits, "%s %s: %s has %d bits, mlx-lm gives %d", rel, mc_recipe_name(r), mod,
                       it->bits, f->bits);
                CHECKF(it->group_size == 64, "%s: group %d", mod, it->group_size);
            }
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(p->quantization, mod);
            const cJSON *eb = cJSON_GetObjectItemCaseSensitive(e, "bits");
            const cJSON *em = cJSON_GetObjectItemCaseSensitive(e, "mode");
            CHECKF(cJSON_IsNumber(eb) && eb->valueint == it->bits && cJSON_IsString(em) &&
                       !strcmp(em->valuestring, "affine"),
                   "%s %s: quantization entry of %s", rel, mc_recipe_name(r), mod);
            free(mod);
        }
        CHECKF(have == want, "%s %s: %zu modules quantized, mlx-lm quantizes %zu", rel, mc_recipe_name(r), have, want);
        mc_plan_free(p);
    }
    mc_convert_close(m);
}

static void test_mixed(void)
{
    if (!mc_test_corpus()) {
        mc_test_skip("corpus absent: mixed recipes not checked");
        return;
    }
    if (!load_fixture()) {
        CHECKF(0, "testdata/recipes/mixed_expected.tsv unreadable");
        return;
    }
    char last[256] = "";
    for (size_t i = 0; i < g_nrows; i++)
        if (strcmp(g_rows[i].model, last)) {
            snprintf(last, sizeof last, "%s", g_rows[i].model);
            check_mixed_model(last);
        }
    for (size_t i = 0; i < g_nrows; i++)
        if (mc_test_corpus_file(g_rows[i].model))
            CHECKF(g_rows[i].seen, "%s %s: %s not quantized by mconv", g_rows[i].model, g_rows[i].recipe,
                   g_rows[i].module);
    /* a recipe on a model without down_proj is refused like mlx-lm does; a
     * wrong name is refused by the options */
    CHECK(mc_recipe_from_name("mixed_5_6") < 0 && mc_recipe_from_name("source") == MC_RECIPE_SOURCE);
    free(g_rows);
}

/* ---- source ---- */

/* The bits each GGML type keeps (docs/QUANT.md), written out here. */
static int want_src_bits(int t)
{
    switch (t) {
    case MC_T_Q8_0: case MC_T_Q8_K: return 8;
    case MC_T_Q6_K: return 6;
    case MC_T_Q5_0: case MC_T_Q5_1: case MC_T_Q5_K: return 5;
    case MC_T_Q4_0: case MC_T_Q4_1: case MC_T_Q4_K: case MC_T_IQ4_NL: case MC_T_IQ4_XS: return 4;
    case MC_T_Q3_K: case MC_T_IQ3_XXS: case MC_T_IQ3_S: return 3;
    case MC_T_Q2_K: case MC_T_IQ2_XXS: case MC_T_IQ2_XS: case MC_T_IQ2_S: return 2;
    default: return 0;
    }
}

/* An mlx folder from the source recipe: each module's stored shapes are
 * its bits and group 64 (as mlx-lm's loader builds QuantizedLinear from
 * config.quantization), and config.quantization names the non-4-bit ones. */
static void check_source_folder(const char *path, const mc_plan *p)
{
    char out[1200], *log = NULL;
    snprintf(out, sizeof out, "%s/src%d", mc_test_tmpdir(), g_models_source);
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --layout mlx --recipe source -q", mc_test_mconv(), path, out);
    CHECKF(rc == 0, "%s: --layout mlx --recipe source: %s", path, log ? log : "");
    free(log);
    if (rc) return;
    char cfgp[1300];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", out);
    size_t n = 0;
    unsigned char *d = mc_test_read_file(cfgp, &n);
    cJSON *cfg = d ? cJSON_ParseWithLength((const char *)d, n) : NULL;
    free(d);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    mc_st *st = NULL;
    mc_error err = { MC_OK, "" };
    CHECKF(q && mc_st_open(out, &st, &err) == 0, "%s: %s", out, err.msg);
    for (size_t i = 0; st && q && i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        if (it->kind != MC_PK_AFFINE) continue;
        char *mod = module_of(it->mt->name), wn[600], sn[600];
        if (!mod) continue;
        snprintf(wn, sizeof wn, "%s.weight", mod);
        snprintf(sn, sizeof sn, "%s.scales", mod);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, mod);
        const cJSON *eb = cJSON_GetObjectItemCaseSensitive(e, "bits");
        int bits = cJSON_IsNumber(eb) ? eb->valueint : cJSON_GetObjectItemCaseSensitive(q, "bits")->valueint;
        CHECKF(!e == (it->bits == 4), "%s: %s %d bits, entry %s", path, mod, it->bits, e ? "present" : "absent");
        const mc_st_tensor *w = mc_st_find(st, wn), *s = mc_st_find(st, sn);
        CHECKF(w && s, "%s: %s missing", out, mod);
        if (w && s) {
            uint64_t in = s->shape[s->n_dims - 1] * 64;
            CHECKF(bits == it->bits && w->shape[w->n_dims - 1] * 32 == in * (uint64_t)bits && in == it->ncols,
                   "%s: %s weight %llu words, scales %llu for %d bits", out, mod,
                   (unsigned long long)w->shape[w->n_dims - 1], (unsigned long long)s->shape[s->n_dims - 1], bits);
        }
        free(mod);
    }
    mc_st_close(st);
    cJSON_Delete(cfg);
}

static void check_source(const char *path, int gguf, void *ctx)
{
    (void)ctx;
    if (!gguf || !strstr(path, "Q4_K_M")) return;
    mc_model *m = NULL;
    mc_error err = { MC_OK, "" };
    mc_convert_opts co = { 0, 1 };
    if (mc_convert_open(path, &co, &m, &err)) {
        if (err.code == MC_ERR_UNSUPPORTED) mc_test_skip("%s: %s", path, err.msg);
        else CHECKF(0, "%s: %s", path, err.msg);
        return;
    }
    mc_plan_opts o;
    mc_plan *p = NULL;
    mc_plan_opts_default(&o);
    o.recipe = MC_RECIPE_SOURCE;
    if (mc_plan_build(m, &o, &p, &err)) {
        CHECKF(0, "%s: %s", path, err.msg);
        mc_convert_close(m);
        return;
    }
    g_models_source++;
    int q6 = 0;
    for (size_t i = 0; i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        if (it->kind != MC_PK_AFFINE) continue;
        int t = it->mt->src_type, want = want_src_bits(t);
        if (t < 0) { /* parts of different types (an expert stack): the largest of theirs */
            CHECKF(it->bits == (it->mt->src_bits ? it->mt->src_bits : 4), "%s: %s", path, it->mt->name);
            continue;
        }
        if (!want) want = it->mt->quant_bits ? it->mt->quant_bits : 4;
        q6 += t == MC_T_Q6_K;
        CHECKF(it->bits == want, "%s: %s (%s) has %d bits, want %d", path, it->mt->name, mc_type_name(t), it->bits,
               want);
        char *mod = module_of(it->mt->name);
        const cJSON *e = mod ? cJSON_GetObjectItemCaseSensitive(p->quantization, mod) : NULL;
        CHECKF(!e == (it->bits == 4), "%s: %s entry %s for %d bits", path, it->mt->name, e ? "present" : "absent",
               it->bits);
        free(mod);
    }
    CHECKF(q6 > 0, "%s: no Q6_K tensor (Q4_K_M keeps some)", path);
    g_q6 += q6;
    if (strstr(path, "/qwen3/") || strstr(path, "/qwen3_moe/") || strstr(path, "/deepseek_v3/"))
        check_source_folder(path, p);
    mc_plan_free(p);
    mc_convert_close(m);
}

static void test_source(void)
{
    int n = mc_test_each_corpus_model(check_source, NULL);
    n += mc_test_each_corpus_new_model(check_source, NULL);
    if (!n) mc_test_skip("corpus absent: --recipe source not checked");
}

/* The recipe is recorded in the .flash options: verify --source re-runs it
 * and finds every byte equal. */
static void test_verify_source(void)
{
    static const struct { const char *rel, *recipe; } runs[] = {
        { "models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf", "source" },
        { "models/qwen3/hf", "mixed_3_6" },
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        const char *src = mc_test_corpus_file(runs[i].rel);
        char out[1200], *log = NULL;
        if (!src) continue;
        snprintf(out, sizeof out, "%s/v%zu.flash", mc_test_tmpdir(), i);
        int rc = mc_test_run(&log, "'%s' '%s' '%s' --recipe %s -q && '%s' verify '%s' --source '%s'", mc_test_mconv(),
                             src, out, runs[i].recipe, mc_test_mconv(), out, src);
        CHECKF(rc == 0 && log && strstr(log, "identical to a conversion of the source"), "%s --recipe %s: %s",
               runs[i].rel, runs[i].recipe, log ? log : "");
        free(log);
    }
}

int main(void)
{
    test_mixed();
    test_source();
    test_verify_source();
    printf("mixed: %d models, %d module choices equal to mlx-lm's; source: %d Q4_K_M files, %d Q6_K tensors at 6 "
           "bits\n", g_models_mixed, g_rows_mixed, g_models_source, g_q6);
    return mc_test_finish("test_recipe");
}
