/* mc_tokenizer: a GGUF's tokenizer.ggml.* keys as Hugging Face tokenizer
 * files (tokenizer.json + tokenizer_config.json), built with cJSON.
 *
 * Mapping (docs/FORMAT.md, section "Tokenizer"):
 * - "gpt2" (byte-level BPE): BPE model over tokens + merges, ByteLevel
 *   pre-tokenizer (a Split regex first for the pre-tokenizers llama.cpp names
 *   llama3/llama-bpe and qwen2), ByteLevel decoder.
 * - "llama" (SentencePiece): BPE model with byte_fallback as transformers'
 *   GGUF import and LlamaConverter build it: merges derived from the scores
 *   (every split of a token into two vocabulary pieces, ranked by the merged
 *   token's score), Prepend/Replace "▁" normalizer, the decoder mlx-lm
 *   recognises as SentencePiece.
 * - anything else: no tokenizer.json ("kept as GGUF keys").
 * Control tokens (token_type 3) and user-defined ones (4) become added
 * tokens; bos/eos/unk/pad, add_bos/add_eos and the chat template go to
 * tokenizer_config.json.
 */
#ifndef MC_TOKENIZER_H
#define MC_TOKENIZER_H

#include "mc_error.h"

struct cJSON;
struct mc_gguf;

/* Kinds reported through *kind (static strings). */
#define MC_TOK_KIND_BPE "bpe (gpt2 byte-level)"
#define MC_TOK_KIND_SPM "sentencepiece (llama, as BPE with byte fallback)"
#define MC_TOK_KIND_KEPT "kept as GGUF keys"
#define MC_TOK_KIND_NONE "none"

/* Build tokenizer.json (*tokenizer_json) and tokenizer_config.json
 * (*tokenizer_config) from g's tokenizer keys. Returns 0 on success; then
 *   - both set, *kind MC_TOK_KIND_BPE or MC_TOK_KIND_SPM;
 *   - *tokenizer_json NULL and *kind MC_TOK_KIND_KEPT when the tokenizer
 *     model is another kind or its strings cannot be carried (invalid UTF-8);
 *     *tokenizer_config is still built when the file has tokens;
 *   - both NULL and *kind MC_TOK_KIND_NONE when the file has no tokenizer.
 * *note (may be NULL) receives a static or NULL one-line remark (why a
 * tokenizer was kept as GGUF keys, or an approximation made).
 * Fails (MC_ERR_FORMAT) when the keys are inconsistent (array lengths differ,
 * a token id out of range). Caller frees the results with cJSON_Delete. */
int mc_tokenizer_from_gguf(const struct mc_gguf *g, struct cJSON **tokenizer_json,
                           struct cJSON **tokenizer_config, const char **kind, const char **note,
                           mc_error *err);

/* The kind mc_tokenizer_from_gguf would produce (and its note), without
 * building anything: cheap enough for `mconv inspect`. Same errors. */
int mc_tokenizer_kind(const struct mc_gguf *g, const char **kind, const char **note, mc_error *err);

/* Write tokenizer.json and tokenizer_config.json (either may be NULL, then
 * skipped) into dir, atomically (mc_outfile); force allows overwriting. */
int mc_tokenizer_write(const char *dir, const struct cJSON *tokenizer_json,
                       const struct cJSON *tokenizer_config, int force, mc_error *err);

#endif
