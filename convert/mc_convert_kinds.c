/* mc_convert_kinds: the kinds of every decoder layer (attention or another
 * mixer, MoE or dense FFN), from the architecture's selectors (tensor
 * presence) and its layer_kinds hook, and the helpers hooks use to read
 * kinds from a config (period, first index, list, pattern string). */
#include "mc_convert_priv.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static int mc_layer_has(mc_cv *cv, const char *gpat, const char *hpat, int L)
{
    char name[MC_NAME_MAX];
    mc_model *m = cv->m;
    const char *pat = m->gguf ? gpat : hpat;
    if (!pat || mc_fmt_name(name, sizeof name, pat, L, 0)) return 0;
    mc_st_src probe;
    return m->gguf ? mc_gguf_find_tensor(m->gguf, name) != NULL : mc_st_lookup(cv, name, &probe);
}

int mc_layer_kinds(mc_cv *cv, mc_error *err)
{
    const mc_arch *a = cv->arch;
    int n = cv->m->n_layers;
    cv->kinds = calloc(n > 0 ? (size_t)n : 1, sizeof *cv->kinds);
    if (!cv->kinds) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory", cv->m->input_path);
    for (int L = 0; L < n; L++)
        for (size_t k = 0; k < MC_MAX_KIND_SEL; k++) {
            const mc_kind_sel *s = &a->kinds[k];
            if (s->present | s->absent) cv->kinds[L] |= mc_layer_has(cv, s->gguf, s->hf, L) ? s->present : s->absent;
        }
    return a->layer_kinds ? a->layer_kinds(cv, err) : 0;
}

/* ------------------------------------------------------ from the config */

static void mc_kinds_set(mc_cv *cv, int L, int sel, unsigned on, unsigned off)
{
    cv->kinds[L] = (uint8_t)(cv->kinds[L] | (sel ? on : off));
}

void mc_cv_kinds_period(mc_cv *cv, uint64_t step, unsigned on, unsigned off)
{
    for (int L = 0; L < cv->m->n_layers; L++) mc_kinds_set(cv, L, step && ((uint64_t)L + 1) % step == 0, on, off);
}

void mc_cv_kinds_from(mc_cv *cv, uint64_t first, unsigned on, unsigned off)
{
    for (int L = 0; L < cv->m->n_layers; L++) mc_kinds_set(cv, L, (uint64_t)L >= first, on, off);
}

int mc_cv_kinds_list(mc_cv *cv, const cJSON *cfg, const char *key, unsigned on, unsigned off, mc_error *err)
{
    int n = cv->m->n_layers;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(cfg, key), *it;
    unsigned char *sel = calloc(n > 0 ? (size_t)n : 1, 1);
    if (!sel) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (list && !cJSON_IsArray(list)) {
        free(sel);
        return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json %s is not a list of layers", cv->m->input_path, key);
    }
    cJSON_ArrayForEach(it, list) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= n ||
            it->valuedouble != (double)(int)it->valuedouble) {
            free(sel);
            return mc_error_set(err, MC_ERR_FORMAT, "%s: config.json %s holds a value that is not a layer of %d",
                                cv->m->input_path, key, n);
        }
        sel[(int)it->valuedouble] = 1;
    }
    for (int L = 0; L < n; L++) mc_kinds_set(cv, L, sel[L], on, off);
    free(sel);
    return 0;
}

int mc_cv_kinds_pattern(mc_cv *cv, const char *what, const char *pattern, const char *chars, const uint8_t *kinds,
                        mc_error *err)
{
    int n = cv->m->n_layers;
    if (!pattern || strlen(pattern) != (size_t)n)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: %s has %zu characters for %d layers", cv->m->input_path, what,
                            pattern ? strlen(pattern) : (size_t)0, n);
    for (int L = 0; L < n; L++) {
        const char *c = pattern[L] ? strchr(chars, pattern[L]) : NULL;
        if (!c)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: %s: layer %d is '%c', not one of \"%s\"", cv->m->input_path,
                                what, L, pattern[L], chars);
        cv->kinds[L] |= kinds[c - chars];
    }
    return 0;
}

int mc_cv_kinds_string(const mc_cv *cv, const char *chars, const uint8_t *kinds, char *buf, size_t cap)
{
    int n = cv->m->n_layers;
    if (n < 0 || (size_t)n >= cap) return 1;
    for (int L = 0; L < n; L++) {
        size_t i = 0;
        while (chars[i] && (cv->kinds[L] & kinds[i]) != kinds[i]) i++;
        if (!chars[i]) return 1;
        buf[L] = chars[i];
    }
    buf[n] = '\0';
    return 0;
}
