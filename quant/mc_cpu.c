#include "mc_cpu.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <cpuid.h>
#include <stdatomic.h>

int mc_cpu_x86_level(void)
{
    static _Atomic int state; /* 0 unknown, else level + 1 */
    int v = atomic_load_explicit(&state, memory_order_relaxed);
    if (!v) {
        __builtin_cpu_init();
        int lv = 0;
        unsigned a = 0, b = 0, c = 0, d = 0; /* F16C: CPUID leaf 1, ECX (not every compiler's cpu_supports names it) */
        int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) lv = 2;
        if (lv && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
            lv = 3;
        v = lv + 1;
        atomic_store_explicit(&state, v, memory_order_relaxed);
    }
    return v - 1;
}
#else
int mc_cpu_x86_level(void)
{
    return 0;
}
#endif
