#!/usr/bin/env bash
# run_peers.sh: mconv's conversions side by side with the I/O floor and the
# tools a user would otherwise run, on the same model-shaped inputs, in one
# run; prints a table of wall times, MB/s, peak RSS and ratios.
#
#   bench/run_peers.sh BUILD_DIR WORKDIR [LAYERS [EXPERTS [THREADS]]]
#
# BUILD_DIR: a Release build (mconv, bench_inputs, bench_llama_quantize).
# WORKDIR: where the inputs and outputs go (a few GB, removed at the end
# unless KEEP=1). Defaults: 4 layers x 64 experts (GGUF Q4_K_M ~0.7 GB,
# bf16 ~2.4 GB), THREADS = all cores. Each row gives wall time and CPU time
# (user + system): on a shared, loaded machine the CPU time is the steadier
# figure; ratios are printed for both.
#
# Linux only: GNU time (/usr/bin/time -v), the linux-x64 libllama from npm,
# Debian's python3-numpy (/usr/bin/python3). Peers are installed at
# benchmark time into $PEER_CACHE (default /tmp/mconv-peers), never into the
# project:
#   - llama.cpp's quantizer: `npm pack @node-llama-cpp/linux-x64`, untarred;
#     bench_llama_quantize dlopen()s bins/linux-x64/libllama.v0.5.0.so and
#     requantizes the Q4_K_M GGUF to Q4_0 (ftype 2, allow_requantize) with
#     THREADS threads (the closest llama.cpp analogue of 4-bit affine groups).
#   - gguf-py + numpy, as the mac-code converter
#     (research/flash-streaming/convert_split.py) does: GGUFReader, every
#     tensor dequantized with numpy and cast to float16 in [rows, cols]
#     order; mac-code then calls mx.quantize, which does not exist on Linux,
#     so this path's time is a lower bound for mac-code's. Set GGUF_PY to a
#     folder holding gguf-py's `gguf` package (llama.cpp's gguf-py/); when
#     unset or absent, that row is skipped.
#
# Caches: every contender reads its input warm (read once just before it
# runs); outputs are written to WORKDIR and synced (mconv fsyncs, llama.cpp
# does not: its time includes a `sync` of its output). Set DROP_CACHES=1 (root)
# to drop the page cache before each contender instead.
set -u
BUILD=${1:?usage: run_peers.sh BUILD_DIR WORKDIR [LAYERS [EXPERTS [THREADS]]]}
WORK=${2:?usage: run_peers.sh BUILD_DIR WORKDIR [LAYERS [EXPERTS [THREADS]]]}
LAYERS=${3:-4}
EXPERTS=${4:-64}
THREADS=${5:-$(getconf _NPROCESSORS_ONLN)}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${MCONV_CORPUS:-$HERE/../shared/corpus}
SMALL=$CORPUS/models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf
PEER_CACHE=${PEER_CACHE:-/tmp/mconv-peers}
MCONV=$BUILD/mconv
PY=${NUMPY_PYTHON:-/usr/bin/python3}
mkdir -p "$WORK" "$PEER_CACHE" || exit 1
[ -x /usr/bin/time ] || { echo "run_peers.sh: needs GNU time at /usr/bin/time (Linux only)"; exit 77; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS"
echo "== nice $(nice) (not reniced)"

# ---- inputs
if [ ! -f "$WORK/q4km.gguf" ] || [ ! -d "$WORK/mlx" ]; then
    "$BUILD/bench_inputs" "$SMALL" "$WORK" "$LAYERS" "$EXPERTS" || exit 1
fi
size_of() { du -cb "$@" | tail -1 | cut -f1; }
in_files() { # the data files of an input
    if [ -d "$1" ]; then ls "$1"/*.safetensors; else echo "$1"; fi
}

# ---- peers
LIBLLAMA=$PEER_CACHE/package/bins/linux-x64/libllama.v0.5.0.so
if [ ! -f "$LIBLLAMA" ]; then
    (cd "$PEER_CACHE" && npm pack --silent @node-llama-cpp/linux-x64 >/dev/null 2>&1 &&
        tar xzf node-llama-cpp-linux-x64-*.tgz) || echo "run_peers.sh: npm pack @node-llama-cpp/linux-x64 failed"
fi
HAVE_NUMPY=0
if [ -n "${GGUF_PY:-}" ] && [ -d "$GGUF_PY/gguf" ] && "$PY" -c 'import numpy' 2>/dev/null; then HAVE_NUMPY=1; fi

ROWS=()
# run NAME INPUT OUTPUT CMD...: time CMD REPS times (default 3; the
# gguf-py row once), keep the fastest wall time (with its CPU time) and the
# largest peak RSS; MB/s is input bytes over that wall time.
run() {
    local name=$1 input=$2 output=$3
    shift 3
    local reps=${REPS:-3} rc=0 wall="" cpu="" rss=0 r
    case "$name" in gguf-py*) reps=1 ;; esac
    local log=$WORK/time.$$.log
    for ((r = 0; r < reps; r++)); do
        rm -rf "$output"
        if [ "${DROP_CACHES:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; else cat $(in_files "$input") > /dev/null; fi
        /usr/bin/time -v "$@" > "$WORK/last.out" 2> "$log"
        rc=$?
        local w c m
        w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
        c=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$log")
        m=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$log")
        if [ -z "$wall" ] || [ "$(echo "$w < $wall" | bc -l)" = 1 ]; then wall=$w; cpu=$c; fi
        [ "$(echo "$m > $rss" | bc -l)" = 1 ] && rss=$m
        [ $rc -eq 0 ] || { tail -5 "$log"; tail -5 "$WORK/last.out"; break; }
    done
    local insz outsz=0
    insz=$(size_of $(in_files "$input"))
    [ -e "$output" ] && outsz=$(size_of "$output")
    printf '%-36s rc=%d wall %7.2f s  cpu %7.2f s  in %6.0f MB  %7.1f MB/s  out %6.0f MB  RSS %7.1f MiB  load %s\n' \
        "$name" "$rc" "$wall" "$cpu" "$(echo "$insz/1000000" | bc -l)" "$(echo "$insz/1000000/$wall" | bc -l)" \
        "$(echo "$outsz/1000000" | bc -l)" "$rss" "$(cut -d' ' -f1 /proc/loadavg)"
    ROWS+=("$name|$wall|$insz|$outsz|$rss|$cpu")
    rm -f "$log"
}
# floor NAME INPUT OUTBYTES: read the input's bytes (cat), write OUTBYTES to a
# file in 4 MiB blocks (GNU dd) and fsync it: the least any converter must do.
floor() {
    local name=$1 input=$2 outbytes=$3 f=$WORK/floor.tmp
    run "$name" "$input" "$f" sh -c "cat $(in_files "$input" | tr '\n' ' ') > /dev/null &&
        dd if=/dev/zero of=$f bs=4M count=$outbytes iflag=count_bytes conv=fsync status=none"
    rm -f "$f"
}
field_of() { for r in "${ROWS[@]}"; do [ "${r%%|*}" = "$2" ] && { echo "$r" | cut -d'|' -f"$1"; return; }; done; echo 0; }
# ratio A B: wall(A)/wall(B) and cpu(A)/cpu(B)
ratio() {
    printf 'wall %5.2f  cpu %5.2f' "$(echo "$(field_of 2 "$1") / $(field_of 2 "$2")" | bc -l)" \
        "$(echo "$(field_of 6 "$1") / $(field_of 6 "$2")" | bc -l)"
}
outsize() { size_of "$1"; }

T="--threads $THREADS --force --quiet"
# ---- mconv
run "mconv q4km.gguf -> 4-bit"        "$WORK/q4km.gguf" "$WORK/q4km.flash" "$MCONV" "$WORK/q4km.gguf" "$WORK/q4km.flash" $T
floor "floor q4km (read in, write out)" "$WORK/q4km.gguf" "$(outsize "$WORK/q4km.flash")"
run "mconv q4km.gguf -> 4-bit, 1 thread" "$WORK/q4km.gguf" "$WORK/q4km-1.flash" "$MCONV" "$WORK/q4km.gguf" "$WORK/q4km-1.flash" --threads 1 --force --quiet
cmp -s "$WORK/q4km.flash" "$WORK/q4km-1.flash" && echo "   (1 and $THREADS threads: identical bytes)" || echo "   !! 1 and $THREADS threads differ"
rm -f "$WORK/q4km-1.flash"
run "mconv bf16/ -> 4-bit"            "$WORK/bf16" "$WORK/bf16.flash" "$MCONV" "$WORK/bf16" "$WORK/bf16.flash" $T
floor "floor bf16 (read in, write out)" "$WORK/bf16" "$(outsize "$WORK/bf16.flash")"
run "mconv mlx/ pass-through"         "$WORK/mlx" "$WORK/mlx.flash" "$MCONV" "$WORK/mlx" "$WORK/mlx.flash" $T
floor "floor mlx (read in, write out)" "$WORK/mlx" "$(outsize "$WORK/mlx.flash")"
run "mconv q4_0.gguf --lossless"      "$WORK/q4_0.gguf" "$WORK/q4_0.flash" "$MCONV" "$WORK/q4_0.gguf" "$WORK/q4_0.flash" --lossless $T
floor "floor q4_0 (read in, write out)" "$WORK/q4_0.gguf" "$(outsize "$WORK/q4_0.flash")"
run "cp q4_0.gguf (+sync)"            "$WORK/q4_0.gguf" "$WORK/copy.tmp" sh -c "cp '$WORK/q4_0.gguf' '$WORK/copy.tmp' && sync '$WORK/copy.tmp'"
rm -f "$WORK/copy.tmp"
rm -f "$WORK/bf16.flash" "$WORK/mlx.flash" "$WORK/q4_0.flash"

# ---- llama.cpp's quantizer
if [ -f "$LIBLLAMA" ]; then
    run "llama.cpp q4km -> Q4_0 (+sync)" "$WORK/q4km.gguf" "$WORK/llama.gguf" sh -c \
        "'$BUILD/bench_llama_quantize' '$LIBLLAMA' '$WORK/q4km.gguf' '$WORK/llama.gguf' 2 $THREADS > '$WORK/llama.log' 2>&1 && sync '$WORK/llama.gguf'"
    rm -f "$WORK/llama.gguf"
else
    echo "llama.cpp: skipped (no libllama)"
fi

# ---- gguf-py + numpy (what mac-code's converter does before mx.quantize)
if [ $HAVE_NUMPY = 1 ]; then
    cat > "$WORK/numpy_driver.py" <<'EOF'
import sys, time, types, importlib.util
sys.path.insert(0, sys.argv[1])
if importlib.util.find_spec("sentencepiece") is None:   # only vocab code needs it
    m = types.ModuleType("sentencepiece"); m.SentencePieceProcessor = object; sys.modules["sentencepiece"] = m
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
r = GGUFReader(sys.argv[2])
n = 0
for t in r.tensors:
    shape = [int(x) for x in t.shape]
    flat = dequantize(t.data, t.tensor_type).reshape(-1)
    w = flat.astype(np.float16).reshape(-1, shape[0]) if len(shape) > 1 else flat
    n += w.size
    del flat, w
print("dequantized", n, "values")
EOF
    run "gguf-py+numpy q4km -> f16" "$WORK/q4km.gguf" "$WORK/none" "$PY" "$WORK/numpy_driver.py" "$GGUF_PY" "$WORK/q4km.gguf"
else
    echo "gguf-py + numpy: skipped (set GGUF_PY to a folder with gguf-py's gguf package; needs python3-numpy)"
fi

echo
echo "== ratios (first / second; mconv against the floor: lower is better; peers against mconv: higher is better)"
echo "mconv q4km / floor:           $(ratio 'mconv q4km.gguf -> 4-bit' 'floor q4km (read in, write out)')"
echo "mconv bf16 / floor:           $(ratio 'mconv bf16/ -> 4-bit' 'floor bf16 (read in, write out)')"
echo "mconv mlx pass-through/floor: $(ratio 'mconv mlx/ pass-through' 'floor mlx (read in, write out)')   (target <= 1.3)"
echo "mconv q4_0 lossless / floor:  $(ratio 'mconv q4_0.gguf --lossless' 'floor q4_0 (read in, write out)')   (target <= 1.3)"
echo "mconv q4_0 lossless / cp:     $(ratio 'mconv q4_0.gguf --lossless' 'cp q4_0.gguf (+sync)')"
echo "1 thread / $THREADS threads (q4km):   $(ratio 'mconv q4km.gguf -> 4-bit, 1 thread' 'mconv q4km.gguf -> 4-bit')"
if [ -f "$LIBLLAMA" ]; then
    echo "llama.cpp Q4_0 / mconv:       $(ratio 'llama.cpp q4km -> Q4_0 (+sync)' 'mconv q4km.gguf -> 4-bit')   (target >= 3)"
fi
[ $HAVE_NUMPY = 1 ] && echo "gguf-py+numpy / mconv:        $(ratio 'gguf-py+numpy q4km -> f16' 'mconv q4km.gguf -> 4-bit')   (target >= 20)"
echo "== end: load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK/q4km.gguf" "$WORK/q4_0.gguf" "$WORK/bf16" "$WORK/mlx" "$WORK/q4km.flash" "$WORK/numpy_driver.py" "$WORK/last.out" "$WORK/llama.log"
