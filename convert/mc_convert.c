/* mc_convert: open a source checkpoint as an mlx-lm model (the steps live
 * in mc_convert_source.c, mc_convert_rules.c, mc_convert_config.c) and
 * close it; reads are in mc_convert_read.c. */
#include "mc_convert.h"
#include "mc_convert_priv.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *mc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* -------------------------------------------------------------- notices */

void mc_notice(mc_model *m, const char *fmt, ...)
{
    if (m->n_notices >= MC_MAX_NOTICES) return;
    char buf[MC_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nn = realloc(m->notices, (m->n_notices + 1) * sizeof *nn);
    if (!nn) return;
    m->notices = nn;
    char *d = mc_strdup(buf);
    if (d) m->notices[m->n_notices++] = d;
}

void mc_cv_notice(mc_cv *cv, const char *fmt, ...)
{
    char buf[MC_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mc_notice(cv->m, "%s", buf);
}

void mc_recipe_free(mc_recipe *r)
{
    if (!r) return;
    free(r->parts);
    free(r->col_map);
    free(r);
}

/* --------------------------------------------------------------- open */

int mc_convert_open(const char *input_path, const mc_convert_opts *opts, mc_model **out, mc_error *err)
{
    static const mc_convert_opts defaults = {0, 1};
    mc_cv cv;
    mc_model *m = NULL;
    int rc = 0;
    memset(&cv, 0, sizeof cv);
    if (!input_path || !out) return mc_error_set(err, MC_ERR_ARG, "mc_convert_open: NULL argument");
    *out = NULL;
    if (!opts) opts = &defaults;
    m = calloc(1, sizeof *m);
    if (!m) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    cv.m = m;
    cv.opts = opts;
    m->input_path = mc_strdup(input_path);
    m->impl = calloc(1, sizeof(mc_model_priv));
    if (!m->input_path || !m->impl) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto fail; }

    if (!mc_io_is_dir(input_path) && mc_is_gguf_file(input_path)) {
        m->kind = MC_SRC_GGUF;
        if ((rc = mc_gguf_open(input_path, &m->gguf, err))) goto fail;
        if ((rc = mc_setup_gguf(&cv, err))) goto fail;
    } else {
        m->kind = MC_SRC_SAFETENSORS;
        if ((rc = mc_st_open(input_path, &m->st, err))) goto fail;
        if ((rc = mc_setup_st(&cv, err))) goto fail;
    }
    if (opts->keep_names) {
        if ((rc = mc_keep_names(&cv, err))) goto fail;
        if (!m->config) {
            m->config = cJSON_CreateObject();
            if (!m->config || !cJSON_AddStringToObject(m->config, "model_type", m->arch)) {
                rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        m->model_type = mc_strdup(m->arch);
    } else {
        if ((rc = mc_drop_mtp(&cv, err)) || (rc = mc_layer_kinds(&cv, err))) goto fail;
        if ((rc = mc_apply_rules(&cv, err))) goto fail;
        if ((rc = mc_build_config(&cv, err))) goto fail;
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m->config, "model_type");
        m->model_type = mc_strdup(cJSON_IsString(mt) ? mt->valuestring : cv.arch->model_type);
        mc_unused_notices(&cv);
    }
    if (!m->model_type) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); goto fail; }
    if ((rc = mc_build_tokenizer(&cv, err))) goto fail;
    for (size_t i = 0; i < cv.n_idx; i++) free(cv.idx[i].norm);
    free(cv.idx);
    free(cv.kinds);
    *out = m;
    return 0;
fail:
    for (size_t i = 0; i < cv.n_idx; i++) free(cv.idx[i].norm);
    free(cv.idx);
    free(cv.kinds);
    mc_convert_close(m);
    return rc ? rc : MC_ERR_FORMAT;
}

void mc_convert_close(mc_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        mc_recipe_free(m->tensors[i].impl);
    }
    free(m->tensors);
    for (size_t i = 0; i < m->n_notices; i++) free(m->notices[i]);
    free(m->notices);
    if (m->gguf) mc_gguf_close(m->gguf);
    if (m->st) mc_st_close(m->st);
    cJSON_Delete(m->config);
    cJSON_Delete(m->tokenizer);
    free(m->arch);
    free(m->model_type);
    free(m->input_path);
    free(m->impl);
    free(m);
}

const mc_mtensor *mc_model_find(const mc_model *m, const char *name)
{
    if (!m || !name) return NULL;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}
