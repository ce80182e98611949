#!/usr/bin/env bash
# mconv inspect / dump against facts read from the files' bytes by
# tests/tools/cli_facts.py (struct/json only). Usage: bash cli_inspect_dump.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_inspect_dump.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/tools/cli_check.py" "$mconv" "$corpus"
