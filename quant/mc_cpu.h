/* mc_cpu: which x86-64 vector extensions this processor (and its operating
 * system, which must save the wider registers) offers, for the loops in
 * quant/ that are chosen at run time. */
#ifndef MC_CPU_H
#define MC_CPU_H

/* 0: none of these (or not x86-64); 2: AVX2 with FMA and F16C; 3: also
 * AVX-512 F, BW, VL and DQ. Detected once; thread safe. */
int mc_cpu_x86_level(void);

/* The target attribute of code that runs where mc_cpu_x86_level() is 3:
 * exactly the extensions level 3 checks for. */
#define MC_CPU_AVX512_TARGET "avx512f,avx512bw,avx512vl,avx512dq"
/* and of code that runs where it is at least 2 */
#define MC_CPU_AVX2_TARGET "avx2,fma,f16c"

#endif
