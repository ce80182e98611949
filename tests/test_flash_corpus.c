/* End to end over the corpus: every model under models/, from every GGUF
 * (each quantization type there) and from hf/, through `mconv IN OUT.flash`;
 * `mconv verify` passes; the independent reader (tests/support/
 * mc_test_flash.c) loads the pinned region, every dense layer and single
 * experts by their offsets and checks every tensor bit for bit against MLX
 * affine quantization of what mc_model_read_f32 gives. Then an option matrix
 * (bits, group sizes, dtypes, --no-quant) on a dense and a MoE model, and
 * verify --source. Architectures the converter does not support yet are
 * reported as skips. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_convert.h"
#include "mc_test.h"
#include "mc_test_flash.h"

static int g_converted;

/* Convert src with opts, verify, check with the independent reader. */
static void one(const char *src, const char *opts, int max_experts)
{
    char out[1024], *log = NULL;
    snprintf(out, sizeof out, "%s/out.flash", mc_test_tmpdir());
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --force --quiet %s", mc_test_mconv(), src, out, opts);
    if (rc == 1 && log && strstr(log, "not supported")) {
        mc_test_skip("%s: %s", src, log);
        free(log);
        return;
    }
    CHECKF(rc == 0, "convert %s %s: exit %d: %s", src, opts, rc, log ? log : "");
    free(log);
    if (rc) return;
    g_converted++;
    rc = mc_test_run(&log, "'%s' verify '%s'", mc_test_mconv(), out);
    CHECKF(rc == 0 && log && strstr(log, "sound"), "verify %s (%s): exit %d: %s", src, opts, rc, log ? log : "");
    free(log);

    mc_model *m = NULL;
    mc_error err = { MC_OK, "" };
    mc_convert_opts co = { 0, 1 };
    CHECKF(mc_convert_open(src, &co, &m, &err) == 0, "%s", err.msg);
    if (!m) return;
    mc_test_flash_report r;
    int nb = mc_test_flash_check(out, m, mc_model_read_f32, max_experts, &r);
    CHECKF(nb == 0, "%s (%s): %d mismatches, first: %s", src, opts, nb, r.first_bad);
    CHECKF(r.n_pinned > 0, "%s: no pinned tensors", src);
    CHECKF(r.n_ffn_spans > 0 || r.n_expert_layers > 0, "%s: nothing streamed", src);
    if (m->n_experts > 0) {
        CHECKF(r.n_expert_layers > 0 && r.n_expert_blocks > 0, "%s: MoE model without expert blocks", src);
        CHECK_EQ_U64(r.experts_per_tok, m->n_experts_per_tok);
    }
    if (!strstr(opts, "--no-quant")) CHECKF(r.n_quantized > 0, "%s: nothing quantized", src);
    else CHECK_EQ_U64(r.n_quantized, 0);
    mc_convert_close(m);
}

static int is_gguf(const char *n)
{
    size_t k = strlen(n);
    return k > 5 && !strcmp(n + k - 5, ".gguf");
}

int main(void)
{
    const char *models = mc_test_corpus_file("models");
    if (!models) return mc_test_finish("test_flash_corpus");
    DIR *d = opendir(models);
    struct dirent *de;
    char path[2048];
    char *names[64];
    int n = 0;
    while (d && (de = readdir(d)) != NULL && n < 64)
        if (de->d_name[0] != '.') names[n++] = strdup(de->d_name);
    if (d) closedir(d);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/gguf", models, names[i]);
        DIR *g = opendir(path);
        while (g && (de = readdir(g)) != NULL) {
            if (!is_gguf(de->d_name)) continue;
            char f[2400];
            snprintf(f, sizeof f, "%s/%s", path, de->d_name);
            one(f, "", 3);
        }
        if (g) closedir(g);
        snprintf(path, sizeof path, "%s/%s/hf", models, names[i]);
        one(path, "", 0);
        free(names[i]);
    }
    CHECKF(g_converted >= 8, "only %d corpus files converted", g_converted);

    /* option matrix on a dense GGUF and a MoE checkpoint */
    static const char *opts[] = {
        "--bits 2 --group-size 32", "--bits 3 --group-size 128 --dtype f16", "--bits 5 --dtype f32",
        "--bits 6 --group-size 32 --dtype bf16", "--bits 8 --group-size 128", "--no-quant", "--no-quant --dtype f16",
        "--threads 1",
    };
    const char *dense = mc_test_corpus_file("models/llama/gguf/llama-Q4_K_M.gguf");
    const char *moe = mc_test_corpus_file("models/qwen3_moe/hf");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (dense) one(dense, opts[i], 2);
        if (moe) one(moe, opts[i], 2);
    }

    /* verify --source: the recorded options reproduce the file */
    if (moe) {
        char out[1024], *log = NULL;
        snprintf(out, sizeof out, "%s/src.flash", mc_test_tmpdir());
        int rc = mc_test_run(NULL, "'%s' '%s' '%s' --quiet --bits 3 --group-size 32", mc_test_mconv(), moe, out);
        CHECK(rc == 0);
        rc = mc_test_run(&log, "'%s' verify '%s' --source '%s'", mc_test_mconv(), out, moe);
        CHECKF(rc == 0 && strstr(log, "identical to a conversion of the source"), "exit %d: %s", rc, log);
        free(log);
        /* a different source of the same architecture is caught */
        const char *other = mc_test_corpus_file("models/qwen3_moe/gguf/qwen3_moe-Q4_0.gguf");
        if (other) {
            rc = mc_test_run(&log, "'%s' verify '%s' --source '%s'", mc_test_mconv(), out, other);
            CHECKF(rc == 3 && strstr(log, "differs"), "exit %d: %s", rc, log);
            free(log);
        }
    }
    return mc_test_finish("test_flash_corpus");
}
