/* mc_tok_int: what mc_tokenizer.c (tokenizer.json) and mc_tok_config.c
 * (tokenizer_config.json, generation_config.json, chat templates, config
 * ids) share. Internal to convert/. */
#ifndef MC_TOK_INT_H
#define MC_TOK_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "mc_gguf.h"
#include "mc_tok_pre.h"
#include "mc_tokenizer.h"

/* llama.cpp token types (llama_token_type). */
enum { MC_TT_NORMAL = 1, MC_TT_UNKNOWN = 2, MC_TT_CONTROL = 3, MC_TT_USER = 4, MC_TT_UNUSED = 5, MC_TT_BYTE = 6 };

/* Everything read from the GGUF keys, and what was decided from them. */
typedef struct mc_tok_src {
    const mc_gguf *g;
    const char *path;
    const char *model;           /* tokenizer.ggml.model */
    const char *pre;             /* tokenizer.ggml.pre or NULL */
    const mc_gguf_str *tokens;   /* NULL: no tokenizer */
    uint64_t n;
    const mc_gguf_kv *scores;    /* may be NULL */
    const mc_gguf_kv *types;     /* may be NULL */
    const mc_gguf_kv *merges;    /* may be NULL */
    int bpe, spm;                /* a tokenizer.json can be built, of this kind */
    const mc_tok_pre *entry;     /* bpe: the table entry (NULL: missing/unknown pre) */
    unsigned flags;              /* bpe: the entry's MC_TP_* flags (approximate ones for no entry) */
} mc_tok_src;

/* cJSON item or NULL; sets *oom when NULL. */
cJSON *mc_tok_chk(cJSON *item, int *oom);
/* Add item to obj under name (NULL: append to an array); *oom when NULL. */
void mc_tok_add(cJSON *obj, const char *name, cJSON *item, int *oom);
/* Token id of key (a u32 id) or -1. */
int64_t mc_tok_id(const mc_gguf *g, const char *key, uint64_t n);
int mc_tok_bool(const mc_gguf *g, const char *key, int dflt);
/* Valid UTF-8 without NUL. */
int mc_tok_utf8_ok(const char *s, uint64_t n);
/* add_bos_token as llama.cpp reads it (the key, else the model's default). */
int mc_tok_add_bos(const mc_tok_src *s);
/* Append a note (printf-style) to out. */
void mc_tok_note(mc_tok_out *out, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* tokenizer_config.json, generation_config.json and the default chat
 * template into out (mc_tok_config.c). */
int mc_tok_config_build(const mc_tok_src *s, mc_tok_out *out, mc_error *err);

#endif
