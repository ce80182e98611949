#include "mc_flash_meta.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "mc_flash.h"

void mc_flash_meta_free(mc_flash_meta *m)
{
    if (!m) return;
    free(m->blobs);
    memset(m, 0, sizeof *m);
}

int mc_flash_meta_parse(const cJSON *manifest, uint64_t file_size, mc_flash_meta *out, mc_error *err)
{
    memset(out, 0, sizeof *out);
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(manifest, "source_meta");
    if (!sm) return 0;
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(sm, "blobs"), *e;
    uint64_t end;
    if (!cJSON_IsObject(sm) || mc_flash_json_u64(sm, "offset", &out->offset) || mc_flash_json_u64(sm, "nbytes", &out->nbytes) ||
        !cJSON_IsArray(bl))
        return mc_error_set(err, MC_ERR_FORMAT, "manifest: source_meta needs offset, nbytes and blobs");
    if (out->offset % MC_FLASH_PAGE || out->nbytes % MC_FLASH_PAGE || mc_add_u64(out->offset, out->nbytes, &end) ||
        end > file_size || out->offset < MC_FLASH_PAGE)
        return mc_error_set(err, MC_ERR_FORMAT,
                            "manifest: source_meta region %llu+%llu is not 16 KiB-aligned inside the file (%llu bytes)",
                            (unsigned long long)out->offset, (unsigned long long)out->nbytes,
                            (unsigned long long)file_size);
    int n = cJSON_GetArraySize(bl);
    if (n < 0 || (uint64_t)n > out->nbytes) /* every blob holds at least one byte */
        return mc_error_set(err, MC_ERR_FORMAT, "manifest: source_meta lists %d blobs in %llu bytes", n,
                            (unsigned long long)out->nbytes);
    out->blobs = calloc(n ? (size_t)n : 1, sizeof *out->blobs);
    if (!out->blobs) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(e, bl) {
        mc_flash_blob *b = &out->blobs[out->n];
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *kd = cJSON_GetObjectItemCaseSensitive(e, "kind");
        const cJSON *hx = cJSON_GetObjectItemCaseSensitive(e, "xxh3");
        uint64_t be;
        if (!cJSON_IsString(nm) || !cJSON_IsString(kd) || !cJSON_IsString(hx) || mc_flash_json_u64(e, "offset", &b->offset) ||
            mc_flash_json_u64(e, "size", &b->size) || mc_flash_json_u64(e, "raw_size", &b->raw_size) ||
            mc_flash_parse_hex64(hx->valuestring, &b->xxh3)) {
            int k = (int)out->n;
            mc_flash_meta_free(out);
            return mc_error_set(err, MC_ERR_FORMAT,
                                "manifest: source_meta blob %d needs name, kind, offset, size, raw_size and xxh3", k);
        }
        b->name = nm->valuestring;
        b->kind = kd->valuestring;
        if (b->size == 0 || mc_add_u64(b->offset, b->size, &be) || b->offset < out->offset || be > end) {
            int k = (int)out->n;
            char nmb[128];
            snprintf(nmb, sizeof nmb, "%s", b->name);
            mc_flash_meta_free(out);
            return mc_error_set(err, MC_ERR_FORMAT, "manifest: source_meta blob %d (%s) lies outside its region", k,
                                nmb);
        }
        out->n++;
    }
    return 0;
}

int mc_flash_meta_stream(const mc_file *f, const mc_flash_blob *b, mc_flash_meta_sink sink, void *ctx, mc_error *err)
{
    size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
    unsigned char *in = malloc(in_cap), *outb = malloc(out_cap);
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    XXH3_state_t *hs = XXH3_createState();
    uint64_t pos = 0, raw = 0;
    size_t ret = 1;
    int rc = 0;
    if (!in || !outb || !dc || !hs || XXH3_64bits_reset(hs) == XXH_ERROR) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* one frame: refuse window sizes beyond 128 MiB (the writer's are far smaller) */
    ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, 27);
    while (pos < b->size) {
        size_t n = b->size - pos < in_cap ? (size_t)(b->size - pos) : in_cap;
        if ((rc = mc_file_pread(f, b->offset + pos, in, n, err))) goto done;
        pos += n;
        ZSTD_inBuffer ib = { in, n, 0 };
        while (ib.pos < ib.size) {
            if (ret == 0) {
                rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: bytes after the end of its zstd frame",
                                  b->name);
                goto done;
            }
            ZSTD_outBuffer ob = { outb, out_cap, 0 };
            ret = ZSTD_decompressStream(dc, &ob, &ib);
            if (ZSTD_isError(ret)) {
                rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: corrupt zstd data (%s)", b->name,
                                  ZSTD_getErrorName(ret));
                goto done;
            }
            raw += ob.pos;
            if (raw > b->raw_size) {
                rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: decompresses past its raw size %llu",
                                  b->name, (unsigned long long)b->raw_size);
                goto done;
            }
            XXH3_64bits_update(hs, outb, ob.pos);
            if (sink && ob.pos && (rc = sink(ctx, outb, ob.pos))) goto done;
        }
    }
    /* flush what the decoder still holds */
    while (ret != 0) {
        ZSTD_inBuffer ib = { in, 0, 0 };
        ZSTD_outBuffer ob = { outb, out_cap, 0 };
        ret = ZSTD_decompressStream(dc, &ob, &ib);
        if (ZSTD_isError(ret) || (ob.pos == 0 && ret != 0)) {
            rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: its zstd frame is truncated", b->name);
            goto done;
        }
        raw += ob.pos;
        if (raw > b->raw_size) {
            rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: decompresses past its raw size %llu", b->name,
                              (unsigned long long)b->raw_size);
            goto done;
        }
        XXH3_64bits_update(hs, outb, ob.pos);
        if (sink && ob.pos && (rc = sink(ctx, outb, ob.pos))) goto done;
    }
    if (raw != b->raw_size)
        rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: %llu bytes decompressed, the manifest says %llu",
                          b->name, (unsigned long long)raw, (unsigned long long)b->raw_size);
    else if (XXH3_64bits_digest(hs) != b->xxh3)
        rc = mc_error_set(err, MC_ERR_CHECKSUM, "source metadata %s: checksum mismatch", b->name);
done:
    free(in);
    free(outb);
    ZSTD_freeDCtx(dc);
    XXH3_freeState(hs);
    return rc;
}

typedef struct membuf {
    unsigned char *p;
    size_t n, cap;
} membuf;

static int to_mem(void *ctx, const void *data, size_t n)
{
    membuf *m = ctx;
    if (n > m->cap - m->n) return MC_ERR_CHECKSUM; /* cannot happen: raw_size bounds it */
    memcpy(m->p + m->n, data, n);
    m->n += n;
    return 0;
}

int mc_flash_meta_load(const mc_file *f, const mc_flash_blob *b, unsigned char **out, size_t *n, mc_error *err)
{
    *out = NULL;
    *n = 0;
    if (b->raw_size > MC_FLASH_META_LOAD_MAX)
        return mc_error_set(err, MC_ERR_UNSUPPORTED, "source metadata %s: %llu bytes, more than %llu to load", b->name,
                            (unsigned long long)b->raw_size, (unsigned long long)MC_FLASH_META_LOAD_MAX);
    membuf m = { malloc((size_t)b->raw_size + 1), 0, (size_t)b->raw_size };
    if (!m.p) return mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    int rc = mc_flash_meta_stream(f, b, to_mem, &m, err);
    if (rc) {
        if (rc == MC_ERR_CHECKSUM && !err->msg[0]) mc_error_set(err, rc, "source metadata %s: corrupt", b->name);
        free(m.p);
        return rc;
    }
    m.p[m.n] = 0;
    *out = m.p;
    *n = m.n;
    return 0;
}
