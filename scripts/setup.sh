#!/usr/bin/env bash
# Install build dependencies (Debian/Ubuntu with apt, macOS with Homebrew)
# and build mconv into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1; then
  # python3-numpy: the Python reader's tests (tests/cli_python_reader.sh)
  pkgs="cmake make gcc clang pkg-config python3 python3-numpy zlib1g-dev libzstd-dev libxxhash-dev libcjson-dev valgrind zstd"
  # Node.js and npm: tests/cli_tokenizer_libs.sh loads the rebuilt tokenizers
  # with the real libraries (npm ci into the build folder)
  command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  fi
  # libFuzzer and the sanitizer runtimes for clang (scripts/fuzz.sh)
  cv=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
  if [ -n "$cv" ] && ! dpkg -s "libclang-rt-$cv-dev" >/dev/null 2>&1 &&
     apt-cache show "libclang-rt-$cv-dev" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "libclang-rt-$cv-dev"
  fi
elif command -v brew >/dev/null 2>&1; then
  brew install cmake pkg-config zstd xxhash cjson numpy
  command -v node >/dev/null 2>&1 || brew install node
fi
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
echo "built: build/mconv"
