/* Minimal test support: checks that count, corpus lookup, skip reporting. */
#ifndef MC_TEST_H
#define MC_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

extern int mc_test_failures;
extern int mc_test_checks;
extern int mc_test_skips;

#define CHECK(cond) do { mc_test_checks++; if (!(cond)) { mc_test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { mc_test_checks++; if (!(cond)) { mc_test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_EQ_U64(a, b) do { unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
    mc_test_checks++; if (_a != _b) { mc_test_failures++; \
    fprintf(stderr, "%s:%d: %s == %s failed: %llu != %llu\n", __FILE__, __LINE__, #a, #b, _a, _b); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); mc_test_checks++; \
    if (!_a || !_b || strcmp(_a, _b) != 0) { mc_test_failures++; \
    fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, \
            _a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)

/* Corpus root: $MCONV_CORPUS, else ../shared/corpus beside the source tree.
 * Returns NULL when absent. */
const char *mc_test_corpus(void);
/* Path under the corpus (static rotating buffers), or NULL if the corpus or
 * the file is absent; absent files are reported as skipped. */
const char *mc_test_corpus_file(const char *rel);
/* The 2026 additions ($MCONV_CORPUS_NEW, else ../shared/corpus-new) and
 * llama.cpp's tokenizer vectors ($MCONV_TOK_VECTORS, else
 * ../shared/tok-vectors): the folder, or NULL when absent; a file under it
 * as mc_test_corpus_file does (absent: reported as skipped, NULL). */
const char *mc_test_corpus_new(void);
const char *mc_test_corpus_new_file(const char *rel);
const char *mc_test_tok_vectors(void);
const char *mc_test_tok_vectors_file(const char *rel);
/* Every corpus model, folder by folder under models/: fn(path, 1, ctx) for
 * each .gguf in <arch>/gguf/, then fn(path, 0, ctx) for <arch>/hf. Returns
 * the number of model folders (0 when the corpus is absent). The _new_
 * variant walks corpus-new/models; _under walks any such models folder
 * (NULL: none). */
int mc_test_each_corpus_model(void (*fn)(const char *path, int gguf, void *ctx), void *ctx);
int mc_test_each_corpus_new_model(void (*fn)(const char *path, int gguf, void *ctx), void *ctx);
int mc_test_each_model_under(const char *models, void (*fn)(const char *path, int gguf, void *ctx), void *ctx);
/* Record and print a skip ("SKIP: reason"). */
void mc_test_skip(const char *fmt, ...);
/* Sampling density for the heavy corruption sweeps: $MCONV_TEST_LEVEL
 * (1: sparse, set by the valgrind pass; 2: default; 3: dense). Lower levels
 * sample fewer offsets, never drop a kind of check. */
int mc_test_level(void);
/* Path of the built mconv program. */
const char *mc_test_mconv(void);
/* A fresh temporary directory for this test (removed at exit unless
 * $MCONV_TEST_KEEP_TMPDIR is set). */
const char *mc_test_tmpdir(void);
/* Run a shell command, capturing stdout+stderr into *out (malloc'd, may be
 * NULL). Returns the exit status (or 128+signal). */
int mc_test_run(char **out, const char *fmt, ...);
/* Read a whole small file (malloc'd); NULL on error. */
unsigned char *mc_test_read_file(const char *path, size_t *len);
int mc_test_write_file(const char *path, const void *data, size_t len);
/* Read n bytes at off (malloc'd, n may be 0); NULL on error or short file. */
unsigned char *mc_test_read_range(const char *path, uint64_t off, uint64_t n);
/* Parse a whole JSON file; NULL when unreadable or not JSON. */
struct cJSON *mc_test_read_json(const char *path);
/* Little-endian u64 at p. */
uint64_t mc_test_le64(const unsigned char *p);
/* Print "N passed, N failed[, N skipped]" and return the exit code:
 * 1 on any failure, 77 when nothing ran because everything was skipped,
 * else 0. */
int mc_test_finish(const char *name);

#endif
