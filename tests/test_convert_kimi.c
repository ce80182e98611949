/* Kimi K2 Thinking / K2.5: DeepSeek V3 layout (mlx-lm deepseek_v3.py;
 * kimi_k2 is remapped to it, kimi_k25.py wraps it) with routed experts in
 * compressed-tensors INT4 ("pack-quantized": <name>_packed int32 words of 8
 * values, element i in bits 4 * (i % 8), stored q + 8; <name>_scale bf16 per
 * group of 32; <name>_shape; symmetric: value = (q - 8) * scale). The corpus
 * has no such checkpoint: the fixture is written here from that
 * specification (testdata/arch_fixtures/kimi_k2_int4.json, the tensors of
 * testdata/mlx_names/deepseek_v3_kimi_int4.txt in HF form: kv_b_proj fused,
 * experts one per expert, the experts packed here by an independent packer).
 *
 * Checked:
 *  - names and shapes equal mlx-lm's deepseek_v3 list; the K2.5 wrapper
 *    form (language_model.* names, text_config, a vision tower) gives the
 *    same tensors;
 *  - every expert value read through mc_convert equals the independent
 *    decode (q - 8) * scale (f32), scales including negatives, bf16
 *    subnormals and large values; the bf16 tensors bit for bit;
 *  - --layout mlx (default options): the experts are carried, not
 *    requantized: the output words are the input's int32 words byte for
 *    byte, the scales the input's bf16 bits, the biases -8 * scale exactly
 *    (checked in double), config.json quantization says group 32 / 4 bits
 *    for them; .flash verifies against the source;
 *  - corrupted inputs refused with one line naming the tensor and numbers
 *    (scale / group mismatch, a _shape that disagrees, packed rows that
 *    are not whole groups, f32 scales, a truncated file) and nothing left
 *    behind; quantization_config forms mconv does not read are refused.
 */
#include "mc_test.h"
#include "mc_test_model.h"
#include "mc_convert.h"
#include "mc_safetensors.h"
#include "mc_st_write.h"
#include "mc_float.h"
#include "mc_types.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { E = 4, NL = 2 };

static mc_test_name g_list[64];
static size_t g_nlist;

/* ------------------------------------------------------------ fixture */

static uint64_t g_rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* One HF tensor of the fixture. */
typedef struct ft {
    char name[200];
    int type;
    uint32_t nd;
    uint64_t sh[3];
    uint8_t *data;
    size_t nbytes;
} ft;

typedef struct fixture {
    ft t[128];
    size_t n;
    /* the experts as written: q codes and bf16 scales, [layer 1][proj][e] */
    uint8_t *q[3][E];
    uint16_t *s[3][E];
    uint64_t rows[3], cols[3];
} fixture;

static ft *fx_add(fixture *f, const char *name, int type, uint32_t nd, const uint64_t *sh)
{
    ft *t = &f->t[f->n++];
    size_t l = strlen(name);
    if (l >= sizeof t->name) l = sizeof t->name - 1;
    memcpy(t->name, name, l);
    t->name[l] = '\0';
    t->type = type;
    t->nd = nd;
    uint64_t ne = 1;
    for (uint32_t d = 0; d < nd; d++) ne *= (t->sh[d] = sh[d]);
    mc_type_nbytes(type, ne, &ne);
    t->nbytes = (size_t)ne;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    return t;
}

/* A bf16 scale: mostly ordinary magnitudes, some negative, some bf16
 * subnormal, some large (|8s| still finite). */
static uint16_t rnd_scale(void)
{
    uint32_t r = rnd();
    switch (r % 16) {
    case 0: return (uint16_t)(0x0001 + (r >> 8) % 0x7F);             /* subnormal */
    case 1: return (uint16_t)(0x8000 | (0x7C00 + (r >> 8) % 0x7F));  /* -(2^121 .. 2^122) */
    case 2: return (uint16_t)(0x8000 | mc_f32_to_bf16(0.01f));
    default: return mc_f32_to_bf16((float)(1 + (r >> 8) % 1000) * 1e-5f);
    }
}

static void fixture_build(fixture *f)
{
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    memset(f, 0, sizeof *f);
    g_nlist = mc_test_names_load("deepseek_v3_kimi_int4", g_list, 64);
    for (size_t i = 0; i < g_nlist; i++) {
        const mc_test_name *e = &g_list[i];
        char nm[200];
        const char *sw = strstr(e->name, "switch_mlp.");
        if (strstr(e->name, "embed_q.weight")) {
            /* kv_b_proj [heads * (nope + v), kv_lora] in place of embed_q / unembed_out */
            snprintf(nm, sizeof nm, "%.*skv_b_proj.weight", (int)(strstr(e->name, "embed_q") - e->name), e->name);
            ft *t = fx_add(f, nm, MC_T_BF16, 2, (uint64_t[]){2 * (16 + 16), 32});
            for (size_t k = 0; k < t->nbytes / 2; k++) ((uint16_t *)t->data)[k] = mc_f32_to_bf16((float)(int)(rnd() % 2001 - 1000) * 1e-4f);
        } else if (strstr(e->name, "unembed_out")) {
            continue;
        } else if (sw) {
            int pj = strstr(sw, "gate") ? 0 : strstr(sw, "up_") ? 1 : 2;
            uint64_t R = e->sh[1], C = e->sh[2];
            f->rows[pj] = R;
            f->cols[pj] = C;
            for (int x = 0; x < E; x++) {
                uint8_t *q = f->q[pj][x] = malloc(R * C);
                uint16_t *s = f->s[pj][x] = malloc(R * C / 32 * 2);
                for (uint64_t k = 0; k < R * C; k++) q[k] = (uint8_t)(rnd() & 15);
                for (uint64_t k = 0; k < R * C / 32; k++) s[k] = rnd_scale();
                char base[170];
                snprintf(base, sizeof base, "%.*sexperts.%d.%s.weight", (int)(sw - e->name), e->name, x, proj[pj]);
                /* independent packer: compressed-tensors pack_to_int32 (element i of a row in word i / 8, bits 4 * (i % 8)) */
                snprintf(nm, sizeof nm, "%s_packed", base);
                ft *t = fx_add(f, nm, MC_T_I32, 2, (uint64_t[]){R, C / 8});
                for (uint64_t r = 0; r < R; r++)
                    for (uint64_t w = 0; w < C / 8; w++) {
                        uint32_t v = 0;
                        for (int i = 0; i < 8; i++) v |= (uint32_t)q[r * C + w * 8 + (uint64_t)i] << (4 * i);
                        uint8_t *o = t->data + (r * (C / 8) + w) * 4;
                        o[0] = (uint8_t)v, o[1] = (uint8_t)(v >> 8), o[2] = (uint8_t)(v >> 16), o[3] = (uint8_t)(v >> 24);
                    }
                snprintf(nm, sizeof nm, "%s_scale", base);
                t = fx_add(f, nm, MC_T_BF16, 2, (uint64_t[]){R, C / 32});
                memcpy(t->data, s, t->nbytes);
                snprintf(nm, sizeof nm, "%s_shape", base);
                t = fx_add(f, nm, MC_T_I32, 1, (uint64_t[]){2});
                int32_t shp[2] = {(int32_t)R, (int32_t)C};
                memcpy(t->data, shp, 8);
            }
        } else {
            int f32 = strstr(e->name, "e_score_correction_bias") != NULL;
            ft *t = fx_add(f, e->name, f32 ? MC_T_F32 : MC_T_BF16, e->nd, e->sh);
            for (size_t k = 0; k < t->nbytes / (f32 ? 4 : 2); k++) {
                float v = (float)(int)(rnd() % 2001 - 1000) * 1e-4f;
                if (f32) memcpy(t->data + 4 * k, &v, 4);
                else ((uint16_t *)t->data)[k] = mc_f32_to_bf16(v);
            }
        }
    }
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->t[i].data);
    for (int p = 0; p < 3; p++)
        for (int x = 0; x < E; x++) {
            free(f->q[p][x]);
            free(f->s[p][x]);
        }
}

/* Write the fixture into dir: tensor names with `prefix` for model.* /
 * lm_head (K2.5 form: "language_model."), config.json = cfg. */
static int fixture_write(const fixture *f, const char *dir, const char *prefix, const cJSON *cfg, int extra_vision)
{
    mkdir(dir, 0755);
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    mc_st_writer *w = NULL;
    mc_error err = {0};
    int rc = mc_st_writer_new(p, 1, &w, &err);
    char nm[260];
    for (size_t i = 0; i < f->n && !rc; i++) {
        snprintf(nm, sizeof nm, "%s%s", prefix, f->t[i].name);
        rc = mc_st_writer_add(w, nm, f->t[i].type, f->t[i].nd, f->t[i].sh, &err);
    }
    uint16_t vis[16] = {0};
    if (extra_vision && !rc) rc = mc_st_writer_add(w, "vision_tower.patch_embed.weight", MC_T_BF16, 2, (uint64_t[]){4, 4}, &err);
    rc = rc ? rc : mc_st_writer_begin(w, &err);
    for (size_t i = 0; i < f->n && !rc; i++) rc = mc_st_writer_tensor(w, NULL, f->t[i].data, f->t[i].nbytes, &err);
    if (extra_vision && !rc) rc = mc_st_writer_tensor(w, NULL, vis, sizeof vis, &err);
    rc = rc ? rc : mc_st_writer_commit(w, &err);
    mc_st_writer_free(w);
    if (rc) fprintf(stderr, "fixture %s: %s\n", p, err.msg);
    char *txt = cJSON_Print(cfg);
    snprintf(p, sizeof p, "%s/config.json", dir);
    rc |= mc_test_write_file(p, txt, strlen(txt));
    free(txt);
    return rc;
}

static cJSON *fixture_config(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/testdata/arch_fixtures/kimi_k2_int4.json", MCONV_SOURCE_DIR);
    cJSON *c = mc_test_read_json(p);
    CHECKF(c != NULL, "%s", p);
    return c;
}

/* ----------------------------------------------------------- checking */

/* Every expert element against (q - 8) * scale; the rest bit for bit. */
static void check_values(const mc_model *m, const fixture *f, const char *label)
{
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    uint64_t exact = 0, bad = 0;
    for (int pj = 0; pj < 3; pj++) {
        char nm[160];
        snprintf(nm, sizeof nm, "model.layers.1.mlp.switch_mlp.%s.weight", proj[pj]);
        const mc_mtensor *t = mc_model_find(m, nm);
        CHECKF(t && t->src_type == MC_T_Q4_0_BF16 && t->carry, "%s: %s is carried INT4", label, nm);
        float *v = t ? mc_test_model_read_all(m, t) : NULL;
        if (!v) { CHECK(!"read"); continue; }
        uint64_t R = f->rows[pj], C = f->cols[pj];
        for (int x = 0; x < E; x++)
            for (uint64_t k = 0; k < R * C; k++) {
                float want = (float)((int)f->q[pj][x][k] - 8) * mc_bf16_to_f32(f->s[pj][x][(k / C) * (C / 32) + (k % C) / 32]);
                float got = v[(uint64_t)x * R * C + k];
                if (got == want) exact++;
                else if (bad++ < 5) fprintf(stderr, "%s: %s [%d][%llu] %.9g, want %.9g\n", label, nm, x, (unsigned long long)k, got, want);
            }
        free(v);
    }
    CHECKF(bad == 0 && exact == (uint64_t)E * (f->rows[0] * f->cols[0] * 2 + f->rows[2] * f->cols[2]),
           "%s: %llu expert values differ from (q - 8) * scale", label, (unsigned long long)bad);
    /* every other tensor: its bf16 / f32 source */
    size_t same = 0, other = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const mc_mtensor *t = &m->tensors[i];
        if (strstr(t->name, "switch_mlp") || strstr(t->name, "embed_q") || strstr(t->name, "unembed_out")) continue;
        other++;
        CHECK(!t->carry);
        const ft *s = NULL;
        for (size_t k = 0; k < f->n && !s; k++)
            if (!strcmp(f->t[k].name, t->name)) s = &f->t[k];
        float *v = mc_test_model_read_all(m, t);
        int ok = s && v;
        for (size_t k = 0; ok && k < s->nbytes / (s->type == MC_T_F32 ? 4 : 2); k++) {
            float w;
            if (s->type == MC_T_F32) memcpy(&w, s->data + 4 * k, 4);
            else w = mc_bf16_to_f32(((const uint16_t *)s->data)[k]);
            ok = memcmp(&w, &v[k], 4) == 0;
        }
        CHECKF(ok, "%s: %s differs from its source", label, t->name);
        same += ok;
        free(v);
    }
    printf("%s: %llu expert values = (q - 8) * scale exactly, %zu of %zu other tensors bit for bit\n", label,
           (unsigned long long)exact, same, other);
}

static void check_mlx_folder(const fixture *f, const char *dir)
{
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    mc_st *st = NULL;
    mc_error err = {0};
    CHECKF(mc_st_open(p, &st, &err) == 0, "%s: %s", p, err.msg);
    if (!st) return;
    uint64_t words = 0, scales = 0;
    for (int pj = 0; pj < 3; pj++) {
        char nm[200];
        uint64_t R = f->rows[pj], C = f->cols[pj], G = C / 32;
        snprintf(nm, sizeof nm, "model.layers.1.mlp.switch_mlp.%s.weight", proj[pj]);
        const mc_st_tensor *w = mc_st_find(st, nm);
        snprintf(nm, sizeof nm, "model.layers.1.mlp.switch_mlp.%s.scales", proj[pj]);
        const mc_st_tensor *s = mc_st_find(st, nm);
        snprintf(nm, sizeof nm, "model.layers.1.mlp.switch_mlp.%s.biases", proj[pj]);
        const mc_st_tensor *b = mc_st_find(st, nm);
        CHECKF(w && s && b && w->type == MC_T_U32 && s->type == MC_T_BF16 && b->type == MC_T_BF16 &&
                   w->nbytes == E * R * C / 2 && s->nbytes == E * R * G * 2,
               "mlx folder: %s weight/scales/biases as U32 / bf16 / bf16 of group 32", proj[pj]);
        if (!w || !s || !b || w->nbytes != E * R * C / 2 || s->nbytes != E * R * G * 2 || b->nbytes != s->nbytes) continue;
        uint8_t *wd = malloc(w->nbytes);
        uint16_t *sd = malloc(s->nbytes), *bd = malloc(b->nbytes);
        CHECK(mc_st_read(st, w, 0, wd, w->nbytes, &err) == 0 && mc_st_read(st, s, 0, sd, s->nbytes, &err) == 0 &&
              mc_st_read(st, b, 0, bd, b->nbytes, &err) == 0);
        for (int x = 0; x < E; x++) {
            /* the input's packed words, byte for byte */
            char pn[200];
            snprintf(pn, sizeof pn, "model.layers.1.mlp.experts.%d.%s.weight_packed", x, proj[pj]);
            const ft *pk = NULL;
            for (size_t k = 0; k < f->n && !pk; k++)
                if (!strcmp(f->t[k].name, pn)) pk = &f->t[k];
            int ok = pk && memcmp(wd + (uint64_t)x * R * C / 2, pk->data, pk->nbytes) == 0;
            CHECKF(ok, "mlx folder: %s expert %d words are not the input's", proj[pj], x);
            words += ok ? pk->nbytes / 4 : 0;
            for (uint64_t g = 0; g < R * G; g++) {
                uint16_t sv = f->s[pj][x][g], so = sd[(uint64_t)x * R * G + g], bo = bd[(uint64_t)x * R * G + g];
                int okg = so == sv && (double)mc_bf16_to_f32(bo) == -8.0 * (double)mc_bf16_to_f32(sv);
                if (!okg && scales < 1000000) fprintf(stderr, "group %llu: scale %04x -> %04x, bias %04x\n", (unsigned long long)g, sv, so, bo);
                CHECK(okg);
                scales += okg;
            }
        }
        free(wd);
        free(sd);
        free(bd);
    }
    printf("mlx folder: %llu words copied from the input, %llu groups with scale = s and bias = -8s exactly\n",
           (unsigned long long)words, (unsigned long long)scales);
    mc_st_close(st);
    /* config.json: the experts at group 32 / 4 bits, no compressed-tensors block left */
    snprintf(p, sizeof p, "%s/config.json", dir);
    cJSON *c = mc_test_read_json(p);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantization");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, "model.layers.1.mlp.switch_mlp.down_proj");
    CHECKF(cJSON_IsObject(e) && cJSON_GetObjectItemCaseSensitive(e, "group_size")->valuedouble == 32 &&
               cJSON_GetObjectItemCaseSensitive(e, "bits")->valuedouble == 4,
           "config.json quantization entry for the carried experts");
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
    CHECK(!cJSON_GetObjectItemCaseSensitive(qc, "quant_method"));
    cJSON_Delete(c);
}

static void test_convert(void)
{
    fixture *f = calloc(1, sizeof *f);
    fixture_build(f);
    cJSON *cfg = fixture_config();
    const char *tmp = mc_test_tmpdir();
    char dir[700], dir2[700];
    snprintf(dir, sizeof dir, "%s/kimi_k2", tmp);
    CHECK(fixture_write(f, dir, "", cfg, 0) == 0);
    mc_model *m = NULL;
    mc_error err = {0};
    CHECKF(mc_convert_open(dir, NULL, &m, &err) == 0, "%s", err.msg);
    if (m) {
        mc_test_names_check(m, "deepseek_v3_kimi_int4", "kimi_k2");
        check_values(m, f, "kimi_k2");
        CHECK(m->n_notices == 0);
        mc_convert_close(m);
    }
    /* K2.5: the same text model inside the multimodal wrapper */
    cJSON *wrap = cJSON_CreateObject();
    cJSON *text = cJSON_Duplicate(cfg, 1);
    cJSON *qc = cJSON_DetachItemFromObjectCaseSensitive(text, "quantization_config");
    cJSON_AddStringToObject(wrap, "model_type", "kimi_k25");
    cJSON_AddItemToObject(wrap, "text_config", text);
    cJSON_AddItemToObject(wrap, "quantization_config", qc);
    snprintf(dir2, sizeof dir2, "%s/kimi_k25", tmp);
    CHECK(fixture_write(f, dir2, "language_model.", wrap, 1) == 0);
    m = NULL;
    CHECKF(mc_convert_open(dir2, NULL, &m, &err) == 0, "%s", err.msg);
    if (m) {
        mc_test_names_check(m, "deepseek_v3_kimi_int4", "kimi_k25");
        check_values(m, f, "kimi_k25");
        int noted = 0;
        for (size_t i = 0; i < m->n_notices; i++) noted |= strstr(m->notices[i], "vision_tower") != NULL;
        CHECK(noted);
        mc_convert_close(m);
    }
    cJSON_Delete(wrap);
    /* end to end */
    const char *mconv = mc_test_mconv();
    char *out = NULL;
    int rc = mc_test_run(&out, "'%s' '%s' '%s/k.flash' && '%s' verify '%s/k.flash' --source '%s'", mconv, dir, tmp,
                         mconv, tmp, dir);
    CHECKF(rc == 0 && out && strstr(out, "sound"), "flash + verify: %s", out ? out : "");
    free(out);
    rc = mc_test_run(&out, "'%s' '%s' '%s/kmlx' --layout mlx", mconv, dir, tmp);
    CHECKF(rc == 0, "--layout mlx: %s", out ? out : "");
    free(out);
    char p[800];
    snprintf(p, sizeof p, "%s/kmlx", tmp);
    check_mlx_folder(f, p);
    /* --lossless too, and --bits 8 requantizes (asked for other bits) */
    rc = mc_test_run(&out, "'%s' '%s' '%s/k8.flash' --bits 8 && '%s' inspect '%s/k8.flash'", mconv, dir, tmp, mconv, tmp);
    CHECKF(rc == 0, "--bits 8: %s", out ? out : "");
    free(out);
    cJSON_Delete(cfg);
    fixture_free(f);
    free(f);
}

/* ---------------------------------------------------------- corrupted */

/* Open dir and read every tensor: the first error (or 0). */
static int open_read_all(const char *dir, mc_error *err)
{
    mc_model *m = NULL;
    int rc = mc_convert_open(dir, NULL, &m, err);
    for (size_t i = 0; !rc && i < m->n_tensors; i++) {
        float *v = mc_test_model_read(m, &m->tensors[i], 7, err);
        if (!v) rc = err->code ? (int)err->code : MC_ERR_FORMAT;
        free(v);
    }
    mc_convert_close(m);
    return rc;
}

static void test_corrupt(void)
{
    fixture *f = calloc(1, sizeof *f);
    fixture_build(f);
    cJSON *cfg = fixture_config();
    const char *tmp = mc_test_tmpdir(), *mconv = mc_test_mconv();
    const char *victim = "model.layers.1.mlp.experts.2.down_proj.weight";
    char pk[200], sc[200], sh[200];
    snprintf(pk, sizeof pk, "%s_packed", victim);
    snprintf(sc, sizeof sc, "%s_scale", victim);
    snprintf(sh, sizeof sh, "%s_shape", victim);
    static const struct { const char *what, *want; int code; } cases[] = {
        {"scale group mismatch", "one scale per group of 32", MC_ERR_FORMAT},
        {"shape disagrees", "says dim 1 is 40", MC_ERR_FORMAT},
        {"packed rows not whole groups", "row size invalid for type q4_0_bf16", MC_ERR_FORMAT},
        {"f32 scales", "mconv reads bf16 or f16 group scales", MC_ERR_UNSUPPORTED},
        {"truncated file", "model.safetensors", MC_ERR_FORMAT},
        {"group_size 64", "group_size (want 32)", MC_ERR_UNSUPPORTED},
        {"num_bits 8", "num_bits (want 4)", MC_ERR_UNSUPPORTED},
        {"asymmetric", "symmetric (want true)", MC_ERR_UNSUPPORTED},
        {"nvfp4 format", "nvfp4-pack-quantized", MC_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture g = *f; /* shallow: the tensors are edited in place, then restored */
        ft *tp = NULL, *ts = NULL, *tsh = NULL;
        for (size_t k = 0; k < g.n; k++) {
            if (!strcmp(g.t[k].name, pk)) tp = &g.t[k];
            if (!strcmp(g.t[k].name, sc)) ts = &g.t[k];
            if (!strcmp(g.t[k].name, sh)) tsh = &g.t[k];
        }
        if (!tp || !ts || !tsh) { CHECK(!"fixture tensors"); break; }
        cJSON *c = cJSON_Duplicate(cfg, 1);
        cJSON *w = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "quantization_config"), "config_groups"), "group_0"),
            "weights");
        uint8_t *keep = NULL;
        int32_t bad_shape[2] = {64, 40};
        switch (i) {
        case 0: ts->sh[1] = 2, ts->nbytes = 64 * 2 * 2, keep = ts->data, ts->data = calloc(1, ts->nbytes); break;
        case 1: keep = tsh->data, tsh->data = malloc(8), memcpy(tsh->data, bad_shape, 8); break;
        case 2: /* every expert's words cut to 3 per row: rows of 24 values */
            for (size_t k = 0; k < g.n; k++)
                if (strstr(g.t[k].name, "down_proj.weight_packed")) g.t[k].sh[1] = 3, g.t[k].nbytes = 64 * 3 * 4;
            break;
        case 3: ts->type = MC_T_F32, ts->nbytes *= 2, keep = ts->data, ts->data = calloc(1, ts->nbytes); break;
        case 5: cJSON_ReplaceItemInObjectCaseSensitive(w, "group_size", cJSON_CreateNumber(64)); break;
        case 6: cJSON_ReplaceItemInObjectCaseSensitive(w, "num_bits", cJSON_CreateNumber(8)); break;
        case 7: cJSON_ReplaceItemInObjectCaseSensitive(w, "symmetric", cJSON_CreateFalse()); break;
        case 8: cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "quantization_config"), "format",
                                                        cJSON_CreateString("nvfp4-pack-quantized")); break;
        default: break;
        }
        char dir[700], p[800];
        snprintf(dir, sizeof dir, "%s/bad%zu", tmp, i);
        CHECK(fixture_write(&g, dir, "", c, 0) == 0);
        if (i == 4) { /* cut the last 100 bytes: the data no longer holds every tensor */
            snprintf(p, sizeof p, "%s/model.safetensors", dir);
            FILE *fp = fopen(p, "rb");
            fseek(fp, 0, SEEK_END);
            long sz = ftell(fp);
            fclose(fp);
            CHECK(truncate(p, sz - 100) == 0);
        }
        mc_error err = {0};
        int rc = open_read_all(dir, &err);
        CHECKF(rc == cases[i].code && strstr(err.msg, cases[i].want) && strstr(err.msg, dir),
               "%s: rc %d (%s): %s", cases[i].what, rc, mc_error_code_name((mc_code)rc), err.msg);
        if (i < 4) CHECKF(strstr(err.msg, i == 2 ? "down_proj.weight_packed" : "experts.2.down_proj"), "%s names the tensor: %s", cases[i].what, err.msg);
        printf("%s: %s\n", cases[i].what, err.msg);
        /* the CLI: non-zero exit, one line, no output left behind */
        char *out = NULL;
        int xc = mc_test_run(&out, "'%s' '%s' '%s/out%zu.flash'", mconv, dir, tmp, i);
        snprintf(p, sizeof p, "%s/out%zu.flash", tmp, i);
        CHECKF(xc == 1 && access(p, F_OK) != 0, "%s: exit %d, output %s", cases[i].what, xc,
               access(p, F_OK) == 0 ? "left behind" : "absent");
        free(out);
        if (keep) {
            if (i == 1) { free(tsh->data); tsh->data = keep; }
            else { free(ts->data); ts->data = keep; }
        }
        cJSON_Delete(c);
    }
    cJSON_Delete(cfg);
    fixture_free(f);
    free(f);
}

int main(void)
{
    test_convert();
    test_corrupt();
    return mc_test_finish("test_convert_kimi");
}
