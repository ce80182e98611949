#!/bin/sh
# Byte identity of conversions: run one build's mconv over every corpus
# model and every fixture the conversion tests write, and record the sha256
# of every output (.flash, --lossless .flash, --no-quant f32 .flash,
# --layout mlx and --layout mac-code folders), of `mconv dump --json` of the
# .flash, and of what mconv printed (summary, notices, refusal messages;
# timing lines dropped). Two builds that convert alike give equal manifests.
#
#   tests/tools/convert_identity.sh [--fixtures DIR] [--against REF] BUILD MANIFEST
#
# BUILD: a build folder (BUILD/mconv; BUILD/test_convert_fixtures and
# BUILD/test_convert_mla_gdn when DIR has to be made). DIR (default
# MANIFEST.fixtures): the fixtures, made there once by those tests (their
# temporary folders kept with MCONV_TEST_KEEP_TMPDIR) when DIR does not exist
# yet; pass the same DIR to every build compared, so that all convert the
# same bytes (an older build need not have the tests' keep option). REF: a
# manifest to compare with: exit 1 listing every line that differs.
# Inputs: $MCONV_CORPUS (default ../shared/corpus) models/*/gguf/*.gguf,
# models/*/hf, models/*/hf-sharded and external/gguf/*.gguf;
# $MCONV_CORPUS_NEW (default ../shared/corpus-new) models likewise; every
# .gguf and folder the fixture tests left. Not run by ctest (it converts
# each input five times): a tool for refactors of convert/ and layout/.
set -u
fixtures=
against=
while [ $# -gt 2 ]; do
    case "$1" in
        --fixtures) fixtures=$2; shift 2 ;;
        --against) against=$2; shift 2 ;;
        *) echo "usage: $0 [--fixtures DIR] [--against REF] BUILD MANIFEST" >&2; exit 2 ;;
    esac
done
[ $# -eq 2 ] || { echo "usage: $0 [--fixtures DIR] [--against REF] BUILD MANIFEST" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
manifest=$2
mconv=$build/mconv
[ -x "$mconv" ] || { echo "$0: no $mconv" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=${MCONV_CORPUS:-$root/../shared/corpus}
corpus_new=${MCONV_CORPUS_NEW:-$root/../shared/corpus-new}
[ -n "$fixtures" ] || fixtures=$manifest.fixtures

if command -v sha256sum >/dev/null 2>&1; then sha() { sha256sum | cut -c1-64; }
else sha() { shasum -a 256 | cut -c1-64; }; fi

if [ ! -d "$fixtures" ]; then
    for t in test_convert_fixtures test_convert_mla_gdn; do
        [ -x "$build/$t" ] || { echo "$0: no $build/$t to make the fixtures" >&2; exit 2; }
        mkdir -p "$fixtures/$t" || exit 2
        TMPDIR=$fixtures/$t MCONV_TEST_KEEP_TMPDIR=1 nice "$build/$t" >"$fixtures/$t.log" 2>&1 ||
            { echo "$0: $t failed (see $fixtures/$t.log)" >&2; exit 1; }
    done
fi
fixtures=$(cd "$fixtures" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/mconv-identity-XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
: >"$manifest.tmp" || exit 2

# One line per output: label, mode, what, sha256.
rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$manifest.tmp"; }

# Every file under folder $4 (sorted), as rec lines.
rec_dir() {
    (cd "$4" && find . -type f | LC_ALL=C sort) | while read -r f; do
        rec "$1" "$2" "$3/${f#./}" "$(sha <"$4/$f")"
    done
}

convert() { # label input mode [options...]
    label=$1 in=$2 mode=$3
    shift 3
    case "$mode" in
        mlx|mac-code) out=$work/out ;;
        *) out=$work/out.flash ;;
    esac
    rm -rf "$work/out" "$work/out.flash"
    nice "$mconv" "$in" "$out" --threads 2 "$@" >"$work/log" 2>&1
    rc=$?
    rec "$label" "$mode" "exit" "$rc"
    rec "$label" "$mode" "log" "$(grep -v '^time: ' "$work/log" | sed "s|$work|OUT|g; s|$in|IN|g" | sha)"
    if [ -d "$out" ]; then
        rec_dir "$label" "$mode" "out" "$out"
    elif [ -f "$out" ]; then
        rec "$label" "$mode" "out" "$(sha <"$out")"
        rec "$label" "$mode" "dump" "$("$mconv" dump --json "$out" 2>&1 | sha)"
    fi
}

input() { # label input
    n=$((n + 1))
    convert "$1" "$2" flash
    case "$2" in *.gguf) convert "$1" "$2" lossless --lossless ;; esac
    convert "$1" "$2" f32 --no-quant --dtype f32
    convert "$1" "$2" mlx --layout mlx
    convert "$1" "$2" mac-code --layout mac-code
}

n=0
for c in "corpus:$corpus" "corpus-new:$corpus_new"; do
    tag=${c%%:*} dir=${c#*:}
    [ -d "$dir/models" ] || { echo "SKIP: $tag not at $dir" >&2; continue; }
    for m in "$dir"/models/*/; do
        m=${m%/}
        for g in "$m"/gguf/*.gguf; do [ -f "$g" ] && input "$tag/${g#"$dir"/}" "$g"; done
        for h in hf hf-sharded; do [ -d "$m/$h" ] && input "$tag/${m#"$dir"/}/$h" "$m/$h"; done
    done
    for g in "$dir"/external/gguf/*.gguf; do [ -f "$g" ] && input "$tag/${g#"$dir"/}" "$g"; done
done
for t in "$fixtures"/*/; do
    t=${t%/}
    for e in "$t"/mconv-test-*/*; do
        [ -e "$e" ] || continue
        case "$e" in *.gguf) ;; *) [ -d "$e" ] || continue ;; esac
        input "fixtures/${t##*/}/${e##*/}" "$e"
    done
done

mv "$manifest.tmp" "$manifest" || exit 2
outs=$(awk -F'\t' '$3 != "exit" && $3 != "log" && $3 != "dump"' "$manifest" | wc -l | tr -d ' ')
fails=$(awk -F'\t' '$3 == "exit" && $4 != "0"' "$manifest" | wc -l | tr -d ' ')
echo "$n inputs, $(wc -l <"$manifest" | tr -d ' ') manifest lines, $outs output files, $fails conversions refused"
if [ -n "$against" ]; then
    if diff "$against" "$manifest" >"$work/diff"; then
        echo "identical to $against: every output, dump and message"
    else
        echo "DIFFERENT from $against:"
        cat "$work/diff"
        exit 1
    fi
fi
exit 0
