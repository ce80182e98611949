#!/usr/bin/env python3
"""Expected per-module bits of mlx-lm's mixed recipes, from mlx-lm's own code.

Writes testdata/recipes/mixed_expected.tsv, read by tests/test_recipe.c.
mlx-lm's function mixed_quant_predicate_builder (mlx_lm/convert.py) is taken
from an mlx-lm checkout or bare git mirror *as source text* and run unchanged
on a stand-in model (named_modules() and layers: what the builder reads), so
no MLX install is needed. The module list per model is what mconv quantizes
in a plain --layout mlx conversion (the ".scales" tensors of its index), the
modules mlx-lm's quantize_model hands the predicate (to_quantized, and the
last dimension a multiple of the group size).

usage: scripts/mixed_recipe_expected.py MCONV CORPUS MLX_LM_GIT_DIR > testdata/recipes/mixed_expected.tsv
"""
import ast, glob, json, os, subprocess, sys, tempfile

mconv, corpus, mlxgit = sys.argv[1:4]
src = subprocess.run(["git", "--git-dir", mlxgit, "show", "HEAD:mlx_lm/convert.py"], check=True,
                     capture_output=True, text=True).stdout
rev = subprocess.run(["git", "--git-dir", mlxgit, "rev-parse", "HEAD"], check=True, capture_output=True,
                     text=True).stdout.strip()
tree = ast.parse(src)
fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "mixed_quant_predicate_builder")
ns = {"Callable": object, "Union": object, "nn": type("nn", (), {"Module": object})}
code = "from typing import Callable, Union\n" + ast.get_source_segment(src, fn)
exec(compile(code, "mlx_lm/convert.py", "exec"), ns)
recipes = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "QUANT_RECIPES")
recipes = ast.literal_eval(recipes.value)


class Stand:
    def __init__(self, modules, n_layers):
        self.mods = modules
        self.layers = [None] * n_layers

    def named_modules(self):
        return [(m, None) for m in self.mods]


def n_layers_of(cfg):
    for c in (cfg, cfg.get("text_config", {})):
        if "num_hidden_layers" in c:
            return c["num_hidden_layers"]
    raise SystemExit("no num_hidden_layers")


print(f"# mlx-lm {rev} mlx_lm/convert.py mixed_quant_predicate_builder, group size 64")
print("# model (relative to the corpus)\trecipe\tmodule\tbits")
models = sorted(glob.glob(f"{corpus}/models/*/hf")) + sorted(glob.glob(f"{corpus}/models/*/gguf/*-bf16.gguf"))
for path in models:
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "o")
        r = subprocess.run([mconv, path, out, "--layout", "mlx", "-q"], capture_output=True, text=True)
        if r.returncode:
            print(f"skip {path}: {r.stderr.strip()}", file=sys.stderr)
            continue
        cfg = json.load(open(os.path.join(out, "config.json")))
        idx = os.path.join(out, "model.safetensors.index.json")
        if os.path.exists(idx):
            names = list(json.load(open(idx))["weight_map"])
        else:
            import struct
            with open(os.path.join(out, "model.safetensors"), "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                names = [k for k in json.loads(f.read(n)) if k != "__metadata__"]
        mods = [k[: -len(".scales")] for k in names if k.endswith(".scales")]
        rel = os.path.relpath(path, corpus)
        for rc in recipes:
            pred = ns["mixed_quant_predicate_builder"](rc, Stand(mods, n_layers_of(cfg)), 64)
            for m in mods:
                print(f"{rel}\t{rc}\t{m}\t{pred(m, None)['bits']}")
