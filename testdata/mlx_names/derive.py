#!/usr/bin/env python3
"""Derive the tensor names and shapes an mlx-lm model loads, per corpus
architecture, from the module structure of mlx-lm's model classes (mirror of
ml-explore/mlx-lm, mlx_lm/models/*.py) and the corpus hf/config.json.

Each function below transcribes the __init__ methods of one model file:
every nn.Linear(in, out, bias) gives "<path>.weight" [out, in] (+ ".bias"
[out]), nn.Embedding(n, d) gives "<path>.weight" [n, d], RMSNorm(d) gives
"<path>.weight" [d], SwitchGLU(d, h, E) (switch_layers.py) gives
"<path>.{gate,up,down}_proj.weight" [E, h, d] / [E, d, h]. Run:
    python3 derive.py CORPUS/models  (writes <arch>.txt here)
"""
import json, os, sys

def lin(out, path, i, o, bias=False):
    out.append((path + ".weight", [o, i]))
    if bias:
        out.append((path + ".bias", [o]))

def norm(out, path, d):
    out.append((path + ".weight", [d]))

def switch_glu(out, path, d, h, e):
    out.append((path + ".gate_proj.weight", [e, h, d]))
    out.append((path + ".up_proj.weight", [e, h, d]))
    out.append((path + ".down_proj.weight", [e, d, h]))

def mlp(out, path, d, h):
    lin(out, path + ".gate_proj", d, h)
    lin(out, path + ".down_proj", h, d)
    lin(out, path + ".up_proj", d, h)

def attn(out, path, c, hd, bias_qkv=False, qk_norm=False):
    d, nh, nkv = c["hidden_size"], c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
    lin(out, path + ".q_proj", d, nh * hd, bias_qkv)
    lin(out, path + ".k_proj", d, nkv * hd, bias_qkv)
    lin(out, path + ".v_proj", d, nkv * hd, bias_qkv)
    lin(out, path + ".o_proj", nh * hd, d)
    if qk_norm:
        norm(out, path + ".q_norm", hd)
        norm(out, path + ".k_norm", hd)

def top(out, c, lm_head=True):
    out.append(("model.embed_tokens.weight", [c["vocab_size"], c["hidden_size"]]))
    norm(out, "model.norm", c["hidden_size"])
    if lm_head and not c.get("tie_word_embeddings", True):
        lin(out, "lm_head", c["hidden_size"], c["vocab_size"])

# llama.py: Attention(q/k/v/o, bias=attention_bias), MLP, two RMSNorms
def llama(c):
    out = []; top(out, c)
    hd = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        attn(out, p + ".self_attn", c, hd, c.get("attention_bias", False))
        mlp(out, p + ".mlp", c["hidden_size"], c["intermediate_size"])
        norm(out, p + ".input_layernorm", c["hidden_size"]); norm(out, p + ".post_attention_layernorm", c["hidden_size"])
    return out

# qwen3.py: Attention with q_norm/k_norm (head_dim), no biases
def qwen3(c):
    out = []; top(out, c)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        attn(out, p + ".self_attn", c, c["head_dim"], qk_norm=True)
        mlp(out, p + ".mlp", c["hidden_size"], c["intermediate_size"])
        norm(out, p + ".input_layernorm", c["hidden_size"]); norm(out, p + ".post_attention_layernorm", c["hidden_size"])
    return out

# qwen3_moe.py: Qwen3MoeSparseMoeBlock = gate Linear(d, E) + switch_mlp SwitchGLU(d, moe_intermediate_size, E)
# for layers not in mlp_only_layers with (l+1) % decoder_sparse_step == 0, else MLP
def qwen3_moe(c):
    out = []; top(out, c)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        attn(out, p + ".self_attn", c, c["head_dim"], qk_norm=True)
        if l not in c.get("mlp_only_layers", []) and c["num_experts"] > 0 and (l + 1) % c.get("decoder_sparse_step", 1) == 0:
            lin(out, p + ".mlp.gate", c["hidden_size"], c["num_experts"])
            switch_glu(out, p + ".mlp.switch_mlp", c["hidden_size"], c["moe_intermediate_size"], c["num_experts"])
        else:
            mlp(out, p + ".mlp", c["hidden_size"], c["intermediate_size"])
        norm(out, p + ".input_layernorm", c["hidden_size"]); norm(out, p + ".post_attention_layernorm", c["hidden_size"])
    return out

# mixtral.py: head_dim = hidden/heads; block_sparse_moe = gate Linear(d, E) + switch_mlp SwitchGLU(d, intermediate, E)
def mixtral(c):
    out = []; top(out, c)
    hd = c["hidden_size"] // c["num_attention_heads"]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        attn(out, p + ".self_attn", c, hd)
        lin(out, p + ".block_sparse_moe.gate", c["hidden_size"], c["num_local_experts"])
        switch_glu(out, p + ".block_sparse_moe.switch_mlp", c["hidden_size"], c["intermediate_size"], c["num_local_experts"])
        norm(out, p + ".input_layernorm", c["hidden_size"]); norm(out, p + ".post_attention_layernorm", c["hidden_size"])
    return out

# phi3.py: qkv_proj Linear(d, (nh + 2 nkv) * hd), o_proj; MLP gate_up_proj Linear(d, 2h), down_proj
def phi3(c):
    out = []; top(out, c)
    d, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    hd = d // nh
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        lin(out, p + ".self_attn.qkv_proj", d, (nh + 2 * nkv) * hd)
        lin(out, p + ".self_attn.o_proj", nh * hd, d)
        lin(out, p + ".mlp.gate_up_proj", d, 2 * c["intermediate_size"])
        lin(out, p + ".mlp.down_proj", c["intermediate_size"], d)
        norm(out, p + ".input_layernorm", d); norm(out, p + ".post_attention_layernorm", d)
    return out

# gemma3_text.py: Attention with q_norm/k_norm, MLP, four RMSNorms per layer;
# Model always has lm_head (sanitize drops it when the checkpoint has none)
def gemma3(c):
    out = []; top(out, c)
    d = c["hidden_size"]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        attn(out, p + ".self_attn", c, c["head_dim"], qk_norm=True)
        mlp(out, p + ".mlp", d, c["intermediate_size"])
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            norm(out, p + "." + n, d)
    return out

ARCHS = {"llama": (llama, "llama.py"), "qwen3": (qwen3, "qwen3.py"), "qwen3_moe": (qwen3_moe, "qwen3_moe.py, switch_layers.py"),
         "mixtral": (mixtral, "mixtral.py, switch_layers.py"), "phi3": (phi3, "phi3.py"), "gemma3": (gemma3, "gemma3_text.py")}

if __name__ == "__main__":
    root = sys.argv[1]
    for arch, (fn, src) in ARCHS.items():
        c = json.load(open(os.path.join(root, arch, "hf", "config.json")))
        rows = sorted(fn(c))
        with open(arch + ".txt", "w") as f:
            f.write(f"# mlx-lm tensor names and shapes for corpus models/{arch} (hf/config.json),\n")
            f.write(f"# derived by derive.py from the module structure of mlx-lm mlx_lm/models/{src}\n")
            f.write("# (mirror ml-explore/mlx-lm d78bf58). One line: name dim0,dim1,...\n")
            for n, s in rows:
                f.write(n + " " + ",".join(str(x) for x in s) + "\n")
