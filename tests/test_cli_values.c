/* mconv dump --tensor NAME --f32-out: equals mc_dequant of the tensor's
 * bytes (read through mc_gguf_read), exactly rows*cols*4 bytes. */
#include "mc_test.h"

#include "mc_dequant.h"
#include "mc_gguf.h"
#include "mc_types.h"

#include <stdlib.h>
#include <string.h>

static void check_tensor(const char *path, const mc_gguf *g, const mc_gguf_tensor *t)
{
    char out[1024];
    char *log = NULL;
    snprintf(out, sizeof out, "%s/%s.f32", mc_test_tmpdir(), t->name.s);
    int rc = mc_test_run(&log, "'%s' dump '%s' --tensor '%s' --f32-out '%s' --force", mc_test_mconv(), path, t->name.s, out);
    CHECKF(rc == 0, "%s %s: exit %d: %s", path, t->name.s, rc, log ? log : "");
    free(log);
    size_t len = 0;
    unsigned char *got = mc_test_read_file(out, &len);
    CHECKF(got && len == t->nelements * 4, "%s: %zu bytes, want %llu", t->name.s, len, (unsigned long long)t->nelements * 4);
    unsigned char *raw = malloc(t->nbytes ? t->nbytes : 1);
    float *want = malloc(t->nelements * sizeof *want);
    mc_error err = { 0 };
    CHECK(raw && want);
    if (got && raw && want && len == t->nelements * 4) {
        CHECK(mc_gguf_read(g, t, 0, raw, t->nbytes, &err) == 0);
        CHECK(mc_dequant(t->type, raw, want, (int64_t)t->nelements, &err) == 0);
        uint64_t bad = 0;
        for (uint64_t i = 0; i < t->nelements; i++) {
            uint32_t a, b;
            memcpy(&b, &want[i], 4);
            a = (uint32_t)got[4 * i] | (uint32_t)got[4 * i + 1] << 8 | (uint32_t)got[4 * i + 2] << 16 | (uint32_t)got[4 * i + 3] << 24;
            bad += a != b;
        }
        CHECKF(bad == 0, "%s %s (%s): %llu values differ from mc_dequant", path, t->name.s, mc_type_name(t->type),
               (unsigned long long)bad);
    }
    free(got);
    free(raw);
    free(want);
    remove(out);
}

int main(void)
{
    static const char *files[] = {
        "models/llama/gguf/llama-Q4_K_M.gguf", "models/qwen3/gguf/qwen3-IQ4_XS.gguf",
        "models/deepseek_v3/gguf/deepseek_v3-Q4_K_M.gguf", "models/gemma3/gguf/gemma3-Q4_0.gguf",
        "models/phi3/gguf/phi3-Q6_K.gguf",
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        const char *path = mc_test_corpus_file(files[f]);
        mc_gguf *g = NULL;
        mc_error err = { 0 };
        if (!path) continue;
        CHECKF(mc_gguf_open(path, &g, &err) == 0, "%s", err.msg);
        if (!g) continue;
        int seen[MC_T_COUNT] = { 0 };
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const mc_gguf_tensor *t = &g->tensors[i];
            if (t->type < 0 || t->type >= MC_T_COUNT || seen[t->type]) continue; /* one tensor per type per file */
            seen[t->type] = 1;
            check_tensor(path, g, t);
        }
        mc_gguf_close(g);
    }
    return mc_test_finish("test_cli_values");
}
