/* The public .flash reader (include/mconv/flash.h) on synthetic files (no
 * corpus needed): tables against the internal parser, every read call
 * against the internal reads, direct / buffered / fallback I/O, parallel
 * and concurrent expert reads, checksums catching flipped bytes (and reads
 * passing without them), manifests with unknown keys and regions, hostile
 * manifests refused, the config and tokenizer files. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mc_dio.h"
#include "mc_flash.h"
#include "mc_test.h"
#include "mc_test_flashgen.h"
#include "mconv/flash.h"

static const char *g_flash; /* the synthetic file: 1 dense layer, 1 MoE layer of 4 experts, k = 2 */

static mc_flash_reader *open_opts(const char *path, int io, int verify, int threads, mc_error *err)
{
    mc_flash_reader_opts o;
    mc_flash_reader *r = NULL;
    mc_flash_reader_opts_init(&o);
    o.io = io;
    o.verify = verify;
    o.threads = threads;
    mc_error_clear(err);
    mc_flash_reader_open(path, &o, &r, err);
    return r;
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = mc_test_read_file(from, &n);
    CHECK(b && mc_test_write_file(to, b, n) == 0);
    free(b);
}

/* The bytes the internal parser reads for [off, off+n). */
static unsigned char *internal_range(const mc_flash *f, uint64_t off, uint64_t n)
{
    unsigned char *b = malloc((size_t)n);
    mc_file ff = f->file;
    if (b && mc_file_pread(&ff, off, b, (size_t)n, NULL)) {
        free(b);
        return NULL;
    }
    return b;
}

static void test_version(void)
{
    char want[32];
    CHECK_EQ_U64(mc_flash_reader_version(), MC_FLASH_READER_VERSION);
    snprintf(want, sizeof want, "%d.%d.%d", MC_FLASH_READER_VERSION_MAJOR, MC_FLASH_READER_VERSION_MINOR,
             MC_FLASH_READER_VERSION_PATCH);
    CHECK_STR(mc_flash_reader_version_string(), want);
    CHECK_STR(mc_error_code_name(MC_ERR_CHECKSUM), "checksum mismatch");
}

static void test_tables(void)
{
    mc_error err;
    mc_flash *f = NULL;
    mc_flash_reader *r = open_opts(g_flash, MC_FLASH_IO_DIRECT, 0, 0, &err);
    CHECKF(r != NULL, "%s", err.msg);
    CHECK(mc_flash_open(g_flash, &f, &err) == 0);
    if (!r || !f) goto done;
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    CHECK_STR(in->path, g_flash);
    CHECK_EQ_U64(in->file_size, f->file.size);
    CHECK_EQ_U64(in->pinned_offset, f->pinned_offset);
    CHECK_EQ_U64(in->pinned_nbytes, f->pinned_nbytes);
    CHECK_EQ_U64(in->experts_per_tok, 2);
    CHECK_EQ_U64(in->n_ffn_layers, 1);
    CHECK_EQ_U64(in->n_moe_layers, 1);
    CHECK_EQ_U64(in->n_layers, 2);
    CHECK_STR(in->model_type, "qwen3_moe");
    CHECK_EQ_U64(in->max_ffn_nbytes, f->ffn[0].nbytes);
    CHECK_EQ_U64(in->max_expert_stride, f->experts[0].stride);
    CHECK_EQ_U64(in->token_bytes, f->ffn[0].nbytes + 2 * f->experts[0].stride);
    CHECK_EQ_U64(in->token_reads, 3);
    CHECK_EQ_U64(in->n_tensors, f->n_tensors + f->experts[0].n_tensors);
    /* threads 0 = experts_per_tok */
    CHECK_STR(mc_flash_reader_file_name(r, 0), "config.json");

    /* pinned and ffn tensors: the internal table, in file order */
    size_t i = 0, np = 0;
    for (size_t j = 0; j < f->n_tensors; j++) {
        if (f->tensors[j].role != MC_FLASH_PINNED) continue;
        const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, i++);
        np++;
        CHECK(t && t->kind == MC_FLASH_READER_PINNED && t->layer == -1);
        if (!t) continue;
        CHECK_STR(t->name, f->tensors[j].name);
        CHECK_EQ_U64(t->offset, f->tensors[j].offset);
        CHECK_EQ_U64(t->nbytes, f->tensors[j].nbytes);
        CHECK_EQ_U64(t->buffer_offset, f->tensors[j].offset - f->pinned_offset);
        CHECK(t->has_xxh3 && t->xxh3 == f->tensors[j].xxh3);
        CHECK(mc_flash_reader_find(r, t->name) == t);
    }
    CHECK(np > 5);
    const mc_flash_reader_layer *L0 = mc_flash_reader_layer_at(r, 0), *L1 = mc_flash_reader_layer_at(r, 1);
    CHECK(L0 && L0->kind == MC_FLASH_READER_FFN && L0->layer == 0 && L0->n_experts == 0 && !L0->block_xxh3);
    CHECK(L1 && L1->kind == MC_FLASH_READER_EXPERT && L1->layer == 1 && L1->n_experts == 4);
    CHECK(mc_flash_reader_layer_at(r, 2) == NULL);
    CHECK(mc_flash_reader_find_layer(r, 0, MC_FLASH_READER_FFN) == L0);
    CHECK(mc_flash_reader_find_layer(r, 1, MC_FLASH_READER_EXPERT) == L1);
    CHECK(mc_flash_reader_find_layer(r, 0, MC_FLASH_READER_EXPERT) == NULL);
    CHECK(mc_flash_reader_find_layer(r, 7, MC_FLASH_READER_FFN) == NULL);
    if (L0 && L1) {
        CHECK_EQ_U64(L0->first_tensor, np);
        CHECK_EQ_U64(L0->n_tensors, 9); /* gate, up, down x weight, scales, biases */
        CHECK_EQ_U64(L0->offset, f->ffn[0].offset);
        CHECK_EQ_U64(L0->nbytes, f->ffn[0].nbytes);
        for (size_t j = 0; j < L0->n_tensors; j++) {
            const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, L0->first_tensor + j);
            CHECK(t->kind == MC_FLASH_READER_FFN && t->layer == 0);
            CHECK(t->offset >= L0->offset && t->buffer_offset == t->offset - L0->offset);
        }
        CHECK_STR(mc_flash_reader_tensor_at(r, L0->first_tensor)->name, "model.layers.0.mlp.gate_proj.weight");
        CHECK_EQ_U64(L1->first_tensor, L0->first_tensor + L0->n_tensors);
        CHECK_EQ_U64(L1->n_tensors, 9);
        CHECK_EQ_U64(L1->nbytes, f->experts[0].stride);
        CHECK(L1->block_xxh3 && L1->block_xxh3[3] == f->experts[0].xxh3[3]);
        const mc_flash_reader_tensor *g = mc_flash_reader_find(r, "model.layers.1.mlp.switch_mlp.gate_proj.weight");
        const mc_flash_reader_tensor *d = mc_flash_reader_find(r, "model.layers.1.mlp.switch_mlp.down_proj.biases");
        CHECK(g && g == mc_flash_reader_tensor_at(r, L1->first_tensor));
        CHECK(d != NULL);
        if (g && d) {
            CHECK_STR(g->dtype, "U32");
            CHECK_STR(d->dtype, "BF16");
            CHECK(g->kind == MC_FLASH_READER_EXPERT && g->layer == 1 && !g->has_xxh3);
            CHECK_EQ_U64(g->n_dims, 3);
            CHECK(g->shape[0] == 4 && g->shape[1] == 64 && g->shape[2] == 128 * 4 / 32);
            CHECK_EQ_U64(g->nbytes, 64 * 16 * 4);
            CHECK_EQ_U64(g->buffer_offset, 0);
            CHECK_EQ_U64(g->offset, L1->offset);
            CHECK(d->shape[0] == 4 && d->shape[1] == 128 && d->shape[2] == 1);
            CHECK(d->buffer_offset % 16384 == 0 && d->buffer_offset + d->nbytes <= L1->nbytes);
        }
    }
    CHECK(mc_flash_reader_tensor_at(r, in->n_tensors) == NULL);
    CHECK(mc_flash_reader_find(r, "no.such.tensor") == NULL);
    CHECK(mc_flash_reader_find(r, NULL) == NULL);
done:
    mc_flash_close(f);
    mc_flash_reader_close(r);
}

/* Every read call gives the bytes the internal parser reads; with io mode
 * and thread count as given. */
static void check_reads(int io, int threads, int verify)
{
    mc_error err;
    mc_flash *f = NULL;
    mc_flash_reader *r = open_opts(g_flash, io, verify, threads, &err);
    if (!r && io == MC_FLASH_IO_DIRECT_ONLY && err.code == MC_ERR_UNSUPPORTED) {
        mc_test_skip("direct I/O refused in the test folder: %s", err.msg);
        return;
    }
    CHECKF(r != NULL, "io %d: %s", io, err.msg);
    CHECK(mc_flash_open(g_flash, &f, &err) == 0);
    if (!r || !f) goto done;
    const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
    const mc_flash_reader_layer *L0 = mc_flash_reader_find_layer(r, 0, MC_FLASH_READER_FFN);
    const mc_flash_reader_layer *L1 = mc_flash_reader_find_layer(r, 1, MC_FLASH_READER_EXPERT);
    unsigned char *buf = mc_flash_reader_alloc((size_t)(8 * L1->nbytes + in->pinned_nbytes));
    CHECK(buf && (uintptr_t)buf % 16384 == 0);

    /* pinned: one read, tensors at buffer_offset */
    mc_error_clear(&err);
    CHECKF(mc_flash_reader_read_pinned(r, buf, &err) == 0, "%s", err.msg);
    unsigned char *want = internal_range(f, in->pinned_offset, in->pinned_nbytes);
    CHECK(want && memcmp(buf, want, (size_t)in->pinned_nbytes) == 0);
    free(want);
    for (size_t i = 0; i < f->n_tensors; i++) {
        if (f->tensors[i].role != MC_FLASH_PINNED) continue;
        unsigned char *t = malloc((size_t)f->tensors[i].nbytes);
        CHECK(mc_flash_read_tensor(f, &f->tensors[i], t, NULL) == 0);
        CHECK(memcmp(buf + (f->tensors[i].offset - in->pinned_offset), t, (size_t)f->tensors[i].nbytes) == 0);
        free(t);
    }
    /* ffn span */
    CHECKF(mc_flash_reader_read_ffn(r, 0, buf, &err) == 0, "%s", err.msg);
    want = internal_range(f, L0->offset, L0->nbytes);
    CHECK(want && memcmp(buf, want, (size_t)L0->nbytes) == 0);
    free(want);
    CHECK(mc_flash_reader_read_ffn(r, 1, buf, &err) == MC_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "layer 1 has no ffn span") && strstr(err.msg, g_flash));

    /* experts: any ids, repeats allowed, block i at dst + i * stride */
    static const uint32_t ids[] = { 3, 0, 3, 1, 2, 2, 0, 1 };
    for (size_t k = 0; k <= 8; k++) {
        memset(buf, 0xEE, (size_t)(8 * L1->nbytes));
        mc_error_clear(&err);
        CHECKF(mc_flash_reader_read_experts(r, 1, ids, k, buf, &err) == 0, "k %zu: %s", k, err.msg);
        for (size_t i = 0; i < k; i++) {
            unsigned char *blk = malloc((size_t)L1->nbytes);
            CHECK(mc_flash_read_expert(f, &f->experts[0], ids[i], blk, NULL) == 0);
            CHECKF(memcmp(buf + i * L1->nbytes, blk, (size_t)L1->nbytes) == 0, "k %zu block %zu", k, i);
            free(blk);
        }
        CHECK(k == 8 || buf[k * L1->nbytes] == 0xEE); /* nothing past k blocks */
    }
    uint32_t bad[] = { 1, 4 };
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_experts(r, 1, bad, 2, buf, &err) == MC_ERR_ARG);
    CHECK(strstr(err.msg, "layer 1 has 4 experts, asked for expert 4") != NULL);
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_experts(r, 0, ids, 2, buf, &err) == MC_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "layer 0 has no experts") != NULL);
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_experts(r, 1, NULL, 2, buf, &err) == MC_ERR_ARG);

    /* single tensors, padded to 16 KiB with zeros */
    for (size_t i = 0; i < in->n_tensors; i++) {
        const mc_flash_reader_tensor *t = mc_flash_reader_tensor_at(r, i);
        uint32_t e = t->kind == MC_FLASH_READER_EXPERT ? 2 : 0;
        uint64_t rs = mc_flash_reader_tensor_read_size(t);
        CHECK(rs % 16384 == 0 && rs >= t->nbytes && rs - t->nbytes < 16384);
        memset(buf, 0xEE, (size_t)rs);
        mc_error_clear(&err);
        CHECKF(mc_flash_reader_read_tensor(r, t, e, buf, &err) == 0, "%s: %s", t->name, err.msg);
        want = internal_range(f, t->offset + (t->kind == MC_FLASH_READER_EXPERT ? e * L1->nbytes : 0), t->nbytes);
        CHECKF(want && memcmp(buf, want, (size_t)t->nbytes) == 0, "%s", t->name);
        free(want);
        int zero = 1;
        for (uint64_t b = t->nbytes; b < rs; b++) zero &= buf[b] == 0;
        CHECK(zero);
    }
    const mc_flash_reader_tensor *g = mc_flash_reader_find(r, "model.layers.1.mlp.switch_mlp.up_proj.weight");
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_tensor(r, g, 4, buf, &err) == MC_ERR_ARG && strstr(err.msg, "asked for expert 4"));
    mc_flash_reader_tensor fake = *g;
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_tensor(r, &fake, 0, buf, &err) == MC_ERR_ARG);

    /* buffers must be 4096-aligned, whatever the mode */
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_pinned(r, buf + 512, &err) == MC_ERR_ARG);
    CHECK(strstr(err.msg, "not 4096-byte aligned") != NULL);
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_experts(r, 1, ids, 2, buf + 8, &err) == MC_ERR_ARG);
    mc_error_clear(&err);
    CHECK(mc_flash_reader_read_ffn(r, 0, NULL, &err) == MC_ERR_ARG);
    CHECK(mc_flash_reader_read_ffn(r, 0, buf + 4096, NULL) == 0); /* 4096 is enough */
    mc_flash_reader_free(buf);
done:
    mc_flash_close(f);
    mc_flash_reader_close(r);
}

static void test_io_modes(void)
{
    mc_error err;
    mc_flash_reader *r = open_opts(g_flash, MC_FLASH_IO_DIRECT, 0, 0, &err);
    CHECKF(r != NULL, "%s", err.msg);
    if (r) {
        const char *note = mc_flash_reader_io_note(r);
        /* the test folder's file system may refuse direct I/O: then it says so */
        if (mc_flash_reader_io_mode(r) == MC_FLASH_IO_DIRECT)
            CHECKF(!strcmp(note, "O_DIRECT") || !strcmp(note, "F_NOCACHE"), "note %s", note);
        else
            CHECKF(strncmp(note, "buffered: ", 10) == 0, "note %s", note);
        printf("direct I/O in the test folder: %s\n", note);
    }
    mc_flash_reader_close(r);
    r = open_opts(g_flash, MC_FLASH_IO_BUFFERED, 0, 0, &err);
    CHECK(r && mc_flash_reader_io_mode(r) == MC_FLASH_IO_BUFFERED);
    if (r) CHECK_STR(mc_flash_reader_io_note(r), "buffered (asked for)");
    mc_flash_reader_close(r);

    /* the file system refuses O_DIRECT at open: buffered, and why */
    mc_dio_test_refuse(1, 0);
    r = open_opts(g_flash, MC_FLASH_IO_DIRECT, 0, 0, &err);
    CHECK(r && mc_flash_reader_io_mode(r) == MC_FLASH_IO_BUFFERED);
    if (r) CHECKF(strstr(mc_flash_reader_io_note(r), "buffered: ") && strstr(mc_flash_reader_io_note(r), "refused"),
                  "%s", mc_flash_reader_io_note(r));
    mc_flash_reader_close(r);
    r = open_opts(g_flash, MC_FLASH_IO_DIRECT_ONLY, 0, 0, &err);
    CHECK(r == NULL && err.code == MC_ERR_UNSUPPORTED && strstr(err.msg, "refused"));
    check_reads(MC_FLASH_IO_DIRECT, 2, 1);

    /* ... or at the first read: that read and every later one is buffered */
    mc_dio_test_refuse(0, 1);
    r = open_opts(g_flash, MC_FLASH_IO_DIRECT, 0, 4, &err);
    if (r && mc_flash_reader_io_mode(r) == MC_FLASH_IO_DIRECT) {
        const mc_flash_reader_layer *L1 = mc_flash_reader_find_layer(r, 1, MC_FLASH_READER_EXPERT);
        void *b = mc_flash_reader_alloc((size_t)(4 * L1->nbytes));
        uint32_t ids[] = { 0, 1, 2, 3 };
        mc_error_clear(&err);
        CHECKF(mc_flash_reader_read_experts(r, 1, ids, 4, b, &err) == 0, "%s", err.msg);
        CHECK(mc_flash_reader_io_mode(r) == MC_FLASH_IO_BUFFERED);
        CHECKF(strstr(mc_flash_reader_io_note(r), "buffered: ") && strstr(mc_flash_reader_io_note(r), "direct read"),
               "%s", mc_flash_reader_io_note(r));
        mc_flash_reader_free(b);
    } else {
        mc_test_skip("direct I/O unavailable in the test folder: the read-time fallback is not exercised");
    }
    mc_flash_reader_close(r);
    r = open_opts(g_flash, MC_FLASH_IO_DIRECT_ONLY, 0, 0, &err);
    if (r) {
        void *b = mc_flash_reader_alloc((size_t)mc_flash_reader_get_info(r)->pinned_nbytes);
        mc_error_clear(&err);
        CHECK(mc_flash_reader_read_pinned(r, b, &err) == MC_ERR_UNSUPPORTED && strstr(err.msg, "refused"));
        CHECK(mc_flash_reader_io_mode(r) == MC_FLASH_IO_DIRECT); /* no fallback */
        mc_flash_reader_free(b);
    }
    mc_flash_reader_close(r);
    check_reads(MC_FLASH_IO_DIRECT, 3, 0);
    mc_dio_test_refuse(0, 0);

    /* bad options */
    mc_flash_reader_opts o;
    mc_flash_reader_opts_init(&o);
    CHECK(o.io == MC_FLASH_IO_DIRECT && o.verify == 0 && o.threads == 0);
    o.threads = 300;
    mc_error_clear(&err);
    CHECK(mc_flash_reader_open(g_flash, &o, &r, &err) == MC_ERR_ARG && r == NULL);
    o.threads = 0;
    o.io = 7;
    CHECK(mc_flash_reader_open(g_flash, &o, &r, NULL) == MC_ERR_ARG);
    CHECK(mc_flash_reader_open(g_flash, NULL, NULL, NULL) == MC_ERR_ARG);
    mc_error_clear(&err);
    CHECK(mc_flash_reader_open("/nonexistent/x.flash", NULL, &r, &err) == MC_ERR_IO && r == NULL);
    CHECK(strstr(err.msg, "/nonexistent/x.flash") != NULL);
}

/* ---- checksums ---- */

static void test_checksums(void)
{
    char path[1024];
    mc_error err;
    snprintf(path, sizeof path, "%s/flipped.flash", mc_test_tmpdir());
    mc_flash_reader *r0 = open_opts(g_flash, MC_FLASH_IO_BUFFERED, 0, 0, &err);
    if (!r0) return;
    const mc_flash_reader_layer L1 = *mc_flash_reader_find_layer(r0, 1, MC_FLASH_READER_EXPERT);
    const mc_flash_reader_layer L0 = *mc_flash_reader_find_layer(r0, 0, MC_FLASH_READER_FFN);
    const mc_flash_reader_tensor up = *mc_flash_reader_find(r0, "model.layers.1.mlp.switch_mlp.up_proj.weight");
    const mc_flash_reader_tensor q = *mc_flash_reader_find(r0, "model.layers.1.self_attn.q_proj.weight");
    const mc_flash_reader_tensor dn = *mc_flash_reader_find(r0, "model.layers.0.mlp.down_proj.scales");
    uint64_t pinned = mc_flash_reader_get_info(r0)->pinned_nbytes;
    mc_flash_reader_close(r0);
    unsigned char *buf = mc_flash_reader_alloc((size_t)(4 * L1.nbytes + pinned));
    unsigned char *clean = mc_flash_reader_alloc((size_t)(4 * L1.nbytes));
    uint32_t ids[] = { 0, 2, 3 }, two[] = { 2 };

    /* a byte of expert 2's up_proj */
    copy_file(g_flash, path);
    CHECK(mc_test_flip_byte(path, L1.offset + 2 * L1.nbytes + up.buffer_offset + 100) == 0);
    for (int threads = 1; threads <= 3; threads += 2) {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_DIRECT, 1, threads, &err);
        CHECKF(r != NULL, "%s", err.msg);
        if (!r) continue;
        mc_error_clear(&err);
        CHECK(mc_flash_reader_read_experts(r, 1, ids, 3, buf, &err) == MC_ERR_CHECKSUM);
        CHECKF(strstr(err.msg, "expert 2 of layer 1") && strstr(err.msg, "checksum mismatch") &&
                   strstr(err.msg, path),
               "%s", err.msg);
        mc_error_clear(&err);
        CHECK(mc_flash_reader_read_experts(r, 1, ids, 1, buf, &err) == 0); /* expert 0 is fine */
        mc_error_clear(&err);
        CHECK(mc_flash_reader_read_experts(r, 1, two, 1, buf, &err) == MC_ERR_CHECKSUM);
        mc_error_clear(&err);
        CHECK(mc_flash_reader_read_pinned(r, buf, &err) == 0);
        CHECK(mc_flash_reader_read_ffn(r, 0, buf, &err) == 0);
        mc_flash_reader_close(r);
    }
    /* without checksums the block reads, one byte different */
    {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_DIRECT, 0, 0, &err), *c = open_opts(g_flash, 1, 0, 0, &err);
        CHECK(r && c);
        if (r && c) {
            CHECK(mc_flash_reader_read_experts(r, 1, ids, 3, buf, &err) == 0);
            CHECK(mc_flash_reader_read_experts(c, 1, ids, 3, clean, &err) == 0);
            size_t diff = 0, at = 0;
            for (size_t i = 0; i < 3 * L1.nbytes; i++)
                if (buf[i] != clean[i]) diff++, at = i;
            CHECK_EQ_U64(diff, 1);
            CHECK_EQ_U64(at, L1.nbytes + up.buffer_offset + 100); /* block 1 of the call is expert 2 */
        }
        mc_flash_reader_close(r);
        mc_flash_reader_close(c);
    }
    /* zero padding inside a block is covered by the block checksum */
    copy_file(g_flash, path);
    CHECK(mc_test_flip_byte(path, L1.offset + 3 * L1.nbytes + L1.nbytes - 1) == 0);
    {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_DIRECT, 1, 0, &err);
        uint32_t three[] = { 3 };
        mc_error_clear(&err);
        CHECK(r && mc_flash_reader_read_experts(r, 1, three, 1, buf, &err) == MC_ERR_CHECKSUM);
        mc_flash_reader_close(r);
    }
    /* a pinned tensor: read_pinned and read_tensor name it */
    copy_file(g_flash, path);
    CHECK(mc_test_flip_byte(path, q.offset + 5) == 0);
    {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_DIRECT, 1, 0, &err);
        mc_error_clear(&err);
        CHECK(r && mc_flash_reader_read_pinned(r, buf, &err) == MC_ERR_CHECKSUM);
        CHECKF(strstr(err.msg, "tensor model.layers.1.self_attn.q_proj.weight") != NULL, "%s", err.msg);
        mc_error_clear(&err);
        int rc = r ? mc_flash_reader_read_tensor(r, mc_flash_reader_find(r, "model.layers.1.self_attn.q_proj.weight"), 0, buf, &err) : -1;
        CHECKF(rc == MC_ERR_CHECKSUM, "rc %d %s", rc, err.msg);
        CHECK(r && mc_flash_reader_read_experts(r, 1, ids, 3, buf, NULL) == 0);
        mc_flash_reader_close(r);
        r = open_opts(path, MC_FLASH_IO_DIRECT, 0, 0, &err);
        CHECK(r && mc_flash_reader_read_pinned(r, buf, NULL) == 0);
        mc_flash_reader_close(r);
    }
    /* an ffn tensor */
    copy_file(g_flash, path);
    CHECK(mc_test_flip_byte(path, dn.offset) == 0);
    {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_BUFFERED, 1, 0, &err);
        mc_error_clear(&err);
        CHECK(r && mc_flash_reader_read_ffn(r, 0, buf, &err) == MC_ERR_CHECKSUM);
        CHECKF(strstr(err.msg, "model.layers.0.mlp.down_proj.scales") != NULL, "%s", err.msg);
        CHECK(r && mc_flash_reader_read_pinned(r, buf, NULL) == 0);
        mc_flash_reader_close(r);
    }
    (void)L0;
    mc_flash_reader_free(buf);
    mc_flash_reader_free(clean);
}

/* ---- concurrency: several threads share one reader and its pool ---- */

typedef struct conc {
    mc_flash_reader *r;
    const unsigned char *ref; /* all 4 blocks in order */
    uint64_t stride;
    int seed, bad;
} conc;

static void *conc_run(void *p)
{
    conc *c = p;
    unsigned char *b = mc_flash_reader_alloc((size_t)(4 * c->stride));
    uint32_t x = (uint32_t)c->seed * 2654435761u + 1;
    for (int it = 0; it < 40 && b; it++) {
        uint32_t ids[4];
        size_t k = 1 + it % 4;
        for (size_t i = 0; i < k; i++) {
            x = x * 1664525u + 1013904223u;
            ids[i] = (x >> 16) % 4;
        }
        if (mc_flash_reader_read_experts(c->r, 1, ids, k, b, NULL)) c->bad++;
        for (size_t i = 0; i < k; i++)
            if (memcmp(b + i * c->stride, c->ref + ids[i] * c->stride, (size_t)c->stride)) c->bad++;
    }
    mc_flash_reader_free(b);
    return NULL;
}

static void test_concurrent(void)
{
    mc_error err;
    mc_flash_reader *r = open_opts(g_flash, MC_FLASH_IO_DIRECT, 1, 3, &err);
    CHECK(r != NULL);
    if (!r) return;
    uint64_t stride = mc_flash_reader_find_layer(r, 1, MC_FLASH_READER_EXPERT)->nbytes;
    unsigned char *ref = mc_flash_reader_alloc((size_t)(4 * stride));
    uint32_t all[] = { 0, 1, 2, 3 };
    CHECK(mc_flash_reader_read_experts(r, 1, all, 4, ref, NULL) == 0);
    pthread_t th[4];
    conc c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (conc){ r, ref, stride, i, 0 };
        pthread_create(&th[i], NULL, conc_run, &c[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_U64(c[i].bad, 0);
    }
    mc_flash_reader_free(ref);
    mc_flash_reader_close(r);
}

/* ---- manifests: extensions accepted, hostile ones refused ---- */

static void add_unknown(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *x = cJSON_AddObjectToObject(m, "source_metadata");
    cJSON_AddNumberToObject(x, "offset", 16384);
    cJSON_AddNumberToObject(x, "nbytes", 16384);
    cJSON_AddStringToObject(x, "codec", "zstd");
    cJSON_AddItemToObject(m, "future_table", cJSON_CreateIntArray((const int[]){ 1, 2, 3 }, 3));
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(m, "tensors")) {
        cJSON *q = cJSON_AddObjectToObject(t, "quant_error");
        cJSON_AddNumberToObject(q, "rmse", 0.0125);
        cJSON_AddNumberToObject(q, "max_abs", 0.5);
    }
    cJSON *x0 = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "experts"), 0);
    cJSON_AddStringToObject(x0, "note", "unknown key");
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(x0, "tensors")) cJSON_AddNumberToObject(t, "rmse", 0.01);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(m, "pinned"), "future", 1);
}

static void add_tokenizer(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *tok = cJSON_GetObjectItem(m, "tokenizer");
    cJSON_DeleteItemFromObject(tok, "embedded");
    cJSON *e = cJSON_AddObjectToObject(tok, "embedded");
    cJSON_AddItemToObject(e, "tokenizer.json", cJSON_Parse("{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"\\u00e9\":1}}}"));
    cJSON_AddStringToObject(e, "chat_template.jinja", "{% for m in messages %}{{ m.content }}\n{% endfor %}");
    cJSON_AddStringToObject(e, "odd.json", "a string value");
    cJSON_AddItemToObject(e, "tokenizer_config.json", cJSON_Parse("{\"add_bos_token\":true,\"model_max_length\":4096}"));
}

typedef struct hostile {
    const char *what;
    void (*fn)(cJSON *m, void *ctx);
    const char *expect; /* part of the error message */
} hostile;

static void h_name(cJSON *m, void *ctx)
{
    cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "tokenizer"), "embedded");
    if (!e) e = cJSON_AddObjectToObject(cJSON_GetObjectItem(m, "tokenizer"), "embedded");
    cJSON_AddStringToObject(e, (const char *)ctx, "x");
}
static void h_traversal(cJSON *m, void *ctx) { (void)ctx; h_name(m, "../evil.txt"); }
static void h_slash(cJSON *m, void *ctx) { (void)ctx; h_name(m, "a/b.json"); }
static void h_hidden(cJSON *m, void *ctx) { (void)ctx; h_name(m, ".bashrc"); }
static void h_config(cJSON *m, void *ctx) { (void)ctx; h_name(m, "config.json"); }
static void h_empty(cJSON *m, void *ctx) { (void)ctx; h_name(m, ""); }
static void h_noconfig(cJSON *m, void *ctx) { (void)ctx; cJSON_DeleteItemFromObject(m, "config"); }
static cJSON *tensor(cJSON *m, const char *role, int nth)
{
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(m, "tensors"))
        if (!strcmp(cJSON_GetObjectItem(t, "role")->valuestring, role) && nth-- == 0) return t;
    return NULL;
}
static void set_num(cJSON *o, const char *k, double v) { cJSON_SetNumberValue(cJSON_GetObjectItem(o, k), v); }
static void h_pin_misaligned(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *t = tensor(m, "pinned", 1);
    set_num(t, "offset", cJSON_GetObjectItem(t, "offset")->valuedouble + 4096);
}
static void h_pin_outside(cJSON *m, void *ctx)
{
    (void)ctx;
    set_num(tensor(m, "pinned", 0), "offset", cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "ffn"), 0), "offset")->valuedouble);
}
static void h_nbytes(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *t = tensor(m, "pinned", 0);
    set_num(t, "nbytes", cJSON_GetObjectItem(t, "nbytes")->valuedouble - 4);
}
static void h_ffn_outside(cJSON *m, void *ctx)
{
    (void)ctx;
    set_num(tensor(m, "ffn", 0), "offset", 16384);
}
static void h_dup_name(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON_SetValuestring(cJSON_GetObjectItem(tensor(m, "pinned", 1), "name"),
                         cJSON_GetObjectItem(tensor(m, "pinned", 0), "name")->valuestring);
}
static void h_dup_span(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *f = cJSON_GetObjectItem(m, "ffn");
    cJSON_AddItemToArray(f, cJSON_Duplicate(cJSON_GetArrayItem(f, 0), 1));
}
static void h_expert_past(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "experts"), 0);
    cJSON *ts = cJSON_GetObjectItem(x, "tensors");
    cJSON *t = cJSON_GetArrayItem(ts, cJSON_GetArraySize(ts) - 1);
    set_num(t, "inner_offset", cJSON_GetObjectItem(x, "stride")->valuedouble);
}
static void h_expert_stride(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "experts"), 0);
    set_num(x, "stride", cJSON_GetObjectItem(x, "stride")->valuedouble - 16384 / 2);
}
static void h_expert_shape(cJSON *m, void *ctx)
{
    (void)ctx;
    cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "experts"), 0);
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "tensors"), 0);
    cJSON_ReplaceItemInObject(t, "shape_per_expert", cJSON_CreateIntArray((const int[]){ 64000, 16 }, 2));
}
static void h_pinned_region(cJSON *m, void *ctx)
{
    (void)ctx;
    set_num(cJSON_GetObjectItem(m, "pinned"), "nbytes", 100);
}

static void test_manifests(void)
{
    char path[1024], dir[1024], p2[1200];
    mc_error err;
    const char *tmp = mc_test_tmpdir();
    snprintf(path, sizeof path, "%s/ext.flash", tmp);

    /* unknown keys everywhere and an unknown region before the manifest */
    copy_file(g_flash, path);
    CHECK(mc_test_flash_rewrite(path, add_unknown, NULL, 2) == 0);
    {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_DIRECT, 1, 0, &err);
        CHECKF(r != NULL, "%s", err.msg);
        if (r) {
            const mc_flash_reader_info *in = mc_flash_reader_get_info(r);
            unsigned char *b = mc_flash_reader_alloc((size_t)in->pinned_nbytes);
            uint32_t ids[] = { 0, 1, 2, 3 };
            unsigned char *x = mc_flash_reader_alloc((size_t)(4 * in->max_expert_stride));
            CHECK(mc_flash_reader_read_pinned(r, b, NULL) == 0);
            CHECK(mc_flash_reader_read_experts(r, 1, ids, 4, x, NULL) == 0);
            size_t ml = 0;
            const char *mj = mc_flash_reader_manifest_json(r, &ml);
            CHECK(mj && ml == strlen(mj) && strstr(mj, "\"quant_error\""));
            mc_flash_reader_free(b);
            mc_flash_reader_free(x);
        }
        mc_flash_reader_close(r);
    }

    /* tokenizer files: written as the mlx folder writes them */
    copy_file(g_flash, path);
    CHECK(mc_test_flash_rewrite(path, add_tokenizer, NULL, 0) == 0);
    snprintf(dir, sizeof dir, "%s/tok", tmp);
    {
        mc_flash_reader *r = open_opts(path, MC_FLASH_IO_DIRECT, 0, 0, &err);
        CHECKF(r != NULL, "%s", err.msg);
        if (r) {
            CHECK_EQ_U64(mc_flash_reader_n_files(r), 5);
            CHECK_STR(mc_flash_reader_file_name(r, 0), "config.json");
            CHECK_STR(mc_flash_reader_file_name(r, 1), "tokenizer.json");
            CHECK_STR(mc_flash_reader_file_name(r, 2), "chat_template.jinja");
            CHECK_STR(mc_flash_reader_file_name(r, 3), "odd.json");
            CHECK(mc_flash_reader_file_name(r, 5) == NULL && mc_flash_reader_file_text(r, 5, NULL) == NULL);
            size_t len;
            const char *t = mc_flash_reader_file_text(r, 2, &len);
            CHECK_STR(t, "{% for m in messages %}{{ m.content }}\n{% endfor %}");
            CHECK_EQ_U64(len, strlen(t));
            CHECK_STR(mc_flash_reader_file_text(r, 3, NULL), "\"a string value\"\n");
            /* config.json: cJSON_Print of the manifest's config and a newline */
            cJSON *m = cJSON_Parse(mc_flash_reader_manifest_json(r, NULL));
            char *want = cJSON_Print(cJSON_GetObjectItem(m, "config"));
            size_t wl = strlen(want);
            t = mc_flash_reader_config_json(r);
            CHECK(strlen(t) == wl + 1 && !strncmp(t, want, wl) && t[wl] == '\n');
            CHECK(strstr(t, "\"quantization\"") != NULL);
            cJSON_free(want);
            cJSON_Delete(m);

            CHECK(mkdir(dir, 0755) == 0);
            snprintf(p2, sizeof p2, "%s/keep.txt", dir);
            CHECK(mc_test_write_file(p2, "mine", 4) == 0);
            snprintf(p2, sizeof p2, "%s/tokenizer.json", dir);
            CHECK(mc_test_write_file(p2, "old", 3) == 0);
            mc_error_clear(&err);
            CHECKF(mc_flash_reader_write_files(r, dir, &err) == 0, "%s", err.msg);
            for (size_t i = 0; i < mc_flash_reader_n_files(r); i++) {
                size_t n = 0, tl = 0;
                snprintf(p2, sizeof p2, "%s/%s", dir, mc_flash_reader_file_name(r, i));
                unsigned char *got = mc_test_read_file(p2, &n);
                const char *txt = mc_flash_reader_file_text(r, i, &tl);
                CHECKF(got && n == tl && memcmp(got, txt, n) == 0, "%s", p2);
                free(got);
            }
            size_t n = 0;
            snprintf(p2, sizeof p2, "%s/keep.txt", dir);
            unsigned char *keep = mc_test_read_file(p2, &n);
            CHECK(keep && n == 4 && !memcmp(keep, "mine", 4)); /* other files untouched */
            free(keep);
            char *ls = NULL;
            mc_test_run(&ls, "ls -A '%s' | wc -l", dir);
            CHECK(ls && atoi(ls) == 6); /* 5 files + keep.txt, no temporaries left */
            free(ls);
            /* a fresh folder is made; a file in the way or a missing parent is an error */
            snprintf(p2, sizeof p2, "%s/fresh", tmp);
            CHECK(mc_flash_reader_write_files(r, p2, NULL) == 0);
            snprintf(p2, sizeof p2, "%s/keep.txt", dir);
            mc_error_clear(&err);
            CHECK(mc_flash_reader_write_files(r, p2, &err) == MC_ERR_IO && strstr(err.msg, "not a folder"));
            snprintf(p2, sizeof p2, "%s/no/such/dir", tmp);
            mc_error_clear(&err);
            CHECK(mc_flash_reader_write_files(r, p2, &err) == MC_ERR_IO && strstr(err.msg, "cannot create"));
        }
        mc_flash_reader_close(r);
    }

    static const hostile cases[] = {
        { "path traversal in a tokenizer file name", h_traversal, "\"../evil.txt\" is not a plain file name" },
        { "slash in a tokenizer file name", h_slash, "\"a/b.json\" is not a plain file name" },
        { "hidden tokenizer file", h_hidden, "\".bashrc\" is not a plain file name" },
        { "tokenizer file config.json", h_config, "\"config.json\"" },
        { "empty tokenizer file name", h_empty, "is not a plain file name" },
        { "no config", h_noconfig, "\"config\" is not an object" },
        { "pinned tensor misaligned", h_pin_misaligned, "not 16 KiB-aligned or outside the pinned region" },
        { "pinned tensor outside the region", h_pin_outside, "outside the pinned region" },
        { "nbytes against dtype and shape", h_nbytes, "but dtype" },
        { "ffn tensor outside its span", h_ffn_outside, "outside the span of layer 0" },
        { "duplicate tensor name", h_dup_name, "is listed twice" },
        { "duplicate ffn span", h_dup_span, "two ffn spans for layer 0" },
        { "expert tensor past the block", h_expert_past, "past the block" },
        { "expert stride not a page multiple", h_expert_stride, "experts of layer 1" },
        { "expert shape against nbytes", h_expert_shape, "but dtype" },
        { "pinned region not a page multiple", h_pinned_region, "pinned region" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mc_flash_reader *r = NULL;
        copy_file(g_flash, path);
        CHECK(mc_test_flash_rewrite(path, cases[i].fn, NULL, 0) == 0);
        mc_error_clear(&err);
        int rc = mc_flash_reader_open(path, NULL, &r, &err);
        CHECKF(rc == MC_ERR_FORMAT && r == NULL, "%s: rc %d", cases[i].what, rc);
        CHECKF(strstr(err.msg, cases[i].expect) && strstr(err.msg, path), "%s: message \"%s\"", cases[i].what,
               err.msg);
        mc_flash_reader_close(r);
    }
    /* a file whose size is not a multiple of 16384 */
    {
        size_t n;
        unsigned char *b = mc_test_read_file(g_flash, &n);
        mc_flash_reader *r = NULL;
        CHECK(b && mc_test_write_file(path, b, n - 100) == 0);
        mc_error_clear(&err);
        CHECK(mc_flash_reader_open(path, NULL, &r, &err) == MC_ERR_FORMAT && r == NULL);
        free(b);
        snprintf(p2, sizeof p2, "%s/manifest.bad", tmp);
        copy_file(g_flash, p2);
        CHECK(mc_test_flip_byte(p2, 0) == 0); /* the magic */
        mc_error_clear(&err);
        CHECK(mc_flash_reader_open(p2, NULL, &r, &err) == MC_ERR_FORMAT && strstr(err.msg, "not a .flash file"));
    }
}

static void test_alloc(void)
{
    void *p = mc_flash_reader_alloc(1);
    CHECK(p && (uintptr_t)p % 16384 == 0);
    if (p) memset(p, 1, 16384); /* rounded up to a page */
    mc_flash_reader_free(p);
    mc_flash_reader_free(NULL);
    CHECK(mc_flash_reader_alloc(SIZE_MAX - 100) == NULL);
}

/* MCONV_WRITE_FUZZ_SEEDS=DIR: write the replay seeds of fuzz/fuzz_flash_reader.c
 * (testdata/fuzz/fuzz_flash_reader/) and exit. Small synthetic files (every
 * weight bf16: one page per tensor): valid ones, ones with manifest
 * extensions and tokenizer files, a flipped expert byte, hostile manifests. */
static int write_seeds(const char *dir)
{
    char p[1024], q[1200];
    mc_test_synth s = { 1, 1, 2, 2, 1, 1 };
    snprintf(p, sizeof p, "%s/valid-dense-moe.flash", dir);
    if (mc_test_flash_synth(p, &s)) return 1;
    snprintf(q, sizeof q, "%s/valid-extensions-tokenizer.flash", dir);
    copy_file(p, q);
    if (mc_test_flash_rewrite(q, add_unknown, NULL, 1) || mc_test_flash_rewrite(q, add_tokenizer, NULL, 0)) return 1;
    mc_flash_reader *r = NULL;
    if (mc_flash_reader_open(p, NULL, &r, NULL)) return 1;
    const mc_flash_reader_layer *L = mc_flash_reader_find_layer(r, 1, MC_FLASH_READER_EXPERT);
    uint64_t at = L->offset + L->nbytes + 100;
    mc_flash_reader_close(r);
    snprintf(q, sizeof q, "%s/flipped-expert-byte.flash", dir);
    copy_file(p, q);
    if (mc_test_flip_byte(q, at)) return 1;
    snprintf(q, sizeof q, "%s/hostile-tokenizer-name.flash", dir);
    copy_file(p, q);
    if (mc_test_flash_rewrite(q, h_traversal, NULL, 0)) return 1;
    snprintf(q, sizeof q, "%s/hostile-expert-past-block.flash", dir);
    copy_file(p, q);
    if (mc_test_flash_rewrite(q, h_expert_past, NULL, 0)) return 1;
    printf("seeds written to %s\n", dir);
    return mc_test_failures ? 1 : 0;
}

int main(void)
{
    static char path[1024];
    const char *seeds = getenv("MCONV_WRITE_FUZZ_SEEDS");
    if (seeds && *seeds) return write_seeds(seeds);
    snprintf(path, sizeof path, "%s/syn.flash", mc_test_tmpdir());
    mc_test_synth s = { 1, 1, 4, 2, 1, 0 };
    if (mc_test_flash_synth(path, &s) != 0) {
        CHECK(0);
        return mc_test_finish("test_flash_reader");
    }
    g_flash = path;
    test_version();
    test_tables();
    check_reads(MC_FLASH_IO_DIRECT, 0, 0);
    check_reads(MC_FLASH_IO_DIRECT, 1, 1);
    check_reads(MC_FLASH_IO_DIRECT, 8, 1);
    check_reads(MC_FLASH_IO_BUFFERED, 2, 0);
    check_reads(MC_FLASH_IO_DIRECT_ONLY, 4, 1);
    test_io_modes();
    test_checksums();
    test_concurrent();
    test_manifests();
    test_alloc();
    return mc_test_finish("test_flash_reader");
}
