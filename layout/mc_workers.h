#ifndef MC_WORKERS_H
#define MC_WORKERS_H
/* A small worker pool shared by the .flash and folder writers: start N
 * threads on one job function, the calling thread reports progress every
 * 200 ms, the first error wins and stops the others (jobs check `failed`
 * under `mu` before taking more work), then join and return that error. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "mc_flash_write.h"
#include "mc_error.h"

typedef struct mc_workers {
    pthread_mutex_t mu;       /* also guards the caller's job cursors */
    pthread_cond_t cv;
    int running, failed;      /* under mu */
    mc_error err;             /* the first error (under mu) */
    _Atomic uint64_t done;    /* progress: bytes done in this run */
    unsigned delay_us;        /* TEST ONLY: sleep per chunk (mc_workers_chunk_done) */
} mc_workers;

void mc_workers_init(mc_workers *W, unsigned delay_us);
void mc_workers_destroy(mc_workers *W);
/* Record e if it is the first error; the other workers stop taking jobs. */
void mc_workers_fail(mc_workers *W, const mc_error *e);
/* A row chunk of `bytes` is done: count it, then the test delay if any. */
void mc_workers_chunk_done(mc_workers *W, uint64_t bytes);

/* Run fn(arg) on nthreads (clamped to 1..256) threads; the calling thread
 * calls progress(progress_ctx, done, total) every 200 ms and once at
 * the end (progress may be NULL). Returns 0, or the first error (in *err). */
int mc_workers_run(mc_workers *W, int nthreads, void (*fn)(void *arg), void *arg, uint64_t total,
                   mc_progress_fn progress, void *progress_ctx, mc_error *err);

#endif
