#!/bin/sh
# What the quantization error measurement costs in cache, one version of
# quant/mc_qerr.c against another, in one program (bench/qerr_ab/driver.c):
# both measure the same quantization in alternating order, so a slow
# moment of the machine falls on both.
#
#   bench/qerr_ab.sh REV_A [REV_B [ROWS COLS REPS]]
#
# REV_A, REV_B: git revisions of quant/mc_qerr.c; REV_B "work" (the default)
# is the working tree's file. ROWS COLS REPS default to 64 2048 201 (the
# q4km model's gate and up rows; its down rows are 160 768). Run from the
# repository root after scripts/setup.sh (it links build/libmconv.a).
# Needs git, a C compiler and objcopy (binutils; llvm-objcopy where that is
# the one there is); on Linux the program runs pinned to CPU 0 (taskset).
# MC_GHZ sets the clock the cycles are counted at (default 3.57).
set -eu
[ $# -ge 1 ] || { echo "usage: bench/qerr_ab.sh REV_A [REV_B [ROWS COLS REPS]]" >&2; exit 2; }
a=$1 b=${2:-work} rows=${3:-64} cols=${4:-2048} reps=${5:-201}
[ -f build/libmconv.a ] || { echo "qerr_ab: build/libmconv.a missing: run scripts/setup.sh first" >&2; exit 2; }
objcopy=$(command -v objcopy || command -v llvm-objcopy || true)
[ -n "$objcopy" ] || { echo "qerr_ab: objcopy (binutils) or llvm-objcopy is needed" >&2; exit 2; }
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
flags="-O3 -DNDEBUG -ffp-contract=off -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Iinclude -Iformats -Iquant -Iconvert -Ilayout -Ibench"
for v in A B; do
  rev=$a; [ $v = B ] && rev=$b
  if [ "$rev" = work ]; then cp quant/mc_qerr.c "$tmp/$v.c"
  else git show "$rev:quant/mc_qerr.c" > "$tmp/$v.c" || { echo "qerr_ab: no quant/mc_qerr.c at $rev" >&2; exit 2; }
  fi
  # the file includes its neighbours by name: build it where they are
  $cc $flags -iquote quant -c "$tmp/$v.c" -o "$tmp/$v.o"
  nm -g --defined-only "$tmp/$v.o" | awk -v p=$v 'NF == 3 { print $3 " " p "_" $3 }' > "$tmp/$v.sym"
  "$objcopy" --redefine-syms="$tmp/$v.sym" "$tmp/$v.o"
done
libs=$(pkg-config --libs libzstd zlib libxxhash libcjson 2>/dev/null || echo "-lzstd -lz -lxxhash -lcjson")
$cc -O2 $flags bench/qerr_ab/driver.c "$tmp/A.o" "$tmp/B.o" build/libmconv.a $libs -lm -lpthread -o "$tmp/qerr_ab"
echo "A: $a  B: $b"
if command -v taskset >/dev/null 2>&1; then taskset -c 0 "$tmp/qerr_ab" "$rows" "$cols" "$reps"
else "$tmp/qerr_ab" "$rows" "$cols" "$reps"
fi
