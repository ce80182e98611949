/* Bounded memory on hostile files: every reader (GGUF, safetensors, the
 * safetensors index, .flash open and verify) is run in a child process whose
 * address space is capped at 256 MiB (RLIMIT_AS) with a 60 s alarm, on files
 * that declare absurd counts and sizes (2^63 tensors, 2^40-byte strings,
 * 2^62-element arrays, a 2^40-byte JSON header, dims whose product overflows,
 * a 2^63-byte manifest). Each must be refused with a one-line format error --
 * not MC_ERR_NOMEM (that would mean it tried an allocation sized by the
 * count), not a crash, not a hang. Controls: real corpus files open under the
 * same cap (so the cap itself is not what refuses).
 *
 * Under ASan (which reserves terabytes of shadow memory) and valgrind the cap
 * cannot be applied; the children still run (refusal, message, no crash,
 * alarm) and the test says it ran without the cap. */
#include "mc_test.h"
#include "mc_error.h"
#include "mc_flash.h"
#include "mc_gguf.h"
#include "mc_safetensors.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define MC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MC_ASAN 1
#endif
#endif
#ifndef MC_ASAN
#define MC_ASAN 0
#endif

#define CAP_BYTES ((rlim_t)256 << 20)

enum { R_GGUF, R_ST, R_INDEX, R_FLASH_OPEN, R_FLASH_VERIFY };
static const char *reader_name[] = { "gguf", "safetensors", "index", "flash open", "flash verify" };

static int g_capped = 1;

static void ignore(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

/* child: 0 refused cleanly, 10 accepted, 11 NOMEM, 12 bad message, 13 setrlimit failed */
static int child(int reader, const char *path)
{
    if (g_capped) {
        struct rlimit rl = { CAP_BYTES, CAP_BYTES };
        if (setrlimit(RLIMIT_AS, &rl) != 0) return 13;
    }
    alarm(60);
    mc_error err;
    mc_error_clear(&err);
    int rc = -1;
    switch (reader) {
    case R_GGUF: {
        mc_gguf *g = NULL;
        rc = mc_gguf_open(path, &g, &err);
        if (rc == 0) mc_gguf_close(g);
        break;
    }
    case R_ST: {
        mc_st *s = NULL;
        rc = mc_st_open(path, &s, &err);
        if (rc == 0) mc_st_close(s);
        break;
    }
    case R_INDEX: {
        size_t n = 0;
        unsigned char *b = mc_test_read_file(path, &n);
        uint64_t nt = 0, ns = 0;
        rc = b ? mc_st_index_check_mem(b, n, path, &nt, &ns, &err) : -1;
        free(b);
        break;
    }
    case R_FLASH_OPEN: {
        mc_flash *f = NULL;
        rc = mc_flash_open(path, &f, &err);
        if (rc == 0) mc_flash_close(f);
        break;
    }
    case R_FLASH_VERIFY: {
        mc_flash_verify_stats st;
        rc = mc_flash_verify(path, ignore, NULL, &st, &err);
        break;
    }
    }
    if (rc == 0) return 10;
    if (err.code == MC_ERR_NOMEM) {
        fprintf(stderr, "  %s\n", err.msg);
        return 11;
    }
    if (err.code == MC_OK || err.msg[0] == '\0' || strchr(err.msg, '\n')) return 12;
    return 0;
}

/* Runs the reader on path in a capped child; want_ok: the file is valid. */
static void run_case(int reader, const char *what, const char *path, int want_ok)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        CHECKF(0, "fork failed");
        return;
    }
    if (pid == 0) _exit(child(reader, path));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFSIGNALED(status)) {
        CHECKF(0, "%s (%s): child killed by signal %d%s", what, reader_name[reader], WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (hang: 60 s alarm)" : "");
        return;
    }
    int code = WEXITSTATUS(status);
    if (want_ok)
        CHECKF(code == 10, "%s (%s): a valid file did not open under the cap (child exit %d)", what,
               reader_name[reader], code);
    else
        CHECKF(code == 0, "%s (%s): child exit %d (10 accepted, 11 NOMEM: tried to allocate, 12 bad message)",
               what, reader_name[reader], code);
}

static const char *tmpfile_with(const char *name, const void *data, size_t n)
{
    static char paths[8][1024];
    static int slot = 0;
    char *p = paths[slot++ % 8];
    snprintf(p, 1024, "%s/%s", mc_test_tmpdir(), name);
    if (mc_test_write_file(p, data, n) != 0) return NULL;
    return p;
}

/* --- a little GGUF builder */
typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n <= sizeof b->b) memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v)
{
    unsigned char x[4];
    for (int i = 0; i < 4; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 4);
}
static void u64(buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}
static void gstr(buf *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void ghdr(buf *b, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void gtensor(buf *b, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    gstr(b, name);
    u32(b, (uint32_t)nd);
    for (int i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}

static void gguf_cases(void)
{
    buf b;
    static const unsigned char zeros[256];
    ghdr(&b, (uint64_t)1 << 63, 0);
    run_case(R_GGUF, "2^63 tensors", tmpfile_with("t63.gguf", b.b, b.n), 0);
    ghdr(&b, 0, (uint64_t)1 << 63);
    run_case(R_GGUF, "2^63 kvs", tmpfile_with("kv63.gguf", b.b, b.n), 0);
    ghdr(&b, 1u << 20, 0);
    run_case(R_GGUF, "2^20 tensors in 24 bytes", tmpfile_with("t20.gguf", b.b, b.n), 0);
    ghdr(&b, 0, 1);
    u64(&b, (uint64_t)1 << 40);
    put(&b, "general.name", 12);
    run_case(R_GGUF, "2^40-byte key", tmpfile_with("key40.gguf", b.b, b.n), 0);
    ghdr(&b, 0, 1);
    gstr(&b, "general.name");
    u32(&b, 8); /* string */
    u64(&b, (uint64_t)1 << 40);
    put(&b, zeros, 64);
    run_case(R_GGUF, "2^40-byte string value", tmpfile_with("str40.gguf", b.b, b.n), 0);
    ghdr(&b, 0, 1);
    gstr(&b, "a");
    u32(&b, 9); /* array */
    u32(&b, 0); /* of u8 */
    u64(&b, (uint64_t)1 << 62);
    put(&b, zeros, 64);
    run_case(R_GGUF, "2^62-element u8 array", tmpfile_with("arr62.gguf", b.b, b.n), 0);
    ghdr(&b, 0, 1);
    gstr(&b, "tokenizer.ggml.tokens");
    u32(&b, 9);
    u32(&b, 8); /* of strings */
    u64(&b, (uint64_t)1 << 40);
    for (int i = 0; i < 8; i++) gstr(&b, "tok");
    run_case(R_GGUF, "2^40 strings in an array", tmpfile_with("sarr40.gguf", b.b, b.n), 0);
    ghdr(&b, 0, 1);
    gstr(&b, "a");
    u32(&b, 9);
    u32(&b, 8);
    u64(&b, 4);
    gstr(&b, "x");
    u64(&b, (uint64_t)1 << 40); /* second element's length */
    run_case(R_GGUF, "2^40-byte string inside an array", tmpfile_with("sarrlen.gguf", b.b, b.n), 0);
    ghdr(&b, 1, 0);
    uint64_t ne[4] = { (uint64_t)1 << 32, (uint64_t)1 << 32, 16, 1 };
    gtensor(&b, "w", 3, ne, 0, 0);
    put(&b, zeros, 64);
    run_case(R_GGUF, "dims whose product overflows", tmpfile_with("dims.gguf", b.b, b.n), 0);
    ghdr(&b, 1, 0);
    uint64_t ne2[1] = { (uint64_t)1 << 40 };
    gtensor(&b, "w", 1, ne2, 0, 0);
    put(&b, zeros, 64);
    run_case(R_GGUF, "a 4 TiB tensor in a small file", tmpfile_with("big.gguf", b.b, b.n), 0);
    ghdr(&b, 1, 0);
    uint64_t ne3[1] = { 8 };
    gtensor(&b, "w", 1, ne3, 0, UINT64_MAX - 31);
    put(&b, zeros, 64);
    run_case(R_GGUF, "offset past the end", tmpfile_with("off.gguf", b.b, b.n), 0);
    ghdr(&b, 1, 0);
    gtensor(&b, "w", 1, ne3, 1000, 0);
    put(&b, zeros, 64);
    run_case(R_GGUF, "unknown type", tmpfile_with("type.gguf", b.b, b.n), 0);
    ghdr(&b, 2, 0);
    gtensor(&b, "w", 1, ne3, 0, 0);
    gtensor(&b, "w", 1, ne3, 0, 32);
    put(&b, zeros, 128);
    run_case(R_GGUF, "duplicate tensor names", tmpfile_with("dup.gguf", b.b, b.n), 0);

    const char *ok1 = mc_test_corpus_file("external/gguf/vocab-falcon.v2.gguf");
    if (ok1) run_case(R_GGUF, "control: a 65k-token vocabulary", ok1, 1);
    const char *ok2 = mc_test_corpus_file("models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf");
    if (ok2) run_case(R_GGUF, "control: an MoE GGUF", ok2, 1);
}

static void st_file(buf *b, const char *json, size_t data_bytes)
{
    static const unsigned char zeros[1024];
    b->n = 0;
    u64(b, strlen(json));
    put(b, json, strlen(json));
    put(b, zeros, data_bytes);
}

static void st_cases(void)
{
    buf b;
    b.n = 0;
    u64(&b, (uint64_t)1 << 40);
    put(&b, "{\"a\":", 5);
    run_case(R_ST, "2^40-byte JSON header", tmpfile_with("h40.safetensors", b.b, b.n), 0);
    b.n = 0;
    u64(&b, UINT64_MAX);
    put(&b, "{}", 2);
    run_case(R_ST, "2^64-1-byte JSON header", tmpfile_with("h64.safetensors", b.b, b.n), 0);
    b.n = 0;
    u64(&b, (uint64_t)200 << 20);
    put(&b, "{}", 2);
    run_case(R_ST, "200 MiB header declared, 10 bytes present", tmpfile_with("h200.safetensors", b.b, b.n), 0);
    st_file(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0);
    run_case(R_ST, "dims whose product overflows", tmpfile_with("dims.safetensors", b.b, b.n), 0);
    st_file(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776],\"data_offsets\":[0,4398046511104]}}", 0);
    run_case(R_ST, "a 4 TiB tensor in a small file", tmpfile_with("big.safetensors", b.b, b.n), 0);
    st_file(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4);
    run_case(R_ST, "offsets pointing backwards", tmpfile_with("back.safetensors", b.b, b.n), 0);
    st_file(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
    run_case(R_ST, "offsets past the end", tmpfile_with("end.safetensors", b.b, b.n), 0);
    st_file(&b,
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8);
    run_case(R_ST, "duplicate names", tmpfile_with("dup.safetensors", b.b, b.n), 0);
    st_file(&b, "{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    run_case(R_ST, "unknown dtype", tmpfile_with("dtype.safetensors", b.b, b.n), 0);
    /* nesting deep enough to exhaust a recursive parser's stack */
    size_t depth = 200000;
    char *deep = malloc(2 * depth + 64);
    if (deep) {
        size_t n = 0;
        n += (size_t)sprintf(deep + n, "{\"__metadata__\":");
        for (size_t i = 0; i < depth; i++) deep[n++] = '[';
        for (size_t i = 0; i < depth; i++) deep[n++] = ']';
        deep[n++] = '}';
        unsigned char *file = malloc(n + 8);
        if (file) {
            for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)n >> (8 * i));
            memcpy(file + 8, deep, n);
            run_case(R_ST, "JSON nested 200000 deep", tmpfile_with("deep.safetensors", file, n + 8), 0);
            /* the same nesting as an index */
            char *idx = malloc(n + 64);
            if (idx) {
                size_t m = (size_t)sprintf(idx, "{\"weight_map\":");
                memcpy(idx + m, deep + 16, n - 16);
                m += n - 16;
                run_case(R_INDEX, "index JSON nested 200000 deep", tmpfile_with("deep.index.json", idx, m), 0);
                free(idx);
            }
            free(file);
        }
        free(deep);
    }
    const char *bad_idx = "{\"weight_map\":{\"a\":\"../../etc/passwd\"}}";
    run_case(R_INDEX, "index naming a file outside the folder",
             tmpfile_with("trav.index.json", bad_idx, strlen(bad_idx)), 0);

    const char *ok = mc_test_corpus_file("models/qwen3_moe/hf/model.safetensors");
    if (ok) run_case(R_ST, "control: a corpus safetensors", ok, 1);
    const char *oki = mc_test_corpus_file("models/qwen3_moe/hf-sharded/model.safetensors.index.json");
    if (oki) run_case(R_INDEX, "control: a corpus index", oki, 1);
}

static void flash_header(unsigned char *page, uint64_t moff, uint64_t mlen, uint64_t fsize)
{
    mc_flash_header h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.page_size = 16384;
    h.manifest_offset = moff;
    h.manifest_length = mlen;
    h.file_size = fsize;
    memset(page, 0, 16384);
    mc_flash_header_encode(&h, page);
}

static void flash_cases(void)
{
    static unsigned char file[3 * 16384];
    struct {
        const char *what;
        uint64_t moff, mlen, fsize;
        size_t n;
    } cases[] = {
        { "2^63-byte manifest", 16384, (uint64_t)1 << 63, 32768, 32768 },
        { "200 MiB manifest in a 32 KiB file", 16384, (uint64_t)200 << 20, 32768, 32768 },
        { "200 MiB manifest, file size field agrees", 16384, (uint64_t)200 << 20, (uint64_t)201 << 20, 32768 },
        { "manifest past the end", (uint64_t)1 << 40, 100, 32768, 32768 },
        { "manifest offset wraps", UINT64_MAX - 16383, 100, 32768, 32768 },
        { "manifest inside the header page", 0, 48, 16384, 16384 },
        { "file size field 2^63", 16384, 10, (uint64_t)1 << 63, 32768 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        flash_header(file, cases[i].moff, cases[i].mlen, cases[i].fsize);
        memset(file + 16384, '{', sizeof file - 16384);
        char name[32];
        snprintf(name, sizeof name, "h%zu.flash", i);
        const char *p = tmpfile_with(name, file, cases[i].n);
        run_case(R_FLASH_OPEN, cases[i].what, p, 0);
        run_case(R_FLASH_VERIFY, cases[i].what, p, 0);
    }
    /* a manifest that declares absurd counts and offsets */
    const char *man = "{\"format\":\"mconv-flash\",\"version\":1,\"n_tensors\":9223372036854775808,"
                      "\"tensors\":[{\"name\":\"a\",\"offset\":\"ffffffffffffc000\",\"nbytes\":\"ffffffffffffffff\"}]}";
    flash_header(file, 16384, strlen(man), 32768);
    memset(file + 16384, 0, 16384);
    memcpy(file + 16384, man, strlen(man));
    const char *p = tmpfile_with("man.flash", file, 32768);
    run_case(R_FLASH_OPEN, "manifest with absurd counts", p, 0);
    run_case(R_FLASH_VERIFY, "manifest with absurd counts", p, 0);
}

int main(void)
{
    const char *pre = getenv("LD_PRELOAD");
    if (MC_ASAN || (pre && strstr(pre, "vgpreload"))) {
        g_capped = 0;
        printf("NOTE: running without the %d MiB RLIMIT_AS cap (ASan or valgrind reserve more address space)\n",
               (int)(CAP_BYTES >> 20));
    }
    gguf_cases();
    st_cases();
    flash_cases();
    return mc_test_finish("test_hostile_limits");
}
