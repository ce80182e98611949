/* The Qwen3.5 family: qwen35moe, qwen35 (dense) and qwen3next, with gated
 * delta-net linear-attention layers and gated full attention: mlx-lm
 * models/qwen3_5_moe.py, qwen3_5.py, qwen3_next.py. Rules and their sources
 * are in docs/CONVERT.md ("qwen3.5 family").
 *
 * GGUF (llama.cpp conversion/qwen.py, Qwen3NextModel and
 * _LinearAttentionVReorderBase):
 *  - A_log is stored as ssm_a = -exp(A_log): recovered as log(-ssm_a);
 *  - conv1d [C, 1, K] is squeezed to [C, K]; mlx-lm's Conv1d wants [C, K, 1]
 *    (same memory order);
 *  - qwen35/qwen35moe: value heads reordered from grouped-by-key-head to
 *    tiled order when key and value head counts differ (undone here);
 *  - qwen3next: in_proj_qkvz split into attn_qkv [q; k; v] and attn_gate (z),
 *    re-interleaved per key head here;
 *  - zero-centred RMSNorm weights are stored as 1 + w, which is also what
 *    mlx-lm's sanitize makes of them: kept as they are.
 * Safetensors: mlx-lm's sanitize (norm + 1 and conv1d axis move for HF-form
 * checkpoints, per-expert stacking, fused gate_up split, MTP dropped). */
#include "mc_convert_int.h"
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P MC_ROLE_PINNED
#define F MC_ROLE_FFN
#define X MC_ROLE_EXPERT
#define Q MC_R_Q
#define Q8 (MC_R_Q | MC_R_Q8)

/* ------------------------------------------------------------ geometry */

typedef struct q35_dims {
    uint64_t nk, nv, dk, dv, kernel; /* key heads, value heads, head dims, conv kernel */
    int reorder;                     /* GGUF value heads in llama.cpp's tiled order */
} q35_dims;

static int q35_dims_get(mc_cv *cv, q35_dims *d, mc_error *err)
{
    mc_model *m = cv->m;
    int bad = 0;
    memset(d, 0, sizeof *d);
    if (m->gguf) {
        uint64_t inner = 0;
        bad |= mc_cv_gguf_u64(cv, "ssm.group_count", &d->nk) != 0;
        bad |= mc_cv_gguf_u64(cv, "ssm.time_step_rank", &d->nv) != 0;
        bad |= mc_cv_gguf_u64(cv, "ssm.state_size", &d->dk) != 0;
        bad |= mc_cv_gguf_u64(cv, "ssm.inner_size", &inner) != 0;
        bad |= mc_cv_gguf_u64(cv, "ssm.conv_kernel", &d->kernel) != 0;
        if (!bad && d->nv) d->dv = inner / d->nv;
        bad |= !d->nv || d->dv * d->nv != inner;
        d->reorder = strcmp(m->arch, "qwen3next") != 0;
    } else {
        bad |= mc_cv_cfg_u64(m->config, "linear_num_key_heads", &d->nk);
        bad |= mc_cv_cfg_u64(m->config, "linear_num_value_heads", &d->nv);
        bad |= mc_cv_cfg_u64(m->config, "linear_key_head_dim", &d->dk);
        bad |= mc_cv_cfg_u64(m->config, "linear_value_head_dim", &d->dv);
        bad |= mc_cv_cfg_u64(m->config, "linear_conv_kernel_dim", &d->kernel);
    }
    if (bad || !d->nk || !d->nv || !d->dk || !d->dv || !d->kernel || d->nv % d->nk || d->nv > (1u << 20) ||
        d->dk > (1u << 20) || d->dv > (1u << 20))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: linear-attention sizes missing or inconsistent (key heads %llu, value heads %llu, key dim %llu, value dim %llu, conv kernel %llu)",
                            m->input_path, (unsigned long long)d->nk, (unsigned long long)d->nv,
                            (unsigned long long)d->dk, (unsigned long long)d->dv, (unsigned long long)d->kernel);
    if (d->nk == d->nv) d->reorder = 0;
    return 0;
}

/* Value head j in HF (grouped) order = key head k, member i (j = k*r + i);
 * llama.cpp's tiled order puts it at i*nk + k. */
static uint64_t q35_tiled(const q35_dims *d, uint64_t j)
{
    uint64_t r = d->nv / d->nk;
    return (j % r) * d->nk + j / r;
}

/* Append rows [off, off + nv*hd) of src with value heads (blocks of hd
 * rows) put back in HF order. */
static int q35_vhead_rows(mc_build *b, const q35_dims *d, const mc_part *src, uint64_t off, uint64_t hd,
                          mc_error *err)
{
    if (!d->reorder) return mc_build_part(b, src, off, d->nv * hd, 0, err);
    for (uint64_t j = 0; j < d->nv; j++) {
        int rc = mc_build_part(b, src, off + q35_tiled(d, j) * hd, hd, 0, err);
        if (rc) return rc;
    }
    return 0;
}

/* Column map putting value heads (blocks of hd columns) back in HF order. */
static int q35_vhead_cols(mc_build *b, const q35_dims *d, uint64_t hd, mc_error *err)
{
    if (!d->reorder) return 0;
    uint64_t n = d->nv * hd;
    uint32_t *map = malloc(n * sizeof *map);
    if (!map) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    for (uint64_t j = 0; j < d->nv; j++)
        for (uint64_t e = 0; e < hd; e++) map[j * hd + e] = (uint32_t)(q35_tiled(d, j) * hd + e);
    return mc_build_col_map(b, map, n, err); /* takes map */
}

/* ---------------------------------------------------------- builders */

/* The rule's source and the linear-attention sizes (absent: not found; 0
 * or an error code returned). */
#define Q35_BEGIN()                                             \
    q35_dims d;                                                 \
    mc_part src;                                                \
    if (!mc_build_source(cv, r, L, b, &src)) return 0;          \
    if (q35_dims_get(cv, &d, err)) return err ? (int)err->code : 1

/* attn_qkv -> in_proj_qkv: q and k rows as they are, v rows per value head. */
static int q35_b_qkv(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    uint64_t qk = 2 * d.nk * d.dk, rows = qk + d.nv * d.dv;
    int rc = mc_cv_expect(cv, &src, rows, cv->hidden, err);
    if (!rc) rc = mc_build_part(b, &src, 0, qk, 0, err);
    if (!rc) rc = q35_vhead_rows(b, &d, &src, qk, d.dv, err);
    mc_build_shape(b, 2, (uint64_t[]){rows, cv->hidden});
    return rc;
}

/* attn_gate -> in_proj_z (value heads of dv rows). */
static int q35_b_z(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    int rc = mc_cv_expect(cv, &src, d.nv * d.dv, cv->hidden, err);
    if (!rc) rc = q35_vhead_rows(b, &d, &src, 0, d.dv, err);
    mc_build_shape(b, 2, (uint64_t[]){d.nv * d.dv, cv->hidden});
    return rc;
}

/* ssm_beta / ssm_alpha -> in_proj_b / in_proj_a (one row per value head). */
static int q35_b_head_rows(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    int rc = mc_cv_expect(cv, &src, d.nv, cv->hidden, err);
    if (!rc) rc = q35_vhead_rows(b, &d, &src, 0, 1, err);
    mc_build_shape(b, 2, (uint64_t[]){d.nv, cv->hidden});
    return rc;
}

/* ssm_out -> out_proj: columns are value-head channels. */
static int q35_b_out(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    int rc = mc_cv_expect(cv, &src, cv->hidden, d.nv * d.dv, err);
    if (!rc) rc = mc_build_part(b, &src, 0, cv->hidden, 0, err);
    if (!rc) rc = q35_vhead_cols(b, &d, d.dv, err);
    mc_build_shape(b, 2, (uint64_t[]){cv->hidden, d.nv * d.dv});
    return rc;
}

/* 1-D per-value-head vectors (dt_bias; A_log with the rule's value map). */
static int q35_b_head_vec(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    int rc = mc_cv_expect(cv, &src, 1, d.nv, err);
    if (!rc) rc = mc_build_part(b, &src, 0, 1, 0, err);
    if (!rc) rc = q35_vhead_cols(b, &d, 1, err);
    mc_build_shape(b, 1, &d.nv);
    return rc;
}

/* ssm_a -> A_log = log(-ssm_a), value heads back in HF order. */
static int q35_b_alog(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    b->x = MC_X_LOG_NEG;
    return q35_b_head_vec(cv, r, L, b, err);
}

/* conv1d: GGUF [C, K] or HF [C, 1, K] -> mlx [C, K, 1] (same memory
 * order; an already sanitized [C, K, 1] is taken as it is); value channels
 * of a GGUF back in HF order. */
static int q35_b_conv(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    uint64_t qk = 2 * d.nk * d.dk, ch = qk + d.nv * d.dv;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    mc_build_shape(b, 3, (uint64_t[]){ch, d.kernel, 1});
    if (nd == 3 && shp[2] == 1) {
        int rc = mc_cv_expect(cv, &src, ch * d.kernel, 1, err);
        return rc ? rc : mc_build_part(b, &src, 0, ch * d.kernel, 0, err);
    }
    int rc = mc_cv_expect(cv, &src, ch, d.kernel, err);
    if (!rc) rc = mc_build_part(b, &src, 0, qk, 0, err);
    if (!rc) rc = cv->m->gguf ? q35_vhead_rows(b, &d, &src, qk, d.dv, err)
                              : mc_build_part(b, &src, qk, d.nv * d.dv, 0, err);
    b->flat = 1;
    return rc;
}

/* qwen3next: attn_qkv [q; k; v] + attn_gate z -> in_proj_qkvz, per key head
 * g: q_g (dk), k_g (dk), v_g (r*dv), z_g (r*dv). */
static int q35_b_qkvz(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    mc_part gate;
    if (!mc_cv_source(cv, "blk.{L}.attn_gate.weight", L, &gate)) {
        b->found = 0;
        return 0;
    }
    uint64_t kd = d.nk * d.dk, vg = d.nv / d.nk * d.dv;
    int rc = mc_cv_expect(cv, &src, 2 * kd + d.nv * d.dv, cv->hidden, err);
    if (!rc) rc = mc_cv_expect(cv, &gate, d.nv * d.dv, cv->hidden, err);
    for (uint64_t g = 0; g < d.nk && !rc; g++) {
        rc = mc_build_part(b, &src, g * d.dk, d.dk, 0, err);
        if (!rc) rc = mc_build_part(b, &src, kd + g * d.dk, d.dk, 0, err);
        if (!rc) rc = mc_build_part(b, &src, 2 * kd + g * vg, vg, 0, err);
        if (!rc) rc = mc_build_part(b, &gate, g * vg, vg, 0, err);
    }
    mc_build_shape(b, 2, (uint64_t[]){2 * kd + 2 * d.nv * d.dv, cv->hidden});
    return rc;
}

/* qwen3next: separate ssm_beta + ssm_alpha -> in_proj_ba, per key head g:
 * b_g (r rows), a_g (r rows). */
static int q35_b_ba(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    Q35_BEGIN();
    mc_part alpha;
    if (!mc_cv_source(cv, "blk.{L}.ssm_alpha.weight", L, &alpha)) {
        b->found = 0;
        return 0;
    }
    uint64_t rg = d.nv / d.nk;
    int rc = mc_cv_expect(cv, &src, d.nv, cv->hidden, err);
    if (!rc) rc = mc_cv_expect(cv, &alpha, d.nv, cv->hidden, err);
    for (uint64_t g = 0; g < d.nk && !rc; g++) {
        rc = mc_build_part(b, &src, g * rg, rg, 0, err);
        if (!rc) rc = mc_build_part(b, &alpha, g * rg, rg, 0, err);
    }
    mc_build_shape(b, 2, (uint64_t[]){2 * d.nv, cv->hidden});
    return rc;
}

/* shared_expert_gate [1, hidden]: llama.cpp's quantizer may store it 1-D. */
static int q35_b_row(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    int rc = mc_cv_expect(cv, &src, 1, cv->hidden, err);
    if (!rc) rc = mc_build_part(b, &src, 0, 1, 0, err);
    mc_build_shape(b, 2, (uint64_t[]){1, cv->hidden});
    return rc;
}

/* HF-form checkpoint (conv1d weight [C, 1, K]) as mlx-lm's sanitize tells
 * it: then the zero-centred norms get + 1. An already sanitized checkpoint
 * (conv1d [C, K, 1]) is taken as it is. */
static int q35_hf_unsanitized(mc_cv *cv)
{
    char name[64];
    for (int L = 0; L < cv->m->n_layers; L++) {
        mc_part p;
        snprintf(name, sizeof name, "model.layers.%d.linear_attn.conv1d.weight", L);
        if (!mc_cv_source(cv, name, -1, &p)) continue;
        uint32_t nd;
        uint64_t shp[MC_MT_MAX_DIMS];
        mc_cv_source_shape(&p, &nd, shp);
        return nd > 0 && shp[nd - 1] != 1;
    }
    return 0;
}

/* Zero-centred RMSNorm from safetensors: + 1 unless already sanitized. */
static int q35_b_norm_hf(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    if (nd != 1)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: norm %s is not 1-D", cv->m->input_path, mc_cv_part_name(&src));
    mc_build_shape(b, 1, shp);
    if (q35_hf_unsanitized(cv)) b->x = MC_X_ADD1;
    return mc_build_part(b, &src, 0, 1, 0, err);
}

/* Fused experts.gate_up_proj [E, 2I, H] -> switch_mlp gate (first I rows of
 * each expert) or up (last I rows), as qwen3_5_moe.py's sanitize. */
static int q35_gate_up(mc_cv *cv, const mc_rule *r, int L, mc_build *b, int half, mc_error *err)
{
    mc_part src;
    if (!mc_build_source(cv, r, L, b, &src)) return 0;
    uint32_t nd;
    uint64_t shp[MC_MT_MAX_DIMS];
    mc_cv_source_shape(&src, &nd, shp);
    if (nd != 3 || shp[1] % 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s is not [experts, 2*inter, hidden]", cv->m->input_path,
                            mc_cv_part_name(&src));
    uint64_t I = shp[1] / 2;
    for (uint64_t e = 0; e < shp[0]; e++) {
        int rc = mc_build_part(b, &src, e * 2 * I + (uint64_t)half * I, I, 0, err);
        if (rc) return rc;
    }
    mc_build_shape(b, 3, (uint64_t[]){shp[0], I, shp[2]});
    return 0;
}

static int q35_b_gate_half(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return q35_gate_up(cv, r, L, b, 0, err);
}

static int q35_b_up_half(mc_cv *cv, const mc_rule *r, int L, mc_build *b, mc_error *err)
{
    return q35_gate_up(cv, r, L, b, 1, err);
}

/* --------------------------------------------------------------- rules */

/* Builders, by index (rules name them MC_X_B(index); 0 = plain source). */
enum { Q35_NONE = -1, B_QKV, B_Z, B_HEAD_ROWS, B_OUT, B_HEAD_VEC, B_ALOG, B_CONV, B_QKVZ, B_BA, B_ROW, B_NORM_HF,
       B_GATE_HALF, B_UP_HALF, B_COUNT };
static const mc_build_fn q35_builders[B_COUNT] = {
    q35_b_qkv, q35_b_z, q35_b_head_rows, q35_b_out, q35_b_head_vec, q35_b_alog, q35_b_conv, q35_b_qkvz, q35_b_ba,
    q35_b_row, q35_b_norm_hf, q35_b_gate_half, q35_b_up_half,
};
#define BX(k) ((k) < 0 ? MC_X_NONE : MC_X_B(k))
/* Rule: mlx name, GGUF source and builder, HF source and builder. */
#define RB(mlx, g, h, gb, hb, role, flags) {mlx, g, h, BX(gb), BX(hb), role, flags}

#define HL "model.layers.{L}."
#define GL "blk.{L}."

/* The tables. pre: the mlx-lm prefix, "language_model.model." (qwen3_5*)
 * or "model." (qwen3_next). N: no builder (the source as it is). */
#define N Q35_NONE

#define Q35_GLOBAL(pre, head) \
    RB(pre "embed_tokens.weight", "token_embd.weight", "model.embed_tokens.weight", N, N, P, Q), \
    RB(pre "norm.weight", "output_norm.weight", "model.norm.weight", N, B_NORM_HF, P, 0), \
    RB(head, "output.weight", "lm_head.weight", N, N, P, Q | MC_R_NOTIED)

#define Q35_NORMS(pre) \
    RB(pre "layers.{L}.input_layernorm.weight", GL "attn_norm.weight", HL "input_layernorm.weight", \
       N, B_NORM_HF, P, 0), \
    RB(pre "layers.{L}.post_attention_layernorm.weight", GL "post_attention_norm.weight", \
       HL "post_attention_layernorm.weight", N, B_NORM_HF, P, 0)

#define Q35_LINEAR_COMMON(pre) \
    RB(pre "layers.{L}.linear_attn.A_log", GL "ssm_a", HL "linear_attn.A_log", B_ALOG, N, P, MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.dt_bias", GL "ssm_dt.bias", HL "linear_attn.dt_bias", B_HEAD_VEC, N, P, \
       MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.dt_bias", GL "ssm_dt", NULL, B_HEAD_VEC, N, P, MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.conv1d.weight", GL "ssm_conv1d.weight", HL "linear_attn.conv1d.weight", \
       B_CONV, B_CONV, P, MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.norm.weight", GL "ssm_norm.weight", HL "linear_attn.norm.weight", N, N, P, \
       MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.out_proj.weight", GL "ssm_out.weight", HL "linear_attn.out_proj.weight", \
       B_OUT, N, P, Q | MC_R_MIXER)

/* Qwen3.5 linear attention: separate projections. */
#define Q35_LINEAR_SPLIT(pre) \
    RB(pre "layers.{L}.linear_attn.in_proj_qkv.weight", GL "attn_qkv.weight", HL "linear_attn.in_proj_qkv.weight", \
       B_QKV, N, P, Q | MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.in_proj_z.weight", GL "attn_gate.weight", HL "linear_attn.in_proj_z.weight", \
       B_Z, N, P, Q | MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.in_proj_b.weight", GL "ssm_beta.weight", HL "linear_attn.in_proj_b.weight", \
       B_HEAD_ROWS, N, P, Q | MC_R_MIXER), \
    RB(pre "layers.{L}.linear_attn.in_proj_a.weight", GL "ssm_alpha.weight", HL "linear_attn.in_proj_a.weight", \
       B_HEAD_ROWS, N, P, Q | MC_R_MIXER)

/* Gated full attention: q_proj holds per head hd query rows then hd gate rows. */
#define Q35_FULL_ATTN(pre) \
    RB(pre "layers.{L}.self_attn.q_proj.weight", GL "attn_q.weight", HL "self_attn.q_proj.weight", N, N, P, \
       Q | MC_R_ATTN), \
    RB(pre "layers.{L}.self_attn.k_proj.weight", GL "attn_k.weight", HL "self_attn.k_proj.weight", N, N, P, \
       Q | MC_R_ATTN), \
    RB(pre "layers.{L}.self_attn.v_proj.weight", GL "attn_v.weight", HL "self_attn.v_proj.weight", N, N, P, \
       Q | MC_R_ATTN), \
    RB(pre "layers.{L}.self_attn.o_proj.weight", GL "attn_output.weight", HL "self_attn.o_proj.weight", N, N, P, \
       Q | MC_R_ATTN), \
    RB(pre "layers.{L}.self_attn.q_norm.weight", GL "attn_q_norm.weight", HL "self_attn.q_norm.weight", N, \
       B_NORM_HF, P, MC_R_ATTN), \
    RB(pre "layers.{L}.self_attn.k_norm.weight", GL "attn_k_norm.weight", HL "self_attn.k_norm.weight", N, \
       B_NORM_HF, P, MC_R_ATTN)

/* Routed experts: GGUF stacked; HF per expert, fused gate_up_proj (Qwen3.5
 * releases), or already stacked (mlx-lm form). */
#define Q35_MOE(pre) \
    RB(pre "layers.{L}.mlp.gate.weight", GL "ffn_gate_inp.weight", HL "mlp.gate.weight", N, N, P, Q8 | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.shared_expert_gate.weight", GL "ffn_gate_inp_shexp.weight", \
       HL "mlp.shared_expert_gate.weight", B_ROW, N, P, Q8 | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.shared_expert.gate_proj.weight", GL "ffn_gate_shexp.weight", \
       HL "mlp.shared_expert.gate_proj.weight", N, N, P, Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.shared_expert.up_proj.weight", GL "ffn_up_shexp.weight", \
       HL "mlp.shared_expert.up_proj.weight", N, N, P, Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.shared_expert.down_proj.weight", GL "ffn_down_shexp.weight", \
       HL "mlp.shared_expert.down_proj.weight", N, N, P, Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.gate_proj.weight", GL "ffn_gate_exps.weight", \
       HL "mlp.experts.{E}.gate_proj.weight", N, N, X, Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.gate_proj.weight", NULL, HL "mlp.experts.gate_up_proj", N, B_GATE_HALF, X, \
       Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.gate_proj.weight", NULL, HL "mlp.switch_mlp.gate_proj.weight", N, N, X, \
       Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.up_proj.weight", GL "ffn_up_exps.weight", HL "mlp.experts.{E}.up_proj.weight", \
       N, N, X, Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.up_proj.weight", NULL, HL "mlp.experts.gate_up_proj", N, B_UP_HALF, X, \
       Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.up_proj.weight", NULL, HL "mlp.switch_mlp.up_proj.weight", N, N, X, \
       Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.down_proj.weight", GL "ffn_down_exps.weight", \
       HL "mlp.experts.{E}.down_proj.weight", N, N, X, Q | MC_R_MOE), \
    RB(pre "layers.{L}.mlp.switch_mlp.down_proj.weight", NULL, HL "mlp.experts.down_proj", N, N, X, Q | MC_R_MOE)

#define Q35_DENSE(pre) \
    RB(pre "layers.{L}.mlp.gate_proj.weight", GL "ffn_gate.weight", HL "mlp.gate_proj.weight", N, N, F, \
       Q | MC_R_DENSE), \
    RB(pre "layers.{L}.mlp.up_proj.weight", GL "ffn_up.weight", HL "mlp.up_proj.weight", N, N, F, Q | MC_R_DENSE), \
    RB(pre "layers.{L}.mlp.down_proj.weight", GL "ffn_down.weight", HL "mlp.down_proj.weight", N, N, F, \
       Q | MC_R_DENSE)

#define LM "language_model.model."

static const mc_rule qwen35moe_rules[] = {
    Q35_GLOBAL(LM, "language_model.lm_head.weight"),
    Q35_NORMS(LM),
    Q35_LINEAR_COMMON(LM),
    Q35_LINEAR_SPLIT(LM),
    Q35_FULL_ATTN(LM),
    Q35_MOE(LM),
};

static const mc_rule qwen35_rules[] = {
    Q35_GLOBAL(LM, "language_model.lm_head.weight"),
    Q35_NORMS(LM),
    Q35_LINEAR_COMMON(LM),
    Q35_LINEAR_SPLIT(LM),
    Q35_FULL_ATTN(LM),
    Q35_DENSE(LM),
};

/* Qwen3-Next: fused in_proj_qkvz / in_proj_ba as mlx-lm loads them. */
static const mc_rule qwen3next_rules[] = {
    Q35_GLOBAL("model.", "lm_head.weight"),
    Q35_NORMS("model."),
    Q35_LINEAR_COMMON("model."),
    RB("model.layers.{L}.linear_attn.in_proj_qkvz.weight", GL "attn_qkv.weight",
       HL "linear_attn.in_proj_qkvz.weight", B_QKVZ, N, P, Q | MC_R_MIXER),
    RB("model.layers.{L}.linear_attn.in_proj_qkvz.weight", GL "ssm_in.weight", NULL, N, N, P, Q | MC_R_MIXER),
    RB("model.layers.{L}.linear_attn.in_proj_ba.weight", GL "ssm_ba.weight", HL "linear_attn.in_proj_ba.weight",
       N, N, P, Q | MC_R_MIXER),
    RB("model.layers.{L}.linear_attn.in_proj_ba.weight", GL "ssm_beta.weight", NULL, B_BA, N, P, Q | MC_R_MIXER),
    Q35_FULL_ATTN("model."),
    Q35_MOE("model."),
    Q35_DENSE("model."),
};
#undef N

/* ------------------------------------------------------------- prepare */

/* The interval mlx-lm builds layers from: layer L is full attention when
 * (L+1) % interval == 0; from the first full-attention layer (mixer kinds
 * come from the tensors present). */
static int q35_interval(mc_cv *cv, uint64_t *out, mc_error *err)
{
    int n = cv->m->n_layers, first_full = -1;
    for (int L = 0; L < n && first_full < 0; L++)
        if (!(cv->kinds[L] & MC_K_MIXER)) first_full = L;
    uint64_t iv = first_full < 0 ? (uint64_t)n + 1 : (uint64_t)first_full + 1;
    for (int L = 0; L < n; L++) {
        int want_linear = ((uint64_t)L + 1) % iv != 0;
        if (want_linear != !!(cv->kinds[L] & MC_K_MIXER))
            return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                "%s: layer %d is %s attention, but mlx-lm places full attention only at layers i with (i+1) %% full_attention_interval == 0 (interval %llu from the first full-attention layer)",
                                cv->m->input_path, L, want_linear ? "full" : "linear", (unsigned long long)iv);
    }
    *out = iv;
    return 0;
}

/* Layer kinds hook: refuse a layout mlx-lm cannot build. */
static int q35_layer_kinds(mc_cv *cv, mc_error *err)
{
    uint64_t iv;
    return q35_interval(cv, &iv, err);
}

/* ------------------------------------------------------------- config */

/* linear_num_key_heads and the other linear-attention sizes. */
static int q35_cfg_linear(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    q35_dims d;
    int bad = 0, rc;
    (void)k;
    if ((rc = q35_dims_get(cv, &d, err))) return rc;
    bad |= mc_cv_cfg_set_num(cfg, "linear_num_key_heads", (double)d.nk);
    bad |= mc_cv_cfg_set_num(cfg, "linear_num_value_heads", (double)d.nv);
    bad |= mc_cv_cfg_set_num(cfg, "linear_key_head_dim", (double)d.dk);
    bad |= mc_cv_cfg_set_num(cfg, "linear_value_head_dim", (double)d.dv);
    bad |= mc_cv_cfg_set_num(cfg, "linear_conv_kernel_dim", (double)d.kernel);
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

/* full_attention_interval from the layers present (the metadata / config
 * value is not trusted: a mismatch is a notice). */
static int q35_cfg_interval(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    mc_model *m = cv->m;
    uint64_t iv, u;
    int rc;
    if ((rc = q35_interval(cv, &iv, err))) return rc;
    const cJSON *fi = cJSON_GetObjectItemCaseSensitive(cfg, k->key);
    if (m->gguf && mc_cv_gguf_u64(cv, "full_attention_interval", &u) == 0 && u != iv)
        mc_cv_notice(cv, "%s: full_attention_interval %llu in the metadata, but the layers present alternate with interval %llu: using %llu",
                     m->input_path, (unsigned long long)u, (unsigned long long)iv, (unsigned long long)iv);
    if (!m->gguf && cJSON_IsNumber(fi) && (uint64_t)fi->valuedouble != iv)
        mc_cv_notice(cv, "%s: full_attention_interval %g in config.json, but the layers present alternate with interval %llu: using %llu",
                     m->input_path, fi->valuedouble, (unsigned long long)iv, (unsigned long long)iv);
    return mc_cv_cfg_set_num(cfg, k->key, (double)iv) ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

static int q35_cfg_layer_types(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    uint64_t iv;
    int rc;
    if ((rc = q35_interval(cv, &iv, err))) return rc;
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    cJSON *a = cJSON_AddArrayToObject(cfg, k->key);
    for (int L = 0; a && L < cv->m->n_layers; L++) {
        cJSON *s = cJSON_CreateString(((uint64_t)L + 1) % iv ? "linear_attention" : "full_attention");
        if (!s) a = NULL;
        else cJSON_AddItemToArray(a, s);
    }
    return a ? 0 : mc_error_set(err, MC_ERR_NOMEM, "out of memory");
}

/* rope_parameters {partial_rotary_factor (the key written before),
 * rope_theta, rope_type default}. */
static int q35_cfg_rope_parameters(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    double theta = 10000.0;
    mc_cv_gguf_f64(cv, "rope.freq_base", &theta);
    theta = mc_cv_f32_decimal(theta);
    const cJSON *prf = cJSON_GetObjectItemCaseSensitive(cfg, "partial_rotary_factor");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, k->key);
    cJSON *rp = cJSON_AddObjectToObject(cfg, k->key);
    if (!rp || !cJSON_IsNumber(prf) || !cJSON_AddNumberToObject(rp, "partial_rotary_factor", prf->valuedouble) ||
        !cJSON_AddNumberToObject(rp, "rope_theta", theta) || !cJSON_AddStringToObject(rp, "rope_type", "default"))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

#define Q35_GGUF_CONFIG \
    MC_CFG_FN("linear_num_key_heads", q35_cfg_linear), \
    MC_CFG_FN("full_attention_interval", q35_cfg_interval), \
    MC_CFG_FN("layer_types", q35_cfg_layer_types), \
    MC_CFG_PER_HEAD("partial_rotary_factor", "rope.dimension_count", MC_CK_POSITIVE, 0.25), \
    MC_CFG_FN("rope_parameters", q35_cfg_rope_parameters), \
    MC_CFG_BOOL("attention_bias", 0, 0), \
    MC_CFG_STR("hidden_act", "silu"), \
    MC_CFG_MODEL("num_experts", MC_CV_EXPERTS, MC_CK_IF_EXPERTS), \
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, MC_CK_IF_EXPERTS), \
    MC_CFG_U("moe_intermediate_size", "expert_feed_forward_length", MC_CK_OPT | MC_CK_IF_EXPERTS, 0), \
    MC_CFG_U("shared_expert_intermediate_size", "expert_shared_feed_forward_length", MC_CK_OPT | MC_CK_IF_EXPERTS, 0), \
    MC_CFG_BOOL("norm_topk_prob", 1, MC_CK_IF_EXPERTS), \
    MC_CFG_NUM("decoder_sparse_step", 1, MC_CK_IF_EXPERTS)

static const mc_cfg_key q35_gguf_config[] = {
    Q35_GGUF_CONFIG,
};

/* qwen3_next.py: every ModelArgs field is required. */
static const mc_cfg_key qwen3next_gguf_config[] = {
    Q35_GGUF_CONFIG,
    MC_CFG_LAYERS_WITHOUT("mlp_only_layers", MC_K_MOE),
    MC_CFG_NUM("intermediate_size", 0, MC_CK_IF_ABSENT),
    MC_CFG_NUM("num_experts", 0, MC_CK_IF_DENSE),
    MC_CFG_NUM("num_experts_per_tok", 0, MC_CK_IF_DENSE),
    MC_CFG_NUM("decoder_sparse_step", 1, MC_CK_IF_DENSE),
    MC_CFG_NUM("moe_intermediate_size", 0, MC_CK_IF_DENSE),
    MC_CFG_NUM("shared_expert_intermediate_size", 0, MC_CK_IF_DENSE),
};

/* HF config -> mlx-lm: the interval mlx-lm builds layers from
 * (transformers-5 configs carry only layer_types); model_type of the
 * mlx-lm module (qwen3_5_moe_text has none). */
static const mc_cfg_key q35_hf_config[] = {
    MC_CFG_FN("full_attention_interval", q35_cfg_interval),
    MC_CFG_MODEL_TYPE("model_type"),
};

/* Mixer kinds: a layer with A_log / ssm_a is linear attention. MTP: GGUF,
 * the last nextn_predict_layers blocks; HF, the mtp.* tensors. */
#define Q35_MIXER {MC_K_MIXER, MC_K_ATTN, GL "ssm_a", HL "linear_attn.A_log"}
#define Q35_ROUTER {MC_K_MOE, MC_K_DENSE, GL "ffn_gate_inp.weight", HL "mlp.gate.weight"}

const mc_arch mc_arch_qwen35moe = {
    .name = "qwen35moe", .model_type = "qwen3_5_moe", .gguf_arch = "qwen35moe",
    .hf_types = "qwen3_5_moe_text qwen3_5_moe",
    .rules = qwen35moe_rules, .n_rules = MC_COUNT(qwen35moe_rules),
    .builders = q35_builders, .n_builders = B_COUNT,
    .kinds = {Q35_ROUTER, Q35_MIXER}, .layer_kinds = q35_layer_kinds, .mtp = MC_MTP_PREFIX,
    .gguf_config = q35_gguf_config, .n_gguf_config = MC_COUNT(q35_gguf_config),
    .hf_config = q35_hf_config, .n_hf_config = MC_COUNT(q35_hf_config),
};

const mc_arch mc_arch_qwen35 = {
    .name = "qwen35", .model_type = "qwen3_5", .gguf_arch = "qwen35", .hf_types = "qwen3_5_text qwen3_5",
    .rules = qwen35_rules, .n_rules = MC_COUNT(qwen35_rules),
    .builders = q35_builders, .n_builders = B_COUNT,
    .kinds = {MC_KINDS_ALL(MC_K_DENSE), Q35_MIXER}, .layer_kinds = q35_layer_kinds, .mtp = MC_MTP_PREFIX,
    .gguf_config = q35_gguf_config, .n_gguf_config = MC_COUNT(q35_gguf_config),
    .hf_config = q35_hf_config, .n_hf_config = MC_COUNT(q35_hf_config),
};

const mc_arch mc_arch_qwen3next = {
    .name = "qwen3next", .model_type = "qwen3_next", .gguf_arch = "qwen3next", .hf_types = "qwen3_next",
    .rules = qwen3next_rules, .n_rules = MC_COUNT(qwen3next_rules),
    .builders = q35_builders, .n_builders = B_COUNT,
    .kinds = {Q35_ROUTER, Q35_MIXER}, .layer_kinds = q35_layer_kinds, .mtp = MC_MTP_PREFIX,
    .gguf_config = qwen3next_gguf_config, .n_gguf_config = MC_COUNT(qwen3next_gguf_config),
    .hf_config = q35_hf_config, .n_hf_config = MC_COUNT(q35_hf_config),
};
