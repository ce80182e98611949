#!/usr/bin/env bash
# mconv IN OUT.flash and mconv verify from the outside: exit codes, messages,
# atomic output (errors, SIGINT/SIGTERM/SIGKILL at random points, a full
# disk via RLIMIT_FSIZE), stale temporaries, determinism across runs and
# thread counts, verify catching corruption.
# Usage: bash cli_flash.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_flash.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
dense=$corpus/models/llama/gguf/llama-Q4_K_M.gguf
moe=$corpus/models/qwen3_moe/hf
if [ ! -f "$dense" ] || [ ! -d "$moe" ]; then
    echo "SKIP: corpus absent ($corpus)"
    exit 77
fi
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-flash-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_rc() { # want got what
    if [ "$1" = "$2" ]; then ok; else bad "$3: exit $2, expected $1"; fi
}
expect_grep() { # pattern file what
    if grep -q -- "$1" "$2"; then ok; else bad "$3: no '$1' in: $(head -c 600 "$2")"; fi
}
no_tmp() { # dir what
    if ls -a "$1" | grep -q 'mconv-tmp'; then bad "$2: temporary left: $(ls -a "$1" | grep mconv-tmp)"; else ok; fi
}
h() { cksum < "$1"; }

# --- basics
"$mconv" --help > "$t/o" 2>&1; expect_rc 0 $? "--help"
"$mconv" convert --help > "$t/o" 2>&1; expect_rc 0 $? "convert --help"
expect_grep "--group-size" "$t/o" "convert --help"
"$mconv" "$dense" "$t/x.flash" --bits 7 > "$t/o" 2>&1; expect_rc 2 $? "--bits 7"
"$mconv" "$dense" > "$t/o" 2>&1; expect_rc 2 $? "missing OUT"

"$mconv" "$dense" "$t/a.flash" > "$t/o" 2>&1; expect_rc 0 $? "convert dense"
expect_grep "per token:" "$t/o" "summary"
expect_grep "peak memory" "$t/o" "summary"
"$mconv" verify "$t/a.flash" > "$t/o" 2>&1; expect_rc 0 $? "verify"
expect_grep "sound" "$t/o" "verify"

# --- determinism: rerun and other thread counts give the same bytes
"$mconv" "$dense" "$t/b.flash" --threads 1 -q; expect_rc 0 $? "threads 1"
cmp -s "$t/a.flash" "$t/b.flash" && ok || bad "dense: --threads 1 differs from default"
"$mconv" "$moe" "$t/m1.flash" --threads 1 -q; expect_rc 0 $? "moe threads 1"
"$mconv" "$moe" "$t/m2.flash" --threads 2 -q; expect_rc 0 $? "moe threads 2"
"$mconv" "$moe" "$t/m3.flash" --threads 5 -q; expect_rc 0 $? "moe threads 5"
cmp -s "$t/m1.flash" "$t/m2.flash" && ok || bad "moe: --threads 1 vs 2 differ"
cmp -s "$t/m1.flash" "$t/m3.flash" && ok || bad "moe: --threads 1 vs 5 differ"
"$mconv" "$moe" "$t/m2.flash" --threads 2 -q --force; expect_rc 0 $? "moe rerun"
cmp -s "$t/m1.flash" "$t/m2.flash" && ok || bad "moe: rerun differs"

# --- dry run writes nothing
"$mconv" "$moe" "$t/dry.flash" --dry-run > "$t/o" 2>&1; expect_rc 0 $? "--dry-run"
expect_grep "experts: 2 MoE layers x 8 experts" "$t/o" "--dry-run plan"
expect_grep "^pinned .* 8-bit g64 .*model.layers.0.mlp.gate.weight" "$t/o" "--dry-run: router at 8 bits"
expect_grep "^expert .* 4-bit g64 .*switch_mlp.down_proj.weight" "$t/o" "--dry-run: experts"
[ -e "$t/dry.flash" ] && bad "--dry-run wrote a file" || ok

# --- existing OUT, OUT equal to an input
before=$(h "$t/a.flash")
"$mconv" "$moe" "$t/a.flash" > "$t/o" 2>&1; expect_rc 1 $? "existing OUT"
expect_grep "already exists" "$t/o" "existing OUT"
[ "$(h "$t/a.flash")" = "$before" ] && ok || bad "existing OUT was changed"
mkdir -p "$t/hf" && cp "$moe"/* "$t/hf/"
st_before=$(h "$t/hf/model.safetensors")
"$mconv" "$t/hf" "$t/hf/model.safetensors" --force > "$t/o" 2>&1; expect_rc 1 $? "OUT inside the input folder"
expect_grep "overwrite the input" "$t/o" "OUT = input"
[ "$(h "$t/hf/model.safetensors")" = "$st_before" ] && ok || bad "input was changed"
ln -s "$t/hf/model.safetensors" "$t/link.flash"
"$mconv" "$t/hf" "$t/link.flash" --force > "$t/o" 2>&1; expect_rc 1 $? "OUT a symlink to an input"
expect_grep "overwrite the input" "$t/o" "OUT a symlink to an input"
[ "$(h "$t/hf/model.safetensors")" = "$st_before" ] && ok || bad "input was changed through a symlink"
cp "$dense" "$t/in.gguf"
"$mconv" "$t/in.gguf" "$t/./in.gguf" --force > "$t/o" 2>&1; expect_rc 1 $? "OUT = IN"

# --- bad input: one line naming the file, exit 1, nothing written
printf 'this is not a model' > "$t/junk.gguf"
"$mconv" "$t/junk.gguf" "$t/j.flash" > "$t/o" 2>&1; expect_rc 1 $? "junk input"
expect_grep "junk.gguf" "$t/o" "junk input message"
[ "$(wc -l < "$t/o")" -eq 1 ] && ok || bad "junk input: more than one line: $(cat "$t/o")"
[ -e "$t/j.flash" ] && bad "junk input left an output" || ok
"$mconv" "$t/nonexistent.gguf" "$t/j.flash" > "$t/o" 2>&1; expect_rc 1 $? "missing input"
no_tmp "$t" "bad inputs"

# --- verify: corruption -> 3 with a message, not .flash -> 1
cp "$t/m1.flash" "$t/c.flash"
python3 - "$t/c.flash" <<'EOF'
import sys, struct, json
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
mo, ml = struct.unpack('<QQ', d[16:32])
m = json.loads(bytes(d[mo:mo + ml]))
x = m['experts'][1]
d[x['offset'] + 5 * x['stride'] + x['tensors'][4]['inner_offset'] + 7] ^= 1
t = [t for t in m['tensors'] if t['name'].endswith('q_proj.weight')][0]
d[t['offset'] + 3] ^= 0x80
open(p, 'wb').write(d)
EOF
"$mconv" verify "$t/c.flash" > "$t/o" 2>&1; expect_rc 3 $? "verify corrupted"
expect_grep "expert 5 of layer 1: checksum mismatch" "$t/o" "expert flip"
expect_grep "q_proj.weight: checksum mismatch" "$t/o" "tensor flip"
head -c 40000 "$t/m1.flash" > "$t/trunc.flash"
"$mconv" verify "$t/trunc.flash" > "$t/o" 2>&1; expect_rc 3 $? "verify truncated"
expect_grep "truncated" "$t/o" "truncated"
"$mconv" verify "$dense" > "$t/o" 2>&1; expect_rc 1 $? "verify a GGUF"
expect_grep "not a .flash file" "$t/o" "verify a GGUF"
"$mconv" verify "$t/m1.flash" --source "$moe" > "$t/o" 2>&1; expect_rc 0 $? "verify --source"
if [ -d "$corpus/models/qwen3_moe/hf-sharded" ]; then
    # the sharded checkpoint holds the same weights: every tensor byte-identical
    "$mconv" verify "$t/m1.flash" --source "$corpus/models/qwen3_moe/hf-sharded" > "$t/o" 2>&1
    expect_rc 0 $? "verify --source hf-sharded"
fi
"$mconv" verify "$t/m1.flash" --source "$dense" > "$t/o" 2>&1; expect_rc 3 $? "verify --source of another model"

# --- inspect / dump understand .flash; per-token cost checked against the manifest
for f in "$t/a.flash" "$t/m1.flash"; do
    "$mconv" inspect "$f" > "$t/o" 2>&1; expect_rc 0 $? "inspect .flash"
    want=$(python3 - "$f" <<'PY'
import sys, struct, json
d = open(sys.argv[1], 'rb').read()
mo, ml = struct.unpack('<QQ', d[16:32])
m = json.loads(d[mo:mo + ml])
k = m['experts_per_tok']
db = sum(s['nbytes'] for s in m['ffn']); dr = len(m['ffn'])
eb = sum(min(k, x['n_experts']) * x['stride'] for x in m['experts']); er = sum(min(k, x['n_experts']) for x in m['experts'])
print(r"^per token: +%d bytes \(.*\) in %d reads$" % (db + eb, dr + er))
print(r"^pinned: +%d bytes" % m['pinned']['nbytes'])
print(r"^  dense: +%d bytes \(.*\) in %d reads$" % (db, dr))
print(r"^  experts: +%d bytes \(.*\) in %d reads$" % (eb, er))
PY
)
    while IFS= read -r pat; do
        grep -qE -- "$pat" "$t/o" && ok || bad "inspect $f: no '$pat' in $(cat "$t/o")"
    done <<< "$want"
    "$mconv" dump "$f" > "$t/o" 2>&1; expect_rc 0 $? "dump .flash"
    expect_grep "model.embed_tokens.weight" "$t/o" "dump .flash"
    "$mconv" dump "$f" --json > "$t/o" 2>&1; expect_rc 0 $? "dump --json .flash"
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert m['format']=='mconv-flash'" "$t/o" && ok || bad "dump --json is not the manifest"
done
grep -q "experts: *[1-9]" <("$mconv" inspect "$t/m1.flash") && ok || bad "inspect MoE: no expert reads"

# --- the tokenizer travels in the manifest
mkdir -p "$t/tok"
"$mconv" dump "$dense" --tokenizer-out "$t/tok" > /dev/null 2>&1; expect_rc 0 $? "dump --tokenizer-out"
printf '{"bos_token": "<s>", "model_max_length": 4096}' > "$t/hf/tokenizer_config.json"
printf '{%% for m in messages %%}{{ m.content }}{%% endfor %%}' > "$t/hf/chat_template.jinja"
printf '\000\001binary' > "$t/hf/tokenizer.model"
"$mconv" "$t/hf" "$t/tokf.flash" -q; expect_rc 0 $? "convert a folder with tokenizer files"
python3 - "$t/a.flash" "$t/tok/tokenizer.json" "$t/tokf.flash" <<'PY' && ok || bad "tokenizer not embedded as expected"
import sys, struct, json
def man(p):
    d = open(p, 'rb').read()
    mo, ml = struct.unpack('<QQ', d[16:32])
    return json.loads(d[mo:mo + ml])
t = man(sys.argv[1])['tokenizer']
assert t['embedded']['tokenizer.json'] == json.load(open(sys.argv[2])), "GGUF tokenizer.json differs from dump --tokenizer-out"
assert 'tokenizer_config.json' in t['embedded']
f = man(sys.argv[3])['tokenizer']
assert f['embedded']['tokenizer_config.json'] == {"bos_token": "<s>", "model_max_length": 4096}, f
assert f['embedded']['chat_template.jinja'].startswith('{% for m in messages %}'), f
assert f['not_embedded'] == ['tokenizer.model'], f
assert 'dir' not in f, "absolute path in the manifest"
PY

# --- full disk: a file-size limit gives a clean error and no file
( ulimit -f 200; exec "$mconv" "$moe" "$t/full.flash" -q ) > "$t/o" 2>&1; expect_rc 1 $? "RLIMIT_FSIZE"
expect_grep "full.flash" "$t/o" "RLIMIT_FSIZE message"
[ -e "$t/full.flash" ] && bad "RLIMIT_FSIZE left OUT" || ok
no_tmp "$t" "RLIMIT_FSIZE"

# --- signals at random points: nothing at OUT, an existing OUT intact
export MCONV_TEST_DELAY_US=250000 # TEST ONLY: 250 ms per row chunk: writing lasts seconds, longer than the random wait below
for sig in INT TERM INT TERM KILL KILL; do
    for existing in 0 1; do
        out="$t/sig.flash"
        rm -f "$out"
        [ "$existing" = 1 ] && cp "$t/a.flash" "$out"
        prev=$( [ -e "$out" ] && h "$out" )
        "$mconv" "$moe" "$out" --force --threads 2 -q > "$t/o" 2>&1 &
        pid=$!
        # wait until the temporary output exists (writing has begun), then a random moment more;
        # up to 300 s: under valgrind on a loaded machine opening and planning alone can take 20 s
        for _ in $(seq 6000); do
            ls -a "$t" | grep -q 'sig.flash.mconv-tmp' && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        sleep "0.$((RANDOM % 8))$((RANDOM % 10))"
        kill -s "$sig" "$pid" 2>/dev/null
        wait "$pid"
        rc=$?
        if [ "$rc" -lt 128 ]; then
            bad "SIG$sig: conversion finished before the signal (exit $rc); raise MCONV_TEST_DELAY_US"
            continue
        fi
        ok
        if [ "$existing" = 1 ]; then
            [ "$(h "$out")" = "$prev" ] && ok || bad "SIG$sig: existing OUT changed"
        else
            [ -e "$out" ] && bad "SIG$sig: partial OUT left" || ok
        fi
        if [ "$sig" = KILL ]; then
            ls -a "$t" | grep -q "sig.flash.mconv-tmp" && ok || bad "SIGKILL: expected a stale temporary"
        else
            no_tmp "$t" "SIG$sig"
        fi
    done
done
unset MCONV_TEST_DELAY_US
# the next run recognises the stale temporaries of dead processes and removes them
"$mconv" "$dense" "$t/sig.flash" --force -q; expect_rc 0 $? "run after SIGKILL"
no_tmp "$t" "stale cleanup"
"$mconv" verify -q "$t/sig.flash"; expect_rc 0 $? "verify after the signal runs"

echo "cli_flash: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
