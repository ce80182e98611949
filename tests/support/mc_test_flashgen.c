#include "mc_test_flashgen.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mc_convert.h"
#include "mc_flash.h"
#include "mc_flash_write.h"
#include "mc_float.h"
#include "mc_plan.h"
#include "mc_test.h"
#include "mc_types.h"

static float value(size_t ti, uint64_t row, uint64_t col)
{
    uint64_t x = (ti + 7) * 0x9E3779B97F4A7C15ull ^ (row * 0xBF58476D1CE4E5B9ull) ^ (col * 0x94D049BB133111EBull);
    x ^= x >> 31;
    x *= 0xD6E9F7A2C3B1E5F1ull;
    x ^= x >> 29;
    float v = (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 0.05f;
    return mc_bf16_to_f32(mc_f32_to_bf16(v));
}

static int syn_read_f32(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, float *dst,
                        mc_error *err)
{
    (void)err;
    size_t ti = (size_t)(t - m->tensors);
    uint64_t ncols = t->shape[t->n_dims - 1];
    for (uint64_t r = 0; r < nrows; r++)
        for (uint64_t c = 0; c < ncols; c++) dst[r * ncols + c] = value(ti, row0 + r, c);
    return 0;
}

static int syn_read_raw(const mc_model *m, const mc_mtensor *t, uint64_t off, void *dst, size_t n, mc_error *err)
{
    (void)m; (void)t; (void)off; (void)dst; (void)n;
    return mc_error_set(err, MC_ERR_UNSUPPORTED, "no raw tensors here");
}

static const mc_source_ops g_ops = { syn_read_f32, syn_read_raw, NULL };

static void add(mc_model *m, const char *name, uint32_t nd, uint64_t a, uint64_t b, uint64_t c, mc_role role,
                int layer, int quant, int bits)
{
    mc_mtensor *t = &m->tensors[m->n_tensors++];
    t->name = strdup(name);
    t->n_dims = nd;
    t->shape[0] = a;
    t->shape[1] = b;
    t->shape[2] = c;
    t->role = role;
    t->layer = layer;
    t->src_type = MC_T_BF16;
    t->quantizable = (uint8_t)quant;
    t->quant_bits = (uint8_t)bits;
}

int mc_test_flash_synth(const char *path, const mc_test_synth *s)
{
    int L = s->dense_layers + s->moe_layers, rc;
    char nm[128], cfg[256];
    mc_error err = { MC_OK, "" };
    mc_model *m = calloc(1, sizeof *m);
    m->tensors = calloc((size_t)(3 + 6 * L), sizeof *m->tensors);
    m->kind = MC_SRC_SAFETENSORS;
    m->input_path = strdup("/nowhere/synthetic");
    m->arch = strdup("qwen3_moe");
    m->model_type = strdup("qwen3_moe");
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"qwen3_moe\",\"hidden_size\":128,\"num_hidden_layers\":%d,\"num_experts\":%d,"
             "\"num_experts_per_tok\":%d,\"moe_intermediate_size\":64}",
             L, s->n_experts, s->experts_per_tok);
    m->config = cJSON_Parse(cfg);
    m->tokenizer = cJSON_Parse("{\"kind\":\"none\"}");
    m->n_layers = L;
    m->n_experts = s->moe_layers ? s->n_experts : 0;
    m->n_experts_per_tok = s->moe_layers ? s->experts_per_tok : 0;
    add(m, "model.embed_tokens.weight", 2, 64, 128, 0, MC_ROLE_PINNED, -1, 1, 0);
    for (int l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        add(m, nm, 1, 128, 0, 0, MC_ROLE_PINNED, l, 0, 0);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.weight", l);
        add(m, nm, 2, 128, 128, 0, MC_ROLE_PINNED, l, 1, 0);
        if (l < s->dense_layers) {
            static const char *const p[] = { "gate_proj", "up_proj", "down_proj" };
            for (int k = 0; k < 3; k++) {
                snprintf(nm, sizeof nm, "model.layers.%d.mlp.%s.weight", l, p[k]);
                add(m, nm, 2, k == 2 ? 128 : 64, k == 2 ? 64 : 128, 0, MC_ROLE_FFN, l, 1, 0);
            }
        } else {
            static const char *const p[] = { "gate_proj", "up_proj", "down_proj" };
            snprintf(nm, sizeof nm, "model.layers.%d.mlp.gate.weight", l);
            add(m, nm, 2, (uint64_t)s->n_experts, 128, 0, MC_ROLE_PINNED, l, 1, 8);
            for (int k = 0; k < 3; k++) {
                snprintf(nm, sizeof nm, "model.layers.%d.mlp.switch_mlp.%s.weight", l, p[k]);
                add(m, nm, 3, (uint64_t)s->n_experts, k == 2 ? 128 : 64, k == 2 ? 64 : 128, MC_ROLE_EXPERT, l, 1, 0);
            }
        }
    }
    add(m, "model.norm.weight", 1, 128, 0, 0, MC_ROLE_PINNED, -1, 0, 0);
    add(m, "lm_head.weight", 2, 64, 128, 0, MC_ROLE_PINNED, -1, 1, 0);

    mc_plan_opts po;
    mc_plan *p = NULL;
    mc_flash_layout *lay = NULL;
    mc_flash_write_opts wo;
    mc_plan_opts_default(&po);
    po.no_quant = s->no_quant;
    memset(&wo, 0, sizeof wo);
    wo.threads = s->threads > 0 ? s->threads : 1;
    wo.force = 1;
    wo.ops = &g_ops;
    rc = mc_plan_build(m, &po, &p, &err);
    if (!rc) rc = mc_flash_layout_build(m, p, &lay, &err);
    if (!rc) rc = mc_flash_write(m, lay, path, &wo, &err);
    if (rc) fprintf(stderr, "mc_test_flash_synth: %s\n", err.msg);
    mc_flash_layout_free(lay);
    mc_plan_free(p);
    for (size_t i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    free(m->tensors);
    free(m->input_path);
    free(m->arch);
    free(m->model_type);
    cJSON_Delete(m->config);
    cJSON_Delete(m->tokenizer);
    free(m);
    return rc;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int mc_test_flash_rewrite(const char *path, void (*fn)(cJSON *manifest, void *ctx), void *ctx, int extra_pages)
{
    size_t n;
    unsigned char *b = mc_test_read_file(path, &n);
    if (!b || n < 48) {
        free(b);
        return -1;
    }
    uint64_t mo = le64(b + 16), ml = le64(b + 24);
    if (mo + ml > n) {
        free(b);
        return -1;
    }
    cJSON *m = cJSON_ParseWithLength((const char *)b + mo, (size_t)ml);
    if (!m) {
        free(b);
        return -1;
    }
    if (fn) fn(m, ctx);
    char *txt = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    if (!txt) {
        free(b);
        return -1;
    }
    uint64_t nmo = mo + (uint64_t)extra_pages * 16384, nml = strlen(txt);
    uint64_t size = (nmo + nml + 16383) / 16384 * 16384;
    unsigned char *o = calloc(1, (size_t)size);
    memcpy(o, b, (size_t)mo);
    memset(o + mo, 0xA5, (size_t)(nmo - mo));
    memcpy(o + nmo, txt, (size_t)nml);
    put64(o + 16, nmo);
    put64(o + 24, nml);
    put64(o + 32, size);
    put64(o + 40, XXH3_64bits(txt, (size_t)nml));
    int rc = mc_test_write_file(path, o, (size_t)size);
    cJSON_free(txt);
    free(o);
    free(b);
    return rc;
}

int mc_test_flip_byte(const char *path, uint64_t off)
{
    size_t n;
    unsigned char *b = mc_test_read_file(path, &n);
    if (!b || off >= n) {
        free(b);
        return -1;
    }
    b[off] ^= 0x10;
    int rc = mc_test_write_file(path, b, n);
    free(b);
    return rc;
}
