#!/usr/bin/env python3
"""Independent facts about a GGUF or safetensors file, read from its bytes
with struct/json only (no mconv code). Prints one JSON document:
  {"format": "gguf"|"safetensors", "version": N, "kv": {key: {"type": T,
   "value": V | "n": N, "first": [...]}}, "tensors": [{"name", "type",
   "shape" (GGUF ne order / safetensors row-major), "offset" (absolute),
   "nbytes"}]}
usage: cli_facts.py FILE
"""
import json, struct, sys

# GGML type id -> (name, block elements, block bytes), from ggml.h/ggml.c.
GGML = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
    6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 9: ("q8_1", 32, 36),
    10: ("q2_K", 256, 84), 11: ("q3_K", 256, 110), 12: ("q4_K", 256, 144),
    13: ("q5_K", 256, 176), 14: ("q6_K", 256, 210), 15: ("q8_K", 256, 292),
    16: ("iq2_xxs", 256, 66), 17: ("iq2_xs", 256, 74), 18: ("iq3_xxs", 256, 98),
    19: ("iq1_s", 256, 50), 20: ("iq4_nl", 32, 18), 21: ("iq3_s", 256, 110),
    22: ("iq2_s", 256, 82), 23: ("iq4_xs", 256, 136), 24: ("i8", 1, 1),
    25: ("i16", 1, 2), 26: ("i32", 1, 4), 27: ("i64", 1, 8), 28: ("f64", 1, 8),
    29: ("iq1_m", 256, 56), 30: ("bf16", 1, 2), 34: ("tq1_0", 256, 54),
    35: ("tq2_0", 256, 66), 39: ("mxfp4", 32, 17), 40: ("nvfp4", 64, 36),
    41: ("q1_0", 128, 18), 42: ("q2_0", 64, 18),
}
VT = {0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"),
      4: ("u32", "<I"), 5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<?"),
      8: ("string", None), 9: ("array", None), 10: ("u64", "<Q"), 11: ("i64", "<q"),
      12: ("f64", "<d")}


class R:
    def __init__(self, b, v):
        self.b, self.p, self.v = b, 0, v

    def take(self, fmt):
        x = struct.unpack_from(fmt, self.b, self.p)[0]
        self.p += struct.calcsize(fmt)
        return x

    def n(self):
        return self.take("<I" if self.v == 1 else "<Q")

    def s(self):
        n = self.n()
        x = self.b[self.p:self.p + n]
        self.p += n
        return x.decode("utf-8", "surrogateescape")

    def val(self, t):
        if t == 8:
            return self.s()
        return self.take(VT[t][1])


def gguf(path, full=False):
    b = open(path, "rb").read()
    assert b[:4] == b"GGUF"
    v = struct.unpack_from("<I", b, 4)[0]
    r = R(b, v)
    r.p = 8
    nt, nkv = r.n(), r.n()
    kv = {}
    for _ in range(nkv):
        k = r.s()
        t = r.take("<I")
        if t == 9:
            at = r.take("<I")
            n = r.n()
            items = [r.val(at) for _ in range(n)]
            kv[k] = {"type": "array", "elem": VT[at][0], "n": n, "first": items[:8], "last": items[-1] if items else None}
            if full:
                kv[k]["items"] = items
        else:
            kv[k] = {"type": VT[t][0], "value": r.val(t)}
    align = kv.get("general.alignment", {}).get("value", 32)
    ts = []
    for _ in range(nt):
        name = r.s()
        nd = r.take("<I")
        ne = [r.n() for _ in range(nd)]
        ty = r.take("<I")
        off = r.take("<Q")
        ts.append([name, ty, ne, off])
    data = (r.p + align - 1) // align * align
    out = []
    for name, ty, ne, off in ts:
        nel = 1
        for d in ne:
            nel *= d
        tn, bl, bs = GGML[ty]
        out.append({"name": name, "type": tn, "type_id": ty, "ne": ne, "shape": ne[::-1],
                    "offset": data + off, "nbytes": nel // bl * bs, "nelements": nel})
    return {"format": "gguf", "version": v, "alignment": align, "data_offset": data, "kv": kv, "tensors": out}


def safetensors(path):
    b = open(path, "rb")
    n = struct.unpack("<Q", b.read(8))[0]
    h = json.loads(b.read(n))
    meta = h.pop("__metadata__", {})
    out = []
    for name, t in h.items():
        nel = 1
        for d in t["shape"]:
            nel *= d
        out.append({"name": name, "type": t["dtype"], "shape": t["shape"], "offset": 8 + n + t["data_offsets"][0],
                    "nbytes": t["data_offsets"][1] - t["data_offsets"][0], "nelements": nel})
    out.sort(key=lambda x: x["offset"])
    return {"format": "safetensors", "metadata": meta, "tensors": out, "data_offset": 8 + n}


def main():
    p = sys.argv[1]
    with open(p, "rb") as f:
        magic = f.read(4)
    d = gguf(p) if magic == b"GGUF" else safetensors(p)
    json.dump(d, sys.stdout, ensure_ascii=True, default=str)
    print()


if __name__ == "__main__":
    main()
