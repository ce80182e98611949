/* mc_export internals shared by the folder builders: mc_export.c (files,
 * safetensors files, tokenizer, writing; the mlx-lm folder) and
 * mc_export_maccode.c (the mac-code folder). Not a public API. */
#ifndef MC_EXPORT_INT_H
#define MC_EXPORT_INT_H

#include "mc_export.h"

struct cJSON;

/* One tensor of a safetensors file: output k of plan item `item`, stored
 * under name. */
typedef struct mc_export_st_ent {
    size_t item, k;
    const char *name;
} mc_export_st_ent;

int mc_export_oom(mc_error *err);
/* name without a leading "language_model." */
const char *mc_export_strip_lm(const char *name);
/* Append a file (head taken over, freed on failure); *idx its index. */
int mc_export_add_file(mc_export *X, const char *name, unsigned char *head, size_t head_len, uint64_t size,
                       size_t *idx, mc_error *err);
/* A whole JSON file (pretty-printed, newline at the end). */
int mc_export_add_json_file(mc_export *X, const char *name, const struct cJSON *j, mc_error *err);
int mc_export_add_dir(mc_export *X, const char *name, mc_error *err);
/* The source's tokenizer files: copied from its folder, or built from a GGUF. */
int mc_export_add_tokenizer(const mc_model *m, mc_export *X, mc_error *err);
/* A safetensors file of the entries, packed in this order, header
 * {"__metadata__": {"format": "mlx"}, ...} padded with spaces to a multiple
 * of 8 (as MLX writes it); places every entry. */
int mc_export_add_st_file(mc_export *X, const char *fname, const mc_export_st_ent *e, size_t n, mc_error *err);

/* The mac-code folder (mc_export_maccode.c). */
int mc_export_build_maccode(const mc_model *m, mc_export *X, mc_error *err);

#endif
