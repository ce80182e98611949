#!/usr/bin/env bash
# Corrupted files through the mconv program, end to end: a GGUF, a
# safetensors file and a .flash file (converted here), each truncated at
# header offsets and data offsets and with single bits flipped in header
# bytes, through `mconv inspect`, `mconv dump` and `mconv IN OUT.flash`.
#   truncated: exit 1, exactly one line on stderr naming the file, no OUT,
#              no temporary
#   bit flip:  exit 0 or 1 (a flip inside a name or a value can leave a valid
#              file); exit 1 as above; a conversion that succeeds gives a
#              file `mconv verify` accepts; never a crash (exit >= 128) or a
#              sanitizer/valgrind report (those exit with other codes)
#   .flash:    every cut and bit flip is reported by `mconv verify` (exit 3,
#              or 1 when it is not recognisable as a .flash file at all)
# MCONV_TEST_LEVEL=1 (set by the valgrind pass) samples fewer offsets; the
# kinds of corruption are the same at every level.
# Usage: bash cli_corrupt.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_corrupt.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
gguf=$corpus/models/llama/gguf/llama-Q4_K_M.gguf
st=$corpus/models/llama/hf/model.safetensors
if [ ! -f "$gguf" ] || [ ! -f "$st" ]; then
  echo "SKIP: corpus absent ($corpus)"
  exit 77
fi
level=${MCONV_TEST_LEVEL:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-corrupt-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

"$mconv" "$gguf" "$t/src.flash" -q || { echo "FAIL: cannot convert $gguf"; exit 1; }

# variants: python writes them and prints "kind path" lines
python3 - "$gguf" "$st" "$t/src.flash" "$t" "$level" "$here" > "$t/list" <<'EOF' || { echo "FAIL: variant generation"; exit 1; }
import json, os, random, struct, subprocess, sys
gguf, st, flash, out, level, here = sys.argv[1:7]
level = int(level)
rng = random.Random(20261122)
def header_end(path, kind):
    if kind == 'gguf':
        f = json.loads(subprocess.check_output([sys.executable, here + '/tests/tools/gguf_facts.py', path]))
        return int(f['header_end']), int(f['data_offset'])
    if kind == 'st':
        n = struct.unpack('<Q', open(path, 'rb').read(8))[0]
        return 8 + n, 8 + n
    b = open(path, 'rb').read(48)
    moff, mlen = struct.unpack('<QQ', b[16:32])
    return 48, moff  # header bytes; the manifest is checked separately below
n_cut = {1: 6, 2: 28}.get(level, 60)
n_flip = {1: 6, 2: 24}.get(level, 80)
n_data = {1: 2, 2: 6}.get(level, 12)
for kind, path in (('gguf', gguf), ('st', st), ('flash', flash)):
    data = open(path, 'rb').read()
    hend, dstart = header_end(path, kind)
    cuts = set([0, 1, 4, 7, 8, 12, 16, 24, hend - 1])
    cuts |= set(rng.randrange(0, hend) for _ in range(n_cut))
    cuts |= set(rng.randrange(dstart, len(data)) for _ in range(n_data))
    cuts.add(len(data) - 1)
    for c in sorted(cuts):
        p = '%s/%s-cut%d.%s' % (out, kind, c, 'safetensors' if kind == 'st' else kind)
        open(p, 'wb').write(data[:c])
        print('cut', p)
    flips = set(rng.randrange(0, hend) for _ in range(n_flip))
    if kind == 'flash':  # manifest bytes too
        moff, mlen = struct.unpack('<QQ', data[16:32])
        flips |= set(rng.randrange(moff, moff + mlen) for _ in range(n_flip))
    for i in sorted(flips):
        b = bytearray(data)
        b[i] ^= 1 << rng.randrange(8)
        p = '%s/%s-flip%d.%s' % (out, kind, i, 'safetensors' if kind == 'st' else kind)
        open(p, 'wb').write(bytes(b))
        print('flip', p)
EOF

check_one() { # kind(cut|flip) file cmd
  local kind=$1 f=$2 cmd=$3 rc
  rm -f "$t/out.flash"
  case $cmd in
    convert) "$mconv" "$f" "$t/out.flash" -q >"$t/stdout" 2>"$t/err" ;;
    *) "$mconv" "$cmd" "$f" >"$t/stdout" 2>"$t/err" ;;
  esac
  rc=$?
  local what="mconv $cmd $(basename "$f")"
  if [ "$rc" -ge 2 ] || { [ "$kind" = cut ] && [ "$rc" -ne 1 ]; }; then
    bad "$what: exit $rc: $(head -c 400 "$t/err")"
    return
  fi
  ok
  if [ "$rc" -eq 1 ]; then
    { [ "$(wc -l <"$t/err")" -eq 1 ] && grep -qF "$f" "$t/err"; } && ok ||
      bad "$what: want one line naming the file, got: $(head -c 400 "$t/err")"
    [ -e "$t/out.flash" ] && bad "$what: failed but left OUT" || ok
  elif [ "$cmd" = convert ]; then
    "$mconv" verify -q "$t/out.flash" >/dev/null 2>&1 && ok || bad "$what: converted a file verify refuses"
  fi
  ls -a "$t" | grep -q 'mconv-tmp' && bad "$what: temporary left" || ok
}

n=0
while read -r kind f; do
  n=$((n + 1))
  for cmd in inspect dump convert; do
    # .flash is not a conversion input
    case "$f" in *.flash) [ "$cmd" = convert ] && continue ;; esac
    check_one "$kind" "$f" "$cmd"
  done
  case "$f" in
    *.flash)
      "$mconv" verify -q "$f" >/dev/null 2>&1
      rc=$?
      [ "$rc" -eq 3 ] || [ "$rc" -eq 1 ] && ok || bad "mconv verify $(basename "$f"): exit $rc, want 3 (or 1 when unreadable)"
      ;;
  esac
  rm -f "$f"
done < "$t/list"
echo "cli_corrupt: $n corrupted files, $checks checks, $fails failed"
[ "$n" -gt 0 ] && [ "$fails" -eq 0 ]
