/* An independent .flash reader for tests. It shares no code with
 * formats/mc_flash* or layout/: its own header parse (byte by byte), its own
 * walk of the manifest with cJSON. It loads the pinned region in one read,
 * each dense layer's span in one read and single expert blocks, and checks
 * every tensor bit for bit against what MLX's affine quantization
 * (mc_quant_affine_quantize) or a float conversion makes of the source
 * rows that read_f32 returns. */
#ifndef MC_TEST_FLASH_H
#define MC_TEST_FLASH_H

#include <stddef.h>
#include <stdint.h>
#include "mc_convert.h"

typedef int (*mc_test_read_f32_fn)(const mc_model *m, const mc_mtensor *t, uint64_t row0, uint64_t nrows,
                                   float *dst, mc_error *err);

typedef struct mc_test_flash_report {
    int n_pinned, n_ffn_tensors, n_ffn_spans, n_expert_layers, n_expert_blocks, n_quantized, n_float;
    int n_bad;
    char first_bad[512];
    uint64_t pinned_nbytes;
    uint64_t token_bytes, token_reads; /* what an engine pays per token (own computation) */
    int experts_per_tok;
} mc_test_flash_report;

/* The source weight of an output tensor name: "x.scales" -> "x.weight"
 * (returns 1), "x.biases" -> "x.weight" (2), anything else as it is (0). */
int mc_test_part_of(const char *name, char *out, size_t cap);

/* Check path against m. max_experts: how many experts per MoE layer to load
 * (first, last and evenly spread ones; 0 = all). Returns 0 when every check
 * passed, else the number of mismatches (details in r). */
int mc_test_flash_check(const char *path, const mc_model *m, mc_test_read_f32_fn read_f32, int max_experts,
                        mc_test_flash_report *r);

#endif
