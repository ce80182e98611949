"""MLX helpers for .flash files (needs mlx, and mlx-lm for `load`).

    from mconv_flash import mlx as fmx
    model, tokenizer, flash = fmx.load("model.flash")
    # model is an mlx-lm model: pinned weights in memory, each dense layer's
    # FFN and each MoE layer's routed experts read from the file when the
    # layer runs (only the experts the router picked for the tokens at hand)
    from mlx_lm import generate
    print(generate(model, tokenizer, prompt="Hello", max_tokens=20))

`arrays(flash_arrays, flash)` turns what FlashFile returns into mx.array
(BF16 raw uint16 -> mx.bfloat16). Nothing here runs without MLX: importing
this module raises ImportError naming what is missing.
"""
import os
import tempfile

import numpy as np

try:
    import mlx.core as mx
    import mlx.nn as nn
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError("mconv_flash.mlx needs MLX (pip install mlx): %s" % e) from e

from .reader import FlashFile

_MX = {"U32": "uint32", "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64", "I8": "int8",
       "I16": "int16", "I32": "int32", "I64": "int64", "U8": "uint8", "U16": "uint16", "U64": "uint64",
       "BOOL": "bool_"}


def to_mx(arr, dtype):
    """One numpy array from FlashFile as an mx.array of the tensor's dtype
    (a copy into MLX's memory: MLX owns its buffers)."""
    a = mx.array(np.ascontiguousarray(arr))
    if dtype == "BF16":
        a = a.view(mx.bfloat16)
    return a


def arrays(named, flash):
    """{name: np.ndarray} from pinned()/ffn()/experts() -> {name: mx.array}."""
    return {n: to_mx(a, flash.tensors[n].dtype) for n, a in named.items()}


def _module(root, path):
    """The module at a dotted path ("model.layers.3.mlp"); lists by index."""
    m = root
    for part in path.split("."):
        m = m[int(part)] if isinstance(m, list) else m[part]
    return m


def _set_module(root, path, new):
    parent, _, last = path.rpartition(".")
    p = _module(root, parent) if parent else root
    if isinstance(p, list):
        p[int(last)] = new
    else:
        p[last] = new


def _relative(weights, prefix):
    """{full name: array} -> [(name after prefix, array)] for Module.load_weights."""
    return [(n[len(prefix):], a) for n, a in weights.items() if n.startswith(prefix)]


class StreamedFFN(nn.Module):
    """A dense layer's MLP whose weights are read from the .flash file (one
    read of the layer's span) each time it runs, then dropped."""

    def __init__(self, inner, flash, layer, prefix, eval_each=True):
        super().__init__()
        self.inner = inner
        self._flash, self._layer, self._prefix, self._eval = flash, layer, prefix, eval_each
        self._empty = {n: mx.zeros((0,), dtype=a.dtype) for n, a in _flat(inner.parameters())}
        inner.load_weights(list(self._empty.items()), strict=False)

    def __call__(self, x):
        w = arrays(self._flash.ffn(self._layer), self._flash)
        self.inner.load_weights(_relative(w, self._prefix), strict=False)
        y = self.inner(x)
        if self._eval:
            mx.eval(y)
        self.inner.load_weights(list(self._empty.items()), strict=False)
        return y


class StreamedSwitch(nn.Module):
    """A MoE layer's switch_mlp (SwitchGLU / SwitchMLP of stacked experts)
    that reads only the experts the router picked: the distinct ids of the
    call are read from the file (one read per expert block), the module
    gets those k slices as its stacked weights and the indices are
    renumbered into them."""

    def __init__(self, inner, flash, layer, prefix, eval_each=True):
        super().__init__()
        self.inner = inner
        self._flash, self._layer, self._prefix, self._eval = flash, layer, prefix, eval_each
        self._empty = {n: mx.zeros((0,), dtype=a.dtype) for n, a in _flat(inner.parameters())}
        inner.load_weights(list(self._empty.items()), strict=False)
        self.reads = 0

    def __call__(self, x, indices):
        idx = np.array(indices)  # waits for the router
        ids, inverse = np.unique(idx, return_inverse=True)
        w = arrays(self._flash.experts(self._layer, ids), self._flash)
        self.reads += len(ids)
        self.inner.load_weights(_relative(w, self._prefix), strict=False)
        y = self.inner(x, mx.array(inverse.reshape(idx.shape).astype(np.uint32)))
        if self._eval:
            mx.eval(y)
        self.inner.load_weights(list(self._empty.items()), strict=False)
        return y


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, prefix + k + ".")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _flat(v, prefix + str(i) + ".")
    else:
        yield prefix[:-1], tree


def load(path, tokenizer_dir=None, io="direct", verify=False, threads=None, eval_each=True):
    """An mlx-lm model for a .flash file: (model, tokenizer, flash).

    The model class comes from the manifest's config (mlx-lm's model
    registry), quantized as config["quantization"] and the stored tensors
    say (mlx-lm's own rule), with every pinned weight loaded in memory;
    each dense layer's MLP and each MoE layer's switch_mlp read their
    weights from the file when they run (StreamedFFN, StreamedSwitch). The
    tokenizer is loaded from tokenizer_dir after writing the config and
    tokenizer files there (a temporary folder when None). eval_each: eval
    each streamed layer's output before dropping its weights (bounded
    memory; mlx-lm otherwise evaluates once per token)."""
    from mlx_lm.utils import _get_classes, load_tokenizer

    flash = FlashFile(path, io=io, verify=verify, threads=threads)
    config = dict(flash.config)
    model_class, args_class = _get_classes(config=config)
    model = model_class(args_class.from_dict(config))
    names = set(flash.tensors)
    q = config.get("quantization")
    if q:
        def pred(p, m):
            if p in q:
                return q[p]
            return hasattr(m, "to_quantized") and ("%s.scales" % p) in names

        nn.quantize(model, group_size=q["group_size"], bits=q["bits"], mode=q.get("mode", "affine"),
                    class_predicate=pred)
    model.load_weights(list(arrays(flash.pinned(), flash).items()), strict=False)
    for L in flash.layers:
        t0 = L.tensors[0].name
        if L.kind == "ffn":
            # "model.layers.3.mlp.gate_proj.weight" -> module "model.layers.3.mlp"
            mod = t0.rsplit(".", 2)[0]
            _set_module(model, mod, StreamedFFN(_module(model, mod), flash, L.layer, mod + ".", eval_each))
        else:
            # "model.layers.3.mlp.switch_mlp.gate_proj.weight" -> "model.layers.3.mlp.switch_mlp"
            mod = t0.rsplit(".", 2)[0]
            _set_module(model, mod, StreamedSwitch(_module(model, mod), flash, L.layer, mod + ".", eval_each))
    model.eval()
    folder = tokenizer_dir or tempfile.mkdtemp(prefix="mconv-flash-tok-")
    flash.write_files(folder)
    tokenizer = load_tokenizer(folder) if os.path.exists(os.path.join(folder, "tokenizer.json")) else None
    return model, tokenizer, flash
