/* fp16/bf16 conversions: every f16 and bf16 bit pattern round-trips, and
 * f32 -> f16/bf16 rounds to nearest even (checked against an independent
 * computation in double precision). */
#include "mc_test.h"
#include "mc_float.h"

#include <math.h>
#include <string.h>

/* Independent reference: nearest f16 by exhaustive comparison of neighbours
 * using exact double arithmetic. */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0) return s * ldexp(m, -24);
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * ldexp(1024 + m, e - 25);
}

int main(void)
{
    /* every f16 pattern: f16 -> f32 exact, back -> same bits */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mc_f16_to_f32((uint16_t)h);
        double ref = f16_value((uint16_t)h);
        if (isnan(ref)) {
            if (!isnan(f)) bad++;
            if ((mc_f32_to_f16(f) & 0x7c00) != 0x7c00 || !(mc_f32_to_f16(f) & 0x3ff)) bad++;
            continue;
        }
        if ((double)f != ref) bad++;
        if (mc_f32_to_f16(f) != (uint16_t)h) bad++;
    }
    CHECKF(bad == 0, "%d f16 patterns wrong", bad);

    /* every bf16 pattern round-trips */
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mc_bf16_to_f32((uint16_t)h);
        uint16_t back = mc_f32_to_bf16(f);
        if (isnan(f) ? !isnan(mc_bf16_to_f32(back)) : back != h) bad++;
    }
    CHECKF(bad == 0, "%d bf16 patterns do not round-trip", bad);

    /* f32 -> f16 rounding: sample f32 bit patterns across the range and
     * compare with the nearest-even f16 found by search. */
    bad = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 0x10001ull * 7) {
        float f;
        uint32_t b = (uint32_t)u;
        memcpy(&f, &b, 4);
        if (isnan(f)) continue;
        uint16_t got = mc_f32_to_f16(f);
        double x = (double)f, ax = fabs(x);
        uint16_t sign = signbit(f) ? 0x8000 : 0;
        uint16_t want;
        if (ax >= 65520.0) want = sign | 0x7c00;
        else {
            /* binary search the largest magnitude pattern <= ax */
            uint16_t lo = 0, hi = 0x7bff;
            while (lo < hi) {
                uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
                if (f16_value(mid) <= ax) lo = mid; else hi = (uint16_t)(mid - 1);
            }
            double a = f16_value(lo), c = f16_value((uint16_t)(lo + 1));
            uint16_t pick;
            if (ax - a < c - ax) pick = lo;
            else if (ax - a > c - ax) pick = (uint16_t)(lo + 1);
            else pick = (lo & 1) ? (uint16_t)(lo + 1) : lo;
            want = sign | pick;
        }
        if (got != want) {
            if (bad < 5) fprintf(stderr, "f32 %a -> f16 %04x, want %04x\n", (double)f, got, want);
            bad++;
        }
    }
    CHECKF(bad == 0, "%d f32->f16 roundings wrong", bad);

    /* bf16 rounding: hand-worked ties */
    CHECK(mc_f32_to_bf16(mc_f32_from_bits(0x3f808000u)) == 0x3f80); /* tie, even stays */
    CHECK(mc_f32_to_bf16(mc_f32_from_bits(0x3f818000u)) == 0x3f82); /* tie, odd rounds up */
    CHECK(mc_f32_to_bf16(mc_f32_from_bits(0x3f808001u)) == 0x3f81);
    CHECK(mc_f32_to_bf16(mc_f32_from_bits(0x7f7fffffu)) == 0x7f80); /* max f32 -> Inf */
    CHECK(mc_f32_to_bf16(mc_f32_from_bits(0x7f800001u)) != 0x7f80); /* NaN stays NaN */
    return mc_test_finish("test_float");
}
