/* libFuzzer target for the public .flash reader (include/mconv/flash.h): the
 * input is a whole .flash image, written to a temporary file and opened with
 * mc_flash_reader_open (checksums on, 3 threads; direct I/O for a quarter of
 * the inputs, by their size: a direct read of a file just written waits for
 * its pages to reach the disk); then every public read runs: the pinned
 * region, every FFN span, every MoE layer's experts (all of them, k at a
 * time, and an id past the end), every tensor on its own; for half of the
 * inputs the config/tokenizer files are written to a temporary folder
 * (each file is fsync'd).
 * Whatever the bytes: no crash, leak or undefined behaviour, and
 *  - a refusal always says why;
 *  - the public open is at least as strict as the internal one;
 *  - every tensor lies inside the buffer its read fills (the API's promise);
 *  - reads of an opened file fail only with a checksum mismatch (open
 *    checked every range), and not at all when mc_flash_verify calls the
 *    file sound;
 *  - write_files creates exactly the files the reader lists, in the folder.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_flash_reader
 *   build-fuzz/fuzz_flash_reader -max_len=2097152 -max_total_time=60 testdata/fuzz/fuzz_flash_reader
 */
#include "mc_flash.h"
#include "mconv/flash.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP ((uint64_t)16 << 20) /* largest single read the target makes */

static char path[64], dir[64];

static void ignore(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static void clean_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[400];
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

static void remove_paths(void)
{
    unlink(path);
    clean_dir();
    rmdir(dir);
}

/* A read of an opened file: fine, or a checksum mismatch when not sound. */
static void read_ok(int rc, int sound)
{
    if (rc == 0) return;
    if (rc != MC_ERR_CHECKSUM || sound) abort();
}

static void reads(mc_flash_reader *r, int sound)
{
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    mc_error err = { MC_OK, "" };
    unsigned char *b = NULL;
    /* the API's promise: every tensor inside the buffer its read fills */
    for (size_t i = 0; i < in->n_tensors; i++) {
        const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, i);
        uint64_t room = in->pinned_nbytes;
        if (t->kind != MC_FLASH_READER_PINNED) {
            const mc_flash_reader_layer *L = mc_flash_reader_find_layer(r, t->layer, t->kind);
            if (!L) abort();
            room = L->nbytes;
        }
        if (t->buffer_offset > room || t->nbytes > room - t->buffer_offset || t->buffer_offset % 16384) abort();
        if (mc_flash_reader_find(r, t->name) != t) abort(); /* names are unique */
    }
    if (in->pinned_nbytes <= CAP && (b = mc_flash_reader_alloc((size_t)in->pinned_nbytes))) {
        read_ok(mc_flash_reader_read_pinned(r, b, &err), sound);
        mc_flash_reader_free(b);
    }
    for (size_t li = 0; li < in->n_layers; li++) {
        const mc_flash_reader_layer *L = mc_flash_reader_layer_at(r, li);
        if (L->nbytes > CAP) continue;
        if (L->kind == MC_FLASH_READER_FFN) {
            if ((b = mc_flash_reader_alloc((size_t)L->nbytes))) read_ok(mc_flash_reader_read_ffn(r, L->layer, b, &err), sound);
            mc_flash_reader_free(b);
            continue;
        }
        uint32_t ids[4];
        if (!(b = mc_flash_reader_alloc((size_t)(4 * L->nbytes)))) continue;
        for (uint32_t s = 0; s < L->n_experts && s < 64; s += 4) {
            size_t k = 0;
            for (uint32_t e = s; e < L->n_experts && k < 4; e++) ids[k++] = e;
            mc_error_clear(&err);
            read_ok(mc_flash_reader_read_experts(r, L->layer, ids, k, b, &err), sound);
        }
        ids[0] = L->n_experts;
        if (mc_flash_reader_read_experts(r, L->layer, ids, 1, b, NULL) != MC_ERR_ARG) abort();
        mc_flash_reader_free(b);
    }
    for (size_t i = 0; i < in->n_tensors && i < 256; i++) {
        const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, i);
        uint64_t n = mc_flash_reader_tensor_read_size(t);
        if (n > CAP || !(b = mc_flash_reader_alloc((size_t)n))) continue;
        read_ok(mc_flash_reader_read_tensor(r, t, 0, b, &err), sound);
        mc_flash_reader_free(b);
    }
}

static void files(mc_flash_reader *r)
{
    mc_error err = { MC_OK, "" };
    size_t nf = mc_flash_reader_n_files(r), got = 0;
    if (nf == 0 || strcmp(mc_flash_reader_file_name(r, 0), "config.json")) abort();
    if (mc_flash_reader_write_files(r, dir, &err)) {
        if (!err.msg[0]) abort();
    } else {
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            int known = 0;
            for (size_t i = 0; i < nf; i++) known |= !strcmp(e->d_name, mc_flash_reader_file_name(r, i));
            if (!known) abort(); /* nothing but the listed files, nothing outside the folder */
            got++;
        }
        if (d) closedir(d);
        if (got != nf) abort();
    }
    clean_dir();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_flash_reader.%ld", (long)getpid());
        snprintf(dir, sizeof dir, "/tmp/fuzz_flash_reader.%ld.d", (long)getpid());
        mkdir(dir, 0700);
        atexit(remove_paths);
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    mc_error err = { MC_OK, "" };
    mc_flash *fl = NULL;
    int irc = mc_flash_open(path, &fl, NULL);
    mc_flash_close(fl);
    mc_flash_reader_opts o;
    mc_flash_reader *r = NULL;
    mc_flash_reader_opts_init(&o);
    o.verify = 1;
    o.threads = 3;
    o.io = ((size >> 14) & 3) == 1 ? MC_FLASH_IO_DIRECT : MC_FLASH_IO_BUFFERED;
    int rc = mc_flash_reader_open(path, &o, &r, &err);
    if (rc && !err.msg[0]) abort(); /* a refusal always says why */
    if (rc == 0 && irc != 0) abort(); /* never laxer than the internal parser */
    if (rc) return 0;
    int sound = mc_flash_verify(path, ignore, NULL, NULL, NULL) == 0;
    reads(r, sound);
    if (((size >> 14) & 1) == 0) files(r);
    mc_flash_reader_close(r);
    return 0;
}
