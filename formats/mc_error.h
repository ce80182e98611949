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

typedef enum mc_code {
    MC_OK = 0,
    MC_ERR_IO = 1,          /* open/read/write/rename failed (errno text in message) */
    MC_ERR_FORMAT = 2,      /* file is malformed, truncated, inconsistent, hostile */
    MC_ERR_UNSUPPORTED = 3, /* well-formed but not something mconv handles */
    MC_ERR_NOMEM = 4,       /* allocation failed or would exceed a limit */
    MC_ERR_ARG = 5,         /* bad argument from the caller (usage) */
    MC_ERR_OVERFLOW = 6,    /* a size computed from file data overflows */
    MC_ERR_CHECKSUM = 7,    /* a checksum or verification mismatch */
    MC_ERR_EXISTS = 8,      /* output exists and overwriting was not allowed */
    MC_ERR_INTERRUPTED = 9, /* cancelled by a signal */
    MC_ERR_NOTFOUND = 10    /* a named key, tensor or file is absent */
} mc_code;

#define MC_ERROR_MSG_MAX 512

typedef struct mc_error {
    mc_code code;
    char msg[MC_ERROR_MSG_MAX];
} mc_error;

/* Set err (if non-NULL) to code and a printf-style message; returns code.
 * Does not overwrite an error already set (the first, innermost cause wins)
 * unless err->code is MC_OK. */
int mc_error_set(mc_error *err, mc_code code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reset err to MC_OK with an empty message. */
void mc_error_clear(mc_error *err);

/* Short fixed name of a code, e.g. "format error". */
const char *mc_error_code_name(mc_code code);

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
