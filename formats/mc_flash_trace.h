/* mc_flash_trace: routing traces for `mconv bench --trace` (docs/PERFORMANCE.md).
 *
 * A text file, one line per (token, MoE layer):
 *
 *     # mconv routing trace: TOKEN LAYER EXPERT...
 *     0 3 17 4 99 120 5 61 7 33
 *     0 4 ...
 *     1 3 ...
 *
 * TOKEN counts from 0 and never decreases from one line to the next; LAYER
 * is a decoder layer with experts in the .flash file; the EXPERT ids (at
 * least one, below the layer's expert count) are the router's choice for
 * that token. Blank lines and lines starting with '#' are ignored; fields are
 * separated by spaces or tabs. A MoE layer without a line for a token reads
 * no experts for it. */
#ifndef MC_FLASH_TRACE_H
#define MC_FLASH_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "mc_error.h"
#include "mconv/flash.h"

typedef struct mc_trace_step {
    int layer;
    size_t first, k; /* ids[first .. first + k) */
} mc_trace_step;

typedef struct mc_trace {
    size_t n_tokens;
    size_t *token_first;  /* n_tokens + 1: steps of token t are [token_first[t], token_first[t+1]) */
    mc_trace_step *steps;
    size_t n_steps;
    uint32_t *ids;
    size_t n_ids;
} mc_trace;

/* Read path and check it against r's layers (MC_ERR_FORMAT naming path:line
 * and what is wrong; MC_ERR_IO when unreadable). */
int mc_trace_load(const char *path, const mc_flash_reader *r, mc_trace *t, mc_error *err);
void mc_trace_free(mc_trace *t);

#endif
