/* flash_read: what an engine does with a .flash file, through the installed
 * mconv reader library (mconv/flash.h) and nothing else.
 *
 *   flash_read FILE.flash [--verify] [--buffered] [--threads N] [--files DIR] [--fingerprint]
 *
 * Opens the file, loads the pinned region in one read (where an engine keeps
 * embeddings, attention, norms and routers for the whole session), then
 * walks the streamed layers as a token would: a dense layer's FFN span in
 * one read, a MoE layer's experts k = experts_per_tok at a time (one read
 * per expert block, in parallel), here every expert once in a shuffled
 * order. --verify checks every read against the file's checksums;
 * --buffered reads through the page cache instead of direct I/O; --files DIR
 * writes config.json and the tokenizer files for mlx-lm / transformers;
 * --fingerprint prints "CRC32 NAME" for every tensor and "CRC32 NAME[E]" for
 * every expert slice (zlib's CRC-32), to compare with another copy of the
 * weights.
 *
 * Build against an installed mconv:
 *   cmake -S examples -B build-ex -DCMAKE_PREFIX_PATH=PREFIX && cmake --build build-ex
 *   cc examples/flash_read.c $(pkg-config --cflags mconv) $(pkg-config --static --libs mconv) -o flash_read
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <mconv/flash.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t g_crc[256];

static uint32_t crc32(const unsigned char *p, uint64_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    if (!g_crc[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t v = i;
            for (int k = 0; k < 8; k++) v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
            g_crc[i] = v;
        }
    for (uint64_t i = 0; i < n; i++) c = g_crc[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const mc_error *err)
{
    fprintf(stderr, "flash_read: %s (%s)\n", err->msg, mc_error_code_name(err->code));
    return 1;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *files = NULL;
    int fingerprint = 0;
    mc_flash_reader_opts o;
    mc_flash_reader_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verify")) o.verify = 1;
        else if (!strcmp(argv[i], "--buffered")) o.io = MC_FLASH_IO_BUFFERED;
        else if (!strcmp(argv[i], "--fingerprint")) fingerprint = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--files") && i + 1 < argc) files = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "usage: flash_read FILE.flash [--verify] [--buffered] [--threads N] [--files DIR] "
                            "[--fingerprint]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: flash_read FILE.flash [options]\n");
        return 2;
    }
    if (mc_flash_reader_version() / 10000 != MC_FLASH_READER_VERSION_MAJOR) {
        fprintf(stderr, "flash_read: built for reader API %d.x, linked with %s\n", MC_FLASH_READER_VERSION_MAJOR,
                mc_flash_reader_version_string());
        return 1;
    }

    mc_error err = { MC_OK, "" };
    mc_flash_reader *r = NULL;
    if (mc_flash_reader_open(path, &o, &r, &err)) return fail(&err);
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    int rc = 0;
    unsigned char *pinned = NULL, *buf = NULL;
    uint32_t *ids = NULL;
    uint64_t bytes = 0, reads = 0;
    double t0 = now();
    if (!fingerprint)
        printf("%s: %s, %zu tensors, %zu dense + %zu MoE layers, %d experts per token; reads: %s\n", path,
               in->model_type, in->n_tensors, in->n_ffn_layers, in->n_moe_layers, in->experts_per_tok,
               mc_flash_reader_io_note(r));

    if (files && (rc = mc_flash_reader_write_files(r, files, &err))) goto out;

    /* the pinned region: once, for the whole session */
    pinned = mc_flash_reader_alloc(in->pinned_nbytes);
    if (!pinned) {
        fprintf(stderr, "flash_read: out of memory\n");
        rc = 1;
        goto out;
    }
    if ((rc = mc_flash_reader_read_pinned(r, pinned, &err))) goto out;
    bytes += in->pinned_nbytes;
    reads++;
    for (size_t i = 0; i < in->n_tensors; i++) {
        const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, i);
        if (t->kind != MC_FLASH_READER_PINNED) continue;
        /* an engine wraps pinned + t->buffer_offset as a t->dtype array of t->shape */
        if (fingerprint) printf("%08x %s\n", crc32(pinned + t->buffer_offset, t->nbytes), t->name);
    }

    /* the streamed layers */
    uint64_t k = in->experts_per_tok > 0 ? (uint64_t)in->experts_per_tok : 1;
    uint64_t cap = in->max_ffn_nbytes > k * in->max_expert_stride ? in->max_ffn_nbytes : k * in->max_expert_stride;
    buf = mc_flash_reader_alloc(cap ? cap : 1);
    uint32_t seed = 12345;
    for (size_t li = 0; buf && li < in->n_layers; li++) {
        const mc_flash_reader_layer *L = mc_flash_reader_layer_at(r, li);
        if (L->kind == MC_FLASH_READER_FFN) {
            if ((rc = mc_flash_reader_read_ffn(r, L->layer, buf, &err))) goto out;
            bytes += L->nbytes;
            reads++;
            for (size_t j = 0; fingerprint && j < L->n_tensors; j++) {
                const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, L->first_tensor + j);
                printf("%08x %s\n", crc32(buf + t->buffer_offset, t->nbytes), t->name);
            }
            continue;
        }
        /* every expert once, k at a time, in a shuffled order (an engine
         * passes the router's top-k ids of the token) */
        free(ids);
        ids = malloc(L->n_experts * sizeof *ids);
        if (!ids) break;
        for (uint32_t e = 0; e < L->n_experts; e++) ids[e] = e;
        for (uint32_t e = L->n_experts; e > 1; e--) {
            seed = seed * 1664525u + 1013904223u;
            uint32_t j = (seed >> 8) % e, t = ids[e - 1];
            ids[e - 1] = ids[j];
            ids[j] = t;
        }
        for (uint32_t s = 0; s < L->n_experts; s += (uint32_t)k) {
            size_t n = L->n_experts - s < k ? L->n_experts - s : (size_t)k;
            if ((rc = mc_flash_reader_read_experts(r, L->layer, ids + s, n, buf, &err))) goto out;
            bytes += n * L->nbytes;
            reads += n;
            /* expert tensor t of block i: buf + i * L->nbytes + t->buffer_offset */
            for (size_t i = 0; fingerprint && i < n; i++)
                for (size_t j = 0; j < L->n_tensors; j++) {
                    const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, L->first_tensor + j);
                    printf("%08x %s[%u]\n", crc32(buf + i * L->nbytes + t->buffer_offset, t->nbytes), t->name,
                           ids[s + i]);
                }
        }
    }
    if (!buf) {
        fprintf(stderr, "flash_read: out of memory\n");
        rc = 1;
        goto out;
    }
    double dt = now() - t0;
    if (!fingerprint)
        printf("read %llu bytes in %llu reads, %.3f s (%.1f MB/s)%s; reads: %s\n", (unsigned long long)bytes,
               (unsigned long long)reads, dt, dt > 0 ? (double)bytes / dt / 1e6 : 0.0,
               o.verify ? ", checksums verified" : "", mc_flash_reader_io_note(r));
out:
    if (rc) fail(&err);
    free(ids);
    mc_flash_reader_free(buf);
    mc_flash_reader_free(pinned);
    mc_flash_reader_close(r);
    return rc ? 1 : 0;
}
