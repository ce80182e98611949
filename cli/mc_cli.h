/* The mconv program: shared CLI declarations. Only cli/ prints or exits. */
#ifndef MC_CLI_H
#define MC_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "mc_error.h"

/* Exit codes (all commands). */
enum { MC_EXIT_OK = 0, MC_EXIT_BAD_INPUT = 1, MC_EXIT_USAGE = 2, MC_EXIT_VERIFY_FAILED = 3 };

typedef int (*mc_cli_cmd_fn)(int argc, char **argv);

typedef struct mc_cli_cmd {
    const char *name;
    mc_cli_cmd_fn run;
    const char *summary;
} mc_cli_cmd;

/* Print "mconv: MESSAGE" for err to stderr (one line) and return the exit
 * code for it (1 for input errors). */
int mc_cli_report(const mc_error *err);
/* Print "mconv CMD: MESSAGE" + a hint to run --help; returns MC_EXIT_USAGE. */
int mc_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Human-readable byte count ("1.25 GiB") into buf. */
const char *mc_cli_bytes(unsigned long long n, char *buf, size_t cap);
/* A 64-bit count as an exact JSON number (cJSON raw text: a double would
 * round above 2^53); NULL when out of memory. */
struct cJSON;
struct cJSON *mc_cli_json_u64(uint64_t v);

/* Shared by convert's layouts (mc_cli_run.c): remove the temporary output
 * and die of the signal on SIGINT/SIGTERM/SIGHUP/SIGQUIT, ignore SIGXFSZ. */
void mc_cli_install_signals(void);
/* Monotonic clock in seconds. */
double mc_cli_now_s(void);
/* Peak resident set size in bytes (0 when unknown). */
unsigned long long mc_cli_peak_rss(void);
/* The progress line on stderr ("converting DONE / TOTAL  RATE  ETA"),
 * drawn while on is set (a terminal, no --quiet); t0: when work started. */
typedef struct mc_cli_progress {
    int on;
    double t0;
} mc_cli_progress;
/* Writer options: threads, force, the model source, the progress line
 * (pr may be NULL), and the MCONV_TEST_DELAY_US test delay from the
 * environment. */
struct mc_flash_write_opts;
void mc_cli_write_opts(struct mc_flash_write_opts *wo, int threads, int force, mc_cli_progress *pr);

/* Commands (one file each in cli/). */
int mc_cmd_inspect(int argc, char **argv);
int mc_cmd_dump(int argc, char **argv);
int mc_cmd_convert(int argc, char **argv);
int mc_cmd_verify(int argc, char **argv);
int mc_cmd_bench(int argc, char **argv);
/* verify --source: recompute every tensor of flash_path from source with the
 * options recorded in its manifest (cmd_convert.c). 0 when identical,
 * MC_ERR_CHECKSUM when not (differences printed unless quiet). */
/* .flash branch of inspect and dump (cmd_flash_show.c). */
int mc_cli_is_flash(const char *path);
/* inspect of a .flash file: the text screen, or (json) one JSON document
 * with its layout, cost and the manifest's quantization error members; png:
 * also draw the file to that PNG (layout/mc_flash_picture.h). */
int mc_cli_flash_inspect(const char *path, int json, const char *png);
int mc_cli_flash_dump(const char *path, int json, const char *filter);
/* --layout mac-code / mlx of convert (cmd_export.c). */
struct mc_plan_opts;
typedef struct mc_cli_export_args {
    const char *in, *out;
    const struct mc_plan_opts *po;
    int layout; /* an mc_export_kind */
    unsigned long long shard_bytes;
    int threads, force, dry, quiet, stats;
    const char *engines; /* mac-code: --engines LIST, or NULL (the family's default engines) */
    int force_layout;    /* mac-code: write despite problems (each printed as a warning) */
    int no_qerr;         /* --no-qerr: no quantization error measurement */
} mc_cli_export_args;
/* "flash" -> 0, "mac-code" / "mlx" -> their mc_export_kind, else -1. */
int mc_cli_layout_from_name(const char *name);
int mc_cli_export(const mc_cli_export_args *a);
/* mac-code folders in inspect and dump (cmd_export.c). */
int mc_cli_is_maccode(const char *path);
int mc_cli_maccode_inspect(const char *path);
int mc_cli_maccode_dump(const char *path, int json, const char *filter);
int mc_cli_verify_source(const char *flash_path, const char *source, int threads, int quiet, mc_error *err);

/* The notes of the tokenizer rebuilt from a GGUF (m->tokenizer "notes"), one
 * "note:" line each (cmd_convert.c). */
struct mc_model;
void mc_cli_tokenizer_notes(const struct mc_model *m, FILE *out);

/* The quantization error summary (cmd_qerr.c): from a "qerr_summary"
 * object, or from a plan and its measured accumulators (-1: out of memory). */
struct mc_plan;
struct mc_qerr;
void mc_cli_qerr_print(FILE *out, const struct cJSON *summary);
int mc_cli_qerr_print_plan(FILE *out, const struct mc_plan *p, const struct mc_qerr *q);
/* Every number under j re-written as raw text that reads back as the same
 * double (cJSON's printing may drop the last bit). */
void mc_cli_json_exact(struct cJSON *j);

#endif
