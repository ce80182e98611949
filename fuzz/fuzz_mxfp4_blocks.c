/* libFuzzer target for the gpt-oss hub MXFP4 reader (convert/
 * mc_convert_encoding.c "mxfp4-blocks": *_blocks / *_scales pairs, and the
 * gpt_oss builders that split them). The input drives a one-layer gpt_oss
 * checkpoint written to a temporary folder: bytes 0-11 are the shapes of
 * gate_up_proj_blocks [E, R, G, B], gate_up_proj_scales [E', R', G'],
 * down_proj_blocks [E, H', G2, B2] and down_proj_scales (each a small
 * number, so sound and unsound pairs are both common); the rest fills the
 * blocks and scales (cycled). Every other tensor is a sound zero F32 of a
 * hidden size 32, 1 head of 32, 2-wide vocabulary. The checkpoint is opened
 * with mc_convert_open and every tensor read as f32 and, where lossless,
 * as raw blocks. Whatever the bytes: no crash, leak or undefined
 * behaviour, and a refusal always says why.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_mxfp4_blocks
 *   build-fuzz/fuzz_mxfp4_blocks -max_total_time=60 testdata/fuzz/fuzz_mxfp4_blocks
 */
#include "mc_convert.h"
#include "mc_st_write.h"
#include "mc_types.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void clean(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

static const char g_config[] =
    "{\"model_type\":\"gpt_oss\",\"hidden_size\":32,\"num_hidden_layers\":1,\"intermediate_size\":32,"
    "\"num_attention_heads\":1,\"num_key_value_heads\":1,\"head_dim\":32,\"num_local_experts\":2,"
    "\"num_experts_per_tok\":1,\"vocab_size\":2,\"rms_norm_eps\":1e-5,\"rope_theta\":150000,"
    "\"sliding_window\":8,\"layer_types\":[\"sliding_attention\"],\"tie_word_embeddings\":false}";

/* The sound F32 tensors of the model (E = 2 experts, H = 32, I = 32). */
static const struct { const char *name; uint32_t nd; uint64_t shape[2]; } g_fixed[] = {
    {"model.embed_tokens.weight", 2, {2, 32}},
    {"model.norm.weight", 1, {32, 0}},
    {"lm_head.weight", 2, {2, 32}},
    {"model.layers.0.input_layernorm.weight", 1, {32, 0}},
    {"model.layers.0.post_attention_layernorm.weight", 1, {32, 0}},
    {"model.layers.0.self_attn.q_proj.weight", 2, {32, 32}},
    {"model.layers.0.self_attn.q_proj.bias", 1, {32, 0}},
    {"model.layers.0.self_attn.k_proj.weight", 2, {32, 32}},
    {"model.layers.0.self_attn.k_proj.bias", 1, {32, 0}},
    {"model.layers.0.self_attn.v_proj.weight", 2, {32, 32}},
    {"model.layers.0.self_attn.v_proj.bias", 1, {32, 0}},
    {"model.layers.0.self_attn.o_proj.weight", 2, {32, 32}},
    {"model.layers.0.self_attn.o_proj.bias", 1, {32, 0}},
    {"model.layers.0.self_attn.sinks", 1, {1, 0}},
    {"model.layers.0.mlp.router.weight", 2, {2, 32}},
    {"model.layers.0.mlp.router.bias", 1, {2, 0}},
    {"model.layers.0.mlp.experts.gate_up_proj_bias", 2, {2, 64}},
    {"model.layers.0.mlp.experts.down_proj_bias", 2, {2, 32}},
};

static int write_model(const uint8_t *d, size_t n)
{
    char p[160];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    int bad = fwrite(g_config, 1, sizeof g_config - 1, f) != sizeof g_config - 1;
    if (fclose(f) || bad) return -1;
    /* shapes: small numbers around the sound ones */
    const uint8_t *h = d;
    uint64_t gb[4] = {h[0] % 3 + 1, (uint64_t)(h[1] % 5) * 32, h[2] % 3, (uint64_t)h[3] % 18};
    uint64_t gs[3] = {h[4] % 3 + 1, (uint64_t)(h[5] % 5) * 32, h[6] % 3};
    uint64_t db[4] = {2, (uint64_t)(h[7] % 3) * 16, h[8] % 3, (uint64_t)h[9] % 18};
    uint64_t ds[3] = {2, (uint64_t)(h[10] % 3) * 16, h[11] % 3};
    const uint8_t *fill = d + 12;
    size_t nfill = n - 12;
    mc_st_writer *w = NULL;
    mc_error err = {MC_OK, ""};
    int rc = -1;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (mc_st_writer_new(p, 1, &w, &err)) goto done;
    for (size_t i = 0; i < sizeof g_fixed / sizeof g_fixed[0]; i++)
        if (mc_st_writer_add(w, g_fixed[i].name, MC_T_F32, g_fixed[i].nd, g_fixed[i].shape, &err)) goto done;
    if (mc_st_writer_add(w, "model.layers.0.mlp.experts.gate_up_proj_blocks", MC_T_U8, 4, gb, &err) ||
        mc_st_writer_add(w, "model.layers.0.mlp.experts.gate_up_proj_scales", MC_T_U8, 3, gs, &err) ||
        mc_st_writer_add(w, "model.layers.0.mlp.experts.down_proj_blocks", MC_T_U8, 4, db, &err) ||
        mc_st_writer_add(w, "model.layers.0.mlp.experts.down_proj_scales", MC_T_U8, 3, ds, &err) ||
        mc_st_writer_begin(w, &err))
        goto done;
    static const float zeros[2 * 64];
    for (size_t i = 0; i < sizeof g_fixed / sizeof g_fixed[0]; i++) {
        uint64_t ne = g_fixed[i].shape[0] * (g_fixed[i].nd == 2 ? g_fixed[i].shape[1] : 1);
        for (uint64_t o = 0; o < ne; o += 128)
            if (mc_st_writer_write(w, zeros, (size_t)((ne - o < 128 ? ne - o : 128) * 4), &err)) goto done;
    }
    const uint64_t sizes[4] = {gb[0] * gb[1] * gb[2] * gb[3], gs[0] * gs[1] * gs[2], db[0] * db[1] * db[2] * db[3],
                               ds[0] * ds[1] * ds[2]};
    size_t at = 0;
    for (int t = 0; t < 4; t++) {
        unsigned char buf[256];
        for (uint64_t o = 0; o < sizes[t];) {
            size_t k = (size_t)(sizes[t] - o < sizeof buf ? sizes[t] - o : sizeof buf);
            for (size_t i = 0; i < k; i++) buf[i] = nfill ? fill[at++ % nfill] : (unsigned char)i;
            if (mc_st_writer_write(w, buf, k, &err)) goto done;
            o += k;
        }
    }
    if (mc_st_writer_commit(w, &err)) goto done;
    rc = 0;
done:
    mc_st_writer_free(w);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_mxfp4_blocks.%ld", (long)getpid());
        atexit(clean);
    }
    if (size < 12 || size > (1u << 20)) return 0;
    mkdir(dir, 0700);
    if (write_model(data, size)) return 0;
    mc_model *m = NULL;
    mc_error err = {MC_OK, ""};
    if (mc_convert_open(dir, NULL, &m, &err)) {
        if (!err.msg[0]) abort(); /* a refusal always says why */
        return 0;
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        uint64_t rl = t->n_dims ? t->shape[t->n_dims - 1] : 1, ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) ne *= t->shape[d];
        if (rl == 0 || ne == 0 || ne > (1u << 22)) continue;
        uint64_t rows = ne / rl;
        float *v = malloc((size_t)ne * sizeof *v);
        mc_error re = {MC_OK, ""};
        if (v && mc_model_read_f32(m, t, 0, rows, v, &re) && !re.msg[0]) abort();
        free(v);
        uint64_t rb;
        if (t->src_type == MC_T_MXFP4 && !mc_type_nbytes(MC_T_MXFP4, rl, &rb)) {
            unsigned char *b = malloc((size_t)(rows * rb));
            int ty = -1;
            mc_error be = {MC_OK, ""};
            if (b && mc_model_read_blocks(m, t, 0, rows, b, (size_t)(rows * rb), &ty, &be) && !be.msg[0]) abort();
            free(b);
        }
    }
    mc_convert_close(m);
    return 0;
}
