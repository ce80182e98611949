/* mc_tokenizer: GGUF tokenizer keys -> Hugging Face tokenizer files. */
#include "mc_tokenizer.h"

#include "mc_gguf.h"
#include "mc_io.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp token types (llama_token_type). */
enum { MC_TT_NORMAL = 1, MC_TT_UNKNOWN = 2, MC_TT_CONTROL = 3, MC_TT_USER = 4, MC_TT_UNUSED = 5, MC_TT_BYTE = 6 };

/* "▁" (U+2581), SentencePiece's space. */
#define MC_SPM_SPACE "\xe2\x96\x81"

/* Pre-tokenizer regexes of the Hugging Face tokenizers behind llama.cpp's
 * tokenizer.ggml.pre names (the regex as the original tokenizer.json has
 * it; llama.cpp keeps it as a comment beside its rewrite). NULL regex:
 * GPT-2's own, i.e. ByteLevel with use_regex. */
static const struct {
    const char *pre;
    const char *regex;
} g_pre_regex[] = {
    { "default", NULL }, { "gpt2", NULL }, { "gpt-2", NULL }, { "mpt", NULL }, { "olmo", NULL }, { "jais", NULL },
    { "llama3", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    { "llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    { "smaug-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    { "dbrx", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    { "qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    { "stablelm2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
};

/* Everything read from the GGUF keys. */
typedef struct mc_tok_src {
    const char *path;
    const char *model;           /* tokenizer.ggml.model */
    const char *pre;             /* tokenizer.ggml.pre or NULL */
    const mc_gguf_str *tokens;
    uint64_t n;
    const mc_gguf_kv *scores;    /* may be NULL */
    const mc_gguf_kv *types;     /* may be NULL */
    const mc_gguf_kv *merges;    /* may be NULL */
} mc_tok_src;

/* ---- a string -> id hash table (open addressing, FNV-1a) ---- */

typedef struct mc_tok_slot {
    int64_t first;      /* first id holding the string, -1 for an empty slot */
    int64_t last;       /* last id holding it: the vocabulary id (as transformers' dict and llama.cpp's map) */
} mc_tok_slot;

typedef struct mc_tok_map {
    uint64_t cap;       /* power of two */
    mc_tok_slot *slot;
    const mc_gguf_str *tokens;
} mc_tok_map;

static uint64_t mc_tok_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static const mc_tok_slot *mc_tok_map_find(const mc_tok_map *m, const char *s, size_t n)
{
    uint64_t h = mc_tok_hash(s, n) & (m->cap - 1);
    while (m->slot[h].first >= 0) {
        const mc_gguf_str *t = &m->tokens[m->slot[h].first];
        if (t->len == n && memcmp(t->s, s, n) == 0) return &m->slot[h];
        h = (h + 1) & (m->cap - 1);
    }
    return NULL;
}

/* Build the map; *dups counts ids whose string an earlier id already has. */
static int mc_tok_map_init(mc_tok_map *m, const mc_gguf_str *tokens, uint64_t n, uint64_t *dups)
{
    m->cap = 16;
    while (m->cap < n * 2) m->cap <<= 1;
    m->tokens = tokens;
    m->slot = malloc(m->cap * sizeof *m->slot);
    if (!m->slot) return 1;
    for (uint64_t h = 0; h < m->cap; h++) m->slot[h].first = m->slot[h].last = -1;
    *dups = 0;
    for (uint64_t i = 0; i < n; i++) {
        mc_tok_slot *e = (mc_tok_slot *)mc_tok_map_find(m, tokens[i].s, tokens[i].len);
        if (e) {
            e->last = (int64_t)i;
            (*dups)++;
            continue;
        }
        uint64_t h = mc_tok_hash(tokens[i].s, tokens[i].len) & (m->cap - 1);
        while (m->slot[h].first >= 0) h = (h + 1) & (m->cap - 1);
        m->slot[h].first = m->slot[h].last = (int64_t)i;
    }
    return 0;
}

/* Vocabulary id of a string, -1 when absent. */
static int64_t mc_tok_map_get(const mc_tok_map *m, const char *s, size_t n)
{
    const mc_tok_slot *e = mc_tok_map_find(m, s, n);
    return e ? e->last : -1;
}

/* True when id i is the first holder of its string. */
static int mc_tok_map_is_first(const mc_tok_map *m, uint64_t i)
{
    const mc_tok_slot *e = mc_tok_map_find(m, m->tokens[i].s, m->tokens[i].len);
    return e && e->first == (int64_t)i;
}

/* ---- helpers ---- */

static int mc_tok_utf8_ok(const char *s, uint64_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (uint64_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (c == 0 || len == 0 || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        if (len == 3 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F))) return 0;
        if (len == 4 && ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))) return 0;
        i += len;
    }
    return 1;
}

static int mc_tok_type(const mc_tok_src *s, uint64_t i)
{
    int64_t v = MC_TT_NORMAL;
    if (s->types && mc_gguf_arr_i64(s->types, i, &v) != 0) v = MC_TT_NORMAL;
    return (int)v;
}

static double mc_tok_score(const mc_tok_src *s, uint64_t i)
{
    double v = 0.0;
    if (s->scores && mc_gguf_arr_f64(s->scores, i, &v) != 0) v = 0.0;
    return v;
}

/* cJSON item or NULL; sets *oom when NULL. */
static cJSON *mc_tok_chk(cJSON *item, int *oom)
{
    if (!item) *oom = 1;
    return item;
}

static void mc_tok_add(cJSON *obj, const char *name, cJSON *item, int *oom)
{
    if (!item) { *oom = 1; return; }
    if (name) cJSON_AddItemToObject(obj, name, item);
    else cJSON_AddItemToArray(obj, item);
}

static cJSON *mc_tok_obj_type(const char *type, int *oom)
{
    cJSON *o = mc_tok_chk(cJSON_CreateObject(), oom);
    if (o) mc_tok_add(o, "type", cJSON_CreateString(type), oom);
    return o;
}

/* Token id of key (a u32 id) or -1. */
static int64_t mc_tok_id(const mc_gguf *g, const char *key, uint64_t n)
{
    int64_t v;
    if (mc_gguf_get_i64(g, key, &v) != 0 || v < 0 || (uint64_t)v >= n) return -1;
    return v;
}

/* ---- merges ---- */

typedef struct mc_tok_merge {
    uint32_t l, r, m;       /* token ids: left, right, merged */
    uint32_t len_l, len_r;  /* pieces' lengths in characters */
    double sm;              /* merged token's score */
} mc_tok_merge;

/* transformers' generate_merges order: merged score descending, then the
 * longer left piece, the longer right piece; ties keep vocabulary order
 * (merged id, then left id, right id). */
static int mc_tok_merge_cmp(const void *a, const void *b)
{
    const mc_tok_merge *x = a, *y = b;
    if (x->sm != y->sm) return x->sm > y->sm ? -1 : 1;
    if (x->len_l != y->len_l) return x->len_l > y->len_l ? -1 : 1;
    if (x->len_r != y->len_r) return x->len_r > y->len_r ? -1 : 1;
    if (x->m != y->m) return x->m < y->m ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

static uint32_t mc_tok_chars(const char *s, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* A merge as "left right" (the classic form) or, when a piece holds a space,
 * as ["left", "right"] (tokenizers >= 0.20). */
static cJSON *mc_tok_merge_item(const char *l, size_t ln, const char *r, size_t rn, int pairs)
{
    if (pairs) {
        cJSON *a = cJSON_CreateArray();
        char *ls = malloc(ln + 1), *rs = malloc(rn + 1);
        cJSON *li = NULL, *ri = NULL;
        if (a && ls && rs) {
            memcpy(ls, l, ln); ls[ln] = '\0';
            memcpy(rs, r, rn); rs[rn] = '\0';
            li = cJSON_CreateString(ls);
            ri = cJSON_CreateString(rs);
        }
        free(ls);
        free(rs);
        if (!a || !li || !ri) {
            cJSON_Delete(a); cJSON_Delete(li); cJSON_Delete(ri);
            return NULL;
        }
        cJSON_AddItemToArray(a, li);
        cJSON_AddItemToArray(a, ri);
        return a;
    }
    char *s = malloc(ln + rn + 2);
    if (!s) return NULL;
    memcpy(s, l, ln);
    s[ln] = ' ';
    memcpy(s + ln + 1, r, rn);
    s[ln + rn + 1] = '\0';
    cJSON *item = cJSON_CreateString(s);
    free(s);
    return item;
}

/* Merges of a GGUF "gpt2" tokenizer: "left right", split at the first space
 * after the first byte (as llama.cpp splits them). */
static int mc_tok_merges_bpe(const mc_tok_src *s, cJSON *arr, mc_error *err)
{
    const mc_gguf_str *mg = s->merges ? (const mc_gguf_str *)s->merges->arr : NULL;
    uint64_t n = s->merges ? s->merges->arr_n : 0;
    int pairs = 0, oom = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *sp = mg[i].len > 1 ? memchr(mg[i].s + 1, ' ', mg[i].len - 1) : NULL;
        if (!sp) return mc_error_set(err, MC_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] has no space", s->path,
                                     (unsigned long long)i);
        if (memchr(sp + 1, ' ', mg[i].len - (size_t)(sp + 1 - mg[i].s)) || sp == mg[i].s) pairs = 1;
        if (mg[i].s[0] == ' ') pairs = 1;
    }
    for (uint64_t i = 0; i < n && !oom; i++) {
        const char *sp = memchr(mg[i].s + 1, ' ', mg[i].len - 1);
        size_t ln = (size_t)(sp - mg[i].s);
        mc_tok_add(arr, NULL, mc_tok_merge_item(mg[i].s, ln, sp + 1, mg[i].len - ln - 1, pairs), &oom);
    }
    return oom ? mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building merges", s->path) : 0;
}

/* Merges of a SentencePiece vocabulary, derived as transformers'
 * generate_merges does: every split of a vocabulary token into two
 * vocabulary pieces (at character boundaries), ordered by
 * mc_tok_merge_cmp. */
static int mc_tok_merges_spm(const mc_tok_src *s, const mc_tok_map *map, cJSON *arr, mc_error *err)
{
    mc_tok_merge *list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, oom = 0, pairs = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        const mc_gguf_str *tok = &s->tokens[i];
        if (!mc_tok_map_is_first(map, i)) continue; /* a repeated string: visited once, at its first place */
        int64_t vid = mc_tok_map_get(map, tok->s, tok->len);  /* its vocabulary id (the last holder) */
        for (size_t k = 1; k < tok->len; k++) {
            if (((unsigned char)tok->s[k] & 0xC0) == 0x80) continue; /* inside a character */
            int64_t l = mc_tok_map_get(map, tok->s, k), r = l >= 0 ? mc_tok_map_get(map, tok->s + k, tok->len - k) : -1;
            if (l < 0 || r < 0) continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 4096;
                mc_tok_merge *nl = realloc(list, nc * sizeof *nl);
                if (!nl) { rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory deriving merges", s->path); goto done; }
                list = nl;
                cap = nc;
            }
            list[n++] = (mc_tok_merge){ (uint32_t)l, (uint32_t)r, (uint32_t)i, mc_tok_chars(tok->s, k),
                                        mc_tok_chars(tok->s + k, tok->len - k), mc_tok_score(s, (uint64_t)vid) };
            if (memchr(tok->s, ' ', tok->len)) pairs = 1;
        }
    }
    if (n) qsort(list, n, sizeof *list, mc_tok_merge_cmp);
    for (size_t i = 0; i < n && !oom; i++) {
        const mc_gguf_str *l = &s->tokens[list[i].l], *r = &s->tokens[list[i].r];
        mc_tok_add(arr, NULL, mc_tok_merge_item(l->s, l->len, r->s, r->len, pairs), &oom);
    }
    if (oom) rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building merges", s->path);
done:
    free(list);
    return rc;
}

/* ---- tokenizer.json parts ---- */

static cJSON *mc_tok_added(const mc_tok_src *s, int spm, int *oom)
{
    cJSON *arr = mc_tok_chk(cJSON_CreateArray(), oom);
    for (uint64_t i = 0; arr && i < s->n && !*oom; i++) {
        int t = mc_tok_type(s, i);
        int special = t == MC_TT_CONTROL || (spm && t == MC_TT_UNKNOWN);
        if (!special && t != MC_TT_USER) continue;
        cJSON *o = mc_tok_chk(cJSON_CreateObject(), oom);
        mc_tok_add(arr, NULL, o, oom);
        if (!o) break;
        mc_tok_add(o, "id", cJSON_CreateNumber((double)i), oom);
        mc_tok_add(o, "content", cJSON_CreateString(s->tokens[i].s), oom);
        mc_tok_add(o, "single_word", cJSON_CreateFalse(), oom);
        mc_tok_add(o, "lstrip", cJSON_CreateFalse(), oom);
        mc_tok_add(o, "rstrip", cJSON_CreateFalse(), oom);
        mc_tok_add(o, "normalized", cJSON_CreateBool(!special && !spm), oom);
        mc_tok_add(o, "special", cJSON_CreateBool(special), oom);
    }
    return arr;
}

static cJSON *mc_tok_vocab(const mc_tok_src *s, const mc_tok_map *map, int *oom)
{
    cJSON *v = mc_tok_chk(cJSON_CreateObject(), oom);
    for (uint64_t i = 0; v && i < s->n && !*oom; i++)
        if (mc_tok_map_is_first(map, i)) /* once per string; the id is its last holder's */
            mc_tok_add(v, s->tokens[i].s, cJSON_CreateNumber((double)mc_tok_map_get(map, s->tokens[i].s, s->tokens[i].len)), oom);
    return v;
}

static cJSON *mc_tok_bytelevel(int add_prefix_space, int trim_offsets, int use_regex, int *oom)
{
    cJSON *o = mc_tok_obj_type("ByteLevel", oom);
    if (!o) return NULL;
    mc_tok_add(o, "add_prefix_space", cJSON_CreateBool(add_prefix_space), oom);
    mc_tok_add(o, "trim_offsets", cJSON_CreateBool(trim_offsets), oom);
    mc_tok_add(o, "use_regex", cJSON_CreateBool(use_regex), oom);
    return o;
}

/* {"SpecialToken": {"id": NAME, "type_id": T}} or {"Sequence": {"id": "A", "type_id": T}}. */
static void mc_tok_piece(cJSON *seq, const char *kind, const char *id, int type_id, int *oom)
{
    cJSON *item = mc_tok_chk(cJSON_CreateObject(), oom), *inner = mc_tok_chk(cJSON_CreateObject(), oom);
    if (!item || !inner) {
        cJSON_Delete(item);
        cJSON_Delete(inner);
        return;
    }
    mc_tok_add(inner, "id", cJSON_CreateString(id), oom);
    mc_tok_add(inner, "type_id", cJSON_CreateNumber(type_id), oom);
    mc_tok_add(item, kind, inner, oom);
    mc_tok_add(seq, NULL, item, oom);
}

/* TemplateProcessing: [bos] $A [eos] (pair: then [bos] $B [eos], type 1). */
static cJSON *mc_tok_template(const mc_tok_src *s, int64_t bos, int64_t eos, int *oom)
{
    cJSON *o = mc_tok_obj_type("TemplateProcessing", oom);
    cJSON *single = mc_tok_chk(cJSON_CreateArray(), oom), *pair = mc_tok_chk(cJSON_CreateArray(), oom);
    cJSON *specials = mc_tok_chk(cJSON_CreateObject(), oom);
    if (!o || !single || !pair || !specials) {
        cJSON_Delete(o); cJSON_Delete(single); cJSON_Delete(pair); cJSON_Delete(specials);
        return NULL;
    }
    for (int part = 0; part < 2; part++) {
        if (bos >= 0) {
            if (part == 0) mc_tok_piece(single, "SpecialToken", s->tokens[bos].s, 0, oom);
            mc_tok_piece(pair, "SpecialToken", s->tokens[bos].s, part, oom);
        }
        if (part == 0) mc_tok_piece(single, "Sequence", "A", 0, oom);
        mc_tok_piece(pair, "Sequence", part ? "B" : "A", part, oom);
        if (eos >= 0) {
            if (part == 0) mc_tok_piece(single, "SpecialToken", s->tokens[eos].s, 0, oom);
            mc_tok_piece(pair, "SpecialToken", s->tokens[eos].s, part, oom);
        }
    }
    mc_tok_add(o, "single", single, oom);
    mc_tok_add(o, "pair", pair, oom);
    mc_tok_add(o, "special_tokens", specials, oom);
    int64_t both[2] = { bos, eos };
    for (int k = 0; k < 2; k++) {
        if (both[k] < 0 || (k == 1 && both[1] == both[0])) continue;
        const char *name = s->tokens[both[k]].s;
        cJSON *e = mc_tok_chk(cJSON_CreateObject(), oom), *ids = mc_tok_chk(cJSON_CreateArray(), oom),
              *toks = mc_tok_chk(cJSON_CreateArray(), oom);
        if (!e || !ids || !toks) {
            cJSON_Delete(e); cJSON_Delete(ids); cJSON_Delete(toks);
            break;
        }
        mc_tok_add(e, "id", cJSON_CreateString(name), oom);
        mc_tok_add(ids, NULL, cJSON_CreateNumber((double)both[k]), oom);
        mc_tok_add(toks, NULL, cJSON_CreateString(name), oom);
        mc_tok_add(e, "ids", ids, oom);
        mc_tok_add(e, "tokens", toks, oom);
        mc_tok_add(specials, name, e, oom);
    }
    return o;
}

static cJSON *mc_tok_replace(const char *pattern, const char *content, int *oom)
{
    cJSON *o = mc_tok_obj_type("Replace", oom), *p = mc_tok_chk(cJSON_CreateObject(), oom);
    if (!o || !p) { cJSON_Delete(o); cJSON_Delete(p); return NULL; }
    mc_tok_add(p, "String", cJSON_CreateString(pattern), oom);
    mc_tok_add(o, "pattern", p, oom);
    mc_tok_add(o, "content", cJSON_CreateString(content), oom);
    return o;
}

/* normalizer, pre_tokenizer, decoder for the two kinds. */
static void mc_tok_pipeline(const mc_tok_src *s, cJSON *tj, int spm, int add_space_prefix, const char **note, int *oom)
{
    if (spm) {
        cJSON *norm = mc_tok_obj_type("Sequence", oom), *list = mc_tok_chk(cJSON_CreateArray(), oom);
        mc_tok_add(tj, "normalizer", norm, oom);
        if (norm) mc_tok_add(norm, "normalizers", list, oom);
        if (list && add_space_prefix) {
            cJSON *pre = mc_tok_obj_type("Prepend", oom);
            if (pre) mc_tok_add(pre, "prepend", cJSON_CreateString(MC_SPM_SPACE), oom);
            mc_tok_add(list, NULL, pre, oom);
        }
        if (list) mc_tok_add(list, NULL, mc_tok_replace(" ", MC_SPM_SPACE, oom), oom);
        mc_tok_add(tj, "pre_tokenizer", cJSON_CreateNull(), oom);
        cJSON *dec = mc_tok_obj_type("Sequence", oom), *dl = mc_tok_chk(cJSON_CreateArray(), oom);
        mc_tok_add(tj, "decoder", dec, oom);
        if (dec) mc_tok_add(dec, "decoders", dl, oom);
        if (dl) {
            mc_tok_add(dl, NULL, mc_tok_replace(MC_SPM_SPACE, " ", oom), oom);
            mc_tok_add(dl, NULL, mc_tok_obj_type("ByteFallback", oom), oom);
            mc_tok_add(dl, NULL, mc_tok_obj_type("Fuse", oom), oom);
            if (add_space_prefix) {
                cJSON *strip = mc_tok_obj_type("Strip", oom);
                if (strip) {
                    mc_tok_add(strip, "content", cJSON_CreateString(" "), oom);
                    mc_tok_add(strip, "start", cJSON_CreateNumber(1), oom);
                    mc_tok_add(strip, "stop", cJSON_CreateNumber(0), oom);
                }
                mc_tok_add(dl, NULL, strip, oom);
            }
        }
        return;
    }
    const char *regex = NULL;
    int known = s->pre == NULL;
    for (size_t i = 0; s->pre && i < sizeof g_pre_regex / sizeof g_pre_regex[0]; i++)
        if (!strcmp(s->pre, g_pre_regex[i].pre)) {
            regex = g_pre_regex[i].regex;
            known = 1;
        }
    if (!known) *note = "pre-tokenizer not known to mconv: GPT-2's split used (tokenization of digits/punctuation may differ)";
    mc_tok_add(tj, "normalizer", cJSON_CreateNull(), oom);
    if (!regex) {
        mc_tok_add(tj, "pre_tokenizer", mc_tok_bytelevel(0, 1, 1, oom), oom);
    } else {
        cJSON *seq = mc_tok_obj_type("Sequence", oom), *list = mc_tok_chk(cJSON_CreateArray(), oom);
        cJSON *split = mc_tok_obj_type("Split", oom), *pat = mc_tok_chk(cJSON_CreateObject(), oom);
        mc_tok_add(tj, "pre_tokenizer", seq, oom);
        if (seq) mc_tok_add(seq, "pretokenizers", list, oom);
        if (pat) mc_tok_add(pat, "Regex", cJSON_CreateString(regex), oom);
        if (split) {
            mc_tok_add(split, "pattern", pat, oom);
            mc_tok_add(split, "behavior", cJSON_CreateString("Isolated"), oom);
            mc_tok_add(split, "invert", cJSON_CreateFalse(), oom);
        } else {
            cJSON_Delete(pat);
        }
        if (list) {
            mc_tok_add(list, NULL, split, oom);
            mc_tok_add(list, NULL, mc_tok_bytelevel(0, 0, 0, oom), oom);
        } else {
            cJSON_Delete(split);
        }
    }
    mc_tok_add(tj, "decoder", mc_tok_bytelevel(1, 1, 1, oom), oom);
}

static int mc_tok_bool(const mc_gguf *g, const char *key, int dflt)
{
    int v;
    return mc_gguf_get_bool(g, key, &v) == 0 ? v : dflt;
}

static cJSON *mc_tok_json(const mc_gguf *g, const mc_tok_src *s, int spm, const mc_tok_map *map, const char **note,
                          mc_error *err)
{
    int oom = 0;
    int64_t unk = mc_tok_id(g, "tokenizer.ggml.unknown_token_id", s->n);
    int64_t bos = mc_tok_id(g, "tokenizer.ggml.bos_token_id", s->n);
    int64_t eos = mc_tok_id(g, "tokenizer.ggml.eos_token_id", s->n);
    int add_bos = mc_tok_bool(g, "tokenizer.ggml.add_bos_token", spm);
    int add_eos = mc_tok_bool(g, "tokenizer.ggml.add_eos_token", 0);
    int add_space_prefix = mc_tok_bool(g, "tokenizer.ggml.add_space_prefix", 1);
    cJSON *tj = cJSON_CreateObject();
    if (!tj) goto nomem;
    mc_tok_add(tj, "version", cJSON_CreateString("1.0"), &oom);
    mc_tok_add(tj, "truncation", cJSON_CreateNull(), &oom);
    mc_tok_add(tj, "padding", cJSON_CreateNull(), &oom);
    mc_tok_add(tj, "added_tokens", mc_tok_added(s, spm, &oom), &oom);
    mc_tok_pipeline(s, tj, spm, add_space_prefix, note, &oom);
    if ((add_bos && bos >= 0) || (add_eos && eos >= 0))
        mc_tok_add(tj, "post_processor", mc_tok_template(s, add_bos ? bos : -1, add_eos ? eos : -1, &oom), &oom);
    else if (!spm)
        mc_tok_add(tj, "post_processor", mc_tok_bytelevel(1, 0, 1, &oom), &oom);
    else
        mc_tok_add(tj, "post_processor", cJSON_CreateNull(), &oom);
    cJSON *model = mc_tok_obj_type("BPE", &oom);
    mc_tok_add(tj, "model", model, &oom);
    if (oom || !model) goto nomem;
    mc_tok_add(model, "dropout", cJSON_CreateNull(), &oom);
    mc_tok_add(model, "unk_token", spm && unk >= 0 ? cJSON_CreateString(s->tokens[unk].s) : cJSON_CreateNull(), &oom);
    mc_tok_add(model, "continuing_subword_prefix", cJSON_CreateNull(), &oom);
    mc_tok_add(model, "end_of_word_suffix", cJSON_CreateNull(), &oom);
    mc_tok_add(model, "fuse_unk", cJSON_CreateBool(spm), &oom);
    mc_tok_add(model, "byte_fallback", cJSON_CreateBool(spm), &oom);
    mc_tok_add(model, "ignore_merges", cJSON_CreateFalse(), &oom);
    mc_tok_add(model, "vocab", mc_tok_vocab(s, map, &oom), &oom);
    cJSON *merges = mc_tok_chk(cJSON_CreateArray(), &oom);
    mc_tok_add(model, "merges", merges, &oom);
    if (oom) goto nomem;
    if (spm ? mc_tok_merges_spm(s, map, merges, err) : mc_tok_merges_bpe(s, merges, err)) {
        cJSON_Delete(tj);
        return NULL;
    }
    return tj;
nomem:
    cJSON_Delete(tj);
    mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building tokenizer.json", s->path);
    return NULL;
}

/* tokenizer_config.json: special tokens, add_bos/eos, chat template. */
static cJSON *mc_tok_config(const mc_gguf *g, const mc_tok_src *s, int spm, int have_json, mc_error *err)
{
    static const struct { const char *key; const char *name; } ids[] = {
        { "tokenizer.ggml.bos_token_id", "bos_token" }, { "tokenizer.ggml.eos_token_id", "eos_token" },
        { "tokenizer.ggml.unknown_token_id", "unk_token" }, { "tokenizer.ggml.padding_token_id", "pad_token" },
    };
    int oom = 0;
    cJSON *c = cJSON_CreateObject();
    if (!c) goto nomem;
    mc_tok_add(c, "add_bos_token", cJSON_CreateBool(mc_tok_bool(g, "tokenizer.ggml.add_bos_token", spm)), &oom);
    mc_tok_add(c, "add_eos_token", cJSON_CreateBool(mc_tok_bool(g, "tokenizer.ggml.add_eos_token", 0)), &oom);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int64_t id = mc_tok_id(g, ids[i].key, s->n);
        if (id >= 0 && mc_tok_utf8_ok(s->tokens[id].s, s->tokens[id].len))
            mc_tok_add(c, ids[i].name, cJSON_CreateString(s->tokens[id].s), &oom);
    }
    const char *tmpl = mc_gguf_get_str(g, "tokenizer.chat_template");
    const mc_gguf_kv *tkv = mc_gguf_find_kv(g, "tokenizer.chat_template");
    if (tmpl && tkv && mc_tok_utf8_ok(tmpl, tkv->v.str.len)) mc_tok_add(c, "chat_template", cJSON_CreateString(tmpl), &oom);
    mc_tok_add(c, "clean_up_tokenization_spaces", cJSON_CreateFalse(), &oom);
    if (spm) mc_tok_add(c, "legacy", cJSON_CreateTrue(), &oom);
    int64_t ctx = -1;
    const char *arch = mc_gguf_arch(g);
    if (arch) {
        char key[200];
        snprintf(key, sizeof key, "%s.context_length", arch);
        if (mc_gguf_get_i64(g, key, &ctx) == 0 && ctx > 0)
            mc_tok_add(c, "model_max_length", cJSON_CreateNumber((double)ctx), &oom);
    }
    if (have_json) mc_tok_add(c, "tokenizer_class", cJSON_CreateString("PreTrainedTokenizerFast"), &oom);
    if (!oom) return c;
nomem:
    cJSON_Delete(c);
    mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building tokenizer_config.json", s->path);
    return NULL;
}

/* Check the arrays against each other; 0 when consistent. */
static int mc_tok_check(const mc_gguf *g, mc_tok_src *s, mc_error *err)
{
    static const char *const id_keys[] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id",
    };
    const mc_gguf_kv *arrs[2] = { s->scores, s->types };
    const char *names[2] = { "tokenizer.ggml.scores", "tokenizer.ggml.token_type" };
    for (int i = 0; i < 2; i++) {
        if (!arrs[i]) continue;
        if (arrs[i]->type != MC_GGUF_ARRAY || arrs[i]->arr_type == MC_GGUF_STRING || arrs[i]->arr_n != s->n)
            return mc_error_set(err, MC_ERR_FORMAT, "%s: %s has %llu entries for %llu tokens", s->path, names[i],
                                (unsigned long long)(arrs[i]->type == MC_GGUF_ARRAY ? arrs[i]->arr_n : 0),
                                (unsigned long long)s->n);
    }
    if (s->merges && (s->merges->type != MC_GGUF_ARRAY || s->merges->arr_type != MC_GGUF_STRING))
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tokenizer.ggml.merges is not an array of strings", s->path);
    for (uint64_t i = 0; s->merges && i < s->merges->arr_n; i++) {
        const mc_gguf_str *m = &((const mc_gguf_str *)s->merges->arr)[i];
        if (m->len < 3 || !memchr(m->s + 1, ' ', m->len - 2))
            return mc_error_set(err, MC_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is not \"left right\"", s->path,
                                (unsigned long long)i);
    }
    for (size_t i = 0; i < sizeof id_keys / sizeof id_keys[0]; i++) {
        int64_t v;
        if (mc_gguf_get_i64(g, id_keys[i], &v) == 0 && (v < 0 || (uint64_t)v >= s->n))
            return mc_error_set(err, MC_ERR_FORMAT, "%s: %s = %lld is not a token id (%llu tokens)", s->path, id_keys[i],
                                (long long)v, (unsigned long long)s->n);
    }
    return 0;
}

/* Read the keys into s and decide the kind: *bpe / *spm set when a
 * tokenizer.json can be built. s->tokens stays NULL when there is no
 * tokenizer. */
static int mc_tok_decide(const mc_gguf *g, mc_tok_src *s, int *bpe, int *spm, const char **kind, const char **note,
                         mc_error *err)
{
    int rc;
    *bpe = *spm = 0;
    *kind = MC_TOK_KIND_NONE;
    *note = NULL;
    s->path = g->path ? g->path : "gguf";
    s->model = mc_gguf_get_str(g, "tokenizer.ggml.model");
    s->pre = mc_gguf_get_str(g, "tokenizer.ggml.pre");
    const mc_gguf_kv *tk = mc_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!tk) return 0;
    if (tk->type != MC_GGUF_ARRAY || tk->arr_type != MC_GGUF_STRING)
        return mc_error_set(err, MC_ERR_FORMAT, "%s: tokenizer.ggml.tokens is not an array of strings", s->path);
    s->tokens = tk->arr;
    s->n = tk->arr_n;
    s->scores = mc_gguf_find_kv(g, "tokenizer.ggml.scores");
    s->types = mc_gguf_find_kv(g, "tokenizer.ggml.token_type");
    s->merges = mc_gguf_find_kv(g, "tokenizer.ggml.merges");
    if ((rc = mc_tok_check(g, s, err))) return rc;

    *bpe = s->model && !strcmp(s->model, "gpt2") && s->merges;
    *spm = s->model && !strcmp(s->model, "llama") && s->scores;
    *kind = MC_TOK_KIND_KEPT;
    if (!*bpe && !*spm)
        *note = s->model && !strcmp(s->model, "gpt2") ? "BPE tokenizer without merges"
                                                      : "tokenizer model has no tokenizer.json mapping in mconv";
    for (uint64_t i = 0; (*bpe || *spm) && i < s->n; i++)
        if (!mc_tok_utf8_ok(s->tokens[i].s, s->tokens[i].len)) {
            *note = "a token is not valid UTF-8 (or holds a NUL), which tokenizer.json cannot hold";
            *bpe = *spm = 0;
        }
    for (uint64_t i = 0; *bpe && i < s->merges->arr_n; i++) {
        const mc_gguf_str *m = &((const mc_gguf_str *)s->merges->arr)[i];
        if (!mc_tok_utf8_ok(m->s, m->len)) {
            *note = "a merge is not valid UTF-8, which tokenizer.json cannot hold";
            *bpe = 0;
        }
    }
    if (*bpe || *spm) *kind = *spm ? MC_TOK_KIND_SPM : MC_TOK_KIND_BPE;
    return 0;
}

int mc_tokenizer_kind(const mc_gguf *g, const char **kind, const char **note, mc_error *err)
{
    mc_tok_src s = { 0 };
    const char *dummy;
    int bpe, spm;
    return mc_tok_decide(g, &s, &bpe, &spm, kind, note ? note : &dummy, err);
}

int mc_tokenizer_from_gguf(const mc_gguf *g, cJSON **tokenizer_json, cJSON **tokenizer_config, const char **kind,
                           const char **note, mc_error *err)
{
    mc_tok_src s = { 0 };
    mc_tok_map map = { 0 };
    const char *dummy;
    int rc = 0, bpe, spm;
    uint64_t dups = 0;
    *tokenizer_json = NULL;
    *tokenizer_config = NULL;
    if (!note) note = &dummy;
    if ((rc = mc_tok_decide(g, &s, &bpe, &spm, kind, note, err)) || !s.tokens) return rc;
    if (bpe || spm) {
        if (mc_tok_map_init(&map, s.tokens, s.n, &dups))
            return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory indexing %llu tokens", s.path, (unsigned long long)s.n);
        if (dups) *note = "duplicate token strings: the last id of each is the vocabulary id (as transformers and llama.cpp map them)";
        if (!(*tokenizer_json = mc_tok_json(g, &s, spm, &map, note, err))) {
            rc = err && err->code ? (int)err->code : MC_ERR_NOMEM;
            goto done;
        }
    }
    if (!(*tokenizer_config = mc_tok_config(g, &s, spm, *tokenizer_json != NULL, err))) {
        rc = MC_ERR_NOMEM;
        cJSON_Delete(*tokenizer_json);
        *tokenizer_json = NULL;
    }
done:
    free(map.slot);
    return rc;
}

static int mc_tok_write_one(const char *dir, const char *name, const cJSON *doc, int force, mc_error *err)
{
    char *path = mc_path_join(dir, name);
    char *text = cJSON_PrintUnformatted(doc);
    mc_outfile o = { .fd = -1, .slot = -1 };
    int rc = 0, created = 0;
    if (!path || !text) {
        rc = mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory writing %s", dir, name);
        goto done;
    }
    if ((rc = mc_outfile_create(&o, path, force, err))) goto done;
    created = 1;
    if ((rc = mc_outfile_write(&o, text, strlen(text), err))) goto done;
    rc = mc_outfile_commit(&o, err);
done:
    if (created) mc_outfile_abort(&o);
    free(path);
    free(text);
    return rc;
}

int mc_tokenizer_write(const char *dir, const cJSON *tokenizer_json, const cJSON *tokenizer_config, int force, mc_error *err)
{
    int rc = 0;
    if (tokenizer_json) rc = mc_tok_write_one(dir, "tokenizer.json", tokenizer_json, force, err);
    if (!rc && tokenizer_config) rc = mc_tok_write_one(dir, "tokenizer_config.json", tokenizer_config, force, err);
    return rc;
}
