/* The architecture tables mc_convert knows, in the order they are tried
 * (a table with a detect function before the one it is told from), the
 * detection of a source's table and the supported list. Adding an
 * architecture: write convert/arch_<name>.c with its mc_arch and add it
 * here. */
#include "mc_convert_priv.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const mc_arch mc_arch_llama, mc_arch_mixtral, mc_arch_qwen2, mc_arch_qwen3, mc_arch_qwen3moe,
    mc_arch_gemma2, mc_arch_gemma3, mc_arch_phi3, mc_arch_deepseek_v3, mc_arch_deepseek_v2, mc_arch_qwen35moe,
    mc_arch_qwen35, mc_arch_qwen3next;
extern const mc_arch mc_arch_glm4_moe, mc_arch_glm_moe_dsa, mc_arch_glm4_moe_lite, mc_arch_deepseek_v32;
extern const mc_arch mc_arch_nemotron_h_moe, mc_arch_nemotron_h, mc_arch_llama4, mc_arch_olmoe, mc_arch_minimax;
extern const mc_arch mc_arch_gemma4;
extern const mc_arch mc_arch_gpt_oss;

const mc_arch *const mc_arch_list[] = {
    &mc_arch_llama, &mc_arch_mixtral, &mc_arch_qwen2, &mc_arch_qwen3, &mc_arch_qwen3moe,
    &mc_arch_gemma2, &mc_arch_gemma3, &mc_arch_phi3, &mc_arch_glm4_moe_lite /* told from deepseek2 */,
    &mc_arch_deepseek_v3, &mc_arch_deepseek_v2,
    &mc_arch_qwen35moe, &mc_arch_qwen35, &mc_arch_qwen3next,
    &mc_arch_glm4_moe, &mc_arch_glm_moe_dsa, &mc_arch_deepseek_v32,
    &mc_arch_nemotron_h_moe, &mc_arch_nemotron_h, &mc_arch_llama4, &mc_arch_olmoe, &mc_arch_minimax,
    &mc_arch_gemma4,
    &mc_arch_gpt_oss,
};
const size_t mc_arch_count = sizeof mc_arch_list / sizeof mc_arch_list[0];

/* ---------------------------------------------------------- registry */

static char mc_supported_buf[1024];

/* Each table name once (variants told apart by detect share a name). */
static void mc_supported_init(void)
{
    size_t o = 0;
    mc_supported_buf[0] = '\0';
    for (size_t i = 0; i < mc_arch_count; i++) {
        size_t j = 0;
        while (j < i && strcmp(mc_arch_list[j]->name, mc_arch_list[i]->name) != 0) j++;
        if (j < i) continue;
        int n = snprintf(mc_supported_buf + o, sizeof mc_supported_buf - o, "%s%s", o ? ", " : "",
                         mc_arch_list[i]->name);
        if (n < 0 || (size_t)n >= sizeof mc_supported_buf - o) break;
        o += (size_t)n;
    }
}

const char *mc_convert_supported_archs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mc_supported_init);
    return mc_supported_buf;
}

static int mc_word_in(const char *list, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = list; p && *p; ) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && strncmp(p, w, l) == 0) return 1;
        p += l;
    }
    return 0;
}

const mc_arch *mc_arch_for_gguf(mc_cv *cv, const char *ga, int has_experts)
{
    for (size_t i = 0; i < mc_arch_count; i++) {
        const mc_arch *a = mc_arch_list[i];
        if (!a->gguf_arch || strcmp(a->gguf_arch, ga) != 0) continue;
        if (a->gguf_experts == (has_experts ? MC_GGUF_NO_EXPERTS : MC_GGUF_EXPERTS)) continue;
        if (a->detect && !a->detect(cv)) continue;
        return a;
    }
    return NULL;
}

const mc_arch *mc_arch_for_hf(mc_cv *cv, const char *mt)
{
    for (size_t i = 0; i < mc_arch_count; i++) {
        const mc_arch *a = mc_arch_list[i];
        if (mc_word_in(a->hf_types, mt) && (!a->detect || a->detect(cv))) return a;
    }
    return NULL;
}
