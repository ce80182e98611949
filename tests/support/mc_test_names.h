/* mlx-lm's tensor names and shapes (testdata/mlx_names/<list>.txt, made by
 * scripts/mlx_names.py from mlx-lm's model classes) and the check that a
 * converted model has exactly that set. */
#ifndef MC_TEST_NAMES_H
#define MC_TEST_NAMES_H

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

#endif
