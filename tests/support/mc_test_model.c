#include "mc_test_model.h"
#include "mc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t mc_test_names_load(const char *list, mc_test_name *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/testdata/mlx_names/%s.txt", MCONV_SOURCE_DIR, list);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot read %s", path);
    if (!f) return 0;
    char line[256];
    size_t n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = '\0';
        size_t len = strlen(line);
        CHECKF(len < sizeof out->name, "%s: name %s too long for the test", path, line);
        if (len >= sizeof out->name) continue;
        mc_test_name *e = &out[n++];
        memcpy(e->name, line, len + 1);
        e->nd = 0;
        for (char *p = sp + 1; *p && *p != '\n' && e->nd < 4;) {
            e->sh[e->nd++] = strtoull(p, &p, 10);
            if (*p == ',') p++;
        }
    }
    fclose(f);
    return n;
}

void mc_test_names_check(const mc_model *m, const char *list, const char *label)
{
    enum { CAP = 4096 };
    mc_test_name *want = malloc(CAP * sizeof *want);
    CHECKF(want != NULL, "%s: out of memory", label);
    if (!want) return;
    size_t n = mc_test_names_load(list, want, CAP), matched = 0;
    for (size_t i = 0; i < n; i++) {
        const mc_mtensor *t = mc_model_find(m, want[i].name);
        CHECKF(t != NULL, "%s: mlx-lm tensor %s not produced", label, want[i].name);
        if (!t) continue;
        int same = t->n_dims == want[i].nd;
        for (uint32_t d = 0; same && d < t->n_dims; d++) same = t->shape[d] == want[i].sh[d];
        char got[96] = "";
        size_t o = 0;
        for (uint32_t d = 0; d < t->n_dims && o < sizeof got; d++)
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        CHECKF(same, "%s: %s shape %s differs from mlx-lm's", label, want[i].name, got);
        matched += same;
    }
    CHECKF(m->n_tensors == n && matched == n && n > 0, "%s: %zu tensors produced, %zu matched, mlx-lm loads %zu",
           label, m->n_tensors, matched, n);
    free(want);
}

uint64_t mc_test_mt_nelem(const mc_mtensor *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->shape[d];
    return n;
}

uint64_t mc_test_mt_row_len(const mc_mtensor *t)
{
    return t->n_dims && t->shape[t->n_dims - 1] ? t->shape[t->n_dims - 1] : 1;
}

mc_model *mc_test_model_open(const char *path, const mc_convert_opts *o)
{
    mc_model *m = NULL;
    mc_error err = {0};
    if (mc_convert_open(path, o, &m, &err)) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
        return NULL;
    }
    return m;
}

float *mc_test_model_read(const mc_model *m, const mc_mtensor *t, uint64_t chunk, mc_error *err)
{
    uint64_t rl = mc_test_mt_row_len(t), n = mc_test_mt_nelem(t), rows = n / rl;
    if (chunk == 0) chunk = 1;
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {
        mc_error_set(err, MC_ERR_NOMEM, "out of memory reading %s", t->name);
        return NULL;
    }
    for (uint64_t r = 0; r < rows;) {
        uint64_t k = rows - r < chunk ? rows - r : chunk;
        if (mc_model_read_f32(m, t, r, k, v + r * rl, err)) {
            free(v);
            return NULL;
        }
        r += k;
    }
    return v;
}

float *mc_test_model_read_all(const mc_model *m, const mc_mtensor *t)
{
    mc_error err = {0};
    float *v = mc_test_model_read(m, t, 7, &err);
    if (!v) fprintf(stderr, "read %s: %s\n", t->name, err.msg);
    return v;
}
