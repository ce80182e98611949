/* inspect and dump for .flash files (called from cmd_inspect.c / cmd_dump.c). */
#include "mc_cli.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_flash.h"
#include "mc_flash_picture.h"
#include "mc_io.h"
#include "mc_types.h"

int mc_cli_is_flash(const char *path)
{
    mc_file f;
    unsigned char b[8];
    if (mc_io_is_dir(path) || mc_file_open(&f, path, NULL)) return 0;
    int yes = f.size >= 8 && mc_file_pread(&f, 0, b, 8, NULL) == 0 && mc_flash_sniff(b, 8);
    mc_file_close(&f);
    return yes;
}

static const char *jstr(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static void shape_str(const uint64_t *s, uint32_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (uint32_t d = 0; d < n && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%llu", d ? ", " : "", (unsigned long long)s[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* inspect --json: the layout, the cost and the quantization error. */
static int flash_json(const mc_flash *f, const char *path)
{
    const cJSON *m = mc_flash_manifest(f);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
    mc_flash_cost c;
    mc_flash_token_cost(f, &c);
    cJSON *j = cJSON_CreateObject(), *o, *a;
    int bad = !j;
#define ADD(obj, key, item) do { cJSON *it_ = (item); if (!it_ || !cJSON_AddItemToObject((obj), (key), it_)) { cJSON_Delete(it_); bad = 1; } } while (0)
#define DUP(key, src) ADD(j, key, (src) ? cJSON_Duplicate((src), 1) : cJSON_CreateNull())
    if (!bad) {
        ADD(j, "file", cJSON_CreateString(path));
        ADD(j, "format", cJSON_CreateString("mconv-flash"));
        ADD(j, "version", cJSON_CreateNumber(f->hdr.version));
        ADD(j, "page_size", cJSON_CreateNumber(f->hdr.page_size));
        ADD(j, "file_size", mc_cli_json_u64(f->file.size));
        DUP("source", cJSON_GetObjectItemCaseSensitive(m, "source"));
        ADD(j, "model_type", cJSON_CreateString(jstr(cfg, "model_type", "")));
        DUP("options", cJSON_GetObjectItemCaseSensitive(m, "options"));
        DUP("quantization", cJSON_GetObjectItemCaseSensitive(cfg, "quantization"));
        ADD(j, "experts_per_tok", cJSON_CreateNumber(f->experts_per_tok));
        ADD(j, "tensors", mc_cli_json_u64(f->n_tensors));
        if ((o = cJSON_AddObjectToObject(j, "pinned"))) {
            ADD(o, "offset", mc_cli_json_u64(f->pinned_offset));
            ADD(o, "nbytes", mc_cli_json_u64(f->pinned_nbytes));
        } else bad = 1;
        if ((o = cJSON_AddObjectToObject(j, "manifest"))) {
            ADD(o, "offset", mc_cli_json_u64(f->hdr.manifest_offset));
            ADD(o, "length", mc_cli_json_u64(f->hdr.manifest_length));
        } else bad = 1;
        if ((a = cJSON_AddArrayToObject(j, "ffn")))
            for (size_t i = 0; i < f->n_ffn && !bad; i++) {
                cJSON *e = cJSON_CreateObject();
                if (!e || !cJSON_AddItemToArray(a, e)) {
                    cJSON_Delete(e);
                    bad = 1;
                    break;
                }
                ADD(e, "layer", cJSON_CreateNumber(f->ffn[i].layer));
                ADD(e, "offset", mc_cli_json_u64(f->ffn[i].offset));
                ADD(e, "nbytes", mc_cli_json_u64(f->ffn[i].nbytes));
            }
        else bad = 1;
        if ((a = cJSON_AddArrayToObject(j, "experts")))
            for (size_t i = 0; i < f->n_experts && !bad; i++) {
                cJSON *e = cJSON_CreateObject();
                if (!e || !cJSON_AddItemToArray(a, e)) {
                    cJSON_Delete(e);
                    bad = 1;
                    break;
                }
                ADD(e, "layer", cJSON_CreateNumber(f->experts[i].layer));
                ADD(e, "offset", mc_cli_json_u64(f->experts[i].offset));
                ADD(e, "stride", mc_cli_json_u64(f->experts[i].stride));
                ADD(e, "n_experts", cJSON_CreateNumber(f->experts[i].n_experts));
            }
        else bad = 1;
        if ((o = cJSON_AddObjectToObject(j, "per_token"))) {
            ADD(o, "bytes", mc_cli_json_u64(c.token_bytes));
            ADD(o, "reads", mc_cli_json_u64(c.token_reads));
            ADD(o, "dense_bytes", mc_cli_json_u64(c.token_dense_bytes));
            ADD(o, "expert_bytes", mc_cli_json_u64(c.token_expert_bytes));
            ADD(o, "streamed_bytes", mc_cli_json_u64(c.streamed_bytes));
        } else bad = 1;
        DUP("qerr", cJSON_GetObjectItemCaseSensitive(m, "qerr"));
        DUP("qerr_summary", cJSON_GetObjectItemCaseSensitive(m, "qerr_summary"));
        mc_cli_json_exact(cJSON_GetObjectItemCaseSensitive(j, "qerr"));
        mc_cli_json_exact(cJSON_GetObjectItemCaseSensitive(j, "qerr_summary"));
    }
#undef DUP
#undef ADD
    char *text = bad ? NULL : cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) {
        fprintf(stderr, "mconv: %s: out of memory building JSON\n", path);
        return MC_EXIT_BAD_INPUT;
    }
    puts(text);
    free(text);
    return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}

int mc_cli_flash_inspect(const char *path, int json, const char *png)
{
    mc_error err = { MC_OK, "" };
    mc_flash *f = NULL;
    if (mc_flash_open(path, &f, &err)) return mc_cli_report(&err);
    if (png) {
        mc_image im;
        int rc = mc_flash_picture(f, &im, &err);
        if (!rc) rc = mc_png_write(&im, png, 1, &err);
        if (!rc) mc_image_free(&im);
        if (rc) {
            mc_flash_close(f);
            return mc_cli_report(&err);
        }
    }
    if (json) {
        int code = flash_json(f, path);
        mc_flash_close(f);
        return code;
    }
    const cJSON *m = mc_flash_manifest(f);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(m, "source");
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(m, "options");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(src, "files");
    char b1[32], b2[32], b3[32];
    mc_flash_cost c;
    mc_flash_token_cost(f, &c);
    printf("file:          %s\n", path);
    printf("format:        mconv .flash v%u (page %u)\n", f->hdr.version, f->hdr.page_size);
    printf("file size:     %llu (%s)\n", (unsigned long long)f->file.size, mc_cli_bytes(f->file.size, b1, sizeof b1));
    printf("source:        %s (%s)\n", cJSON_IsArray(files) && cJSON_GetArraySize(files) > 0 &&
                                               cJSON_IsString(cJSON_GetArrayItem(files, 0))
                                           ? cJSON_GetArrayItem(files, 0)->valuestring
                                           : "?",
           jstr(src, "format", "?"));
    printf("architecture:  %s (mlx-lm model_type %s)\n", jstr(src, "architecture", "?"), jstr(cfg, "model_type", "?"));
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    if (cJSON_IsObject(q)) {
        int per = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, q) per += cJSON_IsObject(e);
        printf("quantization:  MLX affine, %d bits, group size %d",
               cJSON_GetObjectItem(q, "bits") ? cJSON_GetObjectItem(q, "bits")->valueint : 0,
               cJSON_GetObjectItem(q, "group_size") ? cJSON_GetObjectItem(q, "group_size")->valueint : 0);
        if (per) printf(" (%d module%s with their own settings)", per, per == 1 ? "" : "s");
        printf("\n");
    } else {
        printf("quantization:  none\n");
    }
    printf("float dtype:   %s\n", jstr(opt, "dtype", "?"));
    printf("tensors:       %zu pinned/dense-FFN tensors, %zu dense layers, %zu MoE layers\n", f->n_tensors, f->n_ffn,
           f->n_experts);
    printf("pinned:        %llu bytes (%s) at offset %llu, one read\n", (unsigned long long)c.pinned_bytes,
           mc_cli_bytes(c.pinned_bytes, b1, sizeof b1), (unsigned long long)f->pinned_offset);
    printf("streamed:      %llu bytes (%s)\n", (unsigned long long)c.streamed_bytes,
           mc_cli_bytes(c.streamed_bytes, b1, sizeof b1));
    if (f->n_ffn) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t i = 0; i < f->n_ffn; i++) {
            if (f->ffn[i].nbytes < lo) lo = f->ffn[i].nbytes;
            if (f->ffn[i].nbytes > hi) hi = f->ffn[i].nbytes;
        }
        printf("dense layer:   %s%s%s per layer span\n", mc_cli_bytes(lo, b1, sizeof b1), lo == hi ? "" : " .. ",
               lo == hi ? "" : mc_cli_bytes(hi, b2, sizeof b2));
    }
    if (f->n_experts)
        printf("expert block:  %s (stride %llu), %u experts per layer, %d per token\n",
               mc_cli_bytes(f->experts[0].stride, b1, sizeof b1), (unsigned long long)f->experts[0].stride,
               f->experts[0].n_experts, c.experts_per_tok);
    printf("per token:     %llu bytes (%s) in %llu reads\n", (unsigned long long)c.token_bytes,
           mc_cli_bytes(c.token_bytes, b1, sizeof b1), (unsigned long long)c.token_reads);
    printf("  dense:       %llu bytes (%s) in %llu reads\n", (unsigned long long)c.token_dense_bytes,
           mc_cli_bytes(c.token_dense_bytes, b2, sizeof b2), (unsigned long long)c.token_dense_reads);
    printf("  experts:     %llu bytes (%s) in %llu reads\n", (unsigned long long)c.token_expert_bytes,
           mc_cli_bytes(c.token_expert_bytes, b3, sizeof b3), (unsigned long long)c.token_expert_reads);
    printf("manifest:      %llu bytes at offset %llu\n", (unsigned long long)f->hdr.manifest_length,
           (unsigned long long)f->hdr.manifest_offset);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m, "tokenizer");
    if (tok) printf("tokenizer:     %s\n", jstr(tok, "built", jstr(tok, "kind", "?")));
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tok, "approximate"))) {
        const cJSON *notes = cJSON_GetObjectItemCaseSensitive(tok, "notes");
        const cJSON *n0 = cJSON_GetArrayItem(notes, 0);
        printf("\nwarnings:\n  - the tokenizer is approximate: %s\n", cJSON_IsString(n0) ? n0->valuestring : "see the manifest");
    }
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(m, "qerr_summary");
    printf("\n");
    if (cJSON_IsObject(qs)) mc_cli_qerr_print(stdout, qs);
    else printf("quantization error: not recorded (converted with --no-qerr, or by an older mconv)\n");
    if (png) printf("picture:       %s\n", png);
    mc_flash_close(f);
    return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}

int mc_cli_flash_dump(const char *path, int json, const char *filter)
{
    mc_error err = { MC_OK, "" };
    mc_flash *f = NULL;
    char sh[128], hx[17];
    if (mc_flash_open(path, &f, &err)) return mc_cli_report(&err);
    if (json) {
        char *s = cJSON_Print(mc_flash_manifest(f));
        if (!s) {
            mc_flash_close(f);
            fprintf(stderr, "mconv: %s: out of memory\n", path);
            return MC_EXIT_BAD_INPUT;
        }
        printf("%s\n", s);
        free(s);
        mc_flash_close(f);
        return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
    }
    mc_flash_hex64(f->hdr.manifest_xxh3, hx);
    printf("header: version %u, page %u, manifest %llu+%llu, file size %llu, manifest xxh3 %s\n", f->hdr.version,
           f->hdr.page_size, (unsigned long long)f->hdr.manifest_offset, (unsigned long long)f->hdr.manifest_length,
           (unsigned long long)f->hdr.file_size, hx);
    printf("pinned: offset %llu, nbytes %llu\n\n", (unsigned long long)f->pinned_offset,
           (unsigned long long)f->pinned_nbytes);
    printf("%12s %10s %-5s %-16s %-6s %5s %-16s %s\n", "offset", "nbytes", "dtype", "shape", "role", "layer", "xxh3",
           "name");
    for (size_t i = 0; i < f->n_tensors; i++) {
        const mc_flash_tensor *t = &f->tensors[i];
        if (filter && fnmatch(filter, t->name, 0) != 0) continue;
        shape_str(t->shape, t->n_dims, sh, sizeof sh);
        mc_flash_hex64(t->xxh3, hx);
        printf("%12llu %10llu %-5s %-16s %-6s %5d %-16s %s\n", (unsigned long long)t->offset,
               (unsigned long long)t->nbytes, mc_type_get(t->dtype) ? mc_type_get(t->dtype)->st_name : "?", sh,
               t->role == MC_FLASH_FFN ? "ffn" : "pinned", t->layer, hx, t->name);
    }
    if (f->n_ffn) printf("\nffn spans:\n");
    for (size_t i = 0; i < f->n_ffn; i++)
        printf("  layer %3d: offset %llu, nbytes %llu\n", f->ffn[i].layer, (unsigned long long)f->ffn[i].offset,
               (unsigned long long)f->ffn[i].nbytes);
    for (size_t i = 0; i < f->n_experts; i++) {
        const mc_flash_experts *x = &f->experts[i];
        printf("\nexperts of layer %d: offset %llu, %u experts, stride %llu\n", x->layer,
               (unsigned long long)x->offset, x->n_experts, (unsigned long long)x->stride);
        for (size_t j = 0; j < x->n_tensors; j++) {
            const mc_flash_etensor *t = &x->tensors[j];
            if (filter && fnmatch(filter, t->name, 0) != 0) continue;
            shape_str(t->shape, t->n_dims, sh, sizeof sh);
            printf("  +%-10llu %10llu %-5s %-16s %s\n", (unsigned long long)t->inner_offset,
                   (unsigned long long)t->nbytes, mc_type_get(t->dtype) ? mc_type_get(t->dtype)->st_name : "?", sh,
                   t->name);
        }
        printf("  block checksums:");
        for (uint32_t e = 0; e < x->n_experts; e++) {
            mc_flash_hex64(x->xxh3[e], hx);
            printf("%s%s", e % 4 ? " " : "\n    ", hx);
        }
        printf("\n");
    }
    mc_flash_close(f);
    return fflush(stdout) == 0 ? MC_EXIT_OK : MC_EXIT_BAD_INPUT;
}
