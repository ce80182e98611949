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
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    merges = []
    for i, merge in enumerate(tokens):
        if vocab[merge] != i:
            continue
        local = []
        for k in range(1, len(merge)):
            l, r = merge[:k], merge[k:]
            if l in vocab and r in vocab:
                local.append((l, r, scores[i]))
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
    first = {}
    for i, t in enumerate(tokens):
        first.setdefault(t, i)
    check(m["type"] == "BPE" and m["vocab"] == first, "%s: vocab (%d entries for %d tokens)" % (name, len(m["vocab"]), len(tokens)))
    got = [as_pair(x) for x in m["merges"]]
    if model == "gpt2":
        want = [tuple(x.split(" ", 1)) if not x.startswith(" ") else (" " + x[1:].split(" ", 1)[0], x[1:].split(" ", 1)[1])
                for x in kv["tokenizer.ggml.merges"]["items"]]
        check(got == want, "%s: merges equal the GGUF's (%d)" % (name, len(want)))
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
    if types:
        want_added = [(i, tokens[i], types[i] == 3 or (model == "llama" and types[i] == 2))
                      for i in range(len(tokens)) if types[i] in (3, 4) or (model == "llama" and types[i] == 2)]
        got_added = [(a["id"], a["content"], a["special"]) for a in tj["added_tokens"]]
        check(got_added == want_added, "%s: added tokens %s vs %s" % (name, got_added[:5], want_added[:5]))


def main():
    if not CORPUS or not os.path.isdir(CORPUS):
        print("SKIP: corpus absent (set MCONV_CORPUS)")
        sys.exit(77)
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
