/* mc_flash: the .flash streaming layout (docs/FORMAT.md): header codec,
 * reader and verifier.
 *
 * A .flash file is page 0 (the header), a pinned region, streamed dense-FFN
 * spans and MoE expert regions, each tensor and block on a 16 KiB boundary,
 * and a JSON manifest at the end. mc_flash_open checks the header and the
 * manifest checksum and parses the tables; it never reads tensor data.
 * mc_flash_verify checks everything (alignment, overlap, zero padding, file
 * size, every checksum) and reports each problem through a callback.
 */
#ifndef MC_FLASH_H
#define MC_FLASH_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_io.h"

struct cJSON;

#define MC_FLASH_MAGIC "MCFLASH\0"
#define MC_FLASH_VERSION 1u
#define MC_FLASH_PAGE 16384u
#define MC_FLASH_HEADER_BYTES 48u
#define MC_FLASH_MAX_DIMS 4
/* Largest manifest a reader accepts (a hostile length is refused). */
#define MC_FLASH_MANIFEST_MAX ((uint64_t)1 << 30)

typedef struct mc_flash_header {
    uint32_t version;
    uint32_t page_size;
    uint64_t manifest_offset;
    uint64_t manifest_length;
    uint64_t file_size;
    uint64_t manifest_xxh3;
} mc_flash_header;

/* Encode h into out (MC_FLASH_HEADER_BYTES, little-endian, magic first). */
void mc_flash_header_encode(const mc_flash_header *h, unsigned char *out);
/* Decode; MC_ERR_FORMAT "not a .flash file" when n is short or the magic is
 * wrong. Does not judge the field values. */
int mc_flash_header_decode(const unsigned char *buf, size_t n, mc_flash_header *h, mc_error *err);

static inline uint64_t mc_flash_align(uint64_t x)
{
    return (x + (MC_FLASH_PAGE - 1)) & ~(uint64_t)(MC_FLASH_PAGE - 1);
}

/* "0123456789abcdef" form of an XXH3-64 (buf >= 17 bytes). */
void mc_flash_hex64(uint64_t v, char *buf);
int mc_flash_parse_hex64(const char *s, uint64_t *out);
/* o[key] as an exact non-negative integer below 2^53 (manifest numbers):
 * 0, or -1 when absent or anything else. */
int mc_flash_json_u64(const struct cJSON *o, const char *key, uint64_t *out);

typedef enum mc_flash_role { MC_FLASH_PINNED = 0, MC_FLASH_FFN = 1 } mc_flash_role;

typedef struct mc_flash_tensor {
    const char *name;   /* points into the parsed manifest */
    int dtype;          /* mc_type */
    uint32_t n_dims;
    uint64_t shape[MC_FLASH_MAX_DIMS];
    uint64_t offset, nbytes;
    int role;           /* mc_flash_role */
    int layer;          /* ffn: decoder layer; pinned: -1 */
    uint64_t xxh3;
} mc_flash_tensor;

typedef struct mc_flash_ffn {
    int layer;
    uint64_t offset, nbytes; /* one span, page-aligned start and length */
} mc_flash_ffn;

typedef struct mc_flash_etensor {
    const char *name;   /* e.g. "mlp.switch_mlp.gate_proj.weight" */
    uint64_t inner_offset, nbytes;
    int dtype;
    uint32_t n_dims;
    uint64_t shape[MC_FLASH_MAX_DIMS]; /* per expert */
} mc_flash_etensor;

typedef struct mc_flash_experts {
    int layer;
    uint64_t offset;
    uint32_t n_experts;
    uint64_t stride;
    size_t n_tensors;
    mc_flash_etensor *tensors;
    uint64_t *xxh3;     /* n_experts checksums, one per block (stride bytes) */
} mc_flash_experts;

typedef struct mc_flash {
    mc_file file;
    mc_flash_header hdr;
    char *manifest_text;         /* manifest_length bytes + NUL */
    struct cJSON *manifest;
    uint64_t pinned_offset, pinned_nbytes;
    int experts_per_tok;         /* 0 for dense models */
    size_t n_tensors;
    mc_flash_tensor *tensors;    /* "tensors" table, in file order */
    size_t n_ffn;
    mc_flash_ffn *ffn;
    size_t n_experts;
    mc_flash_experts *experts;   /* one per MoE layer */
} mc_flash;

/* Is buf (at least 8 bytes) the start of a .flash file? */
int mc_flash_sniff(const unsigned char *buf, size_t n);

/* Open and parse. Errors: MC_ERR_FORMAT for a file that is not .flash or
 * whose header/manifest is unusable; MC_ERR_CHECKSUM for a manifest whose
 * XXH3 does not match the header. */
int mc_flash_open(const char *path, mc_flash **out, mc_error *err);
void mc_flash_close(mc_flash *f);

const struct cJSON *mc_flash_manifest(const mc_flash *f);
const mc_flash_tensor *mc_flash_find(const mc_flash *f, const char *name);
const mc_flash_experts *mc_flash_find_experts(const mc_flash *f, int layer);
const mc_flash_ffn *mc_flash_find_ffn(const mc_flash *f, int layer);

/* Read a whole tensor (t->nbytes) / ffn span / expert block (stride bytes). */
int mc_flash_read_tensor(const mc_flash *f, const mc_flash_tensor *t, void *dst, mc_error *err);
int mc_flash_read_ffn(const mc_flash *f, const mc_flash_ffn *s, void *dst, mc_error *err);
int mc_flash_read_expert(const mc_flash *f, const mc_flash_experts *x, uint32_t expert, void *dst,
                         mc_error *err);

/* What an engine pays: pinned once at load, then per generated token every
 * dense FFN span and experts_per_tok blocks of every MoE layer. */
typedef struct mc_flash_cost {
    uint64_t pinned_bytes;
    uint64_t streamed_bytes;       /* all ffn spans + all expert regions */
    uint64_t token_dense_bytes;    /* sum of ffn spans */
    uint64_t token_dense_reads;    /* number of ffn spans */
    uint64_t token_expert_bytes;   /* sum over MoE layers of k * stride */
    uint64_t token_expert_reads;   /* k * number of MoE layers */
    uint64_t token_bytes, token_reads;
    int experts_per_tok;
} mc_flash_cost;
void mc_flash_token_cost(const mc_flash *f, mc_flash_cost *c);

/* ---- verification ---- */

typedef void (*mc_flash_problem_fn)(void *ctx, const char *msg);

typedef struct mc_flash_verify_stats {
    uint64_t n_problems;
    uint64_t n_tensors, n_blocks, n_checksums;
    uint64_t bytes_checked;
} mc_flash_verify_stats;

/* Check path. Returns 0 when sound; MC_ERR_CHECKSUM when problems were found
 * (each reported through problem(ctx, msg) and counted in stats); other codes
 * (err set) when path cannot be read or is not a .flash file at all. */
int mc_flash_verify(const char *path, mc_flash_problem_fn problem, void *ctx,
                    mc_flash_verify_stats *stats, mc_error *err);

#endif
