#!/usr/bin/env bash
# mconv bench from the outside: usage errors, bad input, the figures' own
# consistency in --json (reads and bytes per token, no expert block read
# twice without --reuse, within and across arms; warm arms re-read by
# design), early stops with their reason, routing traces (replayed, and
# refused with file:line when wrong), dense models, checksums, the time limit.
# Usage: bash cli_bench.sh MCONV CORPUS
set -u
export PYTHONDONTWRITEBYTECODE=1
mconv=${1:?usage: cli_bench.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
moe_src=$corpus/models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf
dense_src=$corpus/models/llama/gguf/llama-Q4_K_M.gguf
mixed_src=$corpus/models/deepseek_v3/hf
if [ ! -f "$moe_src" ] || [ ! -f "$dense_src" ] || [ ! -d "$mixed_src" ]; then echo "SKIP: corpus absent ($corpus)"; exit 77; fi
if ! command -v python3 >/dev/null 2>&1; then echo "SKIP: python3 not installed (reads the --json output)"; exit 77; fi
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-bench-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_rc() { if [ "$1" = "$2" ]; then ok; else bad "$3: exit $2, expected $1: $(head -c 800 "$t/o")"; fi; }
expect_grep() { if grep -q -- "$1" "$2"; then ok; else bad "$3: no '$1' in: $(head -c 800 "$2")"; fi; }
# jcheck FILE 'python expression over j (the JSON), a (arms)' what
jcheck() {
    if python3 - "$1" "$2" > "$t/jc" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); a = j["arms"]
ok = eval(sys.argv[2])
print(ok)
sys.exit(0 if ok is True else 1)
PY
    then ok; else bad "$3: $2 is not true: $(cat "$t/jc") in $(head -c 1500 "$1")"; fi
}

"$mconv" "$moe_src" "$t/moe.flash" -q || exit 1
"$mconv" "$dense_src" "$t/dense.flash" -q || exit 1
"$mconv" "$mixed_src" "$t/mixed.flash" -q || exit 1

# --- usage and bad input
"$mconv" bench --help > "$t/o" 2>&1; expect_rc 0 $? "--help"
expect_grep "--trace FILE" "$t/o" "--help text"
"$mconv" --help > "$t/o" 2>&1; expect_grep "bench" "$t/o" "mconv --help lists bench"
"$mconv" bench > "$t/o" 2>&1; expect_rc 2 $? "no file"
for bad_args in "--io fast" "--io direct,direct" "--tokens 0" "--threads 0" "--threads 999" "--max-seconds -1" \
                "--seed x" "--bogus" "$t/moe.flash"; do
    # shellcheck disable=SC2086
    "$mconv" bench "$t/moe.flash" $bad_args > "$t/o" 2>&1; expect_rc 2 $? "usage: $bad_args"
    expect_grep "mconv bench --help" "$t/o" "usage hint: $bad_args"
done
"$mconv" bench "$moe_src" > "$t/o" 2>&1; expect_rc 1 $? "a GGUF"
expect_grep "not a .flash file" "$t/o" "a GGUF: message"
"$mconv" bench "$t/none.flash" > "$t/o" 2>&1; expect_rc 1 $? "missing file"
expect_grep "cannot open" "$t/o" "missing file: message"

# --- MoE, one arm: 8 experts, 2 per token -> 4 tokens without reading a block twice
"$mconv" bench "$t/moe.flash" > "$t/o" 2>&1; expect_rc 0 $? "bench moe"
for s in "pinned load" "read latency" "p50" "p99" "tokens/s" "direct arm" "experts for 4 tokens"; do
    expect_grep "$s" "$t/o" "text output: $s"
done
"$mconv" bench "$t/moe.flash" --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "bench --json"
jcheck "$t/j" 'len(a) == 1 and a[0]["arm"] == "direct" and a[0]["tokens_asked"] == 4 and a[0]["tokens"] == 4' "4 tokens"
jcheck "$t/j" 'a[0]["reads"] == 4 * j["token_reads"] and a[0]["bytes"] == 4 * j["token_bytes"]' "reads per token"
jcheck "$t/j" 'a[0]["reread_reads"] == 0 and a[0]["read_ms"]["n"] == a[0]["reads"] == a[0]["expert_read_ms"]["n"]' "no re-reads"
jcheck "$t/j" 'a[0]["pinned_bytes"] == j["pinned_bytes"] > 0 and a[0]["pinned_seconds"] > 0' "pinned"
jcheck "$t/j" '0 < a[0]["read_ms"]["p50"] <= a[0]["read_ms"]["p99"] <= a[0]["read_ms"]["max"]' "percentiles ordered"
jcheck "$t/j" 'abs(a[0]["tokens_per_s"] * a[0]["seconds"] - a[0]["tokens"]) < 1e-6 * a[0]["tokens"] + 1e-9' "tokens/s"
jcheck "$t/j" 'abs(a[0]["mb_per_s"] * a[0]["seconds"] * 1e6 - a[0]["bytes"]) < 1e-6 * a[0]["bytes"]' "MB/s"
jcheck "$t/j" 'a[0]["direct"] or any("refused" in w for w in j["warnings"])' "direct, or says why not"
jcheck "$t/j" 'j["threads"] == j["experts_per_tok"] == 2 and j["seed"] == 1' "defaults"
# three arms share the walk: 4 tokens' worth of experts -> 1 token each, none read twice but by warm
"$mconv" bench "$t/moe.flash" --io direct,buffered,warm --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "three arms"
jcheck "$t/j" '[x["arm"] for x in a] == ["direct", "buffered", "warm"] and all(x["tokens"] == 1 for x in a)' "1 token per arm"
jcheck "$t/j" 'a[0]["reread_reads"] == a[1]["reread_reads"] == 0 and a[2]["reread_reads"] == a[2]["reads"]' "re-reads by arm"
jcheck "$t/j" 'a[1]["cache_dropped"] and "dropped" in a[1]["io"] and "warmed" in a[2]["io"]' "buffered and warm notes"
# --reuse: as many tokens as asked, blocks read again
"$mconv" bench "$t/moe.flash" --reuse --tokens 10 --threads 3 --seed 7 --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "--reuse"
jcheck "$t/j" 'a[0]["tokens"] == 10 and a[0]["reread_reads"] > 0 and j["threads"] == 3 and j["seed"] == 7' "--reuse figures"
jcheck "$t/j" 'a[0]["stopped"] == "" and j["experts"].startswith("uniform random, blocks reused")' "--reuse notes"
# time limit
"$mconv" bench "$t/moe.flash" --reuse --tokens 100000 --max-seconds 0.05 --json > "$t/j" 2> "$t/o"
expect_rc 0 $? "--max-seconds"
jcheck "$t/j" '0 < a[0]["tokens"] < 100000 and "time limit" in a[0]["stopped"]' "--max-seconds stops"
# checksums: sound file passes; a flipped byte in expert 5 of layer 1, replayed by a trace, fails
"$mconv" bench "$t/moe.flash" --verify --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "--verify"
jcheck "$t/j" 'j["verify"] is True and a[0]["tokens"] == 4' "--verify figures"
cp "$t/moe.flash" "$t/flip.flash"
python3 - "$t/flip.flash" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
mo, ml = struct.unpack("<QQ", b[16:32]); m = json.loads(b[mo:mo + ml])
x = [e for e in m["experts"] if e["layer"] == 1][0]
b[x["offset"] + 5 * x["stride"] + 1000] ^= 0x10
open(sys.argv[1], "wb").write(b)
PY
printf '0 1 5 2\n' > "$t/flip.trace"
"$mconv" bench "$t/flip.flash" --trace "$t/flip.trace" --verify > "$t/o" 2>&1; expect_rc 1 $? "flipped byte, --verify"
expect_grep "expert 5 of layer 1" "$t/o" "flipped byte: message"
expect_grep "checksum mismatch" "$t/o" "flipped byte: message"
"$mconv" bench "$t/flip.flash" --trace "$t/flip.trace" > "$t/o" 2>&1; expect_rc 0 $? "flipped byte, no --verify"

# --- traces
cat > "$t/a.trace" <<'EOF2'
# mconv routing trace: TOKEN LAYER EXPERT...
0 0 1 2
0 1 3 4

1 0 1 7
1	1	3	0
4 0 6 6
EOF2
"$mconv" bench "$t/moe.flash" --trace "$t/a.trace" --io direct,warm --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "trace"
jcheck "$t/j" 'j["experts"] == "trace" and all(x["tokens"] == 3 for x in a)' "trace: 3 tokens per arm"
jcheck "$t/j" 'a[0]["reads"] == 10 and a[0]["bytes"] == 10 * j["token_bytes"] // 4' "trace: 10 reads of one block each"
jcheck "$t/j" 'a[0]["reread_reads"] == 3 and a[1]["reread_reads"] == 10' "trace: re-reads (1, 3 and 6 repeat)"
"$mconv" bench "$t/moe.flash" --trace "$t/a.trace" --tokens 2 --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "trace --tokens 2"
jcheck "$t/j" 'a[0]["tokens"] == 2 and a[0]["reads"] == 8' "trace: first 2 tokens"
"$mconv" bench "$t/moe.flash" --trace "$t/a.trace" --tokens 9 --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "trace --tokens 9"
jcheck "$t/j" 'a[0]["tokens"] == 3 and any("the trace has 3 tokens" in w for w in j["warnings"])' "trace shorter than --tokens"
while IFS='|' read -r body msg; do
    printf '%b' "$body" > "$t/bad.trace"
    "$mconv" bench "$t/moe.flash" --trace "$t/bad.trace" > "$t/o" 2>&1; expect_rc 1 $? "bad trace: $msg"
    expect_grep "$msg" "$t/o" "bad trace message"
done <<'EOF2'
0 0 1\n0 5 1\n|bad.trace:2: layer 5 has no experts
0 0 8\n|bad.trace:1: expert id too large of layer 0: the layer has 8 experts
1 0 1\n0 0 1\n|bad.trace:2: token 0 after token 1
0 0\n|bad.trace:1: token 0, layer 0: no expert ids
0 0 x\n|bad.trace:1: expert id not a number
# only a comment\n|bad.trace: no routing lines
abc\n|bad.trace:1: expected TOKEN LAYER EXPERT
EOF2
"$mconv" bench "$t/moe.flash" --trace "$t/none.trace" > "$t/o" 2>&1; expect_rc 1 $? "missing trace"
expect_grep "none.trace: cannot open" "$t/o" "missing trace: message"

# --- a dense model: every FFN span every token (re-read after the first)
"$mconv" bench "$t/dense.flash" --tokens 3 --io direct,buffered --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "dense"
jcheck "$t/j" 'j["moe_layers"] == 0 and j["dense_layers"] > 0 and all(x["tokens"] == 3 for x in a)' "dense: 3 tokens"
jcheck "$t/j" 'all(x["reads"] == 3 * j["dense_layers"] == x["ffn_read_ms"]["n"] and x["expert_read_ms"]["n"] == 0 for x in a)' "dense: spans"
jcheck "$t/j" 'a[0]["reread_reads"] == 2 * j["dense_layers"] and a[1]["reread_reads"] == 3 * j["dense_layers"]' "dense: re-reads"
# dense and MoE layers together (deepseek's first layer is dense)
"$mconv" bench "$t/mixed.flash" --json > "$t/j" 2> "$t/o"; expect_rc 0 $? "dense + MoE"
jcheck "$t/j" 'j["dense_layers"] > 0 and j["moe_layers"] > 0 and a[0]["ffn_read_ms"]["n"] > 0 and a[0]["expert_read_ms"]["n"] > 0' "dense + MoE reads"
jcheck "$t/j" 'a[0]["reads"] == a[0]["tokens"] * j["token_reads"]' "dense + MoE: reads per token"

echo "cli_bench: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
