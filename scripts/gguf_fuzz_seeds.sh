#!/usr/bin/env bash
# Seeds for fuzz/fuzz_gguf: the header of every corpus GGUF (cut at the end
# of its tensor table, capped at 64 KiB) plus one odd byte, which tells the
# target to pad the file with zeros so the tensor table parses to the end.
# Usage: scripts/gguf_fuzz_seeds.sh CORPUS_DIR OUT_DIR
set -euo pipefail
corpus=${1:?corpus dir}
out=${2:?output dir}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
find "$corpus" -name '*.gguf' | sort | while read -r f; do
  end=$(python3 "$here/tests/tools/gguf_facts.py" "$f" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["header_end"])' 2>/dev/null || echo 4096)
  [ "$end" -gt 65535 ] && end=65535
  name=$(echo "${f#$corpus/}" | tr '/' '_')
  { head -c "$end" "$f"; printf '\001'; } > "$out/$name"
done
ls "$out" | wc -l
