#!/usr/bin/env python3
"""Independent GGUF fact source for tests (shares no code with the C reader).

Usage: gguf_facts.py FILE.gguf
Prints one JSON object: version, alignment, data_offset, every key (name,
value type, scalar value or array summary) and every tensor (name, type id,
ne, offset, nbytes). Integers are printed as decimal strings and byte strings
as hex so that a JSON reader using doubles loses nothing. Only struct, json
and sys are used. Exit status 1 (with a message on stderr) if the file cannot
be parsed.
"""
import json
import struct
import sys

# (elements per block, bytes per block) by GGML type id, written from the
# block layouts in ggml-common.h (ggml_half = 2 bytes, QK_K = 256).
QK_K = 256
BLOCKS = {
    0: (1, 4), 1: (1, 2),
    2: (32, 2 + 16), 3: (32, 2 * 2 + 16),
    6: (32, 2 + 4 + 16), 7: (32, 2 * 2 + 4 + 16),
    8: (32, 2 + 32), 9: (32, 2 * 2 + 32),
    10: (QK_K, 2 * 2 + QK_K // 16 + QK_K // 4),
    11: (QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    12: (QK_K, 2 * 2 + 12 + QK_K // 2),
    13: (QK_K, 2 * 2 + 12 + QK_K // 2 + QK_K // 8),
    14: (QK_K, 2 + QK_K // 16 + 3 * QK_K // 4),
    15: (QK_K, 4 + QK_K + QK_K // 16 * 2),
    16: (QK_K, 2 + QK_K // 8 * 2),
    17: (QK_K, 2 + QK_K // 8 * 2 + QK_K // 32),
    18: (QK_K, 2 + 3 * (QK_K // 8)),
    19: (QK_K, 2 + QK_K // 8 + QK_K // 16),
    20: (32, 2 + 16),
    21: (QK_K, 2 + 13 * (QK_K // 32) + QK_K // 64),
    22: (QK_K, 2 + QK_K // 4 + QK_K // 16),
    23: (QK_K, 2 + 2 + QK_K // 64 + QK_K // 2),
    24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    30: (1, 2),
    34: (QK_K, 2 + QK_K // 64 + (QK_K - 4 * QK_K // 64) // 5),
    35: (QK_K, 2 + QK_K // 4),
    39: (32, 1 + 16),
    40: (64, 64 // 16 + 32),
    41: (128, 2 + 128 // 8),
    42: (64, 2 + 64 // 4),
}

SCALAR = {0: ('<B', 1), 1: ('<b', 1), 2: ('<H', 2), 3: ('<h', 2), 4: ('<I', 4),
          5: ('<i', 4), 6: ('<f', 4), 7: ('<B', 1), 10: ('<Q', 8), 11: ('<q', 8),
          12: ('<d', 8)}
FLOATS = {6: ('<I', 4), 12: ('<Q', 8)}  # floats reported by bit pattern


class Bad(Exception):
    pass


class Src:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise Bad('truncated at %d (need %d bytes)' % (self.p, n))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def un(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]


def main():
    path = sys.argv[1]
    with open(path, 'rb') as f:
        data = f.read()
    s = Src(data)
    if s.take(4) != b'GGUF':
        raise Bad('bad magic')
    version = s.un('<I', 4)
    if version not in (1, 2, 3):
        raise Bad('version %d' % version)
    # GGUF v1: 32-bit counts, string lengths, array lengths and dims.
    cnt = ('<I', 4) if version == 1 else ('<Q', 8)

    def string():
        n = s.un(*cnt)
        return s.take(n)

    def scalar(t):
        if t in FLOATS:
            return {'bits': '%x' % s.un(*FLOATS[t])}
        if t == 7:
            return {'value': str(s.un('<B', 1))}
        return {'value': str(s.un(*SCALAR[t]))}

    n_tensors = s.un(*cnt)
    n_kv = s.un(*cnt)
    kvs = []
    alignment = 32
    for _ in range(n_kv):
        key = string()
        t = s.un('<I', 4)
        e = {'key_hex': key.hex(), 'type': t}
        if t == 8:
            v = string()
            e['str_hex'] = v.hex()
        elif t == 9:
            et = s.un('<I', 4)
            n = s.un(*cnt)
            e['arr_type'] = et
            e['n'] = str(n)
            if et == 8:
                total = 0
                first = last = b''
                for j in range(n):
                    v = string()
                    total += len(v)
                    if j == 0:
                        first = v
                    last = v
                e['total_len'] = str(total)
                if n:
                    e['first_hex'] = first.hex()
                    e['last_hex'] = last.hex()
            elif et in SCALAR:
                fmt, w = SCALAR[et]
                raw = s.take(w * n)
                if n:
                    if et in FLOATS:
                        ffmt = FLOATS[et][0]
                        e['first_bits'] = '%x' % struct.unpack_from(ffmt, raw, 0)[0]
                        e['last_bits'] = '%x' % struct.unpack_from(ffmt, raw, w * (n - 1))[0]
                    else:
                        e['first'] = str(struct.unpack_from(fmt, raw, 0)[0])
                        e['last'] = str(struct.unpack_from(fmt, raw, w * (n - 1))[0])
            else:
                raise Bad('array element type %d' % et)
        elif t in SCALAR:
            e.update(scalar(t))
            if key == b'general.alignment' and t == 4:
                alignment = int(e['value'])
        else:
            raise Bad('value type %d' % t)
        kvs.append(e)
    tensors = []
    for _ in range(n_tensors):
        name = string()
        nd = s.un('<I', 4)
        ne = [s.un(*cnt) for _ in range(nd)]
        t = s.un('<I', 4)
        off = s.un('<Q', 8)
        nel = 1
        for x in ne:
            nel *= x
        if t not in BLOCKS:
            raise Bad('tensor type %d' % t)
        blk, size = BLOCKS[t]
        tensors.append({'name_hex': name.hex(), 'name': name.decode('utf-8', 'replace'),
                        'type': t, 'ne': [str(x) for x in ne], 'offset': str(off),
                        'nbytes': str(nel // blk * size)})
    header_end = s.p
    data_offset = header_end
    if n_tensors:
        data_offset = (header_end + alignment - 1) // alignment * alignment
    json.dump({'version': version, 'alignment': alignment, 'header_end': str(header_end),
               'data_offset': str(data_offset), 'file_size': str(len(data)),
               'n_kv': str(n_kv), 'n_tensors': str(n_tensors), 'kv': kvs, 'tensors': tensors},
              sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    try:
        main()
    except (Bad, struct.error, IndexError, OSError) as ex:
        sys.stderr.write('gguf_facts: %s: %s\n' % (sys.argv[1] if len(sys.argv) > 1 else '?', ex))
        sys.exit(1)
