"""Read .flash files (docs/FORMAT.md) from Python: numpy only, no compiled part.

    import mconv_flash
    with mconv_flash.open("model.flash") as f:
        f.config                       # the mlx-lm config.json (a dict)
        f.write_files("model-dir")     # config.json + tokenizer files for mlx-lm / transformers
        pinned = f.pinned()            # {name: np.ndarray}, views over one read
        mlp = f.ffn(3)                 # a dense layer's FFN tensors, one read
        sw = f.experts(5, [17, 3])     # {stacked name: np.ndarray [2, ...]}, one read per expert

Reads bypass the page cache where the system allows: O_DIRECT on Linux (into
page-aligned buffers, with os.preadv), F_NOCACHE and no read-ahead on macOS;
where the file system refuses (EINVAL) the reader falls back to buffered
reads and says so (`io_mode`, `io_note`). The arrays returned are views over
the buffer the read filled (no copy); BF16 tensors come as np.uint16 (numpy
has no bfloat16; `mconv_flash.mlx` turns them into mx.bfloat16).
"""
import builtins
import errno
import json
import mmap
import os
import struct
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._xxh3 import xxh3_64

PAGE = 16384
ALIGN = 4096
MANIFEST_MAX = 1 << 30

# safetensors dtype -> (numpy dtype, bytes per element); BF16 as raw uint16
DTYPES = {
    "U32": (np.uint32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2), "F32": (np.float32, 4),
    "F64": (np.float64, 8), "I8": (np.int8, 1), "I16": (np.int16, 2), "I32": (np.int32, 4),
    "I64": (np.int64, 8), "U8": (np.uint8, 1), "U16": (np.uint16, 2), "U64": (np.uint64, 8),
    "BOOL": (np.bool_, 1),
}

F_NOCACHE = 48   # macOS <sys/fcntl.h>
F_RDAHEAD = 45


class FlashError(Exception):
    """A file that is not a usable .flash file, or a read that failed; the
    message names the file and the numbers involved."""


class ChecksumError(FlashError):
    """A read whose bytes do not match the manifest's XXH3-64."""


class TensorInfo:
    """One tensor of the table.

    name: mlx-lm name (expert tensors: the stacked switch_mlp name);
    dtype: safetensors spelling; kind: "pinned", "ffn" or "expert";
    layer: decoder layer (-1 for pinned tensors); shape: tuple (experts:
    (n_experts, ...per-expert shape)); nbytes: exact bytes (experts: one
    slice); offset: absolute file offset (experts: expert 0's slice);
    buffer_offset: where it starts in the buffer of its read; xxh3: its own
    checksum (None for expert slices: the manifest has one per block)."""

    __slots__ = ("name", "dtype", "kind", "layer", "shape", "nbytes", "offset", "buffer_offset", "xxh3")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw[k])

    def __repr__(self):
        return "TensorInfo(%s %s %s %s layer %d)" % (self.name, self.dtype, list(self.shape), self.kind, self.layer)


class LayerInfo:
    """A streamed layer: kind "ffn" (one span) or "experts" (n_experts
    blocks of nbytes each from offset); tensors: its TensorInfo list;
    block_xxh3: per-expert checksums (experts only)."""

    __slots__ = ("layer", "kind", "offset", "nbytes", "n_experts", "tensors", "block_xxh3")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw[k])


def aligned_buffer(nbytes):
    """A page-aligned anonymous buffer of nbytes rounded up to 16384 (suits
    every read, direct I/O included)."""
    n = max(PAGE, (nbytes + PAGE - 1) // PAGE * PAGE)
    return mmap.mmap(-1, n)


def _plain_name(s):
    return (isinstance(s, str) and 0 < len(s) <= 255 and not s.startswith(".")
            and all(c.isascii() and (c.isalnum() or c in "._-") for c in s))


def _uint(o, key):
    v = o.get(key) if isinstance(o, dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v > 2 ** 53 or v != int(v):
        raise KeyError(key)
    return int(v)


def _hex(s):
    if not isinstance(s, str) or len(s) != 16 or any(c not in "0123456789abcdef" for c in s):
        raise KeyError("xxh3")
    return int(s, 16)


class FlashFile:
    """An open .flash file. io: "direct" (default; buffered where refused),
    "buffered", or "direct-only" (FlashError where refused). verify: check
    every read against the manifest's checksums. threads: parallel expert
    reads (default: experts_per_tok, at least 1, at most 64)."""

    def __init__(self, path, io="direct", verify=False, threads=None):
        if io not in ("direct", "buffered", "direct-only"):
            raise ValueError("io must be 'direct', 'buffered' or 'direct-only', not %r" % (io,))
        self.path = os.fspath(path)
        self.verify = bool(verify)
        self._fd = -1
        self._dfd = -1
        self._direct = False
        self._io_asked = io
        self._lock = threading.Lock()
        self._pool = None
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self._parse()
            self._open_io(io)
            t = threads if threads else min(64, max(1, self.experts_per_tok))
            if not 1 <= t <= 256:
                raise ValueError("threads must be 1..256")
            self.threads = t
        except BaseException:
            self.close()
            raise

    # ---- opening ----

    def _fail(self, msg):
        raise FlashError("%s: %s" % (self.path, msg))

    def _pread_buffered(self, n, off):
        out = bytearray()
        while len(out) < n:
            b = os.pread(self._fd, n - len(out), off + len(out))
            if not b:
                self._fail("truncated: file ended at offset %d" % (off + len(out)))
            out += b
        return bytes(out)

    def _parse(self):
        st = os.fstat(self._fd)
        self.size = st.st_size
        h = self._pread_buffered(48, 0) if self.size >= 48 else b""
        if len(h) < 48 or h[:8] != b"MCFLASH\0":
            self._fail("not a .flash file (no MCFLASH header)")
        version, page, mo, ml, fsz, mx = struct.unpack("<IIQQQQ", h[8:48])
        if version != 1:
            self._fail("header: version %d, expected 1" % version)
        if page != PAGE:
            self._fail("header: page size %d, expected 16384" % page)
        if fsz != self.size:
            self._fail("header: file size %d but the file has %d bytes" % (fsz, self.size))
        if self.size % PAGE:
            self._fail("file size %d is not a multiple of 16384" % self.size)
        if mo < PAGE or mo + ml > self.size or ml == 0 or ml > MANIFEST_MAX:
            self._fail("header: manifest at offset %d, length %d lies outside the file (%d bytes)"
                       % (mo, ml, self.size))
        text = self._pread_buffered(ml, mo)
        got = xxh3_64(text)
        if got != mx:
            raise ChecksumError("%s: manifest: checksum mismatch (xxh3 %016x, header says %016x)"
                                % (self.path, got, mx))
        try:
            m = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            self._fail("manifest: not JSON (%s)" % e)
        if not isinstance(m, dict):
            self._fail("manifest: not a JSON object")
        self.manifest_text = text.decode("utf-8")
        self.manifest = m
        try:
            self._tables(m)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            self._fail("manifest: malformed (%s)" % (e,))
        self._files(m)

    def _check_size(self, name, dtype, shape, nbytes):
        if dtype not in DTYPES:
            self._fail("tensor %s: dtype %s is not one this reader knows" % (name, dtype))
        ne = 1
        for d in shape:
            ne *= d
        if ne * DTYPES[dtype][1] != nbytes:
            self._fail("tensor %s: %d bytes, but dtype %s and its %d elements make %d"
                       % (name, nbytes, dtype, ne, ne * DTYPES[dtype][1]))

    @staticmethod
    def _shape(o, key):
        s = o[key]
        if not isinstance(s, list) or len(s) > 4:
            raise ValueError("%s is not a shape" % key)
        return tuple(_uint({"d": d}, "d") for d in s)

    def _tables(self, m):
        if m.get("format") != "mconv-flash" or m.get("version") != 1 or m.get("page_size") != PAGE:
            self._fail('manifest: "format", "version" or "page_size" is not mconv-flash, 1, 16384')
        pin = m["pinned"]
        self.pinned_offset, self.pinned_nbytes = _uint(pin, "offset"), _uint(pin, "nbytes")
        if (self.pinned_offset % PAGE or self.pinned_nbytes % PAGE
                or self.pinned_offset + self.pinned_nbytes > self.size):
            self._fail("pinned region at %d, %d bytes: not 16 KiB-aligned or outside the file"
                       % (self.pinned_offset, self.pinned_nbytes))
        k = m["experts_per_tok"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            self._fail('manifest: "experts_per_tok" missing or negative')
        self.experts_per_tok = k
        pin_end = self.pinned_offset + self.pinned_nbytes
        spans = {}
        for s in m["ffn"]:
            layer, off, nb = s["layer"], _uint(s, "offset"), _uint(s, "nbytes")
            if not isinstance(layer, int) or off % PAGE or nb % PAGE or nb == 0 or off + nb > self.size:
                self._fail("ffn span of layer %s at %d, %d bytes: not 16 KiB-aligned or outside the file"
                           % (layer, off, nb))
            if layer in spans:
                self._fail("two ffn spans for layer %d" % layer)
            spans[layer] = LayerInfo(layer=layer, kind="ffn", offset=off, nbytes=nb, n_experts=0, tensors=[],
                                     block_xxh3=None)
        tensors = {}
        order = []

        def add(t):
            if t.name in tensors:
                self._fail("tensor %s is listed twice" % t.name)
            tensors[t.name] = t
            order.append(t)

        ffn_t = []
        for e in m["tensors"]:
            name, dtype, role = e["name"], e["dtype"], e["role"]
            shape, off, nb, xx = self._shape(e, "shape"), _uint(e, "offset"), _uint(e, "nbytes"), _hex(e["xxh3"])
            if not isinstance(name, str) or role not in ("pinned", "ffn"):
                raise ValueError("tensor entry %r" % (name,))
            self._check_size(name, dtype, shape, nb)
            if role == "pinned":
                if off % PAGE or off < self.pinned_offset or off + nb > pin_end:
                    self._fail("pinned tensor %s at %d, %d bytes: not 16 KiB-aligned or outside the pinned "
                               "region (%d..%d)" % (name, off, nb, self.pinned_offset, pin_end))
                add(TensorInfo(name=name, dtype=dtype, kind="pinned", layer=-1, shape=shape, nbytes=nb,
                               offset=off, buffer_offset=off - self.pinned_offset, xxh3=xx))
            else:
                layer = e["layer"]
                s = spans.get(layer)
                if s is None:
                    self._fail("ffn tensor %s: no ffn span for layer %s" % (name, layer))
                if off % PAGE or off < s.offset or off + nb > s.offset + s.nbytes:
                    self._fail("ffn tensor %s at %d, %d bytes: not 16 KiB-aligned or outside the span of "
                               "layer %d" % (name, off, nb, layer))
                ffn_t.append(TensorInfo(name=name, dtype=dtype, kind="ffn", layer=layer, shape=shape, nbytes=nb,
                                        offset=off, buffer_offset=off - s.offset, xxh3=xx))
        layers = []
        for s in sorted(spans.values(), key=lambda s: s.offset):
            for t in ffn_t:
                if t.layer == s.layer:
                    s.tensors.append(t)
                    add(t)
            layers.append(s)
        moe = {}
        for x in m["experts"]:
            layer, off, ne, stride = x["layer"], _uint(x, "offset"), _uint(x, "n_experts"), _uint(x, "stride")
            hs = x["xxh3"]
            if (not isinstance(layer, int) or ne == 0 or ne > 1 << 20 or off % PAGE or stride % PAGE
                    or stride == 0 or off + ne * stride > self.size):
                self._fail("experts of layer %s at %d, %d x %d bytes: not 16 KiB-aligned or outside the file "
                           "(%d bytes)" % (layer, off, ne, stride, self.size))
            if layer in moe:
                self._fail("two expert tables for layer %d" % layer)
            if not isinstance(hs, list) or len(hs) != ne:
                raise ValueError("experts of layer %d: %s checksums" % (layer, "bad" if not isinstance(hs, list)
                                                                       else len(hs)))
            L = LayerInfo(layer=layer, kind="experts", offset=off, nbytes=stride, n_experts=ne, tensors=[],
                          block_xxh3=[_hex(h) for h in hs])
            prefix = self._prefix(m, layer)
            for t in x["tensors"]:
                name, dtype, io_, nb = t["name"], t["dtype"], _uint(t, "inner_offset"), _uint(t, "nbytes")
                shape = self._shape(t, "shape_per_expert")
                if io_ % PAGE or io_ + nb > stride:
                    self._fail("experts of layer %d: tensor %s at +%d, %d bytes: not 16 KiB-aligned or past the "
                               "block (%d bytes)" % (layer, name, io_, nb, stride))
                self._check_size(name, dtype, shape, nb)
                ti = TensorInfo(name=prefix + name, dtype=dtype, kind="expert", layer=layer, shape=(ne,) + shape,
                                nbytes=nb, offset=off + io_, buffer_offset=io_, xxh3=None)
                L.tensors.append(ti)
            moe[layer] = L
            layers.append(L)
        for L in sorted(moe.values(), key=lambda L: L.layer):
            for t in L.tensors:
                add(t)
        layers.sort(key=lambda L: L.offset)
        self.tensors = {t.name: t for t in order}
        self.layers = layers
        self._ffn = spans
        self._moe = moe
        self.dense_layers = sorted(spans)
        self.moe_layers = sorted(moe)
        self.token_bytes = (sum(s.nbytes for s in spans.values())
                            + sum(min(k, L.n_experts) * L.nbytes for L in moe.values()))

    @staticmethod
    def _prefix(m, layer):
        """The part of the layer's mlx-lm names before the names the expert
        table stores ("model.layers.3.", "language_model.model.layers.3.")."""
        want = "layers.%d." % layer
        names = [t.get("name") for t in m["tensors"] if isinstance(t.get("name"), str)]
        for n in names:
            i = n.find(want)
            while i >= 0:
                if i == 0 or n[i - 1] == ".":
                    return n[:i + len(want)]
                i = n.find(want, i + 1)
        for n in names:
            i = n.find("layers.")
            if i >= 0 and (i == 0 or n[i - 1] == "."):
                j = i + 7
                while j < len(n) and n[j].isdigit():
                    j += 1
                if j > i + 7 and j < len(n) and n[j] == ".":
                    return n[:i] + want
        return "model." + want

    def _files(self, m):
        cfg = m.get("config")
        if not isinstance(cfg, dict):
            self._fail('manifest: "config" is not an object')
        self.config = cfg
        files = {"config.json": json.dumps(cfg, indent=2, ensure_ascii=False) + "\n"}
        tok = m.get("tokenizer")
        emb = tok.get("embedded") if isinstance(tok, dict) else None
        if isinstance(emb, dict):
            for name, v in emb.items():
                if not _plain_name(name) or name == "config.json":
                    self._fail('manifest: tokenizer file name "%s" is not a plain file name (or is config.json)'
                               % name[:64])
                if isinstance(v, str) and not name.endswith(".json"):
                    files[name] = v
                else:
                    files[name] = json.dumps(v, indent=2, ensure_ascii=False) + "\n"
        self.not_embedded = list(tok.get("not_embedded", [])) if isinstance(tok, dict) else []
        self._file_texts = files

    def _open_direct(self):
        """A descriptor for direct reads and how; OSError(EINVAL) when the
        system or file system refuses direct I/O."""
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        if not hasattr(os, "preadv"):
            raise OSError(errno.EINVAL, "os.preadv is missing (direct reads need aligned buffers)")
        if sys.platform == "darwin":
            import fcntl
            fd = os.open(self.path, flags)
            try:
                fcntl.fcntl(fd, getattr(fcntl, "F_NOCACHE", F_NOCACHE), 1)
            except OSError as e:
                os.close(fd)
                raise OSError(errno.EINVAL, "F_NOCACHE refused (%s)" % e.strerror) from None
            try:  # expert reads are random: read-ahead only wastes bandwidth
                fcntl.fcntl(fd, getattr(fcntl, "F_RDAHEAD", F_RDAHEAD), 0)
            except OSError:
                pass
            return fd, "F_NOCACHE"
        if not hasattr(os, "O_DIRECT"):
            raise OSError(errno.EINVAL, "this system has no direct I/O (no O_DIRECT or F_NOCACHE)")
        try:
            return os.open(self.path, flags | os.O_DIRECT), "O_DIRECT"
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                raise OSError(errno.EINVAL, "O_DIRECT refused by the file system at open (%s)"
                              % e.strerror) from None
            raise

    def _open_io(self, io):
        self._io_asked = io
        self.io_mode, self.io_note = "buffered", "buffered (asked for)"
        if io == "buffered":
            self._advise_random()
            return
        try:
            fd, how = self._open_direct()
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise FlashError("%s: cannot open: %s" % (self.path, e.strerror)) from None
            if io == "direct-only":
                raise FlashError("%s: %s" % (self.path, e.strerror)) from None
            self.io_note = "buffered: %s: %s" % (self.path, e.strerror)
            self._advise_random()
            return
        a, b = os.fstat(fd), os.fstat(self._fd)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            os.close(fd)
            raise FlashError("%s: the file changed while it was being opened" % self.path)
        self._dfd, self._direct, self.io_mode, self.io_note = fd, True, "direct", how

    def _advise_random(self):
        if hasattr(os, "posix_fadvise") and sys.platform != "darwin":
            try:
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
            except OSError:
                pass

    # ---- reads ----

    def _read_into(self, mv, off):
        """Fill the writable memoryview mv from offset off: one read (retried
        when short), direct while allowed."""
        n, done = len(mv), 0
        while done < n:
            direct = self._direct
            try:
                if direct:
                    got = os.preadv(self._dfd, [mv[done:]], off + done)
                elif hasattr(os, "preadv"):
                    got = os.preadv(self._fd, [mv[done:]], off + done)
                else:
                    b = os.pread(self._fd, n - done, off + done)
                    mv[done:done + len(b)] = b
                    got = len(b)
            except OSError as e:
                if direct and e.errno == errno.EINVAL and self._io_asked != "direct-only":
                    self._fall_back("%s: direct read at offset %d refused by the file system (%s)"
                                    % (self.path, off + done, e.strerror))
                    continue
                raise FlashError("%s: read failed at offset %d: %s" % (self.path, off + done, e.strerror)) from None
            if got == 0:
                self._fail("truncated: file ended at offset %d" % (off + done))
            done += got

    def _fall_back(self, why):
        with self._lock:
            if self._direct:
                self._direct = False
                self.io_mode, self.io_note = "buffered", "buffered: " + why
                self._advise_random()

    @staticmethod
    def _buffer(buf, n):
        if buf is None:
            return aligned_buffer(n)
        if len(buf) < n:
            raise ValueError("buffer of %d bytes, %d needed" % (len(buf), n))
        if np.frombuffer(buf, dtype=np.uint8, count=1).ctypes.data % ALIGN:
            raise ValueError("buffer is not %d-byte aligned (use mconv_flash.aligned_buffer)" % ALIGN)
        return buf

    def _check(self, what, data, want):
        if not self.verify or want is None:
            return
        got = xxh3_64(data)
        if got != want:
            raise ChecksumError("%s: %s: checksum mismatch (xxh3 %016x, manifest says %016x)"
                                % (self.path, what, got, want))

    @staticmethod
    def _view(buf, t, base=0, count=None, stride=0):
        dt, _ = DTYPES[t.dtype]
        if t.kind != "expert":
            return np.ndarray(t.shape, dtype=dt, buffer=buf, offset=base + t.buffer_offset)
        per = t.shape[1:]
        inner = [np.dtype(dt).itemsize]
        for d in reversed(per[1:]):
            inner.insert(0, inner[0] * d)
        return np.ndarray((count,) + per, dtype=dt, buffer=buf, offset=base + t.buffer_offset,
                          strides=(stride,) + tuple(inner[:len(per)]))

    def pinned(self, buf=None):
        """Every pinned tensor: {name: array}, views over one read of the
        pinned region (into buf when given: aligned, pinned_nbytes long)."""
        buf = self._buffer(buf, self.pinned_nbytes)
        mv = memoryview(buf)
        self._read_into(mv[:self.pinned_nbytes], self.pinned_offset)
        out = {}
        for t in self.tensors.values():
            if t.kind == "pinned":
                self._check("tensor " + t.name, mv[t.buffer_offset:t.buffer_offset + t.nbytes], t.xxh3)
                out[t.name] = self._view(buf, t)
        return out

    def ffn(self, layer, buf=None):
        """A dense layer's FFN tensors: {name: array}, views over one read of
        its span."""
        s = self._ffn.get(layer)
        if s is None:
            self._fail("layer %s has no ffn span" % (layer,))
        buf = self._buffer(buf, s.nbytes)
        mv = memoryview(buf)
        self._read_into(mv[:s.nbytes], s.offset)
        out = {}
        for t in s.tensors:
            self._check("tensor " + t.name, mv[t.buffer_offset:t.buffer_offset + t.nbytes], t.xxh3)
            out[t.name] = self._view(buf, t)
        return out

    def _pool_get(self):
        with self._lock:
            if self._pool is None and self.threads > 1:
                self._pool = ThreadPoolExecutor(max_workers=self.threads)
            return self._pool

    def experts(self, layer, ids, buf=None):
        """k experts of a MoE layer: {stacked name: array [k, ...per-expert
        shape]}, slice i being expert ids[i] (like mlx-lm's switch_mlp
        weights indexed by ids). One read per expert block, up to `threads`
        at once, into one buffer (k * stride bytes); the arrays are strided
        views over it."""
        L = self._moe.get(layer)
        if L is None:
            self._fail("layer %s has no experts" % (layer,))
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        for e in ids:
            if not 0 <= e < L.n_experts:
                raise FlashError("%s: layer %d has %d experts, asked for expert %d" % (self.path, layer,
                                                                                      L.n_experts, e))
        k = len(ids)
        buf = self._buffer(buf, max(1, k) * L.nbytes)
        mv = memoryview(buf)

        def one(i):
            e = ids[i]
            part = mv[i * L.nbytes:(i + 1) * L.nbytes]
            off = L.offset + e * L.nbytes
            self._read_into(part, off)
            self._check("expert %d of layer %d (bytes %d..%d)" % (e, layer, off, off + L.nbytes), part,
                        L.block_xxh3[e])

        pool = self._pool_get() if k > 1 else None
        if pool is None:
            for i in range(k):
                one(i)
        else:
            futures = [pool.submit(one, i) for i in range(k)]
            errors = [f.exception() for f in futures]  # every read done before returning or raising
            for e in errors:
                if e is not None:
                    raise e
        return {t.name: self._view(buf, t, count=k, stride=L.nbytes) for t in L.tensors}

    def read_tensor(self, name, expert=0, buf=None):
        """One tensor on its own (an expert tensor: expert `expert`'s slice),
        one read of its 16 KiB-padded bytes."""
        t = self.tensors.get(name)
        if t is None:
            raise KeyError("%s: no tensor %s" % (self.path, name))
        off = t.offset
        if t.kind == "expert":
            L = self._moe[t.layer]
            if not 0 <= expert < L.n_experts:
                raise FlashError("%s: layer %d has %d experts, asked for expert %d of %s"
                                 % (self.path, t.layer, L.n_experts, expert, name))
            off += expert * L.nbytes
        n = (t.nbytes + PAGE - 1) // PAGE * PAGE
        buf = self._buffer(buf, n)
        mv = memoryview(buf)
        self._read_into(mv[:n], off)
        self._check("tensor " + name, mv[:t.nbytes], t.xxh3)
        dt, _ = DTYPES[t.dtype]
        shape = t.shape[1:] if t.kind == "expert" else t.shape
        return np.ndarray(shape, dtype=dt, buffer=buf, offset=0)

    # ---- files ----

    def files(self):
        """{file name: text}: config.json first (the mlx-lm config with
        "quantization"), then the tokenizer files embedded at conversion."""
        return dict(self._file_texts)

    def write_files(self, folder):
        """Write files() into folder (created when missing), each through a
        temporary file renamed into place; other files are left alone. The
        folder then loads with mlx-lm / transformers tokenizers."""
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        for name, text in self._file_texts.items():
            final = os.path.join(folder, name)
            tmp = os.path.join(folder, ".%s.mconv-tmp.%d" % (name, os.getpid()))
            with builtins.open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)

    # ---- life ----

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for fd in (self._dfd, self._fd):
            if fd >= 0:
                os.close(fd)
        self._dfd = self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def open(path, io="direct", verify=False, threads=None):  # noqa: A001 - mirrors builtins.open on purpose
    """Open a .flash file (see FlashFile)."""
    return FlashFile(path, io=io, verify=verify, threads=threads)
