#!/usr/bin/env python3
"""Independent facts about safetensors files, for mconv's tests.

Usage: st_facts.py PATH            (a .safetensors file or a checkpoint folder)

Prints one JSON object:
  {"files": [{"name", "size", "header_len"}],
   "metadata": {...} (of the first file) or null,
   "tensors": [{"name", "dtype", "shape", "data_offsets", "offset", "nbytes",
                "file", "head", "sum"}]}
"offset" is the absolute file offset (8 + header_len + begin), "head" the hex
of the first 64 data bytes, "sum" the sum of all data bytes. Folders: the
shards named by model.safetensors.index.json, else model.safetensors, else
model*.safetensors, sorted. Uses only the standard struct/json modules and
shares nothing with the C reader.
"""
import json
import os
import struct
import sys


def one_file(path, name, out):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    base = 8 + n
    out["files"].append({"name": name, "size": len(blob), "header_len": n})
    for tname, info in header.items():
        b, e = info["data_offsets"]
        data = blob[base + b:base + e]
        out["tensors"].append({
            "name": tname, "dtype": info["dtype"], "shape": info["shape"],
            "data_offsets": [b, e], "offset": base + b, "nbytes": e - b,
            "file": name, "head": data[:64].hex(), "sum": sum(data),
        })
    return meta


def main():
    path = sys.argv[1]
    out = {"files": [], "metadata": None, "tensors": []}
    if os.path.isdir(path):
        idx = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(idx):
            with open(idx) as f:
                names = sorted(set(json.load(f)["weight_map"].values()))
        elif os.path.exists(os.path.join(path, "model.safetensors")):
            names = ["model.safetensors"]
        else:
            names = sorted(x for x in os.listdir(path)
                           if x.startswith("model") and x.endswith(".safetensors"))
        metas = [one_file(os.path.join(path, x), x, out) for x in names]
        out["metadata"] = metas[0] if metas else None
    else:
        out["metadata"] = one_file(path, os.path.basename(path), out)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
