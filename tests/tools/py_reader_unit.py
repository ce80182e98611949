#!/usr/bin/env python3
"""Behaviour of the Python reader (python/mconv_flash) on one MoE .flash file
converted from a GGUF (it carries a tokenizer):

    py_reader_unit.py FLASH WORKDIR

XXH3-64 against libxxhash (ctypes, when loadable) and against every checksum
of the file; checksums catching a flipped byte of an expert block (and the
block reading fine without them); buffered, direct and direct-only modes;
the fallback to buffered reads when the file system refuses direct I/O at
open or at the first read (simulated); arrays are views over one buffer per
read, caller buffers are reused and checked; errors name the file; manifests
with unknown keys and regions open, hostile ones are refused; tokenizer
files load with transformers / mlx-lm when those are importable; the MLX
helpers when MLX is importable. What cannot run here is printed as "SKIP:".
Exit 0 when every check passed."""
import ctypes
import ctypes.util
import errno
import json
import mmap
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import mconv_flash  # noqa: E402
from mconv_flash import reader as R  # noqa: E402
from mconv_flash._xxh3 import xxh3_64  # noqa: E402

checks, fails, skips = 0, [], []


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        fails.append(what)


def raises(exc, fn, text=None):
    try:
        fn()
    except exc as e:
        return text is None or text in str(e)
    except Exception as e:  # the wrong exception
        fails.append("expected %s, got %s: %s" % (exc.__name__, type(e).__name__, e))
        return True
    return False


def skip(msg):
    skips.append(msg)
    print("SKIP: " + msg)


def rewrite(src, dst, fn, extra_pages=0):
    """Copy src to dst with its manifest changed by fn(dict) and the header
    fixed (length, file size, XXH3); extra_pages of 0xA5 before it."""
    b = bytearray(open(src, "rb").read())
    mo, ml = struct.unpack("<QQ", b[16:32])
    m = json.loads(b[mo:mo + ml])
    fn(m)
    t = json.dumps(m, separators=(",", ":")).encode()
    nmo = mo + extra_pages * R.PAGE
    size = (nmo + len(t) + R.PAGE - 1) // R.PAGE * R.PAGE
    out = bytearray(size)
    out[:mo] = b[:mo]
    out[mo:nmo] = b"\xa5" * (nmo - mo)
    out[nmo:nmo + len(t)] = t
    out[16:48] = struct.pack("<QQQQ", nmo, len(t), size, xxh3_64(t))
    open(dst, "wb").write(out)


def main():
    flash, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)

    # ---- XXH3-64 ----
    lib = ctypes.util.find_library("xxhash")
    try:
        x = ctypes.CDLL(lib or "libxxhash.so.0")
        x.XXH3_64bits.restype = ctypes.c_uint64
        x.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        rnd = np.random.default_rng(1)
        for n in list(range(0, 300)) + [1023, 1024, 1025, 4096, 16384, 100003, 1 << 20]:
            b = rnd.integers(0, 256, n, dtype=np.uint8).tobytes()
            check(xxh3_64(b, use_module=False) == x.XXH3_64bits(b, n), "xxh3_64 of %d bytes" % n)
    except OSError:
        skip("libxxhash not loadable through ctypes: XXH3 checked against the file's checksums only")
    with mconv_flash.open(flash, io="buffered") as f:
        mv = memoryview(open(flash, "rb").read())
        for t in f.tensors.values():
            if t.xxh3 is not None:
                check(xxh3_64(mv[t.offset:t.offset + t.nbytes], use_module=False) == t.xxh3, "xxh3 " + t.name)
        for L in f.layers:
            for e in range(L.n_experts):
                o = L.offset + e * L.nbytes
                check(xxh3_64(mv[o:o + L.nbytes], use_module=False) == L.block_xxh3[e], "xxh3 block")
        layer = f.moe_layers[0]
        L = f._moe[layer]
        ne, stride, k = L.n_experts, L.nbytes, f.experts_per_tok
        ref = {n: np.array(a) for n, a in f.experts(layer, range(ne)).items()}
        refpin = {n: np.array(a) for n, a in f.pinned().items()}

    # ---- modes and their notes; views over one buffer ----
    for io in ("direct", "buffered", "direct-only"):
        try:
            f = mconv_flash.open(flash, io=io, verify=True, threads=3)
        except mconv_flash.FlashError as e:
            check(io == "direct-only", "open %s: %s" % (io, e))
            skip("direct I/O refused here: %s" % e)
            continue
        with f:
            if io == "buffered":
                check(f.io_mode == "buffered" and f.io_note == "buffered (asked for)", "buffered note " + f.io_note)
            else:
                check((f.io_mode, f.io_note) in (("direct", "O_DIRECT"), ("direct", "F_NOCACHE")) or
                      (io == "direct" and f.io_note.startswith("buffered: ")), "%s note %s" % (io, f.io_note))
            p = f.pinned()
            bases = {id(a.base) for a in p.values()}
            check(len(bases) == 1 and isinstance(next(iter(p.values())).base, mmap.mmap),
                  "pinned arrays are views over one buffer")
            check(all(np.array_equal(p[n], refpin[n]) for n in p), "pinned %s" % io)
            ids = [ne - 1, 0, ne - 1]
            got = f.experts(layer, ids)
            for n, a in got.items():
                check(a.shape[0] == 3 and np.array_equal(a, ref[n][ids]), "experts %s %s" % (io, n))
            check(len({id(a.base) for a in got.values()}) == 1, "expert arrays are views over one buffer")
            # a caller buffer, reused
            buf = mconv_flash.aligned_buffer(k * stride)
            a1 = f.experts(layer, list(range(k)), buf=buf)
            check(all(a.base is buf for a in a1.values()), "experts(buf=) reads into buf")
            check(all(np.array_equal(a1[n], ref[n][:k]) for n in a1), "experts into buf")
            check(raises(ValueError, lambda: f.experts(layer, list(range(k)), buf=mmap.mmap(-1, stride))),
                  "small buffer refused")
            big = mmap.mmap(-1, 2 * k * stride + R.PAGE)
            check(raises(ValueError, lambda: f.experts(layer, [0], buf=memoryview(big)[512:]), "aligned"),
                  "misaligned buffer refused")
            check(f.experts(layer, [])[next(iter(ref))].shape[0] == 0, "k = 0")
            check(raises(mconv_flash.FlashError, lambda: f.experts(layer, [ne]),
                         "layer %d has %d experts, asked for expert %d" % (layer, ne, ne)), "bad id")
            check(raises(mconv_flash.FlashError, lambda: f.experts(9999, [0]), "layer 9999 has no experts"),
                  "no such MoE layer")
            check(raises(mconv_flash.FlashError, lambda: f.ffn(layer), "has no ffn span") and
                  raises(mconv_flash.FlashError, lambda: f.ffn(layer), flash), "no ffn span, named file")
            name = next(iter(ref))
            check(np.array_equal(f.read_tensor(name, expert=ne - 1), ref[name][ne - 1]), "read_tensor expert")
            check(raises(KeyError, lambda: f.read_tensor("no.such")), "read_tensor unknown")
    # threads give the same bytes
    with mconv_flash.open(flash, threads=1) as a, mconv_flash.open(flash, threads=8) as b:
        ids = list(range(ne))[::-1]
        x, y = a.experts(layer, ids), b.experts(layer, ids)
        check(all(np.array_equal(x[n], y[n]) for n in x), "threads 1 vs 8")
    check(raises(ValueError, lambda: mconv_flash.open(flash, io="fast")), "io value checked")

    # ---- direct I/O refused: at open, at the first read ----
    orig_open_direct = R.FlashFile._open_direct

    def refuse(self):
        raise OSError(errno.EINVAL, "O_DIRECT refused by the file system at open (Invalid argument)")

    R.FlashFile._open_direct = refuse
    try:
        with mconv_flash.open(flash, verify=True) as f:
            check(f.io_mode == "buffered" and f.io_note.startswith("buffered: ") and "refused" in f.io_note,
                  "fallback at open: " + f.io_note)
            check(np.array_equal(f.experts(layer, [1])[name][0], ref[name][1]), "fallback at open reads")
        check(raises(mconv_flash.FlashError, lambda: mconv_flash.open(flash, io="direct-only"), "refused"),
              "direct-only refused at open")
    finally:
        R.FlashFile._open_direct = orig_open_direct
    f = mconv_flash.open(flash, verify=True, threads=4)
    if f.io_mode == "direct":
        orig_preadv = os.preadv
        dfd = f._dfd

        def preadv(fd, bufs, off, *a):
            if fd == dfd:
                raise OSError(errno.EINVAL, "Invalid argument")
            return orig_preadv(fd, bufs, off, *a)

        R.os.preadv = preadv
        try:
            got = f.experts(layer, list(range(ne)))
            check(f.io_mode == "buffered" and "direct read at offset" in f.io_note, "fallback at read: " + f.io_note)
            check(all(np.array_equal(got[n], ref[n]) for n in got), "fallback at read: bytes")
            g = mconv_flash.open(flash, io="direct-only")
            dfd = g._dfd
            check(raises(mconv_flash.FlashError, lambda: g.pinned(), "read failed"), "direct-only read refused")
            check(g.io_mode == "direct", "direct-only does not fall back")
            g.close()
        finally:
            R.os.preadv = orig_preadv
    else:
        skip("direct I/O unavailable here: the read-time fallback is not exercised")
    f.close()

    # ---- a flipped byte in an expert block ----
    bad = os.path.join(work, "flipped.flash")
    shutil.copy(flash, bad)
    with open(bad, "r+b") as fh:
        fh.seek(L.offset + 1 * stride + stride // 3)
        c = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([c[0] ^ 0x10]))
    with mconv_flash.open(bad, verify=True, threads=3) as f:
        check(raises(mconv_flash.ChecksumError, lambda: f.experts(layer, [0, 1, 2 % ne]),
                     "expert 1 of layer %d" % layer), "flipped expert byte caught")
        check(raises(mconv_flash.ChecksumError, lambda: f.experts(layer, [1]), bad), "message names the file")
        f.experts(layer, [0])  # the others still read
        check(True, "other experts read")
    with mconv_flash.open(bad) as f:
        got = f.experts(layer, [1])
        diff = sum(int(np.count_nonzero(np.ascontiguousarray(got[n][0]).view(np.uint8) !=
                                        np.ascontiguousarray(ref[n][1]).view(np.uint8))) for n in got)
        check(diff <= 1, "without checksums the block reads (%d bytes differ)" % diff)

    # ---- files that are not .flash or not whole ----
    p = os.path.join(work, "junk.flash")
    open(p, "wb").write(b"GGUF" + b"\0" * 100)
    check(raises(mconv_flash.FlashError, lambda: mconv_flash.open(p), "not a .flash file"), "not a .flash file")
    open(p, "wb").write(open(flash, "rb").read()[:-R.PAGE])
    check(raises(mconv_flash.FlashError, lambda: mconv_flash.open(p), "file size"), "truncated file")
    check(raises(FileNotFoundError, lambda: mconv_flash.open(os.path.join(work, "none.flash")), "none.flash"),
          "a missing file is FileNotFoundError naming it")
    b = bytearray(open(flash, "rb").read())
    mo = struct.unpack("<Q", b[16:24])[0]
    b[mo + 5] ^= 1
    open(p, "wb").write(b)
    check(raises(mconv_flash.ChecksumError, lambda: mconv_flash.open(p), "manifest: checksum mismatch"),
          "manifest checksum")

    # ---- manifests: extensions accepted, hostile ones refused ----
    def ext(m):
        m["source_metadata"] = {"offset": 16384, "nbytes": 16384, "codec": "zstd"}
        for t in m["tensors"]:
            t["quant_error"] = {"rmse": 0.01}
        m["experts"][0]["note"] = "x"
        m["pinned"]["future"] = 1

    rewrite(flash, p, ext, extra_pages=2)
    with mconv_flash.open(p, verify=True) as f:
        check(np.array_equal(f.experts(layer, [0])[name][0], ref[name][0]), "unknown keys and region ignored")
    hostile = [
        ("tokenizer name ../evil", lambda m: m["tokenizer"].setdefault("embedded", {}).update({"../evil": "x"}),
         "not a plain file name"),
        ("tokenizer file config.json", lambda m: m["tokenizer"]["embedded"].update({"config.json": {}}),
         "not a plain file name"),
        ("expert tensor past the block",
         lambda m: m["experts"][0]["tensors"][-1].update(inner_offset=m["experts"][0]["stride"]), "past the block"),
        ("nbytes against shape", lambda m: m["tensors"][0].update(nbytes=m["tensors"][0]["nbytes"] - 2), "but dtype"),
        ("duplicate name", lambda m: m["tensors"][1].update(name=m["tensors"][0]["name"]), "listed twice"),
        ("no config", lambda m: m.pop("config"), '"config" is not an object'),
        ("pinned misaligned", lambda m: m["tensors"][1].update(offset=m["tensors"][1]["offset"] + 4096),
         "pinned tensor"),
        ("experts outside the file", lambda m: m["experts"][0].update(n_experts=1 << 19, xxh3=["0" * 16] * (1 << 19)),
         "outside the file"),
    ]
    for what, fn, text in hostile:
        rewrite(flash, p, fn)
        check(raises(mconv_flash.FlashError, lambda: mconv_flash.open(p), text), "hostile manifest: " + what)

    # ---- tokenizer files load where the libraries are ----
    d = os.path.join(work, "files")
    with mconv_flash.open(flash) as f:
        f.write_files(d)
        names = set(f.files())
    check(set(os.listdir(d)) == names and "tokenizer.json" in names, "write_files: %s" % os.listdir(d))
    try:
        import transformers  # noqa: F401
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(d)
        check(len(tok("hello world")["input_ids"]) > 0, "transformers loads the written tokenizer")
    except ImportError as e:
        skip("transformers not importable (%s): the written tokenizer is not loaded with it" % e)
    try:
        import mlx.core  # noqa: F401
    except ImportError as e:
        skip("mlx not importable (%s): mconv_flash.mlx (mx.array conversion, streamed mlx-lm model) not run" % e)
    else:
        from mconv_flash import mlx as fmx
        with mconv_flash.open(flash) as f:
            a = fmx.arrays(f.experts(layer, [0, 1]), f)
            check(all(tuple(v.shape) == (2,) + f.tensors[n].shape[1:] for n, v in a.items()), "mx arrays")
        try:
            import mlx_lm  # noqa: F401
            model, tok, f = fmx.load(flash)
            check(model is not None and tok is not None, "mlx-lm model loads")
            from mlx_lm import generate
            out = generate(model, tok, prompt="hello", max_tokens=3)
            check(isinstance(out, str), "mlx-lm generates with streamed weights")
            f.close()
        except ImportError as e:
            skip("mlx_lm not importable (%s): the streamed mlx-lm model is not run" % e)

    for x in fails[:30]:
        print("FAIL:", x)
    print("py_reader_unit: %d checks, %d failed, %d skipped" % (checks, len(fails), len(skips)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
