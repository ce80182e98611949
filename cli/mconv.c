/* mconv: entry point and command dispatch. */
#include "mc_cli.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MCONV_VERSION "0.1.0"

static const mc_cli_cmd g_cmds[] = {
    /* { "name", mc_cmd_name, "summary" }, one per cli/cmd_*.c */
    { "convert", mc_cmd_convert, "IN OUT.flash: convert to the .flash streaming layout (the default command)" },
    { "verify", mc_cmd_verify, "check a .flash file (--source IN: also against its source); exit 3 when unsound" },
    { "inspect", mc_cmd_inspect, "one screen: format, architecture, sizes, types, hyperparameters" },
    { "dump", mc_cmd_dump, "every metadata key and the tensor table (--json, --filter GLOB, --values)" },
    { "bench", mc_cmd_bench, "FILE.flash: what streaming it costs on this disk (MB/s, latency, tokens/s bound)" },
    { NULL, NULL, NULL },
};
#define N_CMDS (sizeof g_cmds / sizeof g_cmds[0])

int mc_cli_report(const mc_error *err)
{
    fprintf(stderr, "mconv: %s\n", err && err->msg[0] ? err->msg : "unknown error");
    return MC_EXIT_BAD_INPUT;
}

int mc_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mconv%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'mconv %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return MC_EXIT_USAGE;
}

struct cJSON *mc_cli_json_u64(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

const char *mc_cli_bytes(unsigned long long n, char *buf, size_t cap)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) { v /= 1024.0; u++; }
    if (u == 0) snprintf(buf, cap, "%llu B", n);
    else snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

static void usage(FILE *out)
{
    fprintf(out,
            "mconv %s: convert language-model checkpoints to a 16 KiB-aligned streaming layout\n\n"
            "usage: mconv IN OUT.flash [options]     convert (see 'mconv convert --help')\n"
            "       mconv COMMAND [options] ...\n\ncommands:\n", MCONV_VERSION);
    for (size_t i = 0; i < N_CMDS; i++) if (g_cmds[i].name) fprintf(out, "  %-9s %s\n", g_cmds[i].name, g_cmds[i].summary);
    fprintf(out, "\nexit codes: 0 done, 1 bad or unreadable input, 2 usage error, 3 verify found problems\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MC_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return MC_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mconv %s\n", MCONV_VERSION);
        return MC_EXIT_OK;
    }
    for (size_t i = 0; i < N_CMDS; i++)
        if (g_cmds[i].name && !strcmp(argv[1], g_cmds[i].name)) return g_cmds[i].run(argc - 1, argv + 1);
    /* Default command: mconv IN OUT [options] is a conversion. */
    for (size_t i = 0; i < N_CMDS; i++)
        if (g_cmds[i].name && !strcmp(g_cmds[i].name, "convert")) return g_cmds[i].run(argc, argv);
    return mc_cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
