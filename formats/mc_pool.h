/* mc_pool: a small persistent thread pool for parallel reads.
 *
 * Made once (a reader's lifetime), used per call: mc_pool_run runs
 * fn(ctx, i) for i in [0, n) on the pool's threads and on the calling
 * thread, and returns when all n are done. Several threads may call
 * mc_pool_run at once; their batches share the workers. A pool of 1 thread
 * starts no thread (the caller does every job). */
#ifndef MC_POOL_H
#define MC_POOL_H

#include <stddef.h>

#include "mc_error.h"

typedef struct mc_pool mc_pool;

/* nthreads: jobs run at once (1..256; the caller counts as one). */
int mc_pool_create(int nthreads, mc_pool **out, mc_error *err);
void mc_pool_destroy(mc_pool *p);
int mc_pool_threads(const mc_pool *p);
void mc_pool_run(mc_pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

#endif
