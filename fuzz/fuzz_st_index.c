/* libFuzzer target for model.safetensors.index.json checking: the input is
 * the index text. Accepted indexes report counts consistent with each other;
 * refused ones come with a message.
 *
 *   cmake --build build-fuzz --target fuzz_st_index
 *   build-fuzz/fuzz_st_index -max_total_time=60 ../shared/corpus/models/qwen3_moe/hf-sharded
 */
#include "mc_safetensors.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mc_error err = { 0 };
    uint64_t n = 0, shards = 0;
    if (mc_st_index_check_mem(data, size, "fuzz.index.json", &n, &shards, &err) != 0) {
        if (err.code == MC_OK || err.msg[0] == '\0') abort();
        return 0;
    }
    if (shards > n || (n > 0 && shards == 0)) abort();
    return 0;
}
