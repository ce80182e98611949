/* Safetensors reader: every corpus file and folder against an independent
 * Python reader (tests/tools/st_facts.py), hostile inputs built here, and
 * truncation / byte flips over real headers. */
#include "mc_test.h"
#include "mc_safetensors.h"
#include "mc_types.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

typedef unsigned long long ull;

/* ---- comparison with st_facts.py ---- */

static cJSON *facts(const char *path)
{
    char *out = NULL;
    int rc = mc_test_run(&out, "python3 '%s/tests/tools/st_facts.py' '%s'", MCONV_SOURCE_DIR, path);
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    CHECKF(j != NULL, "st_facts.py %s failed (%d): %.300s", path, rc, out ? out : "");
    free(out);
    return j;
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

/* Compare st (opened from path) with the facts; values too. */
static void compare(const mc_st *st, const cJSON *f, const char *path)
{
    const cJSON *tensors = cJSON_GetObjectItem(f, "tensors"), *t;
    const cJSON *files = cJSON_GetObjectItem(f, "files");
    CHECKF((uint64_t)cJSON_GetArraySize(tensors) == st->n_tensors, "%s: %d tensors vs %llu", path,
           cJSON_GetArraySize(tensors), (ull)st->n_tensors);
    CHECK_EQ_U64(cJSON_GetArraySize(files), st->n_files);
    for (uint32_t i = 0; i < st->n_files && i < (uint32_t)cJSON_GetArraySize(files); i++) {
        const cJSON *fi = cJSON_GetArrayItem(files, (int)i);
        CHECK_STR(st->files[i].name, cJSON_GetObjectItem(fi, "name")->valuestring);
        CHECK_EQ_U64(st->files[i].header_len, (uint64_t)cJSON_GetObjectItem(fi, "header_len")->valuedouble);
        CHECK_EQ_U64(st->files[i].file.size, (uint64_t)cJSON_GetObjectItem(fi, "size")->valuedouble);
    }
    cJSON_ArrayForEach(t, tensors) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const mc_st_tensor *m = mc_st_find(st, name);
        CHECKF(m != NULL, "%s: tensor %s not found", path, name);
        if (!m) continue;
        CHECKF(m->type == mc_type_from_st_name(cJSON_GetObjectItem(t, "dtype")->valuestring), "%s: %s type %s",
               path, name, mc_type_name(m->type));
        const cJSON *shape = cJSON_GetObjectItem(t, "shape");
        CHECK_EQ_U64(m->n_dims, cJSON_GetArraySize(shape));
        for (uint32_t d = 0; d < m->n_dims && d < (uint32_t)cJSON_GetArraySize(shape); d++)
            CHECK_EQ_U64(m->shape[d], (uint64_t)cJSON_GetArrayItem(shape, (int)d)->valuedouble);
        CHECK_EQ_U64(m->file_offset, (uint64_t)cJSON_GetObjectItem(t, "offset")->valuedouble);
        CHECK_EQ_U64(m->nbytes, (uint64_t)cJSON_GetObjectItem(t, "nbytes")->valuedouble);
        CHECK_EQ_U64(m->data_begin,
                     (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(t, "data_offsets"), 0)->valuedouble);
        CHECK_STR(st->files[m->file].name, cJSON_GetObjectItem(t, "file")->valuestring);
        /* values: first 64 bytes and the byte sum of the whole tensor */
        unsigned char *buf = malloc(m->nbytes ? (size_t)m->nbytes : 1);
        mc_error e = { 0 };
        CHECK(buf != NULL);
        if (!buf) continue;
        int rc = mc_st_read(st, m, 0, buf, (size_t)m->nbytes, &e);
        CHECKF(rc == 0, "%s: read %s: %s", path, name, e.msg);
        char hex[129];
        hexs(buf, m->nbytes < 64 ? (size_t)m->nbytes : 64, hex);
        CHECK_STR(hex, cJSON_GetObjectItem(t, "head")->valuestring);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < m->nbytes; i++) sum += buf[i];
        CHECK_EQ_U64(sum, (uint64_t)cJSON_GetObjectItem(t, "sum")->valuedouble);
        /* a read of the tail through an offset */
        if (m->nbytes > 3) {
            unsigned char tail[3];
            CHECK(mc_st_read(st, m, m->nbytes - 3, tail, 3, &e) == 0 && memcmp(tail, buf + m->nbytes - 3, 3) == 0);
        }
        free(buf);
    }
    /* tensors ordered by file, then by offset */
    for (uint64_t i = 1; i < st->n_tensors; i++) {
        const mc_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        CHECK(a->file < b->file || (a->file == b->file && a->file_offset + a->nbytes == b->file_offset));
    }
    const cJSON *meta = cJSON_GetObjectItem(f, "metadata"), *kv;
    CHECK_EQ_U64(st->n_meta, cJSON_IsObject(meta) ? cJSON_GetArraySize(meta) : 0);
    cJSON_ArrayForEach(kv, meta) CHECK_STR(mc_st_meta_get(st, kv->string), kv->valuestring);
}

static int have_python(void)
{
    static int have = -1;
    if (have < 0) have = mc_test_run(NULL, "python3 -c 'import json, struct'") == 0;
    return have;
}

static void check_path(const char *rel)
{
    const char *path = mc_test_corpus_file(rel);
    if (!path) return;
    if (!have_python()) {
        mc_test_skip("python3 absent: no independent facts for %s", rel);
        return;
    }
    cJSON *f = facts(path);
    mc_st *st = NULL;
    mc_error e = { 0 };
    int rc = mc_st_open(path, &st, &e);
    CHECKF(rc == 0, "open %s: %s", path, e.msg);
    if (st && f) compare(st, f, path);
    mc_st_close(st);
    /* the in-memory parser gives the same result for single files */
    size_t len = 0;
    unsigned char *img = NULL;
    struct stat sb;
    if (f && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (img = mc_test_read_file(path, &len))) {
        rc = mc_st_parse_mem(img, len, path, &st, &e);
        CHECKF(rc == 0, "parse_mem %s: %s", path, e.msg);
        if (!rc) compare(st, f, path);
        mc_st_close(st);
        free(img);
    }
    cJSON_Delete(f);
}

/* Named in the corpus README: these must be there. */
static const char *const g_corpus[] = {
    "models/llama/hf", "models/qwen3/hf", "models/qwen3_moe/hf", "models/qwen3_moe/hf-sharded",
    "models/mixtral/hf", "models/phi3/hf", "models/deepseek_v3/hf", "models/qwen3_5_moe/hf",
    "models/gemma3/hf", "external/safetensors/overall.safetensors", "external/safetensors/minicpm3-tiny.safetensors",
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Entries of corpus folder rel (sorted; NULL-terminated; free with free_list). */
static char **list_dir(const char *rel)
{
    const char *root = mc_test_corpus();
    char path[1400];
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    snprintf(path, sizeof path, "%s/%s", root, rel);
    DIR *d = opendir(path);
    struct dirent *de;
    while (v && d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (n + 2 > cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[n] = malloc(strlen(rel) + strlen(de->d_name) + 2);
        sprintf(v[n++], "%s/%s", rel, de->d_name);
    }
    if (d) closedir(d);
    if (!v) return NULL;
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

static int ends_with(const char *s, const char *t)
{
    size_t a = strlen(s), b = strlen(t);
    return a >= b && strcmp(s + a - b, t) == 0;
}

/* Every safetensors file and checkpoint folder of the corpus: each
 * models/NAME/hf* folder, each file in it, and every file in
 * external/safetensors. */
static void test_corpus(void)
{
    size_t files = 0, folders = 0;
    for (size_t i = 0; i < sizeof g_corpus / sizeof g_corpus[0]; i++)
        if (!mc_test_corpus_file(g_corpus[i])) return; /* skipped (reported) */
    char **models = list_dir("models");
    for (size_t i = 0; models && models[i]; i++) {
        char **subs = list_dir(models[i]);
        for (size_t j = 0; subs && subs[j]; j++) {
            const char *base = strrchr(subs[j], '/') + 1;
            if (strncmp(base, "hf", 2) != 0) continue;
            check_path(subs[j]);
            folders++;
            char **fs = list_dir(subs[j]);
            for (size_t k = 0; fs && fs[k]; k++)
                if (ends_with(fs[k], ".safetensors")) {
                    check_path(fs[k]);
                    files++;
                }
            free_list(fs);
        }
        free_list(subs);
    }
    free_list(models);
    char **ext = list_dir("external/safetensors");
    for (size_t k = 0; ext && ext[k]; k++)
        if (ends_with(ext[k], ".safetensors")) {
            check_path(ext[k]);
            files++;
        }
    free_list(ext);
    printf("corpus: %zu checkpoint folders and %zu safetensors files compared with st_facts.py\n", folders, files);
    CHECK(folders >= 9 && files >= 23);
}

/* Facts the samples state about themselves: overall holds 9 basic dtypes with
 * an unpadded header; minicpm3's header is padded with spaces. */
static void test_corpus_specifics(void)
{
    const char *p = mc_test_corpus_file("external/safetensors/overall.safetensors");
    mc_st *st = NULL;
    mc_error e = { 0 };
    if (p && mc_st_open(p, &st, &e) == 0) {
        static const struct { const char *n; int t; } want[] = {
            { "B", MC_T_U8 }, { "H", MC_T_U16 }, { "I", MC_T_U32 }, { "b", MC_T_I8 }, { "d", MC_T_F64 },
            { "e", MC_T_F16 }, { "f", MC_T_F32 }, { "h", MC_T_I16 }, { "i", MC_T_I32 },
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            const mc_st_tensor *t = mc_st_find(st, want[i].n);
            CHECKF(t && t->type == want[i].t && t->n_dims == 1 && t->shape[0] == 6, "overall %s", want[i].n);
        }
        CHECK(st->files[0].header_len % 8 != 0);
        CHECK_STR(mc_st_meta_get(st, "test"), "a");
        CHECK(mc_st_find(st, "x") == NULL);
    }
    mc_st_close(st);
    st = NULL;
    p = mc_test_corpus_file("external/safetensors/minicpm3-tiny.safetensors");
    if (p) {
        size_t len = 0;
        unsigned char *img = mc_test_read_file(p, &len);
        CHECK(img && len > 8);
        if (img) {
            uint64_t h = 0;
            for (int i = 7; i >= 0; i--) h = (h << 8) | img[i];
            CHECK(h % 8 == 0 && img[8 + h - 1] == ' ');
            CHECK(mc_st_parse_mem(img, len, p, &st, &e) == 0);
            mc_st_close(st);
            st = NULL;
            free(img);
        }
    }
    p = mc_test_corpus_file("models/qwen3_moe/hf-sharded");
    if (p && mc_st_open(p, &st, &e) == 0) {
        CHECK(st->is_dir && st->index_path && st->index && st->n_files == 8 && st->n_unindexed == 0);
        CHECK(st->config && cJSON_IsObject(st->config));
        int gen = 0;
        for (uint32_t i = 0; i < st->n_tokenizer_files; i++)
            gen += strcmp(st->tokenizer_files[i], "generation_config.json") == 0;
        CHECK(gen == 1);
        const cJSON *mt = cJSON_GetObjectItem(st->config, "model_type");
        CHECK(cJSON_IsString(mt) && strcmp(mt->valuestring, "qwen3_moe") == 0);
    }
    mc_st_close(st);
}

/* ---- hostile files built here ---- */

static const char *tmp_path(const char *name)
{
    static char b[4][1024];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 1024, "%s/%s", mc_test_tmpdir(), name);
    return p;
}

/* Write an image: 8-byte length (hlen_override if non-zero), header text,
 * then data_len bytes of data. */
static void write_st(const char *path, const char *header, uint64_t hlen_override, size_t data_len)
{
    size_t hl = strlen(header);
    size_t n = 8 + hl + data_len;
    unsigned char *b = calloc(1, n);
    uint64_t v = hlen_override ? hlen_override : hl;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (unsigned char)(i * 7);
    CHECK(mc_test_write_file(path, b, n) == 0);
    free(b);
}

typedef struct bad_case {
    const char *label;
    const char *header;
    uint64_t hlen;  /* 0: the header's own length */
    size_t data;
    int code;
    const char *needle; /* must appear in the message */
} bad_case;

static const bad_case g_bad[] = {
    { "len_past_eof", "{}", 1000, 0, MC_ERR_FORMAT, "runs past the end" },
    { "len_over_limit", "{}", 100000001, 0, MC_ERR_FORMAT, "exceeds the safetensors limit" },
    { "not_json", "{\"a\":", 0, 0, MC_ERR_FORMAT, "not valid JSON" },
    { "json_array", "[1,2]", 0, 0, MC_ERR_FORMAT, "is an array, expected a JSON object" },
    { "empty_header", "", 0, 0, MC_ERR_FORMAT, "empty" },
    { "trailing_junk", "{}  x", 0, 0, MC_ERR_FORMAT, "trailing bytes" },
    { "nul_padding", "{}\0", 3, 0, MC_ERR_FORMAT, "control byte" },
    { "bad_utf8", "{\"a\xff\":1}", 0, 0, MC_ERR_FORMAT, "not valid UTF-8" },
    { "overlap", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 0, 6, MC_ERR_FORMAT, "overlap" },
    { "gap", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}", 0, 10, MC_ERR_FORMAT, "gap" },
    { "not_from_zero", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 0, 6, MC_ERR_FORMAT, "gap" },
    { "reversed", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0, 4, MC_ERR_FORMAT,
      "end before they begin" },
    { "size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 0, 20, MC_ERR_FORMAT,
      "needs 24" },
    { "unknown_dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 0, 1, MC_ERR_FORMAT,
      "unknown dtype 'Q4'" },
    { "fnuz_dtype", "{\"a\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 2,
      MC_ERR_UNSUPPORTED, "not supported" },
    { "negative_offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 0, 1, MC_ERR_FORMAT,
      "plain decimal" },
    { "fraction_offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]}}", 0, 1, MC_ERR_FORMAT,
      "plain decimal" },
    { "exponent_dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e0],\"data_offsets\":[0,1]}}", 0, 1, MC_ERR_FORMAT,
      "plain decimal" },
    { "offset_2p60", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1152921504606846976,1152921504606846977]}}",
      0, 1, MC_ERR_UNSUPPORTED, "2^53" },
    { "offset_2p53", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,9007199254740993]}}", 0, 1,
      MC_ERR_UNSUPPORTED, "2^53" },
    { "shape_overflow", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,1]}}", 0, 1,
      MC_ERR_OVERFLOW, "overflows" },
    { "bytes_overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,1]}}", 0, 1,
      MC_ERR_OVERFLOW, "overflows" },
    { "duplicate_name", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2, MC_ERR_FORMAT,
      "appears twice" },
    { "duplicate_field", "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
      MC_ERR_FORMAT, "field 'dtype' appears twice" },
    { "duplicate_metadata", "{\"__metadata__\":{\"x\":\"1\"},\"__metadata__\":{}}", 0, 0, MC_ERR_FORMAT,
      "__metadata__ appears twice" },
    { "metadata_number", "{\"__metadata__\":{\"x\":1}}", 0, 0, MC_ERR_FORMAT, "expected a string" },
    { "metadata_array", "{\"__metadata__\":[]}", 0, 0, MC_ERR_FORMAT, "expected an object of strings" },
    { "metadata_dup_key", "{\"__metadata__\":{\"x\":\"1\",\"x\":\"2\"}}", 0, 0, MC_ERR_FORMAT, "'x' appears twice" },
    { "truncated_data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 10, MC_ERR_FORMAT,
      "truncated" },
    { "extra_data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 10, MC_ERR_FORMAT,
      "extra bytes" },
    { "f4_half_byte", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 0, 2, MC_ERR_FORMAT,
      "whole bytes" },
    { "f6_partial", "{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[2,3],\"data_offsets\":[0,5]}}", 0, 5, MC_ERR_FORMAT,
      "whole bytes" },
    { "too_many_dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1,
      MC_ERR_UNSUPPORTED, "dimensions" },
    { "shape_string", "{\"a\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", 0, 1, MC_ERR_FORMAT,
      "expected integers" },
    { "offsets_three", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 0, 1, MC_ERR_FORMAT,
      "[begin, end]" },
    { "no_dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, MC_ERR_FORMAT, "dtype is missing" },
    { "tensor_not_object", "{\"a\":7}", 0, 0, MC_ERR_FORMAT, "expected an object" },
    { "nul_escape", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, MC_ERR_FORMAT,
      "NUL character" },
    { "leading_zero", "{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 0, 1, MC_ERR_FORMAT,
      "plain decimal" },
};

static void test_hostile(void)
{
    for (size_t i = 0; i < sizeof g_bad / sizeof g_bad[0]; i++) {
        const bad_case *c = &g_bad[i];
        char name[128];
        snprintf(name, sizeof name, "bad-%s.safetensors", c->label);
        const char *p = tmp_path(name);
        /* headers with embedded NULs carry their length explicitly */
        if (c->hlen && c->hlen < 8 && strlen(c->header) < c->hlen) {
            unsigned char b[16] = { 0 };
            b[0] = (unsigned char)c->hlen;
            memcpy(b + 8, c->header, (size_t)c->hlen);
            CHECK(mc_test_write_file(p, b, 8 + (size_t)c->hlen) == 0);
        } else {
            write_st(p, c->header, c->hlen, c->data);
        }
        mc_st *st = NULL;
        mc_error e = { 0 };
        int rc = mc_st_open(p, &st, &e);
        CHECKF(rc == c->code, "%s: rc %d (want %d): %s", c->label, rc, c->code, e.msg);
        CHECKF(st == NULL, "%s", c->label);
        CHECKF(strstr(e.msg, name) != NULL, "%s: message does not name the file: %s", c->label, e.msg);
        CHECKF(strstr(e.msg, c->needle) != NULL, "%s: message lacks \"%s\": %s", c->label, c->needle, e.msg);
        mc_st_close(st);
    }
    /* files too short for the length prefix */
    for (size_t n = 0; n < 8; n++) {
        const char *p = tmp_path("short.safetensors");
        unsigned char z[8] = { 2 };
        CHECK(mc_test_write_file(p, z, n) == 0);
        mc_st *st = NULL;
        mc_error e = { 0 };
        CHECK(mc_st_open(p, &st, &e) == MC_ERR_FORMAT && strstr(e.msg, "too short"));
        mc_st_close(st);
    }
}

/* Things that are valid although unusual. */
static void test_accepted(void)
{
    static const char *const ok[] = {
        /* key order free, zero-size and scalar tensors, unknown field, null metadata, padding */
        "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},\"__metadata__\":null,"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"extra\":1},"
        "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,7],\"data_offsets\":[6,6]}}  \n\t ",
        "{}",
        "{\"f4\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]},"
        "\"f6\":{\"dtype\":\"F6_E3M2\",\"shape\":[8],\"data_offsets\":[3,9]},"
        "\"c\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[9,17]}}",
        /* JSON whitespace of every kind between tokens; escapes in names */
        "\r\n{ \"a\\u00e9\\n\" :\t{ \"dtype\" : \"I8\" , \"shape\" : [ 2 ] ,\n\"data_offsets\" : [ 0 , 2 ] }\n}\n",
    };
    static const size_t data[] = { 6, 0, 17, 2 };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *p = tmp_path("ok.safetensors");
        write_st(p, ok[i], 0, data[i]);
        mc_st *st = NULL;
        mc_error e = { 0 };
        int rc = mc_st_open(p, &st, &e);
        CHECKF(rc == 0, "ok[%zu]: %s", i, e.msg);
        if (rc) continue;
        if (i == 0) {
            CHECK_EQ_U64(st->n_tensors, 3);
            CHECK_STR(st->tensors[0].name, "a");
            CHECK(st->tensors[0].n_dims == 0 && st->tensors[0].nelements == 1 && st->tensors[0].nbytes == 4);
            const mc_st_tensor *z = mc_st_find(st, "z");
            CHECK(z && z->nbytes == 0 && z->nelements == 0 && z->n_dims == 2);
            CHECK(st->n_meta == 0);
            CHECK_EQ_U64(st->files[0].data_offset, 8 + strlen(ok[0]));
        }
        if (i == 3) {
            const mc_st_tensor *t = mc_st_find(st, "a\xc3\xa9\n");
            CHECK(t && t->type == MC_T_I8 && t->nbytes == 2);
        }
        if (i == 2) {
            const mc_st_tensor *t = mc_st_find(st, "f6");
            CHECK(t && t->type == MC_T_F6_E3M2 && t->nbytes == 6);
            t = mc_st_find(st, "f4");
            CHECK(t && t->type == MC_T_F4 && t->nbytes == 3 && t->nelements == 6);
            t = mc_st_find(st, "c");
            CHECK(t && t->type == MC_T_C64 && t->nbytes == 8);
            unsigned char b[9];
            CHECK(mc_st_read(st, t, 1, b, 8, &e) == MC_ERR_ARG);
        }
        mc_st_close(st);
    }
}

/* ---- folders with an index ---- */

static void mkdir_p(const char *p) { mkdir(p, 0755); }

static int open_dir_rc(const char *dir, mc_st **st, mc_error *e)
{
    *st = NULL;
    memset(e, 0, sizeof *e);
    return mc_st_open(dir, st, e);
}

static void test_index(void)
{
    char dir[1024], p[1100];
    snprintf(dir, sizeof dir, "%s/idx", mc_test_tmpdir());
    mkdir_p(dir);
    snprintf(p, sizeof p, "%s/a.safetensors", dir);
    write_st(p, "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 2);
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    write_st(p, "{\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}", 0, 4);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    static const struct { const char *json; int code; const char *needle; } cases[] = {
        { "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"b.safetensors\"}}", 0, NULL },
        { "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"c.safetensors\"}}", MC_ERR_NOTFOUND, "'c.safetensors'" },
        { "{\"weight_map\":{\"x\":\"a.safetensors\",\"z\":\"a.safetensors\"}}", MC_ERR_NOTFOUND, "'z'" },
        { "{\"weight_map\":{\"x\":\"b.safetensors\"}}", MC_ERR_NOTFOUND, "does not hold it" },
        { "{\"weight_map\":{\"x\":\"a.safetensors\",\"x\":\"a.safetensors\"}}", MC_ERR_FORMAT, "twice" },
        { "{\"weight_map\":{\"x\":\"../a.safetensors\"}}", MC_ERR_FORMAT, "not a file inside" },
        { "{\"weight_map\":{\"x\":\"/etc/passwd\"}}", MC_ERR_FORMAT, "not a file inside" },
        { "{\"weight_map\":{\"x\":3}}", MC_ERR_FORMAT, "expected a file name" },
        { "{\"weight_map\":{}}", MC_ERR_FORMAT, "empty" },
        { "{\"metadata\":{}}", MC_ERR_FORMAT, "weight_map is missing" },
        { "[]", MC_ERR_FORMAT, "expected a JSON object" },
        { "{\"weight_map\":", MC_ERR_FORMAT, "not valid JSON" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(mc_test_write_file(p, cases[i].json, strlen(cases[i].json)) == 0);
        mc_st *st;
        mc_error e;
        int rc = open_dir_rc(dir, &st, &e);
        CHECKF(rc == cases[i].code, "index case %zu: rc %d: %s", i, rc, e.msg);
        if (cases[i].needle)
            CHECKF(strstr(e.msg, cases[i].needle) && strstr(e.msg, "model.safetensors.index.json"),
                   "index case %zu: %s", i, e.msg);
        if (rc == 0) {
            /* w is in b but not in the index: accepted, counted */
            CHECK(st->n_files == 2 && st->n_tensors == 3 && st->n_unindexed == 1);
            const mc_st_tensor *w = mc_st_find(st, "w"), *y = mc_st_find(st, "y");
            CHECK(w && !w->indexed && y && y->indexed && y->file == 1);
            CHECK_STR(st->files[1].name, "b.safetensors");
            CHECK(st->config == NULL && st->n_tokenizer_files == 0);
            unsigned char v[3];
            CHECK(mc_st_read(st, y, 0, v, 3, &e) == 0 && v[0] == 0 && v[1] == 7 && v[2] == 14);
        }
        mc_st_close(st);
    }
    /* the same tensor in two shards */
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    write_st(p, "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 2);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    const char *j = "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"b.safetensors\"}}";
    CHECK(mc_test_write_file(p, j, strlen(j)) == 0);
    mc_st *st;
    mc_error e;
    CHECK(open_dir_rc(dir, &st, &e) == MC_ERR_FORMAT && strstr(e.msg, "in both"));
    mc_st_close(st);
    /* a bad shard is named in the message */
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    write_st(p, "{\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 0, 2);
    CHECK(open_dir_rc(dir, &st, &e) == MC_ERR_FORMAT && strstr(e.msg, "b.safetensors") && strstr(e.msg, "truncated"));
    mc_st_close(st);
    /* a malformed config.json is refused, naming it */
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    write_st(p, "{\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 0, 3);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(mc_test_write_file(p, "{\"a\":", 5) == 0);
    CHECK(open_dir_rc(dir, &st, &e) == MC_ERR_FORMAT && strstr(e.msg, "config.json"));
    mc_st_close(st);
    CHECK(mc_test_write_file(p, "{\"model_type\":\"llama\",\"x\":1.5e3}", 32) == 0);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    CHECK(mc_test_write_file(p, "{}", 2) == 0);
    CHECK(open_dir_rc(dir, &st, &e) == 0 && st->config && st->n_tokenizer_files == 1 &&
          strcmp(st->tokenizer_files[0], "tokenizer.json") == 0);
    mc_st_close(st);
    /* no index, no model.safetensors: model*.safetensors, sorted */
    snprintf(dir, sizeof dir, "%s/glob", mc_test_tmpdir());
    mkdir_p(dir);
    CHECK(open_dir_rc(dir, &st, &e) == MC_ERR_NOTFOUND && strstr(e.msg, "glob"));
    mc_st_close(st);
    snprintf(p, sizeof p, "%s/model-2.safetensors", dir);
    write_st(p, "{\"q\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1);
    snprintf(p, sizeof p, "%s/model-1.safetensors", dir);
    write_st(p, "{\"r\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 0, 2);
    snprintf(p, sizeof p, "%s/other.safetensors", dir);
    write_st(p, "{}", 0, 0);
    CHECK(open_dir_rc(dir, &st, &e) == 0 && st->n_files == 2 && strcmp(st->files[0].name, "model-1.safetensors") == 0 &&
          strcmp(st->tensors[0].name, "r") == 0 && st->index == NULL);
    mc_st_close(st);
    /* index checker for the fuzzer */
    uint64_t ne = 0, ns = 0;
    const char *ix = "{\"metadata\":{\"total_size\":1e3},\"weight_map\":{\"a\":\"s1\",\"b\":\"s2\",\"c\":\"s1\"}}";
    CHECK(mc_st_index_check_mem(ix, strlen(ix), "ix", &ne, &ns, &e) == 0 && ne == 3 && ns == 2);
    CHECK(mc_st_index_check_mem("{", 1, "ix", NULL, NULL, &e) == MC_ERR_FORMAT);
}

/* ---- truncation and byte flips over real headers ---- */

static void mutate(const char *rel)
{
    const char *p = mc_test_corpus_file(rel);
    if (!p) return;
    size_t len = 0;
    unsigned char *img = mc_test_read_file(p, &len);
    CHECK(img && len > 8);
    if (!img || len <= 8) { free(img); return; }
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | img[i];
    size_t end = 8 + (size_t)h + 64 < len ? 8 + (size_t)h + 64 : len - 1;
    int bad_msgs = 0, refused = 0;
    mc_st *st;
    mc_error e;
    for (size_t n = 0; n <= end; n++) { /* every truncation must be refused */
        memset(&e, 0, sizeof e);
        st = NULL;
        int rc = mc_st_parse_mem(img, n, "cut.safetensors", &st, &e);
        refused += rc != 0;
        bad_msgs += rc != 0 && !strstr(e.msg, "cut.safetensors");
        mc_st_close(st);
    }
    CHECK_EQ_U64(refused, end + 1);
    CHECK(bad_msgs == 0);
    static const unsigned char flips[] = { 0x01, 0x20, 0x80, 0xff };
    size_t accepted = 0;
    for (size_t i = 0; i < 8 + (size_t)h; i++) {
        for (size_t k = 0; k < sizeof flips; k++) {
            img[i] ^= flips[k];
            memset(&e, 0, sizeof e);
            st = NULL;
            int rc = mc_st_parse_mem(img, len, "flip.safetensors", &st, &e);
            if (rc) bad_msgs += !strstr(e.msg, "flip.safetensors") || (int)e.code != rc;
            else {
                accepted++;
                /* what is accepted is self-consistent */
                uint64_t sum = 0;
                for (uint64_t t = 0; t < st->n_tensors; t++) sum += st->tensors[t].nbytes;
                CHECK(8 + st->files[0].header_len + sum == len);
            }
            mc_st_close(st);
            img[i] ^= flips[k];
        }
    }
    CHECK(bad_msgs == 0);
    printf("%s: %zu truncations refused, %zu of %zu header flips accepted\n", rel, end + 1, accepted,
           (8 + (size_t)h) * sizeof flips);
    free(img);
}

int main(void)
{
    test_hostile();
    test_accepted();
    test_index();
    test_corpus();
    test_corpus_specifics();
    mutate("external/safetensors/overall.safetensors");
    mutate("external/safetensors/minicpm3-tiny.safetensors");
    mutate("models/llama/hf/model.safetensors");
    return mc_test_finish("test_safetensors");
}
