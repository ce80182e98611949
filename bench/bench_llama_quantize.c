/* bench_llama_quantize: llama.cpp's quantizer as a peer for bench/run_peers.sh.
 *
 *   bench_llama_quantize LIBLLAMA.so IN.gguf OUT.gguf FTYPE THREADS
 *
 * dlopen()s a libllama shared library (bench/run_peers.sh installs the npm
 * package @node-llama-cpp/linux-x64 at benchmark time and passes its
 * bins/linux-x64/libllama.v0.5.0.so; nothing of llama.cpp is part of this
 * project) and calls llama_model_quantize(IN, OUT, params) with
 * allow_requantize set (IN is already quantized), the given llama_ftype
 * (2 = MOSTLY_Q4_0, 15 = MOSTLY_Q4_K_M) and thread count. Prints the wall
 * time of that call.
 *
 * The parameter struct is returned by value, so it is declared here with
 * the layout of llama.h (int32 nthread, enum ftype, enum output_tensor_type,
 * enum token_embedding_type, bools allow_requantize, quantize_output_tensor,
 * only_copy, pure, keep_split, dry_run, then four pointers: imatrix,
 * kv_overrides, tt_overrides, prune_layers). libllama 0.5.0's
 * llama_model_quantize_default_params writes 64 bytes (two more 32-bit
 * fields after the pointers, seen in its machine code), so the struct
 * carries a tail large enough for that; only the leading fields are set. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct quant_params {
    int32_t nthread;
    int32_t ftype;
    int32_t output_tensor_type;
    int32_t token_embedding_type;
    _Bool allow_requantize;
    _Bool quantize_output_tensor;
    _Bool only_copy;
    _Bool pure;
    _Bool keep_split;
    _Bool dry_run;
    const void *imatrix;
    const void *kv_overrides;
    const void *tt_overrides;
    const int32_t *prune_layers;
    unsigned char tail[64]; /* newer fields (0.5.0 has 8 bytes here); left at the library's defaults */
} quant_params;

typedef quant_params (*defaults_fn)(void);
typedef uint32_t (*quantize_fn)(const char *, const char *, const quant_params *);

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_llama_quantize LIBLLAMA.so IN.gguf OUT.gguf FTYPE THREADS\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench_llama_quantize: %s\n", dlerror());
        return 1;
    }
    defaults_fn def;
    quantize_fn q;
    *(void **)(&def) = dlsym(h, "llama_model_quantize_default_params");
    *(void **)(&q) = dlsym(h, "llama_model_quantize");
    if (!def || !q) {
        fprintf(stderr, "bench_llama_quantize: llama_model_quantize(_default_params) not found in %s\n", argv[1]);
        return 1;
    }
    quant_params p = def();
    p.nthread = atoi(argv[5]);
    p.ftype = atoi(argv[4]);
    p.allow_requantize = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t rc = q(argv[2], argv[3], &p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("llama_model_quantize: ftype %d, %d threads: rc %u, %.2f s\n", p.ftype, p.nthread, rc, s);
    return rc ? 1 : 0;
}
