#include "mc_workers.h"

#include <errno.h>
#include <string.h>
#include <time.h>

void mc_workers_init(mc_workers *W, unsigned delay_us)
{
    memset(W, 0, sizeof *W);
    pthread_mutex_init(&W->mu, NULL);
    pthread_cond_init(&W->cv, NULL);
    W->delay_us = delay_us;
}

void mc_workers_destroy(mc_workers *W)
{
    pthread_mutex_destroy(&W->mu);
    pthread_cond_destroy(&W->cv);
}

void mc_workers_fail(mc_workers *W, const mc_error *e)
{
    pthread_mutex_lock(&W->mu);
    if (!W->failed) {
        W->failed = 1;
        W->err = *e;
    }
    pthread_mutex_unlock(&W->mu);
}

void mc_workers_chunk_done(mc_workers *W, uint64_t bytes)
{
    atomic_fetch_add(&W->done, bytes);
    if (W->delay_us) {
        struct timespec ts = { (time_t)(W->delay_us / 1000000u), (long)(W->delay_us % 1000000u) * 1000L };
        nanosleep(&ts, NULL);
    }
}

typedef struct start {
    mc_workers *W;
    void (*fn)(void *);
    void *arg;
} start;

static void *trampoline(void *p)
{
    const start *s = p;
    mc_workers *W = s->W;
    s->fn(s->arg);
    pthread_mutex_lock(&W->mu);
    W->running--;
    pthread_cond_broadcast(&W->cv);
    pthread_mutex_unlock(&W->mu);
    return NULL;
}

int mc_workers_run(mc_workers *W, int nthreads, void (*fn)(void *arg), void *arg, uint64_t total,
                   mc_progress_fn progress, void *progress_ctx, mc_error *err)
{
    pthread_t th[256];
    start s = { W, fn, arg };
    int started = 0;
    if (nthreads > 256) nthreads = 256;
    if (nthreads < 1) nthreads = 1;
    atomic_store(&W->done, 0);
    pthread_mutex_lock(&W->mu);
    W->running = 0;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&th[i], NULL, trampoline, &s) != 0) break;
        W->running++;
        started++;
    }
    if (!started) {
        pthread_mutex_unlock(&W->mu);
        return mc_error_set(err, MC_ERR_NOMEM, "cannot start a worker thread: %s", strerror(errno));
    }
    while (W->running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&W->cv, &W->mu, &ts);
        if (progress) {
            pthread_mutex_unlock(&W->mu);
            progress(progress_ctx, atomic_load(&W->done), total);
            pthread_mutex_lock(&W->mu);
        }
    }
    pthread_mutex_unlock(&W->mu);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (progress) progress(progress_ctx, atomic_load(&W->done), total);
    if (W->failed) {
        if (err) *err = W->err;
        return W->err.code ? (int)W->err.code : MC_ERR_IO;
    }
    return 0;
}
