/* mac-code folders as the mac-code engines read them.
 *
 * For every corpus model of a family the engines build (qwen3, qwen3_moe,
 * qwen3_5_moe under models/), from hf/ (and hf-sharded/) and from every
 * GGUF variant, and for the held-out architectures qwen3_5 (dense) and
 * qwen3_next from fixtures (testdata/maccode/, written here as an HF
 * checkpoint and as its GGUF twin by tests/support/mc_test_qwen35.c):
 *  - `mconv IN OUT --layout mac-code` (the family's engines by default, and
 *    the single-engine selections that change the folder: one FFN form, one
 *    expert naming, moe_agent_30b.py's 4-bit routers);
 *  - `mconv IN REF --layout mlx` with the same effective options;
 *  - tests/tools/maccode_engines.py reads OUT exactly as each engine does
 *    (their readers re-implemented in Python from their source) and checks
 *    every tensor it reads against REF bit for bit at the dtype it decodes,
 *    its ModelArgs against mlx-lm's, its quantization predicate against the
 *    bits stored;
 *  - `mconv verify OUT` finds it sound; `mconv inspect OUT` names exactly
 *    the engines written for (those that load their tokenizer from the
 *    folder only where the source had one);
 *  - what must be refused is (qwen3_next with norm_topk_prob true).
 * Disk use: larger fixtures (qwen3 dense, qwen3_5 dense, qwen3_next, qwen3_5_moe), the
 * allocated blocks of the folder counted du-style (st_blocks, each inode
 * once; qwen3_5_moe with both expert namings) against the weights' size (the tensor bytes of the same conversion,
 * model.safetensors.index.json's total_size): within 1% for every
 * one-form folder; the qwen3 dense default (ffn_aligned/ and ffn/) within
 * 1% where the file system clones, else within 1% of weights + FFN bytes
 * (reported as a skip of the clone claim). */
#include "mc_test.h"
#include "mc_test_qwen35.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#define MC_HAVE_FIEMAP 1
#endif

#include "mc_convert.h"

static int g_python, g_runs, g_engine_checks;
static unsigned long long g_tensors; /* tensor readings the engines' readers compared */
static const char *const ROUTER4 = " --bits-for '*.mlp.gate=4' --bits-for '*.mlp.shared_expert_gate=4'";

/* One conversion checked through the engines' readers. sel: --engines or
 * "" (the defaults); ref_opts: the mlx reference's options (mac-code's
 * effective ones); forced: NULL, or written with --force-layout and the
 * engines' readers must fail on exactly this (every tensor still equal). */
static void check_one(const char *src, const char *label, const char *sel, const char *ref_opts, const char *forced)
{
    char mc[1024], mx[1024], *log = NULL;
    snprintf(mc, sizeof mc, "%s/mc", mc_test_tmpdir());
    snprintf(mx, sizeof mx, "%s/mx", mc_test_tmpdir());
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --layout mac-code --force %s%s%s", mc_test_mconv(), src, mc,
                         *sel ? "--engines " : "", sel, forced ? " --force-layout" : "");
    CHECKF(rc == 0, "%s: mac-code %s: exit %d: %s", label, sel, rc, log ? log : "");
    CHECKF(!forced == (!log || !strstr(log, "warning: --force-layout")), "%s: warnings: %s", label, log);
    free(log);
    if (rc) return;
    rc = mc_test_run(&log, "'%s' '%s' '%s' --layout mlx --force -q %s", mc_test_mconv(), src, mx, ref_opts);
    CHECKF(rc == 0, "%s: mlx: exit %d: %s", label, rc, log ? log : "");
    free(log);
    if (rc) return;
    g_runs++;
    if (g_python) {
        rc = mc_test_run(&log, "python3 '%s/tests/tools/maccode_engines.py' '%s' '%s'", MCONV_SOURCE_DIR, mc, mx);
        if (forced) { /* every FAIL line names the expected reason */
            int n = 0, other = 0;
            for (const char *p = log; p && (p = strstr(p, "FAIL: ")); p++) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p) : strlen(p);
                n++;
                char line[1024];
                snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
                other += !strstr(line, forced);
            }
            CHECKF(rc == 1 && n > 0 && !other, "%s: the engines' readers should fail on %s only: %s", label, forced,
                   log ? log : "");
        } else {
            CHECKF(rc == 0, "%s %s: the engines' readers: %s", label, sel, log ? log : "");
        }
        for (const char *p = log; p && (p = strstr(p, ": ")); p++) {
            unsigned a = 0, b = 0, c = 0;
            if (sscanf(p, ": %u pinned, %u ffn, %u expert tensors equal", &a, &b, &c) == 3) {
                g_engine_checks++;
                g_tensors += a + b + c;
            }
        }
        if (log) printf("%s%s%s:\n%s", label, *sel ? " --engines " : "", sel, log);
        free(log);
    }
    rc = mc_test_run(&log, "'%s' verify '%s'", mc_test_mconv(), mc);
    CHECKF(rc == 0 && log && strstr(log, ": sound:"), "%s: verify: exit %d: %s", label, rc, log ? log : "");
    free(log);
    /* inspect names the engines written for (streaming.engines) */
    char p[1100];
    snprintf(p, sizeof p, "%s/config.json", mc);
    cJSON *cfg = mc_test_read_json(p);
    const cJSON *eng = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "streaming"), "engines");
    struct stat st;
    snprintf(p, sizeof p, "%s/tokenizer.json", mc);
    int tok = stat(p, &st) == 0;
    rc = mc_test_run(&log, "'%s' inspect '%s'", mc_test_mconv(), mc);
    const char *line = log ? strstr(log, "\nengines:") : NULL;
    CHECKF(rc == 0 && line, "%s: inspect: %s", label, log ? log : "");
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, eng)
    {
        int tok_dir = strstr(e->valuestring, "moe_agent_macbook") || strstr(e->valuestring, "engine_30b") ||
                      strstr(e->valuestring, "moe_agent_30b");
        char *eol = line ? strchr(line + 1, '\n') : NULL;
        int listed = 0;
        if (line && eol) {
            *eol = 0;
            listed = strstr(line, e->valuestring) != NULL;
            *eol = '\n';
        }
        CHECKF(listed == (!forced && (tok || !tok_dir)), "%s: inspect %s %s", label, listed ? "lists" : "does not list",
               e->valuestring);
        n++;
    }
    CHECKF(n > 0, "%s: config.json names no engines", label);
    free(log);
    cJSON_Delete(cfg);
    /* the tokenizer files where the source had them */
    snprintf(p, sizeof p, "%s/tokenizer.json", mx);
    CHECKF(stat(p, &st) != 0 || tok, "%s: the mlx folder has a tokenizer, the mac-code folder none", label);
}

/* ---- corpus ---- */

typedef struct fam {
    const char *dir, *model_type;
} fam;

static void corpus_model(const char *path, int gguf, void *ctx)
{
    const fam *f = ctx;
    char label[512];
    (void)gguf;
    const char *base = strrchr(path, '/');
    snprintf(label, sizeof label, "%s %s", f->dir, base ? base + 1 : path);
    if (!strcmp(f->model_type, "qwen3")) {
        check_one(path, label, "", "--dtype f16", NULL);
        check_one(path, label, "flash_stream_v2", "--dtype f16", NULL); /* ffn_aligned/ only */
        check_one(path, label, "flash_stream", "--dtype f16", NULL);    /* ffn/ only, packed */
    } else if (!strcmp(f->model_type, "qwen3_moe")) {
        check_one(path, label, "", "--dtype f16", NULL);
        char o[256];
        snprintf(o, sizeof o, "--dtype f16%s", ROUTER4);
        check_one(path, label, "moe_agent_30b", o, NULL); /* its own predicate: 4-bit routers */
    } else {
        char o[256];
        snprintf(o, sizeof o, "--dtype f16%s", ROUTER4);
        check_one(path, label, "", o, NULL);
        check_one(path, label, "cli-agent", o, NULL);       /* switch_mlp.* names only */
        check_one(path, label, "flash-streaming", o, NULL); /* mlp.switch_mlp.* names only */
    }
}

static void test_corpus(void)
{
    static const fam fams[] = { { "qwen3", "qwen3" }, { "qwen3_moe", "qwen3_moe" }, { "qwen3_5_moe", "qwen3_5_moe" } };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s", fams[i].dir);
        const char *d = mc_test_corpus_file(rel);
        if (!d) continue;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", d);
        /* every GGUF, hf/ and hf-sharded/ */
        char sub[1100];
        snprintf(sub, sizeof sub, "%s/gguf", dir);
        DIR *dh = opendir(sub);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        while (dh && (de = readdir(dh)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l > 5 && !strcmp(de->d_name + l - 5, ".gguf")) {
                char **nn = realloc(names, (n + 1) * sizeof *nn);
                if (!nn) break;
                names = nn;
                names[n] = malloc(strlen(sub) + l + 2);
                if (names[n]) sprintf(names[n++], "%s/%s", sub, de->d_name);
            }
        }
        if (dh) closedir(dh);
        for (size_t k = 0; k < n; k++) {
            corpus_model(names[k], 1, (void *)&fams[i]);
            free(names[k]);
        }
        free(names);
        static const char *const hfs[] = { "hf", "hf-sharded" };
        for (size_t k = 0; k < 2; k++) {
            snprintf(sub, sizeof sub, "%s/%s", dir, hfs[k]);
            struct stat st;
            if (!stat(sub, &st) && S_ISDIR(st.st_mode)) corpus_model(sub, 0, (void *)&fams[i]);
        }
    }
}

/* ---- fixtures ---- */

/* Write the HF checkpoint and the GGUF of cfg under the temporary folder:
 * dir "<name>-hf", file "<name>.gguf". 0 when written. */
static int write_fixture(const cJSON *cfg, const char *name, char *hf, size_t hfcap, char *gg, size_t ggcap, int gguf)
{
    qcfg q;
    flist h = { 0 }, g = { 0 };
    if (qcfg_read(cfg, &q)) return 1;
    q.mtp = !q.next;
    int bad = make_hf(&q, &h) || (gguf && hf_to_gguf(&q, &h, &g, 0));
    snprintf(hf, hfcap, "%s/%s-hf", mc_test_tmpdir(), name);
    snprintf(gg, ggcap, "%s/%s.gguf", mc_test_tmpdir(), name);
    char p[1200];
    char *js = cJSON_Print(cfg);
    bad |= !js || mc_test_run(NULL, "mkdir -p '%s'", hf) != 0;
    snprintf(p, sizeof p, "%s/config.json", hf);
    bad |= bad || mc_test_write_file(p, js, strlen(js)) != 0;
    snprintf(p, sizeof p, "%s/model.safetensors", hf);
    bad |= bad || write_st(&h, p) != 0;
    if (gguf) bad |= bad || write_gguf(&g, gg, q_meta, &q) != 0;
    free(js);
    ffree(&h);
    ffree(&g);
    return bad;
}

static cJSON *fixture_config(const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/testdata/maccode/%s.json", MCONV_SOURCE_DIR, name);
    cJSON *c = mc_test_read_json(p);
    CHECKF(c != NULL, "cannot read %s", p);
    return c;
}

/* What must be refused: one line naming the reason, exit 1, no OUT. */
static void refused(const char *src, const char *label, const char *want1, const char *want2)
{
    char out[1100], *log = NULL;
    snprintf(out, sizeof out, "%s/refused", mc_test_tmpdir());
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --layout mac-code", mc_test_mconv(), src, out);
    size_t lines = 0;
    for (const char *p = log; p && *p; p++) lines += *p == '\n';
    CHECKF(rc == 1 && lines == 1 && strstr(log, want1) && strstr(log, want2), "%s: exit %d: %s", label, rc,
           log ? log : "");
    struct stat st;
    CHECKF(stat(out, &st) != 0, "%s: %s was written", label, out);
    free(log);
}

static void test_fixtures(void)
{
    for (int next = 0; next < 2; next++) {
        const char *name = next ? "qwen3_next" : "qwen3_5";
        cJSON *cfg = fixture_config(name);
        char hf[1024], gg[1024], label[128];
        if (!cfg) continue;
        int bad = write_fixture(cfg, name, hf, sizeof hf, gg, sizeof gg, 1);
        CHECKF(!bad, "%s: cannot write the fixture", name);
        if (!bad) {
            snprintf(label, sizeof label, "%s fixture hf", name);
            check_one(hf, label, "", "--dtype f16", NULL);
            snprintf(label, sizeof label, "%s fixture gguf", name);
            if (!next) {
                check_one(gg, label, "", "--dtype f16", NULL);
            } else {
                /* a qwen3next GGUF does not say norm_topk_prob: mconv takes
                 * llama.cpp's (true), which engine_next.py leaves at
                 * mlx-lm's default false: refused; written anyway, every
                 * tensor is right and only that value differs */
                refused(gg, label, "norm_topk_prob", "engine_next.py");
                check_one(gg, label, "", "--dtype f16", "ModelArgs.norm_topk_prob");
            }
        }
        cJSON_Delete(cfg);
    }
    /* qwen3_next with norm_topk_prob true in its config.json, likewise */
    cJSON *cfg = fixture_config("qwen3_next");
    if (cfg) {
        char hf[1024], gg[1024];
        cJSON_ReplaceItemInObjectCaseSensitive(cfg, "norm_topk_prob", cJSON_CreateTrue());
        CHECK(write_fixture(cfg, "qwen3_next_topk", hf, sizeof hf, gg, sizeof gg, 0) == 0);
        refused(hf, "qwen3_next norm_topk_prob true", "norm_topk_prob", "engine_next.py");
        cJSON_Delete(cfg);
    }
}

/* ---- disk use ---- */

typedef struct ino_set {
    dev_t dev[4096];
    ino_t ino[4096];
    size_t n;
} ino_set;

/* du-style: st_blocks of every weight file under dir, each inode once. The
 * folder's text files (config, tokenizer, README.md, quant_report.json) are
 * not weights and do not scale with them: a tiny model's report alone is
 * more than 1% of its weights, so they are left out of the measure. */
static int is_text_file(const char *name)
{
    static const char *const ext[] = {".json", ".md", ".jinja", ".txt"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n >= k && !strcmp(name + n - k, ext[i])) return 1;
    }
    return 0;
}

/* Blocks shared between files (copy-on-write clones) count once: the
 * physical extents of every file (Linux FIEMAP), merged. st_blocks counts a
 * shared block in every file that holds it, so on a file system that clones
 * it overstates the folder. */
typedef struct extent { uint64_t at, len; } extent;
typedef struct ext_set {
    extent *e;
    size_t n, cap;
    uint64_t unmapped; /* bytes of files FIEMAP could not map (counted by st_blocks) */
    int mapped;        /* every file was mapped */
} ext_set;

static int ext_add(ext_set *x, uint64_t at, uint64_t len)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 256;
        extent *e = realloc(x->e, cap * sizeof *e);
        if (!e) return -1;
        x->e = e;
        x->cap = cap;
    }
    x->e[x->n].at = at;
    x->e[x->n++].len = len;
    return 0;
}

/* 0 when the file's extents were added, -1 when it cannot be mapped here. */
static int ext_file(ext_set *x, const char *path)
{
#ifdef MC_HAVE_FIEMAP
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    enum { N = 512 };
    struct fiemap *fm = calloc(1, sizeof *fm + N * sizeof(struct fiemap_extent));
    int rc = fm ? 0 : -1;
    uint64_t start = 0;
    for (int last = 0; !rc && !last;) {
        memset(fm, 0, sizeof *fm);
        fm->fm_start = start;
        fm->fm_length = ~0ull - start;
        fm->fm_flags = FIEMAP_FLAG_SYNC;
        fm->fm_extent_count = N;
        if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) { rc = -1; break; }
        if (fm->fm_mapped_extents == 0) break;
        for (uint32_t i = 0; !rc && i < fm->fm_mapped_extents; i++) {
            const struct fiemap_extent *e = &fm->fm_extents[i];
            if (e->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DATA_INLINE)) rc = -1;
            else rc = ext_add(x, e->fe_physical, e->fe_length);
            start = e->fe_logical + e->fe_length;
            if (e->fe_flags & FIEMAP_EXTENT_LAST) last = 1;
        }
    }
    free(fm);
    close(fd);
    return rc;
#else
    (void)x;
    (void)path;
    return -1;
#endif
}

static int ext_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* The union of the extents, in bytes. */
static uint64_t ext_union(ext_set *x)
{
    qsort(x->e, x->n, sizeof *x->e, ext_cmp);
    uint64_t total = 0, end = 0;
    for (size_t i = 0; i < x->n; i++) {
        uint64_t a = x->e[i].at, b = x->e[i].at + x->e[i].len;
        if (a < end) a = end;
        if (b > a) total += b - a;
        if (b > end) end = b;
    }
    return total;
}

/* du-style total of dir's weight files (above); with x, their extents too. */
static uint64_t du_ext(const char *dir, ino_set *s, ext_set *x)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[2048];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            total += du_ext(p, s, x);
        } else if (S_ISREG(st.st_mode) && !is_text_file(de->d_name)) {
            size_t k = 0;
            while (k < s->n && !(s->dev[k] == st.st_dev && s->ino[k] == st.st_ino)) k++;
            if (k < s->n || s->n == 4096) continue;
            s->dev[s->n] = st.st_dev;
            s->ino[s->n++] = st.st_ino;
            total += (uint64_t)st.st_blocks * 512u;
            if (x && ext_file(x, p) != 0) {
                x->mapped = 0;
                x->unmapped += (uint64_t)st.st_blocks * 512u;
            }
        }
    }
    if (d) closedir(d);
    return total;
}

/* The weights' size: every tensor of the same conversion once. */
static uint64_t weights_of(const char *src, const char *opts)
{
    char mx[1024], p[1100];
    snprintf(mx, sizeof mx, "%s/w", mc_test_tmpdir());
    if (mc_test_run(NULL, "'%s' '%s' '%s' --layout mlx --force -q %s", mc_test_mconv(), src, mx, opts)) return 0;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", mx);
    cJSON *idx = mc_test_read_json(p);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(idx, "metadata"), "total_size");
    uint64_t w = cJSON_IsNumber(t) ? (uint64_t)t->valuedouble : 0;
    cJSON_Delete(idx);
    return w;
}

/* Bytes of every FFN tensor (ffn_aligned/ headers' nbytes). */
/* The files in dir (not starting with a dot). */
static uint64_t count_files(const char *dir)
{
    uint64_t n = 0;
    DIR *dh = opendir(dir);
    struct dirent *de;
    while (dh && (de = readdir(dh)) != NULL) n += de->d_name[0] != '.';
    if (dh) closedir(dh);
    return n;
}

static uint64_t ffn_bytes(const char *mc)
{
    uint64_t total = 0;
    char d[1100];
    snprintf(d, sizeof d, "%s/ffn_aligned", mc);
    DIR *dh = opendir(d);
    struct dirent *de;
    while (dh && (de = readdir(dh)) != NULL) {
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        FILE *f = de->d_name[0] != '.' ? fopen(p, "rb") : NULL;
        char hdr[16384];
        size_t n = f ? fread(hdr, 1, sizeof hdr, f) : 0;
        if (f) fclose(f);
        cJSON *h = n ? cJSON_ParseWithLength(hdr, strnlen(hdr, n)) : NULL;
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(h, "tensors"))
            total += (uint64_t)cJSON_GetObjectItemCaseSensitive(t, "nbytes")->valuedouble;
        cJSON_Delete(h);
    }
    if (dh) closedir(dh);
    return total;
}

/* A qwen3 (dense) HF checkpoint. */
static int write_qwen3(const char *dir, uint64_t H, uint64_t I, uint64_t L, uint64_t V)
{
    flist l = { 0 };
    char n[256], p[1200];
    uint64_t nh = 4, nkv = 2, hd = H / 4;
    int bad = hf_rand(&l, "model.embed_tokens.weight", 2, (uint64_t[]){ V, H }, 0, 0.05) ||
              hf_rand(&l, "model.norm.weight", 1, (uint64_t[]){ H }, 1, 0.1) ||
              hf_rand(&l, "lm_head.weight", 2, (uint64_t[]){ V, H }, 0, 0.05);
    for (uint64_t k = 0; k < L && !bad; k++) {
#define T(name, nd, ...) (snprintf(n, sizeof n, "model.layers.%llu.%s", (unsigned long long)k, name), \
                          hf_rand(&l, n, nd, (uint64_t[]){ __VA_ARGS__ }, 0, 0.05))
        bad |= T("input_layernorm.weight", 1, H) || T("post_attention_layernorm.weight", 1, H) ||
               T("self_attn.q_proj.weight", 2, nh * hd, H) || T("self_attn.k_proj.weight", 2, nkv * hd, H) ||
               T("self_attn.v_proj.weight", 2, nkv * hd, H) || T("self_attn.o_proj.weight", 2, H, nh * hd) ||
               T("self_attn.q_norm.weight", 1, hd) || T("self_attn.k_norm.weight", 1, hd) ||
               T("mlp.gate_proj.weight", 2, I, H) || T("mlp.up_proj.weight", 2, I, H) ||
               T("mlp.down_proj.weight", 2, H, I);
#undef T
    }
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", \"hidden_size\": %llu, "
             "\"intermediate_size\": %llu, \"num_hidden_layers\": %llu, \"num_attention_heads\": %llu, "
             "\"num_key_value_heads\": %llu, \"head_dim\": %llu, \"rms_norm_eps\": 1e-06, \"vocab_size\": %llu, "
             "\"max_position_embeddings\": 4096, \"rope_theta\": 1000000.0, \"tie_word_embeddings\": false}",
             (unsigned long long)H, (unsigned long long)I, (unsigned long long)L, (unsigned long long)nh,
             (unsigned long long)nkv, (unsigned long long)hd, (unsigned long long)V);
    bad |= bad || mc_test_run(NULL, "mkdir -p '%s'", dir) != 0;
    snprintf(p, sizeof p, "%s/config.json", dir);
    bad |= bad || mc_test_write_file(p, cfg, strlen(cfg)) != 0;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    bad |= bad || write_st(&l, p) != 0;
    ffree(&l);
    return bad;
}

/* Convert src (sel: --engines or "") and measure. */
static void disk_case(const char *src, const char *label, const char *sel, int two_forms)
{
    char mc[1024], *log = NULL;
    snprintf(mc, sizeof mc, "%s/disk", mc_test_tmpdir());
    int rc = mc_test_run(&log, "'%s' '%s' '%s' --layout mac-code --force --threads 2 %s%s", mc_test_mconv(), src, mc,
                         *sel ? "--engines " : "", sel);
    CHECKF(rc == 0, "%s: exit %d: %s", label, rc, log ? log : "");
    int cloned = log && strstr(log, "copy-on-write clones");
    free(log);
    if (rc) return;
    uint64_t w = weights_of(src, "--dtype f16");
    ino_set *s = calloc(1, sizeof *s);
    ext_set x = {.mapped = 1};
    uint64_t d = s ? du_ext(mc, s, &x) : 0, blocks = d;
    free(s);
    /* where clones were made, shared blocks once (FIEMAP), when every file maps */
    int shared_known = cloned && x.mapped && x.n > 0;
    if (shared_known) d = ext_union(&x);
    free(x.e);
    uint64_t f = ffn_bytes(mc), allowed = w + w / 100;
    if (two_forms && cloned) {
        /* each ffn/ clone has its own first page (the safetensors header) */
        char fd[1100];
        snprintf(fd, sizeof fd, "%s/ffn", mc);
        allowed += 16384 * count_files(fd);
    }
    printf("disk %s%s%s: %llu bytes allocated, weights %llu (%.3f%%)%s\n", label, *sel ? " --engines " : "", sel,
           (unsigned long long)d, (unsigned long long)w, w ? 100.0 * ((double)d - (double)w) / (double)w : 0.0,
           two_forms ? (cloned ? ", ffn/ cloned" : ", ffn/ copied") : "");
    if (shared_known)
        printf("disk %s: %llu bytes by st_blocks (shared blocks counted in each file), %llu by extents\n", label,
               (unsigned long long)blocks, (unsigned long long)d);
    CHECKF(w > 0 && d > w / 2, "%s: weights %llu, disk %llu", label, (unsigned long long)w, (unsigned long long)d);
    if (cloned && !shared_known) {
        mc_test_skip("%s: ffn/ was cloned, but this system cannot tell shared blocks (no FIEMAP): st_blocks counts "
                     "them in each file (%llu bytes)", label, (unsigned long long)blocks);
    } else if (!two_forms || cloned) {
        CHECKF(d <= allowed, "%s%s%s: %llu bytes on disk, more than 1%% over the weights' %llu (+ a page per clone)", label,
               *sel ? " --engines " : "", sel, (unsigned long long)d, (unsigned long long)w);
    } else {
        /* no clones here: the FFN is held twice, and nothing more */
        CHECKF(f > 0 && d <= allowed + f + f / 100 && d >= w + f - f / 100,
               "%s: %llu bytes on disk, weights %llu + FFN copy %llu", label, (unsigned long long)d,
               (unsigned long long)w, (unsigned long long)f);
        mc_test_skip("%s: this file system cannot clone: the qwen3 dense folder holds its FFN twice (%llu bytes); "
                     "within 1%% of the weights only where clonefile/FICLONE work", label, (unsigned long long)f);
    }
}

static void test_disk(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/qwen3-big", mc_test_tmpdir());
    CHECK(write_qwen3(dir, 512, 1536, 4, 2048) == 0);
    disk_case(dir, "qwen3 dense (ffn_aligned/ + ffn/)", "", 1);
    disk_case(dir, "qwen3 dense", "flash_agent", 0);
    disk_case(dir, "qwen3 dense", "flash_stream", 0);
    static const char *const names[] = { "qwen3_5", "qwen3_next", "qwen3_5_moe" };
    for (size_t i = 0; i < 3; i++) {
        cJSON *cfg = fixture_config(i == 2 ? "qwen3_5" : names[i]);
        if (!cfg) continue;
        if (i == 2) { /* the qwen3_5 fixture with experts: Qwen3.5 MoE (both expert namings) */
            cJSON_ReplaceItemInObjectCaseSensitive(cfg, "model_type", cJSON_CreateString("qwen3_5_moe_text"));
            cJSON_AddNumberToObject(cfg, "num_experts", 8);
            cJSON_AddNumberToObject(cfg, "num_experts_per_tok", 2);
            cJSON_AddNumberToObject(cfg, "moe_intermediate_size", 64);
            cJSON_AddNumberToObject(cfg, "shared_expert_intermediate_size", 64);
        }
        /* 8x wider, more experts: tensors large against a file system block */
        static const char *const wide[] = { "hidden_size", "intermediate_size", "moe_intermediate_size",
                                            "shared_expert_intermediate_size", "vocab_size" };
        for (size_t k = 0; k < sizeof wide / sizeof wide[0]; k++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, wide[k]);
            if (cJSON_IsNumber(v)) cJSON_SetNumberValue(v, v->valuedouble * (k == 4 ? 32 : 8));
        }
        cJSON *ne = cJSON_GetObjectItemCaseSensitive(cfg, "num_experts");
        if (cJSON_IsNumber(ne)) cJSON_SetNumberValue(ne, 16);
        char hf[1024], gg[1024], name[64], label[96];
        snprintf(name, sizeof name, "%s-big", names[i]);
        CHECKF(write_fixture(cfg, name, hf, sizeof hf, gg, sizeof gg, 0) == 0, "%s: fixture", name);
        snprintf(label, sizeof label, "%s (8x wide)", names[i]);
        disk_case(hf, label, "", 0);
        cJSON_Delete(cfg);
    }
}

int main(void)
{
    g_python = mc_test_run(NULL, "python3 -c 'import json, struct' 2>/dev/null") == 0;
    if (!g_python) mc_test_skip("python3 absent: the engines' readers (tests/tools/maccode_engines.py) not run");
    test_corpus();
    test_fixtures();
    test_disk();
    printf("%d conversions, %d engine readings, %llu tensors read as the engines read them equal to --layout mlx\n",
           g_runs, g_engine_checks, g_tensors);
    if (g_runs) CHECKF(!g_python || g_engine_checks >= g_runs, "only %d engine readings", g_engine_checks);
    return mc_test_finish("test_maccode");
}
