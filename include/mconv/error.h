/* mconv/error.h: the one error type of libmconv (public).
 *
 * Every fallible library function takes an `mc_error *err` (may be NULL),
 * returns 0 on success or a non-zero mc_code on failure, and on failure
 * fills err with the code and a one-line message that names the file, the
 * tensor and the numbers involved. The library never prints or exits.
 *
 * Initialise an mc_error before the first call (`mc_error err = {0};` or
 * mc_error_clear): a call only fills an error that is still MC_OK, so the
 * first, innermost cause is the one kept.
 */
#ifndef MCONV_ERROR_H
#define MCONV_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed codes; their values never change. */
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
    char msg[MC_ERROR_MSG_MAX]; /* one line, NUL-terminated; "" when code is MC_OK */
} mc_error;

/* Reset err to MC_OK with an empty message. */
void mc_error_clear(mc_error *err);

/* Short fixed name of a code, e.g. "format error". */
const char *mc_error_code_name(mc_code code);

#ifdef __cplusplus
}
#endif

#endif
