/* The architecture tables mc_convert knows, in the order they are tried.
 * Adding an architecture: write convert/arch_<name>.c with its mc_arch and
 * add one line here. */
#include "mc_convert_int.h"

extern const mc_arch mc_arch_llama, mc_arch_mixtral, mc_arch_qwen2, mc_arch_qwen3, mc_arch_qwen3moe,
    mc_arch_gemma2, mc_arch_gemma3, mc_arch_phi3, mc_arch_deepseek2, mc_arch_qwen35moe,
    mc_arch_qwen35, mc_arch_qwen3next;

const mc_arch *const mc_arch_list[] = {
    &mc_arch_llama, &mc_arch_mixtral, &mc_arch_qwen2, &mc_arch_qwen3, &mc_arch_qwen3moe,
    &mc_arch_gemma2, &mc_arch_gemma3, &mc_arch_phi3, &mc_arch_deepseek2,
    &mc_arch_qwen35moe, &mc_arch_qwen35, &mc_arch_qwen3next,
};
const size_t mc_arch_count = sizeof mc_arch_list / sizeof mc_arch_list[0];
