#include "mc_error.h"

#include <stdarg.h>
#include <stdio.h>

int mc_error_set(mc_error *err, mc_code code, const char *fmt, ...)
{
    if (err && err->code == MC_OK) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return (int)code;
}

void mc_error_clear(mc_error *err)
{
    if (err) {
        err->code = MC_OK;
        err->msg[0] = '\0';
    }
}

const char *mc_error_code_name(mc_code code)
{
    static const char *const names[] = {
        [MC_OK] = "ok",
        [MC_ERR_IO] = "I/O error",
        [MC_ERR_FORMAT] = "format error",
        [MC_ERR_UNSUPPORTED] = "unsupported",
        [MC_ERR_NOMEM] = "out of memory",
        [MC_ERR_ARG] = "bad argument",
        [MC_ERR_OVERFLOW] = "size overflow",
        [MC_ERR_CHECKSUM] = "checksum mismatch",
        [MC_ERR_EXISTS] = "already exists",
        [MC_ERR_INTERRUPTED] = "interrupted",
        [MC_ERR_NOTFOUND] = "not found",
    };
    if ((unsigned)code < sizeof names / sizeof names[0] && names[code]) return names[code];
    return "error";
}
