/* llama (and mistral) and mixtral: mlx-lm models/llama.py and mixtral.py.
 *
 * llama.cpp's converter (LlamaModel.permute) reorders the rows of Q and K
 * (weights and biases) within each head for its rotary kernel: GGUF row
 * h*hd + 2i + j holds HF row h*hd + j*hd/2 + i. MC_X_ROPE_Q/K undo it.
 * Mixtral GGUFs are general.architecture "llama" with expert_count > 0:
 * stacked ffn_{gate,up,down}_exps (older files: per-expert ffn_gate.E). */
#include "mc_arch_rules.h"
#include <cJSON.h>
#include <math.h>

#define P MC_ROLE_PINNED
#define F MC_ROLE_FFN
#define A "model.layers.{L}.self_attn."
#define M "model.layers.{L}.mlp."
#define B "model.layers.{L}.block_sparse_moe."

#define LLAMA_ATTN \
    {"model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", 0, 0, P, 0}, \
    {A "q_proj.weight", "blk.{L}.attn_q.weight", A "q_proj.weight", MC_X_ROPE_Q, 0, P, MC_R_Q}, \
    {A "q_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_Q_ROPE, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_k.weight", A "k_proj.weight", MC_X_ROPE_K, 0, P, MC_R_Q}, \
    {A "k_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_K_ROPE, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_v.weight", A "v_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "v_proj.weight", "blk.{L}.attn_qkv.weight", NULL, MC_X_SPLIT_V, 0, P, MC_R_Q}, \
    {A "o_proj.weight", "blk.{L}.attn_output.weight", A "o_proj.weight", 0, 0, P, MC_R_Q}, \
    {A "q_proj.bias", "blk.{L}.attn_q.bias", A "q_proj.bias", MC_X_ROPE_Q, 0, P, MC_R_OPT}, \
    {A "k_proj.bias", "blk.{L}.attn_k.bias", A "k_proj.bias", MC_X_ROPE_K, 0, P, MC_R_OPT}, \
    {A "v_proj.bias", "blk.{L}.attn_v.bias", A "v_proj.bias", 0, 0, P, MC_R_OPT}, \
    {A "o_proj.bias", "blk.{L}.attn_output.bias", A "o_proj.bias", 0, 0, P, MC_R_OPT}, \
    {"model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", 0, 0, P, 0}

static const mc_rule llama_rules[] = {
    MC_RULES_GLOBAL,
    LLAMA_ATTN,
    MC_RULES_MLP(0),
    {M "gate_proj.bias", "blk.{L}.ffn_gate.bias", M "gate_proj.bias", 0, 0, F, MC_R_OPT},
    {M "up_proj.bias", "blk.{L}.ffn_up.bias", M "up_proj.bias", 0, 0, F, MC_R_OPT},
    {M "down_proj.bias", "blk.{L}.ffn_down.bias", M "down_proj.bias", 0, 0, F, MC_R_OPT},
};

static const mc_rule mixtral_rules[] = {
    MC_RULES_GLOBAL,
    LLAMA_ATTN,
    {B "gate.weight", "blk.{L}.ffn_gate_inp.weight", B "gate.weight", 0, 0, P, MC_R_Q | MC_R_MOE},
    MC_RULES_EXPERTS(B, B "experts.{E}.w1.weight", B "experts.{E}.w3.weight", B "experts.{E}.w2.weight"),
};

/* Llama 3 RoPE scaling. llama.cpp's LlamaModel stores only the per-frequency
 * factors (rope_freqs, f32 [dim/2]): 1 for wavelengths below
 * old_ctx/high_freq_factor, `factor` above old_ctx/low_freq_factor, and
 * 1 / ((1 - s) / factor + s), s = (old_ctx / wavelen - low) / (high - low),
 * between. mlx-lm's llama3 rope wants the parameters. They are identifiable
 * only up to a common scale of (old_ctx, low, high), so low_freq_factor = 1
 * (what every Llama 3.x release uses); factor is the largest entry; old_ctx
 * and high come from the transition entries (s is linear in 1/wavelen):
 * two or more needed, else high = 4 is assumed. The fit is accepted only if
 * it reproduces every entry to 1e-4 relative; else a notice. */
static int llama3_rope_fit(mc_cv *cv, const float *r, size_t n, double theta, double *factor, double *high,
                           double *old)
{
    double f = 0;
    for (size_t i = 0; i < n; i++) f = r[i] > f ? r[i] : f;
    if (!(f > 1.0)) return 1;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    size_t k = 0;
    double dim = 2.0 * (double)n;
    const double pi = 3.14159265358979323846;
    for (size_t i = 0; i < n; i++) {
        if (!(r[i] > 1.0f + 1e-6f && r[i] < (float)f * (1.0f - 1e-6f))) continue;
        double freq = 1.0 / pow(theta, (2.0 * (double)i) / dim), x = freq / (2 * pi);
        double s = (1.0 / r[i] - 1.0 / f) / (1.0 - 1.0 / f);
        sx += x, sy += s, sxx += x * x, sxy += x * s;
        k++;
    }
    double lo = 1.0, hi = 4.0, oc = 0;
    if (k >= 2) {
        double a = (k * sxy - sx * sy) / (k * sxx - sx * sx), b = (sy - a * sx) / k;
        if (!(b < 0) || !(a > 0)) return 1;
        hi = 1.0 - 1.0 / b;
        oc = -a / b;
    } else if (k == 1) {
        oc = (sy * (hi - lo) + lo) / sx;
    } else {
        return 1;
    }
    oc = floor(oc + 0.5);
    if (fabs(hi - floor(hi + 0.5)) < 1e-3) hi = floor(hi + 0.5);
    /* check */
    for (size_t i = 0; i < n; i++) {
        double freq = 1.0 / pow(theta, (2.0 * (double)i) / dim), wl = 2 * pi / freq, want;
        if (wl < oc / hi) want = 1.0;
        else if (wl > oc / lo) want = f;
        else {
            double s = (oc / wl - lo) / (hi - lo);
            want = 1.0 / ((1.0 - s) / f + s);
        }
        if (fabs(want - r[i]) > 1e-4 * want) return 1;
    }
    (void)cv;
    *factor = f;
    *high = hi;
    *old = oc;
    return 0;
}

/* rope_scaling from rope_freqs (when the metadata has none). */
static int llama3_rope_scaling(mc_cv *cv, cJSON *cfg, const mc_cfg_key *k, mc_error *err)
{
    int bad = 0;
    float rf[4096];
    size_t nrf = 0;
    int rc = mc_cv_gguf_read_f32(cv, "rope_freqs.weight", rf, 4096, &nrf, err);
    if (rc && rc != MC_ERR_NOTFOUND) return rc;
    if (rc == 0 && !cJSON_GetObjectItemCaseSensitive(cfg, k->key)) {
        double theta = 10000.0, factor, high, old;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "rope_theta");
        if (cJSON_IsNumber(t)) theta = t->valuedouble;
        if (llama3_rope_fit(cv, rf, nrf, theta, &factor, &high, &old) == 0) {
            cJSON *o = cJSON_AddObjectToObject(cfg, k->key);
            bad |= !o;
            if (o) {
                bad |= !cJSON_AddStringToObject(o, "rope_type", "llama3");
                bad |= !cJSON_AddNumberToObject(o, "factor", mc_cv_f32_decimal(factor));
                bad |= !cJSON_AddNumberToObject(o, "low_freq_factor", 1.0);
                bad |= !cJSON_AddNumberToObject(o, "high_freq_factor", high);
                bad |= !cJSON_AddNumberToObject(o, "original_max_position_embeddings", old);
            }
        } else {
            mc_cv_notice(cv, "%s: rope_freqs.weight does not fit Llama 3 RoPE scaling: rope_scaling not set",
                         cv->m->input_path);
        }
    }
    return bad ? mc_error_set(err, MC_ERR_NOMEM, "out of memory") : 0;
}

/* attention_bias / mlp_bias as llama.py reads them: from the tensors present. */
static const mc_cfg_key llama_gguf_config[] = {
    MC_CFG_FN("rope_scaling", llama3_rope_scaling),
    MC_CFG_HAS("attention_bias", "model.layers.0.self_attn.q_proj.bias"),
    MC_CFG_HAS("mlp_bias", "model.layers.0.mlp.gate_proj.bias"),
};

static const mc_cfg_key mixtral_gguf_config[] = {
    MC_CFG_MODEL("num_local_experts", MC_CV_EXPERTS, 0),
    MC_CFG_MODEL("num_experts_per_tok", MC_CV_EXPERTS_PER_TOK, 0),
};

const mc_arch mc_arch_llama = {
    .name = "llama", .model_type = "llama",
    .gguf_arch = "llama", .gguf_experts = MC_GGUF_NO_EXPERTS, .hf_types = "llama mistral",
    .rules = llama_rules, .n_rules = MC_COUNT(llama_rules),
    .gguf_config = llama_gguf_config, .n_gguf_config = MC_COUNT(llama_gguf_config),
};

const mc_arch mc_arch_mixtral = {
    .name = "mixtral", .model_type = "mixtral",
    .gguf_arch = "llama", .gguf_experts = MC_GGUF_EXPERTS, .hf_types = "mixtral",
    .rules = mixtral_rules, .n_rules = MC_COUNT(mixtral_rules),
    .kinds = {{MC_K_MOE, MC_K_DENSE, "blk.{L}.ffn_gate_inp.weight", B "gate.weight"}},
    .gguf_config = mixtral_gguf_config, .n_gguf_config = MC_COUNT(mixtral_gguf_config),
};
