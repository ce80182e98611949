/* libFuzzer target for the GGUF header parser (mc_gguf_parse_mem).
 *
 * The input is the start of a GGUF file. If its last byte is odd, the file is
 * taken to continue with zeros up to 32 MiB, so that headers cut from real
 * models (whose tensor data is not in the input) still parse through to the
 * tensor table; otherwise the input is the whole file. Whatever is accepted
 * must be self-consistent (every kv and tensor is touched, every tensor's
 * first and last byte read, every name found again); whatever is refused
 * must come with a one-line message naming the file. Anything else aborts.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_gguf
 *   scripts/gguf_fuzz_seeds.sh ../shared/corpus fuzz/corpus-work/gguf   # header prefixes as seeds
 *   build-fuzz/fuzz_gguf -max_total_time=30 -max_len=65536 -rss_limit_mb=2048 fuzz/corpus-work/gguf
 */
#include "mc_gguf.h"
#include "mc_types.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAD_SIZE ((size_t)32 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t g_file[PAD_SIZE];

static void touch(const mc_gguf *g, uint64_t file_size)
{
    volatile uint64_t sink = 0;
    if (g->n_shards != 1 || g->version < 1 || g->version > 3) abort();
    if (g->alignment == 0 || (g->alignment & (g->alignment - 1)) != 0) abort();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const mc_gguf_kv *kv = &g->kv[i];
        if (kv->key.len == 0 || kv->key.s[kv->key.len] != '\0') abort();
        if (mc_gguf_find_kv(g, kv->key.s) == NULL && memchr(kv->key.s, 0, kv->key.len) == NULL) abort();
        if (kv->type == MC_GGUF_STRING) {
            if (kv->v.str.s[kv->v.str.len] != '\0') abort();
            for (uint64_t j = 0; j < kv->v.str.len; j++) sink += (uint8_t)kv->v.str.s[j];
        } else if (kv->type == MC_GGUF_ARRAY) {
            if (kv->arr_type == MC_GGUF_ARRAY || kv->arr_type >= MC_GGUF_VTYPE_COUNT) abort();
            if (kv->arr_type == MC_GGUF_STRING) {
                const mc_gguf_str *s = kv->arr;
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    if (s[j].s[s[j].len] != '\0') abort();
                    if (s[j].len) sink += (uint8_t)s[j].s[0] + (uint8_t)s[j].s[s[j].len - 1];
                }
            } else {
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    double f;
                    if (mc_gguf_arr_f64(kv, j, &f) != 0) abort();
                    sink += (uint64_t)(f == f);
                }
            }
        } else if (kv->type >= MC_GGUF_VTYPE_COUNT) {
            abort();
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const mc_gguf_tensor *t = &g->tensors[i];
        uint64_t nb = 0, nel = 1;
        for (int d = 0; d < MC_GGUF_MAX_DIMS; d++) nel *= t->ne[d];
        if (t->n_dims < 1 || t->n_dims > 4 || nel != t->nelements) abort();
        if (mc_type_nbytes(t->type, nel, &nb) != 0 || nb != t->nbytes) abort();
        if (t->file_offset + t->nbytes > file_size || t->offset % g->alignment != 0) abort();
        if (mc_gguf_find_tensor(g, t->name.s) == NULL && memchr(t->name.s, 0, t->name.len) == NULL) abort();
        if (t->nbytes) {
            uint8_t a = 0, b = 0;
            mc_error err;
            mc_error_clear(&err);
            if (mc_gguf_read(g, t, 0, &a, 1, &err) != 0) abort();
            if (mc_gguf_read(g, t, t->nbytes - 1, &b, 1, &err) != 0) abort();
            sink += a + b;
        }
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > PAD_SIZE) return 0;
    int pad = size > 0 && (data[size - 1] & 1);
    size_t n = pad ? PAD_SIZE : size;
    memcpy(g_file, data, size);
    mc_gguf *g = NULL;
    mc_error err;
    mc_error_clear(&err);
    int rc = mc_gguf_parse_mem(g_file, n, "fuzz.gguf", &g, &err);
    if (rc == 0) {
        if (!g) abort();
        touch(g, n);
        mc_gguf_close(g);
    } else if (g != NULL || err.code == MC_OK || strncmp(err.msg, "fuzz.gguf: ", 11) != 0 || strchr(err.msg, '\n')) {
        abort();
    }
    memset(g_file, 0, size); /* the padding stays zero for the next input */
    return 0;
}
