/* bench_convert: peak memory and speed of `mconv IN OUT.flash` on a large
 * model.
 *
 *   bench_convert MCONV CORPUS_QWEN3MOE_GGUF WORKDIR [LAYERS [EXPERTS [THREADS]]]
 *
 * Builds WORKDIR/big-qwen3moe.gguf with the project's GGUF writer: the
 * metadata (tokenizer included) of the small corpus qwen3moe GGUF, the
 * shapes of a larger model (hidden 2048, expert FFN 768, EXPERTS experts,
 * LAYERS layers; default 8 x 128: about 2.7 GB), random but finite Q4_K
 * expert blocks and Q4_K/Q6_K/Q8_0/F32 for the rest. Then runs MCONV on it
 * with --stats and reports the child's peak RSS (getrusage), wall time and
 * MB/s, and checks the bound (512 MiB). Exit 1 when the bound is broken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mc_float.h"
#include "mc_gguf.h"
#include "mc_gguf_write.h"
#include "mc_types.h"

#include "bench_util.h"

static int add_tensor(mc_gguf_writer *w, const char *name, int type, uint32_t nd, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t ne[3] = { a, b, c };
    mc_error err = { MC_OK, "" };
    if (mc_gguf_writer_add_tensor(w, name, type, nd, ne, &err)) {
        fprintf(stderr, "bench_convert: %s\n", err.msg);
        return -1;
    }
    return 0;
}

typedef struct tdesc {
    char name[64];
    int type;
    uint64_t nel;
} tdesc;

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_convert MCONV CORPUS_QWEN3MOE_GGUF WORKDIR [LAYERS [EXPERTS [THREADS]]]\n");
        return 2;
    }
    const char *mconv = argv[1], *small = argv[2], *work = argv[3];
    int L = argc > 4 ? atoi(argv[4]) : 8, E = argc > 5 ? atoi(argv[5]) : 128, threads = argc > 6 ? atoi(argv[6]) : 2;
    const uint64_t H = 2048, F = 768, V = 256, QD = 4 * 64, KD = 2 * 64;
    char in[1024], out[1024], cmd[4096];
    snprintf(in, sizeof in, "%s/big-qwen3moe.gguf", work);
    snprintf(out, sizeof out, "%s/big-qwen3moe.flash", work);
    mc_error err = { MC_OK, "" };
    mc_gguf *g = NULL;
    if (mc_gguf_open(small, &g, &err)) {
        fprintf(stderr, "bench_convert: %s\n", err.msg);
        return 1;
    }
    struct { const char *key; uint32_t v; } over[] = {
        { "qwen3moe.block_count", (uint32_t)L },        { "qwen3moe.embedding_length", (uint32_t)H },
        { "qwen3moe.expert_count", (uint32_t)E },       { "qwen3moe.expert_feed_forward_length", (uint32_t)F },
        { "qwen3moe.feed_forward_length", (uint32_t)F }, { "qwen3moe.expert_used_count", 8 },
    };
    mc_gguf_write_opts wo = { 3, 32, 1, 0, 0, 0 };
    mc_gguf_writer *w = NULL;
    tdesc *td = calloc((size_t)L * 16 + 8, sizeof *td);
    size_t nt = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (mc_gguf_writer_create(&w, in, &wo, &err)) goto fail;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const mc_gguf_kv *kv = &g->kv[i];
        int replaced = 0;
        for (size_t k = 0; k < sizeof over / sizeof over[0]; k++)
            if (!strcmp(kv->key.s, over[k].key)) {
                if (mc_gguf_writer_add_u32(w, over[k].key, over[k].v, &err)) goto fail;
                replaced = 1;
            }
        if (!replaced && mc_gguf_writer_copy_kv(w, kv, &err)) goto fail;
    }
#define T(nm, ty, nd, a, b, c)                                                                                     \
    do {                                                                                                           \
        snprintf(td[nt].name, sizeof td[nt].name, "%s", nm);                                                       \
        td[nt].type = ty;                                                                                          \
        td[nt].nel = (uint64_t)(a) * (b) * (c);                                                                    \
        if (add_tensor(w, td[nt].name, ty, nd, a, b, c)) goto fail2;                                               \
        nt++;                                                                                                      \
    } while (0)
    T("token_embd.weight", MC_T_Q4_K, 2, H, V, 1);
    T("output_norm.weight", MC_T_F32, 1, H, 1, 1);
    T("output.weight", MC_T_Q6_K, 2, H, V, 1);
    for (int l = 0; l < L; l++) {
        char n[64];
#define TL(sfx, ty, nd, a, b, c) do { snprintf(n, sizeof n, "blk.%d.%s", l, sfx); T(n, ty, nd, a, b, c); } while (0)
        TL("attn_norm.weight", MC_T_F32, 1, H, 1, 1);
        TL("attn_q.weight", MC_T_Q4_K, 2, H, QD, 1);
        TL("attn_k.weight", MC_T_Q8_0, 2, H, KD, 1);
        TL("attn_v.weight", MC_T_Q8_0, 2, H, KD, 1);
        TL("attn_output.weight", MC_T_Q4_K, 2, QD, H, 1);
        TL("attn_q_norm.weight", MC_T_F32, 1, 64, 1, 1);
        TL("attn_k_norm.weight", MC_T_F32, 1, 64, 1, 1);
        TL("ffn_norm.weight", MC_T_F32, 1, H, 1, 1);
        TL("ffn_gate_inp.weight", MC_T_F32, 2, H, (uint64_t)E, 1);
        TL("ffn_gate_exps.weight", MC_T_Q4_K, 3, H, F, (uint64_t)E);
        TL("ffn_up_exps.weight", MC_T_Q4_K, 3, H, F, (uint64_t)E);
        TL("ffn_down_exps.weight", MC_T_Q4_K, 3, F, H, (uint64_t)E);
    }
    {
        size_t cap = (size_t)8 << 20;
        unsigned char *buf = malloc(cap);
        uint64_t total = 0;
        for (size_t i = 0; i < nt; i++) {
            const mc_type_traits *tr = mc_type_get(td[i].type);
            uint64_t nblocks = td[i].nel / tr->blck;
            while (nblocks) {
                size_t k = cap / tr->type_size;
                if (k > nblocks) k = (size_t)nblocks;
                if (td[i].type == MC_T_F32) {
                    float *f = (float *)(void *)buf;
                    for (size_t j = 0; j < k; j++) f[j] = 1.0f + (float)(rnd() % 100) * 1e-3f;
                } else {
                    fill_blocks(td[i].type, buf, k);
                }
                if (mc_gguf_writer_write(w, buf, k * tr->type_size, &err)) {
                    free(buf);
                    goto fail;
                }
                total += k * tr->type_size;
                nblocks -= k;
            }
        }
        free(buf);
        if (mc_gguf_writer_commit(w, &err)) {
            w = NULL;
            goto fail;
        }
        w = NULL;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("input: %s: %d layers x %d experts, %.2f GB of tensor data (written in %.1fs)\n", in, L, E,
               (double)total / 1e9, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    mc_gguf_close(g);
    g = NULL;

    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' --force --stats --threads %d", mconv, in, out, threads);
    printf("running: %s\n", cmd);
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
#ifdef __APPLE__
    double peak = (double)ru.ru_maxrss;
#else
    double peak = (double)ru.ru_maxrss * 1024.0;
#endif
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    struct stat si, so;
    stat(in, &si);
    int have_out = stat(out, &so) == 0;
    printf("result: exit %d, %.1fs, input %.2f GB (%.1f MB/s), output %.2f GB, peak RSS %.1f MiB (bound 512 MiB)\n",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, secs, (double)si.st_size / 1e9, (double)si.st_size / 1e6 / secs,
           have_out ? (double)so.st_size / 1e9 : 0.0, peak / 1048576.0);
    free(td);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    return peak < 512.0 * 1048576.0 ? 0 : 1;
fail2:
fail:
    fprintf(stderr, "bench_convert: %s\n", err.msg);
    if (w) mc_gguf_writer_abort(w);
    if (g) mc_gguf_close(g);
    free(td);
    return 1;
}
