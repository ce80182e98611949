/* mconv IN OUT.flash [options]: the main job (also "mconv convert ..."),
 * and the --source half of "mconv verify". */
#include "mc_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mc_convert.h"
#include "mc_export.h"
#include "mc_flash.h"
#include "mc_flash_write.h"
#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_plan.h"
#include "mc_qerr.h"
#include "mc_recipe.h"
#include "mc_safetensors.h"
#include "mc_types.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mconv IN OUT.flash [options]        (or: mconv convert IN OUT.flash ...)\n\n"
            "Converts IN (a .gguf or any shard of a split GGUF, a .safetensors file, a Hugging Face\n"
            "checkpoint folder or an mlx-community folder) into the 16 KiB-aligned .flash layout:\n"
            "pinned weights in one region, each dense FFN layer and each MoE expert one block.\n"
            "Weights are MLX affine-quantized under mlx-lm's tensor names.\n\n"
            "options:\n"
            "  --bits N          2, 3, 4, 5, 6 or 8 (default 4); routers stay at 8 like mlx-lm\n"
            "  --group-size N    32, 64 or 128 (default 64)\n"
            "  --dtype T         bf16, f16 or f32 for unquantized tensors, scales and biases\n"
            "                    (default: the source's)\n"
            "  --bits-for G=N    modules matching glob G (the tensor name without .weight, e.g.\n"
            "                    'model.layers.*.mlp.down_proj') get N bits; repeatable, first match wins\n"
            "  --recipe R        per-module bits: uniform (default: --bits), source (each tensor keeps\n"
            "                    the bits of its GGUF type: Q6_K -> 6, Q4_K -> 4, ...; float sources keep\n"
            "                    --bits) or mlx-lm's mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 (as\n"
            "                    mlx_lm.convert --quant-predicate); --bits-for still wins\n"
            "  --no-quant        keep every weight in the float dtype\n"
            "  --lossless        keep GGML blocks that map exactly onto MLX's format (Q4_0, Q4_1,\n"
            "                    Q5_0, Q5_1, Q8_0, Q4_K, Q5_K: group size 32, f16 or f32 scales,\n"
            "                    recorded per module); other tensors are quantized as usual\n"
            "                    MXFP4 blocks (GGUF MXFP4, hub *_blocks/*_scales) are always carried\n"
            "                    exactly into MLX's mxfp4 mode (group 32, uint8 e8m0 scales, no biases)\n"
            "  --requant-mxfp4   requantize MXFP4 source blocks to MLX affine at --bits instead\n"
            "  --layout L        flash (default: one .flash file), mac-code (the folder mac-code's\n"
            "                    flash-streaming / expert-sniper engines read) or mlx (an mlx-lm folder)\n"
            "  --shard-size N    mlx layout: shard size limit in bytes (default 5 GiB, as mlx-lm)\n"
            "  --engines LIST    mac-code layout: the engines to write for (default: every engine of the\n"
            "                    model's family); engine ids or names, flash-streaming, mlx-sniper, cli-agent, all\n"
            "  --force-layout    mac-code layout: write a folder the engines cannot run correctly (each\n"
            "                    reason is printed as a warning)\n"
            "  --threads N       worker threads (default: all cores); output is identical for any N\n"
            "  --force           overwrite an existing OUT\n"
            "  --dry-run         print the plan, write nothing\n"
            "  --quiet           no progress line and no summary\n"
            "  --stats           also print I/O counters and peak memory details\n"
            "  --no-qerr         skip the quantization error measurement (docs/QUANT.md): no \"qerr\" in\n"
            "                    the manifest, no quant_report.json, no error summary\n"
            "  --help            this text\n\n"
            "OUT is written under a temporary name beside it and renamed when complete: an error,\n"
            "Ctrl-C or kill never leaves a partial OUT and never touches an existing one.\n");
}

/* ---- helpers ---- */

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* OUT must not be IN, nor any file inside a folder IN. */
static int out_is_input(const char *in, const char *out)
{
    if (mc_io_same_file(in, out)) return 1;
    if (!mc_io_is_dir(in)) return 0;
    DIR *d = opendir(in);
    int hit = 0;
    struct dirent *de;
    while (d && !hit && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = mc_path_join(in, de->d_name);
        if (p && mc_io_same_file(p, out)) hit = 1;
        free(p);
    }
    if (d) closedir(d);
    return hit;
}

/* ... nor any file the opened source reads (other shards of a split GGUF,
 * safetensors shards, the index). */
static const char *out_is_source(const mc_model *m, const char *out)
{
    if (m->gguf)
        for (uint32_t i = 0; i < m->gguf->n_shards; i++)
            if (m->gguf->shards[i].file.path && mc_io_same_file(m->gguf->shards[i].file.path, out))
                return m->gguf->shards[i].file.path;
    if (m->st) {
        for (uint32_t i = 0; i < m->st->n_files; i++)
            if (m->st->files[i].file.path && mc_io_same_file(m->st->files[i].file.path, out))
                return m->st->files[i].file.path;
        if (m->st->index_path && mc_io_same_file(m->st->index_path, out)) return m->st->index_path;
    }
    return NULL;
}

static const struct { const char *name; int type; } g_dtypes[] = {
    { "bf16", MC_T_BF16 }, { "f16", MC_T_F16 }, { "f32", MC_T_F32 },
};

static void print_plan(const mc_model *m, const mc_plan *p, const mc_flash_layout *L, FILE *out)
{
    char b1[32], b2[32], b3[32], b4[32];
    mc_flash_cost c;
    mc_flash_layout_cost(L, &c);
    size_t nq = 0, nf = 0, nr = 0;
    for (size_t i = 0; i < p->n_items; i++) {
        if (p->items[i].kind == MC_PK_AFFINE || p->items[i].kind == MC_PK_REPACK) nq++;
        else if (p->items[i].kind == MC_PK_RAW) nr++;
        else nf++;
    }
    fprintf(out, "model: %s (%s), %zu tensors: %zu quantized, %zu float, %zu passed through\n",
            m->arch ? m->arch : "?", m->model_type ? m->model_type : "?", p->n_items, nq, nf, nr);
    if (p->opts.no_quant) fprintf(out, "quantization: none (--no-quant)\n");
    else fprintf(out, "quantization: %d bits, group size %d (MLX affine)\n", p->opts.bits, p->opts.group_size);
    size_t nmx = 0;
    for (size_t i = 0; i < p->n_items; i++) nmx += p->items[i].mx_mode != 0;
    if (nmx) fprintf(out, "mxfp4: %zu tensors carried exactly from MXFP4 source blocks (MLX mode mxfp4, group 32)\n", nmx);
    fprintf(out, "pinned: %s in one region at offset %llu\n", mc_cli_bytes(c.pinned_bytes, b1, sizeof b1),
            (unsigned long long)L->pinned_offset);
    if (L->n_spans) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t i = 0; i < L->n_spans; i++) {
            if (L->spans[i].nbytes < lo) lo = L->spans[i].nbytes;
            if (L->spans[i].nbytes > hi) hi = L->spans[i].nbytes;
        }
        if (lo == hi) fprintf(out, "dense FFN: %zu layers, %s per layer (one read each)\n", L->n_spans,
                              mc_cli_bytes(lo, b1, sizeof b1));
        else fprintf(out, "dense FFN: %zu layers, %s .. %s per layer (one read each)\n", L->n_spans,
                     mc_cli_bytes(lo, b1, sizeof b1), mc_cli_bytes(hi, b2, sizeof b2));
    }
    if (L->n_xlayers)
        fprintf(out, "experts: %zu MoE layers x %u experts, %s per expert block, %d per token\n", L->n_xlayers,
                L->xlayers[0].n_experts, mc_cli_bytes(L->xlayers[0].stride, b1, sizeof b1), L->experts_per_tok);
    fprintf(out, "streamed: %s; file: %s + manifest\n", mc_cli_bytes(c.streamed_bytes, b1, sizeof b1),
            mc_cli_bytes(L->data_end, b2, sizeof b2));
    fprintf(out, "per token: %s in %llu reads (dense %s in %llu, experts %s in %llu); pinned %s loaded once\n",
            mc_cli_bytes(c.token_bytes, b1, sizeof b1), (unsigned long long)c.token_reads,
            mc_cli_bytes(c.token_dense_bytes, b2, sizeof b2), (unsigned long long)c.token_dense_reads,
            mc_cli_bytes(c.token_expert_bytes, b3, sizeof b3), (unsigned long long)c.token_expert_reads,
            mc_cli_bytes(c.pinned_bytes, b4, sizeof b4));
    for (size_t i = 0; i < m->n_notices; i++) fprintf(out, "note: %s\n", m->notices[i]);
    mc_cli_tokenizer_notes(m, out);
}

void mc_cli_tokenizer_notes(const mc_model *m, FILE *out)
{
    const cJSON *tn;
    cJSON_ArrayForEach(tn, cJSON_GetObjectItemCaseSensitive(m->tokenizer, "notes"))
        if (cJSON_IsString(tn)) fprintf(out, "note: %s: tokenizer: %s\n", m->input_path, tn->valuestring);
}

static void print_problem(void *ctx, const char *msg)
{
    int *quiet = ctx;
    if (!*quiet) printf("problem: %s\n", msg);
}

int mc_cli_verify_source(const char *flash_path, const char *source, int threads, int quiet, mc_error *err)
{
    mc_flash *f = NULL;
    mc_model *m = NULL;
    mc_plan *p = NULL;
    mc_flash_layout *L = NULL;
    mc_plan_opts po;
    mc_convert_opts co = { 0, 1 };
    mc_flash_write_opts wo;
    int rc = mc_flash_open(flash_path, &f, err);
    if (rc) return rc;
    rc = mc_plan_opts_from_json(cJSON_GetObjectItemCaseSensitive((cJSON *)mc_flash_manifest(f), "options"), &po, err);
    mc_flash_close(f);
    if (rc) return rc;
    if ((rc = mc_convert_open(source, &co, &m, err))) return rc;
    if (!(rc = mc_plan_build(m, &po, &p, err))) rc = mc_flash_layout_build(m, p, &L, err);
    if (!rc) {
        memset(&wo, 0, sizeof wo);
        wo.threads = threads > 0 ? threads : default_threads();
        wo.ops = mc_source_model_ops();
        rc = mc_flash_compare(m, L, flash_path, &wo, print_problem, &quiet, err);
    }
    mc_flash_layout_free(L);
    mc_plan_free(p);
    if (m) mc_convert_close(m);
    return rc;
}

enum { O_BITS = 1, O_GS, O_DTYPE, O_NOQUANT, O_LOSSLESS, O_THREADS, O_FORCE, O_DRY, O_QUIET, O_STATS, O_HELP,
       O_LAYOUT, O_SHARD, O_BITS_FOR, O_ENGINES, O_FORCE_LAYOUT, O_NO_QERR, O_RECIPE, O_REQUANT_MXFP4 };

static const struct { const char *name; int id; int has_arg; } g_opts[] = {
    { "--bits", O_BITS, 1 },       { "--group-size", O_GS, 1 }, { "--dtype", O_DTYPE, 1 },
    { "--no-quant", O_NOQUANT, 0 }, { "--lossless", O_LOSSLESS, 0 }, { "--threads", O_THREADS, 1 },
    { "--force", O_FORCE, 0 },     { "--dry-run", O_DRY, 0 },   { "--quiet", O_QUIET, 0 },
    { "-q", O_QUIET, 0 },          { "--stats", O_STATS, 0 },   { "--help", O_HELP, 0 },
    { "-h", O_HELP, 0 },           { "--layout", O_LAYOUT, 1 }, { "--shard-size", O_SHARD, 1 },
    { "--bits-for", O_BITS_FOR, 1 },  { "--engines", O_ENGINES, 1 }, { "--force-layout", O_FORCE_LAYOUT, 0 },
    { "--no-qerr", O_NO_QERR, 0 },
    { "--recipe", O_RECIPE, 1 },
    { "--requant-mxfp4", O_REQUANT_MXFP4, 0 },
};

int mc_cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *engines = NULL;
    int threads = default_threads(), force = 0, dry = 0, quiet = 0, stats = 0, layout = 0, force_layout = 0, no_qerr = 0;
    unsigned long long shard = 0;
    mc_plan_opts po;
    mc_plan_opts_default(&po);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        int id = 0;
        if (a[0] == '-' && a[1]) {
            for (size_t k = 0; k < sizeof g_opts / sizeof g_opts[0]; k++) {
                size_t n = strlen(g_opts[k].name);
                if (!strncmp(a, g_opts[k].name, n) && (a[n] == 0 || (a[n] == '=' && g_opts[k].has_arg))) {
                    id = g_opts[k].id;
                    if (g_opts[k].has_arg) {
                        if (a[n] == '=') val = a + n + 1;
                        else if (i + 1 < argc) val = argv[++i];
                        else return mc_cli_usage_error("convert", "%s needs a value", a);
                    }
                    break;
                }
            }
            if (!id) return mc_cli_usage_error("convert", "unknown option '%s'", a);
        }
        char *end = NULL;
        long v = val ? strtol(val, &end, 10) : 0;
        int num_ok = val && *val && end && *end == 0;
        switch (id) {
        case 0:
            if (!in) in = a;
            else if (!out) out = a;
            else return mc_cli_usage_error("convert", "unexpected argument '%s'", a);
            break;
        case O_BITS:
            if (!num_ok || (v != 2 && v != 3 && v != 4 && v != 5 && v != 6 && v != 8))
                return mc_cli_usage_error("convert", "--bits %s: expected 2, 3, 4, 5, 6 or 8", val);
            po.bits = (int)v;
            break;
        case O_GS:
            if (!num_ok || (v != 32 && v != 64 && v != 128))
                return mc_cli_usage_error("convert", "--group-size %s: expected 32, 64 or 128", val);
            po.group_size = (int)v;
            break;
        case O_DTYPE:
            po.dtype = -2;
            for (size_t k = 0; k < sizeof g_dtypes / sizeof g_dtypes[0]; k++)
                if (!strcmp(val, g_dtypes[k].name)) po.dtype = g_dtypes[k].type;
            if (po.dtype == -2) return mc_cli_usage_error("convert", "--dtype %s: expected bf16, f16 or f32", val);
            break;
        case O_BITS_FOR: {
            /* GLOB=N, split at the last '=' */
            const char *eq = strrchr(val, '=');
            char glob[MC_PLAN_GLOB_MAX];
            long b = eq ? strtol(eq + 1, &end, 10) : 0;
            mc_error be = { MC_OK, "" };
            if (!eq || eq == val || !eq[1] || *end || (size_t)(eq - val) >= sizeof glob)
                return mc_cli_usage_error("convert", "--bits-for %s: expected MODULE-GLOB=BITS", val);
            memcpy(glob, val, (size_t)(eq - val));
            glob[eq - val] = '\0';
            if (mc_plan_opts_add_bits_for(&po, glob, (int)b, &be)) return mc_cli_usage_error("convert", "%s", be.msg);
            break;
        }
        case O_RECIPE:
            if ((po.recipe = mc_recipe_from_name(val)) < 0)
                return mc_cli_usage_error("convert", "--recipe %s: expected one of %s", val, mc_recipe_list());
            break;
        case O_NOQUANT: po.no_quant = 1; break;
        case O_LOSSLESS: po.lossless = 1; break;
        case O_REQUANT_MXFP4: po.requant_mxfp4 = 1; break;
        case O_THREADS:
            if (!num_ok || v < 1 || v > 256) return mc_cli_usage_error("convert", "--threads %s: expected 1..256", val);
            threads = (int)v;
            break;
        case O_FORCE: force = 1; break;
        case O_DRY: dry = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_STATS: stats = 1; break;
        case O_HELP: usage(stdout); return MC_EXIT_OK;
        case O_LAYOUT:
            if ((layout = mc_cli_layout_from_name(val)) < 0)
                return mc_cli_usage_error("convert", "--layout %s: expected flash, mac-code or mlx", val);
            break;
        case O_ENGINES: engines = val; break;
        case O_FORCE_LAYOUT: force_layout = 1; break;
        case O_NO_QERR: no_qerr = 1; break;
        case O_SHARD:
            shard = val && *val != '-' ? strtoull(val, &end, 10) : 0;
            if (!val || !*val || *end || shard == 0)
                return mc_cli_usage_error("convert", "--shard-size %s: expected a positive byte count", val);
            break;
        }
    }
    if (!in || !out) return mc_cli_usage_error("convert", "expected IN and OUT.flash");
    if ((engines || force_layout) && layout != MC_EXPORT_MACCODE)
        return mc_cli_usage_error("convert", "%s applies to --layout mac-code only", engines ? "--engines" : "--force-layout");
    if (layout > 0) {
        mc_cli_export_args ea = { in, out, &po, layout, shard, threads, force, dry, quiet, stats, engines, force_layout,
                                   no_qerr };
        return mc_cli_export(&ea);
    }

    mc_error err = { MC_OK, "" };
    mc_model *m = NULL;
    mc_plan *p = NULL;
    mc_flash_layout *L = NULL;
    mc_convert_opts co = { 0, 1 };
    mc_qerr *qerr = NULL;
    int rc, code = MC_EXIT_OK;
    double t0 = mc_cli_now_s();

    if (out_is_input(in, out)) {
        fprintf(stderr, "mconv: %s: output would overwrite the input %s\n", out, in);
        return MC_EXIT_BAD_INPUT;
    }
    if (!force && !dry && mc_io_exists(out)) {
        fprintf(stderr, "mconv: %s: already exists (use --force to overwrite)\n", out);
        return MC_EXIT_BAD_INPUT;
    }
    mc_cli_install_signals();
    if ((rc = mc_convert_open(in, &co, &m, &err)) || (rc = mc_plan_build(m, &po, &p, &err)) ||
        (rc = mc_flash_layout_build(m, p, &L, &err))) {
        code = rc == MC_ERR_ARG ? mc_cli_usage_error("convert", "%s", err.msg) : mc_cli_report(&err);
        goto done;
    }
    const char *clash = out_is_source(m, out);
    if (clash) {
        fprintf(stderr, "mconv: %s: output would overwrite the input %s\n", out, clash);
        code = MC_EXIT_BAD_INPUT;
        goto done;
    }
    if (dry) {
        static const char *roles[] = { "pinned", "ffn", "expert" };
        printf("plan for %s -> %s (dry run, nothing written)\n", in, out);
        print_plan(m, p, L, stdout);
        printf("\n%-7s %5s %-22s %10s  %s\n", "role", "layer", "stored as", "bytes", "name");
        for (size_t i = 0; i < p->n_items; i++) {
            const mc_pitem *it = &p->items[i];
            char how[40];
            uint64_t nb = 0;
            for (size_t k = 0; k < it->n_out; k++) nb += it->out[k].nbytes;
            if (it->kind == MC_PK_AFFINE || it->kind == MC_PK_REPACK)
                snprintf(how, sizeof how, "%s%d-bit g%d %s", it->kind == MC_PK_REPACK ? "repack " : "", it->bits,
                         it->group_size, it->mx_mode ? "mxfp4" : mc_type_get(it->float_type)->st_name);
            else if (it->kind == MC_PK_RAW) snprintf(how, sizeof how, "as is (%s)", mc_type_name(it->out[0].dtype));
            else snprintf(how, sizeof how, "%s", mc_type_get(it->float_type)->st_name);
            printf("%-7s %5d %-22s %10llu  %s\n", roles[it->mt->role <= MC_ROLE_EXPERT ? it->mt->role : 0],
                   it->mt->layer, how, (unsigned long long)nb, it->mt->name);
        }
        goto done;
    }
    mc_cli_progress pr = { !quiet && isatty(2), mc_cli_now_s() };
    mc_flash_write_opts wo;
    mc_cli_write_opts(&wo, threads, force, &pr);
    wo.no_qerr = no_qerr;
    if (!no_qerr && !(qerr = malloc((p->n_items ? p->n_items : 1) * sizeof *qerr))) {
        fprintf(stderr, "mconv: out of memory\n");
        code = MC_EXIT_BAD_INPUT;
        goto done;
    }
    wo.qerr_out = qerr;
    rc = mc_flash_write(m, L, out, &wo, &err);
    if (pr.on) fprintf(stderr, "\r\033[K");
    if (rc) {
        code = mc_cli_report(&err);
        goto done;
    }
    if (!quiet) {
        char b1[32];
        printf("wrote %s\n", out);
        print_plan(m, p, L, stdout);
        if (qerr && mc_cli_qerr_print_plan(stdout, p, qerr)) fprintf(stderr, "mconv: out of memory\n");
        printf("time: %.2fs, peak memory: %s, threads: %d\n", mc_cli_now_s() - t0,
               mc_cli_bytes(mc_cli_peak_rss(), b1, sizeof b1), threads);
    }
    if (stats) {
        char b1[32], b2[32], b3[32];
        fprintf(stderr, "stats: peak RSS %s (%llu bytes), read %s, written %s\n",
                mc_cli_bytes(mc_cli_peak_rss(), b1, sizeof b1), mc_cli_peak_rss(),
                mc_cli_bytes(mc_io_bytes_read(), b2, sizeof b2), mc_cli_bytes(mc_io_bytes_written(), b3, sizeof b3));
    }
done:
    free(qerr);
    mc_flash_layout_free(L);
    mc_plan_free(p);
    if (m) mc_convert_close(m);
    return code;
}
