#!/usr/bin/env bash
# mconv's rebuilt tokenizers loaded by the real libraries: the Rust tokenizers
# core (npm @anush008/tokenizers) and transformers.js, pinned in
# tests/js/package-lock.json and installed with npm ci into the build folder
# (BUILD/js). Checks: tests/tools/tok_libs.py. Usage: cli_tokenizer_libs.sh MCONV CORPUS
# Under valgrind (build-vg) it skips: the mconv it calls is the same code the
# release and ASan builds run it with, and the checks are the libraries'.
set -u
mconv=${1:?usage: cli_tokenizer_libs.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
corpus_new=${MCONV_CORPUS_NEW:-${MCONV_CORPUS_NEW_DEFAULT:-}}
vectors=${MCONV_TOK_VECTORS:-${MCONV_TOK_VECTORS_DEFAULT:-}}
build=${MCONV_BUILD_DIR:-$(dirname "$mconv")}
here=$(cd "$(dirname "$0")" && pwd)
case "$mconv" in
  *mconv-valgrind) echo "SKIP: the library checks run in the release and ASan builds (same mconv code)"; exit 77 ;;
esac
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed (scripts/setup.sh installs Node.js and npm)"; exit 77; }
done
js=$build/js
if [ ! -d "$js/node_modules" ] || ! cmp -s "$here/js/package-lock.json" "$js/package-lock.json"; then
  rm -rf "$js" && mkdir -p "$js" && cp "$here/js/package.json" "$here/js/package-lock.json" "$js/" || exit 1
  # --ignore-scripts: onnxruntime-node's install script downloads GPU add-ons
  # from outside the registry; tokenizers need none of it.
  if ! (cd "$js" && npm ci --ignore-scripts --no-audit --no-fund) >"$build/js-npm-ci.log" 2>&1; then
    echo "SKIP: npm ci could not install the tokenizer libraries (no registry?): $(grep -m1 -i 'err' "$build/js-npm-ci.log")"
    rm -rf "$js"
    exit 77
  fi
fi
cp "$here/js/tok_libs.mjs" "$js/" || exit 1
exec python3 "$here/tools/tok_libs.py" "$mconv" "$js" "$corpus" "$corpus_new" "$vectors"
