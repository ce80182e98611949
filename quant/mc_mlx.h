/* mc_mlx: MLX's quantization formats, reproduced bit for bit (pure functions).
 *
 * Source of every rule: ml-explore/mlx, mlx/ops.cpp (affine_quantize,
 * fp_quantize, fp_dequantize, affine_dequantize fallback) and
 * mlx/backend/cpu/quantized.cpp (the CPU affine quantize kernel and packing).
 *
 * Affine mode (mlx "affine", what mlx-lm writes as {"group_size", "bits"}):
 *   per group of group_size values, all in float32 exactly as MLX's CPU kernel:
 *     w_max, w_min       over the group
 *     mask  = |w_min| > |w_max|
 *     scale = max((w_max - w_min) / (2^bits - 1), 1e-7f); scale = mask ? scale : -scale
 *     edge  = mask ? w_min : w_max
 *     q0    = rint(edge / scale)
 *     if q0 != 0: scale = edge / q0, bias = edge   else bias = 0
 *     q     = clamp(rint((w - bias) / scale), 0, 2^bits - 1)   (float32 scale, not the rounded one)
 *   then scale and bias are rounded (nearest even) to scale_type.
 *   The grid is anchored at the larger-magnitude extreme `edge` (q = 0 there,
 *   exactly representable); the step is stretched to edge/q0, so values at
 *   the other extreme may clamp by more than half a step: that is MLX's
 *   behaviour and is kept.
 * Packing: every row is a little-endian LSB-first bitstream of `bits`-bit
 *   codes (MLX writes 2/4/8 bits as uint32 words with element k at bit
 *   k*bits; 3 and 5 bits as 8 codes in 3 or 5 bytes, 6 bits as 4 codes in
 *   3 bytes, low bits first: all the same bitstream). Word i of a row holds
 *   stream bits 32i..32i+31, so on a little-endian host the memory is MLX's
 *   exactly. A group is group_size*bits/32 whole words.
 * Dequantize (MLX's CPU path: multiply then add, each in the scale dtype):
 *   w = round_T(round_T(q * scale) + bias), T = scale_type (f32: plain float
 *   multiply then add, never fused).
 *
 * Non-finite inputs (NaN, Inf) are refused with MC_ERR_ARG (MLX's own output
 * for them is garbage and platform dependent).
 */
#ifndef MC_MLX_H
#define MC_MLX_H

#include <stdint.h>
#include "mc_error.h"
#include "mc_types.h"

typedef struct mc_affine {
    int bits;        /* 2, 3, 4, 5, 6 or 8 */
    int group_size;  /* 32, 64 or 128 */
    int scale_type;  /* MC_T_F16, MC_T_BF16 or MC_T_F32 (MLX: the weight's dtype) */
} mc_affine;

/* uint32 words per packed row = ncols*bits/32 (0 when not a whole number). */
uint64_t mc_quant_affine_row_words(uint64_t ncols, int bits);

/* Bytes per scale/bias element for MC_T_F16/BF16 (2), F32 (4); 0 otherwise. */
int mc_quant_scale_bytes(int scale_type);

/* Check p and ncols (ncols % group_size == 0, ncols*bits % 32 == 0). */
int mc_quant_affine_check(const mc_affine *p, uint64_t ncols, mc_error *err);

/* x: nrows x ncols f32. wq: nrows*row_words uint32; scales, biases:
 * nrows*(ncols/group_size) elements of scale_type each. Exactly MLX's CPU
 * affine quantization (see above). */
int mc_quant_affine_quantize(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                             uint32_t *wq, void *scales, void *biases, mc_error *err);

/* The same quantization, handing each run of groups it has just stored to
 * `sink` while its values and codes are still in cache (the error
 * measurement, quant/mc_qerr.c, reads them there instead of unpacking the
 * stored words again): row, the run's first group within the row, its
 * group count n, its n*group_size source values x and codes (one byte
 * each, what the packed words hold), the n groups' sums of squares (sq,
 * as mc_quant_affine_sumsq computes them: the quantizer's min/max pass
 * sums them anyway, as its finiteness check), the n groups' scales and
 * biases as stored (sv, bv: rounded to scale_type, as float32, exactly;
 * where the AVX-512 passes run, which have them in registers, else NULL:
 * read them from the stored arrays), and row_done when the run ends the
 * row. (Reading them back from the arrays just written and decoding them
 * made measuring a 768-column row about 12% slower.) Runs of a row come
 * in order; a run starts at a group index that is a multiple of 32 and
 * has at most 32 groups. The scales, biases and words of the run (and of
 * every earlier run) are already stored. The sink is not called for a
 * run that fails (non-finite value). */
typedef void (*mc_affine_sink)(void *ctx, uint64_t row, uint64_t group0, int n, const float *x,
                               const uint8_t *codes, const float *sq, const float *sv, const float *bv,
                               int row_done);
/* The sum of squares of one group of gs values (gs a multiple of 32) as the
 * quantizer's min/max pass computes it, the same bits on every path and
 * machine: 8 float32 lanes (value j to lane j % 8), x*x rounded then added
 * in order, the lanes added 0 to 7 left to right. Inf or NaN when a value
 * is, or when the sum passes FLT_MAX. */
float mc_quant_affine_sumsq(const float *x, int gs);

int mc_quant_affine_quantize_sink(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                                  uint32_t *wq, void *scales, void *biases, mc_affine_sink sink, void *ctx,
                                  mc_error *err);

/* The passes a call takes now (min/max and sums of squares, scales and
 * biases, codes, packing): 1 the ones this build was compiled with (SSE2
 * on x86-64, generic vectors or plain C elsewhere), 3 AVX-512 (x86-64
 * processors with F, BW, VL and DQ, chosen at run time). Both give the
 * same bytes and the same sums of squares.
 * mc_quant_affine_limit(1) keeps calls on the first, 0 lifts that: for
 * tests and benchmarks, not thread safe against calls in flight. */
int mc_quant_affine_path(void);
void mc_quant_affine_limit(int path);

/* out: nrows x ncols f32 holding MLX's dequantized values (which are values
 * of scale_type). */
int mc_quant_affine_dequantize(const uint32_t *wq, const void *scales, const void *biases,
                               uint64_t nrows, uint64_t ncols, const mc_affine *p, float *out,
                               mc_error *err);

/* The code of element i of a packed row (bitstream read). */
static inline uint32_t mc_quant_affine_code(const uint32_t *row, uint64_t i, int bits)
{
    uint64_t bit = i * (uint64_t)bits;
    uint64_t w = bit >> 5;
    unsigned sh = (unsigned)(bit & 31u);
    uint64_t v = row[w] >> sh;
    if (sh + (unsigned)bits > 32u) v |= (uint64_t)row[w + 1] << (32u - sh);
    return (uint32_t)(v & ((1u << bits) - 1u));
}

/* Pack n codes (n a multiple of 32, each < 2^bits) into n*bits/32 words of
 * MLX's bitstream, and back. */
void mc_quant_pack_codes(const uint8_t *q, uint64_t n, int bits, uint32_t *out);
void mc_quant_unpack_codes(const uint32_t *in, uint64_t n, int bits, uint8_t *q);

/* Scale/bias element i of an array of scale_type, as f32 (exact). */
float mc_quant_scale_get(const void *arr, uint64_t i, int scale_type);
/* Store f32 v into element i, rounded to nearest even in scale_type. */
void mc_quant_scale_put(void *arr, uint64_t i, int scale_type, float v);
/* Round f32 v to scale_type and back (identity for F32). */
float mc_quant_round_to(float v, int scale_type);

/* ---- MLX's floating-point modes (mlx "mxfp4", "mxfp8", "nvfp4") ----
 *
 *   mode    bits group scale (uint8)                           codes
 *   mxfp4   4    32    e8m0: 2^(s-127) (s = 0 decodes 2^-127)  e2m1 nibbles, element k at bits 4k
 *   mxfp8   8    32    e8m0                                    e4m3 bytes
 *   nvfp4   4    16    e4m3 (times global_scale/2688 if given) e2m1 nibbles
 *
 * Quantization follows MLX's fp_quantize fallback (the path the CPU runs),
 * with each operation in the dtype MLX does it in: the weight dtype `dtype`
 * (f16/bf16/f32) for amax/maxval, log2, round, the division by 2^n, and the
 * |w - lut| distance for mx modes; float32 for nvfp4 after the multiply by
 * the f32 scale encoding. The fp4 code is the argmin of |w - lut| over MLX's
 * 16-entry lut {+0,.5,1,1.5,2,3,4,6,-0,-.5,...,-6} with ties going to the lower
 * index (e.g. 2.5 -> 2.0, 5 -> 4, -0.25 -> +0). log2 is taken as
 * (float)log2((double)x), i.e. correctly rounded float32 log2 (MLX calls the
 * platform's float log2, which agrees except where a platform's log2f is off
 * by an ulp next to a rounding tie). */
enum { MC_MX_MXFP4 = 1, MC_MX_MXFP8 = 2, MC_MX_NVFP4 = 3 };

typedef struct mc_mx {
    int mode;              /* MC_MX_* */
    int dtype;             /* weight dtype MLX computes in: MC_T_F16, MC_T_BF16, MC_T_F32 */
    int has_global_scale;  /* nvfp4 only */
    float global_scale;    /* nvfp4 only, when has_global_scale */
} mc_mx;

/* bits and group size of a mode; MC_ERR_ARG for an unknown mode. */
int mc_quant_mx_params(int mode, int *bits, int *group_size);
/* Name used by MLX / mlx-lm ("mxfp4", ...) or NULL. */
const char *mc_quant_mx_name(int mode);

/* x: nrows x ncols f32 (ncols % group == 0). wq: nrows*ncols*bits/32 uint32;
 * scales: nrows*ncols/group bytes. */
int mc_quant_mx_quantize(const float *x, uint64_t nrows, uint64_t ncols, const mc_mx *p,
                         uint32_t *wq, uint8_t *scales, mc_error *err);
/* MLX's fp_dequantize fallback with output dtype out_type (MC_T_F16/BF16/F32):
 * lut value (or e4m3 value) times 2^(s-127) (mx) or e4m3(s)*global/2688
 * (nvfp4), each in out_type. */
int mc_quant_mx_dequantize(const uint32_t *wq, const uint8_t *scales, uint64_t nrows,
                           uint64_t ncols, const mc_mx *p, int out_type, float *out,
                           mc_error *err);

/* MLX's ToFP8 (float -> e4m3, nearest even, saturating to 448) and FromFP8. */
uint8_t mc_quant_to_e4m3(float f);
float mc_quant_from_e4m3(uint8_t x);

#endif
