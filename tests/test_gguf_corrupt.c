/* Hostile GGUF input: truncations at header and data offsets, byte and bit
 * flips across headers, and hand-built files with absurd counts, lengths,
 * shapes, offsets, names and types. Each must be a clean one-line error or a
 * valid open whose tables are sound: never a crash, a hang or unbounded
 * memory. The file and memory parsers must agree. */
#include "mc_test.h"
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_types.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_opens, g_errors;

/* What must hold for any successfully parsed file of `size` bytes. */
static void check_sound(const mc_gguf *g, uint64_t size, const char *what)
{
    int ok = g->version >= 1 && g->version <= 3 && g->alignment && (g->alignment & (g->alignment - 1)) == 0;
    ok = ok && g->header_mem <= mc_gguf_header_mem_limit(0) && g->header_mem <= 32 * size + (2u << 20);
    for (uint64_t i = 0; i < g->n_tensors && ok; i++) {
        const mc_gguf_tensor *t = &g->tensors[i];
        uint64_t nb = 0, nel = 1;
        for (uint32_t d = 0; d < MC_GGUF_MAX_DIMS; d++) nel *= t->ne[d];
        ok = t->n_dims >= 1 && t->n_dims <= 4 && nel == t->nelements && mc_type_nbytes(t->type, nel, &nb) == 0 &&
             nb == t->nbytes && t->file_offset + t->nbytes <= size && t->file_offset >= g->header_bytes &&
             t->offset % g->alignment == 0 && t->name.len < MC_GGUF_MAX_NAME && t->name.s[t->name.len] == '\0' &&
             mc_gguf_find_tensor(g, t->name.s) != NULL;
    }
    for (uint64_t i = 0; i < g->n_kv && ok; i++) {
        const mc_gguf_kv *kv = &g->kv[i];
        ok = kv->key.len > 0 && kv->type < MC_GGUF_VTYPE_COUNT && kv->key.s[kv->key.len] == '\0';
        if (ok && kv->type == MC_GGUF_ARRAY) {
            ok = kv->arr_type < MC_GGUF_VTYPE_COUNT && kv->arr_type != MC_GGUF_ARRAY;
            if (ok && kv->arr_type == MC_GGUF_STRING) {
                const mc_gguf_str *s = kv->arr;
                uint64_t tot = 0;
                for (uint64_t j = 0; j < kv->arr_n; j++) tot += s[j].len; /* touch every element */
                ok = tot <= size;
            } else if (ok && kv->arr_n) {
                double f;
                ok = mc_gguf_arr_f64(kv, kv->arr_n - 1, &f) == 0;
            }
        }
    }
    CHECKF(ok, "%s: opened but unsound", what);
}

/* Parse bytes [0, size) of d in memory; check the verdict is clean. */
static int try_mem(const unsigned char *d, size_t size, const char *name, mc_error *err)
{
    mc_gguf *g = NULL;
    mc_error_clear(err);
    int rc = mc_gguf_parse_mem(d, size, name, &g, err);
    if (rc == 0) {
        g_opens++;
        CHECK(g != NULL);
        if (g) check_sound(g, size, name);
        mc_gguf_close(g);
    } else {
        g_errors++;
        CHECKF(g == NULL && (int)err->code == rc && err->msg[0] && strchr(err->msg, '\n') == NULL &&
               strncmp(err->msg, name, strlen(name)) == 0, "%s: unclean error rc %d: %s", name, rc, err->msg);
    }
    return rc;
}

static uint64_t tensors_end(const mc_gguf *g)
{
    uint64_t end = g->header_bytes;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].file_offset + g->tensors[i].nbytes > end) end = g->tensors[i].file_offset + g->tensors[i].nbytes;
    return end;
}

static void corrupt_file(const char *rel)
{
    const char *path = mc_test_corpus_file(rel);
    if (!path) return;
    size_t size = 0;
    unsigned char *d = mc_test_read_file(path, &size);
    mc_gguf *ref = NULL;
    mc_error err = { 0 };
    CHECK(d != NULL);
    if (!d || mc_gguf_parse_mem(d, size, "ref", &ref, &err) != 0) {
        CHECKF(0, "%s: %s", path, err.msg);
        free(d);
        return;
    }
    uint64_t hdr = ref->header_bytes, need = tensors_end(ref);
    uint64_t n0 = g_opens, e0 = g_errors;
    const char *name = "corrupt.gguf";

    /* Truncation inside the header: every offset in the first 4 KiB, then a
     * stride; always an error (the counts promise more). */
    uint64_t stride = hdr > 4096 ? (hdr - 4096) / 150 + 1 : 1;
    const uint64_t sparse = mc_test_level() == 1 ? 8 : 1; /* MCONV_TEST_LEVEL=1 (valgrind): fewer samples */
    for (uint64_t cut = 0; cut < hdr; cut += cut < 64 ? 1 : cut < 4096 ? sparse : stride * sparse) {
        int rc = try_mem(d, (size_t)cut, name, &err);
        CHECKF(rc != 0, "%s cut at %" PRIu64 " of header %" PRIu64 " opened", rel, cut, hdr);
    }
    /* Truncation in the data: an error exactly when a tensor's bytes are cut. */
    for (int k = 0; k <= 64; k += (int)sparse / 2 + 1) {
        uint64_t cut = hdr + (size - hdr) * (uint64_t)k / 64;
        int rc = try_mem(d, (size_t)cut, name, &err);
        CHECKF((rc == 0) == (cut >= need), "%s cut at %" PRIu64 " (data needs %" PRIu64 "): rc %d %s", rel, cut, need, rc, err.msg);
        if (rc) CHECKF(strstr(err.msg, "past") || strstr(err.msg, "truncated"), "%s", err.msg);
    }
    for (uint64_t i = 0; i < ref->n_tensors; i += sparse > 1 ? 4 : 1) {
        const mc_gguf_tensor *t = &ref->tensors[i];
        uint64_t e = t->file_offset + t->nbytes;
        if (t->nbytes == 0) continue;
        int rc = try_mem(d, (size_t)(e - 1), name, &err);
        CHECKF(rc == MC_ERR_FORMAT && strstr(err.msg, "extends past end of file"), "%s cut at %" PRIu64 ": %s", rel, e - 1, err.msg);
        rc = try_mem(d, (size_t)e, name, &err);
        CHECK((rc == 0) == (e >= need));
    }
    /* The file path (buffered reader) agrees with the memory path. */
    char tpath[600];
    snprintf(tpath, sizeof tpath, "%s/%s", mc_test_tmpdir(), name);
    for (int k = 0; k < 24; k++) {
        uint64_t cut = k < 16 ? hdr * (uint64_t)k / 16 : hdr + (size - hdr) * (uint64_t)(k - 15) / 9;
        mc_error e1 = { 0 }, e2 = { 0 };
        mc_gguf *g = NULL;
        if (mc_test_write_file(tpath, d, (size_t)cut) != 0) {
            CHECK(0);
            break;
        }
        int r1 = try_mem(d, (size_t)cut, tpath, &e1);
        int r2 = mc_gguf_open(tpath, &g, &e2);
        mc_gguf_close(g);
        CHECKF(r1 == r2 && strcmp(e1.msg, e2.msg) == 0, "file/memory disagree at %" PRIu64 ": '%s' vs '%s'", cut, e1.msg, e2.msg);
    }

    /* Byte and bit flips across the header. */
    uint64_t fstride = (hdr > 8192 ? hdr / 500 + 1 : 1) * sparse;
    for (uint64_t pos = 0; pos < hdr; pos += fstride) {
        unsigned char old = d[pos];
        d[pos] = (unsigned char)(old ^ 0xFF);
        try_mem(d, size, name, &err);
        d[pos] = (unsigned char)(old ^ (1u << (pos % 8)));
        try_mem(d, size, name, &err);
        d[pos] = old;
    }
    /* Every length/count field set to absurd values: find them as the
     * positions where a 64-bit (v2+) or 32-bit (v1) little-endian value
     * equals a small count, and replace with huge ones. */
    static const uint64_t huge[] = { UINT64_MAX, (uint64_t)1 << 63, (uint64_t)1 << 40, (uint64_t)1 << 32, 0xFFFFFFFFu };
    unsigned w = ref->version == 1 ? 4 : 8;
    int patched = 0;
    for (uint64_t pos = 8; pos + w <= hdr && patched < (hdr > 8192 ? 60 : 400) / (int)sparse; pos += (pos < 4096 ? 1 : fstride)) {
        uint64_t v = 0;
        for (unsigned b = 0; b < w; b++) v |= (uint64_t)d[pos + b] << (8 * b);
        if (v == 0 || v > 4096) continue;
        unsigned char save[8];
        memcpy(save, d + pos, w);
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            for (unsigned b = 0; b < w; b++) d[pos + b] = (unsigned char)(huge[h] >> (8 * b));
            try_mem(d, size, name, &err);
        }
        memcpy(d + pos, save, w);
        patched++;
    }
    printf("%s: header %" PRIu64 " bytes: %" PRIu64 " mutants opened cleanly, %" PRIu64 " refused cleanly\n", rel, hdr,
           g_opens - n0, g_errors - e0);
    mc_gguf_close(ref);
    free(d);
}

/* ---- hand-built hostile files ---- */

typedef struct hostile {
    const char *label;
    int rc;              /* expected code */
    const char *words;   /* expected in the message */
} hostile;

static int build_and_expect(const char *label, mc_gguf_write_opts *o, int (*build)(mc_gguf_writer *, mc_error *, void *),
                            void *arg, void (*patch)(unsigned char *, size_t, void *), int rc_want, const char *words)
{
    char path[600];
    mc_error err = { 0 };
    mc_gguf_writer *w = NULL;
    snprintf(path, sizeof path, "%s/hostile-%s.gguf", mc_test_tmpdir(), label);
    o->force = 1;
    o->unchecked = 1;
    int rc = mc_gguf_writer_create(&w, path, o, &err);
    if (!rc) rc = build(w, &err, arg);
    if (!rc) rc = mc_gguf_writer_commit(w, &err);
    else mc_gguf_writer_abort(w);
    CHECKF(rc == 0, "%s: building: %s", label, err.msg);
    if (rc) return rc;
    if (patch) {
        size_t n = 0;
        unsigned char *d = mc_test_read_file(path, &n);
        CHECK(d != NULL);
        if (!d) return 1;
        patch(d, n, arg);
        CHECK(mc_test_write_file(path, d, n) == 0);
        free(d);
    }
    mc_gguf *g = NULL;
    mc_error_clear(&err);
    rc = mc_gguf_open(path, &g, &err);
    CHECKF(rc == rc_want && strstr(err.msg, words) && strstr(err.msg, path) && !strchr(err.msg, '\n'),
           "%s: rc %d (want %d), message '%s' (want '%s')", label, rc, rc_want, err.msg, words);
    if (rc == rc_want) printf("hostile %-14s refused: %s\n", label, err.msg + strlen(path) + 2);
    mc_gguf_close(g);
    return 0;
}

typedef struct tspec {
    const char *name;
    uint32_t type, nd;
    uint64_t ne[4], offset;
    uint64_t data;   /* bytes of data to append */
    int twice;       /* add the same tensor again */
} tspec;

static int build_tensor(mc_gguf_writer *w, mc_error *err, void *arg)
{
    const tspec *t = arg;
    int rc = mc_gguf_writer_add_str(w, "general.architecture", "llama", err);
    if (!rc) rc = mc_gguf_writer_add_tensor_raw(w, t->name, strlen(t->name), t->type, t->nd, t->ne, t->offset, err);
    if (!rc && t->twice) rc = mc_gguf_writer_add_tensor_raw(w, t->name, strlen(t->name), t->type, t->nd, t->ne, t->offset + 64, err);
    if (!rc && t->data) rc = mc_gguf_writer_skip(w, t->data, err);
    return rc;
}

static void tensor_case(const char *label, tspec t, int rc, const char *words)
{
    mc_gguf_write_opts o = { 0 };
    build_and_expect(label, &o, build_tensor, &t, NULL, rc, words);
}

typedef struct kspec {
    int kind;       /* 0 string kv; 1 string array; 2 u32 array; 3 dup keys; 4 alignment u64; 5 alignment 0; 6 alignment 3; 7 empty key */
    uint64_t patch; /* value patched into the length/count field */
    uint32_t version;
} kspec;

static int build_kv(mc_gguf_writer *w, mc_error *err, void *arg)
{
    const kspec *k = arg;
    const char *strs[2] = { "ab", "cd" };
    uint32_t u[2] = { 1, 2 };
    switch (k->kind) {
    case 0: return mc_gguf_writer_add_str(w, "kkkk", "hello", err);
    case 1: return mc_gguf_writer_add_arr_str(w, "kkkk", strs, NULL, 2, err);
    case 2: return mc_gguf_writer_add_arr(w, "kkkk", MC_GGUF_UINT32, u, 2, err);
    case 3: {
        int rc = mc_gguf_writer_add_u32(w, "same.key", 1, err);
        return rc ? rc : mc_gguf_writer_add_str(w, "same.key", "x", err);
    }
    case 4: return mc_gguf_writer_add_u64(w, "general.alignment", 64, err);
    case 5: return mc_gguf_writer_add_u32(w, "general.alignment", 0, err);
    case 6: return mc_gguf_writer_add_u32(w, "general.alignment", 48, err);
    default: return mc_gguf_writer_add_u32(w, "", 1, err);
    }
}

/* Layout of the first kv after the fixed header: key "kkkk" then its type
 * (4), then for arrays the element type (4) and the count; for strings the
 * length. */
static void patch_kv(unsigned char *d, size_t n, void *arg)
{
    const kspec *k = arg;
    unsigned w = k->version == 1 ? 4 : 8;
    size_t pos = 4 + 4 + 2 * w + w + 4 + 4; /* magic, version, counts, key length, "kkkk", type */
    if (k->kind == 1 || k->kind == 2) pos += 4;
    if (k->kind == 2 && k->patch == 9) { /* nested: patch the element type */
        d[pos - 4] = 9;
        return;
    }
    for (unsigned b = 0; b < w && pos + b < n; b++) d[pos + b] = (unsigned char)(k->patch >> (8 * b));
}

static void kv_case(const char *label, kspec k, int patch, int rc, const char *words)
{
    mc_gguf_write_opts o = { .version = k.version };
    build_and_expect(label, &o, build_kv, &k, patch ? patch_kv : NULL, rc, words);
}

static int build_empty(mc_gguf_writer *w, mc_error *err, void *arg)
{
    (void)arg;
    return mc_gguf_writer_add_str(w, "general.architecture", "x", err);
}

static void patch_header(unsigned char *d, size_t n, void *arg)
{
    const unsigned char *p = arg; /* 8 bytes: magic + version to write */
    if (n >= 8) memcpy(d, p, 8);
}

static void test_hostile(void)
{
    /* counts */
    mc_gguf_write_opts o = { .fake_n_tensors = (uint64_t)1 << 63 };
    build_and_expect("2^63-tensors", &o, build_empty, NULL, NULL, MC_ERR_FORMAT, "declares 9223372036854775808 tensors");
    o = (mc_gguf_write_opts){ .fake_n_tensors = UINT64_MAX };
    build_and_expect("2^64-tensors", &o, build_empty, NULL, NULL, MC_ERR_FORMAT, "declares 18446744073709551615 tensors");
    o = (mc_gguf_write_opts){ .fake_n_kv = (uint64_t)1 << 62 };
    build_and_expect("2^62-keys", &o, build_empty, NULL, NULL, MC_ERR_FORMAT, "4611686018427387904 metadata keys");
    o = (mc_gguf_write_opts){ .version = 1, .fake_n_kv = 0xFFFFFFFFu };
    build_and_expect("v1-2^32-keys", &o, build_empty, NULL, NULL, MC_ERR_FORMAT, "4294967295 metadata keys");
    /* lengths */
    kv_case("2^40-string", (kspec){ 0, (uint64_t)1 << 40, 3 }, 1, MC_ERR_FORMAT, "string length 1099511627776 exceeds");
    kv_case("2^64-string", (kspec){ 0, UINT64_MAX, 2 }, 1, MC_ERR_FORMAT, "string length 18446744073709551615");
    kv_case("long-string", (kspec){ 0, 200, 3 }, 1, MC_ERR_FORMAT, "exceeds the");
    kv_case("v1-string", (kspec){ 0, 0xFFFFFFF0u, 1 }, 1, MC_ERR_FORMAT, "string length 4294967280");
    kv_case("2^40-strarray", (kspec){ 1, (uint64_t)1 << 40, 3 }, 1, MC_ERR_FORMAT, "array of 1099511627776 elements");
    kv_case("2^62-u32array", (kspec){ 2, (uint64_t)1 << 62, 3 }, 1, MC_ERR_FORMAT, "4611686018427387904");
    kv_case("2^29-u32array", (kspec){ 2, (uint64_t)1 << 29, 3 }, 1, MC_ERR_FORMAT, "needs at least 2147483648 bytes");
    kv_case("nested-array", (kspec){ 2, 9, 3 }, 1, MC_ERR_UNSUPPORTED, "nested arrays");
    kv_case("dup-key", (kspec){ 3, 0, 3 }, 0, MC_ERR_FORMAT, "duplicate key 'same.key'");
    kv_case("align-u64", (kspec){ 4, 0, 3 }, 0, MC_ERR_FORMAT, "general.alignment must be a u32 but is a u64");
    kv_case("align-0", (kspec){ 5, 0, 3 }, 0, MC_ERR_FORMAT, "general.alignment 0 is not");
    kv_case("align-48", (kspec){ 6, 0, 3 }, 0, MC_ERR_FORMAT, "general.alignment 48 is not");
    kv_case("empty-key", (kspec){ 7, 0, 3 }, 0, MC_ERR_FORMAT, "empty name");
    /* magic and version */
    static const unsigned char v0[8] = { 'G', 'G', 'U', 'F', 0, 0, 0, 0 }, v4[8] = { 'G', 'G', 'U', 'F', 4, 0, 0, 0 },
                               vbs[8] = { 'G', 'G', 'U', 'F', 0, 0, 0, 3 }, fugg[8] = { 'F', 'U', 'G', 'G', 0, 0, 0, 3 },
                               junk[8] = { 'P', 'K', 3, 4, 0, 0, 0, 0 };
    o = (mc_gguf_write_opts){ 0 };
    build_and_expect("version-0", &o, build_empty, (void *)v0, patch_header, MC_ERR_FORMAT, "version 0 is invalid");
    build_and_expect("version-4", &o, build_empty, (void *)v4, patch_header, MC_ERR_UNSUPPORTED, "version 4 is not supported");
    build_and_expect("version-swapped", &o, build_empty, (void *)vbs, patch_header, MC_ERR_UNSUPPORTED,
                     "0x03000000 looks byte-swapped");
    build_and_expect("fugg", &o, build_empty, (void *)fugg, patch_header, MC_ERR_UNSUPPORTED, "byte-swapped (big-endian) GGUF");
    build_and_expect("zip", &o, build_empty, (void *)junk, patch_header, MC_ERR_FORMAT, "not a GGUF file");
    /* tensor infos */
    tensor_case("dims-overflow", (tspec){ "t", MC_T_F32, 3, { 1ull << 32, 1ull << 32, 1ull << 32 }, 0, 0, 0 }, MC_ERR_OVERFLOW,
                "element count overflows");
    tensor_case("dims-2^62", (tspec){ "t", MC_T_F32, 2, { 1ull << 62, 2 }, 0, 0, 0 }, MC_ERR_OVERFLOW, "overflows");
    tensor_case("bytes-overflow", (tspec){ "t", MC_T_F64, 1, { 1ull << 62 }, 0, 0, 0 }, MC_ERR_OVERFLOW, "byte size overflows");
    tensor_case("negative-ne", (tspec){ "t", MC_T_F32, 2, { 4, (uint64_t)-5 }, 0, 0, 0 }, MC_ERR_FORMAT,
                "dimension 1 is negative (-5)");
    tensor_case("0-dims", (tspec){ "t", MC_T_F32, 0, { 4 }, 0, 64, 0 }, MC_ERR_FORMAT, "has 0 dimensions");
    tensor_case("5-dims", (tspec){ "t", MC_T_F32, 5, { 1, 1, 1, 1 }, 0, 64, 0 }, MC_ERR_FORMAT, "has 5 dimensions");
    tensor_case("past-end", (tspec){ "blk.0.attn_q.weight", MC_T_F32, 2, { 64, 4 }, 0, 1000, 0 }, MC_ERR_FORMAT,
                "tensor 'blk.0.attn_q.weight' data [");
    tensor_case("offset-huge", (tspec){ "t", MC_T_F32, 1, { 8 }, UINT64_MAX - 31, 64, 0 }, MC_ERR_FORMAT, "data offset 18446744073709551584");
    tensor_case("offset-gap", (tspec){ "t", MC_T_F32, 1, { 8 }, 1 << 20, 64, 0 }, MC_ERR_FORMAT, "data offset 1048576, expected 0");
    tensor_case("misaligned", (tspec){ "t", MC_T_F32, 1, { 8 }, 4, 64, 0 }, MC_ERR_FORMAT, "not a multiple of the alignment 32");
    tensor_case("dup-tensor", (tspec){ "same", MC_T_F32, 1, { 8 }, 0, 128, 1 }, MC_ERR_FORMAT, "duplicate tensor name 'same'");
    tensor_case("block", (tspec){ "t", MC_T_Q4_K, 2, { 100, 2 }, 0, 1024, 0 }, MC_ERR_FORMAT,
                "100 elements per row, not a multiple of its block size 256");
    tensor_case("long-name", (tspec){ "0123456789012345678901234567890123456789012345678901234567890123", MC_T_F32, 1, { 8 }, 0, 64, 0 },
                MC_ERR_FORMAT, "64 bytes long");
    static const struct { uint32_t id; int rc; const char *words; } types[] = {
        { 4, MC_ERR_UNSUPPORTED, "type id 4 (Q4_2), which GGML removed" },
        { 5, MC_ERR_UNSUPPORTED, "type id 5 (Q4_3)" },
        { 31, MC_ERR_UNSUPPORTED, "type id 31 (Q4_0_4_4)" },
        { 33, MC_ERR_UNSUPPORTED, "type id 33" },
        { 36, MC_ERR_UNSUPPORTED, "type id 36 (IQ4_NL_4_4)" },
        { 38, MC_ERR_UNSUPPORTED, "type id 38" },
        { 43, MC_ERR_FORMAT, "unknown GGML type id 43" },
        { 64, MC_ERR_FORMAT, "unknown GGML type id 64" },
        { 0xFFFFFFFFu, MC_ERR_FORMAT, "unknown GGML type id -1" },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "type-%" PRIu32, types[i].id);
        tensor_case(label, (tspec){ "t", types[i].id, 1, { 256 }, 0, 2048, 0 }, types[i].rc, types[i].words);
    }
    /* every defined type opens with a matching size */
    for (int t = 0; t < MC_T_GGML_COUNT; t++) {
        const mc_type_traits *tr = mc_type_get(t);
        if (!tr) continue;
        char path[600];
        mc_error err = { 0 };
        mc_gguf_writer *w = NULL;
        snprintf(path, sizeof path, "%s/type-%d.gguf", mc_test_tmpdir(), t);
        mc_gguf_write_opts ow = { .force = 1 };
        uint64_t ne[2] = { (uint64_t)tr->blck * 3, 2 }, nb = 0;
        CHECK(mc_type_nbytes(t, ne[0] * ne[1], &nb) == 0);
        int rc = mc_gguf_writer_create(&w, path, &ow, &err);
        if (!rc) rc = mc_gguf_writer_add_tensor(w, "t", t, 2, ne, &err);
        if (!rc) rc = mc_gguf_writer_skip(w, nb, &err);
        if (!rc) rc = mc_gguf_writer_commit(w, &err);
        else mc_gguf_writer_abort(w);
        mc_gguf *g = NULL;
        if (!rc) rc = mc_gguf_open(path, &g, &err);
        CHECKF(rc == 0 && g->tensors[0].type == t && g->tensors[0].nbytes == nb &&
               nb == (uint64_t)tr->type_size * 6, "type %d: %s", t, err.msg);
        mc_gguf_close(g);
    }
}

static void test_mem_limit(void)
{
    const char *p = mc_test_corpus_file("external/gguf/vocab-llama.v1.gguf");
    if (!p) return;
    mc_gguf *g = NULL;
    mc_error err = { 0 };
    uint64_t old = mc_gguf_header_mem_limit(1u << 20);
    int rc = mc_gguf_open(p, &g, &err);
    mc_gguf_header_mem_limit(old);
    CHECKF(rc == MC_ERR_NOMEM && g == NULL && strstr(err.msg, "limit of 1048576 bytes"), "%s", err.msg);
    mc_error_clear(&err);
    CHECK(mc_gguf_open(p, &g, &err) == 0 && g->header_mem > (1u << 20));
    mc_gguf_close(g);
}

int main(void)
{
    test_hostile();
    test_mem_limit();
    corrupt_file("external/gguf/vocab-llama.v1.gguf");
    corrupt_file("models/llama/gguf/llama-Q4_K_M.gguf");
    corrupt_file("models/qwen3_moe/gguf/qwen3_moe-bf16.gguf");
    corrupt_file("ggml/quant-vectors.gguf");
    printf("%" PRIu64 " clean opens, %" PRIu64 " clean refusals\n", g_opens, g_errors);
    return mc_test_finish("test_gguf_corrupt");
}
