/* mc_float: scalar float conversions (pure, header-only so they inline).
 * f16/bf16 from f32 round to nearest even; subnormals, Inf and NaN are kept
 * (a NaN stays a NaN: quiet bit forced so it never becomes Inf). */
#ifndef MC_FLOAT_H
#define MC_FLOAT_H

#include <stdint.h>
#include <string.h>

static inline float mc_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t mc_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float mc_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else {
        /* subnormal: value = man * 2^-24, exact in f32 */
        float f = (float)man * (1.0f / 16777216.0f);
        u = sign | mc_f32_bits(f);
    }
    return mc_f32_from_bits(u);
}

static inline uint16_t mc_f32_to_f16(float f)
{
    uint32_t x = mc_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below the smallest normal f16 (2^-14) */
        if (ax < 0x33000000u) return sign; /* below half the smallest subnormal: 0 (2^-25 ties to 0) */
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t lsb = (r >> 13) & 1u;
    r += 0xfffu + lsb;
    return (uint16_t)(sign | (r >> 13));
}

static inline float mc_bf16_to_f32(uint16_t h) { return mc_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t mc_f32_to_bf16(float f)
{
    uint32_t x = mc_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

#endif
