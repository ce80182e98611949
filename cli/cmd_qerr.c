/* The quantization error summary as convert and inspect print it (from the
 * "qerr_summary" object of layout/mc_qreport.h). */
#include "mc_cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mc_qreport.h"

/* A number, or the raw number text layout/mc_qreport.c writes. */
static int jval(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 1;
    }
    if (cJSON_IsRaw(v) && v->valuestring) {
        char *end = NULL;
        *out = strtod(v->valuestring, &end);
        return end && end != v->valuestring && !*end;
    }
    return 0;
}

static double num(const cJSON *o, const char *k, double dflt)
{
    double v;
    return jval(cJSON_GetObjectItemCaseSensitive(o, k), &v) ? v : dflt;
}

void mc_cli_json_exact(cJSON *j)
{
    cJSON *c;
    if (cJSON_IsNumber(j)) {
        char buf[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, j->valuedouble);
            if (strtod(buf, NULL) == j->valuedouble) break;
        }
        size_t n = strlen(buf) + 1;
        char *t = malloc(n);
        if (!t || !isfinite(j->valuedouble)) {
            free(t);
            return; /* left as cJSON prints it */
        }
        memcpy(t, buf, n);
        j->type = cJSON_Raw;
        j->valuestring = t;
        return;
    }
    cJSON_ArrayForEach(c, j) mc_cli_json_exact(c);
}

/* "0.0897  20.9 dB", "exact", or "n/a" (an all-zero source stored otherwise) */
static const char *figs(const cJSON *o, char *buf, size_t cap)
{
    double r, s;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "exact"))) snprintf(buf, cap, "%-8s %9s", "exact", "");
    else if (jval(cJSON_GetObjectItemCaseSensitive(o, "rel_rms"), &r) && jval(cJSON_GetObjectItemCaseSensitive(o, "snr_db"), &s))
        snprintf(buf, cap, "%-8.4f %6.2f dB", r, s);
    else snprintf(buf, cap, "%-8s %9s", "n/a", "");
    return buf;
}

void mc_cli_qerr_print(FILE *out, const cJSON *summary)
{
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(summary, "kinds"), *k, *w;
    char b[64];
    if (!cJSON_IsObject(summary)) return;
    fprintf(out, "quantization error (stored weights against their source values; pooled per kind):\n");
    fprintf(out, "  %-11s %7s %6s  %-8s %9s  %s\n", "kind", "tensors", "exact", "rel RMS", "SNR", "max abs");
    cJSON_ArrayForEach(k, kinds)
        fprintf(out, "  %-11s %7.0f %6.0f  %s  %.4g\n", k->string ? k->string : "?", num(k, "tensors", 0),
                num(k, "exact_tensors", 0), figs(k, b, sizeof b), num(k, "max_abs", 0));
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(summary, "total");
    if (t)
        fprintf(out, "  %-11s %7.0f %6.0f  %s  %.4g\n", "total", num(t, "tensors", 0), num(t, "exact_tensors", 0),
                figs(t, b, sizeof b), num(t, "max_abs", 0));
    const cJSON *worst = cJSON_GetObjectItemCaseSensitive(summary, "worst");
    if (cJSON_GetArraySize(worst) > 0) {
        fprintf(out, "  worst tensors (relative RMS error):\n");
        cJSON_ArrayForEach(w, worst) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(w, "name"), *kd = cJSON_GetObjectItemCaseSensitive(w, "kind");
            char bits[16] = "";
            if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(w, "bits")))
                snprintf(bits, sizeof bits, "%d-bit", (int)num(w, "bits", 0));
            fprintf(out, "    %s  %-6s %-10s %s\n", figs(w, b, sizeof b), bits,
                    cJSON_IsString(kd) ? kd->valuestring : "?", cJSON_IsString(nm) ? nm->valuestring : "?");
        }
    }
}

int mc_cli_qerr_print_plan(FILE *out, const struct mc_plan *p, const struct mc_qerr *q)
{
    cJSON *s = mc_qreport_summary(p, q);
    if (!s) return -1;
    mc_cli_qerr_print(out, s);
    cJSON_Delete(s);
    return 0;
}
