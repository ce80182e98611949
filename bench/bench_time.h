/* The benchmark programs' clock: seconds from a monotonic clock. */
#ifndef MC_BENCH_TIME_H
#define MC_BENCH_TIME_H

#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
