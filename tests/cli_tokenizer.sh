#!/usr/bin/env bash
# GGUF tokenizer keys -> tokenizer.json / tokenizer_config.json, checked
# against the GGUF arrays. Usage: bash cli_tokenizer.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_tokenizer.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/tools/tok_check.py" "$mconv" "$corpus"
