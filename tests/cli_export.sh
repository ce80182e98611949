#!/usr/bin/env bash
# mconv IN OUTDIR --layout mac-code|mlx from the outside: atomic folder
# output (bad input, truncated input, full disk, SIGINT/SIGTERM mid-export,
# SIGKILL leftovers cleaned by the next run), an existing OUTDIR untouched
# without --force and replaced with it, OUT inside or holding an input
# refused, --dry-run, determinism across thread counts, shard limit, and
# inspect/dump of mac-code folders.
# Usage: bash cli_export.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_export.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
dense=$corpus/models/qwen3/gguf/qwen3-Q4_K_M.gguf # a family the mac-code engines build
moe=$corpus/models/qwen3_moe/hf
if [ ! -f "$dense" ] || [ ! -d "$moe" ]; then
    echo "SKIP: corpus absent ($corpus)"
    exit 77
fi
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-export-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_rc() { # want got what
    if [ "$1" = "$2" ]; then ok; else bad "$3: exit $2, expected $1: $(head -c 600 "$t/o")"; fi
}
expect_grep() { # pattern file what
    if grep -q -- "$1" "$2"; then ok; else bad "$3: no '$1' in: $(head -c 600 "$2")"; fi
}
no_tmp() { # dir what
    if ls -a "$1" | grep -q 'mconv-\(tmp\|old\)'; then bad "$2: temporary left: $(ls -a "$1" | grep mconv-)"; else ok; fi
}
tree_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs cksum); }

for layout in mac-code mlx; do
    # --- basics, determinism across thread counts
    "$mconv" "$moe" "$t/a" --layout $layout --threads 1 > "$t/o" 2>&1; expect_rc 0 $? "$layout: convert"
    expect_grep "wrote $t/a ($layout folder" "$t/o" "$layout: summary"
    "$mconv" "$moe" "$t/b" --layout $layout --threads 2 -q > "$t/o" 2>&1; expect_rc 0 $? "$layout: threads 2"
    "$mconv" "$moe" "$t/c" --layout $layout --threads 5 -q > "$t/o" 2>&1; expect_rc 0 $? "$layout: threads 5"
    [ "$(tree_sum "$t/a")" = "$(tree_sum "$t/b")" ] && ok || bad "$layout: --threads 1 vs 2 differ"
    [ "$(tree_sum "$t/a")" = "$(tree_sum "$t/c")" ] && ok || bad "$layout: --threads 1 vs 5 differ"
    rm -rf "$t/b" "$t/c"

    # --- dry run writes nothing
    "$mconv" "$moe" "$t/dry" --layout $layout --dry-run > "$t/o" 2>&1; expect_rc 0 $? "$layout: --dry-run"
    expect_grep "config.json" "$t/o" "$layout: --dry-run lists files"
    [ -e "$t/dry" ] && bad "$layout: --dry-run wrote a folder" || ok

    # --- existing OUTDIR: untouched without --force, replaced with it
    before=$(tree_sum "$t/a")
    "$mconv" "$dense" "$t/a" --layout $layout > "$t/o" 2>&1; expect_rc 1 $? "$layout: existing OUTDIR"
    expect_grep "already exists" "$t/o" "$layout: existing OUTDIR"
    [ "$(tree_sum "$t/a")" = "$before" ] && ok || bad "$layout: existing OUTDIR changed"
    mkdir -p "$t/old" && echo keep > "$t/old/marker"
    "$mconv" "$dense" "$t/old" --layout $layout > "$t/o" 2>&1; expect_rc 1 $? "$layout: existing folder"
    [ "$(cat "$t/old/marker")" = keep ] && [ "$(ls "$t/old" | wc -l)" -eq 1 ] && ok || bad "$layout: existing folder changed"
    "$mconv" "$dense" "$t/old" --layout $layout --force -q > "$t/o" 2>&1; expect_rc 0 $? "$layout: --force"
    [ -e "$t/old/marker" ] && bad "$layout: --force kept the old contents" || ok
    [ -f "$t/old/config.json" ] && ok || bad "$layout: --force: no config.json"
    no_tmp "$t" "$layout: --force"
    rm -rf "$t/old"

    # --- OUT inside an input folder, or holding the input
    mkdir -p "$t/hf" && cp "$moe"/* "$t/hf/"
    "$mconv" "$t/hf" "$t/hf/out" --layout $layout > "$t/o" 2>&1; expect_rc 1 $? "$layout: OUT inside the input"
    expect_grep "inside the input" "$t/o" "$layout: OUT inside the input"
    [ -e "$t/hf/out" ] && bad "$layout: wrote inside the input" || ok
    mkdir -p "$t/holder" && cp "$dense" "$t/holder/in.gguf"
    "$mconv" "$t/holder/in.gguf" "$t/holder" --layout $layout --force > "$t/o" 2>&1; expect_rc 1 $? "$layout: OUT holds the input"
    cmp -s "$dense" "$t/holder/in.gguf" && ok || bad "$layout: input replaced"

    # --- bad and truncated input: no OUTDIR, no temporary folder
    printf 'this is not a model' > "$t/junk.gguf"
    "$mconv" "$t/junk.gguf" "$t/j" --layout $layout > "$t/o" 2>&1; expect_rc 1 $? "$layout: junk input"
    [ -e "$t/j" ] && bad "$layout: junk input left OUTDIR" || ok
    size=$(wc -c < "$dense")
    head -c $((size - 4096)) "$dense" > "$t/trunc.gguf"
    "$mconv" "$t/trunc.gguf" "$t/j" --layout $layout > "$t/o" 2>&1; expect_rc 1 $? "$layout: truncated input"
    [ -e "$t/j" ] && bad "$layout: truncated input left OUTDIR" || ok
    no_tmp "$t" "$layout: bad inputs"

    # --- full disk: a file-size limit gives a clean error and nothing
    ( ulimit -f 100; exec "$mconv" "$moe" "$t/full" --layout $layout -q ) > "$t/o" 2>&1
    expect_rc 1 $? "$layout: RLIMIT_FSIZE"
    [ -e "$t/full" ] && bad "$layout: RLIMIT_FSIZE left OUTDIR" || ok
    no_tmp "$t" "$layout: RLIMIT_FSIZE"

    # --- signals mid-export: nothing at OUTDIR, an existing OUTDIR intact
    export MCONV_TEST_DELAY_US=150000 # TEST ONLY: 150 ms per row chunk: writing outlasts the wait below
    for sig in INT TERM KILL; do
        for existing in 0 1; do
            out="$t/sig"
            rm -rf "$out"
            [ "$existing" = 1 ] && cp -r "$t/a" "$out"
            prev=$( [ -e "$out" ] && tree_sum "$out" )
            "$mconv" "$moe" "$out" --layout $layout --force --threads 2 -q > "$t/o" 2>&1 &
            pid=$!
            # up to 300 s: under valgrind on a loaded machine opening and planning alone can take 20 s
            for _ in $(seq 6000); do
                ls -a "$t" | grep -q "sig.mconv-tmp" && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
            done
            sleep 0.2
            kill -s "$sig" "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            rc=$?
            if [ "$rc" -lt 128 ]; then
                bad "$layout SIG$sig: export finished before the signal (exit $rc)"
                continue
            fi
            ok
            if [ "$existing" = 1 ]; then
                [ "$(tree_sum "$out")" = "$prev" ] && ok || bad "$layout SIG$sig: existing OUTDIR changed"
            else
                [ -e "$out" ] && bad "$layout SIG$sig: partial OUTDIR left" || ok
            fi
            if [ "$sig" = KILL ]; then
                ls -a "$t" | grep -q "sig.mconv-tmp" && ok || bad "$layout SIGKILL: expected a stale temporary"
            else
                no_tmp "$t" "$layout SIG$sig"
            fi
        done
    done
    unset MCONV_TEST_DELAY_US
    # the next run removes the stale temporary folders of dead processes
    "$mconv" "$dense" "$t/sig" --layout $layout --force -q > "$t/o" 2>&1; expect_rc 0 $? "$layout: run after SIGKILL"
    no_tmp "$t" "$layout: stale cleanup"
    rm -rf "$t/sig" "$t/a" "$t/hf" "$t/holder"
done

# --- a run killed between its two renames (--force) left OUTDIR moved aside:
# the next run puts it back instead of deleting it
sh -c 'exit 0' & deadpid=$!; wait $deadpid
mkdir -p "$t/.moved.mconv-old.$deadpid" && echo keep > "$t/.moved.mconv-old.$deadpid/marker"
"$mconv" "$dense" "$t/moved" --layout mlx -q > "$t/o" 2>&1; expect_rc 1 $? "restored OUTDIR"
[ "$(cat "$t/moved/marker" 2>/dev/null)" = keep ] && ok || bad "moved-aside OUTDIR not restored"
no_tmp "$t" "restored OUTDIR"
rm -rf "$t/moved"

# --- mlx: shard size limit and naming
"$mconv" "$moe" "$t/sh" --layout mlx --shard-size 100000 -q > "$t/o" 2>&1; expect_rc 0 $? "mlx --shard-size"
python3 - "$t/sh" 100000 <<'PY' && ok || bad "mlx shards"
import json, os, re, struct, sys
d, lim = sys.argv[1], int(sys.argv[2])
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
shards = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
n = len(shards)
assert n > 1, shards
seen = {}
for i, s in enumerate(shards):
    assert s == "model-%05d-of-%05d.safetensors" % (i + 1, n), s
    b = open(os.path.join(d, s), "rb").read()
    hl = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + hl])
    assert h.pop("__metadata__") == {"format": "mlx"}
    size = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in h.values())
    assert size <= lim or len(h) == 1, (s, size)
    for k in h:
        assert k not in seen, k
        seen[k] = s
assert seen == idx["weight_map"], "index does not match the shards"
assert list(idx["weight_map"]) == sorted(idx["weight_map"])
PY
"$mconv" "$moe" "$t/one" --layout mlx -q > "$t/o" 2>&1; expect_rc 0 $? "mlx one shard"
[ -f "$t/one/model.safetensors" ] && [ -f "$t/one/model.safetensors.index.json" ] && ok || bad "mlx: single shard naming"
"$mconv" "$moe" "$t/x" --layout mlx --shard-size 0 > "$t/o" 2>&1; expect_rc 2 $? "--shard-size 0"
"$mconv" "$moe" "$t/x" --layout nope > "$t/o" 2>&1; expect_rc 2 $? "--layout nope"

# --- inspect / dump of a mac-code folder
"$mconv" "$moe" "$t/mc" --layout mac-code -q > "$t/o" 2>&1; expect_rc 0 $? "mac-code for inspect"
"$mconv" inspect "$t/mc" > "$t/o" 2>&1; expect_rc 0 $? "inspect mac-code"
expect_grep "mac-code streaming folder" "$t/o" "inspect mac-code"
expect_grep "2 files in bin/ (moe_flash_v1), 8 experts" "$t/o" "inspect mac-code experts"
"$mconv" dump "$t/mc" > "$t/o" 2>&1; expect_rc 0 $? "dump mac-code"
expect_grep "switch_mlp.down_proj.biases" "$t/o" "dump mac-code"
expect_grep "model.embed_tokens.weight" "$t/o" "dump mac-code pinned"
"$mconv" dump "$t/mc" --json > "$t/o" 2>&1; expect_rc 0 $? "dump --json mac-code"
python3 - "$t/o" "$t/mc" <<'PY' && ok || bad "dump --json does not match the folder"
import json, struct, sys
j = json.load(open(sys.argv[1]))
d = sys.argv[2]
b = open(d + "/pinned.safetensors", "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
assert sorted(t["name"] for t in j["pinned"]) == sorted(k for k in h if k != "__metadata__")
for f, hdr in j["experts"].items():
    raw = open(d + "/" + f, "rb").read(16384).rstrip(b"\0")
    assert json.loads(raw) == hdr, f
assert j["config"]["streaming"]["expert_dir"] == "bin"
PY
"$mconv" "$dense" "$t/mcd" --layout mac-code -q > "$t/o" 2>&1; expect_rc 0 $? "mac-code dense"
"$mconv" inspect "$t/mcd" > "$t/o" 2>&1; expect_rc 0 $? "inspect mac-code dense"
expect_grep "files in ffn_aligned/ (flash_aligned_v1)" "$t/o" "inspect mac-code dense"

echo "cli_export: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
