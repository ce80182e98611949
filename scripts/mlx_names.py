#!/usr/bin/env python3
"""Derive the tensor names and shapes an mlx-lm model class loads.

Usage: scripts/mlx_names.py MLX_LM_REPO MODULE CONFIG.json [KEY=JSON ...] > testdata/mlx_names/X.txt

MLX_LM_REPO is a git checkout of ml-explore/mlx-lm (read with `git archive
HEAD mlx_lm/models`, nothing is installed). The script instantiates that
checkout's own `mlx_lm.models.MODULE.Model(ModelArgs.from_dict(config))`
under a shape-only stand-in for `mlx` (scripts/mlx_names_stub: arrays carry
only a shape; nn.Linear/Embedding/RMSNorm/Conv1d create their weights with
MLX's shapes) and prints every parameter of the module tree, flattened the
way mlx.utils.tree_flatten names them, with its shape. KEY=JSON pairs
override config keys (e.g. full_attention_interval=2).

This is the list `model.load_weights(...)` checks a checkpoint against: what
mconv must produce for that model_type.
"""
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import types


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    repo, module, cfg_path = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.load(open(cfg_path))
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        cfg[k] = json.loads(v)
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    tar = subprocess.run(["git", "-C", repo, "archive", "HEAD", "mlx_lm/models"],
                         check=True, capture_output=True).stdout
    tmp = tempfile.mkdtemp()
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(tmp)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "mlx_names_stub"))
    pkg = types.ModuleType("mlx_lm")
    pkg.__path__ = [os.path.join(tmp, "mlx_lm")]
    sys.modules["mlx_lm"] = pkg
    from mlx.utils import tree_flatten
    m = importlib.import_module("mlx_lm.models." + module)
    model = m.Model(m.ModelArgs.from_dict(cfg))
    print("# mlx-lm %s, mlx_lm/models/%s.py (and the modules it imports)" % (head[:12], module))
    print("# made by scripts/mlx_names.py: Model(ModelArgs.from_dict(config)) instantiated under a")
    print("# shape-only mlx stand-in; every parameter of the module tree, name and shape.")
    shown = os.path.relpath(cfg_path)
    if "/corpus/" in os.path.abspath(cfg_path):
        shown = "corpus " + os.path.abspath(cfg_path).split("/corpus/", 1)[1]
    print("# config: %s%s" % (shown, (" with " + " ".join(sys.argv[4:])) if sys.argv[4:] else ""))
    for name, arr in sorted(tree_flatten(model)):
        if not hasattr(arr, "shape"):
            continue  # a plain attribute (gpt_oss layer_types), not a parameter: Module.parameters() keeps arrays only
        print(name, ",".join(str(d) for d in arr.shape))


if __name__ == "__main__":
    main()
