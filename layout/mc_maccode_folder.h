/* mc_maccode_folder: a mac-code folder read back, as the engines read it.
 *
 * mc_maccode_verify checks a folder the way mc_flash_verify checks a .flash
 * file and lists every problem: config.json (a "streaming" object, the
 * pinned file name the engines hard-code), pinned.safetensors (a strict
 * safetensors reader), every layer file the engines open (layer_NN.bin /
 * layer_NN.safetensors for each of num_hidden_layers): headers (JSON shorter
 * than one page, zero padding after it), offsets (16 KiB alignment for
 * flash_aligned_v1, blocks of moe_flash_v1), sizes (total_size, nbytes =
 * shape x dtype, file size), tensor byte ranges inside the file, blocks and
 * block, no overlaps, every padding byte zero, expert names listed twice
 * agreeing, every layer laid out like layer 0 (MoEExpertReader reads layer
 * 0's layout), ffn/ safetensors holding the bytes of their ffn_aligned/
 * twins, and links (symbolic links resolving inside the folder).
 *
 * mc_maccode_scan reads headers only and says which engines of the table
 * (mc_maccode.h) can read the folder: the model type they build, the files
 * and names they read, the bits each module is stored at against what they
 * build, the config keys they read, the tokenizer where they load it from
 * the folder, and no bfloat16 in what direct_io.py reads.
 */
#ifndef MC_MACCODE_FOLDER_H
#define MC_MACCODE_FOLDER_H

#include <stdint.h>
#include <stddef.h>
#include "mc_error.h"
#include "mc_maccode.h"

/* Does path look like a mac-code folder (a config.json with a "streaming"
 * object)? */
int mc_maccode_is_folder(const char *path);

typedef struct mc_maccode_verify_stats {
    uint64_t n_problems;
    uint64_t n_files, n_tensors, n_blocks; /* layer files, tensors, expert blocks checked */
    uint64_t bytes_checked;
    uint64_t disk_bytes;   /* allocated (st_blocks * 512), each inode once */
    uint64_t apparent_bytes; /* file sizes, each inode once */
    uint64_t n_links;      /* symbolic links and extra hard links */
} mc_maccode_verify_stats;

/* 0 when sound; MC_ERR_CHECKSUM when problems were found (each reported
 * through problem, counted in stats); other codes (err set) when path is
 * not a mac-code folder or cannot be read. */
int mc_maccode_verify(const char *dir, mc_maccode_problem_fn problem, void *ctx, mc_maccode_verify_stats *stats,
                      mc_error *err);

typedef struct mc_maccode_scan_info {
    char model_type[64];
    int n_layers;          /* config num_hidden_layers */
    int ffn_bin, ffn_st;   /* layer files present: ffn_aligned/, ffn/ */
    int experts, names_mlp, names_sw; /* expert layer files, and the names they list */
    int bits, group_size;  /* config "quantization" (0: none) */
    int tokenizer;         /* tokenizer.json present */
    uint32_t readers;      /* engines that can read the folder */
    uint32_t family;       /* engines building its model type */
    char why[MC_MACCODE_MAX_ENGINES][256]; /* per family engine that cannot: the first reason */
} mc_maccode_scan_info;

int mc_maccode_scan(const char *dir, mc_maccode_scan_info *info, mc_error *err);

/* Allocated bytes under dir (st_blocks * 512, each inode once, links not
 * followed) and the sum of the sizes of those inodes. */
int mc_maccode_disk_use(const char *dir, uint64_t *disk, uint64_t *apparent, mc_error *err);

#endif
