/* mc_types: the one type-traits table.
 *
 * mc_type values 0..42 are exactly GGML's type ids (ggml.h); removed GGML
 * ids (4, 5, 31-33, 36-38) have no traits. Values from 64 on are element
 * types that only safetensors carries. Every size computation on tensor
 * data goes through this table.
 */
#ifndef MC_TYPES_H
#define MC_TYPES_H

#include <stdint.h>
#include <stddef.h>

typedef enum mc_type {
    MC_T_F32 = 0, MC_T_F16 = 1, MC_T_Q4_0 = 2, MC_T_Q4_1 = 3,
    MC_T_Q5_0 = 6, MC_T_Q5_1 = 7, MC_T_Q8_0 = 8, MC_T_Q8_1 = 9,
    MC_T_Q2_K = 10, MC_T_Q3_K = 11, MC_T_Q4_K = 12, MC_T_Q5_K = 13,
    MC_T_Q6_K = 14, MC_T_Q8_K = 15, MC_T_IQ2_XXS = 16, MC_T_IQ2_XS = 17,
    MC_T_IQ3_XXS = 18, MC_T_IQ1_S = 19, MC_T_IQ4_NL = 20, MC_T_IQ3_S = 21,
    MC_T_IQ2_S = 22, MC_T_IQ4_XS = 23, MC_T_I8 = 24, MC_T_I16 = 25,
    MC_T_I32 = 26, MC_T_I64 = 27, MC_T_F64 = 28, MC_T_IQ1_M = 29,
    MC_T_BF16 = 30, MC_T_TQ1_0 = 34, MC_T_TQ2_0 = 35, MC_T_MXFP4 = 39,
    MC_T_NVFP4 = 40, MC_T_Q1_0 = 41, MC_T_Q2_0 = 42,
    MC_T_GGML_COUNT = 43,
    /* safetensors-only element types */
    MC_T_BOOL = 64, MC_T_U8 = 65, MC_T_U16 = 66, MC_T_U32 = 67, MC_T_U64 = 68,
    MC_T_F8_E4M3 = 69, MC_T_F8_E5M2 = 70, MC_T_F8_E8M0 = 71,
    MC_T_F4 = 72,      /* E2M1, two per byte, low nibble first */
    MC_T_F6_E2M3 = 73, /* four per 3 bytes */
    MC_T_F6_E3M2 = 74,
    MC_T_C64 = 75,     /* complex64: two f32 */
    /* internal block types (no GGUF id, no safetensors dtype) */
    MC_T_Q4_0_BF16 = 76, /* Q4_0's layout with a bf16 d: compressed-tensors INT4 with bf16 group scales */
    MC_T_COUNT = 77
} mc_type;

/* Convert n elements (n a multiple of blck) from src to f32. */
typedef void (*mc_to_f32_fn)(const void *src, float *dst, int64_t n);

typedef struct mc_type_traits {
    const char *name;      /* GGML spelling ("q4_K", "bf16"); NULL = no such type */
    const char *st_name;   /* safetensors dtype string ("BF16"), NULL if none */
    uint32_t blck;         /* elements per block */
    uint32_t type_size;    /* bytes per block */
    uint8_t is_quant;      /* block-quantized GGML type */
    uint8_t in_gguf;       /* a valid GGUF tensor type id */
    uint8_t is_float;      /* plain float element type (F16, BF16, F32, F64, F8*) */
    mc_to_f32_fn to_f32;   /* NULL when values cannot be decoded to f32 */
    uint8_t src_bits;      /* --recipe source: the MLX affine bits a tensor of this
                              block type keeps (Q6_K -> 6, ...; docs/QUANT.md);
                              0 for float and integer element types (they keep --bits) */
} mc_type_traits;

/* Traits of t, or NULL when t is not a defined type (including removed ids). */
const mc_type_traits *mc_type_get(int t);
/* Name or "type<N>" for an unknown id (static buffer per call site not needed:
 * returns "?" for unknown). */
const char *mc_type_name(int t);
/* Look up by GGML name (case-insensitive) or safetensors dtype string; -1 if none. */
int mc_type_from_name(const char *name);
int mc_type_from_st_name(const char *st_name);

/* Bytes for n elements of type t: 0 on success, non-zero if n is not a
 * multiple of the block size, t is undefined, or the size overflows. */
int mc_type_nbytes(int t, uint64_t n, uint64_t *out);

/* The bits --recipe source gives a tensor stored as t (0: keep --bits). */
int mc_type_src_bits(int t);

/* Bits per weight (type_size * 8 / blck). */
double mc_type_bpw(int t);

#endif
