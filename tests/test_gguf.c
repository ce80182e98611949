/* GGUF reader against an independent fact source (tests/tools/gguf_facts.py)
 * over every corpus GGUF, named facts from the corpus README, the bad files,
 * and split sets written with the GGUF writer. */
#include "mc_test.h"
#include "mc_gguf.h"
#include "mc_types.h"

#include <cjson/cJSON.h>
#include <dirent.h>
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

int main(void)
{
    test_corpus_facts();
    test_quant_vectors();
    test_model_facts();
    test_bad_files();
    return mc_test_finish("test_gguf");
}
