#!/usr/bin/env python3
"""Checks `mconv dump GGUF --tokenizer-out DIR` against the GGUF's own
tokenizer arrays (read with cli_facts.py's struct parser):
- "gpt2": tokenizer.json BPE vocab == {token: id}, merges == the GGUF merges,
  ByteLevel decoder;
- "llama": BPE with byte_fallback, vocab == {token: id}, merges == an
  independent Python rendering of transformers' generate_merges rule, the
  decoder mlx-lm recognises as SentencePiece;
- others: no tokenizer.json.
tokenizer_config.json: bos/eos/unk/pad strings, add_bos/eos, chat template.
usage: tok_check.py MCONV CORPUS     exit 0 / 1 / 77 (skipped)
"""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_facts  # noqa: E402

MCONV, CORPUS = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
checks = failures = 0

SPM_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}


def check(cond, what):
    global checks, failures
    checks += 1
    if not cond:
        failures += 1
        print("FAIL: " + what, file=sys.stderr)
    return cond


def spm_merges(tokens, scores):
    """transformers.convert_slow_tokenizer.generate_merges with scores."""
    vocab = {t: i for i, t in enumerate(tokens)}
    vocab_scores = dict(zip(tokens, scores))
    merges = []
    for merge, score in vocab_scores.items():
        local = []
        for k in range(1, len(merge)):
            l, r = merge[:k], merge[k:]
            if l in vocab and r in vocab:
                local.append((l, r, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)
    return [(a, b) for a, b, _ in merges]


def as_pair(m):
    return tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))


def one(path, tmp):
    f = cli_facts.gguf(path, full=True)
    kv = f["kv"]
    name = os.path.relpath(path, CORPUS)
    out = os.path.join(tmp, os.path.basename(path))
    os.mkdir(out)
    p = subprocess.run([MCONV, "dump", path, "--tokenizer-out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not check(p.returncode == 0, "%s: exit %d %s" % (name, p.returncode, p.stderr)):
        return
    toks = kv.get("tokenizer.ggml.tokens")
    tj_path, tc_path = os.path.join(out, "tokenizer.json"), os.path.join(out, "tokenizer_config.json")
    if toks is None:
        check(not os.listdir(out), "%s: no tokenizer: nothing written" % name)
        return
    tokens = toks["items"]
    model = kv.get("tokenizer.ggml.model", {}).get("value")
    ins = subprocess.run([MCONV, "inspect", path], stdout=subprocess.PIPE).stdout.decode("utf-8", "replace")
    line = next((l for l in ins.splitlines() if l.startswith("tokenizer.json:")), "")
    word = {"gpt2": "bpe (gpt2", "llama": "sentencepiece"}.get(model, "kept as GGUF keys")
    check(word in line and p.stdout.decode().split(": ", 1)[1].split(":")[0].strip() in line,
          "%s: inspect predicts the kind: %r vs %r" % (name, line, p.stdout))
    types = kv.get("tokenizer.ggml.token_type", {}).get("items")
    scores = kv.get("tokenizer.ggml.scores", {}).get("items")
    tc = json.load(open(tc_path, encoding="utf-8"))
    for key, field in (("bos_token_id", "bos_token"), ("eos_token_id", "eos_token"),
                       ("unknown_token_id", "unk_token"), ("padding_token_id", "pad_token")):
        v = kv.get("tokenizer.ggml." + key)
        check(tc.get(field) == (tokens[v["value"]] if v else None), "%s: config %s" % (name, field))
    tmpl = kv.get("tokenizer.chat_template", {}).get("value")
    check(tc.get("chat_template") == tmpl, "%s: chat_template" % name)
    ab = kv.get("tokenizer.ggml.add_bos_token", {}).get("value", model == "llama")
    check(tc.get("add_bos_token") == ab, "%s: add_bos_token" % name)
    if model not in ("gpt2", "llama") or (model == "gpt2" and "tokenizer.ggml.merges" not in kv):
        check(not os.path.exists(tj_path) and b"kept as GGUF keys" in p.stdout, "%s: kept as GGUF keys" % name)
        return
    tj = json.load(open(tj_path, encoding="utf-8"))
    m = tj["model"]
    first = {t: i for i, t in enumerate(tokens)}  # as transformers' GGUF import and llama.cpp map them
    check(m["type"] == "BPE" and m["vocab"] == first, "%s: vocab (%d entries for %d tokens)" % (name, len(m["vocab"]), len(tokens)))
    got = [as_pair(x) for x in m["merges"]]
    if model == "gpt2":
        split = [tuple(x.split(" ", 1)) if not x.startswith(" ") else (" " + x[1:].split(" ", 1)[0], x[1:].split(" ", 1)[1])
                 for x in kv["tokenizer.ggml.merges"]["items"]]
        want = [(a, b) for a, b in split if a in first and b in first and a + b in first]
        check(got == want, "%s: merges equal the GGUF's usable ones (%d of %d)" % (name, len(want), len(split)))
        dropped = len(split) - len(want)
        check((dropped == 0) == (b"merges name strings that are not tokens" not in p.stdout) and
              (dropped == 0 or ("%d of %d merges" % (dropped, len(split))).encode() in p.stdout),
              "%s: %d dropped merges reported: %r" % (name, dropped, p.stdout))
        check(tj["decoder"]["type"] == "ByteLevel" and m["byte_fallback"] is False, "%s: byte-level decoder" % name)
        check(b"bpe (gpt2" in p.stdout, "%s: kind reported" % name)
    else:
        want = spm_merges(tokens, scores)
        check(got == want, "%s: merges follow generate_merges (%d vs %d)%s" % (
            name, len(got), len(want), next(("; first difference at %d: %s vs %s" % (i, a, b)
                                             for i, (a, b) in enumerate(zip(got, want)) if a != b), "")))
        check(m["byte_fallback"] is True and m["fuse_unk"] is True, "%s: byte fallback" % name)
        addsp = kv.get("tokenizer.ggml.add_space_prefix", {}).get("value", True)
        if addsp:
            check(tj["decoder"] == SPM_DECODER, "%s: decoder is mlx-lm's SentencePiece pattern" % name)
        unk = kv.get("tokenizer.ggml.unknown_token_id")
        check(m["unk_token"] == (tokens[unk["value"]] if unk else None), "%s: unk_token" % name)
    if os.path.exists(os.path.join(out, "generation_config.json")):
        gc = json.load(open(os.path.join(out, "generation_config.json")))
        eog = []
        for k in ("eos_token_id", "eot_token_id", "eom_token_id"):
            v = kv.get("tokenizer.ggml." + k, {}).get("value")
            if v is not None and v not in eog:
                eog.append(v)
        check(gc.get("eos_token_id") == (eog[0] if len(eog) == 1 else eog), "%s: generation_config eos %s" % (name, gc))
    if tmpl:
        check(open(os.path.join(out, "chat_template.jinja"), encoding="utf-8").read() == tmpl, "%s: chat_template.jinja" % name)
    if types:
        want_added = [(i, tokens[i], types[i] == 3 or (model == "llama" and types[i] == 2))
                      for i in range(len(tokens)) if types[i] in (3, 4) or (model == "llama" and types[i] == 2)]
        got_added = [(a["id"], a["content"], a["special"]) for a in tj["added_tokens"]]
        check(got_added == want_added, "%s: added tokens %s vs %s" % (name, got_added[:5], want_added[:5]))


# ---- fixtures written here: edge cases and hostile keys ----

def gstr(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kvs):
    """kvs: [(key, kind, value)] with kind "str", "u32", "bool", "strs", "f32s", "i32s"."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for k, kind, v in kvs:
        out += gstr(k)
        if kind == "str":
            out += struct.pack("<I", 8) + gstr(v)
        elif kind == "u32":
            out += struct.pack("<II", 4, v)
        elif kind == "bool":
            out += struct.pack("<IB", 7, 1 if v else 0)
        elif kind == "strs":
            out += struct.pack("<IIQ", 9, 8, len(v)) + b"".join(gstr(x) for x in v)
        elif kind == "f32s":
            out += struct.pack("<IIQ", 9, 6, len(v)) + b"".join(struct.pack("<f", x) for x in v)
        elif kind == "i32s":
            out += struct.pack("<IIQ", 9, 5, len(v)) + b"".join(struct.pack("<i", x) for x in v)
    open(path, "wb").write(out)


def run_tok(path, out):
    os.makedirs(out, exist_ok=True)
    p = subprocess.run([MCONV, "dump", path, "--tokenizer-out", out, "--force"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check_fixtures(tmp):
    spm_tokens = ["<unk>", "<s>", "</s>", "<0x41>", "\u2581", "a", "b", "ab", "\u2581a", "\u2581ab", "<s>"]
    spm = [("tokenizer.ggml.model", "str", "llama"), ("tokenizer.ggml.tokens", "strs", spm_tokens),
           ("tokenizer.ggml.scores", "f32s", [0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7]),
           ("tokenizer.ggml.token_type", "i32s", [2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 4]),
           ("tokenizer.ggml.bos_token_id", "u32", 1), ("tokenizer.ggml.eos_token_id", "u32", 2)]
    path = os.path.join(tmp, "spm.gguf")
    write_gguf(path, spm + [("tokenizer.ggml.add_space_prefix", "bool", False)])
    rc, out, err = run_tok(path, os.path.join(tmp, "spm"))
    tj = json.load(open(os.path.join(tmp, "spm", "tokenizer.json"), encoding="utf-8")) if rc == 0 else {}
    if check(rc == 0, "spm fixture: %s" % err):
        m = tj["model"]
        check(m["vocab"]["<s>"] == 10 and len(m["vocab"]) == 10 and "duplicate" in out, "duplicate token: last id kept, noted")
        check([as_pair(x) for x in m["merges"]] == spm_merges(spm_tokens, [0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7]),
              "spm fixture merges: %s" % m["merges"])
        check(tj["decoder"] == {"type": "Sequence", "decoders": SPM_DECODER["decoders"][:3]},
              "no space prefix: mlx-lm's no-space SentencePiece decoder")
        check([x["type"] for x in tj["normalizer"]["normalizers"]] == ["Replace"], "no space prefix: no Prepend")
        check(tj["post_processor"]["type"] == "TemplateProcessing" and
              tj["post_processor"]["single"][0] == {"SpecialToken": {"id": "<s>", "type_id": 0}}, "bos template")
    bad_cases = [
        ("bos id out of range", spm[:4] + [("tokenizer.ggml.bos_token_id", "u32", 99)], "bos_token_id"),
        ("scores length", [spm[0], spm[1], ("tokenizer.ggml.scores", "f32s", [0.0])], "scores"),
        ("merge without space", [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.tokens", "strs", ["a", "b"]),
                                 ("tokenizer.ggml.merges", "strs", ["ab"])], "merges"),
    ]
    for what, kvs, word in bad_cases:
        path = os.path.join(tmp, "bad.gguf")
        write_gguf(path, kvs)
        rc, out, err = run_tok(path, os.path.join(tmp, "bad"))
        lines = err.strip().splitlines()
        check(rc == 1 and len(lines) == 1 and lines[0].startswith("mconv: %s: " % path) and word in lines[0],
              "%s: exit %d %r" % (what, rc, lines))
        ins = subprocess.run([MCONV, "inspect", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(ins.returncode == 0 and b"tokenizer.json: unreadable: " in ins.stdout, "%s: inspect still shows the file" % what)
    kept_cases = [
        ("bert", [("tokenizer.ggml.model", "str", "bert"), ("tokenizer.ggml.tokens", "strs", ["[CLS]", "a"]),
                  ("tokenizer.ggml.bos_token_id", "u32", 0)]),
        ("invalid utf-8", [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.tokens", "strs", [b"a", b"\xff"]),
                           ("tokenizer.ggml.merges", "strs", ["a a"])]),
    ]
    for what, kvs in kept_cases:
        path = os.path.join(tmp, "kept.gguf")
        write_gguf(path, kvs)
        d = os.path.join(tmp, "kept-" + what.replace(" ", "_"))
        rc, out, err = run_tok(path, d)
        check(rc == 0 and "kept as GGUF keys" in out and not os.path.exists(os.path.join(d, "tokenizer.json"))
              and os.path.exists(os.path.join(d, "tokenizer_config.json")), "%s: kept as GGUF keys: %d %s %s" % (what, rc, out, err))
    bos = json.load(open(os.path.join(tmp, "kept-bert", "tokenizer_config.json")))
    check(bos.get("bos_token") == "[CLS]" and "tokenizer_class" not in bos, "kept: config still carries bos")
    for pre, want_split in (("qwen2", True), ("llama-bpe", True), ("default", False), ("something-new", False)):
        path = os.path.join(tmp, "bpe.gguf")
        write_gguf(path, [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", pre),
                          ("tokenizer.ggml.tokens", "strs", ["a", "b", "ab", "<|x|>"]),
                          ("tokenizer.ggml.token_type", "i32s", [1, 1, 1, 3]),
                          ("tokenizer.ggml.merges", "strs", ["a b"])])
        d = os.path.join(tmp, "bpe-" + pre)
        rc, out, err = run_tok(path, d)
        tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8")) if rc == 0 else {}
        pt = tj.get("pre_tokenizer") or {}
        has_split = pt.get("type") == "Sequence" and pt["pretokenizers"][0]["type"] == "Split"
        check(rc == 0 and has_split == want_split and (pre != "something-new" or "note" in out),
              "pre %s: split %s, out %r" % (pre, has_split, out))
        check(tj.get("added_tokens", [{}])[0].get("content") == "<|x|>" and tj["added_tokens"][0]["special"] is True,
              "pre %s: control token added as special" % pre)


def check_new_fixtures(tmp):
    """Dropped merges, user-defined tokens, approximate marking, table entries,
    named chat templates, end-of-generation ids, refused models."""
    toks = ["a", "b", "ab", "c", "<|x|>", "<u>", "<|eot|>"]
    base = [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.tokens", "strs", toks),
            ("tokenizer.ggml.token_type", "i32s", [1, 1, 1, 1, 3, 4, 3]),
            ("tokenizer.ggml.merges", "strs", ["a b", "a zz", "b c"]),
            ("tokenizer.ggml.bos_token_id", "u32", 4), ("tokenizer.ggml.eos_token_id", "u32", 4),
            ("tokenizer.ggml.eot_token_id", "u32", 6),
            ("tokenizer.chat_template", "str", "{{ messages }}"),
            ("tokenizer.chat_template.tool_use", "str", "{{ tools }}")]
    cases = [("qwen2", False), ("llama-bpe", False), ("something-new", True), ("viking", True), (None, True)]
    for pre, approx in cases:
        path = os.path.join(tmp, "new.gguf")
        write_gguf(path, base + ([("tokenizer.ggml.pre", "str", pre)] if pre else []))
        d = os.path.join(tmp, "new-%s" % pre)
        rc, out, err = run_tok(path, d)
        if not check(rc == 0, "pre %s: exit %d %s" % (pre, rc, err)):
            continue
        tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
        tc = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
        gc = json.load(open(os.path.join(d, "generation_config.json"), encoding="utf-8"))
        name = "pre %s" % pre
        check([as_pair(x) for x in tj["model"]["merges"]] == [("a", "b")], "%s: unusable merges dropped: %s" % (name, tj["model"]["merges"]))
        check("2 of 3 merges name strings that are not tokens" in out and 'merges[1] "a zz"' in out,
              "%s: dropped merges reported: %r" % (name, out))
        added = {a["content"]: a["special"] for a in tj["added_tokens"]}
        check(added == {"<|x|>": True, "<u>": False, "<|eot|>": True}, "%s: control special, user-defined not: %s" % (name, added))
        check(("mconv_approximate" in tc) == approx and ((" (approximate)" in out) == approx),
              "%s: approximate %s: %r %r" % (name, approx, tc.get("mconv_approximate"), out))
        if approx:
            word = pre if pre else "missing"
            check(word in tc["mconv_approximate"] and out.count("approximate") >= 2, "%s: the note names the value: %r" % (name, out))
        check(tc["chat_template"] == [{"name": "default", "template": "{{ messages }}"},
                                      {"name": "tool_use", "template": "{{ tools }}"}], "%s: named templates %r" % (name, tc.get("chat_template")))
        check(open(os.path.join(d, "chat_template.jinja"), encoding="utf-8").read() == "{{ messages }}", "%s: chat_template.jinja" % name)
        check(gc == {"bos_token_id": 4, "eos_token_id": [4, 6]}, "%s: generation_config %s" % (name, gc))
        if pre == "qwen2":
            check(tj["normalizer"] == {"type": "NFC"} and tj["pre_tokenizer"]["pretokenizers"][0]["type"] == "Split"
                  and tc["clean_up_tokenization_spaces"] is False and tc["add_bos_token"] is False, "qwen2: NFC + Split, no add_bos")
        if pre == "llama-bpe":
            check(tj["model"]["ignore_merges"] is True and tc["add_bos_token"] is True and
                  tj["post_processor"]["type"] == "TemplateProcessing", "llama-bpe: ignore_merges, add_bos default, template")
        ins = subprocess.run([MCONV, "inspect", path], stdout=subprocess.PIPE).stdout.decode("utf-8", "replace")
        check(("approximate" in ins.split("warnings:")[-1]) == approx if "warnings:" in ins else not approx,
              "%s: inspect warns exactly when approximate: %r" % (name, ins[-400:]))
    # a pre-less GGUF of a recognised vocabulary: that vocabulary's entry, not approximate
    falcon = [">>TITLE<<"] + ["t%d" % i for i in range(1, 11)] + ["<|endoftext|>"] + ["x%d" % i for i in range(12, 65024)]
    path = os.path.join(tmp, "falcon.gguf")
    write_gguf(path, [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.tokens", "strs", falcon),
                      ("tokenizer.ggml.merges", "strs", ["t1 t2"])])
    rc, out, err = run_tok(path, os.path.join(tmp, "falcon"))
    tj = json.load(open(os.path.join(tmp, "falcon", "tokenizer.json"), encoding="utf-8")) if rc == 0 else {}
    check(rc == 0 and "Falcon" in out and "approximate" not in out and
          tj["pre_tokenizer"]["pretokenizers"][0] == {"type": "Punctuation", "behavior": "Contiguous"},
          "pre-less falcon vocabulary recognised: %r" % out)
    # refused models and pre names: one note naming them, no tokenizer.json
    for what, kvs, word in (("t5", [("tokenizer.ggml.model", "str", "t5"), ("tokenizer.ggml.tokens", "strs", ["<pad>", "a"])], "Unigram"),
                            ("gemma4 pre", [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", "gemma4"),
                                            ("tokenizer.ggml.tokens", "strs", ["a", "b", "ab"]),
                                            ("tokenizer.ggml.merges", "strs", ["a b"])], "gemma4")):
        path = os.path.join(tmp, "refused.gguf")
        write_gguf(path, kvs)
        d = os.path.join(tmp, "refused-" + what.replace(" ", "_"))
        rc, out, err = run_tok(path, d)
        notes = [l for l in out.splitlines() if l.startswith("note: ")]
        check(rc == 0 and len(notes) == 1 and word in notes[0] and "kept as GGUF keys" in notes[0] and
              not os.path.exists(os.path.join(d, "tokenizer.json")), "%s refused in one note: %r" % (what, out))


def main():
    with tempfile.TemporaryDirectory(prefix="mconv-tokfx-") as tmp:
        check_fixtures(tmp)
        check_new_fixtures(tmp)
    if not CORPUS or not os.path.isdir(CORPUS):
        print("SKIP: corpus absent (set MCONV_CORPUS)")
        print("tok_check: %d checks, %d failed" % (checks, failures))
        sys.exit(1 if failures else 0)
    files = sorted(glob.glob(os.path.join(CORPUS, "models/*/gguf/*-bf16.gguf")) +
                   glob.glob(os.path.join(CORPUS, "models/*/gguf/*-Q4_K_M.gguf")) +
                   glob.glob(os.path.join(CORPUS, "external/gguf/*.gguf")))
    check(len(files) >= 10, "corpus GGUFs found: %d" % len(files))
    with tempfile.TemporaryDirectory(prefix="mconv-tok-") as tmp:
        for p in files:
            one(p, tmp)
        # not a GGUF / not a folder
        st = glob.glob(os.path.join(CORPUS, "models/*/hf/model.safetensors"))
        if st:
            p = subprocess.run([MCONV, "dump", st[0], "--tokenizer-out", tmp], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            check(p.returncode == 1 and len(p.stderr.splitlines()) == 1, "safetensors --tokenizer-out: exit 1")
        p = subprocess.run([MCONV, "dump", files[0], "--tokenizer-out", os.path.join(tmp, "absent")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(p.returncode == 1 and len(p.stderr.splitlines()) == 1, "absent output folder: exit 1")
    print("tok_check: %d checks, %d failed" % (checks, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
