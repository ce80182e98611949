#!/usr/bin/env bash
# The installed package from the outside: `cmake --install` into a temporary
# prefix, then examples/flash_read built against it twice (find_package(mconv)
# with CMake, and a plain compiler with `pkg-config --static`), seeing only
# the installed headers. Both programs read every corpus and corpus-new model's .flash
# (every GGUF and hf/ under models/; converted here, with the mlx folder of
# the same conversion): --fingerprint must match the mlx folder tensor for
# tensor and expert slice for slice (tests/tools/mlx_fingerprint_check.py);
# with --verify every checksum passes; a flipped byte in an expert block
# fails --verify with a checksum message and reads without it.
# Usage: bash cli_install.sh MCONV CORPUS   (env: MCONV_BUILD_DIR)
set -u
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
mconv=${1:?usage: cli_install.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
build=${MCONV_BUILD_DIR:?MCONV_BUILD_DIR not set (run from ctest)}
src=$(cd "$(dirname "$0")/.." && pwd)
for tool in cmake pkg-config python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then echo "SKIP: $tool not installed"; exit 77; fi
done
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-install-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_rc() { if [ "$1" = "$2" ]; then ok; else bad "$3: exit $2, expected $1: $(head -c 800 "$t/o")"; fi; }
expect_grep() { if grep -q -- "$1" "$2"; then ok; else bad "$3: no '$1' in: $(head -c 600 "$2")"; fi; }

# --- install
cmake --install "$build" --prefix "$t/prefix" > "$t/o" 2>&1; expect_rc 0 $? "cmake --install"
p=$t/prefix
libdir=$(ls -d "$p"/lib*/pkgconfig 2>/dev/null | head -1); libdir=${libdir%/pkgconfig}
for f in include/mconv/flash.h include/mconv/error.h bin/mconv; do
    [ -f "$p/$f" ] && ok || bad "installed: $f missing"
done
for f in libmconv.a pkgconfig/mconv.pc cmake/mconv/mconvConfig.cmake cmake/mconv/mconvConfigVersion.cmake \
         cmake/mconv/mconvTargets.cmake; do
    [ -f "$libdir/$f" ] && ok || bad "installed: $libdir/$f missing"
done
# the public headers include nothing of the source tree
if grep -h '#include "' "$p/include/mconv/"*.h | grep -v '"mconv/' >/dev/null; then
    bad "public headers include internal headers: $(grep -h '#include "' "$p/include/mconv/"*.h)"
else ok; fi
[ "$(ls "$p/include/mconv")" = "$(printf 'error.h\nflash.h')" ] && ok || bad "installed headers: $(ls "$p/include/mconv")"

# A cross build (scripts/aarch64-linux-gnu.cmake): the consumers below are
# built with the host's compiler and run as host programs, so they are not
# tried against a library for another processor.
if [ "${MCONV_TEST_CROSS:-0}" = 1 ]; then
    echo "SKIP: cross build: the install tree was checked ($checks checks, $fails failed); the example programs build and run only natively"
    [ "$fails" -eq 0 ] || exit 1
    exit 77
fi

# the compiler and flags the library was built with (an ASan build needs the runtime in the program)
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$cc" ] || cc=cc
san=""
grep -q '^MCONV_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"

# --- consumer 1: CMake find_package
cmake -S "$src/examples" -B "$t/ex" -DCMAKE_PREFIX_PATH="$p" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release > "$t/o" 2>&1; expect_rc 0 $? "examples: cmake configure (find_package)"
cmake --build "$t/ex" > "$t/o" 2>&1; expect_rc 0 $? "examples: cmake build"
# --- consumer 2: pkg-config, warnings as errors, no source-tree include path
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion mconv)" = "$(sed -n 's/^#define MC_FLASH_READER_VERSION_MAJOR //p' "$src/include/mconv/flash.h").$(sed -n 's/^#define MC_FLASH_READER_VERSION_MINOR //p' "$src/include/mconv/flash.h").$(sed -n 's/^#define MC_FLASH_READER_VERSION_PATCH //p' "$src/include/mconv/flash.h")" ] \
    && ok || bad "pkg-config --modversion: $(pkg-config --modversion mconv)"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror $san "$src/examples/flash_read.c" $(pkg-config --cflags mconv) \
    $(pkg-config --static --libs mconv) -o "$t/flash_read_pc" > "$t/o" 2>&1; expect_rc 0 $? "examples: pkg-config build"
progs=()
[ -x "$t/ex/flash_read" ] && progs+=("$t/ex/flash_read")
[ -x "$t/flash_read_pc" ] && progs+=("$t/flash_read_pc")
[ ${#progs[@]} -eq 2 ] && ok || bad "example programs built: ${#progs[@]} of 2"

# --- every corpus model, both programs against --layout mlx
if [ ! -d "$corpus/models" ]; then
    echo "SKIP: corpus absent ($corpus): the example programs were built but not run on models"
    echo "cli_install: $checks checks, $fails failed"
    [ "$fails" -eq 0 ] || exit 1
    exit 0
fi
n=0
pairs=()
# corpus models and, where present, corpus-new's (the 2026 MoE families)
corpus_new=${MCONV_CORPUS_NEW:-${MCONV_CORPUS_NEW_DEFAULT:-}}
for m in "$corpus"/models/*/gguf/*.gguf "$corpus"/models/*/hf "$corpus_new"/models/*/gguf/*.gguf "$corpus_new"/models/*/hf; do
    [ -e "$m" ] || continue
    "$mconv" "$m" "$t/m$n.flash" --force -q > "$t/o" 2>&1; expect_rc 0 $? "convert $m"
    "$mconv" "$m" "$t/m$n.mlx" --layout mlx --force -q > "$t/o" 2>&1; expect_rc 0 $? "convert $m --layout mlx"
    i=0
    for prog in "${progs[@]}"; do
        i=$((i + 1))
        # the pkg-config build on every other model: both builds run, the test stays short
        [ $i -eq 2 ] && [ $((n % 2)) -eq 1 ] && continue
        "$prog" "$t/m$n.flash" --verify --fingerprint > "$t/fp$n.$i" 2> "$t/o"
        expect_rc 0 $? "$(basename "$prog") $m"
        echo "$m" > "$t/fp$n.$i.src"
        pairs+=("$t/fp$n.$i" "$t/m$n.mlx")
    done
    rm -f "$t/m$n.flash"
    n=$((n + 1))
done
# every fingerprint against its mlx folder (one python3 start)
python3 "$src/tests/tools/mlx_fingerprint_check.py" "${pairs[@]}" > "$t/o" 2>&1
expect_rc 0 $? "example programs against --layout mlx"
[ "$(grep -c ' tensors match' "$t/o")" -eq $((${#pairs[@]} / 2)) ] && ok || bad "fingerprints matched: $(grep -c ' tensors match' "$t/o") of $((${#pairs[@]} / 2))"
[ $n -ge 8 ] && ok || bad "only $n corpus models"
echo "example programs checked on $n corpus models"

# --- summary line, --files, and a flipped expert byte
if [ ${#progs[@]} -eq 0 ]; then
    echo "cli_install: $checks checks, $fails failed (no example program built: the rest not run)"
    exit 1
fi
moe=$corpus/models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf
"$mconv" "$moe" "$t/q.flash" --force -q
"${progs[0]}" "$t/q.flash" --files "$t/files" > "$t/o" 2>&1; expect_rc 0 $? "flash_read --files"
expect_grep "2 MoE layers, 2 experts per token" "$t/o" "flash_read summary"
expect_grep "reads: " "$t/o" "flash_read io note"
[ -f "$t/files/config.json" ] && [ -f "$t/files/tokenizer.json" ] && [ -f "$t/files/tokenizer_config.json" ] \
    && ok || bad "--files: $(ls "$t/files" 2>&1)"
# expert 1 of the first MoE layer: offset and stride from the manifest
off=$("$mconv" dump "$t/q.flash" --json | python3 -c '
import json, sys
x = json.load(sys.stdin)["experts"][0]
print(x["offset"] + 1 * x["stride"] + x["stride"] // 2)')
python3 - "$t/q.flash" "$off" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x10]))
PY
"${progs[0]}" "$t/q.flash" --verify > "$t/o" 2>&1; expect_rc 1 $? "flipped expert byte with --verify"
expect_grep "expert 1 of layer 0" "$t/o" "flipped byte message"
expect_grep "checksum mismatch" "$t/o" "flipped byte message"
"${progs[0]}" "$t/q.flash" > "$t/o" 2>&1; expect_rc 0 $? "flipped expert byte without --verify"
"${progs[0]}" "$t/nonexistent.flash" > "$t/o" 2>&1; expect_rc 1 $? "missing file"
expect_grep "cannot open" "$t/o" "missing file message"

echo "cli_install: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
