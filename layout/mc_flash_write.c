#include "mc_flash_write.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_qerr.h"
#include "mc_qreport.h"
#include "mc_flash_meta.h"
#include "mc_safetensors.h"
#include "mc_source_meta.h"
#include "mc_types.h"
#include "mc_workers.h"

/* ---- layout ---- */

void mc_flash_layout_free(mc_flash_layout *L)
{
    if (!L) return;
    for (size_t i = 0; i < L->n_spans; i++) free(L->spans[i].items);
    for (size_t i = 0; i < L->n_xlayers; i++) free(L->xlayers[i].items);
    free(L->spans);
    free(L->xlayers);
    free(L->off);
    free(L->xl);
    free(L);
}

static const mc_plan *g_sort_plan; /* only used under qsort from layout_build (single-threaded) */

static int item_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int kx = g_sort_plan->items[x].order, ky = g_sort_plan->items[y].order;
    if (kx != ky) return kx < ky ? -1 : 1;
    return x < y ? -1 : x > y; /* stable: model order */
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int mc_flash_layout_build(const mc_model *m, const mc_plan *p, mc_flash_layout **out, mc_error *err)
{
    int rc = 0;
    int *layers = NULL;
    size_t n_layers = 0;
    size_t *tmp = NULL;
    *out = NULL;
    mc_flash_layout *L = calloc(1, sizeof *L);
    if (!L) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    L->plan = p;
    L->experts_per_tok = m->n_experts_per_tok > 0 ? m->n_experts_per_tok : 0;
    size_t n = p->n_items ? p->n_items : 1;
    L->off = calloc(n, sizeof *L->off);
    L->xl = malloc(n * sizeof *L->xl);
    layers = malloc(n * sizeof *layers);
    tmp = malloc(n * sizeof *tmp);
    if (!L->off || !L->xl || !layers || !tmp) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p->n_items; i++) {
        const mc_mtensor *t = p->items[i].mt;
        L->xl[i] = -1;
        if (t->role == MC_ROLE_PINNED) continue;
        if (t->layer < 0) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s: streamed tensor %s has no layer", m->input_path, t->name);
            goto done;
        }
        size_t j = 0;
        while (j < n_layers && layers[j] != t->layer) j++;
        if (j == n_layers) layers[n_layers++] = t->layer;
    }
    qsort(layers, n_layers, sizeof *layers, cmp_int);

    uint64_t cur = MC_FLASH_PAGE;
    L->pinned_offset = cur;
    for (size_t i = 0; i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        if (it->mt->role != MC_ROLE_PINNED) continue;
        for (size_t k = 0; k < it->n_out; k++) {
            L->off[i][k] = cur;
            cur = mc_flash_align(cur + it->out[k].nbytes);
        }
    }
    L->pinned_nbytes = cur - L->pinned_offset;
    L->spans = calloc(n_layers ? n_layers : 1, sizeof *L->spans);
    L->xlayers = calloc(n_layers ? n_layers : 1, sizeof *L->xlayers);
    if (!L->spans || !L->xlayers) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    g_sort_plan = p;
    for (size_t li = 0; li < n_layers; li++) {
        for (int role = MC_ROLE_FFN; role <= MC_ROLE_EXPERT; role++) {
            size_t cnt = 0;
            for (size_t i = 0; i < p->n_items; i++)
                if ((int)p->items[i].mt->role == role && p->items[i].mt->layer == layers[li]) tmp[cnt++] = i;
            if (!cnt) continue;
            qsort(tmp, cnt, sizeof *tmp, item_cmp);
            size_t *items = malloc(cnt * sizeof *items);
            if (!items) {
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                goto done;
            }
            memcpy(items, tmp, cnt * sizeof *items);
            if (role == MC_ROLE_FFN) {
                mc_flash_span *s = &L->spans[L->n_spans++];
                s->layer = layers[li];
                s->items = items;
                s->n_items = cnt;
                s->offset = cur;
                for (size_t j = 0; j < cnt; j++) {
                    const mc_pitem *it = &p->items[items[j]];
                    for (size_t k = 0; k < it->n_out; k++) {
                        L->off[items[j]][k] = cur;
                        cur = mc_flash_align(cur + it->out[k].nbytes);
                    }
                }
                s->nbytes = cur - s->offset;
            } else {
                mc_flash_xlayer *x = &L->xlayers[L->n_xlayers];
                x->layer = layers[li];
                x->items = items;
                x->n_items = cnt;
                x->n_experts = p->items[items[0]].n_experts;
                uint64_t inner = 0;
                for (size_t j = 0; j < cnt; j++) {
                    const mc_pitem *it = &p->items[items[j]];
                    if (it->n_experts != x->n_experts) {
                        L->n_xlayers++;
                        rc = mc_error_set(err, MC_ERR_FORMAT, "%s: layer %d: %s has %u experts, %s has %u",
                                          m->input_path, x->layer, it->mt->name, it->n_experts,
                                          p->items[items[0]].mt->name, x->n_experts);
                        goto done;
                    }
                    L->xl[items[j]] = (int)L->n_xlayers;
                    for (size_t k = 0; k < it->n_out; k++) {
                        L->off[items[j]][k] = inner;
                        inner = mc_flash_align(inner + it->out[k].nbytes / it->n_experts);
                    }
                }
                x->stride = inner;
                x->offset = cur;
                cur += inner * x->n_experts;
                L->n_xlayers++;
            }
        }
    }
    L->data_end = cur;
done:
    free(layers);
    free(tmp);
    if (rc) mc_flash_layout_free(L);
    else *out = L;
    return rc;
}

void mc_flash_layout_cost(const mc_flash_layout *L, mc_flash_cost *c)
{
    memset(c, 0, sizeof *c);
    c->pinned_bytes = L->pinned_nbytes;
    c->experts_per_tok = L->experts_per_tok;
    for (size_t i = 0; i < L->n_spans; i++) {
        c->token_dense_bytes += L->spans[i].nbytes;
        c->token_dense_reads++;
    }
    c->streamed_bytes = c->token_dense_bytes;
    for (size_t i = 0; i < L->n_xlayers; i++) {
        uint64_t k = (uint64_t)L->experts_per_tok;
        if (k > L->xlayers[i].n_experts) k = L->xlayers[i].n_experts;
        c->token_expert_bytes += k * L->xlayers[i].stride;
        c->token_expert_reads += k;
        c->streamed_bytes += (uint64_t)L->xlayers[i].n_experts * L->xlayers[i].stride;
    }
    c->token_bytes = c->token_dense_bytes + c->token_expert_bytes;
    c->token_reads = c->token_dense_reads + c->token_expert_reads;
}

/* ---- the worker engine ----
 *
 * Row chunks are handed out in file order (tensors by offset, expert
 * blocks expert by expert) to the workers, which convert them and pwrite
 * them at their planned offsets. Checksums are computed from the same
 * buffers as they are written, never by reading the output back: each
 * checksummed region (a pinned or FFN tensor, an expert block with its
 * zero padding) is a "unit" fed strictly in byte order; a piece that
 * arrives ahead of its turn (another worker still converting the rows
 * before it, or an expert's scales before its weight rows are complete) is
 * copied aside until the gap closes. Workers may run at most MC_FW_AHEAD
 * chunks per thread (at most 256 chunks) ahead of the oldest unfinished
 * one, which bounds the copies whatever a slow thread does: a chunk's
 * output is at most its f32 size (chunk_bytes, 1 MiB by default), so
 * at most 256 MiB in the worst case and next to nothing in practice. */

#define MC_FW_AHEAD 16      /* chunks per thread (up to 16 threads) workers may run ahead */
#define MC_FW_LOCKS 64      /* unit locks (striped) */

typedef struct fw_task {   /* one tensor, or one expert of one expert tensor */
    uint64_t off;          /* its first byte in the file (sort key) */
    size_t item;
    uint32_t expert;
} fw_task;

typedef struct fw_piece {
    struct fw_piece *next;
    uint64_t off, len;     /* inside the unit */
    unsigned char data[];
} fw_piece;

typedef struct fw_seg { uint64_t off, len; } fw_seg;

typedef struct fw_unit {
    uint64_t len, next;    /* unit size; bytes hashed so far */
    uint64_t *dst;         /* where the digest goes */
    XXH3_state_t *st;      /* from the first byte to the digest */
    fw_piece *pending;     /* pieces ahead of `next`, sorted by offset */
    int xi;                /* expert layer (segments and padding), or -1 */
    size_t seg;            /* current segment (expert blocks) */
} fw_unit;

typedef struct fw_job {
    mc_plan_chunk c;
    uint64_t seq;
} fw_job;

typedef struct engine {
    const mc_model *m;
    const mc_flash_layout *L;
    const mc_plan *p;
    const mc_source_ops *ops;
    size_t chunk_bytes;
    mc_workers w;            /* pool; w.mu also guards the cursors and diff reports */
    /* sink: write to out, or compare with cmp */
    mc_outfile *out;
    mc_file rd;              /* the compared file */
    int compare;
    mc_flash_problem_fn problem;
    void *pctx;
    unsigned char *diff_seen; /* per item: a difference already reported */
    uint64_t n_diff;
    /* dispatch in file order, at most `window` chunks ahead (under w.mu) */
    fw_task *tasks;
    size_t n_tasks, ti;
    uint64_t row;            /* next row inside tasks[ti] */
    uint64_t seq, low;       /* next sequence number; oldest unfinished */
    unsigned char *ring;     /* done flags of seq low .. low+window-1 */
    uint64_t window;
    pthread_cond_t ahead;    /* low moved, or a worker failed */
    int ahead_ok;
    uint64_t total;
    /* checksums */
    fw_unit *units;
    size_t n_units;
    size_t *ubase;           /* per item: first unit (non-expert items) */
    size_t *xbase;           /* per expert layer: unit of expert 0 */
    fw_seg **xsegs;          /* per expert layer: its tensors inside a block */
    size_t *n_xsegs;
    pthread_mutex_t locks[MC_FW_LOCKS];
    int locks_ok;
    /* quantization error (writing only): one accumulator per item */
    mc_qerr *qerr;
    pthread_mutex_t qmu;
    int qmu_ok;
    /* results */
    uint64_t (*h)[3];
    uint64_t **xh;
} engine;

static void wake_all(engine *E)
{
    pthread_mutex_lock(&E->w.mu);
    pthread_cond_broadcast(&E->ahead);
    pthread_mutex_unlock(&E->w.mu);
}

static int next_job(engine *E, fw_job *j)
{
    int got = 0;
    pthread_mutex_lock(&E->w.mu);
    for (;;) {
        if (E->w.failed) break;
        while (E->ti < E->n_tasks) {
            const mc_pitem *it = &E->p->items[E->tasks[E->ti].item];
            if (E->row < it->nrows / it->n_experts) break;
            E->ti++;
            E->row = 0;
        }
        if (E->ti >= E->n_tasks) break;
        if (E->seq >= E->low + E->window) {
            pthread_cond_wait(&E->ahead, &E->w.mu);
            continue;
        }
        const fw_task *t = &E->tasks[E->ti];
        const mc_pitem *it = &E->p->items[t->item];
        uint64_t per = it->nrows / it->n_experts, rows = mc_plan_chunk_rows(it, E->chunk_bytes);
        if (rows > per - E->row) rows = per - E->row;
        j->c.item = t->item;
        j->c.expert = t->expert;
        j->c.row = E->row;
        j->c.nrows = rows;
        j->seq = E->seq++;
        E->row += rows;
        got = 1;
        break;
    }
    pthread_mutex_unlock(&E->w.mu);
    return got;
}

static void job_done(engine *E, uint64_t seq)
{
    pthread_mutex_lock(&E->w.mu);
    E->ring[seq % E->window] = 1;
    int moved = 0;
    while (E->low < E->seq && E->ring[E->low % E->window]) {
        E->ring[E->low % E->window] = 0;
        E->low++;
        moved = 1;
    }
    if (moved) pthread_cond_broadcast(&E->ahead);
    pthread_mutex_unlock(&E->w.mu);
}

static uint64_t out_base(const engine *E, size_t item, uint32_t e, size_t k)
{
    int xi = E->L->xl[item];
    if (xi < 0) return E->L->off[item][k];
    const mc_flash_xlayer *x = &E->L->xlayers[xi];
    return x->offset + (uint64_t)e * x->stride + E->L->off[item][k];
}

static int sink(engine *E, size_t item, size_t k, uint64_t off, const unsigned char *buf, size_t n,
                unsigned char **cmpbuf, size_t *cmpcap, uint64_t row, mc_error *err)
{
    if (!E->compare) return mc_outfile_pwrite(E->out, off, buf, n, err);
    if (*cmpcap < n) {
        unsigned char *nb = realloc(*cmpbuf, n);
        if (!nb) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        *cmpbuf = nb;
        *cmpcap = n;
    }
    int rc = mc_file_pread(&E->rd, off, *cmpbuf, n, err);
    if (rc) return rc;
    if (memcmp(*cmpbuf, buf, n)) {
        pthread_mutex_lock(&E->w.mu);
        E->n_diff++;
        if (!E->diff_seen[item]) {
            char msg[MC_ERROR_MSG_MAX];
            E->diff_seen[item] = 1;
            snprintf(msg, sizeof msg, "%s: %s differs from the source (first seen at row %llu, offset %llu)",
                     E->rd.path, E->p->items[item].out[k].name, (unsigned long long)row, (unsigned long long)off);
            if (E->problem) E->problem(E->pctx, msg);
        }
        pthread_mutex_unlock(&E->w.mu);
    }
    return 0;
}

/* ---- checksums of the units, fed in byte order (unit lock held) ---- */

static int unit_hash(fw_unit *u, const void *data, uint64_t len)
{
    if (!u->st) {
        if (!(u->st = XXH3_createState())) return -1;
        XXH3_64bits_reset(u->st);
    }
    XXH3_64bits_update(u->st, data, (size_t)len);
    u->next += len;
    return 0;
}

/* Hash the padding at `next` (expert blocks), then pending pieces that
 * are now in turn; digest when the unit is complete. */
static int unit_advance(engine *E, fw_unit *u)
{
    static const unsigned char zeros[4096];
    for (;;) {
        if (u->xi >= 0) {
            const fw_seg *sg = E->xsegs[u->xi];
            size_t n = E->n_xsegs[u->xi];
            while (u->seg < n && u->next >= sg[u->seg].off + sg[u->seg].len) u->seg++;
            uint64_t to = u->seg < n ? sg[u->seg].off : u->len;
            while (u->next < to) {
                uint64_t k = to - u->next < sizeof zeros ? to - u->next : sizeof zeros;
                if (unit_hash(u, zeros, k)) return -1;
            }
        }
        if (u->next == u->len) {
            if (u->st) {
                *u->dst = XXH3_64bits_digest(u->st);
                XXH3_freeState(u->st);
                u->st = NULL;
            } else {
                *u->dst = XXH3_64bits(NULL, 0);
            }
            return 0;
        }
        fw_piece *pc = u->pending;
        if (!pc || pc->off != u->next) return 0;
        u->pending = pc->next;
        int rc = unit_hash(u, pc->data, pc->len);
        free(pc);
        if (rc) return -1;
    }
}

static int unit_feed(engine *E, size_t ui, uint64_t off, const unsigned char *data, uint64_t len, mc_error *err)
{
    fw_unit *u = &E->units[ui];
    pthread_mutex_t *mu = &E->locks[ui % MC_FW_LOCKS];
    int rc = 0;
    pthread_mutex_lock(mu);
    if (off == u->next) {
        if (unit_hash(u, data, len) || unit_advance(E, u)) rc = -1;
    } else if (off < u->next || off + len > u->len) {
        rc = -2;
    } else {
        fw_piece *pc = malloc(sizeof *pc + (size_t)len), **pp = &u->pending;
        if (!pc) {
            rc = -1;
        } else {
            pc->off = off;
            pc->len = len;
            memcpy(pc->data, data, (size_t)len);
            while (*pp && (*pp)->off < off) pp = &(*pp)->next;
            pc->next = *pp;
            *pp = pc;
        }
    }
    pthread_mutex_unlock(mu);
    if (rc == -1) return mc_error_set(err, MC_ERR_NOMEM, "out of memory checksumming the output");
    if (rc == -2)
        return mc_error_set(err, MC_ERR_ARG, "internal error: checksum: piece at %llu+%llu out of place (hashed to %llu of %llu)",
                            (unsigned long long)off, (unsigned long long)len, (unsigned long long)u->next,
                            (unsigned long long)u->len);
    return 0;
}

/* Feed the outputs of one converted chunk to their units. */
static int feed_chunk(engine *E, const mc_plan_chunk *j, unsigned char *const out[3], mc_error *err)
{
    const mc_pitem *it = &E->p->items[j->item];
    int xi = E->L->xl[j->item];
    for (size_t k = 0; k < it->n_out; k++) {
        uint64_t rb = it->out[k].row_bytes;
        size_t ui = xi < 0 ? E->ubase[j->item] + k : E->xbase[xi] + j->expert;
        uint64_t off = (xi < 0 ? 0 : E->L->off[j->item][k]) + j->row * rb;
        int rc = unit_feed(E, ui, off, out[k], j->nrows * rb, err);
        if (rc) return rc;
    }
    return 0;
}

static void fill_worker(void *arg)
{
    engine *E = arg;
    mc_plan_scratch s;
    unsigned char *cmpbuf = NULL;
    size_t cmpcap = 0;
    mc_error err = { MC_OK, "" };
    fw_job job;
    memset(&s, 0, sizeof s);
    while (next_job(E, &job)) {
        const mc_plan_chunk *j = &job.c;
        const mc_pitem *it = &E->p->items[j->item];
        uint64_t per = it->nrows / it->n_experts;
        unsigned char *out[3] = { NULL, NULL, NULL };
        uint64_t bytes = 0;
        mc_qerr q;
        if (E->qerr) mc_qerr_init(&q);
        s.qerr = E->qerr ? &q : NULL; /* affine rows measured as they are quantized */
        int rc = mc_plan_convert_rows(E->m, E->ops, it, (uint64_t)j->expert * per + j->row, j->nrows, &s, out, &err);
        for (size_t k = 0; !rc && k < it->n_out; k++) {
            uint64_t rb = it->out[k].row_bytes;
            rc = sink(E, j->item, k, out_base(E, j->item, j->expert, k) + j->row * rb, out[k],
                      (size_t)(j->nrows * rb), &cmpbuf, &cmpcap, (uint64_t)j->expert * per + j->row, &err);
            bytes += j->nrows * rb;
        }
        if (!rc && !E->compare) rc = feed_chunk(E, j, out, &err);
        if (!rc && E->qerr) {
            if (!(rc = mc_plan_measure_rows(it, j->nrows, &s, out, &q, &err))) {
                pthread_mutex_lock(&E->qmu);
                mc_qerr_merge(&E->qerr[j->item], &q);
                pthread_mutex_unlock(&E->qmu);
            }
        }
        if (rc) {
            mc_workers_fail(&E->w, &err);
            wake_all(E);
            break;
        }
        job_done(E, job.seq);
        mc_workers_chunk_done(&E->w, bytes);
    }
    mc_plan_scratch_free(&s);
    free(cmpbuf);
}

/* Run the workers; the calling thread reports progress. */
static int run_workers(engine *E, const mc_flash_write_opts *o, mc_error *err)
{
    return mc_workers_run(&E->w, o->threads, fill_worker, E, E->total, o->progress, o->progress_ctx, err);
}

static void engine_free(engine *E)
{
    if (E->xh)
        for (size_t i = 0; i < E->L->n_xlayers; i++) free(E->xh[i]);
    free(E->xh);
    free(E->qerr);
    if (E->qmu_ok) pthread_mutex_destroy(&E->qmu);
    free(E->h);
    free(E->diff_seen);
    free(E->tasks);
    free(E->ring);
    if (E->units)
        for (size_t i = 0; i < E->n_units; i++) {
            if (E->units[i].st) XXH3_freeState(E->units[i].st);
            for (fw_piece *pc = E->units[i].pending, *nx; pc; pc = nx) {
                nx = pc->next;
                free(pc);
            }
        }
    free(E->units);
    free(E->ubase);
    free(E->xbase);
    if (E->xsegs)
        for (size_t i = 0; i < E->L->n_xlayers; i++) free(E->xsegs[i]);
    free(E->xsegs);
    free(E->n_xsegs);
    if (E->locks_ok)
        for (int i = 0; i < MC_FW_LOCKS; i++) pthread_mutex_destroy(&E->locks[i]);
    if (E->ahead_ok) pthread_cond_destroy(&E->ahead);
    mc_workers_destroy(&E->w);
}

static int task_cmp(const void *a, const void *b)
{
    const fw_task *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

static int seg_cmp(const void *a, const void *b)
{
    const fw_seg *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Tasks in file order and the checksum units. */
static int engine_plan(engine *E, int nthreads, mc_error *err)
{
    const mc_flash_layout *L = E->L;
    const mc_plan *p = E->p;
    size_t nt = 0, nu = 0;
    for (size_t i = 0; i < p->n_items; i++) {
        if (L->xl[i] < 0) {
            nt++;
            nu += p->items[i].n_out;
        } else {
            nt += p->items[i].n_experts;
        }
    }
    for (size_t i = 0; i < L->n_xlayers; i++) nu += L->xlayers[i].n_experts;
    if (nthreads < 1) nthreads = 1;
    E->window = (uint64_t)MC_FW_AHEAD * (uint64_t)(nthreads > 16 ? 16 : nthreads);
    E->tasks = malloc((nt ? nt : 1) * sizeof *E->tasks);
    E->ring = calloc((size_t)E->window, 1);
    E->units = calloc(nu ? nu : 1, sizeof *E->units);
    E->ubase = calloc(p->n_items ? p->n_items : 1, sizeof *E->ubase);
    E->xbase = calloc(L->n_xlayers ? L->n_xlayers : 1, sizeof *E->xbase);
    E->xsegs = calloc(L->n_xlayers ? L->n_xlayers : 1, sizeof *E->xsegs);
    E->n_xsegs = calloc(L->n_xlayers ? L->n_xlayers : 1, sizeof *E->n_xsegs);
    if (!E->tasks || !E->ring || !E->units || !E->ubase || !E->xbase || !E->xsegs || !E->n_xsegs)
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        if (L->xl[i] < 0) {
            E->tasks[E->n_tasks++] = (fw_task){ L->off[i][0], i, 0 };
            E->ubase[i] = E->n_units;
            for (size_t k = 0; k < it->n_out; k++)
                E->units[E->n_units++] = (fw_unit){ it->out[k].nbytes, 0, &E->h[i][k], NULL, NULL, -1, 0 };
        } else {
            for (uint32_t e = 0; e < it->n_experts; e++)
                E->tasks[E->n_tasks++] = (fw_task){ out_base(E, i, e, 0), i, e };
        }
    }
    qsort(E->tasks, E->n_tasks, sizeof *E->tasks, task_cmp);
    for (size_t xi = 0; xi < L->n_xlayers; xi++) {
        const mc_flash_xlayer *x = &L->xlayers[xi];
        size_t ns = 0;
        for (size_t j = 0; j < x->n_items; j++) ns += p->items[x->items[j]].n_out;
        if (!(E->xsegs[xi] = malloc((ns ? ns : 1) * sizeof **E->xsegs)))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < x->n_items; j++) {
            const mc_pitem *it = &p->items[x->items[j]];
            for (size_t k = 0; k < it->n_out; k++)
                E->xsegs[xi][E->n_xsegs[xi]++] = (fw_seg){ L->off[x->items[j]][k], it->out[k].nbytes / it->n_experts };
        }
        qsort(E->xsegs[xi], E->n_xsegs[xi], sizeof **E->xsegs, seg_cmp);
        E->xbase[xi] = E->n_units;
        for (uint32_t e = 0; e < x->n_experts; e++)
            E->units[E->n_units++] = (fw_unit){ x->stride, 0, &E->xh[xi][e], NULL, NULL, (int)xi, 0 };
    }
    return 0;
}

/* Every unit hashed to its end (a unit with no rows: the empty digest). */
static int engine_units_done(engine *E, mc_error *err)
{
    for (size_t i = 0; i < E->n_units; i++) {
        fw_unit *u = &E->units[i];
        if (u->next == 0 && !u->st && unit_advance(E, u))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory checksumming the output");
        if (u->next != u->len || u->st || u->pending)
            return mc_error_set(err, MC_ERR_ARG, "internal error: checksum: unit %zu hashed to %llu of %llu bytes", i,
                                (unsigned long long)u->next, (unsigned long long)u->len);
    }
    return 0;
}

static int engine_init(engine *E, const mc_model *m, const mc_flash_layout *L, const mc_flash_write_opts *o,
                       mc_error *err)
{
    int rc;
    memset(E, 0, sizeof *E);
    mc_workers_init(&E->w, o->test_delay_us);
    E->m = m;
    E->L = L;
    E->p = L->plan;
    E->ops = o->ops;
    if (pthread_cond_init(&E->ahead, NULL)) return mc_error_set(err, MC_ERR_NOMEM, "cannot create a condition");
    E->ahead_ok = 1;
    for (int i = 0; i < MC_FW_LOCKS; i++)
        if (pthread_mutex_init(&E->locks[i], NULL)) {
            for (int k = 0; k < i; k++) pthread_mutex_destroy(&E->locks[k]);
            return mc_error_set(err, MC_ERR_NOMEM, "cannot create a lock");
        }
    E->locks_ok = 1;
    if (!E->ops || !E->ops->read_f32 || !E->ops->read_raw)
        return mc_error_set(err, MC_ERR_ARG, "no source functions given (mc_flash_write_opts.ops)");
    E->chunk_bytes = o->chunk_bytes ? o->chunk_bytes : ((size_t)1 << 20);
    E->rd.fd = -1;
    size_t n = E->p->n_items ? E->p->n_items : 1;
    E->h = calloc(n, sizeof *E->h);
    E->diff_seen = calloc(n, 1);
    E->xh = calloc(L->n_xlayers ? L->n_xlayers : 1, sizeof *E->xh);
    if (!E->h || !E->diff_seen || !E->xh) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < L->n_xlayers; i++)
        if (!(E->xh[i] = calloc(L->xlayers[i].n_experts, sizeof **E->xh)))
            return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < E->p->n_items; i++)
        for (size_t k = 0; k < E->p->items[i].n_out; k++) E->total += E->p->items[i].out[k].nbytes;
    if (pthread_mutex_init(&E->qmu, NULL)) return mc_error_set(err, MC_ERR_NOMEM, "cannot create a lock");
    E->qmu_ok = 1;
    if (!o->no_qerr) {
        if (!(E->qerr = malloc(n * sizeof *E->qerr))) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) mc_qerr_init(&E->qerr[i]);
    }
    if ((rc = engine_plan(E, o->threads, err))) return rc;
    if (o->test_window) E->window = o->test_window;
    return 0;
}

/* ---- manifest ---- */

static const char *dtype_name(int t)
{
    const mc_type_traits *tr = mc_type_get(t);
    return tr && tr->st_name ? tr->st_name : mc_type_name(t);
}

static int add_tensor(cJSON *arr, const mc_pout *o, uint64_t off, const char *role, int layer, uint64_t h)
{
    char hx[17];
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(arr, e)) {
        cJSON_Delete(e);
        return -1;
    }
    mc_flash_hex64(h, hx);
    if (!cJSON_AddStringToObject(e, "name", o->name) || !cJSON_AddStringToObject(e, "dtype", dtype_name(o->dtype)) ||
        !cJSON_AddItemToObject(e, "shape", mc_plan_shape_json(o->shape, o->n_dims)) ||
        !cJSON_AddNumberToObject(e, "offset", (double)off) || !cJSON_AddNumberToObject(e, "nbytes", (double)o->nbytes) ||
        !cJSON_AddStringToObject(e, "role", role) ||
        (layer >= 0 && !cJSON_AddNumberToObject(e, "layer", layer)) || !cJSON_AddStringToObject(e, "xxh3", hx))
        return -1;
    return 0;
}

static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *s = p + n;
    while (s > p && s[-1] != '/') s--;
    return s;
}

static cJSON *build_manifest(const engine *E)
{
    const mc_model *m = E->m;
    const mc_flash_layout *L = E->L;
    const mc_plan *p = E->p;
    cJSON *j = cJSON_CreateObject(), *src, *files, *tensors, *ffn, *experts, *pin;
    int bad = !j;
    if (bad) return NULL;
    cJSON_AddStringToObject(j, "format", "mconv-flash");
    cJSON_AddNumberToObject(j, "version", MC_FLASH_VERSION);
    cJSON_AddNumberToObject(j, "page_size", MC_FLASH_PAGE);
    src = cJSON_AddObjectToObject(j, "source");
    files = src ? cJSON_AddArrayToObject(src, "files") : NULL;
    if (!files) goto fail;
    /* file names only: the same input gives the same bytes wherever it lives */
    {
        const char *path = m->input_path ? m->input_path : "";
        size_t n = strlen(path);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < 1023 ? n : 1023), path);
        cJSON_AddStringToObject(src, "input", base_name(buf));
        if (m->gguf)
            for (uint32_t i = 0; i < m->gguf->n_shards; i++) {
                const char *sp = m->gguf->shards[i].file.path ? m->gguf->shards[i].file.path : "";
                size_t k = strlen(sp);
                snprintf(buf, sizeof buf, "%.*s", (int)(k < 1023 ? k : 1023), sp);
                cJSON_AddItemToArray(files, cJSON_CreateString(base_name(buf)));
            }
        else if (m->st)
            for (uint32_t i = 0; i < m->st->n_files; i++)
                cJSON_AddItemToArray(files, cJSON_CreateString(m->st->files[i].name ? m->st->files[i].name : ""));
        if (cJSON_GetArraySize(files) == 0) cJSON_AddItemToArray(files, cJSON_CreateString(base_name(buf)));
    }
    cJSON_AddStringToObject(src, "format", m->kind == MC_SRC_GGUF ? "gguf" : m->mlx_bits ? "mlx" : "safetensors");
    cJSON_AddStringToObject(src, "architecture", m->arch ? m->arch : "");
    cJSON_AddStringToObject(src, "model_type", m->model_type ? m->model_type : "");
    cJSON_AddItemToObject(j, "options", mc_plan_opts_json(&p->opts));
    cJSON_AddNumberToObject(j, "experts_per_tok", L->n_xlayers ? L->experts_per_tok : 0);
    pin = cJSON_AddObjectToObject(j, "pinned");
    if (!pin) goto fail;
    cJSON_AddNumberToObject(pin, "offset", (double)L->pinned_offset);
    cJSON_AddNumberToObject(pin, "nbytes", (double)L->pinned_nbytes);
    cJSON_AddItemToObject(j, "config", mc_plan_config(p, m));
    cJSON_AddItemToObject(j, "tokenizer", mc_flash_tokenizer(m));

    tensors = cJSON_AddArrayToObject(j, "tensors");
    ffn = cJSON_AddArrayToObject(j, "ffn");
    experts = cJSON_AddArrayToObject(j, "experts");
    if (!tensors || !ffn || !experts) goto fail;
    for (size_t i = 0; i < p->n_items; i++) {
        if (p->items[i].mt->role != MC_ROLE_PINNED) continue;
        for (size_t k = 0; k < p->items[i].n_out; k++)
            if (add_tensor(tensors, &p->items[i].out[k], L->off[i][k], "pinned", -1, E->h[i][k])) goto fail;
    }
    for (size_t s = 0; s < L->n_spans; s++) {
        const mc_flash_span *sp = &L->spans[s];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(ffn, e)) {
            cJSON_Delete(e);
            goto fail;
        }
        cJSON_AddNumberToObject(e, "layer", sp->layer);
        cJSON_AddNumberToObject(e, "offset", (double)sp->offset);
        cJSON_AddNumberToObject(e, "nbytes", (double)sp->nbytes);
        for (size_t j2 = 0; j2 < sp->n_items; j2++) {
            size_t i = sp->items[j2];
            for (size_t k = 0; k < p->items[i].n_out; k++)
                if (add_tensor(tensors, &p->items[i].out[k], L->off[i][k], "ffn", sp->layer, E->h[i][k])) goto fail;
        }
    }
    for (size_t xi = 0; xi < L->n_xlayers; xi++) {
        const mc_flash_xlayer *x = &L->xlayers[xi];
        cJSON *e = cJSON_CreateObject(), *ts, *hs;
        if (!e || !cJSON_AddItemToArray(experts, e)) {
            cJSON_Delete(e);
            goto fail;
        }
        cJSON_AddNumberToObject(e, "layer", x->layer);
        cJSON_AddNumberToObject(e, "offset", (double)x->offset);
        cJSON_AddNumberToObject(e, "n_experts", x->n_experts);
        cJSON_AddNumberToObject(e, "stride", (double)x->stride);
        ts = cJSON_AddArrayToObject(e, "tensors");
        hs = cJSON_AddArrayToObject(e, "xxh3");
        if (!ts || !hs) goto fail;
        for (size_t j2 = 0; j2 < x->n_items; j2++) {
            const mc_pitem *it = &p->items[x->items[j2]];
            for (size_t k = 0; k < it->n_out; k++) {
                const mc_pout *o = &it->out[k];
                cJSON *t = cJSON_CreateObject();
                if (!t || !cJSON_AddItemToArray(ts, t)) {
                    cJSON_Delete(t);
                    goto fail;
                }
                /* name inside the layer: "model.layers.3.mlp.switch_mlp..." -> "mlp.switch_mlp..." */
                const char *nm = o->name, *q = strstr(nm, "layers.");
                if (q) {
                    q += 7;
                    while (*q >= '0' && *q <= '9') q++;
                    if (*q == '.') nm = q + 1;
                }
                cJSON_AddStringToObject(t, "name", nm);
                cJSON_AddNumberToObject(t, "inner_offset", (double)L->off[x->items[j2]][k]);
                cJSON_AddNumberToObject(t, "nbytes", (double)(o->nbytes / it->n_experts));
                cJSON_AddStringToObject(t, "dtype", dtype_name(o->dtype));
                cJSON_AddItemToObject(t, "shape_per_expert", mc_plan_shape_json(o->shape + 1, o->n_dims - 1));
            }
        }
        for (uint32_t ex = 0; ex < x->n_experts; ex++) {
            char hx[17];
            mc_flash_hex64(E->xh[xi][ex], hx);
            if (!cJSON_AddItemToArray(hs, cJSON_CreateString(hx))) goto fail;
        }
    }
    /* quantization error (an extension of version 1: docs/FORMAT.md "qerr") */
    if (E->qerr && mc_qreport_add(j, p, E->qerr)) goto fail;
    if (!cJSON_GetObjectItemCaseSensitive(j, "config") || !cJSON_GetObjectItemCaseSensitive(j, "options") ||
        !cJSON_GetObjectItemCaseSensitive(j, "tokenizer"))
        goto fail;
    return j;
fail:
    cJSON_Delete(j);
    return NULL;
}

int mc_flash_write(const mc_model *m, const mc_flash_layout *L, const char *out_path, const mc_flash_write_opts *o,
                   mc_error *err)
{
    engine E;
    mc_outfile out;
    cJSON *man = NULL, *smeta = NULL;
    char *text = NULL;
    int rc;
    memset(&out, 0, sizeof out);
    out.fd = -1;
    out.slot = -1;
    if ((rc = engine_init(&E, m, L, o, err))) goto done;
    if ((rc = mc_outfile_create(&out, out_path, o->force, err))) goto done;
    if ((rc = mc_outfile_truncate(&out, L->data_end, err))) goto done;
    E.out = &out;
    E.rd.fd = out.fd;
    E.rd.size = L->data_end;
    E.rd.path = out.final_path;
    if ((rc = run_workers(&E, o, err))) goto done;
    if ((rc = engine_units_done(&E, err))) goto done;
    if (E.qerr && o->qerr_out) memcpy(o->qerr_out, E.qerr, L->plan->n_items * sizeof *E.qerr);
    /* the source's metadata (zstd blobs, docs/FORMAT.md "Source metadata")
     * between the data and the manifest */
    uint64_t man_off = L->data_end;
    if ((rc = mc_source_meta_write(m, &out, L->data_end, &man_off, &smeta, err))) goto done;
    man = build_manifest(&E);
    if (man && smeta) {
        cJSON_AddItemToObject(man, "source_meta", smeta);
        smeta = NULL;
    }
    text = man ? cJSON_PrintUnformatted(man) : NULL;
    if (!text) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building the manifest", out_path);
        goto done;
    }
    size_t len = strlen(text);
    mc_flash_header h = { MC_FLASH_VERSION, MC_FLASH_PAGE, man_off, len, mc_flash_align(man_off + len),
                          XXH3_64bits(text, len) };
    unsigned char hb[MC_FLASH_HEADER_BYTES];
    mc_flash_header_encode(&h, hb);
    if ((rc = mc_outfile_pwrite(&out, man_off, text, len, err))) goto done;
    if ((rc = mc_outfile_truncate(&out, h.file_size, err))) goto done;
    if ((rc = mc_outfile_pwrite(&out, 0, hb, sizeof hb, err))) goto done;
    rc = mc_outfile_commit(&out, err);
done:
    if (rc) mc_outfile_abort(&out);
    free(text);
    cJSON_Delete(man);
    cJSON_Delete(smeta);
    engine_free(&E);
    return rc;
}

/* ---- compare with a source ---- */

static int same_place(const mc_flash *f, const mc_flash_layout *L, mc_flash_problem_fn problem, void *ctx)
{
    const mc_plan *p = L->plan;
    char msg[MC_ERROR_MSG_MAX];
    int bad = 0;
    for (size_t i = 0; i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        for (size_t k = 0; k < it->n_out; k++) {
            const char *why = NULL;
            if (L->xl[i] < 0) {
                const mc_flash_tensor *t = mc_flash_find(f, it->out[k].name);
                if (!t) why = "is missing from the file";
                else if (t->offset != L->off[i][k] || t->nbytes != it->out[k].nbytes || t->dtype != it->out[k].dtype)
                    why = "has a different place, size or dtype than the source gives";
            } else {
                const mc_flash_xlayer *x = &L->xlayers[L->xl[i]];
                const mc_flash_experts *fx = mc_flash_find_experts(f, x->layer);
                if (!fx || fx->offset != x->offset || fx->stride != x->stride || fx->n_experts != x->n_experts)
                    why = "expert region differs from what the source gives";
            }
            if (why) {
                snprintf(msg, sizeof msg, "%s: %s %s", f->file.path, it->out[k].name, why);
                if (problem) problem(ctx, msg);
                bad++;
            }
        }
    }
    return bad;
}

/* The blob of fm named nm of kind kd, or NULL. */
static const mc_flash_blob *find_blob(const mc_flash_meta *fm, const char *nm, const char *kd)
{
    for (size_t i = 0; i < fm->n; i++)
        if (!strcmp(fm->blobs[i].name, nm) && !strcmp(fm->blobs[i].kind, kd)) return &fm->blobs[i];
    return NULL;
}

/* The carried source metadata against a fresh reading of the source: every
 * blob's size and checksum, when the source is the same files (a file
 * written before the region existed has none and is not judged). Returns
 * the number of differences. */
static uint64_t compare_meta(const mc_model *m, const mc_flash *f, mc_flash_problem_fn problem, void *ctx, int *rc,
                             mc_error *err)
{
    mc_flash_meta fm;
    cJSON *ex = NULL, *e;
    char msg[MC_ERROR_MSG_MAX];
    uint64_t bad = 0;
    if (mc_flash_meta_parse(f->manifest, f->file.size, &fm, err)) {
        problem(ctx, err->msg);
        return 1;
    }
    if (!fm.n) return 0;
    if ((*rc = mc_source_meta_expect(m, &ex, err))) goto done;
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(ex, "blobs");
    /* judged only when the source is the same files (the same names and
     * kinds): a split GGUF and its merged whole, or an hf folder and its
     * sharded twin, convert to the same tensors with other metadata files */
    if ((size_t)cJSON_GetArraySize(bl) != fm.n) goto done;
    cJSON_ArrayForEach(e, bl) {
        const char *nm = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const char *kd = cJSON_GetObjectItemCaseSensitive(e, "kind")->valuestring;
        if (!find_blob(&fm, nm, kd)) goto done;
    }
    cJSON_ArrayForEach(e, bl) {
        const char *nm = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const char *kd = cJSON_GetObjectItemCaseSensitive(e, "kind")->valuestring;
        const char *hx = cJSON_GetObjectItemCaseSensitive(e, "xxh3")->valuestring;
        double rs = cJSON_GetObjectItemCaseSensitive(e, "raw_size")->valuedouble;
        uint64_t h = 0;
        mc_flash_parse_hex64(hx, &h);
        const mc_flash_blob *b = find_blob(&fm, nm, kd);
        if ((double)b->raw_size != rs || b->xxh3 != h) {
            snprintf(msg, sizeof msg, "%s: source metadata %s (%s) differs from the source", f->file.path, nm, kd);
            bad++;
            problem(ctx, msg);
        }
    }
done:
    cJSON_Delete(ex);
    mc_flash_meta_free(&fm);
    return bad;
}

int mc_flash_compare(const mc_model *m, const mc_flash_layout *L, const char *flash_path, const mc_flash_write_opts *o,
                     mc_flash_problem_fn problem, void *ctx, mc_error *err)
{
    engine E;
    mc_flash *f = NULL;
    int rc = mc_flash_open(flash_path, &f, err);
    if (rc) return rc;
    if ((rc = engine_init(&E, m, L, o, err))) goto done;
    if (same_place(f, L, problem, ctx)) {
        rc = mc_error_set(err, MC_ERR_CHECKSUM, "%s: layout differs from a conversion of the source", flash_path);
        goto done;
    }
    E.compare = 1;
    free(E.qerr); /* nothing is measured when comparing */
    E.qerr = NULL;
    E.rd = f->file;
    E.problem = problem;
    E.pctx = ctx;
    if ((rc = run_workers(&E, o, err))) goto done;
    uint64_t meta_diff = compare_meta(m, f, problem, ctx, &rc, err);
    if (rc) goto done;
    if (E.n_diff)
        rc = mc_error_set(err, MC_ERR_CHECKSUM, "%s: %llu chunk%s differ from the source", flash_path,
                          (unsigned long long)E.n_diff, E.n_diff == 1 ? "" : "s");
    else if (meta_diff)
        rc = mc_error_set(err, MC_ERR_CHECKSUM, "%s: its source metadata differs from the source", flash_path);
done:
    engine_free(&E);
    mc_flash_close(f);
    return rc;
}
