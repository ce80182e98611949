/* mc_tokenizer: GGUF tokenizer keys -> tokenizer.json (the model, its
 * normalizer, pre-tokenizer, post-processor and decoder, the added tokens).
 * The other files come from mc_tok_config.c. */
#include "mc_tok_int.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "▁" (U+2581), SentencePiece's space. */
#define MC_SPM_SPACE "\xe2\x96\x81"

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

/* Build the map; *dups counts ids whose string an earlier id already has.
 * 1 when out of memory (or the table size would overflow). */
static int mc_tok_map_init(mc_tok_map *m, const mc_gguf_str *tokens, uint64_t n, uint64_t *dups)
{
    m->cap = 16;
    while (m->cap < n * 2) {
        if (m->cap > (UINT64_MAX >> 2) / sizeof *m->slot) return 1;
        m->cap <<= 1;
    }
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

/* ---- helpers shared with mc_tok_config.c ---- */

int mc_tok_utf8_ok(const char *s, uint64_t n)
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

cJSON *mc_tok_chk(cJSON *item, int *oom)
{
    if (!item) *oom = 1;
    return item;
}

void mc_tok_add(cJSON *obj, const char *name, cJSON *item, int *oom)
{
    if (!item) { *oom = 1; return; }
    if (!obj) { cJSON_Delete(item); *oom = 1; return; }
    if (name) cJSON_AddItemToObject(obj, name, item);
    else cJSON_AddItemToArray(obj, item);
}

int64_t mc_tok_id(const mc_gguf *g, const char *key, uint64_t n)
{
    int64_t v;
    if (mc_gguf_get_i64(g, key, &v) != 0 || v < 0 || (uint64_t)v >= n) return -1;
    return v;
}

int mc_tok_bool(const mc_gguf *g, const char *key, int dflt)
{
    int v;
    return mc_gguf_get_bool(g, key, &v) == 0 ? v : dflt;
}

int mc_tok_add_bos(const mc_tok_src *s)
{
    return mc_tok_bool(s->g, "tokenizer.ggml.add_bos_token", s->spm || (s->flags & MC_TP_ADD_BOS));
}

void mc_tok_note(mc_tok_out *out, const char *fmt, ...)
{
    if (out->n_notes >= MC_TOK_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->notes[out->n_notes++], MC_TOK_NOTE_MAX, fmt, ap);
    va_end(ap);
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

static cJSON *mc_tok_obj_type(const char *type, int *oom)
{
    cJSON *o = mc_tok_chk(cJSON_CreateObject(), oom);
    if (o) mc_tok_add(o, "type", cJSON_CreateString(type), oom);
    return o;
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
    char *s = malloc(ln + rn + 2);
    cJSON *item = NULL;
    if (!s) return NULL;
    memcpy(s, l, ln);
    s[ln] = '\0';
    memcpy(s + ln + 1, r, rn);
    s[ln + rn + 1] = '\0';
    if (pairs) {
        cJSON *li = cJSON_CreateString(s), *ri = cJSON_CreateString(s + ln + 1);
        item = li && ri ? cJSON_CreateArray() : NULL;
        if (item) {
            cJSON_AddItemToArray(item, li);
            cJSON_AddItemToArray(item, ri);
        } else {
            cJSON_Delete(li);
            cJSON_Delete(ri);
        }
    } else {
        s[ln] = ' ';
        item = cJSON_CreateString(s);
    }
    free(s);
    return item;
}

/* The two pieces of GGUF merge i: split at the first space after the first
 * byte (as llama.cpp splits them). */
static void mc_tok_merge_split(const mc_gguf_str *m, size_t *ln, const char **r, size_t *rn)
{
    const char *sp = memchr(m->s + 1, ' ', m->len - 1);
    *ln = (size_t)(sp - m->s);
    *r = sp + 1;
    *rn = m->len - *ln - 1;
}

/* Whether merge m is usable: both pieces and their concatenation are
 * vocabulary tokens (the Rust tokenizers core panics on the others).
 * buf holds at least m->len bytes. */
static int mc_tok_merge_ok(const mc_tok_map *map, const mc_gguf_str *m, char *buf)
{
    size_t ln, rn;
    const char *r;
    mc_tok_merge_split(m, &ln, &r, &rn);
    if (mc_tok_map_get(map, m->s, ln) < 0 || mc_tok_map_get(map, r, rn) < 0) return 0;
    memcpy(buf, m->s, ln);
    memcpy(buf + ln, r, rn);
    return mc_tok_map_get(map, buf, ln + rn) >= 0;
}

/* Count the unusable merges of a "gpt2" tokenizer (*first: the first one's
 * index); 1 when out of memory. */
static int mc_tok_merges_check(const mc_tok_src *s, const mc_tok_map *map, uint64_t *bad, uint64_t *first)
{
    const mc_gguf_str *mg = (const mc_gguf_str *)s->merges->arr;
    size_t longest = 1;
    *bad = 0;
    *first = 0;
    for (uint64_t i = 0; i < s->merges->arr_n; i++)
        if (mg[i].len > longest) longest = mg[i].len;
    char *buf = malloc(longest);
    if (!buf) return 1;
    for (uint64_t i = 0; i < s->merges->arr_n; i++)
        if (!mc_tok_merge_ok(map, &mg[i], buf) && (*bad)++ == 0) *first = i;
    free(buf);
    return 0;
}

/* Merges of a GGUF "gpt2" tokenizer, the unusable ones left out. */
static int mc_tok_merges_bpe(const mc_tok_src *s, const mc_tok_map *map, cJSON *arr, mc_error *err)
{
    const mc_gguf_str *mg = s->merges ? (const mc_gguf_str *)s->merges->arr : NULL;
    uint64_t n = s->merges ? s->merges->arr_n : 0;
    int pairs = 0, oom = 0;
    size_t longest = 1;
    for (uint64_t i = 0; i < n; i++) {
        size_t ln, rn;
        const char *r;
        mc_tok_merge_split(&mg[i], &ln, &r, &rn);
        if (memchr(mg[i].s, ' ', ln) || memchr(r, ' ', rn)) pairs = 1;
        if (mg[i].len > longest) longest = mg[i].len;
    }
    char *buf = malloc(longest);
    if (!buf) return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building merges", s->path);
    for (uint64_t i = 0; i < n && !oom; i++) {
        size_t ln, rn;
        const char *r;
        if (!mc_tok_merge_ok(map, &mg[i], buf)) continue;
        mc_tok_merge_split(&mg[i], &ln, &r, &rn);
        mc_tok_add(arr, NULL, mc_tok_merge_item(mg[i].s, ln, r, rn, pairs), &oom);
    }
    free(buf);
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
                mc_tok_merge *nl = nc > SIZE_MAX / sizeof *nl ? NULL : realloc(list, nc * sizeof *nl);
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

/* Control tokens (and SentencePiece's unknown one) as special added tokens,
 * user-defined ones as non-special added tokens, as llama.cpp's converter
 * wrote them from the original's added tokens. */
static cJSON *mc_tok_added(const mc_tok_src *s, int *oom)
{
    cJSON *arr = mc_tok_chk(cJSON_CreateArray(), oom);
    for (uint64_t i = 0; arr && i < s->n && !*oom; i++) {
        int t = mc_tok_type(s, i);
        int special = t == MC_TT_CONTROL || (s->spm && t == MC_TT_UNKNOWN);
        if (!special && t != MC_TT_USER) continue;
        cJSON *o = mc_tok_chk(cJSON_CreateObject(), oom);
        mc_tok_add(arr, NULL, o, oom);
        if (!o) break;
        mc_tok_add(o, "id", cJSON_CreateNumber((double)i), oom);
        mc_tok_add(o, "content", cJSON_CreateString(s->tokens[i].s), oom);
        mc_tok_add(o, "single_word", cJSON_CreateFalse(), oom);
        mc_tok_add(o, "lstrip", cJSON_CreateFalse(), oom);
        mc_tok_add(o, "rstrip", cJSON_CreateFalse(), oom);
        mc_tok_add(o, "normalized", cJSON_CreateFalse(), oom);
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

/* TemplateProcessing: [bos] $A [eos] (pair: then [bos] $B [eos], type 1),
 * what transformers' encode(..., add_special_tokens=True) adds. */
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

/* normalizer, pre_tokenizer, decoder of a SentencePiece vocabulary. */
static void mc_tok_pipeline_spm(cJSON *tj, int add_space_prefix, int *oom)
{
    cJSON *norm = mc_tok_obj_type("Sequence", oom), *list = mc_tok_chk(cJSON_CreateArray(), oom);
    mc_tok_add(tj, "normalizer", norm, oom);
    if (norm) mc_tok_add(norm, "normalizers", list, oom);
    else cJSON_Delete(list);
    if (norm && list && add_space_prefix) {
        cJSON *pre = mc_tok_obj_type("Prepend", oom);
        if (pre) mc_tok_add(pre, "prepend", cJSON_CreateString(MC_SPM_SPACE), oom);
        mc_tok_add(list, NULL, pre, oom);
    }
    if (norm && list) mc_tok_add(list, NULL, mc_tok_replace(" ", MC_SPM_SPACE, oom), oom);
    mc_tok_add(tj, "pre_tokenizer", cJSON_CreateNull(), oom);
    cJSON *dec = mc_tok_obj_type("Sequence", oom), *dl = mc_tok_chk(cJSON_CreateArray(), oom);
    mc_tok_add(tj, "decoder", dec, oom);
    if (dec) mc_tok_add(dec, "decoders", dl, oom);
    else cJSON_Delete(dl);
    if (!dec || !dl) return;
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

/* The GPT-2 split, for a missing or unknown pre. */
static const mc_tok_pre g_pre_gpt2 = { "", MC_TP_APPROX | MC_TP_CLEAN, "GPT-2", { { MC_TS_BYTELEVEL_RE, NULL } } };

/* normalizer, pre_tokenizer, decoder of a byte-level BPE vocabulary. */
static void mc_tok_pipeline_bpe(const mc_tok_src *s, cJSON *tj, int *oom)
{
    const mc_tok_pre *e = s->entry ? s->entry : &g_pre_gpt2;
    mc_tok_add(tj, "normalizer", (s->flags & MC_TP_NFC) ? mc_tok_obj_type("NFC", oom) : cJSON_CreateNull(), oom);
    mc_tok_add(tj, "pre_tokenizer", mc_tok_pre_json(e), oom);
    mc_tok_add(tj, "decoder", mc_tok_bytelevel(1, 1, 1, oom), oom);
}

static int mc_tok_json(const mc_tok_src *s, const mc_tok_map *map, cJSON **out, mc_error *err)
{
    int oom = 0;
    int64_t unk = mc_tok_id(s->g, "tokenizer.ggml.unknown_token_id", s->n);
    int64_t bos = mc_tok_id(s->g, "tokenizer.ggml.bos_token_id", s->n);
    int64_t eos = mc_tok_id(s->g, "tokenizer.ggml.eos_token_id", s->n);
    int add_bos = mc_tok_add_bos(s) && bos >= 0;
    int add_eos = mc_tok_bool(s->g, "tokenizer.ggml.add_eos_token", 0) && eos >= 0;
    cJSON *tj = cJSON_CreateObject(), *model = NULL, *merges = NULL;
    *out = NULL;
    if (!tj) goto nomem;
    mc_tok_add(tj, "version", cJSON_CreateString("1.0"), &oom);
    mc_tok_add(tj, "truncation", cJSON_CreateNull(), &oom);
    mc_tok_add(tj, "padding", cJSON_CreateNull(), &oom);
    mc_tok_add(tj, "added_tokens", mc_tok_added(s, &oom), &oom);
    if (s->spm) mc_tok_pipeline_spm(tj, mc_tok_bool(s->g, "tokenizer.ggml.add_space_prefix", 1), &oom);
    else mc_tok_pipeline_bpe(s, tj, &oom);
    if (add_bos || add_eos)
        mc_tok_add(tj, "post_processor", mc_tok_template(s, add_bos ? bos : -1, add_eos ? eos : -1, &oom), &oom);
    else
        mc_tok_add(tj, "post_processor", s->spm ? cJSON_CreateNull() : mc_tok_bytelevel(1, 0, 1, &oom), &oom);
    model = mc_tok_obj_type("BPE", &oom);
    mc_tok_add(tj, "model", model, &oom);
    if (oom || !model) goto nomem;
    mc_tok_add(model, "dropout", cJSON_CreateNull(), &oom);
    mc_tok_add(model, "unk_token", s->spm && unk >= 0 ? cJSON_CreateString(s->tokens[unk].s) : cJSON_CreateNull(), &oom);
    mc_tok_add(model, "continuing_subword_prefix", cJSON_CreateNull(), &oom);
    mc_tok_add(model, "end_of_word_suffix", cJSON_CreateNull(), &oom);
    mc_tok_add(model, "fuse_unk", cJSON_CreateBool(s->spm), &oom);
    mc_tok_add(model, "byte_fallback", cJSON_CreateBool(s->spm), &oom);
    mc_tok_add(model, "ignore_merges", cJSON_CreateBool(!s->spm && (s->flags & MC_TP_IGNORE_MERGES)), &oom);
    mc_tok_add(model, "vocab", mc_tok_vocab(s, map, &oom), &oom);
    merges = mc_tok_chk(cJSON_CreateArray(), &oom);
    mc_tok_add(model, "merges", merges, &oom);
    if (oom) goto nomem;
    if (s->spm ? mc_tok_merges_spm(s, map, merges, err) : mc_tok_merges_bpe(s, map, merges, err)) {
        cJSON_Delete(tj);
        return err && err->code ? (int)err->code : MC_ERR_NOMEM;
    }
    *out = tj;
    return 0;
nomem:
    cJSON_Delete(tj);
    return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory building tokenizer.json", s->path);
}

/* ---- reading and deciding ---- */

/* Check the arrays against each other; 0 when consistent. */
static int mc_tok_check(const mc_gguf *g, mc_tok_src *s, mc_error *err)
{
    static const char *const id_keys[] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
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

/* Tokenizer models without a tokenizer.json mapping: what they are. */
static const struct {
    const char *model;
    const char *what;
} g_tok_other[] = {
    { "bert", "WordPiece (BERT)" }, { "t5", "Unigram (T5)" }, { "rwkv", "RWKV's trie tokenizer" },
    { "plamo2", "PLaMo 2's tokenizer" }, { "gemma4", "Gemma 4's BPE over raw UTF-8" }, { "no_vocab", "no vocabulary" },
    { "none", "no vocabulary" },
};

/* Read the keys into s, decide the kind (s->bpe / s->spm when a
 * tokenizer.json can be built) and the notes of everything but the merges.
 * s->tokens stays NULL when there is no tokenizer. */
static int mc_tok_decide(const mc_gguf *g, mc_tok_src *s, mc_tok_out *out, mc_error *err)
{
    int rc;
    memset(s, 0, sizeof *s);
    s->g = g;
    out->kind = MC_TOK_KIND_NONE;
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
    out->kind = MC_TOK_KIND_KEPT;

    const char *model = s->model ? s->model : "(missing)";
    int gpt2 = s->model && !strcmp(s->model, "gpt2");
    s->spm = s->model && !strcmp(s->model, "llama") && s->scores;
    const char *guessed = NULL, *what = NULL;
    if (gpt2 && !s->pre) guessed = mc_tok_pre_guess(s->tokens, s->n, &what);
    if (gpt2) {
        s->entry = mc_tok_pre_find(s->pre ? s->pre : guessed);
        s->flags = s->entry ? s->entry->flags : g_pre_gpt2.flags;
        if (s->flags & MC_TP_REFUSE) {
            mc_tok_note(out, "tokenizer.ggml.pre '%s' is %s, which a byte-level tokenizer.json cannot express: "
                        "tokenizer kept as GGUF keys", s->pre, s->entry->source);
            return 0;
        }
        if (!s->merges) {
            mc_tok_note(out, "tokenizer model 'gpt2' without tokenizer.ggml.merges: tokenizer kept as GGUF keys");
            return 0;
        }
        s->bpe = 1;
    } else if (!s->spm) {
        const char *what = "a tokenizer model mconv has no mapping for";
        for (size_t i = 0; i < sizeof g_tok_other / sizeof g_tok_other[0]; i++)
            if (s->model && !strcmp(s->model, g_tok_other[i].model)) what = g_tok_other[i].what;
        mc_tok_note(out, "tokenizer model '%s' is %s: no tokenizer.json built (tokenizer kept as GGUF keys)", model,
                    s->model && !strcmp(s->model, "llama") ? "SentencePiece without scores" : what);
        return 0;
    }
    for (uint64_t i = 0; i < s->n; i++)
        if (!mc_tok_utf8_ok(s->tokens[i].s, s->tokens[i].len)) {
            mc_tok_note(out, "token %llu is not valid UTF-8 (or holds a NUL), which tokenizer.json cannot hold: "
                        "tokenizer kept as GGUF keys", (unsigned long long)i);
            s->bpe = s->spm = 0;
            return 0;
        }
    for (uint64_t i = 0; s->bpe && i < s->merges->arr_n; i++) {
        const mc_gguf_str *m = &((const mc_gguf_str *)s->merges->arr)[i];
        if (!mc_tok_utf8_ok(m->s, m->len)) {
            mc_tok_note(out, "tokenizer.ggml.merges[%llu] is not valid UTF-8, which tokenizer.json cannot hold: "
                        "tokenizer kept as GGUF keys", (unsigned long long)i);
            s->bpe = 0;
            return 0;
        }
    }
    out->kind = s->spm ? MC_TOK_KIND_SPM : MC_TOK_KIND_BPE;
    if (s->bpe && !s->pre && s->entry) {
        mc_tok_note(out, "tokenizer.ggml.pre is missing; the vocabulary is %s's (recognised by its tokens): "
                    "pre-tokenizer '%s' used", what, guessed);
        if (s->flags & MC_TP_APPROX) out->approximate = 1;
    } else if (s->bpe && !s->pre) {
        out->approximate = 1;
        mc_tok_note(out, "tokenizer.ggml.pre is missing: GPT-2's byte-level split used, the tokenizer is approximate");
    } else if (s->bpe && !s->entry) {
        out->approximate = 1;
        mc_tok_note(out, "tokenizer.ggml.pre '%s' is not known to mconv: GPT-2's byte-level split used, the tokenizer "
                    "is approximate", s->pre);
    } else if (s->bpe && (s->flags & MC_TP_APPROX)) {
        out->approximate = 1;
        mc_tok_note(out, "tokenizer.ggml.pre '%s': the original split is not known to mconv (%s), the tokenizer is "
                    "approximate", s->pre, s->entry->source);
    }
    return 0;
}

/* decide, index the vocabulary, check the merges: everything but the JSON. */
static int mc_tok_prepare(const mc_gguf *g, mc_tok_src *s, mc_tok_map *map, mc_tok_out *out, mc_error *err)
{
    uint64_t dups = 0;
    int rc;
    memset(out, 0, sizeof *out);
    memset(map, 0, sizeof *map);
    if ((rc = mc_tok_decide(g, s, out, err)) || !(s->bpe || s->spm)) return rc;
    if (mc_tok_map_init(map, s->tokens, s->n, &dups))
        return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory indexing %llu tokens", s->path, (unsigned long long)s->n);
    if (dups)
        mc_tok_note(out, "%llu duplicate token strings: the last id of each is the vocabulary id (as transformers and "
                    "llama.cpp map them)", (unsigned long long)dups);
    if (s->bpe) {
        uint64_t bad, first;
        if (mc_tok_merges_check(s, map, &bad, &first))
            return mc_error_set(err, MC_ERR_NOMEM, "%s: out of memory checking merges", s->path);
        if (bad) {
            const mc_gguf_str *m = &((const mc_gguf_str *)s->merges->arr)[first];
            mc_tok_note(out, "%llu of %llu merges name strings that are not tokens of the vocabulary (first: merges[%llu] "
                        "\"%.*s\"): dropped", (unsigned long long)bad, (unsigned long long)s->merges->arr_n,
                        (unsigned long long)first, (int)(m->len > 64 ? 64 : m->len), m->s);
        }
    }
    return 0;
}

int mc_tokenizer_scan(const mc_gguf *g, mc_tok_out *out, mc_error *err)
{
    mc_tok_src s;
    mc_tok_map map;
    int rc = mc_tok_prepare(g, &s, &map, out, err);
    free(map.slot);
    return rc;
}

int mc_tokenizer_kind(const mc_gguf *g, const char **kind, char *note, size_t note_cap, int *approximate, mc_error *err)
{
    mc_tok_out out;
    int rc = mc_tokenizer_scan(g, &out, err);
    *kind = out.kind;
    if (approximate) *approximate = out.approximate;
    if (note && note_cap) {
        size_t len = 0;
        note[0] = '\0';
        for (int i = 0; i < out.n_notes && len + 1 < note_cap; i++) {
            int w = snprintf(note + len, note_cap - len, "%s%s", i ? "; " : "", out.notes[i]);
            if (w < 0) break;
            len += (size_t)w;
        }
    }
    return rc;
}

int mc_tokenizer_build(const mc_gguf *g, mc_tok_out *out, mc_error *err)
{
    mc_tok_src s;
    mc_tok_map map;
    int rc = mc_tok_prepare(g, &s, &map, out, err);
    if (!rc && (s.bpe || s.spm)) rc = mc_tok_json(&s, &map, &out->tokenizer_json, err);
    free(map.slot);
    if (!rc && s.tokens) rc = mc_tok_config_build(&s, out, err);
    return rc;
}

void mc_tokenizer_out_free(mc_tok_out *out)
{
    cJSON_Delete(out->tokenizer_json);
    cJSON_Delete(out->tokenizer_config);
    cJSON_Delete(out->generation_config);
    free(out->chat_template);
    out->tokenizer_json = out->tokenizer_config = out->generation_config = NULL;
    out->chat_template = NULL;
}
