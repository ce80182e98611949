/* bench_inputs: writes the model-shaped inputs of bench/run_peers.sh.
 *
 *   bench_inputs CORPUS_QWEN3MOE_GGUF WORKDIR [LAYERS [EXPERTS [FORMS]]]
 *
 * One qwen3moe-shaped model (hidden 2048, LAYERS layers, EXPERTS experts of
 * FFN width 768, 8 experts per token, attention 4 x 64 query heads and
 * 2 x 64 key/value heads as in the corpus model, vocabulary 256 with the
 * corpus tokenizer) in four forms, all under WORKDIR:
 *
 *   q4km.gguf   llama.cpp's Q4_K_M mix: Q4_K everywhere, Q6_K for attn_v
 *               and ffn_down_exps in the "more bits" layers (first and last
 *               eighth, every third between; llama.cpp's use_more_bits),
 *               Q6_K output, F32 norms and routers.
 *   q4_0.gguf   every matrix Q4_0 (output too: a "pure" Q4_0, so that
 *               --lossless keeps every block).
 *   bf16/       Hugging Face safetensors folder (per-expert tensors, bf16,
 *               config.json of a Qwen3MoeForCausalLM).
 *   mlx/        mlx-community style folder: 4-bit group-64 affine weights
 *               (uint32 words, bf16 scales and biases), stacked switch_mlp
 *               experts, config.json with "quantization".
 *
 * FORMS (default all): a comma list of q4km, q4_0, bf16, mlx to write only
 * those (a multi-GB input for `mconv bench` needs just one).
 *
 * Tensor contents are random, not trained weights: GGUF blocks are random
 * bytes in each type's block layout (every byte pattern is a valid Q4_K,
 * Q6_K or Q4_0 block) with small finite f16 scales; bf16 values are random
 * with exponents in [2^-8, 2^-4); MLX words random with small bf16
 * scales/biases. Decoding and quantizing cost the same as for trained
 * weights (no data-dependent fast paths beyond the float classes, which
 * are all normal here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mc_float.h"
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_st_write.h"
#include "mc_types.h"

#include "bench_util.h"

/* n random bf16 values, |x| in [2^-8, 2^-4). */
static void fill_bf16(uint16_t *v, size_t n)
{
    for (size_t i = 0; i < n; i += 4) {
        uint64_t r = rnd();
        for (size_t k = 0; k < 4 && i + k < n; k++) {
            uint16_t x = (uint16_t)(r >> (16 * k));
            uint16_t sign = x & 0x8000u, mant = x & 0x7Fu, ex = (uint16_t)(119 + ((x >> 7) & 3));
            v[i + k] = (uint16_t)(sign | (uint16_t)(ex << 7) | mant);
        }
    }
}

typedef struct shp {
    const char *gg;   /* GGUF name suffix (blk.L.) or full name */
    const char *hf;   /* HF name suffix (model.layers.L.) or full name */
    const char *mlx;  /* MLX name (stacked experts) */
    int layer, kind;  /* kind: 0 matrix, 1 norm (1-D), 2 router (F32 in GGUF), 3 experts */
    uint64_t rows, cols; /* HF [rows, cols]; GGUF ne = {cols, rows(, E)} */
} shp;

#define H 2048u
#define FX 768u
#define V 256u
#define QD 256u
#define KD 128u
#define HD 64u

static int n_shapes(int L) { return 3 + 12 * L; }

static shp shape_at(int L, int E, int i)
{
    (void)L;
    shp s;
    memset(&s, 0, sizeof s);
    s.layer = -1;
    if (i == 0) return (shp){ "token_embd.weight", "model.embed_tokens.weight", "model.embed_tokens", -1, 0, V, H };
    if (i == 1) return (shp){ "output_norm.weight", "model.norm.weight", "model.norm.weight", -1, 1, H, 1 };
    if (i == 2) return (shp){ "output.weight", "lm_head.weight", "lm_head", -1, 0, V, H };
    int l = (i - 3) / 12, k = (i - 3) % 12;
    static const shp per[11] = {
        { "attn_norm.weight", "input_layernorm.weight", "input_layernorm.weight", 0, 1, H, 1 },
        { "attn_q.weight", "self_attn.q_proj.weight", "self_attn.q_proj", 0, 0, QD, H },
        { "attn_k.weight", "self_attn.k_proj.weight", "self_attn.k_proj", 0, 0, KD, H },
        { "attn_v.weight", "self_attn.v_proj.weight", "self_attn.v_proj", 0, 0, KD, H },
        { "attn_output.weight", "self_attn.o_proj.weight", "self_attn.o_proj", 0, 0, H, QD },
        { "attn_q_norm.weight", "self_attn.q_norm.weight", "self_attn.q_norm.weight", 0, 1, HD, 1 },
        { "attn_k_norm.weight", "self_attn.k_norm.weight", "self_attn.k_norm.weight", 0, 1, HD, 1 },
        { "ffn_norm.weight", "post_attention_layernorm.weight", "post_attention_layernorm.weight", 0, 1, H, 1 },
        { "ffn_gate_inp.weight", "mlp.gate.weight", "mlp.gate", 0, 2, 0, H },
        { "ffn_gate_exps.weight", "mlp.experts.%d.gate_proj.weight", "mlp.switch_mlp.gate_proj", 0, 3, FX, H },
        { "ffn_up_exps.weight", "mlp.experts.%d.up_proj.weight", "mlp.switch_mlp.up_proj", 0, 3, FX, H },
    };
    if (k < 11) {
        s = per[k];
    } else {
        s = (shp){ "ffn_down_exps.weight", "mlp.experts.%d.down_proj.weight", "mlp.switch_mlp.down_proj", 0, 3, H, FX };
    }
    if (k == 8) s.rows = (uint64_t)E;
    s.layer = l;
    return s;
}

static int more_bits(int l, int L) { return l < L / 8 || l >= 7 * L / 8 || (l - L / 8) % 3 == 2; }

static int die(const char *what, const mc_error *e)
{
    fprintf(stderr, "bench_inputs: %s: %s\n", what, e->msg);
    return 1;
}

/* ---- GGUF (q4km or q4_0) ---- */
static int write_gguf(const mc_gguf *g, const char *path, int L, int E, int pure_q4_0)
{
    mc_error err = { MC_OK, "" };
    struct { const char *key; uint32_t v; } over[] = {
        { "qwen3moe.block_count", (uint32_t)L },        { "qwen3moe.embedding_length", H },
        { "qwen3moe.expert_count", (uint32_t)E },       { "qwen3moe.expert_feed_forward_length", FX },
        { "qwen3moe.feed_forward_length", FX },         { "qwen3moe.expert_used_count", 8 },
        { "general.file_type", 15 },
    };
    if (pure_q4_0) over[6].v = 2;
    mc_gguf_write_opts wo = { 3, 32, 1, 0, 0, 0 };
    mc_gguf_writer *w = NULL;
    if (mc_gguf_writer_create(&w, path, &wo, &err)) return die(path, &err);
    int have_ft = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const mc_gguf_kv *kv = &g->kv[i];
        int replaced = 0;
        for (size_t k = 0; k < sizeof over / sizeof over[0]; k++)
            if (!strcmp(kv->key.s, over[k].key)) {
                if (mc_gguf_writer_add_u32(w, over[k].key, over[k].v, &err)) goto fail;
                replaced = 1;
                if (k == 6) have_ft = 1;
            }
        if (!replaced && mc_gguf_writer_copy_kv(w, kv, &err)) goto fail;
    }
    if (!have_ft && mc_gguf_writer_add_u32(w, "general.file_type", over[6].v, &err)) goto fail;
    int ns = n_shapes(L);
    int *types = calloc((size_t)ns, sizeof *types);
    uint64_t *nel = calloc((size_t)ns, sizeof *nel);
    if (!types || !nel) { free(types); free(nel); mc_gguf_writer_abort(w); return 1; }
    for (int i = 0; i < ns; i++) {
        shp s = shape_at(L, E, i);
        char name[96];
        if (s.layer >= 0) snprintf(name, sizeof name, "blk.%d.%s", s.layer, s.gg);
        else snprintf(name, sizeof name, "%s", s.gg);
        int ty;
        uint64_t ne[3] = { s.cols, s.rows, (uint64_t)E };
        uint32_t nd = 2;
        if (s.kind == 1) { ne[0] = s.rows; nd = 1; ty = MC_T_F32; }
        else if (s.kind == 2) ty = MC_T_F32;
        else if (pure_q4_0) ty = MC_T_Q4_0;
        else if (i == 2) ty = MC_T_Q6_K;
        else if (s.layer >= 0 && more_bits(s.layer, L) && (!strcmp(s.gg, "attn_v.weight") || !strcmp(s.gg, "ffn_down_exps.weight")))
            ty = MC_T_Q6_K;
        else ty = MC_T_Q4_K;
        if (s.kind == 3) nd = 3;
        types[i] = ty;
        nel[i] = ne[0] * (nd > 1 ? ne[1] : 1) * (nd > 2 ? ne[2] : 1);
        if (mc_gguf_writer_add_tensor(w, name, ty, nd, ne, &err)) { free(types); free(nel); goto fail; }
    }
    size_t cap = (size_t)8 << 20;
    unsigned char *buf = malloc(cap);
    uint64_t total = 0;
    for (int i = 0; buf && i < ns; i++) {
        const mc_type_traits *tr = mc_type_get(types[i]);
        uint64_t nb = nel[i] / tr->blck;
        while (nb) {
            size_t k = cap / tr->type_size;
            if (k > nb) k = (size_t)nb;
            if (types[i] == MC_T_F32) {
                float *f = (float *)(void *)buf;
                for (size_t j = 0; j < k; j++) f[j] = 1.0f + (float)(rnd() % 100) * 1e-3f;
            } else {
                fill_blocks(types[i], buf, k);
            }
            if (mc_gguf_writer_write(w, buf, k * tr->type_size, &err)) { free(buf); free(types); free(nel); goto fail; }
            total += k * tr->type_size;
            nb -= k;
        }
    }
    free(buf);
    free(types);
    free(nel);
    if (mc_gguf_writer_commit(w, &err)) return die(path, &err);
    printf("%s: %.1f MB of tensor data\n", path, (double)total / 1e6);
    return 0;
fail:
    mc_gguf_writer_abort(w);
    return die(path, &err);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "bench_inputs: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static void config_json(char *out, size_t cap, int L, int E, int mlx)
{
    snprintf(out, cap,
             "{\n  \"architectures\": [\"Qwen3MoeForCausalLM\"],\n  \"model_type\": \"qwen3_moe\",\n"
             "  \"attention_bias\": false,\n  \"decoder_sparse_step\": 1,\n  \"head_dim\": %u,\n"
             "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %u,\n  \"intermediate_size\": %u,\n"
             "  \"max_position_embeddings\": 4096,\n  \"mlp_only_layers\": [],\n  \"moe_intermediate_size\": %u,\n"
             "  \"norm_topk_prob\": true,\n  \"num_attention_heads\": %u,\n  \"num_experts\": %d,\n"
             "  \"num_experts_per_tok\": 8,\n  \"num_hidden_layers\": %d,\n  \"num_key_value_heads\": %u,\n"
             "  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 1000000.0,\n  \"tie_word_embeddings\": false,\n"
             "  \"torch_dtype\": \"bfloat16\",\n  \"vocab_size\": %u%s\n}\n",
             HD, H, FX, FX, QD / HD, E, L, KD / HD, V,
             mlx ? ",\n  \"quantization\": {\"group_size\": 64, \"bits\": 4}" : "");
}

/* ---- bf16 safetensors folder ---- */
static int write_bf16(const char *dir, int L, int E)
{
    mc_error err = { MC_OK, "" };
    char path[1200], cfg[4096];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    config_json(cfg, sizeof cfg, L, E, 0);
    if (write_text(path, cfg)) return 1;
    mc_st_set *s = NULL;
    if (mc_st_set_new(dir, 0, 1, &s, &err)) return die(dir, &err);
    if (mc_st_set_meta(s, "format", "pt", &err)) goto fail;
    int ns = n_shapes(L);
    for (int i = 0; i < ns; i++) {
        shp sh = shape_at(L, E, i);
        for (int e = 0; e < (sh.kind == 3 ? E : 1); e++) {
            char name[128], sfx[96];
            snprintf(sfx, sizeof sfx, sh.hf, e);
            if (sh.layer >= 0) snprintf(name, sizeof name, "model.layers.%d.%s", sh.layer, sfx);
            else snprintf(name, sizeof name, "%s", sfx);
            uint64_t shape[2] = { sh.rows, sh.cols };
            if (mc_st_set_add(s, name, MC_T_BF16, sh.kind == 1 ? 1 : 2, shape, &err)) goto fail;
        }
    }
    if (mc_st_set_begin(s, &err)) goto fail;
    size_t cap = (size_t)4 << 20;
    uint16_t *buf = malloc(cap * 2);
    uint64_t total = 0;
    for (int i = 0; buf && i < ns; i++) {
        shp sh = shape_at(L, E, i);
        for (int e = 0; e < (sh.kind == 3 ? E : 1); e++) {
            uint64_t left = sh.rows * sh.cols;
            while (left) {
                size_t k = left < cap ? (size_t)left : cap;
                if (sh.kind == 1) for (size_t j = 0; j < k; j++) buf[j] = 0x3F80; /* 1.0 */
                else fill_bf16(buf, k);
                if (mc_st_set_write(s, buf, k * 2, &err)) { free(buf); goto fail; }
                left -= k;
                total += k * 2;
            }
        }
    }
    free(buf);
    if (mc_st_set_commit(s, &err)) goto fail;
    mc_st_set_free(s);
    printf("%s: %.1f MB of bf16 tensor data\n", dir, (double)total / 1e6);
    return 0;
fail:
    mc_st_set_free(s);
    return die(dir, &err);
}

/* ---- MLX 4-bit folder ---- */
static int write_mlx(const char *dir, int L, int E)
{
    mc_error err = { MC_OK, "" };
    char path[1200], cfg[4096];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    config_json(cfg, sizeof cfg, L, E, 1);
    if (write_text(path, cfg)) return 1;
    mc_st_set *s = NULL;
    if (mc_st_set_new(dir, 0, 1, &s, &err)) return die(dir, &err);
    if (mc_st_set_meta(s, "format", "mlx", &err)) goto fail;
    int ns = n_shapes(L);
    /* names sorted as mlx-lm's save does not matter to readers: declared order */
    for (int i = 0; i < ns; i++) {
        shp sh = shape_at(L, E, i);
        char base[128];
        if (sh.layer >= 0) snprintf(base, sizeof base, "model.layers.%d.%s", sh.layer, sh.mlx);
        else snprintf(base, sizeof base, "%s", sh.mlx);
        if (sh.kind == 1) {
            uint64_t shape[1] = { sh.rows };
            if (mc_st_set_add(s, base, MC_T_BF16, 1, shape, &err)) goto fail;
            continue;
        }
        int x = sh.kind == 3;
        char name[160];
        uint64_t sw[3] = { (uint64_t)E, sh.rows, sh.cols / 8 }, ss[3] = { (uint64_t)E, sh.rows, sh.cols / 64 };
        snprintf(name, sizeof name, "%s.weight", base);
        if (mc_st_set_add(s, name, MC_T_U32, x ? 3 : 2, x ? sw : sw + 1, &err)) goto fail;
        snprintf(name, sizeof name, "%s.scales", base);
        if (mc_st_set_add(s, name, MC_T_BF16, x ? 3 : 2, x ? ss : ss + 1, &err)) goto fail;
        snprintf(name, sizeof name, "%s.biases", base);
        if (mc_st_set_add(s, name, MC_T_BF16, x ? 3 : 2, x ? ss : ss + 1, &err)) goto fail;
    }
    if (mc_st_set_begin(s, &err)) goto fail;
    size_t cap = (size_t)8 << 20;
    unsigned char *buf = malloc(cap);
    uint64_t total = 0;
    for (int i = 0; buf && i < ns; i++) {
        shp sh = shape_at(L, E, i);
        uint64_t m = sh.kind == 3 ? (uint64_t)E : 1;
        uint64_t parts[3] = { m * sh.rows * sh.cols / 2, m * sh.rows * sh.cols / 64 * 2, m * sh.rows * sh.cols / 64 * 2 };
        int np = 3;
        if (sh.kind == 1) { parts[0] = sh.rows * 2; np = 1; }
        for (int p = 0; p < np; p++) {
            uint64_t left = parts[p];
            while (left) {
                size_t k = left < cap ? (size_t)left : cap;
                if (sh.kind == 1) {
                    for (size_t j = 0; j + 1 < k; j += 2) { buf[j] = 0x80; buf[j + 1] = 0x3F; }
                } else if (p == 0) {
                    fill_random(buf, k);
                } else {
                    fill_bf16((uint16_t *)(void *)buf, k / 2);
                }
                if (mc_st_set_write(s, buf, k, &err)) { free(buf); goto fail; }
                left -= k;
                total += k;
            }
        }
    }
    free(buf);
    if (mc_st_set_commit(s, &err)) goto fail;
    mc_st_set_free(s);
    printf("%s: %.1f MB of MLX 4-bit tensor data\n", dir, (double)total / 1e6);
    return 0;
fail:
    mc_st_set_free(s);
    return die(dir, &err);
}

static int want(const char *forms, const char *f)
{
    size_t n = strlen(f);
    for (const char *p = forms; p && *p;) {
        const char *c = strchr(p, ',');
        size_t k = c ? (size_t)(c - p) : strlen(p);
        if (k == n && !strncmp(p, f, n)) return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_inputs CORPUS_QWEN3MOE_GGUF WORKDIR [LAYERS [EXPERTS [FORMS]]]\n");
        return 2;
    }
    const char *small = argv[1], *work = argv[2];
    const char *forms = argc > 5 ? argv[5] : "q4km,q4_0,bf16,mlx";
    int L = argc > 3 ? atoi(argv[3]) : 4, E = argc > 4 ? atoi(argv[4]) : 64;
    if (L < 1 || L > 512 || E < 8 || E > 4096) {
        fprintf(stderr, "bench_inputs: LAYERS 1..512, EXPERTS 8..4096\n");
        return 2;
    }
    mc_error err = { MC_OK, "" };
    mc_gguf *g = NULL;
    if (mc_gguf_open(small, &g, &err)) return die(small, &err);
    char p[1100];
    mkdir(work, 0755);
    int rc = 0;
    snprintf(p, sizeof p, "%s/q4km.gguf", work);
    if (want(forms, "q4km")) rc = rc || write_gguf(g, p, L, E, 0);
    snprintf(p, sizeof p, "%s/q4_0.gguf", work);
    if (want(forms, "q4_0")) rc = rc || write_gguf(g, p, L, E, 1);
    mc_gguf_close(g);
    snprintf(p, sizeof p, "%s/bf16", work);
    if (want(forms, "bf16")) rc = rc || write_bf16(p, L, E);
    snprintf(p, sizeof p, "%s/mlx", work);
    if (want(forms, "mlx")) rc = rc || write_mlx(p, L, E);
    return rc;
}
