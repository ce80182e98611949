/* libFuzzer target for the .flash reader and verifier: the input is a whole
 * .flash image (seed with small files made by `mconv IN OUT.flash`, e.g.
 * the corpus qwen3_moe checkpoint). It is written to a temporary file (the
 * reader works on files, by offset) and opened and verified. Whatever the
 * bytes: no crash, leak or undefined behaviour; a file verify calls sound
 * must open, and every region the opened reader hands out must be readable.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_flash
 *   build-fuzz/mconv ../shared/corpus/models/qwen3_moe/hf seeds/q.flash --bits 2
 *   build-fuzz/fuzz_flash -max_total_time=60 seeds
 */
#include "mc_flash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static char path[64];

static void remove_path(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_flash.%ld", (long)getpid());
        atexit(remove_path);
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    mc_error err = { MC_OK, "" };
    mc_flash_verify_stats st;
    int vrc = mc_flash_verify(path, ignore, NULL, &st, &err);
    if (vrc && !err.msg[0]) abort(); /* a refusal always says why */
    mc_flash *fl = NULL;
    int orc = mc_flash_open(path, &fl, &err);
    if (vrc == 0 && orc != 0) abort(); /* sound but unopenable */
    if (orc == 0) {
        for (size_t i = 0; i < fl->n_tensors; i++) {
            if (fl->tensors[i].nbytes > (1u << 24)) continue;
            void *b = malloc(fl->tensors[i].nbytes ? fl->tensors[i].nbytes : 1);
            if (b && mc_flash_read_tensor(fl, &fl->tensors[i], b, &err)) abort(); /* open checked the bounds */
            free(b);
        }
        for (size_t i = 0; i < fl->n_experts; i++) {
            const mc_flash_experts *x = &fl->experts[i];
            if (!x->n_experts || x->stride > (1u << 24)) continue;
            void *b = malloc(x->stride ? x->stride : 1);
            if (b && mc_flash_read_expert(fl, x, x->n_experts - 1, b, &err)) abort();
            free(b);
        }
        mc_flash_cost c;
        mc_flash_token_cost(fl, &c);
        mc_flash_close(fl);
    }
    return 0;
}
