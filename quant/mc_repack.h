/* mc_repack: lossless GGML block -> MLX quantization repacking (pure).
 *
 * Where a GGML block is an affine map per 32 values (w = q*d + c), its codes
 * are copied into MLX's packed bitstream and (d, c) become MLX's (scale,
 * bias) for group size 32, without dequantizing and requantizing. MLX's own
 * GGUF loader (mlx/io/gguf_quants.cpp) does this for Q4_0, Q4_1 and Q8_0
 * (scale d, bias -8d / m / -128d; Q8_0 codes XOR 0x80); the same rule
 * extends to Q5_0/Q5_1 and, per 32-value sub-block, to Q4_K/Q5_K.
 * GGML MXFP4 maps onto MLX's "mxfp4" mode (same e2m1 codes, same e8m0 byte),
 * GGML NVFP4 onto MLX's "nvfp4" (group 16, e4m3 byte, no global scale).
 *
 * "Exact" below: the scale and bias stored in scale_type represent ggml's
 * map exactly, so MLX's dequantizer with f32 scales (q*scale then + bias,
 * two float32 roundings) returns ggml's float32 values bit for bit (one
 * exception: ggml's (q-8)*d with q = 8 and d < 0 is -0.0 where MLX's
 * 8*d + (-8d) is +0.0; equal as values). With f16/bf16 scales MLX computes
 * in that dtype and its output is rounded to it; that rounding is MLX's
 * runtime precision, not a repacking loss.
 *
 *   ggml   bits group scale / bias                  F32    F16                  BF16
 *   Q4_0   4    32    d / -8d                       exact  exact (*)            d, -8d rounded to bf16
 *   Q4_1   4    32    d / m                         exact  exact                d, m rounded to bf16
 *   Q4_0_BF16 4 32    d / -8d  (d bf16)             exact  d, -8d rounded (**)  exact (*)
 *   Q5_0   5    32    d / -16d                      exact  exact (*)            d, -16d rounded to bf16
 *   Q5_1   5    32    d / m                         exact  exact                d, m rounded to bf16
 *   Q8_0   8    32    d / -128d  (codes q ^ 0x80)   exact  exact (*)            d, -128d rounded to bf16
 *   Q4_K   4    32    d*sc / -(dmin*m) per sub-block exact  d*sc, dmin*m rounded  rounded to bf16
 *   Q5_K   5    32    d*sc / -(dmin*m) per sub-block exact  d*sc, dmin*m rounded  rounded to bf16
 *   MXFP4  4    32    e8m0 byte copied (MLX mxfp4)   exact whatever scale_type (no bias)
 *   NVFP4  4    16    e4m3 byte, bit 7 cleared; 0x7F->0 (MLX nvfp4, no global scale)  exact
 *
 *   (*) unless the bias overflows f16 (|d| > 8188 for Q4_0, > 4094 for
 *   Q5_0, >= 512 for Q8_0): refused with MC_ERR_UNSUPPORTED.
 *   (**) mconv's internal block of compressed-tensors INT4 (Q4_0's layout,
 *   bf16 d). Exact in bf16: d is stored as is, and -8d = d * 2^3 only moves
 *   the exponent, so it is exact unless it overflows (|d| > 2^124 * (2 -
 *   2^-7), refused) - bf16 subnormals included, as a left shift by 3 of a
 *   subnormal significand loses no bit. Exact in f32 (bf16 is an f32 with
 *   the low 16 bits zero). In f16 only where d and 8d lie in f16's range
 *   and grid (|8d| <= 65504, d a multiple of 2^-24), so not listed exact.
 *   d is f16 (11-bit significand): bf16 (8 bits) rounds it unless its low 3
 *   significand bits are 0. d*sc (sc 6 bits) is a 17-bit product: exact in
 *   f32, rounded to nearest even in f16/bf16 (a relative change of at most
 *   2^-11 / 2^-8 of that sub-block's scale or min).
 *
 * Blocks with a non-finite scale (NaN/Inf f16, or e8m0 255) are refused
 * (MC_ERR_UNSUPPORTED): MLX cannot express ggml's values for them.
 */
#ifndef MC_REPACK_H
#define MC_REPACK_H

#include <stdint.h>
#include "mc_error.h"
#include "mc_mlx.h"

/* Can ggml_type be repacked to MLX with scales of scale_type (MC_T_F16, BF16,
 * F32)? Returns 1 and sets bits, group (32) and exact (1 when every finite
 * block is exact as described above, 0 when a scale product or bf16 rounds)
 * or returns 0. For MXFP4 the result is MLX's mxfp4 mode whatever scale_type
 * (exact = 1); callers wanting affine output must check
 * mc_quant_repack_mx_mode() == 0. NVFP4 is not listed here (it has no affine
 * form); mc_quant_repack still converts it to MLX nvfp4. Any pointer may be NULL. */
int mc_quant_repack_supported(int ggml_type, int scale_type, int *bits, int *group, int *exact);

/* MC_MX_MXFP4 / MC_MX_NVFP4 when mc_quant_repack turns ggml_type into that
 * MLX floating-point mode (uint8 scales, no biases), else 0 (affine). */
int mc_quant_repack_mx_mode(int ggml_type);

/* Repack nrows x ncols values stored as ggml_type blocks (row-major, ncols a
 * multiple of the block size) into MLX form:
 *   wq:     nrows * mc_quant_affine_row_words(ncols, bits) uint32
 *   scales: nrows * ncols/32 elements of scale_type (MXFP4: uint8 e8m0;
 *           NVFP4: nrows * ncols/16 uint8 e4m3)
 *   biases: nrows * ncols/32 elements of scale_type (unused for MXFP4/NVFP4; may be NULL)
 * out_params (may be NULL) receives {bits, group, scale_type}; for MXFP4 its
 * scale_type is MC_T_F8_E8M0 (MLX mode "mxfp4"), for NVFP4 MC_T_F8_E4M3 with
 * group 16 (MLX mode "nvfp4").
 * MC_ERR_UNSUPPORTED for a type that does not map, an f16 bias overflow or
 * a non-finite block scale (message names the block); MC_ERR_ARG for bad
 * shapes. */
int mc_quant_repack(int ggml_type, const void *blocks, uint64_t nrows, uint64_t ncols,
                    int scale_type, uint32_t *wq, void *scales, void *biases,
                    mc_affine *out_params, mc_error *err);

/* The transformers / OpenAI hub MXFP4 packing (gpt-oss *_blocks: byte k of
 * a group holds elements 2k (low nibble) and 2k + 1 (high); *_scales: the
 * e8m0 byte) as GGML MXFP4 blocks (17 bytes: the scale, then byte j holding
 * element j (low) and j + 16 (high)): ngroups groups of 16 code bytes in
 * codes and one byte in scales into ngroups * 17 bytes of dst. Pure nibble
 * moves: exact for every input. */
void mc_quant_mxfp4_from_hub(const uint8_t *codes, const uint8_t *scales, uint64_t ngroups, void *dst);

/* compressed-tensors INT4 ("pack-quantized", symmetric, group 32) to
 * 18-byte Q4_0-layout blocks: ngroups groups of 32 values, each 4 packed
 * int32 words (little-endian; element i of the group in bits 4 * (i % 8)
 * of word i / 8, stored as q + 8, compressed-tensors' pack_to_int32) and
 * one 2-byte scale (bf16 or f16, copied as is) -> block g = the scale, then
 * 16 bytes whose byte j holds element j (low nibble) and j + 16 (high).
 * Pure nibble moves: the block decodes to (q + 8 - 8) * scale, exactly
 * compressed-tensors' (unpacked - 8) * scale; with a bf16 scale the block
 * is MC_T_Q4_0_BF16, with an f16 one MC_T_Q4_0. */
void mc_quant_ct_int4_blocks(const uint8_t *packed, const uint8_t *scales, uint64_t ngroups, uint8_t *blocks);

#endif
