/* mc_recipe: per-module bit choices beyond one global --bits.
 *
 * - "source": every tensor keeps the bits of the GGML block type it was
 *   stored in (quant/mc_types.c, mc_type_src_bits: Q6_K -> 6, Q4_K -> 4...);
 *   float sources keep --bits (and the converter's 8-bit routers).
 * - "mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6": mlx-lm's own mixed
 *   recipes (mlx_lm/convert.py, mixed_quant_predicate_builder), decided per
 *   module path exactly as mlx-lm decides them; see docs/QUANT.md.
 * Explicit --bits-for overrides still win over any recipe (layout/mc_plan.c).
 */
#ifndef MC_RECIPE_H
#define MC_RECIPE_H

#include "mc_convert.h"
#include "mc_error.h"

typedef enum mc_recipe_id {
    MC_RECIPE_UNIFORM = 0, /* --bits for everything (the converter's 8-bit routers aside) */
    MC_RECIPE_SOURCE = 1,
    MC_RECIPE_MIXED_2_6 = 2,
    MC_RECIPE_MIXED_3_4 = 3,
    MC_RECIPE_MIXED_3_6 = 4,
    MC_RECIPE_MIXED_4_6 = 5,
    MC_RECIPE_COUNT
} mc_recipe_id;

/* Name <-> id ("uniform", "source", "mixed_2_6", ...); -1 / "?" when unknown. */
int mc_recipe_from_name(const char *name);
const char *mc_recipe_name(int recipe);
/* "uniform, source, mixed_2_6, ..." for messages. */
const char *mc_recipe_list(void);
/* 1 for mlx-lm's mixed_* recipes. */
int mc_recipe_is_mixed(int recipe);

/* What a recipe needs to know of the whole model (mlx-lm computes it once
 * per model: the position of the layer index in module paths and the
 * number of layers). */
typedef struct mc_recipe_ctx {
    int recipe;
    int layer_loc;  /* mixed: the dot-separated component holding the layer index */
    int n_layers;   /* mixed: len(model.layers) */
    int low, high;  /* mixed: the recipe's bits */
} mc_recipe_ctx;

/* Prepare recipe for m: 0, MC_ERR_ARG (unknown recipe) or MC_ERR_UNSUPPORTED
 * (a mixed recipe on a model without down_proj modules: mlx-lm refuses it too). */
int mc_recipe_prepare(const mc_model *m, int recipe, mc_recipe_ctx *c, mc_error *err);

/* The bits the recipe gives quantizable tensor t (module: its name without
 * ".weight") into *bits: 2..8, or 0 when the recipe leaves it to --bits.
 * Returns 0, or MC_ERR_UNSUPPORTED for a module path on which mlx-lm's mixed
 * predicate fails (a non-numeric component where the layer index is). */
int mc_recipe_bits(const mc_recipe_ctx *c, const mc_model *m, const mc_mtensor *t, const char *module, int *bits,
                   mc_error *err);

#endif
