/* mc_dequant: element types to f32. Plain float and integer types here;
 * block-quantized GGML types in the functions below them. */
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <string.h>

void mc_deq_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

void mc_deq_f16(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
        dst[i] = mc_f16_to_f32(h);
    }
}

void mc_deq_bf16(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = ((uint32_t)p[2 * i] | ((uint32_t)p[2 * i + 1] << 8)) << 16;
        dst[i] = mc_f32_from_bits(u);
    }
}

void mc_deq_f64(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        dst[i] = (float)d;
    }
}

#define INT_DEQ(name, T)                                                       \
    void mc_deq_##name(const void *src, float *dst, int64_t n)                 \
    {                                                                          \
        const unsigned char *p = src;                                          \
        for (int64_t i = 0; i < n; i++) {                                      \
            T v;                                                               \
            memcpy(&v, p + sizeof(T) * (size_t)i, sizeof(T));                  \
            dst[i] = (float)v;                                                 \
        }                                                                      \
    }
INT_DEQ(i8, int8_t)
INT_DEQ(i16, int16_t)
INT_DEQ(i32, int32_t)
INT_DEQ(i64, int64_t)
INT_DEQ(u8, uint8_t)
INT_DEQ(u16, uint16_t)
INT_DEQ(u32, uint32_t)
INT_DEQ(u64, uint64_t)
#undef INT_DEQ

int mc_dequant(int t, const void *src, float *dst, int64_t n, mc_error *err)
{
    const mc_type_traits *tr = mc_type_get(t);
    if (!tr || !tr->to_f32)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "no decoder for type %s (id %d)", mc_type_name(t), t);
    if (n < 0 || n % tr->blck != 0)
        return mc_error_set(err, MC_ERR_ARG, "%lld elements of %s: not a multiple of its block size %u",
                            (long long)n, tr->name, tr->blck);
    tr->to_f32(src, dst, n);
    return 0;
}
