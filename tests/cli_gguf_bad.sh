#!/usr/bin/env bash
# The corpus's bad GGUF files through the mconv program: inspect, dump and
# convert each exit 1 with one line on stderr that names the file and the
# problem. Usage: bash cli_gguf_bad.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_gguf_bad.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
bad="$corpus/external/bad"
if [ -z "$corpus" ] || [ ! -d "$bad" ]; then
  echo "SKIP: corpus absent (set MCONV_CORPUS): external/bad"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-gguf-bad.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
# file|words that must appear (grep -E alternatives joined by ';' must all match)
cases=(
  "fugg-magic.gguf|FUGG;byte-swapped;big-endian"
  "kv-type-13.gguf|dict1;type 13"
  "truncated-header.gguf|truncated;6 bytes"
  "utf8-mangled-vocab-phi-3.gguf|key 10;U\\+FFFD;lengths no longer match"
)
for c in "${cases[@]}"; do
  f=${c%%|*}
  words=${c#*|}
  for cmd in inspect dump convert; do
    checks=$((checks + 1))
    if [ "$cmd" = convert ]; then
      "$mconv" "$bad/$f" "$tmp/out.flash" >"$tmp/out" 2>"$tmp/err"
    else
      "$mconv" "$cmd" "$bad/$f" >"$tmp/out" 2>"$tmp/err"
    fi
    rc=$?
    msg=$(cat "$tmp/err")
    ok=1
    [ "$rc" -eq 1 ] || ok=0
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || ok=0
    grep -qF "$bad/$f" "$tmp/err" || ok=0
    IFS=';' read -r -a ws <<<"$words"
    for w in "${ws[@]}"; do grep -qE -- "$w" "$tmp/err" || ok=0; done
    [ ! -e "$tmp/out.flash" ] || ok=0
    if [ $ok -eq 1 ]; then
      echo "ok: mconv $cmd $f -> exit $rc: $msg"
    else
      echo "FAIL: mconv $cmd $f -> exit $rc (want 1, one line naming the file with: $words): $msg"
      fails=$((fails + 1))
    fi
  done
done
echo "cli_gguf_bad: $checks checks, $fails failed"
[ $fails -eq 0 ]
