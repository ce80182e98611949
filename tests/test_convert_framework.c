/* The conversion framework itself (convert/mc_convert_int.h), below the
 * architectures: every registered table is well formed (rule groups,
 * transform and builder ids, kinds its selectors can give, config keys),
 * the transform table (names, kinds, the rope row map against llama.cpp's
 * permutation, the value maps), the config-key engine (every source and
 * flag, key order, GGUF metadata from a corpus file) and the layer-kind
 * helpers (period, first index, list, pattern string and back). The
 * architectures' outputs are tested by test_convert*.c. */
#include "mc_test.h"
#include "mc_convert.h"
#include "mc_convert_int.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ registry */

static int has_tok(const char *s, const char *tok)
{
    return s && strstr(s, tok) != NULL;
}

static void check_rules(const mc_arch *a)
{
    unsigned can = 0; /* kinds the selectors can give */
    for (size_t k = 0; k < MC_MAX_KIND_SEL; k++) can |= a->kinds[k].present | a->kinds[k].absent;
    for (size_t i = 0; i < a->n_rules; i++) {
        const mc_rule *r = &a->rules[i];
        CHECKF(r->mlx && (r->gguf || r->hf || r->gx >= MC_X_BUILD || r->hx >= MC_X_BUILD), "%s rule %zu", a->name, i);
        if (!r->mlx) continue;
        /* alternatives are consecutive: a name never comes back later */
        int split = 0;
        for (size_t j = i + 2; j < a->n_rules; j++)
            split |= strcmp(a->rules[j].mlx, r->mlx) == 0 && strcmp(a->rules[j - 1].mlx, r->mlx) != 0;
        CHECKF(!split, "%s: %s split in two groups", a->name, r->mlx);
        const uint8_t ids[2] = {r->gx, r->hx};
        for (int s = 0; s < 2; s++) {
            if (ids[s] >= MC_X_BUILD) {
                size_t b = (size_t)(ids[s] - MC_X_BUILD);
                CHECKF(b < a->n_builders && a->builders[b], "%s: %s names builder %zu of %zu", a->name, r->mlx, b,
                       a->n_builders);
            } else {
                CHECKF(ids[s] < MC_X_RULES, "%s: %s names transform %u", a->name, r->mlx, ids[s]);
            }
        }
        CHECKF(r->role <= MC_ROLE_EXPERT, "%s: %s role %u", a->name, r->mlx, r->role);
        CHECKF(!(r->flags & MC_R_Q8) || (r->flags & MC_R_Q), "%s: %s 8 bits but not quantizable", a->name, r->mlx);
        unsigned need = MC_R_KINDS(r->flags);
        CHECKF((need & ~can) == 0 || a->layer_kinds, "%s: %s needs kinds %#x no selector gives", a->name, r->mlx,
               need);
        CHECKF(!need || has_tok(r->mlx, "{L}"), "%s: global %s has layer kinds", a->name, r->mlx);
    }
}

static void check_config(const mc_arch *a, const mc_cfg_key *k, size_t n, const char *which)
{
    for (size_t i = 0; i < n; i++) {
        CHECKF(k[i].key && k[i].src >= MC_CK_GGUF_UINT && k[i].src <= MC_CK_FN, "%s %s config %zu", a->name, which,
               i);
        if (k[i].src == MC_CK_FN) CHECKF(k[i].fn != NULL, "%s: %s has no builder", a->name, k[i].key);
        int wants_from = k[i].src <= MC_CK_GGUF_PER_HEAD || k[i].src == MC_CK_STR || k[i].src == MC_CK_HAS_TENSOR ||
                         k[i].src == MC_CK_JSON;
        if (wants_from) CHECKF(k[i].from != NULL, "%s: %s has no source name", a->name, k[i].key);
        if (k[i].src <= MC_CK_GGUF_PER_HEAD) CHECKF(strcmp(which, "gguf") == 0, "%s: GGUF key in HF table", a->name);
        if (k[i].src == MC_CK_MODEL) CHECKF(k[i].num >= MC_CV_HIDDEN && k[i].num <= MC_CV_VOCAB, "%s: %s", a->name,
                                            k[i].key);
    }
}

static void test_registry(void)
{
    CHECK(mc_arch_count >= 12);
    char want[1024] = "";
    for (size_t i = 0; i < mc_arch_count; i++) {
        const mc_arch *a = mc_arch_list[i];
        CHECKF(a->name && a->model_type && a->rules && a->n_rules, "table %zu", i);
        CHECKF(a->gguf_arch || a->hf_types, "%s: no way to find it", a->name);
        check_rules(a);
        check_config(a, a->gguf_config, a->n_gguf_config, "gguf");
        check_config(a, a->hf_config, a->n_hf_config, "hf");
        /* a table told apart by detect comes before the ones of its name */
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= strcmp(mc_arch_list[j]->name, a->name) == 0;
        for (size_t j = 0; j < i && a->gguf_arch; j++) {
            const mc_arch *b = mc_arch_list[j];
            if (b->gguf_arch && strcmp(b->gguf_arch, a->gguf_arch) == 0 && b->gguf_experts == a->gguf_experts)
                CHECKF(b->detect != NULL, "%s: %s before it takes every %s GGUF", a->name, b->name, a->gguf_arch);
        }
        if (!seen) {
            if (want[0]) strcat(want, ", ");
            strcat(want, a->name);
        }
    }
    CHECK_STR(mc_convert_supported_archs(), want);
    CHECK(strstr(mc_convert_supported_archs(), "deepseek2") != NULL);
}

/* ---------------------------------------------------------- transforms */

static void test_xforms(void)
{
    for (int i = 0; i < MC_X_COUNT; i++) {
        const mc_xform_def *x = &mc_xforms[i];
        CHECKF(x->name != NULL, "transform %d has no name", i);
        if (!x->name) continue;
        for (int j = 0; j < i; j++) CHECKF(strcmp(mc_xforms[j].name, x->name) != 0, "two transforms %s", x->name);
        if (x->kind == MC_XK_VALUES) CHECKF(x->values && !x->plan && !x->row, "%s", x->name);
        else CHECKF(!x->values && !x->computed, "%s: a value map outside the values kind", x->name);
        if (x->row) CHECKF(x->kind == MC_XK_ROWS && x->plan, "%s", x->name);
        if (i > MC_X_NONE && i < MC_X_RULES) CHECKF(x->plan || x->values, "rule transform %s does nothing", x->name);
        if (i >= MC_X_RULES) CHECKF(!x->plan && !x->values, "primitive %s", x->name);
    }
    CHECK(mc_xforms[MC_X_NONE].kind == MC_XK_NONE);
    CHECK(mc_xforms[MC_X_TRANSPOSE].kind == MC_XK_TRANSPOSE && mc_xforms[MC_X_COLS].kind == MC_XK_COLS &&
          mc_xforms[MC_X_FLAT].kind == MC_XK_RESHAPE && mc_xforms[MC_X_STACK].kind == MC_XK_ROWS);

    /* llama.cpp's LlamaModel.permute: GGUF row h*hd + 2i + j is HF row
     * h*hd + j*hd/2 + i; the row map gives, for each HF (output) row, the
     * GGUF (source) row, for both rope transforms. */
    enum { H = 3, HDIM = 8 };
    int xs[] = {MC_X_ROPE_Q, MC_X_ROPE_K, MC_X_SPLIT_Q_ROPE, MC_X_SPLIT_K_ROPE};
    for (size_t t = 0; t < sizeof xs / sizeof xs[0]; t++) {
        mc_part p;
        mc_recipe r;
        memset(&p, 0, sizeof p);
        memset(&r, 0, sizeof r);
        p.nrows = H * HDIM;
        r.rows_x = (uint8_t)xs[t];
        r.rows_arg = H;
        int seen[H * HDIM] = {0}, ok = 1;
        for (uint64_t h = 0; h < H; h++)
            for (uint64_t i = 0; i < HDIM / 2; i++)
                for (uint64_t j = 0; j < 2; j++) {
                    uint64_t hf = h * HDIM + j * HDIM / 2 + i, gg = h * HDIM + 2 * i + j;
                    uint64_t got = mc_xforms[xs[t]].row(&r, &p, hf);
                    ok &= got == gg;
                    if (got < H * HDIM) seen[got]++;
                }
        for (int k = 0; k < H * HDIM; k++) ok &= seen[k] == 1;
        CHECKF(ok, "%s row map", mc_xforms[xs[t]].name);
    }
    float v[3] = {1.5f, -2.0f, 0.0f};
    mc_xforms[MC_X_SUB1].values(v, 3);
    CHECK(v[0] == 0.5f && v[1] == -3.0f && v[2] == -1.0f);
    mc_xforms[MC_X_ADD1].values(v, 3);
    CHECK(v[0] == 1.5f && v[1] == -2.0f && v[2] == 0.0f);
    float a[2] = {-1.0f, (float)-exp(-2.5)};
    mc_xforms[MC_X_LOG_NEG].values(a, 2);
    CHECK(a[0] == 0.0f && fabsf(a[1] + 2.5f) < 1e-6f);
    CHECK(mc_xforms[MC_X_LOG_NEG].computed && !mc_xforms[MC_X_SUB1].computed);
}

/* ------------------------------------------------------- config engine */

typedef struct fake {
    mc_model m;
    mc_cv cv;
    mc_arch a;
    uint8_t kinds[4];
    mc_mtensor t;
} fake;

static void fake_init(fake *f, int n_experts)
{
    memset(f, 0, sizeof *f);
    f->a.name = "fake";
    f->a.model_type = "fake_type";
    f->m.input_path = "fake.gguf";
    f->m.n_layers = 4;
    f->m.n_experts = n_experts;
    f->m.n_experts_per_tok = n_experts ? 2 : 0;
    f->t.name = "model.layers.0.self_attn.q_proj.bias";
    f->m.tensors = &f->t;
    f->m.n_tensors = 1;
    f->cv.m = &f->m;
    f->cv.arch = &f->a;
    f->cv.hidden = 256;
    f->cv.n_head = 4;
    f->cv.n_head_kv = 2;
    f->cv.head_dim = 64;
    f->cv.kinds = f->kinds;
    f->kinds[0] = MC_K_ATTN | MC_K_DENSE;
    f->kinds[1] = MC_K_ATTN | MC_K_MOE;
    f->kinds[2] = MC_K_MIXER | MC_K_DENSE;
    f->kinds[3] = MC_K_MIXER | MC_K_MOE;
}

static int cfg_fn_calls;
static int cfg_fn(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)err;
    cfg_fn_calls++;
    cJSON_AddNumberToObject(cfg, k->key, (double)cv->m->n_layers * 10);
    return 0;
}

static int cfg_fn_fail(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    (void)cfg;
    return mc_error_set(err, MC_ERR_FORMAT, "%s: %s refused", cv->m->input_path, k->key);
}

static char *apply(fake *f, const char *start, const mc_cfg_key *keys, size_t n, int *rc)
{
    mc_error err;
    mc_error_clear(&err);
    cJSON *cfg = cJSON_Parse(start);
    *rc = mc_cfg_apply(&f->cv, cfg, keys, n, &err);
    char *s = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    return s;
}

static void test_config_engine(void)
{
    fake f;
    int rc;
    static const mc_cfg_key keys[] = {
        MC_CFG_MODEL_TYPE("model_type"),                  /* moves the existing key to the end */
        MC_CFG_MODEL("hidden_size", MC_CV_HIDDEN, 0),
        MC_CFG_MODEL("head_dim", MC_CV_HEAD_DIM, 0),
        MC_CFG_MODEL("num_experts", MC_CV_EXPERTS, MC_CK_IF_EXPERTS),
        MC_CFG_NUM("dense_only", 7, MC_CK_IF_DENSE),
        MC_CFG_NUM("kept", 1, MC_CK_IF_ABSENT),           /* present: untouched */
        MC_CFG_NUM("added", 2, MC_CK_IF_ABSENT),
        MC_CFG_BOOL("flag", 1, 0),
        MC_CFG_STR("act", "silu"),
        MC_CFG_HAS("has_bias", "model.layers.0.self_attn.q_proj.bias"),
        MC_CFG_HAS("has_other", "lm_head.weight"),
        MC_CFG_LAYERS_WITHOUT("dense_layers", MC_K_MOE),
        MC_CFG_LAYERS_WITHOUT("attn_layers", MC_K_MIXER),
        MC_CFG_JSON("theta", "rp.sliding.rope_theta", MC_CK_OPT),
        MC_CFG_JSON("missing", "rp.nothing", MC_CK_OPT),   /* omitted */
        MC_CFG_JSON("nulled", "rp.nothing", MC_CK_NULL),
        MC_CFG_JSON("defaulted", "rp.zero", MC_CK_POSITIVE), /* 0 is absent: the default 0 */
        MC_CFG_DELETE("drop"),
        MC_CFG_FN("built", cfg_fn),
    };
    fake_init(&f, 0);
    cfg_fn_calls = 0;
    char *s = apply(&f, "{\"model_type\":\"hf\",\"kept\":0,\"drop\":1,\"rp\":{\"sliding\":{\"rope_theta\":1e4},\"zero\":0}}",
                    keys, MC_COUNT(keys), &rc);
    CHECK(rc == 0 && cfg_fn_calls == 1);
    CHECK_STR(s, "{\"kept\":0,\"rp\":{\"sliding\":{\"rope_theta\":10000},\"zero\":0},\"model_type\":\"fake_type\","
                 "\"hidden_size\":256,\"head_dim\":64,\"dense_only\":7,\"added\":2,\"flag\":true,\"act\":\"silu\","
                 "\"has_bias\":true,\"has_other\":false,\"dense_layers\":[0,2],\"attn_layers\":[0,1],"
                 "\"theta\":10000,\"nulled\":null,\"defaulted\":0,\"built\":40}");
    free(s);
    fake_init(&f, 4);
    s = apply(&f, "{}", keys + 3, 2, &rc);
    CHECK(rc == 0);
    CHECK_STR(s, "{\"num_experts\":4}");
    free(s);
    static const mc_cfg_key failing[] = {MC_CFG_NUM("a", 1, 0), MC_CFG_FN("b", cfg_fn_fail), MC_CFG_NUM("c", 1, 0)};
    s = apply(&f, "{}", failing, MC_COUNT(failing), &rc);
    CHECK(rc == MC_ERR_FORMAT);
    CHECK_STR(s, "{\"a\":1}");
    free(s);

    /* GGUF metadata: "{arch}.<key>" */
    const char *path = mc_test_corpus_file("models/llama/gguf/llama-bf16.gguf");
    if (!path) return;
    mc_error err;
    mc_error_clear(&err);
    fake_init(&f, 0);
    char arch[] = "llama";
    f.m.arch = arch;
    if (mc_gguf_open(path, &f.m.gguf, &err)) {
        CHECKF(0, "open %s: %s", path, err.msg);
        return;
    }
    static const mc_cfg_key gk[] = {
        MC_CFG_U("layers", "block_count", 0, 0),
        MC_CFG_U("absent_default", "no_such_key", 0, 5),
        MC_CFG_U("absent_opt", "no_such_key", MC_CK_OPT, 5),
        MC_CFG_U("absent_null", "no_such_key", MC_CK_NULL, 5),
        MC_CFG_F("theta", "rope.freq_base", 0, 1),
        MC_CFG_F("eps", "attention.layer_norm_rms_epsilon", 0, 1e-5), /* f32 9.99999997e-07: 1e-06 */
        MC_CFG_F("eps_default", "no_such_key", 0, 1e-5),
        MC_CFG_GBOOL("norm", "expert_weights_norm", 1),
        MC_CFG_PER_HEAD("prf", "rope.dimension_count", 0, 0.25),   /* 64 / 64 */
        MC_CFG_PER_HEAD("prf_default", "no_such_key", MC_CK_POSITIVE, 0.25),
    };
    s = apply(&f, "{}", gk, MC_COUNT(gk), &rc);
    CHECK(rc == 0);
    CHECK_STR(s, "{\"layers\":2,\"absent_default\":5,\"absent_null\":null,\"theta\":10000,\"eps\":1e-06,"
                 "\"eps_default\":1e-05,\"norm\":true,\"prf\":1,\"prf_default\":0.25}");
    free(s);
    mc_gguf_close(f.m.gguf);
}

/* ------------------------------------------------------- layer kinds */

static void test_kinds(void)
{
    fake f;
    mc_error err;
    char buf[8];
    mc_error_clear(&err);
    fake_init(&f, 0);
    memset(f.kinds, 0, sizeof f.kinds);
    mc_cv_kinds_period(&f.cv, 2, MC_K_MOE, MC_K_DENSE);
    CHECK(f.kinds[0] == MC_K_DENSE && f.kinds[1] == MC_K_MOE && f.kinds[2] == MC_K_DENSE && f.kinds[3] == MC_K_MOE);
    memset(f.kinds, 0, sizeof f.kinds);
    mc_cv_kinds_period(&f.cv, 0, MC_K_MOE, MC_K_DENSE);
    CHECK(f.kinds[0] == MC_K_DENSE && f.kinds[3] == MC_K_DENSE);
    memset(f.kinds, 0, sizeof f.kinds);
    mc_cv_kinds_from(&f.cv, 1, MC_K_MOE, MC_K_DENSE);
    CHECK(f.kinds[0] == MC_K_DENSE && f.kinds[1] == MC_K_MOE && f.kinds[3] == MC_K_MOE);

    cJSON *cfg = cJSON_Parse("{\"mlp_only_layers\":[0,3],\"bad\":[4],\"frac\":[1.5],\"notlist\":3}");
    memset(f.kinds, 0, sizeof f.kinds);
    CHECK(mc_cv_kinds_list(&f.cv, cfg, "mlp_only_layers", MC_K_DENSE, MC_K_MOE, &err) == 0);
    CHECK(f.kinds[0] == MC_K_DENSE && f.kinds[1] == MC_K_MOE && f.kinds[2] == MC_K_MOE && f.kinds[3] == MC_K_DENSE);
    memset(f.kinds, 0, sizeof f.kinds);
    CHECK(mc_cv_kinds_list(&f.cv, cfg, "absent", MC_K_DENSE, MC_K_MOE, &err) == 0 && f.kinds[0] == MC_K_MOE);
    mc_error_clear(&err);
    CHECK(mc_cv_kinds_list(&f.cv, cfg, "bad", MC_K_DENSE, MC_K_MOE, &err) == MC_ERR_FORMAT &&
          strstr(err.msg, "fake.gguf") && strstr(err.msg, "bad"));
    mc_error_clear(&err);
    CHECK(mc_cv_kinds_list(&f.cv, cfg, "frac", MC_K_DENSE, MC_K_MOE, &err) == MC_ERR_FORMAT);
    mc_error_clear(&err);
    CHECK(mc_cv_kinds_list(&f.cv, cfg, "notlist", MC_K_DENSE, MC_K_MOE, &err) == MC_ERR_FORMAT);
    cJSON_Delete(cfg);

    /* nemotron_h: M Mamba2, E MoE, * attention, - MLP */
    static const uint8_t nk[] = {MC_K_MIXER, MC_K_MOE, MC_K_ATTN, MC_K_DENSE};
    memset(f.kinds, 0, sizeof f.kinds);
    CHECK(mc_cv_kinds_pattern(&f.cv, "hybrid_override_pattern", "ME*-", "ME*-", nk, &err) == 0);
    CHECK(f.kinds[0] == MC_K_MIXER && f.kinds[1] == MC_K_MOE && f.kinds[2] == MC_K_ATTN && f.kinds[3] == MC_K_DENSE);
    CHECK(mc_cv_kinds_string(&f.cv, "ME*-", nk, buf, sizeof buf) == 0);
    CHECK_STR(buf, "ME*-");
    CHECK(mc_cv_kinds_string(&f.cv, "ME*-", nk, buf, 4) == 1); /* no room for the terminator */
    mc_error_clear(&err);
    CHECK(mc_cv_kinds_pattern(&f.cv, "hybrid_override_pattern", "ME*", "ME*-", nk, &err) == MC_ERR_FORMAT &&
          strstr(err.msg, "3 characters for 4 layers"));
    mc_error_clear(&err);
    CHECK(mc_cv_kinds_pattern(&f.cv, "hybrid_override_pattern", "MX*-", "ME*-", nk, &err) == MC_ERR_FORMAT &&
          strstr(err.msg, "layer 1 is 'X'"));
    memset(f.kinds, 0, sizeof f.kinds);
    f.kinds[0] = MC_K_MIXER;
    CHECK(mc_cv_kinds_string(&f.cv, "ME*-", nk, buf, sizeof buf) == 1); /* layer 1 has no kind */
}

int main(void)
{
    test_registry();
    test_xforms();
    test_config_engine();
    test_kinds();
    return mc_test_finish("test_convert_framework");
}
