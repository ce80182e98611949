#!/usr/bin/env python3
"""Checks `mconv inspect` and `mconv dump` against facts read from the
files' bytes by cli_facts.py / st_facts.py (struct + json, no mconv code),
config.json, and fixtures this script writes itself.

usage: cli_check.py MCONV CORPUS      (CORPUS may be empty or absent: skips)
Exit 0 all passed, 1 a check failed, 77 everything skipped.
"""
import glob
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MCONV = sys.argv[1]
CORPUS = sys.argv[2] if len(sys.argv) > 2 else ""
checks = failures = skips = 0


def check(cond, what):
    global checks, failures
    checks += 1
    if not cond:
        failures += 1
        print("FAIL: " + what, file=sys.stderr)
    return cond


def skip(what):
    global skips
    skips += 1
    print("SKIP: " + what)


def run(*args):
    p = subprocess.run([MCONV] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr


def facts(path):
    tool = "st_facts.py" if os.path.isdir(path) else "cli_facts.py"
    out = subprocess.run([sys.executable, os.path.join(HERE, tool), path], stdout=subprocess.PIPE, check=True).stdout
    return json.loads(out)


def cli_facts_full(path):
    sys.path.insert(0, HERE)
    import cli_facts
    return cli_facts.gguf(path, full=True)


def dump_json(*args):
    rc, out, err = run("dump", "--json", *args)
    if not check(rc == 0, "dump --json %s: exit %d: %s" % (args, rc, err.decode(errors="replace"))):
        return None
    try:
        return json.loads(out.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        check(False, "dump --json %s: not valid JSON: %s" % (args, e))
        return None


def inspect_fields(path):
    rc, out, err = run("inspect", path)
    check(rc == 0, "inspect %s: exit %d: %s" % (path, rc, err.decode(errors="replace")))
    text = out.decode("utf-8", "replace")
    fields = {}
    for line in text.splitlines():
        s = line.strip()
        if ":" in line and not line.startswith(" "):
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
        elif line.startswith("  ") and not s.startswith("-"):
            parts = s.rsplit(None, 1)
            if len(parts) == 2:
                fields.setdefault("hp:" + parts[0], parts[1])
    types = {}
    section = None
    for line in text.splitlines():
        if line.startswith("types:"):
            section = "types"
            continue
        if not line.startswith("  "):
            section = None
        if section == "types":
            p = line.split()
            if p[0] not in ("type",):
                types[p[0]] = (int(p[1]), int(p[2]), int(p[3]), float(p[4]))
    return fields, types, text


# ---- GGUF files ----

def check_gguf(path):
    f = facts(path)
    d = dump_json(path)
    if d is None:
        return
    name = os.path.relpath(path, CORPUS)
    check(d["format"] == "gguf" and d["version"] == f["version"], "%s: format/version" % name)
    check(len(d["tensors"]) == len(f["tensors"]), "%s: tensor count %d vs %d" % (name, len(d["tensors"]), len(f["tensors"])))
    for a, b in zip(d["tensors"], f["tensors"]):
        ok = (a["name"] == b["name"] and a["type"] == b["type"] and a["ne"] == b["ne"] and a["shape"] == b["shape"]
              and a["offset"] == b["offset"] and a["bytes"] == b["nbytes"] and a["elements"] == b["nelements"])
        if not check(ok, "%s: tensor %s: %s vs %s" % (name, b["name"], a, b)):
            break
    kv = {k["key"]: k for k in d["kv"]}
    check(list(kv) == list(f["kv"]), "%s: metadata keys in order" % name)
    for k, fv in f["kv"].items():
        dv = kv.get(k)
        if not check(dv is not None, "%s: key %s missing" % (name, k)):
            continue
        if fv["type"] == "array":
            ok = dv["type"] == "array" and dv["elem_type"] == fv["elem"] and dv["n"] == fv["n"]
            ok = ok and dv.get("truncated", False) == (fv["n"] > 8)
            first = dv["value"][:8]
            want = fv["first"]
            if fv["elem"] in ("f32", "f64"):
                ok = ok and all((math.isnan(w) and x is None) or x == w for x, w in zip(first, want))
            else:
                ok = ok and first == want
            check(ok, "%s: array %s: %s vs %s" % (name, k, str(dv)[:200], str(fv)[:200]))
        else:
            w = fv["value"]
            ok = dv["type"] == fv["type"]
            if fv["type"] == "f32":
                ok = ok and struct.pack("<f", dv["value"]) == struct.pack("<f", w)
            else:
                ok = ok and dv["value"] == w
            check(ok, "%s: key %s: %s vs %s" % (name, k, str(dv)[:200], str(fv)[:200]))
    # the text dump: tensor table rows and shortened arrays
    rc, out, err = run("dump", path)
    text = out.decode("utf-8", "replace")
    rows = {}
    in_table = False
    for line in text.splitlines():
        if line.startswith("tensors:"):
            in_table = True
            continue
        p = line.split()
        if in_table and len(p) >= 7 and p[0].isdigit():
            rows[p[-1]] = (p[1], p[2], p[3], int(p[4]), int(p[5]))
    want_rows = {t["name"]: (t["type"], "[%s]" % ",".join(map(str, t["ne"])), "[%s]" % ",".join(map(str, t["shape"])),
                             t["offset"], t["nbytes"]) for t in f["tensors"]}
    check(rc == 0 and rows == want_rows, "%s: text tensor table: %s" % (name, [(k, rows.get(k), v) for k, v in want_rows.items() if rows.get(k) != v][:2]))
    for k, fv in f["kv"].items():
        if fv["type"] == "array" and fv["n"] > 8:
            check(("... (%d items)]" % fv["n"]) in text, "%s: text dump shortens %s" % (name, k))
    if "external/" in path:
        full = cli_facts_full(path)
        d = dump_json(path, "--full", "--no-tensors")
        if d:
            kv = {k["key"]: k for k in d["kv"]}
            for k, fv in full["kv"].items():
                if fv["type"] == "array" and fv["elem"] == "string":
                    check(kv[k]["value"] == fv["items"] and "truncated" not in kv[k], "%s: --full %s (%d items)" % (name, k, fv["n"]))
    # inspect facts
    fields, types, text = inspect_fields(path)
    nparams = sum(t["nelements"] for t in f["tensors"])
    nbytes = sum(t["nbytes"] for t in f["tensors"])
    check(fields.get("format") == "GGUF v%d" % f["version"], "%s: inspect format %s" % (name, fields.get("format")))
    check(fields.get("tensors") == str(len(f["tensors"])), "%s: inspect tensors" % name)
    check(fields.get("parameters", "").split(" ")[0] == str(nparams), "%s: inspect parameters" % name)
    check(fields.get("tensor bytes", "").split(" ")[0] == str(nbytes), "%s: inspect tensor bytes" % name)
    hist = {}
    for t in f["tensors"]:
        h = hist.setdefault(t["type"], [0, 0, 0])
        h[0] += 1
        h[1] += t["nelements"]
        h[2] += t["nbytes"]
    for ty, (c, p, b) in hist.items():
        got = types.get(ty)
        ok = got is not None and got[:3] == (c, p, b) and abs(got[3] - b * 8.0 / p) < 1e-3
        check(ok, "%s: inspect type row %s: %s vs %s" % (name, ty, got, (c, p, b)))
    arch = f["kv"].get("general.architecture", {}).get("value")
    check(fields.get("architecture") == (arch or "(unknown)"), "%s: inspect architecture" % name)
    rc, out, err = run("inspect", "--json", path)
    try:
        j = json.loads(out.decode("utf-8")) if rc == 0 else {}
    except ValueError:
        j = {}
    jt = {r["type"]: (r["tensors"], r["params"], r["bytes"]) for r in j.get("types", [])}
    check(j.get("format") == "GGUF" and j.get("version") == str(f["version"]) and j.get("architecture") == arch
          and j.get("tensors") == len(f["tensors"]) and j.get("parameters") == nparams and j.get("tensor_bytes") == nbytes
          and jt == {k: tuple(v) for k, v in hist.items()}, "%s: inspect --json facts" % name)
    for key, suffix in (("layers", "block_count"), ("heads", "attention.head_count"), ("kv_heads", "attention.head_count_kv"),
                        ("experts", "expert_count"), ("experts_per_token", "expert_used_count"), ("context", "context_length"),
                        ("hidden", "embedding_length")):
        kv_ = f["kv"].get("%s.%s" % (arch, suffix))
        if kv_ and kv_["type"] != "array":
            check(j.get("hyperparameters", {}).get(key) == kv_["value"], "%s: inspect --json %s" % (name, key))
    for label, suffix in (("layers", "block_count"), ("heads", "attention.head_count"),
                          ("kv heads", "attention.head_count_kv"), ("experts", "expert_count"),
                          ("experts/token", "expert_used_count"), ("context", "context_length"),
                          ("hidden", "embedding_length")):
        kv_ = f["kv"].get("%s.%s" % (arch, suffix))
        if kv_ and kv_["type"] != "array":
            check(fields.get("hp:" + label) == str(kv_["value"]), "%s: inspect %s %s vs %s" % (name, label, fields.get("hp:" + label), kv_["value"]))
        elif not kv_:
            check("hp:" + label not in fields, "%s: inspect shows %s without a key" % (name, label))
    toks = f["kv"].get("tokenizer.ggml.tokens")
    model = f["kv"].get("tokenizer.ggml.model")
    if toks and model:
        check(fields.get("tokenizer") == "%s, %d tokens" % (model["value"], toks["n"]), "%s: inspect tokenizer %s" % (name, fields.get("tokenizer")))
    # the file type named by the file name's quantization suffix (corpus README)
    base = os.path.basename(path)
    suffix = {"Q4_K_M": "MOSTLY_Q4_K_M", "Q6_K": "MOSTLY_Q6_K", "IQ4_XS": "MOSTLY_IQ4_XS", "Q4_0": "MOSTLY_Q4_0",
              "q8_0": "MOSTLY_Q8_0", "bf16": "MOSTLY_BF16", "f16": "MOSTLY_F16", "f32": "ALL_F32"}
    for s, want in suffix.items():
        if "models/" in path and base.endswith("-%s.gguf" % s):
            check(fields.get("file type", "").split(" ")[0] == want, "%s: file type %s, want %s" % (name, fields.get("file type"), want))
    # fall-back warning: 2-D+ weights in a small-block quant type with rows % 256 in a file using 256-blocks
    small = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl"}
    kfile = any(t["type"] in ("q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_xs") for t in f["tensors"])
    fell = [t["name"] for t in f["tensors"] if kfile and t["type"] in small and len(t["ne"]) >= 2 and t["ne"][0] % 256]
    warn = [l for l in text.splitlines() if "fell back" in l]
    check(bool(fell) == bool(warn), "%s: fallback warning %s vs %s" % (name, warn, fell))
    if fell and warn:
        check(warn[0].strip().startswith("- %d tensor" % len(fell)) and all(n in warn[0] for n in fell[:3]),
              "%s: fallback warning lists %s: %s" % (name, fell, warn[0]))


# ---- safetensors files and folders ----

def check_st(path):
    name = os.path.relpath(path, CORPUS)
    d = dump_json(path)
    if d is None:
        return
    if os.path.isdir(path):
        f = facts(path)
        want = {t["name"]: (t["dtype"], t["shape"], t["offset"], t["nbytes"], t["file"]) for t in f["tensors"]}
        files = [os.path.basename(x["path"]) for x in d["files"]]
        got = {t["name"]: (t["type"].upper(), t["shape"], t["offset"], t["bytes"], files[t["file"]]) for t in d["tensors"]}
    else:
        f = facts(path)
        want = {t["name"]: (t["type"], t["shape"], t["offset"], t["nbytes"]) for t in f["tensors"]}
        got = {t["name"]: (t["type"].upper(), t["shape"], t["offset"], t["bytes"]) for t in d["tensors"]}
    check(got == want, "%s: tensor table differs: %s" % (name, [(k, got.get(k), v) for k, v in want.items() if got.get(k) != v][:3]))
    fields, types, _ = inspect_fields(path)
    check(fields.get("tensors") == str(len(want)), "%s: inspect tensors" % name)
    check(fields.get("tensor bytes", "").split(" ")[0] == str(sum(v[3] for v in want.values())), "%s: inspect bytes" % name)
    cfgp = os.path.join(path if os.path.isdir(path) else os.path.dirname(path), "config.json")
    if os.path.exists(cfgp):
        cfg = json.load(open(cfgp))
        for label, keys in (("layers", ["num_hidden_layers"]), ("heads", ["num_attention_heads"]),
                            ("kv heads", ["num_key_value_heads"]),
                            ("experts", ["num_experts", "num_local_experts", "n_routed_experts"]),
                            ("experts/token", ["num_experts_per_tok"]), ("context", ["max_position_embeddings"])):
            v = next((cfg[k] for k in keys if isinstance(cfg.get(k), int)), None)
            if v is not None:
                check(fields.get("hp:" + label) == str(v), "%s: inspect %s %s vs config %s" % (name, label, fields.get("hp:" + label), v))
        check(fields.get("architecture") == cfg.get("model_type"), "%s: architecture" % name)


# ---- bad files ----

def check_bad(path):
    rc, out, err = run("inspect", path)
    lines = err.decode(errors="replace").strip().splitlines()
    check(rc == 1 and len(lines) == 1 and lines[0].startswith("mconv: %s: " % path),
          "inspect %s: exit %d, stderr %r" % (path, rc, lines))
    for args in (["dump"], ["dump", "--json"]):
        rc, out, err = run(*(args + [path]))
        lines = err.decode(errors="replace").strip().splitlines()
        check(rc == 1 and len(lines) == 1 and lines[0].startswith("mconv: %s: " % path),
              "%s %s: exit %d, stderr %r" % (" ".join(args), path, rc, lines))


# ---- values against ggml's own dequantization in quant-vectors.gguf ----

def check_values(path):
    f = facts(path)
    by = {t["name"]: t for t in f["tensors"]}
    blob = open(path, "rb").read()
    tmp = tempfile.mkdtemp(prefix="mconv-cli-")
    n = 0
    for t in f["tensors"]:
        if not t["name"].startswith("q."):
            continue
        ty = t["name"][2:]
        ref = by.get("deq." + ty)
        if ref is None:
            continue
        out = os.path.join(tmp, ty + ".f32")
        rc, so, se = run("dump", path, "--tensor", t["name"], "--f32-out", out)
        if not check(rc == 0, "f32-out %s: %d %s" % (t["name"], rc, se)):
            continue
        data = open(out, "rb").read()
        rows, cols = t["nelements"] // t["ne"][0], t["ne"][0]
        check(len(data) == rows * cols * 4, "f32-out %s: %d bytes, want %d" % (t["name"], len(data), rows * cols * 4))
        want = blob[ref["offset"]:ref["offset"] + ref["nbytes"]]
        check(data == want, "f32-out %s equals ggml's deq.%s bit for bit" % (t["name"], ty))
        # text values (2 rows) parse back to the same floats
        rc, so, se = run("dump", path, "--tensor", t["name"], "--values", "--limit", "2")
        vals = []
        for line in so.decode().splitlines():
            if line.strip().startswith("row "):
                vals += [struct.pack("<f", float(x)) for x in line.split(":", 1)[1].split()]
        check(rc == 0 and b"".join(vals) == want[:2 * cols * 4], "--values %s: 2 rows equal deq.%s" % (t["name"], ty))
        n += 1
        os.unlink(out)
    check(n >= 20, "values checked for %d quantized types" % n)
    # overwriting needs --force
    out = os.path.join(tmp, "x.f32")
    open(out, "wb").write(b"keep")
    rc, _, _ = run("dump", path, "--tensor", "src", "--f32-out", out)
    check(rc == 1 and open(out, "rb").read() == b"keep", "--f32-out refuses an existing file without --force")
    rc, _, _ = run("dump", path, "--tensor", "src", "--f32-out", out, "--force", "--limit", "3")
    check(rc == 0 and len(open(out, "rb").read()) == 3 * by["src"]["ne"][0] * 4, "--force --limit 3 writes 3 rows")
    # JSON values
    d = dump_json(path, "--tensor", "deq.q4_K", "--values", "--limit", "1", "--no-kv")
    if d:
        ref = by["deq.q4_K"]
        want = struct.unpack("<%df" % ref["ne"][0], blob[ref["offset"]:ref["offset"] + ref["ne"][0] * 4])
        got = b"".join(struct.pack("<f", x) for x in d["values"]["data"][0])
        check(d["values"]["cols"] == ref["ne"][0] and got == blob[ref["offset"]:ref["offset"] + ref["ne"][0] * 4],
              "--json --values row 0 bit for bit")
        check([t["name"] for t in d["tensors"]] == ["deq.q4_K"], "--tensor selects one tensor")
    os.rmdir(tmp) if not os.listdir(tmp) else [os.unlink(os.path.join(tmp, x)) for x in os.listdir(tmp)]


# ---- a fixture: 64-bit values and awkward strings ----

def gguf_str(b):
    return struct.pack("<Q", len(b)) + b


def write_fixture(path):
    kvs = [
        (b"test.u64_max", 10, struct.pack("<Q", 2**64 - 1)),
        (b"test.u64_2p53p1", 10, struct.pack("<Q", 2**53 + 1)),
        (b"test.i64_min", 11, struct.pack("<q", -2**63)),
        (b"test.str", 8, gguf_str(b'quote" back\\ nl\n tab\t nul\x00 bad\xff end \xe2\x82\xac')),
        (b"test.arr_u64", 9, struct.pack("<IQ", 10, 3) + struct.pack("<3Q", 2**64 - 2, 0, 2**63)),
        (b"test.arr_i64", 9, struct.pack("<IQ", 11, 2) + struct.pack("<2q", -2**63 + 1, 2**62 + 3)),
        (b"test.f32", 6, struct.pack("<f", 0.1)),
        (b"test.bool", 7, struct.pack("<B", 1)),
    ]
    out = b"GGUF" + struct.pack("<IQQ", 3, 2, len(kvs))
    for k, t, v in kvs:
        out += gguf_str(k) + struct.pack("<I", t) + v
    out += gguf_str(b"w.weight") + struct.pack("<I", 2) + struct.pack("<QQ", 32, 2) + struct.pack("<IQ", 1, 0)
    out += gguf_str(b"v.bias") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<IQ", 0, 128)
    out += b"\0" * ((32 - len(out) % 32) % 32)
    data = b"".join(struct.pack("<e", i / 8.0) for i in range(64)) + struct.pack("<4f", 1.5, -2.0, 0.0, 3.25)
    open(path, "wb").write(out + data)
    return len(out)


def check_fixture():
    tmp = tempfile.mkdtemp(prefix="mconv-cli-")
    path = os.path.join(tmp, "fixture.gguf")
    data_off = write_fixture(path)
    d = dump_json(path)
    if d:
        kv = {k["key"]: k for k in d["kv"]}
        check(kv["test.u64_max"]["value"] == 2**64 - 1, "u64 max exact: %s" % kv["test.u64_max"])
        check(kv["test.u64_2p53p1"]["value"] == 2**53 + 1, "u64 2^53+1 exact")
        check(kv["test.i64_min"]["value"] == -2**63, "i64 min exact")
        check(kv["test.arr_u64"]["value"] == [2**64 - 2, 0, 2**63], "u64 array exact")
        check(kv["test.arr_i64"]["value"] == [-2**63 + 1, 2**62 + 3], "i64 array exact")
        check(struct.pack("<f", kv["test.f32"]["value"]) == struct.pack("<f", 0.1), "f32 value")
        check(kv["test.bool"]["value"] is True, "bool value")
        s = kv["test.str"]["value"]
        check(s == 'quote" back\\ nl\n tab\t nul\x00 bad\xff end \u20ac', "string escaped: %r" % s)
        t = {x["name"]: x for x in d["tensors"]}
        check(t["w.weight"]["ne"] == [32, 2] and t["w.weight"]["shape"] == [2, 32] and t["w.weight"]["offset"] == data_off
              and t["w.weight"]["bytes"] == 128, "fixture tensor w.weight: %s" % t["w.weight"])
        check(t["v.bias"]["offset"] == data_off + 128 and t["v.bias"]["bytes"] == 16, "fixture tensor v.bias")
    rc, out, err = run("dump", path)
    text = out.decode("utf-8", "replace")
    check(rc == 0 and "18446744073709551615" in text and "-9223372036854775808" in text, "text dump prints 64-bit values exactly")
    check('"quote\\" back\\\\ nl\\n tab\\t nul\\x00 bad\\xff end \u20ac"' in text, "text dump escapes strings")
    rc, out, err = run("dump", path, "--tensor", "w.weight", "--values", "--limit", "5")
    rows = [l for l in out.decode().splitlines() if l.strip().startswith("row ")]
    check(rc == 0 and len(rows) == 2 and rows[1].split(":")[1].split()[:2] == ["4", "4.125"], "f16 values: %s" % rows)
    rc, out, err = run("dump", path, "--filter", "v.*", "--no-kv", "--json")
    d = json.loads(out) if rc == 0 else {}
    check([x["name"] for x in d.get("tensors", [])] == ["v.bias"] and "kv" not in d, "--filter and --no-kv")
    rc, out, err = run("dump", path, "--no-tensors", "--json")
    d = json.loads(out) if rc == 0 else {}
    check("tensors" not in d and len(d.get("kv", [])) == 8, "--no-tensors")
    rc, out, err = run("dump", path, "--tensor", "nope", "--values")
    check(rc == 1 and err.decode().startswith("mconv: %s: " % path), "missing tensor: exit 1 with message")
    # usage errors
    for args in (["dump"], ["inspect"], ["dump", path, "--bogus"], ["inspect", path, "--bogus"],
                 ["dump", path, "--values"], ["dump", path, "--tensor"], ["dump", path, "--tensor", "w.weight", "--values", "--limit", "x"],
                 ["dump", path, path], ["inspect", path, path], ["dump", path, "--json=1"], ["inspect", path, "--json=1"]):
        rc, out, err = run(*args)
        check(rc == 2 and len(err.decode().strip().splitlines()) == 1, "usage error %s: exit %d %r" % (args, rc, err))
    for args in (["dump", "--help"], ["inspect", "--help"]):
        rc, out, err = run(*args)
        check(rc == 0 and out.decode().startswith("usage: mconv"), "%s" % args)
    rc, out, err = run("inspect", os.path.join(tmp, "absent.gguf"))
    check(rc == 1 and len(err.decode().strip().splitlines()) == 1, "absent file: exit 1")
    for x in os.listdir(tmp):
        os.unlink(os.path.join(tmp, x))
    os.rmdir(tmp)


def write_st(path, tensors, meta=None):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file."""
    header, off, blob = {}, 0, b""
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + blob)


def check_mlx_fixture():
    """An MLX-quantized folder: quantization, logical parameter count,
    tokenizer files, values of a bf16 tensor."""
    tmp = tempfile.mkdtemp(prefix="mconv-cli-")
    cfg = {"model_type": "llama", "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
           "max_position_embeddings": 128, "hidden_size": 64, "intermediate_size": 16, "vocab_size": 3,
           "quantization": {"group_size": 32, "bits": 4, "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8}}}
    json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"))
    json.dump({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}, "merges": []}},
              open(os.path.join(tmp, "tokenizer.json"), "w"))
    json.dump({"eos_token": "c"}, open(os.path.join(tmp, "tokenizer_config.json"), "w"))
    norm = [i / 4.0 - 3.0 for i in range(64)]
    bf16 = b"".join(struct.pack("<f", v)[2:] for v in norm)  # exact in bf16
    t = [("model.layers.0.mlp.up_proj.weight", "U32", [16, 8], bytes(16 * 8 * 4)),
         ("model.layers.0.mlp.up_proj.scales", "F16", [16, 2], bytes(16 * 2 * 2)),
         ("model.layers.0.mlp.up_proj.biases", "F16", [16, 2], bytes(16 * 2 * 2)),
         ("model.layers.0.mlp.down_proj.weight", "U32", [64, 4], bytes(64 * 4 * 4)),
         ("model.layers.0.mlp.down_proj.scales", "F16", [64, 1], bytes(64 * 2)),
         ("model.layers.0.mlp.down_proj.biases", "F16", [64, 1], bytes(64 * 2)),
         ("model.norm.weight", "BF16", [64], bf16)]
    write_st(os.path.join(tmp, "model.safetensors"), t, {"format": "mlx"})
    fields, types, text = inspect_fields(tmp)
    check(fields.get("quantization") == "MLX bits=4 group_size=32", "mlx fixture: quantization %s" % fields.get("quantization"))
    want = 16 * 64 + 64 * 16 + 16 * 2 * 2 + 64 * 2 + 64
    check(fields.get("parameters", "").split(" ")[0] == str(want), "mlx fixture: logical parameters %s vs %d" % (fields.get("parameters"), want))
    check(fields.get("tokenizer") == "BPE, 3 tokens", "mlx fixture: tokenizer %s" % fields.get("tokenizer"))
    check(fields.get("tokenizer files") == "tokenizer.json tokenizer_config.json", "mlx fixture: tokenizer files %s" % fields.get("tokenizer files"))
    check(fields.get("hp:layers") == "1" and fields.get("hp:kv heads") == "1" and fields.get("hp:context") == "128", "mlx fixture: hyperparameters")
    check(types.get("u32", (0,))[0] == 2 and types.get("bf16", (0,))[0] == 1, "mlx fixture: type rows %s" % types)
    rc, out, err = run("inspect", tmp, "--json")
    j = json.loads(out) if rc == 0 else {}
    check(j.get("quantization") == "MLX bits=4 group_size=32" and j.get("parameters") == want and
          j.get("tokenizer_files") == "tokenizer.json tokenizer_config.json" and j.get("hyperparameters", {}).get("experts") is None,
          "mlx fixture: inspect --json %s" % j)
    rc, out, err = run("dump", tmp, "--tensor", "model.norm.weight", "--values")
    rows = [l for l in out.decode().splitlines() if l.strip().startswith("row ")]
    check(rc == 0 and len(rows) == 1 and [float(x) for x in rows[0].split(":")[1].split()] == norm, "bf16 values: %s" % rows)
    d = dump_json(tmp)
    if d:
        check(d["kv"] == [{"key": "format", "type": "string", "value": "mlx"}], "safetensors __metadata__ in kv")
    for x in os.listdir(tmp):
        os.unlink(os.path.join(tmp, x))
    os.rmdir(tmp)


def main():
    check_fixture()
    check_mlx_fixture()
    if not CORPUS or not os.path.isdir(CORPUS):
        skip("corpus absent (set MCONV_CORPUS): corpus checks")
    else:
        ggufs = sorted(glob.glob(os.path.join(CORPUS, "models/*/gguf/*.gguf")) +
                       glob.glob(os.path.join(CORPUS, "external/gguf/*.gguf")))
        sts = sorted(glob.glob(os.path.join(CORPUS, "models/*/hf/*.safetensors")) +
                     glob.glob(os.path.join(CORPUS, "models/*/hf-sharded/*.safetensors")) +
                     glob.glob(os.path.join(CORPUS, "external/safetensors/*.safetensors")) +
                     [d for d in glob.glob(os.path.join(CORPUS, "models/*/hf*")) if os.path.isdir(d)])
        bad = sorted(glob.glob(os.path.join(CORPUS, "external/bad/*")))
        check(len(ggufs) >= 40 and len(sts) >= 20 and len(bad) >= 4, "corpus files found: %d %d %d" % (len(ggufs), len(sts), len(bad)))
        if os.environ.get("MCONV_TEST_LEVEL") == "1":
            # valgrind pass: each GGUF file type (the name's last "-" part) and
            # each safetensors folder kind (hf, hf-sharded, mlx...) once
            def thin(paths, key):
                seen, out = set(), []
                for q in paths:
                    if key(q) not in seen:
                        seen.add(key(q))
                        out.append(q)
                return out
            ggufs = thin(ggufs, lambda q: os.path.basename(q).rsplit("-", 1)[-1] if "/models/" in q else q)
            sts = thin(sts, lambda q: os.path.basename(os.path.dirname(q)) if q.endswith(".safetensors") and "/models/" in q
                       else (os.path.basename(q) if "/models/" in q else q))
        for p in ggufs:
            check_gguf(p)
        for p in sts:
            check_st(p)
        for p in bad:
            check_bad(p)
        qv = os.path.join(CORPUS, "ggml/quant-vectors.gguf")
        if os.path.exists(qv):
            check_gguf(qv)
            check_values(qv)
        else:
            skip("ggml/quant-vectors.gguf absent")
    print("cli_inspect_dump: %d checks, %d failed, %d skipped" % (checks, failures, skips))
    sys.exit(1 if failures else (77 if checks == 0 else 0))


if __name__ == "__main__":
    main()
