/* mconv inspect FILE|DIR: one screen about a checkpoint. */
#include "mc_cli.h"
#include "mc_cli_opt.h"
#include "mc_model_info.h"
#include "mc_types.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_HELP = 1, OPT_JSON, OPT_PNG };

static const mc_cli_opt g_inspect_opts[] = {
    { "--help", 0, OPT_HELP },
    { "-h", 0, OPT_HELP },
    { "--json", 0, OPT_JSON },
    { "--png", 1, OPT_PNG },
    { NULL, 0, 0 },
};

static void mc_inspect_usage(FILE *out)
{
    fprintf(out,
            "usage: mconv inspect FILE|DIR [--json] [--png PICTURE.png]\n\n"
            "One screen about a checkpoint: format and version, architecture, parameter\n"
            "count, tensors and bytes, a histogram of tensor types with bits per weight,\n"
            "the main hyperparameters, tokenizer, GGUF file type and warnings (for example\n"
            "tensors that fell back to another quantization type).\n\n"
            "FILE: a .gguf (any shard of a split set) or .safetensors file; DIR: a\n"
            "checkpoint folder (config.json + safetensors shards), or a mac-code folder\n"
            "(--layout mac-code: its files, and the mac-code engines that can read it).\n\n"
            "options:\n"
            "  --json       the same facts as one JSON document (GGUF, safetensors, .flash: with\n"
            "               every tensor's quantization error, \"qerr\" and \"qerr_summary\")\n"
            "  --png FILE   .flash only: draw the file to FILE (replaced if it exists): the pinned\n"
            "               region, each layer's FFN span or expert blocks to scale, what one\n"
            "               token reads, and the quantization error per layer and kind as a heat\n"
            "               map (docs/FORMAT.md \"The picture\")\n"
            "  -h, --help   this help\n\n"
            "exit codes: 0 done, 1 bad or unreadable input, 2 usage error\n");
}

/* "12.35 M" style count. */
static const char *mc_inspect_count(unsigned long long n, char *buf, size_t cap)
{
    static const char *units[] = { "", " K", " M", " B", " T" };
    double v = (double)n;
    int u = 0;
    while (v >= 1000.0 && u < 4) { v /= 1000.0; u++; }
    if (u == 0) snprintf(buf, cap, "%llu", n);
    else snprintf(buf, cap, "%.2f%s", v, units[u]);
    return buf;
}

static void mc_inspect_hyper(const mc_info *info)
{
    const struct { const char *label; int64_t v; } rows[] = {
        { "layers", info->layers },     { "heads", info->heads },
        { "kv heads", info->kv_heads }, { "experts", info->experts },
        { "experts/token", info->experts_used }, { "context", info->context },
        { "hidden", info->hidden },     { "ffn", info->ffn },
        { "vocab", info->vocab },
    };
    int any = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) any |= rows[i].v >= 0;
    if (!any && info->n_extra == 0) return;
    printf("\nhyperparameters:\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].v >= 0) printf("  %-22s %lld\n", rows[i].label, (long long)rows[i].v);
    for (size_t i = 0; i < info->n_extra; i++) printf("  %-22s %s\n", info->extra[i].label, info->extra[i].value);
}

static void mc_inspect_print(const mc_info *info)
{
    char b1[64], b2[64];
    printf("file:          %s\n", info->path);
    printf("format:        %s%s%s\n", info->format, info->version ? " v" : "", info->version ? info->version : "");
    printf("files:         %u (%s)\n", (unsigned)info->n_files, mc_cli_bytes(info->file_bytes, b1, sizeof b1));
    printf("architecture:  %s\n", info->arch ? info->arch : "(unknown)");
    if (info->name) printf("name:          %s\n", info->name);
    if (info->file_type) printf("file type:     %s\n", info->file_type);
    if (info->quantization) printf("quantization:  %s\n", info->quantization);
    printf("parameters:    %llu (%s)\n", (unsigned long long)info->n_params,
           mc_inspect_count(info->n_params, b1, sizeof b1));
    printf("tensors:       %llu\n", (unsigned long long)info->n_tensors);
    printf("tensor bytes:  %llu (%s)\n", (unsigned long long)info->tensor_bytes,
           mc_cli_bytes(info->tensor_bytes, b2, sizeof b2));
    printf("bits/weight:   %.4f\n", mc_info_bpw(info));
    if (info->n_types) {
        printf("\ntypes:\n  %-10s %8s %16s %16s %9s\n", "type", "tensors", "params", "bytes", "bpw");
        for (size_t i = 0; i < info->n_types; i++) {
            const mc_info_type *t = &info->types[i];
            double bpw = t->params ? (double)t->bytes * 8.0 / (double)t->params : 0.0;
            printf("  %-10s %8llu %16llu %16llu %9.4f\n", mc_type_name(t->type), (unsigned long long)t->count,
                   (unsigned long long)t->params, (unsigned long long)t->bytes, bpw);
        }
        printf("  %-10s %8llu %16llu %16llu %9.4f\n", "total", (unsigned long long)info->n_tensors,
               (unsigned long long)info->n_params, (unsigned long long)info->tensor_bytes, mc_info_bpw(info));
    }
    mc_inspect_hyper(info);
    printf("\ntokenizer:     %s", info->tokenizer ? info->tokenizer : "(none)");
    if (info->tokenizer_vocab >= 0) printf(", %lld tokens", (long long)info->tokenizer_vocab);
    printf("\n");
    if (info->tokenizer_files) printf("tokenizer files: %s\n", info->tokenizer_files);
    if (info->tokenizer_export) printf("tokenizer.json: %s\n", info->tokenizer_export);
    if (info->n_warnings) {
        printf("\nwarnings:\n");
        for (size_t i = 0; i < info->n_warnings; i++) printf("  - %s\n", info->warnings[i]);
    }
}

/* ---- --json ---- */

static void mc_inspect_add(cJSON *o, const char *key, cJSON *item, int *oom)
{
    if (!item) { *oom = 1; return; }
    cJSON_AddItemToObject(o, key, item);
}

static cJSON *mc_inspect_i64(int64_t v)
{
    char buf[32];
    if (v < 0) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *mc_inspect_str(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *mc_inspect_bpw(uint64_t bytes, uint64_t params)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.6f", params ? (double)bytes * 8.0 / (double)params : 0.0);
    return cJSON_CreateRaw(buf);
}

static int mc_inspect_json(const mc_info *info)
{
    int oom = 0;
    cJSON *doc = cJSON_CreateObject(), *types = cJSON_CreateArray(), *hp = cJSON_CreateObject();
    cJSON *extra = cJSON_CreateObject(), *warn = cJSON_CreateArray();
    if (!doc || !types || !hp || !extra || !warn) {
        cJSON_Delete(doc); cJSON_Delete(types); cJSON_Delete(hp); cJSON_Delete(extra); cJSON_Delete(warn);
        return 1;
    }
    mc_inspect_add(doc, "file", mc_inspect_str(info->path), &oom);
    mc_inspect_add(doc, "format", mc_inspect_str(info->format), &oom);
    mc_inspect_add(doc, "version", mc_inspect_str(info->version), &oom);
    mc_inspect_add(doc, "architecture", mc_inspect_str(info->arch), &oom);
    mc_inspect_add(doc, "name", mc_inspect_str(info->name), &oom);
    mc_inspect_add(doc, "files", mc_cli_json_u64(info->n_files), &oom);
    mc_inspect_add(doc, "file_bytes", mc_cli_json_u64(info->file_bytes), &oom);
    mc_inspect_add(doc, "file_type", mc_inspect_str(info->file_type), &oom);
    mc_inspect_add(doc, "quantization", mc_inspect_str(info->quantization), &oom);
    mc_inspect_add(doc, "parameters", mc_cli_json_u64(info->n_params), &oom);
    mc_inspect_add(doc, "tensors", mc_cli_json_u64(info->n_tensors), &oom);
    mc_inspect_add(doc, "tensor_bytes", mc_cli_json_u64(info->tensor_bytes), &oom);
    mc_inspect_add(doc, "bpw", mc_inspect_bpw(info->tensor_bytes, info->n_params), &oom);
    mc_inspect_add(doc, "types", types, &oom);
    for (size_t i = 0; i < info->n_types && !oom; i++) {
        const mc_info_type *t = &info->types[i];
        cJSON *row = cJSON_CreateObject();
        if (!row) { oom = 1; break; }
        cJSON_AddItemToArray(types, row);
        mc_inspect_add(row, "type", cJSON_CreateString(mc_type_name(t->type)), &oom);
        mc_inspect_add(row, "tensors", mc_cli_json_u64(t->count), &oom);
        mc_inspect_add(row, "params", mc_cli_json_u64(t->params), &oom);
        mc_inspect_add(row, "bytes", mc_cli_json_u64(t->bytes), &oom);
        mc_inspect_add(row, "bpw", mc_inspect_bpw(t->bytes, t->params), &oom);
    }
    const struct { const char *key; int64_t v; } rows[] = {
        { "layers", info->layers }, { "heads", info->heads }, { "kv_heads", info->kv_heads },
        { "experts", info->experts }, { "experts_per_token", info->experts_used }, { "context", info->context },
        { "hidden", info->hidden }, { "ffn", info->ffn }, { "vocab", info->vocab },
    };
    mc_inspect_add(doc, "hyperparameters", hp, &oom);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) mc_inspect_add(hp, rows[i].key, mc_inspect_i64(rows[i].v), &oom);
    mc_inspect_add(doc, "extra", extra, &oom);
    for (size_t i = 0; i < info->n_extra; i++) mc_inspect_add(extra, info->extra[i].label, mc_inspect_str(info->extra[i].value), &oom);
    mc_inspect_add(doc, "tokenizer", mc_inspect_str(info->tokenizer), &oom);
    mc_inspect_add(doc, "tokenizer_tokens", mc_inspect_i64(info->tokenizer_vocab), &oom);
    mc_inspect_add(doc, "tokenizer_files", mc_inspect_str(info->tokenizer_files), &oom);
    mc_inspect_add(doc, "tokenizer_json", mc_inspect_str(info->tokenizer_export), &oom);
    mc_inspect_add(doc, "warnings", warn, &oom);
    for (size_t i = 0; i < info->n_warnings && !oom; i++) {
        cJSON *w = cJSON_CreateString(info->warnings[i]);
        if (!w) oom = 1;
        else cJSON_AddItemToArray(warn, w);
    }
    char *text = oom ? NULL : cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text) return 1;
    puts(text);
    free(text);
    return 0;
}

int mc_cmd_inspect(int argc, char **argv)
{
    const char *input = NULL, *arg, *png = NULL;
    int i = 1, id, json = 0;
    while ((id = mc_cli_next_opt("inspect", argc, argv, &i, g_inspect_opts, &arg)) != MC_OPT_END) {
        if (id == MC_OPT_ERROR) return MC_EXIT_USAGE;
        if (id == OPT_HELP) {
            mc_inspect_usage(stdout);
            return MC_EXIT_OK;
        }
        if (id == OPT_JSON) {
            json = 1;
            continue;
        }
        if (id == OPT_PNG) {
            if (!*arg) return mc_cli_usage_error("inspect", "--png needs a file name");
            png = arg;
            continue;
        }
        if (input) return mc_cli_usage_error("inspect", "one input expected, got '%s' too", arg);
        input = arg;
    }
    if (!input) return mc_cli_usage_error("inspect", "missing FILE|DIR");
    if (mc_cli_is_flash(input)) return mc_cli_flash_inspect(input, json, png);
    if (png) return mc_cli_usage_error("inspect", "--png draws .flash files only; %s is not one", input);
    if (mc_cli_is_maccode(input)) return mc_cli_maccode_inspect(input);
    mc_error err = { 0 };
    mc_info *info = NULL;
    if (mc_info_open(input, &info, &err)) return mc_cli_report(&err);
    if (json) {
        if (mc_inspect_json(info)) {
            mc_info_free(info);
            fprintf(stderr, "mconv: %s: out of memory building JSON\n", input);
            return MC_EXIT_BAD_INPUT;
        }
    } else {
        mc_inspect_print(info);
    }
    mc_info_free(info);
    return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}
