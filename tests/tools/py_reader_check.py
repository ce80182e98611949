#!/usr/bin/env python3
"""The Python reader (python/mconv_flash) against `mconv --layout mlx`.

    py_reader_check.py FLASH MLX_DIR [FLASH MLX_DIR ...]

For each pair: the .flash opened with direct I/O and checksums on; every
pinned tensor (one read of the region), every dense layer's FFN tensors (one
read per span) and every expert (k at a time in a shuffled order, then all
of them in one call) must equal the mlx folder's tensor of the same name bit
for bit, with its dtype and shape (experts: slice by slice, and the stacked
array as a whole); the table must name every tensor of the folder exactly
once; config.json and the tokenizer files must be the same JSON (text files
the same text) as the folder's, also after write_files(). The mlx folder is
parsed here (u64 header length + JSON). Exit 0 when everything matches."""
import json
import os
import random
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import mconv_flash  # noqa: E402

checks = 0
fails = []


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        fails.append(what)


def load_mlx(d):
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    out = {}
    for shard in sorted(set(idx["weight_map"].values())):
        path = os.path.join(d, shard)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            hdr = json.loads(f.read(n))
            blob = f.read()
        for name, t in hdr.items():
            if name != "__metadata__":
                a, b = t["data_offsets"]
                out[name] = (t["dtype"], tuple(t["shape"]), blob[a:b])
    return out


def same(arr, raw):
    """arr (any strides) holds exactly the bytes raw (C order)."""
    return np.ascontiguousarray(arr).view(np.uint8).reshape(-1).tobytes() == raw


def one(flash, mlx):
    src = os.path.basename(flash)
    ref = load_mlx(mlx)
    seen = {}
    with mconv_flash.open(flash, verify=True, threads=3) as f:
        check(f.io_mode in ("direct", "buffered"), "%s: io_mode %s" % (src, f.io_mode))
        check(set(f.tensors) == set(ref), "%s: table names differ from the mlx folder: %s" %
              (src, sorted(set(f.tensors) ^ set(ref))[:6]))

        def match(name, arr, raw, what=""):
            dtype, shape, _ = ref[name]
            t = f.tensors[name]
            check(t.dtype == dtype, "%s: %s dtype %s vs %s" % (src, name, t.dtype, dtype))
            check(tuple(t.shape) == shape, "%s: %s shape %s vs %s" % (src, name, t.shape, shape))
            check(same(arr, raw), "%s: %s%s differs from the mlx folder" % (src, name, what))

        for name, arr in f.pinned().items():
            check(arr.shape == f.tensors[name].shape, "%s: %s array shape" % (src, name))
            match(name, arr, ref[name][2])
            seen[name] = seen.get(name, 0) + 1
        for layer in f.dense_layers:
            for name, arr in f.ffn(layer).items():
                match(name, arr, ref[name][2])
                seen[name] = seen.get(name, 0) + 1
        k = max(1, f.experts_per_tok)
        rng = random.Random(7)
        for layer in f.moe_layers:
            L = f._moe[layer]
            perm = list(range(L.n_experts))
            rng.shuffle(perm)
            buf = mconv_flash.aligned_buffer(k * L.nbytes)  # one buffer, reused
            for s in range(0, L.n_experts, k):
                ids = perm[s:s + k]
                got = f.experts(layer, ids, buf=buf)
                for name, arr in got.items():
                    check(arr.shape == (len(ids),) + f.tensors[name].shape[1:], "%s: %s shape" % (src, name))
                    raw, per = ref[name][2], f.tensors[name].nbytes
                    for i, e in enumerate(ids):
                        match(name, arr[i], raw[e * per:(e + 1) * per], " (expert %d)" % e)
            allx = f.experts(layer, range(L.n_experts))  # the whole stacked tensor in one call
            for name, arr in allx.items():
                match(name, arr, ref[name][2], " (stacked)")
                seen[name] = seen.get(name, 0) + 1
        check(all(seen.get(n) == 1 for n in ref), "%s: tensors not read exactly once: %s" %
              (src, [n for n in ref if seen.get(n) != 1][:5]))
        # single tensors
        for name in list(f.tensors)[:3] + list(f.tensors)[-3:]:
            t = f.tensors[name]
            arr = f.read_tensor(name, expert=t.shape[0] - 1 if t.kind == "expert" else 0)
            raw = ref[name][2]
            want = raw[len(raw) - t.nbytes:] if t.kind == "expert" else raw
            check(same(arr, want), "%s: read_tensor %s" % (src, name))
        # config and tokenizer files, as they are and as written
        files = f.files()
        check(list(files)[0] == "config.json", "%s: config.json first" % src)
        with tempfile.TemporaryDirectory() as d:
            f.write_files(d)
            check(sorted(os.listdir(d)) == sorted(files), "%s: write_files wrote %s" % (src, os.listdir(d)))
            for name, text in files.items():
                p = os.path.join(mlx, name)
                check(os.path.exists(p), "%s: %s is not in the mlx folder" % (src, name))
                if not os.path.exists(p):
                    continue
                want = open(p, encoding="utf-8").read()
                got = open(os.path.join(d, name), encoding="utf-8").read()
                check(got == text, "%s: written %s differs from files()" % (src, name))
                if name.endswith(".json"):
                    check(json.loads(text) == json.loads(want), "%s: %s is not the mlx folder's JSON" % (src, name))
                else:
                    check(text == want, "%s: %s is not the mlx folder's text" % (src, name))
        for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"):
            if os.path.exists(os.path.join(mlx, name)):
                check(name in files or name in f.not_embedded, "%s: %s not carried" % (src, name))
    return len(ref)


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__)
        return 2
    n = 0
    for i in range(0, len(args), 2):
        try:
            n += one(args[i], args[i + 1])
        except Exception as e:  # a crash is a failure, named
            fails.append("%s: %s: %s" % (args[i], type(e).__name__, e))
    for x in fails[:30]:
        print("FAIL:", x)
    print("py_reader_check: %d files, %d tensors, %d checks, %d failed" % (len(args) // 2, n, checks, len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
