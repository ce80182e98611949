/* libFuzzer target for the mac-code folder reader (mconv verify / inspect
 * of a folder: layout/mc_maccode_folder.c). The first input byte picks the
 * file the rest of the input becomes, in a small folder that is otherwise
 * sound: 0 bin/layer_00.bin (a qwen3_moe folder), 1 ffn_aligned/layer_00.bin
 * and 2 ffn/layer_00.safetensors (a qwen3 folder), 3 config.json, 4
 * pinned.safetensors. The folder is verified and scanned. Whatever the
 * bytes: no crash, leak or undefined behaviour; a refusal always says why,
 * and a folder verify calls sound can be scanned.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_maccode
 *   build-fuzz/fuzz_maccode -max_total_time=60 testdata/fuzz/fuzz_maccode
 */
#include "mc_maccode_folder.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void ignore(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static int put(const char *name, const void *d, size_t n)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    int bad = n && fwrite(d, 1, n, f) != n;
    return fclose(f) || bad ? -1 : 0;
}

static void clean(void)
{
    static const char *const files[] = { "bin/layer_00.bin", "ffn_aligned/layer_00.bin", "ffn/layer_00.safetensors",
                                         "config.json", "pinned.safetensors" };
    static const char *const dirs[] = { "bin", "ffn_aligned", "ffn", "" };
    char p[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, dirs[i]);
        rmdir(p);
    }
}

/* A minimal pinned.safetensors: one F16 [2] tensor. */
static const char g_pinned_json[] =
    "{\"__metadata__\":{\"format\":\"mlx\"},\"model.norm.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_maccode.%ld", (long)getpid());
        atexit(clean);
    }
    if (!size) return 0;
    int mode = data[0] % 5;
    data++;
    size--;
    clean();
    char p[160];
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/bin", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/ffn_aligned", dir);
    if (mode == 1 || mode == 2) mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/ffn", dir);
    if (mode == 2) mkdir(p, 0700);
    const char *cfg = mode == 1 || mode == 2
                          ? "{\"model_type\":\"qwen3\",\"num_hidden_layers\":1,\"quantization\":{\"bits\":4,"
                            "\"group_size\":64},\"streaming\":{\"pinned_file\":\"pinned.safetensors\",\"ffn_dir\":"
                            "\"ffn/\"}}"
                          : "{\"model_type\":\"qwen3_moe\",\"num_hidden_layers\":1,\"quantization\":{\"bits\":4,"
                            "\"group_size\":64},\"streaming\":{\"pinned_file\":\"pinned.safetensors\",\"expert_dir\":"
                            "\"bin\"}}";
    unsigned char pin[8 + sizeof g_pinned_json - 1 + 4] = { 0 };
    uint64_t hl = sizeof g_pinned_json - 1;
    for (int i = 0; i < 8; i++) pin[i] = (unsigned char)(hl >> (8 * i));
    memcpy(pin + 8, g_pinned_json, (size_t)hl);
    static const char *const target[] = { "bin/layer_00.bin", "ffn_aligned/layer_00.bin", "ffn/layer_00.safetensors",
                                          "config.json", "pinned.safetensors" };
    int bad = put("config.json", cfg, strlen(cfg)) || put("pinned.safetensors", pin, sizeof pin) ||
              put(target[mode], data, size);
    if (mode == 2) bad |= put("ffn_aligned/layer_00.bin", data, size); /* its twin */
    if (bad) return 0;
    mc_error err = { MC_OK, "" };
    mc_maccode_verify_stats st;
    int vrc = mc_maccode_verify(dir, ignore, NULL, &st, &err);
    if (vrc && !err.msg[0]) abort(); /* a refusal always says why */
    mc_maccode_scan_info si;
    mc_error e2 = { MC_OK, "" };
    int src = mc_maccode_scan(dir, &si, &e2);
    if (vrc == 0 && src != 0) abort(); /* sound but unscannable */
    if (src && !e2.msg[0]) abort();
    return 0;
}
