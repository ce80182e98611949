/* mc_tokenizer: a GGUF's tokenizer.ggml.* keys as Hugging Face tokenizer
 * files (tokenizer.json, tokenizer_config.json, chat_template.jinja,
 * generation_config.json), built with cJSON.
 *
 * Mapping (docs/FORMAT.md, section "Tokenizer"):
 * - "gpt2" (byte-level BPE): BPE model over tokens + merges (merges naming a
 *   string that is not a token are dropped, with a note); the normalizer and
 *   pre-tokenizer of the original tokenizer.json, looked up by
 *   tokenizer.ggml.pre in convert/mc_tok_pre.c; ByteLevel decoder. A missing
 *   or unknown pre (or one whose original is not known) gives GPT-2's split
 *   or llama.cpp's rules, a note naming the value, and "approximate".
 * - "llama" (SentencePiece): BPE model with byte_fallback as transformers'
 *   GGUF import and LlamaConverter build it: merges derived from the scores
 *   (every split of a token into two vocabulary pieces, ranked by the merged
 *   token's score), Prepend/Replace "▁" normalizer, the decoder mlx-lm
 *   recognises as SentencePiece.
 * - anything else (bert WordPiece, t5 Unigram, rwkv, ...): no tokenizer.json
 *   ("kept as GGUF keys"), with a note saying which model it is.
 * Control tokens (token_type 3) become special added tokens, user-defined
 * ones (4) non-special added tokens; add_bos/add_eos a TemplateProcessing
 * post-processor; bos/eos/unk/pad, the chat templates (and named ones) go to
 * tokenizer_config.json; every end-of-generation id (eos, eot, eom) to
 * generation_config.json and config.json's eos_token_id.
 */
#ifndef MC_TOKENIZER_H
#define MC_TOKENIZER_H

#include <stddef.h>

#include "mc_error.h"

struct cJSON;
struct mc_gguf;

/* Kinds reported through kind (static strings). */
#define MC_TOK_KIND_BPE "bpe (gpt2 byte-level)"
#define MC_TOK_KIND_SPM "sentencepiece (llama, as BPE with byte fallback)"
#define MC_TOK_KIND_KEPT "kept as GGUF keys"
#define MC_TOK_KIND_NONE "none"

#define MC_TOK_MAX_NOTES 6
#define MC_TOK_NOTE_MAX 400

/* What mc_tokenizer_build makes. Every pointer may be NULL. */
typedef struct mc_tok_out {
    struct cJSON *tokenizer_json;    /* NULL when kept as GGUF keys */
    struct cJSON *tokenizer_config;  /* NULL without tokens */
    struct cJSON *generation_config; /* bos/eos/pad ids; NULL without an eos id */
    char *chat_template;             /* the default chat template (chat_template.jinja) */
    const char *kind;                /* MC_TOK_KIND_* */
    int approximate;                 /* the split rules are not the original's */
    int n_notes;
    char notes[MC_TOK_MAX_NOTES][MC_TOK_NOTE_MAX]; /* one-line remarks, without the file name */
} mc_tok_out;

/* Build everything from g's tokenizer keys into *out (zeroed first). Fails
 * (MC_ERR_FORMAT) when the keys are inconsistent (array lengths differ, a
 * token id out of range, a merge without a space); MC_ERR_NOMEM. Free with
 * mc_tokenizer_out_free (also after a failure). */
int mc_tokenizer_build(const struct mc_gguf *g, mc_tok_out *out, mc_error *err);
void mc_tokenizer_out_free(mc_tok_out *out);

/* The kind, approximate flag and notes mc_tokenizer_build would give,
 * without building the JSON (cheap enough for `mconv inspect`). */
int mc_tokenizer_scan(const struct mc_gguf *g, mc_tok_out *out, mc_error *err);

/* The kind, the notes joined by "; " into note (note_cap bytes; "" when
 * none) and *approximate (may be NULL). Same errors as mc_tokenizer_scan. */
int mc_tokenizer_kind(const struct mc_gguf *g, const char **kind, char *note, size_t note_cap, int *approximate,
                      mc_error *err);

/* config.json as mlx-lm reads it: bos_token_id and eos_token_id (every
 * end-of-generation id: eos, eot, eom; a list when there are several). No-op
 * without a tokenizer; MC_ERR_NOMEM. */
int mc_tokenizer_config_ids(const struct mc_gguf *g, struct cJSON *config, mc_error *err);

/* Write the files of out present (tokenizer.json, tokenizer_config.json,
 * chat_template.jinja, generation_config.json) into dir, atomically
 * (mc_outfile); force allows overwriting. */
int mc_tokenizer_write(const char *dir, const mc_tok_out *out, int force, mc_error *err);

#endif
