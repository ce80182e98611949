#include "mc_recipe.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "mc_types.h"

/* The recipes: name, and for mlx-lm's mixed ones the low and high bits
 * (mlx_lm/convert.py, mixed_quant_predicate_builder: high_bits = 6 except
 * mixed_3_4, where it is 4). */
static const struct {
    const char *name;
    int low, high;
} g_recipes[MC_RECIPE_COUNT] = {
    [MC_RECIPE_UNIFORM] = { "uniform", 0, 0 },   [MC_RECIPE_SOURCE] = { "source", 0, 0 },
    [MC_RECIPE_MIXED_2_6] = { "mixed_2_6", 2, 6 }, [MC_RECIPE_MIXED_3_4] = { "mixed_3_4", 3, 4 },
    [MC_RECIPE_MIXED_3_6] = { "mixed_3_6", 3, 6 }, [MC_RECIPE_MIXED_4_6] = { "mixed_4_6", 4, 6 },
};

/* mixed_quant_predicate: a module whose path contains one of these gets the
 * high bits, in every layer or only in the layers where use_more_bits holds. */
static const struct {
    const char *substr;
    int more_bits_layers_only;
} g_high[] = {
    { "v_proj", 1 }, { "v_a_proj", 1 }, { "v_b_proj", 1 }, { "down_proj", 1 }, { "lm_head", 0 },
};

int mc_recipe_from_name(const char *name)
{
    for (int i = 0; name && i < MC_RECIPE_COUNT; i++)
        if (!strcmp(name, g_recipes[i].name)) return i;
    return -1;
}

const char *mc_recipe_name(int recipe)
{
    return recipe >= 0 && recipe < MC_RECIPE_COUNT ? g_recipes[recipe].name : "?";
}

const char *mc_recipe_list(void) { return "uniform, source, mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6"; }

int mc_recipe_is_mixed(int recipe) { return recipe >= 0 && recipe < MC_RECIPE_COUNT && g_recipes[recipe].low > 0; }

/* Component k (dot-separated) of path into buf; 0 when path has no component k. */
static int component(const char *path, int k, char *buf, size_t cap)
{
    const char *p = path;
    for (int i = 0; i < k; i++) {
        p = strchr(p, '.');
        if (!p) return 0;
        p++;
    }
    size_t n = strcspn(p, ".");
    if (n >= cap) n = cap - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
    return 1;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

int mc_recipe_prepare(const mc_model *m, int recipe, mc_recipe_ctx *c, mc_error *err)
{
    memset(c, 0, sizeof *c);
    if (recipe < 0 || recipe >= MC_RECIPE_COUNT)
        return mc_error_set(err, MC_ERR_ARG, "--recipe: expected one of %s", mc_recipe_list());
    c->recipe = recipe;
    if (!mc_recipe_is_mixed(recipe)) return 0;
    c->low = g_recipes[recipe].low;
    c->high = g_recipes[recipe].high;
    c->n_layers = m->n_layers;
    /* down_keys[0]: the first module path containing "down_proj"; the layer
     * index is its first all-digit component (when none is, Python's loop
     * leaves the last component's position). */
    const char *first = NULL;
    for (size_t i = 0; i < m->n_tensors && !first; i++)
        if (strstr(m->tensors[i].name, "down_proj")) first = m->tensors[i].name;
    if (!first)
        return mc_error_set(err, MC_ERR_UNSUPPORTED,
                            "%s: --recipe %s: the model has no down_proj modules (mlx-lm refuses it: \"Model does "
                            "not have expected keys for mixed quant.\")", m->input_path, g_recipes[recipe].name);
    char path[1024], comp[256];
    size_t fl = strlen(first);
    if (fl >= sizeof path) fl = sizeof path - 1;
    memcpy(path, first, fl);
    path[fl] = 0;
    if (fl > 7 && !strcmp(path + fl - 7, ".weight")) path[fl - 7] = 0;
    int k = 0, last = 0, found = 0;
    for (; !found && component(path, k, comp, sizeof comp); k++) {
        last = k;
        found = all_digits(comp);
    }
    c->layer_loc = last;
    return 0;
}

int mc_recipe_bits(const mc_recipe_ctx *c, const mc_model *m, const mc_mtensor *t, const char *module, int *bits,
                   mc_error *err)
{
    *bits = 0;
    if (c->recipe == MC_RECIPE_SOURCE) {
        *bits = t->src_bits;
        return 0;
    }
    if (!mc_recipe_is_mixed(c->recipe)) return 0;
    /* index = int(path.split(".")[layer_location]) if len(path.split(".")) > layer_location else 0 */
    char comp[256];
    long index = 0;
    if (component(module, c->layer_loc, comp, sizeof comp)) {
        if (!all_digits(comp) || strlen(comp) > 9)
            return mc_error_set(err, MC_ERR_UNSUPPORTED,
                                "%s: --recipe %s: module %s has \"%s\" where mlx-lm's predicate reads the layer "
                                "index (component %d); mlx-lm fails on it", m->input_path, g_recipes[c->recipe].name,
                                module, comp, c->layer_loc);
        index = strtol(comp, NULL, 10);
    }
    long n = c->n_layers;
    /* Python's // and % on non-negative index and n: plain C division; the
     * one negative operand, index - n//8, is made non-negative for %:
     * Python's (x % 3) is in [0, 3) even for negative x. */
    long d = index - n / 8, mod3 = ((d % 3) + 3) % 3;
    int more = index < n / 8 || index >= 7 * n / 8 || mod3 == 2;
    *bits = c->low;
    for (size_t i = 0; i < sizeof g_high / sizeof g_high[0]; i++)
        if (strstr(module, g_high[i].substr) && (more || !g_high[i].more_bits_layers_only)) *bits = c->high;
    return 0;
}
