/* libFuzzer target for the compressed-tensors INT4 reader's kernel: the
 * input is one selector byte (even: bf16 group scales -> MC_T_Q4_0_BF16
 * blocks; odd: f16 -> MC_T_Q4_0), then groups of 16 packed bytes (four
 * little-endian int32 words of 8 values) and a 2-byte scale. Checked: the
 * blocks decode to (q - 8) * scale for every element (an independent
 * decode of the words), and the lossless repack either refuses with a
 * message or gives back the input's words and scale bits exactly.
 *
 *   cmake --build build-fuzz --target fuzz_ct_int4
 *   build-fuzz/fuzz_ct_int4 -max_total_time=60 testdata/fuzz/fuzz_ct_int4
 */
#include "mc_repack.h"
#include "mc_dequant.h"
#include "mc_float.h"
#include "mc_types.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAXG = 64 };
    if (size < 1) return 0;
    const int bf = (data[0] & 1) == 0, type = bf ? MC_T_Q4_0_BF16 : MC_T_Q4_0;
    size_t ng = (size - 1) / 18;
    if (ng > MAXG) ng = MAXG;
    if (ng == 0) return 0;
    uint8_t packed[MAXG * 16], scales[MAXG * 2], blocks[MAXG * 18];
    for (size_t g = 0; g < ng; g++) {
        memcpy(packed + g * 16, data + 1 + g * 18, 16);
        memcpy(scales + g * 2, data + 1 + g * 18 + 16, 2);
    }
    mc_quant_ct_int4_blocks(packed, scales, ng, blocks);
    float deq[MAXG * 32];
    mc_error err = {0};
    if (mc_dequant(type, blocks, deq, (int64_t)ng * 32, &err)) abort();
    for (size_t g = 0; g < ng; g++) {
        uint16_t h = (uint16_t)(scales[2 * g] | (scales[2 * g + 1] << 8));
        float d = bf ? mc_bf16_to_f32(h) : mc_f16_to_f32(h);
        for (int i = 0; i < 32; i++) {
            const uint8_t *w = packed + g * 16 + 4 * (i / 8);
            uint32_t word = (uint32_t)w[0] | ((uint32_t)w[1] << 8) | ((uint32_t)w[2] << 16) | ((uint32_t)w[3] << 24);
            float want = (float)((int)((word >> (4 * (i % 8))) & 15u) - 8) * d, got = deq[g * 32 + (size_t)i];
            if (isnan(want) ? !isnan(got) : memcmp(&want, &got, 4) != 0) abort();
        }
    }
    uint32_t wq[MAXG * 4];
    uint16_t s[MAXG], b[MAXG];
    int st = bf ? MC_T_BF16 : MC_T_F16;
    int rc = mc_quant_repack(type, blocks, 1, ng * 32, st, wq, s, b, NULL, &err);
    if (rc) {
        if (err.msg[0] == '\0') abort();
        return 0;
    }
    for (size_t g = 0; g < ng; g++) {
        uint16_t h = (uint16_t)(scales[2 * g] | (scales[2 * g + 1] << 8));
        if (s[g] != h) abort();
        for (int k = 0; k < 4; k++) {
            const uint8_t *w = packed + g * 16 + 4 * k;
            uint32_t word = (uint32_t)w[0] | ((uint32_t)w[1] << 8) | ((uint32_t)w[2] << 16) | ((uint32_t)w[3] << 24);
            if (wq[g * 4 + (size_t)k] != word) abort();
        }
        float d = bf ? mc_bf16_to_f32(h) : mc_f16_to_f32(h);
        float bias = bf ? mc_bf16_to_f32(b[g]) : mc_f16_to_f32(b[g]);
        if ((double)bias != -8.0 * (double)d) abort(); /* exact in the block's own scale type */
    }
    return 0;
}
