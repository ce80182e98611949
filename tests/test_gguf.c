/* GGUF reader against an independent fact source (tests/tools/gguf_facts.py)
 * over every corpus GGUF, named facts from the corpus README, the bad files,
 * and split sets written with the GGUF writer. */
#include "mc_test.h"
#include "mc_test_gguf.h"
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_types.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hex(const void *p, uint64_t n, char *out)
{
    const unsigned char *b = p;
    for (uint64_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static int hex_eq(const void *p, uint64_t n, const char *want)
{
    if (!want || strlen(want) != 2 * n) return 0;
    char *h = malloc(2 * n + 1);
    if (!h) return 0;
    hex(p, n, h);
    int eq = strcmp(h, want) == 0;
    free(h);
    return eq;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static uint64_t ju64(const cJSON *o, const char *k)
{
    const char *s = jstr(o, k);
    return s ? strtoull(s, NULL, 10) : UINT64_MAX;
}
static int jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static uint64_t scalar_bits(const mc_gguf_kv *kv)
{
    if (kv->type == MC_GGUF_FLOAT32) {
        float f = (float)kv->v.f64;
        uint32_t u;
        memcpy(&u, &f, 4);
        return u;
    }
    uint64_t u;
    memcpy(&u, &kv->v.f64, 8);
    return u;
}

/* Compare one kv against the fact source's entry. */
static void check_kv(const char *file, const mc_gguf_kv *kv, const cJSON *e)
{
    CHECKF(hex_eq(kv->key.s, kv->key.len, jstr(e, "key_hex")), "%s: key %s", file, kv->key.s);
    CHECKF((int)kv->type == jint(e, "type"), "%s: key %s type %d vs %d", file, kv->key.s, kv->type, jint(e, "type"));
    switch (kv->type) {
    case MC_GGUF_STRING:
        CHECKF(hex_eq(kv->v.str.s, kv->v.str.len, jstr(e, "str_hex")), "%s: key %s string", file, kv->key.s);
        CHECK(kv->v.str.s[kv->v.str.len] == '\0');
        break;
    case MC_GGUF_FLOAT32: case MC_GGUF_FLOAT64: {
        const char *b = jstr(e, "bits");
        CHECKF(b && strtoull(b, NULL, 16) == scalar_bits(kv), "%s: key %s float bits", file, kv->key.s);
        break;
    }
    case MC_GGUF_INT8: case MC_GGUF_INT16: case MC_GGUF_INT32: case MC_GGUF_INT64: {
        const char *v = jstr(e, "value");
        CHECKF(v && strtoll(v, NULL, 10) == kv->v.i64, "%s: key %s = %" PRId64 " vs %s", file, kv->key.s, kv->v.i64, v ? v : "?");
        break;
    }
    case MC_GGUF_BOOL:
        CHECKF((ju64(e, "value") != 0) == (kv->v.u64 != 0), "%s: key %s bool", file, kv->key.s);
        break;
    case MC_GGUF_ARRAY: {
        CHECKF((int)kv->arr_type == jint(e, "arr_type"), "%s: key %s arr type", file, kv->key.s);
        CHECKF(kv->arr_n == ju64(e, "n"), "%s: key %s arr n %" PRIu64, file, kv->key.s, kv->arr_n);
        if (kv->arr_n == 0) break;
        if (kv->arr_type == MC_GGUF_STRING) {
            const mc_gguf_str *s = kv->arr;
            uint64_t total = 0;
            for (uint64_t i = 0; i < kv->arr_n; i++) total += s[i].len;
            CHECKF(total == ju64(e, "total_len"), "%s: key %s string total", file, kv->key.s);
            CHECK(hex_eq(s[0].s, s[0].len, jstr(e, "first_hex")));
            CHECK(hex_eq(s[kv->arr_n - 1].s, s[kv->arr_n - 1].len, jstr(e, "last_hex")));
        } else if (kv->arr_type == MC_GGUF_FLOAT32 || kv->arr_type == MC_GGUF_FLOAT64) {
            size_t w = mc_gguf_vtype_size(kv->arr_type);
            uint64_t a = 0, z = 0;
            memcpy(&a, kv->arr, w);
            memcpy(&z, (const char *)kv->arr + w * (kv->arr_n - 1), w);
            CHECK(strtoull(jstr(e, "first_bits") ? jstr(e, "first_bits") : "x", NULL, 16) == a);
            CHECK(strtoull(jstr(e, "last_bits") ? jstr(e, "last_bits") : "x", NULL, 16) == z);
        } else {
            int64_t a = 0, z = 0;
            int sig = kv->arr_type == MC_GGUF_INT8 || kv->arr_type == MC_GGUF_INT16 ||
                      kv->arr_type == MC_GGUF_INT32 || kv->arr_type == MC_GGUF_INT64;
            if (sig || kv->arr_type != MC_GGUF_UINT64) {
                CHECK(mc_gguf_arr_i64(kv, 0, &a) == 0);
                CHECK(mc_gguf_arr_i64(kv, kv->arr_n - 1, &z) == 0);
                const char *fa = jstr(e, "first"), *fz = jstr(e, "last");
                if (kv->arr_type == MC_GGUF_BOOL) {
                    CHECK(fa && (strtoll(fa, NULL, 10) != 0) == (a != 0));
                } else {
                    CHECKF(fa && strtoll(fa, NULL, 10) == a, "%s: key %s first", file, kv->key.s);
                    CHECKF(fz && strtoll(fz, NULL, 10) == z, "%s: key %s last", file, kv->key.s);
                }
            }
            CHECK(mc_gguf_arr_i64(kv, kv->arr_n, &a) != 0); /* out of range */
        }
        break;
    }
    default: {
        const char *v = jstr(e, "value");
        CHECKF(v && strtoull(v, NULL, 10) == kv->v.u64, "%s: key %s = %" PRIu64 " vs %s", file, kv->key.s, kv->v.u64, v ? v : "?");
        break;
    }
    }
}

/* Every fact of one file: keys, tensors, offsets, sizes, first bytes. */
static void check_against_facts(const char *path)
{
    char *out = NULL;
    int st = mc_test_run(&out, "python3 '%s/tests/tools/gguf_facts.py' '%s'", MCONV_SOURCE_DIR, path);
    CHECKF(st == 0, "gguf_facts.py failed on %s: %s", path, out ? out : "");
    cJSON *j = out && st == 0 ? cJSON_Parse(out) : NULL;
    free(out);
    if (!j) {
        CHECKF(0, "no JSON for %s", path);
        return;
    }
    mc_gguf *g = NULL;
    mc_error err = { 0 };
    int rc = mc_gguf_open(path, &g, &err);
    CHECKF(rc == 0, "%s: %s", path, err.msg);
    if (rc) {
        cJSON_Delete(j);
        return;
    }
    CHECK_EQ_U64(g->version, jint(j, "version"));
    CHECK_EQ_U64(g->alignment, jint(j, "alignment"));
    CHECK_EQ_U64(g->n_kv, ju64(j, "n_kv"));
    CHECK_EQ_U64(g->n_tensors, ju64(j, "n_tensors"));
    CHECK_EQ_U64(g->n_shards, 1);
    CHECK_EQ_U64(g->shards[0].data_offset, ju64(j, "data_offset"));
    CHECK_EQ_U64(g->header_bytes, ju64(j, "header_end"));
    CHECK(g->header_mem > 0 && g->header_mem <= MC_GGUF_MAX_HEADER_MEM);

    const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(j, "kv");
    uint64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, kvs) {
        if (i >= g->n_kv) break;
        check_kv(path, &g->kv[i], e);
        CHECK(mc_gguf_find_kv(g, g->kv[i].key.s) == &g->kv[i]);
        i++;
    }
    CHECK_EQ_U64(i, g->n_kv);

    size_t flen = 0;
    unsigned char *whole = NULL;
    if (ju64(j, "file_size") < (64u << 20)) whole = mc_test_read_file(path, &flen);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "tensors");
    i = 0;
    uint64_t dofs = ju64(j, "data_offset");
    cJSON_ArrayForEach(e, ts) {
        if (i >= g->n_tensors) break;
        const mc_gguf_tensor *t = &g->tensors[i];
        CHECKF(hex_eq(t->name.s, t->name.len, jstr(e, "name_hex")), "%s: tensor %" PRIu64 " name", path, i);
        CHECKF(t->type == jint(e, "type"), "%s: tensor %s type %d vs %d", path, t->name.s, t->type, jint(e, "type"));
        const cJSON *ne = cJSON_GetObjectItemCaseSensitive(e, "ne");
        CHECK_EQ_U64(t->n_dims, cJSON_GetArraySize(ne));
        uint64_t nel = 1;
        for (uint32_t d = 0; d < MC_GGUF_MAX_DIMS; d++) {
            const cJSON *x = cJSON_GetArrayItem(ne, (int)d);
            uint64_t want = d < t->n_dims && cJSON_IsString(x) ? strtoull(x->valuestring, NULL, 10) : 1;
            CHECKF(t->ne[d] == want, "%s: tensor %s ne[%u] %" PRIu64 " vs %" PRIu64, path, t->name.s, d, t->ne[d], want);
            nel *= t->ne[d];
        }
        CHECK_EQ_U64(t->nelements, nel);
        CHECK_EQ_U64(t->offset, ju64(e, "offset"));
        CHECKF(t->nbytes == ju64(e, "nbytes"), "%s: tensor %s nbytes %" PRIu64 " vs %s", path, t->name.s, t->nbytes,
               jstr(e, "nbytes"));
        CHECK_EQ_U64(t->file_offset, dofs + t->offset);
        CHECK(mc_gguf_find_tensor(g, t->name.s) == t);
        if (whole && t->nbytes > 0) {
            unsigned char buf[64];
            size_t n = t->nbytes < sizeof buf ? (size_t)t->nbytes : sizeof buf;
            mc_error e2 = { 0 };
            CHECK(mc_gguf_read(g, t, t->nbytes - n, buf, n, &e2) == 0);
            CHECK(t->file_offset + t->nbytes <= flen &&
                  memcmp(buf, whole + t->file_offset + t->nbytes - n, n) == 0);
            mc_error_clear(&e2);
            CHECK(mc_gguf_read(g, t, t->nbytes - n, buf, n + 1, &e2) != 0); /* past the tensor */
        }
        i++;
    }
    CHECK_EQ_U64(i, g->n_tensors);
    free(whole);
    mc_gguf_close(g);
    cJSON_Delete(j);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int for_each_gguf(const char *dir, void (*fn)(const char *))
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    struct dirent *de;
    char **names = NULL;
    size_t cnt = 0;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".gguf")) continue;
        char **nn = realloc(names, (cnt + 1) * sizeof *names);
        if (!nn) break;
        names = nn;
        names[cnt++] = mc_path_join(dir, de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < cnt; i++) {
        if (names[i]) {
            fn(names[i]);
            n++;
        }
        free(names[i]);
    }
    free(names);
    return n;
}

static void test_corpus_facts(void)
{
    const char *root = mc_test_corpus();
    if (!root) {
        mc_test_skip("corpus absent: GGUF facts comparison");
        return;
    }
    int n = 0;
    char *models = mc_path_join(root, "models");
    DIR *d = models ? opendir(models) : NULL;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.') continue;
            char *a = mc_path_join(models, de->d_name);
            char *b = a ? mc_path_join(a, "gguf") : NULL;
            if (b) n += for_each_gguf(b, check_against_facts);
            free(a);
            free(b);
        }
        closedir(d);
    }
    free(models);
    char *ext = mc_path_join(root, "external/gguf");
    if (ext) n += for_each_gguf(ext, check_against_facts);
    free(ext);
    char *gg = mc_path_join(root, "ggml");
    if (gg) n += for_each_gguf(gg, check_against_facts);
    free(gg);
    printf("compared %d corpus GGUF files against gguf_facts.py\n", n);
    CHECK(n >= 40);
}

/* Named facts from the corpus README. */
static void test_quant_vectors(void)
{
    const char *p = mc_test_corpus_file("ggml/quant-vectors.gguf");
    if (!p) return;
    mc_gguf *g = NULL;
    mc_error err = { 0 };
    CHECKF(mc_gguf_open(p, &g, &err) == 0, "%s", err.msg);
    if (!g) return;
    const mc_gguf_tensor *src = mc_gguf_find_tensor(g, "src");
    CHECK(src != NULL);
    if (src) {
        CHECK_EQ_U64(src->type, MC_T_F32);
        CHECK_EQ_U64(src->n_dims, 2);
        CHECK_EQ_U64(src->ne[0], 512);
        CHECK_EQ_U64(src->ne[1], 8);
        CHECK_EQ_U64(src->nbytes, 512 * 8 * 4);
        /* README: row 5 is all zeros. */
        float row[512];
        CHECK(mc_gguf_read(g, src, 5 * sizeof row, row, sizeof row, &err) == 0);
        int zeros = 1;
        for (int i = 0; i < 512; i++) zeros &= row[i] == 0.0f;
        CHECK(zeros);
    }
    static const struct { const char *name; int id; } types[] = {
        { "f16", 1 }, { "q4_0", 2 }, { "q4_1", 3 }, { "q5_0", 6 }, { "q5_1", 7 }, { "q8_0", 8 },
        { "q2_K", 10 }, { "q3_K", 11 }, { "q4_K", 12 }, { "q5_K", 13 }, { "q6_K", 14 },
        { "iq2_xxs", 16 }, { "iq2_xs", 17 }, { "iq3_xxs", 18 }, { "iq1_s", 19 }, { "iq4_nl", 20 },
        { "iq3_s", 21 }, { "iq2_s", 22 }, { "iq4_xs", 23 }, { "iq1_m", 29 }, { "bf16", 30 },
        { "tq1_0", 34 }, { "tq2_0", 35 }, { "mxfp4", 39 }, { "nvfp4", 40 }, { "q1_0", 41 }, { "q2_0", 42 },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char nm[64];
        const char *pre[] = { "q.", "rnd.", "deq.", "rnddeq." };
        for (int k = 0; k < 4; k++) {
            snprintf(nm, sizeof nm, "%s%s", pre[k], types[i].name);
            const mc_gguf_tensor *t = mc_gguf_find_tensor(g, nm);
            CHECKF(t != NULL, "missing %s", nm);
            if (!t) continue;
            int want = k < 2 ? types[i].id : MC_T_F32;
            CHECKF(t->type == want, "%s type %d, want %d", nm, t->type, want);
            CHECK_EQ_U64(t->nelements, 512 * 8);
        }
    }
    uint64_t rows = 0;
    CHECK(mc_gguf_get_u64(g, "vectors.rows", &rows) == 0 && rows == 8);
    CHECK_STR(mc_gguf_arch(g), "test-vectors");
    mc_gguf_close(g);
}

static void test_model_facts(void)
{
    const char *p = mc_test_corpus_file("models/llama/gguf/llama-bf16.gguf");
    if (!p) return;
    mc_gguf *g = NULL;
    mc_error err = { 0 };
    CHECKF(mc_gguf_open(p, &g, &err) == 0, "%s", err.msg);
    if (!g) return;
    CHECK_STR(mc_gguf_arch(g), "llama");
    uint64_t emb = 0;
    int64_t emb_i = 0;
    double emb_f = 0;
    int b = 0;
    CHECK(mc_gguf_get_u64(g, "llama.embedding_length", &emb) == 0 && emb == 256); /* README: hidden 256 */
    CHECK(mc_gguf_get_i64(g, "llama.embedding_length", &emb_i) == 0 && emb_i == 256);
    CHECK(mc_gguf_get_f64(g, "llama.embedding_length", &emb_f) == 0 && emb_f == 256.0);
    CHECK(mc_gguf_get_bool(g, "llama.embedding_length", &b) == MC_ERR_FORMAT);
    CHECK(mc_gguf_get_u64(g, "general.architecture", &emb) == MC_ERR_FORMAT);
    CHECK(mc_gguf_get_u64(g, "no.such.key", &emb) == MC_ERR_NOTFOUND);
    CHECK(mc_gguf_get_str(g, "llama.embedding_length") == NULL);
    const mc_gguf_kv *tok = mc_gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == MC_GGUF_ARRAY && tok->arr_type == MC_GGUF_STRING && tok->arr_n == 256);
    const mc_gguf_tensor *e = mc_gguf_find_tensor(g, "token_embd.weight");
    CHECK(e && e->type == MC_T_BF16 && e->ne[0] == 256 && e->ne[1] == 256);
    CHECK(mc_gguf_find_tensor(g, "token_embd.weigh") == NULL);
    mc_gguf_close(g);

    p = mc_test_corpus_file("external/gguf/vocab-llama.v1.gguf");
    if (!p) return;
    mc_error_clear(&err);
    CHECKF(mc_gguf_open(p, &g, &err) == 0, "%s", err.msg);
    if (!g) return;
    CHECK_EQ_U64(g->version, 1);
    CHECK_EQ_U64(g->n_tensors, 0);
    tok = mc_gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->arr_type == MC_GGUF_STRING && tok->arr_n == 32000);
    const mc_gguf_kv *sc = mc_gguf_find_kv(g, "tokenizer.ggml.scores");
    double s0 = 1;
    CHECK(sc && sc->arr_type == MC_GGUF_FLOAT32 && sc->arr_n == 32000 && mc_gguf_arr_f64(sc, 0, &s0) == 0);
    if (tok && tok->arr_n == 32000) CHECK_STR(((const mc_gguf_str *)tok->arr)[1].s, "<s>");
    mc_gguf_close(g);
}

/* The bad files: refused, with a message naming the file and the problem. */
static void test_bad_files(void)
{
    static const struct { const char *rel; int code; const char *words[3]; } bad[] = {
        { "external/bad/fugg-magic.gguf", MC_ERR_UNSUPPORTED, { "FUGG", "byte-swapped", "big-endian" } },
        { "external/bad/kv-type-13.gguf", MC_ERR_FORMAT, { "undefined value type 13", "'dict1'", NULL } },
        { "external/bad/truncated-header.gguf", MC_ERR_FORMAT, { "truncated", "6 bytes", "version" } },
        { "external/bad/utf8-mangled-vocab-phi-3.gguf", MC_ERR_FORMAT,
          { "key 10", "U+FFFD", "lengths no longer match" } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = mc_test_corpus_file(bad[i].rel);
        if (!p) continue;
        mc_gguf *g = NULL;
        mc_error err = { 0 };
        int rc = mc_gguf_open(p, &g, &err);
        CHECKF(rc == bad[i].code, "%s: rc %d (%s)", p, rc, err.msg);
        CHECK(g == NULL);
        CHECKF(strstr(err.msg, p) != NULL, "message does not name the file: %s", err.msg);
        CHECK(strchr(err.msg, '\n') == NULL);
        for (int k = 0; k < 3; k++)
            if (bad[i].words[k]) CHECKF(strstr(err.msg, bad[i].words[k]) != NULL, "'%s' not in: %s", bad[i].words[k], err.msg);
        printf("refused as expected: %s\n", err.msg);
        /* The same bytes through the memory parser give the same verdict. */
        size_t len = 0;
        unsigned char *d = mc_test_read_file(p, &len);
        mc_error e2 = { 0 };
        CHECK(d && mc_gguf_parse_mem(d, len, p, &g, &e2) == bad[i].code && strcmp(e2.msg, err.msg) == 0);
        free(d);
    }
}


/* ---- writer round trip ---- */

#define W(call) do { int _rc = (call); CHECKF(_rc == 0, "%s: %s", #call, err.msg); if (_rc) goto fail; } while (0)

static int add_all_kvs(mc_gguf_writer *w, mc_error *e)
{
    int rc = 0;
    uint8_t a8[3] = { 1, 2, 255 };
    int32_t ai32[4] = { -1, 0, 1, INT32_MIN };
    float af[2] = { 0.25f, -3.0f };
    double ad[1] = { 1e-300 };
    uint64_t au64[2] = { 0, UINT64_MAX };
    int16_t ai16[2] = { -5, 5 };
    uint8_t ab[3] = { 1, 0, 1 };
    const char *strs[3] = { "alpha", "", "gamma" };
    if (!rc) rc = mc_gguf_writer_add_str(w, "general.architecture", "llama", e);
    if (!rc) rc = mc_gguf_writer_add_u8(w, "t.u8", 250, e);
    if (!rc) rc = mc_gguf_writer_add_i8(w, "t.i8", -7, e);
    if (!rc) rc = mc_gguf_writer_add_u16(w, "t.u16", 65000, e);
    if (!rc) rc = mc_gguf_writer_add_i16(w, "t.i16", -30000, e);
    if (!rc) rc = mc_gguf_writer_add_u32(w, "t.u32", 4000000000u, e);
    if (!rc) rc = mc_gguf_writer_add_i32(w, "t.i32", -2000000000, e);
    if (!rc) rc = mc_gguf_writer_add_u64(w, "t.u64", UINT64_MAX - 5, e);
    if (!rc) rc = mc_gguf_writer_add_i64(w, "t.i64", INT64_MIN + 3, e);
    if (!rc) rc = mc_gguf_writer_add_f32(w, "t.f32", 1.5e-5f, e);
    if (!rc) rc = mc_gguf_writer_add_f64(w, "t.f64", -2.25e100, e);
    if (!rc) rc = mc_gguf_writer_add_bool(w, "t.bool", 1, e);
    if (!rc) rc = mc_gguf_writer_add_strn(w, "t.nul", "a\0b", 3, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.u8", MC_GGUF_UINT8, a8, 3, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.i32", MC_GGUF_INT32, ai32, 4, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.f32", MC_GGUF_FLOAT32, af, 2, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.f64", MC_GGUF_FLOAT64, ad, 1, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.u64", MC_GGUF_UINT64, au64, 2, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.i16", MC_GGUF_INT16, ai16, 2, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.bool", MC_GGUF_BOOL, ab, 3, e);
    if (!rc) rc = mc_gguf_writer_add_arr(w, "a.empty", MC_GGUF_UINT32, NULL, 0, e);
    if (!rc) rc = mc_gguf_writer_add_arr_str(w, "a.str", strs, NULL, 3, e);
    return rc;
}

static void test_writer_roundtrip(uint32_t version, uint32_t alignment)
{
    char path[600];
    mc_error err = { 0 };
    mc_gguf_writer *w = NULL;
    mc_gguf *g = NULL;
    unsigned char *data = NULL;
    snprintf(path, sizeof path, "%s/rt-v%u-a%u.gguf", mc_test_tmpdir(), version, alignment);
    mc_gguf_write_opts o = { .version = version, .alignment = alignment };
    W(mc_gguf_writer_create(&w, path, &o, &err));
    W(add_all_kvs(w, &err));
    static const struct { const char *name; int type; uint32_t nd; uint64_t ne[4]; } ts[] = {
        { "f32", MC_T_F32, 2, { 8, 3 } }, { "q4k", MC_T_Q4_K, 3, { 256, 2, 2 } }, { "empty", MC_T_F16, 2, { 0, 4 } },
        { "bf16", MC_T_BF16, 1, { 5 } }, { "q8", MC_T_Q8_0, 4, { 64, 1, 2, 1 } }, { "i8", MC_T_I8, 1, { 3 } },
    };
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        uint64_t nb = 0, nel = 1;
        for (uint32_t d = 0; d < ts[i].nd; d++) nel *= ts[i].ne[d];
        CHECK(mc_type_nbytes(ts[i].type, nel, &nb) == 0);
        total += nb;
        W(mc_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].nd, ts[i].ne, &err));
    }
    /* Stream all tensor bytes (pattern i*7+1) in odd chunks that span tensors. */
    data = malloc((size_t)total);
    CHECK(data != NULL);
    if (!data) goto fail;
    for (uint64_t i = 0; i < total; i++) data[i] = (unsigned char)(i * 7 + 1);
    for (uint64_t off = 0; off < total;) {
        size_t n = (size_t)(total - off < 37 ? total - off : 37);
        if (off == 0) n = 1;
        W(mc_gguf_writer_write(w, data + off, n, &err));
        off += n;
    }
    CHECK(mc_gguf_writer_write(w, data, 1, &err) == MC_ERR_ARG); /* beyond the last tensor */
    CHECK(strstr(err.msg, "beyond the last tensor") != NULL);
    mc_gguf_writer_abort(w);
    w = NULL;
    CHECK(!mc_io_exists(path)); /* aborted: nothing left */

    /* Again, properly committed. */
    mc_error_clear(&err);
    W(mc_gguf_writer_create(&w, path, &o, &err));
    W(add_all_kvs(w, &err));
    CHECK(mc_gguf_writer_add_u32(w, "t.u32", 1, &err) == MC_ERR_ARG && strstr(err.msg, "duplicate metadata key 't.u32'"));
    mc_gguf_writer_abort(w);
    w = NULL;
    CHECK(!mc_io_exists(path));
    mc_error_clear(&err);
    W(mc_gguf_writer_create(&w, path, &o, &err));
    W(add_all_kvs(w, &err));
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        W(mc_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].nd, ts[i].ne, &err));
    for (uint64_t off = 0; off < total;) {
        size_t n = (size_t)(total - off < 1000 ? total - off : 1000);
        W(mc_gguf_writer_write(w, data + off, n, &err));
        off += n;
    }
    W(mc_gguf_writer_commit(w, &err));
    w = NULL;

    /* The reader and the independent fact source agree on the file... */
    check_against_facts(path);
    /* ...and the values are the ones written. */
    W(mc_gguf_open(path, &g, &err));
    CHECK_EQ_U64(g->version, version);
    CHECK_EQ_U64(g->alignment, alignment ? alignment : 32);
    CHECK_EQ_U64(g->shards[0].data_offset % (alignment ? alignment : 32), 0);
    CHECK_EQ_U64(g->n_kv, 22 + (alignment && alignment != 32));
    uint64_t u = 0;
    int64_t i64 = 0;
    double f = 0;
    int b = 0;
    CHECK(mc_gguf_get_u64(g, "t.u8", &u) == 0 && u == 250);
    CHECK(mc_gguf_get_i64(g, "t.i8", &i64) == 0 && i64 == -7);
    CHECK(mc_gguf_get_u64(g, "t.i8", &u) == MC_ERR_FORMAT); /* negative does not fit */
    CHECK(mc_gguf_get_u64(g, "t.u16", &u) == 0 && u == 65000);
    CHECK(mc_gguf_get_i64(g, "t.i16", &i64) == 0 && i64 == -30000);
    CHECK(mc_gguf_get_u64(g, "t.u32", &u) == 0 && u == 4000000000u);
    CHECK(mc_gguf_get_i64(g, "t.i32", &i64) == 0 && i64 == -2000000000);
    CHECK(mc_gguf_get_u64(g, "t.u64", &u) == 0 && u == UINT64_MAX - 5);
    CHECK(mc_gguf_get_i64(g, "t.u64", &i64) == MC_ERR_FORMAT); /* too big for i64 */
    CHECK(mc_gguf_get_i64(g, "t.i64", &i64) == 0 && i64 == INT64_MIN + 3);
    CHECK(mc_gguf_get_f64(g, "t.f32", &f) == 0 && f == (double)1.5e-5f);
    CHECK(mc_gguf_get_f64(g, "t.f64", &f) == 0 && f == -2.25e100);
    CHECK(mc_gguf_get_bool(g, "t.bool", &b) == 0 && b == 1);
    const mc_gguf_kv *kv = mc_gguf_find_kv(g, "t.nul");
    CHECK(kv && kv->type == MC_GGUF_STRING && kv->v.str.len == 3 && memcmp(kv->v.str.s, "a\0b", 4) == 0);
    kv = mc_gguf_find_kv(g, "a.i32");
    CHECK(kv && kv->arr_type == MC_GGUF_INT32 && kv->arr_n == 4 && mc_gguf_arr_i64(kv, 3, &i64) == 0 && i64 == INT32_MIN);
    kv = mc_gguf_find_kv(g, "a.f32");
    CHECK(kv && mc_gguf_arr_f64(kv, 1, &f) == 0 && f == -3.0);
    kv = mc_gguf_find_kv(g, "a.f64");
    CHECK(kv && mc_gguf_arr_f64(kv, 0, &f) == 0 && f == 1e-300);
    kv = mc_gguf_find_kv(g, "a.u64");
    CHECK(kv && mc_gguf_arr_i64(kv, 1, &i64) == MC_ERR_FORMAT && mc_gguf_arr_f64(kv, 1, &f) == 0 && f == 18446744073709551615.0);
    kv = mc_gguf_find_kv(g, "a.i16");
    CHECK(kv && mc_gguf_arr_i64(kv, 0, &i64) == 0 && i64 == -5);
    kv = mc_gguf_find_kv(g, "a.bool");
    CHECK(kv && kv->arr_type == MC_GGUF_BOOL && mc_gguf_arr_i64(kv, 2, &i64) == 0 && i64 == 1);
    kv = mc_gguf_find_kv(g, "a.empty");
    CHECK(kv && kv->arr_n == 0 && mc_gguf_arr_i64(kv, 0, &i64) != 0);
    kv = mc_gguf_find_kv(g, "a.str");
    CHECK(kv && kv->arr_type == MC_GGUF_STRING && kv->arr_n == 3);
    if (kv && kv->arr_n == 3) {
        const mc_gguf_str *s = kv->arr;
        CHECK_STR(s[0].s, "alpha");
        CHECK(s[1].len == 0 && s[1].s[0] == '\0');
        CHECK_STR(s[2].s, "gamma");
    }
    CHECK_EQ_U64(g->n_tensors, sizeof ts / sizeof ts[0]);
    uint64_t at = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0] && i < g->n_tensors; i++) {
        const mc_gguf_tensor *t = &g->tensors[i];
        CHECK_STR(t->name.s, ts[i].name);
        CHECK_EQ_U64(t->type, ts[i].type);
        CHECK_EQ_U64(t->n_dims, ts[i].nd);
        for (uint32_t d = 0; d < 4; d++) CHECK_EQ_U64(t->ne[d], d < ts[i].nd ? ts[i].ne[d] : 1);
        CHECK_EQ_U64(t->offset % g->alignment, 0);
        if (t->nbytes) {
            unsigned char *buf = malloc((size_t)t->nbytes);
            CHECK(buf && mc_gguf_read(g, t, 0, buf, (size_t)t->nbytes, &err) == 0 &&
                  memcmp(buf, data + at, (size_t)t->nbytes) == 0);
            free(buf);
        }
        at += t->nbytes;
    }
fail:
    free(data);
    mc_gguf_writer_abort(w);
    mc_gguf_close(g);
}

static void test_writer_refusals(void)
{
    char path[600];
    mc_error err = { 0 };
    mc_gguf_writer *w = NULL;
    snprintf(path, sizeof path, "%s/refuse.gguf", mc_test_tmpdir());
    uint64_t ne[2] = { 100, 2 };
    static const struct { int type; uint64_t ne0; const char *name; const char *words; } bad[] = {
        { MC_T_Q4_K, 100, "x", "block size" },
        { 4, 32, "x", "type 4" },
        { 31, 32, "x", "type 31" },
        { MC_T_U8, 32, "x", "type 65" },
        { MC_T_F32, 32, "", "name" },
        { MC_T_F32, 32, "0123456789012345678901234567890123456789012345678901234567890123", "name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_error_clear(&err);
        W(mc_gguf_writer_create(&w, path, NULL, &err));
        ne[0] = bad[i].ne0;
        CHECKF(mc_gguf_writer_add_tensor(w, bad[i].name, bad[i].type, 2, ne, &err) == MC_ERR_ARG && strstr(err.msg, bad[i].words),
               "case %zu: %s", i, err.msg);
        CHECK(mc_gguf_writer_commit(w, &err) != 0); /* refuses after a failure, and frees */
        w = NULL;
        CHECK(!mc_io_exists(path));
    }
    mc_error_clear(&err);
    W(mc_gguf_writer_create(&w, path, NULL, &err));
    ne[0] = 32;
    W(mc_gguf_writer_add_tensor(w, "a", MC_T_F32, 2, ne, &err));
    CHECK(mc_gguf_writer_add_tensor(w, "a", MC_T_F16, 2, ne, &err) == MC_ERR_ARG && strstr(err.msg, "duplicate tensor name 'a'"));
    mc_gguf_writer_abort(w);
    w = NULL;
    mc_error_clear(&err);
    W(mc_gguf_writer_create(&w, path, NULL, &err));
    W(mc_gguf_writer_add_tensor(w, "a", MC_T_F32, 2, ne, &err));
    W(mc_gguf_writer_write(w, "abcd", 4, &err));
    CHECK(mc_gguf_writer_add_u32(w, "late", 1, &err) == MC_ERR_ARG); /* metadata after data */
    mc_gguf_writer_abort(w);
    w = NULL;
    mc_error_clear(&err);
    W(mc_gguf_writer_create(&w, path, NULL, &err));
    W(mc_gguf_writer_add_tensor(w, "a", MC_T_F32, 2, ne, &err));
    W(mc_gguf_writer_write(w, "abcd", 4, &err));
    CHECK(mc_gguf_writer_commit(w, &err) == MC_ERR_ARG && strstr(err.msg, "'a' got 4 of its 256 bytes"));
    w = NULL;
    CHECK(!mc_io_exists(path));
    mc_error_clear(&err);
    W(mc_gguf_writer_create(&w, path, NULL, &err));
    W(mc_gguf_writer_add_tensor(w, "a", MC_T_F32, 2, ne, &err));
    CHECK(mc_gguf_writer_add_u32(w, "general.alignment", 64, &err) == MC_ERR_ARG && strstr(err.msg, "before the tensor infos"));
    mc_gguf_writer_abort(w);
    w = NULL;
    mc_error_clear(&err);
    mc_gguf_write_opts o = { .alignment = 48 };
    CHECK(mc_gguf_writer_create(&w, path, &o, &err) == MC_ERR_ARG && w == NULL);
fail:
    mc_gguf_writer_abort(w);
}

/* ---- split sets ---- */

typedef struct split_cfg {
    int count_key[3]; /* split.count written in each shard (0 = 3) */
    int no_key[3];    /* split.no written (-1 = the right one) */
    int tensors_delta;
    int dup;          /* shard 3 repeats tensor 0 */
} split_cfg;

/* Re-shard src into PREFIX-0000k-of-00003.gguf, copying tensor bytes. */
static int write_split(const mc_gguf *src, const char *prefix, const split_cfg *c)
{
    mc_error err = { 0 };
    int rc = 0;
    uint64_t n = src->n_tensors;
    for (uint32_t k = 0; k < 3 && !rc; k++) {
        char *p = mc_gguf_split_path(prefix, strlen(prefix), k + 1, 3);
        mc_gguf_writer *w = NULL;
        mc_gguf_write_opts o = { .force = 1 };
        rc = mc_gguf_writer_create(&w, p, &o, &err);
        if (!rc && k == 0)
            for (uint64_t i = 0; i < src->n_kv && !rc; i++) rc = mc_gguf_writer_copy_kv(w, &src->kv[i], &err);
        if (!rc) rc = mc_gguf_writer_add_u16(w, "split.no", (uint16_t)(c->no_key[k] >= 0 ? c->no_key[k] : (int)k), &err);
        if (!rc) rc = mc_gguf_writer_add_u16(w, "split.count", (uint16_t)(c->count_key[k] ? c->count_key[k] : 3), &err);
        if (!rc) rc = mc_gguf_writer_add_i32(w, "split.tensors.count", (int32_t)(n + (uint64_t)c->dup + (uint64_t)c->tensors_delta), &err);
        uint64_t lo = n * k / 3, hi = n * (k + 1) / 3;
        for (int pass = 0; pass < 2 && !rc; pass++) /* pass 0: infos, pass 1: data */
            for (uint64_t i = lo; i < hi + (k == 2 && c->dup ? 1 : 0) && !rc; i++) {
                const mc_gguf_tensor *t = &src->tensors[i < hi ? i : 0];
                if (pass == 0) {
                    rc = mc_gguf_writer_add_tensor(w, t->name.s, t->type, t->n_dims, t->ne, &err);
                    continue;
                }
                rc = mc_test_gguf_copy_data(w, src, t, &err);
            }
        if (!rc) rc = mc_gguf_writer_commit(w, &err);
        else mc_gguf_writer_abort(w);
        CHECKF(rc == 0, "writing %s: %s", p, err.msg);
        free(p);
    }
    return rc;
}

static void expect_split_error(const mc_gguf *src, const char *name, const split_cfg *c, int open_no, const char *w1, const char *w2)
{
    char prefix[600], *p;
    snprintf(prefix, sizeof prefix, "%s/%s", mc_test_tmpdir(), name);
    if (write_split(src, prefix, c)) return;
    p = mc_gguf_split_path(prefix, strlen(prefix), (uint32_t)open_no, 3);
    mc_gguf *g = NULL;
    mc_error err = { 0 };
    int rc = mc_gguf_open(p, &g, &err);
    CHECKF(rc != 0 && g == NULL, "%s opened but should not", p);
    CHECKF(strstr(err.msg, w1) && (!w2 || strstr(err.msg, w2)), "%s: expected '%s' / '%s' in: %s", name, w1, w2 ? w2 : "", err.msg);
    printf("split refused as expected: %s\n", err.msg);
    mc_gguf_close(g);
    free(p);
}

static void test_split(void)
{
    const char *orig = mc_test_corpus_file("models/llama/gguf/llama-bf16.gguf");
    if (!orig) return;
    mc_gguf *src = NULL, *g = NULL;
    mc_error err = { 0 };
    char prefix[600];
    unsigned char *a = NULL, *b = NULL;
    /* Failed opens must close only what they opened (not descriptor 0). */
    int stdin_open = fcntl(0, F_GETFD) != -1;
    W(mc_gguf_open(orig, &src, &err));
    snprintf(prefix, sizeof prefix, "%s/llama", mc_test_tmpdir());
    split_cfg ok = { { 0, 0, 0 }, { -1, -1, -1 }, 0, 0 };
    if (write_split(src, prefix, &ok)) goto fail;
    char *p2 = mc_gguf_split_path(prefix, strlen(prefix), 2, 3);
    uint32_t no = 0, cnt = 0;
    CHECK(mc_gguf_split_name(p2, &no, &cnt) == strlen(prefix) && no == 2 && cnt == 3);
    CHECK(mc_gguf_split_name("x-0001-of-00003.gguf", NULL, NULL) == 0);
    int rc = mc_gguf_open(p2, &g, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK_EQ_U64(g->n_shards, 3);
        CHECK_EQ_U64(g->n_tensors, src->n_tensors);
        CHECK_EQ_U64(g->n_kv, src->n_kv + 3);
        CHECK_STR(mc_gguf_arch(g), "llama");
        CHECK(g->shards[0].n_kv == src->n_kv + 3 && g->shards[1].n_kv == 3 && g->shards[2].n_kv == 3);
        for (uint64_t i = 0; i < src->n_tensors; i++) {
            const mc_gguf_tensor *t0 = &src->tensors[i], *t = mc_gguf_find_tensor(g, t0->name.s);
            CHECKF(t != NULL, "tensor %s missing from the split set", t0->name.s);
            if (!t) continue;
            CHECK_EQ_U64(t->shard, i * 3 / src->n_tensors);
            CHECK(t->type == t0->type && t->nbytes == t0->nbytes && memcmp(t->ne, t0->ne, sizeof t->ne) == 0);
            a = malloc((size_t)t->nbytes);
            b = malloc((size_t)t->nbytes);
            CHECK(a && b && mc_gguf_read(src, t0, 0, a, (size_t)t0->nbytes, &err) == 0 &&
                  mc_gguf_read(g, t, 0, b, (size_t)t->nbytes, &err) == 0 && memcmp(a, b, (size_t)t->nbytes) == 0);
            free(a);
            free(b);
            a = b = NULL;
        }
        mc_gguf_close(g);
        g = NULL;
    }
    /* The shard alone, without following the split keys. */
    mc_error_clear(&err);
    CHECK(mc_gguf_open_single(p2, &g, &err) == 0 && g->n_shards == 1 &&
          g->n_tensors == src->n_tensors * 2 / 3 - src->n_tensors / 3);
    mc_gguf_close(g);
    g = NULL;
    /* A missing shard is named. */
    char *p3 = mc_gguf_split_path(prefix, strlen(prefix), 3, 3);
    char moved[700];
    snprintf(moved, sizeof moved, "%s.away", p3);
    CHECK(rename(p3, moved) == 0);
    mc_error_clear(&err);
    CHECK(mc_gguf_open(p2, &g, &err) == MC_ERR_NOTFOUND && g == NULL);
    CHECKF(strstr(err.msg, "shard 3") && strstr(err.msg, "llama-00003-of-00003.gguf") && strstr(err.msg, "missing"), "%s", err.msg);
    printf("split refused as expected: %s\n", err.msg);
    CHECK(rename(moved, p3) == 0);
    /* A damaged shard is named: shard 3 cut short in its tensor data. */
    size_t l3 = 0;
    unsigned char *d3 = mc_test_read_file(p3, &l3);
    CHECK(d3 && l3 > 100 && mc_test_write_file(p3, d3, l3 - 100) == 0);
    mc_error_clear(&err);
    CHECK(mc_gguf_open(p2, &g, &err) == MC_ERR_FORMAT && g == NULL);
    CHECKF(strstr(err.msg, "llama-00003-of-00003.gguf: tensor '") && strstr(err.msg, "extends past end of file"), "%s", err.msg);
    printf("split refused as expected: %s\n", err.msg);
    CHECK(d3 && mc_test_write_file(p3, d3, l3) == 0);
    free(d3);
    free(p3);
    free(p2);

    split_cfg c1 = { { 0, 4, 0 }, { -1, -1, -1 }, 0, 0 };
    expect_split_error(src, "cnt", &c1, 1, "split.count 4", "cnt-00002-of-00003.gguf");
    split_cfg c1b = { { 4, 0, 0 }, { -1, -1, -1 }, 0, 0 };
    expect_split_error(src, "cntb", &c1b, 2, "split.count 4", "cntb-00001-of-00003.gguf");
    split_cfg c2 = { { 0, 0, 0 }, { -1, -1, 1 }, 0, 0 };
    expect_split_error(src, "no", &c2, 1, "split.no 1", "no-00003-of-00003.gguf");
    split_cfg c3 = { { 0, 0, 0 }, { -1, -1, -1 }, 1, 0 };
    expect_split_error(src, "tc", &c3, 3, "split.tensors.count", NULL);
    split_cfg c4 = { { 0, 0, 0 }, { -1, -1, -1 }, 0, 1 };
    expect_split_error(src, "dup", &c4, 2, "appears in shard 1", "again in shard 3");
    if (stdin_open) CHECKF(fcntl(0, F_GETFD) != -1, "descriptor 0 was closed by a failed split open");
fail:
    free(a);
    free(b);
    mc_gguf_close(g);
    mc_gguf_close(src);
}

int main(void)
{
    test_corpus_facts();
    test_quant_vectors();
    test_model_facts();
    test_bad_files();
    for (uint32_t v = 1; v <= 3; v++) test_writer_roundtrip(v, 0);
    test_writer_roundtrip(3, 64);
    test_writer_roundtrip(2, 4096);
    test_writer_refusals();
    test_split();
    return mc_test_finish("test_gguf");
}
