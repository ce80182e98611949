/* Test helpers over a converted model (mc_model): open it, read a whole
 * tensor as f32, and check its tensor set against mlx-lm's names and
 * shapes (testdata/mlx_names/<list>.txt, made by scripts/mlx_names.py from
 * mlx-lm's model classes). */
#ifndef MC_TEST_MODEL_H
#define MC_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mc_convert.h"

typedef struct mc_test_name {
    char name[160];
    uint32_t nd;
    uint64_t sh[4];
} mc_test_name;

/* Up to cap entries of testdata/mlx_names/<list>.txt, in file order; a
 * missing file is a failed check. Returns how many were read. */
size_t mc_test_names_load(const char *list, mc_test_name *out, size_t cap);

/* m's tensors are exactly the list's: every name present with its shape,
 * no other tensor, and the list not empty. One check per name and shape,
 * one for the count; label starts each failure line. */
void mc_test_names_check(const mc_model *m, const char *list, const char *label);

/* Elements of t, and the length of its last dimension (1 for a scalar). */
uint64_t mc_test_mt_nelem(const mc_mtensor *t);
uint64_t mc_test_mt_row_len(const mc_mtensor *t);

/* The source at path opened as mc_convert_open does (o may be NULL); on
 * failure a line on stderr and NULL. */
mc_model *mc_test_model_open(const char *path, const mc_convert_opts *o);

/* The whole of t as f32 (malloc'd), read through mc_model_read_f32 in
 * calls of up to `chunk` rows (odd sizes cross heads and parts); NULL with
 * err set on failure. */
float *mc_test_model_read(const mc_model *m, const mc_mtensor *t, uint64_t chunk, mc_error *err);

/* The same in calls of 7 rows; on failure a line on stderr and NULL. */
float *mc_test_model_read_all(const mc_model *m, const mc_mtensor *t);

#endif
