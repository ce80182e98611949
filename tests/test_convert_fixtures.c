/* mc_convert on fixtures this test writes: architectures without a corpus
 * sample (mistral, qwen2, gemma2), GGUF variants of other converter
 * versions (fused attn_qkv, per-expert ffn_gate.E, Q/K biases, tied
 * embeddings), F8 E4M3 checkpoints with block scales, and MLX-quantized
 * folders (passthrough).
 *
 * Each fixture starts from Hugging Face tensors (random bf16-exact values);
 * the GGUF twin is made here the way llama.cpp's convert_hf_to_gguf.py does
 * (names mapped, LlamaModel.permute on Q/K rows and biases, gemma norms
 * stored as 1 + w in f32, dims reversed), written with mc_gguf_write. Both
 * must convert to the same mlx-lm tensors: the names mlx-lm's model class
 * has, bit-identical values (gemma norms: within one f32 ulp of |w| + 1).
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_convert.h"
#include "mc_gguf_write.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { HID = 64, NH = 4, NKV = 2, HD = 16, FF = 96, VOC = 32, NL = 2, NE = 3 };

typedef struct fx {
    char name[160];
    uint32_t nd;
    uint64_t sh[3];
    uint64_t n;
    float *v;
} fx;

typedef struct fxm {
    fx t[160];
    size_t n;
} fxm;

static uint64_t g_seed = 0x9e3779b97f4a7c15ull;
static float rnd(void)
{
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    float f = (float)((g_seed >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
    return mc_bf16_to_f32(mc_f32_to_bf16(f * 0.5f)); /* bf16-exact */
}

static fx *add(fxm *m, const char *name, uint32_t nd, uint64_t a, uint64_t b, uint64_t c)
{
    fx *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nd = nd;
    t->sh[0] = a;
    t->sh[1] = b;
    t->sh[2] = c;
    t->n = a * (nd > 1 ? b : 1) * (nd > 2 ? c : 1);
    t->v = malloc(t->n * sizeof(float));
    for (uint64_t i = 0; i < t->n; i++) t->v[i] = rnd();
    return t;
}

static void fx_free(fxm *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->t[i].v);
    m->n = 0;
}

static fx *fx_find(fxm *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
    return NULL;
}

typedef struct spec {
    const char *arch;      /* GGUF general.architecture */
    const char *hf_type;   /* config.json model_type */
    int tied, qkv_bias, o_bias, gemma, fused_qkv, moe, permute, phi3;
} spec;

/* HF tensors of a model as the checkpoint has them. */
static void build_hf(fxm *m, const spec *s)
{
    char n[160];
    add(m, "model.embed_tokens.weight", 2, VOC, HID, 0);
    add(m, "model.norm.weight", 1, HID, 0, 0);
    if (!s->tied) add(m, "lm_head.weight", 2, VOC, HID, 0);
    for (int L = 0; L < NL; L++) {
#define A(fmt, ...) (snprintf(n, sizeof n, "model.layers.%d." fmt, L), add(m, n, __VA_ARGS__))
        A("input_layernorm.weight", 1, HID, 0, 0);
        A("post_attention_layernorm.weight", 1, HID, 0, 0);
        if (s->phi3) {
            A("self_attn.qkv_proj.weight", 2, (NH + 2 * NKV) * HD, HID, 0);
        } else {
            A("self_attn.q_proj.weight", 2, NH * HD, HID, 0);
            A("self_attn.k_proj.weight", 2, NKV * HD, HID, 0);
            A("self_attn.v_proj.weight", 2, NKV * HD, HID, 0);
        }
        A("self_attn.o_proj.weight", 2, HID, NH * HD, 0);
        if (s->qkv_bias) {
            A("self_attn.q_proj.bias", 1, NH * HD, 0, 0);
            A("self_attn.k_proj.bias", 1, NKV * HD, 0, 0);
            A("self_attn.v_proj.bias", 1, NKV * HD, 0, 0);
        }
        if (s->o_bias) A("self_attn.o_proj.bias", 1, HID, 0, 0);
        if (s->gemma) {
            A("pre_feedforward_layernorm.weight", 1, HID, 0, 0);
            A("post_feedforward_layernorm.weight", 1, HID, 0, 0);
        }
        if (s->moe) {
            A("block_sparse_moe.gate.weight", 2, NE, HID, 0);
            for (int e = 0; e < NE; e++) {
                snprintf(n, sizeof n, "model.layers.%d.block_sparse_moe.experts.%d.w1.weight", L, e);
                add(m, n, 2, FF, HID, 0);
                snprintf(n, sizeof n, "model.layers.%d.block_sparse_moe.experts.%d.w2.weight", L, e);
                add(m, n, 2, HID, FF, 0);
                snprintf(n, sizeof n, "model.layers.%d.block_sparse_moe.experts.%d.w3.weight", L, e);
                add(m, n, 2, FF, HID, 0);
            }
        } else if (s->phi3) {
            A("mlp.gate_up_proj.weight", 2, 2 * FF, HID, 0);
            A("mlp.down_proj.weight", 2, HID, FF, 0);
        } else {
            A("mlp.gate_proj.weight", 2, FF, HID, 0);
            A("mlp.up_proj.weight", 2, FF, HID, 0);
            A("mlp.down_proj.weight", 2, HID, FF, 0);
        }
#undef A
    }
}

/* ------------------------------------------------ safetensors writing */

static int write_st(const char *path, fxm *m, const char *const *dtypes /* per tensor or NULL = BF16 */,
                    unsigned char **raw_override)
{
    cJSON *h = cJSON_CreateObject();
    uint64_t off = 0;
    size_t *sz = calloc(m->n, sizeof *sz);
    for (size_t i = 0; i < m->n; i++) {
        fx *t = &m->t[i];
        const char *dt = dtypes && dtypes[i] ? dtypes[i] : "BF16";
        int ty = mc_type_from_st_name(dt);
        uint64_t nb = 0;
        mc_type_nbytes(ty, t->n, &nb);
        sz[i] = (size_t)nb;
        cJSON *o = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(o, "dtype", dt);
        cJSON *shp = cJSON_AddArrayToObject(o, "shape");
        for (uint32_t d = 0; d < t->nd; d++) cJSON_AddItemToArray(shp, cJSON_CreateNumber((double)t->sh[d]));
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *js = cJSON_PrintUnformatted(h);
    size_t jl = strlen(js), pad = (8 - jl % 8) % 8;
    FILE *f = fopen(path, "wb");
    uint64_t hl = jl + pad;
    fwrite(&hl, 8, 1, f);
    fwrite(js, 1, jl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    for (size_t i = 0; i < m->n; i++) {
        fx *t = &m->t[i];
        if (raw_override && raw_override[i]) {
            fwrite(raw_override[i], 1, sz[i], f);
            continue;
        }
        const char *dt = dtypes && dtypes[i] ? dtypes[i] : "BF16";
        for (uint64_t k = 0; k < t->n; k++) {
            if (strcmp(dt, "F32") == 0) fwrite(&t->v[k], 4, 1, f);
            else {
                uint16_t b = mc_f32_to_bf16(t->v[k]);
                fwrite(&b, 2, 1, f);
            }
        }
    }
    fclose(f);
    free(js);
    free(sz);
    cJSON_Delete(h);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static char *write_config(const char *dir, const spec *s, const char *extra)
{
    static char path[600];
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"%s\", \"hidden_size\": %d, \"num_hidden_layers\": %d, \"intermediate_size\": %d,"
             " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d, \"rms_norm_eps\": 1e-06,"
             " \"vocab_size\": %d, \"rope_theta\": 10000.0, \"max_position_embeddings\": 512,"
             " \"tie_word_embeddings\": %s%s%s}",
             s->hf_type, HID, NL, FF, NH, NKV, HD, VOC, s->tied ? "true" : "false", extra ? ", " : "",
             extra ? extra : "");
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, cfg);
    return path;
}

/* ------------------------------------------------------- GGUF writing */

static void permute_rows(const float *src, float *dst, uint64_t rows, uint64_t rl, uint64_t heads)
{
    /* llama.cpp LlamaModel.permute: reshape(heads, 2, hd/2, ...).swapaxes(1, 2) */
    uint64_t hd = rows / heads, half = hd / 2;
    for (uint64_t h = 0; h < heads; h++)
        for (uint64_t i = 0; i < half; i++)
            for (uint64_t j = 0; j < 2; j++)
                memcpy(dst + (h * hd + i * 2 + j) * rl, src + (h * hd + j * half + i) * rl, rl * sizeof(float));
}

/* extra GGUF tensor rope_freqs.weight (Llama 3 RoPE factors) when set */
static float *g_rope_freqs;
static uint64_t g_n_rope_freqs;

typedef struct gt { char name[160]; uint32_t nd; uint64_t ne[3]; float *v; int own; } gt;

static const char *gguf_layer_name(const spec *s, const char *rest)
{
    static const struct { const char *hf, *gg; } map[] = {
        {"input_layernorm", "attn_norm"}, {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
        {"self_attn.v_proj", "attn_v"}, {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"},
        {"mlp.up_proj", "ffn_up"}, {"mlp.down_proj", "ffn_down"}, {"pre_feedforward_layernorm", "ffn_norm"},
        {"post_feedforward_layernorm", "post_ffw_norm"}, {"block_sparse_moe.gate", "ffn_gate_inp"},
        {"self_attn.qkv_proj", "attn_qkv"}, {"mlp.gate_up_proj", "ffn_up"},
    };
    if (strncmp(rest, "post_attention_layernorm", 24) == 0) return s->gemma ? "post_attention_norm" : "ffn_norm";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t l = strlen(map[i].hf);
        if (strncmp(rest, map[i].hf, l) == 0 && rest[l] == '.') return map[i].gg;
    }
    return NULL;
}

static int write_gguf(const char *path, fxm *m, const spec *s)
{
    gt *g = calloc(m->n + 8, sizeof *g);
    size_t ng = 0;
    char n[200];
    for (size_t i = 0; i < m->n; i++) {
        fx *t = &m->t[i];
        gt *o = &g[ng];
        o->nd = t->nd;
        for (uint32_t d = 0; d < t->nd; d++) o->ne[d] = t->sh[t->nd - 1 - d];
        o->v = t->v;
        int L, off = 0, e;
        if (strcmp(t->name, "model.embed_tokens.weight") == 0) snprintf(o->name, sizeof o->name, "token_embd.weight");
        else if (strcmp(t->name, "model.norm.weight") == 0) snprintf(o->name, sizeof o->name, "output_norm.weight");
        else if (strcmp(t->name, "lm_head.weight") == 0) snprintf(o->name, sizeof o->name, "output.weight");
        else if (sscanf(t->name, "model.layers.%d.block_sparse_moe.experts.%d.%n", &L, &e, &off) == 2 && off) {
            const char *w = t->name + off;
            snprintf(o->name, sizeof o->name, "blk.%d.%s.%d.weight", L,
                     strncmp(w, "w1", 2) == 0 ? "ffn_gate" : strncmp(w, "w2", 2) == 0 ? "ffn_down" : "ffn_up", e);
        } else if (sscanf(t->name, "model.layers.%d.%n", &L, &off) == 1 && off) {
            const char *rest = t->name + off, *gn = gguf_layer_name(s, rest);
            if (!gn) { fprintf(stderr, "fixture: no GGUF name for %s\n", t->name); free(g); return 1; }
            snprintf(o->name, sizeof o->name, "blk.%d.%s.%s", L, gn, strrchr(rest, '.') + 1);
            int isq = strstr(rest, "q_proj") != NULL, isk = strstr(rest, "k_proj") != NULL;
            if (s->permute && (isq || isk)) {
                uint64_t rows = t->sh[0], rl = t->nd == 2 ? t->sh[1] : 1;
                o->v = malloc(t->n * sizeof(float));
                o->own = 1;
                permute_rows(t->v, o->v, rows, rl, isq ? NH : NKV);
            }
        } else {
            fprintf(stderr, "fixture: unmapped %s\n", t->name);
            free(g);
            return 1;
        }
        size_t nl = strlen(o->name);
        if (s->gemma && nl > 11 && strcmp(o->name + nl - 11, "norm.weight") == 0) {
            float *v = malloc(t->n * sizeof(float));
            for (uint64_t k = 0; k < t->n; k++) v[k] = t->v[k] + 1.0f; /* llama.cpp: data + 1, f32 */
            o->v = v;
            o->own = 1;
        }
        ng++;
    }
    if (s->fused_qkv) {
        /* replace attn_q/k/v weights of each layer by one attn_qkv = [q; k; v] */
        for (int L = 0; L < NL; L++) {
            gt *q = NULL, *k = NULL, *v = NULL;
            char qn[64], kn[64], vn[64];
            snprintf(qn, sizeof qn, "blk.%d.attn_q.weight", L);
            snprintf(kn, sizeof kn, "blk.%d.attn_k.weight", L);
            snprintf(vn, sizeof vn, "blk.%d.attn_v.weight", L);
            for (size_t i = 0; i < ng; i++) {
                if (!strcmp(g[i].name, qn)) q = &g[i];
                if (!strcmp(g[i].name, kn)) k = &g[i];
                if (!strcmp(g[i].name, vn)) v = &g[i];
            }
            uint64_t rq = q->ne[1], rk = k->ne[1], rv = v->ne[1];
            float *f = malloc((rq + rk + rv) * HID * sizeof(float));
            memcpy(f, q->v, rq * HID * 4);
            memcpy(f + rq * HID, k->v, rk * HID * 4);
            memcpy(f + (rq + rk) * HID, v->v, rv * HID * 4);
            if (q->own) free(q->v);
            if (k->own) free(k->v);
            k->own = 0;
            q->v = f;
            q->own = 1;
            q->ne[1] = rq + rk + rv;
            snprintf(q->name, sizeof q->name, "blk.%d.attn_qkv.weight", L);
            k->name[0] = v->name[0] = '\0'; /* dropped */
        }
    }
    static float rope_long[HD / 2], rope_short[HD / 2];
    if (s->phi3) {
        for (int i = 0; i < HD / 2; i++) {
            rope_long[i] = 1.0f + (float)i * 0.37f;
            rope_short[i] = 1.0f + (float)i * 0.011f;
        }
        gt *o = &g[ng++];
        snprintf(o->name, sizeof o->name, "rope_factors_long.weight");
        o->nd = 1;
        o->ne[0] = HD / 2;
        o->v = rope_long;
        o = &g[ng++];
        snprintf(o->name, sizeof o->name, "rope_factors_short.weight");
        o->nd = 1;
        o->ne[0] = HD / 2;
        o->v = rope_short;
    }
    if (g_rope_freqs) {
        gt *o = &g[ng++];
        snprintf(o->name, sizeof o->name, "rope_freqs.weight");
        o->nd = 1;
        o->ne[0] = g_n_rope_freqs;
        o->v = g_rope_freqs;
    }
    mc_gguf_writer *w = NULL;
    mc_error err = {0};
    int rc = mc_gguf_writer_create(&w, path, NULL, &err);
    char key[128];
#define K(suf) (snprintf(key, sizeof key, "%s." suf, s->arch), key)
    rc = rc ? rc : mc_gguf_writer_add_str(w, "general.architecture", s->arch, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("block_count"), NL, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("context_length"), 512, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("embedding_length"), HID, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("feed_forward_length"), FF, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.head_count"), NH, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.head_count_kv"), NKV, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.key_length"), HD, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.value_length"), HD, &err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, K("rope.freq_base"), 10000.0f, &err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-6f, &err);
    if (s->moe) {
        rc = rc ? rc : mc_gguf_writer_add_u32(w, K("expert_count"), NE, &err);
        rc = rc ? rc : mc_gguf_writer_add_u32(w, K("expert_used_count"), 2, &err);
    }
    if (s->gemma) {
        rc = rc ? rc : mc_gguf_writer_add_f32(w, K("attn_logit_softcapping"), 50.0f, &err);
        rc = rc ? rc : mc_gguf_writer_add_f32(w, K("final_logit_softcapping"), 30.0f, &err);
        rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.sliding_window"), 64, &err);
    }
#undef K
    const char *toks[VOC];
    char tb[VOC][8];
    for (int i = 0; i < VOC; i++) { snprintf(tb[i], sizeof tb[i], "t%d", i); toks[i] = tb[i]; }
    rc = rc ? rc : mc_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &err);
    rc = rc ? rc : mc_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, VOC, &err);
    for (size_t i = 0; i < ng && !rc; i++) {
        if (!g[i].name[0]) continue;
        rc = mc_gguf_writer_add_tensor(w, g[i].name, g[i].nd == 1 ? MC_T_F32 : MC_T_BF16, g[i].nd, g[i].ne, &err);
    }
    for (size_t i = 0; i < ng && !rc; i++) {
        if (!g[i].name[0]) continue;
        uint64_t ne = g[i].ne[0] * (g[i].nd > 1 ? g[i].ne[1] : 1);
        if (g[i].nd == 1) rc = mc_gguf_writer_write(w, g[i].v, ne * 4, &err);
        else {
            uint16_t *b = malloc(ne * 2);
            for (uint64_t k = 0; k < ne; k++) b[k] = mc_f32_to_bf16(g[i].v[k]);
            rc = mc_gguf_writer_write(w, b, ne * 2, &err);
            free(b);
        }
    }
    rc = rc ? rc : mc_gguf_writer_commit(w, &err);
    if (rc) {
        fprintf(stderr, "fixture gguf %s: %s\n", path, err.msg);
        if (w) mc_gguf_writer_abort(w);
    }
    (void)n;
    for (size_t i = 0; i < ng; i++)
        if (g[i].own) free(g[i].v);
    free(g);
    return rc;
}

/* --------------------------------------------------------- comparing */

static mc_model *open_m(const char *p)
{
    mc_model *m = NULL;
    mc_error err = {0};
    if (mc_convert_open(p, NULL, &m, &err)) fprintf(stderr, "open %s: %s\n", p, err.msg);
    return m;
}

/* expected mlx-lm value of each output tensor, from the HF tensors */
static int expected(fxm *hf, const char *mlx, const spec *s, float **out, uint64_t *n)
{
    fx *t = fx_find(hf, mlx);
    if (t) { *out = t->v; *n = t->n; return 0; }
    /* stacked experts: switch_mlp.X_proj from experts.e.wK */
    int L, off = 0;
    if (s->moe && sscanf(mlx, "model.layers.%d.block_sparse_moe.switch_mlp.%n", &L, &off) == 1 && off) {
        const char *p = mlx + off;
        const char *w = strncmp(p, "gate", 4) == 0 ? "w1" : strncmp(p, "down", 4) == 0 ? "w2" : "w3";
        char nm[160];
        float *v = NULL;
        uint64_t per = 0;
        for (int e = 0; e < NE; e++) {
            snprintf(nm, sizeof nm, "model.layers.%d.block_sparse_moe.experts.%d.%s.weight", L, e, w);
            fx *x = fx_find(hf, nm);
            if (!x) return 1;
            if (!v) { per = x->n; v = malloc(per * NE * sizeof *v); }
            memcpy(v + e * per, x->v, per * sizeof *v);
        }
        *out = v;
        *n = per * NE;
        return 2; /* caller frees */
    }
    return 1;
}

static int is_norm(const char *n)
{
    size_t l = strlen(n);
    return l > 11 && strcmp(n + l - 11, "norm.weight") == 0;
}

static void compare(const mc_model *m, fxm *hf, const spec *s, const char *const *want, size_t nwant,
                    const char *label)
{
    CHECKF(m->n_tensors == nwant, "%s: %zu tensors, mlx-lm has %zu", label, m->n_tensors, nwant);
    for (size_t i = 0; i < nwant; i++) CHECKF(mc_model_find(m, want[i]) != NULL, "%s: %s missing", label, want[i]);
    size_t exact = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        float *e = NULL;
        uint64_t n = 0;
        int k = expected(hf, t->name, s, &e, &n);
        CHECKF(k != 1, "%s: no source for %s", label, t->name);
        if (k == 1) continue;
        CHECKF(n == mc_test_mt_nelem(t), "%s: %s size", label, t->name);
        float *v = mc_test_model_read_all(m, t);
        uint64_t bad = 0;
        int gem = s->gemma && m->kind == MC_SRC_GGUF && is_norm(t->name);
        for (uint64_t j = 0; v && j < n; j++) {
            if (gem) {
                float u = nextafterf(fabsf(e[j]) + 1.0f, INFINITY) - (fabsf(e[j]) + 1.0f);
                bad += fabsf(v[j] - e[j]) > u;
            } else {
                bad += mc_f32_bits(v[j]) != mc_f32_bits(e[j]);
            }
        }
        CHECKF(v && bad == 0, "%s: %s: %llu values differ", label, t->name, (unsigned long long)bad);
        exact += v && bad == 0;
        free(v);
        if (k == 2) free(e);
    }
    printf("%s: %zu/%zu tensors as expected\n", label, exact, m->n_tensors);
}

static void expected_names(fxm *hf, const spec *s, char ***out, size_t *n)
{
    char **w = calloc(hf->n + 16, sizeof *w);
    size_t k = 0;
    for (size_t i = 0; i < hf->n; i++) {
        if (strstr(hf->t[i].name, ".experts.")) continue;
        w[k++] = strdup(hf->t[i].name);
    }
    if (s->moe)
        for (int L = 0; L < NL; L++)
            for (int j = 0; j < 3; j++) {
                char nm[160];
                static const char *const p[] = {"gate_proj", "up_proj", "down_proj"};
                snprintf(nm, sizeof nm, "model.layers.%d.block_sparse_moe.switch_mlp.%s.weight", L, p[j]);
                w[k++] = strdup(nm);
            }
    *out = w;
    *n = k;
}

static void check_cfg(const mc_model *m, const char *label, const spec *s)
{
    static const char *const keys[] = {"hidden_size", "num_hidden_layers", "intermediate_size",
                                       "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
                                       "rms_norm_eps", "rope_theta"};
    static const double vals[] = {HID, NL, FF, NH, NKV, HD, VOC, 1e-6, 10000.0};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->config, keys[i]);
        CHECKF(cJSON_IsNumber(v) && v->valuedouble == vals[i], "%s: config %s", label, keys[i]);
    }
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(m->config, "tie_word_embeddings");
    CHECKF(cJSON_IsBool(tie) && cJSON_IsTrue(tie) == (s->tied || s->gemma), "%s: tie_word_embeddings", label);
    if (s->moe) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(m->config, "num_local_experts");
        CHECKF(cJSON_IsNumber(e) && e->valuedouble == NE, "%s: num_local_experts", label);
    }
    if (s->phi3 && m->kind == MC_SRC_GGUF) {
        /* LongRoPE factors from the rope_factors_* tensors, as the fixture wrote them */
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(m->config, "rope_scaling");
        const cJSON *lf = cJSON_GetObjectItemCaseSensitive(rs, "long_factor");
        const cJSON *sf = cJSON_GetObjectItemCaseSensitive(rs, "short_factor");
        CHECKF(cJSON_IsArray(lf) && cJSON_GetArraySize(lf) == HD / 2 && cJSON_IsArray(sf), "%s: longrope", label);
        for (int i = 0; cJSON_IsArray(lf) && i < cJSON_GetArraySize(lf); i++)
            CHECK((float)cJSON_GetArrayItem(lf, i)->valuedouble == 1.0f + (float)i * 0.37f);
        for (int i = 0; cJSON_IsArray(sf) && i < cJSON_GetArraySize(sf); i++)
            CHECK((float)cJSON_GetArrayItem(sf, i)->valuedouble == 1.0f + (float)i * 0.011f);
        CHECK(m->n_notices == 0);
    }
    if (s->gemma) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m->config, "final_logit_softcapping");
        CHECKF(cJSON_IsNumber(c) && c->valuedouble == 30.0, "%s: final_logit_softcapping", label);
    }
}

static void run_case(const spec *s, const char *tag)
{
    fxm *hf = calloc(1, sizeof *hf);
    build_hf(hf, s);
    char dir[600], st[700], gg[700], label[128];
    snprintf(dir, sizeof dir, "%s/%s", mc_test_tmpdir(), tag);
    mkdir(dir, 0755);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(gg, sizeof gg, "%s/%s.gguf", mc_test_tmpdir(), tag);
    write_st(st, hf, NULL, NULL);
    write_config(dir, s, s->moe ? "\"num_local_experts\": 3, \"num_experts_per_tok\": 2" :
                         s->gemma ? "\"final_logit_softcapping\": 30.0, \"attn_logit_softcapping\": 50.0, \"query_pre_attn_scalar\": 16" : NULL);
    CHECK(write_gguf(gg, hf, s) == 0);
    char **want;
    size_t nwant;
    expected_names(hf, s, &want, &nwant);
    /* gemma2.py has no lm_head; tied lm_head dropped */
    mc_model *a = open_m(dir), *b = open_m(gg);
    CHECKF(a && b, "%s: open", tag);
    if (a) {
        snprintf(label, sizeof label, "%s hf", tag);
        compare(a, hf, s, (const char *const *)want, nwant, label);
        check_cfg(a, label, s);
        CHECK_STR(a->model_type, s->hf_type);
    }
    if (b) {
        snprintf(label, sizeof label, "%s gguf", tag);
        compare(b, hf, s, (const char *const *)want, nwant, label);
        check_cfg(b, label, s);
    }
    mc_convert_close(a);
    mc_convert_close(b);
    for (size_t i = 0; i < nwant; i++) free(want[i]);
    free(want);
    fx_free(hf);
    free(hf);
}

/* ----------------------------------------------------- F8 and MLX */

static float e4m3(uint8_t b)
{
    int s = b >> 7, e = (b >> 3) & 15, mt = b & 7;
    float v = e == 0 ? ldexpf((float)mt / 8.0f, -6) : ldexpf(1.0f + (float)mt / 8.0f, e - 7);
    return s ? -v : v;
}

static void test_f8(void)
{
    /* qwen3 checkpoint with F8 E4M3 projection weights and 64x64 block scales:
     * FF = 96 rows make a partial last block (shapes alone would suggest 48) */
    enum { FB = 64 };
    spec s = {"qwen3", "qwen3", 0, 0, 0, 0, 0, 0, 0, 0};
    fxm *m = calloc(1, sizeof *m);
    char n[160];
    add(m, "model.embed_tokens.weight", 2, VOC, HID, 0);
    add(m, "model.norm.weight", 1, HID, 0, 0);
    add(m, "lm_head.weight", 2, VOC, HID, 0);
    for (int L = 0; L < NL; L++) {
        static const char *const nm[] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                                         "self_attn.q_norm.weight", "self_attn.k_norm.weight"};
        static const uint64_t nn[] = {HID, HID, HD, HD};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", L, nm[i]);
            add(m, n, 1, nn[i], 0, 0);
        }
        static const char *const pr[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                         "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        static const uint64_t rows[] = {NH * HD, NKV * HD, NKV * HD, HID, FF, FF, HID};
        static const uint64_t cols[] = {HID, HID, HID, NH * HD, HID, HID, FF};
        for (int i = 0; i < 7; i++) {
            snprintf(n, sizeof n, "model.layers.%d.%s.weight", L, pr[i]);
            add(m, n, 2, rows[i], cols[i], 0);
            snprintf(n, sizeof n, "model.layers.%d.%s.weight_scale_inv", L, pr[i]);
            add(m, n, 2, (rows[i] + FB - 1) / FB, (cols[i] + FB - 1) / FB, 0);
        }
    }
    const char **dt = calloc(m->n, sizeof *dt);
    unsigned char **raw = calloc(m->n, sizeof *raw);
    for (size_t i = 0; i < m->n; i++) {
        fx *t = &m->t[i];
        if (strstr(t->name, "_scale_inv")) {
            dt[i] = "F32";
            for (uint64_t k = 0; k < t->n; k++) t->v[k] = ldexpf(1.0f + t->v[k], -3); /* positive scales */
        } else if (strstr(t->name, "_proj.weight")) {
            dt[i] = "F8_E4M3";
            raw[i] = malloc(t->n);
            for (uint64_t k = 0; k < t->n; k++) {
                uint8_t b = (uint8_t)(rnd() * 127.0f + 128.0f);
                if ((b & 0x7f) == 0x7f) b ^= 1; /* no NaN */
                raw[i][k] = b;
            }
        }
    }
    char dir[600], st[700];
    snprintf(dir, sizeof dir, "%s/f8", mc_test_tmpdir());
    mkdir(dir, 0755);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    write_st(st, m, dt, raw);
    write_config(dir, &s, "\"quantization_config\": {\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}");
    mc_model *mm = open_m(dir);
    CHECK(mm != NULL);
    size_t checked = 0;
    for (size_t i = 0; mm && i < m->n; i++) {
        fx *t = &m->t[i];
        if (!raw[i]) continue;
        char sn[200];
        snprintf(sn, sizeof sn, "%s_scale_inv", t->name);
        fx *sc = fx_find(m, sn);
        const mc_mtensor *o = mc_model_find(mm, t->name);
        CHECKF(o != NULL, "f8: %s missing", t->name);
        if (!o) continue;
        float *v = mc_test_model_read_all(mm, o);
        uint64_t bad = 0, cols = t->sh[1];
        for (uint64_t k = 0; v && k < t->n; k++) {
            uint64_t r = k / cols, c = k % cols;
            float want = e4m3(raw[i][k]) * sc->v[(r / FB) * sc->sh[1] + c / FB];
            bad += mc_f32_bits(v[k]) != mc_f32_bits(want);
        }
        CHECKF(v && bad == 0, "f8: %s: %llu values differ", t->name, (unsigned long long)bad);
        checked++;
        free(v);
    }
    CHECK_EQ_U64(checked, 14);
    if (mm) {
        CHECK(mc_model_find(mm, "model.layers.0.self_attn.q_proj.weight_scale_inv") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(mm->config, "quantization_config") == NULL);
        CHECK_EQ_U64(mm->n_tensors, 3 + NL * 11);
        printf("f8 e4m3 + 64x64 block scales (partial blocks): %zu weights exact\n", checked);
    }
    mc_convert_close(mm);
    for (size_t i = 0; i < m->n; i++) free(raw[i]);
    free(raw);
    free(dt);
    fx_free(m);
    free(m);
}

static void test_mlx(void)
{
    /* MLX-quantized qwen3 folder: 4-bit, group 32; layer 0 q_proj at 8 bits */
    spec s = {"qwen3", "qwen3", 1, 0, 0, 0, 0, 0, 0, 0};
    fxm *m = calloc(1, sizeof *m);
    char n[160];
    add(m, "model.embed_tokens.weight", 2, VOC, HID * 4 / 32, 0);
    add(m, "model.embed_tokens.scales", 2, VOC, HID / 32, 0);
    add(m, "model.embed_tokens.biases", 2, VOC, HID / 32, 0);
    add(m, "model.norm.weight", 1, HID, 0, 0);
    for (int L = 0; L < NL; L++) {
        static const char *const nm[] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                                         "self_attn.q_norm.weight", "self_attn.k_norm.weight"};
        static const uint64_t nn[] = {HID, HID, HD, HD};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", L, nm[i]);
            add(m, n, 1, nn[i], 0, 0);
        }
        static const char *const pr[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                         "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        static const uint64_t rows[] = {NH * HD, NKV * HD, NKV * HD, HID, FF, FF, HID};
        static const uint64_t cols[] = {HID, HID, HID, NH * HD, HID, HID, FF};
        for (int i = 0; i < 7; i++) {
            int bits = (L == 0 && i == 0) ? 8 : 4;
            snprintf(n, sizeof n, "model.layers.%d.%s.weight", L, pr[i]);
            add(m, n, 2, rows[i], cols[i] * (uint64_t)bits / 32, 0);
            snprintf(n, sizeof n, "model.layers.%d.%s.scales", L, pr[i]);
            add(m, n, 2, rows[i], cols[i] / 32, 0);
            snprintf(n, sizeof n, "model.layers.%d.%s.biases", L, pr[i]);
            add(m, n, 2, rows[i], cols[i] / 32, 0);
        }
    }
    const char **dt = calloc(m->n, sizeof *dt);
    unsigned char **raw = calloc(m->n, sizeof *raw);
    for (size_t i = 0; i < m->n; i++) {
        size_t l = strlen(m->t[i].name);
        if (l > 7 && strcmp(m->t[i].name + l - 7, ".weight") == 0 && m->t[i].nd == 2) {
            dt[i] = "U32";
            raw[i] = malloc(m->t[i].n * 4);
            /* rnd() * 1000 is in [-500, 500): convert to int (in range), then wrap mod 256 */
            for (uint64_t k = 0; k < m->t[i].n * 4; k++) raw[i][k] = (unsigned char)(int)(rnd() * 1000.0f);
        }
    }
    char dir[600], st[700];
    snprintf(dir, sizeof dir, "%s/mlx", mc_test_tmpdir());
    mkdir(dir, 0755);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    write_st(st, m, dt, raw);
    write_config(dir, &s,
                 "\"quantization\": {\"group_size\": 32, \"bits\": 4, \"model.layers.0.self_attn.q_proj\": "
                 "{\"group_size\": 32, \"bits\": 8}}");
    snprintf(st, sizeof st, "%s/tokenizer.json", dir);
    write_text(st, "{}");
    mc_model *mm = open_m(dir);
    CHECK(mm != NULL);
    if (mm) {
        CHECK_EQ_U64(mm->n_tensors, m->n);
        CHECK(mm->mlx_bits == 4 && mm->mlx_group_size == 32);
        size_t pass = 0;
        mc_error err = {0};
        for (size_t i = 0; i < m->n; i++) {
            fx *t = &m->t[i];
            const mc_mtensor *o = mc_model_find(mm, t->name);
            CHECKF(o != NULL, "mlx: %s missing", t->name);
            if (!o) continue;
            CHECK_EQ_U64(o->shape[0], t->sh[0]);
            if (t->nd == 1) { CHECK(!o->passthrough); continue; }
            CHECKF(o->passthrough, "mlx: %s not passthrough", t->name);
            CHECK(o->stored_type == (raw[i] ? MC_T_U32 : MC_T_BF16));
            int want_bits = strstr(t->name, "layers.0.self_attn.q_proj") ? 8 : 4;
            CHECKF(o->quant_bits == want_bits, "mlx: %s bits %d", t->name, o->quant_bits);
            size_t nb = raw[i] ? t->n * 4 : t->n * 2;
            unsigned char *b = malloc(nb), *want = malloc(nb);
            if (raw[i]) memcpy(want, raw[i], nb);
            else
                for (uint64_t k = 0; k < t->n; k++) {
                    uint16_t h = mc_f32_to_bf16(t->v[k]);
                    memcpy(want + 2 * k, &h, 2);
                }
            /* two reads, second from an odd offset */
            CHECK(mc_model_read_raw(mm, o, 0, b, 3, &err) == 0 &&
                  mc_model_read_raw(mm, o, 3, b + 3, nb - 3, &err) == 0 && memcmp(b, want, nb) == 0);
            pass++;
            free(b);
            free(want);
        }
        printf("mlx 4-bit folder: %zu tensors passed through byte-exact\n", pass);
        CHECK(cJSON_GetObjectItemCaseSensitive(mm->config, "quantization") != NULL);
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(mm->tokenizer, "files");
        CHECK(cJSON_IsArray(files) && cJSON_GetArraySize(files) == 1);
    }
    mc_convert_close(mm);
    for (size_t i = 0; i < m->n; i++) free(raw[i]);
    free(raw);
    free(dt);
    fx_free(m);
    free(m);
}

/* Llama 3.1-style RoPE scaling: llama.cpp keeps only rope_freqs; the
 * parameters come back (low_freq_factor fixed at 1). Factors computed as
 * convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors does. */
static void test_llama3_rope(void)
{
    const double factor = 8.0, low = 1.0, high = 16.0, old = 2048.0, theta = 10000.0;
    float rf[HD / 2];
    for (int i = 0; i < HD / 2; i++) {
        double freq = 1.0 / pow(theta, (double)(2 * i) / HD), wl = 2 * 3.14159265358979323846 / freq;
        if (wl < old / high) rf[i] = 1.0f;
        else if (wl > old / low) rf[i] = (float)factor;
        else {
            double sm = (old / wl - low) / (high - low);
            rf[i] = (float)(1.0 / ((1.0 - sm) / factor + sm));
        }
    }
    spec s = {"llama", "llama", 0, 0, 0, 0, 0, 0, 1, 0};
    fxm *m = calloc(1, sizeof *m);
    build_hf(m, &s);
    char p[700];
    snprintf(p, sizeof p, "%s/llama3rope.gguf", mc_test_tmpdir());
    g_rope_freqs = rf;
    g_n_rope_freqs = HD / 2;
    CHECK(write_gguf(p, m, &s) == 0);
    g_rope_freqs = NULL;
    mc_model *mm = open_m(p);
    CHECK(mm != NULL);
    if (mm) {
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(mm->config, "rope_scaling");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        CHECK(cJSON_IsString(ty) && strcmp(ty->valuestring, "llama3") == 0);
        static const char *const k[] = {"factor", "low_freq_factor", "high_freq_factor",
                                        "original_max_position_embeddings"};
        const double want[] = {factor, low, high, old};
        for (int i = 0; i < 4; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(rs, k[i]);
            CHECKF(cJSON_IsNumber(v) && fabs(v->valuedouble - want[i]) < 1e-6 * want[i], "llama3 rope %s = %g",
                   k[i], cJSON_IsNumber(v) ? v->valuedouble : -1.0);
        }
        CHECKF(mm->n_notices == 0, "notice: %s", mm->n_notices ? mm->notices[0] : "");
        char *txt = cJSON_PrintUnformatted(rs);
        printf("llama3 rope_freqs -> rope_scaling: %s\n", txt ? txt : "?");
        free(txt);
    }
    mc_convert_close(mm);
    fx_free(m);
    free(m);
}

/* A multimodal wrapper (llava-style): text_config hoisted, the
 * language_model prefixes stripped, vision tensors left out with notices. */
static void test_wrapper(void)
{
    spec s = {"llama", "llama", 0, 0, 0, 0, 0, 0, 1, 0};
    fxm *m = calloc(1, sizeof *m);
    build_hf(m, &s);
    size_t ntext = m->n;
    for (size_t i = 0; i < ntext; i++) {
        char nm[200];
        const char *n = m->t[i].name;
        if (strncmp(n, "model.", 6) == 0) snprintf(nm, sizeof nm, "language_model.model.%s", n + 6);
        else snprintf(nm, sizeof nm, "language_model.%s", n);
        snprintf(m->t[i].name, sizeof m->t[i].name, "%.159s", nm);
    }
    add(m, "vision_tower.patch_embed.weight", 2, 8, 8, 0);
    add(m, "multi_modal_projector.linear.weight", 2, 8, 8, 0);
    char dir[600], p[700], cfg[1024];
    snprintf(dir, sizeof dir, "%s/wrapper", mc_test_tmpdir());
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, m, NULL, NULL);
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"llava\", \"vision_config\": {\"hidden_size\": 8}, \"text_config\": {"
             "\"model_type\": \"llama\", \"hidden_size\": %d, \"num_hidden_layers\": %d, \"intermediate_size\": %d,"
             " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d, \"rms_norm_eps\": 1e-06,"
             " \"vocab_size\": %d, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false}}",
             HID, NL, FF, NH, NKV, HD, VOC);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, cfg);
    mc_model *mm = open_m(dir);
    CHECK(mm != NULL);
    if (mm) {
        CHECK_EQ_U64(mm->n_tensors, ntext);
        CHECK_STR(mm->model_type, "llama");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(mm->config, "hidden_size");
        CHECK(cJSON_IsNumber(h) && h->valuedouble == HID);
        CHECK(cJSON_GetObjectItemCaseSensitive(mm->config, "text_config") == NULL);
        size_t same = 0;
        for (size_t i = 0; i < ntext; i++) {
            const char *mlx = m->t[i].name + 15; /* strlen("language_model.") */
            const mc_mtensor *t = mc_model_find(mm, mlx);
            CHECKF(t != NULL, "wrapper: %s missing", mlx);
            float *v = t ? mc_test_model_read_all(mm, t) : NULL;
            if (v && memcmp(v, m->t[i].v, m->t[i].n * sizeof(float)) == 0) same++;
            free(v);
        }
        CHECK_EQ_U64(same, ntext);
        CHECKF(mm->n_notices == 2 && strstr(mm->notices[0], "multi_modal_projector") &&
               strstr(mm->notices[1], "vision_tower"), "wrapper notices: %zu", mm->n_notices);
        printf("llava wrapper: %zu text tensors mapped; notice: %s\n", same, mm->n_notices ? mm->notices[0] : "");
    }
    mc_convert_close(mm);
    fx_free(m);
    free(m);
}

static void test_refusals(void)
{
    /* unknown HF model_type: refused with the supported list */
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/unknown", mc_test_tmpdir());
    mkdir(dir, 0755);
    fxm *m = calloc(1, sizeof *m);
    add(m, "x.weight", 2, 4, 4, 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, m, NULL, NULL);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, "{\"model_type\": \"rwkv9\", \"num_hidden_layers\": 1}");
    mc_model *mm = NULL;
    mc_error err = {0};
    CHECK(mc_convert_open(dir, NULL, &mm, &err) == MC_ERR_UNSUPPORTED && !mm);
    CHECKF(strstr(err.msg, "rwkv9") && strstr(err.msg, mc_convert_supported_archs()), "%s", err.msg);
    mc_convert_opts keep = {1, 1};
    CHECK(mc_convert_open(dir, &keep, &mm, &err) == 0 && mm && mm->n_tensors == 1 &&
          mc_model_find(mm, "x.weight"));
    mc_convert_close(mm);
    fx_free(m);

    /* missing tensor: a llama GGUF without layer 1's attn_k */
    spec s = {"llama", "llama", 0, 0, 0, 0, 0, 0, 1, 0};
    build_hf(m, &s);
    fx *k = fx_find(m, "model.layers.1.self_attn.k_proj.weight");
    snprintf(k->name, sizeof k->name, "model.layers.1.self_attn.k_proj.bias_renamed");
    snprintf(p, sizeof p, "%s/missing.gguf", mc_test_tmpdir());
    /* write_gguf maps ".bias_renamed" through attn_k with that suffix */
    CHECK(write_gguf(p, m, &s) == 0);
    mm = NULL;
    mc_error_clear(&err);
    CHECK(mc_convert_open(p, NULL, &mm, &err) == MC_ERR_NOTFOUND && !mm);
    CHECKF(strstr(err.msg, "blk.1.attn_k.weight") != NULL, "%s", err.msg);
    printf("missing tensor: %s\n", err.msg);
    fx_free(m);

    /* Q rows that are not head_count * key_length: refused naming the tensor and numbers */
    build_hf(m, &s);
    fx *q = fx_find(m, "model.layers.0.self_attn.q_proj.weight");
    q->sh[0] = NH * HD - 8; /* 56 rows: still even heads of 14 for the fixture's permute */
    q->n = q->sh[0] * q->sh[1];
    snprintf(p, sizeof p, "%s/badq.gguf", mc_test_tmpdir());
    CHECK(write_gguf(p, m, &s) == 0);
    mm = NULL;
    mc_error_clear(&err);
    CHECK(mc_convert_open(p, NULL, &mm, &err) == MC_ERR_FORMAT && !mm);
    CHECKF(strstr(err.msg, "blk.0.attn_q.weight") && strstr(err.msg, "56 rows"), "%s", err.msg);
    printf("bad q shape: %s\n", err.msg);
    fx_free(m);
    free(m);
}

/* Gemma query_pre_attn_scalar from a GGUF (which does not carry it):
 * llama.cpp's rule, head_dim except for the 27B models it recognises by
 * block_count (gemma2 46, gemma3 62), which get n_embd / n_head. A shape-only
 * fixture: every tensor the rules need, zeros, tiny widths chosen so the two
 * values differ (hidden 24, 2 heads of 4: 12 vs 4). */
static int write_gemma_shape_gguf(const char *path, const char *arch, uint32_t layers)
{
    enum { H = 24, NHd = 2, HDd = 4, F = 8, V = 8 };
    mc_gguf_writer *w = NULL;
    mc_error err = {0};
    char key[128], name[96];
    int g3 = strcmp(arch, "gemma3") == 0;
    static const char *const lt[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "post_attention_norm",
                                     "ffn_norm", "post_ffw_norm", "ffn_gate", "ffn_up", "ffn_down", "attn_q_norm",
                                     "attn_k_norm"};
    /* [in, out] of each (out 0: 1-D) */
    static const uint64_t ltne[][2] = {{H, 0}, {H, NHd * HDd}, {H, HDd}, {H, HDd}, {NHd * HDd, H}, {H, 0},
                                       {H, 0}, {H, 0}, {H, F}, {H, F}, {F, H}, {HDd, 0}, {HDd, 0}};
    size_t nlt = g3 ? 13 : 11;
    int rc = mc_gguf_writer_create(&w, path, NULL, &err);
#define K(suf) (snprintf(key, sizeof key, "%s." suf, arch), key)
    rc = rc ? rc : mc_gguf_writer_add_str(w, "general.architecture", arch, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("block_count"), layers, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("context_length"), 512, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("embedding_length"), H, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("feed_forward_length"), F, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.head_count"), NHd, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.head_count_kv"), 1, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.key_length"), HDd, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.value_length"), HDd, &err);
    rc = rc ? rc : mc_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-6f, &err);
    rc = rc ? rc : mc_gguf_writer_add_u32(w, K("attention.sliding_window"), 64, &err);
#undef K
    const char *toks[V] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    rc = rc ? rc : mc_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &err);
    rc = rc ? rc : mc_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, V, &err);
    uint64_t emb[2] = {H, V}, nrm[1] = {H};
    rc = rc ? rc : mc_gguf_writer_add_tensor(w, "token_embd.weight", MC_T_F32, 2, emb, &err);
    rc = rc ? rc : mc_gguf_writer_add_tensor(w, "output_norm.weight", MC_T_F32, 1, nrm, &err);
    for (uint32_t L = 0; L < layers && !rc; L++)
        for (size_t i = 0; i < nlt && !rc; i++) {
            snprintf(name, sizeof name, "blk.%u.%s.weight", L, lt[i]);
            rc = mc_gguf_writer_add_tensor(w, name, MC_T_F32, ltne[i][1] ? 2 : 1, ltne[i], &err);
        }
    static const float zeros[H * V];
    rc = rc ? rc : mc_gguf_writer_write(w, zeros, sizeof(float) * H * V, &err);
    rc = rc ? rc : mc_gguf_writer_write(w, zeros, sizeof(float) * H, &err);
    for (uint32_t L = 0; L < layers && !rc; L++)
        for (size_t i = 0; i < nlt && !rc; i++)
            rc = mc_gguf_writer_write(w, zeros, sizeof(float) * ltne[i][0] * (ltne[i][1] ? ltne[i][1] : 1), &err);
    rc = rc ? rc : mc_gguf_writer_commit(w, &err);
    if (rc) {
        fprintf(stderr, "fixture gguf %s: %s\n", path, err.msg);
        if (w) mc_gguf_writer_abort(w);
    }
    return rc;
}

static void test_gemma_attn_scalar(void)
{
    static const struct { const char *arch; uint32_t layers; double want; } cases[] = {
        {"gemma3", 62, 12}, {"gemma3", 26, 4}, {"gemma3", 61, 4}, {"gemma3", 46, 4},
        {"gemma2", 46, 12}, {"gemma2", 42, 4}, {"gemma2", 62, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s-%u-layers.gguf", mc_test_tmpdir(), cases[i].arch, cases[i].layers);
        CHECK(write_gemma_shape_gguf(p, cases[i].arch, cases[i].layers) == 0);
        mc_model *m = open_m(p);
        CHECKF(m != NULL, "%s", p);
        if (!m) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->config, "query_pre_attn_scalar");
        CHECKF(cJSON_IsNumber(v) && v->valuedouble == cases[i].want, "%s %u layers: query_pre_attn_scalar %g, want %g",
               cases[i].arch, cases[i].layers, cJSON_IsNumber(v) ? v->valuedouble : -1.0, cases[i].want);
        const cJSON *hd = cJSON_GetObjectItemCaseSensitive(m->config, "head_dim");
        CHECK(cJSON_IsNumber(hd) && hd->valuedouble == 4);
        printf("%s %u layers: query_pre_attn_scalar %g\n", cases[i].arch, cases[i].layers,
               cJSON_IsNumber(v) ? v->valuedouble : -1.0);
        mc_convert_close(m);
    }
}

int main(void)
{
    /* name, GGUF arch, HF model_type, tied, qkv bias, o bias, gemma, fused qkv, moe, permute */
    static const struct { const char *tag; spec s; } cases[] = {
        {"mistral", {"llama", "mistral", 0, 0, 0, 0, 0, 0, 1, 0}},
        {"qwen2", {"qwen2", "qwen2", 1, 1, 0, 0, 0, 0, 0, 0}},
        {"gemma2", {"gemma2", "gemma2", 1, 0, 0, 1, 0, 0, 0, 0}},
        {"llama-fused-qkv", {"llama", "llama", 0, 0, 0, 0, 1, 0, 1, 0}},
        {"llama-bias-tied", {"llama", "llama", 1, 1, 1, 0, 0, 0, 1, 0}},
        {"mixtral-per-expert", {"llama", "mixtral", 0, 0, 0, 0, 0, 1, 1, 0}},
        {"phi3-longrope", {"phi3", "phi3", 0, 0, 0, 0, 0, 0, 0, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i].s, cases[i].tag);
    test_f8();
    test_mlx();
    test_llama3_rope();
    test_wrapper();
    test_refusals();
    test_gemma_attn_scalar();
    return mc_test_finish("test_convert_fixtures");
}
