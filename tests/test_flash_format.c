/* .flash writer, reader and verifier on a synthetic model (no corpus needed):
 * layout facts, determinism across thread counts, an independent reader
 * checking every tensor, verify catching corruption, compare against the
 * source, atomic output on errors. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mc_flash.h"
#include "mc_flash_write.h"
#include "mc_float.h"
#include "mc_plan.h"
#include "mc_test.h"
#include "mc_test_flash.h"
#include "mc_types.h"

static int g_perturb;             /* change one value of one tensor */
static const char *g_fail_tensor; /* reading this tensor fails */

static float value(size_t ti, uint64_t row, uint64_t col)
{
    uint64_t x = (ti + 1) * 0x9E3779B97F4A7C15ull ^ (row * 0xBF58476D1CE4E5B9ull) ^ (col * 0x94D049BB133111EBull);
    x ^= x >> 31;
    x *= 0xD6E9F7A2C3B1E5F1ull;
    x ^= x >> 29;
    float v = (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    v *= 0.02f * (float)(1 + (row % 7));
    return mc_bf16_to_f32(mc_f32_to_bf16(v)); /* a bf16 source */
}

static int syn_read_f32(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows, float *dst,
                        mc_error *err)
{
    size_t ti = (size_t)(t - m->tensors);
    uint64_t ncols = t->shape[t->n_dims - 1];
    if (g_fail_tensor && !strcmp(t->name, g_fail_tensor))
        return mc_error_set(err, MC_ERR_FORMAT, "synthetic: %s: injected read failure", t->name);
    for (uint64_t r = 0; r < nrows; r++)
        for (uint64_t c = 0; c < ncols; c++) dst[r * ncols + c] = value(ti, row0 + r, c);
    if (g_perturb && !strcmp(t->name, "model.layers.1.mlp.switch_mlp.up_proj.weight") && row0 <= 70 &&
        row0 + nrows > 70)
        dst[(70 - row0) * ncols + 3] += 0.5f;
    return 0;
}

static int syn_read_raw(const mc_model *m, const mc_mtensor *t, uint64_t off, void *dst, size_t n, mc_error *err)
{
    (void)m; (void)t; (void)off; (void)dst; (void)n;
    return mc_error_set(err, MC_ERR_UNSUPPORTED, "no raw tensors here");
}

static const mc_source_ops g_ops = { syn_read_f32, syn_read_raw, NULL };

typedef struct spec {
    const char *name;
    uint32_t n_dims;
    uint64_t shape[3];
    mc_role role;
    int layer;
    int quantizable, quant_bits;
} spec;

static const spec g_specs[] = {
    { "model.embed_tokens.weight", 2, { 64, 128 }, MC_ROLE_PINNED, -1, 1, 0 },
    { "model.layers.0.input_layernorm.weight", 1, { 128 }, MC_ROLE_PINNED, 0, 0, 0 },
    { "model.layers.0.self_attn.q_proj.weight", 2, { 128, 128 }, MC_ROLE_PINNED, 0, 1, 0 },
    { "model.layers.0.mlp.gate_proj.weight", 2, { 96, 128 }, MC_ROLE_FFN, 0, 1, 0 },
    { "model.layers.0.mlp.up_proj.weight", 2, { 96, 128 }, MC_ROLE_FFN, 0, 1, 0 },
    { "model.layers.0.mlp.down_proj.weight", 2, { 128, 96 }, MC_ROLE_FFN, 0, 1, 0 }, /* 96 % 64: float */
    { "model.layers.1.input_layernorm.weight", 1, { 128 }, MC_ROLE_PINNED, 1, 0, 0 },
    { "model.layers.1.mlp.gate.weight", 2, { 4, 128 }, MC_ROLE_PINNED, 1, 1, 8 },
    /* deliberately listed down, gate, up: the block order must still be gate, up, down */
    { "model.layers.1.mlp.switch_mlp.down_proj.weight", 3, { 4, 128, 64 }, MC_ROLE_EXPERT, 1, 1, 0 },
    { "model.layers.1.mlp.switch_mlp.gate_proj.weight", 3, { 4, 64, 128 }, MC_ROLE_EXPERT, 1, 1, 0 },
    { "model.layers.1.mlp.switch_mlp.up_proj.weight", 3, { 4, 64, 128 }, MC_ROLE_EXPERT, 1, 1, 0 },
    { "model.norm.weight", 1, { 128 }, MC_ROLE_PINNED, -1, 0, 0 },
    { "lm_head.weight", 2, { 64, 128 }, MC_ROLE_PINNED, -1, 1, 0 },
};
#define N_SPECS (sizeof g_specs / sizeof g_specs[0])

static mc_model *syn_model(void)
{
    mc_model *m = calloc(1, sizeof *m);
    m->kind = MC_SRC_SAFETENSORS;
    m->input_path = strdup("/nowhere/synthetic");
    m->arch = strdup("qwen3_moe");
    m->model_type = strdup("qwen3_moe");
    m->config = cJSON_Parse("{\"model_type\":\"qwen3_moe\",\"hidden_size\":128,\"num_experts_per_tok\":2}");
    m->tokenizer = cJSON_Parse("{\"kind\":\"none\"}");
    m->n_tensors = N_SPECS;
    m->tensors = calloc(N_SPECS, sizeof *m->tensors);
    m->n_layers = 2;
    m->n_experts = 4;
    m->n_experts_per_tok = 2;
    for (size_t i = 0; i < N_SPECS; i++) {
        mc_mtensor *t = &m->tensors[i];
        t->name = strdup(g_specs[i].name);
        t->n_dims = g_specs[i].n_dims;
        memcpy(t->shape, g_specs[i].shape, sizeof g_specs[i].shape);
        t->role = g_specs[i].role;
        t->layer = g_specs[i].layer;
        t->src_type = MC_T_BF16;
        t->quantizable = (uint8_t)g_specs[i].quantizable;
        t->quant_bits = (uint8_t)g_specs[i].quant_bits;
    }
    return m;
}

static void syn_free(mc_model *m)
{
    for (size_t i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    free(m->tensors);
    free(m->input_path);
    free(m->arch);
    free(m->model_type);
    cJSON_Delete(m->config);
    cJSON_Delete(m->tokenizer);
    free(m);
}

static unsigned g_window; /* mc_flash_write_opts.test_window for the next convert() */

static int convert(const mc_model *m, const mc_plan_opts *po, const char *out, int threads, int force, mc_error *err)
{
    mc_plan *p = NULL;
    mc_flash_layout *L = NULL;
    mc_flash_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.threads = threads;
    wo.force = force;
    wo.ops = &g_ops;
    wo.chunk_bytes = 4096; /* many small chunks: exercises the row-range pipeline */
    wo.test_window = g_window;
    int rc = mc_plan_build(m, po, &p, err);
    if (!rc) rc = mc_flash_layout_build(m, p, &L, err);
    if (!rc) rc = mc_flash_write(m, L, out, &wo, err);
    mc_flash_layout_free(L);
    mc_plan_free(p);
    return rc;
}

static char g_problems[8192];
static void collect(void *ctx, const char *msg)
{
    (void)ctx;
    size_t n = strlen(g_problems);
    snprintf(g_problems + n, sizeof g_problems - n, "%s\n", msg);
}

static int verify(const char *path)
{
    mc_error err = { MC_OK, "" };
    g_problems[0] = 0;
    int rc = mc_flash_verify(path, collect, NULL, NULL, &err);
    if (rc && !g_problems[0]) snprintf(g_problems, sizeof g_problems, "%s\n", err.msg);
    return rc;
}

static int files_equal(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = mc_test_read_file(a, &na), *y = mc_test_read_file(b, &nb);
    int eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

static void flip(const char *path, uint64_t off)
{
    size_t n;
    unsigned char *b = mc_test_read_file(path, &n);
    if (!b || off >= n) { free(b); return; }
    b[off] ^= 0x10;
    mc_test_write_file(path, b, n);
    free(b);
}

static void copy(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = mc_test_read_file(from, &n);
    if (b) mc_test_write_file(to, b, n);
    free(b);
}

static int count_tmp(const char *dir)
{
    char *out = NULL;
    mc_test_run(&out, "ls -a '%s' | grep -c mconv-tmp", dir);
    int n = out ? atoi(out) : -1;
    free(out);
    return n;
}

int main(void)
{
    const char *dir = mc_test_tmpdir();
    char a[1024], b[1024], c[1024], d[1024];
    mc_error err = { MC_OK, "" };
    mc_plan_opts po;
    mc_model *m = syn_model();
    mc_plan_opts_default(&po);
    snprintf(a, sizeof a, "%s/a.flash", dir);
    snprintf(b, sizeof b, "%s/b.flash", dir);
    snprintf(c, sizeof c, "%s/c.flash", dir);
    snprintf(d, sizeof d, "%s/d.flash", dir);

    /* header codec round trip */
    {
        mc_flash_header h = { 1, 16384, 0x123456789ull, 777, 1ull << 40, 0xfeedfacecafebeefull }, g;
        unsigned char buf[MC_FLASH_HEADER_BYTES];
        mc_flash_header_encode(&h, buf);
        CHECK(memcmp(buf, "MCFLASH\0", 8) == 0);
        CHECK(buf[16] == 0x89 && buf[20] == 0x01); /* little-endian */
        CHECK(mc_flash_header_decode(buf, sizeof buf, &g, NULL) == 0);
        CHECK(g.manifest_offset == h.manifest_offset && g.manifest_xxh3 == h.manifest_xxh3 && g.file_size == h.file_size);
        buf[0] = 'X';
        CHECK(mc_flash_header_decode(buf, sizeof buf, &g, NULL) == MC_ERR_FORMAT);
    }

    /* plan decisions */
    {
        mc_plan *p = NULL;
        CHECK(mc_plan_build(m, &po, &p, &err) == 0);
        if (p) {
            CHECK_EQ_U64(p->items[0].kind, MC_PK_AFFINE);
            CHECK_EQ_U64(p->items[0].out[0].dtype, MC_T_U32);
            CHECK_EQ_U64(p->items[0].out[0].shape[1], 128 * 4 / 32);
            CHECK_STR(p->items[0].out[1].name, "model.embed_tokens.scales");
            CHECK_EQ_U64(p->items[0].out[1].shape[1], 2);
            CHECK_EQ_U64(p->items[1].kind, MC_PK_FLOAT); /* 1-D norm */
            CHECK_EQ_U64(p->items[5].kind, MC_PK_FLOAT); /* 96 columns, group 64 */
            CHECK_EQ_U64(p->items[7].bits, 8);           /* router */
            CHECK_EQ_U64(p->items[9].out[0].shape[0], 4);
            cJSON *r = cJSON_GetObjectItemCaseSensitive(p->quantization, "model.layers.1.mlp.gate");
            CHECK(cJSON_IsObject(r) && cJSON_GetObjectItem(r, "bits")->valueint == 8);
            CHECK(cJSON_GetObjectItemCaseSensitive(p->quantization, "model.layers.0.mlp.gate_proj") == NULL);
            mc_flash_layout *L = NULL;
            CHECK(mc_flash_layout_build(m, p, &L, &err) == 0);
            if (L) {
                CHECK_EQ_U64(L->n_spans, 1);
                CHECK_EQ_U64(L->n_xlayers, 1);
                CHECK_EQ_U64(L->pinned_offset, 16384);
                CHECK(L->xlayers[0].stride % 16384 == 0);
                /* 9 parts (gate, up, down x weight, scales, biases), each one page here */
                CHECK_EQ_U64(L->xlayers[0].stride, 9 * 16384);
                CHECK_STR(p->items[L->xlayers[0].items[0]].mt->name, "model.layers.1.mlp.switch_mlp.gate_proj.weight");
                CHECK_STR(p->items[L->xlayers[0].items[2]].mt->name, "model.layers.1.mlp.switch_mlp.down_proj.weight");
                mc_flash_cost cst;
                mc_flash_layout_cost(L, &cst);
                CHECK_EQ_U64(cst.token_expert_reads, 2);
                CHECK_EQ_U64(cst.token_expert_bytes, 2 * 9 * 16384);
                CHECK_EQ_U64(cst.token_dense_reads, 1);
            }
            mc_flash_layout_free(L);
        }
        mc_plan_free(p);
        mc_plan_opts bad = po;
        bad.bits = 7;
        CHECK(mc_plan_build(m, &bad, &p, &err) == MC_ERR_ARG);
        bad = po;
        bad.group_size = 48;
        CHECK(mc_plan_build(m, &bad, &p, &err) == MC_ERR_ARG);

        /* per-module overrides: first match wins, they beat the router's own
         * 8 bits, and the quantization block lists what differs */
        mc_plan_opts bf = po;
        CHECK(mc_plan_opts_add_bits_for(&bf, "model.layers.*.mlp.switch_mlp.down_proj", 6, &err) == 0);
        CHECK(mc_plan_opts_add_bits_for(&bf, "*.mlp.switch_mlp.*", 2, &err) == 0);
        CHECK(mc_plan_opts_add_bits_for(&bf, "model.layers.1.mlp.gate", 4, &err) == 0);
        CHECK(mc_plan_opts_add_bits_for(&bf, "x", 7, &err) == MC_ERR_ARG);
        CHECK(mc_plan_opts_add_bits_for(&bf, "", 4, &err) == MC_ERR_ARG);
        CHECK_EQ_U64(bf.n_bits_for, 3);
        p = NULL;
        CHECK(mc_plan_build(m, &bf, &p, &err) == 0);
        if (p) {
            CHECK_EQ_U64(p->items[7].bits, 4);  /* router: override */
            CHECK_EQ_U64(p->items[8].bits, 6);  /* down: the first rule */
            CHECK_EQ_U64(p->items[9].bits, 2);  /* gate: the second */
            CHECK_EQ_U64(p->items[0].bits, 4);  /* embeddings: --bits */
            CHECK_EQ_U64(p->items[8].out[0].shape[2], 64 * 6 / 32);
            CHECK(cJSON_GetObjectItemCaseSensitive(p->quantization, "model.layers.1.mlp.gate") == NULL);
            cJSON *d6 = cJSON_GetObjectItemCaseSensitive(p->quantization, "model.layers.1.mlp.switch_mlp.down_proj");
            CHECK(cJSON_IsObject(d6) && cJSON_GetObjectItem(d6, "bits")->valueint == 6);
            /* the options record the overrides and read back the same */
            cJSON *oj = mc_plan_opts_json(&bf);
            mc_plan_opts back;
            CHECK(oj && mc_plan_opts_from_json(oj, &back, &err) == 0);
            CHECK_EQ_U64(back.n_bits_for, 3);
            CHECK_STR(back.bits_for[1].glob, "*.mlp.switch_mlp.*");
            CHECK_EQ_U64(back.bits_for[0].bits, 6);
            cJSON_Delete(oj);
            /* without overrides the options have no bits_for key (old files keep their bytes) */
            oj = mc_plan_opts_json(&po);
            CHECK(oj && !cJSON_GetObjectItemCaseSensitive(oj, "bits_for"));
            cJSON_Delete(oj);
        }
        mc_plan_free(p);
    }

    /* write: thread counts give identical bytes; rerun identical */
    CHECKF(convert(m, &po, a, 1, 0, &err) == 0, "%s", err.msg);
    CHECKF(convert(m, &po, b, 3, 0, &err) == 0, "%s", err.msg);
    CHECK(files_equal(a, b));
    CHECK(convert(m, &po, b, 2, 1, &err) == 0);
    CHECK(files_equal(a, b));
    /* workers held to 1 and 2 chunks ahead of the oldest unfinished one:
     * they wait for each other, pieces arrive in every order, and the
     * checksums (hashed as written) still come out the same */
    for (g_window = 1; g_window <= 2; g_window++) {
        CHECKF(convert(m, &po, b, 4, 1, &err) == 0, "window %u: %s", g_window, err.msg);
        CHECK(files_equal(a, b));
    }
    g_window = 0;
    CHECK_EQ_U64(count_tmp(dir), 0);

    /* verify: sound */
    CHECKF(verify(a) == 0, "%s", g_problems);

    /* independent reader: every tensor, every expert, bit-exact */
    {
        mc_test_flash_report r;
        int nb = mc_test_flash_check(a, m, syn_read_f32, 0, &r);
        CHECKF(nb == 0, "%s", r.first_bad);
        CHECK(r.n_pinned >= 10);
        CHECK_EQ_U64(r.n_ffn_spans, 1);
        CHECK_EQ_U64(r.n_ffn_tensors, 7); /* gate, up x3 + down float */
        CHECK_EQ_U64(r.n_expert_blocks, 4);
        CHECK(r.n_quantized >= 5);
        CHECK(r.n_float >= 4);
        /* reader library agrees on the per-token cost */
        mc_flash *f = NULL;
        CHECK(mc_flash_open(a, &f, &err) == 0);
        if (f) {
            mc_flash_cost cst;
            mc_flash_token_cost(f, &cst);
            CHECK_EQ_U64(cst.token_bytes, r.token_bytes);
            CHECK_EQ_U64(cst.token_reads, r.token_reads);
            CHECK_EQ_U64(cst.pinned_bytes, r.pinned_nbytes);
            CHECK_EQ_U64(cst.experts_per_tok, 2);
            const mc_flash_tensor *t = mc_flash_find(f, "model.layers.0.mlp.down_proj.weight");
            CHECK(t && t->dtype == MC_T_BF16 && t->role == MC_FLASH_FFN && t->layer == 0);
            t = mc_flash_find(f, "model.layers.1.mlp.gate.weight");
            CHECK(t && t->dtype == MC_T_U32 && t->shape[1] == 128 * 8 / 32);
            const mc_flash_experts *x = mc_flash_find_experts(f, 1);
            CHECK(x && x->n_experts == 4 && x->n_tensors == 9);
            if (x) {
                CHECK_STR(x->tensors[0].name, "mlp.switch_mlp.gate_proj.weight");
                CHECK_STR(x->tensors[8].name, "mlp.switch_mlp.down_proj.biases");
                CHECK_EQ_U64(x->tensors[8].shape[0], 128);
                unsigned char *blk = malloc(x->stride);
                CHECK(mc_flash_read_expert(f, x, 3, blk, &err) == 0);
                CHECK(mc_flash_read_expert(f, x, 4, blk, &err) == MC_ERR_ARG);
                free(blk);
            }
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(mc_flash_manifest(f), "config"), "quantization");
            CHECK(q && cJSON_GetObjectItem(q, "bits")->valueint == 4 && cJSON_GetObjectItem(q, "group_size")->valueint == 64);
            mc_flash_close(f);
        }
    }

    /* compare with the source: same -> clean; a changed source value -> reported */
    {
        mc_plan *p = NULL;
        mc_flash_layout *L = NULL;
        mc_flash_write_opts wo;
        memset(&wo, 0, sizeof wo);
        wo.threads = 2;
        wo.ops = &g_ops;
        CHECK(mc_plan_build(m, &po, &p, &err) == 0);
        CHECK(mc_flash_layout_build(m, p, &L, &err) == 0);
        g_problems[0] = 0;
        CHECKF(mc_flash_compare(m, L, a, &wo, collect, NULL, &err) == 0, "%s", g_problems);
        g_perturb = 1;
        g_problems[0] = 0;
        CHECK(mc_flash_compare(m, L, a, &wo, collect, NULL, &err) == MC_ERR_CHECKSUM);
        CHECKF(strstr(g_problems, "switch_mlp.up_proj.weight differs") != NULL, "%s", g_problems);
        g_perturb = 0;
        mc_flash_layout_free(L);
        mc_plan_free(p);
    }

    /* other options: no-quant, 3 bits / group 32 / f16, 6 bits / 128 / f32 */
    {
        static const int cfg[][4] = { { 4, 64, -1, 1 }, { 3, 32, MC_T_F16, 0 }, { 6, 128, MC_T_F32, 0 },
                                      { 2, 32, MC_T_BF16, 0 }, { 5, 64, -1, 0 }, { 8, 128, -1, 0 } };
        for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
            mc_plan_opts o = po;
            o.bits = cfg[i][0];
            o.group_size = cfg[i][1];
            o.dtype = cfg[i][2];
            o.no_quant = cfg[i][3];
            CHECKF(convert(m, &o, c, 2, 1, &err) == 0, "%s", err.msg);
            CHECKF(verify(c) == 0, "%s", g_problems);
            mc_test_flash_report r;
            CHECKF(mc_test_flash_check(c, m, syn_read_f32, 2, &r) == 0, "bits %d: %s", o.bits, r.first_bad);
            if (o.no_quant) CHECK_EQ_U64(r.n_quantized, 0);
            else CHECK(r.n_quantized >= 5);
        }
    }

    /* verify catches corruption */
    {
        mc_flash *f = NULL;
        CHECK(mc_flash_open(a, &f, &err) == 0);
        if (f) {
            const mc_flash_tensor *t = mc_flash_find(f, "model.layers.0.self_attn.q_proj.weight");
            const mc_flash_tensor *fd = mc_flash_find(f, "model.layers.0.mlp.up_proj.scales");
            const mc_flash_experts *x = mc_flash_find_experts(f, 1);
            uint64_t toff = t ? t->offset + 100 : 0, foff = fd ? fd->offset + 1 : 0;
            uint64_t xoff = x ? x->offset + 2 * x->stride + x->tensors[3].inner_offset + 5 : 0;
            uint64_t moff = f->hdr.manifest_offset + 40, pad = t ? t->offset + t->nbytes + 3 : 0;
            uint64_t fsize = f->file.size, mo = f->hdr.manifest_offset;
            mc_flash_close(f);

            copy(a, c); flip(c, toff);
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "q_proj.weight: checksum mismatch") != NULL, "%s", g_problems);

            copy(a, c); flip(c, foff);
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "up_proj.scales: checksum mismatch") != NULL, "%s", g_problems);

            copy(a, c); flip(c, xoff);
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "expert 2 of layer 1: checksum mismatch") != NULL, "%s", g_problems);
            CHECK(strstr(g_problems, "expert 1 of layer 1") == NULL);

            copy(a, c); flip(c, moff);
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "manifest: checksum mismatch") != NULL, "%s", g_problems);

            copy(a, c); flip(c, pad);
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "is not zero") != NULL, "%s", g_problems);

            copy(a, c); flip(c, 200); /* header page padding */
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "padding at offset 200") != NULL, "%s", g_problems);

            copy(a, c);
            CHECK(truncate(c, (off_t)(fsize - 16384)) == 0);
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "truncated") != NULL, "%s", g_problems);
            CHECK(truncate(c, (off_t)(mo - 16384)) == 0); /* manifest gone too */
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "outside the file") != NULL, "%s", g_problems);

            /* manifest offset pointing outside the file */
            copy(a, c);
            {
                size_t n;
                unsigned char *bb = mc_test_read_file(c, &n);
                if (bb) {
                    bb[16 + 5] = 0x7f; /* manifest offset += huge */
                    mc_test_write_file(c, bb, n);
                    free(bb);
                }
            }
            CHECK(verify(c) == MC_ERR_CHECKSUM);
            CHECKF(strstr(g_problems, "manifest at offset") && strstr(g_problems, "outside the file"), "%s", g_problems);
            CHECK(mc_flash_open(c, &f, &err) == MC_ERR_FORMAT);

            /* not a .flash file at all */
            mc_test_write_file(c, "GGUF\3\0\0\0 not flash at all, but long enough to hold a header.....", 64);
            CHECK(verify(c) == MC_ERR_FORMAT);
            CHECKF(strstr(g_problems, "not a .flash file") != NULL, "%s", g_problems);
            mc_test_write_file(c, "MCF", 3);
            CHECK(verify(c) == MC_ERR_FORMAT);
        }
    }

    /* every single-byte flip anywhere in the file is caught: all header
     * bytes, and positions spread over the whole file (data, padding,
     * manifest, tail) */
    {
        size_t n = 0;
        unsigned char *orig = mc_test_read_file(a, &n);
        int missed = 0, tried = 0;
        uint64_t seed = 12345;
        for (int i = 0; orig && i < 48 + 400; i++) {
            size_t pos;
            if (i < 48) pos = (size_t)i;
            else {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                pos = (size_t)((seed >> 17) % n);
            }
            orig[pos] ^= 0x04;
            mc_test_write_file(c, orig, n);
            orig[pos] ^= 0x04;
            int rc = verify(c);
            tried++;
            if (rc == 0) {
                missed++;
                fprintf(stderr, "flip at %zu not detected\n", pos);
            }
        }
        CHECK_EQ_U64(tried, 448);
        CHECK_EQ_U64(missed, 0);
        free(orig);
    }

    /* outputs are atomic: existing OUT refused without force; a failing
     * conversion leaves no file and no temporary, and an existing OUT intact */
    {
        size_t n0, n1;
        unsigned char *before = mc_test_read_file(a, &n0);
        CHECK(convert(m, &po, a, 2, 0, &err) == MC_ERR_EXISTS);
        g_fail_tensor = "model.layers.1.mlp.switch_mlp.up_proj.weight";
        err.code = MC_OK;
        CHECK(convert(m, &po, d, 2, 0, &err) == MC_ERR_FORMAT);
        CHECKF(strstr(err.msg, "injected read failure") != NULL, "%s", err.msg);
        CHECK(!mc_io_exists(d));
        CHECK(convert(m, &po, a, 2, 1, &err) == MC_ERR_FORMAT);
        g_fail_tensor = NULL;
        unsigned char *after = mc_test_read_file(a, &n1);
        CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
        CHECK_EQ_U64(count_tmp(dir), 0);
        free(before);
        free(after);
    }

    syn_free(m);
    return mc_test_finish("test_flash_format");
}
