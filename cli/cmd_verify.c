/* mconv verify FILE.flash [--source IN]: check a .flash file;
 * mconv verify FOLDER: check a mac-code folder. */
#include "mc_cli.h"

#include <stdio.h>
#include <string.h>

#include "mc_flash.h"
#include "mc_io.h"
#include "mc_maccode_folder.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mconv verify FILE.flash [--source IN] [--threads N] [--quiet]\n"
            "       mconv verify FOLDER [--quiet]      (a mac-code folder)\n\n"
            "Checks the header, the manifest (checksum, JSON), the alignment of every tensor\n"
            "and block, that nothing overlaps, that every byte between them is zero padding,\n"
            "the file size and every checksum. With --source, also recomputes every tensor\n"
            "from IN with the options recorded in the file and compares them byte for byte.\n\n"
            "A mac-code folder (--layout mac-code): config.json, pinned.safetensors and every\n"
            "layer file the engines open: headers, offsets and alignment, sizes, tensor byte\n"
            "ranges, overlaps, zero padding, expert layouts, ffn/ files against their\n"
            "ffn_aligned/ twins, and symbolic links.\n\n"
            "exit: 0 sound, 3 problems found (each listed), 1 not a .flash file or mac-code\n"
            "folder, or unreadable\n");
}

static void print_problem(void *ctx, const char *msg)
{
    int *quiet = ctx;
    if (!*quiet) printf("problem: %s\n", msg);
}

int mc_cmd_verify(int argc, char **argv)
{
    const char *path = NULL, *source = NULL;
    int quiet = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return MC_EXIT_OK;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (!strcmp(a, "--source") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return mc_cli_usage_error("verify", "%s needs a value", a);
            if (!strcmp(a, "--source")) source = argv[++i];
            else if (sscanf(argv[++i], "%d", &threads) != 1 || threads < 1 || threads > 256)
                return mc_cli_usage_error("verify", "--threads: expected 1..256");
        } else if (a[0] == '-' && a[1]) {
            return mc_cli_usage_error("verify", "unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return mc_cli_usage_error("verify", "unexpected argument '%s'", a);
        }
    }
    if (!path) return mc_cli_usage_error("verify", "missing FILE.flash");
    mc_error err = { MC_OK, "" };
    if (mc_io_is_dir(path)) {
        mc_maccode_verify_stats ms;
        if (source) return mc_cli_usage_error("verify", "--source applies to .flash files only");
        int mrc = mc_maccode_verify(path, print_problem, &quiet, &ms, &err);
        if (mrc && mrc != MC_ERR_CHECKSUM) return mc_cli_report(&err);
        if (mrc) {
            fprintf(stderr, "mconv: %s\n", err.msg);
            return MC_EXIT_VERIFY_FAILED;
        }
        if (!quiet) {
            char b[32], d[32];
            printf("%s: sound: %llu layer files, %llu tensors, %llu expert blocks, %s checked; %s on disk, %llu "
                   "links\n", path, (unsigned long long)ms.n_files, (unsigned long long)ms.n_tensors,
                   (unsigned long long)ms.n_blocks, mc_cli_bytes(ms.bytes_checked, b, sizeof b),
                   mc_cli_bytes(ms.disk_bytes, d, sizeof d), (unsigned long long)ms.n_links);
        }
        return MC_EXIT_OK;
    }
    mc_flash_verify_stats st;
    int rc = mc_flash_verify(path, print_problem, &quiet, &st, &err);
    if (rc && rc != MC_ERR_CHECKSUM) return mc_cli_report(&err);
    if (rc == 0 && source) {
        rc = mc_cli_verify_source(path, source, threads, quiet, &err);
        if (rc && rc != MC_ERR_CHECKSUM) return mc_cli_report(&err);
    }
    if (rc) {
        fprintf(stderr, "mconv: %s\n", err.msg);
        return MC_EXIT_VERIFY_FAILED;
    }
    if (!quiet) {
        char b[32];
        printf("%s: sound: %llu tensors, %llu expert blocks, %llu checksums, %s checked%s\n", path,
               (unsigned long long)st.n_tensors, (unsigned long long)st.n_blocks, (unsigned long long)st.n_checksums,
               mc_cli_bytes(st.bytes_checked, b, sizeof b), source ? ", identical to a conversion of the source" : "");
    }
    return MC_EXIT_OK;
}
