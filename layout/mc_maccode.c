#include "mc_maccode.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_recipe.h"
#include "mc_types.h"

#define FS "research/flash-streaming/"
#define MS "research/expert-sniper/mlx-sniper/"
#define CA "research/expert-sniper/cli-agent/src/mlx_expert_sniper/"
#define EDIT "set MODEL_DIR at the top of the script to this folder"

/* Read from each engine's source (walter-grace/mac-code, research/): the
 * model class it builds, its readers (direct_io.py DirectFFNReader,
 * expert_io.py MoEExpertReader, mx.load) and the local names it indexes,
 * its nn.quantize call, its tokenizer. */
static const mc_maccode_engine g_engines[] = {
    { "flash-streaming/flash_stream.py", FS "flash_stream.py", "qwen3", "mlx_lm.models.qwen3.Model", MC_MCR_FFN_ST,
      MC_MCQ_ALL, 1, "Qwen/Qwen3-32B", EDIT "; python3 flash_stream.py" },
    { "flash-streaming/flash_stream_batched.py", FS "flash_stream_batched.py", "qwen3", "mlx_lm.models.qwen3.Model",
      MC_MCR_FFN_ST, MC_MCQ_ALL, 1, "Qwen/Qwen3-32B", EDIT "; python3 flash_stream_batched.py" },
    { "flash-streaming/flash_stream_v2.py", FS "flash_stream_v2.py", "qwen3", "mlx_lm.models.qwen3.Model",
      MC_MCR_FFN_BIN, MC_MCQ_ALL, 1, "Qwen/Qwen3-32B", EDIT "; python3 flash_stream_v2.py" },
    { "flash-streaming/flash_agent.py", FS "flash_agent.py", "qwen3", "mlx_lm.models.qwen3.Model", MC_MCR_FFN_ANY,
      MC_MCQ_ALL, 1, "Qwen/Qwen3-32B", EDIT "; python3 flash_agent.py" },
    { "flash-streaming/flash_stream_27b.py", FS "flash_stream_27b.py", "qwen3_5", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_FFN_ST, MC_MCQ_IN64, 1, "Qwen/Qwen3.5-27B", EDIT "; python3 flash_stream_27b.py" },
    { "flash-streaming/flash_moe.py", FS "flash_moe.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_EXP_MLP, MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", EDIT "; python3 flash_moe.py" },
    { "flash-streaming/moe_agent.py", FS "moe_agent.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_EXP_MLP, MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", EDIT "; python3 moe_agent.py" },
    { "flash-streaming/batched_moe.py", FS "batched_moe.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_EXP_MLP, MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", "set MODEL_DIR in test_batched(); python3 batched_moe.py" },
    { "mlx-sniper/flash_moe.py", MS "flash_moe.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel", MC_MCR_EXP_MLP,
      MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", "MOE_MODEL_DIR=this-folder python3 flash_moe.py" },
    { "mlx-sniper/batched_moe.py", MS "batched_moe.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_EXP_MLP, MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", "MOE_MODEL_DIR=this-folder python3 batched_moe.py" },
    { "mlx-sniper/moe_agent_macbook.py", MS "moe_agent_macbook.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_EXP_MLP | MC_MCR_TOK_DIR, MC_MCQ_IN64, 1, NULL, EDIT "; python3 moe_agent_macbook.py" },
    { "mlx-sniper/moe_agent_35b.py", MS "moe_agent_35b.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel",
      MC_MCR_EXP_SW, MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", EDIT "; python3 moe_agent_35b.py" },
    { "cli-agent/engine.py", CA "engine.py", "qwen3_5_moe", "mlx_lm.models.qwen3_5.TextModel", MC_MCR_EXP_SW,
      MC_MCQ_IN64, 1, "Qwen/Qwen3.5-35B-A3B", "mlx-sniper run this-folder -p PROMPT (or chat, serve, calibrate)" },
    { "cli-agent/engine_30b.py", CA "engine_30b.py", "qwen3_moe", "mlx_lm.models.qwen3_moe.Model",
      MC_MCR_EXP_SW | MC_MCR_TOK_DIR, MC_MCQ_ROUTER8, 1, NULL,
      "mlx-sniper run this-folder -p PROMPT (or chat, serve, calibrate)" },
    { "mlx-sniper/moe_agent_30b.py", MS "moe_agent_30b.py", "qwen3_moe", "mlx_lm.models.qwen3_moe.Model",
      MC_MCR_EXP_SW | MC_MCR_TOK_DIR, MC_MCQ_IN64, 0, NULL, EDIT "; python3 moe_agent_30b.py" },
    { "cli-agent/engine_next.py", CA "engine_next.py", "qwen3_next", "mlx_lm.models.qwen3_next.Model", MC_MCR_EXP_SW,
      MC_MCQ_ROUTER8S, 1, "Qwen/Qwen3.5-35B-A3B", "mlx-sniper run this-folder -p PROMPT (or chat, serve, calibrate)" },
};
#define N_ENGINES (sizeof g_engines / sizeof g_engines[0])

const mc_maccode_engine *mc_maccode_engines(size_t *n)
{
    if (n) *n = N_ENGINES;
    return g_engines;
}

uint32_t mc_maccode_family(const char *model_type, int defaults_only)
{
    uint32_t mask = 0;
    for (size_t i = 0; model_type && i < N_ENGINES; i++)
        if (!strcmp(g_engines[i].model_type, model_type) && (!defaults_only || g_engines[i].dflt)) mask |= 1u << i;
    return mask;
}

static const char *base_name(const char *id)
{
    const char *s = strrchr(id, '/');
    return s ? s + 1 : id;
}

/* name equals the id, the base name, or the base name without ".py" */
static int name_is(const char *name, size_t len, const char *id)
{
    const char *b = base_name(id);
    size_t bl = strlen(b);
    if (strlen(id) == len && !strncmp(id, name, len)) return 1;
    if (bl == len && !strncmp(b, name, len)) return 1;
    return bl == len + 3 && !strncmp(b, name, len) && !strcmp(b + len, ".py");
}

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

void mc_maccode_names(uint32_t mask, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < N_ENGINES; i++)
        if (mask & (1u << i)) append(buf, cap, "%s%s", buf[0] ? ", " : "", g_engines[i].id);
}

void mc_maccode_describe_families(char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < N_ENGINES; i++) {
        size_t j = 0;
        while (j < i && strcmp(g_engines[j].model_type, g_engines[i].model_type)) j++;
        if (j < i) continue; /* family already listed */
        char names[1024];
        mc_maccode_names(mc_maccode_family(g_engines[i].model_type, 0), names, sizeof names);
        append(buf, cap, "%s%s (%s)", buf[0] ? ", " : "", g_engines[i].model_type, names);
    }
}

int mc_maccode_select(const char *model_type, const char *list, uint32_t *mask, mc_error *err)
{
    static const char *const folders[] = { "flash-streaming", "mlx-sniper", "cli-agent" };
    uint32_t fam = mc_maccode_family(model_type, 0);
    *mask = 0;
    for (const char *s = list; s && *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        uint32_t hit = 0, other = 0;
        if (len == 3 && !strncmp(s, "all", 3)) hit = fam;
        for (size_t f = 0; f < sizeof folders / sizeof folders[0]; f++)
            if (strlen(folders[f]) == len && !strncmp(s, folders[f], len))
                for (size_t i = 0; i < N_ENGINES; i++)
                    if (!strncmp(g_engines[i].id, folders[f], len) && g_engines[i].id[len] == '/') {
                        if (fam & (1u << i)) hit |= 1u << i;
                        else other |= 1u << i;
                    }
        int folder = hit || other;
        for (size_t i = 0; !folder && len != 3 && i < N_ENGINES; i++)
            if (name_is(s, len, g_engines[i].id)) {
                if (fam & (1u << i)) hit |= 1u << i;
                else other |= 1u << i;
            }
        if (!folder && (len != 3 || strncmp(s, "all", 3))) {
            int n = 0;
            for (uint32_t b = hit | other; b; b &= b - 1) n++;
            if (n > 1) {
                char names[512];
                mc_maccode_names(hit | other, names, sizeof names);
                return mc_error_set(err, MC_ERR_ARG, "--engines: '%.*s' is ambiguous: %s", (int)len, s, names);
            }
            if (!n) {
                char names[2048];
                mc_maccode_names((uint32_t)((1ull << N_ENGINES) - 1), names, sizeof names);
                return mc_error_set(err, MC_ERR_ARG,
                                    "--engines: no engine '%.*s'; expected all, flash-streaming, mlx-sniper, "
                                    "cli-agent or one of %s",
                                    (int)len, s, names);
            }
            if (other) {
                for (size_t i = 0; i < N_ENGINES; i++)
                    if (other & (1u << i))
                        return mc_error_set(err, MC_ERR_UNSUPPORTED, "--engines: %s builds %s (%s), not %s",
                                            g_engines[i].id, g_engines[i].model_type, g_engines[i].builds,
                                            model_type ? model_type : "this model");
            }
        }
        if (!hit) {
            char names[1024];
            mc_maccode_names(fam, names, sizeof names);
            return mc_error_set(err, MC_ERR_UNSUPPORTED, "--engines: no engine of '%.*s' builds %s%s%s%s", (int)len,
                                s, model_type ? model_type : "this model", fam ? " (those that do: " : "", names,
                                fam ? ")" : "");
        }
        *mask |= hit;
        s = e ? e + 1 : s + len;
    }
    if (!*mask) return mc_error_set(err, MC_ERR_ARG, "--engines: an empty list");
    return 0;
}

/* ---- quantization rules ---- */

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf) && (a == b || s[a - b - 1] == '.');
}

int mc_maccode_want_bits(const mc_maccode_engine *e, const mc_maccode_module *m)
{
    if (!m->quantizable) return 0;
    int embedding = ends_with(m->path, "embed_tokens");
    switch (e->qrule) {
    case MC_MCQ_ALL: return 4;
    case MC_MCQ_IN64:
        if (embedding || m->expert) return 4;
        return strstr(m->path, "conv1d") || m->in < 64 ? 0 : 4;
    case MC_MCQ_ROUTER8: return ends_with(m->path, "mlp.gate") ? 8 : 4;
    case MC_MCQ_ROUTER8S: return ends_with(m->path, "mlp.gate") || ends_with(m->path, "shared_expert_gate") ? 8 : 4;
    }
    return 4;
}

/* The bits overrides each rule needs on top of the converter's choices
 * (routers and shared-expert gates forced to 8 bits, as mlx-lm does). */
int mc_maccode_plan_opts(uint32_t mask, mc_plan_opts *o, mc_error *err)
{
    static const char *const in64[] = { "*.mlp.gate", "*.mlp.shared_expert_gate" };
    int rc = 0, need = 0;
    for (size_t i = 0; i < N_ENGINES; i++)
        if ((mask & (1u << i)) && g_engines[i].qrule == MC_MCQ_IN64) need = 1;
    if (o->dtype < 0) o->dtype = MC_T_F16;
    for (size_t k = 0; need && !rc && k < sizeof in64 / sizeof in64[0]; k++) {
        int have = 0;
        for (size_t j = 0; j < o->n_bits_for; j++) have |= !strcmp(o->bits_for[j].glob, in64[k]);
        if (!have) rc = mc_plan_opts_add_bits_for(o, in64[k], 4, err);
    }
    return rc;
}

uint32_t mc_maccode_bf16_misreaders(uint32_t mask)
{
    uint32_t r = 0;
    for (size_t i = 0; i < N_ENGINES; i++)
        if ((mask & (1u << i)) && (g_engines[i].reads & (MC_MCR_FFN_BIN | MC_MCR_FFN_ANY))) r |= 1u << i;
    return r;
}

/* ---- checks ---- */

typedef mc_maccode_rep rep;

void mc_maccode_report(mc_maccode_rep *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->n++;
    if (r->fn) r->fn(r->ctx, msg);
}

static const char *strip_lm(const char *name)
{
    static const char pfx[] = "language_model.";
    return strncmp(name, pfx, sizeof pfx - 1) ? name : name + sizeof pfx - 1;
}

static const mc_pitem *find_item(const mc_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n_items; i++)
        if (!strcmp(p->items[i].mt->name, name)) return &p->items[i];
    return NULL;
}

/* Group size of a module of an MLX-quantized input (its per-module entry,
 * else the global one). */
static int passthrough_gs(const mc_model *m, const char *module)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(m->config, "quantization");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, module);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(e) ? e : q, "group_size");
    return cJSON_IsNumber(g) ? g->valueint : m->mlx_group_size;
}

/* The module of a ".weight" plan item as stored. 0: not a weight. */
static int module_of(const mc_model *m, const mc_plan *p, const mc_pitem *it, char *path, size_t cap,
                     mc_maccode_module *mod)
{
    const char *name = it->mt->name;
    size_t n = strlen(name);
    if (n <= 7 || strcmp(name + n - 7, ".weight") || n - 7 >= cap) return 0;
    memcpy(path, name, n - 7);
    path[n - 7] = 0;
    memset(mod, 0, sizeof *mod);
    mod->path = strip_lm(path);
    mod->quantizable = it->mt->quantizable;
    mod->expert = it->mt->role == MC_ROLE_EXPERT;
    mod->in = it->ncols;
    if (it->kind == MC_PK_AFFINE || it->kind == MC_PK_REPACK) {
        mod->bits = it->bits;
        mod->gs = it->group_size;
    } else if (it->kind == MC_PK_RAW && it->mt->passthrough && it->mt->quant_bits) {
        char sn[1040];
        snprintf(sn, sizeof sn, "%s.scales", path);
        const mc_pitem *s = find_item(p, sn);
        if (s) {
            mod->bits = it->mt->quant_bits;
            mod->gs = passthrough_gs(m, path);
            mod->in = s->ncols * (uint64_t)mod->gs;
        }
    }
    return 1;
}

static void describe(const mc_maccode_module *m, int bits, char *buf, size_t cap)
{
    if (!bits) snprintf(buf, cap, "unquantized");
    else if (m->bits == bits && m->gs) snprintf(buf, cap, "%d-bit group %d", bits, m->gs);
    else snprintf(buf, cap, "%d-bit", bits);
}

/* What gave module path (the full name without ".weight") bits other than
 * 4: a --bits-for rule of other bits (the 4-bit rules are mc_maccode_plan_opts'
 * own) or the recipe; "" when neither (the converter's 8-bit routers). */
static void cause_of(const mc_plan_opts *o, const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    for (size_t i = 0; i < o->n_bits_for; i++)
        if (fnmatch(o->bits_for[i].glob, path, 0) == 0) {
            if (o->bits_for[i].bits != 4) snprintf(buf, cap, "--bits-for %s=%d: ", o->bits_for[i].glob, o->bits_for[i].bits);
            return;
        }
    if (o->recipe != MC_RECIPE_UNIFORM) snprintf(buf, cap, "--recipe %s: ", mc_recipe_name(o->recipe));
}

/* Options first (one clear reason), then every module of the built plan. */
static void check_quant(const mc_model *m, const mc_plan *p, uint32_t mask, rep *r)
{
    char names[1024];
    mc_maccode_names(mask, names, sizeof names);
    const mc_plan_opts *o = &p->opts;
    if (o->lossless) {
        mc_maccode_report(r, "--lossless keeps GGML blocks at group size 32; the mac-code engines (%s) build 4-bit group-64 "
                   "layers", names);
        return;
    }
    if (o->no_quant) {
        mc_maccode_report(r, "--no-quant stores float weights; the mac-code engines (%s) build 4-bit group-64 layers", names);
        return;
    }
    if (o->bits != 4 || o->group_size != 64) {
        char opt[64] = "";
        if (o->bits != 4) snprintf(opt, sizeof opt, "--bits %d", o->bits);
        if (o->group_size != 64) append(opt, sizeof opt, "%s--group-size %d", opt[0] ? " " : "", o->group_size);
        mc_maccode_report(r, "%s: the mac-code engines (%s) build 4-bit group-64 layers (BITS = 4, GROUP_SIZE = 64 in their "
                   "source)", opt, names);
        return;
    }
    for (size_t i = 0; i < p->n_items; i++)
        if (p->items[i].mx_mode) {
            mc_maccode_report(r, "%s comes as MXFP4 blocks, kept in MLX's mxfp4 mode (group 32, no biases); the mac-code "
                       "engines (%s) build affine 4-bit group-64 layers: add --requant-mxfp4",
                    p->items[i].mt->name, names);
            return;
        }
    size_t bad = 0;
    char first[2048] = "";
    for (size_t i = 0; i < p->n_items; i++) {
        char path[1024];
        mc_maccode_module mod;
        if (!module_of(m, p, &p->items[i], path, sizeof path, &mod)) continue;
        uint32_t off = 0;
        int want = -1, w0 = -1, conflict = 0;
        for (size_t e = 0; e < N_ENGINES; e++) {
            if (!(mask & (1u << e))) continue;
            int w = mc_maccode_want_bits(&g_engines[e], &mod);
            if (w0 >= 0 && w != w0) conflict = 1;
            w0 = w;
            if (w == mod.bits && (!w || mod.gs == 64)) continue;
            off |= 1u << e;
            want = w;
        }
        if (!off) continue;
        if (!bad++) {
            char have[64], wanted[64], on[512];
            describe(&mod, mod.bits, have, sizeof have);
            if (conflict) { /* the selected engines disagree among themselves */
                on[0] = 0;
                for (size_t e = 0; e < N_ENGINES; e++)
                    if (mask & (1u << e)) {
                        int w = mc_maccode_want_bits(&g_engines[e], &mod);
                        append(on, sizeof on, "%s%s %s", on[0] ? ", " : "", g_engines[e].id,
                               w ? (w == 8 ? "8-bit" : "4-bit") : "unquantized");
                    }
                snprintf(first, sizeof first, "the selected engines build %.400s differently (%s): choose some with "
                         "--engines", mod.path, on);
            } else {
                char cause[256];
                cause_of(o, path, cause, sizeof cause);
                mc_maccode_names(off, on, sizeof on);
                snprintf(wanted, sizeof wanted, want ? "%d-bit group 64" : "unquantized", want);
                snprintf(first, sizeof first, "%s%.400s is stored %s; %s build%s it %s", cause, mod.path, have, on,
                         off & (off - 1) ? "" : "s", wanted);
            }
        }
    }
    if (bad > 1) mc_maccode_report(r, "%s (and %zu more module%s)", first, bad - 1, bad > 2 ? "s" : "");
    else if (bad) mc_maccode_report(r, "%s", first);
}

/* Dense engines stream every layer's FFN, MoE engines every layer's experts
 * through one layout (MoEExpertReader reads layer 0's); both index fixed
 * local names. */
static void check_layers(const mc_model *m, const mc_plan *p, uint32_t mask, rep *r)
{
    static const char *const proj[] = { "gate_proj", "up_proj", "down_proj" };
    static const char *const part[] = { "weight", "scales", "biases" };
    int moe = 0, dense = 0;
    for (size_t e = 0; e < N_ENGINES; e++)
        if (mask & (1u << e)) {
            if (g_engines[e].reads & (MC_MCR_EXP_MLP | MC_MCR_EXP_SW)) moe = 1;
            else dense = 1;
        }
    for (int L = 0; L < m->n_layers; L++) {
        int n_ffn = 0, n_x = 0, missing = 0;
        char miss[256] = "";
        for (size_t i = 0; i < p->n_items; i++)
            if (p->items[i].mt->layer == L) {
                n_ffn += p->items[i].mt->role == MC_ROLE_FFN;
                n_x += p->items[i].mt->role == MC_ROLE_EXPERT;
            }
        if (moe && !n_x) {
            mc_maccode_report(r, "layer %d has no routed experts; the MoE engines stream experts for every layer "
                       "(mlp_only_layers / decoder_sparse_step)", L);
            return;
        }
        if (dense && !n_ffn) {
            mc_maccode_report(r, "layer %d has no dense FFN; the dense engines stream one for every layer", L);
            return;
        }
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++) {
                char want[256];
                snprintf(want, sizeof want, "model.layers.%d.mlp.%s%s.%s", L, moe ? "switch_mlp." : "", proj[a], part[b]);
                int found = 0;
                for (size_t i = 0; i < p->n_items && !found; i++)
                    for (size_t k = 0; k < p->items[i].n_out && !found; k++)
                        found = !strcmp(strip_lm(p->items[i].out[k].name), want);
                if (!found && !missing++) snprintf(miss, sizeof miss, "%s", want);
            }
        if (missing) {
            mc_maccode_report(r, "layer %d: no %s (the engines index mlp.%s{gate,up,down}_proj.{weight,scales,biases})", L, miss,
                    moe ? "switch_mlp." : "");
            return;
        }
    }
    if (moe) { /* every layer's expert tensors like layer 0's */
        const mc_pitem *first[9] = { 0 };
        for (int L = 0; L < m->n_layers; L++) {
            size_t n = 0;
            for (size_t i = 0; i < p->n_items; i++) {
                const mc_pitem *it = &p->items[i];
                if (it->mt->layer != L || it->mt->role != MC_ROLE_EXPERT || n >= 9) continue;
                if (!L) first[n] = it;
                else if (!first[n] || first[n]->n_experts != it->n_experts || first[n]->kind != it->kind ||
                         first[n]->bits != it->bits || first[n]->ncols != it->ncols ||
                         first[n]->nrows != it->nrows || first[n]->float_type != it->float_type) {
                    mc_maccode_report(r, "layer %d's experts are laid out unlike layer 0's (%s); MoEExpertReader reads the "
                               "layout of layer 0 only", L, strip_lm(it->mt->name));
                    return;
                }
                n++;
            }
        }
    }
}

/* ---- config.json ---- */

typedef struct cfgkey {
    const char *model_type;
    const char *key;
    const char *dflt;  /* mlx-lm's default (JSON) when the model has none; NULL: required */
    const char *fixed; /* the engines fix this value without reading it; NULL: they read the key */
} cfgkey;

#define Q35_READ(t)                                                                                              \
    { t, "model_type", NULL, NULL }, { t, "hidden_size", NULL, NULL }, { t, "num_hidden_layers", NULL, NULL },  \
        { t, "num_attention_heads", NULL, NULL }, { t, "num_key_value_heads", NULL, NULL },                      \
        { t, "rms_norm_eps", "1e-6", NULL }, { t, "vocab_size", NULL, NULL },                                    \
        { t, "max_position_embeddings", "131072", NULL }, { t, "head_dim", NULL, NULL },                         \
        { t, "tie_word_embeddings", "false", NULL }, { t, "linear_num_value_heads", "64", NULL },                \
        { t, "linear_num_key_heads", "16", NULL }, { t, "linear_key_head_dim", "192", NULL },                    \
        { t, "linear_value_head_dim", "128", NULL }, { t, "linear_conv_kernel_dim", "4", NULL },                 \
        { t, "full_attention_interval", "4", NULL },                                                             \
        { t, "rope_parameters",                                                                                  \
          "{\"type\": \"default\", \"mrope_section\": [11, 11, 10], \"rope_theta\": 100000, "                    \
          "\"partial_rotary_factor\": 0.25}",                                                                    \
          NULL },                                                                                                \
        { t, "attention_bias", "false", "false" }

#define QWEN3_READ(t)                                                                                            \
    { t, "model_type", NULL, NULL }, { t, "hidden_size", NULL, NULL }, { t, "num_hidden_layers", NULL, NULL },  \
        { t, "num_attention_heads", NULL, NULL }, { t, "num_key_value_heads", NULL, NULL },                      \
        { t, "rms_norm_eps", NULL, NULL }, { t, "vocab_size", NULL, NULL },                                      \
        { t, "max_position_embeddings", NULL, NULL }, { t, "head_dim", NULL, NULL },                             \
        { t, "tie_word_embeddings", NULL, NULL }, { t, "rope_theta", NULL, NULL },                               \
        { t, "intermediate_size", NULL, NULL }, { t, "rope_scaling", "null", "null" }

/* Keys each family's engines read (config["k"] or config.get("k", d)) and
 * the mlx-lm ModelArgs fields they leave at their default. */
static const cfgkey g_keys[] = {
    QWEN3_READ("qwen3"),
    Q35_READ("qwen3_5"),
    { "qwen3_5", "num_experts", "0", "0" },
    Q35_READ("qwen3_5_moe"),
    { "qwen3_5_moe", "num_experts", NULL, NULL },
    { "qwen3_5_moe", "num_experts_per_tok", NULL, NULL },
    { "qwen3_5_moe", "shared_expert_intermediate_size", NULL, NULL },
    { "qwen3_5_moe", "moe_intermediate_size", NULL, NULL },
    { "qwen3_5_moe", "norm_topk_prob", "true", "true" },
    QWEN3_READ("qwen3_moe"),
    { "qwen3_moe", "num_experts", NULL, NULL },
    { "qwen3_moe", "num_experts_per_tok", NULL, NULL },
    { "qwen3_moe", "moe_intermediate_size", NULL, NULL },
    { "qwen3_moe", "norm_topk_prob", NULL, NULL },
    { "qwen3_moe", "decoder_sparse_step", NULL, NULL },
    { "qwen3_moe", "mlp_only_layers", NULL, NULL },
    QWEN3_READ("qwen3_next"),
    { "qwen3_next", "num_experts", NULL, NULL },
    { "qwen3_next", "num_experts_per_tok", NULL, NULL },
    { "qwen3_next", "moe_intermediate_size", NULL, NULL },
    { "qwen3_next", "shared_expert_intermediate_size", NULL, NULL },
    { "qwen3_next", "decoder_sparse_step", NULL, NULL },
    { "qwen3_next", "mlp_only_layers", NULL, NULL },
    { "qwen3_next", "linear_num_value_heads", NULL, NULL },
    { "qwen3_next", "linear_num_key_heads", NULL, NULL },
    { "qwen3_next", "linear_key_head_dim", NULL, NULL },
    { "qwen3_next", "linear_value_head_dim", NULL, NULL },
    { "qwen3_next", "linear_conv_kernel_dim", NULL, NULL },
    { "qwen3_next", "full_attention_interval", "4", NULL },
    { "qwen3_next", "partial_rotary_factor", NULL, NULL },
    { "qwen3_next", "norm_topk_prob", "false", "false" },
    { "qwen3_next", "attention_bias", "false", "false" },
};

static int json_eq_text(const cJSON *v, const char *text)
{
    cJSON *w = cJSON_Parse(text);
    int eq = w && cJSON_Compare(v, w, 1);
    /* numbers compare by value (1 == 1.0) */
    if (w && !eq && cJSON_IsNumber(v) && cJSON_IsNumber(w)) eq = v->valuedouble == w->valuedouble;
    cJSON_Delete(w);
    return eq;
}

/* A missing key the engines read: derived where mlx-lm derives it. */
static cJSON *derive(const cJSON *cfg, const char *key)
{
    if (!strcmp(key, "head_dim")) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(cfg, "hidden_size");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cfg, "num_attention_heads");
        if (cJSON_IsNumber(h) && cJSON_IsNumber(n) && n->valueint > 0)
            return cJSON_CreateNumber((double)(h->valueint / n->valueint));
    }
    if (!strcmp(key, "full_attention_interval")) { /* the period of layer_types' full_attention layers */
        const cJSON *lt = cJSON_GetObjectItemCaseSensitive(cfg, "layer_types"), *x;
        int i = 0, first = -1;
        cJSON_ArrayForEach(x, lt)
        {
            if (cJSON_IsString(x) && !strcmp(x->valuestring, "full_attention") && first < 0) first = i;
            i++;
        }
        if (first >= 0) return cJSON_CreateNumber(first + 1);
    }
    return NULL;
}

size_t mc_maccode_config(cJSON *cfg, uint32_t mask, mc_maccode_problem_fn fn, void *ctx)
{
    rep r = { fn, ctx, 0 };
    for (size_t e = 0; e < N_ENGINES; e++) {
        if (!(mask & (1u << e))) continue;
        size_t prev = 0;
        while (prev < e && !((mask & (1u << prev)) && !strcmp(g_engines[prev].model_type, g_engines[e].model_type)))
            prev++;
        if (prev < e) continue; /* family done */
        char names[1024];
        mc_maccode_names(mask & mc_maccode_family(g_engines[e].model_type, 0), names, sizeof names);
        for (size_t k = 0; k < sizeof g_keys / sizeof g_keys[0]; k++) {
            const cfgkey *c = &g_keys[k];
            if (strcmp(c->model_type, g_engines[e].model_type)) continue;
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, c->key);
            if (c->fixed) { /* not read: the model's value (else mlx-lm's default) must be the engines' */
                int same = v ? json_eq_text(v, c->fixed) : !c->dflt || !strcmp(c->dflt, c->fixed);
                if (!same) {
                    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
                    mc_maccode_report(&r, "config.json: %s is %s; %s build the model with %s = %s (they do not read it)", c->key,
                            t ? t : c->dflt, names, c->key, c->fixed);
                    cJSON_free(t);
                }
                continue;
            }
            if (v && !cJSON_IsNull(v)) continue;
            cJSON *d = derive(cfg, c->key);
            if (!d && c->dflt) d = cJSON_Parse(c->dflt);
            if (!d) {
                mc_maccode_report(&r, "config.json has no %s, which %s read", c->key, names);
                continue;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(cfg, c->key);
            cJSON_AddItemToObject(cfg, c->key, d);
        }
        /* the hybrid engines place linear / full attention by the interval */
        const cJSON *iv = cJSON_GetObjectItemCaseSensitive(cfg, "full_attention_interval");
        const cJSON *lt = cJSON_GetObjectItemCaseSensitive(cfg, "layer_types"), *x;
        int i = 0;
        int hybrid = 0;
        for (size_t k = 0; k < sizeof g_keys / sizeof g_keys[0]; k++)
            hybrid |= !strcmp(g_keys[k].model_type, g_engines[e].model_type) &&
                      !strcmp(g_keys[k].key, "full_attention_interval");
        if (hybrid && cJSON_IsNumber(iv) && iv->valueint > 0 && cJSON_IsArray(lt))
            cJSON_ArrayForEach(x, lt)
            {
                int full = cJSON_IsString(x) && !strcmp(x->valuestring, "full_attention");
                if (full != ((i + 1) % iv->valueint == 0)) {
                    mc_maccode_report(&r, "config.json: layer %d is %s but %s place full attention every %d layers", i,
                            full ? "full attention" : "linear attention", names, iv->valueint);
                    break;
                }
                i++;
            }
    }
    return (size_t)r.n;
}

size_t mc_maccode_check(const mc_model *m, const mc_plan *p, uint32_t mask, mc_maccode_problem_fn fn, void *ctx)
{
    rep r = { fn, ctx, 0 };
    check_quant(m, p, mask, &r);
    check_layers(m, p, mask, &r);
    cJSON *cfg = m->config ? cJSON_Duplicate(m->config, 1) : cJSON_CreateObject();
    if (cfg) r.n += mc_maccode_config(cfg, mask, fn, ctx);
    cJSON_Delete(cfg);
    return (size_t)r.n;
}
