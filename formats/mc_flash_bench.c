/* mconv bench's engine (mc_flash_bench.h): plan the reads of every arm,
 * then time them through the public reader. */
#include "mc_flash_bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mc_flash_reader_int.h"
#include "mc_flash_trace.h"
#include "mconv/flash.h"

static const char *const g_arm_names[] = { "direct", "buffered", "warm" };

const char *mc_flash_bench_arm_name(int arm)
{
    return arm >= 0 && arm < MC_BENCH_MAX_ARMS ? g_arm_names[arm] : "?";
}

int mc_flash_bench_arm_from_name(const char *s)
{
    for (int i = 0; i < MC_BENCH_MAX_ARMS; i++)
        if (s && !strcmp(s, g_arm_names[i])) return i;
    return -1;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void warn(mc_flash_bench_result *res, const char *fmt, ...)
{
    if (res->n_warn >= MC_BENCH_MAX_WARN) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->warn[res->n_warn++], MC_ERROR_MSG_MAX, fmt, ap);
    va_end(ap);
}

/* ---- latencies ---- */

typedef struct lats {
    uint64_t *v;
    size_t n, cap;
} lats;

static int lat_add(lats *l, uint64_t ns)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 256;
        uint64_t *p = realloc(l->v, c * sizeof *p);
        if (!p) return -1;
        l->v = p;
        l->cap = c;
    }
    l->v[l->n++] = ns;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest rank: the smallest value with at least p of the samples at or below it */
static void lat_sum(lats *l, mc_bench_lat *o)
{
    memset(o, 0, sizeof *o);
    if (!l->n) return;
    qsort(l->v, l->n, sizeof *l->v, cmp_u64);
    double tot = 0;
    for (size_t i = 0; i < l->n; i++) tot += (double)l->v[i];
    size_t i50 = (l->n * 50 + 99) / 100, i99 = (l->n * 99 + 99) / 100;
    o->n = l->n;
    o->mean_ms = tot / (double)l->n / 1e6;
    o->p50_ms = (double)l->v[i50 ? i50 - 1 : 0] / 1e6;
    o->p99_ms = (double)l->v[i99 ? i99 - 1 : 0] / 1e6;
    o->max_ms = (double)l->v[l->n - 1] / 1e6;
}

/* ---- the expert walk: uniform, without replacement, across tokens and arms ---- */

typedef struct walk {
    uint32_t *perm, n, pos;
} walk;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void shuffle(walk *w, uint64_t *rng)
{
    for (uint32_t i = w->n; i > 1; i--) {
        uint32_t j = (uint32_t)(splitmix(rng) % i), t = w->perm[i - 1];
        w->perm[i - 1] = w->perm[j];
        w->perm[j] = t;
    }
    w->pos = 0;
}

/* ---- one arm ---- */

typedef struct bench {
    const char *path;
    const mc_flash_bench_opts *o;
    mc_flash_bench_result *res;
    int *moe;                          /* the MoE layers' numbers (file order) */
    size_t n_moe;
    uint32_t k;                        /* experts per token and layer (random walk) */
    walk *w;                           /* per MoE layer */
    uint8_t **seen;                    /* per MoE layer and expert: read in this invocation */
    uint8_t *ffn_seen;                 /* per layer-table entry */
    uint64_t rng;
    mc_trace trace;
    int have_trace;
    uint64_t per_arm;                  /* tokens each arm runs (planned) */
} bench;

/* The ids of every MoE layer for `n` tokens: ids[(t * n_moe + l) * k ...]
 * with cnt[t * n_moe + l] of them. Random: drawn from the walk (fewer tokens
 * when it runs dry without reuse; *n is updated). */
static int plan_ids(bench *B, uint64_t *n, uint32_t **ids, uint32_t **cnt, char *stop, size_t stop_cap)
{
    size_t maxk = B->k;
    if (B->have_trace)
        for (size_t s = 0; s < B->trace.n_steps; s++)
            if (B->trace.steps[s].k > maxk) maxk = B->trace.steps[s].k;
    size_t slots = (size_t)*n * (B->n_moe ? B->n_moe : 1);
    *ids = calloc(slots * maxk + 1, sizeof **ids);
    *cnt = calloc(slots + 1, sizeof **cnt);
    if (!*ids || !*cnt) return -1;
    for (uint64_t t = 0; t < *n; t++) {
        for (size_t l = 0; l < B->n_moe; l++) {
            uint32_t *dst = *ids + (t * B->n_moe + l) * maxk, *c = *cnt + t * B->n_moe + l;
            if (B->have_trace) {
                if (t >= B->trace.n_tokens) break;
                for (size_t s = B->trace.token_first[t]; s < B->trace.token_first[t + 1]; s++) {
                    const mc_trace_step *st = &B->trace.steps[s];
                    if (st->layer != B->moe[l]) continue;
                    /* a layer listed twice for a token: the later line wins */
                    memcpy(dst, B->trace.ids + st->first, st->k * sizeof *dst);
                    *c = (uint32_t)st->k;
                }
                continue;
            }
            walk *w = &B->w[l];
            if (w->pos + B->k > w->n) {
                if (!B->o->reuse) {
                    snprintf(stop, stop_cap,
                             "stopped after %llu of %llu tokens: every expert block of layer %d was read once "
                             "(--reuse reads blocks again)",
                             (unsigned long long)t, (unsigned long long)*n, B->moe[l]);
                    *n = t;
                    return 0;
                }
                shuffle(w, &B->rng);
            }
            memcpy(dst, w->perm + w->pos, B->k * sizeof *dst);
            w->pos += B->k;
            *c = B->k;
        }
        if (B->have_trace && t >= B->trace.n_tokens) {
            snprintf(stop, stop_cap, "the trace has %zu tokens", B->trace.n_tokens);
            *n = t;
            return 0;
        }
    }
    return 0;
}

/* One pass over n tokens: timed (lats set) or not (warm-up). */
static int pass(bench *B, mc_flash_reader *r, mc_flash_bench_arm *a, uint64_t n, const uint32_t *ids,
                const uint32_t *cnt, unsigned char *buf, int timed, int drop, lats *all, lats *xl, lats *fl,
                lats *tl, mc_error *err)
{
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    size_t maxk = B->k;
    if (B->have_trace)
        for (size_t s = 0; s < B->trace.n_steps; s++)
            if (B->trace.steps[s].k > maxk) maxk = B->trace.steps[s].k;
    uint64_t *lat = malloc((maxk ? maxk : 1) * sizeof *lat);
    int rc = 0;
    if (!lat) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    uint64_t t_start = mc_flash_reader_now_ns();
    for (uint64_t t = 0; !rc && t < n; t++) {
        uint64_t t0 = mc_flash_reader_now_ns();
        size_t mi = 0;
        for (size_t li = 0; !rc && li < in->n_layers; li++) {
            const mc_flash_reader_layer *L = mc_flash_reader_layer_at(r, li);
            if (L->kind == MC_FLASH_READER_FFN) {
                uint64_t r0 = mc_flash_reader_now_ns();
                if ((rc = mc_flash_reader_read_ffn(r, L->layer, buf, err))) break;
                uint64_t d = mc_flash_reader_now_ns() - r0;
                if (drop) mc_flash_reader_drop_cache(r, L->offset, L->nbytes);
                if (timed) {
                    if (lat_add(all, d) || lat_add(fl, d)) rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                    a->bytes += L->nbytes;
                    a->reads++;
                    if (B->ffn_seen[li]) a->reread_reads++;
                }
                B->ffn_seen[li] = 1;
                continue;
            }
            size_t l = mi++;
            const uint32_t *x = ids + (t * B->n_moe + l) * maxk;
            uint32_t k = cnt[t * B->n_moe + l];
            if (!k) continue;
            if ((rc = mc_flash_reader_read_experts_timed(r, L->layer, x, k, buf, lat, err))) break;
            for (uint32_t i = 0; i < k; i++) {
                if (drop) mc_flash_reader_drop_cache(r, L->offset + (uint64_t)x[i] * L->nbytes, L->nbytes);
                if (timed) {
                    if (lat_add(all, lat[i]) || lat_add(xl, lat[i]))
                        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                    if (B->seen[l][x[i]]) a->reread_reads++;
                }
                B->seen[l][x[i]] = 1;
            }
            if (timed) {
                a->bytes += (uint64_t)k * L->nbytes;
                a->reads += k;
            }
        }
        uint64_t d = mc_flash_reader_now_ns() - t0;
        if (timed && !rc) {
            if (lat_add(tl, d)) rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
            a->tokens++;
            a->seconds += (double)d / 1e9;
        }
        if (timed && B->o->max_seconds > 0 && t + 1 < n &&
            (double)(mc_flash_reader_now_ns() - t_start) / 1e9 >= B->o->max_seconds) {
            snprintf(a->stop, sizeof a->stop, "stopped after %llu of %llu tokens: time limit of %g s reached",
                     (unsigned long long)(t + 1), (unsigned long long)a->tokens_asked, B->o->max_seconds);
            break;
        }
    }
    free(lat);
    return rc;
}

static int run_arm(bench *B, int arm, mc_flash_bench_arm *a, mc_error *err)
{
    const mc_flash_bench_opts *o = B->o;
    mc_flash_reader_opts ro;
    mc_flash_reader *r = NULL;
    unsigned char *pin = NULL, *buf = NULL;
    uint32_t *ids = NULL, *cnt = NULL;
    lats all = { 0 }, xl = { 0 }, fl = { 0 }, tl = { 0 };
    int rc;
    memset(a, 0, sizeof *a);
    a->arm = arm;
    mc_flash_reader_opts_init(&ro);
    ro.io = arm == MC_BENCH_DIRECT ? MC_FLASH_IO_DIRECT : MC_FLASH_IO_BUFFERED;
    ro.verify = o->verify;
    ro.threads = B->res->threads;
    if ((rc = mc_flash_reader_open(B->path, &ro, &r, err))) return rc;
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    a->direct = mc_flash_reader_io_mode(r) == MC_FLASH_IO_DIRECT;
    /* buffered reads of a cold cache: drop the file's pages first and every
     * range after its read (a direct arm that fell back does the same) */
    int drop = arm == MC_BENCH_BUFFERED || (arm == MC_BENCH_DIRECT && !a->direct);
    if (drop) a->cache_dropped = mc_flash_reader_drop_cache(r, 0, in->file_size) == 0;
    if (arm == MC_BENCH_WARM) snprintf(a->io, sizeof a->io, "buffered, page cache warmed by an untimed pass");
    else if (arm == MC_BENCH_BUFFERED)
        snprintf(a->io, sizeof a->io, "%s", a->cache_dropped ? "buffered, page cache dropped first and after each read"
                                                             : "buffered (the page cache cannot be dropped here)");
    else snprintf(a->io, sizeof a->io, "%s", mc_flash_reader_io_note(r));

    a->tokens_asked = B->per_arm;
    uint64_t n = B->per_arm;
    if (plan_ids(B, &n, &ids, &cnt, a->stop, sizeof a->stop)) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory planning the reads", B->path);
        goto done;
    }
    if (!a->stop[0] && n < a->tokens_asked) snprintf(a->stop, sizeof a->stop, "planned %llu tokens",
                                                     (unsigned long long)n);

    /* the pinned region, once */
    if (!(pin = mc_flash_reader_alloc(in->pinned_nbytes))) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for the pinned region (%llu bytes)", B->path,
                          (unsigned long long)in->pinned_nbytes);
        goto done;
    }
    if (arm == MC_BENCH_WARM && (rc = mc_flash_reader_read_pinned(r, pin, err))) goto done;
    uint64_t t0 = mc_flash_reader_now_ns();
    if ((rc = mc_flash_reader_read_pinned(r, pin, err))) goto done;
    a->pinned_s = (double)(mc_flash_reader_now_ns() - t0) / 1e9;
    a->pinned_bytes = in->pinned_nbytes;
    if (drop) mc_flash_reader_drop_cache(r, in->pinned_offset, in->pinned_nbytes);
    mc_flash_reader_free(pin);
    pin = NULL;

    uint64_t kmax = B->k;
    if (B->have_trace)
        for (size_t s = 0; s < B->trace.n_steps; s++)
            if (B->trace.steps[s].k > kmax) kmax = B->trace.steps[s].k;
    uint64_t need = in->max_ffn_nbytes > kmax * in->max_expert_stride ? in->max_ffn_nbytes
                                                                      : kmax * in->max_expert_stride;
    if (!(buf = mc_flash_reader_alloc(need ? need : 1))) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory for a token's reads (%llu bytes)", B->path,
                          (unsigned long long)need);
        goto done;
    }
    if (arm == MC_BENCH_WARM &&
        (rc = pass(B, r, a, n, ids, cnt, buf, 0, 0, &all, &xl, &fl, &tl, err)))
        goto done;
    if ((rc = pass(B, r, a, n, ids, cnt, buf, 1, drop, &all, &xl, &fl, &tl, err))) goto done;
    if (a->direct && mc_flash_reader_io_mode(r) != MC_FLASH_IO_DIRECT) { /* fell back during the reads */
        a->direct = 0;
        snprintf(a->io, sizeof a->io, "%s", mc_flash_reader_io_note(r));
    }
    lat_sum(&all, &a->read_lat);
    lat_sum(&xl, &a->expert_lat);
    lat_sum(&fl, &a->ffn_lat);
    lat_sum(&tl, &a->token_lat);
    if (a->seconds > 0) {
        a->mb_s = (double)a->bytes / a->seconds / 1e6;
        a->tokens_per_s = (double)a->tokens / a->seconds;
    }
done:
    free(all.v);
    free(xl.v);
    free(fl.v);
    free(tl.v);
    free(ids);
    free(cnt);
    mc_flash_reader_free(pin);
    mc_flash_reader_free(buf);
    mc_flash_reader_close(r);
    return rc;
}

int mc_flash_bench_run(const char *path, const mc_flash_bench_opts *o, mc_flash_bench_result *res, mc_error *err)
{
    bench B;
    mc_flash_reader *r = NULL;
    mc_flash_reader_opts ro;
    int rc;
    memset(&B, 0, sizeof B);
    memset(res, 0, sizeof *res);
    B.path = path;
    B.o = o;
    B.res = res;
    B.rng = o->seed ^ 0x6A09E667F3BCC908ull;
    if (o->n_arms == 0 || o->n_arms > MC_BENCH_MAX_ARMS)
        return mc_error_set(err, MC_ERR_ARG, "bench: %zu arms, expected 1..%d", o->n_arms, MC_BENCH_MAX_ARMS);
    if (o->threads < 0 || o->threads > 256)
        return mc_error_set(err, MC_ERR_ARG, "bench: %d threads, expected 1..256", o->threads);

    /* the file's shape, through a reader of its own */
    mc_flash_reader_opts_init(&ro);
    ro.io = MC_FLASH_IO_BUFFERED;
    ro.threads = 1;
    if ((rc = mc_flash_reader_open(path, &ro, &r, err))) return rc;
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    res->file_size = in->file_size;
    res->pinned_bytes = in->pinned_nbytes;
    res->token_bytes = in->token_bytes;
    res->token_reads = in->token_reads;
    res->experts_per_tok = in->experts_per_tok;
    res->n_ffn = in->n_ffn_layers;
    res->n_moe = in->n_moe_layers;
    res->max_stride = in->max_expert_stride;
    res->threads = o->threads ? o->threads
                              : in->experts_per_tok < 1 ? 1 : in->experts_per_tok > 64 ? 64 : in->experts_per_tok;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    res->ram_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;

    B.n_moe = in->n_moe_layers;
    B.moe = calloc(B.n_moe + 1, sizeof *B.moe);
    B.w = calloc(B.n_moe + 1, sizeof *B.w);
    B.seen = calloc(B.n_moe + 1, sizeof *B.seen);
    B.ffn_seen = calloc(in->n_layers + 1, 1);
    if (!B.moe || !B.w || !B.seen || !B.ffn_seen) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    B.k = in->experts_per_tok > 0 ? (uint32_t)in->experts_per_tok : 1;
    res->min_experts = 0;
    for (size_t li = 0, m = 0; li < in->n_layers; li++) {
        const mc_flash_reader_layer *L = mc_flash_reader_layer_at(r, li);
        if (L->kind != MC_FLASH_READER_EXPERT) continue;
        B.moe[m] = L->layer;
        B.w[m].n = L->n_experts;
        B.w[m].perm = malloc(L->n_experts * sizeof *B.w[m].perm);
        B.seen[m] = calloc(L->n_experts, 1);
        if (!B.w[m].perm || !B.seen[m]) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        for (uint32_t e = 0; e < L->n_experts; e++) B.w[m].perm[e] = e;
        shuffle(&B.w[m], &B.rng);
        if (!res->min_experts || L->n_experts < res->min_experts) res->min_experts = L->n_experts;
        m++;
    }
    if (B.n_moe && B.k > res->min_experts) B.k = res->min_experts;
    if (B.n_moe && in->experts_per_tok <= 0)
        warn(res, "the file has MoE layers but experts_per_tok 0: reading 1 expert per layer and token");

    if (o->trace) {
        if ((rc = mc_trace_load(o->trace, r, &B.trace, err))) goto done;
        B.have_trace = 1;
        res->trace = 1;
        res->trace_tokens = B.trace.n_tokens;
    }
    /* tokens per arm: random experts are never read twice unless reuse */
    B.per_arm = o->tokens ? o->tokens : B.have_trace ? B.trace.n_tokens : 32;
    if (B.have_trace && B.per_arm > B.trace.n_tokens) {
        warn(res, "the trace has %zu tokens: each arm replays %zu, not %llu", B.trace.n_tokens, B.trace.n_tokens,
             (unsigned long long)B.per_arm);
        B.per_arm = B.trace.n_tokens;
    }
    if (!B.have_trace && B.n_moe && !o->reuse) {
        uint64_t fresh = res->min_experts / B.k, each = fresh / o->n_arms;
        if (each < B.per_arm) {
            warn(res,
                 "%llu tokens per arm: the file has experts for %llu tokens without reading a block twice "
                 "(%u experts per layer, %u per token, %zu arm%s); --reuse reads blocks again",
                 (unsigned long long)each, (unsigned long long)fresh, res->min_experts, B.k, o->n_arms,
                 o->n_arms == 1 ? "" : "s");
            B.per_arm = each;
        }
    }
    for (size_t i = 0; i < o->n_arms; i++)
        if (o->arms[i] == MC_BENCH_WARM && res->ram_bytes && res->file_size > res->ram_bytes / 2)
            warn(res, "the file (%llu bytes) is more than half of this machine's memory (%llu bytes): the warm "
                 "arm's reads may not all stay in the page cache",
                 (unsigned long long)res->file_size, (unsigned long long)res->ram_bytes);
#ifdef __APPLE__
    warn(res, "macOS: F_NOCACHE does not evict pages already cached (a file just written or read is in memory): "
              "run `sudo purge` before a cold run");
#endif
    mc_flash_reader_close(r);
    r = NULL;

    for (size_t i = 0; i < o->n_arms; i++) {
        if (o->arms[i] < 0 || o->arms[i] >= MC_BENCH_MAX_ARMS) {
            rc = mc_error_set(err, MC_ERR_ARG, "bench: unknown arm %d", o->arms[i]);
            break;
        }
        mc_flash_bench_arm *a = &res->arms[res->n_arms];
        if ((rc = run_arm(&B, o->arms[i], a, err))) break;
        res->n_arms++;
        if (o->arms[i] == MC_BENCH_DIRECT && !a->direct)
            warn(res, "direct arm: direct I/O was refused (%s): it read through the page cache", a->io);
        if (o->arms[i] != MC_BENCH_WARM && !a->direct && !a->cache_dropped)
            warn(res, "%s arm: the page cache cannot be dropped here: its reads may hit cached pages",
                 mc_flash_bench_arm_name(o->arms[i]));
    }
done:
    mc_flash_reader_close(r);
    for (size_t m = 0; m < B.n_moe; m++) {
        if (B.w) free(B.w[m].perm);
        if (B.seen) free(B.seen[m]);
    }
    free(B.moe);
    free(B.w);
    free(B.seen);
    free(B.ffn_seen);
    mc_trace_free(&B.trace);
    return rc;
}
