#!/usr/bin/env python3
"""mconv's rebuilt tokenizers in the real libraries (tests/js/tok_libs.mjs:
the Rust tokenizers core through its npm build, and transformers.js).

- vectors: every llama.cpp vector file in TOK_VECTORS, with the tokenizer
  rebuilt from each matching GGUF (CORPUS/external/gguf/vocab-NAME.v*.gguf,
  llama v1 for llama-spm, and ggml-vocab-NAME.gguf in $MCONV_TOK_GGUF_DIR when
  set): every text exact in both libraries; SKIP naming a missing GGUF.
- originals: CORPUS_NEW/tokenizers/*: the rebuilt tokenizer against the
  original tokenizer.json (decompressed with the zstd tool) on
  testdata/tokenizer/texts.json plus every vector text: ids with and without
  special tokens, decoding, added and special tokens, chat template.
- load: every GGUF of the corpora gives a tokenizer.json the Rust core loads.
- table: every tokenizer.ggml.pre name of convert/mc_tok_pre.c on a small
  byte-level fixture: the file loads and encodes in both libraries.
usage: tok_libs.py MCONV JSDIR CORPUS CORPUS_NEW TOK_VECTORS     exit 0 / 1 / 77
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tok_check import write_gguf  # noqa: E402

MCONV, JS, CORPUS, CORPUS_NEW, VECTORS = sys.argv[1:6]
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
passed = failed = ran = 0


def node(*args):
    """Run tok_libs.mjs; add its counts; True when it passed."""
    global passed, failed, ran
    p = subprocess.run(["node", os.path.join(JS, "tok_libs.mjs")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, cwd=JS)
    out = p.stdout.decode("utf-8", "replace")
    m = re.search(r"tok_libs: (\d+) passed, (\d+) failed", out)
    lines = [l for l in out.splitlines() if not l.startswith("tok_libs:")]
    fails = [l for l in lines if l.startswith("FAIL")]
    for l in [l for l in lines if not l.startswith("FAIL")] + fails[:10]:
        print(l[:600])
    if len(fails) > 10:
        print("... %d more failures" % (len(fails) - 10))
    ran += 1
    if m:
        passed += int(m.group(1))
        failed += int(m.group(2))
    if p.returncode != 0 and (not m or m.group(2) == "0"):
        failed += 1
        print("FAIL: node %s: exit %d" % (" ".join(args), p.returncode))
    return p.returncode == 0


def dump(gguf, out):
    os.makedirs(out, exist_ok=True)
    return subprocess.run([MCONV, "dump", gguf, "--tokenizer-out", out, "--force"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


def fail(what):
    global failed
    failed += 1
    print("FAIL: " + what)


def vector_texts():
    texts = []
    for f in sorted(glob.glob(os.path.join(VECTORS, "*.inp"))):
        for t in open(f, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]:
            if t not in texts:
                texts.append(t)
    return texts


def vectors(tmp):
    names = sorted(os.path.basename(f)[len("ggml-vocab-"):-len(".gguf.inp")]
                   for f in glob.glob(os.path.join(VECTORS, "ggml-vocab-*.gguf.inp")))
    if not names:
        print("SKIP: vectors: no vector files in %s (set MCONV_TOK_VECTORS)" % VECTORS)
        return
    extra = os.environ.get("MCONV_TOK_GGUF_DIR", "")
    for name in names:
        ggufs = sorted(glob.glob(os.path.join(CORPUS, "external/gguf/vocab-%s.v*.gguf" % name)))
        if name == "llama-spm":
            ggufs += sorted(glob.glob(os.path.join(CORPUS, "external/gguf/vocab-llama.v*.gguf")))
        if extra and os.path.exists(os.path.join(extra, "ggml-vocab-%s.gguf" % name)):
            ggufs.append(os.path.join(extra, "ggml-vocab-%s.gguf" % name))
        if not ggufs:
            print("SKIP: vectors %s: no GGUF of that vocabulary (vocab-%s.v*.gguf in %s/external/gguf, or "
                  "ggml-vocab-%s.gguf in $MCONV_TOK_GGUF_DIR)" % (name, name, CORPUS, name))
            continue
        inp = os.path.join(VECTORS, "ggml-vocab-%s.gguf.inp" % name)
        for g in ggufs:
            d = os.path.join(tmp, "vec-" + os.path.basename(g))
            p = dump(g, d)
            if p.returncode != 0 or not os.path.exists(os.path.join(d, "tokenizer.json")):
                fail("%s: no tokenizer.json: %s %s" % (g, p.stdout, p.stderr))
                continue
            print("vectors %s with %s" % (name, os.path.basename(g)))
            node("vectors", d, inp, inp[:-4] + ".out")


def originals(tmp):
    folders = sorted(glob.glob(os.path.join(CORPUS_NEW, "tokenizers/*/")))
    if not folders:
        print("SKIP: originals: no %s/tokenizers (set MCONV_CORPUS_NEW)" % CORPUS_NEW)
        return
    if not shutil.which("zstd"):
        print("SKIP: originals: the zstd tool is not installed (it decompresses the original tokenizer files)")
        return
    texts = all_texts()
    tfile = os.path.join(tmp, "texts.json")
    json.dump(texts, open(tfile, "w", encoding="utf-8"))
    for f in folders:
        name = os.path.basename(f.rstrip("/"))
        orig, ours = os.path.join(tmp, "orig-" + name), os.path.join(tmp, "mconv-" + name)
        os.makedirs(orig)
        for x in ("tokenizer.json", "tokenizer_config.json"):
            subprocess.run(["zstd", "-qdf", os.path.join(f, x + ".zst"), "-o", os.path.join(orig, x)], check=True)
        gguf = glob.glob(os.path.join(f, "*.gguf"))[0]
        p = dump(gguf, ours)
        if p.returncode != 0:
            fail("%s: %s" % (gguf, p.stderr))
            continue
        print("original %s (%d texts)" % (name, len(texts)))
        node("compare", orig, ours, tfile)


def load(tmp):
    ggufs = sorted(glob.glob(os.path.join(CORPUS, "models/*/gguf/*.gguf")) +
                   glob.glob(os.path.join(CORPUS, "external/gguf/*.gguf")) +
                   glob.glob(os.path.join(CORPUS_NEW, "models/*/gguf/*.gguf")) +
                   glob.glob(os.path.join(CORPUS_NEW, "tokenizers/*/*.gguf")))
    if not ggufs:
        print("SKIP: load: no corpus GGUFs (set MCONV_CORPUS / MCONV_CORPUS_NEW)")
        return
    dirs, kept = [], 0
    for i, g in enumerate(ggufs):
        d = os.path.join(tmp, "load-%d" % i)
        p = dump(g, d)
        if p.returncode != 0:
            fail("%s: dump --tokenizer-out: %s" % (g, p.stderr))
        elif os.path.exists(os.path.join(d, "tokenizer.json")):
            dirs.append(d)
        else:
            kept += 1
    print("load: %d corpus GGUFs, %d with a tokenizer.json (%d without tokenizer or kept as keys)" % (len(ggufs), len(dirs), kept))
    node("load", *dirs)


def table(tmp):
    src = open(os.path.join(SRC, "convert/mc_tok_pre.c"), encoding="utf-8").read()
    body = src[src.index("g_pre[] = {"):]
    names = [n for m in re.findall(r'\n    \{ ((?:"[^"]*"\s*)+),', body) for n in "".join(re.findall(r'"([^"]*)"', m)).split("|")]
    refused = set("".join(re.findall(r'"([^"]*)"', re.search(r'\n    \{ ((?:"[^"]*"\s*)+), MC_TP_REFUSE', body).group(1))).split("|"))
    byte = [chr(c) for c in range(ord("!"), ord("~") + 1)] + [chr(c) for c in range(0xA1, 0xAD)] + \
           [chr(c) for c in range(0xAE, 0x100)]
    rest = [c for c in range(256) if not (0x21 <= c <= 0x7E or 0xA1 <= c <= 0xAC or 0xAE <= c <= 0xFF)]
    byte += [chr(0x100 + i) for i in range(len(rest))]  # GPT-2's byte alphabet: 256 tokens
    # every pair of neighbouring bytes of the texts is a merge, so a piece
    # boundary drawn differently changes the ids (below: both libraries agree)
    texts = all_texts()
    b2u = dict(zip([c for c in range(0x21, 0x7F)] + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)) + rest,
                   byte))
    pairs = []
    seen = set()
    for t in texts:
        b = t.encode("utf-8")
        for i in range(len(b) - 1):
            p = (b2u[b[i]], b2u[b[i + 1]])
            if p not in seen:
                seen.add(p)
                pairs.append(p)
    tokens = byte + [a + c for a, c in pairs] + ["<|endoftext|>"]
    merges = [a + " " + c for a, c in pairs]
    dirs = []
    for n in names:
        path = os.path.join(tmp, "pre.gguf")
        write_gguf(path, [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", n),
                          ("tokenizer.ggml.tokens", "strs", tokens),
                          ("tokenizer.ggml.token_type", "i32s", [1] * (len(tokens) - 1) + [3]),
                          ("tokenizer.ggml.merges", "strs", merges),
                          ("tokenizer.ggml.bos_token_id", "u32", len(tokens) - 1),
                          ("tokenizer.ggml.eos_token_id", "u32", len(tokens) - 1)])
        d = os.path.join(tmp, "pre-" + n)
        p = dump(path, d)
        has = os.path.exists(os.path.join(d, "tokenizer.json"))
        if p.returncode != 0 or has == (n in refused):
            fail("pre %s: exit %d, tokenizer.json %s: %s %s" % (n, p.returncode, has, p.stdout, p.stderr))
        elif has:
            dirs.append(d)
    print("table: %d tokenizer.ggml.pre names, %d refused by design" % (len(names), len(refused)))
    node("load", *dirs)
    node("jsload", *dirs)
    tfile = os.path.join(tmp, "texts.json")
    json.dump(texts, open(tfile, "w", encoding="utf-8"))
    node("agree", tfile, *dirs)


def all_texts():
    """testdata/tokenizer/texts.json and every vector text."""
    texts = json.load(open(os.path.join(SRC, "testdata/tokenizer/texts.json"), encoding="utf-8"))
    return texts + [t for t in vector_texts() if t not in texts]


def main():
    with tempfile.TemporaryDirectory(prefix="mconv-toklibs-") as tmp:
        for part in (table, vectors, originals, load):
            d = os.path.join(tmp, part.__name__)
            os.mkdir(d)
            part(d)
    print("tok_libs: %d passed, %d failed" % (passed, failed))
    if not ran:
        print("SKIP: nothing to check")
        sys.exit(77)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
