/* convert --layout mac-code / mlx (folders), and inspect/dump of mac-code
 * folders. */
#include "mc_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mc_convert.h"
#include "mc_export.h"
#include "mc_flash_write.h"
#include "mc_gguf.h"
#include "mc_io.h"
#include "mc_plan.h"
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
        if (f->n_tensors)
            fprintf(out, "  %-40s %12s  %zu tensors\n", f->name, mc_cli_bytes(f->size, b1, sizeof b1), f->n_tensors);
        else
            fprintf(out, "  %-40s %12s  %s\n", f->name, mc_cli_bytes(f->size, b1, sizeof b1),
                    f->copy_from ? "copied" : "json");
    }
    fprintf(out, "total: %zu files, %s\n", X->n_files, mc_cli_bytes(total, b1, sizeof b1));
}

int mc_cli_export(const mc_cli_export_args *a)
{
    mc_error err = { MC_OK, "" };
    mc_model *m = NULL;
    mc_plan *p = NULL;
    mc_export *X = NULL;
    mc_convert_opts co = { 0, 1 };
    int rc, code = MC_EXIT_OK;
    double t0 = mc_cli_now_s();
    const char *lname = a->layout == MC_EXPORT_MACCODE ? "mac-code" : "mlx";

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
    if ((rc = mc_convert_open(a->in, &co, &m, &err)) || (rc = mc_plan_build(m, a->po, &p, &err)) ||
        (rc = mc_export_build(m, p, (mc_export_kind)a->layout, a->shard_bytes, &X, &err))) {
        code = rc == MC_ERR_ARG ? mc_cli_usage_error("convert", "%s", err.msg) : mc_cli_report(&err);
        goto done;
    }
    if ((clash = out_clash(m, a->in, a->out))) {
        fprintf(stderr, "mconv: %s: output would overwrite or be inside the input %s\n", a->out, clash);
        code = MC_EXIT_BAD_INPUT;
        goto done;
    }
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
    rc = mc_export_write(m, X, a->out, &wo, &err);
    if (pr.on) fprintf(stderr, "\r\033[K");
    if (rc) {
        code = mc_cli_report(&err);
        goto done;
    }
    if (!a->quiet) {
        char b1[32];
        printf("wrote %s (%s folder)\n", a->out, lname);
        print_files(X, stdout);
        for (size_t i = 0; i < m->n_notices; i++) printf("note: %s\n", m->notices[i]);
        mc_cli_tokenizer_notes(m, stdout);
        printf("time: %.2fs, peak memory: %s, threads: %d\n", mc_cli_now_s() - t0,
               mc_cli_bytes(mc_cli_peak_rss(), b1, sizeof b1), a->threads);
    }
    if (a->stats) {
        char b1[32], b2[32];
        fprintf(stderr, "stats: peak RSS %s (%llu bytes), read %s\n", mc_cli_bytes(mc_cli_peak_rss(), b1, sizeof b1),
                mc_cli_peak_rss(), mc_cli_bytes(mc_io_bytes_read(), b2, sizeof b2));
    }
done:
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

int mc_cli_is_maccode(const char *path)
{
    if (!mc_io_is_dir(path)) return 0;
    cJSON *c = folder_config(path);
    int yes = c != NULL;
    cJSON_Delete(c);
    return yes;
}

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

/* Every layer_*.bin of dir/sub, sorted by name. */
static lfile *list_layers(const char *dir, const char *sub, size_t *n, int *bad)
{
    char *d = mc_path_join(dir, sub);
    DIR *dh = d ? opendir(d) : NULL;
    lfile *v = NULL;
    *n = 0;
    struct dirent *de;
    while (dh && (de = readdir(dh)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "layer_", 6) || l < 10 || l >= 60 || strcmp(de->d_name + l - 4, ".bin")) continue;
        lfile *nv = realloc(v, (*n + 1) * sizeof *v);
        if (!nv) break;
        v = nv;
        snprintf(v[*n].name, sizeof v[*n].name, "%s/%s", sub, de->d_name);
        char *p = mc_path_join(dir, v[*n].name);
        v[*n].hdr = p ? layer_header(p, &v[*n].size) : NULL;
        if (!v[*n].hdr) (*bad)++;
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

int mc_cli_maccode_inspect(const char *path)
{
    mc_error err = { MC_OK, "" };
    cJSON *cfg = folder_config(path);
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(cfg, "streaming");
    const char *pf = jstr(sb, "pinned_file", "pinned.safetensors");
    char *pp = mc_path_join(path, pf);
    mc_st *st = NULL;
    size_t nf = 0, nx = 0;
    int bad = 0;
    char b1[32], b2[32];
    if (!pp || mc_st_open(pp, &st, &err)) {
        free(pp);
        cJSON_Delete(cfg);
        return mc_cli_report(&err);
    }
    lfile *ff = list_layers(path, "ffn", &nf, &bad), *xf = list_layers(path, "experts", &nx, &bad);
    uint64_t ffn_bytes = 0, exp_bytes = 0;
    for (size_t i = 0; i < nf; i++) ffn_bytes += ff[i].size;
    for (size_t i = 0; i < nx; i++) exp_bytes += xf[i].size;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    printf("folder:        %s\n", path);
    printf("format:        mac-code streaming folder (%s)\n", jstr(sb, "model_class", nx ? "moe" : "dense"));
    printf("model_type:    %s, %d layers\n", jstr(cfg, "model_type", "?"), (int)jnum(cfg, "num_hidden_layers"));
    if (cJSON_IsObject(q))
        printf("quantization:  %d bits, group size %d (MLX affine)\n", (int)jnum(q, "bits"), (int)jnum(q, "group_size"));
    else printf("quantization:  none\n");
    printf("pinned:        %s, %llu tensors, %s\n", pf, (unsigned long long)st->n_tensors,
           mc_cli_bytes(st->data_bytes, b1, sizeof b1));
    if (nf) printf("dense FFN:     %zu files in ffn/ (flash_aligned_v1), %s\n", nf, mc_cli_bytes(ffn_bytes, b1, sizeof b1));
    if (nx) {
        const cJSON *lay = cJSON_GetObjectItemCaseSensitive(xf[0].hdr, "layout");
        printf("experts:       %zu files in experts/ (moe_flash_v1), %d experts of %s each, %d per token, %s\n", nx,
               (int)jnum(lay, "num_experts"), mc_cli_bytes((uint64_t)jnum(lay, "expert_block_size"), b1, sizeof b1),
               (int)jnum(sb, "experts_per_tok"), mc_cli_bytes(exp_bytes, b2, sizeof b2));
    }
    if (bad) printf("problems:      %d layer files without a readable header\n", bad);
    free_layers(ff, nf);
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
    lfile *ff = list_layers(path, "ffn", &nf, &bad), *xf = list_layers(path, "experts", &nx, &bad);
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
