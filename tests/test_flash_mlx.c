/* MLX-quantized inputs pass through: a .flash converted from the corpus
 * qwen3_moe checkpoint is written out as an mlx-community style folder
 * (model.safetensors with mlx-lm names, stacked switch_mlp experts,
 * config.json with its "quantization" block); converting that folder must
 * give the same tensors byte for byte (same checksums, dtypes and shapes,
 * same expert blocks) and the same quantization config, with no
 * requantization. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mc_flash.h"
#include "mc_st_write.h"
#include "mc_test.h"
#include "mc_types.h"

static int write_mlx_folder(const mc_flash *f, const char *dir /* < 1024 */)
{
    mc_error err = { MC_OK, "" };
    char path[1100];
    mc_st_writer *w = NULL;
    int rc = 0;
    snprintf(path, sizeof path, "%.1000s/model.safetensors", dir);
    if (mc_st_writer_new(path, 1, &w, &err) || mc_st_writer_meta(w, "format", "mlx", &err)) goto fail;
    for (size_t i = 0; i < f->n_tensors; i++)
        if (mc_st_writer_add(w, f->tensors[i].name, f->tensors[i].dtype, f->tensors[i].n_dims, f->tensors[i].shape,
                             &err))
            goto fail;
    for (size_t i = 0; i < f->n_experts; i++) {
        const mc_flash_experts *x = &f->experts[i];
        for (size_t j = 0; j < x->n_tensors; j++) {
            uint64_t shape[MC_FLASH_MAX_DIMS + 1];
            char nm[512];
            shape[0] = x->n_experts;
            memcpy(shape + 1, x->tensors[j].shape, x->tensors[j].n_dims * sizeof *shape);
            snprintf(nm, sizeof nm, "model.layers.%d.%s", x->layer, x->tensors[j].name);
            if (mc_st_writer_add(w, nm, x->tensors[j].dtype, x->tensors[j].n_dims + 1, shape, &err)) goto fail;
        }
    }
    if (mc_st_writer_begin(w, &err)) goto fail;
    for (size_t i = 0; i < f->n_tensors; i++) {
        unsigned char *b = malloc(f->tensors[i].nbytes);
        int r = !b || mc_flash_read_tensor(f, &f->tensors[i], b, &err) ||
                mc_st_writer_write(w, b, f->tensors[i].nbytes, &err);
        free(b);
        if (r) goto fail;
    }
    for (size_t i = 0; i < f->n_experts; i++) {
        const mc_flash_experts *x = &f->experts[i];
        unsigned char *blk = malloc(x->stride);
        for (size_t j = 0; blk && j < x->n_tensors; j++)
            for (uint32_t e = 0; e < x->n_experts; e++)
                if (mc_flash_read_expert(f, x, e, blk, &err) ||
                    mc_st_writer_write(w, blk + x->tensors[j].inner_offset, x->tensors[j].nbytes, &err)) {
                    free(blk);
                    goto fail;
                }
        free(blk);
    }
    if (mc_st_writer_commit(w, &err)) goto fail;
    mc_st_writer_free(w);
    {
        cJSON *cfg = cJSON_GetObjectItemCaseSensitive((cJSON *)mc_flash_manifest(f), "config");
        char *txt = cJSON_Print(cfg);
        snprintf(path, sizeof path, "%.1000s/config.json", dir);
        rc = txt ? mc_test_write_file(path, txt, strlen(txt)) : -1;
        free(txt);
    }
    return rc;
fail:
    fprintf(stderr, "writing the MLX folder: %s\n", err.msg);
    mc_st_writer_free(w);
    return -1;
}

int main(void)
{
    const char *src = mc_test_corpus_file("models/qwen3_moe/hf");
    if (!src) return mc_test_finish("test_flash_mlx");
    const char *dir = mc_test_tmpdir();
    char a[1024], b[1024], mlx[1024], *log = NULL;
    mc_error err = { MC_OK, "" };
    snprintf(a, sizeof a, "%s/a.flash", dir);
    snprintf(b, sizeof b, "%s/b.flash", dir);
    snprintf(mlx, sizeof mlx, "%s/mlx", dir);
    mkdir(mlx, 0755);
    int rc = mc_test_run(&log, "'%s' '%s' '%s' -q --bits 3 --group-size 32", mc_test_mconv(), src, a);
    CHECKF(rc == 0, "%s", log);
    free(log);
    mc_flash *fa = NULL, *fb = NULL;
    CHECKF(mc_flash_open(a, &fa, &err) == 0, "%s", err.msg);
    if (!fa) return mc_test_finish("test_flash_mlx");
    CHECK(write_mlx_folder(fa, mlx) == 0);

    rc = mc_test_run(&log, "'%s' '%s' '%s' -q --bits 8", mc_test_mconv(), mlx, b); /* --bits is moot: passthrough */
    CHECKF(rc == 0, "convert the MLX folder: %s", log);
    free(log);
    rc = mc_test_run(&log, "'%s' verify '%s' --source '%s'", mc_test_mconv(), b, mlx);
    CHECKF(rc == 0, "verify --source: %s", log);
    free(log);
    CHECKF(mc_flash_open(b, &fb, &err) == 0, "%s", err.msg);
    if (fb) {
        const cJSON *ma = mc_flash_manifest(fa), *mb = mc_flash_manifest(fb);
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(mb, "source"), "format")->valuestring, "mlx");
        const cJSON *qa = cJSON_GetObjectItem(cJSON_GetObjectItem(ma, "config"), "quantization");
        const cJSON *qb = cJSON_GetObjectItem(cJSON_GetObjectItem(mb, "config"), "quantization");
        CHECKF(qa && qb && cJSON_Compare(qa, qb, 1), "quantization blocks differ");
        CHECK_EQ_U64(fb->n_tensors, fa->n_tensors);
        int quantized = 0;
        for (size_t i = 0; i < fa->n_tensors; i++) {
            const mc_flash_tensor *ta = &fa->tensors[i], *tb = mc_flash_find(fb, ta->name);
            CHECKF(tb != NULL, "%s missing", ta->name);
            if (!tb) continue;
            CHECKF(ta->xxh3 == tb->xxh3 && ta->dtype == tb->dtype && ta->nbytes == tb->nbytes &&
                       ta->n_dims == tb->n_dims && !memcmp(ta->shape, tb->shape, ta->n_dims * sizeof *ta->shape),
                   "%s differs after passthrough", ta->name);
            quantized += ta->dtype == MC_T_U32;
        }
        CHECK(quantized >= 10);
        CHECK_EQ_U64(fb->n_experts, fa->n_experts);
        for (size_t i = 0; i < fa->n_experts && i < fb->n_experts; i++) {
            const mc_flash_experts *xa = &fa->experts[i], *xb = &fb->experts[i];
            CHECK(xa->layer == xb->layer && xa->n_experts == xb->n_experts && xa->stride == xb->stride &&
                  xa->n_tensors == xb->n_tensors);
            if (xa->n_experts == xb->n_experts)
                CHECKF(!memcmp(xa->xxh3, xb->xxh3, xa->n_experts * sizeof *xa->xxh3), "layer %d expert blocks differ",
                       xa->layer);
        }
        mc_flash_close(fb);
    }
    mc_flash_close(fa);
    return mc_test_finish("test_flash_mlx");
}
