#!/usr/bin/env bash
# The Python reader (python/mconv_flash, numpy only) on every corpus and corpus-new model:
# each model under models/ (every GGUF and hf/) converted to .flash and to
# --layout mlx; tests/tools/py_reader_check.py reads every .flash with direct
# I/O and checksums and compares every tensor (experts slice by slice and
# stacked), config.json and the tokenizer files with the mlx folder; then
# tests/tools/py_reader_unit.py checks the reader's behaviour (checksums
# catching a flipped expert byte, I/O modes and fallbacks, buffers, errors,
# hostile manifests, MLX / transformers where importable).
# Needs a python3 with numpy: $MCONV_PYTHON, else the first of python3,
# /usr/bin/python3, /usr/local/bin/python3 that imports numpy (Debian:
# apt-get install python3-numpy; scripts/setup.sh does). SKIP when none.
# Usage: bash cli_python_reader.sh MCONV CORPUS
set -u
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
mconv=${1:?usage: cli_python_reader.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
src=$(cd "$(dirname "$0")/.." && pwd)
py=""
for c in ${MCONV_PYTHON:-} python3 /usr/bin/python3 /usr/local/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import numpy' >/dev/null 2>&1; then py=$c; break; fi
done
if [ -z "$py" ]; then
    echo "SKIP: no python3 with numpy found (tried \$MCONV_PYTHON, python3, /usr/bin/python3, /usr/local/bin/python3; install python3-numpy)"
    exit 77
fi
if [ ! -d "$corpus/models" ]; then
    echo "SKIP: corpus absent ($corpus)"
    exit 77
fi
echo "python: $py ($("$py" -c 'import sys, numpy; print(sys.version.split()[0], "numpy", numpy.__version__)'))"
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-python-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_rc() { if [ "$1" = "$2" ]; then ok; else bad "$3: exit $2, expected $1: $(tail -c 2000 "$t/o")"; fi; }

n=0
pairs=()
# corpus models and, where present, corpus-new's (the 2026 MoE families)
corpus_new=${MCONV_CORPUS_NEW:-${MCONV_CORPUS_NEW_DEFAULT:-}}
for m in "$corpus"/models/*/gguf/*.gguf "$corpus"/models/*/hf "$corpus_new"/models/*/gguf/*.gguf "$corpus_new"/models/*/hf; do
    [ -e "$m" ] || continue
    "$mconv" "$m" "$t/m$n.flash" --force -q > "$t/o" 2>&1; expect_rc 0 $? "convert $m"
    "$mconv" "$m" "$t/m$n.mlx" --layout mlx --force -q > "$t/o" 2>&1; expect_rc 0 $? "convert $m --layout mlx"
    pairs+=("$t/m$n.flash" "$t/m$n.mlx")
    n=$((n + 1))
done
[ $n -ge 8 ] && ok || bad "only $n corpus models"
"$py" "$src/tests/tools/py_reader_check.py" "${pairs[@]}" > "$t/o" 2>&1; expect_rc 0 $? "py_reader_check"
tail -1 "$t/o"
grep -q "py_reader_check: $n files" "$t/o" && ok || bad "py_reader_check did not read $n files"

moe=$corpus/models/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf
"$mconv" "$moe" "$t/u.flash" --force -q > "$t/o" 2>&1; expect_rc 0 $? "convert $moe"
"$py" "$src/tests/tools/py_reader_unit.py" "$t/u.flash" "$t/unit" > "$t/o" 2>&1; expect_rc 0 $? "py_reader_unit"
grep '^SKIP:' "$t/o"
tail -1 "$t/o"

# the package installs with pip (any python3 with pip, setuptools and wheel: no network here)
pip_py=""
for c in ${MCONV_PYTHON:-} python3 /usr/bin/python3 /usr/local/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -m pip --version >/dev/null 2>&1 && "$c" -c 'import setuptools, wheel' >/dev/null 2>&1; then
        pip_py=$c; break
    fi
done
if [ -n "$pip_py" ]; then
    cp -r "$src/python" "$t/pkg"
    "$pip_py" -m pip install --quiet --no-build-isolation --no-deps --no-index --target "$t/site" "$t/pkg" > "$t/o" 2>&1
    expect_rc 0 $? "pip install ./python ($pip_py)"
    for f in __init__.py reader.py _xxh3.py mlx.py; do
        [ -f "$t/site/mconv_flash/$f" ] && ok || bad "pip install: mconv_flash/$f missing"
    done
    PYTHONPATH="$t/site" "$py" -c 'import mconv_flash, sys; sys.exit(mconv_flash.__version__ != "1.0.0")' > "$t/o" 2>&1 \
        && ok || echo "SKIP: the pip-installed package was not imported ($py cannot read $pip_py's install)"
else
    echo "SKIP: no python3 with pip, setuptools and wheel: pip install ./python not tried"
fi

echo "cli_python_reader: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
