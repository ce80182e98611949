#!/usr/bin/env bash
# The quantization error report (convert summary, inspect --json, folder
# quant_report.json) and inspect --png, checked by tests/tools/qerr_check.py
# (json, zlib, struct only). Usage: bash cli_qerr.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_qerr.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/tools/qerr_check.py" "$mconv" "$corpus"
