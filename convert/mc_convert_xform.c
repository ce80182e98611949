/* mc_convert_xform: the table of transforms (name, kind, implementation)
 * that every architecture uses. Rule transforms have a plan (open time:
 * which rows of the source) and, where the selection is not a plain row
 * range, a row function (read time: which source row makes output row i)
 * or a value map (read time, after decoding). The recipe primitives
 * (stacking, transposed blocks, column maps, flat reshapes) are set by the
 * rule engine and builders and read by mc_convert_read.c. */
#include "mc_convert_int.h"

#include <math.h>

/* ------------------------------------------------- rope permutation undo */

/* llama.cpp's LlamaModel.permute stores HF row h*hd + j*hd/2 + i at GGUF
 * row h*hd + 2i + j: output row lr is source row h*hd + 2i + j. */
static uint64_t mc_x_rope_row(const mc_recipe *r, const mc_part *p, uint64_t lr)
{
    uint64_t hd = p->nrows / r->rows_arg, half = hd / 2;
    uint64_t h = lr / hd, rem = lr % hd;
    uint64_t j = rem / half, i = rem % half;
    return h * hd + 2 * i + j;
}

/* Set the permutation of x->heads heads over the part's rows: a 2-D weight
 * [heads*hd, in] or a 1-D bias [heads*hd]; whole = the part must be exactly
 * heads * head_dim rows. */
static int mc_x_rope_set(mc_xplan *p, const mc_xform_def *x, int whole, mc_error *err)
{
    mc_cv *cv = p->cv;
    mc_recipe *rec = p->rec;
    uint64_t h = x->heads == 1 ? cv->n_head : cv->n_head_kv;
    uint64_t pelem = rec->parts[0].nrows;
    if (p->n_src != 1 || p->nd > 2 || h == 0 || pelem == 0 || pelem % h != 0 || (pelem / h) % 2 != 0 ||
        (whole && pelem != h * cv->head_dim))
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: tensor %s: %llu rows, expected %llu heads of head dim %llu (even) for the RoPE permutation",
                            cv->m->input_path, mc_cv_part_name(&rec->parts[0]), (unsigned long long)pelem,
                            (unsigned long long)h, (unsigned long long)cv->head_dim);
    rec->rows_x = (uint8_t)(x - mc_xforms);
    rec->rows_arg = (uint32_t)h;
    return 0;
}

static int mc_x_rope(mc_xplan *p, const mc_xform_def *x, mc_error *err)
{
    return mc_x_rope_set(p, x, 1, err);
}

/* ------------------------------------------------------- fused splits */

/* x->arg: 0 q, 1 k, 2 v rows of a fused [q; k; v]; then the rope
 * permutation when x->heads. */
static int mc_x_split(mc_xplan *p, const mc_xform_def *x, mc_error *err)
{
    mc_cv *cv = p->cv;
    uint64_t q = cv->n_head * cv->head_dim, kv = cv->n_head_kv * cv->head_dim;
    if (p->nd > 2 || p->n_src != 1 || p->src_rows != q + 2 * kv)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "%s: fused tensor %s has %llu rows, expected q %llu + k %llu + v %llu (heads %llu, kv heads %llu, head dim %llu)",
                            cv->m->input_path, mc_cv_part_name(&p->rec->parts[0]), (unsigned long long)p->src_rows,
                            (unsigned long long)q, (unsigned long long)kv, (unsigned long long)kv,
                            (unsigned long long)cv->n_head, (unsigned long long)cv->n_head_kv,
                            (unsigned long long)cv->head_dim);
    const uint64_t row0[3] = {0, q, q + kv}, rows[3] = {q, kv, kv};
    p->rec->parts[0].row0 = row0[x->arg];
    p->rec->parts[0].nrows = rows[x->arg];
    p->shape[0] = rows[x->arg];
    return x->heads ? mc_x_rope_set(p, x, 0, err) : 0;
}

/* x->arg: 0 first, 1 second half of the rows (fused [gate; up]). */
static int mc_x_half(mc_xplan *p, const mc_xform_def *x, mc_error *err)
{
    if (p->nd > 2 || p->n_src != 1 || p->src_rows % 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: fused tensor %s has %llu rows, not two equal halves",
                            p->cv->m->input_path, mc_cv_part_name(&p->rec->parts[0]),
                            (unsigned long long)p->src_rows);
    uint64_t half = p->src_rows / 2;
    p->rec->parts[0].row0 = x->arg ? half : 0;
    p->rec->parts[0].nrows = half;
    p->shape[0] = half;
    return 0;
}

/* x->arg: 0 the even, 1 the odd rows of an interleaved [..., 2n, C]
 * (gpt-oss's fused gate_up: mlx-lm's sanitize v[..., ::2, :] / v[..., 1::2, :]).
 * Every leading index keeps its 2n rows together, so output row lr is
 * source row 2 * lr + arg over the whole tensor: a row selection, block
 * copies stay lossless. */
static uint64_t mc_x_interleave_row(const mc_recipe *r, const mc_part *p, uint64_t lr)
{
    (void)p;
    return 2 * lr + r->rows_arg;
}

static int mc_x_interleave(mc_xplan *p, const mc_xform_def *x, mc_error *err)
{
    if (p->n_src != 1 || p->nd < 2 || p->shape[p->nd - 2] % 2)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: interleaved tensor %s: %u dims, its rows axis is not even",
                            p->cv->m->input_path, mc_cv_part_name(&p->rec->parts[0]), p->nd);
    p->rec->parts[0].nrows /= 2;
    p->shape[p->nd - 2] /= 2;
    p->rec->rows_x = (uint8_t)(x - mc_xforms);
    p->rec->rows_arg = x->arg;
    return 0;
}

/* --------------------------------------------------------- value maps */

static void mc_x_sub1(float *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) v[i] -= 1.0f;
}

static void mc_x_add1(float *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) v[i] += 1.0f;
}

static void mc_x_log_neg(float *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) v[i] = (float)log(-(double)v[i]);
}

/* ---------------------------------------------------------------- table */

#define ROWS MC_XK_ROWS
const mc_xform_def mc_xforms[MC_X_COUNT] = {
    [MC_X_NONE] = {"none", MC_XK_NONE, 0, 0, 0, NULL, NULL, NULL},
    [MC_X_ROPE_Q] = {"rope_q", ROWS, 0, 1, 0, mc_x_rope, mc_x_rope_row, NULL},
    [MC_X_ROPE_K] = {"rope_k", ROWS, 0, 2, 0, mc_x_rope, mc_x_rope_row, NULL},
    [MC_X_SPLIT_Q] = {"split_q", ROWS, 0, 0, 0, mc_x_split, NULL, NULL},
    [MC_X_SPLIT_K] = {"split_k", ROWS, 1, 0, 0, mc_x_split, NULL, NULL},
    [MC_X_SPLIT_V] = {"split_v", ROWS, 2, 0, 0, mc_x_split, NULL, NULL},
    [MC_X_SPLIT_Q_ROPE] = {"split_q_rope", ROWS, 0, 1, 0, mc_x_split, mc_x_rope_row, NULL},
    [MC_X_SPLIT_K_ROPE] = {"split_k_rope", ROWS, 1, 2, 0, mc_x_split, mc_x_rope_row, NULL},
    [MC_X_HALF0] = {"half0", ROWS, 0, 0, 0, mc_x_half, NULL, NULL},
    [MC_X_HALF1] = {"half1", ROWS, 1, 0, 0, mc_x_half, NULL, NULL},
    [MC_X_SUB1] = {"sub1", MC_XK_VALUES, 0, 0, 0, NULL, NULL, mc_x_sub1},
    [MC_X_ADD1] = {"add1", MC_XK_VALUES, 0, 0, 0, NULL, NULL, mc_x_add1},
    [MC_X_LOG_NEG] = {"log_neg", MC_XK_VALUES, 0, 0, 1, NULL, NULL, mc_x_log_neg},
    [MC_X_EVEN] = {"even", ROWS, 0, 0, 0, mc_x_interleave, mc_x_interleave_row, NULL},
    [MC_X_ODD] = {"odd", ROWS, 1, 0, 0, mc_x_interleave, mc_x_interleave_row, NULL},
    [MC_X_STACK] = {"stack", ROWS, 0, 0, 0, NULL, NULL, NULL},
    [MC_X_TRANSPOSE] = {"transpose", MC_XK_TRANSPOSE, 0, 0, 0, NULL, NULL, NULL},
    [MC_X_COLS] = {"col_map", MC_XK_COLS, 0, 0, 0, NULL, NULL, NULL},
    [MC_X_FLAT] = {"flat", MC_XK_RESHAPE, 0, 0, 0, NULL, NULL, NULL},
};
