/* The source's metadata carried in .flash files (docs/FORMAT.md "Source
 * metadata").
 *
 * For every corpus model (each GGUF of models/, hf/ and hf-sharded/):
 * `mconv IN OUT.flash`, then:
 *  - GGUF: one "gguf-kv" blob per shard; decompressed, its bytes after the
 *    24-byte header are the source file's bytes from offset 24 (the counts'
 *    end) on, byte for byte, and right after them the source holds its first
 *    tensor info (the name length and name of the first tensor mc_gguf
 *    lists): the blob ends exactly where the key/value records end. Its
 *    header says GGUF, the source's version, 0 tensors and the source's key
 *    count (read from the source file's own bytes 4..24).
 *  - safetensors: one "safetensors-header" blob per file equal to the file's
 *    first 8 + N bytes (N read from the file here), and one "file" blob per
 *    .json, .jinja, .txt, .model... file beside the weights equal to it,
 *    no other blobs.
 *  - `mconv verify OUT` is sound; every blob lies inside the 16 KiB-aligned
 *    region, which starts on a page and ends where the manifest starts.
 *  - `mconv dump OUT --source-kv` prints, for a GGUF, exactly the key lines
 *    `mconv dump IN` prints (same text, same order), for safetensors the
 *    __metadata__ keys.
 * `mconv verify OUT --source IN` finds it identical (one model of each
 * kind) and names config.json when the source's differs.
 * Corruption (one model of each kind): a byte flipped inside a blob is
 * caught by `mconv verify` (exit 3 naming the blob) and refused by
 * dump --source-kv.
 */
#include "mc_test.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "mc_flash.h"
#include "mc_flash_meta.h"
#include "mc_gguf.h"

static int g_models, g_blobs, g_corrupt;

static int carried(const char *n)
{
    static const char *const ext[] = { ".json", ".jinja", ".txt", ".model", ".tiktoken", ".md", ".yaml", ".yml" };
    size_t l = strlen(n);
    if (n[0] == '.') return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (l > k && !strcmp(n + l - k, ext[i])) return 1;
    }
    return 0;
}

static const mc_flash_blob *find_blob(const mc_flash_meta *m, const char *name, const char *kind)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->blobs[i].name, name) && !strcmp(m->blobs[i].kind, kind)) return &m->blobs[i];
    return NULL;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Lines of `text` that start with two spaces and a quote (dump's key lines). */
static char *key_lines(const char *text)
{
    size_t n = strlen(text), k = 0;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p + 1) : strlen(p);
        if (l > 3 && p[0] == ' ' && p[1] == ' ' && p[2] == '"') {
            memcpy(out + k, p, l);
            k += l;
        }
        p += l;
    }
    out[k] = 0;
    return out;
}

static void check_gguf(const char *src, const char *out, const mc_flash *f, const mc_flash_meta *m)
{
    mc_gguf *g = NULL;
    mc_error err = { MC_OK, "" };
    if (mc_gguf_open(src, &g, &err)) {
        CHECKF(0, "%s: %s", src, err.msg);
        return;
    }
    CHECKF(m->n == g->n_shards, "%s: %zu blobs for %u shards", out, m->n, g->n_shards);
    for (uint32_t s = 0; s < g->n_shards; s++) {
        const char *path = g->shards[s].file.path, *bn = strrchr(path, '/');
        bn = bn ? bn + 1 : path;
        const mc_flash_blob *b = find_blob(m, bn, "gguf-kv");
        CHECKF(b != NULL, "%s: no gguf-kv blob %s", out, bn);
        if (!b) continue;
        unsigned char *d = NULL, *fb = NULL;
        size_t n = 0, fn = 0;
        if (mc_flash_meta_load(&f->file, b, &d, &n, &err) || !(fb = mc_test_read_file(path, &fn))) {
            CHECKF(0, "%s: %s: %s", out, bn, err.msg);
            free(d);
            continue;
        }
        g_blobs++;
        uint32_t ver = (uint32_t)le(fb + 4, 4);
        int lw = ver == 1 ? 4 : 8;
        size_t hl = 8 + 2 * (size_t)lw;
        CHECKF(n > hl && n <= fn && !memcmp(d, "GGUF", 4) && le(d + 4, 4) == ver && le(d + 8, lw) == 0 &&
                   le(d + 8 + lw, lw) == le(fb + 8 + lw, lw),
               "%s: %s: blob header", out, bn);
        CHECKF(n <= fn && !memcmp(d + hl, fb + hl, n - hl), "%s: %s: key/value bytes differ from the source", out, bn);
        /* right after them, the first tensor info of this shard */
        const mc_gguf_tensor *t0 = NULL;
        for (uint64_t i = 0; i < g->n_tensors && !t0; i++)
            if (g->tensors[i].shard == s) t0 = &g->tensors[i];
        if (t0 && n + (size_t)lw + t0->name.len <= fn)
            CHECKF(le(fb + n, lw) == t0->name.len && !memcmp(fb + n + lw, t0->name.s, t0->name.len),
                   "%s: %s: the source's first tensor info does not follow the carried records", out, bn);
        free(d);
        free(fb);
    }
    /* dump --source-kv prints the keys as dump prints the source */
    char *a = NULL, *b2 = NULL;
    int ra = mc_test_run(&a, "'%s' dump '%s' --no-tensors", mc_test_mconv(), src);
    int rb = mc_test_run(&b2, "'%s' dump '%s' --source-kv", mc_test_mconv(), out);
    char *ka = a ? key_lines(a) : NULL, *kb = b2 ? key_lines(b2) : NULL;
    if (g->n_shards == 1)
        CHECKF(ra == 0 && rb == 0 && ka && kb && ka[0] && !strcmp(ka, kb), "%s: dump --source-kv keys differ from "
               "dump of the source (exit %d/%d)", out, ra, rb);
    else /* each shard's keys in turn; the first shard's are dump's */
        CHECKF(ra == 0 && rb == 0 && ka && kb && !strncmp(ka, kb, strlen(ka)), "%s: dump --source-kv", out);
    free(a);
    free(b2);
    free(ka);
    free(kb);
    mc_gguf_close(g);
}

static void check_st(const char *src, const char *out, const mc_flash *f, const mc_flash_meta *m)
{
    DIR *d = opendir(src);
    struct dirent *de;
    size_t want = 0;
    mc_error err = { MC_OK, "" };
    while (d && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        int st = l > 12 && !strcmp(nm + l - 12, ".safetensors");
        if (!st && !carried(nm)) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", src, nm);
        size_t fn = 0, n = 0;
        unsigned char *fb = mc_test_read_file(p, &fn), *bd = NULL;
        const mc_flash_blob *b = find_blob(m, nm, st ? "safetensors-header" : "file");
        want++;
        CHECKF(fb && b, "%s: no blob for %s", out, nm);
        if (fb && b && !mc_flash_meta_load(&f->file, b, &bd, &n, &err)) {
            size_t expect = st ? (size_t)(8 + le(fb, 8)) : fn;
            g_blobs++;
            CHECKF(expect <= fn && n == expect && !memcmp(bd, fb, n), "%s: blob %s is not the source's %zu bytes", out,
                   nm, expect);
        } else if (b) {
            CHECKF(0, "%s: %s: %s", out, nm, err.msg);
        }
        free(fb);
        free(bd);
    }
    if (d) closedir(d);
    CHECKF(m->n == want, "%s: %zu blobs, the folder has %zu files to carry", out, m->n, want);
    char *t = NULL;
    int rc = mc_test_run(&t, "'%s' dump '%s' --source-kv", mc_test_mconv(), out);
    CHECKF(rc == 0 && t && strstr(t, "source safetensors-header: ") && strstr(t, "\"format\" string = \"pt\"") &&
               strstr(t, "source file: config.json"),
           "%s: dump --source-kv: %s", out, t ? t : "");
    free(t);
}

/* Flip one byte inside the first blob, then set a wrong raw_size: both caught. */
static void check_corrupt(const char *out, const mc_flash_meta *m, const char *label)
{
    size_t n = 0;
    unsigned char *d = mc_test_read_file(out, &n);
    char bad[1200], *log = NULL;
    if (!d || !m->n) {
        free(d);
        return;
    }
    snprintf(bad, sizeof bad, "%s/corrupt-%s.flash", mc_test_tmpdir(), label);
    const mc_flash_blob *b = &m->blobs[0];
    d[b->offset + b->size / 2] ^= 0x5a;
    mc_test_write_file(bad, d, n);
    int rc = mc_test_run(&log, "'%s' verify '%s'", mc_test_mconv(), bad);
    CHECKF(rc == 3 && log && strstr(log, b->name), "%s: a flipped blob byte: verify exit %d: %s", label, rc,
           log ? log : "");
    free(log);
    rc = mc_test_run(&log, "'%s' dump '%s' --source-kv", mc_test_mconv(), bad);
    CHECKF(rc != 0 && log && strstr(log, b->name), "%s: dump --source-kv of a flipped blob: exit %d", label, rc);
    free(log);
    g_corrupt++;
    free(d);
}

static void one(const char *src, int gguf, void *ctx)
{
    (void)ctx;
    char out[1200], *log = NULL;
    static int k;
    snprintf(out, sizeof out, "%s/m%d.flash", mc_test_tmpdir(), k++);
    int rc = mc_test_run(&log, "'%s' '%s' '%s' -q", mc_test_mconv(), src, out);
    if (rc) {
        if (log && (strstr(log, "not supported") || strstr(log, "no such"))) mc_test_skip("%s: %s", src, log);
        else CHECKF(0, "%s: convert exit %d: %s", src, rc, log ? log : "");
        free(log);
        return;
    }
    free(log);
    rc = mc_test_run(&log, "'%s' verify '%s'", mc_test_mconv(), out);
    CHECKF(rc == 0, "%s: verify: %s", out, log ? log : "");
    free(log);
    mc_flash *f = NULL;
    mc_flash_meta m;
    mc_error err = { MC_OK, "" };
    memset(&m, 0, sizeof m);
    if (mc_flash_open(out, &f, &err) || mc_flash_meta_parse(f->manifest, f->file.size, &m, &err)) {
        CHECKF(0, "%s: %s", out, err.msg);
        mc_flash_close(f);
        return;
    }
    g_models++;
    CHECKF(m.n > 0 && m.offset % 16384 == 0 && m.nbytes % 16384 == 0 && m.offset + m.nbytes == f->hdr.manifest_offset,
           "%s: region %llu+%llu, manifest at %llu", out, (unsigned long long)m.offset, (unsigned long long)m.nbytes,
           (unsigned long long)f->hdr.manifest_offset);
    if (gguf) check_gguf(src, out, f, &m);
    else check_st(src, out, f, &m);
    static int did_gguf, did_st;
    if ((gguf && !did_gguf) || (!gguf && !did_st)) {
        rc = mc_test_run(&log, "'%s' verify '%s' --source '%s'", mc_test_mconv(), out, src);
        CHECKF(rc == 0 && log && strstr(log, "identical to a conversion of the source"), "%s: verify --source: %s",
               out, log ? log : "");
        free(log);
    }
    if (gguf && !did_gguf++) check_corrupt(out, &m, "gguf");
    if (!gguf && !did_st++) {
        check_corrupt(out, &m, "st");
        /* a source whose config.json changed (one more newline: the same
         * conversion) no longer matches what the file carries */
        char *log2 = NULL;
        rc = mc_test_run(&log2, "cp -R '%s' '%s/edited' && printf '\\n' >> '%s/edited/config.json' && "
                         "'%s' verify '%s' --source '%s/edited'", src, mc_test_tmpdir(), mc_test_tmpdir(),
                         mc_test_mconv(), out, mc_test_tmpdir());
        CHECKF(rc == 3 && log2 && strstr(log2, "source metadata config.json (file) differs from the source"),
               "%s: verify --source against an edited config.json: exit %d: %s", out, rc, log2 ? log2 : "");
        free(log2);
    }
    mc_flash_meta_free(&m);
    mc_flash_close(f);
}

int main(void)
{
    if (!mc_test_each_corpus_model(one, NULL)) mc_test_skip("corpus absent: source metadata not checked");
    const char *sh = mc_test_corpus_file("models/qwen3_moe/hf-sharded");
    if (sh) one(sh, 0, NULL);
    printf("%d conversions, %d blobs equal to the source's bytes, %d corruptions caught\n", g_models, g_blobs,
           g_corrupt);
    return mc_test_finish("test_source_meta");
}
