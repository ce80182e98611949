/* mc_error: the one error type of libmconv.
 *
 * Every fallible library function takes an `mc_error *err` (may be NULL),
 * returns 0 on success or a non-zero mc_code on failure, and on failure
 * fills err with the code and a one-line message that names the file, the
 * tensor and the numbers involved. The library never prints or exits.
 */
#ifndef MC_ERROR_H
#define MC_ERROR_H

#include <stddef.h>
#include <stdint.h>

/* mc_code, mc_error, mc_error_clear and mc_error_code_name are public
 * (include/mconv/error.h); the rest of this header is internal. */
#include "mconv/error.h"

/* Set err (if non-NULL) to code and a printf-style message; returns code.
 * Does not overwrite an error already set (the first, innermost cause wins)
 * unless err->code is MC_OK. */
int mc_error_set(mc_error *err, mc_code code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Checked arithmetic on sizes that come from files. Return 0 on success,
 * non-zero on overflow (and *out is unspecified). */
static inline int mc_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a) return 1;
    *out = a * b;
    return 0;
}
static inline int mc_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b > UINT64_MAX - a) return 1;
    *out = a + b;
    return 0;
}

#endif
