/* Table-driven option parsing for mconv commands. */
#include "mc_cli_opt.h"
#include "mc_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int mc_cli_next_opt(const char *cmd, int argc, char **argv, int *i, const mc_cli_opt *opts, const char **arg)
{
    int only_positional = 0;
    *arg = NULL;
    if (*i >= argc) return MC_OPT_END;
    for (int j = 1; j < *i; j++)
        if (!strcmp(argv[j], "--")) only_positional = 1;
    const char *a = argv[(*i)++];
    if (only_positional || a[0] != '-' || a[1] == '\0') {
        *arg = a;
        return MC_OPT_POSITIONAL;
    }
    if (!strcmp(a, "--")) return mc_cli_next_opt(cmd, argc, argv, i, opts, arg);
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    for (const mc_cli_opt *o = opts; o->name; o++) {
        if (strlen(o->name) != len || strncmp(o->name, a, len) != 0) continue;
        if (!o->has_arg) {
            if (eq) {
                mc_cli_usage_error(cmd, "option '%s' takes no value", o->name);
                return MC_OPT_ERROR;
            }
            return o->id;
        }
        if (eq) *arg = eq + 1;
        else if (*i < argc) *arg = argv[(*i)++];
        else {
            mc_cli_usage_error(cmd, "option '%s' needs a value", o->name);
            return MC_OPT_ERROR;
        }
        return o->id;
    }
    mc_cli_usage_error(cmd, "unknown option '%s'", a);
    return MC_OPT_ERROR;
}

int mc_cli_parse_count(const char *s, unsigned long long *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-' || *s == '+') return 1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end) return 1;
    *out = v;
    return 0;
}
