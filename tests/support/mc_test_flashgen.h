/* Small synthetic .flash files for tests that need no corpus, and a way to
 * rewrite a .flash file's manifest (unknown keys, hostile values) with a
 * correct header afterwards. */
#ifndef MC_TEST_FLASHGEN_H
#define MC_TEST_FLASHGEN_H

#include <stdint.h>

struct cJSON;

typedef struct mc_test_synth {
    int dense_layers;   /* layers 0..dense_layers-1: a dense FFN span each */
    int moe_layers;     /* then this many MoE layers */
    int n_experts;      /* per MoE layer */
    int experts_per_tok;
    int threads;        /* writer threads (0: 1) */
    int no_quant;       /* every weight bf16 (one tensor per weight: small files) */
} mc_test_synth;

/* Write a qwen3_moe-shaped model (hidden 128, FFN/expert width 64, bf16
 * source values, 4-bit quantized, routers 8-bit; or all bf16) to path: embeddings,
 * norms, one attention projection per layer and lm_head pinned. 0 on
 * success; else prints why and returns non-zero. */
int mc_test_flash_synth(const char *path, const mc_test_synth *s);

/* Rewrite path's manifest: parse it, call fn(manifest, ctx) to change it,
 * write it back (unformatted) with the header's length, checksum and file
 * size fixed. extra_pages > 0 puts that many pages of 0xA5 bytes where the
 * manifest was and moves the manifest after them (an unknown region).
 * 0 on success. */
int mc_test_flash_rewrite(const char *path, void (*fn)(struct cJSON *manifest, void *ctx), void *ctx,
                          int extra_pages);

/* XOR byte off of path with 0x10 (0 on success). */
int mc_test_flip_byte(const char *path, uint64_t off);

#endif
