#!/usr/bin/env bash
# Run every test: a warning-free release build (-Werror) and an
# ASan+UBSan build, each under ctest; then, when valgrind is installed, every
# test and every mconv the tests start under valgrind memcheck (build-vg,
# MCONV_TEST_LEVEL=1: fewer sampled offsets, the same kinds of checks); then,
# when clang is installed, each libFuzzer target for a short fixed time
# (MCONV_FUZZ_SECONDS, default 20; a crash fails); then an AArch64 build
# with tests under qemu (skipped, saying why, without its tools). Reads the corpus from
# $MCONV_CORPUS or ../shared/corpus; tests say what they skip without it.
# MCONV_SKIP_VALGRIND=1 / MCONV_SKIP_FUZZ=1 / MCONV_SKIP_AARCH64=1 leave
# those stages out (local use).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== release build (-Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMCONV_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")

# The sanitizer build uses clang when present, so CI checks both compilers
# warning-free (-Werror): gcc above, clang here.
asan_cc=gcc
command -v clang >/dev/null 2>&1 && asan_cc=clang
echo "== ASan+UBSan build ($asan_cc, -Werror)"
cmake -S . -B build-asan -DCMAKE_C_COMPILER="$asan_cc" -DCMAKE_BUILD_TYPE=Debug -DMCONV_SANITIZE=ON -DMCONV_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ctest --output-on-failure -j "$jobs")

if command -v valgrind >/dev/null 2>&1 && [ "${MCONV_SKIP_VALGRIND:-0}" != 1 ]; then
  echo "== valgrind memcheck (tests and the mconv they start)"
  cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCONV_VALGRIND=ON >/dev/null
  cmake --build build-vg -j "$jobs"
  rm -rf build-vg/valgrind && mkdir -p build-vg/valgrind
  (cd build-vg && MCONV_TEST_LEVEL=1 ctest --output-on-failure -j "$jobs")
  # a test can expect a failing exit code; the logs show every report anyway
  reports=$(grep -lE "ERROR SUMMARY: [1-9]|are (definitely|indirectly) lost|^==[0-9]+== (Invalid|Conditional|Use of uninitialised|Syscall param|Mismatched|Source and destination)" \
            build-vg/valgrind/*.log 2>/dev/null || true)
  if [ -n "$reports" ]; then
    for r in $reports; do echo "valgrind report: $r"; head -40 "$r"; done
    exit 1
  fi
  echo "valgrind: $(ls build-vg/valgrind | wc -l) processes, no errors, no definite or indirect leaks"
fi

fuzz_ok=0
if command -v clang >/dev/null 2>&1 && [ "${MCONV_SKIP_FUZZ:-0}" != 1 ]; then
  probe=$(mktemp -d "${TMPDIR:-/tmp}/mconv-fuzz-probe-XXXXXX")
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
  if clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
    fuzz_ok=1
  else
    echo "== libFuzzer targets: SKIPPED (clang cannot link -fsanitize=fuzzer: install libclang-rt-dev)"
  fi
  rm -rf "$probe"
fi
if [ "$fuzz_ok" = 1 ]; then
  echo "== libFuzzer targets, ${MCONV_FUZZ_SECONDS:-20} s each"
  scripts/fuzz.sh "${MCONV_FUZZ_SECONDS:-20}"
fi

# AArch64, where users convert: the library and tests built by clang for
# aarch64-linux-gnu (-Werror) and run under qemu-aarch64 (scripts/setup-aarch64.sh
# installs what it needs; CI runs it). The numeric kernels' tests (GGML
# decoding, MLX quantization, the error measurement, repacking) and the fuzz
# replays by default; MCONV_AARCH64_ALL=1 runs every test, each mconv a test
# starts under qemu too (about 40 minutes on 2 cores: docs/RELIABILITY.md).
aarch64_tests='^(test_float|test_dequant|test_mlx_affine.*|test_mlx_mx|test_qerr|test_repack|test_convert_framework|fuzz_replay_.*)$'
aarch64_level=${MCONV_TEST_LEVEL:-2}
if [ "${MCONV_AARCH64_ALL:-0}" = 1 ]; then aarch64_tests='.'; aarch64_level=1; fi
aarch64_missing=""
for tool in clang qemu-aarch64 aarch64-linux-gnu-ld; do
  command -v "$tool" >/dev/null 2>&1 || aarch64_missing="$aarch64_missing $tool"
done
for pc in zlib libzstd libxxhash libcjson; do
  [ -f "/usr/lib/aarch64-linux-gnu/pkgconfig/$pc.pc" ] || aarch64_missing="$aarch64_missing $pc:arm64"
done
if [ "${MCONV_SKIP_AARCH64:-0}" = 1 ]; then
  echo "== AArch64 under qemu: SKIPPED (MCONV_SKIP_AARCH64=1)"
elif [ -n "$aarch64_missing" ]; then
  echo "== AArch64 under qemu: SKIPPED (missing:$aarch64_missing; scripts/setup-aarch64.sh installs them)"
else
  echo "== AArch64 build (clang --target=aarch64-linux-gnu, -Werror), tests under $(qemu-aarch64 --version | head -1)"
  cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=scripts/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release -DMCONV_WERROR=ON >/dev/null
  cmake --build build-aarch64 -j "$jobs"
  # every test (MCONV_AARCH64_ALL=1): the heaviest sweeps thinned as under valgrind
  (cd build-aarch64 && MCONV_TEST_LEVEL=$aarch64_level ctest --output-on-failure -j "$jobs" -R "$aarch64_tests")
fi
