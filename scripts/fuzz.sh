#!/usr/bin/env bash
# Build the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined)
# and run each fuzz/fuzz_*.c for SECONDS, seeded from the corpus
# (scripts/fuzz_seeds.sh) plus testdata/fuzz/<target>/. Fails when a target
# crashes, leaks, times out or runs out of memory; the input that did it is
# left in $BUILD/artifacts/<target>/ (keep it as testdata/fuzz/<target>/crash-*
# once fixed: the fuzz_replay_* ctest tests replay that folder).
# The growing corpus of each target stays in $BUILD/corpus/<target>/ between
# runs.
# Usage: scripts/fuzz.sh SECONDS [TARGET...]
#   env: MCONV_CORPUS (default ../shared/corpus), FUZZ_BUILD (default
#        build-fuzz), FUZZ_JOBS (targets run at once, default 1)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
build=${FUZZ_BUILD:-build-fuzz}
corpus=${MCONV_CORPUS:-../shared/corpus}
cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz.sh: $cc not found (libFuzzer needs clang)" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug \
  -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON >/dev/null || exit 1
cmake --build "$build" -j "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" \
  --target mconv "${targets[@]}" >/dev/null || exit 1
bash scripts/fuzz_seeds.sh "$corpus" "$build/seeds" "$build/mconv" >/dev/null || exit 1

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_one() { # target
  local t=$1
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
  local maxlen=()
  # whole .flash seeds (the manifest is at the end) need room to stay whole
  case $t in fuzz_flash|fuzz_flash_reader) maxlen=(-max_len=2097152) ;; esac
  "$build/$t" "${maxlen[@]}" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
    "$build/corpus/$t" "$build/seeds/$t" > "$build/$t.log" 2>&1
  local rc=$?
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$build/$t.log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    echo "$t: ok, ${execs:-?} executions, ${cov:-?}, corpus $(ls "$build/corpus/$t" | wc -l) inputs"
  else
    echo "$t: FAILED (exit $rc), artifacts: $(ls "$build/artifacts/$t" | tr '\n' ' ')"
    grep -m3 -E 'ERROR|SUMMARY|runtime error|deadly signal|No such file|exiting' "$build/$t.log" | sed 's/^/    /'
  fi
  return $rc
}
fails=0
jobs=${FUZZ_JOBS:-1}
if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do run_one "$t" || fails=$((fails + 1)); done
else
  pids=()
  for t in "${targets[@]}"; do run_one "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
fi
[ "$fails" -eq 0 ]
