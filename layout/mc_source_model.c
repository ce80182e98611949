/* The default source functions: an mc_model opened by mc_convert_open.
 * Kept in its own file so the writer links without the converter. */
#include "mc_plan.h"

static const mc_source_ops g_model_ops = { mc_model_read_f32, mc_model_read_raw, mc_model_read_blocks };

const mc_source_ops *mc_source_model_ops(void) { return &g_model_ops; }
