#include "mc_qreport.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_types.h"

/* ---- kinds: the first rule that matches a name ---- */

typedef struct kind_rule {
    const char *substr; /* in the mlx name */
    int kind;
} kind_rule;

static const kind_rule g_rules[] = {
    { "embed_tokens", MC_QK_EMBED },  { "lm_head", MC_QK_EMBED },        { "embed_q", MC_QK_EMBED },
    { "unembed", MC_QK_EMBED },       { "wte.", MC_QK_EMBED },           { "word_embeddings", MC_QK_EMBED },
    { "per_layer_model_projection", MC_QK_EMBED },                      { "embed_tokens_per_layer", MC_QK_EMBED },
    { "mlp.gate.", MC_QK_OTHER },     { "moe.gate.", MC_QK_OTHER },     { "router", MC_QK_OTHER },         { "shared_expert_gate", MC_QK_OTHER },
    { "norm", MC_QK_OTHER },          { ".mlp.", MC_QK_FFN },            { "feed_forward", MC_QK_FFN },
    { "shared_expert", MC_QK_FFN },   { "attn", MC_QK_ATTENTION },       { "attention", MC_QK_ATTENTION },
    { "mixer", MC_QK_ATTENTION },     { "ssm", MC_QK_ATTENTION },
};

static const char *const g_kind_names[MC_QK_COUNT] = { "attention", "dense_ffn", "experts", "embeddings", "other" };

int mc_qreport_kind(const mc_mtensor *t)
{
    if (t->role == MC_ROLE_EXPERT) return MC_QK_EXPERTS;
    for (size_t i = 0; i < sizeof g_rules / sizeof g_rules[0]; i++)
        if (strstr(t->name, g_rules[i].substr)) return g_rules[i].kind;
    return t->role == MC_ROLE_FFN ? MC_QK_FFN : MC_QK_OTHER;
}

const char *mc_qreport_kind_name(int kind)
{
    return kind >= 0 && kind < MC_QK_COUNT ? g_kind_names[kind] : "other";
}

/* ---- figures ---- */

/* A finite double as the shortest of %.15g, %.16g, %.17g that reads back
 * as the same double (cJSON's own printing may drop the last bit). */
static cJSON *exact_num(cJSON *o, const char *key, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    cJSON *n = cJSON_CreateRaw(buf);
    if (!n || !cJSON_AddItemToObject(o, key, n)) {
        cJSON_Delete(n);
        return NULL;
    }
    return n;
}

static int add_figures(cJSON *o, const mc_qerr_stats *s)
{
    int bad = !cJSON_AddBoolToObject(o, "exact", s->exact) ||
              !cJSON_AddNumberToObject(o, "count", (double)s->count) ||
              !exact_num(o, "sum_sq_err", s->sum_sq_err) ||
              !exact_num(o, "sum_sq_ref", s->sum_sq_ref) ||
              !exact_num(o, "max_abs", s->max_abs);
    if (bad) return -1;
    if (s->exact) {
        bad = !cJSON_AddNumberToObject(o, "rel_rms", 0) || !cJSON_AddNullToObject(o, "snr_db");
    } else if (s->defined) {
        bad = !exact_num(o, "rel_rms", s->rel_rms) || !exact_num(o, "snr_db", s->snr_db);
    } else {
        bad = !cJSON_AddNullToObject(o, "rel_rms") || !cJSON_AddNullToObject(o, "snr_db");
    }
    if (!bad && s->nonfinite) bad = !cJSON_AddNumberToObject(o, "nonfinite", (double)s->nonfinite);
    return bad ? -1 : 0;
}

cJSON *mc_qreport_tensors(const mc_plan *p, const mc_qerr *q)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (size_t i = 0; i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        mc_qerr_stats s;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            goto fail;
        }
        mc_qerr_stats_get(&q[i], &s);
        const mc_type_traits *tr = mc_type_get(it->float_type);
        int bad = !cJSON_AddStringToObject(e, "name", it->out[0].name) ||
                  !cJSON_AddStringToObject(e, "kind", mc_qreport_kind_name(mc_qreport_kind(it->mt))) ||
                  (it->mt->layer >= 0 && !cJSON_AddNumberToObject(e, "layer", it->mt->layer)) ||
                  !cJSON_AddStringToObject(e, "method", mc_plan_method(it));
        if (!bad && (it->kind == MC_PK_AFFINE || it->kind == MC_PK_REPACK))
            bad = !cJSON_AddNumberToObject(e, "bits", it->bits) ||
                  !cJSON_AddNumberToObject(e, "group_size", it->group_size);
        if (!bad && it->kind != MC_PK_RAW)
            bad = !cJSON_AddStringToObject(e, "dtype", tr && tr->st_name ? tr->st_name : mc_type_name(it->float_type));
        if (bad || add_figures(e, &s)) goto fail;
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

typedef struct worst { size_t i; double r; } worst;

static int worst_cmp(const void *a, const void *b)
{
    const worst *x = a, *y = b;
    if (x->r != y->r) return x->r > y->r ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

cJSON *mc_qreport_summary(const mc_plan *p, const mc_qerr *q)
{
    mc_qerr *k = malloc((MC_QK_COUNT + 1) * sizeof *k);
    size_t nt[MC_QK_COUNT + 1] = { 0 }, nx[MC_QK_COUNT + 1] = { 0 };
    worst *w = malloc((p->n_items ? p->n_items : 1) * sizeof *w);
    size_t nw = 0;
    cJSON *j = cJSON_CreateObject(), *kinds = NULL, *wl = NULL;
    if (!k || !w || !j) goto fail;
    for (int i = 0; i <= MC_QK_COUNT; i++) mc_qerr_init(&k[i]);
    for (size_t i = 0; i < p->n_items; i++) {
        int kd = mc_qreport_kind(p->items[i].mt);
        mc_qerr_stats s;
        mc_qerr_stats_get(&q[i], &s);
        mc_qerr_merge(&k[kd], &q[i]);
        mc_qerr_merge(&k[MC_QK_COUNT], &q[i]);
        nt[kd]++;
        nt[MC_QK_COUNT]++;
        if (s.exact) {
            nx[kd]++;
            nx[MC_QK_COUNT]++;
        } else {
            w[nw].i = i;
            w[nw++].r = s.defined ? s.rel_rms : 1e300; /* an all-zero source stored otherwise: first */
        }
    }
    kinds = cJSON_AddObjectToObject(j, "kinds");
    if (!kinds) goto fail;
    for (int i = 0; i <= MC_QK_COUNT; i++) {
        if (i < MC_QK_COUNT && !nt[i]) continue;
        cJSON *o = i < MC_QK_COUNT ? cJSON_AddObjectToObject(kinds, g_kind_names[i]) : cJSON_AddObjectToObject(j, "total");
        mc_qerr_stats s;
        mc_qerr_stats_get(&k[i], &s);
        if (!o || !cJSON_AddNumberToObject(o, "tensors", (double)nt[i]) ||
            !cJSON_AddNumberToObject(o, "exact_tensors", (double)nx[i]) || add_figures(o, &s))
            goto fail;
    }
    qsort(w, nw, sizeof *w, worst_cmp);
    if (!(wl = cJSON_AddArrayToObject(j, "worst"))) goto fail;
    for (size_t i = 0; i < nw && i < MC_QREPORT_WORST; i++) {
        const mc_pitem *it = &p->items[w[i].i];
        mc_qerr_stats s;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(wl, e)) {
            cJSON_Delete(e);
            goto fail;
        }
        mc_qerr_stats_get(&q[w[i].i], &s);
        if (!cJSON_AddStringToObject(e, "name", it->out[0].name) ||
            !cJSON_AddStringToObject(e, "kind", mc_qreport_kind_name(mc_qreport_kind(it->mt))) ||
            !cJSON_AddStringToObject(e, "method", mc_plan_method(it)) ||
            ((it->kind == MC_PK_AFFINE || it->kind == MC_PK_REPACK) && !cJSON_AddNumberToObject(e, "bits", it->bits)) ||
            add_figures(e, &s))
            goto fail;
    }
    free(k);
    free(w);
    return j;
fail:
    free(k);
    free(w);
    cJSON_Delete(j);
    return NULL;
}

int mc_qreport_add(cJSON *obj, const mc_plan *p, const mc_qerr *q)
{
    cJSON *t = mc_qreport_tensors(p, q), *s = t ? mc_qreport_summary(p, q) : NULL;
    if (!t || !s) {
        cJSON_Delete(t);
        cJSON_Delete(s);
        return -1;
    }
    if (!cJSON_AddItemToObject(obj, "qerr", t)) {
        cJSON_Delete(t);
        cJSON_Delete(s);
        return -1;
    }
    if (!cJSON_AddItemToObject(obj, "qerr_summary", s)) {
        cJSON_Delete(s);
        return -1;
    }
    return 0;
}

cJSON *mc_qreport_json(const mc_plan *p, const mc_qerr *q)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "format", "mconv-quant-report") || !cJSON_AddNumberToObject(j, "version", 1) ||
        mc_qreport_add(j, p, q)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
