"""XXH3-64 (seed 0), the checksum of .flash files, in numpy.

The `xxhash` module is used when it is installed (C speed); otherwise this
implementation of the XXH3 specification (xxhash 0.8) does the long-input
loop with numpy: each 1 KiB block's 16 stripes are accumulated at once and
only the per-block scramble runs in Python, about 100 MB/s."""
import numpy as np

try:  # pragma: no cover - depends on the machine
    import xxhash as _xxhash

    def _fast(data):
        return _xxhash.xxh3_64_intdigest(data)
except ImportError:  # pragma: no cover
    _fast = None

M64 = (1 << 64) - 1
P32_1, P32_2, P32_3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
P64_1, P64_2, P64_3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P64_4, P64_5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5
PMX1, PMX2 = 0x165667919E3779F9, 0x9FB21C651E98DF25

SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")


def _r64(b, i):
    return int.from_bytes(b[i:i + 8], "little")


def _r32(b, i):
    return int.from_bytes(b[i:i + 4], "little")


def _mul_fold(a, b):
    p = a * b
    return (p ^ (p >> 64)) & M64


def _avalanche(h):
    h ^= h >> 37
    h = (h * PMX1) & M64
    return h ^ (h >> 32)


def _xxh64_avalanche(h):
    h ^= h >> 33
    h = (h * P64_2) & M64
    h ^= h >> 29
    h = (h * P64_3) & M64
    return h ^ (h >> 32)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _rrmxmx(h, n):
    h ^= _rotl(h, 49) ^ _rotl(h, 24)
    h = (h * PMX2) & M64
    h ^= (h >> 35) + n
    h = (h * PMX2) & M64
    return h ^ (h >> 28)


def _mix16(b, i, s):
    return _mul_fold(_r64(b, i) ^ _r64(SECRET, s), _r64(b, i + 8) ^ _r64(SECRET, s + 8))


def _short(b):
    n = len(b)
    if n > 8:
        lo = _r64(b, 0) ^ (_r64(SECRET, 24) ^ _r64(SECRET, 32))
        hi = _r64(b, n - 8) ^ (_r64(SECRET, 40) ^ _r64(SECRET, 48))
        acc = (n + int.from_bytes(lo.to_bytes(8, "little"), "big") + hi + _mul_fold(lo, hi)) & M64
        return _avalanche(acc)
    if n >= 4:
        x = (_r32(b, n - 4) + (_r32(b, 0) << 32)) & M64
        return _rrmxmx(x ^ (_r64(SECRET, 8) ^ _r64(SECRET, 16)), n)
    if n > 0:
        c = (b[0] << 16) | (b[n >> 1] << 24) | b[n - 1] | (n << 8)
        return _xxh64_avalanche(c ^ (_r32(SECRET, 0) ^ _r32(SECRET, 4)))
    return _xxh64_avalanche(_r64(SECRET, 56) ^ _r64(SECRET, 64))


def _mid(b):
    n = len(b)
    acc = (n * P64_1) & M64
    if n <= 128:
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(b, 48, 96) + _mix16(b, n - 64, 112)
                acc += _mix16(b, 32, 64) + _mix16(b, n - 48, 80)
            acc += _mix16(b, 16, 32) + _mix16(b, n - 32, 48)
        acc += _mix16(b, 0, 0) + _mix16(b, n - 16, 16)
        return _avalanche(acc & M64)
    for i in range(8):
        acc += _mix16(b, 16 * i, 16 * i)
    acc = _avalanche(acc & M64)
    for i in range(8, n // 16):
        acc += _mix16(b, 16 * i, 16 * (i - 8) + 3)
    acc += _mix16(b, n - 16, 136 - 17)
    return _avalanche(acc & M64)


_SWAP = np.array([1, 0, 3, 2, 5, 4, 7, 6])
_S64 = np.frombuffer(SECRET[:192], dtype="<u8")                      # secret words at 8-byte steps
_KEYS = np.stack([_S64[n:n + 8] for n in range(16)]).astype(np.uint64)  # stripe n of a block: words n..n+7
_SCRAMBLE = [_r64(SECRET, 128 + 8 * i) for i in range(8)]
_LASTKEY = np.frombuffer(SECRET[121:121 + 64], dtype="<u8").astype(np.uint64)
_LO = np.uint64(0xFFFFFFFF)
_SH = np.uint64(32)


def _stripes(words, keys):
    """Sum over stripes of one accumulate_512 each: words [..., S, 8]."""
    dk = words ^ keys
    prod = (dk & _LO) * (dk >> _SH)
    return prod.sum(axis=-2, dtype=np.uint64) + words[..., _SWAP].sum(axis=-2, dtype=np.uint64)


def _long(b):
    n = len(b)
    a = np.frombuffer(b, dtype=np.uint8)
    acc = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1]
    nblocks = (n - 1) // 1024
    with np.errstate(over="ignore"):
        step = 4096  # blocks per numpy batch (4 MiB)
        for b0 in range(0, nblocks, step):
            b1 = min(nblocks, b0 + step)
            words = a[b0 * 1024:b1 * 1024].view("<u8").reshape(b1 - b0, 16, 8).astype(np.uint64, copy=False)
            sums = _stripes(words, _KEYS).tolist()
            for s in sums:
                for i in range(8):
                    x = (acc[i] + s[i]) & M64
                    x ^= x >> 47
                    x ^= _SCRAMBLE[i]
                    acc[i] = (x * P32_1) & M64
        # the last, partial block, then the last stripe with its own key
        rest = a[nblocks * 1024:]
        ns = (len(rest) - 1) // 64
        add = [0] * 8
        if ns:
            add = _stripes(rest[:ns * 64].view("<u8").reshape(ns, 8).astype(np.uint64, copy=False),
                           _KEYS[:ns]).tolist()
        last = a[n - 64:].view("<u8").reshape(1, 8).astype(np.uint64, copy=False)
        tail = _stripes(last, _LASTKEY).tolist()
    acc = [(acc[i] + add[i] + tail[i]) & M64 for i in range(8)]
    res = (n * P64_1) & M64
    for i in range(4):
        res += _mul_fold(acc[2 * i] ^ _r64(SECRET, 11 + 16 * i), acc[2 * i + 1] ^ _r64(SECRET, 11 + 16 * i + 8))
    return _avalanche(res & M64)


def xxh3_64(data, use_module=True):
    """XXH3-64 with seed 0 of a bytes-like object, as an int."""
    if use_module and _fast is not None:
        return _fast(data)
    b = memoryview(data).cast("B")
    n = len(b)
    if n <= 16:
        return _short(bytes(b))
    if n <= 240:
        return _mid(bytes(b))
    return _long(b)
