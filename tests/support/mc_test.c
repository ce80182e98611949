#include "mc_test.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int mc_test_failures;
int mc_test_checks;
int mc_test_skips;

static char g_tmpdir[512];

const char *mc_test_corpus(void)
{
    static char path[1024];
    struct stat st;
    const char *env = getenv("MCONV_CORPUS");
    if (env && *env) snprintf(path, sizeof path, "%s", env);
    else snprintf(path, sizeof path, "%s", MCONV_CORPUS_DEFAULT);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return path;
}

/* $env, else the default path, when it is a folder; NULL otherwise. */
static const char *shared_root(char *path, size_t cap, const char *env, const char *def)
{
    struct stat st;
    const char *e = getenv(env);
    snprintf(path, cap, "%s", e && *e ? e : def);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return path;
}

const char *mc_test_corpus_new(void)
{
    static char path[1024];
    return shared_root(path, sizeof path, "MCONV_CORPUS_NEW", MCONV_CORPUS_NEW_DEFAULT);
}

const char *mc_test_tok_vectors(void)
{
    static char path[1024];
    return shared_root(path, sizeof path, "MCONV_TOK_VECTORS", MCONV_TOK_VECTORS_DEFAULT);
}

/* root/rel in a rotating buffer when it exists; else a skip naming what is
 * absent (what: the folder's name, var: the variable that points at it). */
static const char *shared_file(const char *root, const char *what, const char *var, const char *rel)
{
    static char bufs[8][2048];
    static int next;
    struct stat st;
    if (!root) {
        mc_test_skip("%s absent (set %s): %s", what, var, rel);
        return NULL;
    }
    char *b = bufs[next++ & 7];
    int w = snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    if (w < 0 || (size_t)w >= sizeof bufs[0]) {
        mc_test_skip("%s path too long: %s", what, rel);
        return NULL;
    }
    if (stat(b, &st) != 0) {
        mc_test_skip("%s file absent: %s", what, rel);
        return NULL;
    }
    return b;
}

const char *mc_test_corpus_file(const char *rel)
{
    return shared_file(mc_test_corpus(), "corpus", "MCONV_CORPUS", rel);
}

const char *mc_test_corpus_new_file(const char *rel)
{
    return shared_file(mc_test_corpus_new(), "corpus-new", "MCONV_CORPUS_NEW", rel);
}

const char *mc_test_tok_vectors_file(const char *rel)
{
    return shared_file(mc_test_tok_vectors(), "tok-vectors", "MCONV_TOK_VECTORS", rel);
}

void mc_test_skip(const char *fmt, ...)
{
    va_list ap;
    mc_test_skips++;
    fputs("SKIP: ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

const char *mc_test_mconv(void) { return MCONV_BIN; }

int mc_test_level(void)
{
    const char *s = getenv("MCONV_TEST_LEVEL");
    int v = s ? atoi(s) : 2;
    return v < 1 ? 1 : v > 3 ? 3 : v;
}

/* $MCONV_TEST_KEEP_TMPDIR set: the folder stays (its path on stderr), so
 * the fixtures a test writes can be inspected or converted again
 * (tests/tools/convert_identity.sh). */
static void rm_tmpdir(void)
{
    const char *keep = getenv("MCONV_TEST_KEEP_TMPDIR");
    if (g_tmpdir[0] && keep && *keep) {
        fprintf(stderr, "kept %s\n", g_tmpdir);
        return;
    }
    if (g_tmpdir[0]) {
        char cmd[sizeof g_tmpdir + 16];
        int w = snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
        if (w < 0 || (size_t)w >= sizeof cmd || system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmpdir);
    }
}

const char *mc_test_tmpdir(void)
{
    if (!g_tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/mconv-test-XXXXXX", base);
        if (!mkdtemp(g_tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(rm_tmpdir);
    }
    return g_tmpdir;
}

int mc_test_run(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    size_t cl = strlen(cmd);
    snprintf(cmd + cl, sizeof cmd - cl, " 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[len] = '\0';
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

unsigned char *mc_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long sz = ftell(f);
    if (sz < 0) { fclose(f); return NULL; }
    rewind(f);
    unsigned char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    if (b) b[sz] = 0; /* callers may treat the bytes as a C string */
    if (b && len) *len = (size_t)sz;
    return b;
}

unsigned char *mc_test_read_range(const char *path, uint64_t off, uint64_t n)
{
    if (n > SIZE_MAX - 1 || off > (uint64_t)INT64_MAX) return NULL;
    FILE *f = fopen(path, "rb");
    unsigned char *b = malloc(n ? (size_t)n : 1);
    if (!f || !b || fseeko(f, (off_t)off, SEEK_SET) || fread(b, 1, (size_t)n, f) != n) {
        free(b);
        b = NULL;
    }
    if (f) fclose(f);
    return b;
}

cJSON *mc_test_read_json(const char *path)
{
    size_t n = 0;
    unsigned char *d = mc_test_read_file(path, &n);
    cJSON *j = d ? cJSON_ParseWithLength((const char *)d, n) : NULL;
    free(d);
    return j;
}

uint64_t mc_test_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int mc_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    if (fclose(f) != 0 || w != len) return -1;
    return 0;
}

int mc_test_finish(const char *name)
{
    int passed = mc_test_checks - mc_test_failures;
    printf("%s: %d checks\n", name, mc_test_checks);
    if (mc_test_skips) printf("%s: %d passed, %d failed, %d skipped\n", name, passed, mc_test_failures, mc_test_skips);
    else printf("%s: %d passed, %d failed\n", name, passed, mc_test_failures);
    if (mc_test_failures) return 1;
    if (mc_test_checks == 0 && mc_test_skips) return 77;
    return 0;
}

static int is_gguf_name(const char *n)
{
    size_t k = strlen(n);
    return k > 5 && !strcmp(n + k - 5, ".gguf");
}

int mc_test_each_corpus_model(void (*fn)(const char *path, int gguf, void *ctx), void *ctx)
{
    return mc_test_each_model_under(mc_test_corpus_file("models"), fn, ctx);
}

int mc_test_each_corpus_new_model(void (*fn)(const char *path, int gguf, void *ctx), void *ctx)
{
    return mc_test_each_model_under(mc_test_corpus_new_file("models"), fn, ctx);
}

int mc_test_each_model_under(const char *models, void (*fn)(const char *path, int gguf, void *ctx), void *ctx)
{
    if (!models) return 0;
    char *root = strdup(models); /* fn may look up other corpus files (rotating buffers) */
    char path[2048], f[4200];
    if (!root) return 0;
    DIR *d = opendir(root);
    struct dirent *de;
    char *names[64];
    int n = 0;
    while (d && (de = readdir(d)) != NULL && n < 64)
        if (de->d_name[0] != '.') names[n++] = strdup(de->d_name);
    if (d) closedir(d);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/gguf", root, names[i]);
        DIR *g = opendir(path);
        while (g && (de = readdir(g)) != NULL) {
            if (!is_gguf_name(de->d_name)) continue;
            snprintf(f, sizeof f, "%s/%s", path, de->d_name);
            fn(f, 1, ctx);
        }
        if (g) closedir(g);
        snprintf(path, sizeof path, "%s/%s/hf", root, names[i]);
        fn(path, 0, ctx);
        free(names[i]);
    }
    free(root);
    return n;
}
