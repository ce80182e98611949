/* libFuzzer target for the safetensors header parser: the input is a whole
 * .safetensors image (seed with the corpus files). Whatever mc_st_parse_mem
 * accepts must be self-consistent (tensors tile the data exactly, every
 * tensor readable at both ends, names findable); whatever it refuses must
 * come with a message. No crash, leak or undefined behaviour either way.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_safetensors
 *   build-fuzz/fuzz_safetensors -max_total_time=60 -max_len=4096 ../shared/corpus/external/safetensors
 */
#include "mc_safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mc_st *st = NULL;
    mc_error err = { 0 };
    if (mc_st_parse_mem(data, size, "fuzz.safetensors", &st, &err) != 0) {
        if (err.code == MC_OK || err.msg[0] == '\0') abort();
        return 0;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        const mc_st_tensor *t = &st->tensors[i];
        unsigned char b[2];
        if (t->file_offset != st->files[0].data_offset + total) abort();
        total += t->nbytes;
        if (mc_st_find(st, t->name) != t) abort();
        if (t->nbytes) {
            if (mc_st_read(st, t, 0, b, 1, &err) || mc_st_read(st, t, t->nbytes - 1, b + 1, 1, &err)) abort();
            if (mc_st_read(st, t, t->nbytes, b, 1, &err) == 0) abort();
        }
    }
    if (st->files[0].data_offset + total != size) abort();
    for (uint64_t i = 0; i < st->n_meta; i++)
        if (mc_st_meta_get(st, st->meta[i].key) == NULL) abort();
    mc_st_close(st);
    return 0;
}
