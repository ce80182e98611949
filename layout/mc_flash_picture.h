/* mc_flash_picture: a .flash file drawn as a picture (mconv inspect --png).
 *
 * Geometry and colours are fixed (docs/FORMAT.md "The picture"), so the
 * same file gives the same pixels, and tests can find known colours:
 *
 *   width MC_PIC_W = 1024, margin M = 8, map width MW = 1008.
 *   File map: MC_PIC_MAP_ROWS = 8 rows; row r starts at y = 8 + 24 r: a
 *   12-pixel region band, then a 4-pixel token band (y + 12 .. y + 15).
 *   Column index i = r * MW + (x - 8) covers bytes [i*B, (i+1)*B) with
 *   B = max(1, ceil(file_size / (MW * 8))); it takes the colour of byte i*B:
 *     region band: pinned region PINNED; the FFN span of layer L FFN[L % 2];
 *       expert block e of a MoE layer EXPERT[e % 2]; the header (before the
 *       pinned region) and the manifest (from the end of the data) META;
 *       anything else BG; past the end of the file BG.
 *     token band (what one token reads): every FFN span and, in each MoE
 *       layer L with n experts and k per token, the blocks
 *       e_j = (L + j * (n / k)) % n for j < k: TOKEN; the pinned region
 *       (read once at load) LOAD; the rest TOKEN_OFF; past the end BG.
 *   Heat map of the quantization error (manifest "qerr"), from
 *   y = 8 + 8*24 + 8 = 208: one row per layer, the global tensors (no layer)
 *   first, then layers 0 .. max (the largest layer of a record, FFN span
 *   or expert table); row height RH = 400 / rows (integer) clamped to
 *   3 .. 16, cells RH - 1 high; columns attention, dense_ffn,
 *   experts, embeddings, other at x = 8 + k * 66, 64 wide. A cell pools its
 *   records in manifest order (double sums of sum_sq_err and sum_sq_ref):
 *   no records EMPTY; every record exact WHITE; otherwise the palette at
 *   u = floor(255 * clamp((log10(sqrt(err / ref)) + 4) / 4, 0, 1) + 0.5)
 *   (relative RMS 1e-4 .. 1; ref 0: u = 255).
 *   Legend below (y = heat end + 8): the palette, u = 0..255 one column
 *   each, 8 high; then (y + 16) the swatches PINNED, FFN[0], FFN[1],
 *   EXPERT[0], EXPERT[1], META, TOKEN, LOAD, WHITE, EMPTY, 16 x 8 each,
 *   every 20 pixels. Height = that y + 8 + 8.
 *   palette(u): u <= 127: (49,54,149) -> (255,255,191) linearly with
 *   c = a + (b - a) * u / 127 (integer division); u > 127: (255,255,191) ->
 *   (165,0,38) with c = a + (b - a) * (u - 128) / 127, C division
 *   truncating toward zero.
 */
#ifndef MC_FLASH_PICTURE_H
#define MC_FLASH_PICTURE_H

#include "mc_error.h"
#include "mc_flash.h"
#include "mc_png.h"

#define MC_PIC_W 1024
#define MC_PIC_MAP_ROWS 8

/* Colours (RGB) */
#define MC_PIC_BG        { 24, 24, 32 }
#define MC_PIC_META      { 128, 128, 128 }
#define MC_PIC_PINNED    { 66, 133, 244 }
#define MC_PIC_FFN0      { 52, 168, 83 }
#define MC_PIC_FFN1      { 30, 110, 55 }
#define MC_PIC_EXPERT0   { 251, 188, 5 }
#define MC_PIC_EXPERT1   { 190, 130, 0 }
#define MC_PIC_TOKEN     { 234, 67, 53 }
#define MC_PIC_LOAD      { 40, 70, 140 }
#define MC_PIC_TOKEN_OFF { 56, 56, 68 }
#define MC_PIC_WHITE     { 255, 255, 255 }
#define MC_PIC_EMPTY     { 44, 44, 52 }

/* Draw f into im (allocated here; mc_image_free it). */
int mc_flash_picture(const mc_flash *f, mc_image *im, mc_error *err);

#endif
