/* mc_qreport: the quantization error of a conversion as JSON (docs/QUANT.md
 * "Quantization error", docs/FORMAT.md "qerr").
 *
 * From a plan and one accumulator per plan item (what the writers measured
 * with mc_plan_measure_rows) it builds:
 *   "qerr":         one record per tensor, in plan order;
 *   "qerr_summary": pooled figures per kind (attention, dense_ffn, experts,
 *                   embeddings, other) and in total (exact sums of the
 *                   tensors' squared errors and squares), and the worst
 *                   tensors by relative RMS error.
 * The .flash manifest carries both members; the mlx and mac-code folders
 * carry them in quant_report.json. */
#ifndef MC_QREPORT_H
#define MC_QREPORT_H

#include "mc_plan.h"
#include "mc_qerr.h"

struct cJSON;

enum { MC_QK_ATTENTION = 0, MC_QK_FFN, MC_QK_EXPERTS, MC_QK_EMBED, MC_QK_OTHER, MC_QK_COUNT };

#define MC_QREPORT_WORST 10   /* tensors listed in "worst" */
#define MC_QREPORT_FILE "quant_report.json"

/* The kind of a tensor (MC_QK_*) and its report name. */
int mc_qreport_kind(const mc_mtensor *t);
const char *mc_qreport_kind_name(int kind);

/* The "qerr" array and the "qerr_summary" object; NULL when out of memory. */
struct cJSON *mc_qreport_tensors(const mc_plan *p, const mc_qerr *q);
struct cJSON *mc_qreport_summary(const mc_plan *p, const mc_qerr *q);
/* Add both members to obj: 0, or -1 when out of memory. */
int mc_qreport_add(struct cJSON *obj, const mc_plan *p, const mc_qerr *q);
/* The folder report: {"format": "mconv-quant-report", "version": 1,
 * "qerr": [...], "qerr_summary": {...}}; NULL when out of memory. */
struct cJSON *mc_qreport_json(const mc_plan *p, const mc_qerr *q);

#endif
