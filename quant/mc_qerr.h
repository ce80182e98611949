/* mc_qerr: the error of stored (quantized or converted) weights against the
 * values they were made from (pure; no allocation, no I/O).
 *
 * For source values x[i] and the values y[i] the stored form represents:
 *   sum_sq_err = sum (y - x)^2      sum_sq_ref = sum x^2
 *   max_abs    = max |y - x|        count      = number of values
 *   relative RMS = sqrt(sum_sq_err / sum_sq_ref)
 *   SNR (dB)     = 10 log10(sum_sq_ref / sum_sq_err)
 * sum_sq_err == 0 (and no non-finite value): "exact". sum_sq_ref == 0 with
 * sum_sq_err > 0 (an all-zero source stored as something else): relative
 * RMS and SNR are undefined (mc_qerr_stats.defined = 0; reports print
 * "n/a" / JSON null).
 *
 * What y is (docs/QUANT.md "Quantization error"):
 *   affine  y = fma(q, scale, bias) (q * scale + bias rounded once to
 *           float32: a fused multiply-add),
 *           scale and bias read from the stored scale dtype (f16/bf16/f32)
 *           exactly, q the stored code: MLX's dequantization of what was
 *           written;
 *   float   the stored f16/bf16/f32 element, exactly;
 *   values  y given by the caller (e.g. MLX mxfp4 dequantized).
 * x and y are float32; d = fl32(y - x); d*d (and for float and values
 * x*x) summed in float32 by fused multiply-adds (C's fmaf: one rounding
 * per step); for affine, a row's x*x is its groups' mc_quant_affine_sumsq
 * (what the quantizer's min/max pass sums), in double, added in row order.
 *
 * Determinism: every row is summed in a fixed order (element i into lane
 * i % 16; per block of 128 values of the row, each lane sums in float32
 * from zero, then adds that to the row's double lane; the 16 lanes added in
 * a fixed tree), and each row's sum is added to an
 * exact accumulator (mc_xsum: a fixed-point
 * integer wide enough for any finite non-negative double). Exact sums are
 * order independent, so the totals are the same bits whatever the thread
 * count, the chunking of rows or the merge order. max_abs is a max.
 * A value whose error or square is not finite (an f32 source beyond f16's
 * range stored as f16: inf) is counted in `nonfinite` and left out of the
 * sums and max. */
#ifndef MC_QERR_H
#define MC_QERR_H

#include <stdint.h>
#include "mc_error.h"
#include "mc_mlx.h"

/* Exact sum of non-negative finite doubles: 32-bit digits in 64-bit limbs
 * (the carries are propagated every 2^31 additions and when read). Bit 0 of
 * digit 0 weighs 2^-1074. */
#define MC_XSUM_LIMBS 68
typedef struct mc_xsum {
    uint64_t d[MC_XSUM_LIMBS];
    uint64_t adds; /* additions since the carries were last propagated */
} mc_xsum;

void mc_xsum_add(mc_xsum *s, double v);             /* v >= 0 and finite (else ignored) */
void mc_xsum_merge(mc_xsum *dst, const mc_xsum *src);
double mc_xsum_value(const mc_xsum *s);             /* the sum, rounded to double */

typedef struct mc_qerr {
    mc_xsum err, ref;
    double max_abs;
    uint64_t count;     /* values compared */
    uint64_t nonfinite; /* values left out: error not finite */
} mc_qerr;

void mc_qerr_init(mc_qerr *q);
/* dst += src (exact; any order gives the same result). */
void mc_qerr_merge(mc_qerr *dst, const mc_qerr *src);

/* Rows of ncols source values x (row-major) against:
 *   affine: the stored rows wq (ncols*bits/32 words each), scales and biases
 *           (ncols/group_size per row, in p->scale_type). MC_ERR_ARG for bad
 *           parameters (mc_quant_affine_check) or ncols not a multiple of 8.
 *   float:  stored elements of type (MC_T_F16, MC_T_BF16, MC_T_F32);
 *           MC_ERR_ARG for another type.
 *   values: y, f32. */
int mc_qerr_affine(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                   const uint32_t *wq, const void *scales, const void *biases, mc_error *err);
/* Quantize (mc_quant_affine_quantize: the same bytes) and measure the rows
 * as mc_qerr_affine would (the same bits), each run of groups right after
 * it is quantized, from the quantizer's codes (no second pass over the
 * stored words). On a quantization error q holds the rows before it. */
int mc_qerr_affine_quantize(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                            uint32_t *wq, void *scales, void *biases, mc_error *err);
int mc_qerr_float(mc_qerr *q, const float *x, uint64_t nrows, uint64_t ncols, int type, const void *stored,
                  mc_error *err);
void mc_qerr_values(mc_qerr *q, const float *x, const float *y, uint64_t nrows, uint64_t ncols);

/* The figures of an accumulator. */
typedef struct mc_qerr_stats {
    double sum_sq_err, sum_sq_ref, max_abs;
    uint64_t count, nonfinite;
    int exact;        /* sum_sq_err == 0 and nonfinite == 0 */
    int defined;      /* rel_rms and snr_db defined (sum_sq_ref > 0, not exact) */
    double rel_rms;   /* sqrt(err/ref); 0 when exact */
    double snr_db;    /* 10 log10(ref/err); +inf when exact */
} mc_qerr_stats;

void mc_qerr_stats_get(const mc_qerr *q, mc_qerr_stats *s);

/* on = 1: the plain C loop (the reference; what ARM builds run, vectorized
 * by the compiler where it can) for every later call; on = 2: at most the
 * AVX2 loops (not AVX-512); 0: the fastest loops this processor has (on
 * x86-64, chosen at run time: AVX-512 F/BW/VL/DQ, else AVX2 with FMA and
 * F16C, else plain C). All give the same bits (fused multiply-adds are
 * defined to the bit). For tests and benchmarks; not thread safe against
 * calls in flight. mc_qerr_vector_path(): the loops a call would take now:
 * 0 plain C, 2 AVX2, 3 AVX-512. */
void mc_qerr_set_scalar(int on);
int mc_qerr_vector_path(void);

#endif
