#!/usr/bin/env python3
"""Check `flash_read --fingerprint` output against an mlx-lm folder.

    mlx_fingerprint_check.py FINGERPRINTS MLX_DIR [FINGERPRINTS MLX_DIR ...]

FINGERPRINTS has lines "CRC32 NAME" (a whole tensor) and "CRC32 NAME[E]"
(expert E's slice of a stacked tensor, that is its E-th part along the first
axis). Every tensor of MLX_DIR (model.safetensors.index.json and its shards,
parsed here: u64 header length + JSON) must appear exactly once, whole or as
every one of its slices, with the CRC-32 (zlib.crc32) of the same bytes.
Plain python3, no numpy. Exit 0 when every pair matches, 1 otherwise (each
mismatch listed with its fingerprint file)."""
import json
import re
import struct
import sys
import zlib


def load(mlx):
    idx = json.load(open(mlx + "/model.safetensors.index.json"))
    tensors = {}
    for shard in sorted(set(idx["weight_map"].values())):
        path = mlx + "/" + shard
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            hdr = json.loads(f.read(n))
        for name, t in hdr.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            tensors[name] = (path, 8 + n + a, b - a, t["shape"])
    return tensors


def check(fp, mlx):
    tensors = load(mlx)
    seen = {}
    bad = []
    line_re = re.compile(r"^([0-9a-f]{8}) (\S+?)(?:\[(\d+)\])?$")
    for line in open(fp):
        m = line_re.match(line.rstrip("\n"))
        if not m:
            bad.append("unparsable line: %r" % line)
            continue
        crc, name, e = int(m.group(1), 16), m.group(2), m.group(3)
        if name not in tensors:
            bad.append("%s: not in the mlx folder" % name)
            continue
        path, off, nbytes, shape = tensors[name]
        if e is not None:
            e = int(e)
            if not shape or e >= shape[0] or nbytes % shape[0]:
                bad.append("%s[%d]: no such slice (shape %s)" % (name, e, shape))
                continue
            step = nbytes // shape[0]
            off, nbytes = off + e * step, step
        with open(path, "rb") as f:
            f.seek(off)
            data = f.read(nbytes)
        if zlib.crc32(data) != crc:
            bad.append("%s%s: crc %08x, the mlx folder has %08x"
                       % (name, "" if e is None else "[%d]" % e, crc, zlib.crc32(data)))
        seen.setdefault(name, set()).add(e)
    for name, (_, _, _, shape) in tensors.items():
        got = seen.get(name)
        if got is None:
            bad.append("%s: not read" % name)
        elif None not in got and got != set(range(shape[0])):
            bad.append("%s: slices %s missing" % (name, sorted(set(range(shape[0])) - got)[:8]))
    for b in bad[:20]:
        print("%s: %s" % (fp, b))
    if bad:
        print("%s: %d problems (%d tensors in %s)" % (fp, len(bad), len(tensors), mlx))
        return 1
    slices = sum(len(v) for v in seen.values() if None not in v)
    print("%s: %d tensors match (%d expert slices)" % (fp, len(tensors), slices))
    return 0


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__)
        return 2
    return 1 if sum(check(args[i], args[i + 1]) for i in range(0, len(args), 2)) else 0


if __name__ == "__main__":
    sys.exit(main())
