#!/usr/bin/env bash
# --layout mac-code from the outside: what no mac-code engine can run is
# refused (one line on stderr naming the reason, exit 1, nothing written,
# no temporary left); --engines errors; --force-layout writes anyway with a
# warning per reason; the bfloat16 warning for direct_io.py's readers;
# mconv verify FOLDER on sound and corrupted folders (exit 3 listing each
# problem), inspect naming the engines that can read a folder.
# Usage: bash cli_maccode.sh MCONV CORPUS
set -u
mconv=${1:?usage: cli_maccode.sh MCONV CORPUS}
corpus=${MCONV_CORPUS:-${2:-}}
m=$corpus/models
if [ ! -d "$m/qwen3/hf" ] || [ ! -d "$m/qwen3_5_moe/hf" ] || [ ! -d "$m/llama/hf" ]; then
    echo "SKIP: corpus absent ($corpus)"
    exit 77
fi
t=$(mktemp -d "${TMPDIR:-/tmp}/mconv-cli-maccode-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# refuse WANT_RC PATTERN SRC [options...]: exit WANT_RC, exactly one line on
# stderr matching PATTERN, nothing on stdout, no OUTDIR, no temporary
refuse() {
    want=$1 pat=$2
    shift 2
    rm -rf "$t/out"
    "$mconv" "$@" "$t/out" --layout mac-code > "$t/so" 2> "$t/se"
    rc=$?
    what="$* (exit $rc): $(cat "$t/se")"
    [ "$rc" = "$want" ] && ok || bad "expected exit $want: $what"
    [ "$(wc -l < "$t/se")" = 1 ] && ok || bad "expected one line on stderr: $what"
    grep -q -- "$pat" "$t/se" && ok || bad "no '$pat': $what"
    [ -s "$t/so" ] && bad "stdout not empty: $what" || ok
    [ -e "$t/out" ] && bad "OUTDIR written: $what" || ok
    ls -a "$t" | grep -q 'mconv-\(tmp\|old\)' && bad "temporary left: $what" || ok
}

# --- architectures no engine builds: the line names what the engines build
for src in "$m/llama/hf" "$m/mixtral/hf" "$m/deepseek_v3/hf" "$m/phi3/hf" "$m/gemma3/hf" \
           "$m/llama/gguf/llama-Q4_K_M.gguf" "$m/mixtral/gguf/mixtral-Q4_0.gguf"; do
    [ -e "$src" ] || continue
    refuse 1 "no mac-code engine builds" "$src"
    grep -q "qwen3 (flash-streaming/flash_stream.py" "$t/se" && grep -q "qwen3_5_moe (flash-streaming/flash_moe.py" "$t/se" &&
        grep -q "qwen3_next (cli-agent/engine_next.py)" "$t/se" && grep -q -- "--force-layout" "$t/se" &&
        ok || bad "$src: the refusal does not name the engines and what they build: $(cat "$t/se")"
done

# --- options the engines cannot read (BITS = 4, GROUP_SIZE = 64 hard-coded)
refuse 1 "^mconv: .*--lossless keeps GGML blocks at group size 32" "$m/qwen3/gguf/qwen3-Q4_0.gguf" --lossless
refuse 1 "--lossless" "$m/qwen3_moe/gguf/qwen3_moe-Q4_K_M.gguf" --lossless
refuse 1 "--bits 3: the mac-code engines" "$m/qwen3/hf" --bits 3
refuse 1 "--bits 8: the mac-code engines" "$m/qwen3_moe/hf" --bits 8
refuse 1 "--group-size 32: the mac-code engines" "$m/qwen3/hf" --group-size 32
refuse 1 "--bits 2 --group-size 128" "$m/qwen3_5_moe/hf" --bits 2 --group-size 128
refuse 1 "--no-quant stores float weights" "$m/qwen3/hf" --no-quant
# per-module bits: checked on the built plan
refuse 1 "model.layers.0.mlp.gate is stored 8-bit group 64; .*cli-agent/engine.py build it 4-bit" \
    "$m/qwen3_5_moe/hf" --bits-for '*.mlp.gate=8'
refuse 1 "model.layers.1.self_attn.q_proj is stored 8-bit" "$m/qwen3/hf" --bits-for 'model.layers.1.self_attn.q_proj=8'
refuse 1 "model.layers.0.mlp.gate is stored 4-bit group 64; cli-agent/engine_30b.py builds it 8-bit" \
    "$m/qwen3_moe/hf" --bits-for '*.mlp.gate=4'
refuse 1 "model.layers.0.mlp.shared_expert_gate is stored 2-bit" "$m/qwen3_5_moe/gguf/qwen3_5_moe-Q4_K_M.gguf" \
    --bits-for '*shared_expert_gate=2'
# recipes (docs/QUANT.md): the line names the recipe, the module and the engines;
# a float source under --recipe source keeps 4 bits and is written
refuse 1 "^mconv: .*: --recipe source: lm_head is stored 6-bit group 64; flash-streaming/flash_stream.py.* build it 4-bit group 64 (and 2 more modules)" \
    "$m/qwen3/gguf/qwen3-Q4_K_M.gguf" --recipe source
refuse 1 "--recipe mixed_4_6: lm_head is stored 6-bit group 64; cli-agent/engine_30b.py builds it 4-bit" \
    "$m/qwen3_moe/hf" --recipe mixed_4_6
refuse 1 "--recipe mixed_3_4: model.embed_tokens is stored 3-bit group 64; .*mlx-sniper/flash_moe.py" \
    "$m/qwen3_5_moe/hf" --recipe mixed_3_4
refuse 1 "--bits-for model.layers.1.mlp.down_proj=6: model.layers.1.mlp.down_proj is stored 6-bit" \
    "$m/qwen3/hf" --bits-for 'model.layers.1.mlp.down_proj=6'
refuse 2 "--recipe mixed_9_9: expected one of uniform, source, mixed_2_6" "$m/qwen3/hf" --recipe mixed_9_9
rm -rf "$t/rs"
"$mconv" "$m/qwen3/hf" "$t/rs" --layout mac-code --recipe source -q > "$t/so" 2> "$t/se"
[ $? = 0 ] && [ -f "$t/rs/config.json" ] && ok || bad "--recipe source from bf16: $(cat "$t/se")"
rm -rf "$t/rs"
"$mconv" "$m/qwen3/gguf/qwen3-Q4_K_M.gguf" "$t/rs" --layout mac-code --recipe source --force-layout -q > "$t/so" 2> "$t/se"
[ $? = 0 ] && [ "$(grep -c '^mconv: warning: --force-layout: --recipe source: lm_head is stored 6-bit' "$t/se")" = 1 ] &&
    ok || bad "--force-layout --recipe source: $(cat "$t/se")"
rm -rf "$t/rs"
# engines that disagree among themselves
refuse 1 "the selected engines build model.layers.0.mlp.gate differently (cli-agent/engine_30b.py 8-bit, mlx-sniper/moe_agent_30b.py 4-bit)" \
    "$m/qwen3_moe/hf" --engines all
refuse 1 "flash-streaming/flash_stream.py builds qwen3 (mlx_lm.models.qwen3.Model), not qwen3_moe" \
    "$m/qwen3_moe/hf" --engines flash_stream
refuse 1 "flash-streaming/flash_stream.py builds qwen3 .*, not llama" "$m/llama/hf" --engines flash_stream
refuse 2 "--engines: no engine 'nope'" "$m/qwen3/hf" --engines nope
refuse 2 "--engines: 'flash_moe' is ambiguous" "$m/qwen3_5_moe/hf" --engines flash_moe
"$mconv" "$m/qwen3/hf" "$t/x.flash" --engines flash_stream > "$t/o" 2>&1
[ $? = 2 ] && grep -q "applies to --layout mac-code only" "$t/o" && ok || bad "--engines without mac-code: $(cat "$t/o")"
"$mconv" "$m/qwen3/hf" "$t/x" --layout mlx --force-layout > "$t/o" 2>&1
[ $? = 2 ] && ok || bad "--force-layout with --layout mlx: $(cat "$t/o")"

# --- --force-layout: written, one warning per reason
"$mconv" "$m/llama/hf" "$t/fl" --layout mac-code --force-layout > "$t/so" 2> "$t/se"
[ $? = 0 ] && ok || bad "--force-layout llama: $(cat "$t/se")"
grep -q "^mconv: warning: --force-layout: .*no mac-code engine builds llama" "$t/se" && ok || bad "no warning: $(cat "$t/se")"
[ -f "$t/fl/ffn_aligned/layer_00.bin" ] && [ -f "$t/fl/ffn/layer_00.safetensors" ] && ok || bad "forced llama: every form expected"
grep -q "No mac-code engine builds llama" "$t/fl/README.md" && ok || bad "forced README"
"$mconv" verify "$t/fl" > "$t/o" 2>&1 && ok || bad "verify forced folder: $(cat "$t/o")"
"$mconv" inspect "$t/fl" > "$t/o" 2>&1
grep -q "engines:       none of the mac-code engines can read it" "$t/o" && ok || bad "inspect forced: $(cat "$t/o")"
"$mconv" "$m/qwen3/hf" "$t/f3" --layout mac-code --force-layout --bits 3 > "$t/so" 2> "$t/se"
[ $? = 0 ] && [ "$(grep -c '^mconv: warning: --force-layout: --bits 3' "$t/se")" = 1 ] && ok || bad "--force-layout --bits 3: $(cat "$t/se")"
"$mconv" inspect "$t/f3" > "$t/o" 2>&1
grep -q "not flash-streaming/flash_stream.py: model.embed_tokens is stored 3-bit, it builds it 4-bit group 64" "$t/o" &&
    ok || bad "inspect 3-bit: $(cat "$t/o")"

# --- bfloat16: a warning naming the engines that misread it (direct_io.py)
"$mconv" "$m/qwen3/hf" "$t/bf" --layout mac-code --dtype bf16 > "$t/so" 2> "$t/se"
[ $? = 0 ] && ok || bad "--dtype bf16: $(cat "$t/se")"
grep -q "warning: ffn_aligned/ holds bfloat16 tensors: flash-streaming/flash_stream_v2.py, flash-streaming/flash_agent.py read them as float16" "$t/se" &&
    ok || bad "bf16 warning: $(cat "$t/se")"
"$mconv" inspect "$t/bf" > "$t/o" 2>&1
grep -q "^engines:       flash-streaming/flash_stream.py, flash-streaming/flash_stream_batched.py$" "$t/o" &&
    grep -q "not flash-streaming/flash_stream_v2.py: .*bfloat16 in ffn_aligned/" "$t/o" && ok || bad "inspect bf16: $(cat "$t/o")"
"$mconv" "$m/qwen3_5_moe/hf" "$t/bm" --layout mac-code --dtype bf16 > "$t/so" 2> "$t/se"
[ $? = 0 ] && ! grep -q bfloat16 "$t/se" && ok || bad "bf16 MoE: no warning expected (expert_io.py views bfloat16): $(cat "$t/se")"
rm -rf "$t/bf" "$t/bm" "$t/fl" "$t/f3"

# --- verify: sound folders, then one corruption at a time (exit 3)
"$mconv" "$m/qwen3/gguf/qwen3-Q4_K_M.gguf" "$t/d" --layout mac-code -q 2> /dev/null || bad "dense folder"
"$mconv" "$m/qwen3_5_moe/hf" "$t/x" --layout mac-code -q 2> /dev/null || bad "MoE folder"
for f in d x; do
    "$mconv" verify "$t/$f" > "$t/o" 2>&1 && grep -q ": sound: " "$t/o" && ok || bad "verify $f: $(cat "$t/o")"
done
# corrupt DIR PATTERN CMD...: a copy of DIR changed by CMD (run inside it) is
# reported (exit 3) with a problem line matching PATTERN
corrupt() {
    src=$1 pat=$2
    shift 2
    rm -rf "$t/c" && cp -r "$t/$src" "$t/c"
    (cd "$t/c" && eval "$@")
    "$mconv" verify "$t/c" > "$t/o" 2>&1
    rc=$?
    [ "$rc" = 3 ] && grep -q "^problem: .*$pat" "$t/o" && ok || bad "verify after '$*': exit $rc, no '$pat': $(head -c 800 "$t/o")"
}
poke() { # FILE OFFSET BYTE
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2> /dev/null
}
corrupt d "padding byte at offset 60000 is not zero" "poke ffn_aligned/layer_00.bin 60000 '\\x01'"
corrupt d "header padding byte" "poke ffn_aligned/layer_01.bin 16000 'x'"
corrupt d "total_size is not the file size" \
    "python3 -c \"import json;p='ffn_aligned/layer_00.bin';b=bytearray(open(p,'rb').read());h=json.loads(b[:16384].rstrip(b'\\\\0'));h['total_size']+=16384;j=json.dumps(h).encode();b[:16384]=j+bytes(16384-len(j));open(p,'wb').write(b)\""
corrupt d "outside the file" "truncate -s 65536 ffn_aligned/layer_01.bin"
corrupt d "ffn/layer_01.safetensors: missing (the engines open it for layer 1 of 2)" "rm ffn/layer_01.safetensors"
corrupt d "bytes differ from its ffn_aligned/ twin" "poke ffn/layer_00.safetensors 20000 '\\x7f'"
corrupt d "no mlp.down_proj.scales" \
    "python3 -c \"import json;p='ffn_aligned/layer_00.bin';b=bytearray(open(p,'rb').read());h=json.loads(b[:16384].rstrip(b'\\\\0'));h['tensors']['mlp.down_proj.scalez']=h['tensors'].pop('mlp.down_proj.scales');j=json.dumps(h).encode();b[:16384]=j+bytes(16384-len(j));open(p,'wb').write(b)\""
corrupt d "layer_idx is not 1" \
    "python3 -c \"import json;p='ffn_aligned/layer_01.bin';b=bytearray(open(p,'rb').read());h=json.loads(b[:16384].rstrip(b'\\\\0'));h['layer_idx']=0;j=json.dumps(h).encode();b[:16384]=j+bytes(16384-len(j));open(p,'wb').write(b)\""
corrupt d "pinned.safetensors: " "truncate -s 1000 pinned.safetensors"
corrupt d "a symbolic link to .*outside the folder" "ln -s /etc/hostname extra"
corrupt x "padding byte at offset" "poke bin/layer_02.bin $((16384 + 114688 - 10)) '\\x01'"
corrupt x "data_start + num_experts x expert_block_size" "truncate -s 147456 bin/layer_03.bin"
corrupt x "differ (the two names of one tensor)" \
    "python3 -c \"import json;p='bin/layer_01.bin';b=bytearray(open(p,'rb').read());h=json.loads(b[:16384].rstrip(b'\\\\0'));h['layout']['tensors']['switch_mlp.up_proj.scales']['inner_offset']=0;j=json.dumps(h).encode();b[:16384]=j+bytes(16384-len(j));open(p,'wb').write(b)\""
corrupt x "its layout differs from layer 0's" \
    "python3 -c \"import json;p='bin/layer_02.bin';b=bytearray(open(p,'rb').read());h=json.loads(b[:16384].rstrip(b'\\\\0'));t=h['layout']['tensors'];[t.pop(k) for k in list(t) if k.startswith('mlp.')];j=json.dumps(h).encode();b[:16384]=j+bytes(16384-len(j));open(p,'wb').write(b)\""
corrupt x "streaming.expert_dir \"bin\" is not a folder" "mv bin bin2"
corrupt x "streaming.pinned_file is not" \
    "python3 -c \"import json;c=json.load(open('config.json'));c['streaming']['pinned_file']='p.safetensors';json.dump(c,open('config.json','w'))\""
corrupt x "weight and scales shapes do not make 8-bit" \
    "python3 -c \"import json;c=json.load(open('config.json'));c['quantization']['model.layers.0.mlp.gate']={'bits':8,'group_size':64};json.dump(c,open('config.json','w'))\""
# not a mac-code folder at all: exit 1
mkdir -p "$t/plain" && echo '{}' > "$t/plain/config.json"
"$mconv" verify "$t/plain" > "$t/o" 2>&1
[ $? = 1 ] && grep -q "not a mac-code folder" "$t/o" && ok || bad "verify plain folder: $(cat "$t/o")"

echo "cli_maccode: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
