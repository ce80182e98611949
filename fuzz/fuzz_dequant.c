/* libFuzzer target for the dequantizers: the first byte picks the type (its
 * GGML type id when that type has a decoder, otherwise the byte modulo the
 * number of decodable types), the rest are blocks of that type;
 * every whole block is decoded into an output buffer of exactly the right
 * size (so ASan sees any write past it). Any bytes must decode without an
 * out-of-bounds access or undefined behaviour.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_dequant && build-fuzz/fuzz_dequant -max_total_time=60
 */
#include "mc_types.h"
#include "mc_dequant.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int types[MC_T_COUNT];
    static int n_types = 0;
    if (n_types == 0)
        for (int t = 0; t < MC_T_COUNT; t++) {
            const mc_type_traits *tr = mc_type_get(t);
            if (tr && tr->to_f32) types[n_types++] = t;
        }
    if (size < 1 || n_types == 0) return 0;
    int t = data[0];
    if (t >= MC_T_COUNT || !mc_type_get(t) || !mc_type_get(t)->to_f32) t = types[data[0] % n_types];
    const mc_type_traits *tr = mc_type_get(t);
    size_t blocks = (size - 1) / tr->type_size;
    if (blocks > 4096) blocks = 4096;
    if (blocks == 0) return 0;
    const int64_t n = (int64_t)blocks * tr->blck;
    /* copy the blocks so the input buffer also ends exactly where they do */
    uint8_t *in = malloc(blocks * tr->type_size);
    float *out = malloc((size_t)n * sizeof(float));
    if (in && out) {
        memcpy(in, data + 1, blocks * tr->type_size);
        mc_error err;
        mc_error_clear(&err);
        if (mc_dequant(t, in, out, n, &err) != 0) abort(); /* a whole number of blocks must decode */
    }
    free(in);
    free(out);
    return 0;
}
