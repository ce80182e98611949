/* mc_mlx: MLX affine and floating-point quantization (see mc_mlx.h).
 *
 * Floating point: every operation below is one IEEE float32 operation in
 * source order (the build uses -ffp-contract=off; nothing here relies on
 * excess precision or fused multiply-add). Where MLX computes in f16/bf16,
 * the float32 result of an operation on f16/bf16 operands is rounded to the
 * narrow type: for +, -, *, / that double rounding equals the correctly
 * rounded narrow result because float32 has >= 2p+2 bits (p = 11 or 8).
 */
#include "mc_mlx.h"
#include "mc_float.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

int mc_quant_scale_bytes(int scale_type)
{
    switch (scale_type) {
    case MC_T_F16: case MC_T_BF16: return 2;
    case MC_T_F32: return 4;
    default: return 0;
    }
}

float mc_quant_round_to(float v, int scale_type)
{
    if (scale_type == MC_T_F16) return mc_f16_to_f32(mc_f32_to_f16(v));
    if (scale_type == MC_T_BF16) return mc_bf16_to_f32(mc_f32_to_bf16(v));
    return v;
}

float mc_quant_scale_get(const void *arr, uint64_t i, int scale_type)
{
    if (scale_type == MC_T_F32) {
        float f;
        memcpy(&f, (const unsigned char *)arr + i * 4, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const unsigned char *)arr + i * 2, 2);
    return scale_type == MC_T_F16 ? mc_f16_to_f32(h) : mc_bf16_to_f32(h);
}

void mc_quant_scale_put(void *arr, uint64_t i, int scale_type, float v)
{
    if (scale_type == MC_T_F32) {
        memcpy((unsigned char *)arr + i * 4, &v, 4);
        return;
    }
    uint16_t h = scale_type == MC_T_F16 ? mc_f32_to_f16(v) : mc_f32_to_bf16(v);
    memcpy((unsigned char *)arr + i * 2, &h, 2);
}

uint64_t mc_quant_affine_row_words(uint64_t ncols, int bits)
{
    if (bits <= 0 || bits > 32) return 0;
    if (ncols > UINT64_MAX / (uint64_t)bits) return 0;
    uint64_t nb = ncols * (uint64_t)bits;
    if (nb % 32u) return 0;
    return nb / 32u;
}

int mc_quant_affine_check(const mc_affine *p, uint64_t ncols, mc_error *err)
{
    if (!p) return mc_error_set(err, MC_ERR_ARG, "affine quantization: no parameters");
    if (p->bits < 2 || p->bits > 8 || p->bits == 7)
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: bits %d not supported (2, 3, 4, 5, 6, 8)", p->bits);
    if (p->group_size != 32 && p->group_size != 64 && p->group_size != 128)
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: group size %d not supported (32, 64, 128)",
                            p->group_size);
    if (!mc_quant_scale_bytes(p->scale_type))
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: scale type %d not f16, bf16 or f32", p->scale_type);
    if (ncols == 0 || ncols % (uint64_t)p->group_size)
        return mc_error_set(err, MC_ERR_ARG,
                            "affine quantization: row length %llu is not a multiple of group size %d",
                            (unsigned long long)ncols, p->group_size);
    return 0;
}

/* Round to nearest, ties to even, for |v| < 2^22 (1.5*2^23 trick). For
 * larger |v| the result still has the sign of v and magnitude >= 2^22, so
 * after the clamp to [0, 2^bits-1] it equals clamp(rint(v)). */
#define MC_RINT_MAGIC 12582912.0f

/* ---------------------------------------------------------------- packing */

/* Pack n codes (n a multiple of 32) of `bits` bits into n*bits/32 words as an
 * LSB-first bitstream. Inlined with a constant `bits`. */
static inline void pack_codes(const uint32_t *q, int n, int bits, uint32_t *out)
{
    if (bits == 2 || bits == 4 || bits == 8) {
        int per = 32 / bits;
        for (int w = 0; w < n / per; w++) {
            uint32_t v = 0;
            for (int k = 0; k < per; k++) v |= q[w * per + k] << (k * bits);
            out[w] = v;
        }
        return;
    }
    for (int c = 0; c < n / 32; c++) {
        const uint32_t *qc = q + c * 32;
        uint32_t *oc = out + c * bits;
        for (int w = 0; w < bits; w++) oc[w] = 0;
        for (int k = 0; k < 32; k++) {
            int pos = k * bits, w = pos >> 5, sh = pos & 31;
            oc[w] |= qc[k] << sh;
            if (sh + bits > 32) oc[w + 1] |= qc[k] >> (32 - sh);
        }
    }
}

static inline void unpack_codes(const uint32_t *in, int n, int bits, uint32_t *q)
{
    uint32_t mask = (1u << bits) - 1u;
    if (bits == 2 || bits == 4 || bits == 8) {
        int per = 32 / bits;
        for (int w = 0; w < n / per; w++)
            for (int k = 0; k < per; k++) q[w * per + k] = (in[w] >> (k * bits)) & mask;
        return;
    }
    for (int c = 0; c < n / 32; c++) {
        const uint32_t *ic = in + c * bits;
        uint32_t *qc = q + c * 32;
        for (int k = 0; k < 32; k++) {
            int pos = k * bits, w = pos >> 5, sh = pos & 31;
            uint32_t v = ic[w] >> sh;
            if (sh + bits > 32) v |= ic[w + 1] << (32 - sh);
            qc[k] = v & mask;
        }
    }
}

/* ------------------------------------------------------- affine quantize */

/* One group: returns 0, or 1 when it holds a NaN or an infinity. */
static inline int affine_group(const float *x, int gs, int bits, uint32_t *out, float *scale_o,
                               float *bias_o)
{
    const float n_bins = (float)((1 << bits) - 1);
    const float eps = 1e-7f;
    float mx[8], mn[8], chk[8];
    for (int l = 0; l < 8; l++) { mx[l] = x[l]; mn[l] = x[l]; chk[l] = x[l] - x[l]; }
    for (int j = 8; j < gs; j += 8)
        for (int l = 0; l < 8; l++) {
            float v = x[j + l];
            mx[l] = mx[l] < v ? v : mx[l];
            mn[l] = mn[l] > v ? v : mn[l];
            chk[l] = chk[l] + (v - v);
        }
    float w_max = mx[0], w_min = mn[0], c = chk[0];
    for (int l = 1; l < 8; l++) {
        w_max = w_max < mx[l] ? mx[l] : w_max;
        w_min = w_min > mn[l] ? mn[l] : w_min;
        c = c + chk[l];
    }
    if (c != 0.0f || c != c) return 1; /* NaN or Inf somewhere (v - v is NaN) */

    int mask = fabsf(w_min) > fabsf(w_max);
    float scale = (w_max - w_min) / n_bins;
    scale = scale < eps ? eps : scale; /* std::max(scale, eps) */
    scale = mask ? scale : -scale;
    float edge = mask ? w_min : w_max;
    float q0 = rintf(edge / scale);
    float bias = 0.0f;
    if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
    }
    uint32_t q[128];
    for (int j = 0; j < gs; j++) {
        float v = (x[j] - bias) / scale;
        v = (v + MC_RINT_MAGIC) - MC_RINT_MAGIC;
        v = v > 0.0f ? v : 0.0f;
        v = v < n_bins ? v : n_bins;
        q[j] = (uint32_t)(int32_t)v;
    }
    pack_codes(q, gs, bits, out);
    *scale_o = scale;
    *bias_o = bias;
    return 0;
}

static int affine_rows(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                       uint32_t *wq, void *scales, void *biases, int bits, mc_error *err)
{
    const int gs = p->group_size;
    const uint64_t ng = ncols / (uint64_t)gs;
    const uint64_t gw = (uint64_t)gs * (uint64_t)bits / 32u;
    for (uint64_t r = 0; r < nrows; r++) {
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t gi = r * ng + g;
            float s, b;
            if (affine_group(x + gi * (uint64_t)gs, gs, bits, wq + gi * gw, &s, &b))
                return mc_error_set(err, MC_ERR_ARG,
                                    "affine quantization: non-finite value in row %llu, group %llu",
                                    (unsigned long long)r, (unsigned long long)g);
            mc_quant_scale_put(scales, gi, p->scale_type, s);
            mc_quant_scale_put(biases, gi, p->scale_type, b);
        }
    }
    return 0;
}

int mc_quant_affine_quantize(const float *x, uint64_t nrows, uint64_t ncols, const mc_affine *p,
                             uint32_t *wq, void *scales, void *biases, mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    if (nrows && (!x || !wq || !scales || !biases))
        return mc_error_set(err, MC_ERR_ARG, "affine quantization: NULL buffer");
    /* Specialise the hot loop per bit width (constant bits inlines the packer). */
    switch (p->bits) {
    case 2: return affine_rows(x, nrows, ncols, p, wq, scales, biases, 2, err);
    case 3: return affine_rows(x, nrows, ncols, p, wq, scales, biases, 3, err);
    case 4: return affine_rows(x, nrows, ncols, p, wq, scales, biases, 4, err);
    case 5: return affine_rows(x, nrows, ncols, p, wq, scales, biases, 5, err);
    case 6: return affine_rows(x, nrows, ncols, p, wq, scales, biases, 6, err);
    default: return affine_rows(x, nrows, ncols, p, wq, scales, biases, 8, err);
    }
}

/* ----------------------------------------------------- affine dequantize */

int mc_quant_affine_dequantize(const uint32_t *wq, const void *scales, const void *biases,
                               uint64_t nrows, uint64_t ncols, const mc_affine *p, float *out,
                               mc_error *err)
{
    int rc = mc_quant_affine_check(p, ncols, err);
    if (rc) return rc;
    if (nrows && (!out || !wq || !scales || !biases))
        return mc_error_set(err, MC_ERR_ARG, "affine dequantization: NULL buffer");
    const int gs = p->group_size, bits = p->bits, st = p->scale_type;
    const uint64_t ng = ncols / (uint64_t)gs;
    const uint64_t gw = (uint64_t)gs * (uint64_t)bits / 32u;
    uint32_t q[128];
    for (uint64_t gi = 0; gi < nrows * ng; gi++) {
        unpack_codes(wq + gi * gw, gs, bits, q);
        float s = mc_quant_scale_get(scales, gi, st);
        float b = mc_quant_scale_get(biases, gi, st);
        float *o = out + gi * (uint64_t)gs;
        if (st == MC_T_F32) {
            for (int j = 0; j < gs; j++) {
                float m = (float)q[j] * s;
                o[j] = m + b;
            }
        } else {
            for (int j = 0; j < gs; j++) {
                float m = mc_quant_round_to((float)q[j] * s, st);
                o[j] = mc_quant_round_to(m + b, st);
            }
        }
    }
    return 0;
}
