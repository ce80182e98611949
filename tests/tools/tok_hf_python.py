#!/usr/bin/env python3
"""mconv's rebuilt tokenizers in Hugging Face's Python libraries (the
`tokenizers` Rust core's Python build and transformers' AutoTokenizer).

CI checks the same files with the Rust core's npm build and transformers.js
(tests/cli_tokenizer_libs.sh); this script is for a machine that has the
Python packages (none are installed by the project's setup): it prints SKIP
and exits 77 without them.

usage: tok_hf_python.py DIR
  DIR/<name>-mconv/ + DIR/<name>-orig/  a rebuilt tokenizer folder (`mconv dump
      X.gguf --tokenizer-out`) and the original tokenizer.json +
      tokenizer_config.json: ids with and without special tokens, decoding
      (with and without skip_special_tokens), added tokens and the chat
      template rendered by transformers, on DIR/texts.json plus every vector text
  DIR/vec-<name>/ + DIR/vectors/ggml-vocab-<name>.gguf.{inp,out}  a rebuilt
      tokenizer against llama.cpp's vectors (ids made by the original HF
      tokenizer, add_special_tokens=False)
exit 0 all equal, 1 a difference, 77 libraries absent
"""
import glob
import json
import os
import sys

try:
    import tokenizers
    import transformers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
except ImportError as e:  # pragma: no cover
    print("SKIP: Python tokenizers/transformers not importable (%s)" % e)
    sys.exit(77)

D = sys.argv[1]
failed = passed = 0


def check(ok, what):
    global failed, passed
    if ok:
        passed += 1
    else:
        failed += 1
        if failed <= 40:
            print("FAIL:", what)


def vector_texts():
    out = []
    for inp in sorted(glob.glob(os.path.join(D, "vectors", "*.inp"))):
        out += open(inp, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]
    return out


texts = json.load(open(os.path.join(D, "texts.json"), encoding="utf-8")) + vector_texts()
print("tokenizers %s, transformers %s, %d texts" % (tokenizers.__version__, transformers.__version__, len(texts)))

for mdir in sorted(glob.glob(os.path.join(D, "*-mconv"))):
    name = os.path.basename(mdir)[:-6]
    odir = os.path.join(D, name + "-orig")
    rust_m = tokenizers.Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    rust_o = tokenizers.Tokenizer.from_file(os.path.join(odir, "tokenizer.json"))
    hf_m = AutoTokenizer.from_pretrained(mdir)
    hf_o = AutoTokenizer.from_pretrained(odir)
    n0 = passed + failed
    for t in texts:
        for special in (False, True):
            a = rust_m.encode(t, add_special_tokens=special).ids
            b = rust_o.encode(t, add_special_tokens=special).ids
            check(a == b, "%s rust ids special=%s %r: %s vs %s" % (name, special, t[:40], a[:12], b[:12]))
            a = hf_m.encode(t, add_special_tokens=special)
            b = hf_o.encode(t, add_special_tokens=special)
            check(a == b, "%s transformers ids special=%s %r" % (name, special, t[:40]))
        ids = rust_o.encode(t, add_special_tokens=True).ids
        for skip in (False, True):
            check(hf_m.decode(ids, skip_special_tokens=skip) == hf_o.decode(ids, skip_special_tokens=skip),
                  "%s decode skip=%s %r" % (name, skip, t[:40]))
    am = {k: (v.content, v.special) for k, v in hf_m.added_tokens_decoder.items()}
    ao = {k: (v.content, v.special) for k, v in hf_o.added_tokens_decoder.items()}
    diff = sorted(k for k in set(am) | set(ao) if am.get(k) != ao.get(k))
    check(set(am) == set(ao), "%s added token ids differ: %s" % (name, diff[:10]))
    for k in diff:
        print("  note: %s added token %d: mconv %s, original %s" % (name, k, am.get(k), ao.get(k)))
    check(hf_m.bos_token == hf_o.bos_token and hf_m.eos_token == hf_o.eos_token,
          "%s bos/eos %s/%s vs %s/%s" % (name, hf_m.bos_token, hf_m.eos_token, hf_o.bos_token, hf_o.eos_token))
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi 123 ½ café"},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Again?"}]
    if hf_o.chat_template:
        a = hf_m.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        b = hf_o.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        check(a == b, "%s chat template render differs" % name)
        a = hf_m.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        b = hf_o.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        check(a == b, "%s chat template ids differ" % name)
    print("%s: %d checks" % (name, passed + failed - n0))

for vdir in sorted(glob.glob(os.path.join(D, "vec-*"))):
    name = os.path.basename(vdir)[4:]
    vec = name.split(".")[0]
    inp = os.path.join(D, "vectors", "ggml-vocab-%s.gguf.inp" % vec)
    if vec == "llama":
        inp = os.path.join(D, "vectors", "ggml-vocab-llama-spm.gguf.inp")
    if not os.path.exists(inp):
        print("SKIP: no vectors for", name)
        continue
    ins = open(inp, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]
    outs = open(inp[:-4] + ".out", encoding="utf-8").read().split("\n")
    rust = tokenizers.Tokenizer.from_file(os.path.join(vdir, "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(vdir)
    n0 = passed + failed
    for t, o in zip(ins, outs):
        want = [int(x) for x in o.split()]
        check(rust.encode(t, add_special_tokens=False).ids == want, "%s rust %r" % (name, t[:40]))
        check(hf.encode(t, add_special_tokens=False) == want, "%s transformers %r" % (name, t[:40]))
    print("vectors %s: %d texts, %d checks" % (name, len(ins), passed + failed - n0))

print("tok_hf_python: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
