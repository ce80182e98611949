/* bench_header: how much mc_gguf_open reads and holds for a multi-GB GGUF.
 *
 *   bench_header DIR [--real] [--layers N] [--experts N] [--keep]
 *
 * Builds DIR/bench-header.gguf with the GGUF writer: a qwen3moe-like model
 * with a 151936-token vocabulary and per-expert Q4_K tensors (N layers x N
 * experts x gate/up/down, each 2048x768), about 5.6 GB with the defaults.
 * Tensor data is sparse (holes, reads as zeros) unless --real, which writes
 * pseudo-random bytes. Then a separate process (this program re-run with
 * --open FILE, started before the build so that it does not inherit the
 * builder's peak RSS, which Linux carries across exec, and waiting on its
 * stdin until the file is ready) opens the file with mc_gguf_open and
 * prints the bytes read
 * (mc_io_bytes_read), the header size, the parsed header's memory, the peak
 * RSS (getrusage ru_maxrss: bytes on macOS, KiB on Linux; shown here in KiB)
 * and the time taken. The file is deleted afterwards unless --keep.
 */
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_types.h"
#include "bench_time.h"

#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
#ifdef __APPLE__
    return ru.ru_maxrss / 1024;
#else
    return ru.ru_maxrss;
#endif
}

static int open_only(const char *path)
{
    char go = 0;
    if (read(0, &go, 1) != 1 || go != 'g') return 1; /* the builder failed */
    mc_error err = { 0 };
    mc_gguf *g = NULL;
    long rss0 = maxrss_kib();
    uint64_t r0 = mc_io_bytes_read();
    double t0 = bench_now();
    if (mc_gguf_open(path, &g, &err) != 0) {
        fprintf(stderr, "bench_header: %s\n", err.msg);
        return 1;
    }
    double t1 = bench_now();
    uint64_t r1 = mc_io_bytes_read();
    long rss1 = maxrss_kib();
    uint64_t data = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) data += g->tensors[i].nbytes;
    printf("file          %s\n", path);
    printf("file size     %" PRIu64 " bytes (%.2f GiB), tensor data %" PRIu64 " bytes\n", g->shards[0].file.size,
           (double)g->shards[0].file.size / (1u << 30), data);
    printf("tensors/keys  %" PRIu64 " / %" PRIu64 "\n", g->n_tensors, g->n_kv);
    printf("header        %" PRIu64 " bytes (data section at %" PRIu64 ")\n", g->header_bytes, g->shards[0].data_offset);
    printf("bytes read    %" PRIu64 " (%.4f%% of the file)\n", r1 - r0, 100.0 * (double)(r1 - r0) / (double)g->shards[0].file.size);
    printf("header memory %" PRIu64 " bytes\n", g->header_mem);
    printf("peak RSS      %ld KiB before open, %ld KiB after (ru_maxrss)\n", rss0, rss1);
    printf("open time     %.3f s\n", t1 - t0);
    mc_gguf_close(g);
    return 0;
}

typedef struct cfg {
    int layers, experts, real;
} cfg;

static int build(const char *path, const cfg *c, mc_error *err)
{
    enum { HIDDEN = 2048, FFN = 768, VOCAB = 151936 };
    mc_gguf_writer *w = NULL;
    mc_gguf_write_opts o = { .force = 1 };
    char name[64];
    unsigned char *buf = NULL;
    char **toks = NULL;
    char *tokmem = NULL;
    int rc = mc_gguf_writer_create(&w, path, &o, err);
    if (rc) return rc;
    if (!rc) rc = mc_gguf_writer_add_str(w, "general.architecture", "qwen3moe", err);
    if (!rc) rc = mc_gguf_writer_add_str(w, "general.name", "bench-header", err);
    if (!rc) rc = mc_gguf_writer_add_u32(w, "qwen3moe.block_count", (uint32_t)c->layers, err);
    if (!rc) rc = mc_gguf_writer_add_u32(w, "qwen3moe.embedding_length", HIDDEN, err);
    if (!rc) rc = mc_gguf_writer_add_u32(w, "qwen3moe.expert_feed_forward_length", FFN, err);
    if (!rc) rc = mc_gguf_writer_add_u32(w, "qwen3moe.expert_count", (uint32_t)c->experts, err);
    if (!rc) rc = mc_gguf_writer_add_u32(w, "qwen3moe.expert_used_count", 8, err);
    if (!rc) rc = mc_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", err);
    /* A vocabulary of realistic size: the big string array of real headers. */
    toks = malloc(VOCAB * sizeof *toks);
    tokmem = malloc((size_t)VOCAB * 16);
    if (!toks || !tokmem) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < VOCAB; i++) {
        toks[i] = tokmem + (size_t)i * 16;
        snprintf(toks[i], 16, "tok%d", i);
    }
    if (!rc) rc = mc_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, VOCAB, err);
    int32_t *types = malloc(VOCAB * sizeof *types);
    if (!types && !rc) rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
    if (!rc) {
        for (int i = 0; i < VOCAB; i++) types[i] = 1;
        rc = mc_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", MC_GGUF_INT32, types, VOCAB, err);
    }
    free(types);
    static const char *const kinds[3] = { "gate", "up", "down" };
    uint64_t ne_gu[2] = { HIDDEN, FFN }, ne_d[2] = { FFN, HIDDEN }, ne_e[2] = { HIDDEN, VOCAB };
    if (!rc) rc = mc_gguf_writer_add_tensor(w, "token_embd.weight", MC_T_Q4_K, 2, ne_e, err);
    for (int l = 0; l < c->layers && !rc; l++)
        for (int e = 0; e < c->experts && !rc; e++)
            for (int k = 0; k < 3 && !rc; k++) {
                snprintf(name, sizeof name, "blk.%d.ffn_%s.%d.weight", l, kinds[k], e);
                rc = mc_gguf_writer_add_tensor(w, name, MC_T_Q4_K, 2, k == 2 ? ne_d : ne_gu, err);
            }
    if (rc) goto done;
    uint64_t total = 0, nb = 0;
    mc_type_nbytes(MC_T_Q4_K, (uint64_t)HIDDEN * VOCAB, &nb);
    total += nb;
    mc_type_nbytes(MC_T_Q4_K, (uint64_t)HIDDEN * FFN, &nb);
    total += nb * 3 * (uint64_t)c->layers * (uint64_t)c->experts;
    if (!c->real) {
        rc = mc_gguf_writer_skip(w, total, err);
    } else {
        size_t chunk = 8u << 20;
        buf = malloc(chunk);
        if (!buf) {
            rc = mc_error_set(err, MC_ERR_NOMEM, "out of memory");
            goto done;
        }
        uint64_t x = 0x9E3779B97F4A7C15ull;
        for (size_t i = 0; i + 8 <= chunk; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(buf + i, &x, 8);
        }
        for (uint64_t done = 0; done < total && !rc; done += chunk) {
            size_t n = total - done < chunk ? (size_t)(total - done) : chunk;
            buf[0] ^= (unsigned char)(done >> 23); /* not all chunks identical */
            rc = mc_gguf_writer_write(w, buf, n, err);
        }
    }
    if (!rc) {
        rc = mc_gguf_writer_commit(w, err);
        w = NULL;
    }
done:
    mc_gguf_writer_abort(w);
    free(buf);
    free(toks);
    free(tokmem);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--open") == 0) return open_only(argv[2]);
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_header DIR [--real] [--layers N] [--experts N] [--keep]\n");
        return 2;
    }
    cfg c = { 32, 64, 0 };
    int keep = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--real") == 0) c.real = 1;
        else if (strcmp(argv[i], "--keep") == 0) keep = 1;
        else if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc) c.layers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--experts") == 0 && i + 1 < argc) c.experts = atoi(argv[++i]);
        else {
            fprintf(stderr, "bench_header: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (c.layers < 1 || c.experts < 1 || c.layers > 1000 || c.experts > 1000) {
        fprintf(stderr, "bench_header: layers and experts must be 1..1000\n");
        return 2;
    }
    char *path = mc_path_join(argv[1], "bench-header.gguf");
    mc_error err = { 0 };
    int fds[2];
    pid_t pid = -1;
    int status = 1;
    posix_spawn_file_actions_t fa;
    char *args[] = { argv[0], "--open", path, NULL };
    if (!path || pipe(fds) != 0 || posix_spawn_file_actions_init(&fa) != 0) {
        fprintf(stderr, "bench_header: setup failed\n");
        return 1;
    }
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    if (posix_spawn(&pid, argv[0], &fa, NULL, args, environ) != 0) {
        fprintf(stderr, "bench_header: cannot run %s --open\n", argv[0]);
        return 1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[0]);
    double t0 = bench_now();
    if (build(path, &c, &err) != 0) {
        fprintf(stderr, "bench_header: %s\n", err.msg);
        close(fds[1]);
        waitpid(pid, &status, 0);
        free(path);
        return 1;
    }
    struct stat st;
    stat(path, &st);
    printf("built         %s in %.1f s (%d layers x %d experts x 3 Q4_K tensors + token_embd; data %s; %lld MiB on disk)\n",
           path, bench_now() - t0, c.layers, c.experts, c.real ? "real pseudo-random bytes" : "sparse (holes)",
           (long long)st.st_blocks * 512 / (1 << 20));
    printf("builder       peak RSS %ld KiB\n", maxrss_kib());
    fflush(stdout);
    if (write(fds[1], "g", 1) != 1 || waitpid(pid, &status, 0) < 0) status = 1;
    close(fds[1]);
    if (!keep) unlink(path);
    free(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
