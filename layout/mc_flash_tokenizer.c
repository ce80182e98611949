/* The manifest's "tokenizer": what the source had, embedded so a .flash file
 * is self-contained. GGUF: tokenizer.json, tokenizer_config.json,
 * generation_config.json and chat_template.jinja rebuilt from
 * tokenizer.ggml.* (convert/mc_tokenizer.h), with "approximate" and the
 * notes. Folders: the tokenizer
 * files found beside the weights, JSON files as JSON, text files (chat
 * template, merges) as strings, binary ones (tokenizer.model) listed only. */
#include "mc_flash_write.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "mc_io.h"
#include "mc_safetensors.h"
#include "mc_tokenizer.h"

#define MC_TOK_FILE_MAX ((uint64_t)256 << 20)

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (k == 9 || i + k >= n + (k ? 0 : 1)) return 0;
        if (c == 0) return 0;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

/* A file's contents (NUL-terminated), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    mc_file f;
    char *buf = NULL;
    if (mc_file_open(&f, path, NULL)) return NULL;
    if (f.size <= MC_TOK_FILE_MAX && (buf = malloc((size_t)f.size + 1)) != NULL) {
        if (mc_file_pread(&f, 0, buf, (size_t)f.size, NULL)) {
            free(buf);
            buf = NULL;
        } else {
            buf[f.size] = 0;
            *len = (size_t)f.size;
        }
    }
    mc_file_close(&f);
    return buf;
}

static int ends_with(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && !strcmp(s + a - b, sfx);
}

cJSON *mc_flash_tokenizer(const mc_model *m)
{
    static const char *const files[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                         "generation_config.json", "added_tokens.json", "chat_template.json",
                                         "chat_template.jinja", "vocab.json", "merges.txt", "tokenizer.model" };
    cJSON *t = m->tokenizer ? cJSON_Duplicate(m->tokenizer, 1) : cJSON_CreateObject();
    if (!t) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(t, "dir"); /* no absolute paths: same bytes wherever the input lives */
    cJSON *emb = cJSON_AddObjectToObject(t, "embedded");
    cJSON *skipped = cJSON_AddArrayToObject(t, "not_embedded");
    if (!emb || !skipped) {
        cJSON_Delete(t);
        return NULL;
    }
    if (m->gguf) {
        mc_tok_out tok;
        mc_error err = { MC_OK, "" };
        if (mc_tokenizer_build(m->gguf, &tok, &err) == 0) {
            cJSON *const docs[] = { tok.tokenizer_json, tok.tokenizer_config, tok.generation_config };
            static const char *const names[] = { "tokenizer.json", "tokenizer_config.json", "generation_config.json" };
            for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
                if (docs[i]) cJSON_AddItemToObject(emb, names[i], docs[i]);
            tok.tokenizer_json = tok.tokenizer_config = tok.generation_config = NULL;
            if (tok.chat_template) cJSON_AddStringToObject(emb, "chat_template.jinja", tok.chat_template);
            if (tok.kind) cJSON_AddStringToObject(t, "built", tok.kind);
            if (tok.approximate && !cJSON_GetObjectItemCaseSensitive(t, "approximate")) cJSON_AddTrueToObject(t, "approximate");
            cJSON *notes = tok.n_notes && !cJSON_GetObjectItemCaseSensitive(t, "notes") ? cJSON_AddArrayToObject(t, "notes") : NULL;
            for (int i = 0; notes && i < tok.n_notes; i++) cJSON_AddItemToArray(notes, cJSON_CreateString(tok.notes[i]));
        } else {
            cJSON_AddStringToObject(t, "note", err.msg);
        }
        mc_tokenizer_out_free(&tok);
        return t;
    }
    const char *dir = m->st ? m->st->dir : NULL;
    for (size_t i = 0; dir && i < sizeof files / sizeof files[0]; i++) {
        char *p = mc_path_join(dir, files[i]);
        size_t len = 0;
        char *txt = p && mc_io_exists(p) ? slurp(p, &len) : NULL;
        free(p);
        if (!txt) continue;
        cJSON *v = NULL;
        if (ends_with(files[i], ".json")) v = cJSON_ParseWithLength(txt, len);
        else if (!ends_with(files[i], ".model") && valid_utf8((const unsigned char *)txt, len))
            v = cJSON_CreateString(txt);
        if (v) cJSON_AddItemToObject(emb, files[i], v);
        else cJSON_AddItemToArray(skipped, cJSON_CreateString(files[i]));
        free(txt);
    }
    return t;
}
