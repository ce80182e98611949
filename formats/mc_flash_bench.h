/* mc_flash_bench: what an engine pays to stream a .flash file from this disk
 * (`mconv bench`; the method and its traps: docs/PERFORMANCE.md).
 *
 * Each arm opens the file through the public reader (mconv/flash.h) and
 * times: the pinned region in one read, then per simulated token every dense
 * layer's FFN span (one read each, in layer order) and, per MoE layer, the
 * token's experts (one read per block, `threads` at once). Experts are drawn
 * uniformly at random without replacement across tokens and arms (seeded),
 * so no expert block is read twice in one invocation unless `reuse` allows
 * it; or replayed from a routing trace (mc_flash_trace.h). Arms:
 *
 *   direct    direct I/O (O_DIRECT / F_NOCACHE): the disk, not the page cache
 *   buffered  reads through the page cache, the cache dropped for the file
 *             first and for every range after its read (posix_fadvise
 *             DONTNEED, where the system has it): what an engine without
 *             direct I/O pays on a cold cache (read-ahead off, as the
 *             reader's buffered mode sets it: POSIX_FADV_RANDOM)
 *   warm      reads through the page cache after an untimed pass over the
 *             same reads: RAM speed, what a model that fits in memory gets
 */
#ifndef MC_FLASH_BENCH_H
#define MC_FLASH_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "mc_error.h"

enum { MC_BENCH_DIRECT = 0, MC_BENCH_BUFFERED = 1, MC_BENCH_WARM = 2 };
#define MC_BENCH_MAX_ARMS 3
#define MC_BENCH_MAX_WARN 8

typedef struct mc_flash_bench_opts {
    int arms[MC_BENCH_MAX_ARMS]; /* MC_BENCH_*, in the order to run */
    size_t n_arms;
    uint64_t tokens;     /* per arm; 0: 32 (a trace: all its tokens) */
    int threads;         /* parallel expert reads; 0: experts_per_tok (1..64) */
    uint64_t seed;
    const char *trace;   /* routing trace, or NULL for uniform random experts */
    int verify;          /* check checksums on every read (timed with the read) */
    int reuse;           /* random experts: start over when every block was read */
    double max_seconds;  /* per arm, 0: no limit */
} mc_flash_bench_opts;

typedef struct mc_bench_lat {
    uint64_t n;
    double mean_ms, p50_ms, p99_ms, max_ms;
} mc_bench_lat;

typedef struct mc_flash_bench_arm {
    int arm;                   /* MC_BENCH_* */
    char io[MC_ERROR_MSG_MAX]; /* how reads were done ("O_DIRECT", "buffered: ...") */
    int direct;                /* reads bypassed the page cache */
    int cache_dropped;         /* buffered: the page cache was dropped as planned */
    uint64_t pinned_bytes;
    double pinned_s;
    uint64_t tokens_asked, tokens;
    uint64_t bytes, reads, reread_reads; /* reread: blocks read before in this invocation */
    double seconds;            /* the token loop */
    double mb_s, tokens_per_s;
    mc_bench_lat read_lat, expert_lat, ffn_lat, token_lat;
    char stop[MC_ERROR_MSG_MAX]; /* why fewer tokens than asked ("" when all ran) */
} mc_flash_bench_arm;

typedef struct mc_flash_bench_result {
    uint64_t file_size, pinned_bytes, token_bytes, token_reads, ram_bytes;
    int experts_per_tok, threads;
    size_t n_ffn, n_moe;
    uint32_t min_experts;      /* fewest experts of a MoE layer */
    uint64_t max_stride;
    int trace;                 /* experts from a trace */
    uint64_t trace_tokens;
    size_t n_arms;
    mc_flash_bench_arm arms[MC_BENCH_MAX_ARMS];
    size_t n_warn;
    char warn[MC_BENCH_MAX_WARN][MC_ERROR_MSG_MAX];
} mc_flash_bench_result;

/* Run the arms on path. Errors: the reader's (not a .flash file, ...), the
 * trace's (MC_ERR_FORMAT naming path:line), MC_ERR_NOMEM, MC_ERR_IO. */
int mc_flash_bench_run(const char *path, const mc_flash_bench_opts *o, mc_flash_bench_result *res, mc_error *err);

/* "direct", "buffered", "warm" <-> MC_BENCH_*; -1 when unknown. */
const char *mc_flash_bench_arm_name(int arm);
int mc_flash_bench_arm_from_name(const char *s);

#endif
