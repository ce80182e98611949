#!/usr/bin/env bash
# Seed directories for every fuzz/fuzz_*.c target, built at run time from the
# corpus (nothing from the corpus is copied into the repository):
#   gguf          header of every corpus GGUF + an odd byte (pad with zeros)
#   safetensors   every corpus .safetensors up to 256 KiB whole; the 8-byte
#                 length + JSON header of the larger ones
#   st_index      every model.safetensors.index.json (capped at 64 KiB)
#   flash         .flash files converted from small corpus GGUFs by MCONV
#                 (whole, and cut after the first 16 KiB page)
#   flash_reader  the same whole .flash files
#   dequant       GGML type id + up to 4 KiB of real blocks of that type from
#                 corpus/ggml/quant-vectors.gguf
#   maccode       the files of mac-code folders converted from corpus models
#                 by MCONV, each behind fuzz_maccode's file selector byte
# Each target also gets testdata/fuzz/<target>/* (the regression inputs).
# Usage: scripts/fuzz_seeds.sh CORPUS_DIR OUT_DIR [MCONV]
#   makes OUT_DIR/fuzz_gguf, OUT_DIR/fuzz_safetensors, ...
set -euo pipefail
corpus=${1:?corpus dir}
out=${2:?output dir}
mconv=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"/fuzz_gguf "$out"/fuzz_safetensors "$out"/fuzz_st_index "$out"/fuzz_flash "$out"/fuzz_dequant \
  "$out"/fuzz_maccode "$out"/fuzz_flash_reader "$out"/fuzz_ct_int4

if [ -d "$corpus" ]; then
  bash "$here/scripts/gguf_fuzz_seeds.sh" "$corpus" "$out/fuzz_gguf" >/dev/null

  find "$corpus" -name '*.safetensors' | sort | while read -r f; do
    name=$(echo "${f#$corpus/}" | tr '/' '_')
    size=$(wc -c < "$f")
    if [ "$size" -le 262144 ]; then
      cp "$f" "$out/fuzz_safetensors/$name"
    else
      python3 - "$f" "$out/fuzz_safetensors/$name.header" <<'EOF'
import struct, sys
with open(sys.argv[1], 'rb') as f:
    b = f.read(8)
    n = struct.unpack('<Q', b)[0] if len(b) == 8 else 0
    h = f.read(min(n, 1 << 20))
open(sys.argv[2], 'wb').write(b + h)
EOF
    fi
  done

  find "$corpus" -name '*.index.json' | sort | while read -r f; do
    name=$(echo "${f#$corpus/}" | tr '/' '_')
    head -c 65536 "$f" > "$out/fuzz_st_index/$name"
  done

  qv=$corpus/ggml/quant-vectors.gguf
  if [ -f "$qv" ]; then
    python3 - "$here/tests/tools/gguf_facts.py" "$qv" "$out/fuzz_dequant" <<'EOF'
import json, subprocess, sys
facts = json.loads(subprocess.check_output([sys.executable, sys.argv[1], sys.argv[2]]))
data = open(sys.argv[2], 'rb').read()
base = int(facts['data_offset'])
for t in facts['tensors']:
    if not t['name'].startswith(('q.', 'rnd.')):
        continue
    off = base + int(t['offset'])
    blob = data[off:off + min(int(t['nbytes']), 4096)]
    with open('%s/%s' % (sys.argv[3], t['name']), 'wb') as f:
        f.write(bytes([t['type'] & 255]) + blob)
EOF
  fi

  if [ -n "$mconv" ] && [ -x "$mconv" ]; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/mconv-fuzz-seeds-XXXXXX")
    for g in models/llama/gguf/llama-Q4_K_M.gguf models/gemma3/gguf/gemma3-IQ4_XS.gguf; do
      [ -e "$corpus/$g" ] || continue
      name=$(echo "$g" | tr '/' '_')
      if "$mconv" "$corpus/$g" "$tmp/$name.flash" -q >/dev/null 2>&1; then
        cp "$tmp/$name.flash" "$out/fuzz_flash/$name.flash"
        cp "$tmp/$name.flash" "$out/fuzz_flash_reader/$name.flash"
        head -c 16384 "$tmp/$name.flash" > "$out/fuzz_flash/$name.page0"
      fi
    done
    # fuzz_maccode: selector byte (0 bin/, 1 ffn_aligned/, 2 ffn/, 3 config, 4 pinned) + the file
    for g in models/qwen3/gguf/qwen3-Q4_K_M.gguf models/qwen3_5_moe/hf; do
      [ -e "$corpus/$g" ] || continue
      name=$(echo "$g" | tr '/' '_')
      "$mconv" "$corpus/$g" "$tmp/$name" --layout mac-code -q >/dev/null 2>&1 || continue
      n=0
      for f in bin/layer_00.bin ffn_aligned/layer_00.bin ffn/layer_00.safetensors config.json pinned.safetensors; do
        [ -f "$tmp/$name/$f" ] && { printf "\\$(printf %o $n)"; cat "$tmp/$name/$f"; } > "$out/fuzz_maccode/$name.$n"
        [ -s "$out/fuzz_maccode/$name.$n" ] || rm -f "$out/fuzz_maccode/$name.$n"
        n=$((n + 1))
      done
    done
    rm -rf "$tmp"
  fi
fi

for d in "$out"/fuzz_*; do
  tgt=$(basename "$d")
  if [ -d "$here/testdata/fuzz/$tgt" ]; then
    find "$here/testdata/fuzz/$tgt" -type f ! -name 'README*' -exec cp {} "$d/" \;
  fi
  echo "$tgt: $(ls "$d" | wc -l) seeds"
done
