/* End to end over the corpus: every model under models/, from every GGUF
 * (each quantization type there) and from hf/, through `mconv IN OUT.flash`;
 * `mconv verify` passes; the independent reader (tests/support/
 * mc_test_flash.c) loads the pinned region, every dense layer and single
 * experts by their offsets and checks every tensor bit for bit against MLX
 * affine quantization of what mc_model_read_f32 gives. Then an option matrix
 * (bits, group sizes, dtypes, --no-quant) on a dense and a MoE model, and
 * verify --source. Architectures the converter does not support yet are
 * reported as skips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mc_convert.h"
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_mlx.h"
#include "mc_test.h"
#include "mc_test_gguf.h"
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

/* A .flash file's bytes (*data, *n) and its manifest, by its own reading
 * of the header; NULL (and a failed check) when the file is too short. */
static cJSON *flash_manifest(const char *flash, unsigned char **data, size_t *n)
{
    unsigned char *d = mc_test_read_file(flash, n);
    *data = d;
    if (!d || *n < 48) {
        CHECK(0);
        return NULL;
    }
    uint64_t mo = 0, ml = 0;
    for (int i = 7; i >= 0; i--) { mo = mo << 8 | d[16 + i]; ml = ml << 8 | d[24 + i]; }
    return mo + ml <= *n ? cJSON_ParseWithLength((const char *)d + mo, (size_t)ml) : NULL;
}

/* The tensors of a --lossless file stored as repacks ("method" "repack" in
 * the manifest's qerr records) are those whose source is whole rows of
 * GGML blocks taken as they are (mc_mtensor.block_rows); the others were
 * quantized, not refused. Returns how many quantizable tensors were not
 * such rows (and so had to be quantized). */
static int lossless_kinds(const char *flash, const mc_model *m)
{
    size_t n = 0;
    unsigned char *d = NULL;
    cJSON *man = flash_manifest(flash, &d, &n);
    int other = 0;
    const cJSON *r;
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(man, "qerr")));
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(man, "qerr")) {
        const cJSON *nm = cJSON_GetObjectItem(r, "name"), *me = cJSON_GetObjectItem(r, "method");
        if (!cJSON_IsString(nm) || !cJSON_IsString(me)) { CHECK(0); continue; }
        for (size_t i = 0; i < m->n_tensors; i++) {
            const mc_mtensor *t = &m->tensors[i];
            if (strcmp(t->name, nm->valuestring)) continue;
            const int repack = !strcmp(me->valuestring, "repack");
            CHECKF(!repack || t->block_rows, "%s stored as a repack, yet its source is not whole block rows", t->name);
            if (t->quantizable && !t->block_rows && t->n_dims >= 2) {
                CHECKF(!strcmp(me->valuestring, "affine"), "%s: method %s, not affine", t->name, me->valuestring);
                other++;
            }
        }
    }
    cJSON_Delete(man);
    free(d);
    return other;
}

/* --lossless: every tensor stored at group size 32 (repacked GGML blocks)
 * must dequantize (MLX's rule) to exactly the source's values. Own header
 * and manifest parse. Returns the number of tensors checked. */
static int lossless_check(const char *flash, const mc_model *m)
{
    size_t n = 0;
    unsigned char *d = NULL;
    cJSON *man = flash_manifest(flash, &d, &n);
    int checked = 0;
    const cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(man, "config"), "quantization"), *e, *t;
    cJSON_ArrayForEach(e, q) {
        if (!cJSON_IsObject(e) || cJSON_GetObjectItem(e, "group_size")->valueint != 32) continue;
        const cJSON *parts[3] = { NULL, NULL, NULL };
        static const char *sfx[3] = { ".weight", ".scales", ".biases" };
        char nm[3][300];
        for (int k = 0; k < 3; k++) snprintf(nm[k], sizeof nm[k], "%s%s", e->string, sfx[k]);
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(man, "tensors"))
            for (int k = 0; k < 3; k++)
                if (!strcmp(cJSON_GetObjectItem(t, "name")->valuestring, nm[k])) parts[k] = t;
        if (!parts[0] || !parts[1] || !parts[2]) continue; /* experts: covered by the reader's requantize check */
        const mc_mtensor *src = NULL;
        for (size_t i = 0; i < m->n_tensors; i++)
            if (!strcmp(m->tensors[i].name, nm[0])) src = &m->tensors[i];
        if (!src) { CHECKF(0, "%s: no source tensor", nm[0]); continue; }
        const char *st = cJSON_GetObjectItem(parts[1], "dtype")->valuestring;
        mc_affine p = { cJSON_GetObjectItem(e, "bits")->valueint, 32,
                        !strcmp(st, "F32") ? MC_T_F32 : !strcmp(st, "F16") ? MC_T_F16 : MC_T_BF16 };
        uint64_t ncols = src->shape[src->n_dims - 1], nrows = 1;
        for (uint32_t k = 0; k + 1 < src->n_dims; k++) nrows *= src->shape[k];
        float *want = malloc((size_t)(nrows * ncols) * 4), *got = malloc((size_t)(nrows * ncols) * 4);
        mc_error err = { MC_OK, "" };
        uint64_t off[3];
        for (int k = 0; k < 3; k++) off[k] = (uint64_t)cJSON_GetObjectItem(parts[k], "offset")->valuedouble;
        int ok = want && got && mc_model_read_f32(m, src, 0, nrows, want, &err) == 0;
        CHECKF(ok, "%s: %s", nm[0], err.msg);
        /* code * scale + bias, exact in double, is the source value: the
         * stored (scale, bias) represent ggml's map exactly. (MLX itself
         * evaluates in the scale dtype: exact for f32 scales, rounded to f16
         * for f16 scales, which is MLX's runtime precision.) */
        uint64_t diff = 0, words = ncols * (uint64_t)p.bits / 32, ng = ncols / 32;
        for (uint64_t r = 0; ok && r < nrows; r++) {
            const uint32_t *row = (const uint32_t *)(const void *)(d + off[0]) + r * words;
            for (uint64_t c = 0; c < ncols; c++) {
                double v = (double)mc_quant_affine_code(row, c, p.bits) *
                               (double)mc_quant_scale_get(d + off[1], r * ng + c / 32, p.scale_type) +
                           (double)mc_quant_scale_get(d + off[2], r * ng + c / 32, p.scale_type);
                diff += !((float)v == want[r * ncols + c]);
            }
        }
        if (ok && p.scale_type == MC_T_F32) { /* and MLX's own f32 dequantization gives them bit for bit */
            ok = mc_quant_affine_dequantize((const uint32_t *)(const void *)(d + off[0]), d + off[1], d + off[2], nrows,
                                            ncols, &p, got, &err) == 0;
            for (uint64_t i = 0; ok && i < nrows * ncols; i++) diff += !(want[i] == got[i]);
        }
        CHECKF(ok && diff == 0, "%s (%d bits, %s scales): %llu values differ from the source", nm[0], p.bits, st,
               (unsigned long long)diff);
        checked++;
        free(want);
        free(got);
    }
    cJSON_Delete(man);
    free(d);
    return checked;
}

/* Re-shard a GGUF into PREFIX-0000k-of-00003.gguf (same tensors, same bytes). */
static int write_split3(const char *src_path, const char *prefix)
{
    mc_error err = { MC_OK, "" };
    mc_gguf *src = NULL;
    int rc = mc_gguf_open(src_path, &src, &err);
    for (uint32_t k = 0; k < 3 && !rc; k++) {
        char *p = mc_gguf_split_path(prefix, strlen(prefix), k + 1, 3);
        mc_gguf_writer *w = NULL;
        mc_gguf_write_opts o = { .force = 1 };
        uint64_t n = src->n_tensors, lo = n * k / 3, hi = n * (k + 1) / 3;
        rc = mc_gguf_writer_create(&w, p, &o, &err);
        if (!rc && k == 0)
            for (uint64_t i = 0; i < src->n_kv && !rc; i++) rc = mc_gguf_writer_copy_kv(w, &src->kv[i], &err);
        if (!rc) rc = mc_gguf_writer_add_u16(w, "split.no", (uint16_t)k, &err);
        if (!rc) rc = mc_gguf_writer_add_u16(w, "split.count", 3, &err);
        if (!rc) rc = mc_gguf_writer_add_i32(w, "split.tensors.count", (int32_t)n, &err);
        for (int pass = 0; pass < 2 && !rc; pass++)
            for (uint64_t i = lo; i < hi && !rc; i++) {
                const mc_gguf_tensor *t = &src->tensors[i];
                if (pass == 0) {
                    rc = mc_gguf_writer_add_tensor(w, t->name.s, t->type, t->n_dims, t->ne, &err);
                    continue;
                }
                rc = mc_test_gguf_copy_data(w, src, t, &err);
            }
        if (!rc) rc = mc_gguf_writer_commit(w, &err);
        else if (w) mc_gguf_writer_abort(w);
        free(p);
    }
    CHECKF(rc == 0, "re-sharding %s: %s", src_path, err.msg);
    if (src) mc_gguf_close(src);
    return rc;
}

/* Every corpus file with default options; at MCONV_TEST_LEVEL=1 (valgrind)
 * each GGUF file type (the name's last "-" part: Q4_K_M, bf16, ...) is
 * converted once, not once per model. */
typedef struct seen_kinds {
    int sparse, n;
    char kind[64][32];
} seen_kinds;

static void one_default(const char *path, int gguf, void *ctx)
{
    seen_kinds *sk = ctx;
    if (gguf && sk->sparse) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *kind = strrchr(base, '-');
        kind = kind ? kind : base;
        for (int k = 0; k < sk->n; k++)
            if (strncmp(sk->kind[k], kind, sizeof sk->kind[k] - 1) == 0) return;
        if (sk->n < 64) { /* kept to sizeof kind[0] - 1 characters, as compared above */
            size_t kl = strlen(kind);
            if (kl >= sizeof sk->kind[0]) kl = sizeof sk->kind[0] - 1;
            memcpy(sk->kind[sk->n], kind, kl);
            sk->kind[sk->n][kl] = '\0';
            sk->n++;
        }
    }
    one(path, "", gguf ? 3 : 0);
}

int main(void)
{
    const int sparse = mc_test_level() == 1;
    seen_kinds sk = { sparse, 0, { { 0 } } };
    if (!mc_test_each_corpus_model(one_default, &sk)) return mc_test_finish("test_flash_corpus");
    CHECKF(g_converted >= 8, "only %d corpus files converted", g_converted);

    /* option matrix on a dense GGUF and a MoE checkpoint */
    static const char *opts[] = {
        "--bits 2 --group-size 32", "--bits 3 --group-size 128 --dtype f16", "--bits 5 --dtype f32",
        "--bits 6 --group-size 32 --dtype bf16", "--bits 8 --group-size 128", "--no-quant", "--no-quant --dtype f16",
        "--threads 1",
    };
    const char *dense = mc_test_corpus_file("models/llama/gguf/llama-Q4_K_M.gguf");
    const char *moe = mc_test_corpus_file("models/qwen3_moe/hf");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) { /* level 1: each option on one of the two */
        if (dense && (!sparse || i % 2 == 0)) one(dense, opts[i], 2);
        if (moe && (!sparse || i % 2 == 1)) one(moe, opts[i], 2);
    }

    /* --lossless: repacked tensors dequantize to the source values exactly;
     * the rest of the file is checked by verify and verify --source */
    static const char *lossless_src[] = { "models/qwen3/gguf/qwen3-Q4_0.gguf", "models/llama/gguf/llama-q8_0.gguf",
                                          "models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf",
                                          /* GatedDeltaNet's out_proj comes by a column map: quantized, the
                                           * rest repacked (was refused as a whole before 2026-12-07) */
                                          "models/qwen3_5_moe/gguf/qwen3_5_moe-Q4_K_M.gguf" };
    for (size_t i = 0; i < sizeof lossless_src / sizeof lossless_src[0]; i++) {
        const char *src = mc_test_corpus_file(lossless_src[i]);
        if (!src) continue;
        char out[1024], *log = NULL;
        snprintf(out, sizeof out, "%s/lossless.flash", mc_test_tmpdir());
        int rc = mc_test_run(&log, "'%s' '%s' '%s' --force --quiet --lossless", mc_test_mconv(), src, out);
        CHECKF(rc == 0, "%s --lossless: %s", src, log ? log : "");
        free(log);
        rc = mc_test_run(&log, "'%s' verify '%s' --source '%s'", mc_test_mconv(), out, src);
        CHECKF(rc == 0, "verify --source of a --lossless file: %s", log ? log : "");
        free(log);
        mc_model *m = NULL;
        mc_error err = { MC_OK, "" };
        mc_convert_opts co = { 0, 1 };
        if (mc_convert_open(src, &co, &m, &err) == 0) {
            int n = lossless_check(out, m);
            CHECKF(n >= 5, "%s: only %d tensors repacked losslessly", src, n);
            int other = lossless_kinds(out, m);
            if (strstr(src, "qwen3_5_moe")) CHECKF(other > 0, "%s: no tensor needed quantizing", src);
            mc_convert_close(m);
        }
    }

    /* any shard of a split GGUF: same tensors as the unsplit file */
    const char *whole = mc_test_corpus_file("models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf");
    if (whole) {
        char prefix[1024], out[1100], *log = NULL;
        snprintf(prefix, sizeof prefix, "%.900s/split", mc_test_tmpdir());
        snprintf(out, sizeof out, "%.900s/split.flash", mc_test_tmpdir());
        if (write_split3(whole, prefix) == 0) {
            char *p2 = mc_gguf_split_path(prefix, strlen(prefix), 2, 3);
            char *p3 = mc_gguf_split_path(prefix, strlen(prefix), 3, 3);
            int rc = mc_test_run(&log, "'%s' '%s' '%s' --quiet", mc_test_mconv(), p2, out);
            CHECKF(rc == 0, "convert shard 2: %s", log);
            free(log);
            rc = mc_test_run(&log, "'%s' verify '%s' --source '%s'", mc_test_mconv(), out, whole);
            CHECKF(rc == 0, "split vs whole: %s", log);
            free(log);
            size_t n0 = 0, n1 = 0;
            unsigned char *before = mc_test_read_file(p3, &n0);
            rc = mc_test_run(&log, "'%s' '%s' '%s' --force --quiet", mc_test_mconv(), p2, p3);
            CHECKF(rc == 1 && strstr(log, "overwrite the input"), "OUT = another shard: exit %d: %s", rc, log);
            free(log);
            unsigned char *after = mc_test_read_file(p3, &n1);
            CHECK(before && after && n0 == n1 && !memcmp(before, after, n0));
            free(before);
            free(after);
            free(p2);
            free(p3);
        }
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
