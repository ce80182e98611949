/* mc_repack: GGML blocks -> MLX affine groups / mxfp4 without requantizing.
 * See mc_repack.h for the mapping and the exactness table. */
#include "mc_repack.h"
#include "mc_float.h"
#include "mc_types.h"

#include <math.h>
#include <string.h>

static float h2f(const uint8_t *p) { return mc_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int mc_quant_repack_mx_mode(int ggml_type)
{
    return ggml_type == MC_T_MXFP4 ? MC_MX_MXFP4 : ggml_type == MC_T_NVFP4 ? MC_MX_NVFP4 : 0;
}

void mc_quant_ct_int4_blocks(const uint8_t *packed, const uint8_t *scales, uint64_t ngroups, uint8_t *blocks)
{
    for (uint64_t g = 0; g < ngroups; g++, packed += 16, scales += 2, blocks += 18) {
        uint8_t e[32];
        for (int i = 0; i < 32; i++) e[i] = (uint8_t)((rd32(packed + 4 * (i / 8)) >> (4 * (i % 8))) & 0x0Fu);
        blocks[0] = scales[0];
        blocks[1] = scales[1];
        for (int j = 0; j < 16; j++) blocks[2 + j] = (uint8_t)(e[j] | (e[j + 16] << 4));
    }
}

int mc_quant_repack_supported(int ggml_type, int scale_type, int *bits, int *group, int *exact)
{
    int b, ex;
    if (ggml_type != MC_T_MXFP4 && !mc_quant_scale_bytes(scale_type)) return 0;
    switch (ggml_type) {
    case MC_T_Q4_0: case MC_T_Q4_1: b = 4; ex = scale_type != MC_T_BF16; break;
    case MC_T_Q4_0_BF16: b = 4; ex = scale_type != MC_T_F16; break;
    case MC_T_Q5_0: case MC_T_Q5_1: b = 5; ex = scale_type != MC_T_BF16; break;
    case MC_T_Q8_0: b = 8; ex = scale_type != MC_T_BF16; break;
    case MC_T_Q4_K: b = 4; ex = scale_type == MC_T_F32; break;
    case MC_T_Q5_K: b = 5; ex = scale_type == MC_T_F32; break;
    case MC_T_MXFP4: b = 4; ex = 1; break;
    default: return 0; /* NVFP4: see mc_quant_repack_mx_mode */
    }
    if (bits) *bits = b;
    if (group) *group = 32;
    if (exact) *exact = ex;
    return 1;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* 8 bytes, each holding a 4-bit code -> one 32-bit MLX word (byte k at
 * bits 4k): pairs of fields merged in three steps. */
static uint32_t nib8(uint64_t v)
{
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FFull;
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFull;
    v = (v | (v >> 16)) & 0x00000000FFFFFFFFull;
    return (uint32_t)v;
}

/* Store scale and bias of group gi; nonzero if a finite value overflows. */
static int put_sb(void *scales, void *biases, uint64_t gi, int st, float s, float b)
{
    if (st == MC_T_F16 || st == MC_T_BF16) {
        /* convert once and test the stored bits for infinity (reading them
         * back through mc_quant_scale_get was 15% of a --lossless run) */
        uint16_t hs = st == MC_T_F16 ? mc_f32_to_f16(s) : mc_f32_to_bf16(s);
        uint16_t hb = st == MC_T_F16 ? mc_f32_to_f16(b) : mc_f32_to_bf16(b);
        memcpy((unsigned char *)scales + gi * 2, &hs, 2);
        memcpy((unsigned char *)biases + gi * 2, &hb, 2);
        const uint16_t inf = st == MC_T_F16 ? 0x7C00u : 0x7F80u;
        return (hs & 0x7FFFu) == inf || (hb & 0x7FFFu) == inf;
    }
    mc_quant_scale_put(scales, gi, st, s);
    mc_quant_scale_put(biases, gi, st, b);
    return isinf(mc_quant_scale_get(scales, gi, st)) || isinf(mc_quant_scale_get(biases, gi, st));
}

/* Q4_K/Q5_K 6-bit scale and min of sub-block j (ggml get_scale_min_k4). */
static void scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

#define REFUSE_NONFINITE(blk)                                                                  \
    return mc_error_set(err, MC_ERR_UNSUPPORTED,                                               \
                        "repack %s: block %llu has a non-finite scale; MLX cannot express it", \
                        mc_type_name(ggml_type), (unsigned long long)(blk))
#define REFUSE_OVERFLOW(blk)                                                                   \
    return mc_error_set(err, MC_ERR_UNSUPPORTED,                                               \
                        "repack %s: block %llu: scale or bias overflows %s; use f32 scales",   \
                        mc_type_name(ggml_type), (unsigned long long)(blk),                    \
                        mc_type_name(scale_type))

int mc_quant_repack(int ggml_type, const void *blocks, uint64_t nrows, uint64_t ncols,
                    int scale_type, uint32_t *wq, void *scales, void *biases,
                    mc_affine *out_params, mc_error *err)
{
    int bits = 4, group = 16, exact = 1;
    if (ggml_type != MC_T_NVFP4 && !mc_quant_repack_supported(ggml_type, scale_type, &bits, &group, &exact))
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "repack: %s with %s scales has no lossless MLX form",
                            mc_type_name(ggml_type), mc_type_name(scale_type));
    const mc_type_traits *tr = mc_type_get(ggml_type);
    if (!tr || ncols == 0 || ncols % tr->blck)
        return mc_error_set(err, MC_ERR_ARG, "repack %s: row length %llu is not a multiple of %u",
                            mc_type_name(ggml_type), (unsigned long long)ncols,
                            tr ? tr->blck : 0u);
    uint64_t n;
    if (mc_mul_u64(nrows, ncols, &n))
        return mc_error_set(err, MC_ERR_OVERFLOW, "repack: %llu x %llu overflows",
                            (unsigned long long)nrows, (unsigned long long)ncols);
    const int fp_mode = ggml_type == MC_T_MXFP4 || ggml_type == MC_T_NVFP4;
    if (n && (!blocks || !wq || !scales || (!fp_mode && !biases)))
        return mc_error_set(err, MC_ERR_ARG, "repack: NULL buffer");
    const uint8_t *b = blocks;
    const uint64_t ngroups = n / 32, gw = (uint64_t)bits; /* 32*bits/32 words per group */
    (void)exact;
    const int st = scale_type;
    uint8_t q[32];

    switch (ggml_type) {
    case MC_T_Q4_0: case MC_T_Q4_1: case MC_T_Q4_0_BF16: {
        const int has_m = ggml_type == MC_T_Q4_1, bf = ggml_type == MC_T_Q4_0_BF16;
        const uint64_t bs = has_m ? 20 : 18;
        for (uint64_t g = 0; g < ngroups; g++, b += bs) {
            float d = bf ? mc_bf16_to_f32((uint16_t)(b[0] | (b[1] << 8))) : h2f(b), c = has_m ? h2f(b + 2) : -8.0f * d;
            if (!isfinite(d) || !isfinite(c)) REFUSE_NONFINITE(g);
            /* low nibbles are elements 0..15, high nibbles 16..31: MLX's
             * words 0, 1 are the low nibbles of bytes 0-7, 8-15, words 2, 3
             * their high nibbles */
            const uint8_t *qs = b + (has_m ? 4 : 2);
            const uint64_t lo = le64(qs), hi = le64(qs + 8), m4 = 0x0F0F0F0F0F0F0F0Full;
            uint32_t *o = wq + g * gw;
            o[0] = nib8(lo & m4);
            o[1] = nib8(hi & m4);
            o[2] = nib8((lo >> 4) & m4);
            o[3] = nib8((hi >> 4) & m4);
            if (st == MC_T_F16 && !bf) {
                /* the block's own f16 bits are the scale (and Q4_1's min
                 * the bias): a finite f16 round-trips through f32 exactly */
                uint16_t hs = (uint16_t)(b[0] | (b[1] << 8));
                uint16_t hb = has_m ? (uint16_t)(b[2] | (b[3] << 8)) : mc_f32_to_f16(c);
                memcpy((unsigned char *)scales + g * 2, &hs, 2);
                memcpy((unsigned char *)biases + g * 2, &hb, 2);
                if ((hb & 0x7FFFu) == 0x7C00u) REFUSE_OVERFLOW(g);
            } else if (put_sb(scales, biases, g, st, d, c)) {
                REFUSE_OVERFLOW(g);
            }
        }
        break;
    }
    case MC_T_Q5_0: case MC_T_Q5_1: {
        const int has_m = ggml_type == MC_T_Q5_1;
        const uint64_t bs = has_m ? 24 : 22;
        for (uint64_t g = 0; g < ngroups; g++, b += bs) {
            float d = h2f(b), c = has_m ? h2f(b + 2) : -16.0f * d;
            if (!isfinite(d) || !isfinite(c)) REFUSE_NONFINITE(g);
            const uint32_t qh = rd32(b + (has_m ? 4 : 2));
            const uint8_t *qs = b + (has_m ? 8 : 6);
            for (int j = 0; j < 16; j++) {
                q[j] = (uint8_t)((qs[j] & 0x0F) | (((qh >> j) & 1u) << 4));
                q[j + 16] = (uint8_t)((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
            }
            mc_quant_pack_codes(q, 32, 5, wq + g * gw);
            if (put_sb(scales, biases, g, st, d, c)) REFUSE_OVERFLOW(g);
        }
        break;
    }
    case MC_T_Q8_0:
        for (uint64_t g = 0; g < ngroups; g++, b += 34) {
            float d = h2f(b), c = -128.0f * d;
            if (!isfinite(d)) REFUSE_NONFINITE(g);
            for (int j = 0; j < 32; j++) q[j] = (uint8_t)(b[2 + j] ^ 0x80u);
            mc_quant_pack_codes(q, 32, 8, wq + g * gw);
            if (put_sb(scales, biases, g, st, d, c)) REFUSE_OVERFLOW(g);
        }
        break;
    case MC_T_Q4_K: case MC_T_Q5_K: {
        const int five = ggml_type == MC_T_Q5_K;
        const uint64_t bs = five ? 176 : 144;
        for (uint64_t blk = 0; blk < n / 256; blk++, b += bs) {
            const float d = h2f(b), dmin = h2f(b + 2);
            if (!isfinite(d) || !isfinite(dmin)) REFUSE_NONFINITE(blk);
            const uint8_t *sc = b + 4;
            const uint8_t *qh = b + 16;
            const uint8_t *ql = b + (five ? 48 : 16);
            for (int is = 0; is < 8; is++) {
                const uint8_t *qq = ql + 32 * (is / 2);
                const int hi = is & 1;
                int s6, m6;
                scale_min_k4(is, sc, &s6, &m6);
                for (int l = 0; l < 32; l++) {
                    uint8_t v = hi ? (uint8_t)(qq[l] >> 4) : (uint8_t)(qq[l] & 0x0F);
                    if (five) v = (uint8_t)(v | (((qh[l] >> is) & 1u) << 4));
                    q[l] = v;
                }
                uint64_t g = blk * 8 + (uint64_t)is;
                mc_quant_pack_codes(q, 32, bits, wq + g * gw);
                /* ggml: y = (d*sc)*q - (dmin*m); MLX: q*scale + bias */
                const float s = d * (float)s6, mm = dmin * (float)m6;
                if (put_sb(scales, biases, g, st, s, -mm)) REFUSE_OVERFLOW(blk);
            }
        }
        break;
    }
    case MC_T_MXFP4: {
        uint8_t *sc8 = scales;
        for (uint64_t g = 0; g < ngroups; g++, b += 17) {
            if (b[0] == 0xFF) REFUSE_NONFINITE(g);
            sc8[g] = b[0];
            for (int j = 0; j < 16; j++) { q[j] = b[1 + j] & 0x0F; q[j + 16] = b[1 + j] >> 4; }
            mc_quant_pack_codes(q, 32, 4, wq + g * gw);
        }
        break;
    }
    case MC_T_NVFP4: {
        /* ggml: 64 values = 4 sub-blocks of 16, unsigned e4m3 scale bytes
         * (bit 7 ignored, except that the byte 0x7F decodes to 0 while 0xFF
         * decodes to 480 like MLX's 0x7F), value = kvalue/2 * e4m3 =
         * lut * e4m3; sub-block s: byte j low nibble = element j, high =
         * element j+8. MLX nvfp4: group 16, signed e4m3 byte (FromFP8; 0x7F
         * would be 480), element k at nibble k. */
        uint8_t *sc8 = scales;
        for (uint64_t blk = 0; blk < n / 64; blk++, b += 36) {
            for (int sb = 0; sb < 4; sb++) {
                uint64_t g = blk * 4 + (uint64_t)sb;
                sc8[g] = b[sb] == 0x7F ? 0 : (uint8_t)(b[sb] & 0x7Fu);
                const uint8_t *qs = b + 4 + 8 * sb;
                for (int j = 0; j < 8; j++) { q[j] = qs[j] & 0x0F; q[j + 8] = qs[j] >> 4; }
                uint32_t *o = wq + g * 2;
                o[0] = o[1] = 0;
                for (int k = 0; k < 16; k++) o[k / 8] |= (uint32_t)q[k] << (4 * (k % 8));
            }
        }
        break;
    }
    default:
        break;
    }
    if (out_params) {
        out_params->bits = bits;
        out_params->group_size = ggml_type == MC_T_NVFP4 ? 16 : 32;
        out_params->scale_type = ggml_type == MC_T_MXFP4   ? (int)MC_T_F8_E8M0
                                 : ggml_type == MC_T_NVFP4 ? (int)MC_T_F8_E4M3
                                                           : scale_type;
    }
    return 0;
}

void mc_quant_mxfp4_from_hub(const uint8_t *codes, const uint8_t *scales, uint64_t ngroups, void *dst)
{
    uint8_t *o = dst;
    for (uint64_t g = 0; g < ngroups; g++, codes += 16, o += 17) {
        o[0] = scales[g];
        for (int j = 0; j < 16; j++) {
            /* element j: hub byte j / 2, nibble j % 2; element j + 16: byte 8 + j / 2 */
            unsigned sh = (unsigned)(j & 1) * 4;
            unsigned lo = (codes[j >> 1] >> sh) & 15u, hi = (codes[8 + (j >> 1)] >> sh) & 15u;
            o[1 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}
