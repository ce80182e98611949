/* Fixtures of the qwen3.5 family (qwen3_5 dense, qwen3_5_moe, qwen3_next)
 * in Hugging Face form, and their GGUF twins made the way llama.cpp's
 * convert_hf_to_gguf.py makes them (names mapped, V heads reordered, norms
 * + 1, ssm_a = -exp(A_log), dims reversed), from a config.json such as
 * testdata/arch_fixtures/qwen3_5.json. Moved unchanged from
 * tests/test_convert_mla_gdn.c (names kept) so that tests/test_maccode.c
 * builds the same fixtures; "llama.cpp's forward transforms" are written
 * from conversion/qwen.py independently of mconv. */
#include "mc_test_qwen35.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_float.h"
#include "mc_types.h"

/* The converter's _reorder_v_heads along one axis of n = nk*r*hd entries:
 * view as [nk, r, hd], swap the first two. dst[(i*nk + k)*hd + d] =
 * src[(k*r + i)*hd + d]. Written from conversion/qwen.py. */
uint64_t fwd_pos(uint64_t nk, uint64_t r, uint64_t hd, uint64_t hf_pos)
{
    uint64_t d = hf_pos % hd, head = hf_pos / hd, k = head / r, i = head % r;
    return (i * nk + k) * hd + d;
}



int q35_geom_of(const cJSON *c, q35_geom *g)
{
    const char *k[] = {"linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                       "linear_value_head_dim", "linear_conv_kernel_dim"};
    uint64_t *o[] = {&g->nk, &g->nv, &g->dk, &g->dv, &g->kernel};
    for (int i = 0; i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k[i]);
        if (!cJSON_IsNumber(v)) return 1;
        *o[i] = (uint64_t)v->valuedouble;
    }
    return 0;
}




uint64_t fnel(const ftensor *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->nd; d++) n *= t->shape[d];
    return n;
}

static size_t fesz(int type)
{
    return type == MC_T_F32 ? 4 : type == MC_T_F8_E4M3 ? 1 : 2;
}

ftensor *fadd(flist *l, const char *name, int type, uint32_t nd, const uint64_t *shape)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        ftensor *nt = realloc(l->t, nc * sizeof *nt);
        if (!nt) return NULL;
        l->t = nt;
        l->cap = nc;
    }
    ftensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%.*s", (int)(sizeof t->name - 1), name); /* bounded: -Wformat-truncation at -O3 */
    t->type = type;
    t->nd = nd;
    memcpy(t->shape, shape, nd * sizeof *shape);
    t->data = calloc(fnel(t), fesz(type));
    if (!t->data) return NULL;
    l->n++;
    return t;
}

void ffree(flist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->t[i].data);
    free(l->t);
    memset(l, 0, sizeof *l);
}

const ftensor *ffind(const flist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return &l->t[i];
    return NULL;
}

float fget(const ftensor *t, uint64_t i)
{
    return t->type == MC_T_F32 ? ((const float *)t->data)[i] : mc_bf16_to_f32(((const uint16_t *)t->data)[i]);
}

void fset(ftensor *t, uint64_t i, float v)
{
    if (t->type == MC_T_F32) ((float *)t->data)[i] = v;
    else ((uint16_t *)t->data)[i] = mc_f32_to_bf16(v);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
double rnd(void) /* uniform [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* HF-form bf16 tensor with values a + b * u, u uniform in [-1, 1). */
int hf_rand(flist *l, const char *name, uint32_t nd, const uint64_t *shape, double a, double b)
{
    ftensor *t = fadd(l, name, MC_T_BF16, nd, shape);
    if (!t) return 1;
    for (uint64_t i = 0; i < fnel(t); i++) fset(t, i, (float)(a + b * (2 * rnd() - 1)));
    return 0;
}

/* Minimal safetensors writer (header padded with spaces to 8 bytes). */
int write_st(const flist *l, const char *path)
{
    cJSON *h = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ftensor *t = &l->t[i];
        cJSON *o = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(o, "dtype", t->type == MC_T_F32 ? "F32" : t->type == MC_T_F8_E4M3 ? "F8_E4M3" : "BF16");
        cJSON *s = cJSON_AddArrayToObject(o, "shape");
        for (uint32_t d = 0; d < t->nd; d++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)t->shape[d]));
        uint64_t nb = fnel(t) * fesz(t->type);
        cJSON *dof = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(dof, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(dof, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return 1;
    size_t jl = strlen(js), pad = (8 - jl % 8) % 8;
    FILE *f = fopen(path, "wb");
    int rc = !f;
    if (f) {
        uint64_t hl = jl + pad;
        unsigned char le[8];
        for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
        rc |= fwrite(le, 1, 8, f) != 8 || fwrite(js, 1, jl, f) != jl;
        for (size_t i = 0; i < pad; i++) rc |= fputc(' ', f) == EOF;
        for (size_t i = 0; i < l->n; i++) {
            const ftensor *t = &l->t[i];
            size_t nb = (size_t)fnel(t) * fesz(t->type);
            rc |= fwrite(t->data, 1, nb, f) != nb;
        }
        rc |= fclose(f) != 0;
    }
    free(js);
    return rc;
}


int write_gguf(const flist *l, const char *path, meta_fn meta, void *ctx)
{
    mc_error err = {0};
    mc_gguf_writer *w = NULL;
    mc_gguf_write_opts o = {3, 32, 1, 0, 0, 0};
    if (mc_gguf_writer_create(&w, path, &o, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int rc = meta(w, ctx, &err);
    for (size_t i = 0; i < l->n && !rc; i++) {
        const ftensor *t = &l->t[i];
        uint64_t ne[4];
        for (uint32_t d = 0; d < t->nd; d++) ne[d] = t->shape[t->nd - 1 - d];
        rc = mc_gguf_writer_add_tensor(w, t->name, t->type, t->nd, ne, &err);
    }
    for (size_t i = 0; i < l->n && !rc; i++) {
        const ftensor *t = &l->t[i];
        rc = mc_gguf_writer_write(w, t->data, (size_t)fnel(t) * (t->type == MC_T_F32 ? 4 : 2), &err);
    }
    if (rc) {
        fprintf(stderr, "write %s: %s\n", path, err.msg);
        mc_gguf_writer_abort(w);
        return 1;
    }
    if (mc_gguf_writer_commit(w, &err)) { fprintf(stderr, "commit %s: %s\n", path, err.msg); return 1; }
    return 0;
}

/* ------------------------------------------- qwen3_5 / qwen3_next fixtures */


static double jnum(const cJSON *c, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int qcfg_read(const cJSON *c, qcfg *q)
{
    memset(q, 0, sizeof *q);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    if (!cJSON_IsString(mt)) return 1;
    q->next = strcmp(mt->valuestring, "qwen3_next") == 0;
    q->H = (uint64_t)jnum(c, "hidden_size", 0);
    q->I = (uint64_t)jnum(c, "intermediate_size", 0);
    q->nh = (uint64_t)jnum(c, "num_attention_heads", 0);
    q->nkv = (uint64_t)jnum(c, "num_key_value_heads", 0);
    q->hd = (uint64_t)jnum(c, "head_dim", 0);
    q->L = (uint64_t)jnum(c, "num_hidden_layers", 0);
    q->iv = (uint64_t)jnum(c, "full_attention_interval", 4);
    q->V = (uint64_t)jnum(c, "vocab_size", 0);
    q->E = (uint64_t)jnum(c, "num_experts", 0);
    q->topk = (uint64_t)jnum(c, "num_experts_per_tok", 0);
    q->Im = (uint64_t)jnum(c, "moe_intermediate_size", 0);
    q->Is = (uint64_t)jnum(c, "shared_expert_intermediate_size", 0);
    q->ctx = (uint64_t)jnum(c, "max_position_embeddings", 0);
    q->eps = jnum(c, "rms_norm_eps", 1e-6);
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, "rope_parameters");
    q->theta = jnum(rp ? rp : c, "rope_theta", 10000);
    q->prf = jnum(rp ? rp : c, "partial_rotary_factor", 0.25);
    q->arch = q->next ? "qwen3next" : q->E ? "qwen35moe" : "qwen35";
    q->hf_prefix = q->next ? "model." : "model.language_model.";
    return q35_geom_of(c, &q->g) || !q->H || !q->L || !q->iv;
}

int q_linear(const qcfg *q, uint64_t l)
{
    return (l + 1) % q->iv != 0;
}

/* The HF-form checkpoint for the config (transformers' names, per-expert MoE). */
int make_hf(const qcfg *q, flist *l)
{
    const q35_geom *g = &q->g;
    uint64_t C = 2 * g->nk * g->dk + g->nv * g->dv, VD = g->nv * g->dv;
    char n[320], p[96];
    int bad = 0;
#define S1(a) ((uint64_t[]){a})
#define S2(a, b) ((uint64_t[]){a, b})
#define S3(a, b, c) ((uint64_t[]){a, b, c})
    snprintf(n, sizeof n, "%sembed_tokens.weight", q->hf_prefix);
    bad |= hf_rand(l, n, 2, S2(q->V, q->H), 0, 0.05);
    snprintf(n, sizeof n, "%snorm.weight", q->hf_prefix);
    bad |= hf_rand(l, n, 1, S1(q->H), 0, 0.1);
    bad |= hf_rand(l, "lm_head.weight", 2, S2(q->V, q->H), 0, 0.05);
    for (uint64_t L = 0; L < q->L; L++) {
        snprintf(p, sizeof p, "%slayers.%llu.", q->hf_prefix, (unsigned long long)L);
#define N(s) (snprintf(n, sizeof n, "%s%s", p, s), n)
        bad |= hf_rand(l, N("input_layernorm.weight"), 1, S1(q->H), 0, 0.1);
        bad |= hf_rand(l, N("post_attention_layernorm.weight"), 1, S1(q->H), 0, 0.1);
        if (q_linear(q, L)) {
            ftensor *a = fadd(l, N("linear_attn.A_log"), MC_T_BF16, 1, S1(g->nv));
            bad |= !a;
            for (uint64_t i = 0; a && i < g->nv; i++) fset(a, i, (float)log(1 + 15 * rnd())); /* A in [1, 16) */
            bad |= hf_rand(l, N("linear_attn.dt_bias"), 1, S1(g->nv), 0, 1);
            bad |= hf_rand(l, N("linear_attn.conv1d.weight"), 3, S3(C, 1, g->kernel), 0, 0.5);
            if (q->next) {
                bad |= hf_rand(l, N("linear_attn.in_proj_qkvz.weight"), 2, S2(C + VD, q->H), 0, 0.05);
                bad |= hf_rand(l, N("linear_attn.in_proj_ba.weight"), 2, S2(2 * g->nv, q->H), 0, 0.05);
            } else {
                bad |= hf_rand(l, N("linear_attn.in_proj_qkv.weight"), 2, S2(C, q->H), 0, 0.05);
                bad |= hf_rand(l, N("linear_attn.in_proj_z.weight"), 2, S2(VD, q->H), 0, 0.05);
                bad |= hf_rand(l, N("linear_attn.in_proj_b.weight"), 2, S2(g->nv, q->H), 0, 0.05);
                bad |= hf_rand(l, N("linear_attn.in_proj_a.weight"), 2, S2(g->nv, q->H), 0, 0.05);
            }
            bad |= hf_rand(l, N("linear_attn.norm.weight"), 1, S1(g->dv), 1, 0.1);
            bad |= hf_rand(l, N("linear_attn.out_proj.weight"), 2, S2(q->H, VD), 0, 0.05);
        } else {
            bad |= hf_rand(l, N("self_attn.q_proj.weight"), 2, S2(2 * q->nh * q->hd, q->H), 0, 0.05);
            bad |= hf_rand(l, N("self_attn.k_proj.weight"), 2, S2(q->nkv * q->hd, q->H), 0, 0.05);
            bad |= hf_rand(l, N("self_attn.v_proj.weight"), 2, S2(q->nkv * q->hd, q->H), 0, 0.05);
            bad |= hf_rand(l, N("self_attn.o_proj.weight"), 2, S2(q->H, q->nh * q->hd), 0, 0.05);
            bad |= hf_rand(l, N("self_attn.q_norm.weight"), 1, S1(q->hd), 0, 0.1);
            bad |= hf_rand(l, N("self_attn.k_norm.weight"), 1, S1(q->hd), 0, 0.1);
        }
        if (q->E) {
            bad |= hf_rand(l, N("mlp.gate.weight"), 2, S2(q->E, q->H), 0, 0.05);
            for (uint64_t e = 0; e < q->E; e++) {
                char en[96];
                snprintf(en, sizeof en, "mlp.experts.%llu.gate_proj.weight", (unsigned long long)e);
                bad |= hf_rand(l, N(en), 2, S2(q->Im, q->H), 0, 0.05);
                snprintf(en, sizeof en, "mlp.experts.%llu.up_proj.weight", (unsigned long long)e);
                bad |= hf_rand(l, N(en), 2, S2(q->Im, q->H), 0, 0.05);
                snprintf(en, sizeof en, "mlp.experts.%llu.down_proj.weight", (unsigned long long)e);
                bad |= hf_rand(l, N(en), 2, S2(q->H, q->Im), 0, 0.05);
            }
            bad |= hf_rand(l, N("mlp.shared_expert.gate_proj.weight"), 2, S2(q->Is, q->H), 0, 0.05);
            bad |= hf_rand(l, N("mlp.shared_expert.up_proj.weight"), 2, S2(q->Is, q->H), 0, 0.05);
            bad |= hf_rand(l, N("mlp.shared_expert.down_proj.weight"), 2, S2(q->H, q->Is), 0, 0.05);
            bad |= hf_rand(l, N("mlp.shared_expert_gate.weight"), 2, S2(1, q->H), 0, 0.05);
        } else {
            bad |= hf_rand(l, N("mlp.gate_proj.weight"), 2, S2(q->I, q->H), 0, 0.05);
            bad |= hf_rand(l, N("mlp.up_proj.weight"), 2, S2(q->I, q->H), 0, 0.05);
            bad |= hf_rand(l, N("mlp.down_proj.weight"), 2, S2(q->H, q->I), 0, 0.05);
        }
#undef N
    }
    if (q->mtp) { /* Qwen3.5's multi-token-prediction head (mlx-lm drops mtp.*) */
        bad |= hf_rand(l, "mtp.fc.weight", 2, S2(q->H, 2 * q->H), 0, 0.05);
        bad |= hf_rand(l, "mtp.norm.weight", 1, S1(q->H), 0, 0.1);
        bad |= hf_rand(l, "mtp.layers.0.input_layernorm.weight", 1, S1(q->H), 0, 0.1);
    }
    return bad;
}

/* llama.cpp's forward transforms (conversion/qwen.py: Qwen3NextModel,
 * _LinearAttentionVReorderBase), written here independently of mconv. */

/* dst rows = src rows, rows [off, off + nv*hd) moved to their tiled place. */
static void fwd_rows(ftensor *dst, const ftensor *src, uint64_t off, uint64_t hd, const q35_geom *g, int reorder)
{
    uint64_t rl = dst->shape[dst->nd - 1], rows = fnel(dst) / rl, r = g->nv / g->nk;
    for (uint64_t row = 0; row < rows; row++) {
        uint64_t to = row;
        if (reorder && row >= off && row < off + g->nv * hd) to = off + fwd_pos(g->nk, r, hd, row - off);
        for (uint64_t c = 0; c < rl; c++) fset(dst, to * rl + c, fget(src, row * rl + c));
    }
}

int hf_to_gguf(const qcfg *q, const flist *hf, flist *out, int legacy_ssm_in)
{
    const q35_geom *g = &q->g;
    int reorder = !q->next && g->nk != g->nv, bad = 0;
    uint64_t r = g->nv / g->nk, C = 2 * g->nk * g->dk, VD = g->nv * g->dv;
    size_t pl = strlen(q->hf_prefix);
    for (size_t i = 0; i < hf->n && !bad; i++) {
        const ftensor *t = &hf->t[i];
        if (strncmp(t->name, "mtp.", 4) == 0) continue; /* written as a nextn block below */
        const char *rest = strncmp(t->name, q->hf_prefix, pl) == 0 ? t->name + pl : t->name;
        char n[160];
        unsigned L = 0;
        int off = 0;
        ftensor *o = NULL;
        if (strcmp(t->name, "lm_head.weight") == 0) {
            o = fadd(out, "output.weight", MC_T_BF16, t->nd, t->shape);
            if (o) fwd_rows(o, t, 0, 1, g, 0);
        } else if (strcmp(rest, "embed_tokens.weight") == 0) {
            o = fadd(out, "token_embd.weight", MC_T_BF16, t->nd, t->shape);
            if (o) fwd_rows(o, t, 0, 1, g, 0);
        } else if (strcmp(rest, "norm.weight") == 0) {
            o = fadd(out, "output_norm.weight", MC_T_F32, t->nd, t->shape);
            for (uint64_t k = 0; o && k < fnel(t); k++) fset(o, k, fget(t, k) + 1.0f); /* data_torch + 1 */
        } else if (sscanf(rest, "layers.%u.%n", &L, &off) == 1 && off > 0) {
            const char *x = rest + off;
#define G(s) (snprintf(n, sizeof n, "blk.%u.%s", L, s), n)
            static const struct { const char *hf, *gg; int plus1; } same[] = {
                {"input_layernorm.weight", "attn_norm.weight", 1},
                {"post_attention_layernorm.weight", "post_attention_norm.weight", 1},
                {"self_attn.q_norm.weight", "attn_q_norm.weight", 1},
                {"self_attn.k_norm.weight", "attn_k_norm.weight", 1},
                {"linear_attn.norm.weight", "ssm_norm.weight", 0},
                {"self_attn.q_proj.weight", "attn_q.weight", -1},
                {"self_attn.k_proj.weight", "attn_k.weight", -1},
                {"self_attn.v_proj.weight", "attn_v.weight", -1},
                {"self_attn.o_proj.weight", "attn_output.weight", -1},
                {"linear_attn.in_proj_ba.weight", "ssm_ba.weight", -1},
                {"mlp.gate.weight", "ffn_gate_inp.weight", 2},
                {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight", 2},
                {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight", -1},
                {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight", -1},
                {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight", -1},
                {"mlp.gate_proj.weight", "ffn_gate.weight", -1},
                {"mlp.up_proj.weight", "ffn_up.weight", -1},
                {"mlp.down_proj.weight", "ffn_down.weight", -1},
            };
            size_t k;
            for (k = 0; k < sizeof same / sizeof same[0]; k++)
                if (strcmp(x, same[k].hf) == 0) break;
            if (k < sizeof same / sizeof same[0]) {
                /* 1-D tensors and routers are written in f32; +1 on the zero-centred norms */
                int f32 = same[k].plus1 >= 0;
                o = fadd(out, G(same[k].gg), f32 ? MC_T_F32 : MC_T_BF16, t->nd, t->shape);
                for (uint64_t e = 0; o && e < fnel(t); e++) fset(o, e, fget(t, e) + (same[k].plus1 == 1 ? 1.0f : 0.0f));
            } else if (strcmp(x, "linear_attn.A_log") == 0 || strcmp(x, "linear_attn.dt_bias") == 0) {
                int a = x[12] == 'A';
                o = fadd(out, G(a ? "ssm_a" : "ssm_dt.bias"), MC_T_F32, 1, t->shape);
                for (uint64_t j = 0; o && j < g->nv; j++) {
                    float v = fget(t, j);
                    fset(o, reorder ? fwd_pos(g->nk, r, 1, j) : j, a ? -expf(v) : v);
                }
            } else if (strcmp(x, "linear_attn.conv1d.weight") == 0) { /* squeeze [C, 1, K] -> [C, K] */
                o = fadd(out, G("ssm_conv1d.weight"), MC_T_F32, 2, (uint64_t[]){t->shape[0], t->shape[2]});
                if (o) fwd_rows(o, t, C, g->dv, g, reorder);
            } else if (strcmp(x, "linear_attn.in_proj_qkv.weight") == 0) {
                o = fadd(out, G("attn_qkv.weight"), MC_T_BF16, 2, t->shape);
                if (o) fwd_rows(o, t, C, g->dv, g, reorder);
            } else if (strcmp(x, "linear_attn.in_proj_z.weight") == 0) {
                o = fadd(out, G("attn_gate.weight"), MC_T_BF16, 2, t->shape);
                if (o) fwd_rows(o, t, 0, g->dv, g, reorder);
            } else if (strcmp(x, "linear_attn.in_proj_b.weight") == 0 || strcmp(x, "linear_attn.in_proj_a.weight") == 0) {
                o = fadd(out, G(x[20] == 'b' ? "ssm_beta.weight" : "ssm_alpha.weight"), MC_T_BF16, 2, t->shape);
                if (o) fwd_rows(o, t, 0, 1, g, reorder);
            } else if (strcmp(x, "linear_attn.out_proj.weight") == 0) { /* columns */
                o = fadd(out, G("ssm_out.weight"), MC_T_BF16, 2, t->shape);
                for (uint64_t row = 0; o && row < t->shape[0]; row++)
                    for (uint64_t c = 0; c < VD; c++)
                        fset(o, row * VD + (reorder ? fwd_pos(g->nk, r, g->dv, c) : c), fget(t, row * VD + c));
            } else if (strcmp(x, "linear_attn.in_proj_qkvz.weight") == 0) {
                if (legacy_ssm_in) {
                    o = fadd(out, G("ssm_in.weight"), MC_T_BF16, 2, t->shape);
                    if (o) fwd_rows(o, t, 0, 1, g, 0);
                } else {
                    /* view (H, nk, [q k v z]) and stack [q all, k all, v all], z all */
                    uint64_t per = 2 * g->dk + 2 * r * g->dv, H = q->H;
                    ftensor *qkv = fadd(out, G("attn_qkv.weight"), MC_T_BF16, 2, (uint64_t[]){C + VD, H});
                    ftensor *z = qkv ? fadd(out, G("attn_gate.weight"), MC_T_BF16, 2, (uint64_t[]){VD, H}) : NULL;
                    qkv = z ? &out->t[out->n - 2] : NULL; /* fadd may have moved the array */
                    o = z;
                    for (uint64_t grp = 0; o && grp < g->nk; grp++)
                        for (uint64_t j = 0; j < per; j++) {
                            uint64_t src = grp * per + j, dst;
                            ftensor *d = qkv;
                            if (j < g->dk) dst = grp * g->dk + j;
                            else if (j < 2 * g->dk) dst = g->nk * g->dk + grp * g->dk + (j - g->dk);
                            else if (j < 2 * g->dk + r * g->dv) dst = C + grp * r * g->dv + (j - 2 * g->dk);
                            else { d = z; dst = grp * r * g->dv + (j - 2 * g->dk - r * g->dv); }
                            for (uint64_t c = 0; c < H; c++) fset(d, dst * H + c, fget(t, src * H + c));
                        }
                }
            } else if (strncmp(x, "mlp.experts.", 12) == 0) {
                unsigned e = 0;
                int o2 = 0;
                if (sscanf(x + 12, "%u.%n", &e, &o2) != 1 || e != 0) continue; /* stacked at expert 0 */
                const char *w = x + 12 + o2;
                const char *gg = strncmp(w, "gate", 4) == 0 ? "ffn_gate_exps.weight"
                               : strncmp(w, "up", 2) == 0   ? "ffn_up_exps.weight" : "ffn_down_exps.weight";
                o = fadd(out, G(gg), MC_T_BF16, 3, (uint64_t[]){q->E, t->shape[0], t->shape[1]});
                for (uint64_t ex = 0; o && ex < q->E; ex++) {
                    char en[192];
                    snprintf(en, sizeof en, "%slayers.%u.mlp.experts.%llu.%s", q->hf_prefix, L, (unsigned long long)ex, w);
                    const ftensor *s = ffind(hf, en);
                    if (!s) { bad = 1; break; }
                    for (uint64_t k2 = 0; k2 < fnel(s); k2++) fset(o, ex * fnel(s) + k2, fget(s, k2));
                }
            } else {
                fprintf(stderr, "fixture: no llama.cpp rule for %s\n", t->name);
                bad = 1;
            }
#undef G
        }
        bad |= !o;
    }
    /* newer converters keep MTP as block n_layer (a copy of a decoder block
     * plus nextn.*) and write nextn_predict_layers */
    size_t n0 = out->n;
    for (size_t i = 0; q->mtp && i < n0 && !bad; i++) {
        char pre[32], n[160];
        snprintf(pre, sizeof pre, "blk.%llu.", (unsigned long long)(q->L - 1));
        if (strncmp(out->t[i].name, pre, strlen(pre)) != 0) continue;
        snprintf(n, sizeof n, "blk.%llu.%s", (unsigned long long)q->L, out->t[i].name + strlen(pre));
        ftensor *o = fadd(out, n, out->t[i].type, out->t[i].nd, out->t[i].shape);
        if (!o) { bad = 1; break; }
        memcpy(o->data, out->t[i].data, (size_t)fnel(o) * (o->type == MC_T_F32 ? 4 : 2));
    }
    if (q->mtp && !bad) {
        char n[96];
        snprintf(n, sizeof n, "blk.%llu.nextn.eh_proj.weight", (unsigned long long)q->L);
        bad |= !fadd(out, n, MC_T_BF16, 2, (uint64_t[]){q->H, 2 * q->H});
        snprintf(n, sizeof n, "blk.%llu.nextn.enorm.weight", (unsigned long long)q->L);
        bad |= !fadd(out, n, MC_T_F32, 1, (uint64_t[]){q->H});
    }
    return bad;
}

int q_meta(mc_gguf_writer *w, void *ctx, mc_error *err)
{
    const qcfg *q = ctx;
    char k[128];
    int rc = mc_gguf_writer_add_str(w, "general.architecture", q->arch, err);
#define U(key, v) (snprintf(k, sizeof k, "%s.%s", q->arch, key), rc = rc ? rc : mc_gguf_writer_add_u32(w, k, (uint32_t)(v), err))
#define FL(key, v) (snprintf(k, sizeof k, "%s.%s", q->arch, key), rc = rc ? rc : mc_gguf_writer_add_f32(w, k, (float)(v), err))
    U("block_count", q->L + (q->mtp ? 1 : 0));
    if (q->mtp) U("nextn_predict_layers", 1);
    U("context_length", q->ctx);
    U("embedding_length", q->H);
    if (q->I) U("feed_forward_length", q->I);
    U("attention.head_count", q->nh);
    U("attention.head_count_kv", q->nkv);
    U("attention.key_length", q->hd);
    U("attention.value_length", q->hd);
    FL("rope.freq_base", q->theta);
    FL("attention.layer_norm_rms_epsilon", q->eps);
    U("ssm.conv_kernel", q->g.kernel);
    U("ssm.state_size", q->g.dk);
    U("ssm.group_count", q->g.nk);
    U("ssm.time_step_rank", q->g.nv);
    U("ssm.inner_size", q->g.nv * q->g.dv);
    U("full_attention_interval", q->iv);
    U("rope.dimension_count", (uint64_t)((double)q->hd * q->prf));
    if (q->E) {
        U("expert_count", q->E);
        U("expert_used_count", q->topk);
        U("expert_feed_forward_length", q->Im);
        U("expert_shared_feed_forward_length", q->Is);
    }
#undef U
#undef FL
    return rc;
}
