/* mc_arch_rules: rule pieces many architectures share, under the names
 * llama.cpp and Hugging Face give them in Llama-shaped models (mlx-lm
 * names: model.embed_tokens, model.norm, lm_head, model.layers.N.mlp.*).
 * An arch file includes this after mc_convert_int.h and writes the rest of
 * its table itself. */
#ifndef MC_ARCH_RULES_H
#define MC_ARCH_RULES_H

#include "mc_convert_int.h"

/* Embeddings, final norm and the (possibly tied) output head. */
#define MC_RULES_GLOBAL \
    {"model.embed_tokens.weight", "token_embd.weight", "model.embed_tokens.weight", 0, 0, MC_ROLE_PINNED, MC_R_Q}, \
    {"model.norm.weight", "output_norm.weight", "model.norm.weight", 0, 0, MC_ROLE_PINNED, 0}, \
    {"lm_head.weight", "output.weight", "lm_head.weight", 0, 0, MC_ROLE_PINNED, MC_R_Q | MC_R_NOTIED}

/* The two norms of a layer and a plain attention (q/k/v/o projections
 * with no row permutation or other transform), pinned. */
#define MC_RULES_NORMS_ATTN \
    {"model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", \
     0, 0, MC_ROLE_PINNED, 0}, \
    {"model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", \
     "model.layers.{L}.post_attention_layernorm.weight", 0, 0, MC_ROLE_PINNED, 0}, \
    {"model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight", \
     0, 0, MC_ROLE_PINNED, MC_R_Q}, \
    {"model.layers.{L}.self_attn.k_proj.weight", "blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight", \
     0, 0, MC_ROLE_PINNED, MC_R_Q}, \
    {"model.layers.{L}.self_attn.v_proj.weight", "blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight", \
     0, 0, MC_ROLE_PINNED, MC_R_Q}, \
    {"model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight", \
     "model.layers.{L}.self_attn.o_proj.weight", 0, 0, MC_ROLE_PINNED, MC_R_Q}

/* A dense SwiGLU FFN (mlp.gate_proj / up_proj / down_proj), streamed per
 * layer; flags: more MC_R_* (MC_R_DENSE in models with MoE layers). */
#define MC_RULES_MLP(flags) \
    {"model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight", "model.layers.{L}.mlp.gate_proj.weight", \
     0, 0, MC_ROLE_FFN, MC_R_Q | (flags)}, \
    {"model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight", \
     0, 0, MC_ROLE_FFN, MC_R_Q | (flags)}, \
    {"model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight", \
     0, 0, MC_ROLE_FFN, MC_R_Q | (flags)}

/* Routed experts stacked [E, out, in] as mlx-lm's SwitchGLU (pre
 * "switch_mlp.{gate,up,down}_proj"): GGUF ffn_{gate,up,down}_exps (files of
 * older converters: one ffn_*.E per expert), HF one tensor per expert
 * (hg, hu, hd: patterns with {E}). pre: the mlx-lm module, e.g.
 * "model.layers.{L}.mlp.". */
#define MC_RULES_EXPERTS(pre, hg, hu, hd) \
    {pre "switch_mlp.gate_proj.weight", "blk.{L}.ffn_gate_exps.weight", hg, 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE}, \
    {pre "switch_mlp.gate_proj.weight", "blk.{L}.ffn_gate.{E}.weight", NULL, 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE}, \
    {pre "switch_mlp.up_proj.weight", "blk.{L}.ffn_up_exps.weight", hu, 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE}, \
    {pre "switch_mlp.up_proj.weight", "blk.{L}.ffn_up.{E}.weight", NULL, 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE}, \
    {pre "switch_mlp.down_proj.weight", "blk.{L}.ffn_down_exps.weight", hd, 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE}, \
    {pre "switch_mlp.down_proj.weight", "blk.{L}.ffn_down.{E}.weight", NULL, 0, 0, MC_ROLE_EXPERT, MC_R_Q | MC_R_MOE}

#endif
