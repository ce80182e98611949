/* Table-driven option parsing for mconv commands. */
#ifndef MC_CLI_OPT_H
#define MC_CLI_OPT_H

typedef struct mc_cli_opt {
    const char *name;  /* "--filter" */
    int has_arg;       /* takes a value ("--filter GLOB" or "--filter=GLOB") */
    int id;            /* returned to the caller */
} mc_cli_opt;

enum { MC_OPT_END = 0, MC_OPT_POSITIONAL = -1, MC_OPT_ERROR = -2 };

/* Step through argv from *i (start at 1). Returns the matched option's id
 * (with *arg set to its value when it takes one), MC_OPT_POSITIONAL with
 * *arg the argument, MC_OPT_END at the end, or MC_OPT_ERROR after printing
 * a usage error for cmd (unknown option, missing value, stray value). "--"
 * makes every later argument positional. */
int mc_cli_next_opt(const char *cmd, int argc, char **argv, int *i, const mc_cli_opt *opts, const char **arg);

/* Parse a non-negative decimal count (for --limit); 0 on success. */
int mc_cli_parse_count(const char *s, unsigned long long *out);

#endif
