/* The quantization error a conversion records, checked on corpus models:
 * every "qerr" record of the .flash manifest equals an independent
 * computation (the test reads the source rows itself, reads the stored
 * weight/scales/biases back from the written file with the public reader and
 * dequantizes them with its own code); lossless repacks and same-dtype float
 * copies report exact; the summary agrees with the records; the measurement
 * is the same bits for 1 and 3 threads (and the plain C loop); the mlx folder's quant_report.json
 * carries the same records; --no-qerr (no_qerr) leaves them out. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mc_convert.h"
#include "mc_export.h"
#include "mc_flash_write.h"
#include "mc_float.h"
#include "mc_plan.h"
#include "mc_qerr.h"
#include "mc_qreport.h"
#include "mc_test.h"
#include "mc_types.h"
#include "mconv/flash.h"

typedef struct fig { long double err, ref; double max; uint64_t n; } fig;

static unsigned code_at(const unsigned char *row, uint64_t i, int bits)
{
    unsigned v = 0;
    for (int b = 0; b < bits; b++) {
        uint64_t bit = i * (uint64_t)bits + (uint64_t)b;
        v |= ((row[bit / 8] >> (bit % 8)) & 1u) << b;
    }
    return v;
}

static float elem(const unsigned char *p, uint64_t i, const char *dtype)
{
    if (!strcmp(dtype, "F32")) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
    if (!strcmp(dtype, "BF16")) return mc_f32_from_bits((uint32_t)h << 16);
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (float)((h >> 15) ? -v : v);
}

static void add(fig *f, float y, float x)
{
    long double d = (long double)y - (long double)x;
    if (!isfinite((double)d)) return;
    f->err += d * d;
    f->ref += (long double)x * x;
    if (fabsl(d) > f->max) f->max = (double)fabsl(d);
    f->n++;
}

/* Read tensor name (expert e) from the file: malloc'd bytes, its dtype. */
static unsigned char *read_t(mc_flash_reader *r, const char *name, uint32_t e, const char **dtype)
{
    const mc_flash_reader_tensor *t = mc_flash_reader_find(r, name);
    if (!t) return NULL;
    unsigned char *buf = mc_flash_reader_alloc((size_t)mc_flash_reader_tensor_read_size(t));
    mc_error err = { MC_OK, "" };
    if (!buf || mc_flash_reader_read_tensor(r, t, e, buf, &err)) {
        mc_flash_reader_free(buf);
        return NULL;
    }
    *dtype = t->dtype;
    return buf;
}

static char *swap(const char *name, const char *suffix)
{
    size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 7, ".weight")) return NULL;
    char *s = malloc(n + 16);
    memcpy(s, name, n - 7);
    strcpy(s + n - 7, suffix);
    return s;
}

/* The independent figures of plan item it. */
static int independent(const mc_model *m, const mc_pitem *it, mc_flash_reader *r, fig *f)
{
    memset(f, 0, sizeof *f);
    uint64_t per = it->nrows / it->n_experts, nc = it->ncols;
    float *x = malloc(per * nc * sizeof *x);
    mc_error err = { MC_OK, "" };
    char *sn = swap(it->out[0].name, ".scales"), *bn = swap(it->out[0].name, ".biases");
    int ok = x != NULL;
    for (uint32_t e = 0; ok && e < it->n_experts; e++) {
        if (mc_model_read_f32(m, it->mt, (uint64_t)e * per, per, x, &err)) {
            fprintf(stderr, "%s: %s\n", it->mt->name, err.msg);
            ok = 0;
            break;
        }
        const char *dt = NULL, *st = NULL, *bt = NULL;
        unsigned char *w = read_t(r, it->out[0].name, e, &dt);
        if (!w) {
            ok = 0;
            break;
        }
        if (it->kind == MC_PK_FLOAT) {
            for (uint64_t i = 0; i < per * nc; i++) add(f, elem(w, i, dt), x[i]);
        } else if (it->kind == MC_PK_AFFINE || it->kind == MC_PK_REPACK) {
            unsigned char *s = sn ? read_t(r, sn, e, &st) : NULL, *b = bn ? read_t(r, bn, e, &bt) : NULL;
            if (!s || !b) ok = 0;
            uint64_t rowb = nc * (uint64_t)it->bits / 8, ng = nc / (uint64_t)it->group_size;
            for (uint64_t row = 0; ok && row < per; row++)
                for (uint64_t i = 0; i < nc; i++) {
                    uint64_t g = row * ng + i / (uint64_t)it->group_size;
                    /* y = q * scale + bias rounded once (C's fmaf) */
                    add(f, fmaf((float)code_at(w + row * rowb, i, it->bits), elem(s, g, st), elem(b, g, bt)),
                        x[row * nc + i]);
                }
            mc_flash_reader_free(s);
            mc_flash_reader_free(b);
        }
        mc_flash_reader_free(w);
    }
    free(x);
    free(sn);
    free(bn);
    return ok;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int close_to(long double a, long double b, long double tol)
{
    return fabsl(a - b) <= tol * (fabsl(b) > 1e-300L ? fabsl(b) : 1e-300L);
}

typedef struct tcase {
    const char *file;
    int no_quant, lossless, dtype; /* dtype -1: the source's */
    int expect_exact;              /* every record exact */
} tcase;

static void run_case(const tcase *c)
{
    const char *path = mc_test_corpus_file(c->file);
    if (!path) return;
    mc_error err = { MC_OK, "" };
    mc_convert_opts co = { 0, 1 };
    mc_model *m = NULL;
    mc_plan *p = NULL;
    mc_flash_layout *L = NULL;
    mc_plan_opts po;
    mc_plan_opts_default(&po);
    po.no_quant = c->no_quant;
    po.lossless = c->lossless;
    po.dtype = c->dtype;
    char out1[512], out3[512], outd[512];
    snprintf(out1, sizeof out1, "%s/t1.flash", mc_test_tmpdir());
    snprintf(out3, sizeof out3, "%s/t3.flash", mc_test_tmpdir());
    snprintf(outd, sizeof outd, "%s/mlx", mc_test_tmpdir());
    if (mc_convert_open(path, &co, &m, &err) || mc_plan_build(m, &po, &p, &err) || mc_flash_layout_build(m, p, &L, &err)) {
        CHECKF(0, "%s: %s", c->file, err.msg);
        goto done;
    }
    mc_qerr *q1 = calloc(p->n_items, sizeof *q1), *q3 = calloc(p->n_items, sizeof *q3);
    mc_flash_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.force = 1;
    wo.ops = mc_source_model_ops();
    wo.threads = 1;
    wo.qerr_out = q1;
    CHECK(mc_flash_write(m, L, out1, &wo, &err) == 0);
    wo.threads = 3;
    wo.chunk_bytes = 4096; /* other chunks too */
    wo.qerr_out = q3;
    mc_qerr_set_scalar(1); /* and the reference loop */
    CHECK(mc_flash_write(m, L, out3, &wo, &err) == 0);
    mc_qerr_set_scalar(0);
    /* the same bits for any thread count, chunking and loop */
    for (size_t i = 0; i < p->n_items; i++) {
        mc_qerr_stats a, b;
        mc_qerr_stats_get(&q1[i], &a);
        mc_qerr_stats_get(&q3[i], &b);
        CHECKF(memcmp(&a, &b, sizeof a) == 0, "%s: %s: 1 vs 3 threads differ", c->file, p->items[i].mt->name);
    }
    size_t len1 = 0, len3 = 0;
    unsigned char *b1 = mc_test_read_file(out1, &len1), *b3 = mc_test_read_file(out3, &len3);
    CHECKF(b1 && b3 && len1 == len3 && !memcmp(b1, b3, len1), "%s: files differ for 1 and 3 threads", c->file);
    free(b1);
    free(b3);

    mc_flash_reader *r = NULL;
    mc_flash_reader_opts ro;
    mc_flash_reader_opts_init(&ro);
    ro.io = MC_FLASH_IO_BUFFERED;
    CHECK(mc_flash_reader_open(out1, &ro, &r, &err) == 0);
    size_t ml = 0;
    const char *mt = r ? mc_flash_reader_manifest_json(r, &ml) : NULL;
    cJSON *man = mt ? cJSON_ParseWithLength(mt, ml) : NULL;
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(man, "qerr"), *sum = cJSON_GetObjectItemCaseSensitive(man, "qerr_summary");
    CHECKF(cJSON_IsArray(recs) && (size_t)cJSON_GetArraySize(recs) == p->n_items, "%s: qerr records", c->file);
    CHECK(cJSON_IsObject(sum));
    long double kerr[MC_QK_COUNT] = { 0 }, kref[MC_QK_COUNT] = { 0 };
    double kmax[MC_QK_COUNT] = { 0 }, worst = -1;
    size_t kn[MC_QK_COUNT] = { 0 }, checked = 0, n_exact = 0;
    for (size_t i = 0; r && cJSON_IsArray(recs) && i < p->n_items; i++) {
        const mc_pitem *it = &p->items[i];
        const cJSON *rec = cJSON_GetArrayItem(recs, (int)i);
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(rec, "name");
        CHECKF(cJSON_IsString(nm) && !strcmp(nm->valuestring, it->out[0].name), "%s: record %zu", c->file, i);
        mc_qerr_stats s;
        mc_qerr_stats_get(&q1[i], &s);
        int exact = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "exact"));
        /* the manifest holds what the writer measured */
        CHECK(jnum(rec, "sum_sq_err") == s.sum_sq_err && jnum(rec, "sum_sq_ref") == s.sum_sq_ref &&
              jnum(rec, "max_abs") == s.max_abs && exact == s.exact);
        if (c->expect_exact) CHECKF(exact, "%s: %s not exact", c->file, it->out[0].name);
        n_exact += (size_t)exact;
        int k = mc_qreport_kind(it->mt);
        kerr[k] += (long double)s.sum_sq_err;
        kref[k] += (long double)s.sum_sq_ref;
        if (s.max_abs > kmax[k]) kmax[k] = s.max_abs;
        kn[k]++;
        if (!exact && s.defined && s.rel_rms > worst) worst = s.rel_rms;
        if (it->kind == MC_PK_RAW) {
            CHECK(exact);
            continue;
        }
        fig f;
        if (!independent(m, it, r, &f)) {
            CHECKF(0, "%s: %s: independent computation failed", c->file, it->out[0].name);
            continue;
        }
        checked++;
        CHECKF(close_to((long double)s.sum_sq_err, f.err, 4e-6L), "%s: %s: err %.17g vs %.17Lg", c->file,
               it->out[0].name, s.sum_sq_err, f.err);
        CHECKF(close_to((long double)s.sum_sq_ref, f.ref, 4e-6L), "%s: %s: ref %.17g vs %.17Lg", c->file,
               it->out[0].name, s.sum_sq_ref, f.ref);
        CHECKF(fabs(s.max_abs - f.max) <= f.max * 1.2e-7, "%s: %s: max %.17g vs %.17g", c->file, it->out[0].name,
               s.max_abs, f.max);
        CHECK_EQ_U64(s.count, f.n);
        CHECKF(exact == (f.err == 0), "%s: %s: exact %d, independent err %.17Lg", c->file, it->out[0].name, exact, f.err);
        if (s.defined)
            CHECKF(close_to((long double)jnum(rec, "rel_rms"), sqrtl(f.err / f.ref), 4e-6L), "%s: %s: rel_rms",
                   c->file, it->out[0].name);
    }
    CHECKF(checked > 0, "%s: nothing checked", c->file);
    /* the summary agrees with the records */
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(sum, "kinds");
    for (int k = 0; k < MC_QK_COUNT; k++) {
        const cJSON *ko = cJSON_GetObjectItemCaseSensitive(kinds, mc_qreport_kind_name(k));
        CHECKF((ko != NULL) == (kn[k] > 0), "%s: kind %s", c->file, mc_qreport_kind_name(k));
        if (!ko) continue;
        CHECK(jnum(ko, "tensors") == (double)kn[k]);
        CHECKF(close_to((long double)jnum(ko, "sum_sq_err"), kerr[k], 1e-12L), "%s: %s err", c->file,
               mc_qreport_kind_name(k));
        CHECK(close_to((long double)jnum(ko, "sum_sq_ref"), kref[k], 1e-12L));
        CHECK(jnum(ko, "max_abs") == kmax[k]);
    }
    const cJSON *tot = cJSON_GetObjectItemCaseSensitive(sum, "total");
    CHECK(jnum(tot, "tensors") == (double)p->n_items && jnum(tot, "exact_tensors") == (double)n_exact);
    const cJSON *wl = cJSON_GetObjectItemCaseSensitive(sum, "worst");
    if (worst >= 0) CHECK(cJSON_GetArraySize(wl) > 0 && jnum(cJSON_GetArrayItem(wl, 0), "rel_rms") == worst);
    else CHECK(cJSON_GetArraySize(wl) == 0);
    double prev = INFINITY;
    const cJSON *we;
    cJSON_ArrayForEach(we, wl) {
        CHECK(jnum(we, "rel_rms") <= prev);
        prev = jnum(we, "rel_rms");
    }

    /* the mlx folder: the same records in quant_report.json */
    mc_export *X = NULL;
    wo.qerr_out = NULL;
    if (mc_export_build(m, p, MC_EXPORT_MLX, 0, &X, &err) == 0 && mc_export_write(m, X, outd, &wo, &err) == 0) {
        char rp[600];
        snprintf(rp, sizeof rp, "%s/quant_report.json", outd);
        size_t rl = 0;
        unsigned char *rt = mc_test_read_file(rp, &rl);
        cJSON *rep = rt ? cJSON_ParseWithLength((const char *)rt, rl) : NULL;
        CHECKF(rep && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(rep, "qerr"), recs, 1) &&
                   cJSON_Compare(cJSON_GetObjectItemCaseSensitive(rep, "qerr_summary"), sum, 1),
               "%s: quant_report.json differs from the manifest", c->file);
        cJSON_Delete(rep);
        free(rt);
    } else {
        CHECKF(0, "%s: mlx export: %s", c->file, err.msg);
    }
    mc_export_free(X);
    /* no_qerr: no members, no report */
    wo.no_qerr = 1;
    wo.threads = 2;
    CHECK(mc_flash_write(m, L, out3, &wo, &err) == 0);
    mc_flash_reader *r3 = NULL;
    if (mc_flash_reader_open(out3, &ro, &r3, &err) == 0) {
        size_t l3 = 0;
        const char *t3 = mc_flash_reader_manifest_json(r3, &l3);
        cJSON *m3 = cJSON_ParseWithLength(t3, l3);
        CHECK(m3 && !cJSON_GetObjectItemCaseSensitive(m3, "qerr") && !cJSON_GetObjectItemCaseSensitive(m3, "qerr_summary"));
        cJSON_Delete(m3);
        mc_flash_reader_close(r3);
    }
    cJSON_Delete(man);
    mc_flash_reader_close(r);
    free(q1);
    free(q3);
done:
    mc_flash_layout_free(L);
    mc_plan_free(p);
    if (m) mc_convert_close(m);
}

int main(void)
{
    static const tcase cases[] = {
        { "models/llama/gguf/llama-Q4_K_M.gguf", 0, 0, -1, 0 },   /* Q4_K + Q6_K requantized to 4 bits */
        { "models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf", 0, 0, -1, 0 }, /* experts */
        { "models/llama/gguf/llama-q8_0.gguf", 0, 1, -1, 1 },     /* lossless repack: exact */
        { "models/llama/gguf/llama-bf16.gguf", 1, 0, MC_T_BF16, 1 }, /* bf16 kept bf16: exact */
        { "models/llama/gguf/llama-f32.gguf", 1, 0, MC_T_F16, 0 },   /* f32 to f16: rounding */
        { "models/llama/gguf/llama-bf16.gguf", 0, 0, MC_T_BF16, 0 }, /* bf16 scales */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    return mc_test_finish("test_qerr_corpus");
}
