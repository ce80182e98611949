/* mc_tok_pre: llama.cpp's tokenizer.ggml.pre names -> the Hugging Face
 * normalizer and pre-tokenizer of the tokenizer.json each name stands for
 * (docs/FORMAT.md, section "Tokenizer", lists them and their provenance). */
#ifndef MC_TOK_PRE_H
#define MC_TOK_PRE_H

#include <stdint.h>

struct cJSON;

/* Pre-tokenizer steps (a Sequence of them in tokenizer.json). */
enum mc_tok_step_kind {
    MC_TS_END = 0,
    MC_TS_SPLIT,        /* Split, Regex pattern, behavior Isolated */
    MC_TS_SPLIT_NEXT,   /* Split, Regex pattern, behavior MergedWithNext */
    MC_TS_DIGITS1,      /* Digits, individual_digits true */
    MC_TS_DIGITS,       /* Digits, individual_digits false */
    MC_TS_PUNCT,        /* Punctuation, behavior Contiguous */
    MC_TS_PUNCT1,       /* Punctuation, behavior Isolated */
    MC_TS_BYTELEVEL_RE, /* ByteLevel with GPT-2's own regex (use_regex true) */
    MC_TS_BYTELEVEL,    /* ByteLevel, use_regex false */
};

#define MC_TOK_PRE_STEPS 8

/* Flags of an entry. */
enum {
    MC_TP_NFC = 1u << 0,           /* normalizer NFC */
    MC_TP_IGNORE_MERGES = 1u << 1, /* BPE model "ignore_merges": true */
    MC_TP_CLEAN = 1u << 2,         /* clean_up_tokenization_spaces true (llama.cpp's clean_spaces) */
    MC_TP_ADD_BOS = 1u << 3,       /* add_bos_token when the GGUF does not say (llama.cpp's default) */
    MC_TP_APPROX = 1u << 4,        /* the original is not known: llama.cpp's own split rules, approximate */
    MC_TP_REFUSE = 1u << 5,        /* cannot be written as a byte-level tokenizer.json: kept as GGUF keys */
};

typedef struct mc_tok_step {
    int kind;
    const char *regex; /* MC_TS_SPLIT*: the Oniguruma pattern */
} mc_tok_step;

typedef struct mc_tok_pre {
    const char *names;  /* '|'-separated tokenizer.ggml.pre values */
    unsigned flags;
    const char *source; /* the model(s) whose tokenizer.json it is (for docs and notes) */
    mc_tok_step steps[MC_TOK_PRE_STEPS];
} mc_tok_pre;

/* The entry for a tokenizer.ggml.pre value, or NULL when mconv does not know
 * it. */
const mc_tok_pre *mc_tok_pre_find(const char *pre);

/* The pre name of a vocabulary mconv recognises by its tokens (for GGUFs
 * without tokenizer.ggml.pre), *what naming it; NULL when none. */
struct mc_gguf_str;
const char *mc_tok_pre_guess(const struct mc_gguf_str *tokens, uint64_t n, const char **what);

/* Every entry (*n set): for tests and docs. */
const mc_tok_pre *mc_tok_pre_table(unsigned *n);

/* The pre_tokenizer JSON of an entry (a Sequence, or its single step);
 * NULL when out of memory. */
struct cJSON *mc_tok_pre_json(const mc_tok_pre *p);

#endif
