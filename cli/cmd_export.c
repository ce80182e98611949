/* convert --layout mac-code / mlx (folders), and inspect/dump of mac-code
 * folders. */
#include "mc_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mc_convert.h"
#include "mc_export.h"
#include "mc_flash_write.h"
#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_maccode.h"
#include "mc_maccode_folder.h"
#include "mc_plan.h"
#include "mc_qerr.h"
#include "mc_safetensors.h"
#include "mc_types.h"

static const struct { const char *name; int kind; } g_layouts[] = {
    { "flash", 0 }, { "mac-code", MC_EXPORT_MACCODE }, { "maccode", MC_EXPORT_MACCODE }, { "mlx", MC_EXPORT_MLX },
};

int mc_cli_layout_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof g_layouts / sizeof g_layouts[0]; i++)
        if (!strcmp(name, g_layouts[i].name)) return g_layouts[i].kind;
    return -1;
}

/* realpath of path, or of its parent joined with its base name when path
 * does not exist yet. */
static char *resolve(const char *path)
{
    char buf[PATH_MAX];
    if (realpath(path, buf)) return strdup(buf);
    const char *slash = strrchr(path, '/');
    char *parent = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    char *r = NULL;
    if (parent && realpath(parent, buf)) {
        const char *base = slash ? slash + 1 : path;
        size_t n = strlen(buf) + strlen(base) + 2;
        if ((r = malloc(n))) snprintf(r, n, "%s/%s", strcmp(buf, "/") ? buf : "", base);
    }
    free(parent);
    return r;
}

/* a equals b, or lies inside folder b */
static int under(const char *a, const char *b)
{
    size_t n = strlen(b);
    return !strncmp(a, b, n) && (a[n] == 0 || a[n] == '/' || (n == 1 && b[0] == '/'));
}

/* OUT must not be an input, inside an input folder, nor hold an input
 * (replacing it with --force would delete the input). */
static const char *out_clash(const mc_model *m, const char *in, const char *out)
{
    static char hit[PATH_MAX];
    const char *paths[1024];
    size_t n = 0;
    paths[n++] = in;
    if (m && m->gguf)
        for (uint32_t i = 0; i < m->gguf->n_shards && n < 1000; i++) paths[n++] = m->gguf->shards[i].file.path;
    if (m && m->st) {
        for (uint32_t i = 0; i < m->st->n_files && n < 1000; i++) paths[n++] = m->st->files[i].file.path;
        if (m->st->index_path) paths[n++] = m->st->index_path;
        if (m->st->dir) paths[n++] = m->st->dir;
    }
    char *ro = resolve(out);
    const char *res = NULL;
    for (size_t i = 0; ro && !res && i < n; i++) {
        char *ri = paths[i] ? resolve(paths[i]) : NULL;
        if (ri && (under(ro, ri) && (mc_io_is_dir(ri) || !strcmp(ro, ri)))) res = paths[i];
        else if (ri && under(ri, ro)) res = paths[i];
        free(ri);
    }
    free(ro);
    if (!res) return NULL;
    snprintf(hit, sizeof hit, "%s", res);
    return hit;
}

static void print_files(const mc_export *X, FILE *out)
{
    char b1[32];
    uint64_t total = 0;
    for (size_t i = 0; i < X->n_files; i++) {
        const mc_export_file *f = &X->files[i];
        total += f->size;
        if (f->clone)
            fprintf(out, "  %-40s %12s  %zu tensors, the bytes of %s\n", f->name, mc_cli_bytes(f->size, b1, sizeof b1),
                    f->n_tensors, X->files[f->clone_src].name);
        else if (f->n_tensors)
            fprintf(out, "  %-40s %12s  %zu tensors\n", f->name, mc_cli_bytes(f->size, b1, sizeof b1), f->n_tensors);
        else
            fprintf(out, "  %-40s %12s  %s\n", f->name, mc_cli_bytes(f->size, b1, sizeof b1),
                    f->copy_from ? "copied" : strstr(f->name, ".json") ? "json" : "text");
    }
    fprintf(out, "total: %zu files, %s\n", X->n_files, mc_cli_bytes(total, b1, sizeof b1));
}

/* mac-code: problems are collected, the first refuses (exit 1, nothing
 * written) unless --force-layout, which prints each as a warning. */
typedef struct mc_problems {
    char first[1024];
    size_t n;
    int warn; /* --force-layout: print each */
} mc_problems;

static void collect(void *ctx, const char *msg)
{
    mc_problems *pr = ctx;
    if (!pr->n++) snprintf(pr->first, sizeof pr->first, "%s", msg);
    if (pr->warn) fprintf(stderr, "mconv: warning: --force-layout: %s\n", msg);
}

/* The engines for the model (refusal or warning when none builds it). */
static int maccode_engines(const mc_model *m, const mc_cli_export_args *a, uint32_t *mask)
{
    mc_error err = { MC_OK, "" };
    char fams[2048];
    *mask = 0;
    if (a->engines) {
        int rc = mc_maccode_select(m->model_type, a->engines, mask, &err);
        if (rc == MC_ERR_ARG) return mc_cli_usage_error("convert", "%s", err.msg);
        if (rc) {
            fprintf(stderr, "mconv: %s: %s\n", a->in, err.msg);
            return MC_EXIT_BAD_INPUT;
        }
        return MC_EXIT_OK;
    }
    *mask = mc_maccode_family(m->model_type, 1);
    if (*mask) return MC_EXIT_OK;
    mc_maccode_describe_families(fams, sizeof fams);
    fprintf(stderr, "mconv: %s%s: no mac-code engine builds %s (%s); the engines build %s%s\n",
            a->force_layout ? "warning: --force-layout: " : "", a->in, m->model_type ? m->model_type : "?",
            m->arch ? m->arch : "?", fams, a->force_layout ? "" : " (--force-layout writes the folder anyway)");
    return a->force_layout ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}

/* Notes for the engines that will read what this folder holds. */
static void maccode_warnings(const mc_model *m, const mc_plan *p, const mc_export *X)
{
    char names[1024];
    uint32_t bad = 0;
    int bf16 = 0, raw = 0;
    for (size_t i = 0; i < X->n_files; i++)
        if (!strncmp(X->files[i].name, "ffn_aligned/", 12)) bad = mc_maccode_bf16_misreaders(X->engines);
    for (size_t i = 0; bad && i < p->n_items; i++)
        for (size_t k = 0; p->items[i].mt->role == MC_ROLE_FFN && k < p->items[i].n_out; k++)
            if (p->items[i].out[k].dtype == MC_T_BF16) {
                bf16 = 1;
                raw |= p->items[i].kind == MC_PK_RAW;
            }
    if (bad && bf16) {
        mc_maccode_names(bad, names, sizeof names);
        fprintf(stderr, "mconv: warning: ffn_aligned/ holds bfloat16 tensors: %s read them as float16 "
                        "(direct_io.py maps bfloat16 to float16) and compute garbage; %s\n", names,
                raw ? "the MLX-quantized input is copied as it is: convert from the original checkpoint, or "
                      "write for other engines with --engines"
                    : "without --dtype bf16 they are float16");
    }
    size_t n;
    const mc_maccode_engine *E = mc_maccode_engines(&n);
    uint32_t dir = 0;
    for (size_t i = 0; i < n; i++)
        if ((X->engines & (1u << i)) && (E[i].reads & MC_MCR_TOK_DIR)) dir |= 1u << i;
    int tok = 0;
    for (size_t i = 0; i < X->n_files; i++) tok |= !strcmp(X->files[i].name, "tokenizer.json");
    if (dir && !tok) {
        mc_maccode_names(dir, names, sizeof names);
        fprintf(stderr, "mconv: warning: %s has no tokenizer files; %s load%s the tokenizer from the folder: copy "
                        "tokenizer.json and tokenizer_config.json into it\n", m->input_path, names,
                dir & (dir - 1) ? "" : "s");
    }
}

int mc_cli_export(const mc_cli_export_args *a)
{
    mc_error err = { MC_OK, "" };
    mc_model *m = NULL;
    mc_plan *p = NULL;
    mc_export *X = NULL;
    mc_convert_opts co = { 0, 1 };
    mc_plan_opts po = *a->po;
    mc_qerr *qerr = NULL;
    uint32_t engines = 0;
    int rc, code = MC_EXIT_OK, maccode = a->layout == MC_EXPORT_MACCODE;
    double t0 = mc_cli_now_s();
    const char *lname = maccode ? "mac-code" : "mlx";

    if (!a->force && !a->dry && mc_io_exists(a->out)) {
        fprintf(stderr, "mconv: %s: already exists (use --force to overwrite)\n", a->out);
        return MC_EXIT_BAD_INPUT;
    }
    const char *clash = out_clash(NULL, a->in, a->out);
    if (clash) {
        fprintf(stderr, "mconv: %s: output would overwrite or be inside the input %s\n", a->out, clash);
        return MC_EXIT_BAD_INPUT;
    }
    mc_cli_install_signals();
    if ((rc = mc_convert_open(a->in, &co, &m, &err))) {
        code = mc_cli_report(&err);
        goto done;
    }
    if (maccode) {
        if ((code = maccode_engines(m, a, &engines))) goto done;
        if ((rc = mc_maccode_plan_opts(engines, &po, &err))) {
            code = rc == MC_ERR_ARG ? mc_cli_usage_error("convert", "%s", err.msg) : mc_cli_report(&err);
            goto done;
        }
    }
    if ((rc = mc_plan_build(m, &po, &p, &err))) {
        code = rc == MC_ERR_ARG ? mc_cli_usage_error("convert", "%s", err.msg) : mc_cli_report(&err);
        goto done;
    }
    if (maccode && engines) {
        mc_problems pr = { "", 0, a->force_layout };
        mc_maccode_check(m, p, engines, collect, &pr);
        if (pr.n && !a->force_layout) {
            fprintf(stderr, "mconv: %s: the mac-code engines cannot run this conversion: %s%s\n", a->in, pr.first,
                    " (--force-layout writes it anyway)");
            code = MC_EXIT_BAD_INPUT;
            goto done;
        }
    }
    if ((rc = mc_export_build_for(m, p, (mc_export_kind)a->layout, a->shard_bytes, engines, &X, &err))) {
        code = rc == MC_ERR_ARG ? mc_cli_usage_error("convert", "%s", err.msg) : mc_cli_report(&err);
        goto done;
    }
    if ((clash = out_clash(m, a->in, a->out))) {
        fprintf(stderr, "mconv: %s: output would overwrite or be inside the input %s\n", a->out, clash);
        code = MC_EXIT_BAD_INPUT;
        goto done;
    }
    if (maccode) maccode_warnings(m, p, X);
    if (a->dry) {
        printf("plan for %s -> %s (%s folder, dry run, nothing written)\n", a->in, a->out, lname);
        print_files(X, stdout);
        for (size_t i = 0; i < m->n_notices; i++) printf("note: %s\n", m->notices[i]);
        mc_cli_tokenizer_notes(m, stdout);
        goto done;
    }
    mc_cli_progress pr = { !a->quiet && isatty(2), mc_cli_now_s() };
    mc_flash_write_opts wo;
    mc_cli_write_opts(&wo, a->threads, a->force, &pr);
    wo.no_qerr = a->no_qerr;
    if (!a->no_qerr && !(qerr = malloc((p->n_items ? p->n_items : 1) * sizeof *qerr))) {
        fprintf(stderr, "mconv: out of memory\n");
        code = MC_EXIT_BAD_INPUT;
        goto done;
    }
    wo.qerr_out = qerr;
    rc = mc_export_write(m, X, a->out, &wo, &err);
    if (pr.on) fprintf(stderr, "\r\033[K");
    if (rc) {
        code = mc_cli_report(&err);
        goto done;
    }
    if (!a->quiet) {
        char b1[32], names[1024];
        if (maccode && engines) {
            mc_maccode_names(engines, names, sizeof names);
            printf("wrote %s (%s folder for %s)\n", a->out, lname, names);
        } else {
            printf("wrote %s (%s folder)\n", a->out, lname);
        }
        print_files(X, stdout);
        if (X->stats->n_cloned)
            printf("disk: %zu files are copy-on-write clones of their ffn_aligned/ twin (blocks shared)\n",
                   X->stats->n_cloned);
        if (X->stats->n_copied)
            printf("disk: %zu files copied from their ffn_aligned/ twin: %s on disk twice (this file system cannot "
                   "clone; --engines can select one form)\n", X->stats->n_copied,
                   mc_cli_bytes(X->stats->bytes_copied, b1, sizeof b1));
        for (size_t i = 0; i < m->n_notices; i++) printf("note: %s\n", m->notices[i]);
        mc_cli_tokenizer_notes(m, stdout);
        if (qerr && mc_cli_qerr_print_plan(stdout, p, qerr)) fprintf(stderr, "mconv: out of memory\n");
        printf("time: %.2fs, peak memory: %s, threads: %d\n", mc_cli_now_s() - t0,
               mc_cli_bytes(mc_cli_peak_rss(), b1, sizeof b1), a->threads);
    }
    if (a->stats) {
        char b1[32], b2[32];
        fprintf(stderr, "stats: peak RSS %s (%llu bytes), read %s\n", mc_cli_bytes(mc_cli_peak_rss(), b1, sizeof b1),
                mc_cli_peak_rss(), mc_cli_bytes(mc_io_bytes_read(), b2, sizeof b2));
    }
done:
    free(qerr);
    mc_export_free(X);
    mc_plan_free(p);
    if (m) mc_convert_close(m);
    return code;
}

/* ---- inspect / dump of a mac-code folder ---- */

static cJSON *read_json_file(const char *path, size_t limit)
{
    mc_file f;
    cJSON *j = NULL;
    if (mc_file_open(&f, path, NULL)) return NULL;
    if (f.size <= limit) {
        char *b = malloc((size_t)f.size + 1);
        if (b && !mc_file_pread(&f, 0, b, (size_t)f.size, NULL)) {
            b[f.size] = 0;
            j = cJSON_Parse(b);
        }
        free(b);
    }
    mc_file_close(&f);
    return j;
}

static cJSON *folder_config(const char *dir)
{
    char *p = mc_path_join(dir, "config.json");
    cJSON *c = p ? read_json_file(p, MC_ST_JSON_LIMIT) : NULL;
    free(p);
    if (c && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "streaming"))) {
        cJSON_Delete(c);
        c = NULL;
    }
    return c;
}

int mc_cli_is_maccode(const char *path) { return mc_maccode_is_folder(path); }

/* A layer file's header: the JSON before the zero padding of page one. */
static cJSON *layer_header(const char *path, uint64_t *size)
{
    mc_file f;
    unsigned char *b = NULL;
    cJSON *j = NULL;
    if (mc_file_open(&f, path, NULL)) return NULL;
    *size = f.size;
    size_t n = f.size < 16384 ? (size_t)f.size : 16384;
    if ((b = malloc(n + 1)) && !mc_file_pread(&f, 0, b, n, NULL)) {
        b[n] = 0;
        j = cJSON_ParseWithLength((const char *)b, strnlen((const char *)b, n));
    }
    free(b);
    mc_file_close(&f);
    return j;
}

typedef struct lfile {
    char name[320];
    cJSON *hdr;
    uint64_t size;
} lfile;

static int cmp_lfile(const void *a, const void *b) { return strcmp(((const lfile *)a)->name, ((const lfile *)b)->name); }

/* Every layer_*<ext> of dir/sub, sorted by name; .bin headers parsed. */
static lfile *list_layers(const char *dir, const char *sub, const char *ext, size_t *n, int *bad)
{
    char *d = mc_path_join(dir, sub);
    DIR *dh = d ? opendir(d) : NULL;
    lfile *v = NULL;
    size_t el = strlen(ext);
    *n = 0;
    struct dirent *de;
    while (dh && (de = readdir(dh)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "layer_", 6) || l < 6 + el + 1 || l >= 60 || strcmp(de->d_name + l - el, ext)) continue;
        lfile *nv = realloc(v, (*n + 1) * sizeof *v);
        if (!nv) break;
        v = nv;
        snprintf(v[*n].name, sizeof v[*n].name, "%s/%s", sub, de->d_name);
        char *p = mc_path_join(dir, v[*n].name);
        v[*n].hdr = NULL;
        v[*n].size = 0;
        if (p && !strcmp(ext, ".bin")) {
            v[*n].hdr = layer_header(p, &v[*n].size);
            if (!v[*n].hdr) (*bad)++;
        } else if (p) {
            struct stat st;
            if (!stat(p, &st)) v[*n].size = (uint64_t)st.st_size;
        }
        free(p);
        (*n)++;
    }
    if (dh) closedir(dh);
    free(d);
    if (*n) qsort(v, *n, sizeof *v, cmp_lfile);
    return v;
}

static void free_layers(lfile *v, size_t n)
{
    for (size_t i = 0; i < n; i++) cJSON_Delete(v[i].hdr);
    free(v);
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *jstr(const cJSON *o, const char *k, const char *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : d;
}

/* The expert folder: streaming.expert_dir (without a trailing slash). */
static void expert_dir(const cJSON *sb, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", jstr(sb, "expert_dir", "bin"));
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = 0;
}

int mc_cli_maccode_inspect(const char *path)
{
    mc_error err = { MC_OK, "" };
    mc_maccode_scan_info si;
    cJSON *cfg = folder_config(path);
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(cfg, "streaming");
    char *pp = mc_path_join(path, "pinned.safetensors"), xd[256];
    mc_st *st = NULL;
    size_t nf = 0, ns = 0, nx = 0;
    int bad = 0;
    char b1[32], b2[32], names[1024];
    if (!pp || mc_st_open(pp, &st, &err) || mc_maccode_scan(path, &si, &err)) {
        free(pp);
        mc_st_close(st);
        cJSON_Delete(cfg);
        return mc_cli_report(&err);
    }
    expert_dir(sb, xd, sizeof xd);
    lfile *ff = list_layers(path, "ffn_aligned", ".bin", &nf, &bad);
    lfile *fs = list_layers(path, jstr(sb, "ffn_dir", "ffn"), ".safetensors", &ns, &bad);
    lfile *xf = list_layers(path, xd, ".bin", &nx, &bad);
    uint64_t ffn_bytes = 0, st_bytes = 0, exp_bytes = 0, disk = 0, app = 0;
    for (size_t i = 0; i < nf; i++) ffn_bytes += ff[i].size;
    for (size_t i = 0; i < ns; i++) st_bytes += fs[i].size;
    for (size_t i = 0; i < nx; i++) exp_bytes += xf[i].size;
    printf("folder:        %s\n", path);
    printf("format:        mac-code streaming folder (%s)\n", jstr(sb, "model_class", nx ? "moe" : "dense"));
    printf("model_type:    %s, %d layers\n", si.model_type[0] ? si.model_type : "?", si.n_layers);
    if (si.bits) printf("quantization:  %d bits, group size %d (MLX affine)\n", si.bits, si.group_size);
    else printf("quantization:  none\n");
    printf("pinned:        pinned.safetensors, %llu tensors, %s\n", (unsigned long long)st->n_tensors,
           mc_cli_bytes(st->data_bytes, b1, sizeof b1));
    if (nf) printf("dense FFN:     %zu files in ffn_aligned/ (flash_aligned_v1), %s\n", nf,
                   mc_cli_bytes(ffn_bytes, b1, sizeof b1));
    if (ns) printf("dense FFN:     %zu files in %s (safetensors), %s\n", ns, jstr(sb, "ffn_dir", "ffn/"),
                   mc_cli_bytes(st_bytes, b1, sizeof b1));
    if (nx) {
        const cJSON *lay = cJSON_GetObjectItemCaseSensitive(xf[0].hdr, "layout");
        printf("experts:       %zu files in %s/ (moe_flash_v1), %d experts of %s each, %d per token, %s\n", nx, xd,
               (int)jnum(lay, "num_experts"), mc_cli_bytes((uint64_t)jnum(lay, "expert_block_size"), b1, sizeof b1),
               (int)jnum(sb, "experts_per_tok"), mc_cli_bytes(exp_bytes, b2, sizeof b2));
        printf("expert names:  %s%s%s\n", si.names_mlp ? "mlp.switch_mlp.*" : "",
               si.names_mlp && si.names_sw ? " and " : "", si.names_sw ? "switch_mlp.*" : "");
    }
    printf("tokenizer:     %s\n", si.tokenizer ? "tokenizer.json present" : "none in the folder");
    if (!mc_maccode_disk_use(path, &disk, &app, NULL))
        printf("disk:          %s allocated, %s in files (each file once)\n", mc_cli_bytes(disk, b1, sizeof b1),
               mc_cli_bytes(app, b2, sizeof b2));
    mc_maccode_names(si.readers, names, sizeof names);
    printf("engines:       %s\n", si.readers ? names : "none of the mac-code engines can read it");
    size_t n;
    const mc_maccode_engine *E = mc_maccode_engines(&n);
    for (size_t i = 0; i < n; i++)
        if ((si.family & (1u << i)) && !(si.readers & (1u << i)))
            printf("  not %s: %s\n", E[i].id, si.why[i]);
    if (!si.family) printf("  no mac-code engine builds %s\n", si.model_type[0] ? si.model_type : "this model type");
    if (bad) printf("problems:      %d layer files without a readable header\n", bad);
    free_layers(ff, nf);
    free_layers(fs, ns);
    free_layers(xf, nx);
    mc_st_close(st);
    free(pp);
    cJSON_Delete(cfg);
    return bad ? MC_EXIT_BAD_INPUT : MC_EXIT_OK;
}

static void shape_str(const cJSON *a, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    const cJSON *d;
    int first = 1;
    cJSON_ArrayForEach(d, a)
    {
        if (k >= cap) break;
        k += (size_t)snprintf(buf + k, cap - k, "%s%.0f", first ? "" : ", ", d->valuedouble);
        first = 0;
    }
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

int mc_cli_maccode_dump(const char *path, int json, const char *filter)
{
    mc_error err = { MC_OK, "" };
    cJSON *cfg = folder_config(path);
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(cfg, "streaming");
    char *pp = mc_path_join(path, jstr(sb, "pinned_file", "pinned.safetensors"));
    mc_st *st = NULL;
    size_t nf = 0, nx = 0;
    int bad = 0;
    if (!pp || mc_st_open(pp, &st, &err)) {
        free(pp);
        cJSON_Delete(cfg);
        return mc_cli_report(&err);
    }
    char xd[256];
    expert_dir(sb, xd, sizeof xd);
    lfile *ff = list_layers(path, "ffn_aligned", ".bin", &nf, &bad), *xf = list_layers(path, xd, ".bin", &nx, &bad);
    cJSON *out = json ? cJSON_CreateObject() : NULL;
    cJSON *pin = out ? cJSON_AddArrayToObject(out, "pinned") : NULL;
    if (json) cJSON_AddItemToObject(out, "config", cJSON_Duplicate(cfg, 1));
    else printf("pinned tensors (%s):\n", jstr(sb, "pinned_file", "pinned.safetensors"));
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        const mc_st_tensor *t = &st->tensors[i];
        if (filter && fnmatch(filter, t->name, 0)) continue;
        char sh[128];
        size_t k = (size_t)snprintf(sh, sizeof sh, "[");
        for (uint32_t d = 0; d < t->n_dims && k < sizeof sh; d++)
            k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
        if (k < sizeof sh) snprintf(sh + k, sizeof sh - k, "]");
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddStringToObject(o, "dtype", mc_type_get(t->type) ? mc_type_get(t->type)->st_name : "?");
            cJSON_AddRawToObject(o, "shape", sh);
            cJSON_AddNumberToObject(o, "offset", (double)t->file_offset);
            cJSON_AddNumberToObject(o, "nbytes", (double)t->nbytes);
            cJSON_AddItemToArray(pin, o);
        } else {
            printf("  %-56s %-5s %-22s offset %llu, %llu bytes\n", t->name,
                   mc_type_get(t->type) ? mc_type_get(t->type)->st_name : "?", sh,
                   (unsigned long long)t->file_offset, (unsigned long long)t->nbytes);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        lfile *v = pass ? xf : ff;
        size_t n = pass ? nx : nf;
        cJSON *arr = json && n ? cJSON_AddObjectToObject(out, pass ? "experts" : "ffn") : NULL;
        for (size_t i = 0; i < n; i++) {
            if (json) {
                if (v[i].hdr) cJSON_AddItemToObject(arr, v[i].name, cJSON_Duplicate(v[i].hdr, 1));
                continue;
            }
            const cJSON *h = v[i].hdr, *lay = cJSON_GetObjectItemCaseSensitive(h, "layout");
            printf("%s: %s, %llu bytes", v[i].name, jstr(h, "format", "(unreadable header)"),
                   (unsigned long long)v[i].size);
            if (lay) printf(", %d experts x %.0f bytes from %.0f", (int)jnum(lay, "num_experts"),
                            jnum(lay, "expert_block_size"), jnum(lay, "data_start"));
            printf("\n");
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(lay ? lay : h, "tensors"))
            {
                if (filter && fnmatch(filter, t->string, 0)) continue;
                char sh[128];
                shape_str(cJSON_GetObjectItemCaseSensitive(t, lay ? "shape_per_expert" : "shape"), sh, sizeof sh);
                printf("  %-40s %-18s %-18s %s %.0f, %.0f bytes\n", t->string, jstr(t, "dtype", "?"), sh,
                       lay ? "inner_offset" : "offset", jnum(t, lay ? "inner_offset" : "offset"), jnum(t, "nbytes"));
            }
        }
    }
    if (json) {
        char *s = cJSON_Print(out);
        if (s) printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(out);
    }
    free_layers(ff, nf);
    free_layers(xf, nx);
    mc_st_close(st);
    free(pp);
    cJSON_Delete(cfg);
    return bad ? MC_EXIT_BAD_INPUT : MC_EXIT_OK;
}
