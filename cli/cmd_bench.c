/* mconv bench FILE.flash: what streaming this file costs on this disk
 * (formats/mc_flash_bench.h; method and traps in docs/PERFORMANCE.md). */
#include "mc_cli.h"
#include "mc_cli_opt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_flash_bench.h"

enum { OPT_HELP = 1, OPT_JSON, OPT_TOKENS, OPT_THREADS, OPT_SEED, OPT_TRACE, OPT_IO, OPT_VERIFY, OPT_REUSE,
       OPT_SECONDS };

static const mc_cli_opt g_bench_opts[] = {
    { "--help", 0, OPT_HELP },     { "-h", 0, OPT_HELP },         { "--json", 0, OPT_JSON },
    { "--tokens", 1, OPT_TOKENS }, { "--threads", 1, OPT_THREADS }, { "--seed", 1, OPT_SEED },
    { "--trace", 1, OPT_TRACE },   { "--io", 1, OPT_IO },         { "--verify", 0, OPT_VERIFY },
    { "--reuse", 0, OPT_REUSE },   { "--max-seconds", 1, OPT_SECONDS },
    { NULL, 0, 0 },
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mconv bench FILE.flash [--io direct,buffered,warm] [--tokens N] [--threads N]\n"
            "                   [--seed S] [--trace FILE] [--reuse] [--verify] [--max-seconds S] [--json]\n\n"
            "Measures what an engine pays to stream FILE.flash from this disk: the pinned region\n"
            "in one read, then per simulated token every dense layer's FFN span and\n"
            "experts_per_tok expert blocks of every MoE layer (one read each, --threads at once),\n"
            "through the reader library. Prints MB/s, read latency p50/p99, token time and the\n"
            "tokens/s upper bound that I/O allows (no compute, no overlap between layers).\n\n"
            "Experts are uniform random (--seed) without replacement across tokens and arms:\n"
            "no expert block is read twice in one run, so the page cache cannot turn later\n"
            "tokens into RAM reads; the run stops early (and says so) when every block was read,\n"
            "unless --reuse. --trace FILE replays real routing: lines 'TOKEN LAYER EXPERT...'\n"
            "(docs/PERFORMANCE.md).\n\n"
            "options:\n"
            "  --io LIST         arms to run, in order (default direct):\n"
            "                      direct    direct I/O (O_DIRECT / F_NOCACHE): the disk itself\n"
            "                      buffered  page cache, dropped before and after each read: cold\n"
            "                      warm      page cache after an untimed pass over the same reads\n"
            "  --tokens N        simulated tokens per arm (default 32; a trace: all of it)\n"
            "  --threads N       expert reads at once (default experts_per_tok)\n"
            "  --seed S          expert choice (default 1)\n"
            "  --trace FILE      expert ids from a routing trace\n"
            "  --reuse           read expert blocks again once every block was read\n"
            "  --verify          check every read's checksum (timed with the reads)\n"
            "  --max-seconds S   stop an arm after S seconds\n"
            "  --json            the figures as one JSON document\n"
            "  -h, --help        this help\n\n"
            "exit codes: 0 done, 1 bad or unreadable input, 2 usage error\n");
}

static int parse_arms(const char *s, mc_flash_bench_opts *o)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_arms = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int a = mc_flash_bench_arm_from_name(tok);
        if (a < 0 || o->n_arms >= MC_BENCH_MAX_ARMS) return -1;
        for (size_t i = 0; i < o->n_arms; i++)
            if (o->arms[i] == a) return -1;
        o->arms[o->n_arms++] = a;
    }
    return o->n_arms ? 0 : -1;
}

static cJSON *lat_json(const mc_bench_lat *l)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "n", mc_cli_json_u64(l->n));
    cJSON_AddNumberToObject(o, "mean", l->mean_ms);
    cJSON_AddNumberToObject(o, "p50", l->p50_ms);
    cJSON_AddNumberToObject(o, "p99", l->p99_ms);
    cJSON_AddNumberToObject(o, "max", l->max_ms);
    return o;
}

static int print_json(const char *path, const mc_flash_bench_opts *o, const mc_flash_bench_result *r)
{
    cJSON *j = cJSON_CreateObject(), *arms, *w;
    cJSON_AddStringToObject(j, "file", path);
    cJSON_AddItemToObject(j, "file_bytes", mc_cli_json_u64(r->file_size));
    cJSON_AddItemToObject(j, "ram_bytes", mc_cli_json_u64(r->ram_bytes));
    cJSON_AddItemToObject(j, "pinned_bytes", mc_cli_json_u64(r->pinned_bytes));
    cJSON_AddItemToObject(j, "token_bytes", mc_cli_json_u64(r->token_bytes));
    cJSON_AddItemToObject(j, "token_reads", mc_cli_json_u64(r->token_reads));
    cJSON_AddNumberToObject(j, "dense_layers", (double)r->n_ffn);
    cJSON_AddNumberToObject(j, "moe_layers", (double)r->n_moe);
    cJSON_AddNumberToObject(j, "experts_per_tok", r->experts_per_tok);
    cJSON_AddNumberToObject(j, "threads", r->threads);
    cJSON_AddItemToObject(j, "seed", mc_cli_json_u64(o->seed));
    cJSON_AddStringToObject(j, "experts", r->trace ? "trace" : o->reuse ? "uniform random, blocks reused when exhausted"
                                                                       : "uniform random without replacement");
    if (o->trace) cJSON_AddStringToObject(j, "trace", o->trace);
    cJSON_AddBoolToObject(j, "verify", o->verify != 0);
    cJSON_AddItemToObject(j, "arms", arms = cJSON_CreateArray());
    for (size_t i = 0; i < r->n_arms; i++) {
        const mc_flash_bench_arm *a = &r->arms[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(arms, x);
        cJSON_AddStringToObject(x, "arm", mc_flash_bench_arm_name(a->arm));
        cJSON_AddStringToObject(x, "io", a->io);
        cJSON_AddBoolToObject(x, "direct", a->direct);
        cJSON_AddBoolToObject(x, "cache_dropped", a->cache_dropped);
        cJSON_AddItemToObject(x, "pinned_bytes", mc_cli_json_u64(a->pinned_bytes));
        cJSON_AddNumberToObject(x, "pinned_seconds", a->pinned_s);
        cJSON_AddNumberToObject(x, "pinned_mb_per_s", a->pinned_s > 0 ? (double)a->pinned_bytes / a->pinned_s / 1e6 : 0);
        cJSON_AddItemToObject(x, "tokens_asked", mc_cli_json_u64(a->tokens_asked));
        cJSON_AddItemToObject(x, "tokens", mc_cli_json_u64(a->tokens));
        cJSON_AddItemToObject(x, "bytes", mc_cli_json_u64(a->bytes));
        cJSON_AddItemToObject(x, "reads", mc_cli_json_u64(a->reads));
        cJSON_AddItemToObject(x, "reread_reads", mc_cli_json_u64(a->reread_reads));
        cJSON_AddNumberToObject(x, "seconds", a->seconds);
        cJSON_AddNumberToObject(x, "mb_per_s", a->mb_s);
        cJSON_AddNumberToObject(x, "tokens_per_s", a->tokens_per_s);
        cJSON_AddItemToObject(x, "read_ms", lat_json(&a->read_lat));
        cJSON_AddItemToObject(x, "expert_read_ms", lat_json(&a->expert_lat));
        cJSON_AddItemToObject(x, "ffn_read_ms", lat_json(&a->ffn_lat));
        cJSON_AddItemToObject(x, "token_ms", lat_json(&a->token_lat));
        cJSON_AddStringToObject(x, "stopped", a->stop);
    }
    cJSON_AddItemToObject(j, "warnings", w = cJSON_CreateArray());
    for (size_t i = 0; i < r->n_warn; i++) cJSON_AddItemToArray(w, cJSON_CreateString(r->warn[i]));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) {
        fprintf(stderr, "mconv: %s: out of memory\n", path);
        return MC_EXIT_BAD_INPUT;
    }
    printf("%s\n", s);
    cJSON_free(s);
    return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}

static void print_lat(const char *what, const mc_bench_lat *l)
{
    if (l->n)
        printf("  %-15s p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%llu reads)\n", what, l->p50_ms, l->p99_ms, l->max_ms,
               (unsigned long long)l->n);
}

static void print_text(const char *path, const mc_flash_bench_opts *o, const mc_flash_bench_result *r)
{
    char b1[32], b2[32], b3[32];
    printf("file:            %s (%s)\n", path, mc_cli_bytes(r->file_size, b1, sizeof b1));
    printf("streamed layers: %zu dense, %zu MoE", r->n_ffn, r->n_moe);
    if (r->n_moe)
        printf(" (%u+ experts of %s, %d per token)", r->min_experts, mc_cli_bytes(r->max_stride, b2, sizeof b2),
               r->experts_per_tok);
    printf("\nper token:       %s in %llu reads; pinned %s\n", mc_cli_bytes(r->token_bytes, b1, sizeof b1),
           (unsigned long long)r->token_reads, mc_cli_bytes(r->pinned_bytes, b3, sizeof b3));
    printf("method:          %d thread%s, experts %s, seed %llu%s\n", r->threads, r->threads == 1 ? "" : "s",
           r->trace ? "from the trace" : o->reuse ? "uniform random (blocks reused when exhausted)"
                                                  : "uniform random, no block read twice",
           (unsigned long long)o->seed, o->verify ? ", checksums verified" : "");
    for (size_t i = 0; i < r->n_arms; i++) {
        const mc_flash_bench_arm *a = &r->arms[i];
        printf("\n%s arm: %s\n", mc_flash_bench_arm_name(a->arm), a->io);
        printf("  pinned load     %s in %.3f s = %.1f MB/s (one read)\n", mc_cli_bytes(a->pinned_bytes, b1, sizeof b1),
               a->pinned_s, a->pinned_s > 0 ? (double)a->pinned_bytes / a->pinned_s / 1e6 : 0.0);
        printf("  tokens          %llu", (unsigned long long)a->tokens);
        if (a->stop[0]) printf(" (%s)", a->stop);
        printf("\n  streamed        %s in %llu reads, %.3f s = %.1f MB/s", mc_cli_bytes(a->bytes, b1, sizeof b1),
               (unsigned long long)a->reads, a->seconds, a->mb_s);
        if (a->reread_reads) printf(" (%llu reads of blocks read before)", (unsigned long long)a->reread_reads);
        printf("\n");
        print_lat("read latency", &a->read_lat);
        if (a->expert_lat.n && a->ffn_lat.n) {
            print_lat(" expert blocks", &a->expert_lat);
            print_lat(" ffn spans", &a->ffn_lat);
        }
        if (a->token_lat.n)
            printf("  token time      p50 %.2f ms  p99 %.2f ms  mean %.2f ms\n", a->token_lat.p50_ms, a->token_lat.p99_ms,
                   a->token_lat.mean_ms);
        printf("  I/O bound       %.2f tokens/s\n", a->tokens_per_s);
    }
    for (size_t i = 0; i < r->n_warn; i++) printf("%swarning: %s\n", i ? "" : "\n", r->warn[i]);
}

int mc_cmd_bench(int argc, char **argv)
{
    mc_flash_bench_opts o;
    const char *path = NULL, *arg;
    int json = 0, id, i = 1;
    unsigned long long v;
    memset(&o, 0, sizeof o);
    o.arms[0] = MC_BENCH_DIRECT;
    o.n_arms = 1;
    o.seed = 1;
    while ((id = mc_cli_next_opt("bench", argc, argv, &i, g_bench_opts, &arg)) != MC_OPT_END) {
        switch (id) {
        case MC_OPT_ERROR: return MC_EXIT_USAGE;
        case OPT_HELP: usage(stdout); return MC_EXIT_OK;
        case OPT_JSON: json = 1; break;
        case OPT_VERIFY: o.verify = 1; break;
        case OPT_REUSE: o.reuse = 1; break;
        case OPT_TRACE: o.trace = arg; break;
        case OPT_IO:
            if (parse_arms(arg, &o))
                return mc_cli_usage_error("bench", "--io: expected a list of direct, buffered, warm (each once)");
            break;
        case OPT_TOKENS:
            if (mc_cli_parse_count(arg, &v) || v == 0 || v > 1000000)
                return mc_cli_usage_error("bench", "--tokens: expected 1..1000000");
            o.tokens = v;
            break;
        case OPT_THREADS:
            if (mc_cli_parse_count(arg, &v) || v == 0 || v > 256)
                return mc_cli_usage_error("bench", "--threads: expected 1..256");
            o.threads = (int)v;
            break;
        case OPT_SEED:
            if (mc_cli_parse_count(arg, &v)) return mc_cli_usage_error("bench", "--seed: expected a number");
            o.seed = v;
            break;
        case OPT_SECONDS: {
            char *end = NULL;
            errno = 0;
            double s = strtod(arg, &end);
            if (errno || !end || *end || !(s > 0) || s > 1e6)
                return mc_cli_usage_error("bench", "--max-seconds: expected a number of seconds > 0");
            o.max_seconds = s;
            break;
        }
        case MC_OPT_POSITIONAL:
            if (path) return mc_cli_usage_error("bench", "unexpected argument '%s'", arg);
            path = arg;
            break;
        default: break;
        }
    }
    if (!path) return mc_cli_usage_error("bench", "missing FILE.flash");
    mc_error err = { MC_OK, "" };
    mc_flash_bench_result *r = malloc(sizeof *r);
    if (!r) {
        fprintf(stderr, "mconv: out of memory\n");
        return MC_EXIT_BAD_INPUT;
    }
    int rc = mc_flash_bench_run(path, &o, r, &err);
    if (rc) {
        free(r);
        return mc_cli_report(&err);
    }
    if (json) {
        rc = print_json(path, &o, r);
    } else {
        print_text(path, &o, r);
        rc = fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
    }
    free(r);
    return rc;
}
