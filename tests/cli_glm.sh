#!/usr/bin/env bash
# The GLM families end to end from the outside (corpus-new glm4_moe and
# glm_moe_dsa: hf/ and every GGUF): .flash written and `mconv verify
# --source` sound; `--layout mlx` written with the mlx-lm model_type and the
# MTP notice; `--layout mac-code` refused (no mac-code engine
# builds them: one line naming the model type, exit 1, nothing written);
# --dtype f16 leaves e_score_correction_bias float32 (mlx-lm's cast_predicate).
# Usage: bash cli_glm.sh MCONV [CORPUS]   (reads MCONV_CORPUS_NEW)
set -u
mconv=${1:?usage: cli_glm.sh MCONV [CORPUS]}
cn=${MCONV_CORPUS_NEW:-${MCONV_CORPUS_NEW_DEFAULT:-}}
if [ ! -d "$cn/models/glm4_moe/hf" ] || [ ! -d "$cn/models/glm_moe_dsa/hf" ]; then
    echo "SKIP: corpus-new GLM models absent ($cn)"
    exit 77
fi
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-glm-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

for arch in glm4_moe glm_moe_dsa; do
    for src in "$cn/models/$arch/hf" "$cn/models/$arch"/gguf/*.gguf; do
        rm -rf "$t"/*
        if "$mconv" "$src" "$t/m.flash" > "$t/so" 2> "$t/se"; then ok; else bad "$src: convert: $(cat "$t/se")"; continue; fi
        cat "$t/so" "$t/se" | grep -q "MTP" && ok || bad "$src: no MTP notice"
        "$mconv" verify "$t/m.flash" --source "$src" > "$t/vo" 2>&1 && ok || bad "$src: verify: $(cat "$t/vo")"
        grep -q "sound" "$t/vo" && ok || bad "$src: verify says: $(cat "$t/vo")"
        if "$mconv" "$src" "$t/mlx" --layout mlx > "$t/so" 2> "$t/se"; then ok; else bad "$src: --layout mlx: $(cat "$t/se")"; continue; fi
        grep -q "\"model_type\":[[:space:]]*\"$arch\"" "$t/mlx/config.json" && ok || bad "$src: model_type in $(cat "$t/mlx/config.json")"
        [ -s "$t/mlx/model.safetensors" ] && ok || bad "$src: no model.safetensors"
        "$mconv" "$src" "$t/mc" --layout mac-code > "$t/so" 2> "$t/se"
        rc=$?
        [ "$rc" = 1 ] && ok || bad "$src: --layout mac-code exit $rc"
        [ "$(wc -l < "$t/se")" = 1 ] && grep -q "no mac-code engine builds $arch" "$t/se" && ok ||
            bad "$src: mac-code refusal: $(cat "$t/se")"
        [ -e "$t/mc" ] && bad "$src: mac-code folder written" || ok
    done
done
# --dtype f16: every float tensor f16 except e_score_correction_bias, which
# mlx-lm's cast_predicate leaves float32 (as in hf/)
for arch in glm4_moe glm_moe_dsa; do
    rm -rf "$t"/*
    "$mconv" "$cn/models/$arch/hf" "$t/mlx" --layout mlx --dtype f16 > /dev/null 2>&1 && ok || bad "$arch: --dtype f16"
    got=$(python3 -c '
import json, struct, sys
f = open(sys.argv[1], "rb")
h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
bias = {h[k]["dtype"] for k in h if k.endswith("e_score_correction_bias")}
norms = {h[k]["dtype"] for k in h if k.endswith("layernorm.weight")}
print(",".join(sorted(bias)) + " " + ",".join(sorted(norms)))' "$t/mlx/model.safetensors")
    [ "$got" = "F32 F16" ] && ok || bad "$arch --dtype f16: e_score_correction_bias / norms dtypes '$got', want 'F32 F16'"
done
echo "cli_glm: $checks checks, $fails failed"
[ "$fails" = 0 ]
