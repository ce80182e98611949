/* Persistent thread pool (mc_pool.h). */
#include "mc_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n, next, done; /* under the pool's mutex */
    struct batch *link;   /* the queue of batches with jobs left */
} batch;

struct mc_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a batch was queued, or stop */
    pthread_cond_t idle; /* a job finished */
    batch *head, *tail;
    int stop;
    int nthreads, nworkers;
    pthread_t th[255];
};

/* Take the next job (mu held): the first queued batch with jobs left. */
static int take(mc_pool *p, batch **b, size_t *i)
{
    while (p->head && p->head->next >= p->head->n) {
        p->head = p->head->link;
        if (!p->head) p->tail = NULL;
    }
    if (!p->head) return 0;
    *b = p->head;
    *i = p->head->next++;
    return 1;
}

static void finish(mc_pool *p, batch *b)
{
    if (++b->done == b->n) pthread_cond_broadcast(&p->idle);
}

static void *worker(void *arg)
{
    mc_pool *p = arg;
    batch *b;
    size_t i;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !take(p, &b, &i)) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        pthread_mutex_unlock(&p->mu);
        b->fn(b->ctx, i);
        pthread_mutex_lock(&p->mu);
        finish(p, b);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int mc_pool_create(int nthreads, mc_pool **out, mc_error *err)
{
    *out = NULL;
    if (nthreads < 1 || nthreads > 256)
        return mc_error_set(err, MC_ERR_ARG, "thread pool: %d threads asked for, expected 1..256", nthreads);
    mc_pool *p = calloc(1, sizeof *p);
    if (!p) return mc_error_set(err, MC_ERR_NOMEM, "thread pool: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->nthreads = nthreads;
    for (int i = 0; i < nthreads - 1; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0) {
            mc_pool_destroy(p);
            return mc_error_set(err, MC_ERR_NOMEM, "thread pool: cannot start thread %d of %d", i + 1, nthreads - 1);
        }
        p->nworkers++;
    }
    *out = p;
    return 0;
}

void mc_pool_destroy(mc_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p);
}

int mc_pool_threads(const mc_pool *p) { return p->nthreads; }

void mc_pool_run(mc_pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    batch me;
    memset(&me, 0, sizeof me);
    me.fn = fn;
    me.ctx = ctx;
    me.n = n;
    if (n == 0) return;
    if (p->nworkers == 0 || n == 1) { /* nothing to hand out */
        for (size_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->link = &me;
    else p->head = &me;
    p->tail = &me;
    pthread_cond_broadcast(&p->work);
    /* the caller works on its own batch too */
    while (me.next < me.n) {
        size_t i = me.next++;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, i);
        pthread_mutex_lock(&p->mu);
        finish(p, &me);
    }
    while (me.done < me.n) pthread_cond_wait(&p->idle, &p->mu);
    /* unlink (workers skip exhausted batches, but `me` must not stay queued) */
    if (p->head == &me) {
        p->head = me.link;
        if (!p->head) p->tail = NULL;
    } else {
        batch *q = p->head;
        while (q && q->link != &me) q = q->link;
        if (q) {
            q->link = me.link;
            if (p->tail == &me) p->tail = q;
        }
    }
    pthread_mutex_unlock(&p->mu);
}
