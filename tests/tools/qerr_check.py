#!/usr/bin/env python3
"""mconv's quantization error report and its picture, checked from outside
(json, zlib, struct only).

  qerr_check.py MCONV CORPUS

For corpus GGUFs: convert to .flash; `mconv inspect --json` is parsed and
its "qerr" records and "qerr_summary" checked against each other and against
what `convert` printed; `mconv inspect --png` is decoded with Python's zlib
(signature, every chunk's CRC, IHDR, IDAT inflated and unfiltered) and
pixels whose colours the geometry of layout/mc_flash_picture.h fixes are
checked; a second run gives the same bytes. A mlx folder's
quant_report.json carries the same records; --no-qerr leaves them out;
--png refuses a non-.flash input and writes nothing.
Exit 0 pass, 1 fail, 77 skip (no corpus)."""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

checks = 0
fails = 0


def check(cond, msg):
    global checks, fails
    checks += 1
    if not cond:
        fails += 1
        print("FAIL: " + msg, file=sys.stderr)


def run(*args):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---- PNG decoding (independent of mconv) ----

def png_decode(data):
    """-> (w, h, rows of bytes RGB), checking signature, CRCs and chunk order."""
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "png signature")
    pos = 8
    chunks = []
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        typ = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        check(zlib.crc32(typ + body) & 0xffffffff == crc, "png chunk %r crc" % typ)
        chunks.append((typ, body))
        pos += 12 + n
    check(pos == len(data), "png: no bytes after the last chunk")
    types = [t for t, _ in chunks]
    check(types[0] == b"IHDR" and types[-1] == b"IEND", "png chunk order %r" % types)
    check(all(t in (b"IHDR", b"IDAT", b"IEND") for t in types), "png: only IHDR/IDAT/IEND (no time, text): %r" % types)
    w, h, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
    check((depth, ctype, comp, filt, inter) == (8, 2, 0, 0, 0), "png IHDR: 8-bit RGB, no interlace")
    raw = zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT"))
    stride = w * 3
    check(len(raw) == h * (stride + 1), "png: inflated size %d, expected %d" % (len(raw), h * (stride + 1)))
    rows = []
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b = prev[i]
            c = prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
            elif f != 0:
                check(False, "png: filter type %d" % f)
                break
        rows.append(line)
        prev = line
    return w, h, rows


def px(rows, x, y):
    return tuple(rows[y][3 * x:3 * x + 3])


# ---- the picture's geometry (layout/mc_flash_picture.h) ----
W, M, MW, MAP_ROWS = 1024, 8, 1008, 8
BG, META, PINNED = (24, 24, 32), (128, 128, 128), (66, 133, 244)
FFN = [(52, 168, 83), (30, 110, 55)]
EXPERT = [(251, 188, 5), (190, 130, 0)]
TOKEN, LOAD, TOKEN_OFF, WHITE, EMPTY = (234, 67, 53), (40, 70, 140), (56, 56, 68), (255, 255, 255), (44, 44, 52)
KINDS = ["attention", "dense_ffn", "experts", "embeddings", "other"]


def cdiv_trunc(a, b):
    q = abs(a) // b
    return q if a >= 0 else -q


def palette(u):
    lo, mid, hi = (49, 54, 149), (255, 255, 191), (165, 0, 38)
    if u <= 127:
        return tuple(lo[k] + cdiv_trunc((mid[k] - lo[k]) * u, 127) for k in range(3))
    return tuple(mid[k] + cdiv_trunc((hi[k] - mid[k]) * (u - 128), 127) for k in range(3))


def check_picture(name, rows, w, h, info):
    size = info["file_size"]
    cols = MW * MAP_ROWS
    B = max(1, (size + cols - 1) // cols)

    def at(o):  # (x, y of region band) of the column whose first byte is the first multiple of B >= o
        i = (o + B - 1) // B
        return M + i % MW, M + (i // MW) * 24, i * B

    po, pn = info["pinned"]["offset"], info["pinned"]["nbytes"]
    x, y, b = at(po)
    if b < po + pn:
        check(px(rows, x, y) == PINNED, "%s: pinned byte %d at (%d,%d) is %r" % (name, b, x, y, px(rows, x, y)))
        check(px(rows, x, y + 12) == LOAD, "%s: pinned token band" % name)
    check(px(rows, M, M) == META, "%s: header colour at (8,8)" % name)
    check(px(rows, 0, 0) == BG, "%s: background at (0,0)" % name)
    x, y, b = at(info["manifest"]["offset"])
    if b < size:
        check(px(rows, x, y) == META, "%s: manifest colour" % name)
    seen_ffn = seen_exp = 0
    for s in info["ffn"]:
        x, y, b = at(s["offset"])
        if b < s["offset"] + s["nbytes"]:
            seen_ffn += 1
            check(px(rows, x, y) == FFN[s["layer"] % 2], "%s: ffn layer %d colour" % (name, s["layer"]))
            check(px(rows, x, y + 12) == TOKEN, "%s: ffn layer %d is read by a token" % (name, s["layer"]))
    k = info["experts_per_tok"]
    for xl in info["experts"]:
        n, L = xl["n_experts"], xl["layer"]
        kk = max(1, min(k, n))
        step = n // kk
        read = {(L + j * step) % n for j in range(kk)}
        for e in range(n):
            o = xl["offset"] + e * xl["stride"]
            x, y, b = at(o)
            if b >= o + xl["stride"]:
                continue
            seen_exp += 1
            check(px(rows, x, y) == EXPERT[e % 2], "%s: layer %d expert %d colour" % (name, L, e))
            want = TOKEN if e in read else TOKEN_OFF
            check(px(rows, x, y + 12) == want, "%s: layer %d expert %d token band %r, want %r" %
                  (name, L, e, px(rows, x, y + 12), want))
    check(seen_ffn + seen_exp > 0, "%s: some streamed region drawn" % name)
    # heat map
    recs = info["qerr"]
    max_layer = max([r.get("layer", -1) for r in recs] + [s["layer"] for s in info["ffn"]] +
                    [s["layer"] for s in info["experts"]] + [-1])
    n_rows = max_layer + 2
    rh = min(16, max(3, 400 // n_rows))
    heat_y = M + MAP_ROWS * 24 + 8
    legend_y = heat_y + n_rows * rh + 8
    check(w == W and h == legend_y + 32, "%s: picture %dx%d, expected %dx%d" % (name, w, h, W, legend_y + 32))
    cells = {}
    for r in recs:
        c = cells.setdefault((r.get("layer", -1) + 1, KINDS.index(r["kind"])), [0.0, 0.0, 0, 0])
        c[0] += r["sum_sq_err"]
        c[1] += r["sum_sq_ref"]
        c[2] += 1
        c[3] += 1 if r["exact"] else 0
    n_white = n_col = n_empty = 0
    for row in range(n_rows):
        for k in range(5):
            c = cells.get((row, k))
            if not c:
                want = EMPTY
                n_empty += 1
            elif c[3] == c[2]:
                want = WHITE
                n_white += 1
            else:
                u = 255
                if c[1] > 0:
                    t = (math.log10(math.sqrt(c[0] / c[1])) + 4.0) / 4.0
                    t = min(1.0, max(0.0, t))
                    u = int(math.floor(255.0 * t + 0.5))
                want = palette(u)
                n_col += 1
            got = px(rows, M + k * 66 + 10, heat_y + row * rh)
            check(got == want, "%s: heat cell layer %d %s: %r, want %r" % (name, row - 1, KINDS[k], got, want))
    check(n_col > 0, "%s: some measured heat cells" % name)
    for u in (0, 64, 127, 128, 200, 255):
        check(px(rows, M + u, legend_y) == palette(u), "%s: legend palette %d" % (name, u))
    return n_white, n_col, n_empty


def check_report(name, info, printed):
    recs, summ = info["qerr"], info["qerr_summary"]
    check(isinstance(recs, list) and len(recs) > 0 and isinstance(summ, dict), "%s: qerr members present" % name)
    by_kind = {}
    for r in recs:
        k = by_kind.setdefault(r["kind"], [0, 0, 0.0, 0.0, 0.0])
        k[0] += 1
        k[1] += 1 if r["exact"] else 0
        k[2] += r["sum_sq_err"]
        k[3] += r["sum_sq_ref"]
        k[4] = max(k[4], r["max_abs"])
        if r["exact"]:
            check(r["sum_sq_err"] == 0 and r["snr_db"] is None, "%s: %s exact, figures" % (name, r["name"]))
        elif r["sum_sq_ref"] > 0:
            rel = math.sqrt(r["sum_sq_err"] / r["sum_sq_ref"])
            check(abs(r["rel_rms"] - rel) <= 1e-12 * rel, "%s: %s rel_rms" % (name, r["name"]))
            check(abs(r["snr_db"] - 10 * math.log10(r["sum_sq_ref"] / r["sum_sq_err"])) < 1e-9, "%s: snr" % name)
    check(set(by_kind) == set(summ["kinds"]), "%s: kinds %r vs %r" % (name, sorted(by_kind), sorted(summ["kinds"])))
    for kn, k in by_kind.items():
        s = summ["kinds"].get(kn, {})
        check(s.get("tensors") == k[0] and s.get("exact_tensors") == k[1], "%s: %s tensor counts" % (name, kn))
        check(abs(s.get("sum_sq_err", -1) - k[2]) <= 1e-12 * max(k[2], 1e-300), "%s: %s pooled err" % (name, kn))
        check(abs(s.get("sum_sq_ref", -1) - k[3]) <= 1e-12 * max(k[3], 1e-300), "%s: %s pooled ref" % (name, kn))
        check(s.get("max_abs") == k[4], "%s: %s max" % (name, kn))
    check(summ["total"]["tensors"] == len(recs), "%s: total tensors" % name)
    ranked = sorted([r for r in recs if not r["exact"] and r["rel_rms"] is not None], key=lambda r: -r["rel_rms"])
    worst = summ["worst"]
    check(len(worst) == min(10, len(ranked)), "%s: worst count" % name)
    if ranked and worst:
        check(worst[0]["rel_rms"] == ranked[0]["rel_rms"], "%s: worst first" % name)
        # convert printed the same worst tensor first
        lines = printed.splitlines()
        i = next((n for n, l in enumerate(lines) if l.strip().startswith("worst tensors")), None)
        check(i is not None and worst[0]["name"] in lines[i + 1], "%s: printed worst line" % name)
        check(("%.4f" % worst[0]["rel_rms"]) in lines[i + 1] if i is not None else False, "%s: printed figure" % name)
    for kn in by_kind:
        check(any(l.strip().startswith(kn + " ") for l in printed.splitlines()), "%s: printed kind %s" % (name, kn))


def main():
    mconv, corpus = sys.argv[1], os.environ.get("MCONV_CORPUS") or (sys.argv[2] if len(sys.argv) > 2 else "")
    models = [("qwen3_moe", "models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf"),
              ("llama", "models/llama/gguf/llama-Q4_K_M.gguf"),
              ("mixtral", "models/mixtral/gguf/mixtral-IQ4_XS.gguf")]
    have = [(n, os.path.join(corpus, p)) for n, p in models if corpus and os.path.exists(os.path.join(corpus, p))]
    if not have:
        print("SKIP: qerr_check: no corpus models")
        return 77
    tmp = tempfile.mkdtemp(prefix="mconv-qerr-")
    try:
        for name, src in have:
            out = os.path.join(tmp, name + ".flash")
            rc, so, se = run(mconv, "convert", src, out, "--threads", "2")
            check(rc == 0, "%s: convert: %s" % (name, se))
            if rc:
                continue
            rc, js, se = run(mconv, "inspect", out, "--json")
            check(rc == 0, "%s: inspect --json: %s" % (name, se))
            info = json.loads(js)
            check_report(name, info, so)
            rc, text, se = run(mconv, "inspect", out)
            check(rc == 0 and "quantization error" in text and info["qerr_summary"]["worst"][0]["name"] in text,
                  "%s: inspect prints the summary" % name)
            png1, png2 = os.path.join(tmp, name + "1.png"), os.path.join(tmp, name + "2.png")
            rc1, _, se1 = run(mconv, "inspect", out, "--png", png1)
            rc2, js2, _ = run(mconv, "inspect", out, "--png", png2, "--json")
            check(rc1 == 0 and rc2 == 0, "%s: inspect --png: %s" % (name, se1))
            check(json.loads(js2) == info, "%s: --png --json prints the same JSON" % name)
            d1, d2 = open(png1, "rb").read(), open(png2, "rb").read()
            check(d1 == d2, "%s: the picture is the same bytes twice" % name)
            w, h, rows = png_decode(d1)
            check_picture(name, rows, w, h, info)
            # the mlx folder carries the same records
            d = os.path.join(tmp, name + "-mlx")
            rc, _, se = run(mconv, "convert", src, d, "--layout", "mlx", "-q")
            check(rc == 0, "%s: mlx: %s" % (name, se))
            if rc == 0:
                rep = json.load(open(os.path.join(d, "quant_report.json")))
                check(rep.get("format") == "mconv-quant-report" and rep.get("version") == 1, "%s: report head" % name)
                check(rep.get("qerr") == info["qerr"] and rep.get("qerr_summary") == info["qerr_summary"],
                      "%s: quant_report.json differs from the .flash manifest" % name)
        # --no-qerr, and --png refusing other inputs
        name, src = have[0]
        out = os.path.join(tmp, "noq.flash")
        rc, so, _ = run(mconv, "convert", src, out, "--no-qerr")
        check(rc == 0 and "quantization error" not in so, "--no-qerr: no summary printed")
        rc, js, _ = run(mconv, "inspect", out, "--json")
        info = json.loads(js) if rc == 0 else {}
        check(info.get("qerr", 0) is None and info.get("qerr_summary", 0) is None, "--no-qerr: no members")
        rc, text, _ = run(mconv, "inspect", out)
        check("not recorded" in text, "--no-qerr: inspect says not recorded")
        png = os.path.join(tmp, "no.png")
        rc, _, se = run(mconv, "inspect", src, "--png", png)
        check(rc == 2 and not os.path.exists(png), "--png on a GGUF: usage error, nothing written (%d %s)" % (rc, se))
        d = os.path.join(tmp, "noq-mlx")
        rc, _, _ = run(mconv, "convert", src, d, "--layout", "mlx", "-q", "--no-qerr")
        check(rc == 0 and not os.path.exists(os.path.join(d, "quant_report.json")), "--no-qerr: no quant_report.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("qerr_check: %d checks, %d failed" % (checks, fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
