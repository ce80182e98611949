/* libFuzzer target for the GGUF tokenizer rebuild (mc_tokenizer_build) on
 * tokenizer.ggml.* keys that parsed: whatever is built must print as JSON and
 * parse back; whatever is refused must come with a one-line message naming
 * the file. Anything else aborts (and ASan/UBSan catch the rest).
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMCONV_FUZZ=ON -DMCONV_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_tokenizer
 *   build-fuzz/fuzz_tokenizer -max_total_time=30 -max_len=65536 testdata/fuzz/fuzz_tokenizer
 */
#include "mc_gguf.h"
#include "mc_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const cJSON *doc)
{
    if (!doc) return;
    char *s = cJSON_PrintUnformatted(doc);
    if (!s) abort();
    cJSON *back = cJSON_Parse(s);
    if (!back) abort();
    cJSON_Delete(back);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mc_gguf *g = NULL;
    mc_error err = { MC_OK, "" };
    if (mc_gguf_parse_mem(data, size, "fuzz.gguf", &g, &err) != 0) return 0;
    mc_tok_out out;
    err = (mc_error){ MC_OK, "" };
    int rc = mc_tokenizer_build(g, &out, &err);
    if (rc == 0) {
        roundtrip(out.tokenizer_json);
        roundtrip(out.tokenizer_config);
        roundtrip(out.generation_config);
        if (out.tokenizer_json && !out.tokenizer_config) abort();
        if (out.n_notes < 0 || out.n_notes > MC_TOK_MAX_NOTES) abort();
    } else if (err.code == MC_OK || strncmp(err.msg, "fuzz.gguf: ", 11) != 0 || strchr(err.msg, '\n')) {
        abort();
    }
    mc_tokenizer_out_free(&out);
    mc_gguf_close(g);
    return 0;
}
