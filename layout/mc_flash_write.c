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
#include "mc_safetensors.h"
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

/* ---- the worker engine ---- */

typedef struct hash_task {
    uint64_t off, len;
    uint64_t *dst;
} hash_task;

typedef struct engine {
    const mc_model *m;
    const mc_flash_layout *L;
    const mc_plan *p;
    const mc_source_ops *ops;
    size_t chunk_bytes;
    mc_workers w;            /* pool; w.mu also guards the cursors and diff reports */
    /* sink: write to out, or compare with cmp */
    mc_outfile *out;
    mc_file rd;              /* reads back what was written (or the compared file) */
    int compare;
    mc_flash_problem_fn problem;
    void *pctx;
    unsigned char *diff_seen; /* per item: a difference already reported */
    uint64_t n_diff;
    /* cursors */
    mc_plan_cursor cur;
    size_t n_hash, hi;
    hash_task *hash;
    uint64_t total;
    /* results */
    uint64_t (*h)[3];
    uint64_t **xh;
} engine;

static int next_job(engine *E, mc_plan_chunk *j)
{
    pthread_mutex_lock(&E->w.mu);
    int got = !E->w.failed && mc_plan_next_chunk(E->p, E->chunk_bytes, &E->cur, j);
    pthread_mutex_unlock(&E->w.mu);
    return got;
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

static void fill_worker(void *arg)
{
    engine *E = arg;
    mc_plan_scratch s;
    unsigned char *cmpbuf = NULL;
    size_t cmpcap = 0;
    mc_error err = { MC_OK, "" };
    mc_plan_chunk j;
    memset(&s, 0, sizeof s);
    while (next_job(E, &j)) {
        const mc_pitem *it = &E->p->items[j.item];
        uint64_t per = it->nrows / it->n_experts;
        unsigned char *out[3] = { NULL, NULL, NULL };
        uint64_t bytes = 0;
        if (mc_plan_convert_rows(E->m, E->ops, it, (uint64_t)j.expert * per + j.row, j.nrows, &s, out, &err)) {
            mc_workers_fail(&E->w, &err);
            break;
        }
        int rc = 0;
        for (size_t k = 0; !rc && k < it->n_out; k++) {
            uint64_t rb = it->out[k].row_bytes;
            rc = sink(E, j.item, k, out_base(E, j.item, j.expert, k) + j.row * rb, out[k], (size_t)(j.nrows * rb),
                      &cmpbuf, &cmpcap, (uint64_t)j.expert * per + j.row, &err);
            bytes += j.nrows * rb;
        }
        if (rc) {
            mc_workers_fail(&E->w, &err);
            break;
        }
        mc_workers_chunk_done(&E->w, bytes);
    }
    mc_plan_scratch_free(&s);
    free(cmpbuf);
}

#define HCHUNK ((size_t)1 << 22)

static void hash_worker(void *arg)
{
    engine *E = arg;
    unsigned char *buf = malloc(HCHUNK);
    XXH3_state_t *st = XXH3_createState();
    mc_error err = { MC_OK, "" };
    if (!buf || !st) {
        mc_error_set(&err, MC_ERR_NOMEM, "out of memory");
        mc_workers_fail(&E->w, &err);
    }
    for (;;) {
        hash_task t;
        pthread_mutex_lock(&E->w.mu);
        int have = !E->w.failed && E->hi < E->n_hash;
        if (have) t = E->hash[E->hi++];
        pthread_mutex_unlock(&E->w.mu);
        if (!have) break;
        XXH3_64bits_reset(st);
        uint64_t off = t.off, left = t.len;
        while (left) {
            size_t k = left < HCHUNK ? (size_t)left : HCHUNK;
            if (mc_file_pread(&E->rd, off, buf, k, &err)) break;
            XXH3_64bits_update(st, buf, k);
            off += k;
            left -= k;
            atomic_fetch_add(&E->w.done, k);
        }
        if (left) {
            mc_workers_fail(&E->w, &err);
            break;
        }
        *t.dst = XXH3_64bits_digest(st);
    }
    free(buf);
    if (st) XXH3_freeState(st);
}

/* Run fn on nthreads workers; the calling thread reports progress. */
static int run_phase(engine *E, int phase, void (*fn)(void *), int nthreads, const mc_flash_write_opts *o,
                     mc_error *err)
{
    return mc_workers_run(&E->w, nthreads, fn, E, phase, E->total, o->progress, o->progress_ctx, err);
}

static void engine_free(engine *E)
{
    if (E->xh)
        for (size_t i = 0; i < E->L->n_xlayers; i++) free(E->xh[i]);
    free(E->xh);
    free(E->h);
    free(E->hash);
    free(E->diff_seen);
    mc_workers_destroy(&E->w);
}

static int engine_init(engine *E, const mc_model *m, const mc_flash_layout *L, const mc_flash_write_opts *o,
                       mc_error *err)
{
    memset(E, 0, sizeof *E);
    mc_workers_init(&E->w, o->test_delay_us);
    E->m = m;
    E->L = L;
    E->p = L->plan;
    E->ops = o->ops;
    if (!E->ops || !E->ops->read_f32 || !E->ops->read_raw)
        return mc_error_set(err, MC_ERR_ARG, "no source functions given (mc_flash_write_opts.ops)");
    E->chunk_bytes = o->chunk_bytes ? o->chunk_bytes : ((size_t)4 << 20);
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
    return 0;
}

static int build_hash_tasks(engine *E, mc_error *err)
{
    const mc_flash_layout *L = E->L;
    size_t n = 0;
    for (size_t i = 0; i < E->p->n_items; i++)
        if (L->xl[i] < 0) n += E->p->items[i].n_out;
    for (size_t i = 0; i < L->n_xlayers; i++) n += L->xlayers[i].n_experts;
    E->hash = malloc((n ? n : 1) * sizeof *E->hash);
    if (!E->hash) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    E->total = 0;
    for (size_t i = 0; i < E->p->n_items; i++) {
        if (L->xl[i] >= 0) continue;
        for (size_t k = 0; k < E->p->items[i].n_out; k++) {
            E->hash[E->n_hash++] = (hash_task){ L->off[i][k], E->p->items[i].out[k].nbytes, &E->h[i][k] };
            E->total += E->p->items[i].out[k].nbytes;
        }
    }
    for (size_t i = 0; i < L->n_xlayers; i++)
        for (uint32_t e = 0; e < L->xlayers[i].n_experts; e++) {
            const mc_flash_xlayer *x = &L->xlayers[i];
            E->hash[E->n_hash++] = (hash_task){ x->offset + (uint64_t)e * x->stride, x->stride, &E->xh[i][e] };
            E->total += x->stride;
        }
    return 0;
}

/* ---- manifest ---- */

static cJSON *shape_json(const uint64_t *shape, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t d = 0; a && d < n; d++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[d]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

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
        !cJSON_AddItemToObject(e, "shape", shape_json(o->shape, o->n_dims)) ||
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
                cJSON_AddItemToObject(t, "shape_per_expert", shape_json(o->shape + 1, o->n_dims - 1));
            }
        }
        for (uint32_t ex = 0; ex < x->n_experts; ex++) {
            char hx[17];
            mc_flash_hex64(E->xh[xi][ex], hx);
            if (!cJSON_AddItemToArray(hs, cJSON_CreateString(hx))) goto fail;
        }
    }
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
    cJSON *man = NULL;
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
    if ((rc = run_phase(&E, 0, fill_worker, o->threads, o, err))) goto done;
    if ((rc = build_hash_tasks(&E, err))) goto done;
    if ((rc = run_phase(&E, 1, hash_worker, o->threads, o, err))) goto done;
    man = build_manifest(&E);
    text = man ? cJSON_PrintUnformatted(man) : NULL;
    if (!text) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building the manifest", out_path);
        goto done;
    }
    size_t len = strlen(text);
    mc_flash_header h = { MC_FLASH_VERSION, MC_FLASH_PAGE, L->data_end, len, mc_flash_align(L->data_end + len),
                          XXH3_64bits(text, len) };
    unsigned char hb[MC_FLASH_HEADER_BYTES];
    mc_flash_header_encode(&h, hb);
    if ((rc = mc_outfile_pwrite(&out, L->data_end, text, len, err))) goto done;
    if ((rc = mc_outfile_truncate(&out, h.file_size, err))) goto done;
    if ((rc = mc_outfile_pwrite(&out, 0, hb, sizeof hb, err))) goto done;
    rc = mc_outfile_commit(&out, err);
done:
    if (rc) mc_outfile_abort(&out);
    free(text);
    cJSON_Delete(man);
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
    E.rd = f->file;
    E.problem = problem;
    E.pctx = ctx;
    if ((rc = run_phase(&E, 0, fill_worker, o->threads, o, err))) goto done;
    if (E.n_diff)
        rc = mc_error_set(err, MC_ERR_CHECKSUM, "%s: %llu chunk%s differ from the source", flash_path,
                          (unsigned long long)E.n_diff, E.n_diff == 1 ? "" : "s");
done:
    engine_free(&E);
    mc_flash_close(f);
    return rc;
}
