/* GGUF helpers for tests that rewrite corpus files. */
#ifndef MC_TEST_GGUF_H
#define MC_TEST_GGUF_H

#include "mc_gguf.h"
#include "mc_gguf_write.h"

/* Write tensor t's bytes, read from src, as the writer's next tensor data
 * (after its info was added). */
int mc_test_gguf_copy_data(mc_gguf_writer *w, const mc_gguf *src, const mc_gguf_tensor *t, mc_error *err);

#endif
