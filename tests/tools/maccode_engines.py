#!/usr/bin/env python3
"""Read a mac-code folder exactly as each mac-code engine reads it, and check
that every tensor an engine reads equals the same tensor of an mlx-lm folder
of the same conversion (mconv --layout mlx), bit for bit, at the dtype the
engine decodes it with.

usage: maccode_engines.py MACCODE_DIR MLX_DIR [ENGINE_ID ...]
       (default: the engines named in config.json "streaming.engines")

Python 3 standard library only; nothing comes from mconv. Each reader below is
re-implemented from the engine's source (walter-grace/mac-code, research/),
named in its comment, and MLX's own loader from ml-explore/mlx
(mlx/io/safetensors.cpp). Per engine it checks:
  - config.json: "quantization" as stored (the mlx folder's, names without
    "language_model."); the ModelArgs the engine builds (its config["k"] and
    config.get("k", default) calls) against those mlx-lm builds from the mlx
    folder's config.json (the fields it does not pass: mlx-lm's defaults);
  - quantization: every module of the model, quantized by the engine's own
    nn.quantize predicate (4 bits, group 64, hard-coded), against the bits
    the mlx folder stores it at (config "quantization");
  - pinned.safetensors through mx.load + load_weights(strict=False): every
    key is a parameter of the model (strict=False would drop it silently),
    every parameter the forward uses is there, bytes and dtype equal;
  - the streamed tensors through the engine's reader (mx.load of
    ffn/layer_NN.safetensors, direct_io.py DirectFFNReader, expert_io.py
    MoEExpertReader) under the names the engine indexes, every layer, every
    expert: bytes equal the mlx tensor (expert e: slice e), dtype as decoded
    equals the mlx dtype;
  - the cli-agent's extras: calibrate.auto_size_cache (bin/ listing),
    generate.load_engine's dispatch on model_type, calibrate's
    dirname(expert_dir) == MODEL_DIR; the tokenizer files of the folder
    (engines that load it from MODEL_DIR) equal the mlx folder's.
Exit 0 when every check holds, 1 otherwise (each failure printed).
"""
import json
import os
import re
import struct
import sys

PAGE_SIZE = 16384
FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


# ---- MLX's safetensors loader (ml-explore/mlx mlx/io/safetensors.cpp,
# load_safetensors): u64 header length (0 < n < 1e8), JSON, "__metadata__"
# skipped, each array read from 8 + n + data_offsets[0], its size from shape
# and dtype (data_offsets[1] is not read). Used by mx.load.

ST_DTYPES = {"F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2), "U32": ("uint32", 4),
             "U8": ("uint8", 1), "I32": ("int32", 4), "I64": ("int64", 8), "U16": ("uint16", 2),
             "I16": ("int16", 2), "I8": ("int8", 1), "U64": ("uint64", 8), "BOOL": ("bool", 1)}


class Arr:
    """An array as an engine holds it: dtype name, shape, raw bytes."""

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), data


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def mx_load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n <= 0 or n >= 100000000:
            raise ValueError("[load_safetensors] Invalid json header length " + path)
        meta = json.loads(f.read(n))
        if not isinstance(meta, dict):
            raise ValueError("[load_safetensors] Invalid json metadata " + path)
        out = {}
        for key, item in meta.items():
            if key == "__metadata__":
                continue
            name, size = ST_DTYPES[item["dtype"]]
            nbytes = prod(item["shape"]) * size
            f.seek(8 + n + item["data_offsets"][0])
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise ValueError("%s: %s reads past the end" % (path, key))
            out[key] = Arr(name, item["shape"], data)
        return out


def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


# ---- the mlx-lm folder (the reference)

class MlxFolder:
    def __init__(self, d):
        self.dir = d
        self.config = json.load(open(os.path.join(d, "config.json")))
        idx = os.path.join(d, "model.safetensors.index.json")
        shards = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else [
            "model.safetensors"]
        self.where = {}
        for s in shards:
            h, start = st_header(os.path.join(d, s))
            for k, v in h.items():
                if k != "__metadata__":
                    self.where[k] = (s, start, v)

    def names(self):
        return list(self.where)

    def tensor(self, name):
        s, start, v = self.where[name]
        a, b = v["data_offsets"]
        with open(os.path.join(self.dir, s), "rb") as f:
            f.seek(start + a)
            return Arr(ST_DTYPES[v["dtype"]][0], v["shape"], f.read(b - a))

    def quant(self, module):
        """(bits, group_size) mlx-lm loads module with (0, 0: not quantized)."""
        if module + ".scales" not in self.where:
            return 0, 0
        q = self.config.get("quantization", {})
        e = q.get(module, q)
        return e.get("bits", 0), e.get("group_size", 0)


# ---- direct_io.py DirectFFNReader (research/flash-streaming/direct_io.py,
# also research/expert-sniper/mlx-sniper/direct_io.py): __init__ parses
# f"{aligned_dir}/layer_{i:02d}.bin" headers (f.read(PAGE_SIZE), rstrip NULs,
# decode, json.loads); _read_layer preads each tensor and maps its dtype with
# {"float16": f16, "float32": f32, "uint32": u32, "bfloat16": f16} (else u8).

NP_SIZES = {"float16": 2, "float32": 4, "uint32": 4, "uint8": 1}


class DirectFFNReader:
    def __init__(self, aligned_dir, num_layers=64):
        self.aligned_dir = aligned_dir
        self.headers = {}
        for i in range(num_layers):
            with open(f"{aligned_dir}/layer_{i:02d}.bin", "rb") as f:
                header_bytes = f.read(PAGE_SIZE)
            self.headers[i] = json.loads(header_bytes.rstrip(b"\x00").decode("utf-8"))

    def get(self, layer_idx):
        header = self.headers[layer_idx]
        result = {}
        fd = os.open(f"{self.aligned_dir}/layer_{layer_idx:02d}.bin", os.O_RDONLY)
        try:
            for name, info in header["tensors"].items():
                clean = info["dtype"].replace("mlx.core.", "")
                np_dtype = {"float16": "float16", "float32": "float32", "uint32": "uint32",
                            "bfloat16": "float16"}.get(clean, "uint8")
                data = os.pread(fd, info["nbytes"], info["offset"])
                if len(data) != info["nbytes"]:
                    raise IOError(f"pread returned {len(data)} bytes, expected {info['nbytes']}")
                n = prod(info["shape"]) * NP_SIZES[np_dtype]
                if n > len(data):
                    raise ValueError(f"{name}: buffer smaller than its shape")
                result[name] = Arr(np_dtype, info["shape"], data[:n])
        finally:
            os.close(fd)
        return result


# ---- expert_io.py MoEExpertReader (research/flash-streaming/expert_io.py;
# research/expert-sniper/mlx-sniper/expert_io.py = cli-agent's
# mlx_expert_sniper/expert_io.py): headers of f"{expert_dir}/layer_{i:02d}.bin"
# for every i < num_layers, layout (expert_block_size, data_start, tensors)
# from layer 0 only; _read_expert preads expert_block_size bytes at
# data_start + e * expert_block_size; _parse_expert_data views each tensor
# with {uint32, float16, float32, bfloat16} (else float16).

MLX_SIZES = {"uint32": 4, "float16": 2, "float32": 4, "bfloat16": 2}


class MoEExpertReader:
    def __init__(self, expert_dir, num_layers):
        self.expert_dir = expert_dir
        self.headers = {}
        for i in range(num_layers):
            with open(f"{expert_dir}/layer_{i:02d}.bin", "rb") as f:
                raw = f.read(PAGE_SIZE)
            self.headers[i] = json.loads(raw.rstrip(b"\x00"))
        h0 = self.headers[0]["layout"]
        self.expert_block_size = h0["expert_block_size"]
        self.data_start = h0["data_start"]
        self.tensor_layout = h0["tensors"]

    def get_expert(self, layer_idx, expert_id):
        fd = os.open(f"{self.expert_dir}/layer_{layer_idx:02d}.bin", os.O_RDONLY)
        try:
            raw = os.pread(fd, self.expert_block_size, self.data_start + expert_id * self.expert_block_size)
        finally:
            os.close(fd)
        result = {}
        for name, info in self.tensor_layout.items():
            dt = info["dtype"].replace("mlx.core.", "")
            if dt not in MLX_SIZES:
                dt = "float16"
            arr_bytes = raw[info["inner_offset"]:info["inner_offset"] + info["nbytes"]]
            if len(arr_bytes) != prod(info["shape_per_expert"]) * MLX_SIZES[dt]:
                raise ValueError(f"{name}: {len(arr_bytes)} bytes cannot be viewed as {dt} "
                                 f"{info['shape_per_expert']}")
            result[name] = Arr(dt, info["shape_per_expert"], arr_bytes)
        return result


# ---- the engines' ModelArgs (their config reads, copied call by call)

def q35_common(c, moe, gets):
    """qwen3_5 TextModelArgs(...) as flash_stream_27b.py / flash_moe.py /
    moe_agent.py / batched_moe.py / moe_agent_macbook.py (gets=False) and
    moe_agent_35b.py / cli-agent engine.py (gets=True) build it."""
    a = dict(model_type=c.get("model_type"), hidden_size=c["hidden_size"], num_hidden_layers=c["num_hidden_layers"],
             num_attention_heads=c["num_attention_heads"], num_key_value_heads=c["num_key_value_heads"],
             rms_norm_eps=c["rms_norm_eps"], vocab_size=c["vocab_size"],
             max_position_embeddings=c.get("max_position_embeddings", 262144) if gets else c["max_position_embeddings"],
             head_dim=c.get("head_dim"),
             tie_word_embeddings=c.get("tie_word_embeddings", False) if gets else c["tie_word_embeddings"],
             linear_num_value_heads=c.get("linear_num_value_heads"), linear_num_key_heads=c.get("linear_num_key_heads"),
             linear_key_head_dim=c.get("linear_key_head_dim"), linear_value_head_dim=c.get("linear_value_head_dim"),
             linear_conv_kernel_dim=c.get("linear_conv_kernel_dim"),
             full_attention_interval=c.get("full_attention_interval"), rope_parameters=c.get("rope_parameters"))
    if moe:
        a.update(num_experts=c["num_experts"], num_experts_per_tok=c["num_experts_per_tok"],
                 shared_expert_intermediate_size=c.get("shared_expert_intermediate_size") if gets
                 else c["shared_expert_intermediate_size"], moe_intermediate_size=c["moe_intermediate_size"])
    return a


def args_qwen3(c):  # flash_stream.py, flash_stream_batched.py, flash_stream_v2.py, flash_agent.py
    return dict(model_type=c["model_type"], hidden_size=c["hidden_size"], num_hidden_layers=c["num_hidden_layers"],
                intermediate_size=c["intermediate_size"], num_attention_heads=c["num_attention_heads"],
                num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
                vocab_size=c["vocab_size"], max_position_embeddings=c["max_position_embeddings"],
                rope_theta=c["rope_theta"], head_dim=c["head_dim"], tie_word_embeddings=c["tie_word_embeddings"])


def args_qwen3_moe(c):  # cli-agent engine_30b.py, mlx-sniper moe_agent_30b.py
    return dict(model_type=c.get("model_type"), hidden_size=c["hidden_size"],
                num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
                num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
                vocab_size=c["vocab_size"], max_position_embeddings=c.get("max_position_embeddings", 40960),
                head_dim=c.get("head_dim"), tie_word_embeddings=c.get("tie_word_embeddings", True),
                num_experts=c["num_experts"], num_experts_per_tok=c["num_experts_per_tok"],
                moe_intermediate_size=c["moe_intermediate_size"], norm_topk_prob=c.get("norm_topk_prob", True),
                intermediate_size=c.get("intermediate_size", 6144),
                decoder_sparse_step=c.get("decoder_sparse_step", 1), mlp_only_layers=c.get("mlp_only_layers", []),
                rope_theta=c.get("rope_theta", 1000000.0))


def args_qwen3_next(c):  # cli-agent engine_next.py
    return dict(model_type=c.get("model_type"), hidden_size=c["hidden_size"],
                num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
                num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
                vocab_size=c["vocab_size"], max_position_embeddings=c.get("max_position_embeddings", 262144),
                head_dim=c.get("head_dim"), tie_word_embeddings=c.get("tie_word_embeddings", False),
                num_experts=c["num_experts"], num_experts_per_tok=c["num_experts_per_tok"],
                shared_expert_intermediate_size=c.get("shared_expert_intermediate_size"),
                moe_intermediate_size=c["moe_intermediate_size"],
                linear_num_value_heads=c.get("linear_num_value_heads"),
                linear_num_key_heads=c.get("linear_num_key_heads"), linear_key_head_dim=c.get("linear_key_head_dim"),
                linear_value_head_dim=c.get("linear_value_head_dim"),
                linear_conv_kernel_dim=c.get("linear_conv_kernel_dim"),
                full_attention_interval=c.get("full_attention_interval"),
                partial_rotary_factor=c.get("partial_rotary_factor", 0.25),
                intermediate_size=c.get("intermediate_size", 5120), decoder_sparse_step=c.get("decoder_sparse_step", 1),
                mlp_only_layers=c.get("mlp_only_layers", []), rope_theta=c.get("rope_theta", 10000000))


# mlx-lm's ModelArgs fields and defaults (ml-explore/mlx-lm mlx_lm/models/
# qwen3.py, qwen3_moe.py, qwen3_next.py, qwen3_5.py TextModelArgs); REQ: no
# default. What mlx-lm builds from the mlx folder's config.json.
REQ = object()
Q35_FIELDS = dict(model_type="", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, rms_norm_eps=1e-6, vocab_size=151936, num_key_value_heads=8,
                  max_position_embeddings=131072, linear_num_value_heads=64, linear_num_key_heads=16,
                  linear_key_head_dim=192, linear_value_head_dim=128, linear_conv_kernel_dim=4,
                  tie_word_embeddings=False, attention_bias=False, head_dim=None, full_attention_interval=4,
                  num_experts=0, num_experts_per_tok=0, decoder_sparse_step=1, shared_expert_intermediate_size=0,
                  moe_intermediate_size=0, norm_topk_prob=True,
                  rope_parameters={"type": "default", "mrope_section": [11, 11, 10], "rope_theta": 100000,
                                   "partial_rotary_factor": 0.25})
FIELDS = {
    "mlx_lm.models.qwen3.Model": dict(
        model_type=REQ, hidden_size=REQ, num_hidden_layers=REQ, intermediate_size=REQ, num_attention_heads=REQ,
        rms_norm_eps=REQ, vocab_size=REQ, num_key_value_heads=REQ, max_position_embeddings=REQ, rope_theta=REQ,
        head_dim=REQ, tie_word_embeddings=REQ, rope_scaling=None),
    "mlx_lm.models.qwen3_moe.Model": dict(
        model_type=REQ, hidden_size=REQ, num_hidden_layers=REQ, intermediate_size=REQ, num_attention_heads=REQ,
        num_experts=REQ, num_experts_per_tok=REQ, decoder_sparse_step=REQ, mlp_only_layers=REQ,
        moe_intermediate_size=REQ, rms_norm_eps=REQ, vocab_size=REQ, num_key_value_heads=REQ, head_dim=REQ,
        rope_theta=REQ, tie_word_embeddings=REQ, max_position_embeddings=REQ, norm_topk_prob=REQ, rope_scaling=None),
    "mlx_lm.models.qwen3_next.Model": dict(
        model_type=REQ, hidden_size=REQ, num_hidden_layers=REQ, intermediate_size=REQ, num_attention_heads=REQ,
        linear_num_value_heads=REQ, linear_num_key_heads=REQ, linear_key_head_dim=REQ, linear_value_head_dim=REQ,
        linear_conv_kernel_dim=REQ, num_experts=REQ, num_experts_per_tok=REQ, decoder_sparse_step=REQ,
        shared_expert_intermediate_size=REQ, mlp_only_layers=REQ, moe_intermediate_size=REQ, rms_norm_eps=REQ,
        vocab_size=REQ, num_key_value_heads=REQ, rope_theta=REQ, partial_rotary_factor=REQ,
        max_position_embeddings=REQ, head_dim=REQ, norm_topk_prob=False, tie_word_embeddings=False,
        attention_bias=False, rope_scaling=None, full_attention_interval=4),
    "mlx_lm.models.qwen3_5.TextModel": Q35_FIELDS,
}
# Fields the engine's forward does not use (the streamed FFN replaces the
# model's own MLP).
UNUSED = {"mlx_lm.models.qwen3_5.TextModel": {"intermediate_size"}}


def build_args(cls, given):
    """A ModelArgs from keyword arguments: missing fields take their default."""
    out = {}
    for k, d in FIELDS[cls].items():  # an argument given as None stays None (no default)
        if k in given:
            out[k] = given[k]
        elif d is REQ:
            raise KeyError(k)
        else:
            out[k] = d
    if cls.endswith("TextModel"):  # __post_init__
        if out["head_dim"] is None and out["hidden_size"] and out["num_attention_heads"]:
            out["head_dim"] = out["hidden_size"] // out["num_attention_heads"]
        rp = dict(out["rope_parameters"] or {})
        if "type" not in rp and "rope_type" in rp:
            rp["type"] = rp.pop("rope_type")
        out["rope_parameters"] = rp
    return out


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


# ---- quantization: module kinds from mlx-lm's model classes

LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "gate",
          "shared_expert_gate", "lm_head", "in_proj_qkv", "in_proj_z", "in_proj_a", "in_proj_b", "in_proj_qkvz",
          "in_proj_ba", "out_proj"}


def kind_of(path):
    last = path.split(".")[-1]
    if last == "embed_tokens":
        return "Embedding"
    if ".switch_mlp." in path:
        return "SwitchLinear"
    if last in LINEAR:
        return "Linear"
    return "other"  # RMSNorm, Conv1d, A_log, dt_bias: no to_quantized


def want_bits(rule, path, kind, in_features):
    """The engine's nn.quantize(model, group_size=64, bits=4, class_predicate=...)."""
    if kind == "other":
        return 0
    if rule == "all":  # no predicate: every module with to_quantized
        return 4
    if kind in ("Embedding", "SwitchLinear"):
        return 4
    if rule == "in64":  # should_quantize: SSM_PROTECT conv1d, shape[-1] < GROUP_SIZE
        return 0 if "conv1d" in path or in_features < 64 else 4
    if rule == "router8":  # qwen3_moe Model.quant_predicate
        return 8 if path.endswith("mlp.gate") else 4
    if rule == "router8s":  # qwen3_next Model.quant_predicate
        return 8 if path.endswith("mlp.gate") or path.endswith("shared_expert_gate") else 4
    raise ValueError(rule)


# ---- the engines

def E(cls, args, rule, ffn=None, experts=None, names=None, join=None, strip=False, tok=None, cli=None):
    return dict(cls=cls, args=args, rule=rule, ffn=ffn, experts=experts, names=names, join=join, strip=strip,
                tok=tok, cli=cli)


Q3 = "mlx_lm.models.qwen3.Model"
Q35 = "mlx_lm.models.qwen3_5.TextModel"
ENGINES = {
    # research/flash-streaming/flash_stream.py: FFNStreamer._read_layer, mx.load of
    # f"{MODEL_DIR}/{config['streaming']['ffn_dir']}/layer_{i:02d}.safetensors"
    "flash-streaming/flash_stream.py": E(Q3, args_qwen3, "all", ffn="ffn_dir"),
    # research/flash-streaming/flash_stream_batched.py: BatchedFFNStreamer, the same files
    "flash-streaming/flash_stream_batched.py": E(Q3, args_qwen3, "all", ffn="ffn_dir"),
    # research/flash-streaming/flash_stream_v2.py: DirectFFNReader(f"{MODEL_DIR}/ffn_aligned")
    "flash-streaming/flash_stream_v2.py": E(Q3, args_qwen3, "all", ffn="aligned"),
    # research/flash-streaming/flash_agent.py: FlashStreamEngine.load: ffn_aligned/ when
    # os.path.isdir, else MmapStreamer on streaming.ffn_dir
    "flash-streaming/flash_agent.py": E(Q3, args_qwen3, "all", ffn="agent"),
    # research/flash-streaming/flash_stream_27b.py: forward_streaming, mx.load of
    # f"{MODEL_DIR}/ffn/layer_{i:02d}.safetensors"
    "flash-streaming/flash_stream_27b.py": E(Q35, lambda c: q35_common(c, False, False), "in64", ffn="ffn"),
    # research/flash-streaming/flash_moe.py, moe_agent.py (MoESniperEngine.load), batched_moe.py
    # (test_batched): MoEExpertReader(f"{MODEL_DIR}/{streaming['expert_dir']}"), run_expert_ffn's
    # f"mlp.switch_mlp.{proj}.weight"
    "flash-streaming/flash_moe.py": E(Q35, lambda c: q35_common(c, True, False), "in64", experts="fstr",
                                      names="mlp.switch_mlp."),
    "flash-streaming/moe_agent.py": E(Q35, lambda c: q35_common(c, True, False), "in64", experts="fstr",
                                      names="mlp.switch_mlp."),
    "flash-streaming/batched_moe.py": E(Q35, lambda c: q35_common(c, True, False), "in64", experts="fstr",
                                        names="mlp.switch_mlp."),
    # research/expert-sniper/mlx-sniper/flash_moe.py, batched_moe.py, moe_agent_macbook.py
    "mlx-sniper/flash_moe.py": E(Q35, lambda c: q35_common(c, True, False), "in64", experts="fstr",
                                 names="mlp.switch_mlp."),
    "mlx-sniper/batched_moe.py": E(Q35, lambda c: q35_common(c, True, False), "in64", experts="fstr",
                                   names="mlp.switch_mlp."),
    "mlx-sniper/moe_agent_macbook.py": E(Q35, lambda c: q35_common(c, True, False), "in64", experts="fstr",
                                         names="mlp.switch_mlp.", tok="dir"),
    # research/expert-sniper/mlx-sniper/moe_agent_35b.py: MoESniperEngine35B.load: pinned keys
    # k.replace("language_model.", "", 1), os.path.join(MODEL_DIR, streaming["expert_dir"]),
    # f"switch_mlp.{proj}.weight"
    "mlx-sniper/moe_agent_35b.py": E(Q35, lambda c: q35_common(c, True, True), "in64", experts="join",
                                     names="switch_mlp.", strip=True),
    # research/expert-sniper/cli-agent/src/mlx_expert_sniper/engine.py: MoESniperEngine35B.load
    "cli-agent/engine.py": E(Q35, lambda c: q35_common(c, True, True), "in64", experts="join", names="switch_mlp.",
                             strip=True, cli="engine"),
    # cli-agent engine_30b.py: MoESniperEngine30B.load, model.quant_predicate, tokenizer from MODEL_DIR
    "cli-agent/engine_30b.py": E("mlx_lm.models.qwen3_moe.Model", args_qwen3_moe, "router8", experts="join",
                                 names="switch_mlp.", tok="dir", cli="engine_30b"),
    # research/expert-sniper/mlx-sniper/moe_agent_30b.py: its own should_quantize (Linear >= 64: 4 bits)
    "mlx-sniper/moe_agent_30b.py": E("mlx_lm.models.qwen3_moe.Model", args_qwen3_moe, "in64", experts="join",
                                     names="switch_mlp.", tok="dir"),
    # cli-agent engine_next.py: MoESniperEngineNext.load (pinned keys stripped of "language_model.")
    "cli-agent/engine_next.py": E("mlx_lm.models.qwen3_next.Model", args_qwen3_next, "router8s", experts="join",
                                  names="switch_mlp.", strip=True, cli="engine_next"),
}

FFN_NAMES = [f"mlp.{p}.{s}" for p in ("gate_proj", "up_proj", "down_proj") for s in ("weight", "scales", "biases")]


def strip_lm(name):
    return name[len("language_model."):] if name.startswith("language_model.") else name


def compare(label, got, ref):
    if got.dtype != ref.dtype:
        fail(f"{label}: the engine decodes {got.dtype}, --layout mlx holds {ref.dtype}")
        return 0
    if list(got.shape) != list(ref.shape):
        fail(f"{label}: shape {got.shape}, --layout mlx {ref.shape}")
        return 0
    if got.data != ref.data:
        fail(f"{label}: bytes differ from --layout mlx")
        return 0
    return 1


def check_engine(eid, model_dir, mlx):
    e = ENGINES[eid]
    counts = dict(pinned=0, ffn=0, experts=0)
    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    cls = e["cls"]
    # ModelArgs: the engine's against mlx-lm's from the mlx folder
    try:
        given = e["args"](config)
    except KeyError as k:
        fail(f"{eid}: config.json has no {k} (the engine reads config[{k}])")
        return counts
    truth = build_args(cls, {k: v for k, v in mlx.config.items()})
    mine = build_args(cls, given)
    for k in FIELDS[cls]:
        if k in UNUSED.get(cls, ()):
            continue
        if not same(mine[k], truth[k]):
            how = "passes" if k in given else "leaves at mlx-lm's default"
            fail(f"{eid}: ModelArgs.{k}: the engine {how} {mine[k]!r}, mlx-lm builds {truth[k]!r}")
    num_layers = config["num_hidden_layers"]
    streaming = config["streaming"]
    ref_names = mlx.names()
    model = {strip_lm(n): n for n in ref_names}  # the model's parameters -> mlx names
    dense_re = re.compile(r"^model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.(weight|scales|biases)$")
    streamed = {p for p in model if (".switch_mlp." in p if e["experts"] else dense_re.match(p))}
    # quantization: each module as the engine builds it vs how it is stored
    mods = {}
    for p in model:
        for sfx in (".weight", ".scales", ".biases"):
            if p.endswith(sfx):
                mods.setdefault(p[:-len(sfx)], set()).add(sfx)
    for mod, parts in sorted(mods.items()):
        if ".weight" not in parts:
            continue
        bits, gs = mlx.quant(model[mod + ".weight"][:-len(".weight")])
        w = mlx.tensor(model[mod + ".weight"])
        in_features = w.shape[-1] * 32 // bits if bits else w.shape[-1]
        want = want_bits(e["rule"], mod, kind_of(mod), in_features)
        if want != bits or (want and gs != 64):
            fail(f"{eid}: {mod}: the engine builds it {want}-bit group 64 (0: float), "
                 f"the conversion stores {bits}-bit group {gs}")
    # pinned.safetensors: mx.load + load_weights(strict=False)
    pinned = mx_load(f"{model_dir}/pinned.safetensors")
    loaded = set()
    for k, arr in pinned.items():
        key = k.replace("language_model.", "", 1) if e["strip"] else k
        if key not in model:
            fail(f"{eid}: pinned.safetensors: {k} is not a parameter of {cls} (load_weights(strict=False) drops it)")
            continue
        loaded.add(key)
        counts["pinned"] += compare(f"{eid}: pinned {k}", arr, mlx.tensor(model[key]))
    for p in sorted(set(model) - streamed - loaded):
        fail(f"{eid}: {p} is not in pinned.safetensors: the engine keeps its initial value")
    # the streamed FFN
    if e["ffn"]:
        how = e["ffn"]
        if how == "agent":
            how = "aligned" if os.path.isdir(f"{model_dir}/ffn_aligned") else "ffn_dir"
        if how == "aligned":
            reader = DirectFFNReader(f"{model_dir}/ffn_aligned", num_layers)
            layers = [reader.get(i) for i in range(num_layers)]
        else:
            d = f"{model_dir}/{streaming['ffn_dir']}" if how == "ffn_dir" else f"{model_dir}/ffn"
            layers = [mx_load(f"{d}/layer_{i:02d}.safetensors") for i in range(num_layers)]
        for i, data in enumerate(layers):
            for n in FFN_NAMES:  # _run_ffn's names; quantized_matmul(bits=4, group_size=64)
                mlx_name = model.get(f"model.layers.{i}.{n}")
                if n not in data or not mlx_name:
                    fail(f"{eid}: layer {i}: no {n}")
                    continue
                counts["ffn"] += compare(f"{eid}: layer {i} {n}", data[n], mlx.tensor(mlx_name))
                mod = mlx_name[:mlx_name.rindex(".")]
                if mlx.quant(mod) != (4, 64):
                    fail(f"{eid}: {mod}: quantized_matmul(bits=4, group_size=64), stored {mlx.quant(mod)}")
    # the experts
    if e["experts"]:
        xd = f"{model_dir}/{streaming['expert_dir']}" if e["experts"] == "fstr" else \
            os.path.join(model_dir, streaming["expert_dir"])
        reader = MoEExpertReader(xd, num_layers)
        for i in range(num_layers):
            refs = {}
            for p in ("gate_proj", "up_proj", "down_proj"):
                for s in ("weight", "scales", "biases"):
                    mlx_name = model.get(f"model.layers.{i}.mlp.switch_mlp.{p}.{s}")
                    if not mlx_name:
                        fail(f"{eid}: layer {i}: the model has no switch_mlp.{p}.{s}")
                        continue
                    refs[f"{e['names']}{p}.{s}"] = mlx.tensor(mlx_name)
                    mod = mlx_name[:mlx_name.rindex(".")]
                    if mlx.quant(mod) != (4, 64):
                        fail(f"{eid}: {mod}: gather_qmm(bits=4, group_size=64), stored {mlx.quant(mod)}")
            n_exp = next(iter(refs.values())).shape[0] if refs else 0
            for x in range(n_exp):
                got = reader.get_expert(i, x)  # one pread of the expert's block
                for n, ref in refs.items():  # run_expert_ffn's names
                    per = len(ref.data) // ref.shape[0]
                    if n not in got:
                        fail(f"{eid}: layer {i}: expert {x}: no {n} (run_expert_ffn indexes it)")
                        continue
                    counts["experts"] += compare(f"{eid}: layer {i} expert {x} {n}", got[n],
                                                 Arr(ref.dtype, ref.shape[1:], ref.data[x * per:(x + 1) * per]))
    # cli-agent: generate.load_engine / calibrate
    if e["cli"]:
        mt = config.get("model_type", "qwen3_5_moe")  # calibrate._detect_model_type
        pick = "engine_gemma4" if "gemma4" in mt else "engine_next" if "qwen3_next" in mt else \
            "engine" if "qwen3_5" in mt else "engine_30b"
        if pick != e["cli"]:
            fail(f"{eid}: mlx-sniper's load_engine picks {pick}.py for model_type {mt}")
        bin_dir = os.path.join(model_dir, "bin")  # calibrate.auto_size_cache
        layer_file = None
        for f in sorted(os.listdir(bin_dir)):
            if f.endswith(".bin"):
                layer_file = os.path.join(bin_dir, f)
                break
        with open(layer_file, "rb") as f:
            raw = f.read(16384)
        if json.loads(raw.rstrip(b"\x00"))["layout"]["expert_block_size"] != reader.expert_block_size:
            fail(f"{eid}: auto_size_cache reads another expert_block_size")
        if os.path.realpath(os.path.dirname(os.path.join(model_dir, streaming["expert_dir"]))) != \
                os.path.realpath(model_dir):
            fail(f"{eid}: calibrate's dirname(expert_dir) is not the model folder")
    # the tokenizer files, where the engine loads them from the folder
    for t in ("tokenizer.json", "tokenizer_config.json"):
        ref = os.path.join(mlx.dir, t)
        mine = os.path.join(model_dir, t)
        if os.path.exists(ref) and (not os.path.exists(mine) or open(ref, "rb").read() != open(mine, "rb").read()):
            fail(f"{eid}: {t} is not the mlx folder's")
    if e["tok"] == "dir" and not os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        print(f"note: {eid} loads its tokenizer from the folder; the source had none")
    return counts


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, mlx_dir = sys.argv[1], sys.argv[2]
    mlx = MlxFolder(mlx_dir)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    # config.json records what is stored: the mlx folder's quantization block
    # under the folder's names (no "language_model.")
    def q_of(c, key):
        q = c.get(key)
        return {strip_lm(k): v for k, v in q.items()} if isinstance(q, dict) else q
    for key in ("quantization", "quantization_config"):
        if q_of(config, key) != q_of(mlx.config, key):
            fail(f"config.json {key} {q_of(config, key)} is not what is stored ({q_of(mlx.config, key)})")
    engines = sys.argv[3:] or config["streaming"].get("engines", [])
    if not engines:
        fail("no engines to check")
    for eid in engines:
        if eid not in ENGINES:
            fail(f"unknown engine {eid}")
            continue
        try:
            c = check_engine(eid, model_dir, mlx)
        except (KeyError, ValueError, OSError, IndexError) as x:
            fail(f"{eid}: the engine's reader fails: {type(x).__name__}: {x}")
            continue
        print(f"{eid}: {c['pinned']} pinned, {c['ffn']} ffn, {c['experts']} expert tensors equal --layout mlx")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
