/* mconv/flash.h: read .flash files from an inference engine (public API).
 *
 * A .flash file (docs/FORMAT.md) holds a model laid out for out-of-core
 * inference: the *pinned* weights (embeddings, attention, norms, routers,
 * shared experts, lm_head) in one contiguous region an engine loads once,
 * each dense layer's FFN as one span and each MoE expert as one block, all
 * 16 KiB-aligned, fetched per token with one read each. This reader opens a
 * file (header, manifest checksum, every table checked), hands out the
 * mlx-lm config and tokenizer files, the tensor table, and reads into the
 * caller's buffers:
 *
 *   mc_flash_reader_read_pinned   the whole pinned region, one read
 *   mc_flash_reader_read_ffn      one dense layer's FFN span, one read
 *   mc_flash_reader_read_experts  k experts of a MoE layer at once: one read
 *                                 per expert block, in parallel on a small
 *                                 thread pool that lives as long as the reader
 *
 * I/O. Reads bypass the page cache by default (MC_FLASH_IO_DIRECT): O_DIRECT
 * on Linux, F_NOCACHE (and no read-ahead) on macOS. Where the file system
 * refuses direct I/O (EINVAL when opening or reading, e.g. tmpfs before
 * Linux 6.6, some network and FUSE file systems) the reader falls back to
 * ordinary buffered reads and says so: mc_flash_reader_io_mode and
 * mc_flash_reader_io_note. MC_FLASH_IO_DIRECT_ONLY refuses instead.
 *
 * Buffers. Every destination buffer must start on an MC_FLASH_READER_ALIGN
 * (4096) byte boundary, whatever the I/O mode (so a program that works with
 * buffered reads works with O_DIRECT too), and hold the number of bytes the
 * call documents; every length the reader reads is a multiple of 16384 and
 * every offset is 16 KiB-aligned. mc_flash_reader_alloc returns such
 * buffers (16 KiB-aligned, length rounded up to 16 KiB). A misaligned buffer
 * is refused with MC_ERR_ARG before any read.
 *
 * Checksums. With verify set (mc_flash_reader_opts.verify) every read is
 * checked against the manifest's XXH3-64 checksums: each expert block as a
 * whole, each pinned and FFN tensor on its own. A mismatch is MC_ERR_CHECKSUM
 * naming the file, layer, expert or tensor, the offsets and both checksums.
 *
 * Errors. Every fallible call returns 0 or an mc_code and fills *err (may be
 * NULL; see mconv/error.h) with a one-line message naming the file and the
 * numbers involved. The library never prints and never exits.
 *
 * Threads. One reader may be used from several threads at once for reads
 * and lookups (each read with its own buffer); open, close and
 * mc_flash_reader_write_files are not concurrent with anything else on that
 * reader.
 *
 * Compatibility. The API follows MC_FLASH_READER_VERSION (semantic
 * versioning): within one major version functions and struct fields are only
 * added (fields at the end), never changed or removed. The reader accepts
 * manifests with keys and regions it does not know (the format promises
 * extensions) and ignores them.
 *
 * Link: pkg-config --static --libs mconv, or find_package(mconv) and
 * target_link_libraries(app PRIVATE mconv::mconv). docs/READER.md.
 */
#ifndef MCONV_FLASH_H
#define MCONV_FLASH_H

#include <stddef.h>
#include <stdint.h>

#include "mconv/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MC_FLASH_READER_VERSION_MAJOR 1
#define MC_FLASH_READER_VERSION_MINOR 0
#define MC_FLASH_READER_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH: compare with mc_flash_reader_version(). */
#define MC_FLASH_READER_VERSION                                                                            \
    (MC_FLASH_READER_VERSION_MAJOR * 10000 + MC_FLASH_READER_VERSION_MINOR * 100 + MC_FLASH_READER_VERSION_PATCH)

/* The version of the library linked in (MC_FLASH_READER_VERSION when the
 * header and the library match) and its "1.0.0" spelling. */
int mc_flash_reader_version(void);
const char *mc_flash_reader_version_string(void);

/* The .flash page: every offset and read length is a multiple of it. */
#define MC_FLASH_READER_PAGE 16384u
/* Required alignment of every destination buffer's start address. */
#define MC_FLASH_READER_ALIGN 4096u
/* Most dimensions of a tensor in the table (an expert tensor's stacked shape
 * has one more than its per-expert shape). */
#define MC_FLASH_READER_MAX_DIMS 5

typedef struct mc_flash_reader mc_flash_reader;

/* ---- opening ---- */

typedef enum mc_flash_io {
    MC_FLASH_IO_DIRECT = 0,      /* bypass the page cache; buffered where refused (default) */
    MC_FLASH_IO_BUFFERED = 1,    /* ordinary reads through the page cache */
    MC_FLASH_IO_DIRECT_ONLY = 2  /* bypass the page cache or fail (MC_ERR_UNSUPPORTED) */
} mc_flash_io;

typedef struct mc_flash_reader_opts {
    int io;      /* mc_flash_io */
    int verify;  /* non-zero: check every read against the manifest's checksums */
    int threads; /* parallel reads in mc_flash_reader_read_experts (1..256);
                    0: the file's experts_per_tok, at least 1, at most 64 */
} mc_flash_reader_opts;

/* Defaults: MC_FLASH_IO_DIRECT, no verify, threads 0. */
void mc_flash_reader_opts_init(mc_flash_reader_opts *o);

/* Open path (opts may be NULL for the defaults). Reads the header and the
 * manifest, checks the manifest checksum and every table: each tensor, span
 * and block 16 KiB-aligned and inside the file, pinned tensors inside the
 * pinned region, FFN tensors inside their layer's span, expert tensors inside
 * one block, byte counts matching dtype and shape, no duplicate names or
 * layers, tokenizer file names plain. Reads no tensor data.
 * Errors: MC_ERR_IO (cannot open), MC_ERR_FORMAT (not a .flash file or an
 * inconsistent one), MC_ERR_CHECKSUM (manifest checksum), MC_ERR_UNSUPPORTED
 * (MC_FLASH_IO_DIRECT_ONLY where direct I/O is refused), MC_ERR_NOMEM. */
int mc_flash_reader_open(const char *path, const mc_flash_reader_opts *opts, mc_flash_reader **out,
                         mc_error *err);
void mc_flash_reader_close(mc_flash_reader *r);

/* MC_FLASH_IO_DIRECT while reads bypass the page cache, MC_FLASH_IO_BUFFERED
 * when they do not (asked for, or fallen back to). */
int mc_flash_reader_io_mode(const mc_flash_reader *r);
/* How reads are done, one line: "O_DIRECT", "F_NOCACHE", "buffered (asked
 * for)", "buffered: O_DIRECT refused by the file system at open (Invalid
 * argument)", ... Valid until close; may change once (direct -> buffered)
 * when a direct read is refused. */
const char *mc_flash_reader_io_note(const mc_flash_reader *r);

/* ---- the file at a glance ---- */

typedef struct mc_flash_reader_info {
    const char *path;
    uint64_t file_size;
    uint64_t pinned_offset, pinned_nbytes; /* the pinned region (nbytes: multiple of 16384) */
    int experts_per_tok;                   /* k of the MoE router; 0 for dense models */
    size_t n_tensors;                      /* entries of the tensor table */
    size_t n_layers;                       /* entries of the layer table (dense + MoE) */
    size_t n_ffn_layers, n_moe_layers;
    uint64_t max_ffn_nbytes;               /* largest FFN span: a buffer for read_ffn */
    uint64_t max_expert_stride;            /* largest expert block */
    uint64_t token_bytes, token_reads;     /* streamed per generated token: every FFN span and
                                              experts_per_tok blocks of every MoE layer */
    const char *model_type;                /* config.model_type ("" when absent) */
} mc_flash_reader_info;

const mc_flash_reader_info *mc_flash_reader_get_info(const mc_flash_reader *r);

/* ---- tensors ---- */

typedef enum mc_flash_reader_kind {
    MC_FLASH_READER_PINNED = 0, /* in the pinned region */
    MC_FLASH_READER_FFN = 1,    /* in a dense layer's FFN span */
    MC_FLASH_READER_EXPERT = 2  /* one slice per expert block of a MoE layer */
} mc_flash_reader_kind;

typedef struct mc_flash_reader_tensor {
    const char *name;   /* mlx-lm name; expert tensors: the stacked name
                           ("model.layers.3.mlp.switch_mlp.gate_proj.weight") */
    const char *dtype;  /* safetensors spelling: "U32" (packed codes), "F16", "BF16", "F32" */
    int kind;           /* mc_flash_reader_kind */
    int layer;          /* decoder layer of FFN and expert tensors; -1 for pinned ones */
    uint32_t n_dims;
    uint64_t shape[MC_FLASH_READER_MAX_DIMS]; /* experts: [n_experts, ...per-expert shape] */
    uint64_t nbytes;    /* exact bytes (experts: of one expert's slice) */
    uint64_t offset;    /* absolute file offset (experts: of expert 0's slice) */
    uint64_t buffer_offset; /* where it starts in the buffer its read fills: from the pinned
                               region's start, the FFN span's start, the expert block's start */
    int has_xxh3;       /* pinned and FFN tensors carry their own checksum */
    uint64_t xxh3;      /* XXH3-64 of the nbytes bytes (when has_xxh3) */
} mc_flash_reader_tensor;

/* The table: pinned tensors in file order, then each dense layer's FFN
 * tensors, then each MoE layer's expert tensors (layer order). */
const mc_flash_reader_tensor *mc_flash_reader_tensor_at(const mc_flash_reader *r, size_t i);
/* By exact name; NULL when absent. */
const mc_flash_reader_tensor *mc_flash_reader_find(const mc_flash_reader *r, const char *name);

/* ---- streamed layers ---- */

typedef struct mc_flash_reader_layer {
    int layer;          /* decoder layer */
    int kind;           /* MC_FLASH_READER_FFN (a dense span) or MC_FLASH_READER_EXPERT */
    uint64_t offset;    /* the span's / expert 0's block start (16 KiB-aligned) */
    uint64_t nbytes;    /* the span's bytes / bytes per expert block (multiples of 16384) */
    uint32_t n_experts; /* MoE: experts in the layer; 0 for a dense span */
    size_t first_tensor, n_tensors; /* its tensors: table entries [first, first + n) */
    const uint64_t *block_xxh3;     /* MoE: n_experts checksums, one per block; NULL for spans */
} mc_flash_reader_layer;

/* In file order (ascending offsets). */
const mc_flash_reader_layer *mc_flash_reader_layer_at(const mc_flash_reader *r, size_t i);
/* The FFN span or the MoE block table of a decoder layer; NULL when absent. */
const mc_flash_reader_layer *mc_flash_reader_find_layer(const mc_flash_reader *r, int layer, int kind);

/* ---- reads (dst: MC_FLASH_READER_ALIGN-aligned) ---- */

/* The pinned region: info.pinned_nbytes bytes into dst, one read. Pinned
 * tensor t is at dst + t->buffer_offset. */
int mc_flash_reader_read_pinned(mc_flash_reader *r, void *dst, mc_error *err);

/* A dense layer's FFN span: its nbytes into dst, one read. Its tensor t is at
 * dst + t->buffer_offset. MC_ERR_NOTFOUND when the layer has no span. */
int mc_flash_reader_read_ffn(mc_flash_reader *r, int layer, void *dst, mc_error *err);

/* k expert blocks of a MoE layer: block ids[i] into dst + i * stride (stride =
 * the layer's nbytes; dst holds k * stride bytes), one read per block, up to
 * `threads` at once. Expert tensor t of block i is at
 * dst + i * stride + t->buffer_offset, so the k slices of one tensor are
 * what mlx-lm's stacked switch_mlp tensor holds at those indices. An id may
 * repeat. MC_ERR_NOTFOUND when the layer has no experts, MC_ERR_ARG for an
 * id >= n_experts (nothing is read then). On an error the contents of dst
 * are unspecified. */
int mc_flash_reader_read_experts(mc_flash_reader *r, int layer, const uint32_t *ids, size_t k, void *dst,
                                 mc_error *err);

/* Bytes mc_flash_reader_read_tensor writes: nbytes rounded up to 16384. */
uint64_t mc_flash_reader_tensor_read_size(const mc_flash_reader_tensor *t);
/* One tensor on its own (expert tensors: the slice of expert `expert`; the
 * argument is ignored otherwise): mc_flash_reader_tensor_read_size(t) bytes
 * into dst (the tensor, then its zero padding), one read. With verify, pinned
 * and FFN tensors are checked; an expert slice has no checksum of its own
 * (the manifest has one per block) and is not. */
int mc_flash_reader_read_tensor(mc_flash_reader *r, const mc_flash_reader_tensor *t, uint32_t expert, void *dst,
                                mc_error *err);

/* ---- buffers ---- */

/* n bytes rounded up to 16384, 16 KiB-aligned (suits every read above);
 * NULL when out of memory. Free with mc_flash_reader_free. */
void *mc_flash_reader_alloc(size_t n);
void mc_flash_reader_free(void *p);

/* ---- config and tokenizer ---- */

/* The folder files the manifest carries: "config.json" first (the mlx-lm
 * config with "quantization", formatted as `mconv --layout mlx` writes it),
 * then the tokenizer files embedded at conversion (tokenizer.json,
 * tokenizer_config.json, chat_template.jinja, ...). Texts stay valid until
 * close. */
size_t mc_flash_reader_n_files(const mc_flash_reader *r);
const char *mc_flash_reader_file_name(const mc_flash_reader *r, size_t i);
const char *mc_flash_reader_file_text(const mc_flash_reader *r, size_t i, size_t *len);
/* config.json's text. */
const char *mc_flash_reader_config_json(const mc_flash_reader *r);
/* The whole manifest (JSON text as stored, NUL-terminated). */
const char *mc_flash_reader_manifest_json(const mc_flash_reader *r, size_t *len);

/* Write every file above into dir (created when missing; its parent must
 * exist), each written beside its final name and renamed into place, so
 * mlx-lm / transformers can load the tokenizer and config from dir. Files of
 * the same names are replaced; nothing else in dir is touched. */
int mc_flash_reader_write_files(const mc_flash_reader *r, const char *dir, mc_error *err);

#ifdef __cplusplus
}
#endif

#endif
