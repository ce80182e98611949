/* Routing traces (mc_flash_trace.h). */
#include "mc_flash_trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_LINE_MAX 65536

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* A decimal number < 2^32 at *s (after blanks); -1 when none, -2 when bad. */
static long long field(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '\n' || *p == '\r') {
        *s = p;
        return -1;
    }
    if (*p < '0' || *p > '9') return -2;
    unsigned long long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long long)(*p - '0');
        if (v > 0xFFFFFFFFull) return -2;
        p++;
    }
    if (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return -2;
    *s = p;
    return (long long)v;
}

void mc_trace_free(mc_trace *t)
{
    if (!t) return;
    free(t->token_first);
    free(t->steps);
    free(t->ids);
    memset(t, 0, sizeof *t);
}

int mc_trace_load(const char *path, const mc_flash_reader *r, mc_trace *t, mc_error *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap_tf = 0, cap_st = 0, cap_id = 0, lineno = 0;
    long long last_token = -1;
    int rc = 0;
    memset(t, 0, sizeof *t);
    if (!f) return mc_error_set(err, MC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!(line = malloc(TRACE_LINE_MAX))) {
        fclose(f);
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
    }
    while (!rc && fgets(line, TRACE_LINE_MAX, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == TRACE_LINE_MAX - 1 && line[len - 1] != '\n') {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s:%zu: line longer than %d bytes", path, lineno, TRACE_LINE_MAX - 2);
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p) continue;
        long long tok = field(&p), layer = field(&p);
        if (tok < 0 || layer < 0) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s:%zu: expected TOKEN LAYER EXPERT... (decimal numbers)", path,
                              lineno);
            break;
        }
        const mc_flash_reader_layer *L = mc_flash_reader_find_layer(r, (int)layer, MC_FLASH_READER_EXPERT);
        if (!L || layer > 0x7FFFFFFF) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s:%zu: layer %lld has no experts in %s", path, lineno, layer,
                              mc_flash_reader_get_info(r)->path);
            break;
        }
        if (tok < last_token) {
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s:%zu: token %lld after token %lld (tokens never decrease)",
                              path, lineno, tok, last_token);
            break;
        }
        /* a new token (numbers may skip: the trace's tokens, in order) */
        if (tok != last_token) {
            if (grow((void **)&t->token_first, &cap_tf, t->n_tokens + 2, sizeof *t->token_first)) goto nomem;
            t->token_first[t->n_tokens++] = t->n_steps;
            last_token = tok;
        }
        if (grow((void **)&t->steps, &cap_st, t->n_steps + 1, sizeof *t->steps)) goto nomem;
        mc_trace_step *s = &t->steps[t->n_steps++];
        s->layer = (int)layer;
        s->first = t->n_ids;
        s->k = 0;
        for (;;) {
            long long e = field(&p);
            if (e == -1) break;
            if (e == -2 || e >= L->n_experts) {
                rc = mc_error_set(err, MC_ERR_FORMAT, "%s:%zu: expert %s of layer %lld: the layer has %u experts",
                                  path, lineno, e == -2 ? "id not a number" : "id too large", layer, L->n_experts);
                break;
            }
            if (grow((void **)&t->ids, &cap_id, t->n_ids + 1, sizeof *t->ids)) goto nomem;
            t->ids[t->n_ids++] = (uint32_t)e;
            s->k++;
        }
        if (!rc && s->k == 0)
            rc = mc_error_set(err, MC_ERR_FORMAT, "%s:%zu: token %lld, layer %lld: no expert ids", path, lineno, tok,
                              layer);
    }
    if (!rc && ferror(f)) rc = mc_error_set(err, MC_ERR_IO, "%s: read failed", path);
    if (!rc && t->n_tokens == 0) rc = mc_error_set(err, MC_ERR_FORMAT, "%s: no routing lines", path);
    if (!rc) t->token_first[t->n_tokens] = t->n_steps;
    goto done;
nomem:
    rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", path);
done:
    free(line);
    fclose(f);
    if (rc) mc_trace_free(t);
    return rc;
}
