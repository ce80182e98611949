/* The public .flash reader (include/mconv/flash.h) against `mconv --layout
 * mlx` on every corpus model: each model under ../shared/corpus/models (every
 * GGUF and hf/) and ../shared/corpus-new/models, the real-vocabulary GGUF
 * corpus/external/gguf/llama-2-tiny-random.gguf, and an hf folder carrying
 * the real Qwen3 tokenizer files, converted once to .flash and once to an mlx
 * folder (small shards). The .flash is read through the public API only,
 * with direct I/O and checksums on: the pinned region in one read, every
 * dense span, every expert (k at a time, in a shuffled order); every tensor
 * must equal the mlx folder's bit for bit (dtype, shape and bytes; experts
 * slice by slice against the stacked tensor), the table must name every
 * tensor of the folder once, config.json must be byte-identical and the
 * tokenizer files equal (byte-identical when built from a GGUF, the same
 * JSON when copied from a folder). Then a flipped byte in an expert block
 * fails the read with checksums and reads fine without.
 *
 * The mlx folder is parsed here by hand (u64 length + cJSON header), no
 * mconv code. Architectures the converter does not support yet are
 * reported as skips. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "mc_test.h"
#include "mc_test_flashgen.h"
#include "mconv/flash.h"

typedef struct ment {
    char *name, *file, *dtype;
    uint32_t n_dims;
    uint64_t shape[6];
    uint64_t off, nbytes; /* absolute in file */
    int seen;
} ment;

typedef struct mfolder {
    ment *e;
    size_t n;
} mfolder;

static int g_models, g_tensors, g_slices, g_files;

static void mfolder_free(mfolder *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].name);
        free(m->e[i].file);
        free(m->e[i].dtype);
    }
    free(m->e);
    m->e = NULL;
    m->n = 0;
}

/* Every tensor of every shard the index names. */
static int mfolder_load(const char *dir, mfolder *m)
{
    char p[4400];
    memset(m, 0, sizeof *m);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    cJSON *idx = mc_test_read_json(p), *w, *shards = cJSON_CreateObject();
    if (!idx) return -1;
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(idx, "weight_map"))
        if (cJSON_IsString(w) && !cJSON_GetObjectItem(shards, w->valuestring))
            cJSON_AddTrueToObject(shards, w->valuestring);
    cJSON_ArrayForEach(w, shards) {
        snprintf(p, sizeof p, "%s/%s", dir, w->string);
        unsigned char *l = mc_test_read_range(p, 0, 8);
        if (!l) break;
        uint64_t hl = mc_test_le64(l);
        free(l);
        unsigned char *h = mc_test_read_range(p, 8, hl);
        cJSON *hdr = h ? cJSON_ParseWithLength((const char *)h, (size_t)hl) : NULL, *t, *d;
        free(h);
        if (!hdr) break;
        cJSON_ArrayForEach(t, hdr) {
            if (!strcmp(t->string, "__metadata__")) continue;
            m->e = realloc(m->e, (m->n + 1) * sizeof *m->e);
            ment *e = &m->e[m->n++];
            memset(e, 0, sizeof *e);
            e->name = strdup(t->string);
            e->file = strdup(p);
            e->dtype = strdup(cJSON_GetObjectItem(t, "dtype")->valuestring);
            cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "shape")) e->shape[e->n_dims++] = (uint64_t)d->valuedouble;
            cJSON *o = cJSON_GetObjectItem(t, "data_offsets");
            e->off = 8 + hl + (uint64_t)cJSON_GetArrayItem(o, 0)->valuedouble;
            e->nbytes = (uint64_t)cJSON_GetArrayItem(o, 1)->valuedouble - (e->off - 8 - hl);
        }
        cJSON_Delete(hdr);
    }
    cJSON_Delete(shards);
    cJSON_Delete(idx);
    return m->n ? 0 : -1;
}

static ment *mfind(mfolder *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->e[i].name, name)) return &m->e[i];
    return NULL;
}

/* One table entry against the folder's tensor: name, dtype, shape. */
static ment *match(const char *src, mfolder *m, const mc_flash_reader_tensor *t)
{
    ment *e = mfind(m, t->name);
    CHECKF(e != NULL, "%s: %s is not in the mlx folder", src, t->name);
    if (!e) return NULL;
    e->seen++;
    CHECKF(!strcmp(e->dtype, t->dtype), "%s: %s dtype %s vs %s", src, t->name, t->dtype, e->dtype);
    int same = e->n_dims == t->n_dims;
    for (uint32_t d = 0; same && d < e->n_dims; d++) same = e->shape[d] == t->shape[d];
    CHECKF(same, "%s: %s shape differs", src, t->name);
    uint64_t slices = t->kind == MC_FLASH_READER_EXPERT ? t->shape[0] : 1;
    CHECKF(e->nbytes == t->nbytes * slices, "%s: %s: %llu bytes vs %llu", src, t->name,
           (unsigned long long)(t->nbytes * slices), (unsigned long long)e->nbytes);
    return e;
}

static void same_bytes(const char *src, const ment *e, uint64_t off, const unsigned char *got, uint64_t n,
                       const char *what)
{
    unsigned char *want = mc_test_read_range(e->file, e->off + off, n);
    CHECKF(want && memcmp(want, got, (size_t)n) == 0, "%s: %s%s differs from the mlx folder", src, e->name, what);
    free(want);
}

/* Tokenizer and config files against the mlx folder. */
static void check_files(const char *src, mc_flash_reader *r, const char *mlx, int gguf)
{
    char p[4400];
    size_t n = 0;
    snprintf(p, sizeof p, "%s/config.json", mlx);
    unsigned char *cfg = mc_test_read_file(p, &n);
    CHECKF(cfg && n == strlen(mc_flash_reader_config_json(r)) && !memcmp(cfg, mc_flash_reader_config_json(r), n),
           "%s: config.json differs from the mlx folder's", src);
    free(cfg);
    for (size_t i = 1; i < mc_flash_reader_n_files(r); i++) {
        const char *name = mc_flash_reader_file_name(r, i);
        size_t len = 0;
        const char *txt = mc_flash_reader_file_text(r, i, &len);
        snprintf(p, sizeof p, "%s/%s", mlx, name);
        unsigned char *want = mc_test_read_file(p, &n);
        CHECKF(want != NULL, "%s: %s is not in the mlx folder", src, name);
        if (!want) continue;
        g_files++;
        size_t nl = strlen(name);
        if (gguf || nl < 5 || strcmp(name + nl - 5, ".json")) {
            CHECKF(n == len && !memcmp(want, txt, n), "%s: %s differs from the mlx folder's", src, name);
        } else {
            /* the same JSON, keys in the same order: both parsed and printed
             * (cJSON_Compare is quadratic in an object's keys: a real
             * tokenizer.json has 150k) */
            cJSON *a = cJSON_ParseWithLength((const char *)want, n), *b = cJSON_ParseWithLength(txt, len);
            char *pa = a ? cJSON_PrintUnformatted(a) : NULL, *pb = b ? cJSON_PrintUnformatted(b) : NULL;
            CHECKF(pa && pb && !strcmp(pa, pb), "%s: %s is not the same JSON as the mlx folder's", src, name);
            cJSON_free(pa);
            cJSON_free(pb);
            cJSON_Delete(a);
            cJSON_Delete(b);
        }
        free(want);
    }
    /* every tokenizer file of the folder is carried, or listed as not embedded */
    static const char *const tok[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                       "generation_config.json", "chat_template.jinja", "merges.txt",
                                       "vocab.json", "added_tokens.json", "chat_template.json" };
    const char *man = mc_flash_reader_manifest_json(r, NULL);
    for (size_t i = 0; i < sizeof tok / sizeof tok[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", mlx, tok[i]);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        int found = 0;
        for (size_t j = 1; j < mc_flash_reader_n_files(r); j++) found |= !strcmp(mc_flash_reader_file_name(r, j), tok[i]);
        CHECKF(found || strstr(man, tok[i]), "%s: %s of the mlx folder is not carried", src, tok[i]);
    }
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

static void check_model(const char *src, const char *flash, const char *mlx, int gguf)
{
    mfolder m;
    mc_error err = { MC_OK, "" };
    mc_flash_reader_opts o;
    mc_flash_reader *r = NULL;
    mc_flash_reader_opts_init(&o);
    o.verify = 1;
    o.threads = 3;
    CHECKF(mfolder_load(mlx, &m) == 0, "%s: cannot read the mlx folder", src);
    CHECKF(mc_flash_reader_open(flash, &o, &r, &err) == 0, "%s: %s", src, err.msg);
    if (!r || !m.n) goto done;
    g_models++;
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    unsigned char *pin = mc_flash_reader_alloc((size_t)in->pinned_nbytes);
    mc_error_clear(&err);
    CHECKF(pin && mc_flash_reader_read_pinned(r, pin, &err) == 0, "%s: %s", src, err.msg);
    for (size_t i = 0; i < in->n_tensors; i++) {
        const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, i);
        if (t->kind != MC_FLASH_READER_PINNED) continue;
        ment *e = match(src, &m, t);
        if (e) same_bytes(src, e, 0, pin + t->buffer_offset, t->nbytes, "");
        g_tensors++;
    }
    mc_flash_reader_free(pin);
    for (size_t li = 0; li < in->n_layers; li++) {
        const mc_flash_reader_layer *L = mc_flash_reader_layer_at(r, li);
        if (L->kind == MC_FLASH_READER_FFN) {
            unsigned char *b = mc_flash_reader_alloc((size_t)L->nbytes);
            mc_error_clear(&err);
            CHECKF(b && mc_flash_reader_read_ffn(r, L->layer, b, &err) == 0, "%s: %s", src, err.msg);
            for (size_t j = 0; j < L->n_tensors; j++) {
                const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, L->first_tensor + j);
                ment *e = match(src, &m, t);
                if (e) same_bytes(src, e, 0, b + t->buffer_offset, t->nbytes, "");
                g_tensors++;
            }
            mc_flash_reader_free(b);
            continue;
        }
        /* every expert once, k at a time, in a shuffled order */
        uint32_t E = L->n_experts, k = in->experts_per_tok > 0 ? (uint32_t)in->experts_per_tok : 1;
        uint32_t *perm = malloc(E * sizeof *perm);
        unsigned char *b = mc_flash_reader_alloc((size_t)(k * L->nbytes));
        for (uint32_t e = 0; e < E; e++) perm[e] = e;
        for (uint32_t e = E; e > 1; e--) {
            uint32_t j = rnd(e), t = perm[e - 1];
            perm[e - 1] = perm[j];
            perm[j] = t;
        }
        ment **me = calloc(L->n_tensors, sizeof *me);
        for (size_t j = 0; j < L->n_tensors; j++) {
            me[j] = match(src, &m, mc_flash_reader_tensor_at(r, L->first_tensor + j));
            g_tensors++;
        }
        for (uint32_t s = 0; s < E; s += k) {
            uint32_t n = E - s < k ? E - s : k;
            mc_error_clear(&err);
            CHECKF(mc_flash_reader_read_experts(r, L->layer, perm + s, n, b, &err) == 0, "%s: %s", src, err.msg);
            for (uint32_t i = 0; i < n; i++)
                for (size_t j = 0; j < L->n_tensors; j++) {
                    const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, L->first_tensor + j);
                    char what[64];
                    snprintf(what, sizeof what, " (expert %u)", perm[s + i]);
                    if (me[j]) same_bytes(src, me[j], perm[s + i] * t->nbytes, b + i * L->nbytes + t->buffer_offset,
                                          t->nbytes, what);
                    g_slices++;
                }
        }
        free(me);
        free(perm);
        mc_flash_reader_free(b);
    }
    for (size_t i = 0; i < m.n; i++)
        CHECKF(m.e[i].seen == 1, "%s: %s of the mlx folder is in the table %d times", src, m.e[i].name, m.e[i].seen);
    check_files(src, r, mlx, gguf);
done:
    mc_flash_reader_close(r);
    mfolder_free(&m);
}

static int g_flipped;

/* A flipped byte in an expert block: refused with checksums, read without. */
static void check_flip(const char *src, const char *flash)
{
    char path[2048];
    mc_error err = { MC_OK, "" };
    mc_flash_reader *r = NULL;
    mc_flash_reader_opts o;
    if (mc_flash_reader_open(flash, NULL, &r, &err)) return;
    const mc_flash_reader_layer *L = NULL;
    for (size_t i = 0; i < mc_flash_reader_get_info(r)->n_layers && !L; i++)
        if (mc_flash_reader_layer_at(r, i)->kind == MC_FLASH_READER_EXPERT) L = mc_flash_reader_layer_at(r, i);
    if (!L) {
        mc_flash_reader_close(r);
        return;
    }
    int layer = L->layer;
    uint32_t e = L->n_experts - 1, ids[1] = { e };
    uint64_t at = L->offset + e * L->nbytes + L->nbytes / 3;
    mc_flash_reader_close(r);
    snprintf(path, sizeof path, "%s/flipped.flash", mc_test_tmpdir());
    mc_test_run(NULL, "cp '%s' '%s'", flash, path);
    CHECK(mc_test_flip_byte(path, at) == 0);
    for (int verify = 1; verify >= 0; verify--) {
        mc_flash_reader_opts_init(&o);
        o.verify = verify;
        r = NULL;
        mc_error_clear(&err);
        CHECK(mc_flash_reader_open(path, &o, &r, &err) == 0);
        if (!r) continue;
        void *b = mc_flash_reader_alloc((size_t)mc_flash_reader_get_info(r)->max_expert_stride);
        mc_error_clear(&err);
        int rc = mc_flash_reader_read_experts(r, layer, ids, 1, b, &err);
        if (verify) {
            char want[64];
            snprintf(want, sizeof want, "expert %u of layer %d", e, layer);
            CHECKF(rc == MC_ERR_CHECKSUM && strstr(err.msg, want), "%s: flipped byte: rc %d %s", src, rc, err.msg);
        } else {
            CHECKF(rc == 0, "%s: without checksums: %s", src, err.msg);
        }
        mc_flash_reader_free(b);
        mc_flash_reader_close(r);
    }
    g_flipped++;
}

static void one(const char *src, int gguf, void *ctx)
{
    (void)ctx;
    char flash[2048], mlx[2048];
    char *log = NULL;
    snprintf(flash, sizeof flash, "%s/m.flash", mc_test_tmpdir());
    snprintf(mlx, sizeof mlx, "%s/m.mlx", mc_test_tmpdir());
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --force -q", mc_test_mconv(), src, flash);
    if (rc == 0) {
        free(log);
        rc = mc_test_run(&log, "'%s' '%s' '%s' --layout mlx --shard-size 300000 --force -q", mc_test_mconv(), src, mlx);
    }
    if (rc != 0) {
        if (log && strstr(log, "is not supported")) mc_test_skip("%s: %s", src, log);
        else CHECKF(0, "%s: conversion failed: %s", src, log ? log : "");
        free(log);
        return;
    }
    free(log);
    check_model(src, flash, mlx, gguf);
    if (!g_flipped && strstr(src, "qwen3_moe")) check_flip(src, flash);
}

/* corpus/models/llama/hf beside the real Qwen3 tokenizer files
 * (corpus-new/tokenizers/qwen3/, zstd-compressed) and a chat template. */
static void tokenizer_folder(void)
{
    const char *w = mc_test_corpus_file("models/llama/hf/model.safetensors");
    const char *c = mc_test_corpus_file("models/llama/hf/config.json");
    const char *t = mc_test_corpus_new_file("tokenizers/qwen3/tokenizer.json.zst");
    const char *tc = mc_test_corpus_new_file("tokenizers/qwen3/tokenizer_config.json.zst");
    char dir[1024], p[1200];
    if (!w || !c || !t || !tc) return;
    snprintf(dir, sizeof dir, "%s/withtok", mc_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(symlink(w, p) == 0);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(symlink(c, p) == 0);
    const char *zs[2] = { t, tc }, *names[2] = { "tokenizer.json", "tokenizer_config.json" };
    for (int i = 0; i < 2; i++) {
        size_t n;
        unsigned char *z = mc_test_read_file(zs[i], &n);
        unsigned long long cap = z ? ZSTD_getFrameContentSize(z, n) : 0;
        CHECK(z && cap != ZSTD_CONTENTSIZE_UNKNOWN && cap != ZSTD_CONTENTSIZE_ERROR);
        if (!z || cap == ZSTD_CONTENTSIZE_UNKNOWN || cap == ZSTD_CONTENTSIZE_ERROR) {
            free(z);
            return;
        }
        unsigned char *d = malloc((size_t)cap);
        size_t got = ZSTD_decompress(d, (size_t)cap, z, n);
        CHECK(!ZSTD_isError(got) && got == cap);
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        CHECK(mc_test_write_file(p, d, got) == 0);
        free(d);
        free(z);
    }
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    const char *tpl = "{%- for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
                      "{%- endfor %}\u00e9\u4e2d\n";
    CHECK(mc_test_write_file(p, tpl, strlen(tpl)) == 0);
    int before = g_files;
    one(dir, 0, NULL);
    CHECKF(g_files - before == 3, "tokenizer folder: %d files compared", g_files - before);
}

int main(void)
{
    int n = mc_test_each_corpus_model(one, NULL);
    n += mc_test_each_corpus_new_model(one, NULL);
    const char *ext = mc_test_corpus_file("external/gguf/llama-2-tiny-random.gguf");
    if (ext) one(ext, 1, NULL);
    tokenizer_folder();
    if (n) {
        printf("%d models read through the public API: %d tensors, %d expert slices, %d tokenizer files compared; "
               "flipped expert byte caught in %d\n",
               g_models, g_tensors, g_slices, g_files, g_flipped);
        CHECK(g_models >= 8);
        CHECK(g_flipped == 1);
    }
    return mc_test_finish("test_flash_reader_corpus");
}
