#include "mc_source_meta.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>
#include <zstd.h>

#include "mc_flash.h"
#include "mc_gguf.h"
#include "mc_safetensors.h"

/* zstd level: good ratios on JSON and GGUF string arrays at a few MB/s at
 * worst; the output depends on libzstd's version (docs/FORMAT.md). */
#define MC_SMETA_LEVEL 9
#define MC_SMETA_CHUNK ((size_t)1 << 20)

/* Files beside safetensors weights that are carried. */
static const char *const g_exts[] = { ".json", ".jinja", ".txt", ".model", ".tiktoken", ".md", ".yaml", ".yml" };

typedef struct writer {
    mc_outfile *out;
    uint64_t pos;        /* next byte of the region */
    ZSTD_CCtx *cc;
    XXH3_state_t *hs;
    unsigned char *in, *zb;
    size_t zcap;
    cJSON *blobs;
} writer;

/* One blob: prefix bytes, then bytes [off, off+len) of file f (f may be NULL). */
static int put_blob(writer *w, const char *name, const char *kind, const unsigned char *prefix, size_t plen,
                    const mc_file *f, uint64_t off, uint64_t len, mc_error *err)
{
    uint64_t start = w->pos, raw = 0, done = 0;
    int rc;
    if (XXH3_64bits_reset(w->hs) == XXH_ERROR) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    /* without an output: the checksum only (mc_source_meta_expect) */
    if (w->out && (ZSTD_isError(ZSTD_CCtx_reset(w->cc, ZSTD_reset_session_and_parameters)) ||
                   ZSTD_isError(ZSTD_CCtx_setParameter(w->cc, ZSTD_c_compressionLevel, MC_SMETA_LEVEL)) ||
                   ZSTD_isError(ZSTD_CCtx_setParameter(w->cc, ZSTD_c_checksumFlag, 0)) ||
                   ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(w->cc, (unsigned long long)(plen + len)))))
        return mc_error_set(err, MC_ERR_NOMEM, "zstd: cannot start a frame for %s", name);
    for (int last = 0; !last;) {
        const void *src;
        size_t n;
        if (raw < plen) {
            src = prefix;
            n = plen;
        } else {
            uint64_t left = len - done;
            n = left < MC_SMETA_CHUNK ? (size_t)left : MC_SMETA_CHUNK;
            if (n && (rc = mc_file_pread(f, off + done, w->in, n, err))) return rc;
            done += n;
            src = w->in;
        }
        raw += n;
        last = done == len;
        XXH3_64bits_update(w->hs, src, n);
        if (!w->out) continue;
        ZSTD_inBuffer ib = { src, n, 0 };
        ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
        size_t r;
        do {
            ZSTD_outBuffer ob = { w->zb, w->zcap, 0 };
            r = ZSTD_compressStream2(w->cc, &ob, &ib, mode);
            if (ZSTD_isError(r)) return mc_error_set(err, MC_ERR_IO, "zstd: %s: %s", name, ZSTD_getErrorName(r));
            if (ob.pos && (rc = mc_outfile_pwrite(w->out, w->pos, w->zb, ob.pos, err))) return rc;
            w->pos += ob.pos;
        } while (mode == ZSTD_e_end ? r != 0 : ib.pos < ib.size);
    }
    char hx[17];
    mc_flash_hex64(XXH3_64bits_digest(w->hs), hx);
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(w->blobs, e) || !cJSON_AddStringToObject(e, "name", name) ||
        !cJSON_AddStringToObject(e, "kind", kind) || !cJSON_AddNumberToObject(e, "offset", (double)start) ||
        !cJSON_AddNumberToObject(e, "size", (double)(w->pos - start)) ||
        !cJSON_AddNumberToObject(e, "raw_size", (double)raw) || !cJSON_AddStringToObject(e, "xxh3", hx))
        return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    return 0;
}

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static int gguf_blobs(writer *w, const mc_gguf *g, mc_error *err)
{
    for (uint32_t s = 0; s < g->n_shards; s++) {
        const mc_gguf_shard *sh = &g->shards[s];
        unsigned char hdr[24];
        int lw = sh->version == 1 ? 4 : 8; /* GGUF v1 counts are u32 */
        size_t hl = 8 + 2 * (size_t)lw;
        memcpy(hdr, "GGUF", 4);
        put_le(hdr + 4, sh->version, 4);
        put_le(hdr + 8, 0, lw);
        put_le(hdr + 8 + lw, sh->n_kv, lw);
        if (sh->kv_end < sh->kv_begin || sh->kv_end > sh->file.size)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: key/value section %llu..%llu unusable", sh->file.path,
                                (unsigned long long)sh->kv_begin, (unsigned long long)sh->kv_end);
        int rc = put_blob(w, base_of(sh->file.path ? sh->file.path : g->path), "gguf-kv", hdr, hl, &sh->file,
                          sh->kv_begin, sh->kv_end - sh->kv_begin, err);
        if (rc) return rc;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int carried_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.') return 0;
    for (size_t i = 0; i < sizeof g_exts / sizeof g_exts[0]; i++) {
        size_t k = strlen(g_exts[i]);
        if (l > k && !strcmp(n + l - k, g_exts[i])) return 1;
    }
    return 0;
}

/* The carried files of folder dir, by name. */
static int folder_blobs(writer *w, const char *dir, mc_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!d) return mc_error_set(err, MC_ERR_IO, "%s: cannot list the folder", dir);
    while ((de = readdir(d)) != NULL) {
        if (!carried_name(de->d_name)) continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *nn);
            if (!nn) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); break; }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); break; }
        n++;
    }
    closedir(d);
    if (!rc && n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; !rc && i < n; i++) {
        char *p = mc_path_join(dir, names[i]);
        struct stat st;
        mc_file f = { -1, 0, NULL };
        if (!p) { rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory"); break; }
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (!(rc = mc_file_open(&f, p, err))) rc = put_blob(w, names[i], "file", NULL, 0, &f, 0, f.size, err);
            mc_file_close(&f);
        }
        free(p);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int st_blobs(writer *w, const mc_st *st, mc_error *err)
{
    for (uint32_t i = 0; i < st->n_files; i++) {
        const mc_st_file *sf = &st->files[i];
        if (sf->file.fd < 0) continue; /* an in-memory image has no file */
        int rc = put_blob(w, sf->name ? sf->name : base_of(sf->file.path), "safetensors-header", NULL, 0, &sf->file, 0,
                          sf->data_offset, err);
        if (rc) return rc;
    }
    char *dir = NULL;
    if (st->is_dir) dir = strdup(st->path);
    else {
        const char *s = strrchr(st->path, '/');
        dir = s ? strndup(st->path, (size_t)(s - st->path) + (s == st->path)) : strdup(".");
    }
    if (!dir) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    int rc = folder_blobs(w, dir, err);
    free(dir);
    return rc;
}

int mc_source_meta_write(const mc_model *m, mc_outfile *out, uint64_t region_off, uint64_t *region_end, cJSON **json,
                         mc_error *err)
{
    writer w;
    int rc = 0;
    memset(&w, 0, sizeof w);
    *region_end = region_off;
    *json = NULL;
    if (!m->gguf && !m->st) return 0;
    w.out = out;
    w.pos = region_off;
    w.cc = out ? ZSTD_createCCtx() : NULL;
    if (out && !w.cc) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    w.hs = XXH3_createState();
    w.in = malloc(MC_SMETA_CHUNK);
    w.zcap = ZSTD_CStreamOutSize();
    w.zb = malloc(w.zcap);
    cJSON *j = cJSON_CreateObject();
    w.blobs = cJSON_CreateArray();
    if (!w.hs || !w.in || !w.zb || !j || !w.blobs) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    rc = m->gguf ? gguf_blobs(&w, m->gguf, err) : st_blobs(&w, m->st, err);
    if (rc) goto done;
    if (cJSON_GetArraySize(w.blobs) == 0) goto done;
    *region_end = mc_flash_align(w.pos);
    if (!cJSON_AddNumberToObject(j, "offset", (double)region_off) ||
        !cJSON_AddNumberToObject(j, "nbytes", (double)(*region_end - region_off)) ||
        !cJSON_AddStringToObject(j, "compression", "zstd") || !cJSON_AddStringToObject(j, "checksum", "xxh3-64 of the raw bytes")) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    cJSON_AddItemToObject(j, "blobs", w.blobs);
    w.blobs = NULL;
    *json = j;
    j = NULL;
done:
    if (rc) *region_end = region_off;
    cJSON_Delete(j);
    cJSON_Delete(w.blobs);
    ZSTD_freeCCtx(w.cc);
    XXH3_freeState(w.hs);
    free(w.in);
    free(w.zb);
    return rc;
}

int mc_source_meta_expect(const mc_model *m, cJSON **json, mc_error *err)
{
    uint64_t end;
    return mc_source_meta_write(m, NULL, MC_FLASH_PAGE, &end, json, err);
}
