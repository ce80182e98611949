/* Safetensors writer: files with every dtype and odd shapes read back by our
 * reader and by the independent tests/tools/st_facts.py; exact byte counts;
 * abort leaves nothing; sharded sets with model.safetensors.index.json. */
#include "mc_test.h"
#include "mc_io.h"
#include "mc_safetensors.h"
#include "mc_st_write.h"
#include "mc_types.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef unsigned long long ull;

/* a fresh error for each call (mc_error keeps the first error set) */
#define E (mc_error_clear(&e), &e)

typedef struct spec {
    char name[64];
    int type;
    uint32_t n_dims;
    uint64_t shape[MC_ST_MAX_DIMS];
    uint64_t nbytes;
    unsigned char *data;
} spec;

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static unsigned char rnd8(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (unsigned char)(g_rng >> 24);
}

/* nbytes computed here from first principles (bits per element), not via
 * mc_type_nbytes: the reference's rule. */
static uint64_t bits_of(const char *st_name)
{
    static const struct { const char *n; unsigned bits; } t[] = {
        { "BOOL", 8 }, { "U8", 8 }, { "I8", 8 }, { "F8_E5M2", 8 }, { "F8_E4M3", 8 }, { "F8_E8M0", 8 },
        { "F4", 4 }, { "F6_E2M3", 6 }, { "F6_E3M2", 6 }, { "I16", 16 }, { "U16", 16 }, { "F16", 16 },
        { "BF16", 16 }, { "I32", 32 }, { "U32", 32 }, { "F32", 32 }, { "C64", 64 }, { "F64", 64 },
        { "I64", 64 }, { "U64", 64 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].n, st_name) == 0) return t[i].bits;
    return 0;
}

static void spec_init(spec *s, const char *name, int type, uint32_t nd, const uint64_t *shape)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->type = type;
    s->n_dims = nd;
    uint64_t ne = 1;
    for (uint32_t i = 0; i < nd; i++) ne *= (s->shape[i] = shape[i]);
    s->nbytes = ne * bits_of(mc_type_get(type)->st_name) / 8;
    s->data = malloc(s->nbytes ? (size_t)s->nbytes : 1);
    for (uint64_t i = 0; i < s->nbytes; i++) s->data[i] = rnd8();
}

static void hexs(const unsigned char *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* Check path (file or folder) against the specs: our reader and st_facts.py. */
static void verify(const char *path, spec *sp, size_t n)
{
    mc_st *st = NULL;
    mc_error e = { 0 };
    int rc = mc_st_open(path, &st, E);
    CHECKF(rc == 0, "reopen %s: %s", path, e.msg);
    if (rc) return;
    CHECK_EQ_U64(st->n_tensors, n);
    for (size_t i = 0; i < n; i++) {
        const mc_st_tensor *t = mc_st_find(st, sp[i].name);
        CHECKF(t != NULL, "%s missing", sp[i].name);
        if (!t) continue;
        CHECK(t->type == sp[i].type && t->n_dims == sp[i].n_dims && t->nbytes == sp[i].nbytes);
        for (uint32_t d = 0; d < t->n_dims; d++) CHECK_EQ_U64(t->shape[d], sp[i].shape[d]);
        unsigned char *b = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        CHECK(b && mc_st_read(st, t, 0, b, (size_t)t->nbytes, E) == 0);
        CHECKF(b && memcmp(b, sp[i].data, (size_t)t->nbytes) == 0, "%s bytes differ", sp[i].name);
        free(b);
    }
    for (uint32_t f = 0; f < st->n_files; f++) CHECK(st->files[f].header_len % 8 == 0);
    mc_st_close(st);

    char *out = NULL;
    rc = mc_test_run(&out, "python3 '%s/tests/tools/st_facts.py' '%s'", MCONV_SOURCE_DIR, path);
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    CHECKF(j != NULL, "st_facts.py %s: %.300s", path, out ? out : "");
    free(out);
    const cJSON *ts = cJSON_GetObjectItem(j, "tensors"), *t;
    CHECK_EQ_U64(cJSON_GetArraySize(ts), n);
    cJSON_ArrayForEach(t, ts) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const spec *s = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(sp[i].name, name) == 0) s = &sp[i];
        CHECKF(s != NULL, "python sees unknown tensor %s", name);
        if (!s) continue;
        CHECK_STR(cJSON_GetObjectItem(t, "dtype")->valuestring, mc_type_get(s->type)->st_name);
        const cJSON *shape = cJSON_GetObjectItem(t, "shape");
        CHECK_EQ_U64(cJSON_GetArraySize(shape), s->n_dims);
        for (uint32_t d = 0; d < s->n_dims; d++)
            CHECK_EQ_U64((uint64_t)cJSON_GetArrayItem(shape, (int)d)->valuedouble, s->shape[d]);
        CHECK_EQ_U64((uint64_t)cJSON_GetObjectItem(t, "nbytes")->valuedouble, s->nbytes);
        char hex[129];
        hexs(s->data, s->nbytes < 64 ? (size_t)s->nbytes : 64, hex);
        CHECK_STR(cJSON_GetObjectItem(t, "head")->valuestring, hex);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < s->nbytes; i++) sum += s->data[i];
        CHECK_EQ_U64((uint64_t)cJSON_GetObjectItem(t, "sum")->valuedouble, sum);
    }
    cJSON_Delete(j);
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d) return (size_t)-1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static const char *sub(const char *name)
{
    static char b[4][1024];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 1024, "%s/%s", mc_test_tmpdir(), name);
    return p;
}

static void free_specs(spec *s, size_t n)
{
    for (size_t i = 0; i < n; i++) free(s[i].data);
}

/* Every dtype, odd shapes, chunked writes, metadata with escapes. */
static void test_all_dtypes(void)
{
    spec sp[64];
    size_t n = 0;
    for (int t = 0; t < MC_T_COUNT; t++) {
        const mc_type_traits *tr = mc_type_get(t);
        if (!tr || !tr->st_name) continue;
        char name[64];
        uint64_t odd[3] = { 3, 5 * tr->blck, 7 };
        snprintf(name, sizeof name, "t.%s \"q\" \xc3\xbc", tr->st_name);
        spec_init(&sp[n++], name, t, 3, odd);
        uint64_t one[1] = { tr->blck };
        snprintf(name, sizeof name, "one.%s", tr->st_name);
        spec_init(&sp[n++], name, t, 1, one);
    }
    CHECK(n == 40); /* 20 safetensors dtypes, as the specification lists (FNUZ aside) */
    uint64_t s5[5] = { 1, 2, 1, 3, 1 }, s0[2] = { 0, 3 }, s8[8] = { 1, 2, 1, 2, 1, 2, 1, 2 };
    spec_init(&sp[n++], "scalar", MC_T_F32, 0, NULL);
    spec_init(&sp[n++], "empty", MC_T_BF16, 2, s0);
    spec_init(&sp[n++], "five", MC_T_I64, 5, s5);
    spec_init(&sp[n++], "eight", MC_T_U8, 8, s8);
    spec_init(&sp[n++], "", MC_T_U8, 1, s5 + 1);
    spec_init(&sp[n++], "tab\tand\x01control", MC_T_U8, 1, s5 + 3); /* escaped by cJSON */
    const char *path = sub("all.safetensors");
    mc_st_writer *w = NULL;
    mc_error e = { 0 };
    int rc = mc_st_writer_new(path, 0, &w, E);
    CHECKF(rc == 0, "%s", e.msg);
    if (rc) { free_specs(sp, n); return; }
    CHECK(mc_st_writer_meta(w, "format", "mlx", E) == 0);
    CHECK(mc_st_writer_meta(w, "note", "a \"quoted\"\n\\ value \xe2\x82\xac", E) == 0);
    CHECK(mc_st_writer_meta(w, "format", "pt", E) == MC_ERR_ARG);
    for (size_t i = 0; i < n; i++)
        CHECKF(mc_st_writer_add(w, sp[i].name, sp[i].type, sp[i].n_dims, sp[i].shape, E) == 0, "%s", e.msg);
    CHECK(mc_st_writer_begin(w, E) == 0);
    CHECK(mc_st_writer_header_len(w) % 8 == 0);
    for (size_t i = 0; i < n; i++) {
        /* chunks of 1, 7, then the rest */
        uint64_t off = 0;
        static const size_t chunks[] = { 1, 7 };
        for (size_t c = 0; c < 2 && off < sp[i].nbytes; c++) {
            size_t k = chunks[c] < sp[i].nbytes - off ? chunks[c] : (size_t)(sp[i].nbytes - off);
            CHECK(mc_st_writer_write(w, sp[i].data + off, k, E) == 0);
            off += k;
        }
        if (off < sp[i].nbytes) CHECK(mc_st_writer_write(w, sp[i].data + off, (size_t)(sp[i].nbytes - off), E) == 0);
    }
    CHECK(mc_st_writer_current(w) == NULL);
    uint64_t size = mc_st_writer_file_size(w), hl = mc_st_writer_header_len(w);
    CHECKF(mc_st_writer_commit(w, E) == 0, "%s", e.msg);
    mc_st_writer_free(w);
    verify(path, sp, n);
    size_t len = 0;
    unsigned char *img = mc_test_read_file(path, &len);
    CHECK(img && len == size);
    if (img) {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = (h << 8) | img[i];
        CHECK(h == hl && h % 8 == 0);
        /* padded with spaces after the closing brace, as the reference does */
        size_t end = 8 + (size_t)h;
        while (end > 8 && img[end - 1] == ' ') end--;
        CHECK(img[end - 1] == '}' && 8 + h - end < 8);
        mc_st *st = NULL;
        CHECK(mc_st_parse_mem(img, len, path, &st, E) == 0);
        if (st) {
            CHECK_STR(mc_st_meta_get(st, "format"), "mlx");
            CHECK_STR(mc_st_meta_get(st, "note"), "a \"quoted\"\n\\ value \xe2\x82\xac");
            /* tensors come back in declared order (offsets follow declaration) */
            for (size_t i = 0; i < n && i < st->n_tensors; i++) CHECK_STR(st->tensors[i].name, sp[i].name);
        }
        mc_st_close(st);
        free(img);
    }
    /* python reads the metadata the same way */
    char *out = NULL;
    CHECK(mc_test_run(&out, "python3 '%s/tests/tools/st_facts.py' '%s'", MCONV_SOURCE_DIR, path) == 0);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    const cJSON *m = cJSON_GetObjectItem(j, "metadata");
    CHECK(cJSON_IsObject(m) && cJSON_GetArraySize(m) == 2);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "note")) &&
          strcmp(cJSON_GetObjectItem(m, "note")->valuestring, "a \"quoted\"\n\\ value \xe2\x82\xac") == 0);
    cJSON_Delete(j);
    free(out);
    free_specs(sp, n);
}

/* One tensor larger than the writer's buffer, written in uneven pieces and
 * in one piece. */
static void test_big(void)
{
    spec sp[2];
    uint64_t s1[2] = { 1031, 1103 }, s2[1] = { (5u << 20) + 3 };
    spec_init(&sp[0], "big.f32", MC_T_F32, 2, s1);
    spec_init(&sp[1], "big.u8", MC_T_U8, 1, s2);
    const char *path = sub("big.safetensors");
    mc_st_writer *w = NULL;
    mc_error e = { 0 };
    CHECK(mc_st_writer_new(path, 0, &w, E) == 0);
    if (!w) { free_specs(sp, 2); return; }
    for (int i = 0; i < 2; i++) CHECK(mc_st_writer_add(w, sp[i].name, sp[i].type, sp[i].n_dims, sp[i].shape, E) == 0);
    CHECK(mc_st_writer_begin(w, E) == 0);
    for (uint64_t off = 0; off < sp[0].nbytes;) {
        size_t k = 9999 < sp[0].nbytes - off ? 9999 : (size_t)(sp[0].nbytes - off);
        CHECK(mc_st_writer_write(w, sp[0].data + off, k, E) == 0);
        off += k;
    }
    CHECK(mc_st_writer_tensor(w, "big.u8", sp[1].data, (size_t)sp[1].nbytes, E) == 0);
    CHECK(mc_st_writer_commit(w, E) == 0);
    mc_st_writer_free(w);
    verify(path, sp, 2);
    free_specs(sp, 2);
}

/* Exact byte counts and declaration rules. */
static void test_misuse(void)
{
    const char *dir = sub("misuse");
    mkdir(dir, 0755);
    char path[2300];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    mc_st_writer *w = NULL;
    mc_error e = { 0 };
    uint64_t s4[1] = { 4 }, s3[1] = { 3 }, s6[1] = { 6 }, huge[3] = { 1ull << 40, 1ull << 40, 1 };
    unsigned char d[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    CHECK(mc_st_writer_new(path, 0, &w, E) == 0);
    if (!w) return;
    CHECK(mc_st_writer_add(w, "q", MC_T_Q4_K, 1, (uint64_t[]){ 256 }, E) == MC_ERR_ARG && strstr(e.msg, "q4_K"));
    CHECK(mc_st_writer_add(w, "f4", MC_T_F4, 1, s3, E) == MC_ERR_ARG && strstr(e.msg, "whole bytes"));
    CHECK(mc_st_writer_add(w, "f6", MC_T_F6_E2M3, 1, s6, E) == MC_ERR_ARG);
    CHECK(mc_st_writer_add(w, "__metadata__", MC_T_U8, 1, s4, E) == MC_ERR_ARG);
    CHECK(mc_st_writer_add(w, "bad\xff", MC_T_U8, 1, s4, E) == MC_ERR_ARG);
    CHECK(mc_st_writer_add(w, "h", MC_T_U8, 3, huge, E) == MC_ERR_OVERFLOW);
    CHECK(mc_st_writer_add(w, "big", MC_T_U8, 1, (uint64_t[]){ 1ull << 53 }, E) == MC_ERR_OVERFLOW);
    CHECK(mc_st_writer_write(w, d, 1, E) == MC_ERR_ARG && strstr(e.msg, "before begin"));
    CHECK(mc_st_writer_add(w, "a", MC_T_U8, 1, s4, E) == 0);
    CHECK(mc_st_writer_add(w, "z", MC_T_F32, 1, (uint64_t[]){ 0 }, E) == 0);
    CHECK(mc_st_writer_add(w, "b", MC_T_I16, 1, s3, E) == 0);
    CHECK(mc_st_writer_begin(w, E) == 0);
    CHECK(mc_st_writer_add(w, "c", MC_T_U8, 1, s4, E) == MC_ERR_ARG);
    CHECK(mc_st_writer_write(w, d, 5, E) == MC_ERR_ARG && strstr(e.msg, "runs past tensor 'a'"));
    CHECK(mc_st_writer_tensor(w, "b", d, 6, E) == MC_ERR_ARG && strstr(e.msg, "out of order"));
    CHECK(mc_st_writer_write(w, d, 3, E) == 0);
    CHECK(mc_st_writer_tensor(w, "a", d, 4, E) == MC_ERR_ARG && strstr(e.msg, "partial"));
    CHECK(mc_st_writer_commit(w, E) == MC_ERR_ARG && strstr(e.msg, "'a' incomplete: 3 of 4"));
    CHECK(mc_st_writer_write(w, d + 3, 1, E) == 0);
    CHECK_STR(mc_st_writer_current(w), "b");
    CHECK(mc_st_writer_tensor(w, "z", NULL, 0, E) == 0); /* zero-size: nothing to write */
    CHECK(mc_st_writer_tensor(w, "b", d, 5, E) == MC_ERR_ARG && strstr(e.msg, "is 6 bytes"));
    CHECK(mc_st_writer_tensor(w, "b", d, 6, E) == 0);
    CHECK(mc_st_writer_write(w, d, 1, E) == MC_ERR_ARG && strstr(e.msg, "after the last tensor"));
    CHECK(mc_st_writer_commit(w, E) == 0);
    CHECK(mc_st_writer_commit(w, E) == MC_ERR_ARG);
    mc_st_writer_free(w);
    CHECK(count_entries(dir) == 1);
    /* existing output */
    w = NULL;
    CHECK(mc_st_writer_new(path, 0, &w, E) == MC_ERR_EXISTS && w == NULL);
    /* duplicates found at begin; the file is never created */
    CHECK(mc_st_writer_new(path, 1, &w, E) == 0);
    if (w) {
        CHECK(mc_st_writer_add(w, "x", MC_T_U8, 1, s4, E) == 0);
        CHECK(mc_st_writer_add(w, "x", MC_T_U8, 1, s4, E) == 0);
        CHECK(mc_st_writer_begin(w, E) == MC_ERR_ARG && strstr(e.msg, "'x' declared twice"));
        mc_st_writer_free(w);
    }
    /* the old file is untouched by the refused rewrite */
    mc_st *st = NULL;
    CHECK(mc_st_open(path, &st, E) == 0 && st->n_tensors == 3);
    mc_st_close(st);
}

/* Abort: nothing left behind, for a file and for a set. */
static void test_abort(void)
{
    const char *dir = sub("abort");
    mkdir(dir, 0755);
    char path[2300];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    mc_st_writer *w = NULL;
    mc_error e = { 0 };
    unsigned char d[8] = { 0 };
    CHECK(mc_st_writer_new(path, 0, &w, E) == 0);
    CHECK(w && mc_st_writer_add(w, "a", MC_T_U8, 1, (uint64_t[]){ 8 }, E) == 0);
    CHECK(w && mc_st_writer_begin(w, E) == 0);
    CHECK(w && mc_st_writer_write(w, d, 3, E) == 0);
    CHECK(count_entries(dir) == 1); /* the temporary file */
    mc_st_writer_free(w);
    CHECK(count_entries(dir) == 0);

    char sdir[1200];
    snprintf(sdir, sizeof sdir, "%s/set", dir);
    mc_st_set *s = NULL;
    CHECK(mc_st_set_new(sdir, 10, 0, &s, E) == 0);
    if (!s) return;
    for (int i = 0; i < 3; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "t%d", i);
        CHECK(mc_st_set_add(s, nm, MC_T_U8, 1, (uint64_t[]){ 8 }, E) == 0);
    }
    CHECK(mc_st_set_begin(s, E) == 0 && mc_st_set_n_shards(s) == 3);
    CHECK(mc_st_set_tensor(s, "t0", d, 8, E) == 0);
    CHECK(mc_st_set_write(s, d, 4, E) == 0);
    CHECK(mc_st_set_commit(s, E) == MC_ERR_ARG && strstr(e.msg, "incomplete"));
    snprintf(path, sizeof path, "%s/model-00001-of-00003.safetensors", sdir);
    CHECK(mc_io_exists(path)); /* the first shard is complete and in place */
    mc_st_set_free(s);
    CHECK(count_entries(sdir) == 0);

    /* what a SIGINT handler does mid-set: committed shards and the open
     * temporary file all go */
    CHECK(mc_st_set_new(sdir, 10, 0, &s, E) == 0);
    if (!s) return;
    for (int i = 0; i < 3; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "t%d", i);
        CHECK(mc_st_set_add(s, nm, MC_T_U8, 1, (uint64_t[]){ 8 }, E) == 0);
    }
    CHECK(mc_st_set_begin(s, E) == 0);
    CHECK(mc_st_set_tensor(s, "t0", d, 8, E) == 0);
    CHECK(mc_st_set_tensor(s, "t1", d, 8, E) == 0);
    CHECK(mc_st_set_write(s, d, 4, E) == 0);
    CHECK(count_entries(sdir) == 3);
    mc_io_cleanup_signal_safe();
    CHECK(count_entries(sdir) == 0);
    mc_st_set_free(s);
    CHECK(count_entries(sdir) == 0);
}

static void test_sets(void)
{
    /* sizes 100, 200, 50, 300 (over the limit: own shard), 0, 10; limit 256:
     * shards {a} {b c} {d} {e f}, following mlx-lm's make_shards */
    static const uint64_t sizes[] = { 100, 200, 50, 300, 0, 10 };
    static const uint32_t want_shard[] = { 0, 1, 1, 2, 3, 3 };
    spec sp[6];
    for (int i = 0; i < 6; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "%c.weight", 'f' - i); /* names in reverse order: the index sorts */
        spec_init(&sp[i], nm, MC_T_U8, 1, &sizes[i]);
    }
    const char *dir = sub("set4");
    mc_st_set *s = NULL;
    mc_error e = { 0 };
    CHECK(mc_st_set_new(dir, 256, 0, &s, E) == 0);
    if (!s) { free_specs(sp, 6); return; }
    CHECK(mc_st_set_meta(s, "format", "mlx", E) == 0);
    mc_st_set_total_parameters(s, 660);
    for (int i = 0; i < 6; i++) CHECK(mc_st_set_add(s, sp[i].name, sp[i].type, 1, sp[i].shape, E) == 0);
    CHECK(mc_st_set_begin(s, E) == 0);
    CHECK(mc_st_set_n_shards(s) == 4);
    CHECK_STR(mc_st_set_shard_name(s, 2), "model-00003-of-00004.safetensors");
    for (int i = 0; i < 6; i++) {
        if (i == 1) { /* streamed in two parts */
            CHECK(mc_st_set_write(s, sp[i].data, 77, E) == 0);
            CHECK(mc_st_set_write(s, sp[i].data + 77, (size_t)sp[i].nbytes - 77, E) == 0);
        } else {
            CHECKF(mc_st_set_tensor(s, sp[i].name, sp[i].data, (size_t)sp[i].nbytes, E) == 0, "%s", e.msg);
        }
    }
    CHECKF(mc_st_set_commit(s, E) == 0, "%s", e.msg);
    mc_st_set_free(s);
    CHECK(count_entries(dir) == 5);
    mc_io_cleanup_signal_safe(); /* a committed set is no longer registered */
    CHECK(count_entries(dir) == 5);
    verify(dir, sp, 6);
    mc_st *st = NULL;
    CHECK(mc_st_open(dir, &st, E) == 0);
    if (st) {
        CHECK(st->n_files == 4 && st->index && st->n_unindexed == 0);
        for (int i = 0; i < 6; i++) {
            const mc_st_tensor *t = mc_st_find(st, sp[i].name);
            char want[64];
            snprintf(want, sizeof want, "model-%05u-of-00004.safetensors", want_shard[i] + 1);
            CHECK(t && strcmp(st->files[t->file].name, want) == 0);
        }
        for (uint32_t f = 0; f < st->n_files; f++) CHECK(st->files[f].n_tensors > 0);
        CHECK_STR(mc_st_meta_get(st, "format"), "mlx");
    }
    mc_st_close(st);
    /* the index as Python's json sees it */
    char *out = NULL;
    int rc = mc_test_run(&out,
                         "python3 -c 'import json,sys; d=json.load(open(sys.argv[1]+\"/model.safetensors.index.json\")); "
                         "w=d[\"weight_map\"]; print(d[\"metadata\"][\"total_size\"], d[\"metadata\"][\"total_parameters\"], "
                         "list(w)==sorted(w), len(w), len(set(w.values())))' '%s'", dir);
    CHECKF(rc == 0 && out && strcmp(out, "660 660 True 6 4\n") == 0, "index: %s", out ? out : "");
    free(out);
    /* again without force: refused before anything is written */
    CHECK(mc_st_set_new(dir, 256, 0, &s, E) == 0);
    for (int i = 0; s && i < 6; i++) CHECK(mc_st_set_add(s, sp[i].name, sp[i].type, 1, sp[i].shape, E) == 0);
    CHECK(s && mc_st_set_begin(s, E) == MC_ERR_EXISTS && strstr(e.msg, "already exists"));
    mc_st_set_free(s);
    CHECK(count_entries(dir) == 5);

    /* one shard: model.safetensors plus the index, as mlx-lm writes */
    dir = sub("set1");
    CHECK(mc_st_set_new(dir, 0, 0, &s, E) == 0);
    for (int i = 0; s && i < 6; i++) CHECK(mc_st_set_add(s, sp[i].name, sp[i].type, 1, sp[i].shape, E) == 0);
    CHECK(s && mc_st_set_begin(s, E) == 0 && mc_st_set_n_shards(s) == 1);
    CHECK_STR(s ? mc_st_set_shard_name(s, 0) : NULL, "model.safetensors");
    for (int i = 0; s && i < 6; i++) CHECK(mc_st_set_tensor(s, NULL, sp[i].data, (size_t)sp[i].nbytes, E) == 0);
    CHECK(s && mc_st_set_write(s, sp[0].data, 1, E) == MC_ERR_ARG);
    CHECK(s && mc_st_set_commit(s, E) == 0);
    mc_st_set_free(s);
    CHECK(count_entries(dir) == 2);
    verify(dir, sp, 6);
    free_specs(sp, 6);

    /* an empty set is refused (a checkpoint without tensors would not open) */
    dir = sub("set0");
    CHECK(mc_st_set_new(dir, 0, 0, &s, E) == 0);
    CHECK(s && mc_st_set_begin(s, E) == MC_ERR_ARG && strstr(e.msg, "no tensors"));
    mc_st_set_free(s);
    CHECK(!mc_io_exists(dir));
}

int main(void)
{
    if (mc_test_run(NULL, "python3 -c 'import json, struct'") != 0) {
        mc_test_skip("python3 absent: the writer tests need tests/tools/st_facts.py");
        return mc_test_finish("test_st_write");
    }
    test_all_dtypes();
    test_big();
    test_misuse();
    test_abort();
    test_sets();
    return mc_test_finish("test_st_write");
}
